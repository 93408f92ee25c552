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
 * This file is the assignment state machine: guests, assignments, hotplug,
 * attach, detach, share and the listeners handed in (libvirt).  The
 * channels that serve one assignment (plug into QEMU, accept a peer,
 * unplug) are service-serve.c; the guest's QMP connection (kept open,
 * lent, lost, replaced after a reconnect) is service-guest.c; the [usb]
 * group of a config is read in service-config.c and the devices are
 * rendered as JSON in service-json.c (the state they share:
 * service-internal.h).  It was kept whole at a little over 800 lines; the
 * libvirt listeners and the guest reconnect took it past 1000, so the
 * channel and the QMP connection, each with its own callbacks, went to
 * their own files.
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


struct guest *usb_service_guest_get(struct ferry_usb_service *s, const char *qmp)
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
int usb_service_policy_check(struct ferry_usb_service *s, struct guest *g,
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
        usb_service_assign_free(a);
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
        usb_service_assign_free(a);
        return fd;
    }
    a->lfd = fd;
    a->accept_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, usb_service_on_accept, a);
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
        usb_service_assign_update_accept(a);
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
                usb_service_assign_stop(a);
            usb_service_assign_update_accept(a);
            continue;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s", a->ident,
             usb_service_assign_where(a));
        usb_service_assign_stop(a);
        if (usb_service_assign_fd_mode(a))
            usb_service_assign_unplug_qemu(a);
        usb_service_assign_update_accept(a);
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
            usb_service_assign_free(g_ptr_array_index(s->assigns, i));
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
        struct guest *g = usb_service_guest_get(s, guest);
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
    if (usb_service_policy_check(s, g, d, why, sizeof(why)) < 0) {
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
    struct guest *g = usb_service_guest_get(s, guest);
    struct ferry_usb_devinfo d;
    struct assign *a;
    int r = resolve_device(s, g, device, &d, err, errlen);

    if (r < 0 || (r = assign_claim(s, g, NULL, &d, &a, err, errlen)) < 0)
        return r;
    r = g->q ? usb_service_assign_plug(a, err, errlen) : guest_add_redir(s, a, err, errlen);
    if (r < 0) {
        usb_service_assign_free(a);
        return r;
    }
    g_ptr_array_add(s->assigns, a);
    usb_service_assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] attached to %s as %s", a->ident, guest, a->id);
    return 0;
}

int usb_service_attach_fd(struct ferry_usb_service *s, const char *guest, int fd,
                                char *err, size_t errlen)
{
    struct guest *g = usb_service_guest_get(s, guest);
    struct ferry_usb_devinfo d;
    struct ferry_usb_spec ident;
    libusb_device_handle *h;
    char why[FERRY_USB_ERR_MAX];
    struct assign *a;
    int r = usb_host_wrap_fd(s->host, fd, &h, &d, err, errlen);

    if (r < 0)
        return r;
    if (usb_service_policy_check(s, g, &d, why, sizeof(why)) < 0) {
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
        r = usb_service_assign_plug(a, err, errlen);
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
    r = g->q ? usb_service_assign_plug(a, err, errlen) : guest_add_redir(s, a, err, errlen);
    if (r < 0) {
        a->owned_fd = -1;       /* stays the caller's */
        usb_service_assign_free(a);
        return r;
    }
    g_ptr_array_add(s->assigns, a);
    usb_service_assign_update_accept(a);
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
        usb_service_assign_stop(a);
        if (a->plugged) {
            a->plugged = false;
            r = usb_service_assign_unplug_start(a, done, opaque, err, errlen);
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
    usb_service_assign_free(a);
    return r;
}

int usb_service_device_left(struct ferry_usb_service *s, const char *guest,
                                  const char *device, char *err, size_t errlen)
{
    struct assign *a = assign_by_device(s, guest, device, err, errlen);

    if (!a)
        return -ENOENT;
    if (a->keep) {
        /* a listener's device: QEMU keeps its connection and hears it is gone */
        if (a->present)
            SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (the broker says; "
                 "connection kept)", a->ident, usb_service_assign_where(a));
        a->present = false;
        if (a->redir && usb_redir_set_device(a->redir, NULL) < 0)
            usb_service_assign_stop(a);
        if (a->wrapped)
            libusb_close(a->wrapped);
        a->wrapped = NULL;
        if (a->rewrap && a->owned_fd >= 0)
            close(a->owned_fd);
        a->owned_fd = -1;
        usb_service_assign_update_accept(a);
        return 0;
    }
    if (!a->present)
        return 0;
    SLOG(s, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (the broker says)", a->ident,
         usb_service_assign_where(a));
    a->present = false;
    usb_service_assign_stop(a);
    if (a->wrapped) {
        libusb_close(a->wrapped);
        a->wrapped = NULL;
    }
    if (usb_service_assign_fd_mode(a))
        usb_service_assign_unplug_qemu(a);
    usb_service_assign_update_accept(a);
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
    usb_service_assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] shared on %s", a->ident, listen);
    return 0;
}

int usb_service_assign_devices(struct ferry_usb_service *s, const char *guest,
                               char *const *devices, char *err, size_t errlen)
{
    struct guest *g = usb_service_guest_get(s, guest);
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
            usb_service_assign_free(a);
            return r;
        }
        g_ptr_array_add(s->assigns, a);
        assign_lookup(a);
        SLOG(s, FERRY_LOG_INFO, "usb[%s] assigned to %s as %s (%s)", a->ident, guest, a->id,
             a->present ? "present" : "not plugged in yet");
        usb_service_assign_update_accept(a);
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
    a->accept_ev = event_new(s->base, lfd, EV_READ | EV_PERSIST, usb_service_on_accept, a);
    if (!a->accept_ev) {
        snprintf(err, errlen, "usb %s: cannot watch the listening socket", a->ident);
        a->lfd = -1;
        if (h)
            libusb_close(h);
        usb_service_assign_free(a);
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
    usb_service_assign_update_accept(a);
    SLOG(s, FERRY_LOG_INFO, "usb[%s] served to %s%s", a->ident, where,
         devfd >= 0 ? " from a passed fd" : "");
    return 0;
}

/* The listener assignment served to where, or NULL. */
static struct assign *listener_find(struct ferry_usb_service *s, const char *where)
{
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (a->keep && a->share_addr && !strcmp(a->share_addr, where))
            return a;
    }
    return NULL;
}

