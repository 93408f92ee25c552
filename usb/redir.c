// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One usbredir endpoint: libusbredirhost serving a libusb device handle to
 * the usbredir guest (QEMU's usb-redir, or any usbredirparser peer) on a
 * connected stream socket, driven by libevent.  A peer that sends malformed
 * or oversized packets, or vanishes, ends the endpoint with a log line; the
 * device goes back to the host.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <glib.h>
#include <inttypes.h>
#include <limits.h>
#include <libusb.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <usbredirhost.h>

#include "usb/ferry-usb.h"
#include "usb/usb-internal.h"

/* Packets queued for a peer that does not read them before we stop reading
 * its requests (each can make an answer); reading resumes at half. */
#define REDIR_WQ_MAX 1024
/* The same in bytes: one packet's worth (FERRY_USB_REDIR_PACKET_MAX). */
#define REDIR_WQ_BYTES_MAX FERRY_USB_REDIR_PACKET_MAX
/* Bytes read from the peer ahead of what usbredirparser asked for: one
 * readv() fills the parser's request and this buffer together, so the
 * small packets of a burst (headers, control and short bulk requests) come
 * in with one system call instead of one per header. */
#define REDIR_RBUF_SIZE (16 * 1024)
/* Packets handed to the socket in one sendmsg(). */
#define REDIR_SEND_IOV 16

struct ferry_usb_redir {
    struct ferry_usb_host *host;
    struct usbredirhost *uh;
    int fd;
    char name[64];
    struct ferry_usb_redir_ops ops;
    void *opaque;
    struct event *rev, *wev, *endev;
    struct event *flushev;      /* usbredirhost queued output: send it once per loop pass */
    bool ended, peer_eof, writing, closing, paused;
    /* Read-ahead: rbuf[rpos..rlen) is the peer's next bytes.  drained: the
     * last read() returned less than it was offered, so the socket is empty
     * for now (no read to hear EAGAIN; the level-triggered read event comes
     * back if more arrives). */
    uint8_t *rbuf;
    size_t rpos, rlen;
    bool drained;
    uint32_t oversized;         /* a packet's data announced larger than the cap */
    enum ferry_usb_redir_end why;
    uint64_t bytes;
    struct ferry_ratelimit rl;
    /* Output for the peer: usbredirparser's queue is moved here at once, so
     * what one peer makes Ferry hold is known in bytes. */
    struct evbuffer *out;
    GQueue out_ends;            /* where each queued packet ends, in out_total */
    uint64_t out_total;         /* bytes ever put in out */
    uint64_t out_sent;          /* bytes ever sent from it */
    /* Handover (usb_redir_export / usb_redir_adopt): the packets followed,
     * whether requests are taken no more (quiescing), whether the
     * connection is another process's now (handed), and, while a successor
     * builds its host side, the peer's hello replayed to the new parser
     * and the packets of a fresh connect kept from the peer (adopting). */
    struct redir_track track;
    bool quiescing, handed, adopting;
    GByteArray *replay;
    size_t replay_pos;
    unsigned dropped;
    /* Receiving streams stopped on the host side for a handover (parked),
     * the packets put to usbredirhost as if from the peer (inject), the
     * stream status replies to them not passed on (swallow), the stopped
     * transfers libusb has not given back yet (cancels). */
    GByteArray *inject;
    size_t inject_pos;
    bool parked;
    unsigned swallow, cancels;
    libusb_device_handle *handle;
    /* When the streams were stopped (monotonic us, also across processes),
     * and how long a successor's streams were stopped (0: none were). */
    uint64_t parked_at_us, gap_us;
};

static void redir_log(struct ferry_usb_redir *r, enum ferry_log_level lvl, const char *fmt, ...)
    FERRY_PRINTF(3, 4);

static void redir_log(struct ferry_usb_redir *r, enum ferry_log_level lvl, const char *fmt, ...)
{
    char buf[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ferry_logf(r->ops.log, r->ops.log_opaque, lvl, "usb[%s] %s", r->name, buf);
}

/* usbredir's own log lines; peer-triggerable, so rate-limited */
static void uh_log(void *priv, int level, const char *msg)
{
    struct ferry_usb_redir *r = priv;
    enum ferry_log_level lvl = level <= usbredirparser_error ? FERRY_LOG_WARNING :
                               level <= usbredirparser_info ? FERRY_LOG_DEBUG : FERRY_LOG_DEBUG;
    uint32_t dropped = 0;

    if (lvl == FERRY_LOG_WARNING && !ferry_ratelimit_ok(&r->rl, &dropped))
        return;
    redir_log(r, lvl, "usbredir: %s%s", msg, dropped ? " (more suppressed)" : "");
}

/* Stop at once; the owner hears about it from the loop. */
static void redir_end(struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    if (r->ended)
        return;
    r->ended = true;
    r->why = why;
    event_del(r->rev);
    event_del(r->wev);
    event_active(r->endev, EV_TIMEOUT, 0);
}

/*
 * usbredirparser reads a packet's header, then its type header, then asks
 * for all of its data at once (count = what is left of it) into a buffer of
 * that size, whose pages fill as the data arrives.  Headers are a few dozen
 * bytes, so a request for more than FERRY_USB_REDIR_PACKET_MAX is the data
 * of a packet announced too large: refused before a byte of it is read.
 * Each request is served from the read-ahead first; when that is empty, one
 * readv() fills the request and the read-ahead behind it.
 */
static ssize_t uh_read_bytes(struct ferry_usb_redir *r, uint8_t *data, int count);

static int uh_read(void *priv, uint8_t *data, int count)
{
    struct ferry_usb_redir *r = priv;
    ssize_t n;

    if ((unsigned)count > FERRY_USB_REDIR_PACKET_MAX) {
        r->oversized = (uint32_t)count;
        errno = EMSGSIZE;
        return -1;
    }
    if (r->inject && r->inject_pos < r->inject->len) {
        /* packets of our own, whole, between two of the peer's */
        size_t k = MIN((size_t)count, r->inject->len - r->inject_pos);

        memcpy(data, r->inject->data + r->inject_pos, k);
        r->inject_pos += k;
        if (r->adopting)        /* a successor's starts: followed like the peer's */
            redir_track_in(&r->track, data, k);
        return (int)k;
    }
    if (r->adopting) {
        /* the predecessor's peer said hello once: the new parser hears it again */
        size_t k = r->replay ? MIN((size_t)count, r->replay->len - r->replay_pos) : 0;

        if (k)
            memcpy(data, r->replay->data + r->replay_pos, k);
        r->replay_pos += k;
        redir_track_in(&r->track, data, k);
        return (int)k;
    }
    /* quiescing: no further request is taken; what is read stays in rbuf */
    if (r->handed || (r->quiescing && redir_track_at_boundary(&r->track)))
        return 0;
    n = uh_read_bytes(r, data, count);
    if (n > 0)
        redir_track_in(&r->track, data, (size_t)n);
    return (int)n;
}

static ssize_t uh_read_bytes(struct ferry_usb_redir *r, uint8_t *data, int count)
{
    struct iovec iov[2];
    ssize_t n;

    if (r->ops.recv) {
        /* the owner's transport (TLS): no read-ahead here, its own buffer */
        n = r->ops.recv(r->opaque, data, (size_t)count);
        if (n > 0) {
            r->bytes += (uint64_t)n;
            return (int)n;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        r->peer_eof = true;
        return -1;
    }
    if (r->rpos < r->rlen) {
        size_t k = MIN((size_t)count, r->rlen - r->rpos);

        memcpy(data, r->rbuf + r->rpos, k);
        r->rpos += k;
        return (int)k;
    }
    if (r->drained) {
        r->drained = false;
        return 0;
    }
    iov[0] = (struct iovec){ .iov_base = data, .iov_len = (size_t)count };
    iov[1] = (struct iovec){ .iov_base = r->rbuf, .iov_len = REDIR_RBUF_SIZE };
    n = readv(r->fd, iov, 2);
    if (n > 0) {
        r->bytes += (uint64_t)n;
        r->drained = (size_t)n < (size_t)count + REDIR_RBUF_SIZE;
        if (n <= count)
            return (int)n;
        r->rpos = 0;
        r->rlen = (size_t)n - (size_t)count;
        return count;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    r->peer_eof = true;
    return -1;
}

/* A packet's buffer, once sent (or dropped with the endpoint). */
static void out_release(const void *data, size_t len, void *arg)
{
    struct ferry_usb_redir *r = arg;

    usbredirhost_free_write_buffer(r->uh, (uint8_t *)data);
}

/*
 * Packets of our own for usbredirhost (stopping and starting streams,
 * selecting alternate settings again, across a handover): REDIR_INJECT_ID
 * is their id, never one of QEMU's at that moment (QEMU sends its stream
 * starts and stops with id 0, and none of its requests is in flight while a
 * channel is handed over).
 */
#define REDIR_INJECT_ID 0x46e7d5a1u

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static bool redir_is_inject_reply(struct ferry_usb_redir *r, const uint8_t *p, int count)
{
    unsigned hl = redir_track_hdr_len(&r->track), need, at_ep, at_st;
    const char *what;
    uint32_t type;

    if (count < (int)hl)
        return false;
    type = rd_le32(p);
    switch (type) {
    case usb_redir_interrupt_receiving_status:     /* status, endpoint */
    case usb_redir_iso_stream_status:
        need = 2, at_st = 0, at_ep = 1;
        what = type == usb_redir_iso_stream_status ? "an isochronous stream"
                                                   : "a receiving stream";
        break;
    case usb_redir_bulk_receiving_status:          /* stream_id u32, endpoint, status */
        need = 6, at_ep = 4, at_st = 5, what = "a receiving stream";
        break;
    case usb_redir_alt_setting_status:             /* status, interface, alt */
        need = 3, at_st = 0, at_ep = 1, what = "an alternate setting of interface";
        break;
    default:
        return false;
    }
    if (rd_le32(p + 8) != REDIR_INJECT_ID || (hl == 16 && rd_le32(p + 12) != 0))
        return false;
    /* a failure is QEMU's to know */
    uint8_t ep = count >= (int)(hl + need) ? p[hl + at_ep] : 0;
    uint8_t st = count >= (int)(hl + need) ? p[hl + at_st] : usb_redir_inval;

    if (st != usb_redir_success) {
        r->swallow--;
        redir_log(r, FERRY_LOG_WARNING, "handover: %s on %02x did not stop, start or select "
                  "again (usbredir status %u): passed on to the peer", what, ep, st);
        return false;
    }
    return true;
}

/* One packet (header and type header, no data) for usbredirhost to read next. */
static void redir_inject(struct ferry_usb_redir *r, uint32_t type, const uint8_t *hdr,
                         uint32_t len)
{
    unsigned hl = redir_track_hdr_len(&r->track);
    uint8_t h[16] = { 0 };

    if (!r->inject)
        r->inject = g_byte_array_new();
    if (r->inject_pos == r->inject->len) {
        g_byte_array_set_size(r->inject, 0);
        r->inject_pos = 0;
    }
    put_le32(h, type);
    put_le32(h + 4, len);
    put_le32(h + 8, REDIR_INJECT_ID);
    g_byte_array_append(r->inject, h, hl);
    g_byte_array_append(r->inject, hdr, len);
    r->swallow++;
}

/* An isochronous packet of a stream started again across a handover: the
 * host side numbered it from 0, the peer sees the stream's ids go on. */
static void redir_iso_rebase(struct ferry_usb_redir *r, uint8_t *p, int count)
{
    unsigned hl = redir_track_hdr_len(&r->track), i;
    uint64_t id;

    if (count < (int)hl + 1 || rd_le32(p) != usb_redir_iso_packet)
        return;
    i = ((p[hl] & 0x80) >> 3) | (p[hl] & 0x0f);
    if (!r->track.iso_base[i])
        return;
    id = rd_le32(p + 8) | (hl == 16 ? (uint64_t)rd_le32(p + 12) << 32 : 0);
    id += r->track.iso_base[i];
    put_le32(p + 8, (uint32_t)id);
    if (hl == 16)
        put_le32(p + 12, (uint32_t)(id >> 32));
}

/* usbredirparser hands over one whole packet per call, and the buffer with
 * it (usbredirhost_fl_write_cb_owns_buffer): queued without a copy.  A
 * successor's host side greets and connects the device like a new one:
 * those packets are kept from the peer, which has had them from the
 * predecessor. */
static int uh_write(void *priv, uint8_t *data, int count)
{
    struct ferry_usb_redir *r = priv;

    redir_iso_rebase(r, data, count);
    redir_track_out(&r->track, data, (size_t)count);
    if (r->swallow && redir_is_inject_reply(r, data, count)) {
        r->swallow--;
        usbredirhost_free_write_buffer(r->uh, data);
        return count;
    }
    if (r->adopting && count >= 4) {
        uint32_t type = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                        (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;

        if (type == usb_redir_hello || type == usb_redir_device_connect ||
            type == usb_redir_interface_info || type == usb_redir_ep_info) {
            r->dropped++;
            usbredirhost_free_write_buffer(r->uh, data);
            return count;
        }
        redir_log(r, FERRY_LOG_WARNING, "handover: the new host side sent packet type %u "
                  "while taking over: passed on", type);
    }

    if (evbuffer_add_reference(r->out, data, (size_t)count, out_release, r) < 0) {
        errno = ENOMEM;
        return -1;
    }
    r->out_total += (uint64_t)count;
    g_queue_push_tail(&r->out_ends, g_memdup2(&r->out_total, sizeof(r->out_total)));
    return count;
}

/* What Ferry holds for the peer, for usbredirhost's isochronous dropping. */
static uint64_t uh_buffered(void *priv)
{
    struct ferry_usb_redir *r = priv;

    return r->out ? evbuffer_get_length(r->out) : 0;
}

/* Packets not yet sent whole. */
static unsigned out_packets(struct ferry_usb_redir *r)
{
    uint64_t *end;

    while ((end = g_queue_peek_head(&r->out_ends)) && *end <= r->out_sent)
        g_free(g_queue_pop_head(&r->out_ends));
    return g_queue_get_length(&r->out_ends);
}

/* Send what the socket takes, several packets per call: 0, or -errno when
 * the peer is gone. */
/* The same through the owner's transport (TLS), one piece per call. */
static int out_send_transport(struct ferry_usb_redir *r)
{
    struct evbuffer_iovec v;

    while (evbuffer_peek(r->out, -1, NULL, &v, 1) > 0 && v.iov_len) {
        ssize_t n = r->ops.send(r->opaque, v.iov_base, v.iov_len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        evbuffer_drain(r->out, (size_t)n);
        r->bytes += (uint64_t)n;
        r->out_sent += (uint64_t)n;
    }
    return 0;
}

static int out_send(struct ferry_usb_redir *r)
{
    struct evbuffer_iovec v[REDIR_SEND_IOV];
    struct iovec iov[REDIR_SEND_IOV];
    int nv;

    if (r->ops.send)
        return out_send_transport(r);

    while ((nv = evbuffer_peek(r->out, -1, NULL, v, REDIR_SEND_IOV)) > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)MIN(nv, REDIR_SEND_IOV) };
        size_t want = 0;
        ssize_t n;

        for (size_t i = 0; i < mh.msg_iovlen; i++) {
            iov[i] = (struct iovec){ .iov_base = v[i].iov_base, .iov_len = v[i].iov_len };
            want += v[i].iov_len;
        }
        n = sendmsg(r->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        evbuffer_drain(r->out, (size_t)n);
        r->bytes += (uint64_t)n;
        r->out_sent += (uint64_t)n;
        if ((size_t)n < want)
            break;              /* the socket is full: the write event resumes */
    }
    return 0;
}

/* Input the transport holds already (a decrypted TLS record) makes no
 * readiness on the socket: read it from the loop. */
static void redir_kick_pending(struct ferry_usb_redir *r)
{
    if (!r->ended && !r->paused && r->ops.pending && r->ops.pending(r->opaque) > 0)
        event_active(r->rev, EV_READ, 0);
}

/*
 * Move usbredirparser's output to r->out and send what the socket takes.  A
 * peer that leaves it unread gets its requests (each can make an answer)
 * read no more past REDIR_WQ_MAX packets or REDIR_WQ_BYTES_MAX bytes, and
 * again under half; one whose answers and streams still pile up past
 * FERRY_USB_REDIR_PEER_MAX is disconnected.
 */
static void redir_flush(struct ferry_usb_redir *r)
{
    size_t bytes;
    unsigned pkts;
    int rc;

    if (!r->uh || r->ended || r->writing || r->handed)
        return;
    r->writing = true;
    rc = usbredirhost_write_guest_data(r->uh) < 0 ? -errno : 0;
    r->writing = false;
    if (rc == 0)
        rc = out_send(r);
    if (rc < 0) {
        redir_log(r, FERRY_LOG_WARNING, "write to guest side failed: %s", g_strerror(-rc));
        redir_end(r, FERRY_USB_REDIR_PEER_CLOSED);
        return;
    }
    bytes = evbuffer_get_length(r->out);
    pkts = out_packets(r);
    if (bytes > FERRY_USB_REDIR_PEER_MAX) {
        redir_log(r, FERRY_LOG_WARNING, "guest side reads nothing: %zu bytes queued for it, "
                  "more than %u: disconnected", bytes, FERRY_USB_REDIR_PEER_MAX);
        redir_end(r, FERRY_USB_REDIR_PEER_INVALID);
        return;
    }
    if (bytes)
        event_add(r->wev, NULL);
    else
        event_del(r->wev);
    if (!r->paused && (pkts > REDIR_WQ_MAX || bytes > REDIR_WQ_BYTES_MAX)) {
        r->paused = true;
        event_del(r->rev);
    } else if (r->paused && pkts <= REDIR_WQ_MAX / 2 && bytes <= REDIR_WQ_BYTES_MAX / 2) {
        r->paused = false;
        event_add(r->rev, NULL);
        redir_kick_pending(r);
    }
}

/* Called by usbredirhost whenever it queued output: once per completed
 * transfer while libusb reaps a batch.  The send waits for the end of this
 * loop pass, so one batch leaves in one sendmsg().  Also called during
 * usbredirhost_open_full, before r->uh is set (then the loop writes). */
static void uh_flush(void *priv)
{
    struct ferry_usb_redir *r = priv;

    if (r->closing)
        return;
    if (!r->uh) {
        event_add(r->wev, NULL);
        return;
    }
    event_active(r->flushev, EV_TIMEOUT, 0);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    redir_flush(arg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_usb_redir *r = arg;

    if (!r->uh) {
        event_del(r->wev);
        return;
    }
    redir_flush(r);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_usb_redir *r = arg;
    int rc;

    r->drained = false;
    rc = usbredirhost_read_guest_data(r->uh);

    switch (rc) {
    case 0:
        break;
    case usbredirhost_read_io_error:
        if (r->oversized) {
            redir_log(r, FERRY_LOG_WARNING, "guest side announced a packet of %" PRIu32
                      " bytes, more than %u: disconnected", r->oversized,
                      FERRY_USB_REDIR_PACKET_MAX);
            redir_end(r, FERRY_USB_REDIR_PEER_INVALID);
        } else if (r->peer_eof) {
            redir_log(r, FERRY_LOG_INFO, "guest side closed the connection");
            redir_end(r, FERRY_USB_REDIR_PEER_CLOSED);
        } else {
            redir_log(r, FERRY_LOG_WARNING, "read from guest side failed: %s", g_strerror(errno));
            redir_end(r, FERRY_USB_REDIR_IO_ERROR);
        }
        return;
    case usbredirhost_read_parse_error:
        redir_log(r, FERRY_LOG_WARNING, "malformed usbredir packet from guest side: disconnected");
        redir_end(r, FERRY_USB_REDIR_PEER_INVALID);
        return;
    case usbredirhost_read_device_rejected:
        redir_log(r, FERRY_LOG_WARNING, "guest side rejected the device: disconnected");
        redir_end(r, FERRY_USB_REDIR_PEER_INVALID);
        return;
    case usbredirhost_read_device_lost:
        redir_log(r, FERRY_LOG_INFO, "device lost");
        if (r->ops.device_lost) {
            /* usbredirhost told the peer and let go of the handle */
            redir_flush(r);
            r->ops.device_lost(r->opaque, r);
            return;
        }
        redir_end(r, FERRY_USB_REDIR_DEVICE_LOST);
        return;
    default:
        redir_log(r, FERRY_LOG_WARNING, "usbredir read error %d: disconnected", rc);
        redir_end(r, FERRY_USB_REDIR_IO_ERROR);
        return;
    }
    /* the device may have completed transfers meanwhile */
    redir_flush(r);
    if (r->quiescing && redir_track_at_boundary(&r->track))
        event_del(r->rev);      /* no request is taken until usb_redir_resume */
    else
        redir_kick_pending(r);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_usb_redir *r = arg;

    if (r->ops.ended)
        r->ops.ended(r->opaque, r, r->why);
}

/*
 * Every bulk transfer through usbredir allocates about three times its size
 * (usbredirparser's buffer for a request's data, usbredirhost's for an IN
 * transfer, usbredirparser's packet for the answer), freed as soon as it is
 * sent.  glibc gives the top of its heap back to the kernel when more than
 * 128 KiB of it is free (and mmaps, then unmaps, blocks over its adaptive
 * threshold), so a stream of 64 KiB transfers faulted its buffers in again,
 * zeroed page by page, on every burst: 9209 page faults in 4 s of the
 * gadget rig's stream against 617 with this.  What a process keeps is
 * bounded by REDIR_HEAP_KEEP of free heap; blocks of up to
 * REDIR_HEAP_MMAP_MIN come from the heap.  A GLIBC_TUNABLES that sets either
 * wins.  Once per process, at its first usbredir endpoint.
 */
#define REDIR_HEAP_KEEP     (4u << 20)
#define REDIR_HEAP_MMAP_MIN (1u << 20)

static void redir_heap_tune(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
    static gsize once;

    if (g_once_init_enter(&once)) {
        const char *t = getenv("GLIBC_TUNABLES");

        if (!t || (!strstr(t, "malloc.trim_threshold") && !strstr(t, "malloc.mmap_threshold"))) {
            mallopt(M_TRIM_THRESHOLD, (int)REDIR_HEAP_KEEP);
            mallopt(M_MMAP_THRESHOLD, (int)REDIR_HEAP_MMAP_MIN);
        }
        g_once_init_leave(&once, 1);
    }
#endif
}

static struct ferry_usb_redir *redir_alloc(struct ferry_usb_host *host, int fd, const char *name,
                                           const struct ferry_usb_redir_ops *ops, void *opaque)
{
    struct ferry_usb_redir *r = g_new0(struct ferry_usb_redir, 1);
    struct event_base *base;

    redir_heap_tune();
    r->host = host;
    r->fd = fd;
    r->ops = *ops;
    r->opaque = opaque;
    r->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(1000, 5);
    g_strlcpy(r->name, name, sizeof(r->name));
    base = usb_host_base(host);
    r->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, r);
    r->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, r);
    r->endev = event_new(base, -1, 0, on_end, r);
    r->flushev = event_new(base, -1, 0, on_flush, r);
    r->rbuf = g_malloc(REDIR_RBUF_SIZE);
    r->out = evbuffer_new();
    g_queue_init(&r->out_ends);
    redir_track_init(&r->track);
    evutil_make_socket_nonblocking(fd);
    return r;
}

static struct usbredirhost *redir_host_open(struct ferry_usb_redir *r)
{
    return usbredirhost_open_full(usb_host_context(r->host), NULL, uh_log, uh_read,
                                   uh_write, uh_flush, NULL, NULL, NULL, NULL, r,
                                   "ferry " FERRY_USB_VERSION,
                                   getenv("FERRY_USBREDIR_DEBUG") ? usbredirparser_debug_data
                                                                  : usbredirparser_warning,
                                   usbredirhost_fl_write_cb_owns_buffer);
}

int usb_redir_new(struct ferry_usb_host *host, libusb_device_handle *handle, int fd,
                        const char *name, const struct ferry_usb_redir_ops *ops, void *opaque,
                        struct ferry_usb_redir **out)
{
    struct ferry_usb_redir *r = redir_alloc(host, fd, name, ops, opaque);

    r->uh = redir_host_open(r);
    if (r->uh)
        usbredirhost_set_buffered_output_size_cb(r->uh, uh_buffered);
    if (!r->uh || !r->out || !r->flushev) {
        redir_log(r, FERRY_LOG_ERROR, "cannot start usbredir host side");
        if (handle)
            libusb_close(handle);
        r->fd = -1;
        close(fd);
        usb_redir_free(r);
        return -ENOMEM;
    }
    /* takes the handle; detaches host kernel drivers and claims interfaces */
    r->handle = handle;
    if (handle && usbredirhost_set_device(r->uh, handle) != usb_redir_success) {
        redir_log(r, FERRY_LOG_ERROR, "cannot claim the device for redirection");
        r->fd = -1;
        close(fd);
        usb_redir_free(r);
        return -EBUSY;
    }
    event_add(r->rev, NULL);
    redir_flush(r);
    redir_kick_pending(r);
    *out = r;
    return 0;
}

static void redir_park_forget(struct ferry_usb_redir *r);

void usb_redir_free(struct ferry_usb_redir *r)
{
    if (!r)
        return;
    /* gives the device back to the host's kernel drivers; may still call
     * uh_flush, which then does nothing.  What is queued for the peer goes
     * first: its buffers are usbredirhost's to free. */
    r->closing = true;
    if (r->out)
        evbuffer_free(r->out);
    r->out = NULL;
    if (r->uh)
        usbredirhost_close(r->uh);
    r->uh = NULL;
    if (r->rev)
        event_free(r->rev);
    if (r->wev)
        event_free(r->wev);
    if (r->endev)
        event_free(r->endev);
    if (r->flushev)
        event_free(r->flushev);
    g_free(r->rbuf);
    g_queue_clear_full(&r->out_ends, g_free);
    redir_track_clear(&r->track);
    if (r->replay)
        g_byte_array_unref(r->replay);
    if (r->inject)
        g_byte_array_unref(r->inject);
    redir_park_forget(r);
    if (r->fd >= 0)
        close(r->fd);
    g_free(r);
}

int usb_redir_set_device(struct ferry_usb_redir *r, libusb_device_handle *handle)
{
    if (r->ended || !r->uh) {
        if (handle)
            libusb_close(handle);
        return -EPIPE;
    }
    r->handle = handle;
    if (usbredirhost_set_device(r->uh, handle) != usb_redir_success) {
        r->handle = NULL;
        redir_log(r, FERRY_LOG_ERROR, "cannot claim the device for redirection");
        return -EBUSY;
    }
    redir_flush(r);
    return 0;
}

uint64_t usb_redir_bytes(const struct ferry_usb_redir *r)
{
    return r->bytes;
}

uint64_t usb_redir_stream_gap_us(const struct ferry_usb_redir *r)
{
    return r->gap_us;
}

/* ---- handover ------------------------------------------------------------ */

/*
 * A successor's usbredirhost takes a device that is claimed, configured and
 * in use: usbredirhost_set_device would reset it first ("the first thing
 * almost any usb-guest does") and claim its interfaces with libusb's
 * automatic driver detach, which usbfs refuses on an interface that usbfs
 * (our own file) holds.  Neither can be switched off through its API, so
 * for the length of that one call (adopt_window) these two libusb calls are
 * no-ops: this process's definitions come first for libusbredirhost.so's
 * references (the executable's symbols interpose), and pass everything else
 * on to libusb.  A plain claim of an interface this file holds already is a
 * no-op for usbfs.  Likewise, while a successor's host side is told the
 * alternate settings its predecessor's had selected (alt_window), the
 * device is not asked again (a SET_INTERFACE resets the interface's
 * endpoints, a camera would restart its stream): the device is on them.
 */
static bool adopt_window, alt_window;
static int (*real_reset_device)(libusb_device_handle *);
static int (*real_set_auto_detach)(libusb_device_handle *, int);
static int (*real_cancel_transfer)(struct libusb_transfer *);
static int (*real_set_alt)(libusb_device_handle *, int, int);

__attribute__((constructor)) static void redir_interpose_init(void)
{
    real_reset_device = (int (*)(libusb_device_handle *))dlsym(RTLD_NEXT,
                                                               "libusb_reset_device");
    real_set_auto_detach = (int (*)(libusb_device_handle *, int))dlsym(
        RTLD_NEXT, "libusb_set_auto_detach_kernel_driver");
    real_cancel_transfer = (int (*)(struct libusb_transfer *))dlsym(RTLD_NEXT,
                                                                    "libusb_cancel_transfer");
    real_set_alt = (int (*)(libusb_device_handle *, int, int))dlsym(
        RTLD_NEXT, "libusb_set_interface_alt_setting");
}

__attribute__((visibility("default"))) int LIBUSB_CALL
libusb_set_interface_alt_setting(libusb_device_handle *h, int iface, int alt)
{
    if (alt_window)
        return LIBUSB_SUCCESS;
    return real_set_alt ? real_set_alt(h, iface, alt) : LIBUSB_ERROR_NOT_SUPPORTED;
}

__attribute__((visibility("default"))) int LIBUSB_CALL
libusb_reset_device(libusb_device_handle *h)
{
    if (adopt_window)
        return LIBUSB_SUCCESS;
    return real_reset_device ? real_reset_device(h) : LIBUSB_ERROR_NOT_SUPPORTED;
}

__attribute__((visibility("default"))) int LIBUSB_CALL
libusb_set_auto_detach_kernel_driver(libusb_device_handle *h, int enable)
{
    if (adopt_window)
        return LIBUSB_SUCCESS;
    return real_set_auto_detach ? real_set_auto_detach(h, enable) : LIBUSB_ERROR_NOT_SUPPORTED;
}

/*
 * A channel's state (little-endian), after magic "FURH" and version:
 * the peer's hello, the bytes read ahead and not parsed, the packets queued
 * for the peer (each u32 length, bytes); the receiving streams (u32 length,
 * REDIR_RECV_REC each: type 1 interrupt or 2 bulk, start header); the
 * alternate settings (u32 length, REDIR_ALT_REC each: interface, alt); the
 * isochronous streams (u32 length, REDIR_ISO_REC each: start header
 * endpoint/pkts_per_urb/no_urbs, the next packet's id u64); the bulk streams'
 * endpoint mask and count (u32 each); when the streams were stopped
 * (monotonic us, u64, 0: none); the bytes the channel carried (u64).
 */
#define REDIR_STATE_MAGIC   0x48525546u     /* "FURH" */
#define REDIR_STATE_VERSION 3
#define REDIR_RECV_REC      (1 + REDIR_TRACK_RECV_HDR)     /* type (1 int, 2 bulk), header */
#define REDIR_ALT_REC       2
#define REDIR_ISO_REC       (REDIR_TRACK_ISO_HDR + 8)
#define REDIR_STATE_TAIL    24                  /* bulk streams, stop time, bytes */
/* usbredirhost's limits on a stream's start (MAX_PACKETS_PER_TRANSFER, MAX_TRANSFER_COUNT) */
#define REDIR_ISO_PKTS_MAX  32
#define REDIR_ISO_URBS_MAX  16

/*
 * Streams (interrupt or bulk receiving: a HID device the guest reads, a
 * serial adapter; isochronous: a camera, a headset) across a handover.
 * Their transfers are always in the device, and a usbfs URB submitted here
 * is reaped with this process's pointer: so the predecessor stops them as
 * if the peer had asked (stop packets injected into its usbredirhost, which
 * cancels the URBs), and the successor starts them again with the same
 * parameters before it serves the peer.  Data a stopped transfer had
 * already received (usbredirhost drops a cancelled transfer's data) is sent
 * to the peer here, in order, as usbredirhost would have: for an
 * isochronous URB, its packets up to the last one the device completed (a
 * packet boundary; the rest were never filled).  While park_window is set,
 * each transfer usbredirhost cancels is followed to its completion (its
 * callback is ours until then), so the handover waits until libusb has
 * given every one back.  An isochronous stream misses the packets of the
 * frames between its stop and its start again (the switch window, gap_us);
 * an isochronous OUT stream also the packets usbredirhost held for URBs not
 * submitted yet.
 */
struct parked_xfer {
    libusb_transfer_cb_fn cb;
    struct ferry_usb_redir *r;
};

static struct ferry_usb_redir *park_window;
static GHashTable *parked_xfers;        /* struct libusb_transfer * -> struct parked_xfer * */

static uint8_t idx_ep(unsigned i)
{
    return (uint8_t)((i & 0x10) << 3 | (i & 0x0f));
}

/* The packets a stopped isochronous IN transfer had received, numbered on. */
static void park_forward_iso(struct ferry_usb_redir *r, struct libusb_transfer *t)
{
    unsigned hl = redir_track_hdr_len(&r->track), i = ((t->endpoint & 0x80) >> 3) |
                                                      (t->endpoint & 0x0f);
    int last = -1, sent = 0;

    for (int k = 0; k < t->num_iso_packets; k++)
        if (t->iso_packet_desc[k].status == LIBUSB_TRANSFER_COMPLETED)
            last = k;
    for (int k = 0; k <= last; k++) {
        const struct libusb_iso_packet_descriptor *d = &t->iso_packet_desc[k];
        bool ok = d->status == LIBUSB_TRANSFER_COMPLETED;
        uint32_t len = ok ? d->actual_length : 0;
        uint64_t id = r->track.iso_next[i]++;
        uint8_t h[16 + 4] = { 0 };

        /* endpoint, status, length u16: an error before the stop as usbredirhost sends it */
        put_le32(h, usb_redir_iso_packet);
        put_le32(h + 4, 4 + len);
        put_le32(h + 8, (uint32_t)id);
        if (hl == 16)
            put_le32(h + 12, (uint32_t)(id >> 32));
        h[hl] = t->endpoint;
        h[hl + 1] = ok ? usb_redir_success : usb_redir_ioerror;
        h[hl + 2] = (uint8_t)len;
        h[hl + 3] = (uint8_t)(len >> 8);
        evbuffer_add(r->out, h, hl + 4);
        evbuffer_add(r->out, libusb_get_iso_packet_buffer(t, (unsigned)k), len);
        r->out_total += hl + 4 + (uint64_t)len;
        g_queue_push_tail(&r->out_ends, g_memdup2(&r->out_total, sizeof(r->out_total)));
        sent++;
    }
    redir_log(r, FERRY_LOG_DEBUG, "handover: %d of %d packets a stopped isochronous transfer "
              "on endpoint %02x had received sent on", sent, t->num_iso_packets, t->endpoint);
}

/* The data of a stopped transfer, to the peer as usbredirhost would have sent it. */
static void park_forward(struct ferry_usb_redir *r, struct libusb_transfer *t)
{
    unsigned hl = redir_track_hdr_len(&r->track), i = ((t->endpoint & 0x80) >> 3) |
                                                      (t->endpoint & 0x0f);
    uint8_t h[16 + 10] = { 0 };
    uint32_t tl;

    if (!r->writing) {
        r->writing = true;
        usbredirhost_write_guest_data(r->uh);
        r->writing = false;
    }
    if (t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) {
        if (t->endpoint & 0x80)
            park_forward_iso(r, t);
        return;
    }
    if (r->track.recv_type[i] == usb_redir_start_bulk_receiving) {
        put_le32(h, usb_redir_buffered_bulk_packet);
        tl = 10;
        memcpy(h + hl, r->track.recv_hdr[i], 4);            /* stream_id */
        put_le32(h + hl + 4, (uint32_t)t->actual_length);
        h[hl + 8] = t->endpoint;
        h[hl + 9] = usb_redir_success;
    } else {
        put_le32(h, usb_redir_interrupt_packet);
        tl = 4;
        h[hl] = t->endpoint;
        h[hl + 1] = usb_redir_success;
        h[hl + 2] = (uint8_t)t->actual_length;
        h[hl + 3] = (uint8_t)(t->actual_length >> 8);
    }
    put_le32(h + 4, tl + (uint32_t)t->actual_length);
    evbuffer_add(r->out, h, hl + tl);
    evbuffer_add(r->out, t->buffer, (size_t)t->actual_length);
    r->out_total += hl + tl + (uint64_t)t->actual_length;
    g_queue_push_tail(&r->out_ends, g_memdup2(&r->out_total, sizeof(r->out_total)));
    redir_log(r, FERRY_LOG_DEBUG, "handover: %d bytes a stopped transfer on endpoint %02x had "
              "received sent on", t->actual_length, t->endpoint);
}

static void LIBUSB_CALL park_done(struct libusb_transfer *t)
{
    struct parked_xfer *x = g_hash_table_lookup(parked_xfers, t);
    struct ferry_usb_redir *r = x->r;

    g_hash_table_steal(parked_xfers, t);
    t->callback = x->cb;
    g_free(x);
    r->cancels--;
    if ((t->actual_length > 0 || t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) &&
        !r->closing && r->out)
        park_forward(r, t);
    t->callback(t);
    if (!r->closing)
        event_active(r->flushev, EV_TIMEOUT, 0);
}

__attribute__((visibility("default"))) int LIBUSB_CALL
libusb_cancel_transfer(struct libusb_transfer *t)
{
    if (park_window && t->callback != park_done) {
        struct parked_xfer *x = g_new(struct parked_xfer, 1);

        if (!parked_xfers)
            parked_xfers = g_hash_table_new(g_direct_hash, g_direct_equal);
        x->cb = t->callback;
        x->r = park_window;
        g_hash_table_insert(parked_xfers, t, x);
        t->callback = park_done;
        park_window->cancels++;
    }
    return real_cancel_transfer ? real_cancel_transfer(t) : LIBUSB_ERROR_NOT_SUPPORTED;
}

/* r goes: a stopped transfer libusb never gave back keeps its own callback. */
static void redir_park_forget(struct ferry_usb_redir *r)
{
    GHashTableIter it;
    gpointer k, v;

    if (!parked_xfers)
        return;
    g_hash_table_iter_init(&it, parked_xfers);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        struct parked_xfer *x = v;

        if (x->r == r) {
            ((struct libusb_transfer *)k)->callback = x->cb;
            g_free(x);
            g_hash_table_iter_remove(&it);
        }
    }
    if (!g_hash_table_size(parked_xfers))
        g_clear_pointer(&parked_xfers, g_hash_table_destroy);
}

static bool redir_has_streams(const struct ferry_usb_redir *r)
{
    if (r->track.iso_eps)
        return true;
    for (unsigned i = 0; i < 32; i++)
        if (r->track.recv_type[i])
            return true;
    return false;
}

static uint64_t mono_us(void)
{
    return (uint64_t)g_get_monotonic_time();
}

/* Every stream stopped on the host side; the peer hears nothing of it. */
static void redir_park(struct ferry_usb_redir *r)
{
    unsigned niso = 0;

    for (unsigned i = 0; i < 32; i++) {
        uint8_t h[5];

        if (r->track.recv_type[i] == usb_redir_start_interrupt_receiving) {
            h[0] = idx_ep(i);
            redir_inject(r, usb_redir_stop_interrupt_receiving, h, 1);
        } else if (r->track.recv_type[i] == usb_redir_start_bulk_receiving) {
            memcpy(h, r->track.recv_hdr[i], 4);
            h[4] = idx_ep(i);
            redir_inject(r, usb_redir_stop_bulk_receiving, h, 5);
        } else if (r->track.iso_eps & (1u << i)) {
            h[0] = idx_ep(i);
            redir_inject(r, usb_redir_stop_iso_stream, h, 1);
            niso++;
        }
    }
    r->parked = true;
    r->parked_at_us = mono_us();
    park_window = r;
    usbredirhost_read_guest_data(r->uh);
    park_window = NULL;
    redir_log(r, FERRY_LOG_INFO, "handover: streams stopped on the host side (%u isochronous; "
              "%u transfers being given back)", niso, r->cancels);
}

/* A stream of the predecessor's, started again (or an alternate setting selected again). */
struct redir_restart {
    uint32_t recv_type[32];
    uint8_t recv_hdr[32][REDIR_TRACK_RECV_HDR];
    uint32_t iso_eps;
    uint8_t iso_hdr[32][REDIR_TRACK_ISO_HDR];
    uint64_t iso_next[32];
    uint8_t alt[32];
};

static void redir_restart_from_track(struct redir_restart *x, const struct redir_track *t)
{
    memcpy(x->recv_type, t->recv_type, sizeof(x->recv_type));
    memcpy(x->recv_hdr, t->recv_hdr, sizeof(x->recv_hdr));
    x->iso_eps = t->iso_eps;
    memcpy(x->iso_hdr, t->iso_hdr, sizeof(x->iso_hdr));
    memcpy(x->iso_next, t->iso_next, sizeof(x->iso_next));
    memset(x->alt, 0, sizeof(x->alt));      /* the host side still has them */
}

/* ... and started again with the peer's parameters (a successor, or a failed
 * handover), after the alternate settings they live on: isochronous ids go
 * on from where the peer is. */
static void redir_unpark_from(struct ferry_usb_redir *r, const struct redir_restart *x)
{
    for (unsigned i = 0; i < 32; i++)
        if (x->alt[i]) {
            uint8_t h[2] = { (uint8_t)i, x->alt[i] };

            redir_inject(r, usb_redir_set_alt_setting, h, 2);
        }
    for (unsigned i = 0; i < 32; i++)
        if (x->recv_type[i] == usb_redir_start_interrupt_receiving)
            redir_inject(r, x->recv_type[i], x->recv_hdr[i], 1);
        else if (x->recv_type[i] == usb_redir_start_bulk_receiving)
            redir_inject(r, x->recv_type[i], x->recv_hdr[i], REDIR_TRACK_RECV_HDR);
        else if (x->iso_eps & (1u << i))
            redir_inject(r, usb_redir_start_iso_stream, x->iso_hdr[i], REDIR_TRACK_ISO_HDR);
    alt_window = true;
    usbredirhost_read_guest_data(r->uh);
    alt_window = false;
    for (unsigned i = 0; i < 32; i++)
        if (x->iso_eps & (1u << i) & r->track.iso_eps) {
            r->track.iso_next[i] = x->iso_next[i];
            r->track.iso_base[i] = x->iso_next[i];
        }
    r->parked = false;
}

void usb_redir_quiesce(struct ferry_usb_redir *r)
{
    if (r->ended || r->handed || r->quiescing)
        return;
    r->quiescing = true;
    if (redir_track_at_boundary(&r->track))
        event_del(r->rev);
    /* else the rest of the packet being read is still taken */
}

void usb_redir_resume(struct ferry_usb_redir *r)
{
    if (r->ended || (!r->quiescing && !r->handed))
        return;
    if (r->parked) {
        /* still at a packet boundary, reading nothing of the peer's: only these */
        struct redir_restart x;

        r->handed = false;
        r->quiescing = true;
        redir_restart_from_track(&x, &r->track);
        redir_unpark_from(r, &x);
    }
    r->quiescing = false;
    r->handed = false;
    if (!r->paused) {
        event_add(r->rev, NULL);
        if (r->rpos < r->rlen)
            event_active(r->rev, EV_READ, 0);   /* read ahead already: no readiness for it */
    }
    redir_flush(r);
    redir_kick_pending(r);
}

int usb_redir_handover_ready(struct ferry_usb_redir *r, char *why, size_t len)
{
    int rc;

    if (r->ended) {
        snprintf(why, len, "the connection has ended");
        return -EPIPE;
    }
    if (r->ops.recv || r->ops.send) {
        snprintf(why, len, "its transport (TLS) keeps state of its own");
        return -EOPNOTSUPP;
    }
    rc = redir_track_check(&r->track, why, len);
    if (rc == -EBUSY)
        return rc;
    if (rc == 0 && !r->quiescing) {
        snprintf(why, len, "not quiescing");
        return -EAGAIN;
    }
    if (rc == 0 && !redir_track_at_boundary(&r->track)) {
        snprintf(why, len, "a request from the peer is still arriving");
        rc = -EAGAIN;
    } else if (rc == 0 && redir_track_inflight(&r->track)) {
        snprintf(why, len, "%u transfers in the device", redir_track_inflight(&r->track));
        rc = -EAGAIN;
    } else if (rc == 0 && !r->parked && !r->handed && redir_has_streams(r)) {
        redir_park(r);
    }
    if (rc == 0 && r->cancels) {
        snprintf(why, len, "%u transfers of a receiving stream being stopped", r->cancels);
        rc = -EAGAIN;
    }
    return rc;
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

    g_byte_array_append(b, p, 4);
}

int usb_redir_export(struct ferry_usb_redir *r, GByteArray *state, char *why, size_t len)
{
    size_t out_len;
    int rc = usb_redir_handover_ready(r, why, len);

    if (rc < 0)
        return rc;
    /* what usbredirhost has queued goes into r->out, sent by the successor */
    r->writing = true;
    rc = usbredirhost_write_guest_data(r->uh) < 0 ? -EIO : 0;
    r->writing = false;
    if (rc < 0) {
        snprintf(why, len, "cannot take the packets queued for the peer");
        return rc;
    }
    out_len = evbuffer_get_length(r->out);
    put32(state, REDIR_STATE_MAGIC);
    put32(state, REDIR_STATE_VERSION);
    put32(state, r->track.peer_hello->len);
    g_byte_array_append(state, r->track.peer_hello->data, r->track.peer_hello->len);
    put32(state, (uint32_t)(r->rlen - r->rpos));
    g_byte_array_append(state, r->rbuf + r->rpos, (guint)(r->rlen - r->rpos));
    put32(state, (uint32_t)out_len);
    g_byte_array_set_size(state, state->len + (guint)out_len);
    evbuffer_copyout(r->out, state->data + state->len - out_len, out_len);
    {
        unsigned nrec = 0;

        for (unsigned i = 0; i < 32; i++)
            nrec += r->track.recv_type[i] ? 1 : 0;
        put32(state, nrec * REDIR_RECV_REC);
        for (unsigned i = 0; i < 32; i++) {
            uint8_t k = r->track.recv_type[i] == usb_redir_start_interrupt_receiving ? 1 : 2;

            if (!r->track.recv_type[i])
                continue;
            g_byte_array_append(state, &k, 1);
            g_byte_array_append(state, r->track.recv_hdr[i], REDIR_TRACK_RECV_HDR);
        }
    }
    {
        unsigned nalt = 0, niso = 0;

        for (unsigned i = 0; i < 32; i++) {
            nalt += r->track.alt[i] ? 1 : 0;
            niso += r->track.iso_eps & (1u << i) ? 1 : 0;
        }
        put32(state, nalt * REDIR_ALT_REC);
        for (unsigned i = 0; i < 32; i++)
            if (r->track.alt[i]) {
                uint8_t a[2] = { (uint8_t)i, r->track.alt[i] };

                g_byte_array_append(state, a, 2);
            }
        put32(state, niso * REDIR_ISO_REC);
        for (unsigned i = 0; i < 32; i++)
            if (r->track.iso_eps & (1u << i)) {
                g_byte_array_append(state, r->track.iso_hdr[i], REDIR_TRACK_ISO_HDR);
                put32(state, (uint32_t)r->track.iso_next[i]);
                put32(state, (uint32_t)(r->track.iso_next[i] >> 32));
            }
    }
    put32(state, r->track.bulk_stream_eps);
    put32(state, r->track.bulk_stream_count);
    put32(state, (uint32_t)(r->parked ? r->parked_at_us : 0));
    put32(state, (uint32_t)((r->parked ? r->parked_at_us : 0) >> 32));
    put32(state, (uint32_t)r->bytes);
    put32(state, (uint32_t)(r->bytes >> 32));
    /* everything is the successor's from now on, until usb_redir_resume */
    r->handed = true;
    event_del(r->rev);
    event_del(r->wev);
    return 0;
}

void usb_redir_quiesce_step(struct ferry_usb_redir *r)
{
    if (r->ended || r->handed || !r->quiescing)
        return;
    if (!redir_track_at_boundary(&r->track) || r->rpos < r->rlen)
        on_readable(r->fd, EV_READ, r);
    redir_flush(r);
}

unsigned usb_redir_in_flight(const struct ferry_usb_redir *r)
{
    return redir_track_inflight(&r->track);
}

int usb_redir_fd(const struct ferry_usb_redir *r)
{
    return r->fd;
}

int usb_redir_device_fd(const struct ferry_usb_redir *r)
{
    libusb_device *dev = r->handle ? libusb_get_device(r->handle) : NULL;
    char want[32], link[PATH_MAX], path[300];
    struct dirent *e;
    DIR *d;
    int fd = -ENOENT;

    if (!dev)
        return -ENODEV;
    snprintf(want, sizeof(want), "/dev/bus/usb/%03u/%03u", libusb_get_bus_number(dev),
             libusb_get_device_address(dev));
    d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    while ((e = readdir(d))) {
        ssize_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (g_str_has_suffix(link, want)) {
            fd = atoi(e->d_name);
            break;
        }
    }
    closedir(d);
    return fd;
}

/* One length-prefixed piece of a state: its bytes stay in the state. */
static bool take(const uint8_t **p, size_t *left, size_t max, const uint8_t **data, uint32_t *len)
{
    uint32_t n;

    if (*left < 4)
        return false;
    n = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
        (uint32_t)(*p)[3] << 24;
    *p += 4;
    *left -= 4;
    if (n > *left || n > max)
        return false;
    *data = *p;
    *len = n;
    *p += n;
    *left -= n;
    return true;
}

static uint64_t rd_le64(const uint8_t *p)
{
    return (uint64_t)rd_le32(p) | (uint64_t)rd_le32(p + 4) << 32;
}

static bool ep_ok(uint8_t ep)
{
    return (ep & 0x70) == 0 && (ep & 0x0f) != 0;
}

/* The streams and alternate settings of a state, checked; why names what is wrong. */
static int restart_parse(struct redir_restart *x, const uint8_t *recv, uint32_t recv_len,
                         const uint8_t *alt, uint32_t alt_len, const uint8_t *iso,
                         uint32_t iso_len, char *why, size_t len)
{
    memset(x, 0, sizeof(*x));
    if (recv_len % REDIR_RECV_REC || alt_len % REDIR_ALT_REC || iso_len % REDIR_ISO_REC) {
        snprintf(why, len, "a list of %s of %u bytes is not whole records",
                 recv_len % REDIR_RECV_REC ? "receiving streams" : alt_len % REDIR_ALT_REC ?
                 "alternate settings" : "isochronous streams",
                 recv_len % REDIR_RECV_REC ? recv_len : alt_len % REDIR_ALT_REC ? alt_len
                                                                                : iso_len);
        return -EBADMSG;
    }
    for (uint32_t o = 0; o < recv_len; o += REDIR_RECV_REC) {
        const uint8_t *h = recv + o + 1;
        uint8_t ep = recv[o] == 1 ? h[0] : h[8];
        unsigned i = ((ep & 0x80) >> 3) | (ep & 0x0f);

        if ((recv[o] != 1 && recv[o] != 2) || !ep_ok(ep) || !(ep & 0x80) || x->recv_type[i]) {
            snprintf(why, len, "receiving stream %u: type %u on endpoint %02x is not one to "
                     "start (or twice)", o / REDIR_RECV_REC, recv[o], ep);
            return -EBADMSG;
        }
        x->recv_type[i] = recv[o] == 1 ? usb_redir_start_interrupt_receiving
                                       : usb_redir_start_bulk_receiving;
        memcpy(x->recv_hdr[i], h, REDIR_TRACK_RECV_HDR);
    }
    for (uint32_t o = 0; o < alt_len; o += REDIR_ALT_REC) {
        uint8_t ifc = alt[o], a = alt[o + 1];

        if (ifc >= 32 || !a || x->alt[ifc]) {
            snprintf(why, len, "alternate setting %u of interface %u: not one to select "
                     "(interfaces 0-31, settings 1-255, each once)", a, ifc);
            return -EBADMSG;
        }
        x->alt[ifc] = a;
    }
    for (uint32_t o = 0; o < iso_len; o += REDIR_ISO_REC) {
        const uint8_t *h = iso + o;
        unsigned i = ((h[0] & 0x80) >> 3) | (h[0] & 0x0f);

        if (!ep_ok(h[0]) || (x->iso_eps & (1u << i)) || x->recv_type[i] || !h[1] ||
            h[1] > REDIR_ISO_PKTS_MAX || !h[2] || h[2] > REDIR_ISO_URBS_MAX) {
            snprintf(why, len, "isochronous stream on endpoint %02x (%u packets per URB, "
                     "%u URBs): not one to start (1-%u packets, 1-%u URBs, each endpoint "
                     "once)", h[0], h[1], h[2], REDIR_ISO_PKTS_MAX, REDIR_ISO_URBS_MAX);
            return -EBADMSG;
        }
        x->iso_eps |= 1u << i;
        memcpy(x->iso_hdr[i], h, REDIR_TRACK_ISO_HDR);
        x->iso_next[i] = rd_le64(h + REDIR_TRACK_ISO_HDR);
    }
    return 0;
}

int usb_redir_adopt(struct ferry_usb_host *host, libusb_device_handle *handle, int fd,
                    const uint8_t *state, size_t len, const char *name,
                    const struct ferry_usb_redir_ops *ops, void *opaque,
                    struct ferry_usb_redir **out, char *why, size_t whylen)
{
    const uint8_t *p = state, *hello, *in, *outq, *recv, *alt, *iso;
    uint32_t magic, version, hello_len, in_len, out_len, recv_len, alt_len, iso_len;
    uint32_t stream_eps, stream_count;
    uint64_t parked_at;
    struct redir_restart x;
    size_t left = len;
    struct ferry_usb_redir *r;
    char w[200];
    int rc;

    *out = NULL;
    if (left < 8) {
        snprintf(why, whylen, "usb channel %s: state truncated (%zu bytes)", name, len);
        goto bad;
    }
    magic = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    version = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
              (uint32_t)p[7] << 24;
    p += 8;
    left -= 8;
    if (magic != REDIR_STATE_MAGIC || version != REDIR_STATE_VERSION) {
        snprintf(why, whylen, "usb channel %s: not a usbredir state of version %u (magic "
                 "%08x, version %u)", name, REDIR_STATE_VERSION, magic, version);
        rc = -EPROTONOSUPPORT;
        goto fail;
    }
    if (!take(&p, &left, REDIR_TRACK_HELLO_MAX, &hello, &hello_len) || hello_len < 12 + 64 ||
        !take(&p, &left, REDIR_RBUF_SIZE, &in, &in_len) ||
        !take(&p, &left, FERRY_USB_REDIR_PEER_MAX, &outq, &out_len) ||
        !take(&p, &left, 32 * REDIR_RECV_REC, &recv, &recv_len) ||
        !take(&p, &left, 32 * REDIR_ALT_REC, &alt, &alt_len) ||
        !take(&p, &left, 32 * REDIR_ISO_REC, &iso, &iso_len) || left != REDIR_STATE_TAIL) {
        snprintf(why, whylen, "usb channel %s: malformed state (%zu bytes)", name, len);
        goto bad;
    }
    if (restart_parse(&x, recv, recv_len, alt, alt_len, iso, iso_len, w, sizeof(w)) < 0) {
        snprintf(why, whylen, "usb channel %s: malformed state: %s", name, w);
        goto bad;
    }
    stream_eps = rd_le32(p);
    stream_count = rd_le32(p + 4);
    parked_at = rd_le64(p + 8);
    p += 16;
    if (!stream_eps != !stream_count || stream_count > 65535) {
        snprintf(why, whylen, "usb channel %s: malformed state: %u bulk streams on endpoints "
                 "%08x", name, stream_count, stream_eps);
        goto bad;
    }
    r = redir_alloc(host, fd, name, ops, opaque);
    r->replay = g_byte_array_new();
    g_byte_array_append(r->replay, hello, hello_len);
    r->adopting = true;
    r->uh = redir_host_open(r);
    if (!r->uh || !r->out || !r->flushev) {
        snprintf(why, whylen, "usb channel %s: cannot start the usbredir host side", name);
        if (handle)
            libusb_close(handle);
        usb_redir_free(r);
        return -ENOMEM;
    }
    usbredirhost_set_buffered_output_size_cb(r->uh, uh_buffered);
    /* the peer's hello, as the predecessor's parser had it */
    if (usbredirhost_read_guest_data(r->uh) != 0 || r->replay_pos != r->replay->len ||
        !r->track.hello_seen) {
        snprintf(why, whylen, "usb channel %s: the peer's hello in the state does not parse",
                 name);
        if (handle)
            libusb_close(handle);
        usb_redir_free(r);
        return -EBADMSG;
    }
    /* the device as it is: no reset, its claims are this file's already */
    r->handle = handle;
    adopt_window = true;
    rc = handle ? usbredirhost_set_device(r->uh, handle) : usb_redir_success;
    adopt_window = false;
    if (rc != usb_redir_success) {
        snprintf(why, whylen, "usb channel %s: the device cannot be taken over (usbredir "
                 "status %d)", name, rc);
        usb_redir_free(r);
        return -EBUSY;
    }
    /* hello, interface and endpoint info, device_connect: the peer had them */
    r->writing = true;
    rc = usbredirhost_write_guest_data(r->uh);
    r->writing = false;
    if (rc >= 0 && (recv_len || alt_len || iso_len) && handle) {
        /* the alternate settings the device is on, then the streams the
         * predecessor stopped, before the peer is served */
        redir_unpark_from(r, &x);
        r->writing = true;
        rc = usbredirhost_write_guest_data(r->uh);
        r->writing = false;
        if (iso_len && parked_at && mono_us() >= parked_at)
            r->gap_us = mono_us() - parked_at;
        redir_log(r, FERRY_LOG_INFO, "handover: %u receiving and %u isochronous streams "
                  "started again (%" PRIu64 " us after they stopped), %u alternate settings "
                  "selected again", recv_len / REDIR_RECV_REC, iso_len / REDIR_ISO_REC,
                  parked_at ? mono_us() - parked_at : 0, alt_len / REDIR_ALT_REC);
    }
    /* the device's bulk streams stay with its usbfs file: only the bookkeeping */
    r->track.bulk_stream_eps = stream_eps;
    r->track.bulk_stream_count = stream_count;
    r->adopting = false;
    if (rc < 0) {
        snprintf(why, whylen, "usb channel %s: the new host side failed to start", name);
        usb_redir_free(r);
        return -EIO;
    }
    /* what the predecessor had read and not parsed, and not yet sent */
    memcpy(r->rbuf, in, in_len);
    r->rpos = 0;
    r->rlen = in_len;
    if (out_len) {
        evbuffer_add(r->out, outq, out_len);
        r->out_total += out_len;
        g_queue_push_tail(&r->out_ends, g_memdup2(&r->out_total, sizeof(r->out_total)));
    }
    r->bytes = (uint64_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) |
               (uint64_t)(p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24) << 32;
    redir_log(r, FERRY_LOG_INFO, "taken over: %u bytes read ahead, %u to send, %u packets of a "
              "fresh connect kept from the peer", in_len, out_len, r->dropped);
    /* nothing moves before the loop runs: until then the predecessor may still be told to
     * serve on (a failed handover), and it sends what it had queued itself */
    event_add(r->rev, NULL);
    if (in_len)
        event_active(r->rev, EV_READ, 0);
    event_active(r->flushev, EV_TIMEOUT, 0);
    *out = r;
    return 0;
bad:
    rc = -EBADMSG;
fail:
    if (handle)
        libusb_close(handle);
    close(fd);
    return rc;
}

/* ---- sockets ------------------------------------------------------------- */

static void set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Before binding PATH: nothing there is fine; a socket nobody listens on (a
 * stale one, left by a process that could not remove it) is removed;
 * anything else stays and is an error: a socket in use, or not a socket.
 */
static int unix_clear_stale(const char *path, const struct sockaddr_un *sa, char *err,
                            size_t errlen)
{
    struct stat st;
    int probe, e;

    err[0] = 0;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "unix socket %s: the path exists and is not a socket: "
                 "not removed; choose another path", path);
        return -EEXIST;
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -errno;
    e = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : errno;
    close(probe);
    if (e == 0 || e == EAGAIN) {
        snprintf(err, errlen, "unix socket %s: another process listens on it", path);
        return -EADDRINUSE;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "unix socket %s: cannot tell whether it is in use: %s", path,
                 g_strerror(e));
        return -e;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        e = errno;
        snprintf(err, errlen, "unix socket %s: cannot remove the stale socket: %s", path,
                 g_strerror(e));
        return -e;
    }
    return 0;
}

int usb_unix_clear_stale(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "unix socket %s: path too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    return unix_clear_stale(path, &sa, err, errlen);
}

static int sock_unix(const char *path, bool listen_, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "unix socket %s: path too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (listen_) {
        int r = unix_clear_stale(path, &sa, err, errlen);

        if (r < 0) {
            close(fd);
            return r;
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
            int e = errno;
            snprintf(err, errlen, "unix socket %s: cannot listen: %s", path, g_strerror(e));
            close(fd);
            return -e;
        }
        evutil_make_socket_nonblocking(fd);
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        snprintf(err, errlen, "unix socket %s: cannot connect: %s", path, g_strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static int sock_tcp(const char *hostport, bool listen_, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = listen_ ? AI_PASSIVE : 0 };
    struct addrinfo *res = NULL;
    char host[256];
    const char *colon = strrchr(hostport, ':');
    int fd = -1, r, e = EINVAL;

    if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
        snprintf(err, errlen, "address %s: expected HOST:PORT", hostport);
        return -EINVAL;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    /* [v6]:PORT */
    if (host[0] == '[') {
        size_t n = strlen(host);

        if (n < 2 || host[n - 1] != ']') {
            snprintf(err, errlen, "address %s: expected [IPV6]:PORT", hostport);
            return -EINVAL;
        }
        memmove(host, host + 1, n - 2);
        host[n - 2] = 0;
    }
    r = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (r) {
        snprintf(err, errlen, "address %s: %s", hostport, gai_strerror(r));
        return -EINVAL;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int one = 1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (listen_) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4) == 0)
                break;
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "tcp %s: cannot %s: %s", hostport, listen_ ? "listen" : "connect",
                 g_strerror(e));
        return -e;
    }
    if (listen_)
        evutil_make_socket_nonblocking(fd);
    else
        set_nodelay(fd);
    return fd;
}

int usb_listen(const char *addr, char *err, size_t errlen)
{
    if (!strncmp(addr, "unix:", 5))
        return sock_unix(addr + 5, true, err, errlen);
    return sock_tcp(!strncmp(addr, "tcp:", 4) ? addr + 4 : addr, true, err, errlen);
}

int usb_connect(const char *addr, char *err, size_t errlen)
{
    if (!strncmp(addr, "unix:", 5))
        return sock_unix(addr + 5, false, err, errlen);
    return sock_tcp(!strncmp(addr, "tcp:", 4) ? addr + 4 : addr, false, err, errlen);
}

int usb_accept(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return -errno;
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        set_nodelay(fd);
    return fd;
}
