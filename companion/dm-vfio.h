/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's PCI passthrough side: host PCI devices given to the QEMU
 * guest it accompanies as vfio-pci, on the QMP connection it shares with
 * USB (dm-qmp.h).
 *
 * Config devices ([pci] group, pci/host/pci-config.h) are prepared for
 * VFIO (libferry-pcihost: driver_override, unbind, probe; the whole IOMMU
 * group with group=true) while ferry-dm is still root, before confinement;
 * a device that is not viable stops ferry-dm with the device and the
 * reason.  Then each is plugged with device_add vfio-pci,host=BDF.  QEMU
 * opens /dev/vfio itself: a confined ferry-dm needs no extra syscall.
 * Release is explicit (a confined ferry-dm cannot write sysfs): `ferry pci
 * release --config FILE` once QEMU has stopped (contrib/ferry-dm@.service,
 * ExecStopPost=).
 *
 * Control commands (ferry-dm's control socket; the broker, `ferry pci
 * attach GUEST BDF` as root, prepares the device first and releases it
 * after a detach):
 *   pci-attach {"host": BDF, "id"?: ID, "bus"?: BUS, "addr"?: SLOT[.FN]}
 *              -> {"host", "id", "guest-address"?}; an fd passed with it is
 *              the broker's ownership claim's lock, held while the device is
 *              assigned (and handed to a successor)
 *   pci-detach {"host": BDF} or {"id": ID}
 *              device_del, then DEVICE_DELETED within DM_QMP_TIMEOUT_MS
 *              (companion_qmp_wait_timeout_ms), or an error saying the guest did not
 *              release it (it stays assigned).  The wait is asynchronous: the
 *              reply is deferred (control.h) and ferry-dm serves everything
 *              else meanwhile; that client's next commands wait for it.
 *   query-pci-assigned -> {"guest": QMP, "devices": [{"host", "id", "bus"?,
 *              "addr"?, "config": bool, "guest-address"?}]}
 */
#ifndef FERRY_DM_VFIO_H
#define FERRY_DM_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "common/json.h"

struct companion_qmp;
struct companion_vfio;
struct ferry_dm_control_req;

/* Read the [pci] group of config (may be NULL).  0 or -errno, the reason
 * printed to stderr (file, key, value). */
int companion_vfio_load(const char *config, struct companion_vfio **out);
/* qmp= of the [pci] group, or NULL. */
const char *companion_vfio_config_qmp(const struct companion_vfio *v);
bool companion_vfio_has_devices(const struct companion_vfio *v);
/* PCI devices assigned to the guest now (config and pci-attach). */
unsigned companion_vfio_assigned(const struct companion_vfio *v);
/* Prepare the config's devices (root, before confinement).  On failure the
 * devices prepared so far are released again; 0 or -errno, printed.  Not
 * root: only checks that each is on vfio-pci already ('ferry pci prepare
 * --config FILE' as root first, as contrib/ferry-dm@.service does). */
/* guest: its name for the device-access policy (docs/policy.md), which
 * judges every [pci] device first; each is claimed for guest while ferry-dm
 * runs (policy/owner.h). */
int companion_vfio_prepare(struct companion_vfio *v, const char *guest);
/* Start-up failed after companion_vfio_prepare: give those devices back. */
void companion_vfio_release_prepared(struct companion_vfio *v);
/* Use QEMU's QMP connection (kept by the caller) and plug the config's
 * devices.  0 or -errno, printed; on failure the devices not plugged are
 * released (still root). */
int companion_vfio_start(struct companion_vfio *v, struct companion_qmp *d, const char *qmp_path);
/* The QEMU's QMP connection (kept by the caller) without plugging anything:
 * a successor's (replace), whose assignments come from its predecessor. */
void companion_vfio_use_qmp(struct companion_vfio *v, struct companion_qmp *d,
                            const char *qmp_path);
/* A control command, or NULL when it is not one of ours (control.h's
 * handler: may be FERRY_DM_CONTROL_DEFERRED).  *fd: pci-attach keeps the fd
 * the client passed (the broker's ownership claim's lock, policy/owner.h)
 * while the device is assigned, and sets it to -1. */
char *companion_vfio_command(struct companion_vfio *v, struct ferry_dm_control_req *req,
                             const char *cmd, json_t *args, json_t *id, int *fd);
/*
 * Replace (devmodel/dm-replace.h, the state's PCI section): save appends
 * every assignment (host address, QEMU id, bus, addr, from the config or
 * attached at run time) and the claims, and puts the claims' lock fds in
 * fds (*n, at most max); nothing assigned and no claims: nothing appended.
 * Refused (-EAGAIN, why) while a pci-detach waits for the guest.  restore
 * (state NULL: no section) takes them over, all or nothing (-EBADMSG and
 * why for a malformed section); QEMU's devices are not touched.
 */
int companion_vfio_handover_save(struct companion_vfio *v, GByteArray *out, int *fds,
                                 unsigned max, unsigned *n, char *why, size_t len);
int companion_vfio_handover_restore(struct companion_vfio *v, const uint8_t *state, size_t len,
                                    const int *fds, unsigned n, char *why, size_t whylen);
/* Detaches still waiting are answered with an error (or dropped when their
 * client or the control socket has gone); call before companion_qmp_free. */
void companion_vfio_free(struct companion_vfio *v);

#endif
