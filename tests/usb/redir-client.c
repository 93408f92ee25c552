// SPDX-License-Identifier: GPL-2.0-or-later
/* usbredir guest side for tests (see redir-client.h). */
#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <usbredirfilter.h>
#include <usbredirparser.h>

#include "redir-client.h"

#define REDIRC_INT_QUEUE_MAX 1024   /* interrupt IN packets kept until taken */
/* Bytes read ahead of what usbredirparser asked for: the headers of a burst
 * come in with one readv() (as QEMU's chardev reads a block at a time). */
#define REDIRC_RBUF_SIZE (16 * 1024)
#define REDIRC_ISO_LOG_MAX   (1u << 20)     /* iso packets whose id and frame are kept */

struct done {
    uint64_t id;
    int status;
    uint8_t *data;              /* the parser's packet data, ours until taken */
    int len;
};

struct redirc {
    int fd;
    struct usbredirparser *p;
    uint8_t *rbuf;              /* rbuf[rpos..rlen): read, not yet parsed */
    size_t rpos, rlen;
    bool connected, disconnected, closed;
    unsigned connects, errors;  /* device_connect packets; parser errors (a second hello) */
    uint16_t vid, pid;
    GQueue done;
    GQueue int_in;              /* GByteArray * of interrupt IN packets, oldest first */
    GByteArray *bbulk;          /* buffered bulk IN data, in arrival order */
    unsigned bbulk_packets;
    int bbulk_status;           /* last bulk_receiving_status, -1 before */
    unsigned stream_statuses;   /* interrupt and bulk receiving status packets seen */
    int alt_status, cfg_status;
    unsigned iso_ok, iso_len_seen[4];
    unsigned iso_statuses;      /* iso_stream_status packets seen */
    GArray *iso_ids, *iso_seqs; /* good iso packets: their ids, their frame numbers */
    int streams_status;         /* last bulk_streams_status, -1 before */
    uint32_t streams_count;
};

static void c_log(void *priv, int level, const char *msg)
{
    struct redirc *c = priv;

    if (level <= usbredirparser_error) {
        c->errors++;
        if (getenv("FERRY_TEST_VERBOSE"))
            fprintf(stderr, "redir-client: %s\n", msg);
    }
}

static int c_read(void *priv, uint8_t *data, int count)
{
    struct redirc *c = priv;
    struct iovec iov[2] = {
        { .iov_base = data, .iov_len = (size_t)count },
        { .iov_base = c->rbuf, .iov_len = REDIRC_RBUF_SIZE },
    };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    ssize_t n;

    if (c->rpos < c->rlen) {
        size_t k = MIN((size_t)count, c->rlen - c->rpos);

        memcpy(data, c->rbuf + c->rpos, k);
        c->rpos += k;
        return (int)k;
    }
    /* empty: usbredirparser asks again until this says 0, so nothing read
     * stays here when it returns and poll() tells of what is left */
    n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
    if (n > count) {
        c->rpos = 0;
        c->rlen = (size_t)(n - count);
        return count;
    }
    if (n > 0)
        return (int)n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    c->closed = true;
    return -1;
}

