// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One device shared on a listening socket, to one client at a time
 * (`ferry usb share`).  A connection goes through
 *   TLS   the handshake (when the share has credentials) and the check of
 *         the client's certificate or PSK identity;
 *   HELLO the client's usbredir hello, read here and checked;
 *   SERVE a usbredir endpoint (redir.c) on the device, which only now leaves
 *         its host driver; the hello read here is replayed to it first.
 * TLS and HELLO together must end within handshake_ms; a served client that
 * moves no byte for idle_ms is dropped.  A second connection while one is
 * in any phase is closed at once.  The device is the usbfs fd opened before
 * (the process may be confined since), wrapped anew for each client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <libusb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "usb/ferry-usb.h"
#include "usb/usb-internal.h"
#include "usb/usb-tls.h"

#define SHARE_HANDSHAKE_MS_DEFAULT 10000u
/* usbredir's packet header before 64-bit ids are agreed (the hello's) */
#define HELLO_HEADER_LEN 12u
#define HELLO_VERSION_LEN 64u
#define USB_REDIR_HELLO 0u
#define PEER_MAX 128
/*
 * Plain text per TLS record we send.  QEMU's socket chardev reads at most
 * 4096 bytes at a time (CHR_READ_BUF_LEN) and, in QEMU 7.2, watches only
 * the socket: what GnuTLS decrypted beyond those 4096 bytes waits there
 * until more bytes reach the socket, and the guest's transfers time out.
 * Records no larger than one read leave nothing behind.
 */
#define SHARE_TLS_RECORD_MAX 4096u

enum phase { PH_TLS, PH_HELLO, PH_SERVE };

struct client {
    struct ferry_usb_share *s;
    int fd;
    char peer[PEER_MAX];
    enum phase phase;
    gnutls_session_t tls;
    size_t tls_retry;               /* a send that returned EAGAIN: its length */
    bool tls_started;               /* its first byte was a TLS record's */
    struct event *ev, *timer;
    uint8_t hello[FERRY_USB_SHARE_HELLO_MAX];
    size_t hello_len, hello_off;    /* read; replayed to the endpoint */
    struct ferry_usb_redir *redir;
    uint64_t idle_bytes, idle_since;
};

struct ferry_usb_share {
    struct ferry_usb_host *host;
    struct event_base *base;
    struct ferry_usb_share_ops ops;
    void *opaque;
    char name[64];
    int lfd, usbfs_fd;
    const struct ferry_usb_tls *tls;
    unsigned handshake_ms, idle_ms;
    struct event *accept_ev, *end_ev;
    struct client *client;
    struct ferry_ratelimit refuse_rl;
    bool lost;
};

#define SLOG(s, lvl, ...) ferry_logf((s)->ops.log, (s)->ops.log_opaque, (lvl), __VA_ARGS__)

int usb_share_hello_check(const uint8_t *buf, size_t len, size_t *need, char *what,
                          size_t whatlen)
{
    uint32_t type, plen;

    *need = HELLO_HEADER_LEN;
    if (len < HELLO_HEADER_LEN)
        return 0;
    /* little-endian on the wire, as every usbredir peer runs */
    type = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
           (uint32_t)buf[3] << 24;
    plen = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
           (uint32_t)buf[7] << 24;
    if (type != USB_REDIR_HELLO) {
        snprintf(what, whatlen, "its first packet is of type %" PRIu32 ", not a usbredir hello",
                 type);
        return -EPROTO;
    }
    if (plen < HELLO_VERSION_LEN || plen > FERRY_USB_SHARE_HELLO_MAX - HELLO_HEADER_LEN) {
        snprintf(what, whatlen, "its usbredir hello announces %" PRIu32 " bytes, not %u to %u",
                 plen, HELLO_VERSION_LEN, FERRY_USB_SHARE_HELLO_MAX - HELLO_HEADER_LEN);
        return -EPROTO;
    }
    *need = HELLO_HEADER_LEN + plen;
    return len >= *need ? 1 : 0;
}

static void peer_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN];

    snprintf(buf, len, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)&ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)&ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        struct ucred uc;
        socklen_t ul = sizeof(uc);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
            snprintf(buf, len, "unix(pid=%d,uid=%u)", (int)uc.pid, (unsigned)uc.uid);
        else
            snprintf(buf, len, "unix");
    }
}

/* ---- a client ------------------------------------------------------------- */

static void client_free(struct client *c)
{
    if (!c)
        return;
    if (c->ev)
        event_free(c->ev);
    if (c->timer)
        event_free(c->timer);
    if (c->redir)
        usb_redir_free(c->redir);   /* closes fd; the device goes back to its driver */
    else if (c->fd >= 0)
        close(c->fd);
    if (c->tls)
        gnutls_deinit(c->tls);
    g_free(c);
}

