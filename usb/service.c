// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The USB service: host devices, policy and per-guest assignments on one
 * event loop.  An assignment is a device identity bound to a guest (named by
 * its QMP socket) or to a TCP listener (share).  For a guest, QEMU gets a
 * chardev that connects to our per-assignment unix socket (reconnecting
 * every second) and a usb-redir device on it; we accept that connection
 * only while the device is present and allowed, and serve it through a
 * usbredir endpoint.  Unplug closes the endpoint (QEMU tells the guest the
 * device is gone); replug of the same device (same VID:PID and serial, or
 * the same port when it has no serial) accepts QEMU's next connection: the
 * device is back without any command.
 *
 * This file is the assignment state machine; the [usb] group of a config is
 * read in service-config.c and the devices are rendered as JSON in
 * service-json.c (the state they share: service-internal.h).  It is a little
 * over 800 lines and stays whole: plug, unplug, hotplug, the broker's fds and
 * the guest's QMP connection all move the same assignments through the same
 * states, and read best side by side.
 */
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <libusb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usb/ferry-usb.h"
#include "usb/service-internal.h"


static struct guest *guest_get(struct ferry_usb_service *s, const char *qmp)
{
    struct guest *g;

    for (guint i = 0; i < s->guests->len; i++) {
        g = g_ptr_array_index(s->guests, i);
        if (!strcmp(g->qmp, qmp))
            return g;
    }
    g = g_new0(struct guest, 1);
    g->qmp = g_strdup(qmp);
    g_ptr_array_add(s->guests, g);
    return g;
}

static void guest_free(gpointer p)
{
    struct guest *g = p;

    if (g->qev)
        event_free(g->qev);
    if (!g->lent)
        usb_qmp_close(g->q);
    usb_policy_free(g->policy);
    g_free(g->qmp);
    g_free(g);
}

const struct ferry_usb_policy *usb_service_guest_policy(struct ferry_usb_service *s,
                                                        struct guest *g)
{
    return g && g->policy ? g->policy : s->default_policy;
}

/* The service's own rules ([usb] policy=) and built-in default; with an
 * embedder that judges (ops.grant: the device-access policy, which applies
 * the same built-in protection and may force past it) and no rules of the
 * guest's own, the embedder alone. */
static int service_policy_check(struct ferry_usb_service *s, struct guest *g,
                                const struct ferry_usb_devinfo *d, char *why, size_t len)
{
    const struct ferry_usb_policy *p = usb_service_guest_policy(s, g);

    if (s->ops.grant && g && p == s->default_policy && !s->default_set) {
        snprintf(why, len, "the device-access policy");
        return 0;
    }
    return usb_policy_check(p, d, why, len);
}

const char *usb_service_assign_where(const struct assign *a)
{
    return a->guest ? a->guest->qmp : a->share_addr;
}

/* ---- serving one assignment -------------------------------------------- */

static bool assign_fd_mode(const struct assign *a)
{
    return a->guest && a->guest->q;
}

static void on_redir_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why);
static int assign_plug(struct assign *a, char *err, size_t errlen);

static void assign_update_accept(struct assign *a)
{
    char why[FERRY_USB_ERR_MAX];
    bool want = a->present && !a->redir;

    if (want && service_policy_check(a->svc, a->guest, &a->dev, why, sizeof(why)) < 0) {
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] refused for %s: %s", a->ident,
             usb_service_assign_where(a), why);
        want = false;
    }
    if (want && a->svc->ops.grant &&
        a->svc->ops.grant(a->svc->opaque, usb_service_assign_where(a), &a->dev, why,
                          sizeof(why)) < 0) {
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] refused for %s: %s", a->ident,
             usb_service_assign_where(a), why);
        want = false;
    } else if (want && a->svc->ops.grant) {
        a->granted = true;
    }
    if (assign_fd_mode(a)) {
        char err[FERRY_USB_ERR_MAX];

        if (want && !a->stalled && assign_plug(a, err, sizeof(err)) < 0)
            SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] %s", a->ident, err);
        return;
    }
    if (want && !a->accepting)
        event_add(a->accept_ev, NULL);
    else if (!want && a->accepting)
        event_del(a->accept_ev);
    a->accepting = want;
}

static void assign_stop(struct assign *a)
{
    if (a->redir) {
        usb_redir_free(a->redir);
        a->redir = NULL;
    }
}

