/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm confinement: drop every privilege, then an allow-list seccomp
 * filter built from a base list plus one small list per device type.
 *
 * sandbox_enter() is called once, after the device model has opened
 * everything it will ever need (ioreq transport, guest RAM memfd, control
 * socket, device fds handed over by the broker, log target) and before the
 * first ioreq is served.  In order it:
 *   1. builds the seccomp filter (unknown syscall names fail here, while
 *      the process can still report it comfortably),
 *   2. resolves the user (default "ferry") while /etc is still visible,
 *   3. unshares mount, IPC, network and UTS namespaces and pivots into an
 *      empty read-only tmpfs (needs CAP_SYS_ADMIN; unprivileged callers
 *      get a user namespace; one warning and on where the kernel refuses),
 *   4. empties the capability bounding and ambient sets (this needs
 *      CAP_SETPCAP, hence before the user switch),
 *   5. clears supplementary groups, switches gid and uid (real, effective,
 *      saved),
 *   6. clears effective, permitted and inheritable capabilities and checks
 *      that uid 0 cannot be regained, makes the process non-dumpable,
 *   7. sets no_new_privs,
 *   8. installs the SIGSYS reporter and loads the filter on every thread.
 *
 * A forbidden syscall never runs.  In FERRY_SECCOMP_KILL mode it traps: a
 * SIGSYS handler writes one line naming the syscall and its arguments to
 * the violation fd (async-signal-safe) and the process then dies of SIGSYS
 * (the parent sees WTERMSIG == SIGSYS).  The filter forbids changing the
 * SIGSYS disposition, so a compromised process cannot silence the report.
 * FERRY_SECCOMP_LOG lets the syscall run and has the kernel log it (audit
 * record type 1326, SECCOMP_RET_LOG): for developing lists.
 *
 * In ferry-dm's start-up:
 *
 *     const struct ferry_syscall_list *lists[8];
 *     size_t n = 0;
 *     lists[n++] = &sandbox_syscalls_base;
 *     if (sandbox_sanitized()) lists[n++] = &sandbox_syscalls_sanitizer;
 *     for each device type configured:   // its own list, beside its source
 *         if (type->syscalls->n) lists[n++] = type->syscalls;
 *     if (has_usb)     lists[n++] = &companion_syscalls_usbredir;
 *     struct ferry_sandbox_config sbx = {
 *         .user = opt_user,                  // NULL: "ferry"
 *         .mode = opt_seccomp,               // sandbox_parse_mode(--seccomp=)
 *         .namespaces = true, .lists = lists, .nr_lists = n,
 *         .log = ferry_log_glib, .opaque = NULL,
 *     };
 *     if (opt_print_policy)
 *         exit(sandbox_print_policy(&sbx, stdout) ? 1 : 0);
 *     dm_prewarm();     // libraries' lazy state (devmodel/prewarm.h): after
 *                             // confinement, a first-time file read is SIGSYS
 *     ... launcher (sandbox_launcher_create), libusb_init with
 *     LIBUSB_OPTION_NO_DEVICE_DISCOVERY, event base, ioreq registration,
 *     guest memory, control socket listening, pty ...
 *     if (sandbox_enter(&sbx)) exit(1);
 *     ... claim ranges, enable, irqfds, event loop ...
 *     sandbox_exit(status);
 */
#ifndef FERRY_SANDBOX_SANDBOX_H
#define FERRY_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/ferry-log.h"

#define FERRY_SANDBOX_DEFAULT_USER "ferry"
#define FERRY_SYSCALL_ARGS_MAX 2

/*
 * Comparisons are on the full 64-bit register, unsigned.  Mind that the
 * kernel truncates int arguments to 32 bits: EQ, LT and LE against small
 * values are exact for them (any upper bit makes the comparison fail),
 * NE and GT are not (0x10000001f != 31 passes, and the kernel sees 31):
 * write "not X" as several exact rules instead (see rt_sigaction in
 * sandbox-base.c).  libseccomp takes one condition per argument per rule.
 */
enum ferry_arg_op {
    FERRY_ARG_NONE = 0,
    FERRY_ARG_EQ,           /* arg == value */
    FERRY_ARG_NE,           /* arg != value */
    FERRY_ARG_MASKED_EQ,    /* (arg & mask) == value */
    FERRY_ARG_LT,           /* arg < value */
    FERRY_ARG_LE,           /* arg <= value */
    FERRY_ARG_GT,           /* arg > value */
};