static int c_write(void *priv, uint8_t *data, int count)
{
    struct redirc *c = priv;
    ssize_t n = send(c->fd, data, (size_t)count, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    c->closed = true;
    return -1;
}

static void c_connect(void *priv, struct usb_redir_device_connect_header *h)
{
    struct redirc *c = priv;

    c->connected = true;
    c->connects++;
    c->disconnected = false;
    c->vid = h->vendor_id;
    c->pid = h->product_id;
}

static void c_disconnect(void *priv)
{
    struct redirc *c = priv;

    c->disconnected = true;
    c->connected = false;
}

/* A completion; takes the parser's data (copied once, into the caller's
 * buffer, when taken: as QEMU's usb-redir copies it into the guest's). */
static void c_done(struct redirc *c, uint64_t id, int status, uint8_t *data, int len)
{
    struct done *d = g_new0(struct done, 1);

    d->id = id;
    d->status = status;
    d->data = data;
    d->len = data && len > 0 ? len : 0;
    g_queue_push_tail(&c->done, d);
}

static void done_free(struct redirc *c, struct done *d)
{
    usbredirparser_free_packet_data(c->p, d->data);
    g_free(d);
}

/* d's data into buf (at most *len bytes; *len becomes what was copied) */
static void done_take(const struct done *d, uint8_t *buf, size_t *len)
{
    size_t n;

    if (!buf || !len)
        return;
    n = (size_t)d->len < *len ? (size_t)d->len : *len;
    if (n)
        memcpy(buf, d->data, n);
    *len = n;
}

static void c_bulk(void *priv, uint64_t id, struct usb_redir_bulk_packet_header *h,
                   uint8_t *data, int len)
{
    c_done(priv, id, h->status, data, len);
}

static void c_control(void *priv, uint64_t id, struct usb_redir_control_packet_header *h,
                      uint8_t *data, int len)
{
    c_done(priv, id, h->status, data, len);
}

/* usbredirparser calls these without checking for NULL */
static void n_hello(void *p, struct usb_redir_hello_header *h) { }
static void n_iface(void *p, struct usb_redir_interface_info_header *h) { }
static void n_ep(void *p, struct usb_redir_ep_info_header *h) { }
static void n_cfg(void *p, uint64_t id, struct usb_redir_configuration_status_header *h)
{
    ((struct redirc *)p)->cfg_status = h->status;
}
static void n_alt(void *p, uint64_t id, struct usb_redir_alt_setting_status_header *h)
{
    ((struct redirc *)p)->alt_status = h->status;
}
static void n_iso_st(void *p, uint64_t id, struct usb_redir_iso_stream_status_header *h)
{
    ((struct redirc *)p)->iso_statuses++;
}
static void n_int_st(void *p, uint64_t id, struct usb_redir_interrupt_receiving_status_header *h)
{
    ((struct redirc *)p)->stream_statuses++;
}
static void n_streams(void *p, uint64_t id, struct usb_redir_bulk_streams_status_header *h)
{
    ((struct redirc *)p)->streams_status = h->status;
    ((struct redirc *)p)->streams_count = h->no_streams;
}
static void n_bulk_st(void *p, uint64_t id, struct usb_redir_bulk_receiving_status_header *h)
{
    ((struct redirc *)p)->bbulk_status = h->status;
    ((struct redirc *)p)->stream_statuses++;
}
static void n_ack(void *p) { }
static void n_reset(void *p) { }
static void n_filter(void *p, struct usbredirfilter_rule *r, int n) { free(r); }
static void n_reject(void *p) { }
static void n_iso(void *p, uint64_t id, struct usb_redir_iso_packet_header *h, uint8_t *d, int len)
{
    struct redirc *c = p;

    /* frames of the simulator count up from their first byte */
    if (h->status == 0 && len >= 2 && d[1] == (uint8_t)(d[0] + 1)) {
        c->iso_ok++;
        c->iso_len_seen[0] = (unsigned)len;
        if (len >= 8 && c->iso_ids->len < REDIRC_ISO_LOG_MAX) {
            uint32_t seq = (uint32_t)d[len - 4] | (uint32_t)d[len - 3] << 8 |
                           (uint32_t)d[len - 2] << 16 | (uint32_t)d[len - 1] << 24;

            g_array_append_val(c->iso_ids, id);
            g_array_append_val(c->iso_seqs, seq);
        }
    }
    usbredirparser_free_packet_data(c->p, d);
}
/* IN: data the host side received (redirc_start_int); OUT: a completion */
static void n_int(void *p, uint64_t id, struct usb_redir_interrupt_packet_header *h, uint8_t *d,
                  int len)
{
    struct redirc *c = p;

    if (!(h->endpoint & 0x80)) {
        c_done(c, id, h->status, NULL, 0);
    } else if (h->status == 0 && g_queue_get_length(&c->int_in) < REDIRC_INT_QUEUE_MAX) {
        GByteArray *b = g_byte_array_new();
        if (d && len > 0)
            g_byte_array_append(b, d, (guint)len);
        g_queue_push_tail(&c->int_in, b);
    }
    usbredirparser_free_packet_data(c->p, d);
}
static void n_bbulk(void *p, uint64_t id, struct usb_redir_buffered_bulk_packet_header *h,
                    uint8_t *d, int len)
{
    struct redirc *c = p;

    if (h->status == 0 && d && len > 0 && c->bbulk->len < 16u << 20)
        g_byte_array_append(c->bbulk, d, (guint)len);
    c->bbulk_packets++;
    usbredirparser_free_packet_data(c->p, d);
}

struct redirc *redirc_new(int fd)
{
    struct redirc *c = g_new0(struct redirc, 1);
    uint32_t caps[USB_REDIR_CAPS_SIZE] = { 0 };

    c->fd = fd;
    c->rbuf = g_malloc(REDIRC_RBUF_SIZE);
    c->alt_status = -1;
    c->cfg_status = -1;
    c->bbulk_status = -1;
    c->streams_status = -1;
    c->bbulk = g_byte_array_new();
    c->iso_ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    c->iso_seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    g_queue_init(&c->done);
    g_queue_init(&c->int_in);
    c->p = usbredirparser_create();
    c->p->priv = c;
    c->p->log_func = c_log;
    c->p->read_func = c_read;
    c->p->write_func = c_write;
    c->p->device_connect_func = c_connect;
    c->p->device_disconnect_func = c_disconnect;
    c->p->bulk_packet_func = c_bulk;
    c->p->control_packet_func = c_control;
    c->p->hello_func = n_hello;
    c->p->reset_func = n_reset;
    c->p->interface_info_func = n_iface;
    c->p->ep_info_func = n_ep;
    c->p->configuration_status_func = n_cfg;
    c->p->alt_setting_status_func = n_alt;
    c->p->iso_stream_status_func = n_iso_st;
    c->p->interrupt_receiving_status_func = n_int_st;
    c->p->bulk_streams_status_func = n_streams;
    c->p->bulk_receiving_status_func = n_bulk_st;
    c->p->device_disconnect_ack_func = n_ack;
    c->p->filter_filter_func = n_filter;
    c->p->filter_reject_func = n_reject;
    c->p->iso_packet_func = n_iso;
    c->p->interrupt_packet_func = n_int;
    c->p->buffered_bulk_packet_func = n_bbulk;
    usbredirparser_caps_set_cap(caps, usb_redir_cap_connect_device_version);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_ep_info_max_packet_size);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_64bits_ids);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_32bits_bulk_length);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_device_disconnect_ack);
    /* QEMU's usb-redir offers these too (hw/usb/redirect.c) */
    usbredirparser_caps_set_cap(caps, usb_redir_cap_bulk_receiving);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_bulk_streams);
    usbredirparser_init(c->p, "ferry-test-guest", caps, USB_REDIR_CAPS_SIZE, 0);
    return c;
}

