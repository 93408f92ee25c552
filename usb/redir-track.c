// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a usbredir connection's host side must know to be handed to another
 * process (usb-internal.h, "redir_track"): libusbredirhost keeps its state
 * to itself (no serialize call on the host side), so the endpoint follows
 * the packets that cross it instead.  Peer -> host: the bytes as they are
 * handed to usbredirparser, cut into packets here (header, then its length);
 * host -> peer: one whole packet per write (usbredirhost_fl_write_cb_owns_buffer).
 *
 * Kept: the peer's hello (replayed to the successor's parser, which then
 * knows the peer's capabilities without a second greeting on the wire), the
 * data packets taken and not answered yet (in flight), the streams with
 * their start parameters (isochronous, interrupt or bulk receiving; for
 * isochronous streams also the id of the next packet the peer is to see),
 * the bulk streams (USB 3) the device has, the interfaces on an alternate
 * setting: what a successor starts or selects again.  And what a handover
 * cannot carry: a filter from the peer and a device disconnect the peer has
 * not acknowledged.
 * No I/O here.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <usbredirproto.h>

#include "usb/usb-internal.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

void redir_track_init(struct redir_track *t)
{
    memset(t, 0, sizeof(*t));
    t->peer_hello = g_byte_array_new();
    t->inflight = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

void redir_track_clear(struct redir_track *t)
{
    if (t->peer_hello)
        g_byte_array_unref(t->peer_hello);
    if (t->inflight)
        g_hash_table_destroy(t->inflight);
    memset(t, 0, sizeof(*t));
}

/* The header length both sides use now (usbredirparser: 64-bit ids once
 * both hellos have the capability). */
static unsigned hdr_len(const struct redir_track *t)
{
    return t->peer_ids64 && t->own_ids64 ? 16 : 12;
}

unsigned redir_track_hdr_len(const struct redir_track *t)
{
    return hdr_len(t);
}

static uint64_t hdr_id(const struct redir_track *t, const uint8_t *h)
{
    return hdr_len(t) == 16 ? le64(h + 8) : le32(h + 8);
}

static bool is_request(uint32_t type)
{
    return type == usb_redir_control_packet || type == usb_redir_bulk_packet ||
           type == usb_redir_interrupt_packet;
}

static unsigned ep_index(uint8_t ep)
{
    return ((ep & 0x80) >> 3) | (ep & 0x0f);
}

static void stream_set(struct redir_track *t, uint8_t ep, bool on)
{
    unsigned i = ep_index(ep);

    if (on)
        t->streams |= 1u << i;
    else
        t->streams &= ~(1u << i);
    if (!on) {
        t->iso_eps &= ~(1u << i);
        memset(t->iso_hdr[i], 0, REDIR_TRACK_ISO_HDR);
        t->recv_type[i] = 0;
    }
}

/* A receiving stream started: its start packet's header, to start it again. */
static void recv_set(struct redir_track *t, uint32_t type, uint8_t ep, const uint8_t *hdr,
                     size_t len)
{
    unsigned i = ep_index(ep);

    t->recv_type[i] = type;
    memset(t->recv_hdr[i], 0, REDIR_TRACK_RECV_HDR);
    memcpy(t->recv_hdr[i], hdr, MIN(len, (size_t)REDIR_TRACK_RECV_HDR));
}

/* One whole packet from the peer (the first REDIR_TRACK_KEEP bytes of it). */
static void packet_in(struct redir_track *t, const uint8_t *p, size_t have, uint64_t total)
{
    unsigned hl = hdr_len(t);
    uint32_t type = le32(p);
    const uint8_t *body = p + hl;
    size_t blen = have - hl;

    if (type == usb_redir_hello) {
        /* header 12 (no capabilities known yet), version[64], caps[] */
        t->hello_seen = true;
        t->peer_ids64 = have >= 12 + 64 + 4 && (le32(p + 76) & (1u << usb_redir_cap_64bits_ids));
        return;
    }
    if (is_request(type) && blen >= 1) {
        uint64_t *k = g_new(uint64_t, 1);

        *k = hdr_id(t, p);
        g_hash_table_replace(t->inflight, k, GUINT_TO_POINTER(type << 8 | body[0]));
        return;
    }
    switch (type) {
    case usb_redir_start_iso_stream:
        /* endpoint, pkts_per_urb, no_urbs; usbredirhost numbers its packets from 0 */
        if (blen >= REDIR_TRACK_ISO_HDR) {
            unsigned i = ep_index(body[0]);

            stream_set(t, body[0], true);
            t->iso_eps |= 1u << i;
            memcpy(t->iso_hdr[i], body, REDIR_TRACK_ISO_HDR);
            t->iso_next[i] = 0;
            t->iso_base[i] = 0;
        }
        break;
    case usb_redir_start_interrupt_receiving:
        if (blen >= 1) {
            stream_set(t, body[0], true);
            recv_set(t, type, body[0], body, 1);
        }
        break;
    case usb_redir_start_bulk_receiving:
        /* stream_id u32, bytes_per_transfer u32, endpoint, no_transfers */
        if (blen >= REDIR_TRACK_RECV_HDR) {
            stream_set(t, body[8], true);
            recv_set(t, type, body[8], body, REDIR_TRACK_RECV_HDR);
        }
        break;
    case usb_redir_stop_iso_stream:
    case usb_redir_stop_interrupt_receiving:
        if (blen >= 1)
            stream_set(t, body[0], false);
        break;
    case usb_redir_stop_bulk_receiving:
        if (blen >= 5)          /* stream_id u32, endpoint */
            stream_set(t, body[4], false);
        break;
    case usb_redir_filter_filter:
        t->filter = true;
        break;
    case usb_redir_device_disconnect_ack:
        t->disconnect_pending = false;
        break;
    case usb_redir_set_configuration:
        memset(t->alt, 0, sizeof(t->alt));
        break;
    default:
        break;
    }
    (void)total;
}

void redir_track_in(struct redir_track *t, const uint8_t *data, size_t n)
{
    while (n) {
        unsigned hl = hdr_len(t);
        size_t take;

        if (t->got < hl) {
            take = MIN(n, hl - (size_t)t->got);
            memcpy(t->pkt + t->got, data, take);
            t->have = (size_t)t->got + take;
            t->got += take;
            if (t->got == hl)
                t->need = hl + (uint64_t)le32(t->pkt + 4);
        } else {
            take = (size_t)MIN((uint64_t)n, t->need - t->got);
            if (t->have < REDIR_TRACK_KEEP) {
                size_t k = MIN(take, REDIR_TRACK_KEEP - t->have);

                memcpy(t->pkt + t->have, data, k);
                t->have += k;
            }
            t->got += take;
        }
        if (le32(t->pkt) == usb_redir_hello && !t->hello_seen) {
            if (t->peer_hello->len + take <= REDIR_TRACK_HELLO_MAX)
                g_byte_array_append(t->peer_hello, data, (guint)take);
            else
                t->hello_too_big = true;
        }
        data += take;
        n -= take;
        if (t->got >= hl && t->got == t->need) {
            packet_in(t, t->pkt, t->have, t->need);
            t->got = t->need = 0;
            t->have = 0;
        }
    }
}

bool redir_track_at_boundary(const struct redir_track *t)
{
    return t->got == 0;
}

void redir_track_out(struct redir_track *t, const uint8_t *p, size_t n)
{
    unsigned hl = hdr_len(t);
    uint32_t type;

    if (n < 12)
        return;
    type = le32(p);
    if (type == usb_redir_hello) {
        /* ours: sent with the 12-byte header, before any capability is known */
        t->own_ids64 = n >= 12 + 64 + 4 && (le32(p + 76) & (1u << usb_redir_cap_64bits_ids));
        return;
    }
    if (n < hl)
        return;
    if (is_request(type) && n > hl) {
        uint64_t id = hdr_id(t, p);
        gpointer v = g_hash_table_lookup(t->inflight, &id);

        if (v && GPOINTER_TO_UINT(v) == (type << 8 | p[hl]))
            g_hash_table_remove(t->inflight, &id);
        return;
    }
    switch (type) {
    case usb_redir_device_disconnect:
        t->disconnect_pending = true;
        break;
    case usb_redir_iso_packet:             /* endpoint, status, length u16 */
        if (n >= hl + 1)
            t->iso_next[ep_index(p[hl])] = hdr_id(t, p) + 1;
        break;
    case usb_redir_iso_stream_status:      /* status, endpoint */
    case usb_redir_interrupt_receiving_status:
        /* a stall: the host side stopped the stream (the peer knows) */
        if (n >= hl + 2 && p[hl] == usb_redir_stall)
            stream_set(t, p[hl + 1], false);
        break;
    case usb_redir_bulk_receiving_status:  /* stream_id u32, endpoint, status */
        if (n >= hl + 6 && p[hl + 5] == usb_redir_stall)
            stream_set(t, p[hl + 4], false);
        break;
    case usb_redir_bulk_streams_status:    /* endpoints u32, no_streams u32, status */
        if (n >= hl + 9 && p[hl + 8] == usb_redir_success) {
            uint32_t eps = le32(p + hl), count = le32(p + hl + 4);

            if (count) {
                t->bulk_stream_eps |= eps;
                t->bulk_stream_count = count;
            } else {
                t->bulk_stream_eps &= ~eps;
            }
            if (!t->bulk_stream_eps)
                t->bulk_stream_count = 0;
        }
        break;
    case usb_redir_alt_setting_status:     /* status, interface, alt */
        if (n >= hl + 3 && p[hl] == usb_redir_success && p[hl + 1] < sizeof(t->alt))
            t->alt[p[hl + 1]] = p[hl + 2];
        break;
    default:
        break;
    }
}

unsigned redir_track_inflight(const struct redir_track *t)
{
    return g_hash_table_size(t->inflight);
}

int redir_track_check(const struct redir_track *t, char *why, size_t len)
{
    if (!t->hello_seen || t->hello_too_big) {
        snprintf(why, len, "%s", t->hello_too_big ? "the peer's hello is larger than a handover "
                 "carries" : "the peer has not said hello yet");
        return -EAGAIN;
    }
    /* streams are stopped and started again (redir.c's park), alternate
     * settings selected again in the successor's host side only, bulk
     * streams stay with the usbfs file */
    if (t->filter) {
        snprintf(why, len, "the peer set a usbredir filter");
        return -EBUSY;
    }
    if (t->disconnect_pending) {
        snprintf(why, len, "a device disconnect is not acknowledged by the peer yet");
        return -EAGAIN;
    }
    return 0;
}