struct ferry_arg_match {
    uint8_t arg;            /* 0..5 */
    uint8_t op;             /* enum ferry_arg_op */
    uint64_t mask;          /* FERRY_ARG_MASKED_EQ */
    uint64_t value;
    const char *name;       /* the value's symbolic name, for the printed policy */
};

/*
 * One allowed syscall.  All conditions must hold (AND); several rules for
 * the same syscall are alternatives (OR).  errno_ret > 0 makes the call
 * fail with that errno instead of allowing it (e.g. clone3 -> ENOSYS so
 * that glibc falls back to clone, whose flags the filter can see).
 */
struct ferry_syscall_rule {
    const char *syscall;    /* name as libseccomp knows it */
    struct ferry_arg_match match[FERRY_SYSCALL_ARGS_MAX];
    int errno_ret;
};

struct ferry_syscall_list {
    const char *name;
    const char *why;        /* one line, printed with the policy */
    const struct ferry_syscall_rule *rules;
    size_t n;
};

#define FERRY_SC(nm) { .syscall = (nm) }
#define FERRY_SC_EQ(nm, a, v) \
    { .syscall = (nm), .match = { { .arg = (a), .op = FERRY_ARG_EQ, .value = (v), .name = #v } } }
#define FERRY_SC_NE(nm, a, v) \
    { .syscall = (nm), .match = { { .arg = (a), .op = FERRY_ARG_NE, .value = (v), .name = #v } } }
#define FERRY_SC_LT(nm, a, v) \
    { .syscall = (nm), .match = { { .arg = (a), .op = FERRY_ARG_LT, .value = (v), .name = #v } } }

/* (arg & m) == v: "flag f must be clear" is FERRY_SC_MASKED(nm, a, f, 0). */
#define FERRY_SC_MASKED(nm, a, m, v) \
    { .syscall = (nm), .match = { { .arg = (a), .op = FERRY_ARG_MASKED_EQ, .mask = (m), \
                                    .value = (v), .name = #m } } }
#define FERRY_SC_ERRNO(nm, e) { .syscall = (nm), .errno_ret = (e) }
/*
 * ioctl by request number.  The kernel reads the request as an unsigned
 * int, so only its low 32 bits are compared.
 */
#define FERRY_IOCTL(req) \
    { .syscall = "ioctl", .match = { { .arg = 1, .op = FERRY_ARG_MASKED_EQ, .mask = 0xffffffffu, \
                                       .value = (uint32_t)(req), .name = #req } } }
/*
 * A list is defined where the code that needs it is: the base list here in
 * sandbox-base.c, a device type's in the device's source (reached through
 * its type, hence FERRY_SYSCALL_LIST_STATIC), a library's next to its user.
 * nm is the name --print-policy shows.
 */
#define FERRY_SYSCALL_LIST_DEFINE_(storage, ident, nm, why_, ...) \
    static const struct ferry_syscall_rule ident##_rules[] = { __VA_ARGS__ }; \
    storage const struct ferry_syscall_list ident = { .name = (nm), .why = (why_), \
        .rules = ident##_rules, .n = sizeof(ident##_rules) / sizeof(ident##_rules[0]) }
#define FERRY_SYSCALL_LIST(ident, nm, why_, ...) \
    FERRY_SYSCALL_LIST_DEFINE_(, ident, nm, why_, __VA_ARGS__)
#define FERRY_SYSCALL_LIST_STATIC(ident, nm, why_, ...) \
    FERRY_SYSCALL_LIST_DEFINE_(static, ident, nm, why_, __VA_ARGS__)
/*
 * Nothing beyond the base list, said explicitly (why_ says why): a list
 * with no rules.  It adds nothing to a filter; ferry-dm leaves such lists
 * out of those it loads and prints.
 */
#define FERRY_SYSCALL_LIST_NONE(ident, nm, why_) \
    static const struct ferry_syscall_list ident = { .name = (nm), .why = (why_), \
        .rules = NULL, .n = 0 }

enum ferry_seccomp_mode {
    FERRY_SECCOMP_KILL = 0, /* default: forbidden syscall -> report by name, die of SIGSYS */
    FERRY_SECCOMP_LOG,      /* forbidden syscall runs and the kernel logs it */
    FERRY_SECCOMP_OFF,      /* privileges dropped, no filter */
};

struct ferry_sandbox_config {
    const char *user;       /* NULL: "ferry"; "" keeps the current user (tests, bench) */
    enum ferry_seccomp_mode mode;
    bool namespaces;
    const struct ferry_syscall_list *const *lists;
    size_t nr_lists;
    int violation_fd;       /* where the SIGSYS reporter writes; <= 0: stderr */
    /*
     * Capabilities (bit 1 << CAP_X) kept across the user switch, of those the
     * caller holds, and passed to a program it execs (ambient): the launcher
     * of ferry-dm's successor keeps what that successor needs to confine
     * itself as its predecessor did (docs/confinement.md).  0 for everyone else.
     */
    uint64_t keep_caps;
    ferry_log_fn log;
    void *opaque;
};

/*
 * Confines the calling process for good.  Returns 0, or -errno after a
 * message naming the step that failed: the caller must then exit, since
 * the process may be half-confined.  Call it with one thread only (the
 * filter is synchronised to all threads, the credentials are not).
 */
FERRY_MUST_CHECK int sandbox_enter(const struct ferry_sandbox_config *cfg);

/*
 * Ends a confined process at once (exit_group): no atexit handlers and no
 * sanitizer leak check, which would need syscalls the filter forbids
 * (LeakSanitizer ptraces the process from a clone()d tracer).  A confined
 * ferry-dm frees what it wants and then leaves through here.
 */
_Noreturn void sandbox_exit(int code);

/*
 * True once sandbox_enter() has succeeded in this process.  A
 * confined ferry-dm asked to attach a device it holds no fd for must say
 * so instead of trying to open the node (which the filter would punish):
 * "usb 1-2: no fd for this device: a confined ferry-dm opens no device
 * nodes; attach it with `ferry usb attach`, which hands the fd over".
 */
bool sandbox_active(void);

/*
 * The one case the reporter cannot cover: a forbidden syscall made while
 * the thread has SIGSYS blocked (a library blocking every signal around a
 * call) is killed by the kernel without running any handler.  A parent
 * can still name it: sandbox_watch_child() (root, or the same user)
 * attaches to the child with ptrace (PTRACE_SEIZE; nothing stops until a
 * signal comes), and sandbox_wait_child() waits for it to end, passing
 * every signal on unchanged and keeping the syscall of a seccomp SIGSYS
 * (its siginfo).  Call watch once the child no longer needs ptrace for
 * itself (LeakSanitizer's exit check does: after confinement it is off).
 */
FERRY_MUST_CHECK int sandbox_watch_child(pid_t pid);
/* 0 with *status (as waitpid's) and *nr (the syscall a seccomp filter
 * killed it for, or -1); -errno.  Without a watch: a plain waitpid. */
FERRY_MUST_CHECK int sandbox_wait_child(pid_t pid, int *status, int *nr);
/* The syscall's name on this architecture, or "unknown". */
void sandbox_syscall_name(int nr, char *buf, size_t len);

/* Builds the filter without loading it: checks every name in the lists. */
FERRY_MUST_CHECK int sandbox_validate(const struct ferry_sandbox_config *cfg);

/* The effective policy, readable (ferry-dm --print-policy).  0 or -errno. */
int sandbox_print_policy(const struct ferry_sandbox_config *cfg, FILE *out);

/* Parses "kill", "log" or "off" (--seccomp=MODE); -EINVAL otherwise. */
int sandbox_parse_mode(const char *s, enum ferry_seccomp_mode *mode);

/*
 * The lists every confined process starts from.  The others are defined
 * next to their users: each device type's in its source (struct
 * ferry_dm_device_type's syscalls), USB redirection's beside ferry-dm's USB
 * code (companion/usbredir-syscalls.c).
 */
extern const struct ferry_syscall_list sandbox_syscalls_base;      /* event loop + ioreq */
extern const struct ferry_syscall_list sandbox_syscalls_sanitizer; /* ASan/UBSan runtime */

/* True when this build runs under ASan/UBSan (then add sandbox_syscalls_sanitizer). */
bool sandbox_sanitized(void);

#endif /* FERRY_SANDBOX_SANDBOX_H */
