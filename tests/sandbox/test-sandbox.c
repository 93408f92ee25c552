// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The confinement, proven on a real process: a poke device registered with
 * a router in this process, confined exactly as ferry-dm confines itself.
 *   - /proc/PID/status shows user ferry, no capabilities, NoNewPrivs 1,
 *     Seccomp 2, and it has its own network namespace and an empty root;
 *   - each forbidden thing the device tries when poked (open /etc/shadow,
 *     execve, socket(AF_INET), ptrace, an executable mapping, a socket
 *     from a second thread, touching the SIGSYS handler, also with a
 *     signal number only the kernel's truncation makes SIGSYS) kills the
 *     whole process by
 *     SIGSYS, the log names the syscall, and the router carries on with
 *     the device detached: its ports read all ones;
 *   - in log mode the same calls run and the device survives.
 * Needs root (to switch to the 'ferry' user): SKIP otherwise.
 */
#include <check.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/check-main.h"
#include "tests/sandbox/sandbox-rig.h"

static const struct ferry_syscall_list *const lists_plain[] = { &sandbox_syscalls_base };
static const struct ferry_syscall_list *const lists_sanitized[] = {
    &sandbox_syscalls_base, &sandbox_syscalls_sanitizer,
};

static struct ferry_sandbox_config confined(enum ferry_seccomp_mode mode)
{
    bool san = sandbox_sanitized();
    return (struct ferry_sandbox_config){
        .user = "ferry", .mode = mode, .namespaces = true,
        .lists = san ? lists_sanitized : lists_plain,
        .nr_lists = san ? 2 : 1,
    };
}

/* The value of "Key:" in /proc/PID/status, whitespace squeezed to single spaces. */
static bool status_field(pid_t pid, const char *key, char *out, size_t len)
{
    char path[64], line[512];
    size_t klen = strlen(key);
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) || line[klen] != ':')
            continue;
        size_t o = 0;
        bool space = false;
        for (char *c = line + klen + 1; *c && *c != '\n' && o + 1 < len; c++) {
            if (*c == ' ' || *c == '\t') {
                space = o > 0;
                continue;
            }
            if (space)
                out[o++] = ' ';
            space = false;
            if (o + 1 < len)
                out[o++] = *c;
        }
        out[o] = '\0';
        found = true;
        break;
    }
    fclose(f);
    return found;
}

static void dump_log(struct sandbox_rig *t, char *buf, size_t len)
{
    sandbox_rig_read_log(t, buf, len);
    fprintf(stderr, "--- device output ---\n%s--- end ---\n", buf);
}

START_TEST(test_status_after_startup)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    struct passwd *pw = getpwnam("ferry");
    struct sandbox_rig t;
    char v[256], want[64], a[128], b[128];
    uint32_t data;

    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(sandbox_rig_start(&t, &cfg), 0);

    snprintf(want, sizeof(want), "%u %u %u %u", pw->pw_uid, pw->pw_uid, pw->pw_uid, pw->pw_uid);
    ck_assert(status_field(t.child, "Uid", v, sizeof(v)));
    ck_assert_str_eq(v, want);
    snprintf(want, sizeof(want), "%u %u %u %u", pw->pw_gid, pw->pw_gid, pw->pw_gid, pw->pw_gid);
    ck_assert(status_field(t.child, "Gid", v, sizeof(v)));
    ck_assert_str_eq(v, want);
    ck_assert(status_field(t.child, "Groups", v, sizeof(v)));
    ck_assert_str_eq(v, "");
    static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_msg(status_field(t.child, caps[i], v, sizeof(v)), "no %s", caps[i]);
        ck_assert_msg(!strcmp(v, "0000000000000000"), "%s is %s", caps[i], v);
    }
    ck_assert(status_field(t.child, "NoNewPrivs", v, sizeof(v)));
    ck_assert_str_eq(v, "1");
    ck_assert(status_field(t.child, "Seccomp", v, sizeof(v)));
    ck_assert_str_eq(v, "2");
    fprintf(stderr, "status of the confined device (pid %d): uid/gid %u/%u, caps 0, "
            "NoNewPrivs 1, Seccomp 2\n", (int)t.child, pw->pw_uid, pw->pw_gid);

    /* Its own network namespace, and nothing of the host's files. */
    snprintf(a, sizeof(a), "/proc/%d/ns/net", (int)t.child);
    ssize_t n = readlink(a, b, sizeof(b) - 1);
    ck_assert_int_gt(n, 0);
    b[n] = '\0';
    n = readlink("/proc/self/ns/net", a, sizeof(a) - 1);
    ck_assert_int_gt(n, 0);
    a[n] = '\0';
    ck_assert_msg(strcmp(a, b), "device shares the test's network namespace %s", a);
    struct stat st;
    snprintf(a, sizeof(a), "/proc/%d/%s", (int)t.child, "root/etc");  /* its root's /etc */
    ck_assert_msg(stat(a, &st) < 0 && errno == ENOENT, "the device still sees /etc");

    /* And it still does its job. */
    data = 0xfeedf00d;
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_REG + 5, true, &data), IOREQ_SENT);
    data = 0;
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_REG + 5, false, &data), IOREQ_SENT);
    ck_assert_uint_eq(data, 0xfeedf00d);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_CONFINED, false, &data), IOREQ_SENT);
    ck_assert_uint_eq(data, 1);
    /* Threads are allowed (glib may start workers): clone3 fails, glibc falls back to clone. */
    data = POKE_THREAD_OK;
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SENT);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_RESULT, false, &data), IOREQ_SENT);
    ck_assert_int_eq((int32_t)data, 7);
    ck_assert_int_eq(atomic_load(&t.gone), 0);
    char log[4096];
    kill(t.child, SIGKILL);
    sandbox_rig_wait(&t);
    sandbox_rig_read_log(&t, log, sizeof(log));
    ck_assert_msg(strstr(log, "poke-dm[0] warning: confined=yes"), "no glib log line: %s", log);
    sandbox_rig_stop(&t);
}
END_TEST

