// SPDX-License-Identifier: GPL-2.0-or-later
/* The pre-forked launcher (see launcher.h for why and how). */
#include "devmodel/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAUNCHER_REQ_MAGIC 0x4c465246u      /* "FRFL" */
#define LAUNCHER_REPLY_TIMEOUT_MS 10000
#define LAUNCHER_HELPER_FD 3
#define LAUNCHER_ARG_MAX 4096        /* bytes per argument */

struct ferry_launcher {
    int sock;
    pid_t helper;
    ferry_log_fn log;
    void *opaque;
};

struct launcher_msg {
    uint32_t magic;
    int32_t status;         /* reply: 0 or -errno */
    int32_t pid;            /* reply: the program's pid */
};

#define llog(l, level, ...) ferry_logf((l)->log, (l)->opaque, level, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Helper process                                                      */

static int send_reply(int sock, int status, pid_t pid, int fd)
{
    struct launcher_msg m = { LAUNCHER_REQ_MAGIC, status, pid };
    struct iovec iov = { &m, sizeof(m) };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    memset(&u, 0, sizeof(u));
    if (fd >= 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -errno;
}

/* The program's argv with every "{fd}" replaced; built once in the helper. */
static char **build_argv(const struct ferry_launcher_config *cfg)
{
    size_t n = 0;

    while (cfg->argv[n])
        n++;
    char **argv = calloc(n + 1, sizeof(*argv));
    for (size_t i = 0; argv && i < n; i++) {
        const char *a = cfg->argv[i];
        size_t o = 0;
        argv[i] = malloc(strlen(a) + 1);    /* "{fd}" -> "3" only shortens */
        if (!argv[i])
            return NULL;
        while (*a) {
            if (!strncmp(a, "{fd}", 4)) {
                argv[i][o++] = '0' + FERRY_LAUNCHER_FD;
                a += 4;
            } else {
                argv[i][o++] = *a++;
            }
        }
        argv[i][o] = '\0';
    }
    return argv;
}

/* The child between fork and exec: fd 3 = its socket end. */
static _Noreturn void exec_program(char **argv, int fd, int err_fd)
{
    extern char **environ;

    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (fd != FERRY_LAUNCHER_FD) {
        if (dup2(fd, FERRY_LAUNCHER_FD) < 0)
            goto fail;
    } else if (fcntl(fd, F_SETFD, 0) < 0) {
        goto fail;
    }
    execve(argv[0], argv, environ);
fail:;
    int e = errno;
    (void)!write(err_fd, &e, sizeof(e));
    _exit(127);
}

/* One request: 0 to go on, <0 when ferry-dm went away. */
static int helper_serve_one(const struct ferry_launcher_config *cfg, char **argv, int sock,
                            unsigned *live)
{
    struct launcher_msg req;
    ssize_t n = recv(sock, &req, sizeof(req), 0);
    int sp[2], ep[2], e = 0;
    pid_t pid;

    if (n < 0 && errno == EINTR)
        return 0;
    if (n <= 0)
        return -EPIPE;
    if ((size_t)n != sizeof(req) || req.magic != LAUNCHER_REQ_MAGIC)
        return send_reply(sock, -EBADMSG, 0, -1) ? -EPIPE : 0;
    while (*live && waitpid(-1, NULL, WNOHANG) > 0)
        (*live)--;
    if (*live >= (cfg->max_live ? cfg->max_live : FERRY_LAUNCHER_LIVE_DEFAULT))
        return send_reply(sock, -EAGAIN, 0, -1) ? -EPIPE : 0;
    int type = cfg->sock_type ? cfg->sock_type : SOCK_STREAM;
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) < 0)
        return send_reply(sock, -errno, 0, -1) ? -EPIPE : 0;
    /* A pipe that closes on a successful exec carries an exec failure back. */
    if (pipe2(ep, O_CLOEXEC) < 0) {
        e = -errno;
        close(sp[0]);
        close(sp[1]);
        return send_reply(sock, e, 0, -1) ? -EPIPE : 0;
    }
    pid = fork();
    if (pid == 0) {
        close(sock);
        close(sp[0]);
        close(ep[0]);
        exec_program(argv, sp[1], ep[1]);
    }
    e = pid < 0 ? -errno : 0;
    if (pid > 0)
        (*live)++;
    close(sp[1]);
    close(ep[1]);
    if (pid > 0) {
        int child_errno;
        ssize_t k;
        while ((k = read(ep[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
            ;
        if (k == sizeof(child_errno))
            e = -child_errno;
    }
    close(ep[0]);
    int rc = send_reply(sock, e, e ? 0 : pid, e ? -1 : sp[0]);
    close(sp[0]);
    return rc ? -EPIPE : 0;
}

/*
 * ferry-dm's signal handlers (libevent's, glib's, a test framework's) must
 * not run in the helper or reach the programs: every signal back to its
 * default action and unblocked.  Children are reaped before each request.
 */
static void helper_reset_signals(void)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigset_t all;

    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);     /* EINVAL for the few reserved ones */
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
}

static _Noreturn void helper_main(const struct ferry_launcher_config *cfg, int sock)
{
    helper_reset_signals();
    /* Keep stdio and the request socket; ferry-dm's other fds are not ours. */
    if (sock != LAUNCHER_HELPER_FD) {
        if (dup2(sock, LAUNCHER_HELPER_FD) < 0)
            _exit(1);
        sock = LAUNCHER_HELPER_FD;
    }
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    if (syscall(SYS_close_range, LAUNCHER_HELPER_FD + 1, ~0u, 0) < 0)
        for (int fd = LAUNCHER_HELPER_FD + 1; fd < 65536; fd++)
            close(fd);
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    prctl(PR_SET_NAME, "ferry-launcher", 0, 0, 0);
    if (cfg->sandbox) {
        struct ferry_sandbox_config s = *cfg->sandbox;
        s.mode = FERRY_SECCOMP_OFF;
        s.namespaces = false;   /* the program needs the host's files (QEMU's) */
        s.lists = NULL;
        s.nr_lists = 0;
        if (ferry_sandbox_enter(&s))
            _exit(2);
    }
    char **argv = build_argv(cfg);
    if (!argv)
        _exit(3);
    unsigned live = 0;
    while (helper_serve_one(cfg, argv, sock, &live) == 0)
        ;
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* ferry-dm side                                                       */

int ferry_launcher_create(const struct ferry_launcher_config *cfg, struct ferry_launcher **out)
{
    struct ferry_launcher *l;
    size_t n = 0;
    int sp[2];

    if (!cfg || !cfg->argv || !cfg->argv[0] || cfg->argv[0][0] != '/')
        return -EINVAL;
    while (cfg->argv[n])
        if (++n > FERRY_LAUNCHER_ARGS_MAX || strlen(cfg->argv[n - 1]) >= LAUNCHER_ARG_MAX)
            return -E2BIG;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->log = cfg->log;
    l->opaque = cfg->opaque;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        int rc = -errno;
        free(l);
        return rc;
    }
    l->helper = fork();
    if (l->helper == 0) {
        close(sp[0]);
        helper_main(cfg, sp[1]);
    }
    close(sp[1]);
    if (l->helper < 0) {
        int rc = -errno;
        close(sp[0]);
        free(l);
        return rc;
    }
    l->sock = sp[0];
    llog(l, FERRY_LOG_DEBUG, "launcher: helper %d holds %s", (int)l->helper, cfg->argv[0]);
    *out = l;
    return 0;
}

int ferry_launcher_start(struct ferry_launcher *l, int *sock, pid_t *pid)
{
    struct launcher_msg m = { .magic = LAUNCHER_REQ_MAGIC };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = { &m, sizeof(m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf) };
    struct pollfd p = { .fd = l->sock, .events = POLLIN };
    int fd = -1, k;
    ssize_t n;

    if (send(l->sock, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
        return -EPIPE;
    while ((k = poll(&p, 1, LAUNCHER_REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (k <= 0)
        return k == 0 ? -ETIMEDOUT : -errno;
    n = recvmsg(l->sock, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return -EPIPE;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if ((size_t)n != sizeof(m) || m.magic != LAUNCHER_REQ_MAGIC || (mh.msg_flags & MSG_CTRUNC) ||
        (m.status == 0) != (fd >= 0) || m.status > 0) {
        if (fd >= 0)
            close(fd);
        llog(l, FERRY_LOG_ERROR, "launcher: malformed reply from helper %d", (int)l->helper);
        return -EPROTO;
    }
    if (m.status) {
        llog(l, FERRY_LOG_ERROR, "launcher: helper %d cannot start the program: %s",
             (int)l->helper, strerror(-m.status));
        return m.status;
    }
    *sock = fd;
    if (pid)
        *pid = m.pid;
    return 0;
}

void ferry_launcher_destroy(struct ferry_launcher *l)
{
    if (!l)
        return;
    close(l->sock);
    if (l->helper > 0)
        while (waitpid(l->helper, NULL, 0) < 0 && errno == EINTR)
            ;
    free(l);
}
