// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The router's vCPU path (any vCPU thread): find a request's owner under the
 * read lock, post a write to the server's buffered ring when its claim allows,
 * else fill the vCPU's slot, ring the server if it may sleep and wait for the
 * answer (spin, then sleep, up to timeout_ms or a handover's end); string I/O
 * goes as one request through the vCPU's bounce page.  Also the counters
 * (ioreq_router_get_stats).  router.c has the connections and registration.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "ioreq/router-internal.h"

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

uint64_t ioreq_router_now_ns(void)
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
static void kick_server(struct ioreq_srv *s, int fd)
{
    uint32_t *idle = &s->wait->server_idle;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(idle, __ATOMIC_RELAXED) && __atomic_exchange_n(idle, 0, __ATOMIC_SEQ_CST)) {
        atomic_fetch_add(&s->r->doorbells, 1);
        eventfd_write(fd, 1);
    }
}

/* Try the buffered ring; false when the write cannot or must not be posted. */
static bool post_buffered(struct ioreq_srv *s, const ioreq_t *req)
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
    /*
     * A masked ring is drained on the server's timer: no doorbell unless
     * it is half full.  The fence orders the entry before the look at
     * ring_masked, as the server orders its unmasking before its last look
     * at the ring.
     */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (wp + 1 + qw - rp < IOREQ_BUFFER_SLOT_NUM / 2 &&
        __atomic_load_n(&s->wait->ring_masked, __ATOMIC_RELAXED)) {
        atomic_fetch_add_explicit(&s->r->posted_quiet, 1, memory_order_relaxed);
        return true;
    }
    kick_server(s, s->buf_fd);
    return true;
}

/*
 * Spin only while the server runs on another CPU: on this vCPU's own CPU
 * the spin would only keep it from running.
 */
static bool spin_worth_it(struct ioreq_srv *s)
{
    int cpu = sched_getcpu();
    int32_t srv_cpu = __atomic_load_n(&s->wait->server_cpu, __ATOMIC_RELAXED);

    return cpu >= 0 && srv_cpu >= 0 && srv_cpu != cpu;
}

/* Wait for slot to reach IORESP_READY; false if s died or timed out. */
static bool wait_reply(struct ioreq_router *r, struct ioreq_srv *s, unsigned vcpu, ioreq_t *slot)
{
    uint8_t *st = state_byte(slot);
    uint8_t *waiting = &s->wait->router_waiting[vcpu];
    uint64_t start = ioreq_router_now_ns();
    uint64_t spin_end = r->spin_us == -1u || !spin_worth_it(s) ? start
                        : start + (uint64_t)r->spin_us * 1000;
    uint64_t deadline = start + (uint64_t)r->timeout_ms * 1000000;

    for (;;) {
        if ((__atomic_load_n(st, __ATOMIC_ACQUIRE) & 0xf) == STATE_IORESP_READY)
            return true;
        if (atomic_load(&s->dead))
            return false;
        uint64_t now = ioreq_router_now_ns();
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
            ioreq_router_srv_kill(s, FERRY_LOG_ERROR, "no answer within the timeout");
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
static struct ioreq_srv *find_owner(struct ioreq_router *r, const ioreq_t *req, uint32_t *flags,
                                    uint64_t *start, uint64_t *end)
{
    enum ioreq_range_type t;
    uint64_t key = req->addr;
    struct ioreq_srv *s = NULL;

    switch (req->type) {
    case IOREQ_TYPE_PIO: t = IOREQ_RANGE_PORT; break;
    case IOREQ_TYPE_COPY: t = IOREQ_RANGE_MMIO; break;
    case IOREQ_TYPE_PCI_CONFIG: t = IOREQ_RANGE_PCI; key = IOREQ_PCI_ADDR_SBDF(req->addr); break;
    default: return NULL;
    }
    pthread_rwlock_rdlock(&r->lock);
    struct ioreq_claim *c = ioreq_rangeset_lookup(r->sets[t], key, start, end);
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
static bool sync_request(struct ioreq_router *r, struct ioreq_srv *s, unsigned vcpu,
                         const ioreq_t *req)
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
    struct ioreq_srv *s = find_owner(r, req, &flags, NULL, NULL);
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
        ioreq_router_srv_unref(s);
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
    ioreq_router_srv_unref(s);
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
    struct ioreq_srv *s = find_owner(r, req, &flags, &start, &end);
    /*
     * MMIO addresses step with each element: all of them must lie in the
     * one claim, or a server would see accesses to what it never claimed.
     */
    if (s && req->type == IOREQ_TYPE_COPY &&
        (req->df ? req->addr - start < span : end - req->addr < span + size - 1)) {
        ioreq_router_srv_unref(s);
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
    ioreq_router_srv_unref(s);
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
    st->posted_quiet = atomic_load(&r->posted_quiet);
    st->servers = atomic_load(&r->live_servers);
    /* servers[] belongs to the control thread, the one that asks this. */
    st->enabled = 0;
    st->posted_pending = 0;
    for (unsigned i = 0; i < IOREQ_SERVERS_MAX; i++) {
        struct ioreq_srv *s = r->servers[i];
        if (s && atomic_load(&s->enabled) && !atomic_load(&s->dead))
            st->enabled++;
        if (s && s->buf && !atomic_load(&s->dead)) {
            union bufioreq_pointers p;
            p.full = __atomic_load_n(&s->buf->ptrs.full, __ATOMIC_ACQUIRE);
            st->posted_pending += p.write_pointer - p.read_pointer;
        }
    }
}

