// SPDX-License-Identifier: GPL-2.0-or-later
/* The pre-forked launcher (see launcher.h for why and how). */
#include "sandbox/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAUNCHER_MAGIC 0x4c465246u          /* "FRFL" */
#define LAUNCHER_REPLY_TIMEOUT_MS 10000
#define LAUNCHER_HELPER_FD 3
#define LAUNCHER_ARG_MAX 4096               /* bytes per argument */
#define LAUNCHER_LIVE_MAX 16                /* cap on max_live */
#define LAUNCHER_FDS_MAX 3                  /* a start's reply: socket, log pipe, second socket */

enum launcher_op {
    LAUNCHER_OP_START = 1,
    LAUNCHER_OP_STOP = 2,
    LAUNCHER_OP_KEEP = 3,   /* pid 1: outlive ferry-dm (no PDEATHSIG), 0: die with it again */
    LAUNCHER_OP_LOG = 4,    /* the fd it carries becomes the helper's stdout and stderr */
};

struct launcher_msg {
    uint32_t magic;
    uint32_t op;
    int32_t status;         /* reply: 0 or -errno */
    int32_t pid;            /* request (stop) and reply (start) */
    int32_t wstatus;        /* reply (stop) */
};

struct ferry_launcher {
    int sock;
    bool second_sock;
    pid_t helper;           /* <= 0: adopted, not our child (never reaped here) */
    bool gone;              /* it hung up: every request fails with -EPIPE */
    char *program;          /* its argv[0], for the logs */
    ferry_log_fn log;
    void *opaque;
};

#define llog(l, level, ...) ferry_logf((l)->log, (l)->opaque, level, __VA_ARGS__)
#define hlog(h, level, ...) ferry_logf((h)->cfg->log, (h)->cfg->opaque, level, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Helper process                                                      */

struct helper {
    const struct ferry_launcher_config *cfg;
    char **argv;
    int sock;
    int nullfd;
    unsigned max_live;
    pid_t live[LAUNCHER_LIVE_MAX];      /* 0: free slot */
};

static int send_reply(int sock, const struct launcher_msg *m, const int *fds, unsigned nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(LAUNCHER_FDS_MAX * sizeof(int))];
    } u;
    struct iovec iov = { (void *)m, sizeof(*m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    memset(&u, 0, sizeof(u));
    if (nfds) {
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -errno;
}

static int reply_status(int sock, uint32_t op, int status)
{
    struct launcher_msg m = { .magic = LAUNCHER_MAGIC, .op = op, .status = status };
    return send_reply(sock, &m, NULL, 0);
}

/* The program's argv with every "{fd}" and "{fd2}" replaced; built once in the helper. */
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
            } else if (!strncmp(a, "{fd2}", 5)) {
                argv[i][o++] = '0' + FERRY_LAUNCHER_FD2;
                a += 5;
            } else {
                argv[i][o++] = *a++;
            }
        }
        argv[i][o] = '\0';
    }
    return argv;
}

/*
 * The child between fork and exec: fd 0 /dev/null, 1 and 2 the log pipe,
 * 3 its socket end (and 4 the second one's, or nothing).  Every other fd of
 * the helper is close-on-exec.  A failed exec reports its errno on err_fd
 * (close-on-exec too, so a successful exec just closes it).
 */
static _Noreturn void exec_program(const struct helper *h, int sock, int sock2, int logw,
                                   int err_fd)
{
    extern char **environ;
    /* Out of the way of 0..4 first (the copies are close-on-exec). */
    int s = fcntl(sock, F_DUPFD_CLOEXEC, 10);
    int s2 = sock2 >= 0 ? fcntl(sock2, F_DUPFD_CLOEXEC, 10) : -1;
    int w = fcntl(logw, F_DUPFD_CLOEXEC, 10);

    if (!h->cfg->outlive)       /* a successor lives on when its starter exits */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    signal(SIGPIPE, SIG_DFL);   /* ignored by the helper only (helper_main) */
    if (s >= 0 && w >= 0 && (sock2 < 0 || s2 >= 0) && dup2(h->nullfd, 0) >= 0 &&
        dup2(w, 1) >= 0 && dup2(w, 2) >= 0 && dup2(s, FERRY_LAUNCHER_FD) >= 0 &&
        (s2 < 0 || dup2(s2, FERRY_LAUNCHER_FD2) >= 0))
        execve(h->argv[0], h->argv, environ);
    int err = errno;
    (void)!write(err_fd, &err, sizeof(err));
    _exit(127);
}

