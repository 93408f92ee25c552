// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A confined process (seccomp kill mode: no execve, no fork) restarts
 * programs through the launcher forked before its confinement:
 *   - a shell answering on its socket, twice (a restart), running as the
 *     user the launcher dropped to, with no signal blocked or ignored
 *     although the process that created the launcher had some;
 *   - an exec failure comes back as an error, not as a dead process;
 *   - no more than max_live instances run at once;
 *   - the program's stderr reaches the confined process, and a stop kills
 *     and reaps it (the confined process may not signal it itself);
 *   - a launcher kept for a successor (sandbox_launcher_keep) outlives the
 *     process that made it, and the successor stops and starts through it
 *     (sandbox_launcher_adopt); one not kept takes its instances along;
 *   - a helper whose stderr is a pipe nobody reads survives its log line
 *     there, and logs to the fd sandbox_launcher_log_to passes from then on;
 *   - with second_sock, each instance has a second socket on fd 4 whose
 *     other end the confined process gets (no socket() or connect() there);
 *   - with the argument `qemu` (its own meson test, launcher-qemu, which
 *     SKIPs without QEMU): a real `qemu-system-x86_64 -machine x-remote`
 *     answers an mpqemu config read of its RTL8139 (vendor 10ec, device 8139).
 * With root the process and the launcher run as 'ferry'; without, as the
 * current user (same filter).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/launcher.h"
#include "tests/check-main.h"

#define QEMU "/usr/bin/qemu-system-x86_64"
#define IO_TIMEOUT_MS 60000     /* QEMU start-up on a loaded 2-core machine */

/*
 * What a launcher's client needs beyond the base list: reaping the helper
 * when it destroys the launcher.  ferry-dm's qemu device, the launcher's
 * user, carries the same in its list (devmodel/devices/qemu.c); the
 * security suite runs that one (confined-dm-qemu-restart).
 */
FERRY_SYSCALL_LIST_STATIC(launcher_client, "launcher-client",
    "reaps the launcher's helper at the end", FERRY_SC("wait4"), FERRY_SC("waitid"));

static const struct ferry_syscall_list *const lists_plain[] = {
    &sandbox_syscalls_base, &launcher_client,
};
static const struct ferry_syscall_list *const lists_sanitized[] = {
    &sandbox_syscalls_base, &launcher_client, &sandbox_syscalls_sanitizer,
};

static void log_stderr(void *opaque, enum ferry_log_level level, const char *msg)
{
    fprintf(stderr, "launcher-test[%d] %s: %s\n", (int)getpid(),
            level == FERRY_LOG_ERROR ? "error" : level == FERRY_LOG_WARNING ? "warning" : "info",
            msg);
}

static const char *test_user(void)
{
    return geteuid() == 0 && getpwnam("ferry") ? "ferry" : "";
}

static struct ferry_sandbox_config confined(void)
{
    bool san = sandbox_sanitized();
    return (struct ferry_sandbox_config){
        .user = test_user(), .mode = FERRY_SECCOMP_KILL, .namespaces = true,
        .lists = san ? lists_sanitized : lists_plain, .nr_lists = san ? 3 : 2,
        .log = log_stderr,
    };
}

