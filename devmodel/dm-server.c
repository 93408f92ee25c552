// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's ioreq-server side (dm-server.h): the framework's backend
 * callbacks on an ioreq server, the server's doorbells, buffered ring and
 * control connection on the libevent loop, guest RAM for DMA.
 */
#include "devmodel/dm-server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "common/log-glib.h"

struct ferry_dm_server {
    struct event_base *base;
    struct ferry_dm *dm;
    struct ioreq_server *srv;
    struct event *ctl_ev, *buf_ev;
    struct event **vcpu_ev;
    unsigned nr_vcpus;
    bool pinned;
    bool enabled;
    GArray *claims;                 /* struct dm_server_claim: what the router gave us */
    GArray *inherited;              /* a predecessor's, not repeated to the router */
    bool inherited_enabled;
};

static bool claim_eq(const struct dm_server_claim *a, uint32_t type, uint64_t start,
                     uint64_t end, uint32_t flags)
{
    return a->type == type && a->start == start && a->end == end && a->flags == flags;
}

/* Remove (type, start, end[, flags]) from a; true if it was there. */
static bool claims_take(GArray *a, uint32_t type, uint64_t start, uint64_t end,
                        const uint32_t *flags)
{
    for (guint i = 0; a && i < a->len; i++) {
        const struct dm_server_claim *c = &g_array_index(a, struct dm_server_claim, i);
        if (claim_eq(c, type, start, end, flags ? *flags : c->flags)) {
            g_array_remove_index_fast(a, i);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* The backend: the framework's needs, met by the ioreq server          */

static int be_claim(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end,
                    uint32_t flags)
{
    struct ferry_dm_server *m = opaque;
    struct dm_server_claim c = { type, flags, start, end };

    if (!m->srv)
        return 0;
    /* A predecessor's claim on this same registration: the router has it already. */
    if (!claims_take(m->inherited, type, start, end, &flags)) {
        int rc = ioreq_server_claim_range(m->srv, type, start, end, flags);
        if (rc < 0)
            return rc;
    }
    g_array_append_val(m->claims, c);
    return 0;
}

static int be_release(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end)
{
    struct ferry_dm_server *m = opaque;
    int rc = m->srv ? ioreq_server_release_range(m->srv, type, start, end) : 0;

    if (rc == 0)
        (void)claims_take(m->claims, type, start, end, NULL);
    return rc;
}

static int be_irqfd(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    struct ferry_dm_server *m = opaque;

    return m->srv ? ioreq_server_set_irqfd(m->srv, gsi, fd, resample_fd, assign) : -ENOTCONN;
}

static int be_irq_line(void *opaque, uint32_t gsi, bool level)
{
    struct ferry_dm_server *m = opaque;

    return m->srv ? ioreq_server_set_irq_line(m->srv, gsi, level) : -ENOTCONN;
}

static int be_msi(void *opaque, uint64_t address, uint32_t data)
{
    struct ferry_dm_server *m = opaque;

    return m->srv ? ioreq_server_signal_msi(m->srv, address, data) : -ENOTCONN;
}

static int be_msi_route(void *opaque, uint64_t address, uint32_t data, int fd, uint32_t cookie,
                        bool assign)
{
    struct ferry_dm_server *m = opaque;

    if (!m->srv)
        return -ENOTCONN;
    return assign ? ioreq_server_msi_route(m->srv, address, data, fd, cookie)
                  : ioreq_server_msi_unroute(m->srv, cookie);
}

static int be_shutdown(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    struct ferry_dm_server *m = opaque;
    int rc;

    if (!m->srv)
        return -ENOTCONN;
    rc = ioreq_server_shutdown(m->srv, reason, code);
    /* The hypervisor may end the guest (and hang up) before it answers. */
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

static int be_sleep(void *opaque, enum ioreq_sleep_state state)
{
    struct ferry_dm_server *m = opaque;
    int rc;

    if (!m->srv)
        return -ENOTCONN;
    rc = ioreq_server_sleep(m->srv, state);
    if (rc < 0 && ioreq_server_last_error(m->srv)[0])
        ferry_log(FERRY_LOG_WARNING, NULL, "the hypervisor refused %s: %s",
                  state == IOREQ_SLEEP_S3 ? "S3 suspend" : "the wake-up",
                  ioreq_server_last_error(m->srv));
    /* A wake-up without a waking vector reboots: the hypervisor may hang up first. */
    return state == IOREQ_SLEEP_WAKE && (rc == -EPIPE || rc == -ECONNRESET) ? 0 : rc;
}

static const struct ferry_dm_backend_ops backend_ops = {
    .claim = be_claim,
    .release = be_release,
    .irqfd = be_irqfd,
    .irq_line = be_irq_line,
    .msi = be_msi,
    .msi_route = be_msi_route,
    .shutdown = be_shutdown,
    .sleep = be_sleep,
};

const struct ferry_dm_backend_ops *dm_server_backend(void)
{
    return &backend_ops;
}

static void srv_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_glib(NULL, level, msg);
}

static void srv_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct ferry_dm_server *m = opaque;

    dm_handle_ioreq(m->dm, vcpu, req);
}

static const struct ioreq_server_ops srv_ops = {
    .log = srv_log,
    .handle = srv_handle,
};

/* ------------------------------------------------------------------ */
/* Event callbacks                                                     */

struct vcpu_arg {
    struct ferry_dm_server *m;
    unsigned vcpu;
};

static void vcpu_doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
    struct vcpu_arg *va = arg;

    ioreq_server_dispatch_vcpu(va->m->srv, va->vcpu);
}

static void buffered_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_dm_server *m = arg;

    ioreq_server_dispatch_buffered(m->srv);
}

