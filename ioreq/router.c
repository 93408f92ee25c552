// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The router: the hypervisor side of the ioreq transport.
 *
 * Threads: one control thread (whoever calls ioreq_router_dispatch) accepts
 * servers and answers their registration messages; any number of vCPU
 * threads call ioreq_router_send.  The range sets are guarded by a
 * read-write lock that vCPU threads hold only for the lookup; a server is
 * reference-counted so that a vCPU waiting on it keeps its shared page and
 * eventfds alive while the control thread detaches it.
 *
 * A server is detached for good when its socket hangs up, when it asks to
 * be destroyed, or when it leaves a request unanswered for timeout_ms.
 * Its ranges are released at once; requests waiting on it complete as
 * unclaimed ones do (reads all ones, writes dropped).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ioreq/ioreq-internal.h"

#define IOREQ_CLAIMS_MAX        4096    /* per server */
#define IOREQ_SERVERS_MAX       64
#define IOREQ_VCPU_FDS_PER_MSG  (IOREQ_MSG_MAX_FDS / 2)
#define IOREQ_HANDOVER_MS       15000   /* longest a handover may hold vCPUs */

struct srv;

struct claim {
    struct srv *srv;
    uint32_t flags;
    enum ioreq_range_type type;
    uint64_t start, end;
    struct claim *next;             /* the server's list */
};

struct srv {
    atomic_int refs;
    struct ioreq_router *r;
    uint32_t id;
    char name[IOREQ_NAME_MAX + 1];
    int sock;
    bool registered;
    atomic_bool enabled;
    atomic_bool dead;
    _Atomic uint64_t handover_until;    /* CLOCK_MONOTONIC ns; 0: no handover under way */
    unsigned nr_claims;
    struct claim *claims;           /* guarded by the router's lock */
    struct ferry_ratelimit refusals; /* a hostile server must not flood the log */
    struct ferry_ratelimit shutdowns;   /* nor by asking for shutdown again and again */
    void *map;
    size_t map_size;
    int memfd;
    ioreq_t *slots;
    buffered_iopage_t *buf;         /* NULL unless the server asked for it */
    struct ioreq_wait_page *wait;   /* who sleeps: shared with the server */
    uint8_t *bounce;                /* nr_vcpus pages for string I/O */
    int buf_fd;
    pthread_mutex_t buf_lock;
    int32_t pid;                    /* as its HELLO said; 0: unknown */
    bool pinned;                    /* HELLO said: it chose its CPUs */
    atomic_uint_fast64_t *load;     /* requests per vCPU (sync and posted) */
    uint64_t *load_seen;            /* load at the previous ioreq_router_take_load */
    struct msi_route {
        bool used;
        uint32_t cookie, gsi;
        int fd;
    } msi_routes[IOREQ_MSI_ROUTES_MAX];     /* control thread only */
    int *req_fd;                    /* router -> server, per vCPU */
    int *resp_fd;                   /* server -> router, per vCPU */
};

struct ioreq_router {
    unsigned nr_vcpus;
    unsigned timeout_ms;
    unsigned spin_us;
    const struct ioreq_router_ops *ops;
    void *opaque;
    int epfd;
    int listen_fd;
    int spare_fd;                   /* given up to accept (and drop) a peer when out of fds */
    struct ferry_ratelimit accept_rl;
    char *listen_path;
    pthread_rwlock_t lock;          /* guards sets */
    struct ioreq_rangeset *sets[IOREQ_RANGE_NR];
    struct srv *servers[IOREQ_SERVERS_MAX];     /* control thread only */
    uint32_t next_id;
    atomic_uint_fast64_t sent, posted, unclaimed_reads, unclaimed_writes, failed;
    atomic_uint_fast64_t rep_sent, rep_elements, doorbells;
    atomic_uint live_servers;
};

#define rlog(r, level, ...) ferry_logf((r)->ops->log, (r)->opaque, level, __VA_ARGS__)

static const char listen_tag;       /* epoll data for the listening socket */

/* ------------------------------------------------------------------ */
/* Servers                                                             */

/*
 * Frees what a HELLO set up: the shared pages and the doorbells.  Also
 * undoes a HELLO that failed half-way, so that a peer retrying it cannot
 * pile up memfds, mappings and eventfds.
 */
static void srv_free_pages(struct srv *s)
{
    if (s->map)
        munmap(s->map, s->map_size);
    if (s->memfd >= 0)
        close(s->memfd);
    if (s->buf_fd >= 0)
        close(s->buf_fd);
    for (unsigned i = 0; s->req_fd && s->resp_fd && i < s->r->nr_vcpus; i++) {
        if (s->req_fd[i] >= 0)
            close(s->req_fd[i]);
        if (s->resp_fd[i] >= 0)
            close(s->resp_fd[i]);
    }
    free(s->req_fd);
    free(s->resp_fd);
    s->map = NULL;
    s->slots = NULL;
    s->buf = NULL;
    s->wait = NULL;
    s->bounce = NULL;
    s->memfd = s->buf_fd = -1;
    s->req_fd = s->resp_fd = NULL;
}

static void srv_unref(struct srv *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    srv_free_pages(s);
    if (s->sock >= 0)
        close(s->sock);
    pthread_mutex_destroy(&s->buf_lock);
    free(s->load);
    free(s->load_seen);
    free(s);
}

/* Releases every range of s; caller holds the write lock. */
static void srv_release_all(struct srv *s)
{
    struct ioreq_router *r = s->r;

    while (s->claims) {
        struct claim *c = s->claims;
        s->claims = c->next;
        (void)ioreq_rangeset_remove(r->sets[c->type], c->start, c->end, c);
        free(c);
    }
    s->nr_claims = 0;
}

/*
 * Detach s for good (any thread).  The first caller logs why, releases the
 * ranges, wakes every vCPU waiting on s and shuts the socket so that the
 * control thread drops the connection.
 */
