/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QEMU remote device engine: see qemu-remote.h. */
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
#include "devmodel/qemu-remote.h"
#include "ioreq/mpqemu.h"

#define QR_ID_MAX           64
#define QR_ERRLINE_MAX      512
#define QR_CAPS_MAX         48          /* a 256-byte space holds at most 48 */
#define QR_REMOTE_MMIO_BASE 0xc0000000ull
#define QR_REMOTE_IO_BASE   0x1000ull
#define QR_REMOTE_IO_END    0x10000ull
#define QR_REMOTE_MMIO_END  (1ull << 46)

#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_ROM             0x30
#define PCI_CAP_PTR         0x34
#define PCI_INT_PIN         0x3d
#define CMD_IO              0x1
#define CMD_MEM             0x2
#define STATUS_CAP_LIST     0x10

struct qr_bar {
    bool present, io, is64, hi;     /* hi: upper half of the previous 64-bit BAR */
    uint64_t size;
    uint32_t flags;                 /* low type bits of the BAR */
    uint64_t guest;                 /* guest-programmed address bits */
    uint64_t remote;
    bool mapped;
    uint64_t mapped_addr;
};

struct qr_ram {
    int fd;
    uint64_t gpa, size, offset;
};

struct ferry_qemu_remote {
    struct event_base *base;
    const struct ferry_qemu_remote_ops *ops;
    void *opaque;
    char qemu[4096];
    char device[QEMU_REMOTE_DEVICE_MAX];
    char id[QR_ID_MAX];
    char *extra[QEMU_REMOTE_EXTRA_ARGS_MAX + 1];
    unsigned reply_timeout_ms, start_timeout_ms, heartbeat_ms;
    unsigned max_restarts, restart_delay_ms, access_min;
    bool sandbox;
    /*
     * Every QEMU, the first and each restart, comes from this pre-forked
     * helper (sandbox/launcher.h): a confined ferry-dm never forks or
     * execs, and the command line is fixed when the engine is made.
     */
    struct ferry_launcher *launcher;

    enum qemu_remote_state state;
    bool identified;
    bool stopping;                  /* qemu_remote_free: its end is expected */
    pid_t pid;
    int sock, errfd;
    struct event *ev_err, *ev_sock, *ev_restart, *ev_heartbeat;
    char errbuf[QR_ERRLINE_MAX];
    size_t errlen;
    char lasterr[QR_ERRLINE_MAX];

    struct qr_ram ram[QEMU_REMOTE_RAM_MAX];
    unsigned nram;
    int irq_fd, resample_fd;
    bool own_irq_fds;

    uint32_t ids;                   /* device << 16 | vendor */
    unsigned cfg_size;
    struct qemu_remote_capview view;
    struct qr_bar bars[QEMU_REMOTE_BARS];
    uint16_t command;               /* as the guest wrote it */
    uint8_t wval[4096];
    uint8_t wset[4096];             /* 1: guest wrote this byte (replayed on restart) */

    struct ferry_ratelimit rl;          /* refused guest accesses */
    struct ferry_ratelimit err_rl;      /* the remote's stderr */
    struct qemu_remote_stats st;
};

