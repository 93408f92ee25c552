/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU remote engine, process supervision (see qemu-remote.h and
 * qemu-remote-internal.h): QEMU started through the sandbox launcher, its
 * stderr, the link's round trips, liveness (end of stream, reply timeouts,
 * heartbeat), restart with guest RAM and irqfds given again, reaping; and
 * the engine's lifecycle.  The PCI function itself is qemu-remote-pci.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "sandbox/launcher.h"
#include "mpqemu/qemu-remote-internal.h"

const char *mpqemu_remote_state_name(enum mpqemu_remote_state s)
{
    switch (s) {
    case QEMU_REMOTE_STOPPED: return "stopped";
    case QEMU_REMOTE_RUNNING: return "running";
    case QEMU_REMOTE_DOWN: return "down";
    case QEMU_REMOTE_FAILED: return "failed";
    }
    return "?";
}

static void set_state(struct ferry_qemu_remote *r, enum mpqemu_remote_state s)
{
    if (r->state == s)
        return;
    r->state = s;
    if (r->ops && r->ops->state_changed)
        r->ops->state_changed(r->opaque, s);
}

/* ------------------------------------------------------------------ */
/* Remote round trips                                                  */

int mpqemu_remote_call(struct ferry_qemu_remote *r, struct mpqemu_msg *m, bool want_ret, bool empty_ret,
            uint64_t *ret, unsigned timeout_ms)
{
    struct mpqemu_msg reply;
    int rc;

    if (r->sock < 0)
        return -ENOTCONN;
    rc = mpqemu_msg_send(r->sock, m);
    if (rc < 0) {
        qlog(r, FERRY_LOG_WARNING, "send %s failed pid=%d: %s", mpqemu_cmd_name(m->cmd),
             (int)r->pid, strerror(-rc));
        return rc;
    }
    if (!want_ret)
        return 0;
    rc = mpqemu_msg_recv(r->sock, &reply, (int)timeout_ms);
    if (rc < 0) {
        if (rc == -ETIMEDOUT)
            qlog(r, FERRY_LOG_WARNING, "hung: no reply to %s within %u ms pid=%d",
                 mpqemu_cmd_name(m->cmd), timeout_ms, (int)r->pid);
        else
            qlog(r, FERRY_LOG_WARNING, "no reply to %s pid=%d: %s", mpqemu_cmd_name(m->cmd),
                 (int)r->pid, rc == -ECONNRESET ? "connection closed" : strerror(-rc));
        return rc;
    }
    if (reply.cmd != MPQEMU_CMD_RET || (reply.size == 0) != empty_ret) {
        qlog(r, FERRY_LOG_WARNING, "bad reply to %s: %s size=%u", mpqemu_cmd_name(m->cmd),
             mpqemu_cmd_name(reply.cmd), reply.size);
        return -EBADMSG;
    }
    if (ret)
        *ret = reply.u.u64;
    return 0;
}

int mpqemu_remote_rpc(struct ferry_qemu_remote *r, struct mpqemu_msg *m, uint64_t *ret)
{
    int rc = mpqemu_remote_call(r, m, true, false, ret, r->reply_timeout_ms);

    if (rc < 0)
        mpqemu_remote_down(r, rc == -ETIMEDOUT ? "hung" : "link lost");
    return rc;
}

/* ------------------------------------------------------------------ */
/* Process supervision                                                 */

/*
 * One line of the remote's stderr.  The remote exits with status 0 even
 * when it quits over a message it refused, so its own words are the only
 * record of why: keep the last line for the exit report.
 */
static void flush_err_line(struct ferry_qemu_remote *r)
{
    static const char *const protocol_errors[] = {
        "invalid message", "Bad address", "Unknown command", "Invalid size",
        "header corrupted", "Overflow error",
    };
    uint32_t supp = 0;
    bool proto = false;

    if (!r->errlen)
        return;
    r->errbuf[r->errlen] = '\0';
    memcpy(r->lasterr, r->errbuf, r->errlen + 1);
    r->errlen = 0;
    for (size_t i = 0; i < sizeof(protocol_errors) / sizeof(protocol_errors[0]); i++)
        proto |= strstr(r->lasterr, protocol_errors[i]) != NULL;
    if (proto)
        qlog(r, FERRY_LOG_ERROR, "remote refused a message pid=%d: %s", (int)r->pid,
             r->lasterr);
    else if (ferry_ratelimit_ok(&r->err_rl, &supp))
        qlog(r, FERRY_LOG_WARNING, "qemu pid=%d: %s%s", (int)r->pid, r->lasterr,
             supp ? " (earlier lines suppressed)" : "");
}

