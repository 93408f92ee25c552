/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the files of libferry-usb; not installed. */
#ifndef FERRY_USB_INTERNAL_H
#define FERRY_USB_INTERNAL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "usb/ferry-usb.h"

/* Handle pending libusb events now (zero timeout) and re-arm the timer. */
void usb_host_pump(struct ferry_usb_host *h);
/* redir.c: find libusb's functions behind its handover interposition (libusb loaded) */
void redir_interpose_init(void);
struct event_base *usb_host_base(struct ferry_usb_host *h);

#define FERRY_USB_VERSION "0.1"

/* redir-track.c: a usbredir connection followed packet by packet, for a
 * handover (usb_redir_export / usb_redir_adopt). */
#define REDIR_TRACK_KEEP        96      /* bytes of a packet looked at: header, type header */
#define REDIR_TRACK_HELLO_MAX   1024    /* the peer's hello, kept whole for a replay */
#define REDIR_TRACK_RECV_HDR    10      /* usb_redir_start_bulk_receiving_header */
#define REDIR_TRACK_ISO_HDR     3       /* usb_redir_start_iso_stream_header */

struct redir_track {
    uint8_t pkt[REDIR_TRACK_KEEP];      /* the start of the peer's current packet */
    size_t have;
    uint64_t got, need;                 /* its bytes so far, its size (once the header is in) */
    bool hello_seen, hello_too_big, peer_ids64, own_ids64;
    GByteArray *peer_hello;
    GHashTable *inflight;               /* id -> type << 8 | endpoint: not answered yet */
    uint32_t streams;                   /* endpoints with a stream: bit (dir << 4 | number) */
    /* Receiving streams (interrupt or bulk), per endpoint index: the type of
     * the peer's start packet (0: none) and its header, to start it again. */
    uint32_t recv_type[32];
    uint8_t recv_hdr[32][REDIR_TRACK_RECV_HDR];
    /* Isochronous streams, per endpoint index: the peer's start packet
     * (endpoint, pkts_per_urb, no_urbs) and the id of the next iso packet
     * the peer is to see on it (the host side numbers them by packet), and
     * what is added to the host side's ids on a stream started again across
     * a handover (it numbers from 0 again; the peer sees the ids go on). */
    uint32_t iso_eps;
    uint8_t iso_hdr[32][REDIR_TRACK_ISO_HDR];
    uint64_t iso_next[32], iso_base[32];
    /* Bulk streams (USB 3) the device has, as its last successful
     * bulk_streams_status said: usbredir's endpoint mask and their count.
     * The kernel keeps them with the usbfs file, handed over whole. */
    uint32_t bulk_stream_eps, bulk_stream_count;
    bool filter, disconnect_pending;
    uint8_t alt[32];                    /* interfaces' alternate settings (by number) */
};

void redir_track_init(struct redir_track *t);
/* The header length of packets on the connection now (12 or 16). */
unsigned redir_track_hdr_len(const struct redir_track *t);
void redir_track_clear(struct redir_track *t);
/* Bytes handed to usbredirparser, in order. */
void redir_track_in(struct redir_track *t, const uint8_t *data, size_t n);
/* One whole packet usbredirparser wrote for the peer. */
void redir_track_out(struct redir_track *t, const uint8_t *p, size_t n);
bool redir_track_at_boundary(const struct redir_track *t);
unsigned redir_track_inflight(const struct redir_track *t);
/* 0: nothing stands in the way of a handover; -EBUSY (never, as it is)
 * or -EAGAIN (not yet) with why. */
int redir_track_check(const struct redir_track *t, char *why, size_t len);

#endif
