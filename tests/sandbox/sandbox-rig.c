// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/sandbox/sandbox-rig.h"

#include "common/log-glib.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define RIG_START_TRIES 10000   /* 1 ms apart */

const char *poke_violation_syscall(enum poke_violation v)
{
    switch (v) {
    case POKE_OPEN_SHADOW: return "openat";
    case POKE_EXECVE: return "execve";
    case POKE_SOCKET_INET: return "socket";
    case POKE_PTRACE: return "ptrace";
    case POKE_MMAP_EXEC: return "mmap";
    case POKE_THREAD_SOCKET: return "socket";
    case POKE_SIGACTION_SIGSYS: return "rt_sigaction";
    case POKE_SIGACTION_WIDE: return "rt_sigaction";
    case POKE_FCNTL_SETOWN: return "fcntl";
    default: return "?";
    }
}

/* ------------------------------------------------------------------ */
/* The poke device (child process)                                     */

struct poke {
    uint32_t reg[64];
    int32_t result;
};

static void *thread_socket(void *arg)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *thread_nothing(void *arg)
{
    return arg;
}

static int32_t poke_thread(void *(*fn)(void *))
{
    pthread_t th;
    void *ret;
    int rc = pthread_create(&th, NULL, fn, (void *)(uintptr_t)7);

    if (rc)
        return -rc;
    rc = pthread_join(th, &ret);
    if (rc)
        return -rc;
    return (int32_t)(uintptr_t)ret;
}

static int32_t poke_try(uint64_t what)
{
    int fd;
    void *p;

    switch (what) {
    case POKE_OPEN_SHADOW:
        fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        close(fd);
        return 0;
    case POKE_EXECVE: {
        /* A path that does not exist: in log mode the call runs and fails. */
        char *argv[] = { "ferry-poke", NULL };
        execve("/nonexistent/ferry-poke", argv, argv + 1);
        return -errno;
    }
    case POKE_SOCKET_INET:
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        close(fd);
        return 0;
    case POKE_PTRACE:
        return ptrace(PTRACE_ATTACH, getppid(), 0, 0) < 0 ? -errno : 0;
    case POKE_MMAP_EXEC:
        p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -errno;
        munmap(p, 4096);
        return 0;
    case POKE_THREAD_SOCKET:
        return poke_thread(thread_socket);
    case POKE_THREAD_OK:
        return poke_thread(thread_nothing);
    case POKE_FCNTL_SETOWN: {
        /* Owner of a fresh pipe's read end: the parent, which nothing will signal. */
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) < 0)
            return -errno;
        int rc = fcntl(pp[0], F_SETOWN, getppid()) < 0 ? -errno : 0;
        close(pp[0]);
        close(pp[1]);
        return rc;
    }
    case POKE_SIGACTION_SIGSYS:
    case POKE_SIGACTION_WIDE: {
        /* Only reads the old action: harmless even where it is allowed. */
        uint64_t sig = what == POKE_SIGACTION_WIDE ? (1ull << 32) | SIGSYS : SIGSYS;
        uint64_t old[4];
        return syscall(SYS_rt_sigaction, sig, NULL, old, 8) < 0 ? -errno : 0;
    }
    default:
        return -EINVAL;
    }
}

static void poke_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct poke *p = opaque;

    if (req->type != IOREQ_TYPE_PIO)
        return;
    if (req->addr >= POKE_PORT_REG && req->addr < POKE_PORT_REG + 64) {
        if (req->dir == IOREQ_WRITE)
            p->reg[req->addr - POKE_PORT_REG] = (uint32_t)req->data;
        else
            req->data = p->reg[req->addr - POKE_PORT_REG];
    } else if (req->addr == POKE_PORT_VIOLATE && req->dir == IOREQ_WRITE) {
        p->result = poke_try(req->data);
    } else if (req->addr == POKE_PORT_RESULT && req->dir == IOREQ_READ) {
        req->data = (uint32_t)p->result;
    } else if (req->addr == POKE_PORT_CONFINED && req->dir == IOREQ_READ) {
        req->data = sandbox_active();
    }
}

static void child_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    fprintf(stderr, "poke-dm %s: %s\n", names[level <= FERRY_LOG_DEBUG ? level : 3], msg);
}

static const struct ioreq_server_ops poke_ops = { .log = child_log, .handle = poke_handle };

/* Exit without atexit handlers or sanitizer leak checks (they need more syscalls). */
static _Noreturn void child_exit(int code)
{
    sandbox_exit(code);
}

