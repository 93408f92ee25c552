// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The library's syscall lists (base, sanitizer) build into a filter (every
 * name resolves, every condition is well formed), the printed policy is
 * readable and complete, and broken lists are refused with a message naming
 * the culprit.  Needs no privileges: nothing is loaded.  The lists of
 * ferry-dm's devices and USB redirection: tests/security/test-device-syscalls.c.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "tests/check-main.h"

static const struct ferry_syscall_list *const all_lists[] = {
    &sandbox_syscalls_base, &sandbox_syscalls_sanitizer,
};

static char last_log[512];

static void keep_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

static struct ferry_sandbox_config all_config(void)
{
    return (struct ferry_sandbox_config){
        .mode = FERRY_SECCOMP_KILL, .namespaces = true, .lists = all_lists,
        .nr_lists = sizeof(all_lists) / sizeof(all_lists[0]), .log = keep_log,
    };
}

START_TEST(test_lists_build)
{
    struct ferry_sandbox_config cfg = all_config();

    last_log[0] = '\0';
    ck_assert_msg(sandbox_validate(&cfg) == 0, "%s", last_log);
    for (size_t i = 0; i < cfg.nr_lists; i++) {
        struct ferry_sandbox_config one = cfg;
        one.lists = &all_lists[i];
        one.nr_lists = 1;
        ck_assert_msg(sandbox_validate(&one) == 0, "list %s: %s", all_lists[i]->name,
                      last_log);
        ck_assert_uint_gt(all_lists[i]->n, 0);
    }
}
END_TEST

START_TEST(test_print_policy)
{
    struct ferry_sandbox_config cfg = all_config();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(sandbox_print_policy(&cfg, f), 0);
    fclose(f);
    static const char *const want[] = {
        "user: ferry", "no_new_privs: 1", "kills the process",
        "\n# list base:", "\n# list sanitizer:",
        "\nepoll_wait ", "\nread ", "mmap ", "arg2 & PROT_EXEC (0x4) == 0x0",
        "arg0 < SIGSYS (0x1f)",
        "arg0 & ~(uint64_t)0x1f (0xffffffffffffffe0) == 0x20", "arg0 == _NSIG - 1 (0x40)",
        "clone3", "fails with ENOSYS", "arg0 == own pid",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "policy lacks '%s':\n%s", want[i], text);
    /* Never allowed, in any list. */
    static const char *const never[] = { "\nopenat ", "\nexecve ", "\nsocket ", "\nptrace ",
                                         "\nconnect ", "\nbind ", "\nmount ", "\nfork " };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        ck_assert_msg(!strstr(text, never[i]), "policy allows '%s'", never[i] + 1);
    if (getenv("FERRY_TEST_VERBOSE"))
        fputs(text, stderr);
    free(text);
}
END_TEST

START_TEST(test_bad_lists_refused)
{
    static const struct ferry_syscall_rule bad_name[] = { FERRY_SC("no_such_syscall") };
    static const struct ferry_syscall_list l1 = { "broken", "", bad_name, 1 };
    static const struct ferry_syscall_rule bad_arg[] = {
        { .syscall = "ioctl", .match = { { .arg = 6, .op = FERRY_ARG_EQ, .value = 1 } } },
    };
    static const struct ferry_syscall_list l2 = { "badarg", "", bad_arg, 1 };
    const struct ferry_syscall_list *lists[2] = { &sandbox_syscalls_base, &l1 };
    struct ferry_sandbox_config cfg = { .lists = lists, .nr_lists = 2, .log = keep_log };

    ck_assert_int_eq(sandbox_validate(&cfg), -EINVAL);
    ck_assert_msg(strstr(last_log, "no_such_syscall") && strstr(last_log, "broken"), "%s",
                  last_log);
    lists[1] = &l2;
    ck_assert_int_eq(sandbox_validate(&cfg), -EINVAL);
    ck_assert_msg(strstr(last_log, "argument 6"), "%s", last_log);
    lists[1] = NULL;
    ck_assert_int_eq(sandbox_validate(&cfg), -EINVAL);
    /* enter refuses too, and changes nothing. */
    lists[1] = &l1;
    ck_assert_int_eq(sandbox_enter(&cfg), -EINVAL);
}
END_TEST

/* A list that says "nothing beyond the base" adds no rule and still builds. */
START_TEST(test_empty_list)
{
    FERRY_SYSCALL_LIST_NONE(none, "none", "nothing beyond the base list");
    const struct ferry_syscall_list *lists[2] = { &sandbox_syscalls_base, &none };
    struct ferry_sandbox_config cfg = { .lists = lists, .nr_lists = 1, .log = keep_log };
    char *one = NULL, *two = NULL;
    size_t len = 0;
    FILE *f;

    ck_assert_uint_eq(none.n, 0);
    f = open_memstream(&one, &len);
    ck_assert_int_eq(sandbox_print_policy(&cfg, f), 0);
    fclose(f);
    cfg.nr_lists = 2;
    last_log[0] = '\0';
    ck_assert_msg(sandbox_validate(&cfg) == 0, "%s", last_log);
    f = open_memstream(&two, &len);
    ck_assert_int_eq(sandbox_print_policy(&cfg, f), 0);
    fclose(f);
    /* the same rules; only the list's heading and the count of lists differ */
    ck_assert_msg(strstr(two, "\n# list none: nothing beyond the base list\n\n"), "%s", two);
    const char *r1 = strstr(one, " rules in "), *r2 = strstr(two, " rules in ");
    ck_assert(r1 && r2);
    ck_assert_int_eq(strtol(strrchr(one, '#') + 1, NULL, 10),
                     strtol(strrchr(two, '#') + 1, NULL, 10));
    free(one);
    free(two);
}
END_TEST

START_TEST(test_parse_mode)
{
    enum ferry_seccomp_mode m;

    ck_assert_int_eq(sandbox_parse_mode("kill", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_KILL);
    ck_assert_int_eq(sandbox_parse_mode("log", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_LOG);
    ck_assert_int_eq(sandbox_parse_mode("off", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_OFF);
    ck_assert_int_eq(sandbox_parse_mode("trap", &m), -EINVAL);
    ck_assert_int_eq(sandbox_parse_mode(NULL, &m), -EINVAL);
}
END_TEST

static TCase *policy_tcase(void)
{
    return FERRY_CHECK_TCASE("policy", 60, test_lists_build, test_print_policy,
                             test_bad_lists_refused, test_empty_list, test_parse_mode);
}

FERRY_CHECK_MAIN("sandbox-policy", policy_tcase);