/* Read until '\n' or the buffer is full; -1 on timeout or error. */
static ssize_t read_line(int fd, char *buf, size_t len)
{
    size_t have = 0;

    while (have + 1 < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t n = read(fd, buf + have, len - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (memchr(buf, '\n', have))
            break;
    }
    buf[have] = '\0';
    return (ssize_t)have;
}

static void on_term(int sig)
{
    (void)!write(STDERR_FILENO, "launcher-test: a handler of the device model ran\n", 49);
    _exit(98);
}

/*
 * Runs body in a child that creates the launcher, confines itself and
 * then calls body; returns the child's wait status.
 */
static bool second_sock;       /* the next run_confined_max's launcher has one */

static int run_confined_max(const char *const *argv, int (*body)(struct ferry_launcher *l),
                            unsigned max_live)
{
    pid_t pid;
    int st;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        /* What a device model typically has: SIGPIPE ignored, a handler, a blocked signal. */
        sigset_t set;
        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, on_term);
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        sigprocmask(SIG_BLOCK, &set, NULL);
        struct ferry_sandbox_config sbx = confined();
        struct ferry_launcher_config lc = { .argv = argv, .sandbox = &sbx, .log = log_stderr,
                                            .max_live = max_live,
                                            .second_sock = second_sock };
        struct ferry_launcher *l;
        int rc = sandbox_launcher_create(&lc, &l);
        if (rc) {
            fprintf(stderr, "launcher-test: create: %s\n", strerror(-rc));
            sandbox_exit(10);
        }
        rc = sandbox_enter(&sbx);
        if (rc) {
            fprintf(stderr, "launcher-test: sandbox: %s\n", strerror(-rc));
            sandbox_exit(11);
        }
        rc = body(l);
        sandbox_launcher_destroy(l);
        sandbox_exit(rc);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static int run_confined(const char *const *argv, int (*body)(struct ferry_launcher *l))
{
    return run_confined_max(argv, body, 0);
}

static int run_limited(const char *const *argv, int (*body)(struct ferry_launcher *l))
{
    return run_confined_max(argv, body, 1);
}

static void assert_exit0(int st)
{
    ck_assert_msg(!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS),
                  "the confined process was killed by its filter (see the log)");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status 0x%x", st);
}

static int echo_body(struct ferry_launcher *l)
{
    struct passwd *pw = test_user()[0] ? getpwnam("ferry") : NULL;
    char want[128], line[256];

    for (int round = 0; round < 2; round++) {
        struct ferry_launcher_instance in;
        int rc = sandbox_launcher_start(l, &in);
        int sock = in.sock;
        pid_t pid = in.pid;
        if (rc) {
            fprintf(stderr, "launcher-test: start: %s\n", strerror(-rc));
            return 20;
        }
        if (write(sock, "ping\n", 5) != 5 || read_line(sock, line, sizeof(line)) <= 0) {
            fprintf(stderr, "launcher-test: no answer from the program\n");
            return 21;
        }
        snprintf(want, sizeof(want), "got ping uid=%u SigBlk:%016xSigIgn:%016x\n",
                 pw ? (unsigned)pw->pw_uid : (unsigned)getuid(), 0, 0);
        if (strcmp(line, want)) {
            fprintf(stderr, "launcher-test: program said '%s', not '%s'\n", line, want);
            return 22;
        }
        fprintf(stderr, "launcher-test: round %d: pid %d said %s", round, (int)pid, line);
        close(sock);
        close(in.errfd);
        /* It has answered and exits on its own: stop reaps it and tells how it ended. */
        int ws = -1;
        rc = sandbox_launcher_stop(l, pid, &ws);
        if (rc || !((WIFEXITED(ws) && WEXITSTATUS(ws) == 0) ||
                    (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))) {
            fprintf(stderr, "launcher-test: stop: %s, status 0x%x\n", strerror(-rc), ws);
            return 23;
        }
        if (sandbox_launcher_stop(l, pid, &ws) != -ESRCH)
            return 24;      /* a second stop of the same pid */
    }
    return 0;
}

START_TEST(test_restart_shell)
{
    static const char *const argv[] = {
        "/bin/sh", "-c",
        "read x <&{fd}; echo \"got $x uid=$(id -u) $(grep -E '^Sig(Blk|Ign)' /proc/self/status"
        " | tr -d ' \\t\\n')\" >&{fd}", NULL,
    };
    assert_exit0(run_confined(argv, echo_body));
}
END_TEST

static int enoent_body(struct ferry_launcher *l)
{
    struct ferry_launcher_instance in;
    int rc = sandbox_launcher_start(l, &in);
    return rc == -ENOENT ? 0 : 30;
}