static void drain_stderr(struct ferry_qemu_remote *r)
{
    char buf[1024];
    ssize_t n;

    if (r->errfd < 0)
        return;
    while ((n = read(r->errfd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || r->errlen + 1 >= sizeof(r->errbuf))
                flush_err_line(r);
            if (buf[i] != '\n')
                r->errbuf[r->errlen++] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
        }
    }
}

static void on_stderr(evutil_socket_t fd, short what, void *arg)
{
    drain_stderr(arg);
}

static void free_event(struct event **ev)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* Kill (if still alive), reap, log how it ended, close this process's fds. */
static void reap_child(struct ferry_qemu_remote *r, bool kill_it)
{
    int status = 0;
    pid_t w;

    free_event(&r->ev_sock);
    free_event(&r->ev_heartbeat);
    if (r->sock >= 0) {
        close(r->sock);
        r->sock = -1;
    }
    if (r->pid > 0) {
        /* The launcher kills (if still alive) and reaps: QEMU is its child, not ours. */
        (void)kill_it;
        w = sandbox_launcher_stop(r->launcher, r->pid, &status) == 0 ? r->pid : -1;
        drain_stderr(r);
        flush_err_line(r);
        if (w == r->pid && r->stopping) {
            qlog(r, FERRY_LOG_INFO, "stopped pid=%d", (int)r->pid);
        } else if (w == r->pid) {
            if (WIFEXITED(status))
                qlog(r, FERRY_LOG_WARNING, "exited pid=%d status=%d%s%s", (int)r->pid,
                     WEXITSTATUS(status), r->lasterr[0] ? " last: " : "", r->lasterr);
            else if (WIFSIGNALED(status))
                qlog(r, FERRY_LOG_WARNING, "killed pid=%d signal=%d", (int)r->pid,
                     WTERMSIG(status));
        }
        r->pid = 0;
    }
    free_event(&r->ev_err);
    if (r->errfd >= 0) {
        close(r->errfd);
        r->errfd = -1;
    }
    if (r->monitor_fd >= 0) {
        close(r->monitor_fd);
        r->monitor_fd = -1;
    }
    r->lasterr[0] = '\0';
}

static int do_start(struct ferry_qemu_remote *r);

static void restart_or_fail(struct ferry_qemu_remote *r)
{
    struct timeval tv = { r->restart_delay_ms / 1000, (r->restart_delay_ms % 1000) * 1000 };

    if (r->st.restarts >= r->max_restarts) {
        qlog(r, FERRY_LOG_ERROR, "giving up after %u restarts: device reads all ones",
             r->st.restarts);
        set_state(r, QEMU_REMOTE_FAILED);
        return;
    }
    set_state(r, QEMU_REMOTE_DOWN);
    qlog(r, FERRY_LOG_INFO, "restart %u/%u in %u ms", r->st.restarts + 1, r->max_restarts,
         r->restart_delay_ms);
    evtimer_add(r->ev_restart, &tv);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qemu_remote *r = arg;
    int rc;

    if (r->state != QEMU_REMOTE_DOWN)
        return;
    r->st.restarts++;
    qlog(r, FERRY_LOG_INFO, "restart %u/%u", r->st.restarts, r->max_restarts);
    rc = do_start(r);
    if (rc < 0) {
        qlog(r, FERRY_LOG_WARNING, "restart %u/%u failed: %s", r->st.restarts,
             r->max_restarts, strerror(-rc));
        reap_child(r, true);
        restart_or_fail(r);
        return;
    }
    qlog(r, FERRY_LOG_INFO, "restarted pid=%d", (int)r->pid);
}

void mpqemu_remote_down(struct ferry_qemu_remote *r, const char *why)
{
    if (r->state != QEMU_REMOTE_RUNNING)
        return;
    qlog(r, FERRY_LOG_WARNING, "down pid=%d: %s", (int)r->pid, why);
    reap_child(r, true);
    restart_or_fail(r);
}

/* The remote never speaks unasked: readable while idle means gone or broken. */
static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qemu_remote *r = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    mpqemu_remote_down(r, n == 0 ? "connection closed" : "unsolicited message");
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qemu_remote *r = arg;
    struct mpqemu_msg m;
    uint64_t v = 0;

    if (r->state != QEMU_REMOTE_RUNNING)
        return;
    mpqemu_msg_cfgread(&m, 0, 4);
    if (mpqemu_remote_rpc(r, &m, &v) < 0)
        return;
    if ((uint32_t)v != r->ids)
        mpqemu_remote_down(r, "liveness probe read wrong ids");
}