static void unplug_done(void *opaque, int result)
{
    struct unplug *u = opaque;
    struct ferry_usb_service *s = u->svc;
    char err[FERRY_USB_ERR_MAX] = "";

    if (s) {
        s->unplugs = g_list_remove(s->unplugs, u);
        if (result == 0 && u->guest->q)
            result = usb_qmp_redir_del_finish(u->guest->q, u->id, err, sizeof(err));
        else if (result < 0)
            snprintf(err, sizeof(err), "qmp %s: device %s: no DEVICE_DELETED: %s",
                     u->guest->qmp, u->id,
                     result == -ETIMEDOUT ? "timed out (is the guest paused?)"
                     : result == -EPIPE ? "QEMU has gone" : g_strerror(-result));
        if (result < 0)
            SLOG(s, FERRY_LOG_WARNING, "usb[%s] removing %s from QEMU: %s", u->ident, u->id,
                 err);
        else
            SLOG(s, FERRY_LOG_INFO, "usb[%s] %s removed from QEMU", u->ident, u->id);
        if (u->a) {
            /* a channel held back meanwhile (replugged): now */
            u->a->unplug = NULL;
            assign_update_accept(u->a);
        }
    } else if (result == 0) {
        result = -ECANCELED;
    }
    if (u->done)
        u->done(u->done_opaque, result, err[0] ? err : "the USB service has stopped");
    g_free(u);
}

/*
 * usb-redir a->id (and its chardev) out of QEMU.  With ops.wait_deleted the
 * wait for DEVICE_DELETED happens on the embedder's loop: 1, and done is
 * called later; otherwise it blocks (at most QMP_TIMEOUT_MS): 0 or -errno.
 */
static int assign_unplug_start(struct assign *a, void (*done)(void *, int, const char *),
                               void *done_opaque, char *err, size_t errlen)
{
    struct ferry_usb_service *s = a->svc;
    struct unplug *u;
    int r;

    if (!s->ops.wait_deleted || s->freeing)
        return usb_qmp_redir_del(a->guest->q, a->id, err, errlen);
    r = usb_qmp_redir_del_start(a->guest->q, a->id, err, errlen);
    if (r < 0)
        return r;
    u = g_new0(struct unplug, 1);
    u->svc = s;
    u->guest = a->guest;
    snprintf(u->id, sizeof(u->id), "%s", a->id);
    snprintf(u->ident, sizeof(u->ident), "%s", a->ident);
    u->done = done;
    u->done_opaque = done_opaque;
    if (s->ops.wait_deleted(s->opaque, a->guest->qmp, u->id, unplug_done, u) < 0) {
        g_free(u);
        r = usb_qmp_wait_deleted(a->guest->q, a->id, err, errlen);
        return r < 0 ? r : usb_qmp_redir_del_finish(a->guest->q, a->id, err, errlen);
    }
    s->unplugs = g_list_prepend(s->unplugs, u);
    u->a = a;
    a->unplug = u;
    return 1;
}

/* Take chardev and usb-redir a->id out of QEMU (it saw the channel close). */
static void assign_unplug_qemu(struct assign *a)
{
    char err[FERRY_USB_ERR_MAX];

    if (!a->plugged)
        return;
    a->plugged = false;
    if (assign_unplug_start(a, NULL, NULL, err, sizeof(err)) < 0)
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] removing %s from QEMU: %s", a->ident, a->id, err);
}

/* A new channel to QEMU: socketpair, our end served by a usbredir endpoint,
 * the other end given to QEMU (getfd, chardev-add, device_add usb-redir). */
static int assign_plug(struct assign *a, char *err, size_t errlen)
{
    struct ferry_usb_redir_ops rops = { .log = a->svc->ops.log, .log_opaque = a->svc->opaque,
                                       .ended = on_redir_end };
    libusb_device_handle *h = NULL;
    int sv[2], r;

    if (a->redir)
        return 0;
    if (a->unplug)
        return 0;       /* the last channel is still leaving QEMU: plugged after */
    if (a->wrapped) {
        h = a->wrapped;
        a->wrapped = NULL;
    } else if (a->fd_mode) {
        snprintf(err, errlen, "usb %s: the fd the broker passed was used up (device replugged?): "
                 "pass a new one (ferry usb attach)", a->ident);
        return -ENODEV;
    } else if ((r = usb_host_open(a->svc->host, &a->dev, &h, err, errlen)) < 0) {
        return r;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        r = -errno;
        snprintf(err, errlen, "usb %s: socketpair for the usbredir channel: %s", a->ident,
                 g_strerror(-r));
        libusb_close(h);
        return r;
    }
    r = usb_redir_new(a->svc->host, h, sv[0], a->ident, &rops, a, &a->redir);
    if (r < 0) {
        a->redir = NULL;
        close(sv[1]);
        snprintf(err, errlen, "usb %s: cannot serve it (claimed by someone else?): %s", a->ident,
                 g_strerror(-r));
        return r;
    }
    snprintf(a->id, sizeof(a->id), "ferryusb%u-%u", a->base_id, a->gen++);
    r = usb_qmp_redir_add_fd(a->guest->q, a->id, sv[1], err, errlen);
    close(sv[1]);
    if (r < 0) {
        assign_stop(a);
        return r;
    }
    a->plugged = true;
    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] connected to %s as %s port=%s", a->ident,
         usb_service_assign_where(a), a->id, a->dev.port);
    return 0;
}