/*
 * Started unprivileged as 'ferry' (systemd's User=ferry): no user switch,
 * namespaces through a user namespace where the kernel allows it, the
 * same filter.
 */
START_TEST(test_started_as_user)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    struct passwd *pw = getpwnam("ferry");
    struct sandbox_rig t;
    char v[256], want[64], log[4096];
    uint32_t data = POKE_SOCKET_INET;

    struct sandbox_rig_opts o = { .pre_user = "ferry" };
    int rc = sandbox_rig_start_opts(&t, &cfg, &o);
    if (rc)
        dump_log(&t, log, sizeof(log));
    ck_assert_int_eq(rc, 0);
    snprintf(want, sizeof(want), "%u %u %u %u", pw->pw_uid, pw->pw_uid, pw->pw_uid, pw->pw_uid);
    ck_assert(status_field(t.child, "Uid", v, sizeof(v)));
    ck_assert_str_eq(v, want);
    static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapAmb" };
    for (unsigned i = 0; i < 4; i++) {
        ck_assert(status_field(t.child, caps[i], v, sizeof(v)));
        ck_assert_msg(!strcmp(v, "0000000000000000"), "%s is %s", caps[i], v);
    }
    ck_assert(status_field(t.child, "NoNewPrivs", v, sizeof(v)));
    ck_assert_str_eq(v, "1");
    ck_assert(status_field(t.child, "Seccomp", v, sizeof(v)));
    ck_assert_str_eq(v, "2");
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SERVER_FAILED);
    int ws = sandbox_rig_wait(&t);
    dump_log(&t, log, sizeof(log));
    ck_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSYS);
    ck_assert(strstr(log, "forbidden syscall socket nr="));
    sandbox_rig_stop(&t);
}
END_TEST

/*
 * Where the kernel (or a service manager's RestrictNamespaces=) refuses
 * namespaces: exactly one warning, and every other part of the
 * confinement is still there.
 */
START_TEST(test_namespaces_refused_one_warning)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    struct sandbox_rig_opts o = { .pre_user = "ferry", .deny_unshare = true };
    struct sandbox_rig t;
    char v[256], log[4096];
    uint32_t data = POKE_OPEN_SHADOW;

    ck_assert_int_eq(sandbox_rig_start_opts(&t, &cfg, &o), 0);
    ck_assert(status_field(t.child, "CapEff", v, sizeof(v)));
    ck_assert_str_eq(v, "0000000000000000");
    ck_assert(status_field(t.child, "NoNewPrivs", v, sizeof(v)));
    ck_assert_str_eq(v, "1");
    ck_assert(status_field(t.child, "Seccomp_filters", v, sizeof(v)));
    ck_assert_str_eq(v, "2");   /* the service manager's and ours */
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SERVER_FAILED);
    sandbox_rig_wait(&t);
    dump_log(&t, log, sizeof(log));
    const char *w = strstr(log, "poke-dm warning: sandbox:");
    ck_assert_msg(w && !strstr(w + 20, "warning: sandbox"), "not exactly one warning");
    ck_assert(strstr(w, "namespaces") && strstr(w, "continuing without them"));
    ck_assert(strstr(log, "forbidden syscall openat nr="));
    sandbox_rig_stop(&t);
}
END_TEST