int redirc_fd(struct redirc *c)
{
    return c->fd;
}

void redirc_free(struct redirc *c)
{
    GByteArray *b;
    struct done *d;

    if (!c)
        return;
    while ((d = g_queue_pop_head(&c->done)))
        done_free(c, d);
    while ((b = g_queue_pop_head(&c->int_in)))
        g_byte_array_unref(b);
    g_byte_array_unref(c->bbulk);
    g_array_unref(c->iso_ids);
    g_array_unref(c->iso_seqs);
    usbredirparser_destroy(c->p);
    close(c->fd);
    g_free(c->rbuf);
    g_free(c);
}

int redirc_step(struct redirc *c, int timeout_ms)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

    if (c->closed)
        return -1;
    if (usbredirparser_has_data_to_write(c->p))
        pfd.events |= POLLOUT;
    if (poll(&pfd, 1, timeout_ms) < 0)
        return 0;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
        if (usbredirparser_do_read(c->p) == usbredirparser_read_io_error && c->closed)
            return -1;
    if (usbredirparser_has_data_to_write(c->p))
        usbredirparser_do_write(c->p);
    return c->closed ? -1 : 0;
}

int redirc_push(struct redirc *c)
{
    if (!c->closed && usbredirparser_has_data_to_write(c->p))
        usbredirparser_do_write(c->p);
    return usbredirparser_has_data_to_write(c->p);
}