static int find_program(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");

    if (strchr(name, '/')) {
        if (snprintf(out, len, "%s", name) >= (int)len)
            return -ENAMETOOLONG;
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dl = end ? (size_t)(end - path) : strlen(path);

        if (dl && snprintf(out, len, "%.*s/%s", (int)dl, path, name) < (int)len &&
            access(out, X_OK) == 0)
            return 0;
        path += dl + (end ? 1 : 0);
    }
    return -ENOENT;
}

/*
 * The one QEMU command line of this device, handed to a launcher forked
 * now (before ferry-dm confines itself).  QEMU gets the mpqemu socket on
 * fd 3, /dev/null on 0 and a pipe on 1 and 2 (launcher.h).
 */
static int make_launcher(struct ferry_qemu_remote *r, const struct ferry_sandbox_config *sbx)
{
    char devarg[QEMU_REMOTE_DEVICE_MAX + QR_ID_MAX + 8];
    char objarg[QR_ID_MAX + 64];
    char prog[4096];
    const char *argv[20 + QEMU_REMOTE_EXTRA_ARGS_MAX];
    unsigned a = 0;
    int rc;

    rc = find_program(r->qemu, prog, sizeof(prog));
    if (rc < 0) {
        qlog(r, FERRY_LOG_ERROR, "cannot find %s: %s", r->qemu, strerror(-rc));
        return rc;
    }
    if (prog[0] != '/') {
        char cwd[2048], abs[sizeof(prog)];

        if (!getcwd(cwd, sizeof(cwd)) ||
            snprintf(abs, sizeof(abs), "%s/%s", cwd, prog) >= (int)sizeof(abs))
            return -ENAMETOOLONG;
        memcpy(prog, abs, sizeof(prog));
    }
    snprintf(devarg, sizeof(devarg), "%s,id=%s", r->device, r->id);
    snprintf(objarg, sizeof(objarg), "x-remote-object,id=robj0,devid=%s,fd={fd}", r->id);
    argv[a++] = prog;
    argv[a++] = "-machine";
    argv[a++] = "x-remote";
    argv[a++] = "-device";
    argv[a++] = devarg;
    argv[a++] = "-object";
    argv[a++] = objarg;
    argv[a++] = "-nodefaults";
    argv[a++] = "-nographic";
    /*
     * A reset request inside the remote (a device asking for a machine
     * reset, e.g. a watchdog) would clear its config space under us and the
     * next BAR access would end it; exiting instead lets supervision
     * restart it cleanly.
     */
    argv[a++] = "-no-reboot";
    if (r->sandbox) {
        /* QEMU's own seccomp filter: no exec, no setuid, no scheduler games. */
        argv[a++] = "-sandbox";
        argv[a++] = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
    }
    if (r->monitor) {
        /* QMP on an inherited socket: nothing in the file system, and a
         * confined ferry-dm gets the channel to each new QEMU from the launcher */
        argv[a++] = "-chardev";
        argv[a++] = "socket,id=ferry-qmp,fd={fd2}";
        argv[a++] = "-mon";
        argv[a++] = "chardev=ferry-qmp,mode=control";
    }
    for (unsigned i = 0; r->extra[i]; i++)
        argv[a++] = r->extra[i];
    argv[a] = NULL;

    struct ferry_launcher_config lc = {
        .argv = argv,
        .sock_type = SOCK_STREAM,
        .second_sock = r->monitor,
        .sandbox = sbx,
        .log = r->ops ? r->ops->log : NULL,
        .opaque = r->opaque,
    };
    rc = sandbox_launcher_create(&lc, &r->launcher);
    if (rc < 0)
        qlog(r, FERRY_LOG_ERROR, "cannot fork the launcher for %s: %s", prog, strerror(-rc));
    return rc;
}

