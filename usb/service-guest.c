// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The USB service's QMP connection to a guest's QEMU: opened and watched
 * here (usb_service_add_guest) or lent by the embedder
 * (usb_service_add_guest_qmp); when it ends nothing is plugged into that
 * QEMU until a new connection replaces it (usb_service_guest_reconnect),
 * which plugs every present device in again.  The assignments themselves
 * are service.c's.
 */
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "usb/ferry-usb.h"
#include "usb/service-internal.h"

/* The QMP connection to g's QEMU has ended: nothing can be plugged into
 * that QEMU any more. */
static void guest_lost(struct ferry_usb_service *s, struct guest *g)
{
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        if (a->guest == g) {
            a->plugged = false;
            a->stalled = true;
            usb_service_assign_stop(a);
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
    struct guest *g = usb_service_guest_get(s, guest);

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
        usb_service_assign_stop(a);
        a->plugged = false;
        a->stalled = false;
        if (a->fd_mode && !a->wrapped && a->owned_fd >= 0) {
            /*
             * The broker's fd (or one opened before confinement) outlives the
             * channel that used it (libusb_close leaves a wrapped fd open):
             * the device, if still there, is wrapped again for the new QEMU
             * instead of waiting for a new fd that only a replug would bring.
             */
            struct ferry_usb_devinfo d;
            char why[FERRY_USB_ERR_MAX];

            if (usb_host_wrap_fd(s->host, a->owned_fd, &a->wrapped, &d, why, sizeof(why)) < 0) {
                a->wrapped = NULL;
                a->present = false;
                SLOG(s, FERRY_LOG_WARNING, "usb[%s] its fd no longer serves (%s): it comes "
                     "back with a new one (ferry usb attach)", a->ident, why);
                continue;
            }
            a->present = true;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] plugging into the new QEMU at %s", a->ident, g->qmp);
        usb_service_assign_update_accept(a);
    }
    return 0;
}

int usb_service_add_guest(struct ferry_usb_service *s, const char *guest,
                                char *err, size_t errlen)
{
    struct guest *g = usb_service_guest_get(s, guest);
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
