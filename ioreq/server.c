// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The server: the device-model side of the ioreq transport.  It owns no
 * thread and no loop: the caller watches the fds it exposes (control
 * socket, one doorbell per vCPU, the buffered ring's doorbell) and calls
 * the matching dispatch function.  Requests to the router (claims, irqfds,
 * memory) are synchronous request/reply exchanges on the control socket.
 *
 * The router is trusted to follow the protocol but is still checked: every
 * slot is validated before the handler sees it, ring pointers are bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "ioreq/ioreq-internal.h"

#define IOREQ_REPLY_TIMEOUT_MS 10000

struct ioreq_server {
    const struct ioreq_server_ops *ops;
    void *opaque;
    char name[IOREQ_NAME_MAX + 1];
    int sock;
    uint32_t seq;
    uint32_t id;
    unsigned nr_vcpus;
    void *map;
    size_t map_size;
    int map_fd;                     /* kept for a handover (ioreq_server_export) */
    ioreq_t *slots;
    buffered_iopage_t *buf;
    struct ioreq_wait_page *wait;
    uint8_t *bounce;
    int buf_fd;
    int bell_fd;                    /* buf_fd and timer_fd behind one fd (epoll), or -1 */
    int timer_fd;                   /* drains the ring while it is masked, or -1 */
    uint64_t delay_ns;              /* 0: every doorbell, never masked */
    uint64_t last_bell_ns;          /* the ring's last doorbell that found work */
    bool timer_armed;
    int *req_fd;
    int *resp_fd;
    bool gone;
    bool edge_doorbells;            /* cfg->edge_doorbells: doorbells are never read */
    bool batch;                     /* ioreq_server_batch: replies read later */
    unsigned batch_pending;         /* requests sent whose replies are not read yet */
    int batch_rc;                   /* the first failure among them */
    char batch_error[IOREQ_REPLY_MSG_MAX];
    struct ferry_ratelimit bad_rl;
    char last_error[IOREQ_REPLY_MSG_MAX];
};

#define slog(s, level, ...) ferry_logf((s)->ops->log, (s)->opaque, level, __VA_ARGS__)

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}

/*
 * Wait for the reply to request seq.  On success the reply (header
 * included) is in buf, its fds in fds/nfds; returns the reply's status
 * (0 or -errno) or a transport error.
 */
static int recv_reply(struct ioreq_server *s, uint32_t seq, void *buf, size_t *n, int *fds,
                      unsigned *nfds)
{
    char why[160];
    int rc;

    *nfds = 0;
    for (;;) {
        struct pollfd p = { .fd = s->sock, .events = POLLIN };
        int k = poll(&p, 1, IOREQ_REPLY_TIMEOUT_MS);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k == 0 ? -ETIMEDOUT : -errno;
        ssize_t got = ioreq_msg_recv(s->sock, buf, fds, nfds);
        if (got == -EAGAIN)
            continue;
        if (got <= 0) {
            s->gone = true;
            return got == 0 ? -EPIPE : (int)got;
        }
        rc = ioreq_msg_validate(buf, (size_t)got, *nfds, why, sizeof(why));
        const struct ioreq_msg_hdr *h = buf;
        if (rc || h->type != IOREQ_MSG_REPLY || h->seq != seq) {
            slog(s, FERRY_LOG_ERROR, "ioreq: unexpected message from the router: %s",
                 rc ? why : "not the reply to the last request");
            close_fds(fds, *nfds);
            *nfds = 0;
            return rc ? rc : -EPROTO;
        }
        *n = (size_t)got;
        const struct ioreq_msg_reply *rep = (const void *)(h + 1);
        if (rep->status < 0 && h->len > sizeof(rep->status)) {
            size_t m = h->len - sizeof(rep->status);
            if (m > sizeof(s->last_error))
                m = sizeof(s->last_error);
            memcpy(s->last_error, rep->message, m);
            s->last_error[sizeof(s->last_error) - 1] = '\0';
        }
        return rep->status > 0 ? -EPROTO : rep->status;
    }
}

/* Read the replies of a batch; the first failure (and its message) stays. */
static void batch_flush(struct ioreq_server *s)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;
    size_t n;

    while (s->batch_pending) {
        uint32_t seq = s->seq - --s->batch_pending;
        s->last_error[0] = '\0';
        int rc = recv_reply(s, seq, buf, &n, fds, &nfds);
        close_fds(fds, nfds);
        if (rc && !s->batch_rc) {
            s->batch_rc = rc;
            memcpy(s->batch_error, s->last_error, sizeof(s->batch_error));
        }
        if (rc && s->gone) {
            s->batch_pending = 0;
            break;
        }
    }
}