#define qlog(r, lvl, fmt, ...) \
    ferry_logf((r)->ops ? (r)->ops->log : NULL, (r)->opaque, (lvl), \
               "qemu-remote[%s] %s: " fmt, (r)->id, level_name(lvl), ##__VA_ARGS__)

static const char *level_name(enum ferry_log_level l)
{
    switch (l) {
    case FERRY_LOG_ERROR: return "error";
    case FERRY_LOG_WARNING: return "warning";
    case FERRY_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void qr_down(struct ferry_qemu_remote *r, const char *why);

const char *qemu_remote_state_name(enum qemu_remote_state s)
{
    switch (s) {
    case QEMU_REMOTE_STOPPED: return "stopped";
    case QEMU_REMOTE_RUNNING: return "running";
    case QEMU_REMOTE_DOWN: return "down";
    case QEMU_REMOTE_FAILED: return "failed";
    }
    return "?";
}

static void set_state(struct ferry_qemu_remote *r, enum qemu_remote_state s)
{
    if (r->state == s)
        return;
    r->state = s;
    if (r->ops && r->ops->state_changed)
        r->ops->state_changed(r->opaque, s);
}

/* ------------------------------------------------------------------ */
/* Capability view                                                     */

static unsigned msi_cap_len(const uint8_t *cfg, unsigned p)
{
    uint16_t ctrl = (uint16_t)(cfg[(p + 2) & 0xff] | cfg[(p + 3) & 0xff] << 8);
    unsigned len = 10;

    if (ctrl & 0x80)
        len += 4;
    if (ctrl & 0x100)
        len += 10;
    return (len + 3) & ~3u;
}

void qemu_remote_capview_build(const uint8_t cfg[256], struct qemu_remote_capview *v)
{
    uint8_t keep[QR_CAPS_MAX];
    unsigned nkeep = 0, seen = 0;
    bool visited[256] = { false };
    unsigned p;

    memset(v->mask, 0xff, sizeof(v->mask));
    for (unsigned i = 0; i < 256; i++)
        v->value[i] = -1;
    memset(v->drop, 0, sizeof(v->drop));
    v->hidden = 0;
    v->express = false;

    if (!(cfg[PCI_STATUS] & STATUS_CAP_LIST))
        return;
    p = cfg[PCI_CAP_PTR] & 0xfc;
    while (p >= 0x40 && !visited[p] && seen < QR_CAPS_MAX) {
        uint8_t id = cfg[p];
        unsigned next = cfg[p + 1] & 0xfc;

        visited[p] = true;
        seen++;
        if (id == 0x10)
            v->express = true;
        if (id == 0x05 || id == 0x11) {
            unsigned len = id == 0x05 ? msi_cap_len(cfg, p) : 12;

            for (unsigned i = p; i < p + len && i < 256; i++) {
                v->mask[i] = 0;
                v->drop[i] = true;
            }
            v->hidden++;
        } else {
            keep[nkeep++] = (uint8_t)p;
        }
        p = next;
    }
    if (!v->hidden)
        return;
    /* Relink the visible capabilities in their original order. */
    v->value[PCI_CAP_PTR] = nkeep ? keep[0] : 0;
    for (unsigned i = 0; i < nkeep; i++)
        v->value[keep[i] + 1] = i + 1 < nkeep ? keep[i + 1] : 0;
    if (!nkeep)
        v->mask[PCI_STATUS] = (uint8_t)~STATUS_CAP_LIST;
}

/* ------------------------------------------------------------------ */
/* Remote round trips                                                  */

static int qr_call(struct ferry_qemu_remote *r, struct mpqemu_msg *m, bool want_ret,
                   bool empty_ret, uint64_t *ret, unsigned timeout_ms)
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

/* A round trip while running; any failure takes the device down. */
static int qr_rpc(struct ferry_qemu_remote *r, struct mpqemu_msg *m, uint64_t *ret)
{
    int rc = qr_call(r, m, true, false, ret, r->reply_timeout_ms);

    if (rc < 0)
        qr_down(r, rc == -ETIMEDOUT ? "hung" : "link lost");
    return rc;
}

static int raw_cfg_read(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                        uint32_t *val, unsigned timeout)
{
    struct mpqemu_msg m;
    uint64_t v = 0;
    int rc;

    mpqemu_msg_cfgread(&m, off, (int)len);
    rc = qr_call(r, &m, true, false, &v, timeout);
    *val = (uint32_t)v;
    return rc;
}

static int raw_cfg_write(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                         uint32_t val, unsigned timeout)
{
    struct mpqemu_msg m;

    mpqemu_msg_cfgwrite(&m, off, val, (int)len);
    return qr_call(r, &m, true, false, NULL, timeout);
}

/* ------------------------------------------------------------------ */
/* BARs                                                                */

static uint64_t bar_end(const struct qr_bar *b, uint64_t base)
{
    return base + b->size;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Choose remote addresses: memory BARs outside every guest RAM region. */
static int place_bars(struct ferry_qemu_remote *r)
{
    uint64_t io_cur = QR_REMOTE_IO_BASE;

    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        struct qr_bar *b = &r->bars[i];
        uint64_t limit, a;
        bool moved = true;

        if (!b->present)
            continue;
        if (b->io) {
            a = (io_cur + b->size - 1) & ~(b->size - 1);
            if (bar_end(b, a) > QR_REMOTE_IO_END)
                return -ENOSPC;
            b->remote = a;
            io_cur = bar_end(b, a);
            continue;
        }
        limit = b->is64 ? QR_REMOTE_MMIO_END : (1ull << 32);
        a = (QR_REMOTE_MMIO_BASE + b->size - 1) & ~(b->size - 1);
        while (moved) {
            moved = false;
            for (unsigned k = 0; k < r->nram; k++) {
                if (overlaps(a, b->size, r->ram[k].gpa, r->ram[k].size)) {
                    a = (r->ram[k].gpa + r->ram[k].size + b->size - 1) & ~(b->size - 1);
                    moved = true;
                }
            }
            for (unsigned k = 0; k < i; k++) {
                const struct qr_bar *o = &r->bars[k];

                if (o->present && !o->io && overlaps(a, b->size, o->remote, o->size)) {
                    a = (o->remote + o->size + b->size - 1) & ~(b->size - 1);
                    moved = true;
                }
            }
            if (a == 0 || bar_end(b, a) > limit || bar_end(b, a) < a)
                return -ENOSPC;
        }
        b->remote = a;
    }
    return 0;
}

static int program_remote_bars(struct ferry_qemu_remote *r, unsigned timeout)
{
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        const struct qr_bar *b = &r->bars[i];
        int rc;

        if (!b->present)
            continue;
        rc = raw_cfg_write(r, PCI_BAR0 + 4 * i, 4, (uint32_t)b->remote | b->flags, timeout);
        if (!rc && b->is64)
            rc = raw_cfg_write(r, PCI_BAR0 + 4 * (i + 1), 4, (uint32_t)(b->remote >> 32),
                               timeout);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int probe_bars(struct ferry_qemu_remote *r, struct qr_bar *bars, unsigned timeout)
{
    memset(bars, 0, sizeof(*bars) * QEMU_REMOTE_BARS);
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        unsigned off = PCI_BAR0 + 4 * i;
        uint32_t orig = 0, mask = 0, hi_orig = 0, hi_mask = 0;
        uint64_t m64;
        int rc;

        rc = raw_cfg_read(r, off, 4, &orig, timeout);
        if (!rc)
            rc = raw_cfg_write(r, off, 4, 0xffffffff, timeout);
        if (!rc)
            rc = raw_cfg_read(r, off, 4, &mask, timeout);
        if (!rc)
            rc = raw_cfg_write(r, off, 4, orig, timeout);
        if (rc < 0)
            return rc;
        if (mask == 0)
            continue;
        bars[i].present = true;
        if (mask & 1) {
            bars[i].io = true;
            bars[i].flags = 1;
            m64 = 0xffff0000u | (mask & ~3u);
            bars[i].size = (uint32_t)(~m64 + 1);
        } else {
            bars[i].flags = mask & 0xf;
            if (((mask >> 1) & 3) == 2 && i + 1 < QEMU_REMOTE_BARS) {
                bars[i].is64 = true;
                rc = raw_cfg_read(r, off + 4, 4, &hi_orig, timeout);
                if (!rc)
                    rc = raw_cfg_write(r, off + 4, 4, 0xffffffff, timeout);
                if (!rc)
                    rc = raw_cfg_read(r, off + 4, 4, &hi_mask, timeout);
                if (!rc)
                    rc = raw_cfg_write(r, off + 4, 4, hi_orig, timeout);
                if (rc < 0)
                    return rc;
                m64 = (uint64_t)hi_mask << 32 | (mask & ~0xfu);
                bars[i].size = ~m64 + 1;
                bars[i + 1].hi = true;
                i++;
            } else {
                bars[i].size = (uint32_t)(~(mask & ~0xfu) + 1);
            }
        }
        if (bars[i - (bars[i].hi ? 1 : 0)].size == 0) {
            qlog(r, FERRY_LOG_ERROR, "bar %u: size mask %#x makes no sense", i, mask);
            return -EPROTO;
        }
    }
    return 0;
}

/* Recompute which BARs the guest has enabled and tell the framework. */
static void update_mappings(struct ferry_qemu_remote *r)
{
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        struct qr_bar *b = &r->bars[i];
        bool en;
        uint64_t a = b->guest;

        if (!b->present)
            continue;
        en = (r->command & (b->io ? CMD_IO : CMD_MEM)) && a != 0 &&
             bar_end(b, a) > a && (!b->io || bar_end(b, a) <= QR_REMOTE_IO_END);
        if (en == b->mapped && (!en || a == b->mapped_addr))
            continue;
        if (b->mapped) {
            qlog(r, FERRY_LOG_DEBUG, "bar %u unmapped %s addr=%#llx", i, b->io ? "io" : "mem",
                 (unsigned long long)b->mapped_addr);
            if (r->ops && r->ops->bar_map)
                r->ops->bar_map(r->opaque, i, b->io, b->mapped_addr, b->size, false);
            b->mapped = false;
        }
        if (en) {
            b->mapped = true;
            b->mapped_addr = a;
            qlog(r, FERRY_LOG_DEBUG, "bar %u mapped %s addr=%#llx size=%#llx", i,
                 b->io ? "io" : "mem", (unsigned long long)a, (unsigned long long)b->size);
            if (r->ops && r->ops->bar_map)
                r->ops->bar_map(r->opaque, i, b->io, a, b->size, true);
        }
    }
}

static uint32_t bar_reg_read(const struct ferry_qemu_remote *r, unsigned idx)
{
    const struct qr_bar *b = &r->bars[idx];

    if (b->hi) {
        const struct qr_bar *lo = &r->bars[idx - 1];
        return (uint32_t)(lo->guest >> 32);
    }
    if (!b->present)
        return 0;
    return (uint32_t)b->guest | b->flags;
}

static void bar_reg_write(struct ferry_qemu_remote *r, unsigned idx, uint32_t val)
{
    struct qr_bar *b = &r->bars[idx];

    if (b->hi) {
        struct qr_bar *lo = &r->bars[idx - 1];
        uint64_t mask = ~(lo->size - 1);

        lo->guest = ((uint64_t)val << 32 | (uint32_t)lo->guest) & mask;
        return;
    }
    if (!b->present)
        return;
    if (b->io)
        b->guest = (val & ~3u) & (uint32_t)~(b->size - 1) & 0xffff;
    else
        b->guest = ((b->guest & 0xffffffff00000000ull) | (val & ~0xfu)) & ~(b->size - 1);
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
        w = ferry_launcher_stop(r->launcher, r->pid, &status) == 0 ? r->pid : -1;
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

static void qr_down(struct ferry_qemu_remote *r, const char *why)
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
    qr_down(r, n == 0 ? "connection closed" : "unsolicited message");
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qemu_remote *r = arg;
    struct mpqemu_msg m;
    uint64_t v = 0;

    if (r->state != QEMU_REMOTE_RUNNING)
        return;
    mpqemu_msg_cfgread(&m, 0, 4);
    if (qr_rpc(r, &m, &v) < 0)
        return;
    if ((uint32_t)v != r->ids)
        qr_down(r, "liveness probe read wrong ids");
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
    const char *argv[16 + QEMU_REMOTE_EXTRA_ARGS_MAX];
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
    for (unsigned i = 0; r->extra[i]; i++)
        argv[a++] = r->extra[i];
    argv[a] = NULL;

    struct ferry_launcher_config lc = {
        .argv = argv,
        .sock_type = SOCK_STREAM,
        .sandbox = sbx,
        .log = r->ops ? r->ops->log : NULL,
        .opaque = r->opaque,
    };
    rc = ferry_launcher_create(&lc, &r->launcher);
    if (rc < 0)
        qlog(r, FERRY_LOG_ERROR, "cannot fork the launcher for %s: %s", prog, strerror(-rc));
    return rc;
}

static int spawn(struct ferry_qemu_remote *r)
{
    struct ferry_launcher_instance inst;
    int rc;

    rc = ferry_launcher_start(r->launcher, &inst);
    if (rc < 0) {
        qlog(r, FERRY_LOG_ERROR, "cannot start qemu through the launcher: %s%s", strerror(-rc),
             rc == -EPIPE ? " (the launcher is gone)" : "");
        return rc;
    }
    r->pid = inst.pid;
    r->sock = inst.sock;
    r->errfd = inst.errfd;
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

static int learn_function(struct ferry_qemu_remote *r, unsigned t)
{
    uint8_t cfg[256];
    struct qr_bar bars[QEMU_REMOTE_BARS];
    int rc;

    for (unsigned off = 0; off < 256; off += 4) {
        uint32_t v;

        rc = raw_cfg_read(r, off, 4, &v, t);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < 4; i++)
            cfg[off + i] = (uint8_t)(v >> (8 * i));
    }
    if (r->identified) {
        uint32_t ids = cfg[0] | cfg[1] << 8 | cfg[2] << 16 | (uint32_t)cfg[3] << 24;

        if (ids != r->ids) {
            qlog(r, FERRY_LOG_ERROR, "restarted function has ids %#x, not %#x", ids, r->ids);
            return -ENODEV;
        }
    } else {
        r->ids = cfg[0] | cfg[1] << 8 | cfg[2] << 16 | (uint32_t)cfg[3] << 24;
        if ((r->ids & 0xffff) == 0xffff || (cfg[PCI_HEADER_TYPE] & 0x7f) != 0) {
            qlog(r, FERRY_LOG_ERROR, "unsupported function ids=%#x header type=%#x",
                 r->ids, cfg[PCI_HEADER_TYPE]);
            return -ENOTSUP;
        }
    }
    qemu_remote_capview_build(cfg, &r->view);
    r->cfg_size = r->view.express ? 4096 : 256;
    rc = probe_bars(r, bars, t);
    if (rc < 0)
        return rc;
    if (r->identified) {
        for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
            if (bars[i].present != r->bars[i].present || bars[i].size != r->bars[i].size ||
                bars[i].io != r->bars[i].io) {
                qlog(r, FERRY_LOG_ERROR, "restarted function's bar %u differs", i);
                return -ENODEV;
            }
        }
    } else {
        memcpy(r->bars, bars, sizeof(bars));
        rc = place_bars(r);
        if (rc < 0) {
            qlog(r, FERRY_LOG_ERROR, "no room for the bars in the remote's address space");
            return rc;
        }
        for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
            if (r->bars[i].present)
                qlog(r, FERRY_LOG_INFO, "bar %u %s%s size=%#llx remote=%#llx", i,
                     r->bars[i].io ? "io" : "mem", r->bars[i].is64 ? "64" : "",
                     (unsigned long long)r->bars[i].size,
                     (unsigned long long)r->bars[i].remote);
        }
        if (r->view.hidden)
            qlog(r, FERRY_LOG_INFO, "hiding %u msi/msi-x capabilities", r->view.hidden);
        r->identified = true;
    }
    return 0;
}