bool redirc_connected(struct redirc *c) { return c->connected; }
bool redirc_disconnected(struct redirc *c) { return c->disconnected; }
unsigned redirc_connects(struct redirc *c) { return c->connects; }
unsigned redirc_errors(struct redirc *c) { return c->errors; }
bool redirc_closed(struct redirc *c) { return c->closed; }
uint16_t redirc_vid(struct redirc *c) { return c->vid; }
uint16_t redirc_pid(struct redirc *c) { return c->pid; }

void redirc_bulk(struct redirc *c, uint64_t id, uint8_t ep, const void *data, uint32_t len)
{
    struct usb_redir_bulk_packet_header h = {
        .endpoint = ep, .length = (uint16_t)len, .length_high = (uint16_t)(len >> 16),
    };

    usbredirparser_send_bulk_packet(c->p, id, &h, (ep & 0x80) ? NULL : (uint8_t *)data,
                                    (ep & 0x80) ? 0 : (int)len);
    usbredirparser_do_write(c->p);
}

void redirc_control(struct redirc *c, uint64_t id, uint8_t rt, uint8_t req, uint16_t val,
                    uint16_t idx, uint16_t len)
{
    struct usb_redir_control_packet_header h = {
        .endpoint = (rt & 0x80) ? 0x80 : 0x00, .request = req, .requesttype = rt,
        .value = val, .index = idx, .length = len,
    };

    usbredirparser_send_control_packet(c->p, id, &h, NULL, 0);
    usbredirparser_do_write(c->p);
}

