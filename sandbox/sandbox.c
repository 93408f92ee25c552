// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm confinement (see sandbox.h for the order of the steps and why).
 *
 * The one piece of process-global state is the SIGSYS reporter's table of
 * syscall names and its fd: a signal handler can reach nothing else, and
 * it must not allocate, so the names are resolved before the filter goes on.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define SANDBOX_NR_MAX 512          /* x86_64 syscall numbers in use stay below */
#define SANDBOX_NAME_MAX 24
#define SANDBOX_PWBUF_MAX 16384
#define SANDBOX_EMPTY_ROOT "/tmp"   /* mount point of the empty tmpfs root */

#define slog(cfg, level, ...) ferry_logf((cfg)->log, (cfg)->opaque, level, __VA_ARGS__)

/*
 * The SIGSYS reporter's view, written before the filter loads and then
 * read-only, and whether this process is confined.
 */
static struct {
    bool active;
    int fd;
    uint64_t pid;                   /* the handler makes no syscall before its write */
    char prog[32];                  /* "ferry-dm", "ferry" (usb share) */
    char names[SANDBOX_NR_MAX][SANDBOX_NAME_MAX];
} reporter;

/* ------------------------------------------------------------------ */
/* Async-signal-safe SIGSYS reporter                                   */

static size_t put_str(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos + 1 < cap)
        buf[pos++] = *s++;
    return pos;
}

static size_t put_num(char *buf, size_t pos, size_t cap, uint64_t v, unsigned base)
{
    char tmp[24];
    size_t n = 0;

    if (base == 16)
        pos = put_str(buf, pos, cap, "0x");
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < sizeof(tmp));
    while (n && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
#ifdef __x86_64__
    static const int regs[6] = { REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9 };
    const ucontext_t *uc = uctx;
#endif
    int saved = errno;
    char buf[320];
    size_t pos = 0;
    int nr = si->si_syscall;

    pos = put_str(buf, pos, sizeof(buf), reporter.prog);
    pos = put_str(buf, pos, sizeof(buf), "[");
    pos = put_num(buf, pos, sizeof(buf), reporter.pid, 10);
    pos = put_str(buf, pos, sizeof(buf), "] error: seccomp: forbidden syscall ");
    if (nr >= 0 && nr < SANDBOX_NR_MAX && reporter.names[nr][0])
        pos = put_str(buf, pos, sizeof(buf), reporter.names[nr]);
    else
        pos = put_str(buf, pos, sizeof(buf), "unknown");
    pos = put_str(buf, pos, sizeof(buf), " nr=");
    pos = put_num(buf, pos, sizeof(buf), (uint64_t)(int64_t)nr, 10);
#ifdef __x86_64__
    pos = put_str(buf, pos, sizeof(buf), " args=");
    for (unsigned i = 0; i < 6; i++) {
        if (i)
            pos = put_str(buf, pos, sizeof(buf), ",");
        pos = put_num(buf, pos, sizeof(buf), (uint64_t)uc->uc_mcontext.gregs[regs[i]], 16);
    }
#endif
    pos = put_str(buf, pos, sizeof(buf), " action=kill\n");
    (void)!write(reporter.fd, buf, pos);
    /*
     * SA_RESETHAND has restored the default action and SA_NODEFER keeps
     * SIGSYS unblocked: dying of it tells the parent what happened.
     */
    syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGSYS);
    syscall(SYS_exit_group, 128 + SIGSYS);
    errno = saved;
    (void)sig;
}

/* ------------------------------------------------------------------ */
/* Filter                                                              */

/* Rules only the sandbox itself can fill in (they need the pid). */
struct internal_rules {
    struct ferry_syscall_rule r[2];
    struct ferry_syscall_list list;
};