/* After reset or restart: the remote's BARs, the guest's config writes, command last. */
static int replay_config(struct ferry_qemu_remote *r, unsigned t)
{
    int rc = program_remote_bars(r, t);

    if (rc < 0)
        return rc;
    for (unsigned off = 0x08; off < r->cfg_size; off += 4) {
        uint32_t v;
        bool any = false;

        for (unsigned i = 0; i < 4; i++)
            any |= r->wset[off + i];
        if (!any)
            continue;
        rc = raw_cfg_read(r, off, 4, &v, t);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < 4; i++) {
            if (r->wset[off + i]) {
                v &= ~(0xffu << (8 * i));
                v |= (uint32_t)r->wval[off + i] << (8 * i);
            }
        }
        rc = raw_cfg_write(r, off, 4, v, t);
        if (rc < 0)
            return rc;
    }
    if (r->command)
        rc = raw_cfg_write(r, PCI_COMMAND, 2, r->command, t);
    return rc;
}

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
            rc = qr_call(r, &m, false, false, NULL, t);
        if (rc < 0)
            return rc;
        qlog(r, FERRY_LOG_INFO, "sync_sysmem regions=%u", r->nram);
    }
    mpqemu_msg_set_irqfd(&m, r->irq_fd, r->resample_fd);
    rc = qr_call(r, &m, false, false, NULL, t);
    if (rc < 0)
        return rc;
    rc = wait_settled(r, t);
    if (rc < 0)
        return rc;
    mpqemu_msg_device_reset(&m);
    rc = qr_call(r, &m, true, true, NULL, t);
    if (rc < 0)
        return rc;
    qlog(r, FERRY_LOG_DEBUG, "device_reset done");
    rc = learn_function(r, t);
    if (!rc)
        rc = replay_config(r, t);
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

