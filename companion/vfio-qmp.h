/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host PCI devices plugged into a running QEMU as vfio-pci, over QMP: the
 * one path shared by `ferry pci attach|detach` on a QMP socket (cli/pci-assign.c)
 * and ferry-dm's pci-attach / pci-detach (dm-vfio.c).
 *
 *   plug:    device_add {"driver": "vfio-pci", "host": BDF, "id": ID,
 *                        "bus"?: BUS, "addr"?: SLOT[.FN]}
 *   where:   query-pci, the device's guest address by its id
 *   unplug:  device_del {"id": ID} (common/qmp-wait.h's ferry_qmp_device_del),
 *            then DEVICE_DELETED: blocking here (companion_vfio_qmp_detach), or
 *            asynchronously on ferry-dm's loop (ferry_qmp_watch_deleted).
 *
 * The device is prepared for VFIO (libferry-pcihost) by the caller, as root,
 * before; and released after DEVICE_DELETED.
 */
#ifndef FERRY_VFIO_QMP_H
#define FERRY_VFIO_QMP_H

#include <stddef.h>

#include "common/json.h"

#include "common/qmp.h"
#include "pci/host/pci-config.h"

/* device_add's arguments for d (bus and addr only when set; caller unrefs). */
json_t *companion_vfio_qmp_add_args(const struct ferry_pci_config_dev *d);
/* device_add vfio-pci for d: 0, -EREMOTEIO when QEMU refused
 * (ferry_qmp_error), other -errno. */
int companion_vfio_qmp_plug(struct ferry_qmp *q, const struct ferry_pci_config_dev *d);
/* Where the guest sees device id, from QEMU's query-pci ("BB:SS.F"), or "". */
void companion_vfio_qmp_guest_address(struct ferry_qmp *q, const char *id, char *where,
                                  size_t len);
#endif
