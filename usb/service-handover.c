// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The USB service handed to a successor process (ferry-dm's replace,
 * docs/usb.md "Replacing ferry-dm"): every assignment of the guests whose
 * channels are socketpairs handed to QEMU, each with its usbredir channel
 * (the socket to QEMU's chardev, the device's usbfs fd and the endpoint's
 * state, usb_redir_export) as it is.  QEMU keeps its chardev and usb-redir
 * device; the guest sees nothing.
 *
 * State (little-endian), after magic "FUSV" and version:
 *   next_id u32, count u32, then per assignment:
 *   sizes of spec and devinfo (u32 each, must match this build), spec,
 *   devinfo, ident[160], id[32], base_id u32, gen u32, flags u32
 *   (present, plugged, stalled, fd_mode, granted, channel), the guest's QMP
 *   path (u32 length, bytes), and with a channel: its state (u32 length,
 *   bytes); its socket and usbfs fd are the next two of the passed fds.
 */
#include <errno.h>
#include <glib.h>
#include <libusb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "usb/service-internal.h"
#include "usb/usb-internal.h"

#define SVC_STATE_MAGIC     0x56535546u     /* "FUSV" */
#define SVC_STATE_VERSION   1
#define SVC_ASSIGNS_MAX     64

enum {
    AF_PRESENT = 1 << 0,
    AF_PLUGGED = 1 << 1,
    AF_STALLED = 1 << 2,
    AF_FD_MODE = 1 << 3,
    AF_GRANTED = 1 << 4,
    AF_CHANNEL = 1 << 5,
};

/* What stands in the way of handing over s, or 0. */
static int refusal(struct ferry_usb_service *s, char *why, size_t len)
{
    if (s->unplugs) {
        snprintf(why, len, "a usb-redir is leaving QEMU (device_del sent, DEVICE_DELETED not "
                 "seen yet): retry once it is out");
        return -EAGAIN;
    }
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);

        if (!a->guest) {
            snprintf(why, len, "usb %s is shared on the network (%s): its listener and peer "
                     "are not handed over", a->ident, a->share_addr);
            return -EOPNOTSUPP;
        }
        if (!usb_service_assign_fd_mode(a)) {
            snprintf(why, len, "usb %s reaches QEMU through a listening socket, not a channel "
                     "QEMU was given", a->ident);
            return -EOPNOTSUPP;
        }
        if (a->wrapped) {
            snprintf(why, len, "usb %s: the broker's fd is not served yet", a->ident);
            return -EAGAIN;
        }
        if (a->redir && !a->plugged) {
            snprintf(why, len, "usb %s has a channel QEMU does not hold", a->ident);
            return -EAGAIN;
        }
    }
    return 0;
}

int usb_service_quiesce(struct ferry_usb_service *s, int timeout_ms, char *why, size_t len)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    struct timeval tick = { 0, 1000 };
    int rc = refusal(s, why, len);

    if (rc < 0)
        return rc;
    gint64 t0 = g_get_monotonic_time();
    unsigned waited = 0;

    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);

        if (a->redir) {
            usb_redir_quiesce(a->redir);
            waited += usb_redir_in_flight(a->redir);
        }
    }
    /* the loop is not running (the caller blocks it): libusb and the channels by hand */
    for (;;) {
        bool all = true;

        rc = 0;
        for (guint i = 0; i < s->assigns->len && rc != -EBUSY && rc != -EOPNOTSUPP; i++) {
            struct assign *a = g_ptr_array_index(s->assigns, i);
            char w[200];
            int r;

            if (!a->redir)
                continue;
            usb_redir_quiesce_step(a->redir);
            r = usb_redir_handover_ready(a->redir, w, sizeof(w));
            if (r < 0) {
                all = false;
                rc = r;
                snprintf(why, len, "usb %s: %s", a->ident, w);
            }
        }
        if (all) {
            SLOG(s, FERRY_LOG_INFO, "usb: channels quiet for a handover after %lld us "
                 "(%u transfers were in the devices)",
                 (long long)(g_get_monotonic_time() - t0), waited);
            return 0;
        }
        if (rc == -EBUSY || rc == -EOPNOTSUPP || rc == -EPIPE ||
            g_get_monotonic_time() > end) {
            if (rc == -EAGAIN) {
                char w[300];

                snprintf(w, sizeof(w), "%s after %d ms", why, timeout_ms);
                g_strlcpy(why, w, len);
                rc = -ETIMEDOUT;
            }
            usb_service_resume(s);
            return rc;
        }
        libusb_handle_events_timeout_completed(usb_host_context(s->host), &tick, NULL);
    }
}