static void srv_kill(struct srv *s, enum ferry_log_level level, const char *why)
{
    struct ioreq_router *r = s->r;

    if (atomic_exchange(&s->dead, true))
        return;
    if (s->registered)
        atomic_fetch_sub(&r->live_servers, 1);
    rlog(r, level, "ioreq server %u (%s) detached: %s", s->id, s->name, why);
    pthread_rwlock_wrlock(&r->lock);
    srv_release_all(s);
    pthread_rwlock_unlock(&r->lock);
    for (unsigned i = 0; s->resp_fd && i < r->nr_vcpus; i++)
        if (s->resp_fd[i] >= 0)
            eventfd_write(s->resp_fd[i], 1);
    shutdown(s->sock, SHUT_RDWR);
    if (r->ops->server_gone)
        r->ops->server_gone(r->opaque, s->name, why);
}

/* Control thread: undo s's MSI routes (the GSIs go back to the hypervisor). */
static void srv_unroute_all(struct srv *s)
{
    struct ioreq_router *r = s->r;

    for (unsigned i = 0; i < IOREQ_MSI_ROUTES_MAX; i++) {
        struct msi_route *m = &s->msi_routes[i];
        if (!m->used)
            continue;
        uint32_t gsi = m->gsi;
        if (r->ops->msi_route)
            (void)r->ops->msi_route(r->opaque, 0, 0, m->fd, false, &gsi);
        close(m->fd);
        m->used = false;
    }
}

/* Control thread: forget the connection (the last reference frees s). */
static void srv_drop(struct srv *s)
{
    struct ioreq_router *r = s->r;

    srv_kill(s, FERRY_LOG_WARNING, "connection closed");
    srv_unroute_all(s);
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, s->sock, NULL);
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++)
        if (r->servers[i] == s)
            r->servers[i] = NULL;
    srv_unref(s);
}

/* ------------------------------------------------------------------ */
/* Registration messages (control thread)                              */

static int reply(struct srv *s, uint32_t seq, int status, const char *fmt, ...)
    FERRY_PRINTF(4, 5);

static int reply(struct srv *s, uint32_t seq, int status, const char *fmt, ...)
{
    struct ioreq_msg_reply m = { .status = status };
    size_t len = sizeof(m.status);

    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m.message, sizeof(m.message), fmt, ap);
        va_end(ap);
        len += strlen(m.message) + 1;
        uint32_t dropped = 0;
        if (ferry_ratelimit_ok(&s->refusals, &dropped))
            rlog(s->r, FERRY_LOG_INFO, "ioreq server %u (%s): refused: %s (%u similar suppressed)",
                 s->id, s->name, m.message, dropped);
    }
    return ioreq_msg_send(s->sock, IOREQ_MSG_REPLY, seq, &m, len, NULL, 0);
}

static uint64_t now_ns(void);

/*
 * The registration moves to another process (the fds went by SCM_RIGHTS;
 * this is only the news): while it does, vCPUs wait for an answer past
 * timeout_ms, up to IOREQ_HANDOVER_MS.
 */
static int handle_handover(struct srv *s, uint32_t seq, const struct ioreq_msg_handover *m)
{
    struct ioreq_router *r = s->r;

    switch (m->phase) {
    case IOREQ_HANDOVER_BEGIN:
        atomic_store(&s->handover_until, now_ns() + (uint64_t)IOREQ_HANDOVER_MS * 1000000);
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s): handing over to pid %u", s->id, s->name,
             m->pid);
        break;
    case IOREQ_HANDOVER_DONE:
    case IOREQ_HANDOVER_ABORT:
        atomic_store(&s->handover_until, 0);
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s): handover %s (pid %u serves)", s->id,
             s->name, m->phase == IOREQ_HANDOVER_DONE ? "done" : "aborted", m->pid);
        break;
    default:
        return reply(s, seq, -EINVAL, "unknown handover phase %u", m->phase);
    }
    return reply(s, seq, 0, NULL);
}

