// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The router's control requests beyond registration (control thread): a
 * server's irqfds, interrupt lines, MSIs and MSI routes, guest memory,
 * shutdown and S3 sleep, the handover news, and the per-server load that
 * placement reads (ioreq_router_take_load).  router.c passes these message
 * types here; router-internal.h has the records.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ioreq/router-internal.h"

/* Control thread: undo s's MSI routes (the GSIs go back to the hypervisor). */
void ioreq_router_unroute_all(struct ioreq_srv *s)
{
    struct ioreq_router *r = s->r;

    for (unsigned i = 0; i < IOREQ_MSI_ROUTES_MAX; i++) {
        struct ioreq_msi_route *m = &s->msi_routes[i];
        if (!m->used)
            continue;
        uint32_t gsi = m->gsi;
        if (r->ops->msi_route)
            (void)r->ops->msi_route(r->opaque, 0, 0, m->fd, false, &gsi);
        close(m->fd);
        m->used = false;
    }
}

/* Control thread: deassign s's irqfds (the eventfds may live on elsewhere: KVM would keep them). */
void ioreq_router_unirqfd_all(struct ioreq_srv *s)
{
    struct ioreq_router *r = s->r;
    unsigned n = 0;

    for (unsigned i = 0; i < IOREQ_IRQFDS_MAX; i++) {
        struct ioreq_irqfd *q = &s->irqfds[i];
        if (!q->used)
            continue;
        if (r->ops->irqfd)
            (void)r->ops->irqfd(r->opaque, q->gsi, q->fd, q->resample_fd, false);
        close(q->fd);
        if (q->resample_fd >= 0)
            close(q->resample_fd);
        q->used = false;
        n++;
    }
    if (n)
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s): its %u irqfds deassigned", s->id, s->name,
             n);
}

/* The same open file (an eventfd passed again for its deassign)? */
static bool same_file(int a, int b)
{
    pid_t me = getpid();
    long k = syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);

    return k == 0;
}

/* The record of s's irqfd for gsi on the eventfd fd (another fd of it), or NULL. */
static struct ioreq_irqfd *irqfd_find(struct ioreq_srv *s, uint32_t gsi, int fd)
{
    for (unsigned i = 0; i < IOREQ_IRQFDS_MAX; i++)
        if (s->irqfds[i].used && s->irqfds[i].gsi == gsi && same_file(s->irqfds[i].fd, fd))
            return &s->irqfds[i];
    return NULL;
}

/* The irqfd message: assigned ones are kept (fds and all) until deassigned or s goes. */
static int handle_irqfd(struct ioreq_srv *s, uint32_t seq, const struct ioreq_msg_irqfd *m,
                        int *fds, unsigned nfds)
{
    struct ioreq_router *r = s->r;
    bool assign = !(m->flags & IOREQ_IRQFD_F_DEASSIGN);
    bool resample = m->flags & IOREQ_IRQFD_F_RESAMPLE;
    struct ioreq_irqfd *slot = NULL;
    int rc;

    if (nfds != (resample ? 2u : 1u)) {
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, seq, -EINVAL, "irqfd for gsi %u: %u fds, expected %u",
                                  m->gsi, nfds, resample ? 2 : 1);
    }
    if (!r->ops->irqfd) {
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, seq, -ENOSYS, "irqfd for gsi %u: %s", m->gsi,
                                  strerror(ENOSYS));
    }
    if (!assign) {
        struct ioreq_irqfd *q = irqfd_find(s, m->gsi, fds[0]);

        rc = r->ops->irqfd(r->opaque, m->gsi, fds[0], resample ? fds[1] : -1, false);
        ioreq_router_close_fds(fds, nfds);
        if (q) {
            close(q->fd);
            if (q->resample_fd >= 0)
                close(q->resample_fd);
            q->used = false;
        }
        if (rc)
            return ioreq_router_reply(s, seq, rc, "irqfd for gsi %u: %s", m->gsi,
                                      strerror(-rc));
        return ioreq_router_reply(s, seq, 0, NULL);
    }
    for (unsigned i = 0; i < IOREQ_IRQFDS_MAX && !slot; i++)
        if (!s->irqfds[i].used)
            slot = &s->irqfds[i];
    if (!slot) {
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, seq, -ENOSPC, "irqfd for gsi %u: server has %u irqfds "
                                  "already (at most)", m->gsi, IOREQ_IRQFDS_MAX);
    }
    rc = r->ops->irqfd(r->opaque, m->gsi, fds[0], resample ? fds[1] : -1, true);
    if (rc) {
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, seq, rc, "irqfd for gsi %u: %s", m->gsi, strerror(-rc));
    }
    *slot = (struct ioreq_irqfd){ .used = true, .gsi = m->gsi, .fd = fds[0],
                                  .resample_fd = resample ? fds[1] : -1 };
    return ioreq_router_reply(s, seq, 0, NULL);
}