/* End the client now (from its own callbacks too: freed from the loop). */
static void client_drop(struct ferry_usb_share *s, enum ferry_log_level lvl, const char *fmt, ...)
    FERRY_PRINTF(3, 4);

static void client_drop(struct ferry_usb_share *s, enum ferry_log_level lvl, const char *fmt, ...)
{
    struct client *c = s->client;
    char why[300];
    va_list ap;

    if (!c)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    s->client = NULL;
    if (c->phase == PH_SERVE)
        SLOG(s, lvl, "usb-share[%s] peer=%s: %s; bytes=%" PRIu64 "; the device is back with "
             "its host driver", s->name, c->peer, why, usb_redir_bytes(c->redir));
    else
        SLOG(s, lvl, "usb-share[%s] peer=%s: %s; dropped (the device never left its host "
             "driver)", s->name, c->peer, why);
    client_free(c);
    event_active(s->end_ev, EV_TIMEOUT, 0);
}

/* The endpoint's transport: the hello first, then TLS or the socket. */
static ssize_t client_recv(void *opaque, void *buf, size_t len)
{
    struct client *c = opaque;
    ssize_t n;

    if (c->phase == PH_SERVE && c->hello_off < c->hello_len) {
        n = (ssize_t)MIN(len, c->hello_len - c->hello_off);
        memcpy(buf, c->hello + c->hello_off, (size_t)n);
        c->hello_off += (size_t)n;
        return n;
    }
    if (!c->tls)
        return recv(c->fd, buf, len, 0);   /* recv: a socket (and no LD_PRELOAD read wrapper) */
    n = gnutls_record_recv(c->tls, buf, len);
    if (n >= 0)
        return n;
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        errno = EAGAIN;
        return -1;
    }
    /* a peer that closes without close_notify is a peer that closed */
    if (n == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
    SLOG(c->s, FERRY_LOG_WARNING, "usb-share[%s] peer=%s: tls: %s", c->s->name, c->peer,
         gnutls_strerror((int)n));
    errno = EPROTO;
    return -1;
}

static ssize_t client_send(void *opaque, const void *buf, size_t len)
{
    struct client *c = opaque;
    ssize_t n;

    if (!c->tls)
        return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* GnuTLS: after EAGAIN, the same call again, or NULL/0, which finishes it */
    if (c->tls_retry)
        n = gnutls_record_send(c->tls, NULL, 0);
    else
        n = gnutls_record_send(c->tls, buf, MIN(len, SHARE_TLS_RECORD_MAX));
    if (n >= 0) {
        c->tls_retry = 0;
        return n;
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        if (!c->tls_retry)
            c->tls_retry = MIN(len, SHARE_TLS_RECORD_MAX);
        errno = EAGAIN;
        return -1;
    }
    errno = EPIPE;
    return -1;
}

static size_t client_pending(void *opaque)
{
    struct client *c = opaque;

    return (c->phase == PH_SERVE ? c->hello_len - c->hello_off : 0) +
           (c->tls ? gnutls_record_check_pending(c->tls) : 0);
}