static int new_eventfd(void)
{
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static int handle_hello(struct srv *s, uint32_t seq, const struct ioreq_msg_hello *h)
{
    struct ioreq_router *r = s->r;
    unsigned n = r->nr_vcpus;

    if (s->registered)
        return reply(s, seq, -EALREADY, "already registered");
    srv_free_pages(s);      /* what an earlier, failed HELLO left */
    memcpy(s->name, h->name, IOREQ_NAME_MAX);
    s->pid = h->pid > 0 ? h->pid : 0;
    s->pinned = h->flags & IOREQ_HELLO_F_PINNED;
    s->name[IOREQ_NAME_MAX] = '\0';
    for (char *p = s->name; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    if (!s->name[0])
        strcpy(s->name, "unnamed");

    struct ioreq_layout lay;
    ioreq_layout_get(n, &lay);
    s->map_size = lay.total;
    s->memfd = memfd_create("ferry-ioreq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->memfd < 0 || ftruncate(s->memfd, (off_t)s->map_size) < 0 ||
        fcntl(s->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        return reply(s, seq, -errno, "cannot create the shared pages: %s", strerror(errno));
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        return reply(s, seq, -errno, "cannot map the shared pages: %s", strerror(errno));
    }
    s->slots = s->map;
    s->wait = (struct ioreq_wait_page *)((char *)s->map + lay.wait);
    s->bounce = (uint8_t *)s->map + lay.bounce;
    /* Until the server says otherwise it may be asleep: ring. */
    __atomic_store_n(&s->wait->server_idle, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->wait->server_cpu, -1, __ATOMIC_SEQ_CST);
    s->req_fd = malloc(n * sizeof(int));
    s->resp_fd = malloc(n * sizeof(int));
    if (!s->req_fd || !s->resp_fd) {
        free(s->req_fd);
        free(s->resp_fd);
        s->req_fd = s->resp_fd = NULL;
        return reply(s, seq, -ENOMEM, "out of memory");
    }
    for (unsigned i = 0; i < n; i++)
        s->req_fd[i] = s->resp_fd[i] = -1;
    for (unsigned i = 0; i < n; i++) {
        s->req_fd[i] = new_eventfd();
        s->resp_fd[i] = new_eventfd();
        if (s->req_fd[i] < 0 || s->resp_fd[i] < 0)
            return reply(s, seq, -errno, "cannot create eventfds: %s", strerror(errno));
    }
    if (h->flags & IOREQ_HELLO_F_BUFFERED) {
        s->buf = (buffered_iopage_t *)((char *)s->map + lay.buffered);
        s->buf_fd = new_eventfd();
        if (s->buf_fd < 0)
            return reply(s, seq, -errno, "cannot create eventfds: %s", strerror(errno));
    }

    struct ioreq_msg_hello_reply rep = {
        .status = 0, .server_id = s->id, .nr_vcpus = n, .shared_offset = 0,
        .buffered_offset = s->buf ? (uint32_t)lay.buffered : 0,
        .map_size = (uint32_t)s->map_size,
        .wait_offset = (uint32_t)lay.wait, .bounce_offset = (uint32_t)lay.bounce,
    };
    int fds[2] = { s->memfd, s->buf_fd };
    int rc = ioreq_msg_send(s->sock, IOREQ_MSG_REPLY, seq, &rep, sizeof(rep), fds,
                            s->buf ? 2 : 1);
    for (unsigned first = 0; rc == 0 && first < n; first += IOREQ_VCPU_FDS_PER_MSG) {
        struct ioreq_msg_vcpu_fds v = { .first = first, .count = n - first };
        int vf[IOREQ_MSG_MAX_FDS];
        if (v.count > IOREQ_VCPU_FDS_PER_MSG)
            v.count = IOREQ_VCPU_FDS_PER_MSG;
        for (unsigned i = 0; i < v.count; i++) {
            vf[2 * i] = s->req_fd[first + i];
            vf[2 * i + 1] = s->resp_fd[first + i];
        }
        rc = ioreq_msg_send(s->sock, IOREQ_MSG_VCPU_FDS, seq, &v, sizeof(v), vf, 2 * v.count);
    }
    if (rc == 0) {
        s->registered = true;
        atomic_fetch_add(&r->live_servers, 1);
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s) registered vcpus=%u buffered=%d",
             s->id, s->name, n, s->buf != NULL);
    }
    return rc;
}

static const char *range_type_name(uint32_t t)
{
    static const char *names[] = { "port", "mmio", "pci" };
    return t < IOREQ_RANGE_NR ? names[t] : "?";
}

static int check_range(const struct ioreq_msg_range *m, char *why, size_t n)
{
    if (m->type >= IOREQ_RANGE_NR) {
        snprintf(why, n, "unknown range type %u", m->type);
        return -EINVAL;
    }
    if (m->start > m->end) {
        snprintf(why, n, "%s range 0x%llx-0x%llx ends before it starts", range_type_name(m->type),
                 (unsigned long long)m->start, (unsigned long long)m->end);
        return -EINVAL;
    }
    if ((m->type == IOREQ_RANGE_PORT && m->end > 0xffff) ||
        (m->type == IOREQ_RANGE_PCI && m->end > 0xffffffffu)) {
        snprintf(why, n, "%s range 0x%llx-0x%llx is out of bounds", range_type_name(m->type),
                 (unsigned long long)m->start, (unsigned long long)m->end);
        return -ERANGE;
    }
    return 0;
}

static int handle_claim(struct srv *s, uint32_t seq, const struct ioreq_msg_range *m)
{
    struct ioreq_router *r = s->r;
    char why[160];
    void *other = NULL;
    int rc = check_range(m, why, sizeof(why));

    if (rc)
        return reply(s, seq, rc, "%s", why);
    if (s->nr_claims >= IOREQ_CLAIMS_MAX)
        return reply(s, seq, -ENOSPC, "server holds %u ranges already (the limit)",
                     s->nr_claims);
    struct claim *c = malloc(sizeof(*c));
    if (!c)
        return reply(s, seq, -ENOMEM, "out of memory");
    *c = (struct claim){ s, m->flags, m->type, m->start, m->end, NULL };
    pthread_rwlock_wrlock(&r->lock);
    /*
     * A vCPU may have killed s (timeout) since the control thread looked:
     * srv_kill already released its ranges, and a claim added now would
     * outlive s in the range set.
     */
    if (atomic_load(&s->dead)) {
        pthread_rwlock_unlock(&r->lock);
        free(c);
        return reply(s, seq, -ESHUTDOWN, "server is detached");
    }
    rc = ioreq_rangeset_add(r->sets[m->type], m->start, m->end, c, &other);
    /* The same range claimed again by its owner (a successor after a handover): a no-op. */
    if (rc == -EEXIST && ((struct claim *)other)->srv == s &&
        ((struct claim *)other)->start == m->start && ((struct claim *)other)->end == m->end &&
        ((struct claim *)other)->flags == m->flags) {
        pthread_rwlock_unlock(&r->lock);
        free(c);
        return reply(s, seq, 0, NULL);
    }
    char other_name[IOREQ_NAME_MAX + 1] = "";
    if (rc == -EEXIST)
        memcpy(other_name, ((struct claim *)other)->srv->name, sizeof(other_name));
    if (rc == 0) {
        c->next = s->claims;
        s->claims = c;
        s->nr_claims++;
    }
    pthread_rwlock_unlock(&r->lock);
    if (rc) {
        free(c);
        if (rc == -EEXIST)
            return reply(s, seq, rc, "%s range 0x%llx-0x%llx overlaps one claimed by %s",
                         range_type_name(m->type), (unsigned long long)m->start,
                         (unsigned long long)m->end, other_name);
        return reply(s, seq, rc, "cannot claim: %s", strerror(-rc));
    }
    return reply(s, seq, 0, NULL);
}

static int handle_release(struct srv *s, uint32_t seq, const struct ioreq_msg_range *m)
{
    struct ioreq_router *r = s->r;
    char why[160];
    int rc = check_range(m, why, sizeof(why));

    if (rc)
        return reply(s, seq, rc, "%s", why);
    pthread_rwlock_wrlock(&r->lock);
    uint64_t st, en;
    struct claim *c = ioreq_rangeset_lookup(r->sets[m->type], m->start, &st, &en);
    if (c && c->srv == s && st == m->start && en == m->end) {
        rc = ioreq_rangeset_remove(r->sets[m->type], st, en, c);
        for (struct claim **pp = &s->claims; rc == 0 && *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        if (rc == 0) {
            free(c);
            s->nr_claims--;
        }
    } else {
        rc = -ENOENT;
    }
    pthread_rwlock_unlock(&r->lock);
    if (rc)
        return reply(s, seq, rc, "%s range 0x%llx-0x%llx is not claimed by this server",
                     range_type_name(m->type), (unsigned long long)m->start,
                     (unsigned long long)m->end);
    return reply(s, seq, 0, NULL);
}

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}

static int handle_message(struct srv *s, const void *buf, size_t n, int *fds, unsigned nfds)
{
    struct ioreq_router *r = s->r;
    const struct ioreq_msg_hdr *h = buf;
    const void *p = (const char *)buf + sizeof(*h);
    char why[160];
    int rc = ioreq_msg_validate(buf, n, nfds, why, sizeof(why));

    if (rc) {
        close_fds(fds, nfds);
        uint32_t seq = n >= sizeof(*h) ? h->seq : 0;
        return reply(s, seq, rc, "malformed message: %s", why);
    }
    if (!s->registered && h->type != IOREQ_MSG_HELLO) {
        close_fds(fds, nfds);
        return reply(s, h->seq, -EPROTO, "message type %u before HELLO", h->type);
    }
    switch (h->type) {
    case IOREQ_MSG_HELLO:
        return handle_hello(s, h->seq, p);
    case IOREQ_MSG_CLAIM:
        return handle_claim(s, h->seq, p);
    case IOREQ_MSG_RELEASE:
        return handle_release(s, h->seq, p);
    case IOREQ_MSG_ENABLE:
    case IOREQ_MSG_DISABLE:
        atomic_store(&s->enabled, h->type == IOREQ_MSG_ENABLE);
        return reply(s, h->seq, 0, NULL);
    case IOREQ_MSG_IRQFD: {
        const struct ioreq_msg_irqfd *m = p;
        bool assign = !(m->flags & IOREQ_IRQFD_F_DEASSIGN);
        bool resample = m->flags & IOREQ_IRQFD_F_RESAMPLE;
        if (nfds != (resample ? 2u : 1u)) {
            close_fds(fds, nfds);
            return reply(s, h->seq, -EINVAL, "irqfd for gsi %u: %u fds, expected %u", m->gsi,
                         nfds, resample ? 2 : 1);
        }
        rc = r->ops->irqfd ? r->ops->irqfd(r->opaque, m->gsi, fds[0], resample ? fds[1] : -1,
                                           assign)
                           : -ENOSYS;
        close_fds(fds, nfds);
        if (rc)
            return reply(s, h->seq, rc, "irqfd for gsi %u: %s", m->gsi, strerror(-rc));
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_IRQ_LINE: {
        const struct ioreq_msg_irq_line *m = p;
        rc = r->ops->irq_line ? r->ops->irq_line(r->opaque, m->gsi, m->level != 0) : -ENOSYS;
        if (rc)
            return reply(s, h->seq, rc, "irq line %u: %s", m->gsi, strerror(-rc));
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_MSI: {
        const struct ioreq_msg_msi *m = p;
        /* Only the interrupt window: anything else would be a DMA write. */
        if ((m->address >> 20) != 0xfee)
            return reply(s, h->seq, -EINVAL, "msi address 0x%llx is outside 0xfee00000-0xfeefffff",
                         (unsigned long long)m->address);
        rc = r->ops->msi ? r->ops->msi(r->opaque, m->address, m->data) : -ENOSYS;
        if (rc)
            return reply(s, h->seq, rc, "msi 0x%llx/0x%x: %s", (unsigned long long)m->address,
                         m->data, strerror(-rc));
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_MSI_ROUTE: {
        const struct ioreq_msg_msi_route *m = p;
        struct msi_route *slot = NULL, *mine = NULL;
        for (unsigned i = 0; i < IOREQ_MSI_ROUTES_MAX; i++) {
            if (s->msi_routes[i].used && s->msi_routes[i].cookie == m->cookie)
                mine = &s->msi_routes[i];
            else if (!s->msi_routes[i].used && !slot)
                slot = &s->msi_routes[i];
        }
        if (m->flags & IOREQ_MSI_ROUTE_F_DEASSIGN) {
            close_fds(fds, nfds);
            if (!mine)
                return reply(s, h->seq, -ENOENT, "msi route %u does not exist", m->cookie);
            uint32_t gsi = mine->gsi;
            if (r->ops->msi_route)
                (void)r->ops->msi_route(r->opaque, 0, 0, mine->fd, false, &gsi);
            close(mine->fd);
            mine->used = false;
            return reply(s, h->seq, 0, NULL);
        }
        if (nfds != 1) {
            close_fds(fds, nfds);
            return reply(s, h->seq, -EINVAL, "msi route %u: %u fds, expected 1", m->cookie, nfds);
        }
        if ((m->address >> 20) != 0xfee) {
            close(fds[0]);
            return reply(s, h->seq, -EINVAL, "msi address 0x%llx is outside 0xfee00000-0xfeefffff",
                         (unsigned long long)m->address);
        }
        if (mine) {
            /* A cookie routed again replaces its route: a successor after a handover
             * numbers its routes from the start, and the old eventfds are dead. */
            uint32_t old_gsi = mine->gsi;
            if (r->ops->msi_route)
                (void)r->ops->msi_route(r->opaque, 0, 0, mine->fd, false, &old_gsi);
            close(mine->fd);
            mine->used = false;
            slot = mine;
        }
        if (!slot) {
            close(fds[0]);
            return reply(s, h->seq, -ENOSPC, "msi route %u: the server has %u already (the limit)",
                         m->cookie, IOREQ_MSI_ROUTES_MAX);
        }
        uint32_t gsi = 0;
        rc = r->ops->msi_route ? r->ops->msi_route(r->opaque, m->address, m->data, fds[0], true,
                                                   &gsi)
                               : -ENOSYS;
        if (rc) {
            close(fds[0]);
            return reply(s, h->seq, rc, "msi route 0x%llx/0x%x: %s", (unsigned long long)m->address,
                         m->data, strerror(-rc));
        }
        *slot = (struct msi_route){ .used = true, .cookie = m->cookie, .gsi = gsi, .fd = fds[0] };
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_GET_MEMORY: {
        struct ioreq_msg_memory_reply m = { 0 };
        int memfd = r->ops->memory ? r->ops->memory(r->opaque, &m) : -ENOSYS;
        if (memfd < 0)
            return reply(s, h->seq, memfd, "guest memory: %s", strerror(-memfd));
        if (m.nr_regions > IOREQ_MEMORY_MAX_REGIONS)
            return reply(s, h->seq, -E2BIG, "guest memory: too many regions");
        m.status = 0;
        return ioreq_msg_send(s->sock, IOREQ_MSG_REPLY, h->seq, &m, sizeof(m), &memfd, 1);
    }
    case IOREQ_MSG_SHUTDOWN: {
        const struct ioreq_msg_shutdown *m = p;
        if (m->reason > IOREQ_SHUTDOWN_CRASH)
            return reply(s, h->seq, -EINVAL, "unknown shutdown reason %u", m->reason);
        uint32_t dropped = 0;
        if (ferry_ratelimit_ok(&s->shutdowns, &dropped))
            rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s) requests shutdown reason=%u code=%u "
                 "(%u similar suppressed)", s->id, s->name, m->reason, m->code, dropped);
        if (r->ops->shutdown)
            r->ops->shutdown(r->opaque, m->reason, m->code);
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_SLEEP: {
        const struct ioreq_msg_sleep *m = p;
        char swhy[IOREQ_REPLY_MSG_MAX] = "";
        if (m->state != IOREQ_SLEEP_WAKE && m->state != IOREQ_SLEEP_S3)
            return reply(s, h->seq, -EINVAL, "unknown sleep state %u (0 wake, 3 suspend)",
                         m->state);
        if (m->flags)
            return reply(s, h->seq, -EINVAL, "sleep flags 0x%x: must be 0", m->flags);
        if (!r->ops->sleep)
            return reply(s, h->seq, -ENOSYS, "this hypervisor cannot suspend guests");
        uint32_t dropped = 0;
        if (ferry_ratelimit_ok(&s->shutdowns, &dropped))
            rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s) requests %s (%u similar suppressed)",
                 s->id, s->name, m->state == IOREQ_SLEEP_S3 ? "S3 suspend" : "wake-up",
                 dropped);
        rc = r->ops->sleep(r->opaque, (enum ioreq_sleep_state)m->state, swhy, sizeof(swhy));
        if (rc)
            return reply(s, h->seq, rc, "%s", swhy[0] ? swhy : strerror(-rc));
        return reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_HANDOVER:
        return handle_handover(s, h->seq, p);
    case IOREQ_MSG_DESTROY:
        reply(s, h->seq, 0, NULL);
        srv_kill(s, FERRY_LOG_INFO, "destroyed by the server");
        return -ECONNRESET;
    default:
        close_fds(fds, nfds);
        return reply(s, h->seq, -EBADMSG, "message type %u is not a request", h->type);
    }
}

/* ------------------------------------------------------------------ */
/* Setup and the control loop                                          */

int ioreq_router_create(const struct ioreq_router_config *cfg, struct ioreq_router **out)
{
    static const struct ioreq_router_ops no_ops;
    struct ioreq_router *r;

    if (!cfg || cfg->nr_vcpus == 0 || cfg->nr_vcpus > IOREQ_MAX_VCPUS)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->nr_vcpus = cfg->nr_vcpus;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    r->spin_us = cfg->spin_us ? cfg->spin_us : 20;
    r->ops = cfg->ops ? cfg->ops : &no_ops;
    r->opaque = cfg->opaque;
    r->listen_fd = -1;
    r->spare_fd = -1;
    r->accept_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 1);
    r->next_id = 1;
    pthread_rwlock_init(&r->lock, NULL);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        int rc = -errno;
        free(r);
        return rc;
    }
    for (int t = 0; t < IOREQ_RANGE_NR; t++) {
        r->sets[t] = ioreq_rangeset_new();
        if (!r->sets[t]) {
            ioreq_router_destroy(r);
            return -ENOMEM;
        }
    }
    *out = r;
    return 0;
}

void ioreq_router_destroy(struct ioreq_router *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++)
        if (r->servers[i]) {
            srv_kill(r->servers[i], FERRY_LOG_INFO, "the router is shutting down");
            srv_drop(r->servers[i]);
        }
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->spare_fd >= 0)
        close(r->spare_fd);
    if (r->listen_path) {
        unlink(r->listen_path);
        free(r->listen_path);
    }
    for (int t = 0; t < IOREQ_RANGE_NR; t++)
        ioreq_rangeset_free(r->sets[t]);
    close(r->epfd);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