static void control_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_dm_server *m = arg;

    if (ioreq_server_check_control(m->srv) == -EPIPE) {
        ferry_log(FERRY_LOG_INFO, NULL, "the hypervisor closed the ioreq connection "
                  "(guest %s); exiting", dm_status_name(dm_get_status(m->dm)));
        event_base_loopbreak(m->base);
    }
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */

int dm_server_new(struct event_base *base, struct ferry_dm_server **out)
{
    struct ferry_dm_server *m = calloc(1, sizeof(*m));

    if (!m)
        return -ENOMEM;
    m->base = base;
    m->claims = g_array_new(FALSE, FALSE, sizeof(struct dm_server_claim));
    *out = m;
    return 0;
}

void dm_server_set_dm(struct ferry_dm_server *s, struct ferry_dm *dm)
{
    s->dm = dm;
}

void dm_server_set_pinned(struct ferry_dm_server *s, bool pinned)
{
    s->pinned = pinned;
}

/*
 * The vCPU doorbells are watched edge-triggered where libevent's backend
 * can (epoll): a synchronous request then costs ferry-dm one syscall, the
 * epoll_wait that wakes it, instead of two (the doorbell's read).
 */
static bool edge_doorbells(const struct ferry_dm_server *m)
{
    return event_base_get_features(m->base) & EV_FEATURE_ET;
}

static int connect_router(struct ferry_dm_server *m, const char *name, const char *path,
                          int ioreq_fd)
{
    struct ioreq_server_config cfg = {
        .name = name ? name : "ferry-dm",
        .buffered = true,       /* posted writes for regions that declare them */
        .pinned = m->pinned,
        .edge_doorbells = edge_doorbells(m),
        .ops = &srv_ops,
        .opaque = m,
    };
    int rc;

    if (path)
        rc = ioreq_server_connect(path, &cfg, &m->srv);
    else
        rc = ioreq_server_create(ioreq_fd, &cfg, &m->srv);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot register with the hypervisor at %s: %s",
                path ? path : "--ioreq-fd", strerror(-rc));
        return rc;
    }
    return 0;
}

static int watch_server(struct ferry_dm_server *m)
{
    struct vcpu_arg *args;

    m->nr_vcpus = ioreq_server_nr_vcpus(m->srv);
    m->vcpu_ev = calloc(m->nr_vcpus, sizeof(*m->vcpu_ev));
    args = calloc(m->nr_vcpus ? m->nr_vcpus : 1, sizeof(*args));
    if (!m->vcpu_ev || !args) {
        free(args);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < m->nr_vcpus; i++) {
        args[i] = (struct vcpu_arg){ .m = m, .vcpu = i };
        m->vcpu_ev[i] = event_new(m->base, ioreq_server_vcpu_fd(m->srv, i),
                                  EV_READ | EV_PERSIST | (edge_doorbells(m) ? EV_ET : 0),
                                  vcpu_doorbell_cb, &args[i]);
        if (!m->vcpu_ev[i] || event_add(m->vcpu_ev[i], NULL) < 0)
            return -ENOMEM;
    }
    /* args[] lives as long as the events: freed with vcpu_ev[0]'s argument. */
    if (ioreq_server_buffered_fd(m->srv) >= 0) {
        m->buf_ev = event_new(m->base, ioreq_server_buffered_fd(m->srv), EV_READ | EV_PERSIST,
                              buffered_cb, m);
        if (!m->buf_ev || event_add(m->buf_ev, NULL) < 0)
            return -ENOMEM;
    }
    m->ctl_ev = event_new(m->base, ioreq_server_control_fd(m->srv), EV_READ | EV_PERSIST,
                          control_cb, m);
    if (!m->ctl_ev || event_add(m->ctl_ev, NULL) < 0)
        return -ENOMEM;
    if (!m->nr_vcpus)
        free(args);
    return 0;
}

static void map_guest_memory(struct ferry_dm_server *m)
{
    struct ioreq_msg_memory_reply regions;
    int memfd = -1;
    int rc = ioreq_server_get_memory(m->srv, &memfd, &regions);

    if (rc == 0) {
        rc = dm_set_guest_memory(m->dm, memfd, &regions);
        close(memfd);
    }
    if (rc < 0)
        ferry_log(rc == -ENOSYS ? FERRY_LOG_INFO : FERRY_LOG_WARNING, NULL,
                  "no guest memory for DMA: %s%s%s", strerror(-rc),
                  ioreq_server_last_error(m->srv)[0] ? ": " : "",
                  ioreq_server_last_error(m->srv));
}