/*
 * Requests whose reply says only yes or no, and whose no ends what the
 * caller does: a batch sends them without waiting.  Not IRQFD: a refused
 * irqfd has a fallback (interrupt line calls), decided on its reply.
 */
static bool batchable(uint16_t type)
{
    return type == IOREQ_MSG_CLAIM || type == IOREQ_MSG_RELEASE ||
           type == IOREQ_MSG_IRQ_LINE || type == IOREQ_MSG_ENABLE;
}

#define IOREQ_BATCH_MAX 64      /* replies waiting in the socket at most */

/* Send a request and wait for its reply (recv_reply); in a batch, maybe later. */
static int call(struct ioreq_server *s, uint16_t type, const void *payload, size_t len,
                const int *send_fds, unsigned send_nfds, void *buf, size_t *n,
                int *fds, unsigned *nfds)
{
    int rc;

    *nfds = 0;
    if (s->batch && (!batchable(type) || s->batch_pending >= IOREQ_BATCH_MAX))
        batch_flush(s);
    s->last_error[0] = '\0';
    if (s->gone)
        return -EPIPE;
    uint32_t seq = ++s->seq;
    rc = ioreq_msg_send(s->sock, type, seq, payload, len, send_fds, send_nfds);
    if (rc)
        return rc;
    if (s->batch && batchable(type)) {
        s->batch_pending++;
        *n = 0;
        return 0;
    }
    return recv_reply(s, seq, buf, n, fds, nfds);
}

int ioreq_server_batch(struct ioreq_server *s, bool on)
{
    if (on) {
        s->batch = true;
        s->batch_rc = 0;
        return 0;
    }
    batch_flush(s);
    s->batch = false;
    if (s->batch_rc)
        memcpy(s->last_error, s->batch_error, sizeof(s->last_error));
    return s->batch_rc;
}

static int simple_call(struct ioreq_server *s, uint16_t type, const void *payload, size_t len,
                       const int *send_fds, unsigned send_nfds)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;
    size_t n;
    int rc = call(s, type, payload, len, send_fds, send_nfds, buf, &n, fds, &nfds);

    close_fds(fds, nfds);
    return rc;
}