static void internal_rules_init(struct internal_rules *in)
{
    uint64_t pid = (uint64_t)getpid();

    in->r[0] = (struct ferry_syscall_rule){ .syscall = "tgkill", .match = { {
        .arg = 0, .op = FERRY_ARG_EQ, .value = pid, .name = "own pid" } } };
    in->r[1] = (struct ferry_syscall_rule){ .syscall = "kill", .match = { {
        .arg = 0, .op = FERRY_ARG_EQ, .value = pid, .name = "own pid" } } };
    in->list = (struct ferry_syscall_list){
        .name = "sandbox", .why = "signals to itself only (raise, SIGSYS reporter)",
        .rules = in->r, .n = 2 };
}

static uint32_t action_of(const struct ferry_syscall_rule *rule)
{
    return rule->errno_ret > 0 ? SCMP_ACT_ERRNO((uint32_t)rule->errno_ret) : SCMP_ACT_ALLOW;
}

static int add_rule(const struct ferry_sandbox_config *cfg, scmp_filter_ctx ctx,
                    const struct ferry_syscall_list *list, const struct ferry_syscall_rule *rule)
{
    struct scmp_arg_cmp cmp[FERRY_SYSCALL_ARGS_MAX];
    unsigned n = 0;
    int nr = seccomp_syscall_resolve_name(rule->syscall ? rule->syscall : "");

    if (nr == __NR_SCMP_ERROR) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: list %s: unknown syscall '%s'", list->name,
             rule->syscall ? rule->syscall : "(null)");
        return -EINVAL;
    }
    for (unsigned i = 0; i < FERRY_SYSCALL_ARGS_MAX; i++) {
        const struct ferry_arg_match *m = &rule->match[i];
        if (m->op == FERRY_ARG_NONE)
            continue;
        if (m->arg > 5) {
            slog(cfg, FERRY_LOG_ERROR, "sandbox: list %s: %s: argument %u out of range",
                 list->name, rule->syscall, m->arg);
            return -EINVAL;
        }
        cmp[n].arg = m->arg;
        cmp[n].datum_b = m->value;
        switch (m->op) {
        case FERRY_ARG_EQ: cmp[n].op = SCMP_CMP_EQ; cmp[n].datum_a = m->value; break;
        case FERRY_ARG_NE: cmp[n].op = SCMP_CMP_NE; cmp[n].datum_a = m->value; break;
        case FERRY_ARG_MASKED_EQ: cmp[n].op = SCMP_CMP_MASKED_EQ; cmp[n].datum_a = m->mask; break;
        case FERRY_ARG_LT: cmp[n].op = SCMP_CMP_LT; cmp[n].datum_a = m->value; break;
        case FERRY_ARG_LE: cmp[n].op = SCMP_CMP_LE; cmp[n].datum_a = m->value; break;
        case FERRY_ARG_GT: cmp[n].op = SCMP_CMP_GT; cmp[n].datum_a = m->value; break;
        default:
            slog(cfg, FERRY_LOG_ERROR, "sandbox: list %s: %s: bad comparison %u",
                 list->name, rule->syscall, m->op);
            return -EINVAL;
        }
        n++;
    }
    int rc = seccomp_rule_add_exact_array(ctx, action_of(rule), nr, n, n ? cmp : NULL);
    if (rc == -EEXIST)
        rc = 0;     /* the same rule from another list */
    if (rc)
        slog(cfg, FERRY_LOG_ERROR, "sandbox: list %s: cannot add a rule for %s: %s",
             list->name, rule->syscall, strerror(-rc));
    return rc;
}