static void on_redir_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    struct assign *a = opaque;

    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] connection to %s ended (%s)", a->ident,
         usb_service_assign_where(a),
         why == FERRY_USB_REDIR_DEVICE_LOST ? "device lost" :
         why == FERRY_USB_REDIR_PEER_INVALID ? "invalid input" :
         why == FERRY_USB_REDIR_PEER_CLOSED ? "peer closed" : "i/o error");
    assign_stop(a);
    if (why == FERRY_USB_REDIR_DEVICE_LOST || a->fd_mode)
        a->present = false;     /* a broker's fd serves one connection */
    if (assign_fd_mode(a)) {
        assign_unplug_qemu(a);
        /* QEMU ended it (or sent garbage): no new channel until a replug */
        a->stalled = why != FERRY_USB_REDIR_DEVICE_LOST;
    }
    assign_update_accept(a);
}

/* keep: the device went; QEMU keeps its connection and hears it is gone */
static void on_redir_device_lost(void *opaque, struct ferry_usb_redir *r)
{
    struct assign *a = opaque;

    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (connection kept)",
         a->ident, usb_service_assign_where(a));
    a->present = false;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct assign *a = arg;
    struct ferry_usb_redir_ops rops = { .log = a->svc->ops.log, .log_opaque = a->svc->opaque,
                                       .ended = on_redir_end,
                                       .device_lost = a->keep ? on_redir_device_lost : NULL };
    libusb_device_handle *h = NULL;
    char err[FERRY_USB_ERR_MAX];
    int fd = usb_accept(lfd);

    if (fd < 0)
        return;
    if (a->redir || !a->present) {
        close(fd);
        return;
    }
    if (a->wrapped) {
        h = a->wrapped;          /* handed to the endpoint, closed with it */
        a->wrapped = NULL;
    } else if (a->rewrap) {
        struct ferry_usb_devinfo d;

        /* libusb_close leaves a wrapped fd open: the same usbfs fd again */
        if (a->owned_fd < 0 ||
            usb_host_wrap_fd(a->svc->host, a->owned_fd, &h, &d, err, sizeof(err)) < 0) {
            if (a->owned_fd < 0)
                snprintf(err, sizeof(err), "usb %s: no fd from the broker", a->ident);
            SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] %s", a->ident, err);
            close(fd);
            return;
        }
    } else if (usb_host_open(a->svc->host, &a->dev, &h, err, sizeof(err)) < 0) {
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] %s", a->ident, err);
        close(fd);
        return;
    }
    /* the log callback gets the service's opaque */
    if (usb_redir_new(a->svc->host, h, fd, a->ident, &rops, a, &a->redir) < 0) {
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] cannot serve %s", a->ident, usb_service_assign_where(a));
        a->redir = NULL;
        return;
    }
    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] connected to %s port=%s", a->ident, usb_service_assign_where(a),
         a->dev.port);
    assign_update_accept(a);
}

static void assign_free(struct assign *a)
{
    if (a->granted && a->svc->ops.released)
        a->svc->ops.released(a->svc->opaque, usb_service_assign_where(a), &a->dev);
    if (a->unplug)
        a->unplug->a = NULL;
    assign_stop(a);
    if (a->guest && a->guest->q)
        assign_unplug_qemu(a);
    if (a->wrapped)
        libusb_close(a->wrapped);
    if ((a->fd_mode || a->rewrap) && a->owned_fd >= 0)
        close(a->owned_fd);
    if (a->accept_ev)
        event_free(a->accept_ev);
    if (a->lfd >= 0)
        close(a->lfd);
    if (a->sock_path[0])
        unlink(a->sock_path);
    g_free(a->share_addr);
    g_free(a);
}

/* The spec that finds this device again after a replug. */
static void identity_spec(const struct ferry_usb_devinfo *d, struct ferry_usb_spec *spec)
{
    char ident[200];

    usb_identity(d, ident, sizeof(ident));
    if (usb_spec_parse(ident, spec) < 0) {
        memset(spec, 0, sizeof(*spec));
        spec->kind = FERRY_USB_SPEC_VIDPID;
        spec->vid = d->vid;
        spec->pid = d->pid;
    }
}

static struct assign *assign_find(struct ferry_usb_service *s, const struct ferry_usb_spec *spec)
{
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (memcmp(&a->spec, spec, sizeof(*spec)) == 0)
            return a;
    }
    return NULL;
}

