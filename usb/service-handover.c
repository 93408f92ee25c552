// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The USB service handed to a successor process (ferry-dm's replace,
 * docs/usb.md "Replacing ferry-dm"): every assignment, each with its
 * usbredir channel (the socket to QEMU's chardev or to a peer, the device's
 * usbfs fd and the endpoint's state, usb_redir_export) as it is, and for a
 * device served on a listening socket (shared on the network, served to a
 * listener someone passed, or to a QEMU that connects to us) that socket.
 * QEMU keeps its chardev and usb-redir device, a network peer its
 * connection; neither sees anything.
 *
 * State (little-endian), after magic "FUSV" and version:
 *   next_id u32, count u32, then per assignment:
 *   sizes of spec and devinfo (u32 each, must match this build), spec,
 *   devinfo, ident[160], id[32], base_id u32, gen u32, flags u32 (AF_*),
 *   the guest's QMP path (none for a share), the share's address, the
 *   socket path QEMU connects to (each u32 length, bytes), and with a
 *   channel: its state (u32 length, bytes).  Its fds, in the order passed:
 *   the listening socket (AF_LISTENER), the channel's socket and usbfs fd
 *   (AF_CHANNEL), the broker's usbfs fd a listener wraps for each
 *   connection (AF_OWNED, without a channel).
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
#define SVC_STATE_VERSION   2
#define SVC_ASSIGNS_MAX     64
#define SVC_ADDR_MAX        4096

enum {
    AF_PRESENT = 1 << 0,
    AF_PLUGGED = 1 << 1,
    AF_STALLED = 1 << 2,
    AF_FD_MODE = 1 << 3,
    AF_GRANTED = 1 << 4,
    AF_CHANNEL = 1 << 5,
    AF_GUEST_QMP = 1 << 6,      /* its guest's QMP connection is kept (channels are socketpairs) */
    AF_LISTENER = 1 << 7,       /* a listening socket is passed */
    AF_ACCEPTING = 1 << 8,      /* ... and watched for the next peer */
    AF_KEEP = 1 << 9,           /* usb_service_serve_listener's */
    AF_REWRAP = 1 << 10,
    AF_OWNED = 1 << 11,         /* the broker's usbfs fd is passed (without a channel) */
    AF_ALL = (1 << 12) - 1,
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

        if (a->wrapped && !a->rewrap) {
            snprintf(why, len, "usb %s: the broker's fd is not served yet", a->ident);
            return -EAGAIN;
        }
        if (a->redir && usb_service_assign_fd_mode(a) && !a->plugged) {
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
                         (a->granted ? AF_GRANTED : 0) | (a->redir ? AF_CHANNEL : 0) |
                         (usb_service_assign_fd_mode(a) ? AF_GUEST_QMP : 0) |
                         (a->lfd >= 0 ? AF_LISTENER : 0) |
                         (a->lfd >= 0 && a->accepting ? AF_ACCEPTING : 0) |
                         (a->keep ? AF_KEEP : 0) | (a->rewrap ? AF_REWRAP : 0) |
                         (!a->redir && a->rewrap && a->owned_fd >= 0 ? AF_OWNED : 0);
        const char *qmp = a->guest ? a->guest->qmp : "";
        const char *share = a->share_addr ? a->share_addr : "";

        put32(b, sizeof(a->spec));
        put32(b, sizeof(a->dev));
        g_byte_array_append(b, (const uint8_t *)&a->spec, sizeof(a->spec));
        g_byte_array_append(b, (const uint8_t *)&a->dev, sizeof(a->dev));
        g_byte_array_append(b, (const uint8_t *)a->ident, sizeof(a->ident));
        g_byte_array_append(b, (const uint8_t *)a->id, sizeof(a->id));
        put32(b, a->base_id);
        put32(b, a->gen);
        put32(b, flags);
        put32(b, (uint32_t)strlen(qmp));
        g_byte_array_append(b, (const uint8_t *)qmp, (guint)strlen(qmp));
        put32(b, (uint32_t)strlen(share));
        g_byte_array_append(b, (const uint8_t *)share, (guint)strlen(share));
        put32(b, (uint32_t)strnlen(a->sock_path, sizeof(a->sock_path)));
        g_byte_array_append(b, (const uint8_t *)a->sock_path,
                            (guint)strnlen(a->sock_path, sizeof(a->sock_path)));
        if (n + 3 > max) {
            snprintf(why, len, "more USB channels and listeners than a handover passes fds for");
            return -E2BIG;
        }
        if (a->lfd >= 0)
            fds[n++] = a->lfd;
        if (!a->redir) {
            if (flags & AF_OWNED)
                fds[n++] = a->owned_fd;
            continue;
        }
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
        const uint8_t *spec, *dev, *ident, *id, *qmp, *share, *path;
        uint32_t base_id, gen, flags, qlen, slen, plen;

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
        qmp = rd.bad || qlen > SVC_ADDR_MAX ? NULL : rdn(&rd, qlen);
        slen = rd32(&rd);
        share = rd.bad || slen > SVC_ADDR_MAX ? NULL : rdn(&rd, slen);
        plen = rd32(&rd);
        path = rd.bad || plen >= sizeof(((struct assign *)0)->sock_path) ? NULL
                                                                         : rdn(&rd, plen);
        if (rd.bad || !qmp || !share || !path || !memchr(ident, 0, 160) || !memchr(id, 0, 32) ||
            memchr(qmp, 0, qlen) || memchr(share, 0, slen) || memchr(path, 0, plen)) {
            snprintf(why, whylen, "usb: assignment %u: malformed", i);
            return -EBADMSG;
        }
        /* a guest's (its QMP kept: channels are socketpairs; or QEMU connects to
         * our socket) or a share's (an address, a listening socket) */
        if ((flags & ~(uint32_t)AF_ALL) || !qlen == !slen || (!qlen && (flags & AF_GUEST_QMP)) ||
            ((flags & AF_GUEST_QMP) && (flags & AF_LISTENER)) ||
            (!(flags & AF_GUEST_QMP) && !(flags & AF_LISTENER)) ||
            ((flags & AF_ACCEPTING) && !(flags & AF_LISTENER)) ||
            ((flags & AF_OWNED) && (!(flags & AF_REWRAP) || (flags & AF_CHANNEL)))) {
            snprintf(why, whylen, "usb: assignment %u: flags %#x do not make one (a guest's "
                     "or a share's, with its sockets)", i, flags);
            return -EBADMSG;
        }
        g_autofree char *qpath = g_strndup((const char *)qmp, qlen);
        struct guest *g = NULL;

        if (qlen && (flags & AF_GUEST_QMP)) {
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
        } else if (qlen) {
            g = usb_service_guest_get(s, qpath);
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
        memcpy(a->sock_path, path, plen);
        if (slen)
            a->share_addr = g_strndup((const char *)share, slen);
        a->base_id = base_id;
        a->gen = gen;
        a->present = flags & AF_PRESENT;
        a->plugged = flags & AF_PLUGGED;
        a->stalled = flags & AF_STALLED;
        a->fd_mode = flags & AF_FD_MODE;
        a->granted = flags & AF_GRANTED;
        a->keep = flags & AF_KEEP;
        a->rewrap = flags & AF_REWRAP;
        g_ptr_array_add(s->assigns, a);
        if (flags & AF_LISTENER) {
            if (used + 1 > nfds) {
                snprintf(why, whylen, "usb %s: its listening socket is missing", a->ident);
                return -EBADMSG;
            }
            a->lfd = fds[used++];
            a->accept_ev = event_new(s->base, a->lfd, EV_READ | EV_PERSIST,
                                     usb_service_on_accept, a);
            if (!a->accept_ev) {
                snprintf(why, whylen, "usb %s: cannot watch its listening socket", a->ident);
                return -ENOMEM;
            }
            /* the next peer is taken here, as the predecessor would have */
            if (flags & AF_ACCEPTING) {
                event_add(a->accept_ev, NULL);
                a->accepting = true;
            }
        }
        if (flags & AF_OWNED) {
            if (used + 1 > nfds) {
                snprintf(why, whylen, "usb %s: the broker's fd is missing", a->ident);
                return -EBADMSG;
            }
            a->owned_fd = fds[used++];
        }
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
        struct ferry_usb_redir_ops rops;

        usb_service_assign_redir_ops(a, &rops);
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