/*
 * The registration moves to another process (the fds went by SCM_RIGHTS;
 * this is only the news): while it does, vCPUs wait for an answer past
 * timeout_ms, up to IOREQ_HANDOVER_MS.
 */
static int handle_handover(struct ioreq_srv *s, uint32_t seq,
                           const struct ioreq_msg_handover *m)
{
    struct ioreq_router *r = s->r;

    switch (m->phase) {
    case IOREQ_HANDOVER_BEGIN:
        atomic_store(&s->handover_until,
                     ioreq_router_now_ns() + (uint64_t)IOREQ_HANDOVER_MS * 1000000);
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s): handing over to pid %u", s->id, s->name,
             m->pid);
        break;
    case IOREQ_HANDOVER_DONE:
    case IOREQ_HANDOVER_ABORT: {
        atomic_store(&s->handover_until, 0);
        /* Who serves now, as the kernel says: the sender of this message. */
        int32_t pid = s->msg_pid > 0 ? s->msg_pid : (int32_t)m->pid;
        rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s): handover %s (pid %d serves)", s->id,
             s->name, m->phase == IOREQ_HANDOVER_DONE ? "done" : "aborted", (int)pid);
        if (m->phase == IOREQ_HANDOVER_DONE && pid != s->pid) {
            s->pid = pid;
            if (r->ops->server_moved)
                r->ops->server_moved(r->opaque, s->id, s->name, pid);
        }
        break;
    }
    default:
        return ioreq_router_reply(s, seq, -EINVAL, "unknown handover phase %u", m->phase);
    }
    return ioreq_router_reply(s, seq, 0, NULL);
}

/*
 * The requests that reach the hypervisor's interrupts, memory and power state,
 * and the handover news; handle_message passes exactly these types here.
 */