/* Create an assignment for spec; listening socket by guest or address. */
static int assign_new(struct ferry_usb_service *s, struct guest *g, const char *share,
                      const struct ferry_usb_spec *spec, struct assign **out,
                      char *err, size_t errlen)
{
    struct assign *a = g_new0(struct assign, 1);
    int fd;

    a->svc = s;
    a->guest = g;
    a->spec = *spec;
    a->lfd = -1;
    a->owned_fd = -1;
    usb_spec_format(spec, a->ident, sizeof(a->ident));
    a->base_id = s->next_id;
    snprintf(a->id, sizeof(a->id), "ferryusb%u", s->next_id++);
    if (g && g->q) {
        *out = a;
        return 0;
    }
    if (g && !s->rundir) {
        snprintf(err, errlen, "usb: no run folder for the sockets of %s's devices", g->qmp);
        assign_free(a);
        return -EINVAL;
    }
    if (g) {
        char addr[160];
        snprintf(a->sock_path, sizeof(a->sock_path), "%s/%s-%d.sock", s->rundir, a->id,
                 (int)getpid());
        snprintf(addr, sizeof(addr), "unix:%s", a->sock_path);
        fd = usb_listen(addr, err, errlen);
    } else {
        a->share_addr = g_strdup(share);
        fd = usb_listen(share, err, errlen);
    }
    if (fd < 0) {
        a->sock_path[0] = 0;
        assign_free(a);
        return fd;
    }
    a->lfd = fd;
    a->accept_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_accept, a);
    *out = a;
    return 0;
}

/* Present now?  Then remember its current address. */
static void assign_lookup(struct assign *a)
{
    size_t n;
    const struct ferry_usb_devinfo *d = usb_host_devices(a->svc->host, &n);

    a->present = false;
    for (size_t i = 0; i < n; i++)
        if (usb_spec_match(&a->spec, &d[i])) {
            a->dev = d[i];
            a->present = true;
            break;
        }
}

static int guest_add_redir(struct ferry_usb_service *s, struct assign *a, char *err, size_t errlen)
{
    struct ferry_usb_qmp *q = NULL;
    int r = usb_qmp_open(a->guest->qmp, QMP_TIMEOUT_MS, &q, err, errlen);

    if (r < 0)
        return r;
    r = usb_qmp_redir_add(q, a->id, a->sock_path, err, errlen);
    usb_qmp_close(q);
    return r;
}

/* ---- hotplug --------------------------------------------------------------- */

static void on_arrived(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct ferry_usb_service *s = opaque;

    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (a->present || !usb_spec_match(&a->spec, d))
            continue;
        a->dev = *d;
        a->present = true;
        a->stalled = false;
        if (a->rewrap) {
            /* the broker's fd was for the old node: this one is opened here */
            if (a->owned_fd >= 0)
                close(a->owned_fd);
            a->owned_fd = -1;
            a->rewrap = false;
        }
        if (a->keep && a->redir) {
            libusb_device_handle *h = NULL;
            char err[FERRY_USB_ERR_MAX];

            /* the peer is still connected: the device again on that connection */
            if (usb_host_open(s->host, &a->dev, &h, err, sizeof(err)) < 0 ||
                usb_redir_set_device(a->redir, h) < 0) {
                SLOG(s, FERRY_LOG_WARNING, "usb[%s] back at port=%s but not served: %s",
                     a->ident, d->port, h ? "cannot claim it" : err);
                continue;
            }
            SLOG(s, FERRY_LOG_INFO, "usb[%s] back at port=%s, given again to %s", a->ident,
                 d->port, usb_service_assign_where(a));
            continue;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] back at port=%s, reattaching to %s", a->ident, d->port,
             usb_service_assign_where(a));
        assign_update_accept(a);
    }
}

static void on_left(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct ferry_usb_service *s = opaque;

    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (!a->present || a->dev.bus != d->bus || a->dev.addr != d->addr)
            continue;
        a->present = false;
        if (a->keep && a->redir) {
            /* the connection stays for the replug; the peer hears it is gone */
            SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (connection kept)",
                 a->ident, usb_service_assign_where(a));
            if (usb_redir_set_device(a->redir, NULL) < 0)
                assign_stop(a);
            assign_update_accept(a);
            continue;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s", a->ident,
             usb_service_assign_where(a));
        assign_stop(a);
        if (assign_fd_mode(a))
            assign_unplug_qemu(a);
        assign_update_accept(a);
    }
}

/* ---- public ------------------------------------------------------------------ */

int usb_service_new(struct event_base *base, const char *rundir,
                          const struct ferry_usb_service_ops *ops, void *opaque,
                          struct ferry_usb_service **out)
{
    struct ferry_usb_service *s = g_new0(struct ferry_usb_service, 1);
    struct ferry_usb_host_ops hops = { .log = ops->log, .log_opaque = opaque,
                                      .arrived = on_arrived, .left = on_left };
    char err[FERRY_USB_ERR_MAX];
    int r;