static int add_list(const struct ferry_sandbox_config *cfg, scmp_filter_ctx ctx,
                    const struct ferry_syscall_list *list)
{
    if (!list || (!list->rules && list->n)) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: empty slot in the list of syscall lists");
        return -EINVAL;
    }
    for (size_t i = 0; i < list->n; i++) {
        int rc = add_rule(cfg, ctx, list, &list->rules[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int build_filter(const struct ferry_sandbox_config *cfg, scmp_filter_ctx *out)
{
    struct internal_rules in;
    scmp_filter_ctx ctx;
    int rc;

    internal_rules_init(&in);
    ctx = seccomp_init(cfg->mode == FERRY_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
    if (!ctx) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: seccomp_init failed");
        return -ENOMEM;
    }
    /* x32 and i386 entry points are another architecture: kill at once. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (!rc)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (!rc)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);    /* set by us, earlier */
    /* A binary tree of syscall numbers: the hot path pays log(n), not n. */
    if (!rc)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: seccomp attributes: %s", strerror(-rc));
        goto fail;
    }
    rc = add_list(cfg, ctx, &in.list);
    for (size_t i = 0; !rc && i < cfg->nr_lists; i++)
        rc = add_list(cfg, ctx, cfg->lists ? cfg->lists[i] : NULL);
    if (rc)
        goto fail;
    *out = ctx;
    return 0;
fail:
    seccomp_release(ctx);
    return rc;
}

int sandbox_validate(const struct ferry_sandbox_config *cfg)
{
    scmp_filter_ctx ctx;
    int rc;

    if (!cfg || (cfg->nr_lists && !cfg->lists))
        return -EINVAL;
    rc = build_filter(cfg, &ctx);
    if (!rc)
        seccomp_release(ctx);
    return rc;
}

static void reporter_init(int fd)
{
    reporter.fd = fd > 0 ? fd : STDERR_FILENO;
    reporter.pid = (uint64_t)getpid();
    snprintf(reporter.prog, sizeof(reporter.prog), "%s",
             program_invocation_short_name && *program_invocation_short_name ?
             program_invocation_short_name : "ferry");
    for (int nr = 0; nr < SANDBOX_NR_MAX; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        snprintf(reporter.names[nr], SANDBOX_NAME_MAX, "%s", name ? name : "");
        free(name);
    }
}

/* ------------------------------------------------------------------ */
/* Privileges                                                          */

static bool have_cap(int cap)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2] = { { 0 } };

    if (syscall(SYS_capget, &h, d) < 0)
        return false;
    return d[cap / 32].effective & (1u << (cap % 32));
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;
    int rc = 0;

    if (fd < 0)
        return -errno;
    n = write(fd, text, strlen(text));
    if (n < 0)
        rc = -errno;
    else if ((size_t)n != strlen(text))
        rc = -EIO;
    close(fd);
    return rc;
}

/*
 * An unprivileged caller gets its namespaces inside a new user namespace
 * that maps only its own uid and gid.  Returns 0 when in all of them,
 * -errno when the process is stuck in a user namespace without a mapping
 * (fatal); otherwise a positive errno saying why not, with *in_userns
 * telling whether at least the user namespace was entered.
 */
static int unshare_as_user(const struct ferry_sandbox_config *cfg, int flags, bool *in_userns)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int rc;

    *in_userns = false;
    if (unshare(CLONE_NEWUSER) < 0)
        return errno;
    *in_userns = true;
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    rc = write_file("/proc/self/uid_map", map);
    if (!rc)
        rc = write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (!rc)
        rc = write_file("/proc/self/gid_map", map);
    if (rc) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot map uid %u and gid %u into the new "
             "user namespace: %s", (unsigned)uid, (unsigned)gid, strerror(-rc));
        return rc;
    }
    return unshare(flags) < 0 ? errno : 0;
}

/*
 * Nothing of the host's filesystem stays reachable: every mount becomes
 * private, an empty read-only tmpfs becomes / and the old root goes away.
 */
