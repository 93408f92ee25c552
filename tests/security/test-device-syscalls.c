// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The syscall lists ferry-dm's devices and USB redirection ship (each
 * defined beside the code that needs it, reached through its device type):
 *   - every device type states its list, an empty one when the base list
 *     is enough (ferry-dm loads only the others: print-policy checks which
 *     lists each configuration gets);
 *   - each list builds into a filter with the base list, and all of them
 *     together (every name resolves, every condition is well formed);
 *   - the policy printed with all of them has the device rules it should
 *     (the usbfs ioctls libusb issues, the UART's line settings, the qemu
 *     device's reaping of its launcher) and nothing that must never be;
 *   - the UART's list is enough for a back end on a pty opened before
 *     confinement: line settings, flush, window size, bytes both ways
 *     (a confined child in kill mode; as 'ferry' when root).
 * The library's own lists (base, sanitizer): tests/sandbox/test-sandbox-policy.c.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "companion/dm-usb.h"
#include "devmodel/dm.h"

#define LISTS_MAX (FERRY_DM_TYPES_MAX + 3)

static char last_log[512];

static void keep_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* base, sanitizer (in sanitizer builds), every non-empty type list, usbredir. */
static size_t all_lists(const struct ferry_syscall_list **lists)
{
    const struct ferry_dm_device_type *t;
    size_t n = 0;

    lists[n++] = &sandbox_syscalls_base;
    if (sandbox_sanitized())
        lists[n++] = &sandbox_syscalls_sanitizer;
    for (unsigned i = 0; (t = dm_device_type_nth(i)); i++)
        if (t->syscalls && t->syscalls->n)
            lists[n++] = t->syscalls;
    lists[n++] = &companion_syscalls_usbredir;
    return n;
}

static const struct ferry_syscall_list *type_list(const char *name)
{
    const struct ferry_dm_device_type *t = dm_device_type_find(name);

    ck_assert_msg(t, "no device type %s", name);
    ck_assert_msg(t->syscalls, "device type %s states no syscall list", name);
    return t->syscalls;
}

START_TEST(test_every_type_states_a_list)
{
    const struct ferry_dm_device_type *t;
    unsigned n = 0;

    for (unsigned i = 0; (t = dm_device_type_nth(i)); i++, n++) {
        ck_assert_msg(t->syscalls, "device type %s states no syscall list "
                      "(FERRY_SYSCALL_LIST_NONE when the base list is enough)", t->name);
        ck_assert_msg(t->syscalls->name && *t->syscalls->name && t->syscalls->why &&
                      *t->syscalls->why, "device type %s: its list needs a name and a why",
                      t->name);
        ck_assert_msg(t->syscalls->n == 0 || t->syscalls->rules,
                      "device type %s: list %s has %zu rules and no array", t->name,
                      t->syscalls->name, t->syscalls->n);
    }
    /* the shipped devices are linked in (uart ... qemu, pc-testdev ...) */
    ck_assert_uint_ge(n, 12);
    ck_assert_uint_gt(type_list("uart")->n, 0);
    ck_assert_uint_gt(type_list("qemu")->n, 0);
    ck_assert_uint_eq(type_list("rtc")->n, 0);
}
END_TEST

START_TEST(test_lists_build)
{
    const struct ferry_syscall_list *lists[LISTS_MAX];
    struct ferry_sandbox_config cfg = {
        .mode = FERRY_SECCOMP_KILL, .namespaces = true, .lists = lists, .log = keep_log,
    };

    cfg.nr_lists = all_lists(lists);
    last_log[0] = '\0';
    ck_assert_msg(sandbox_validate(&cfg) == 0, "%s", last_log);
    for (size_t i = 1; i < cfg.nr_lists; i++) {
        const struct ferry_syscall_list *two[2] = { &sandbox_syscalls_base, lists[i] };
        struct ferry_sandbox_config one = cfg;

        one.lists = two;
        one.nr_lists = 2;
        ck_assert_msg(sandbox_validate(&one) == 0, "list %s: %s", lists[i]->name,
                      last_log);
    }
}
END_TEST

START_TEST(test_print_policy)
{
    const struct ferry_syscall_list *lists[LISTS_MAX];
    struct ferry_sandbox_config cfg = {
        .mode = FERRY_SECCOMP_KILL, .namespaces = true, .lists = lists, .log = keep_log,
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cfg.nr_lists = all_lists(lists);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(sandbox_print_policy(&cfg, f), 0);
    fclose(f);
    static const char *const want[] = {
        "\n# list base:", "\n# list usbredir:", "\n# list serial:", "\n# list mpqemu:",
        /* the UART's back end: line settings on its pty */
        "request == TCGETS", "request == TCSETSW", "request == TIOCGWINSZ",
        /* what the qemu device's launcher client needs (sandbox/launcher.h) */
        "\nwait4 ", "\nwaitid ",
        "request == USBDEVFS_SUBMITURB (0x8038550a)", "request == USBDEVFS_REAPURBNDELAY",
        "request == USBDEVFS_DISCARDURB", "request == USBDEVFS_SETCONFIGURATION",
        "request == USBDEVFS_RELEASEINTERFACE", "request == USBDEVFS_RESET (",
        "request == USBDEVFS_SETINTERFACE",
        "request == USBDEVFS_CLEAR_HALT", "request == USBDEVFS_CONTROL",
        "request == USBDEVFS_FREE_STREAMS", "request == USBDEVFS_GET_SPEED",
        "request == USBDEVFS_CONNECTINFO", "request == USBDEVFS_IOCTL",
        "request == USBDEVFS_GET_CAPABILITIES", "request == USBDEVFS_DISCONNECT_CLAIM",
        "request == USBDEVFS_ALLOC_STREAMS",
        "arg1 == IPPROTO_TCP (0x6) and arg2 == TCP_NODELAY (0x1)",
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

START_TEST(test_uart_pty_confined)
{
    const struct ferry_syscall_list *lists[3] = { &sandbox_syscalls_base, type_list("uart") };
    bool root = geteuid() == 0 && getpwnam(FERRY_SANDBOX_DEFAULT_USER);
    struct ferry_sandbox_config cfg = {
        .user = root ? FERRY_SANDBOX_DEFAULT_USER : "", .mode = FERRY_SECCOMP_KILL,
        .namespaces = true, .lists = lists, .nr_lists = 2,
    };
    int st;

    if (sandbox_sanitized())
        lists[cfg.nr_lists++] = &sandbox_syscalls_sanitizer;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0 || grantpt(m) || unlockpt(m))
            sandbox_exit(10);
        int sl = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (sl < 0 || sandbox_enter(&cfg))
            sandbox_exit(11);
        struct termios t;
        struct winsize ws;
        char c = 0;
        if (tcgetattr(sl, &t))
            sandbox_exit(12);
        cfmakeraw(&t);
        if (tcsetattr(sl, TCSANOW, &t) || tcsetattr(sl, TCSADRAIN, &t) ||
            tcflush(sl, TCIOFLUSH) || ioctl(m, TIOCGWINSZ, &ws))
            sandbox_exit(13);
        if (write(m, "u", 1) != 1 || read(sl, &c, 1) != 1 || c != 'u')
            sandbox_exit(14);
        if (write(sl, "a", 1) != 1 || read(m, &c, 1) != 1 || c != 'a')
            sandbox_exit(15);
        sandbox_exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pty child: wait status 0x%x", st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("device-syscalls");
    TCase *tc = tcase_create("lists");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_type_states_a_list);
    tcase_add_test(tc, test_lists_build);
    tcase_add_test(tc, test_print_policy);
    tcase_add_test(tc, test_uart_pty_confined);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