    s->base = base;
    s->ops = *ops;
    s->opaque = opaque;
    s->rundir = g_strdup(rundir);
    s->guests = g_ptr_array_new_with_free_func(guest_free);
    s->assigns = g_ptr_array_new();
    r = usb_policy_new(NULL, &s->default_policy, err, sizeof(err));
    if (r == 0)
        r = usb_host_new(base, !ops->no_discovery, &hops, s, &s->host);
    if (r < 0) {
        usb_service_free(s);
        return r;
    }
    *out = s;
    return 0;
}

void usb_service_free(struct ferry_usb_service *s)
{
    if (!s)
        return;
    s->freeing = true;          /* the last unplugs wait here, as before */
    if (s->assigns) {
        for (guint i = 0; i < s->assigns->len; i++)
            assign_free(g_ptr_array_index(s->assigns, i));
        g_ptr_array_free(s->assigns, TRUE);
    }
    /* waits still out on the embedder's loop: their end is dropped */
    for (GList *l = s->unplugs; l; l = l->next)
        ((struct unplug *)l->data)->svc = NULL;
    g_list_free(s->unplugs);
    usb_host_free(s->host);
    usb_policy_free(s->default_policy);
    if (s->guests)
        g_ptr_array_free(s->guests, TRUE);
    g_free(s->rundir);
    g_free(s);
}

struct ferry_usb_host *usb_service_host(struct ferry_usb_service *s)
{
    return s->host;
}

int usb_service_set_policy(struct ferry_usb_service *s, const char *guest,
                                 const char *rules, char *err, size_t errlen)
{
    struct ferry_usb_policy *p;
    int r = usb_policy_new(rules, &p, err, errlen);

    if (r < 0)
        return r;
    if (guest) {
        struct guest *g = guest_get(s, guest);
        usb_policy_free(g->policy);
        g->policy = p;
    } else {
        usb_policy_free(s->default_policy);
        s->default_policy = p;
        s->default_set = true;
    }
    return 0;
}

/* Find the device for an attach: present, unique, allowed. */
static int resolve_device(struct ferry_usb_service *s, struct guest *g, const char *device,
                          struct ferry_usb_devinfo *d, char *err, size_t errlen)
{
    struct ferry_usb_spec spec;
    char why[FERRY_USB_ERR_MAX];
    int r;

    if (usb_spec_parse(device, &spec) < 0) {
        snprintf(err, errlen, "usb device '%s': expected VID:PID, VID:PID:SERIAL, a port path "
                 "(1-2.3) or BUS.ADDR", device);
        return -EINVAL;
    }
    r = usb_host_find(s->host, &spec, d, err, errlen);
    if (r < 0)
        return r;
    if (service_policy_check(s, g, d, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "usb %s (%04x:%04x): refused for %s by %s", d->port, d->vid,
                 d->pid, g ? g->qmp : "sharing", why);
        return -EPERM;
    }
    if (g && s->ops.grant)
        return s->ops.grant(s->opaque, g->qmp, d, err, errlen);
    return 0;
}

/* A new assignment of device d (present) for guest g or shared on listen,
 * unless the device is attached somewhere already. */
static int assign_claim(struct ferry_usb_service *s, struct guest *g, const char *listen,
                        const struct ferry_usb_devinfo *d, struct assign **out, char *err,
                        size_t errlen)
{
    struct ferry_usb_spec ident;
    struct assign *a;
    int r;

    identity_spec(d, &ident);
    if ((a = assign_find(s, &ident))) {
        snprintf(err, errlen, "usb %s: already attached to %s", a->ident, usb_service_assign_where(a));
        return -EBUSY;
    }
    r = assign_new(s, g, listen, &ident, &a, err, errlen);
    if (r < 0)
        return r;
    a->dev = *d;
    a->present = true;
    a->granted = g && s->ops.grant;
    *out = a;
    return 0;
}

int usb_service_attach(struct ferry_usb_service *s, const char *guest, const char *device,
                             char *err, size_t errlen)
{
    struct guest *g = guest_get(s, guest);
    struct ferry_usb_devinfo d;
    struct assign *a;
    int r = resolve_device(s, g, device, &d, err, errlen);

    if (r < 0 || (r = assign_claim(s, g, NULL, &d, &a, err, errlen)) < 0)
        return r;
    r = g->q ? assign_plug(a, err, errlen) : guest_add_redir(s, a, err, errlen);
    if (r < 0) {
        assign_free(a);
        return r;
    }
    g_ptr_array_add(s->assigns, a);
    assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] attached to %s as %s", a->ident, guest, a->id);
    return 0;
}

