/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's one QMP connection to the QEMU it accompanies.
 *
 * QEMU serves one client per QMP socket, so USB (dm-usb.c: usb-redir
 * hot-add) and PCI (dm-vfio.c: vfio-pci hot-add) share this connection.
 * It is opened before confinement and kept: ferry-dm watches it on its
 * event loop (common/qmp-wait.h), keeps the events that arrive, and calls
 * `gone` once when QEMU closes it.  The client is common/qmp.c's, which
 * libferry-usb's ferry_usb_qmp wraps: its *commands* are synchronous (QEMU
 * answers them at once, each bounded by DM_QMP_TIMEOUT_MS).
 *
 * What only the guest can end -- the DEVICE_DELETED that follows device_del
 * once the guest OS has let go of the device -- is waited for
 * asynchronously with common/qmp-wait.h's waiters on companion_qmp_watch(d),
 * within companion_qmp_wait_timeout_ms().  The loop serves everything else
 * meanwhile.
 */
#ifndef FERRY_DM_QMP_H
#define FERRY_DM_QMP_H

#include <stddef.h>

#define DM_QMP_TIMEOUT_MS 10000
/* For tests: the DEVICE_DELETED wait in ms (default DM_QMP_TIMEOUT_MS),
 * 1..600000; anything else is ignored. */
#define DM_QMP_WAIT_ENV "FERRY_DM_DETACH_WAIT_MS"

struct event_base;
struct ferry_qmp;
struct ferry_qmp_watch;
struct ferry_usb_qmp;
struct companion_qmp;

/* Connect now (waiting up to DM_QMP_TIMEOUT_MS for a socket that is not
 * there or not listening yet; greeting, capabilities) and watch.  0 or -errno, the reason
 * printed to stderr. */
int companion_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct companion_qmp **out);
/* The same on a connected socket fd (the xhci device's remote QEMU's
 * monitor, an inherited socketpair end: no connect(), so a confined ferry-dm
 * may do it), which it owns from now on; path only names it. */
int companion_qmp_open_fd(struct event_base *base, int fd, const char *path,
                          void (*gone)(void *opaque), void *opaque, struct companion_qmp **out);
/* A successor's (ferry-dm's replace): the predecessor's connection, fd
 * (taken) and the bytes it had read and not parsed (ferry_qmp_adopt: no
 * second greeting or negotiation), watched as companion_qmp_open's. */
int companion_qmp_adopt(struct event_base *base, const char *path, int fd, const void *unread,
                        size_t len, void (*gone)(void *opaque), void *opaque,
                        struct companion_qmp **out);
/* The connection's socket. */
int companion_qmp_fd(struct companion_qmp *d);
/* The client, as libferry-usb wants it and as common/qmp.h's. */
struct ferry_usb_qmp *companion_qmp_client(struct companion_qmp *d);
struct ferry_qmp *companion_qmp_conn(struct companion_qmp *d);
/* Its watch on the loop, for DEVICE_DELETED waiters (common/qmp-wait.h). */
struct ferry_qmp_watch *companion_qmp_watch(struct companion_qmp *d);
const char *companion_qmp_path(const struct companion_qmp *d);
/* Waiters still registered are called with -ECANCELED first. */
void companion_qmp_free(struct companion_qmp *d);

/* DM_QMP_TIMEOUT_MS, or DM_QMP_WAIT_ENV's value (tests). */
int companion_qmp_wait_timeout_ms(void);

#endif