static void on_redir_end(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    struct client *c = opaque;
    struct ferry_usb_share *s = c->s;

    if (why == FERRY_USB_REDIR_DEVICE_LOST)
        s->lost = true;
    client_drop(s, why == FERRY_USB_REDIR_PEER_CLOSED ? FERRY_LOG_INFO : FERRY_LOG_WARNING,
                "connection ended (%s)",
                why == FERRY_USB_REDIR_DEVICE_LOST ? "device lost" :
                why == FERRY_USB_REDIR_PEER_INVALID ? "invalid input" :
                why == FERRY_USB_REDIR_PEER_CLOSED ? "peer closed" : "i/o error");
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* The hello is in: the device leaves its host driver for this client. */
static void client_serve(struct client *c)
{
    struct ferry_usb_share *s = c->s;
    struct ferry_usb_redir_ops rops = {
        .log = s->ops.log, .log_opaque = s->ops.log_opaque, .ended = on_redir_end,
        .recv = client_recv, .send = client_send, .pending = client_pending,
    };
    libusb_device_handle *h = NULL;
    char err[FERRY_USB_ERR_MAX];
    int r;

    event_del(c->ev);
    event_del(c->timer);
    r = usb_host_wrap_fd(s->host, s->usbfs_fd, &h, NULL, err, sizeof(err));
    if (r < 0) {
        s->lost = true;
        client_drop(s, FERRY_LOG_ERROR, "the device cannot be used (unplugged?): %s", err);
        return;
    }
    c->phase = PH_SERVE;
    r = usb_redir_new(s->host, h, c->fd, s->name, &rops, c, &c->redir);
    if (r < 0) {
        c->phase = PH_HELLO;
        c->fd = -1;     /* closed by usb_redir_new */
        c->redir = NULL;
        client_drop(s, FERRY_LOG_ERROR, "cannot serve the device: %s", g_strerror(-r));
        return;
    }
    SLOG(s, FERRY_LOG_INFO, "usb-share[%s] peer=%s: usbredir hello; the device is taken from "
         "its host driver and served", s->name, c->peer);
    if (s->idle_ms) {
        struct timeval tv = { .tv_sec = MIN(s->idle_ms, 1000u) / 1000,
                              .tv_usec = (MIN(s->idle_ms, 1000u) % 1000) * 1000 };

        c->idle_bytes = usb_redir_bytes(c->redir);
        c->idle_since = ferry_monotonic_ms();
        event_free(c->timer);
        c->timer = event_new(s->base, -1, EV_PERSIST, on_timer, c);
        event_add(c->timer, &tv);
    }
}

/* HELLO: read exactly the hello, no byte of what follows it. */
static void client_read_hello(struct client *c)
{
    struct ferry_usb_share *s = c->s;
    char what[160];
    size_t need;
    int r;

    for (;;) {
        ssize_t n;

        r = usb_share_hello_check(c->hello, c->hello_len, &need, what, sizeof(what));
        if (r < 0) {
            client_drop(s, FERRY_LOG_WARNING, "%s", what);
            return;
        }
        if (r == 1) {
            client_serve(c);
            return;
        }
        n = client_recv(c, c->hello + c->hello_len, need - c->hello_len);
        if (n == 0) {
            client_drop(s, FERRY_LOG_WARNING, "closed before its usbredir hello");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            client_drop(s, FERRY_LOG_WARNING, "read failed before its usbredir hello: %s",
                        g_strerror(errno));
            return;
        }
        c->hello_len += (size_t)n;
    }
}

static void client_handshake(struct client *c)
{
    struct ferry_usb_share *s = c->s;
    char who[300], err[300];
    uint8_t first;
    int r;

    /* every TLS connection starts with a handshake record (type 22): a
     * client that talks usbredir in the clear is told apart at once */
    if (!c->tls_started) {
        ssize_t n = recv(c->fd, &first, 1, MSG_PEEK);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n == 0) {
            client_drop(s, FERRY_LOG_WARNING, "closed before its tls handshake");
            return;
        }
        if (n == 1 && first != 22) {
            client_drop(s, FERRY_LOG_WARNING, "refused: no tls handshake (first byte 0x%02x%s)",
                        first, first == 0 ? ": a plain usbredir client?" : "");
            return;
        }
        c->tls_started = true;
    }
    r = gnutls_handshake(c->tls);

    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        event_del(c->ev);
        event_assign(c->ev, s->base, c->fd,
                     (gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ) | EV_PERSIST,
                     event_get_callback(c->ev), c);
        event_add(c->ev, NULL);
        return;
    }
    if (r < 0) {
        client_drop(s, FERRY_LOG_WARNING, "tls handshake failed: %s%s", gnutls_strerror(r),
                    r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET
                    ? " (a client without TLS?)" : "");
        return;
    }
    if (usb_tls_session_check(s->tls, c->tls, who, sizeof(who), err, sizeof(err)) < 0) {
        client_drop(s, FERRY_LOG_WARNING, "tls: %s", err);
        return;
    }
    SLOG(s, FERRY_LOG_INFO, "usb-share[%s] peer=%s: tls %s %s", s->name, c->peer,
         usb_tls_kind(s->tls), who);
    c->phase = PH_HELLO;
    event_del(c->ev);
    event_assign(c->ev, s->base, c->fd, EV_READ | EV_PERSIST, event_get_callback(c->ev), c);
    event_add(c->ev, NULL);
    /* the hello may have come with the last handshake record */
    client_read_hello(c);
}