int qemu_remote_new(struct event_base *base, const struct ferry_qemu_remote_config *cfg,
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
    r->sock = r->errfd = -1;
    r->irq_fd = r->resample_fd = -1;
    for (unsigned i = 0; cfg->extra_args && cfg->extra_args[i]; i++) {
        if (i >= QEMU_REMOTE_EXTRA_ARGS_MAX ||
            strlen(cfg->extra_args[i]) >= QEMU_REMOTE_DEVICE_MAX) {
            qemu_remote_free(r);
            return -E2BIG;
        }
        r->extra[i] = strdup(cfg->extra_args[i]);
        if (!r->extra[i]) {
            qemu_remote_free(r);
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
    r->pid = 0;
    r->sock = r->errfd = -1;
    r->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    r->err_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 20);
    r->irq_fd = cfg->irq_fd;
    r->resample_fd = cfg->resample_fd;
    if (r->irq_fd < 0 || r->resample_fd < 0) {
        r->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->own_irq_fds = true;
        if (r->irq_fd < 0 || r->resample_fd < 0) {
            int e = -errno;

            qemu_remote_free(r);
            return e;
        }
    }
    r->ev_restart = evtimer_new(base, on_restart, r);
    if (!r->ev_restart) {
        qemu_remote_free(r);
        return -ENOMEM;
    }
    int rc = make_launcher(r, cfg->launcher_sandbox);
    if (rc < 0) {
        qemu_remote_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int qemu_remote_add_ram(struct ferry_qemu_remote *r, int memfd, uint64_t gpa, uint64_t size,
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
        if (overlaps(gpa, size, r->ram[i].gpa, r->ram[i].size))
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
    r->ram[r->nram++] = (struct qr_ram){ fd, gpa, size, offset };
    return 0;
}

int qemu_remote_start(struct ferry_qemu_remote *r)
{
    int rc;

    if (r->state != QEMU_REMOTE_STOPPED)
        return -EBUSY;
    rc = do_start(r);
    if (rc < 0) {
        reap_child(r, true);
        qlog(r, FERRY_LOG_ERROR, "cannot start device %s: %s", r->device, strerror(-rc));
    }
    return rc;
}

void qemu_remote_free(struct ferry_qemu_remote *r)
{
    if (!r)
        return;
    r->stopping = true;
    reap_child(r, true);
    if (r->launcher)
        ferry_launcher_destroy(r->launcher);
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

static void refused(struct ferry_qemu_remote *r, const char *what, uint64_t addr,
                    unsigned len)
{
    uint32_t supp = 0;

    r->st.refused++;
    if (ferry_ratelimit_ok(&r->rl, &supp))
        qlog(r, FERRY_LOG_DEBUG, "refused %s addr=%#llx len=%u suppressed=%u", what,
             (unsigned long long)addr, len, supp);
}

static bool cfg_access_ok(unsigned off, unsigned len)
{
    return (len == 1 || len == 2 || len == 4) && off < 4096 && (off & (len - 1)) == 0;
}

uint32_t qemu_remote_config_read(struct ferry_qemu_remote *r, unsigned off, unsigned len)
{
    uint32_t ones = len == 1 ? 0xff : len == 2 ? 0xffff : 0xffffffffu;
    uint32_t dev = 0, out = 0;
    bool need_remote = false;
    unsigned base = off & ~3u;

    if (!cfg_access_ok(off, len)) {
        refused(r, "config read", off, len);
        return ones;
    }
    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return ones;
    }
    if (off >= r->cfg_size)
        return ones;
    for (unsigned i = off; i < off + len; i++) {
        if (!(i >= PCI_BAR0 && i < PCI_BAR0 + 24) && !(i >= PCI_ROM && i < PCI_ROM + 4) &&
            (i >= 256 || (r->view.value[i] < 0 && r->view.mask[i])))
            need_remote = true;
    }
    if (need_remote) {
        struct mpqemu_msg m;
        uint64_t v;
        /* QEMU refuses addr + 4 > config size whatever len is: read the dword. */
        unsigned roff = off + 4 > r->cfg_size ? base : off;
        unsigned rlen = roff == off ? len : 4;

        mpqemu_msg_cfgread(&m, roff, (int)rlen);
        if (qr_rpc(r, &m, &v) < 0) {
            r->st.while_down++;
            return ones;
        }
        r->st.cfg_reads++;
        dev = (uint32_t)v;
        if (roff != off)
            dev >>= 8 * (off - roff);
    }
    for (unsigned i = 0; i < len; i++) {
        unsigned o = off + i;
        uint8_t b = (uint8_t)(dev >> (8 * i));

        if (o >= PCI_BAR0 && o < PCI_BAR0 + 24)
            b = (uint8_t)(bar_reg_read(r, (o - PCI_BAR0) / 4) >> (8 * (o & 3)));
        else if (o >= PCI_ROM && o < PCI_ROM + 4)
            b = 0;
        else if (o < 256)
            b = r->view.value[o] >= 0 ? (uint8_t)r->view.value[o] : (b & r->view.mask[o]);
        out |= (uint32_t)b << (8 * i);
    }
    return out;
}

void qemu_remote_config_write(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                              uint32_t val)
{
    struct mpqemu_msg m;

    if (!cfg_access_ok(off, len)) {
        refused(r, "config write", off, len);
        return;
    }
    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return;
    }
    if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
        unsigned idx = (off - PCI_BAR0) / 4;
        uint32_t cur = bar_reg_read(r, idx);

        for (unsigned i = 0; i < len; i++) {
            unsigned sh = 8 * ((off & 3) + i);

            cur = (cur & ~(0xffu << sh)) | ((val >> (8 * i)) & 0xff) << sh;
        }
        bar_reg_write(r, idx, cur);
        update_mappings(r);
        return;
    }
    if ((off >= PCI_ROM && off < PCI_ROM + 4) || off >= r->cfg_size || off + 4 > r->cfg_size ||
        (off < 256 && r->view.drop[off])) {
        refused(r, "config write", off, len);
        return;
    }
    mpqemu_msg_cfgwrite(&m, off, val, (int)len);
    if (qr_rpc(r, &m, NULL) < 0)
        return;
    r->st.cfg_writes++;
    for (unsigned i = 0; i < len; i++) {
        r->wval[off + i] = (uint8_t)(val >> (8 * i));
        r->wset[off + i] = 1;
    }
    if (off <= PCI_COMMAND + 1 && off + len > PCI_COMMAND) {
        for (unsigned i = 0; i < len; i++) {
            unsigned o = off + i;

            if (o == PCI_COMMAND)
                r->command = (uint16_t)((r->command & 0xff00) | ((val >> (8 * i)) & 0xff));
            else if (o == PCI_COMMAND + 1)
                r->command = (uint16_t)((r->command & 0xff) | ((val >> (8 * i)) & 0xff) << 8);
        }
        update_mappings(r);
    }
}

/* Finds the enabled BAR wholly holding [addr, addr + size); translates addr. */
static int bar_lookup(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                      uint64_t *remote)
{
    if ((size != 1 && size != 2 && size != 4 && size != 8) || (addr & (size - 1)) ||
        size < r->access_min || addr + size < addr)
        return -ENXIO;
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        const struct qr_bar *b = &r->bars[i];

        if (!b->present || !b->mapped || b->io != io)
            continue;
        if (addr >= b->mapped_addr && addr + size <= b->mapped_addr + b->size) {
            *remote = b->remote + (addr - b->mapped_addr);
            return 0;
        }
    }
    return -ENXIO;
}