int dm_server_connect(struct ferry_dm_server *s, const char *name, const char *path,
                            int ioreq_fd)
{
    int rc = connect_router(s, name, path, ioreq_fd);

    if (rc < 0)
        return rc;
    rc = watch_server(s);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot watch the ioreq fds: out of memory");
        return rc;
    }
    dm_set_nr_vcpus(s->dm, s->nr_vcpus);
    map_guest_memory(s);
    return 0;
}

int dm_server_adopt(struct ferry_dm_server *s, const struct ioreq_server_handover *h, int *fds,
                    unsigned nfds, int memfd, const struct ioreq_msg_memory_reply *regions)
{
    struct ioreq_server_config cfg = { .name = h->name, .edge_doorbells = edge_doorbells(s),
                                       .ops = &srv_ops, .opaque = s };
    int rc = ioreq_server_adopt(h, fds, nfds, &cfg, &s->srv);

    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot take over the ioreq registration: %s",
                  strerror(-rc));
        return rc;
    }
    rc = watch_server(s);
    if (rc < 0)
        return rc;
    dm_set_nr_vcpus(s->dm, s->nr_vcpus);
    if (memfd >= 0) {
        rc = dm_set_guest_memory(s->dm, memfd, regions);
        if (rc < 0)
            ferry_log(FERRY_LOG_WARNING, NULL, "no guest memory for DMA: the predecessor's: "
                      "%s", strerror(-rc));
    }
    return 0;
}

void dm_server_take_over(struct ferry_dm_server *s, uint32_t seq)
{
    ioreq_server_take_over(s->srv, seq);
}

int dm_server_export(struct ferry_dm_server *s, struct ioreq_server_handover *h, int *fds,
                     unsigned max)
{
    return s && s->srv ? ioreq_server_export(s->srv, h, fds, max) : -ENOTCONN;
}

int dm_server_handover(struct ferry_dm_server *s, uint32_t phase, uint32_t pid)
{
    return ioreq_server_handover(s->srv, phase, pid);
}

void dm_server_resume(struct ferry_dm_server *s)
{
    ioreq_server_dispatch_all(s->srv);
}

bool dm_server_connected(const struct ferry_dm_server *s)
{
    return s && s->srv;
}

int dm_server_batch(struct ferry_dm_server *s, bool on)
{
    return ioreq_server_batch(s->srv, on);
}

int dm_server_enable(struct ferry_dm_server *s)
{
    int rc = s->inherited_enabled ? 0 : ioreq_server_enable(s->srv, true);

    s->enabled |= rc == 0;
    return rc;
}

unsigned dm_server_claims(const struct ferry_dm_server *s, struct dm_server_claim *out,
                          unsigned max, bool *enabled)
{
    unsigned n = 0;

    for (guint i = 0; s && i < s->claims->len && n < max; i++)
        out[n++] = g_array_index(s->claims, struct dm_server_claim, i);
    *enabled = s && s->enabled;
    return n;
}

void dm_server_inherit_claims(struct ferry_dm_server *s, const struct dm_server_claim *c,
                              unsigned n, bool enabled)
{
    if (!s->inherited)
        s->inherited = g_array_new(FALSE, FALSE, sizeof(struct dm_server_claim));
    g_array_set_size(s->inherited, 0);
    g_array_append_vals(s->inherited, c, n);
    s->inherited_enabled = enabled;
}

void dm_server_inherit_done(struct ferry_dm_server *s)
{
    /* Not claimed again: still ours at the router (as before a replace), not tracked. */
    if (s->inherited)
        g_array_set_size(s->inherited, 0);
    s->inherited_enabled = false;
}

unsigned dm_server_nr_vcpus(const struct ferry_dm_server *s)
{
    return s ? s->nr_vcpus : 0;
}

const char *dm_server_last_error(const struct ferry_dm_server *s)
{
    return s && s->srv ? ioreq_server_last_error(s->srv) : "";
}

void dm_server_free(struct ferry_dm_server *m)
{
    if (!m)
        return;
    if (m->vcpu_ev) {
        void *args = m->nr_vcpus && m->vcpu_ev[0] ? event_get_callback_arg(m->vcpu_ev[0]) : NULL;

        for (unsigned i = 0; i < m->nr_vcpus; i++)
            if (m->vcpu_ev[i])
                event_free(m->vcpu_ev[i]);
        free(args);
        free(m->vcpu_ev);
    }
    if (m->buf_ev)
        event_free(m->buf_ev);
    if (m->ctl_ev)
        event_free(m->ctl_ev);
    /* A deliberate end (quit, SIGTERM, the guest's end): not a crash to restart from. */
    if (m->srv)
        (void)ioreq_server_unregister(m->srv);
    ioreq_server_destroy(m->srv);
    g_array_unref(m->claims);
    if (m->inherited)
        g_array_unref(m->inherited);
    free(m);
}