void redirc_set_config(struct redirc *c, uint64_t id, uint8_t config)
{
    struct usb_redir_set_configuration_header h = { .configuration = config };

    c->cfg_status = -1;
    usbredirparser_send_set_configuration(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

int redirc_config_status(struct redirc *c)
{
    return c->cfg_status;
}

void redirc_start_int(struct redirc *c, uint64_t id, uint8_t ep)
{
    struct usb_redir_start_interrupt_receiving_header h = { .endpoint = ep };

    usbredirparser_send_start_interrupt_receiving(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

void redirc_interrupt(struct redirc *c, uint64_t id, uint8_t ep, const void *data, uint16_t len)
{
    struct usb_redir_interrupt_packet_header h = { .endpoint = ep, .length = len };

    usbredirparser_send_interrupt_packet(c->p, id, &h, (uint8_t *)data, len);
    usbredirparser_do_write(c->p);
}

bool redirc_int_in(struct redirc *c, uint8_t *buf, size_t *len)
{
    GByteArray *b = g_queue_pop_head(&c->int_in);
    size_t n;

    if (!b)
        return false;
    n = b->len < *len ? b->len : *len;
    if (n)
        memcpy(buf, b->data, n);
    *len = n;
    g_byte_array_unref(b);
    return true;
}

void redirc_set_alt(struct redirc *c, uint64_t id, uint8_t iface, uint8_t alt)
{
    struct usb_redir_set_alt_setting_header h = { .interface = iface, .alt = alt };

    c->alt_status = -1;
    usbredirparser_send_set_alt_setting(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

void redirc_start_iso(struct redirc *c, uint64_t id, uint8_t ep, uint8_t pkts_per_urb,
                      uint8_t urbs)
{
    struct usb_redir_start_iso_stream_header h = {
        .endpoint = ep, .pkts_per_urb = pkts_per_urb, .no_urbs = urbs,
    };

    usbredirparser_send_start_iso_stream(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

unsigned redirc_iso_good(struct redirc *c, unsigned len)
{
    return c->iso_len_seen[0] == len ? c->iso_ok : 0;
}

void redirc_filter(struct redirc *c)
{
    /* allow everything (class, vendor, product, version: -1 each) */
    const struct usbredirfilter_rule r = { -1, -1, -1, -1, 1 };

    usbredirparser_send_filter_filter(c->p, &r, 1);
    usbredirparser_do_write(c->p);
}

void redirc_stop_iso(struct redirc *c, uint64_t id, uint8_t ep)
{
    struct usb_redir_stop_iso_stream_header h = { .endpoint = ep };

    usbredirparser_send_stop_iso_stream(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

unsigned redirc_iso_statuses(struct redirc *c)
{
    return c->iso_statuses;
}

size_t redirc_iso_log(struct redirc *c, const uint64_t **ids, const uint32_t **frames)
{
    *ids = (const uint64_t *)(void *)c->iso_ids->data;
    *frames = (const uint32_t *)(void *)c->iso_seqs->data;
    return c->iso_ids->len;
}

void redirc_alloc_bulk_streams(struct redirc *c, uint64_t id, uint32_t eps, uint32_t count)
{
    struct usb_redir_alloc_bulk_streams_header h = { .endpoints = eps, .no_streams = count };

    c->streams_status = -1;
    usbredirparser_send_alloc_bulk_streams(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

void redirc_free_bulk_streams(struct redirc *c, uint64_t id, uint32_t eps)
{
    struct usb_redir_free_bulk_streams_header h = { .endpoints = eps };

    c->streams_status = -1;
    usbredirparser_send_free_bulk_streams(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

int redirc_bulk_streams_status(struct redirc *c, uint32_t *count)
{
    if (count)
        *count = c->streams_count;
    return c->streams_status;
}

int redirc_alt_status(struct redirc *c)
{
    return c->alt_status;
}

bool redirc_done(struct redirc *c, uint64_t id, int *status, uint8_t *buf, size_t *len)
{
    for (GList *l = c->done.head; l; l = l->next) {
        struct done *d = l->data;
        if (d->id != id)
            continue;
        *status = d->status;
        done_take(d, buf, len);
        g_queue_delete_link(&c->done, l);
        done_free(c, d);
        return true;
    }
    return false;
}

bool redirc_pop_done(struct redirc *c, uint64_t *id, int *status, uint8_t *buf, size_t *len)
{
    struct done *d = g_queue_pop_head(&c->done);

    if (!d)
        return false;
    *id = d->id;
    *status = d->status;
    done_take(d, buf, len);
    done_free(c, d);
    return true;
}

bool redirc_peer_has_cap(struct redirc *c, int cap)
{
    return usbredirparser_peer_has_cap(c->p, cap);
}

void redirc_start_bulk_recv(struct redirc *c, uint64_t id, uint8_t ep, uint32_t bytes,
                            uint8_t transfers)
{
    struct usb_redir_start_bulk_receiving_header h = {
        .endpoint = ep, .bytes_per_transfer = bytes, .no_transfers = transfers,
    };

    c->bbulk_status = -1;
    usbredirparser_send_start_bulk_receiving(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

void redirc_stop_bulk_recv(struct redirc *c, uint64_t id, uint8_t ep)
{
    struct usb_redir_stop_bulk_receiving_header h = { .endpoint = ep };

    usbredirparser_send_stop_bulk_receiving(c->p, id, &h);
    usbredirparser_do_write(c->p);
}

unsigned redirc_stream_statuses(struct redirc *c)
{
    return c->stream_statuses;
}

int redirc_bulk_recv_status(struct redirc *c)
{
    return c->bbulk_status;
}

size_t redirc_bulk_recv_data(struct redirc *c, const uint8_t **data, unsigned *packets)
{
    *data = c->bbulk->data;
    if (packets)
        *packets = c->bbulk_packets;
    return c->bbulk->len;
}