/* The program's stderr reaches ferry-dm; stop kills one that still runs. */
static int stderr_body(struct ferry_launcher *l)
{
    struct ferry_launcher_instance in;
    char line[128];
    int ws = -1;

    if (sandbox_launcher_start(l, &in))
        return 60;
    if (read_line(in.errfd, line, sizeof(line)) <= 0 || strcmp(line, "hello from stderr\n")) {
        fprintf(stderr, "launcher-test: stderr said '%s'\n", line);
        return 61;
    }
    if (sandbox_launcher_stop(l, in.pid, &ws) || !WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
        fprintf(stderr, "launcher-test: stop status 0x%x\n", ws);
        return 62;
    }
    /* Killed: its socket hangs up. */
    char c;
    if (read(in.sock, &c, 1) != 0)
        return 63;
    close(in.sock);
    close(in.errfd);
    return 0;
}

/*
 * A successor ferry-dm's launcher: forked while its stderr is a pipe whose
 * reader then goes away.  Its log line there must not kill it (SIGPIPE);
 * sandbox_launcher_log_to gives it a log that works, and its last line
 * (why it exits) arrives there.
 */
static int dead_log_child(void)
{
    static const char *const argv[] = { "/bin/sh", "-c", "read x <&{fd}", NULL };
    struct ferry_sandbox_config sbx = confined();
    struct ferry_launcher_config lc = { .argv = argv, .sandbox = &sbx, .log = log_stderr };
    struct ferry_launcher_instance in;
    struct ferry_launcher *l;
    int dead[2], live[2], ws;
    char all[4096];
    size_t have = 0;
    ssize_t n;

    signal(SIGPIPE, SIG_IGN);       /* as ferry-dm; the helper resets its signals */
    int saved = dup(STDERR_FILENO);
    if (saved < 0 || pipe(dead) < 0 || pipe(live) < 0)
        return 70;
    close(dead[0]);                 /* the predecessor that read it has exited */
    dup2(dead[1], STDERR_FILENO);
    close(dead[1]);
    int rc = sandbox_launcher_create(&lc, &l);
    dup2(saved, STDERR_FILENO);
    if (rc)
        return 71;
    /* The helper logged 'confined' into the dead pipe before it served this. */
    if (sandbox_launcher_start(l, &in)) {
        fprintf(stderr, "launcher-test: the helper died of its log line into a closed pipe\n");
        return 72;
    }
    if (sandbox_launcher_stop(l, in.pid, &ws))
        return 73;
    close(in.sock);
    close(in.errfd);
    if (sandbox_launcher_log_to(l, live[1]))
        return 74;
    close(live[1]);
    sandbox_launcher_destroy(l);    /* it logs why it exits, then exits: EOF */
    while (have < sizeof(all) - 1 && (n = read(live[0], all + have, sizeof(all) - 1 - have)) > 0)
        have += (size_t)n;
    all[have] = '\0';
    if (!strstr(all, "its ferry-dm hung up; exiting")) {
        fprintf(stderr, "launcher-test: the passed log got '%s'\n", all);
        return 75;
    }
    return 0;
}

START_TEST(test_log_to_after_dead_pipe)
{
    int st;

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(dead_log_child());
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    assert_exit0(st);
}
END_TEST

START_TEST(test_stderr_and_stop)
{
    static const char *const argv[] = {
        "/bin/sh", "-c", "echo hello from stderr >&2; read x <&{fd}", NULL,
    };
    assert_exit0(run_confined(argv, stderr_body));
}
END_TEST