static int do_hello(struct ioreq_server *s, const struct ioreq_server_config *cfg)
{
    struct ioreq_msg_hello h = { .flags = (cfg->buffered ? IOREQ_HELLO_F_BUFFERED : 0) |
                                          (cfg->pinned ? IOREQ_HELLO_F_PINNED : 0),
                                 .pid = (int32_t)getpid() };
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;
    size_t n;
    char why[160];

    memcpy(h.name, s->name, strnlen(s->name, sizeof(h.name)));
    int rc = call(s, IOREQ_MSG_HELLO, &h, sizeof(h), NULL, 0, buf, &n, fds, &nfds);
    if (rc) {
        close_fds(fds, nfds);
        return rc;
    }
    const struct ioreq_msg_hello_reply *rep = (const void *)(buf + sizeof(struct ioreq_msg_hdr));
    struct ioreq_layout lay = { 0 };
    if (n - sizeof(struct ioreq_msg_hdr) == sizeof(*rep) && rep->nr_vcpus > 0 &&
        rep->nr_vcpus <= IOREQ_MAX_VCPUS)
        ioreq_layout_get(rep->nr_vcpus, &lay);
    if (n - sizeof(struct ioreq_msg_hdr) != sizeof(*rep) || nfds != (cfg->buffered ? 2u : 1u) ||
        rep->nr_vcpus == 0 || rep->nr_vcpus > IOREQ_MAX_VCPUS ||
        rep->map_size < lay.total || rep->wait_offset != lay.wait ||
        rep->bounce_offset != lay.bounce ||
        (cfg->buffered && rep->buffered_offset != lay.buffered)) {
        close_fds(fds, nfds);
        slog(s, FERRY_LOG_ERROR, "ioreq: malformed registration reply from the router");
        return -EPROTO;
    }
    s->id = rep->server_id;
    s->nr_vcpus = rep->nr_vcpus;
    s->map_size = rep->map_size;
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    s->map_fd = fds[0];
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        rc = -errno;
        if (nfds > 1)
            close(fds[1]);
        return rc;
    }
    s->slots = s->map;
    s->wait = (struct ioreq_wait_page *)((char *)s->map + lay.wait);
    s->bounce = (uint8_t *)s->map + lay.bounce;
    if (cfg->buffered) {
        s->buf = (buffered_iopage_t *)((char *)s->map + rep->buffered_offset);
        s->buf_fd = fds[1];
    }

    s->req_fd = malloc(s->nr_vcpus * sizeof(int));
    s->resp_fd = malloc(s->nr_vcpus * sizeof(int));
    if (!s->req_fd || !s->resp_fd)
        return -ENOMEM;
    for (unsigned i = 0; i < s->nr_vcpus; i++)
        s->req_fd[i] = s->resp_fd[i] = -1;

    /* The doorbells follow in order, a few vCPUs per message. */
    for (unsigned have = 0; have < s->nr_vcpus;) {
        struct pollfd p = { .fd = s->sock, .events = POLLIN };
        if (poll(&p, 1, IOREQ_REPLY_TIMEOUT_MS) <= 0)
            return -ETIMEDOUT;
        ssize_t got = ioreq_msg_recv(s->sock, buf, fds, &nfds);
        if (got == -EAGAIN)
            continue;
        if (got <= 0)
            return got == 0 ? -EPIPE : (int)got;
        const struct ioreq_msg_hdr *hh = (const void *)buf;
        const struct ioreq_msg_vcpu_fds *v = (const void *)(hh + 1);
        rc = ioreq_msg_validate(buf, (size_t)got, nfds, why, sizeof(why));
        if (rc || hh->type != IOREQ_MSG_VCPU_FDS || v->first != have ||
            v->count == 0 || v->count > s->nr_vcpus - have || nfds != 2 * v->count) {
            close_fds(fds, nfds);
            slog(s, FERRY_LOG_ERROR, "ioreq: malformed vcpu doorbells from the router: %s",
                 rc ? why : "out of order or miscounted");
            return -EPROTO;
        }
        for (unsigned i = 0; i < v->count; i++) {
            s->req_fd[have + i] = fds[2 * i];
            s->resp_fd[have + i] = fds[2 * i + 1];
        }
        have += v->count;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The ring's drain timer (cfg->posted_delay_us), and one fd for it and the doorbell. */
static int ring_timer_init(struct ioreq_server *s, const struct ioreq_server_config *cfg)
{
    unsigned us = cfg->posted_delay_us ? cfg->posted_delay_us : IOREQ_POSTED_DELAY_US;

    if (!s->buf || us == IOREQ_POSTED_IMMEDIATE)
        return 0;
    s->delay_ns = (uint64_t)us * 1000;
    s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    s->bell_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->timer_fd < 0 || s->bell_fd < 0)
        return -errno;
    struct epoll_event e = { .events = EPOLLIN };
    if (epoll_ctl(s->bell_fd, EPOLL_CTL_ADD, s->buf_fd, &e) < 0 ||
        epoll_ctl(s->bell_fd, EPOLL_CTL_ADD, s->timer_fd, &e) < 0)
        return -errno;
    return 0;
}

/* Drain the ring after ns (at least 1) on the timer; false if the timer refused. */
static bool ring_timer_arm(struct ioreq_server *s, uint64_t ns)
{
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000u),
                                            .tv_nsec = (long)(ns % 1000000000u) } };

    s->timer_armed = timerfd_settime(s->timer_fd, 0, &its, NULL) == 0;
    return s->timer_armed;
}

/*
 * Shared pages from a predecessor (a handover) that drained a masked ring on
 * its timer: drain it on ours, now (or, never masking, take doorbells again;
 * ioreq_server_dispatch_all finds what is already there).
 */
static void ring_take_over(struct ioreq_server *s)
{
    if (s->buf && __atomic_load_n(&s->wait->ring_masked, __ATOMIC_SEQ_CST) &&
        (!s->delay_ns || !ring_timer_arm(s, 1)))
        __atomic_store_n(&s->wait->ring_masked, 0, __ATOMIC_SEQ_CST);
}