/*
 * One guest access to a BAR: a read into *val or a write of *val.  Most
 * devices take at most 4 bytes at once and QEMU ends on an invalid size, so
 * a wider access goes as 4-byte parts.
 */
static int bar_access(struct ferry_qemu_remote *r, bool io, bool write, uint64_t addr,
                      unsigned size, uint64_t *val)
{
    uint64_t ra, v = 0;
    struct mpqemu_msg m;
    int rc;

    if (r->state != QEMU_REMOTE_RUNNING) {
        r->st.while_down++;
        return -ENODEV;
    }
    rc = bar_lookup(r, io, addr, size, &ra);
    if (rc < 0) {
        refused(r, io ? (write ? "io write" : "io read") : (write ? "mmio write" : "mmio read"),
                addr, size);
        return rc;
    }
    for (unsigned done = 0; done < size; done += 4) {
        unsigned n = size < 4 ? size : 4;
        uint64_t mask = n < 4 ? (1ull << (8 * n)) - 1 : 0xffffffffull;
        uint64_t part;

        if (write)
            mpqemu_msg_bar_write(&m, !io, ra + done, (*val >> (8 * done)) & mask, n);
        else
            mpqemu_msg_bar_read(&m, !io, ra + done, n);
        if (qr_rpc(r, &m, write ? NULL : &part) < 0) {
            if (!write)
                r->st.while_down++;
            return -ENODEV;
        }
        if (!write)
            v |= (part & mask) << (8 * done);
    }
    if (write) {
        r->st.bar_writes++;
    } else {
        r->st.bar_reads++;
        *val = v;
    }
    return 0;
}