/*
 * A forbidden syscall with SIGSYS blocked (as a library that blocks every
 * signal around a call makes it): the kernel kills without the reporter,
 * and a watching parent names the syscall (ferry usb share's does).
 */
START_TEST(test_blocked_sigsys_named_by_parent)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    int st = 0, nr = -2;
    char name[32];
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sigset_t set;

        if (sandbox_enter(&cfg) < 0)
            _exit(3);
        sigemptyset(&set);
        sigaddset(&set, SIGSYS);
        sigprocmask(SIG_BLOCK, &set, NULL);
        (void)!socket(AF_INET, SOCK_STREAM, 0);
        _exit(4);
    }
    ck_assert_int_eq(sandbox_watch_child(pid), 0);
    ck_assert_int_eq(sandbox_wait_child(pid, &st, &nr), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "wait status 0x%x", st);
    sandbox_syscall_name(nr, name, sizeof(name));
    ck_assert_str_eq(name, "socket");
}
END_TEST

/* _i runs over enum poke_violation. */
START_TEST(test_violation_kills)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    const char *name = poke_violation_syscall(_i);
    struct ioreq_router_stats st;
    struct sandbox_rig t;
    char log[8192], want[64];
    uint32_t data = _i;

    ck_assert_int_eq(sandbox_rig_start(&t, &cfg), 0);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SERVER_FAILED);
    int ws = sandbox_rig_wait(&t);
    dump_log(&t, log, sizeof(log));
    ck_assert_msg(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSYS,
                  "device did not die of SIGSYS after %s: wait status 0x%x", name, ws);
    snprintf(want, sizeof(want), "forbidden syscall %s nr=", name);
    ck_assert_msg(strstr(log, want), "the log does not name %s", name);

    /* The router is still there, the device detached: reads are all ones. */
    data = 0;
    int rc = sandbox_rig_io(&t, POKE_PORT_REG, false, &data);
    ck_assert_msg(rc == IOREQ_UNCLAIMED || rc == IOREQ_SERVER_FAILED, "send: %d", rc);
    ck_assert_uint_eq(data, 0xffffffffu);
    /* The router tells its owner a moment after it stopped waiting. */
    for (int i = 0; i < 10000 && atomic_load(&t.gone) == 0; i++)
        usleep(1000);
    ck_assert_int_ge(atomic_load(&t.gone), 1);
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_eq(st.servers, 0);
    ck_assert_uint_ge(st.failed, 1);
    fprintf(stderr, "%s: device killed by SIGSYS, router: '%s', later reads 0x%08x\n", name,
            t.gone_why, data);
    sandbox_rig_stop(&t);
}
END_TEST

/* Log mode: the forbidden calls run (and fail or succeed on their own merits). */
START_TEST(test_log_mode_survives)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_LOG);
    struct sandbox_rig t;
    char v[64];

    ck_assert_int_eq(sandbox_rig_start(&t, &cfg), 0);
    ck_assert(status_field(t.child, "Seccomp", v, sizeof(v)));
    ck_assert_str_eq(v, "2");
    for (uint32_t i = POKE_OPEN_SHADOW; i < POKE_NR; i++) {
        uint32_t data = i, res = 0;
        ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SENT);
        ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_RESULT, false, &res), IOREQ_SENT);
        fprintf(stderr, "log mode: %s returned %d (%s)\n", poke_violation_syscall(i),
                (int32_t)res, (int32_t)res < 0 ? strerror(-(int32_t)res) : "ok");
    }
    /* /etc/shadow is not there to open: an empty root, and uid ferry anyway. */
    uint32_t data = POKE_OPEN_SHADOW, res = 0;
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SENT);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_RESULT, false, &res), IOREQ_SENT);
    ck_assert_int_lt((int32_t)res, 0);
    ck_assert_int_eq(atomic_load(&t.gone), 0);
    sandbox_rig_stop(&t);
}
END_TEST