static _Noreturn void poke_main(int fd, const struct ferry_sandbox_config *sbx,
                                const struct sandbox_rig_opts *o)
{
    struct poke p = { .result = 0 };
    struct ioreq_server_config cfg = { .name = "poke-dm", .ops = &poke_ops, .opaque = &p };
    struct ioreq_server *srv;
    int rc;

    const char *pre_user = o ? o->pre_user : NULL;
    if (pre_user) {
        struct passwd *pw = getpwnam(pre_user);
        /* CapabilityBoundingSet= (empty), then User= */
        for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
        if (!pw || setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
            fprintf(stderr, "poke-dm: cannot become %s: %s\n", pre_user, strerror(errno));
            child_exit(6);
        }
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);     /* as after systemd's execve */
    }
    if (o && o->deny_unshare) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0) ||
            seccomp_load(ctx)) {
            fprintf(stderr, "poke-dm: cannot forbid unshare\n");
            child_exit(7);
        }
        seccomp_release(ctx);
    }

    /* Start-up order of ferry-dm: open and register, confine, then serve. */
    rc = ioreq_server_create(fd, &cfg, &srv);
    if (rc) {
        fprintf(stderr, "poke-dm: register: %s\n", strerror(-rc));
        child_exit(2);
    }
    if (sbx) {
        struct ferry_sandbox_config c = *sbx;
        if (!c.log)
            c.log = child_log;
        rc = sandbox_enter(&c);
        if (rc) {
            fprintf(stderr, "poke-dm: sandbox: %s\n", strerror(-rc));
            child_exit(3);
        }
    }
    rc = ioreq_server_claim_range(srv, IOREQ_RANGE_PORT, POKE_PORT_REG, POKE_PORT_END, 0);
    if (!rc)
        rc = ioreq_server_enable(srv, true);
    if (rc) {
        fprintf(stderr, "poke-dm: claim/enable: %s\n", strerror(-rc));
        child_exit(4);
    }
    /* ferry-dm's logging path (glib structured logging) works confined. */
    ferry_log_init("poke-dm", 3);
    ferry_log(FERRY_LOG_INFO, "0", "serving ports 0x%x-0x%x", POKE_PORT_REG, POKE_PORT_END);
    ferry_log(FERRY_LOG_WARNING, "0", "confined=%s", sbx ? "yes" : "no");
    struct pollfd pfd[2] = {
        { .fd = ioreq_server_vcpu_fd(srv, 0), .events = POLLIN },
        { .fd = ioreq_server_control_fd(srv), .events = POLLIN },
    };
    for (;;) {
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            child_exit(5);
        if (pfd[0].revents)
            ioreq_server_dispatch_vcpu(srv, 0);
        if (pfd[1].revents && ioreq_server_check_control(srv) < 0)
            child_exit(0);
    }
}

/* ------------------------------------------------------------------ */
/* The router side (parent)                                            */

static void *control_thread(void *arg)
{
    struct sandbox_rig *t = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(t->r), .events = POLLIN };

    while (!atomic_load(&t->stop))
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(t->r);
    return NULL;
}

static void router_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-router: %s\n", msg);
}

static void router_server_gone(void *opaque, const char *name, const char *why)
{
    struct sandbox_rig *t = opaque;

    snprintf(t->gone_why, sizeof(t->gone_why), "%s: %s", name, why);
    atomic_fetch_add(&t->gone, 1);
}

static const struct ioreq_router_ops router_ops = {
    .log = router_log, .server_gone = router_server_gone,
};

int sandbox_rig_io(struct sandbox_rig *t, uint16_t port, bool write, uint32_t *data)
{
    return sandbox_rig_io_size(t, port, 4, write, data);
}

int sandbox_rig_io_size(struct sandbox_rig *t, uint16_t port, unsigned size, bool write,
                        uint32_t *data)
{
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = port, .size = size,
                    .dir = write ? IOREQ_WRITE : IOREQ_READ, .data = write ? *data : 0,
                    .count = 1 };
    int rc = ioreq_router_send(t->r, 0, &req);

    if (!write)
        *data = (uint32_t)req.data;
    return rc;
}

#define RIG_ARGS_MAX 32