static int empty_root(void)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -errno;
    if (mount("ferry-dm", SANDBOX_EMPTY_ROOT, "tmpfs",
              MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=2,mode=0555") < 0)
        return -errno;
    if (chdir(SANDBOX_EMPTY_ROOT) < 0)
        return -errno;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return -errno;
    if (umount2(".", MNT_DETACH) < 0)
        return -errno;
    if (chdir("/") < 0)
        return -errno;
    return 0;
}

/* 0 also when the kernel refused (one warning); -errno only when stuck half-way. */
static int enter_namespaces(const struct ferry_sandbox_config *cfg, bool *in_userns)
{
    const int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS;
    int rc = 0;

    *in_userns = false;
    if (unshare(flags) < 0) {
        rc = errno;
        if (rc == EPERM && !have_cap(CAP_SYS_ADMIN))
            rc = unshare_as_user(cfg, flags, in_userns);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            slog(cfg, FERRY_LOG_WARNING, "sandbox: cannot enter new mount/ipc/net/uts "
                 "namespaces%s: %s; continuing without them",
                 *in_userns ? " (inside a new user namespace)" : "", strerror(rc));
            return 0;
        }
    }
    (void)sethostname("ferry-dm", 8);
    rc = empty_root();
    if (rc)
        slog(cfg, FERRY_LOG_WARNING, "sandbox: cannot switch to an empty root "
             "filesystem: %s; the host's files stay visible (seccomp still forbids opening them)",
             strerror(-rc));
    return 0;
}

/* Of the capabilities in mask, those in the effective set. */
static uint64_t held_caps(uint64_t mask)
{
    uint64_t held = 0;

    for (int cap = 0; cap < 64; cap++)
        if ((mask & (1ull << cap)) && have_cap(cap))
            held |= 1ull << cap;
    return held;
}

/*
 * keep (held, see held_caps) as the only effective, permitted, inheritable
 * and ambient capabilities: what an exec'd program starts with, as any user.
 */
static int keep_only_caps(uint64_t keep)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2] = { { 0 } };

    for (int i = 0; i < 2; i++)
        d[i].effective = d[i].permitted = d[i].inheritable = (uint32_t)(keep >> (32 * i));
    if (syscall(SYS_capset, &h, d) < 0)
        return -errno;
    for (int cap = 0; cap < 64; cap++)
        if ((keep & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            return -errno;
    return 0;
}

static int drop_bounding_set(const struct ferry_sandbox_config *cfg, uint64_t keep)
{
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    for (int cap = 0; cap < 64; cap++) {
        int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in < 0)
            break;      /* past CAP_LAST_CAP */
        if (in && !(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            int rc = -errno;
            if (rc == -EPERM && !have_cap(CAP_SETPCAP)) {
                slog(cfg, FERRY_LOG_WARNING, "sandbox: the capability bounding set "
                     "stays as it is (no CAP_SETPCAP to empty it); with no_new_privs and no "
                     "execve it grants nothing");
                return 0;
            }
            slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot drop capability %d from the "
                 "bounding set: %s", cap, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int clear_caps(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[2] = { { 0 } };

    if (syscall(SYS_capget, &h, d) == 0 && !d[0].effective && !d[0].permitted &&
        !d[0].inheritable && !d[1].effective && !d[1].permitted && !d[1].inheritable)
        return 0;   /* nothing to clear (and capset may be filtered) */
    memset(d, 0, sizeof(d));
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static bool is_user(const struct passwd *pw)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    return getresuid(&ruid, &euid, &suid) == 0 && getresgid(&rgid, &egid, &sgid) == 0 &&
           ruid == pw->pw_uid && euid == pw->pw_uid && suid == pw->pw_uid &&
           rgid == pw->pw_gid && egid == pw->pw_gid && sgid == pw->pw_gid;
}

/*
 * Already that user with no supplementary groups (systemd's User=): no
 * change, and no set*id call either (a SystemCallFilter may forbid them).
 */
static int switch_user(const struct ferry_sandbox_config *cfg, const struct passwd *pw,
                       bool in_userns, bool *switched)
{
    *switched = false;
    if (!pw || (is_user(pw) && getgroups(0, NULL) == 0))
        return 0;
    if (!in_userns && setgroups(0, NULL) < 0 && (errno != EPERM || getgroups(0, NULL) != 0)) {
        int rc = -errno;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot clear supplementary groups: %s",
             strerror(-rc));
        return rc;
    }
    if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
        int rc = -errno;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot switch to user %s (uid %u gid %u): %s",
             pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, strerror(-rc));
        return rc;
    }
    if (!is_user(pw)) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: user switch to %s did not take", pw->pw_name);
        return -EPERM;
    }
    *switched = true;
    return 0;
}

