/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Character back ends for serial-like devices: where the guest's output
 * goes and where its input comes from, on the device model's event loop.
 *
 *   out:  stdout | stderr | file:PATH | pty | socket:PATH | null
 *   in:   none | stdin | pty | socket:PATH
 *
 * "pty" makes one pseudo-terminal used for both directions when both say
 * pty; "socket:PATH" listens on a unix socket and serves one client at a
 * time (a second client is turned away); out and in may name the same
 * socket.  Input is read only while the device has room (flow control, no
 * byte lost); output that a pty or socket peer cannot take at once is
 * dropped and counted, never blocking the loop.
 */
#ifndef FERRY_DM_CHARDEV_H
#define FERRY_DM_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ferry_chardev;

struct ferry_chardev_ops {
    /* Bytes the device can take now. */
    size_t (*room)(void *opaque);
    /* n <= room() bytes of input. */
    void (*receive)(void *opaque, const uint8_t *buf, size_t n);
    /* Optional: n bytes of output were dropped because writing failed with
     * err (ENOSPC, EIO, EPIPE, ...; not a pty or socket peer being slow, nor
     * a socket without client); total is all dropped so far.  The guest
     * drives this: the device rate-limits what it logs. */
    void (*output_failed)(void *opaque, size_t n, int err, uint64_t total);
};

#define FERRY_CHARDEV_SPEC_MAX 512

/* err gets "what failed, on what, why" on failure. */
int dm_chardev_open(struct event_base *base, const char *out_spec, const char *in_spec,
                       const struct ferry_chardev_ops *ops, void *opaque,
                       struct ferry_chardev **out, char *err, size_t err_len);
void dm_chardev_close(struct ferry_chardev *cd);
void dm_chardev_write(struct ferry_chardev *cd, const uint8_t *buf, size_t n);
/* The device has room again: resume reading input. */
void dm_chardev_accept_input(struct ferry_chardev *cd);
/* "pty:/dev/pts/4", "file:/tmp/x", ... for logs and query-devices. */
const char *dm_chardev_out_name(const struct ferry_chardev *cd);
const char *dm_chardev_in_name(const struct ferry_chardev *cd);
uint64_t dm_chardev_dropped(const struct ferry_chardev *cd);

/*
 * Replacing ferry-dm: export lists the fds of every open chardev (not
 * dup'ed), each with a tag (chardev index << 8 | slot, in the order the
 * chardevs were opened); returns how many.  A successor calls inherit with
 * what it received before it opens its chardevs from the same config:
 * each then takes its predecessor's fds instead of opening (a file is not
 * truncated, a pty keeps its name, a socket its path and client).
 * inherit_done closes what nobody took.
 */
enum {
    DM_CHARDEV_SLOT_OUT, DM_CHARDEV_SLOT_IN, DM_CHARDEV_SLOT_PTY_MASTER,
    DM_CHARDEV_SLOT_PTY_SLAVE, DM_CHARDEV_SLOT_LISTEN, DM_CHARDEV_SLOT_CLIENT,
    DM_CHARDEV_SLOTS
};
/* How many (at most max), or -E2BIG when they do not all fit: none is left out silently. */
int dm_chardev_export(int *fds, uint32_t *tags, unsigned max);
int dm_chardev_inherit(const int *fds, const uint32_t *tags, unsigned n);
void dm_chardev_inherit_done(void);

#endif