int sandbox_rig_start_program(struct sandbox_rig *t, const char *const *argv,
                              uint16_t probe_port, unsigned size)
{
    struct ioreq_router_config rcfg = { .nr_vcpus = 1, .timeout_ms = 20000, .ops = &router_ops };
    const char *args[RIG_ARGS_MAX + 2];
    char fdarg[32];
    unsigned n = 0;
    int sv[2], rc;

    memset(t, 0, sizeof(*t));
    t->log_fd = -1;
    rcfg.opaque = t;
    while (argv[n] && n < RIG_ARGS_MAX) {
        args[n] = argv[n];
        n++;
    }
    if (argv[n])
        return -E2BIG;
    rc = ioreq_router_create(&rcfg, &t->r);
    if (rc)
        return rc;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    rc = ioreq_router_add_connection(t->r, sv[0]);
    if (rc) {
        close(sv[1]);
        return rc;
    }
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    args[n++] = fdarg;
    args[n] = NULL;
    fflush(NULL);
    t->child = fork();
    if (t->child == 0) {
        fcntl(sv[1], F_SETFD, 0);
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    close(sv[1]);
    if (t->child < 0)
        return -errno;
    if (pthread_create(&t->thread, NULL, control_thread, t))
        return -EAGAIN;
    t->thread_running = true;
    for (int i = 0; i < RIG_START_TRIES; i++) {
        uint32_t v = 0;
        int st;
        if (sandbox_rig_io_size(t, probe_port, size, false, &v) == IOREQ_SENT)
            return 0;
        if (waitpid(t->child, &st, WNOHANG) == t->child) {
            t->child = -1;
            return -ECHILD;
        }
        usleep(1000);
    }
    return -ETIMEDOUT;
}

int sandbox_rig_start(struct sandbox_rig *t, const struct ferry_sandbox_config *cfg)
{
    return sandbox_rig_start_opts(t, cfg, NULL);
}

int sandbox_rig_start_opts(struct sandbox_rig *t, const struct ferry_sandbox_config *cfg,
                           const struct sandbox_rig_opts *opts)
{
    struct ioreq_router_config rcfg = { .nr_vcpus = 1, .timeout_ms = 20000, .ops = &router_ops };
    int sv[2], lp[2], rc;

    memset(t, 0, sizeof(*t));
    t->log_fd = -1;
    rcfg.opaque = t;
    rc = ioreq_router_create(&rcfg, &t->r);
    if (rc)
        return rc;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (pipe2(lp, O_CLOEXEC) < 0) {
        rc = -errno;
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    rc = ioreq_router_add_connection(t->r, sv[0]);
    if (rc) {
        close(sv[1]);
        return rc;
    }
    fflush(NULL);
    t->child = fork();
    if (t->child == 0) {
        close(lp[0]);
        dup2(lp[1], STDERR_FILENO);
        poke_main(sv[1], cfg, opts);
    }
    close(sv[1]);
    close(lp[1]);
    t->log_fd = lp[0];
    if (t->child < 0)
        return -errno;
    if (pthread_create(&t->thread, NULL, control_thread, t))
        return -EAGAIN;
    t->thread_running = true;
    for (int i = 0; i < RIG_START_TRIES; i++) {
        uint32_t v = 0;
        int st;
        if (sandbox_rig_io(t, POKE_PORT_REG, false, &v) == IOREQ_SENT)
            return 0;
        if (waitpid(t->child, &st, WNOHANG) == t->child) {
            t->child = -1;
            return -ECHILD;
        }
        usleep(1000);
    }
    return -ETIMEDOUT;
}

int sandbox_rig_wait(struct sandbox_rig *t)
{
    int st = -1;

    if (t->child > 0 && waitpid(t->child, &st, 0) == t->child)
        t->child = -1;
    return st;
}

size_t sandbox_rig_read_log(struct sandbox_rig *t, char *buf, size_t len)
{
    size_t have = 0;

    while (t->log_fd >= 0 && have + 1 < len) {
        ssize_t n = read(t->log_fd, buf + have, len - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return have;
}

void sandbox_rig_stop(struct sandbox_rig *t)
{
    if (t->child > 0) {
        kill(t->child, SIGKILL);
        waitpid(t->child, NULL, 0);
        t->child = -1;
    }
    if (t->r) {
        atomic_store(&t->stop, true);
        if (t->thread_running)
            pthread_join(t->thread, NULL);
        t->thread_running = false;
        ioreq_router_destroy(t->r);
        t->r = NULL;
    }
    if (t->log_fd >= 0)
        close(t->log_fd);
    t->log_fd = -1;
}