/* Without the sandbox the same pokes do not kill: the kills above are the filter's. */
START_TEST(test_unconfined_baseline)
{
    struct sandbox_rig t;
    uint32_t data = POKE_SOCKET_INET, res = 1;

    ck_assert_int_eq(sandbox_rig_start(&t, NULL), 0);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_CONFINED, false, &res), IOREQ_SENT);
    ck_assert_uint_eq(res, 0);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_VIOLATE, true, &data), IOREQ_SENT);
    ck_assert_int_eq(sandbox_rig_io(&t, POKE_PORT_RESULT, false, &res), IOREQ_SENT);
    ck_assert_int_eq((int32_t)res, 0);
    sandbox_rig_stop(&t);
}
END_TEST

/* A user that does not exist stops the start-up with a message, before any change. */
START_TEST(test_unknown_user_fails)
{
    struct ferry_sandbox_config cfg = confined(FERRY_SECCOMP_KILL);
    struct sandbox_rig t;
    char log[4096];

    cfg.user = "ferry-no-such-user";
    ck_assert_int_eq(sandbox_rig_start(&t, &cfg), -ECHILD);
    sandbox_rig_read_log(&t, log, sizeof(log));
    ck_assert_msg(strstr(log, "poke-dm error: sandbox: cannot find user ferry-no-such-user"), "log: %s", log);
    sandbox_rig_stop(&t);
}
END_TEST

/*
 * keep_caps (the launcher of ferry-dm's successor): the user switch and
 * no_new_privs happen, but the listed capabilities reach the program it
 * execs, and nothing else does (effective, permitted and bounding sets),
 * as the 'ferry' user and as root.
 */
START_TEST(test_keep_caps_reach_exec)
{
    static const char *const users[] = { "ferry", "root" };
    const uint64_t keep = 1ull << 21 | 1ull << 8;      /* CAP_SYS_ADMIN, CAP_SETPCAP */

    for (size_t u = 0; u < 2; u++) {
        struct ferry_sandbox_config cfg = {
            .user = users[u], .mode = FERRY_SECCOMP_OFF, .namespaces = false,
            .keep_caps = keep,
        };
        int p[2];
        char out[8192] = "";
        size_t have = 0;
        ssize_t n;
        int st;

        ck_assert_int_eq(pipe(p), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            dup2(p[1], STDOUT_FILENO);
            if (sandbox_enter(&cfg) < 0)
                _exit(2);
            execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        while (have < sizeof(out) - 1 && (n = read(p[0], out + have, sizeof(out) - 1 - have)) > 0)
            have += (size_t)n;
        out[have] = '\0';
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x", users[u], st);
        static const char *const sets[] = { "CapEff:", "CapPrm:", "CapBnd:" };
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
            const char *l = strstr(out, sets[i]);
            unsigned long long v = ~0ull;
            ck_assert_msg(l && sscanf(l + strlen(sets[i]), "%llx", &v) == 1 && v == keep,
                          "%s: %s %llx, not %llx", users[u], sets[i], v,
                          (unsigned long long)keep);
        }
        ck_assert_msg(strstr(out, "NoNewPrivs:\t1"), "%s: no_new_privs is off", users[u]);
        const struct passwd *pw = getpwnam(users[u]);
        unsigned uid = ~0u;
        const char *l = strstr(out, "\nUid:");
        ck_assert_msg(l && sscanf(l, "\nUid: %u", &uid) == 1 && uid == pw->pw_uid,
                      "%s: uid %u", users[u], uid);
    }
}
END_TEST

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP: the sandbox tests switch to the 'ferry' user and need root\n");
        return 77;
    }
    if (!getpwnam("ferry")) {
        printf("SKIP: no 'ferry' user (scripts/setup creates it)\n");
        return 77;
    }
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("confined");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_status_after_startup);
    tcase_add_loop_test(tc, test_violation_kills, POKE_OPEN_SHADOW, POKE_NR);
    tcase_add_test(tc, test_started_as_user);
    tcase_add_test(tc, test_blocked_sigsys_named_by_parent);
    tcase_add_test(tc, test_namespaces_refused_one_warning);
    tcase_add_test(tc, test_log_mode_survives);
    tcase_add_test(tc, test_unconfined_baseline);
    tcase_add_test(tc, test_unknown_user_fails);
    tcase_add_test(tc, test_keep_caps_reach_exec);
    suite_add_tcase(s, tc);
    return ferry_check_run(s, CK_FORK_GETENV);
}