static int spawn(struct ferry_qemu_remote *r)
{
    struct ferry_launcher_instance inst;
    int rc;

    rc = sandbox_launcher_start(r->launcher, &inst);
    if (rc < 0) {
        qlog(r, FERRY_LOG_ERROR, "cannot start qemu through the launcher: %s%s", strerror(-rc),
             rc == -EPIPE ? " (the launcher is gone)" : "");
        return rc;
    }
    r->pid = inst.pid;
    r->sock = inst.sock;
    r->errfd = inst.errfd;
    r->monitor_fd = inst.sock2;
    /*
     * QEMU is the launcher's child: its end shows as a hang-up on the
     * socket (on_sock) rather than on a pidfd, which a confined ferry-dm
     * may not open.  The stderr pipe must not block the loop.
     */
    if (fcntl(r->errfd, F_SETFL, O_NONBLOCK) < 0)
        return -errno;
    r->ev_err = event_new(r->base, r->errfd, EV_READ | EV_PERSIST, on_stderr, r);
    r->ev_sock = event_new(r->base, r->sock, EV_READ | EV_PERSIST, on_sock, r);
    if (!r->ev_err || !r->ev_sock)
        return -ENOMEM;
    event_add(r->ev_err, NULL);
    event_add(r->ev_sock, NULL);
    qlog(r, FERRY_LOG_INFO, "spawned pid=%d device=%s,id=%s sandbox=%s", (int)r->pid, r->device,
         r->id, r->sandbox ? "on" : "off");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bring-up                                                            */


/*
 * A starting remote serves the link from inside its machine-init-done
 * notifier and resets the whole machine (PCI config included) the first
 * time the link runs dry, so config written before then may be wiped.
 * Its main loop runs only after that reset, and the main loop is what
 * drains the resample eventfd handed over with SET_IRQFD: kick it, and
 * once the kick has been consumed the remote is past its startup reset.
 */
static int wait_settled(struct ferry_qemu_remote *r, unsigned timeout_ms)
{
    uint64_t one = 1, start = ferry_monotonic_ms();

    if (write(r->resample_fd, &one, sizeof(one)) != sizeof(one))
        return -errno;
    for (;;) {
        struct pollfd p[2] = {
            { .fd = r->resample_fd, .events = POLLIN },
            { .fd = r->sock, .events = POLLIN },
        };

        if (poll(p, 2, 0) < 0 && errno != EINTR)
            return -errno;
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            qlog(r, FERRY_LOG_ERROR, "remote pid=%d closed the link while starting",
                 (int)r->pid);
            return -ECONNRESET;
        }
        if (!(p[0].revents & POLLIN))
            break;
        if (ferry_monotonic_ms() - start >= timeout_ms) {
            qlog(r, FERRY_LOG_ERROR, "remote pid=%d did not reach its main loop within %u ms",
                 (int)r->pid, timeout_ms);
            return -ETIMEDOUT;
        }
        usleep(1000);
    }
    qlog(r, FERRY_LOG_DEBUG, "remote pid=%d settled after %llu ms", (int)r->pid,
         (unsigned long long)(ferry_monotonic_ms() - start));
    return 0;
}