int usb_service_attach_fd(struct ferry_usb_service *s, const char *guest, int fd,
                                char *err, size_t errlen)
{
    struct guest *g = guest_get(s, guest);
    struct ferry_usb_devinfo d;
    struct ferry_usb_spec ident;
    libusb_device_handle *h;
    char why[FERRY_USB_ERR_MAX];
    struct assign *a;
    int r = usb_host_wrap_fd(s->host, fd, &h, &d, err, errlen);

    if (r < 0)
        return r;
    if (service_policy_check(s, g, &d, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "usb fd %d (%04x:%04x): refused for %s by %s", fd, d.vid, d.pid,
                 guest, why);
        libusb_close(h);
        return -EPERM;
    }
    if (s->ops.grant && (r = s->ops.grant(s->opaque, guest, &d, err, errlen)) < 0) {
        libusb_close(h);
        return r;
    }
    identity_spec(&d, &ident);
    if ((a = assign_find(s, &ident)) && a->guest == g && a->fd_mode && !a->redir &&
        !a->wrapped && g->q) {
        /* the broker's new fd for a device that was replugged */
        if (a->owned_fd >= 0)
            close(a->owned_fd);
        a->owned_fd = fd;
        a->wrapped = h;
        a->dev = d;
        a->present = true;
        a->stalled = false;
        a->granted = s->ops.grant != NULL;
        r = assign_plug(a, err, errlen);
        if (r < 0) {
            a->owned_fd = -1;   /* stays the caller's */
            if (a->wrapped)
                libusb_close(a->wrapped);
            a->wrapped = NULL;
            a->present = false;
        }
        return r;
    }
    if (a) {
        snprintf(err, errlen, "usb %s: already attached to %s", a->ident, usb_service_assign_where(a));
        libusb_close(h);
        return -EBUSY;
    }
    r = assign_new(s, g, NULL, &ident, &a, err, errlen);
    if (r < 0) {
        libusb_close(h);
        return r;
    }
    a->dev = d;
    a->present = true;
    a->granted = s->ops.grant != NULL;
    a->fd_mode = true;
    a->wrapped = h;
    a->owned_fd = fd;
    r = g->q ? assign_plug(a, err, errlen) : guest_add_redir(s, a, err, errlen);
    if (r < 0) {
        a->owned_fd = -1;       /* stays the caller's */
        assign_free(a);
        return r;
    }
    g_ptr_array_add(s->assigns, a);
    assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] attached to %s as %s from a passed fd", a->ident, guest,
         a->id);
    return 0;
}

/* The assignment of guest (or share) that `device` names. */
static struct assign *assign_by_device(struct ferry_usb_service *s, const char *where,
                                       const char *device, char *err, size_t errlen)
{
    struct ferry_usb_spec spec;

    if (usb_spec_parse(device, &spec) < 0) {
        snprintf(err, errlen, "usb device '%s': not a device specification", device);
        return NULL;
    }
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (strcmp(usb_service_assign_where(a), where))
            continue;
        if (!memcmp(&a->spec, &spec, sizeof(spec)) ||
            ((a->present || a->dev.vid) && usb_spec_match(&spec, &a->dev)))
            return a;
    }
    snprintf(err, errlen, "usb device %s: not attached to %s", device, where);
    return NULL;
}

int usb_service_detach(struct ferry_usb_service *s, const char *guest, const char *device,
                             char *err, size_t errlen)
{
    int r = usb_service_detach_async(s, guest, device, NULL, NULL, err, errlen);

    return r > 0 ? 0 : r;
}

int usb_service_detach_async(struct ferry_usb_service *s, const char *guest,
                                   const char *device,
                                   void (*done)(void *opaque, int result, const char *err),
                                   void *opaque, char *err, size_t errlen)
{
    struct assign *a = assign_by_device(s, guest, device, err, errlen);
    int r = 0;

    if (!a)
        return -ENOENT;
    if (a->guest && a->guest->q) {
        assign_stop(a);
        if (a->plugged) {
            a->plugged = false;
            r = assign_unplug_start(a, done, opaque, err, errlen);
        }
    } else if (a->guest) {
        struct ferry_usb_qmp *q = NULL;
        r = usb_qmp_open(a->guest->qmp, QMP_TIMEOUT_MS, &q, err, errlen);
        if (r == 0) {
            r = usb_qmp_redir_del(q, a->id, err, errlen);
            usb_qmp_close(q);
        }
    }
    /* the host gets the device back even when QEMU did not answer */
    g_ptr_array_remove(s->assigns, a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] detached from %s", a->ident, guest);
    assign_free(a);
    return r;
}