static unsigned live_count(struct helper *h)
{
    unsigned n = 0;

    for (unsigned i = 0; i < h->max_live; i++) {
        siginfo_t si = { 0 };
        if (!h->live[i])
            continue;
        /* An exited but unreaped instance no longer counts; WNOWAIT keeps it for stop. */
        if (waitid(P_PID, (id_t)h->live[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == h->live[i])
            continue;
        n++;
    }
    return n;
}

static int slot_of(struct helper *h, pid_t pid)
{
    for (unsigned i = 0; i < h->max_live; i++)
        if (pid > 0 && h->live[i] == pid)
            return (int)i;
    return -1;
}

static int helper_start(struct helper *h)
{
    int sp[2] = { -1, -1 }, lp[2] = { -1, -1 }, ep[2] = { -1, -1 }, sp2[2] = { -1, -1 };
    int e = 0, slot;
    int type = h->cfg->sock_type ? h->cfg->sock_type : SOCK_STREAM;
    pid_t pid;

    if (live_count(h) >= h->max_live)
        return reply_status(h->sock, LAUNCHER_OP_START, -EAGAIN);
    /* A free slot: empty, or one whose instance has been reaped by a stop. */
    for (slot = 0; slot < (int)h->max_live && h->live[slot]; slot++)
        ;
    if (slot == (int)h->max_live) {
        /* Every slot holds an unreaped dead instance: reap the oldest. */
        slot = 0;
        waitpid(h->live[0], NULL, 0);
        h->live[0] = 0;
    }
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) < 0 ||
        (h->cfg->second_sock && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2) < 0) ||
        pipe2(lp, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        e = -errno;
        goto out;
    }
    pid = fork();
    if (pid == 0)
        exec_program(h, sp[1], sp2[1], lp[1], ep[1]);
    if (pid < 0) {
        e = -errno;
        goto out;
    }
    h->live[slot] = pid;
    close(ep[1]);
    ep[1] = -1;
    int child_errno;
    ssize_t k;
    while ((k = read(ep[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
        ;
    if (k == sizeof(child_errno)) {
        e = -child_errno;
        waitpid(pid, NULL, 0);
        h->live[slot] = 0;
    }
out:;
    struct launcher_msg m = { .magic = LAUNCHER_MAGIC, .op = LAUNCHER_OP_START, .status = e,
                              .pid = e ? 0 : h->live[slot] };
    int fds[LAUNCHER_FDS_MAX] = { sp[0], lp[0], sp2[0] };
    int rc = send_reply(h->sock, &m, fds, e ? 0 : sp2[0] >= 0 ? 3 : 2);
    for (unsigned i = 0; i < 2; i++) {
        if (sp[i] >= 0)
            close(sp[i]);
        if (sp2[i] >= 0)
            close(sp2[i]);
        if (lp[i] >= 0)
            close(lp[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    return rc;
}

static int helper_stop(struct helper *h, pid_t pid)
{
    struct launcher_msg m = { .magic = LAUNCHER_MAGIC, .op = LAUNCHER_OP_STOP, .pid = pid };
    int slot = slot_of(h, pid), st = 0;

    if (slot < 0) {
        m.status = -ESRCH;
    } else {
        kill(pid, SIGKILL);     /* ESRCH when it is already a zombie: fine */
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        h->live[slot] = 0;
        m.wstatus = st;
    }
    return send_reply(h->sock, &m, NULL, 0);
}

/*
 * One request: 0 to go on; otherwise why the helper stops: -ENOTCONN
 * ferry-dm hung up (its normal end), -EPIPE a reply could not be sent,
 * another -errno a failed recvmsg.
 */
static int helper_serve_one(struct helper *h)
{
    struct launcher_msg req;
    union {
        struct cmsghdr c;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = { &req, sizeof(req) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf) };
    int fd = -1, rc;
    ssize_t n = recvmsg(h->sock, &mh, MSG_CMSG_CLOEXEC);

    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENOTCONN;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if ((size_t)n != sizeof(req) || req.magic != LAUNCHER_MAGIC || (mh.msg_flags & MSG_CTRUNC) ||
        (fd >= 0 && req.op != LAUNCHER_OP_LOG)) {
        rc = reply_status(h->sock, 0, -EBADMSG);
    } else {
        switch (req.op) {
        case LAUNCHER_OP_START:
            rc = helper_start(h);
            break;
        case LAUNCHER_OP_STOP:
            rc = helper_stop(h, req.pid);
            break;
        case LAUNCHER_OP_KEEP:
            /* ferry-dm is being replaced: its successor talks to us over this same socket. */
            rc = reply_status(h->sock, req.op,
                              prctl(PR_SET_PDEATHSIG, req.pid ? 0 : SIGKILL, 0, 0, 0) < 0
                                  ? -errno : 0);
            break;
        case LAUNCHER_OP_LOG:
            /* A successor's helper was forked while its stderr was the pipe its predecessor
             * reads (and closes when it exits): the successor's log, passed here (no reply:
             * the successor serves meanwhile). */
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                hlog(h, FERRY_LOG_WARNING, "launcher %d: cannot log to the fd passed: %s",
                     (int)getpid(), fd < 0 ? "none came" : strerror(errno));
            rc = 0;
            break;
        default:
            rc = reply_status(h->sock, req.op, -EOPNOTSUPP);
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    return rc ? -EPIPE : 0;
}

/*
 * ferry-dm's signal handlers (libevent's, glib's, a test framework's) must
 * not run in the helper or reach the programs: every signal back to its
 * default action and unblocked.
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
    struct helper h = { .cfg = cfg };

    helper_reset_signals();
    /* Its stderr may be a pipe nobody reads any more (a successor's helper, forked before its
     * log was handed over): a log line must fail there, not kill it (SIGPIPE). */
    signal(SIGPIPE, SIG_IGN);
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
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    prctl(PR_SET_NAME, "ferry-launcher", 0, 0, 0);
    /* before the user changes: a /dev its user cannot reach must not end the helper */
    h.nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (cfg->sandbox) {
        struct ferry_sandbox_config s = *cfg->sandbox;
        s.mode = FERRY_SECCOMP_OFF;
        s.namespaces = false;   /* the program needs the host's files (QEMU's) */
        s.lists = NULL;
        s.nr_lists = 0;
        int rc = sandbox_enter(&s);
        if (rc) {
            ferry_logf(cfg->log, cfg->opaque, FERRY_LOG_ERROR, "launcher %d of %s: cannot "
                       "confine itself: %s; exiting", (int)getpid(), cfg->argv[0],
                       strerror(-rc));
            _exit(2);
        }
    }
    h.sock = sock;
    h.max_live = cfg->max_live ? cfg->max_live : FERRY_LAUNCHER_LIVE_DEFAULT;
    if (h.max_live > LAUNCHER_LIVE_MAX)
        h.max_live = LAUNCHER_LIVE_MAX;
    h.argv = build_argv(cfg);
    if (!h.argv || h.nullfd < 0) {
        hlog(&h, FERRY_LOG_ERROR, "launcher %d of %s: out of memory or no /dev/null; exiting",
             (int)getpid(), cfg->argv[0]);
        _exit(3);
    }
    int why;
    while ((why = helper_serve_one(&h)) == 0)
        ;
    /* Why a launcher is gone is in the log (x-replace reports only that it is). */
    hlog(&h, why == -ENOTCONN ? FERRY_LOG_DEBUG : FERRY_LOG_ERROR, "launcher %d of %s: %s; "
         "exiting", (int)getpid(), cfg->argv[0], why == -ENOTCONN ? "its ferry-dm hung up" :
         why == -EPIPE ? "cannot reply to its ferry-dm" : strerror(-why));
    _exit(why == -ENOTCONN ? 0 : 4);
}

/* ------------------------------------------------------------------ */
/* ferry-dm side                                                       */

int sandbox_launcher_create(const struct ferry_launcher_config *cfg, struct ferry_launcher **out)
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
    l->second_sock = cfg->second_sock;
    l->program = strdup(cfg->argv[0]);
    if (!l->program || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        int rc = l->program ? -errno : -ENOMEM;
        free(l->program);
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
        free(l->program);
        free(l);
        return rc;
    }
    l->sock = sp[0];
    llog(l, FERRY_LOG_DEBUG, "launcher: helper %d holds %s", (int)l->helper, cfg->argv[0]);
    *out = l;
    return 0;
}

/* The helper is gone: said once, clearly (its own last log line says why). */
static int helper_gone(struct ferry_launcher *l, int err)
{
    if (!l->gone)
        llog(l, FERRY_LOG_ERROR, "launcher: helper %d of %s has exited (%s)", (int)l->helper,
             l->program ? l->program : "a predecessor's program", strerror(-err));
    l->gone = true;
    return -EPIPE;
}

/* One request (with fd send_fd unless -1) and its reply (with up to LAUNCHER_FDS_MAX fds). */
static int call(struct ferry_launcher *l, uint32_t op, pid_t pid, int send_fd,
                struct launcher_msg *rep, int fds[LAUNCHER_FDS_MAX], unsigned *nfds)
{
    struct launcher_msg m = { .magic = LAUNCHER_MAGIC, .op = op, .pid = pid };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } su;
    struct iovec siov = { &m, sizeof(m) };
    struct msghdr smh = { .msg_iov = &siov, .msg_iovlen = 1 };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(LAUNCHER_FDS_MAX * sizeof(int))];
    } u;
    struct iovec iov = { rep, sizeof(*rep) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf) };
    struct pollfd p = { .fd = l->sock, .events = POLLIN };
    int k;
    ssize_t n;

    if (nfds)
        *nfds = 0;
    if (l->gone)
        return -EPIPE;
    if (send_fd >= 0) {
        memset(&su, 0, sizeof(su));
        smh.msg_control = su.buf;
        smh.msg_controllen = sizeof(su.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&smh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &send_fd, sizeof(int));
    }
    while ((n = sendmsg(l->sock, &smh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(m))
        return n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
                   ? helper_gone(l, -errno) : n < 0 ? -errno : -EPROTO;
    if (!rep)
        return 0;       /* a request without a reply (LAUNCHER_OP_LOG) */
    while ((k = poll(&p, 1, LAUNCHER_REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (k <= 0)
        return k == 0 ? -ETIMEDOUT : -errno;
    n = recvmsg(l->sock, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return helper_gone(l, n == 0 ? -ECONNRESET : -errno);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < got; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < LAUNCHER_FDS_MAX)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if ((size_t)n != sizeof(*rep) || rep->magic != LAUNCHER_MAGIC || rep->op != op ||
        (mh.msg_flags & MSG_CTRUNC) || rep->status > 0) {
        for (unsigned i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        llog(l, FERRY_LOG_ERROR, "launcher: malformed reply from helper %d", (int)l->helper);
        return -EPROTO;
    }
    return 0;
}

int sandbox_launcher_start(struct ferry_launcher *l, struct ferry_launcher_instance *inst)
{
    struct launcher_msg rep;
    int fds[LAUNCHER_FDS_MAX];
    unsigned nfds;
    int rc = call(l, LAUNCHER_OP_START, 0, -1, &rep, fds, &nfds);

    if (rc)
        return rc;
    if (rep.status == 0 && (nfds != (l->second_sock ? 3u : 2u) || rep.pid <= 0)) {
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
        llog(l, FERRY_LOG_ERROR, "launcher: helper %d sent %u fds for a start", (int)l->helper,
             nfds);
        return -EPROTO;
    }
    if (rep.status) {
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
        if (rep.status != -EAGAIN)
            llog(l, FERRY_LOG_ERROR, "launcher: helper %d cannot start the program: %s",
                 (int)l->helper, strerror(-rep.status));
        return rep.status;
    }
    inst->sock = fds[0];
    inst->errfd = fds[1];
    inst->sock2 = l->second_sock ? fds[2] : -1;
    inst->pid = rep.pid;
    return 0;
}

int sandbox_launcher_stop(struct ferry_launcher *l, pid_t pid, int *wstatus)
{
    struct launcher_msg rep;
    int fds[LAUNCHER_FDS_MAX];
    unsigned nfds;
    int rc = call(l, LAUNCHER_OP_STOP, pid, -1, &rep, fds, &nfds);

    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    if (rc)
        return rc;
    if (rep.status == 0 && wstatus)
        *wstatus = rep.wstatus;
    return rep.status;
}

int sandbox_launcher_keep(struct ferry_launcher *l, bool keep)
{
    struct launcher_msg rep;
    int fds[LAUNCHER_FDS_MAX];
    unsigned nfds;
    int rc = call(l, LAUNCHER_OP_KEEP, keep ? 1 : 0, -1, &rep, fds, &nfds);

    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    return rc ? rc : rep.status;
}

int sandbox_launcher_log_to(struct ferry_launcher *l, int fd)
{
    /* No reply: the successor serves meanwhile, the helper takes it when it gets to it. */
    return fd < 0 ? -EBADF : call(l, LAUNCHER_OP_LOG, 0, fd, NULL, NULL, NULL);
}

int sandbox_launcher_fd(const struct ferry_launcher *l)
{
    return l->sock;
}

pid_t sandbox_launcher_pid(const struct ferry_launcher *l)
{
    return l->helper;
}

bool sandbox_launcher_gone(const struct ferry_launcher *l)
{
    return l->gone;
}

int sandbox_launcher_adopt(int sock, bool second_sock, ferry_log_fn log, void *opaque,
                           struct ferry_launcher **out)
{
    struct ferry_launcher *l = calloc(1, sizeof(*l));

    if (!l)
        return -ENOMEM;
    l->sock = sock;
    l->second_sock = second_sock;
    l->helper = 0;
    l->log = log;
    l->opaque = opaque;
    *out = l;
    return 0;
}

void sandbox_launcher_abandon(struct ferry_launcher *l)
{
    if (!l)
        return;
    close(l->sock);     /* the helper sees the hang-up and exits; init reaps it */
    free(l->program);
    free(l);
}

void sandbox_launcher_destroy(struct ferry_launcher *l)
{
    if (!l)
        return;
    close(l->sock);
    if (l->helper > 0)
        while (waitpid(l->helper, NULL, 0) < 0 && errno == EINTR)
            ;
    free(l->program);
    free(l);
}
