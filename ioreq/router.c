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
 *
 * This file holds the connections, registration (HELLO, claims) and the
 * control loop; router-vcpu.c the vCPU path (synchronous requests, posted
 * writes to the buffered ring, string I/O through the bounce page);
 * router-ctl.c the requests for the hypervisor's interrupts, memory and
 * power state, MSI routes, the handover and the placement load.
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

#include "ioreq/router-internal.h"

static const char listen_tag;       /* epoll data for the listening socket */

/* handle_message: the connection's server was merged into a kept registration (and freed). */
#define IOREQ_ADOPTED   1

/* ------------------------------------------------------------------ */
/* Servers                                                             */

/*
 * Frees what a HELLO set up: the shared pages and the doorbells.  Also
 * undoes a HELLO that failed half-way, so that a peer retrying it cannot
 * pile up memfds, mappings and eventfds.
 */
static void srv_free_pages(struct ioreq_srv *s)
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

void ioreq_router_srv_unref(struct ioreq_srv *s)
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
static void srv_release_all(struct ioreq_srv *s)
{
    struct ioreq_router *r = s->r;

    while (s->claims) {
        struct ioreq_claim *c = s->claims;
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
void ioreq_router_srv_kill(struct ioreq_srv *s, enum ferry_log_level level, const char *why)
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


/*
 * Control thread: s's connection hung up.  Keep the registration for a
 * restarted server when the hypervisor asks for it (server_lost): the
 * claims stay, vCPUs wait until handover_until; else detach it.
 */
static bool srv_orphan(struct ioreq_srv *s)
{
    struct ioreq_router *r = s->r;

    if (!s->registered || s->orphan || atomic_load(&s->dead) || !r->ops->server_lost)
        return false;
    unsigned ms = r->ops->server_lost(r->opaque, s->id, s->name);
    if (!ms)
        return false;
    s->orphan = true;
    s->restarted = false;
    atomic_store(&s->handover_until, ioreq_router_now_ns() + (uint64_t)ms * 1000000);
    ioreq_router_unroute_all(s);        /* the dead process's eventfds */
    ioreq_router_unirqfd_all(s);        /* a restarted server assigns its own */
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, s->sock, NULL);
    close(s->sock);
    s->sock = -1;
    /* Nobody serves: whoever publishes work rings, for the restarted server to find. */
    __atomic_store_n(&s->wait->server_idle, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->wait->server_cpu, -1, __ATOMIC_SEQ_CST);
    rlog(r, FERRY_LOG_WARNING, "ioreq server %u (%s): its process is gone; its ranges stay "
         "claimed and vCPUs wait up to %u ms for a restarted server", s->id, s->name, ms);
    return true;
}

/* Control thread: forget the connection (the last reference frees s). */
static void srv_drop(struct ioreq_srv *s)
{
    struct ioreq_router *r = s->r;

    if (srv_orphan(s))
        return;
    ioreq_router_srv_kill(s, FERRY_LOG_WARNING, "connection closed");
    ioreq_router_unroute_all(s);
    ioreq_router_unirqfd_all(s);
    if (s->sock >= 0)
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, s->sock, NULL);
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++)
        if (r->servers[i] == s)
            r->servers[i] = NULL;
    ioreq_router_srv_unref(s);
}

/* ------------------------------------------------------------------ */
/* Registration messages (control thread)                              */

int ioreq_router_reply(struct ioreq_srv *s, uint32_t seq, int status, const char *fmt, ...)
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

static int new_eventfd(void)
{
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* The HELLO reply: the shared pages, the ring's doorbell, then every vCPU's doorbells. */
static int send_hello_reply(struct ioreq_srv *s, int sock, uint32_t seq)
{
    struct ioreq_layout lay;
    unsigned n = s->r->nr_vcpus;

    ioreq_layout_get(n, &lay);
    struct ioreq_msg_hello_reply rep = {
        .status = 0, .server_id = s->id, .nr_vcpus = n, .shared_offset = 0,
        .buffered_offset = s->buf ? (uint32_t)lay.buffered : 0,
        .map_size = (uint32_t)s->map_size,
        .wait_offset = (uint32_t)lay.wait, .bounce_offset = (uint32_t)lay.bounce,
    };
    int fds[2] = { s->memfd, s->buf_fd };
    int rc = ioreq_msg_send(sock, IOREQ_MSG_REPLY, seq, &rep, sizeof(rep), fds, s->buf ? 2 : 1);
    for (unsigned first = 0; rc == 0 && first < n; first += IOREQ_VCPU_FDS_PER_MSG) {
        struct ioreq_msg_vcpu_fds v = { .first = first, .count = n - first };
        int vf[IOREQ_MSG_MAX_FDS];
        if (v.count > IOREQ_VCPU_FDS_PER_MSG)
            v.count = IOREQ_VCPU_FDS_PER_MSG;
        for (unsigned i = 0; i < v.count; i++) {
            vf[2 * i] = s->req_fd[first + i];
            vf[2 * i + 1] = s->resp_fd[first + i];
        }
        rc = ioreq_msg_send(sock, IOREQ_MSG_VCPU_FDS, seq, &v, sizeof(v), vf, 2 * v.count);
    }
    return rc;
}

/* A registration kept for a restart (server_lost) that a server named name may take. */
static struct ioreq_srv *find_orphan(struct ioreq_router *r, const char *name, bool buffered)
{
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++) {
        struct ioreq_srv *o = r->servers[i];
        if (o && o->orphan && !atomic_load(&o->dead) && (o->buf != NULL) == buffered &&
            !strcmp(o->name, name))
            return o;
    }
    return NULL;
}