int ioreq_router_listen(struct ioreq_router *r, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, rc;

    if (r->listen_fd >= 0)
        return -EBUSY;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 16) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = (void *)&listen_tag };
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    r->listen_fd = fd;
    r->listen_path = strdup(path);
    r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

/*
 * Take a new server.  Out of file descriptors, the pending peer would keep
 * the listening socket readable and the caller's loop spinning: give up
 * the spare fd, accept the peer and drop it (it sees a hang-up), take the
 * spare back.
 */
static void accept_server(struct ioreq_router *r)
{
    int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    uint32_t dropped;

    if (fd >= 0) {
        if (ioreq_router_add_connection(r, fd) < 0)
            rlog(r, FERRY_LOG_WARNING, "ioreq: could not take a new server connection");
        return;
    }
    if ((errno != EMFILE && errno != ENFILE) || r->spare_fd < 0)
        return;
    close(r->spare_fd);
    fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    r->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (ferry_ratelimit_ok(&r->accept_rl, &dropped))
        rlog(r, FERRY_LOG_WARNING, "ioreq: refused a server: out of file descriptors "
             "(%u more refused)", dropped);
}

int ioreq_router_add_connection(struct ioreq_router *r, int fd)
{
    unsigned slot;
    struct srv *s;

    for (slot = 0; slot < IOREQ_SERVERS_MAX && r->servers[slot]; slot++)
        ;
    if (slot == IOREQ_SERVERS_MAX) {
        rlog(r, FERRY_LOG_WARNING, "ioreq: refusing a server: %u servers already",
             IOREQ_SERVERS_MAX);
        close(fd);
        return -EMFILE;
    }
    /* A peer that stops reading must not block the control thread in a reply. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int rc = -errno;
        rlog(r, FERRY_LOG_WARNING, "ioreq: refusing a server: cannot make fd %d non-blocking: %s",
             fd, strerror(errno));
        close(fd);
        return rc;
    }
    s = calloc(1, sizeof(*s));
    if (s) {
        s->load = calloc(r->nr_vcpus, sizeof(*s->load));
        s->load_seen = calloc(r->nr_vcpus, sizeof(*s->load_seen));
    }
    if (!s || !s->load || !s->load_seen) {
        if (s) {
            free(s->load);
            free(s->load_seen);
        }
        free(s);
        close(fd);
        return -ENOMEM;
    }
    atomic_init(&s->refs, 1);
    s->r = r;
    s->id = r->next_id++;
    s->sock = fd;
    s->memfd = -1;
    s->buf_fd = -1;
    strcpy(s->name, "unregistered");
    s->refusals = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    s->shutdowns = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    pthread_mutex_init(&s->buf_lock, NULL);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int rc = -errno;
        srv_unref(s);
        return rc;
    }
    r->servers[slot] = s;
    return 0;
}

int ioreq_router_get_fd(const struct ioreq_router *r)
{
    return r->epfd;
}

static void handle_connection(struct srv *s, uint32_t events)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;

    if (events & EPOLLIN) {
        ssize_t n = ioreq_msg_recv(s->sock, buf, fds, &nfds);
        if (n == -EAGAIN)
            return;
        if (n == -EMSGSIZE) {
            reply(s, 0, -EMSGSIZE, "message larger than %u bytes or with too many fds",
                  IOREQ_MSG_MAX);
            return;
        }
        if (n > 0) {
            if (!atomic_load(&s->dead) &&
                handle_message(s, buf, (size_t)n, fds, nfds) != -ECONNRESET)
                return;
        } else {
            close_fds(fds, nfds);
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
        srv_drop(s);
}

int ioreq_router_dispatch(struct ioreq_router *r)
{
    struct epoll_event ev[16];
    int n = epoll_wait(r->epfd, ev, 16, 0);

    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == &listen_tag) {
            accept_server(r);
            continue;
        }
        /* A connection dropped earlier in this batch may be gone. */
        struct srv *s = ev[i].data.ptr;
        bool live = false;
        for (unsigned k = 0; k < IOREQ_SERVERS_MAX; k++)
            live |= r->servers[k] == s;
        if (live)
            handle_connection(s, ev[i].events);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The vCPU path                                                       */

static uint8_t *state_byte(ioreq_t *slot)
{
    return (uint8_t *)slot + offsetof(ioreq_t, type) - 1;
}

static uint64_t size_mask(uint32_t size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Work for s is published (a READY slot or a ring entry): ring fd only if
 * the server said it may be asleep, and clear that so that the vCPUs
 * publishing more before it wakes do not ring again (it looks at every slot
 * and the ring before it sleeps).  The fence orders the publication before
 * the look at server_idle, as the server orders its server_idle store
 * before its last look at the slots.
 */
static void kick_server(struct srv *s, int fd)
{
    uint32_t *idle = &s->wait->server_idle;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(idle, __ATOMIC_RELAXED) && __atomic_exchange_n(idle, 0, __ATOMIC_SEQ_CST)) {
        atomic_fetch_add(&s->r->doorbells, 1);
        eventfd_write(fd, 1);
    }
}

/* Try the buffered ring; false when the write cannot or must not be posted. */
static bool post_buffered(struct srv *s, const ioreq_t *req)
{
    buffered_iopage_t *pg = s->buf;
    unsigned code;

    if (req->addr > 0xfffff || req->count != 1 || req->data_is_ptr)
        return false;
    switch (req->size) {
    case 1: code = 0; break;
    case 2: code = 1; break;
    case 4: code = 2; break;
    case 8: code = 3; break;
    default: return false;
    }
    unsigned qw = code == 3;
    buf_ioreq_t bp = { .type = req->type, .dir = IOREQ_WRITE, .size = code,
                       .addr = (uint32_t)req->addr, .data = (uint32_t)req->data };

    pthread_mutex_lock(&s->buf_lock);
    /* Canonicalise both pointers at once so neither ever overflows. */
    for (;;) {
        union bufioreq_pointers old, new;
        old.full = __atomic_load_n(&pg->ptrs.full, __ATOMIC_ACQUIRE);
        if (old.read_pointer < IOREQ_BUFFER_SLOT_NUM)
            break;
        uint32_t k = old.read_pointer / IOREQ_BUFFER_SLOT_NUM * IOREQ_BUFFER_SLOT_NUM;
        new.read_pointer = old.read_pointer - k;
        new.write_pointer = old.write_pointer - k;
        if (__atomic_compare_exchange_n(&pg->ptrs.full, &old.full, new.full, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            break;
    }
    uint32_t rp = __atomic_load_n(&pg->ptrs.read_pointer, __ATOMIC_ACQUIRE);
    uint32_t wp = pg->ptrs.write_pointer;   /* only producers write it, under buf_lock */
    if (wp - rp >= IOREQ_BUFFER_SLOT_NUM - qw) {
        pthread_mutex_unlock(&s->buf_lock);
        return false;       /* full: the caller sends it synchronously */
    }
    pg->buf_ioreq[wp % IOREQ_BUFFER_SLOT_NUM] = bp;
    if (qw) {
        bp.data = (uint32_t)(req->data >> 32);
        pg->buf_ioreq[(wp + 1) % IOREQ_BUFFER_SLOT_NUM] = bp;
    }
    __atomic_store_n(&pg->ptrs.write_pointer, wp + 1 + qw, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->buf_lock);
    kick_server(s, s->buf_fd);
    return true;
}

/*
 * Spin only while the server runs on another CPU: on this vCPU's own CPU
 * the spin would only keep it from running.
 */
static bool spin_worth_it(struct srv *s)
{
    int cpu = sched_getcpu();
    int32_t srv_cpu = __atomic_load_n(&s->wait->server_cpu, __ATOMIC_RELAXED);

    return cpu >= 0 && srv_cpu >= 0 && srv_cpu != cpu;
}

/* Wait for slot to reach IORESP_READY; false if s died or timed out. */
static bool wait_reply(struct ioreq_router *r, struct srv *s, unsigned vcpu, ioreq_t *slot)
{
    uint8_t *st = state_byte(slot);
    uint8_t *waiting = &s->wait->router_waiting[vcpu];
    uint64_t start = now_ns();
    uint64_t spin_end = r->spin_us == -1u || !spin_worth_it(s) ? start
                        : start + (uint64_t)r->spin_us * 1000;
    uint64_t deadline = start + (uint64_t)r->timeout_ms * 1000000;

    for (;;) {
        if ((__atomic_load_n(st, __ATOMIC_ACQUIRE) & 0xf) == STATE_IORESP_READY)
            return true;
        if (atomic_load(&s->dead))
            return false;
        uint64_t now = now_ns();
        if (now < spin_end) {
            __builtin_ia32_pause();
            continue;
        }
        if (now >= deadline) {
            uint64_t until = atomic_load(&s->handover_until);
            if (now < until) {
                deadline = until;       /* the successor answers */
                continue;
            }
            srv_kill(s, FERRY_LOG_ERROR, "no answer within the timeout");
            return false;
        }
        /* Say we sleep, then look once more: the server rings only when we say so. */
        __atomic_store_n(waiting, 1, __ATOMIC_SEQ_CST);
        if ((__atomic_load_n(st, __ATOMIC_SEQ_CST) & 0xf) == STATE_IORESP_READY) {
            __atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
            return true;
        }
        struct pollfd p = { .fd = s->resp_fd[vcpu], .events = POLLIN };
        int ms = (int)((deadline - now + 999999) / 1000000);
        if (poll(&p, 1, ms) > 0) {
            eventfd_t v;
            (void)eventfd_read(s->resp_fd[vcpu], &v);
        }
        __atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
    }
}

/*
 * The enabled, live owner of req's address with a reference taken, or NULL;
 * *flags gets its claim's flags.
 */
static struct srv *find_owner(struct ioreq_router *r, const ioreq_t *req, uint32_t *flags,
                              uint64_t *start, uint64_t *end)
{
    enum ioreq_range_type t;
    uint64_t key = req->addr;
    struct srv *s = NULL;

    switch (req->type) {
    case IOREQ_TYPE_PIO: t = IOREQ_RANGE_PORT; break;
    case IOREQ_TYPE_COPY: t = IOREQ_RANGE_MMIO; break;
    case IOREQ_TYPE_PCI_CONFIG: t = IOREQ_RANGE_PCI; key = IOREQ_PCI_ADDR_SBDF(req->addr); break;
    default: return NULL;
    }
    pthread_rwlock_rdlock(&r->lock);
    struct claim *c = ioreq_rangeset_lookup(r->sets[t], key, start, end);
    if (c && atomic_load(&c->srv->enabled) && !atomic_load(&c->srv->dead)) {
        s = c->srv;
        *flags = c->flags;
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_rwlock_unlock(&r->lock);
    return s;
}

static bool valid_request(const struct ioreq_router *r, unsigned vcpu, const ioreq_t *req)
{
    return vcpu < r->nr_vcpus &&
           (req->type == IOREQ_TYPE_PIO || req->type == IOREQ_TYPE_COPY ||
            req->type == IOREQ_TYPE_PCI_CONFIG) &&
           (req->size == 1 || req->size == 2 || req->size == 4 || req->size == 8);
}

/* Fill s's slot for vcpu, ring, wait; true when the server answered. */
static bool sync_request(struct ioreq_router *r, struct srv *s, unsigned vcpu, const ioreq_t *req)
{
    ioreq_t *slot = &s->slots[vcpu];

    slot->addr = req->addr;
    slot->data = req->dir == IOREQ_WRITE || req->data_is_ptr ? req->data : 0;
    slot->count = req->count ? req->count : 1;
    slot->size = req->size;
    slot->vp_eport = vcpu;
    slot->type = req->type;
    uint8_t b = STATE_IOREQ_READY | (req->data_is_ptr & 1) << 4 | (req->dir & 1) << 5 |
                (req->df & 1) << 6;
    __atomic_store_n(state_byte(slot), b, __ATOMIC_RELEASE);
    kick_server(s, s->req_fd[vcpu]);
    return wait_reply(r, s, vcpu, slot);
}

int ioreq_router_send(struct ioreq_router *r, unsigned vcpu, ioreq_t *req)
{
    uint32_t flags = 0;

    if (!valid_request(r, vcpu, req))
        return -EINVAL;
    struct srv *s = find_owner(r, req, &flags, NULL, NULL);
    if (!s) {
        if (req->dir == IOREQ_READ) {
            req->data = size_mask(req->size);
            atomic_fetch_add(&r->unclaimed_reads, 1);
        } else {
            atomic_fetch_add(&r->unclaimed_writes, 1);
        }
        return IOREQ_UNCLAIMED;
    }

    atomic_fetch_add_explicit(&s->load[vcpu], 1, memory_order_relaxed);
    if (req->dir == IOREQ_WRITE && (flags & IOREQ_CLAIM_F_BUFFERED) && s->buf &&
        post_buffered(s, req)) {
        atomic_fetch_add(&r->posted, 1);
        srv_unref(s);
        return IOREQ_POSTED;
    }

    int result;
    ioreq_t one = *req;
    one.count = 1;
    one.data_is_ptr = 0;
    if (sync_request(r, s, vcpu, &one)) {
        ioreq_t *slot = &s->slots[vcpu];
        if (req->dir == IOREQ_READ)
            req->data = slot->data & size_mask(req->size);
        __atomic_store_n(state_byte(slot), STATE_IOREQ_NONE, __ATOMIC_RELEASE);
        atomic_fetch_add(&r->sent, 1);
        result = IOREQ_SENT;
    } else {
        if (req->dir == IOREQ_READ)
            req->data = size_mask(req->size);
        atomic_fetch_add(&r->failed, 1);
        result = IOREQ_SERVER_FAILED;
    }
    srv_unref(s);
    return result;
}

int ioreq_router_send_rep(struct ioreq_router *r, unsigned vcpu, ioreq_t *req, void *buf)
{
    uint32_t flags = 0, n = req->count, size = req->size;

    if (!valid_request(r, vcpu, req) || req->type == IOREQ_TYPE_PCI_CONFIG || n == 0)
        return -EINVAL;
    if (n > IOREQ_REP_MAX || (uint64_t)n * size > IOREQ_BOUNCE_SIZE)
        return -E2BIG;
    uint64_t start = 0, end = 0, span = (uint64_t)(n - 1) * size;
    struct srv *s = find_owner(r, req, &flags, &start, &end);
    /*
     * MMIO addresses step with each element: all of them must lie in the
     * one claim, or a server would see accesses to what it never claimed.
     */
    if (s && req->type == IOREQ_TYPE_COPY &&
        (req->df ? req->addr - start < span : end - req->addr < span + size - 1)) {
        srv_unref(s);
        return -E2BIG;
    }
    if (!s) {
        if (req->dir == IOREQ_READ) {
            memset(buf, 0xff, (size_t)n * size);
            atomic_fetch_add(&r->unclaimed_reads, n);
        } else {
            atomic_fetch_add(&r->unclaimed_writes, n);
        }
        return IOREQ_UNCLAIMED;
    }

    /*
     * Element i of buf is the i-th repetition.  In the bounce page it sits
     * where Xen's rule puts it: data + i*size, or data - i*size with df.
     */
    atomic_fetch_add_explicit(&s->load[vcpu], 1, memory_order_relaxed);
    uint8_t *page = s->bounce + (size_t)vcpu * IOREQ_BOUNCE_SIZE;
    uint32_t first = req->df ? (n - 1) * size : 0;
    ioreq_t sr = *req;
    sr.data_is_ptr = 1;
    sr.data = IOREQ_BOUNCE_ADDR + first;
    if (req->dir == IOREQ_WRITE) {
        if (!req->df)
            memcpy(page, buf, (size_t)n * size);
        else
            for (uint32_t i = 0; i < n; i++)
                memcpy(page + first - i * size, (uint8_t *)buf + i * size, size);
    }
    int result;
    if (sync_request(r, s, vcpu, &sr)) {
        if (req->dir == IOREQ_READ) {
            /* The server wrote the page: copy each element once, where it belongs. */
            if (!req->df)
                memcpy(buf, page, (size_t)n * size);
            else
                for (uint32_t i = 0; i < n; i++)
                    memcpy((uint8_t *)buf + i * size, page + first - i * size, size);
        }
        __atomic_store_n(state_byte(&s->slots[vcpu]), STATE_IOREQ_NONE, __ATOMIC_RELEASE);
        atomic_fetch_add(&r->sent, 1);
        atomic_fetch_add(&r->rep_sent, 1);
        atomic_fetch_add(&r->rep_elements, n);
        result = IOREQ_SENT;
    } else {
        if (req->dir == IOREQ_READ)
            memset(buf, 0xff, (size_t)n * size);
        atomic_fetch_add(&r->failed, 1);
        result = IOREQ_SERVER_FAILED;
    }
    srv_unref(s);
    return result;
}

void ioreq_router_get_stats(struct ioreq_router *r, struct ioreq_router_stats *st)
{
    st->sent = atomic_load(&r->sent);
    st->posted = atomic_load(&r->posted);
    st->unclaimed_reads = atomic_load(&r->unclaimed_reads);
    st->unclaimed_writes = atomic_load(&r->unclaimed_writes);
    st->failed = atomic_load(&r->failed);
    st->rep_sent = atomic_load(&r->rep_sent);
    st->rep_elements = atomic_load(&r->rep_elements);
    st->doorbells = atomic_load(&r->doorbells);
    st->servers = atomic_load(&r->live_servers);
    /* servers[] belongs to the control thread, the one that asks this. */
    st->enabled = 0;
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++)
        if (r->servers[i] && atomic_load(&r->servers[i]->enabled) &&
            !atomic_load(&r->servers[i]->dead))
            st->enabled++;
}

unsigned ioreq_router_take_load(struct ioreq_router *r, struct ioreq_router_load *out,
                                unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < IOREQ_SERVERS_MAX && n < max; i++) {
        struct srv *s = r->servers[i];
        if (!s || !s->registered || atomic_load(&s->dead))
            continue;
        struct ioreq_router_load *l = &out[n++];
        *l = (struct ioreq_router_load){ .server_id = s->id, .pid = s->pid, .pinned = s->pinned };
        memcpy(l->name, s->name, sizeof(l->name));
        for (unsigned v = 0; v < r->nr_vcpus; v++) {
            uint64_t now = atomic_load_explicit(&s->load[v], memory_order_relaxed);
            uint64_t d = now - s->load_seen[v];
            s->load_seen[v] = now;
            l->requests += d;
            if (d > l->busiest_requests) {
                l->busiest_requests = d;
                l->busiest_vcpu = v;
            }
        }
    }
    return n;
}
