/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A usbredir *guest* side for tests and benchmarks (what QEMU's usb-redir
 * is, with the capabilities QEMU 7.2 advertises), on libusbredirparser.  Non-blocking: call redirc_step() from the
 * loop that also runs the Ferry side, or from a thread of its own.
 */
#ifndef FERRY_REDIR_CLIENT_H
#define FERRY_REDIR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redirc;

struct redirc *redirc_new(int fd);          /* takes fd */
void redirc_free(struct redirc *c);
/* The socket, for tests that write raw (hostile) bytes between packets. */
int redirc_fd(struct redirc *c);
/* Poll the socket up to timeout_ms, read and write what can be.
 * Returns -1 once the connection is gone. */
int redirc_step(struct redirc *c, int timeout_ms);
/* Write what can be written, read nothing; returns the packets left queued. */
int redirc_push(struct redirc *c);
bool redirc_connected(struct redirc *c);    /* device_connect seen */
bool redirc_disconnected(struct redirc *c); /* device_disconnect seen */
unsigned redirc_connects(struct redirc *c);  /* device_connect packets seen */
unsigned redirc_errors(struct redirc *c);    /* usbredirparser errors (e.g. a second hello) */
uint16_t redirc_vid(struct redirc *c);
uint16_t redirc_pid(struct redirc *c);
bool redirc_closed(struct redirc *c);
/* Queue transfers; the reply arrives through redirc_step. */
void redirc_bulk(struct redirc *c, uint64_t id, uint8_t ep, const void *data, uint32_t len);
void redirc_control(struct redirc *c, uint64_t id, uint8_t rt, uint8_t req, uint16_t val,
                    uint16_t idx, uint16_t len);
/* SET_CONFIGURATION; its status (usb_redir_success = 0) once answered, -1 before. */
void redirc_set_config(struct redirc *c, uint64_t id, uint8_t config);
int redirc_config_status(struct redirc *c);
/* Interrupt: start receiving on an IN ep, then take what arrived, oldest
 * first; an OUT packet completes through redirc_done(id). */
void redirc_start_int(struct redirc *c, uint64_t id, uint8_t ep);
bool redirc_int_in(struct redirc *c, uint8_t *buf, size_t *len);
void redirc_interrupt(struct redirc *c, uint64_t id, uint8_t ep, const void *data, uint16_t len);
/* Isochronous IN: select interface/alt, start a stream on ep; then count
 * the iso packets that arrive (good = status 0 and len bytes). */
void redirc_set_alt(struct redirc *c, uint64_t id, uint8_t iface, uint8_t alt);
void redirc_start_iso(struct redirc *c, uint64_t id, uint8_t ep, uint8_t pkts_per_urb,
                      uint8_t urbs);
unsigned redirc_iso_good(struct redirc *c, unsigned len);
int redirc_alt_status(struct redirc *c);      /* -1 until answered */
void redirc_stop_iso(struct redirc *c, uint64_t id, uint8_t ep);
/* Send the host side a usbredir filter (one rule that allows everything). */
void redirc_filter(struct redirc *c);
unsigned redirc_iso_statuses(struct redirc *c);   /* iso_stream_status packets seen */
/* The good iso packets so far, in arrival order: their ids and the
 * simulator's frame numbers they carry (usbsim.h); returns how many. */
size_t redirc_iso_log(struct redirc *c, const uint64_t **ids, const uint32_t **frames);
/* Bulk streams (USB 3): allocate count streams on the endpoints of usbredir's
 * mask (bit 16 + n: IN n, bit n: OUT n), free them; the last
 * bulk_streams_status (-1 until answered) and its stream count. */
void redirc_alloc_bulk_streams(struct redirc *c, uint64_t id, uint32_t eps, uint32_t count);
void redirc_free_bulk_streams(struct redirc *c, uint64_t id, uint32_t eps);
int redirc_bulk_streams_status(struct redirc *c, uint32_t *count);
/* The last completed transfer with this id: status and data, or false. */
bool redirc_done(struct redirc *c, uint64_t id, int *status, uint8_t *buf, size_t *len);
/* The oldest completed transfer (any id), in the order the answers came. */
bool redirc_pop_done(struct redirc *c, uint64_t *id, int *status, uint8_t *buf, size_t *len);
/* Buffered bulk IN (usb_redir_cap_bulk_receiving): the host side keeps
 * `transfers` URBs of `bytes` in flight on ep and sends what they receive;
 * the data arrives in order, collected here.  Status -1 until answered. */
void redirc_start_bulk_recv(struct redirc *c, uint64_t id, uint8_t ep, uint32_t bytes,
                            uint8_t transfers);
void redirc_stop_bulk_recv(struct redirc *c, uint64_t id, uint8_t ep);
int redirc_bulk_recv_status(struct redirc *c);
/* Interrupt and bulk receiving status packets seen (each answers a start or stop). */
unsigned redirc_stream_statuses(struct redirc *c);
size_t redirc_bulk_recv_data(struct redirc *c, const uint8_t **data, unsigned *packets);
/* The host side's hello advertised this usb_redir_cap_*. */
bool redirc_peer_has_cap(struct redirc *c, int cap);

#endif