/*
 * The broker's new usbfs fd for the device served to where (it was
 * unplugged and is back): the same device (its identity), allowed by the
 * policy; a peer still connected gets it on that connection, otherwise the
 * next one does.  devfd is the service's on success only.
 */
int usb_service_serve_listener_fd(struct ferry_usb_service *s, const char *where, int devfd,
                                  char *err, size_t errlen)
{
    struct assign *a = listener_find(s, where);
    libusb_device_handle *h = NULL;
    struct ferry_usb_devinfo d;
    char why[FERRY_USB_ERR_MAX];
    int r;

    if (!a) {
        snprintf(err, errlen, "usb: nothing is served to %s", where);
        return -ENOENT;
    }
    if ((r = usb_host_wrap_fd(s->host, devfd, &h, &d, err, errlen)) < 0)
        return r;
    if (!usb_spec_match(&a->spec, &d)) {
        snprintf(err, errlen, "usb fd (%04x:%04x at %s) is not %s, which is served to %s",
                 d.vid, d.pid, d.port[0] ? d.port : "?", a->ident, where);
        libusb_close(h);
        return -EINVAL;
    }
    if (usb_policy_check(s->default_policy, &d, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "usb %04x:%04x: refused for %s by %s", d.vid, d.pid, where, why);
        libusb_close(h);
        return -EPERM;
    }
    /* the old node's handle and fd go first */
    if (a->redir && a->present && usb_redir_set_device(a->redir, NULL) < 0)
        SLOG(s, FERRY_LOG_WARNING, "usb[%s] cannot let go of the old handle", a->ident);
    if (a->wrapped)
        libusb_close(a->wrapped);
    a->wrapped = NULL;
    if (a->owned_fd >= 0)
        close(a->owned_fd);
    a->owned_fd = -1;
    a->rewrap = true;
    a->dev = d;
    a->stalled = false;
    if (a->redir) {
        if (usb_redir_set_device(a->redir, h) < 0) {
            snprintf(err, errlen, "usb %s: back, but cannot claim it for %s", a->ident, where);
            a->present = false;
            return -EBUSY;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] back at port=%s, given again to %s (the broker's fd)",
             a->ident, d.port, where);
    } else {
        a->wrapped = h;
        SLOG(s, FERRY_LOG_INFO, "usb[%s] back at port=%s for %s (the broker's fd)", a->ident,
             d.port, where);
    }
    a->owned_fd = devfd;
    a->present = true;
    usb_service_assign_update_accept(a);
    return 0;
}

int usb_service_listener_state(struct ferry_usb_service *s, const char *where, bool *present,
                               bool *connected)
{
    struct assign *a = listener_find(s, where);

    if (!a)
        return -ENOENT;
    *present = a->present;
    *connected = a->redir != NULL;
    return 0;
}

bool usb_service_assigned(struct ferry_usb_service *s, const char *where, const char *device)
{
    char err[FERRY_USB_ERR_MAX];

    return assign_by_device(s, where, device, err, sizeof(err)) != NULL;
}