int sandbox_enter(const struct ferry_sandbox_config *cfg)
{
    scmp_filter_ctx ctx = NULL;
    struct passwd pwd, *pw = NULL;
    char *pwbuf = NULL;
    bool in_userns = false, switched = false;
    const char *user;
    int rc;

    if (!cfg || (cfg->nr_lists && !cfg->lists))
        return -EINVAL;
    user = cfg->user ? cfg->user : FERRY_SANDBOX_DEFAULT_USER;

    /* 1. The filter first: a bad list must fail before anything changed. */
    if (cfg->mode != FERRY_SECCOMP_OFF) {
        rc = build_filter(cfg, &ctx);
        if (rc)
            return rc;
    }

    /* 2. The user, while NSS can still read /etc. */
    if (user[0]) {
        pwbuf = malloc(SANDBOX_PWBUF_MAX);
        if (!pwbuf) {
            rc = -ENOMEM;
            goto out;
        }
        rc = getpwnam_r(user, &pwd, pwbuf, SANDBOX_PWBUF_MAX, &pw);
        if (!pw) {
            rc = rc ? -rc : -ENOENT;
            slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot find user %s: %s (create it with "
                 "scripts/setup or choose another)", user, strerror(-rc));
            goto out;
        }
        if (geteuid() != 0 && geteuid() != pw->pw_uid) {
            rc = -EPERM;
            slog(cfg, FERRY_LOG_ERROR, "sandbox: switching to user %s needs root (running "
                 "as uid %u)", user, (unsigned)geteuid());
            goto out;
        }
    }
    tzset();    /* localtime() must not want /etc/localtime later */

    /* 3. Namespaces, while CAP_SYS_ADMIN is still there. */
    if (cfg->namespaces) {
        rc = enter_namespaces(cfg, &in_userns);
        if (rc)
            goto out;
    }

    /* 4. Bounding and ambient sets need CAP_SETPCAP: before the switch. */
    uint64_t keep = held_caps(cfg->keep_caps);
    rc = drop_bounding_set(cfg, keep);
    if (rc)
        goto out;

    /* 5. Groups, gid, uid (keeping the permitted set only for keep_caps). */
    if (prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0) < 0) {
        rc = -errno;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: PR_SET_KEEPCAPS: %s", strerror(-rc));
        goto out;
    }
    rc = switch_user(cfg, pw, in_userns, &switched);
    if (rc)
        goto out;

    /* 6. Whatever capabilities are left (keep_caps alone stay), and proof that root is gone. */
    rc = keep ? keep_only_caps(keep) : clear_caps();
    if (rc) {
        slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot %s capabilities: %s",
             keep ? "keep only the listed" : "clear", strerror(-rc));
        goto out;
    }
    if (keep && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
        rc = -errno;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: PR_SET_KEEPCAPS: %s", strerror(-rc));
        goto out;
    }
    if (switched && pw->pw_uid != 0 && !in_userns && setuid(0) == 0) {
        rc = -EPERM;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: uid 0 could be regained after the switch");
        goto out;
    }
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    /* 7. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        rc = -errno;
        slog(cfg, FERRY_LOG_ERROR, "sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(-rc));
        goto out;
    }

    /* 8. */
    if (ctx) {
        if (cfg->mode == FERRY_SECCOMP_KILL) {
            struct sigaction sa = { .sa_sigaction = sandbox_sigsys,
                                    .sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER };
            sigset_t set;

            reporter_init(cfg->violation_fd);
            sigemptyset(&sa.sa_mask);
            if (sigaction(SIGSYS, &sa, NULL) < 0) {
                rc = -errno;
                slog(cfg, FERRY_LOG_ERROR, "sandbox: SIGSYS handler: %s", strerror(-rc));
                goto out;
            }
            sigemptyset(&set);
            sigaddset(&set, SIGSYS);
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        }
        rc = seccomp_load(ctx);
        if (rc) {
            slog(cfg, FERRY_LOG_ERROR, "sandbox: cannot load the seccomp filter: %s",
                 strerror(-rc));
            goto out;
        }
    }
    reporter.active = true;
    slog(cfg, FERRY_LOG_INFO, "sandbox: confined user=%s uid=%u gid=%u namespaces=%s seccomp=%s%s",
         pw ? pw->pw_name : "(unchanged)", (unsigned)getuid(), (unsigned)getgid(),
         !cfg->namespaces ? "off" : in_userns ? "user" : "on",
         cfg->mode == FERRY_SECCOMP_KILL ? "kill" : cfg->mode == FERRY_SECCOMP_LOG ? "log" : "off",
         keep ? " (capabilities kept for the program it execs)" : "");
    rc = 0;