int ioreq_router_handle_ctl(struct ioreq_srv *s, const struct ioreq_msg_hdr *h, const void *p,
                            int *fds, unsigned nfds)
{
    struct ioreq_router *r = s->r;
    int rc;

    switch (h->type) {
    case IOREQ_MSG_IRQFD:
        return handle_irqfd(s, h->seq, p, fds, nfds);
    case IOREQ_MSG_IRQ_LINE: {
        const struct ioreq_msg_irq_line *m = p;
        rc = r->ops->irq_line ? r->ops->irq_line(r->opaque, m->gsi, m->level != 0) : -ENOSYS;
        if (rc)
            return ioreq_router_reply(s, h->seq, rc, "irq line %u: %s", m->gsi, strerror(-rc));
        return ioreq_router_reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_MSI: {
        const struct ioreq_msg_msi *m = p;
        /* Only the interrupt window: anything else would be a DMA write. */
        if ((m->address >> 20) != 0xfee)
            return ioreq_router_reply(s, h->seq, -EINVAL,
                                      "msi address 0x%llx is outside 0xfee00000-0xfeefffff",
                                      (unsigned long long)m->address);
        rc = r->ops->msi ? r->ops->msi(r->opaque, m->address, m->data) : -ENOSYS;
        if (rc)
            return ioreq_router_reply(s, h->seq, rc, "msi 0x%llx/0x%x: %s",
                                      (unsigned long long)m->address, m->data, strerror(-rc));
        return ioreq_router_reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_MSI_ROUTE: {
        const struct ioreq_msg_msi_route *m = p;
        struct ioreq_msi_route *slot = NULL, *mine = NULL;
        for (unsigned i = 0; i < IOREQ_MSI_ROUTES_MAX; i++) {
            if (s->msi_routes[i].used && s->msi_routes[i].cookie == m->cookie)
                mine = &s->msi_routes[i];
            else if (!s->msi_routes[i].used && !slot)
                slot = &s->msi_routes[i];
        }
        if (m->flags & IOREQ_MSI_ROUTE_F_DEASSIGN) {
            ioreq_router_close_fds(fds, nfds);
            if (!mine)
                return ioreq_router_reply(s, h->seq, -ENOENT, "msi route %u does not exist",
                                          m->cookie);
            uint32_t gsi = mine->gsi;
            if (r->ops->msi_route)
                (void)r->ops->msi_route(r->opaque, 0, 0, mine->fd, false, &gsi);
            close(mine->fd);
            mine->used = false;
            return ioreq_router_reply(s, h->seq, 0, NULL);
        }
        if (nfds != 1) {
            ioreq_router_close_fds(fds, nfds);
            return ioreq_router_reply(s, h->seq, -EINVAL, "msi route %u: %u fds, expected 1",
                                      m->cookie, nfds);
        }
        if ((m->address >> 20) != 0xfee) {
            close(fds[0]);
            return ioreq_router_reply(s, h->seq, -EINVAL,
                                      "msi address 0x%llx is outside 0xfee00000-0xfeefffff",
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
            return ioreq_router_reply(s, h->seq, -ENOSPC,
                                      "msi route %u: the server has %u already (the limit)",
                                      m->cookie, IOREQ_MSI_ROUTES_MAX);
        }
        uint32_t gsi = 0;
        rc = r->ops->msi_route ? r->ops->msi_route(r->opaque, m->address, m->data, fds[0], true,
                                                   &gsi)
                               : -ENOSYS;
        if (rc) {
            close(fds[0]);
            return ioreq_router_reply(s, h->seq, rc, "msi route 0x%llx/0x%x: %s",
                                      (unsigned long long)m->address, m->data, strerror(-rc));
        }
        *slot = (struct ioreq_msi_route){ .used = true, .cookie = m->cookie, .gsi = gsi,
                                          .fd = fds[0] };
        return ioreq_router_reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_GET_MEMORY: {
        struct ioreq_msg_memory_reply m = { 0 };
        int memfd = r->ops->memory ? r->ops->memory(r->opaque, &m) : -ENOSYS;
        if (memfd < 0)
            return ioreq_router_reply(s, h->seq, memfd, "guest memory: %s", strerror(-memfd));
        if (m.nr_regions > IOREQ_MEMORY_MAX_REGIONS)
            return ioreq_router_reply(s, h->seq, -E2BIG, "guest memory: too many regions");
        m.status = 0;
        return ioreq_msg_send(s->sock, IOREQ_MSG_REPLY, h->seq, &m, sizeof(m), &memfd, 1);
    }
    case IOREQ_MSG_SHUTDOWN: {
        const struct ioreq_msg_shutdown *m = p;
        if (m->reason > IOREQ_SHUTDOWN_CRASH)
            return ioreq_router_reply(s, h->seq, -EINVAL, "unknown shutdown reason %u", m->reason);
        uint32_t dropped = 0;
        if (ferry_ratelimit_ok(&s->shutdowns, &dropped))
            rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s) requests shutdown reason=%u code=%u "
                 "(%u similar suppressed)", s->id, s->name, m->reason, m->code, dropped);
        if (r->ops->shutdown)
            r->ops->shutdown(r->opaque, m->reason, m->code);
        return ioreq_router_reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_SLEEP: {
        const struct ioreq_msg_sleep *m = p;
        char swhy[IOREQ_REPLY_MSG_MAX] = "";
        if (m->state != IOREQ_SLEEP_WAKE && m->state != IOREQ_SLEEP_S3)
            return ioreq_router_reply(s, h->seq, -EINVAL,
                                      "unknown sleep state %u (0 wake, 3 suspend)", m->state);
        if (m->flags)
            return ioreq_router_reply(s, h->seq, -EINVAL, "sleep flags 0x%x: must be 0", m->flags);
        if (!r->ops->sleep)
            return ioreq_router_reply(s, h->seq, -ENOSYS, "this hypervisor cannot suspend guests");
        uint32_t dropped = 0;
        if (ferry_ratelimit_ok(&s->shutdowns, &dropped))
            rlog(r, FERRY_LOG_INFO, "ioreq server %u (%s) requests %s (%u similar suppressed)",
                 s->id, s->name, m->state == IOREQ_SLEEP_S3 ? "S3 suspend" : "wake-up",
                 dropped);
        rc = r->ops->sleep(r->opaque, (enum ioreq_sleep_state)m->state, swhy, sizeof(swhy));
        if (rc)
            return ioreq_router_reply(s, h->seq, rc, "%s", swhy[0] ? swhy : strerror(-rc));
        return ioreq_router_reply(s, h->seq, 0, NULL);
    }
    case IOREQ_MSG_HANDOVER:
        return handle_handover(s, h->seq, p);
    default:
        ioreq_router_close_fds(fds, nfds);
        return ioreq_router_reply(s, h->seq, -EBADMSG, "message type %u is not a request", h->type);
    }
}

unsigned ioreq_router_take_load(struct ioreq_router *r, struct ioreq_router_load *out,
                                unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < IOREQ_SERVERS_MAX && n < max; i++) {
        struct ioreq_srv *s = r->servers[i];
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
