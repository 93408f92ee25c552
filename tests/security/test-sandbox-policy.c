// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The shipped syscall lists build into a filter (every name resolves, every
 * condition is well formed), the printed policy is readable and complete,
 * and broken lists are refused with a message naming the culprit.  Needs
 * no privileges: nothing is loaded.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/sandbox.h"
#include "tests/check-main.h"

static const struct ferry_syscall_list *const all_lists[] = {
    &ferry_syscalls_base, &ferry_syscalls_sanitizer, &ferry_syscalls_serial,
    &ferry_syscalls_usbredir, &ferry_syscalls_mpqemu,
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
    ck_assert_msg(ferry_sandbox_validate(&cfg) == 0, "%s", last_log);
    for (size_t i = 0; i < cfg.nr_lists; i++) {
        struct ferry_sandbox_config one = cfg;
        one.lists = &all_lists[i];
        one.nr_lists = 1;
        ck_assert_msg(ferry_sandbox_validate(&one) == 0, "list %s: %s", all_lists[i]->name,
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
    ck_assert_int_eq(ferry_sandbox_print_policy(&cfg, f), 0);
    fclose(f);
    static const char *const want[] = {
        "user: ferry", "no_new_privs: 1", "kills the process",
        "\n# list base:", "\n# list usbredir:", "\n# list serial:", "\n# list mpqemu:",
        "\nepoll_wait ", "\nread ", "mmap ", "arg2 & PROT_EXEC (0x4) == 0x0",
        "request == USBDEVFS_SUBMITURB (0x8038550a)", "request == USBDEVFS_REAPURBNDELAY",
        "request == USBDEVFS_DISCARDURB", "request == USBDEVFS_SETCONFIGURATION",
        "request == USBDEVFS_RELEASEINTERFACE", "request == USBDEVFS_RESET (",
        "request == USBDEVFS_SETINTERFACE",
        "request == USBDEVFS_CLEAR_HALT", "request == USBDEVFS_CONTROL",
        "request == USBDEVFS_FREE_STREAMS", "request == USBDEVFS_GET_SPEED",
        "request == USBDEVFS_CONNECTINFO", "request == USBDEVFS_IOCTL",
        "request == USBDEVFS_GET_CAPABILITIES", "request == USBDEVFS_DISCONNECT_CLAIM",
        "request == USBDEVFS_ALLOC_STREAMS", "arg0 < SIGSYS (0x1f)",
        "arg0 & ~(uint64_t)0x1f (0xffffffffffffffe0) == 0x20", "arg0 == _NSIG - 1 (0x40)",
        "clone3", "fails with ENOSYS", "arg0 == own pid",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "policy lacks '%s':\n%s", want[i], text);
    /* libusb 1.0.26 never issues these for usbredirhost 0.13 on Linux >= 3.15
     * (GETDRIVER and CLAIMINTERFACE: checked on a real usbfs by the
     * usb-gadget-confined test): not allowed. */
    static const char *const unused[] = { "USBDEVFS_REAPURB ", "USBDEVFS_BULK ",
                                          "USBDEVFS_RESETEP ", "USBDEVFS_GETDRIVER ",
                                          "USBDEVFS_CLAIMINTERFACE " };
    for (size_t i = 0; i < sizeof(unused) / sizeof(unused[0]); i++)
        ck_assert_msg(!strstr(text, unused[i]), "policy allows %s", unused[i]);
    ck_assert_msg(strstr(text, "readlink") && strstr(text, "fails with ENOENT"),
                  "libusb's readlink of /proc/self/fd must fail softly");
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
    const struct ferry_syscall_list *lists[2] = { &ferry_syscalls_base, &l1 };
    struct ferry_sandbox_config cfg = { .lists = lists, .nr_lists = 2, .log = keep_log };

    ck_assert_int_eq(ferry_sandbox_validate(&cfg), -EINVAL);
    ck_assert_msg(strstr(last_log, "no_such_syscall") && strstr(last_log, "broken"), "%s",
                  last_log);
    lists[1] = &l2;
    ck_assert_int_eq(ferry_sandbox_validate(&cfg), -EINVAL);
    ck_assert_msg(strstr(last_log, "argument 6"), "%s", last_log);
    lists[1] = NULL;
    ck_assert_int_eq(ferry_sandbox_validate(&cfg), -EINVAL);
    /* enter refuses too, and changes nothing. */
    lists[1] = &l1;
    ck_assert_int_eq(ferry_sandbox_enter(&cfg), -EINVAL);
}
END_TEST

START_TEST(test_parse_mode)
{
    enum ferry_seccomp_mode m;

    ck_assert_int_eq(ferry_sandbox_parse_mode("kill", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_KILL);
    ck_assert_int_eq(ferry_sandbox_parse_mode("log", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_LOG);
    ck_assert_int_eq(ferry_sandbox_parse_mode("off", &m), 0);
    ck_assert_int_eq(m, FERRY_SECCOMP_OFF);
    ck_assert_int_eq(ferry_sandbox_parse_mode("trap", &m), -EINVAL);
    ck_assert_int_eq(ferry_sandbox_parse_mode(NULL, &m), -EINVAL);
}
END_TEST

static TCase *policy_tcase(void)
{
    return FERRY_CHECK_TCASE("policy", 60, test_lists_build, test_print_policy,
                             test_bad_lists_refused, test_parse_mode);
}

FERRY_CHECK_MAIN("sandbox-policy", policy_tcase);