/* At most max_live (1) alive: a second start waits until the first has gone. */
static int limit_body(struct ferry_launcher *l)
{
    struct ferry_launcher_instance a, b;
    int rc = sandbox_launcher_start(l, &a);

    if (rc)
        return 50;
    rc = sandbox_launcher_start(l, &b);
    if (rc != -EAGAIN) {
        fprintf(stderr, "launcher-test: second instance: %s, not EAGAIN\n", strerror(-rc));
        return 51;
    }
    close(a.sock);  /* the shell reads EOF and exits */
    close(a.errfd);
    for (int i = 0; i < 10000; i++) {
        rc = sandbox_launcher_start(l, &b);
        if (rc != -EAGAIN)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    if (rc)
        return 52;
    close(b.sock);
    close(b.errfd);
    return 0;
}

/* The second socket: a question on fd 3, the answer on fd 4, twice (two instances). */
static int second_body(struct ferry_launcher *l)
{
    for (int round = 0; round < 2; round++) {
        struct ferry_launcher_instance in;
        char line[64];
        int ws;

        if (sandbox_launcher_start(l, &in))
            return 70;
        if (in.sock2 < 0)
            return 71;
        if (write(in.sock, "ping\n", 5) != 5 || read_line(in.sock2, line, sizeof(line)) <= 0 ||
            strcmp(line, "two ping\n")) {
            fprintf(stderr, "launcher-test: fd 4 said '%s'\n", line);
            return 72;
        }
        if (sandbox_launcher_stop(l, in.pid, &ws))
            return 73;
        close(in.sock);
        close(in.sock2);
        close(in.errfd);
    }
    return 0;
}

START_TEST(test_second_socket)
{
    static const char *const argv[] = {
        "/bin/sh", "-c", "read x <&{fd}; echo \"two $x\" >&{fd2}; read y <&{fd}", NULL,
    };
    second_sock = true;
    assert_exit0(run_confined(argv, second_body));
    second_sock = false;
}
END_TEST

START_TEST(test_live_limit)
{
    static const char *const argv[] = { "/bin/sh", "-c", "read x <&{fd}", NULL };
    assert_exit0(run_limited(argv, limit_body));
}
END_TEST

START_TEST(test_exec_failure_reported)
{
    static const char *const argv[] = { "/nonexistent/ferry-qemu", NULL };
    assert_exit0(run_confined(argv, enoent_body));
}
END_TEST

/*
 * A replace of ferry-dm (sandbox_launcher_keep, _adopt): a process makes a
 * launcher, starts an instance, hands the launcher's socket and the
 * instance's to its parent and exits without a teardown.  Kept, the
 * helper and the instance live on, and the parent stops the instance and
 * starts another through the adopted launcher; not kept, the instance dies
 * with the process (its socket hangs up).
 */
static void handover_child(int chan, bool keep)
{
    static const char *const argv[] = { "/bin/sh", "-c", "read x <&{fd}", NULL };
    struct ferry_launcher_config cfg = { .argv = argv };
    struct ferry_launcher *l;
    struct ferry_launcher_instance in;

    if (sandbox_launcher_create(&cfg, &l) || sandbox_launcher_start(l, &in))
        _exit(60);
    if (keep && sandbox_launcher_keep(l, true))
        _exit(61);
    int fds[2] = { sandbox_launcher_fd(l), in.sock };
    char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
    int32_t pid = in.pid;
    struct iovec iov = { &pid, sizeof(pid) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    _exit(sendmsg(chan, &mh, 0) == sizeof(pid) ? 0 : 62);
}

static void handover_check(bool keep)
{
    int sp[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(sp[0]);
        handover_child(sp[1], keep);
    }
    close(sp[1]);
    int st = -1;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "handover child: status 0x%x", st);

    int32_t pid = 0;
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = { &pid, sizeof(pid) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ck_assert_int_eq(recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC), sizeof(pid));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    ck_assert_ptr_nonnull(c);
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    close(sp[0]);

    /* The instance: its socket hangs up when it dies (within ten seconds). */
    struct pollfd p = { .fd = fds[1], .events = POLLIN };
    int k = poll(&p, 1, keep ? 200 : 10000);
    if (!keep) {
        ck_assert_msg(k == 1 && (p.revents & (POLLHUP | POLLIN)),
                      "an instance of a launcher not kept outlived its ferry-dm");
        close(fds[0]);
        close(fds[1]);
        return;
    }
    ck_assert_msg(k == 0, "a kept launcher's instance died with its ferry-dm");
    ck_assert_int_eq(kill(pid, 0), 0);

    struct ferry_launcher *l;
    ck_assert_int_eq(sandbox_launcher_adopt(fds[0], false, NULL, NULL, &l), 0);
    st = 0;
    ck_assert_int_eq(sandbox_launcher_stop(l, pid, &st), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "stop status 0x%x", st);
    struct ferry_launcher_instance in;
    ck_assert_int_eq(sandbox_launcher_start(l, &in), 0);
    ck_assert_int_eq(sandbox_launcher_stop(l, in.pid, NULL), 0);
    close(in.sock);
    close(in.errfd);
    close(fds[1]);
    sandbox_launcher_destroy(l);     /* adopted: closes, does not wait for a non-child */
}

START_TEST(test_keep_and_adopt)
{
    handover_check(true);
}
END_TEST

START_TEST(test_not_kept_dies)
{
    handover_check(false);
}
END_TEST

/* mpqemu (QEMU 7.2): header {u32 cmd; u32 pad; u64 size}, PCI_CFGREAD = 3, RET = 1. */
struct mpqemu_hdr {
    uint32_t cmd;
    uint32_t pad;
    uint64_t size;
};

static int qemu_body(struct ferry_launcher *l)
{
    struct {
        struct mpqemu_hdr h;
        uint32_t addr, val;
        int32_t len;
    } __attribute__((packed)) req = { { 3, 0, 12 }, 0, 0, 4 };
    struct {
        struct mpqemu_hdr h;
        uint64_t ret;
    } rep;
    struct ferry_launcher_instance in;
    size_t have = 0;
    int rc = sandbox_launcher_start(l, &in);
    int sock = in.sock;

    if (rc) {
        fprintf(stderr, "launcher-test: start qemu: %s\n", strerror(-rc));
        return 40;
    }
    if (write(sock, &req, sizeof(req)) != (ssize_t)sizeof(req))
        return 41;
    while (have < sizeof(rep)) {
        struct pollfd p = { .fd = sock, .events = POLLIN };
        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
            return 42;
        ssize_t n = read(sock, (char *)&rep + have, sizeof(rep) - have);
        if (n <= 0)
            return 43;
        have += (size_t)n;
    }
    fprintf(stderr, "launcher-test: qemu x-remote: cmd %u size %llu vendor/device 0x%08llx\n",
            rep.h.cmd, (unsigned long long)rep.h.size, (unsigned long long)rep.ret);
    int ws;
    if (sandbox_launcher_stop(l, in.pid, &ws))
        return 45;
    close(sock);
    close(in.errfd);
    return rep.h.cmd == 1 && rep.h.size == 8 && rep.ret == 0x813910ec ? 0 : 44;
}

START_TEST(test_restart_qemu_remote)
{
    static const char *const argv[] = {
        QEMU, "-machine", "x-remote", "-nodefaults", "-nographic", "-display", "none",
        "-device", "rtl8139,id=nic0,romfile=",
        "-object", "x-remote-object,id=robj0,devid=nic0,fd={fd}", NULL,
    };
    assert_exit0(run_confined(argv, qemu_body));
}
END_TEST

int main(int argc, char **argv)
{
    bool qemu = argc > 1 && !strcmp(argv[1], "qemu");
    Suite *s = suite_create("launcher");
    TCase *tc = tcase_create(qemu ? "launcher-qemu" : "launcher");

    if (argc > 2 || (argc == 2 && !qemu)) {
        fprintf(stderr, "usage: %s [qemu]\n", argv[0]);
        return 2;
    }
    if (qemu && access(QEMU, X_OK) != 0) {
        printf("SKIP: %s is not installed (Debian package qemu-system-x86)\n", QEMU);
        return 77;
    }
    tcase_set_timeout(tc, 180);
    if (qemu) {
        tcase_add_test(tc, test_restart_qemu_remote);
    } else {
        tcase_add_test(tc, test_restart_shell);
        tcase_add_test(tc, test_exec_failure_reported);
        tcase_add_test(tc, test_live_limit);
        tcase_add_test(tc, test_stderr_and_stop);
        tcase_add_test(tc, test_keep_and_adopt);
        tcase_add_test(tc, test_not_kept_dies);
        tcase_add_test(tc, test_second_socket);
        tcase_add_test(tc, test_log_to_after_dead_pipe);
    }
    suite_add_tcase(s, tc);
    return ferry_check_run(s, CK_FORK_GETENV);
}