int usb_service_device_left(struct ferry_usb_service *s, const char *guest,
                                  const char *device, char *err, size_t errlen)
{
    struct assign *a = assign_by_device(s, guest, device, err, errlen);

    if (!a)
        return -ENOENT;
    if (!a->present)
        return 0;
    SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (the broker says)", a->ident,
         usb_service_assign_where(a));
    a->present = false;
    assign_stop(a);
    if (a->wrapped) {
        libusb_close(a->wrapped);
        a->wrapped = NULL;
    }
    if (assign_fd_mode(a))
        assign_unplug_qemu(a);
    assign_update_accept(a);
    return 0;
}

int usb_service_share(struct ferry_usb_service *s, const char *device, const char *listen,
                            char *err, size_t errlen)
{
    struct ferry_usb_devinfo d;
    struct assign *a;
    int r = resolve_device(s, NULL, device, &d, err, errlen);

    if (r < 0 || (r = assign_claim(s, NULL, listen, &d, &a, err, errlen)) < 0)
        return r;
    g_ptr_array_add(s->assigns, a);
    assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] shared on %s", a->ident, listen);
    return 0;
}

int usb_service_assign_devices(struct ferry_usb_service *s, const char *guest,
                               char *const *devices, char *err, size_t errlen)
{
    struct guest *g = guest_get(s, guest);
    int r;

    for (size_t i = 0; devices && devices[i]; i++) {
        struct ferry_usb_spec spec;
        struct assign *a;
        const char *dev = devices[i];
        if (!*dev)
            continue;
        if (usb_spec_parse(dev, &spec) < 0 || spec.kind == FERRY_USB_SPEC_BUSADDR) {
            snprintf(err, errlen, "config [usb] devices: '%s': expected VID:PID[:SERIAL] or a "
                     "port path", dev);
            return -EINVAL;
        }
        if (assign_find(s, &spec))
            continue;
        r = assign_new(s, g, NULL, &spec, &a, err, errlen);
        if (r < 0)
            return r;
        r = g->q ? 0 : guest_add_redir(s, a, err, errlen);
        if (r < 0) {
            assign_free(a);
            return r;
        }
        g_ptr_array_add(s->assigns, a);
        assign_lookup(a);
        SLOG(s, FERRY_LOG_INFO, "usb[%s] assigned to %s as %s (%s)", a->ident, guest, a->id,
             a->present ? "present" : "not plugged in yet");
        assign_update_accept(a);
    }
    return 0;
}

unsigned usb_service_connected(struct ferry_usb_service *s)
{
    unsigned n = 0;

    for (guint i = 0; i < s->assigns->len; i++)
        n += ((struct assign *)g_ptr_array_index(s->assigns, i))->redir != NULL;
    return n;
}

/* The QMP connection to g's QEMU has ended: nothing can be plugged into
 * that QEMU any more. */
static void guest_lost(struct ferry_usb_service *s, struct guest *g)
{
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (a->guest == g) {
            a->plugged = false;
            a->stalled = true;
            assign_stop(a);
        }
    }
    if (s->ops.guest_gone)
        s->ops.guest_gone(s->opaque, g->qmp);
}

static void on_qmp_readable(evutil_socket_t fd, short what, void *arg)
{
    struct guest *g = arg;
    struct ferry_usb_service *s = g->svc;
    int r = usb_qmp_drain(g->q);

    if (r == 0)
        return;
    SLOG(s, FERRY_LOG_INFO, "usb: QMP connection to %s ended: %s", g->qmp,
         r == -EPIPE ? "QEMU has gone" : g_strerror(-r));
    event_del(g->qev);
    guest_lost(s, g);
}

int usb_service_add_guest_qmp(struct ferry_usb_service *s, const char *guest,
                                    struct ferry_usb_qmp *q, char *err, size_t errlen)
{
    struct guest *g = guest_get(s, guest);

    if (g->q) {
        snprintf(err, errlen, "usb: already connected to the QMP socket %s", guest);
        return -EEXIST;
    }
    g->svc = s;
    g->q = q;
    g->lent = true;
    return 0;
}

void usb_service_guest_lost(struct ferry_usb_service *s, const char *guest)
{
    for (guint i = 0; i < s->guests->len; i++) {
        struct guest *g = g_ptr_array_index(s->guests, i);
        if (!strcmp(g->qmp, guest) && g->lent) {
            SLOG(s, FERRY_LOG_INFO, "usb: QMP connection to %s ended", g->qmp);
            guest_lost(s, g);
        }
    }
}

/*
 * A new QEMU answers at the guest's QMP socket (the remote QEMU of a Ferry
 * guest's xHCI restarted): the embedder's new connection replaces the lost
 * one, channels still leaving the old QEMU are forgotten, and every
 * assignment whose device is present is plugged in again.
 */