/*
 * A restarted server (s, a new connection) takes over the kept registration
 * o: o gets s's socket and serves on with its pages, doorbells and claims;
 * s is dropped.  Requests the dead process had begun go to the new one
 * again (INPROCESS back to READY); every doorbell rings once, so that it
 * looks at every slot and the ring when it serves.
 */
static int adopt_orphan(struct ioreq_srv *s, struct ioreq_srv *o, uint32_t seq)
{
    struct ioreq_router *r = s->r;

    /* The dead process's drain timer went with it: the ring takes doorbells again. */
    __atomic_store_n(&o->wait->ring_masked, 0, __ATOMIC_SEQ_CST);
    int rc = send_hello_reply(o, s->sock, seq);

    if (rc)
        return rc;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = o };
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, s->sock, &ev) < 0)
        return -errno;
    o->sock = s->sock;
    s->sock = -1;
    o->pid = s->msg_pid > 0 ? s->msg_pid : s->pid;
    o->pinned = s->pinned;
    o->orphan = false;
    o->restarted = true;
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++)
        if (r->servers[i] == s)
            r->servers[i] = NULL;
    ioreq_router_srv_unref(s);
    for (unsigned v = 0; v < r->nr_vcpus; v++) {
        uint8_t *st = (uint8_t *)&o->slots[v] + offsetof(ioreq_t, type) - 1;
        uint8_t b = __atomic_load_n(st, __ATOMIC_ACQUIRE);
        if ((b & 0xf) == STATE_IOREQ_INPROCESS)
            __atomic_store_n(st, (uint8_t)((b & 0xf0) | STATE_IOREQ_READY), __ATOMIC_RELEASE);
        eventfd_write(o->req_fd[v], 1);
    }
    if (o->buf_fd >= 0)
        eventfd_write(o->buf_fd, 1);
    __atomic_store_n(&o->wait->server_idle, 1, __ATOMIC_SEQ_CST);
    rlog(r, FERRY_LOG_WARNING, "ioreq server %u (%s): a restarted server (pid %d) took over "
         "its registration; its devices start afresh", o->id, o->name, (int)o->pid);
    if (r->ops->server_moved)
        r->ops->server_moved(r->opaque, o->id, o->name, o->pid);
    return IOREQ_ADOPTED;   /* s is gone: handle_connection must not touch it */
}

