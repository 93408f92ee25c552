/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DEVICE_DELETED: the one way to wait for it, on common/qmp.h's client.
 *
 * device_del only asks: QEMU answers at once, and the device goes when the
 * guest OS lets go of it, which QEMU tells with a DEVICE_DELETED event.
 * Every caller in the tree waits for that event here:
 *
 *  - a program without an event loop (`ferry pci detach` on a QMP socket,
 *    libferry-usb's own connections) waits blocking with
 *    ferry_qmp_wait_deleted, bounded by its timeout;
 *  - a program with a libevent loop (ferry-dm's companion mode, whose
 *    connection to QEMU is kept and shared by USB and PCI) watches the
 *    connection with a ferry_qmp_watch and registers waiters that are
 *    called back from the loop: when the event arrives (or had been kept
 *    already, e.g. read with device_del's own reply), when the time is up,
 *    or when QEMU's connection goes.  The loop serves everything else
 *    meanwhile.
 *
 * Both look at the same kept events (ferry_qmp_take_event): an event read
 * while another command was answered is not lost.
 */
#ifndef FERRY_QMP_WAIT_H
#define FERRY_QMP_WAIT_H

#include "common/qmp.h"

#define FERRY_QMP_WAITERS_MAX 64      /* DEVICE_DELETED waiters at a time */

struct event_base;
struct ferry_qmp_watch;
struct ferry_qmp_waiter;

/* device_del {"id": id}.  0: asked (or asked before and the guest has not
 * answered yet: QEMU says "in the process of unplug"), wait for
 * DEVICE_DELETED; 1: QEMU has no such device (nothing to wait for);
 * -EREMOTEIO: QEMU refused (ferry_qmp_error says why); other -errno from
 * the transport. */
int ferry_qmp_device_del(struct ferry_qmp *q, const char *id);

/* Blocking: DEVICE_DELETED for id within timeout_ms (<= 0: the client's
 * timeout).  0, -ETIMEDOUT, or the transport's -errno (ferry_qmp_error). */
int ferry_qmp_wait_deleted(struct ferry_qmp *q, const char *id, int timeout_ms);

/* Watch q (not owned; it must outlive the watch) on base: what arrives is
 * read (ferry_qmp_drain) and its events kept; when QEMU closes the
 * connection (or it fails), the waiters get -EPIPE and gone(opaque, -errno)
 * runs once.  0 or -ENOMEM. */
int ferry_qmp_watch_new(struct event_base *base, struct ferry_qmp *q,
                        void (*gone)(void *opaque, int err), void *opaque,
                        struct ferry_qmp_watch **out);
/* Waiters still registered are called with -ECANCELED first. */
void ferry_qmp_watch_free(struct ferry_qmp_watch *w);

/*
 * Call fn(opaque, result) once, from the event loop, never from inside this
 * call: result 0 when DEVICE_DELETED for dev_id arrives (or was kept
 * already), -ETIMEDOUT after timeout_ms, -EPIPE when QEMU's connection has
 * gone (or had gone), -ECANCELED from ferry_qmp_watch_free.  The waiter is
 * freed after fn returns; fn may register or cancel other waiters.  *out
 * (may be NULL) is for ferry_qmp_waiter_cancel.  0, -EBUSY beyond
 * FERRY_QMP_WAITERS_MAX, -ENOMEM.
 */
int ferry_qmp_watch_deleted(struct ferry_qmp_watch *w, const char *dev_id, int timeout_ms,
                            void (*fn)(void *opaque, int result), void *opaque,
                            struct ferry_qmp_waiter **out);
/* Forget a waiter whose fn has not run: fn will not be called. */
void ferry_qmp_waiter_cancel(struct ferry_qmp_waiter *wt);

#endif