int ioreq_server_create(int fd, const struct ioreq_server_config *cfg, struct ioreq_server **out)
{
    static const struct ioreq_server_ops no_ops;
    struct ioreq_server *s;
    int rc;

    if (!cfg || !cfg->ops || !cfg->ops->handle) {
        close(fd);
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->ops = cfg->ops ? cfg->ops : &no_ops;
    s->opaque = cfg->opaque;
    s->edge_doorbells = cfg->edge_doorbells;
    s->sock = fd;
    s->buf_fd = -1;
    s->bell_fd = -1;
    s->timer_fd = -1;
    s->map_fd = -1;
    s->bad_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "ferry");
    rc = do_hello(s, cfg);
    if (rc == 0)
        rc = ring_timer_init(s, cfg);
    if (rc == 0)
        ring_take_over(s);      /* a restarted server on a kept registration */
    if (rc) {
        slog(s, FERRY_LOG_ERROR, "ioreq: registration as '%s' failed: %s%s%s", s->name,
             strerror(-rc), s->last_error[0] ? ": " : "", s->last_error);
        ioreq_server_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ioreq_server_connect(const char *path, const struct ioreq_server_config *cfg,
                         struct ioreq_server **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return ioreq_server_create(fd, cfg, out);
}

void ioreq_server_destroy(struct ioreq_server *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_size);
    for (unsigned i = 0; s->req_fd && i < s->nr_vcpus; i++) {
        if (s->req_fd[i] >= 0)
            close(s->req_fd[i]);
        if (s->resp_fd[i] >= 0)
            close(s->resp_fd[i]);
    }
    if (s->buf_fd >= 0)
        close(s->buf_fd);
    if (s->bell_fd >= 0)
        close(s->bell_fd);
    if (s->timer_fd >= 0)
        close(s->timer_fd);
    if (s->map_fd >= 0)
        close(s->map_fd);
    if (s->sock >= 0)
        close(s->sock);
    free(s->req_fd);
    free(s->resp_fd);
    free(s);
}

unsigned ioreq_server_nr_vcpus(const struct ioreq_server *s) { return s->nr_vcpus; }
uint32_t ioreq_server_id(const struct ioreq_server *s) { return s->id; }
int ioreq_server_control_fd(const struct ioreq_server *s) { return s->sock; }
int ioreq_server_buffered_fd(const struct ioreq_server *s)
{
    return s->bell_fd >= 0 ? s->bell_fd : s->buf_fd;
}
const char *ioreq_server_last_error(const struct ioreq_server *s) { return s->last_error; }

int ioreq_server_vcpu_fd(const struct ioreq_server *s, unsigned vcpu)
{
    return vcpu < s->nr_vcpus ? s->req_fd[vcpu] : -1;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static void bad_request(struct ioreq_server *s, const char *what, unsigned vcpu)
{
    uint32_t dropped;

    if (ferry_ratelimit_ok(&s->bad_rl, &dropped))
        slog(s, FERRY_LOG_WARNING, "ioreq: bad request from the router: %s vcpu=%u "
             "(%u similar suppressed)", what, vcpu, dropped);
}

/*
 * Handle every posted write in the ring; how many, or -EPROTO when the ring
 * is corrupt.
 */
static int drain_ring(struct ioreq_server *s)
{
    buffered_iopage_t *pg = s->buf;
    int n = 0;

    if (!pg)
        return 0;
    for (;; n++) {
        union bufioreq_pointers p;
        p.full = __atomic_load_n(&pg->ptrs.full, __ATOMIC_ACQUIRE);
        uint32_t avail = p.write_pointer - p.read_pointer;
        if (avail == 0)
            return n;
        if (avail > IOREQ_BUFFER_SLOT_NUM) {
            bad_request(s, "buffered ring pointers out of range", -1u);
            return -EPROTO;
        }
        buf_ioreq_t bp = pg->buf_ioreq[p.read_pointer % IOREQ_BUFFER_SLOT_NUM];
        unsigned qw = bp.size == 3;
        if (qw && avail < 2) {
            bad_request(s, "buffered 8-byte write without its second half", -1u);
            return -EPROTO;
        }
        ioreq_t req = {
            .addr = bp.addr, .data = bp.data, .count = 1, .size = 1u << bp.size,
            .state = STATE_IOREQ_READY, .dir = IOREQ_WRITE, .type = bp.type,
            .vp_eport = -1u,
        };
        if (qw)
            req.data |= (uint64_t)pg->buf_ioreq[(p.read_pointer + 1) % IOREQ_BUFFER_SLOT_NUM].data
                        << 32;
        if (bp.type == IOREQ_TYPE_PIO || bp.type == IOREQ_TYPE_COPY)
            s->ops->handle(s->opaque, -1u, &req);
        else
            bad_request(s, "buffered write of an unknown type", -1u);
        __atomic_fetch_add(&pg->ptrs.read_pointer, 1 + qw, __ATOMIC_RELEASE);
    }
}

static bool ring_pending(const struct ioreq_server *s)
{
    if (!s->buf)
        return false;
    union bufioreq_pointers p;
    p.full = __atomic_load_n(&s->buf->ptrs.full, __ATOMIC_SEQ_CST);
    return p.write_pointer != p.read_pointer;
}

static uint8_t *slot_state(ioreq_t *slot)
{
    return (uint8_t *)slot + offsetof(ioreq_t, type) - 1;
}

/*
 * A string request through the vCPU's bounce page: count single accesses
 * for the handler, values to and from the page.  Element i is at
 * data + i*size (data - i*size with df); all of them must lie in the page.
 */
static bool run_bounced(struct ioreq_server *s, unsigned vcpu, const ioreq_t *req)
{
    uint64_t off = req->data - IOREQ_BOUNCE_ADDR;
    uint64_t span = (uint64_t)(req->count - 1) * req->size;
    uint64_t lo = req->df ? off - span : off;

    if (req->data < IOREQ_BOUNCE_ADDR || (req->df && off < span) ||
        lo + span + req->size > IOREQ_BOUNCE_SIZE)
        return false;
    uint8_t *page = s->bounce + (size_t)vcpu * IOREQ_BOUNCE_SIZE;
    int64_t step = req->df ? -(int64_t)req->size : (int64_t)req->size;
    for (uint32_t i = 0; i < req->count; i++) {
        uint8_t *elem = page + off + step * (int64_t)i;
        ioreq_t one = *req;
        one.count = 1;
        one.data_is_ptr = 0;
        one.data = 0;
        if (req->type == IOREQ_TYPE_COPY)
            one.addr = req->addr + (uint64_t)(step * (int64_t)i);
        if (req->dir == IOREQ_WRITE)
            memcpy(&one.data, elem, req->size);
        s->ops->handle(s->opaque, vcpu, &one);
        if (req->dir == IOREQ_READ)
            memcpy(elem, &one.data, req->size);
    }
    return true;
}

static void handle_slot(struct ioreq_server *s, unsigned vcpu)
{
    ioreq_t *slot = &s->slots[vcpu];
    uint8_t *st = slot_state(slot);
    uint8_t b = __atomic_load_n(st, __ATOMIC_ACQUIRE);

    if ((b & 0xf) != STATE_IOREQ_READY)
        return;
    /* Take a private copy: the handler never reads shared memory twice. */
    ioreq_t req;
    memcpy(&req, slot, sizeof(req));
    __atomic_store_n(st, (uint8_t)((b & 0xf0) | STATE_IOREQ_INPROCESS), __ATOMIC_RELAXED);

    bool ok = (req.size == 1 || req.size == 2 || req.size == 4 || req.size == 8) &&
              (req.type == IOREQ_TYPE_PIO || req.type == IOREQ_TYPE_COPY ||
               req.type == IOREQ_TYPE_PCI_CONFIG);
    if (ok && req.data_is_ptr) {
        /* String I/O: never PCI config, never more than a page's worth. */
        ok = req.type != IOREQ_TYPE_PCI_CONFIG && req.count >= 1 && req.count <= IOREQ_REP_MAX;
        if (ok && req.data >= IOREQ_BOUNCE_ADDR)
            ok = run_bounced(s, vcpu, &req);
        else if (ok)
            s->ops->handle(s->opaque, vcpu, &req);      /* guest-physical: the handler copies */
    } else if (ok && req.count == 1) {
        s->ops->handle(s->opaque, vcpu, &req);
    } else {
        ok = false;
    }
    if (!ok) {
        bad_request(s, "malformed slot", vcpu);
        req.data = ~0ull;
    }
    if (req.dir == IOREQ_READ && !req.data_is_ptr)
        slot->data = req.data;
    __atomic_store_n(st, (uint8_t)((b & 0xf0) | STATE_IORESP_READY), __ATOMIC_SEQ_CST);
    /* Ring only a vCPU that said it sleeps (the fence pairs with its flag store). */
    if (__atomic_load_n(&s->wait->router_waiting[vcpu], __ATOMIC_SEQ_CST))
        eventfd_write(s->resp_fd[vcpu], 1);
}

/*
 * Before the caller sleeps: say so in server_idle, then look at the ring and
 * every slot once more, since a vCPU that published work while we were busy
 * did not ring.  Anything found is handled and the look repeats.
 */
static void settle(struct ioreq_server *s)
{
    for (;;) {
        int cpu = sched_getcpu();
        if (cpu >= 0)
            __atomic_store_n(&s->wait->server_cpu, cpu, __ATOMIC_RELAXED);
        __atomic_store_n(&s->wait->server_idle, 1, __ATOMIC_SEQ_CST);
        bool work = ring_pending(s);
        for (unsigned i = 0; !work && i < s->nr_vcpus; i++)
            work = (__atomic_load_n(slot_state(&s->slots[i]), __ATOMIC_SEQ_CST) & 0xf) ==
                   STATE_IOREQ_READY;
        if (!work)
            return;
        __atomic_store_n(&s->wait->server_idle, 0, __ATOMIC_SEQ_CST);
        if (drain_ring(s) < 0)
            return;
        for (unsigned i = 0; i < s->nr_vcpus; i++)
            handle_slot(s, i);
    }
}

/*
 * The ring's doorbell found work: mask the doorbell when it rang twice
 * within the delay and drain on the timer from now on.  Before the drain,
 * so that whoever sees these writes applied also sees the ring masked.
 */
static void pace_bell(struct ioreq_server *s)
{
    uint64_t now = now_ns();

    if (s->last_bell_ns && now - s->last_bell_ns < s->delay_ns) {
        __atomic_store_n(&s->wait->ring_masked, 1, __ATOMIC_SEQ_CST);
        if (!ring_timer_arm(s, s->delay_ns))
            __atomic_store_n(&s->wait->ring_masked, 0, __ATOMIC_SEQ_CST);
    }
    s->last_bell_ns = now;
}

/*
 * After a drain of n posted writes on the timer: go on draining on the
 * timer while writes keep coming, unmask once a drain finds none.
 * settle() looks at the ring once more after its fence, so a write that a
 * vCPU posted without ringing, because it still saw the ring masked, is
 * found.
 */
static void pace_timer(struct ioreq_server *s, int n)
{
    if (n == 0 || !ring_timer_arm(s, s->delay_ns))
        __atomic_store_n(&s->wait->ring_masked, 0, __ATOMIC_SEQ_CST);
}

int ioreq_server_dispatch_buffered(struct ioreq_server *s)
{
    eventfd_t v;
    bool fired = false;

    if (!s->buf)
        return 0;
    if (s->buf_fd >= 0)
        (void)eventfd_read(s->buf_fd, &v);
    if (s->timer_armed) {
        uint64_t ticks;
        if (read(s->timer_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks)) {
            fired = true;
            s->timer_armed = false;
        }
    }
    __atomic_store_n(&s->wait->server_idle, 0, __ATOMIC_SEQ_CST);
    bool masked = __atomic_load_n(&s->wait->ring_masked, __ATOMIC_RELAXED);
    if (s->delay_ns && !masked && !fired && ring_pending(s))
        pace_bell(s);
    int rc = drain_ring(s);
    if (rc < 0)
        return rc;
    /* Rung while masked (a half-full ring, an older router): the timer stays. */
    if (s->delay_ns && masked && fired)
        pace_timer(s, rc);
    settle(s);
    return 0;
}

int ioreq_server_dispatch_vcpu(struct ioreq_server *s, unsigned vcpu)
{
    eventfd_t v;

    if (vcpu >= s->nr_vcpus)
        return -EINVAL;
    /* Edge-triggered, the doorbell's counter only grows: 2^64 rings are out of reach. */
    if (!s->edge_doorbells)
        (void)eventfd_read(s->req_fd[vcpu], &v);
    __atomic_store_n(&s->wait->server_idle, 0, __ATOMIC_SEQ_CST);
    /* Posted writes issued before this request must take effect first. */
    drain_ring(s);
    handle_slot(s, vcpu);
    settle(s);
    return 0;
}

int ioreq_server_dispatch_all(struct ioreq_server *s)
{
    __atomic_store_n(&s->wait->server_idle, 0, __ATOMIC_SEQ_CST);
    drain_ring(s);
    for (unsigned i = 0; i < s->nr_vcpus; i++)
        handle_slot(s, i);
    settle(s);
    return 0;
}

int ioreq_server_check_control(struct ioreq_server *s)
{
    char c;

    if (s->gone)
        return -EPIPE;
    ssize_t n = recv(s->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        s->gone = true;
        return -EPIPE;
    }
    if (n > 0) {
        /* The router never speaks unasked: drop the stray message. */
        char buf[IOREQ_MSG_MAX];
        int fds[IOREQ_MSG_MAX_FDS];
        unsigned nfds;
        if (ioreq_msg_recv(s->sock, buf, fds, &nfds) > 0)
            close_fds(fds, nfds);
        bad_request(s, "unsolicited control message", -1u);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Requests to the router                                              */

static int range_call(struct ioreq_server *s, uint16_t type, enum ioreq_range_type t,
                      uint64_t start, uint64_t end, uint32_t flags)
{
    struct ioreq_msg_range m = { .type = t, .flags = flags, .start = start, .end = end };
    return simple_call(s, type, &m, sizeof(m), NULL, 0);
}

int ioreq_server_claim_range(struct ioreq_server *s, enum ioreq_range_type type,
                             uint64_t start, uint64_t end, uint32_t flags)
{
    return range_call(s, IOREQ_MSG_CLAIM, type, start, end, flags);
}

int ioreq_server_release_range(struct ioreq_server *s, enum ioreq_range_type type,
                               uint64_t start, uint64_t end)
{
    return range_call(s, IOREQ_MSG_RELEASE, type, start, end, 0);
}

int ioreq_server_enable(struct ioreq_server *s, bool enable)
{
    return simple_call(s, enable ? IOREQ_MSG_ENABLE : IOREQ_MSG_DISABLE, NULL, 0, NULL, 0);
}

int ioreq_server_set_irqfd(struct ioreq_server *s, uint32_t gsi, int fd, int resample_fd,
                           bool assign)
{
    struct ioreq_msg_irqfd m = {
        .gsi = gsi,
        .flags = (assign ? 0 : IOREQ_IRQFD_F_DEASSIGN) |
                 (resample_fd >= 0 ? IOREQ_IRQFD_F_RESAMPLE : 0),
    };
    int fds[2] = { fd, resample_fd };
    return simple_call(s, IOREQ_MSG_IRQFD, &m, sizeof(m), fds, resample_fd >= 0 ? 2 : 1);
}

int ioreq_server_set_irq_line(struct ioreq_server *s, uint32_t gsi, bool level)
{
    struct ioreq_msg_irq_line m = { .gsi = gsi, .level = level };
    return simple_call(s, IOREQ_MSG_IRQ_LINE, &m, sizeof(m), NULL, 0);
}

int ioreq_server_signal_msi(struct ioreq_server *s, uint64_t address, uint32_t data)
{
    struct ioreq_msg_msi m = { .address = address, .data = data };
    return simple_call(s, IOREQ_MSG_MSI, &m, sizeof(m), NULL, 0);
}

int ioreq_server_msi_route(struct ioreq_server *s, uint64_t address, uint32_t data, int fd,
                           uint32_t cookie)
{
    struct ioreq_msg_msi_route m = { .address = address, .data = data, .cookie = cookie };
    return simple_call(s, IOREQ_MSG_MSI_ROUTE, &m, sizeof(m), &fd, 1);
}

int ioreq_server_msi_unroute(struct ioreq_server *s, uint32_t cookie)
{
    struct ioreq_msg_msi_route m = { .flags = IOREQ_MSI_ROUTE_F_DEASSIGN, .cookie = cookie };
    return simple_call(s, IOREQ_MSG_MSI_ROUTE, &m, sizeof(m), NULL, 0);
}

int ioreq_server_get_memory(struct ioreq_server *s, int *memfd,
                            struct ioreq_msg_memory_reply *regions)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;
    size_t n;
    int rc = call(s, IOREQ_MSG_GET_MEMORY, NULL, 0, NULL, 0, buf, &n, fds, &nfds);

    if (rc) {
        close_fds(fds, nfds);
        return rc;
    }
    if (n - sizeof(struct ioreq_msg_hdr) != sizeof(*regions) || nfds != 1) {
        close_fds(fds, nfds);
        return -EPROTO;
    }
    memcpy(regions, buf + sizeof(struct ioreq_msg_hdr), sizeof(*regions));
    if (regions->nr_regions > IOREQ_MEMORY_MAX_REGIONS) {
        close(fds[0]);
        return -EPROTO;
    }
    *memfd = fds[0];
    return 0;
}

int ioreq_server_sleep(struct ioreq_server *s, enum ioreq_sleep_state state)
{
    struct ioreq_msg_sleep m = { .state = state, .flags = 0 };
    return simple_call(s, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0);
}

int ioreq_server_shutdown(struct ioreq_server *s, enum ioreq_shutdown_reason reason,
                          uint32_t code)
{
    struct ioreq_msg_shutdown m = { .reason = reason, .code = code };
    return simple_call(s, IOREQ_MSG_SHUTDOWN, &m, sizeof(m), NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Handing the registration to another process                         */

int ioreq_server_export(const struct ioreq_server *s, struct ioreq_server_handover *h,
                        int *fds, unsigned max_fds)
{
    unsigned n = 0;

    if (s->gone)
        return -EPIPE;
    if (s->map_fd < 0)
        return -EBADF;
    if (max_fds < 3 + 2 * s->nr_vcpus)
        return -E2BIG;
    *h = (struct ioreq_server_handover){
        .server_id = s->id, .nr_vcpus = s->nr_vcpus, .map_size = (uint32_t)s->map_size,
        .buffered_offset = s->buf ? (uint32_t)((char *)s->buf - (char *)s->map) : 0,
        .seq = s->seq,
    };
    memcpy(h->name, s->name, sizeof(h->name));
    fds[n++] = s->sock;
    fds[n++] = s->map_fd;
    if (s->buf)
        fds[n++] = s->buf_fd;
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        fds[n++] = s->req_fd[i];
        fds[n++] = s->resp_fd[i];
    }
    return (int)n;
}

int ioreq_server_adopt(const struct ioreq_server_handover *h, int *fds, unsigned nfds,
                       const struct ioreq_server_config *cfg, struct ioreq_server **out)
{
    struct ioreq_server *s;
    struct stat st;
    bool buffered = h->buffered_offset != 0;
    unsigned want;
    int rc = -EINVAL;

    if (!cfg || !cfg->ops || !cfg->ops->handle || h->nr_vcpus == 0 ||
        h->nr_vcpus > IOREQ_MAX_VCPUS)
        goto refuse;
    struct ioreq_layout lay;
    ioreq_layout_get(h->nr_vcpus, &lay);
    want = 2 + buffered + 2 * h->nr_vcpus;
    if (nfds != want || h->map_size < lay.total ||
        (buffered && h->buffered_offset != lay.buffered))
        goto refuse;
    if (fstat(fds[1], &st) < 0 || (uint64_t)st.st_size < h->map_size) {
        rc = -EBADF;
        goto refuse;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto refuse;
    }
    s->ops = cfg->ops;
    s->opaque = cfg->opaque;
    s->edge_doorbells = cfg->edge_doorbells;
    s->bad_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    memcpy(s->name, h->name, sizeof(h->name));
    s->name[IOREQ_NAME_MAX] = '\0';
    s->id = h->server_id;
    s->seq = h->seq;
    s->nr_vcpus = h->nr_vcpus;
    s->map_size = h->map_size;
    s->sock = fds[0];
    s->map_fd = fds[1];
    s->buf_fd = buffered ? fds[2] : -1;
    s->bell_fd = -1;
    s->timer_fd = -1;
    s->req_fd = malloc(s->nr_vcpus * sizeof(int));
    s->resp_fd = malloc(s->nr_vcpus * sizeof(int));
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->map_fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        rc = -errno;
    } else if (!s->req_fd || !s->resp_fd) {
        rc = -ENOMEM;
    } else {
        rc = 0;
    }
    if (rc) {
        free(s->req_fd);
        free(s->resp_fd);
        s->req_fd = s->resp_fd = NULL;
        s->nr_vcpus = 0;
        ioreq_server_destroy(s);    /* closes sock, map_fd, buf_fd */
        close_fds(fds + 2 + buffered, nfds - 2 - buffered);
        return rc;
    }
    s->slots = s->map;
    s->wait = (struct ioreq_wait_page *)((char *)s->map + lay.wait);
    s->bounce = (uint8_t *)s->map + lay.bounce;
    if (buffered)
        s->buf = (buffered_iopage_t *)((char *)s->map + h->buffered_offset);
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        s->req_fd[i] = fds[2 + buffered + 2 * i];
        s->resp_fd[i] = fds[2 + buffered + 2 * i + 1];
    }
    rc = ring_timer_init(s, cfg);
    if (rc) {
        ioreq_server_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
refuse:
    close_fds(fds, nfds);
    return rc;
}

void ioreq_server_take_over(struct ioreq_server *s, uint32_t seq)
{
    s->seq = seq;
    ring_take_over(s);
}

int ioreq_server_unregister(struct ioreq_server *s)
{
    if (!s || s->sock < 0)
        return -ENOTCONN;
    return simple_call(s, IOREQ_MSG_DESTROY, NULL, 0, NULL, 0);
}

void ioreq_server_abandon(struct ioreq_server *s)
{
    if (!s)
        return;
    /* Nothing is said to the router: the registration lives on in the successor. */
    ioreq_server_destroy(s);
}

int ioreq_server_handover(struct ioreq_server *s, uint32_t phase, uint32_t pid)
{
    struct ioreq_msg_handover m = { .phase = phase, .pid = pid };
    return simple_call(s, IOREQ_MSG_HANDOVER, &m, sizeof(m), NULL, 0);
}
