// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The USB service's channels for one assignment: whether it wants a
 * channel now (present, allowed, granted), a channel into QEMU (a
 * socketpair whose far end QEMU gets by getfd, chardev-add and usb-redir),
 * a peer accepted on the assignment's listening socket, the usbredir
 * endpoint's end, and the usb-redir's way out of QEMU (device_del,
 * DEVICE_DELETED on the embedder's loop, chardev-remove).  The state
 * machine that moves assignments is service.c; service-internal.h has the
 * records.
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

bool usb_service_assign_fd_mode(const struct assign *a)
{
    return a->guest && a->guest->q;
}

static void on_redir_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    usb_service_assign_redir_ended(opaque, why);
}

void usb_service_assign_update_accept(struct assign *a)
{
    char why[FERRY_USB_ERR_MAX];
    bool want = a->present && !a->redir;

    if (want && usb_service_policy_check(a->svc, a->guest, &a->dev, why, sizeof(why)) < 0) {
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
    if (usb_service_assign_fd_mode(a)) {
        char err[FERRY_USB_ERR_MAX];

        if (want && !a->stalled && usb_service_assign_plug(a, err, sizeof(err)) < 0)
            SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] %s", a->ident, err);
        return;
    }
    if (want && !a->accepting)
        event_add(a->accept_ev, NULL);
    else if (!want && a->accepting)
        event_del(a->accept_ev);
    a->accepting = want;
}

void usb_service_assign_stop(struct assign *a)
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
            usb_service_assign_update_accept(u->a);
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
int usb_service_assign_unplug_start(struct assign *a, void (*done)(void *, int, const char *),
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
void usb_service_assign_unplug_qemu(struct assign *a)
{
    char err[FERRY_USB_ERR_MAX];

    if (!a->plugged)
        return;
    a->plugged = false;
    if (usb_service_assign_unplug_start(a, NULL, NULL, err, sizeof(err)) < 0)
        SLOG(a->svc, FERRY_LOG_WARNING, "usb[%s] removing %s from QEMU: %s", a->ident, a->id, err);
}

/* A new channel to QEMU: socketpair, our end served by a usbredir endpoint,
 * the other end given to QEMU (getfd, chardev-add, device_add usb-redir). */
int usb_service_assign_plug(struct assign *a, char *err, size_t errlen)
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
        usb_service_assign_stop(a);
        return r;
    }
    a->plugged = true;
    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] connected to %s as %s port=%s", a->ident,
         usb_service_assign_where(a), a->id, a->dev.port);
    return 0;
}

void usb_service_assign_redir_ended(struct assign *a, enum ferry_usb_redir_end why)
{

    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] connection to %s ended (%s)", a->ident,
         usb_service_assign_where(a),
         why == FERRY_USB_REDIR_DEVICE_LOST ? "device lost" :
         why == FERRY_USB_REDIR_PEER_INVALID ? "invalid input" :
         why == FERRY_USB_REDIR_PEER_CLOSED ? "peer closed" : "i/o error");
    usb_service_assign_stop(a);
    if (why == FERRY_USB_REDIR_DEVICE_LOST || a->fd_mode)
        a->present = false;     /* a broker's fd serves one connection */
    if (usb_service_assign_fd_mode(a)) {
        usb_service_assign_unplug_qemu(a);
        /* QEMU ended it (or sent garbage): no new channel until a replug */
        a->stalled = why != FERRY_USB_REDIR_DEVICE_LOST;
    }
    usb_service_assign_update_accept(a);
}

/* keep: the device went; QEMU keeps its connection and hears it is gone */
static void on_redir_device_lost(void *opaque, struct ferry_usb_redir *r)
{
    struct assign *a = opaque;

    SLOG(a->svc, FERRY_LOG_INFO, "usb[%s] unplugged while attached to %s (connection kept)",
         a->ident, usb_service_assign_where(a));
    a->present = false;
}

void usb_service_assign_redir_ops(struct assign *a, struct ferry_usb_redir_ops *rops)
{
    *rops = (struct ferry_usb_redir_ops){ .log = a->svc->ops.log, .log_opaque = a->svc->opaque,
                                          .ended = on_redir_end,
                                          .device_lost = a->keep && !usb_service_assign_fd_mode(a)
                                                         ? on_redir_device_lost : NULL };
}

void usb_service_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct assign *a = arg;
    struct ferry_usb_redir_ops rops;
    libusb_device_handle *h = NULL;
    char err[FERRY_USB_ERR_MAX];
    int fd = usb_accept(lfd);

    usb_service_assign_redir_ops(a, &rops);
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
    usb_service_assign_update_accept(a);
}

void usb_service_assign_free(struct assign *a)
{
    if (a->granted && a->svc->ops.released)
        a->svc->ops.released(a->svc->opaque, usb_service_assign_where(a), &a->dev);
    if (a->unplug)
        a->unplug->a = NULL;
    usb_service_assign_stop(a);
    if (a->guest && a->guest->q)
        usb_service_assign_unplug_qemu(a);
    if (a->wrapped)
        libusb_close(a->wrapped);
    if (a->owned_fd >= 0)     /* a broker's, a listener's or a predecessor's fd */
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
