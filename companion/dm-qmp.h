/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's one QMP connection to the QEMU it accompanies.
 *
 * QEMU serves one client per QMP socket, so USB (dm-usb.c: usb-redir
 * hot-add) and PCI (dm-vfio.c: vfio-pci hot-add) share this connection.
 * It is opened before confinement and kept: ferry-dm watches it on its
 * event loop, keeps the events that arrive, and calls `gone` once when QEMU
 * closes it.  The client is libferry-usb's ferry_usb_qmp: its *commands*
 * are synchronous (QEMU answers them at once, each bounded by
 * DM_QMP_TIMEOUT_MS).
 *
 * What only the guest can end -- the DEVICE_DELETED that follows device_del
 * once the guest OS has let go of the device -- is waited for
 * asynchronously: dm_qmp_wait_deleted registers a waiter that is called
 * back from the loop when the event arrives (or had already been kept,
 * e.g. read while device_del itself was answered), when the time is up, or
 * when QEMU's connection goes.  The loop serves everything else meanwhile.
 */
#ifndef FERRY_DM_QMP_H
#define FERRY_DM_QMP_H

#define DM_QMP_TIMEOUT_MS 10000
#define DM_QMP_WAITERS_MAX 64      /* DEVICE_DELETED waiters at a time */
/* For tests: the DEVICE_DELETED wait in ms (default DM_QMP_TIMEOUT_MS),
 * 1..600000; anything else is ignored. */
#define DM_QMP_WAIT_ENV "FERRY_DM_DETACH_WAIT_MS"

struct event_base;
struct ferry_usb_qmp;
struct dm_qmp;
struct dm_qmp_wait;

/* Connect now (waiting up to DM_QMP_TIMEOUT_MS for a socket that is not
 * there or not listening yet; greeting, capabilities) and watch.  0 or -errno, the reason
 * printed to stderr. */
int dm_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct dm_qmp **out);
struct ferry_usb_qmp *dm_qmp_client(struct dm_qmp *d);
const char *dm_qmp_path(const struct dm_qmp *d);
/* Waiters still registered are called with -ECANCELED first. */
void dm_qmp_free(struct dm_qmp *d);

/*
 * Call fn(opaque, result) once, from the event loop, never from inside this
 * call: result 0 when DEVICE_DELETED for dev_id arrives (or was kept
 * already), -ETIMEDOUT after timeout_ms, -EPIPE when QEMU's connection has
 * gone (or had gone), -ECANCELED from dm_qmp_free.  The waiter is freed
 * after fn returns; fn may register or cancel other waiters.  *out (may be
 * NULL) is for dm_qmp_wait_cancel.  0, -EBUSY beyond DM_QMP_WAITERS_MAX,
 * -ENOMEM.
 */
int dm_qmp_wait_deleted(struct dm_qmp *d, const char *dev_id, int timeout_ms,
                        void (*fn)(void *opaque, int result), void *opaque,
                        struct dm_qmp_wait **out);
/* Forget a waiter whose fn has not run: fn will not be called. */
void dm_qmp_wait_cancel(struct dm_qmp_wait *w);
/* DM_QMP_TIMEOUT_MS, or DM_QMP_WAIT_ENV's value (tests). */
int dm_qmp_wait_timeout_ms(void);

#endif