static void on_client_io(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    if (c->phase == PH_TLS)
        client_handshake(c);
    else if (c->phase == PH_HELLO)
        client_read_hello(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    struct ferry_usb_share *s = c->s;
    uint64_t now = ferry_monotonic_ms(), b;

    if (c->phase != PH_SERVE) {
        client_drop(s, FERRY_LOG_WARNING, "no %s within %u ms",
                    c->phase == PH_TLS ? "tls handshake" : "usbredir hello", s->handshake_ms);
        return;
    }
    b = usb_redir_bytes(c->redir);
    if (b != c->idle_bytes) {
        c->idle_bytes = b;
        c->idle_since = now;
    } else if (now - c->idle_since >= s->idle_ms) {
        client_drop(s, FERRY_LOG_WARNING, "idle for %u ms", s->idle_ms);
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct ferry_usb_share *s = arg;
    struct timeval tv = { .tv_sec = s->handshake_ms / 1000,
                          .tv_usec = (s->handshake_ms % 1000) * 1000 };
    char peer[PEER_MAX], err[FERRY_USB_ERR_MAX];
    struct client *c;
    int fd = usb_accept(lfd);

    if (fd < 0)
        return;
    peer_name(fd, peer, sizeof(peer));
    if (s->client || s->lost) {
        uint32_t dropped = 0;

        if (ferry_ratelimit_ok(&s->refuse_rl, &dropped))
            SLOG(s, FERRY_LOG_WARNING, "usb-share[%s] peer=%s: refused: %s%s", s->name, peer,
                 s->lost ? "the device is gone" : "one client at a time, and peer=",
                 s->lost ? "" : s->client->peer);
        if (dropped)
            SLOG(s, FERRY_LOG_WARNING, "usb-share[%s] (%" PRIu32 " more refusals not logged)",
                 s->name, dropped);
        close(fd);
        return;
    }
    c = g_new0(struct client, 1);
    c->s = s;
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->phase = s->tls ? PH_TLS : PH_HELLO;
    c->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_client_io, c);
    c->timer = evtimer_new(s->base, on_timer, c);
    s->client = c;
    SLOG(s, FERRY_LOG_INFO, "usb-share[%s] peer=%s: connected%s", s->name, peer,
         s->tls ? ", tls handshake" : "");
    if (s->tls && usb_tls_session_new(s->tls, fd, &c->tls, err, sizeof(err)) < 0) {
        client_drop(s, FERRY_LOG_ERROR, "%s", err);
        return;
    }
    event_add(c->timer, &tv);
    event_add(c->ev, NULL);
}

/* After a client: the device may have gone meanwhile. */
static void on_end(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_usb_share *s = arg;

    if (s->lost && s->ops.device_lost)
        s->ops.device_lost(s->opaque);
}

int usb_share_new(struct ferry_usb_host *host, const struct ferry_usb_share_config *cfg,
                  const struct ferry_usb_share_ops *ops, void *opaque,
                  struct ferry_usb_share **out, char *err, size_t errlen)
{
    struct ferry_usb_share *s;

    if (cfg->listen_fd < 0 || cfg->usbfs_fd < 0) {
        snprintf(err, errlen, "usb share: needs a listening socket and the device's fd");
        return -EINVAL;
    }
    s = g_new0(struct ferry_usb_share, 1);
    s->host = host;
    s->base = usb_host_base(host);
    s->ops = *ops;
    s->opaque = opaque;
    snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "device");
    s->lfd = cfg->listen_fd;
    s->usbfs_fd = cfg->usbfs_fd;
    s->tls = cfg->tls;
    s->handshake_ms = cfg->handshake_ms ? cfg->handshake_ms : SHARE_HANDSHAKE_MS_DEFAULT;
    s->idle_ms = cfg->idle_ms;
    s->refuse_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 10);
    s->accept_ev = event_new(s->base, s->lfd, EV_READ | EV_PERSIST, on_accept, s);
    s->end_ev = event_new(s->base, -1, 0, on_end, s);
    if (!s->accept_ev || !s->end_ev || event_add(s->accept_ev, NULL) < 0) {
        snprintf(err, errlen, "usb share: cannot watch the listening socket");
        usb_share_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void usb_share_free(struct ferry_usb_share *s)
{
    if (!s)
        return;
    if (s->client) {
        struct client *c = s->client;

        s->client = NULL;
        if (c->phase == PH_SERVE)
            SLOG(s, FERRY_LOG_INFO, "usb-share[%s] peer=%s: share ends; bytes=%" PRIu64
                 "; the device is back with its host driver", s->name, c->peer,
                 usb_redir_bytes(c->redir));
        else
            SLOG(s, FERRY_LOG_INFO, "usb-share[%s] peer=%s: share ends; dropped", s->name,
                 c->peer);
        client_free(c);
    }
    if (s->accept_ev)
        event_free(s->accept_ev);
    if (s->end_ev)
        event_free(s->end_ev);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->usbfs_fd >= 0)
        close(s->usbfs_fd);
    g_free(s);
}

bool usb_share_serving(const struct ferry_usb_share *s)
{
    return s->client && s->client->phase == PH_SERVE;
}