int qemu_remote_bar_read(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                         uint64_t *val)
{
    uint64_t v = 0;
    int rc;

    rc = bar_access(r, io, false, addr, size, &v);
    *val = rc < 0 ? (size >= 8 ? ~0ull : (1ull << (8 * size)) - 1) : v;
    return rc;
}

int qemu_remote_bar_write(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                          uint64_t val)
{
    return bar_access(r, io, true, addr, size, &val);
}

int qemu_remote_reset(struct ferry_qemu_remote *r)
{
    struct mpqemu_msg m;
    int rc;

    if (r->state != QEMU_REMOTE_RUNNING)
        return -ENODEV;
    mpqemu_msg_device_reset(&m);
    rc = qr_call(r, &m, true, true, NULL, r->reply_timeout_ms);
    if (rc < 0) {
        qr_down(r, "no reply to device reset");
        return rc;
    }
    /*
     * QEMU's DEVICE_RESET resets the device model but not its config
     * header; a function-level reset clears both, so clear the decode
     * enables and forget what the guest wrote.
     */
    rc = raw_cfg_write(r, PCI_COMMAND, 2, 0, r->reply_timeout_ms);
    if (rc < 0) {
        qr_down(r, "cannot clear command after reset");
        return rc;
    }
    memset(r->wset, 0, sizeof(r->wset));
    r->command = 0;
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++)
        r->bars[i].guest = 0;
    update_mappings(r);
    rc = program_remote_bars(r, r->reply_timeout_ms);
    if (rc < 0)
        qr_down(r, "cannot program bars after reset");
    qlog(r, FERRY_LOG_INFO, "device reset pid=%d", (int)r->pid);
    return rc;
}

pid_t qemu_remote_pid(const struct ferry_qemu_remote *r)
{
    return r->state == QEMU_REMOTE_RUNNING ? r->pid : 0;
}

enum qemu_remote_state qemu_remote_state(const struct ferry_qemu_remote *r)
{
    return r->state;
}

int qemu_remote_irq_fd(const struct ferry_qemu_remote *r)
{
    return r->irq_fd;
}

int qemu_remote_resample_fd(const struct ferry_qemu_remote *r)
{
    return r->resample_fd;
}

void qemu_remote_get_stats(const struct ferry_qemu_remote *r, struct qemu_remote_stats *st)
{
    *st = r->st;
}

int qemu_remote_bar_info(const struct ferry_qemu_remote *r, unsigned bar,
                         struct qemu_remote_bar_info *info)
{
    const struct qr_bar *b;

    if (bar >= QEMU_REMOTE_BARS)
        return -EINVAL;
    b = &r->bars[bar];
    *info = (struct qemu_remote_bar_info){
        .present = b->present, .io = b->io, .is64 = b->is64, .mapped = b->mapped,
        .size = b->size, .guest_addr = b->guest, .remote_addr = b->remote,
    };
    return 0;
}