void usb_service_resume(struct ferry_usb_service *s)
{
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);

        if (a->redir)
            usb_redir_resume(a->redir);
    }
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

    g_byte_array_append(b, p, 4);
}

int usb_service_export(struct ferry_usb_service *s, GByteArray *state, int *fds, unsigned max,
                       unsigned *nfds, char *why, size_t len)
{
    g_autoptr(GByteArray) b = g_byte_array_new();
    unsigned n = 0;
    int rc = refusal(s, why, len);

    if (rc < 0)
        return rc;
    if (s->assigns->len > SVC_ASSIGNS_MAX) {
        snprintf(why, len, "%u USB assignments, a handover carries %u", s->assigns->len,
                 SVC_ASSIGNS_MAX);
        return -E2BIG;
    }
    put32(b, SVC_STATE_MAGIC);
    put32(b, SVC_STATE_VERSION);
    put32(b, s->next_id);
    put32(b, s->assigns->len);
    for (guint i = 0; i < s->assigns->len; i++) {
        struct assign *a = g_ptr_array_index(s->assigns, i);
        uint32_t flags = (a->present ? AF_PRESENT : 0) | (a->plugged ? AF_PLUGGED : 0) |
                         (a->stalled ? AF_STALLED : 0) | (a->fd_mode ? AF_FD_MODE : 0) |
                         (a->granted ? AF_GRANTED : 0) | (a->redir ? AF_CHANNEL : 0);

        put32(b, sizeof(a->spec));
        put32(b, sizeof(a->dev));
        g_byte_array_append(b, (const uint8_t *)&a->spec, sizeof(a->spec));
        g_byte_array_append(b, (const uint8_t *)&a->dev, sizeof(a->dev));
        g_byte_array_append(b, (const uint8_t *)a->ident, sizeof(a->ident));
        g_byte_array_append(b, (const uint8_t *)a->id, sizeof(a->id));
        put32(b, a->base_id);
        put32(b, a->gen);
        put32(b, flags);
        put32(b, (uint32_t)strlen(a->guest->qmp));
        g_byte_array_append(b, (const uint8_t *)a->guest->qmp, (guint)strlen(a->guest->qmp));
        if (!a->redir)
            continue;
        if (n + 2 > max) {
            snprintf(why, len, "more USB channels than a handover passes fds for");
            return -E2BIG;
        }
        int dfd = a->owned_fd >= 0 ? a->owned_fd : usb_redir_device_fd(a->redir);
        if (dfd < 0) {
            snprintf(why, len, "usb %s: its usbfs fd is not found: %s", a->ident,
                     g_strerror(-dfd));
            return dfd;
        }
        g_autoptr(GByteArray) r = g_byte_array_new();
        char w[200];

        rc = usb_redir_export(a->redir, r, w, sizeof(w));
        if (rc < 0) {
            snprintf(why, len, "usb %s: %s", a->ident, w);
            return rc;
        }
        put32(b, r->len);
        g_byte_array_append(b, r->data, r->len);
        fds[n++] = usb_redir_fd(a->redir);
        fds[n++] = dfd;
    }
    g_byte_array_append(state, b->data, b->len);
    *nfds = n;
    return 0;
}

struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static uint32_t rd32(struct reader *r)
{
    uint32_t v;

    if (r->left < 4) {
        r->bad = true;
        return 0;
    }
    v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
        (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

static const uint8_t *rdn(struct reader *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->left < n) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static void on_adopted_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why);

int usb_service_adopt(struct ferry_usb_service *s, const uint8_t *state, size_t len,
                      const int *fds, unsigned nfds, char *why, size_t whylen)
{
    struct reader rd = { state, len, false };
    unsigned used = 0;
    uint32_t count;

    if (rd32(&rd) != SVC_STATE_MAGIC || rd32(&rd) != SVC_STATE_VERSION) {
        snprintf(why, whylen, "usb: not a USB service state of version %u", SVC_STATE_VERSION);
        return -EPROTONOSUPPORT;
    }
    s->next_id = rd32(&rd);
    count = rd32(&rd);
    if (rd.bad || count > SVC_ASSIGNS_MAX) {
        snprintf(why, whylen, "usb: malformed USB service state");
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t ssz = rd32(&rd), dsz = rd32(&rd);
        const uint8_t *spec, *dev, *ident, *id, *qmp;
        uint32_t base_id, gen, flags, qlen;

        if (rd.bad || ssz != sizeof(struct ferry_usb_spec) ||
            dsz != sizeof(struct ferry_usb_devinfo)) {
            snprintf(why, whylen, "usb: assignment %u: records of another build (%u/%u bytes, "
                     "here %zu/%zu)", i, ssz, dsz, sizeof(struct ferry_usb_spec),
                     sizeof(struct ferry_usb_devinfo));
            return -EPROTONOSUPPORT;
        }
        spec = rdn(&rd, ssz);
        dev = rdn(&rd, dsz);
        ident = rdn(&rd, sizeof(((struct assign *)0)->ident));
        id = rdn(&rd, sizeof(((struct assign *)0)->id));
        base_id = rd32(&rd);
        gen = rd32(&rd);
        flags = rd32(&rd);
        qlen = rd32(&rd);
        qmp = rd.bad || qlen > 4096 ? NULL : rdn(&rd, qlen);
        if (rd.bad || !qmp || !memchr(ident, 0, 160) || !memchr(id, 0, 32)) {
            snprintf(why, whylen, "usb: assignment %u: malformed", i);
            return -EBADMSG;
        }
        g_autofree char *qpath = g_strndup((const char *)qmp, qlen);
        struct guest *g = NULL;

        for (guint k = 0; k < s->guests->len; k++) {
            struct guest *x = g_ptr_array_index(s->guests, k);
            if (!strcmp(x->qmp, qpath))
                g = x;
        }
        if (!g || !g->q) {
            snprintf(why, whylen, "usb: assignment %u is for the QEMU at %s, which this "
                     "ferry-dm has no QMP connection to", i, qpath);
            return -ENOENT;
        }
        struct assign *a = g_new0(struct assign, 1);

        a->svc = s;
        a->guest = g;
        a->lfd = -1;
        a->owned_fd = -1;
        memcpy(&a->spec, spec, ssz);
        memcpy(&a->dev, dev, dsz);
        memcpy(a->ident, ident, sizeof(a->ident));
        memcpy(a->id, id, sizeof(a->id));
        a->base_id = base_id;
        a->gen = gen;
        a->present = flags & AF_PRESENT;
        a->plugged = flags & AF_PLUGGED;
        a->stalled = flags & AF_STALLED;
        a->fd_mode = flags & AF_FD_MODE;
        a->granted = flags & AF_GRANTED;
        g_ptr_array_add(s->assigns, a);
        if (!(flags & AF_CHANNEL))
            continue;
        uint32_t rlen = rd32(&rd);
        const uint8_t *rstate = rd.bad ? NULL : rdn(&rd, rlen);
        if (!rstate || used + 2 > nfds) {
            snprintf(why, whylen, "usb %s: its channel's state or fds are missing", a->ident);
            return -EBADMSG;
        }
        int sock = fds[used++], dfd = fds[used++];
        libusb_device_handle *h = NULL;
        struct ferry_usb_devinfo d;
        char err[FERRY_USB_ERR_MAX];
        /* the passed fd itself: interface claims belong to the open file */
        int rc = usb_host_wrap_fd(s->host, dfd, &h, &d, err, sizeof(err));

        if (rc < 0) {
            snprintf(why, whylen, "usb %s: %s", a->ident, err);
            return rc;
        }
        a->owned_fd = dfd;      /* closed after the handle */
        struct ferry_usb_redir_ops rops = { .log = s->ops.log, .log_opaque = s->opaque,
                                            .ended = on_adopted_end };
        rc = usb_redir_adopt(s->host, h, sock, rstate, rlen, a->ident, &rops, a, &a->redir,
                             err, sizeof(err));
        if (rc < 0) {
            a->redir = NULL;
            snprintf(why, whylen, "%s", err);
            return rc;
        }
        SLOG(s, FERRY_LOG_INFO, "usb[%s] taken over: connected to %s as %s", a->ident,
             usb_service_assign_where(a), a->id);
    }
    if (rd.left || used != nfds) {
        snprintf(why, whylen, "usb: %zu bytes or %u fds left over in the USB state", rd.left,
                 nfds - used);
        return -EBADMSG;
    }
    return 0;
}

/* As a channel made here ends (service-serve.c's on_redir_end). */
static void on_adopted_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    usb_service_assign_redir_ended(opaque, why);
}