static int handle_hello(struct ioreq_srv *s, uint32_t seq, const struct ioreq_msg_hello *h)
{
    struct ioreq_router *r = s->r;
    unsigned n = r->nr_vcpus;

    if (s->registered)
        return ioreq_router_reply(s, seq, -EALREADY, "already registered");
    srv_free_pages(s);      /* what an earlier, failed HELLO left */
    memcpy(s->name, h->name, IOREQ_NAME_MAX);
    s->pid = s->msg_pid > 0 ? s->msg_pid : h->pid > 0 ? h->pid : 0;
    s->pinned = h->flags & IOREQ_HELLO_F_PINNED;
    s->name[IOREQ_NAME_MAX] = '\0';
    for (char *p = s->name; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    if (!s->name[0])
        strcpy(s->name, "unnamed");
    struct ioreq_srv *o = find_orphan(r, s->name, h->flags & IOREQ_HELLO_F_BUFFERED);
    if (o)
        return adopt_orphan(s, o, seq);

    struct ioreq_layout lay;
    ioreq_layout_get(n, &lay);
    s->map_size = lay.total;
    s->memfd = memfd_create("ferry-ioreq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->memfd < 0 || ftruncate(s->memfd, (off_t)s->map_size) < 0 ||
        fcntl(s->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        return ioreq_router_reply(s, seq, -errno, "cannot create the shared pages: %s",
                                  strerror(errno));
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        return ioreq_router_reply(s, seq, -errno, "cannot map the shared pages: %s",
                                  strerror(errno));
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
        return ioreq_router_reply(s, seq, -ENOMEM, "out of memory");
    }
    for (unsigned i = 0; i < n; i++)
        s->req_fd[i] = s->resp_fd[i] = -1;
    for (unsigned i = 0; i < n; i++) {
        s->req_fd[i] = new_eventfd();
        s->resp_fd[i] = new_eventfd();
        if (s->req_fd[i] < 0 || s->resp_fd[i] < 0)
            return ioreq_router_reply(s, seq, -errno, "cannot create eventfds: %s",
                                      strerror(errno));
    }
    if (h->flags & IOREQ_HELLO_F_BUFFERED) {
        s->buf = (buffered_iopage_t *)((char *)s->map + lay.buffered);
        s->buf_fd = new_eventfd();
        if (s->buf_fd < 0)
            return ioreq_router_reply(s, seq, -errno, "cannot create eventfds: %s",
                                      strerror(errno));
    }

    int rc = send_hello_reply(s, s->sock, seq);
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

static int handle_claim(struct ioreq_srv *s, uint32_t seq, const struct ioreq_msg_range *m)
{
    struct ioreq_router *r = s->r;
    char why[160];
    void *other = NULL;
    int rc = check_range(m, why, sizeof(why));

    if (rc)
        return ioreq_router_reply(s, seq, rc, "%s", why);
    if (s->nr_claims >= IOREQ_CLAIMS_MAX)
        return ioreq_router_reply(s, seq, -ENOSPC, "server holds %u ranges already (the limit)",
                                  s->nr_claims);
    struct ioreq_claim *c = malloc(sizeof(*c));
    if (!c)
        return ioreq_router_reply(s, seq, -ENOMEM, "out of memory");
    *c = (struct ioreq_claim){ s, m->flags, m->type, m->start, m->end, NULL };
    pthread_rwlock_wrlock(&r->lock);
    /*
     * A vCPU may have killed s (timeout) since the control thread looked:
     * srv_kill already released its ranges, and a claim added now would
     * outlive s in the range set.
     */
    if (atomic_load(&s->dead)) {
        pthread_rwlock_unlock(&r->lock);
        free(c);
        return ioreq_router_reply(s, seq, -ESHUTDOWN, "server is detached");
    }
    rc = ioreq_rangeset_add(r->sets[m->type], m->start, m->end, c, &other);
    /* The same range claimed again by its owner (a successor after a handover): a no-op. */
    if (rc == -EEXIST && ((struct ioreq_claim *)other)->srv == s &&
        ((struct ioreq_claim *)other)->start == m->start &&
        ((struct ioreq_claim *)other)->end == m->end &&
        ((struct ioreq_claim *)other)->flags == m->flags) {
        pthread_rwlock_unlock(&r->lock);
        free(c);
        return ioreq_router_reply(s, seq, 0, NULL);
    }
    char other_name[IOREQ_NAME_MAX + 1] = "";
    if (rc == -EEXIST)
        memcpy(other_name, ((struct ioreq_claim *)other)->srv->name, sizeof(other_name));
    if (rc == 0) {
        c->next = s->claims;
        s->claims = c;
        s->nr_claims++;
    }
    pthread_rwlock_unlock(&r->lock);
    if (rc) {
        free(c);
        if (rc == -EEXIST)
            return ioreq_router_reply(s, seq, rc,
                                      "%s range 0x%llx-0x%llx overlaps one claimed by %s",
                                      range_type_name(m->type), (unsigned long long)m->start,
                                      (unsigned long long)m->end, other_name);
        return ioreq_router_reply(s, seq, rc, "cannot claim: %s", strerror(-rc));
    }
    return ioreq_router_reply(s, seq, 0, NULL);
}

static int handle_release(struct ioreq_srv *s, uint32_t seq, const struct ioreq_msg_range *m)
{
    struct ioreq_router *r = s->r;
    char why[160];
    int rc = check_range(m, why, sizeof(why));

    if (rc)
        return ioreq_router_reply(s, seq, rc, "%s", why);
    pthread_rwlock_wrlock(&r->lock);
    uint64_t st, en;
    struct ioreq_claim *c = ioreq_rangeset_lookup(r->sets[m->type], m->start, &st, &en);
    if (c && c->srv == s && st == m->start && en == m->end) {
        rc = ioreq_rangeset_remove(r->sets[m->type], st, en, c);
        for (struct ioreq_claim **pp = &s->claims; rc == 0 && *pp; pp = &(*pp)->next)
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
        return ioreq_router_reply(s, seq, rc,
                                  "%s range 0x%llx-0x%llx is not claimed by this server",
                                  range_type_name(m->type), (unsigned long long)m->start,
                                  (unsigned long long)m->end);
    return ioreq_router_reply(s, seq, 0, NULL);
}

void ioreq_router_close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}

static int handle_message(struct ioreq_srv *s, const void *buf, size_t n, int *fds, unsigned nfds)
{
    const struct ioreq_msg_hdr *h = buf;
    const void *p = (const char *)buf + sizeof(*h);
    char why[160];
    int rc = ioreq_msg_validate(buf, n, nfds, why, sizeof(why));

    if (rc) {
        ioreq_router_close_fds(fds, nfds);
        uint32_t seq = n >= sizeof(*h) ? h->seq : 0;
        return ioreq_router_reply(s, seq, rc, "malformed message: %s", why);
    }
    if (!s->registered && h->type != IOREQ_MSG_HELLO) {
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, h->seq, -EPROTO, "message type %u before HELLO", h->type);
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
        if (h->type == IOREQ_MSG_ENABLE && s->restarted) {
            /* The restarted server serves: vCPUs wait no longer than timeout_ms again. */
            s->restarted = false;
            atomic_store(&s->handover_until, 0);
        }
        return ioreq_router_reply(s, h->seq, 0, NULL);
    case IOREQ_MSG_IRQFD:
    case IOREQ_MSG_IRQ_LINE:
    case IOREQ_MSG_MSI:
    case IOREQ_MSG_MSI_ROUTE:
    case IOREQ_MSG_GET_MEMORY:
    case IOREQ_MSG_SHUTDOWN:
    case IOREQ_MSG_SLEEP:
    case IOREQ_MSG_HANDOVER:
        return ioreq_router_handle_ctl(s, h, p, fds, nfds);
    case IOREQ_MSG_DESTROY:
        ioreq_router_reply(s, h->seq, 0, NULL);
        ioreq_router_srv_kill(s, FERRY_LOG_INFO, "destroyed by the server");
        return -ECONNRESET;
    default:
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, h->seq, -EBADMSG, "message type %u is not a request", h->type);
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
            ioreq_router_srv_kill(r->servers[i], FERRY_LOG_INFO, "the router is shutting down");
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
    return ioreq_router_add_connection_id(r, fd, NULL);
}

int ioreq_router_add_connection_id(struct ioreq_router *r, int fd, uint32_t *id)
{
    unsigned slot;
    struct ioreq_srv *s;
    int one = 1;

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
    /* Every message then says who sent it (the kernel's word, in our pid namespace). */
    (void)setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
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
        ioreq_router_srv_unref(s);
        return rc;
    }
    r->servers[slot] = s;
    if (id)
        *id = s->id;
    return 0;
}

int ioreq_router_get_fd(const struct ioreq_router *r)
{
    return r->epfd;
}

static void handle_connection(struct ioreq_srv *s, uint32_t events)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;

    if (events & EPOLLIN) {
        ssize_t n = ioreq_msg_recv_cred(s->sock, buf, fds, &nfds, &s->msg_pid);
        if (n == -EAGAIN)
            return;
        if (n == -EMSGSIZE) {
            ioreq_router_reply(s, 0, -EMSGSIZE, "message larger than %u bytes or with too many fds",
                               IOREQ_MSG_MAX);
            return;
        }
        if (n > 0) {
            int rc = atomic_load(&s->dead) ? -ECONNRESET
                                           : handle_message(s, buf, (size_t)n, fds, nfds);
            if (rc != -ECONNRESET)
                return;     /* also IOREQ_ADOPTED: s is freed */
        } else {
            ioreq_router_close_fds(fds, nfds);
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
        struct ioreq_srv *s = ev[i].data.ptr;
        bool live = false;
        for (unsigned k = 0; k < IOREQ_SERVERS_MAX; k++)
            live |= r->servers[k] == s;
        if (live)
            handle_connection(s, ev[i].events);
    }
    /* Registrations kept for a restart that nobody took in time (or that a vCPU gave up on). */
    uint64_t now = ioreq_router_now_ns();
    for (unsigned k = 0; k < IOREQ_SERVERS_MAX; k++) {
        struct ioreq_srv *s = r->servers[k];
        if (!s || !s->orphan)
            continue;
        if (!atomic_load(&s->dead) && now < atomic_load(&s->handover_until))
            continue;
        ioreq_router_srv_kill(s, FERRY_LOG_WARNING, "no restarted server took it over in time");
        s->orphan = false;
        srv_drop(s);
    }
    return 0;
}