out:
    if (ctx)
        seccomp_release(ctx);
    free(pwbuf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Readable policy                                                     */

static void print_match(FILE *out, const struct ferry_syscall_rule *rule,
                        const struct ferry_arg_match *m)
{
    const char *name = m->name ? m->name : "";
    bool is_request = !strcmp(rule->syscall, "ioctl") && m->arg == 1 &&
                      m->op == FERRY_ARG_MASKED_EQ && m->mask == 0xffffffffu;

    if (is_request) {
        fprintf(out, " request == %s (0x%08llx)", name, (unsigned long long)m->value);
        return;
    }
    switch (m->op) {
    case FERRY_ARG_EQ:
        fprintf(out, " arg%u == %s (0x%llx)", m->arg, name, (unsigned long long)m->value);
        break;
    case FERRY_ARG_NE:
        fprintf(out, " arg%u != %s (0x%llx)", m->arg, name, (unsigned long long)m->value);
        break;
    case FERRY_ARG_MASKED_EQ:
        fprintf(out, " arg%u & %s (0x%llx) == 0x%llx", m->arg, name,
                (unsigned long long)m->mask, (unsigned long long)m->value);
        break;
    case FERRY_ARG_LT:
    case FERRY_ARG_LE:
    case FERRY_ARG_GT:
        fprintf(out, " arg%u %s %s (0x%llx)", m->arg,
                m->op == FERRY_ARG_LT ? "<" : m->op == FERRY_ARG_LE ? "<=" : ">", name,
                (unsigned long long)m->value);
        break;
    default:
        break;
    }
}

static void print_list(FILE *out, const struct ferry_syscall_list *list, size_t *rules)
{
    fprintf(out, "\n# list %s: %s\n", list->name, list->why ? list->why : "");
    for (size_t i = 0; i < list->n; i++) {
        const struct ferry_syscall_rule *rule = &list->rules[i];
        int nr = seccomp_syscall_resolve_name(rule->syscall);
        bool first = true;

        fprintf(out, "%-22s %4d ", rule->syscall, nr);
        for (unsigned k = 0; k < FERRY_SYSCALL_ARGS_MAX; k++) {
            if (rule->match[k].op == FERRY_ARG_NONE)
                continue;
            fputs(first ? " if" : " and", out);
            print_match(out, rule, &rule->match[k]);
            first = false;
        }
        if (rule->errno_ret > 0)
            fprintf(out, " -> fails with %s", strerrorname_np(rule->errno_ret));
        else
            fputs(first ? " allow" : " -> allow", out);
        fputc('\n', out);
        (*rules)++;
    }
}

int sandbox_print_policy(const struct ferry_sandbox_config *cfg, FILE *out)
{
    struct internal_rules in;
    size_t rules = 0;
    int rc;

    if (!cfg || !out)
        return -EINVAL;
    rc = sandbox_validate(cfg);
    if (rc)
        return rc;
    internal_rules_init(&in);
    const char *user = cfg->user ? cfg->user : FERRY_SANDBOX_DEFAULT_USER;
    struct utsname un;
    fprintf(out, "# ferry-dm confinement policy (%s, libseccomp %u.%u.%u)\n",
            uname(&un) == 0 ? un.machine : "?", seccomp_version()->major,
            seccomp_version()->minor, seccomp_version()->micro);
    fprintf(out, "user: %s, no supplementary groups\n", user[0] ? user : "(unchanged)");
    fputs("capabilities: none (effective, permitted, inheritable, ambient, bounding)\n"
          "no_new_privs: 1\n", out);
    fprintf(out, "namespaces: %s\n", cfg->namespaces ?
            "new mount (empty read-only root), ipc, network, uts" : "off");
    switch (cfg->mode) {
    case FERRY_SECCOMP_KILL:
        fputs("seccomp: allow-list; any other syscall is not run, is logged by name and kills "
              "the process (SIGSYS); other architectures kill at once\n", out);
        break;
    case FERRY_SECCOMP_LOG:
        fputs("seccomp: allow-list in log mode; any other syscall runs and the kernel logs it "
              "(audit type 1326)\n", out);
        break;
    case FERRY_SECCOMP_OFF:
        fputs("seccomp: off\n", out);
        return 0;
    }
    fputs("# syscall              nr   condition\n", out);
    print_list(out, &in.list, &rules);
    for (size_t i = 0; i < cfg->nr_lists; i++)
        print_list(out, cfg->lists[i], &rules);
    fprintf(out, "\n# %zu rules in %zu lists\n", rules, cfg->nr_lists + 1);
    return ferror(out) ? -EIO : 0;
}

bool sandbox_active(void)
{
    return reporter.active;
}

void sandbox_exit(int code)
{
    for (;;)
        syscall(SYS_exit_group, code);
}

int sandbox_parse_mode(const char *s, enum ferry_seccomp_mode *mode)
{
    if (!s)
        return -EINVAL;
    if (!strcmp(s, "kill"))
        *mode = FERRY_SECCOMP_KILL;
    else if (!strcmp(s, "log"))
        *mode = FERRY_SECCOMP_LOG;
    else if (!strcmp(s, "off"))
        *mode = FERRY_SECCOMP_OFF;
    else
        return -EINVAL;
    return 0;
}

bool sandbox_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(FERRY_SANITIZED)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

/* ------------------------------------------------------------------ */
/* A parent's view of a confined child's death                         */

int sandbox_watch_child(pid_t pid)
{
    return ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0 ? -errno : 0;
}

int sandbox_wait_child(pid_t pid, int *status, int *nr)
{
    *nr = -1;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, __WALL);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            *status = st;
            return 0;
        }
        if (!WIFSTOPPED(st))
            continue;
        if ((st >> 16) == PTRACE_EVENT_STOP) {
            /* a group stop (SIGSTOP and friends): let it go on */
            (void)ptrace(PTRACE_CONT, pid, NULL, NULL);
        } else {
            /* a signal on its way: note a seccomp kill's syscall, pass it on */
            int sig = WSTOPSIG(st);
            siginfo_t si;

            if (sig == SIGSYS && ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0 &&
                si.si_code == 1 /* SYS_SECCOMP */)
                *nr = si.si_syscall;
            (void)ptrace(PTRACE_CONT, pid, NULL, (void *)(intptr_t)sig);
        }
    }
}

void sandbox_syscall_name(int nr, char *buf, size_t len)
{
    char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;

    snprintf(buf, len, "%s", name ? name : "unknown");
    free(name);
}