int usb_service_guest_reconnect(struct ferry_usb_service *s, const char *guest,
                                struct ferry_usb_qmp *q, char *err, size_t errlen)
{
    struct guest *g = NULL;

    for (guint i = 0; i < s->guests->len && !g; i++) {
        struct guest *c = g_ptr_array_index(s->guests, i);
        if (!strcmp(c->qmp, guest) && c->lent)
            g = c;
    }
    if (!g) {
        snprintf(err, errlen, "usb: no lent QMP connection to %s to replace", guest);
        return -ENOENT;
    }
    for (GList *l = s->unplugs; l; l = l->next) {
        struct unplug *u = l->data;
        if (u->guest == g && u->a) {
            u->a->unplug = NULL;
            u->a = NULL;
        }
    }
    g->q = q;
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (a->guest != g)
            continue;
        assign_stop(a);
        a->plugged = false;
        a->stalled = false;
        SLOG(s, FERRY_LOG_INFO, "usb[%s] plugging into the new QEMU at %s", a->ident, g->qmp);
        assign_update_accept(a);
    }
    return 0;
}

int usb_service_add_guest(struct ferry_usb_service *s, const char *guest,
                                char *err, size_t errlen)
{
    struct guest *g = guest_get(s, guest);
    int r;

    if (g->q)
        return 0;
    r = usb_qmp_open(guest, QMP_TIMEOUT_MS, &g->q, err, errlen);
    if (r < 0)
        return r;
    g->svc = s;
    g->qev = event_new(s->base, usb_qmp_fd(g->q), EV_READ | EV_PERSIST, on_qmp_readable, g);
    if (!g->qev || event_add(g->qev, NULL) < 0) {
        snprintf(err, errlen, "usb: cannot watch the QMP connection to %s", guest);
        return -ENOMEM;
    }
    return 0;
}

/*
 * A device served on a listening socket someone else made (the `ferry`
 * CLI, root, for a libvirt domain: owner and mode as the domain's QEMU
 * needs).  Like share: each connection gets the device, taken from its
 * host driver while connected and given back when the peer leaves; the
 * peer (QEMU's reconnecting chardev) may come again.  devfd >= 0: the
 * device behind a broker's usbfs fd (wrapped again for every connection);
 * otherwise `device` is looked up and opened here.  lfd and devfd become
 * the service's on success only.
 */
int usb_service_serve_listener(struct ferry_usb_service *s, const char *where, int lfd,
                               const char *device, int devfd, char *err, size_t errlen)
{
    struct ferry_usb_devinfo d;
    struct ferry_usb_spec ident;
    libusb_device_handle *h = NULL;
    char why[FERRY_USB_ERR_MAX];
    struct assign *a;
    int r;

    if (devfd >= 0) {
        r = usb_host_wrap_fd(s->host, devfd, &h, &d, err, errlen);
        if (r < 0)
            return r;
        if (usb_policy_check(s->default_policy, &d, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "usb %04x:%04x: refused for %s by %s", d.vid, d.pid, where,
                     why);
            libusb_close(h);
            return -EPERM;
        }
    } else if ((r = resolve_device(s, NULL, device, &d, err, errlen)) < 0) {
        return r;
    }
    identity_spec(&d, &ident);
    if ((a = assign_find(s, &ident))) {
        snprintf(err, errlen, "usb %s: already attached to %s", a->ident,
                 usb_service_assign_where(a));
        if (h)
            libusb_close(h);
        return -EBUSY;
    }
    a = g_new0(struct assign, 1);
    a->svc = s;
    a->spec = ident;
    a->owned_fd = -1;
    usb_spec_format(&ident, a->ident, sizeof(a->ident));
    a->base_id = s->next_id;
    snprintf(a->id, sizeof(a->id), "ferryusb%u", s->next_id++);
    a->share_addr = g_strdup(where);
    a->dev = d;
    a->present = true;
    a->accept_ev = event_new(s->base, lfd, EV_READ | EV_PERSIST, on_accept, a);
    if (!a->accept_ev) {
        snprintf(err, errlen, "usb %s: cannot watch the listening socket", a->ident);
        a->lfd = -1;
        if (h)
            libusb_close(h);
        assign_free(a);
        return -ENOMEM;
    }
    a->lfd = lfd;
    a->keep = true;
    if (devfd >= 0) {
        a->rewrap = true;
        a->owned_fd = devfd;
        a->wrapped = h;
    }
    g_ptr_array_add(s->assigns, a);
    assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] served to %s%s", a->ident, where,
         devfd >= 0 ? " from a passed fd" : "");
    return 0;
}

bool usb_service_assigned(struct ferry_usb_service *s, const char *where, const char *device)
{
    char err[FERRY_USB_ERR_MAX];

    return assign_by_device(s, where, device, err, sizeof(err)) != NULL;
}