static int do_start(struct ferry_qemu_remote *r)
{
    unsigned t = r->start_timeout_ms;
    struct mpqemu_msg m;
    int rc;

    rc = spawn(r);
    if (rc < 0)
        return rc;
    if (r->nram) {
        int fds[QEMU_REMOTE_RAM_MAX];
        uint64_t gpa[QEMU_REMOTE_RAM_MAX], size[QEMU_REMOTE_RAM_MAX], offs[QEMU_REMOTE_RAM_MAX];

        for (unsigned i = 0; i < r->nram; i++) {
            fds[i] = r->ram[i].fd;
            gpa[i] = r->ram[i].gpa;
            size[i] = r->ram[i].size;
            offs[i] = r->ram[i].offset;
        }
        rc = mpqemu_msg_sysmem(&m, r->nram, fds, gpa, size, offs);
        if (!rc)
            rc = mpqemu_remote_call(r, &m, false, false, NULL, t);
        if (rc < 0)
            return rc;
        qlog(r, FERRY_LOG_INFO, "sync_sysmem regions=%u", r->nram);
    }
    mpqemu_msg_set_irqfd(&m, r->irq_fd, r->resample_fd);
    rc = mpqemu_remote_call(r, &m, false, false, NULL, t);
    if (rc < 0)
        return rc;
    rc = wait_settled(r, t);
    if (rc < 0)
        return rc;
    mpqemu_msg_device_reset(&m);
    rc = mpqemu_remote_call(r, &m, true, true, NULL, t);
    if (rc < 0)
        return rc;
    qlog(r, FERRY_LOG_DEBUG, "device_reset done");
    rc = mpqemu_remote_learn_function(r, t);
    if (!rc)
        rc = mpqemu_remote_replay_config(r, t);
    if (rc < 0)
        return rc;
    if (r->heartbeat_ms) {
        struct timeval tv = { r->heartbeat_ms / 1000, (r->heartbeat_ms % 1000) * 1000 };

        r->ev_heartbeat = event_new(r->base, -1, EV_PERSIST, on_heartbeat, r);
        if (!r->ev_heartbeat)
            return -ENOMEM;
        event_add(r->ev_heartbeat, &tv);
    }
    set_state(r, QEMU_REMOTE_RUNNING);
    qlog(r, FERRY_LOG_INFO, "ready pid=%d ids=%04x:%04x", (int)r->pid, r->ids & 0xffff,
         r->ids >> 16);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

int mpqemu_remote_new(struct event_base *base, const struct ferry_qemu_remote_config *cfg,
                    const struct ferry_qemu_remote_ops *ops, void *opaque,
                    struct ferry_qemu_remote **out)
{
    struct ferry_qemu_remote *r;
    const char *id = cfg->id ? cfg->id : "qdev0";

    *out = NULL;
    if (!base || !cfg->device || !cfg->device[0] ||
        strlen(cfg->device) >= QEMU_REMOTE_DEVICE_MAX || strlen(id) >= QR_ID_MAX || !id[0])
        return -EINVAL;
    for (const char *p = id; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return -EINVAL;
    }
    for (const char *p = cfg->device; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    }
    if (cfg->bar_access_min > 4 || (cfg->bar_access_min & (cfg->bar_access_min - 1)))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->sock = r->errfd = r->monitor_fd = -1;
    r->irq_fd = r->resample_fd = -1;
    for (unsigned i = 0; cfg->extra_args && cfg->extra_args[i]; i++) {
        if (i >= QEMU_REMOTE_EXTRA_ARGS_MAX ||
            strlen(cfg->extra_args[i]) >= QEMU_REMOTE_DEVICE_MAX) {
            mpqemu_remote_free(r);
            return -E2BIG;
        }
        r->extra[i] = strdup(cfg->extra_args[i]);
        if (!r->extra[i]) {
            mpqemu_remote_free(r);
            return -ENOMEM;
        }
    }
    r->base = base;
    r->ops = ops;
    r->opaque = opaque;
    snprintf(r->qemu, sizeof(r->qemu), "%s", cfg->qemu ? cfg->qemu : "qemu-system-x86_64");
    snprintf(r->device, sizeof(r->device), "%s", cfg->device);
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->reply_timeout_ms = cfg->reply_timeout_ms ? cfg->reply_timeout_ms : 2000;
    r->start_timeout_ms = cfg->start_timeout_ms ? cfg->start_timeout_ms : 10000;
    r->heartbeat_ms = cfg->heartbeat_ms;
    r->max_restarts = cfg->max_restarts;
    r->restart_delay_ms = cfg->restart_delay_ms ? cfg->restart_delay_ms : 100;
    r->access_min = cfg->bar_access_min ? cfg->bar_access_min : 1;
    r->sandbox = !cfg->no_sandbox;
    r->monitor = cfg->monitor;
    r->pid = 0;
    r->sock = r->errfd = -1;
    r->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    r->err_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 20);
    r->irq_fd = cfg->irq_fd;
    r->resample_fd = cfg->resample_fd;
    if (cfg->adopt_fds) {
        /* A predecessor's running QEMU: its fds are ours now, whatever happens. */
        const int *a = cfg->adopt_fds;
        int rc = sandbox_launcher_adopt(a[0], r->monitor, ops ? ops->log : NULL, opaque,
                                        &r->launcher);

        r->sock = a[1];
        r->errfd = a[2];
        r->irq_fd = a[3];
        r->resample_fd = a[4];
        r->own_irq_fds = true;
        r->adopted = true;
        if (rc < 0) {
            close(a[0]);
            mpqemu_remote_free(r);
            return rc;
        }
        r->ev_restart = evtimer_new(base, on_restart, r);
        if (!r->ev_restart) {
            mpqemu_remote_free(r);
            return -ENOMEM;
        }
        *out = r;
        return 0;
    }
    if (r->irq_fd < 0 || r->resample_fd < 0) {
        r->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->own_irq_fds = true;
        if (r->irq_fd < 0 || r->resample_fd < 0) {
            int e = -errno;

            mpqemu_remote_free(r);
            return e;
        }
    }
    r->ev_restart = evtimer_new(base, on_restart, r);
    if (!r->ev_restart) {
        mpqemu_remote_free(r);
        return -ENOMEM;
    }
    int rc = make_launcher(r, cfg->launcher_sandbox);
    if (rc < 0) {
        mpqemu_remote_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int mpqemu_remote_add_ram(struct ferry_qemu_remote *r, int memfd, uint64_t gpa, uint64_t size,
                        uint64_t offset)
{
    struct stat sb;
    int fd;

    if (r->state != QEMU_REMOTE_STOPPED)
        return -EBUSY;
    if (r->nram >= QEMU_REMOTE_RAM_MAX)
        return -ENOSPC;
    if (size == 0 || gpa + size < gpa || offset + size < offset || offset > INT64_MAX ||
        (gpa | size | offset) & 0xfff)
        return -EINVAL;
    for (unsigned i = 0; i < r->nram; i++) {
        if (mpqemu_remote_overlaps(gpa, size, r->ram[i].gpa, r->ram[i].size))
            return -EEXIST;
    }
    /* The remote ends itself if it cannot map a region: check it here. */
    if (fstat(memfd, &sb) < 0)
        return -errno;
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < offset + size)
        return -EINVAL;
    fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    r->ram[r->nram++] = (struct mpqemu_remote_ram){ fd, gpa, size, offset };
    return 0;
}

int mpqemu_remote_start(struct ferry_qemu_remote *r)
{
    int rc;

    if (r->state != QEMU_REMOTE_STOPPED || r->adopted)
        return -EBUSY;
    rc = do_start(r);
    if (rc < 0) {
        reap_child(r, true);
        qlog(r, FERRY_LOG_ERROR, "cannot start device %s: %s", r->device, strerror(-rc));
    }
    return rc;
}

void mpqemu_remote_free(struct ferry_qemu_remote *r)
{
    if (!r)
        return;
    r->stopping = true;
    reap_child(r, true);
    if (r->launcher)
        sandbox_launcher_destroy(r->launcher);
    free_event(&r->ev_restart);
    for (unsigned i = 0; r->extra[i]; i++)
        free(r->extra[i]);
    for (unsigned i = 0; i < r->nram; i++)
        close(r->ram[i].fd);
    if (r->own_irq_fds) {
        if (r->irq_fd >= 0)
            close(r->irq_fd);
        if (r->resample_fd >= 0)
            close(r->resample_fd);
    }
    free(r);
}

int mpqemu_remote_take_monitor(struct ferry_qemu_remote *r)
{
    int fd = r->monitor_fd;

    r->monitor_fd = -1;
    return fd;
}

pid_t mpqemu_remote_pid(const struct ferry_qemu_remote *r)
{
    return r->state == QEMU_REMOTE_RUNNING ? r->pid : 0;
}

enum mpqemu_remote_state mpqemu_remote_state(const struct ferry_qemu_remote *r)
{
    return r->state;
}

int mpqemu_remote_irq_fd(const struct ferry_qemu_remote *r)
{
    return r->irq_fd;
}

int mpqemu_remote_resample_fd(const struct ferry_qemu_remote *r)
{
    return r->resample_fd;
}

void mpqemu_remote_get_stats(const struct ferry_qemu_remote *r, struct mpqemu_remote_stats *st)
{
    *st = r->st;
}

/* For qemu-remote-handover.c: what a spawn sets up, for a QEMU taken over. */
int mpqemu_remote_watch(struct ferry_qemu_remote *r)
{
    if (fcntl(r->errfd, F_SETFL, O_NONBLOCK) < 0)
        return -errno;
    r->ev_err = event_new(r->base, r->errfd, EV_READ | EV_PERSIST, on_stderr, r);
    r->ev_sock = event_new(r->base, r->sock, EV_READ | EV_PERSIST, on_sock, r);
    if (!r->ev_err || !r->ev_sock)
        return -ENOMEM;
    event_add(r->ev_err, NULL);
    event_add(r->ev_sock, NULL);
    if (r->heartbeat_ms) {
        struct timeval tv = { r->heartbeat_ms / 1000, (r->heartbeat_ms % 1000) * 1000 };

        r->ev_heartbeat = event_new(r->base, -1, EV_PERSIST, on_heartbeat, r);
        if (!r->ev_heartbeat)
            return -ENOMEM;
        event_add(r->ev_heartbeat, &tv);
    }
    return 0;
}

void mpqemu_remote_drain_stderr(struct ferry_qemu_remote *r)
{
    drain_stderr(r);
}
