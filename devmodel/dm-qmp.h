/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's one QMP connection to the QEMU it accompanies.
 *
 * QEMU serves one client per QMP socket, so USB (dm-usb.c: usb-redir
 * hot-add) and PCI (dm-vfio.c: vfio-pci hot-add) share this connection.
 * It is opened before confinement and kept: ferry-dm watches it on its
 * event loop, keeps the events that arrive (DEVICE_DELETED, waited for by
 * detach), and calls `gone` once when QEMU closes it.  The client is
 * libferry-usb's ferry_usb_qmp (synchronous, every wait bounded by
 * DM_QMP_TIMEOUT_MS).
 */
#ifndef FERRY_DM_QMP_H
#define FERRY_DM_QMP_H

#define DM_QMP_TIMEOUT_MS 10000

struct event_base;
struct ferry_usb_qmp;
struct dm_qmp;

/* Connect now (greeting, capabilities) and watch.  0 or -errno, the reason
 * printed to stderr. */
int dm_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct dm_qmp **out);
struct ferry_usb_qmp *dm_qmp_client(struct dm_qmp *d);
const char *dm_qmp_path(const struct dm_qmp *d);
void dm_qmp_free(struct dm_qmp *d);

#endif
