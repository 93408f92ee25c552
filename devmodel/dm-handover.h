/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fds of devices and interrupt lines across a replace of ferry-dm
 * (docs/ferry-dm.md, "Replacing ferry-dm"): what the predecessor hands
 * over besides the ioreq registration, the control socket and the
 * chardevs, and where the successor finds them.
 *
 *   DM_STATE_FD_DEVICE    a device's own fds (its type's handover_fds), by
 *                         device id (20 bits of its CRC-32) and slot (0-15);
 *   DM_STATE_FD_MSI       an MSI message's routed eventfd, by slot (the
 *                         message itself is in the state's IRQS section);
 *   DM_STATE_FD_IRQFD     a GSI's eventfd, registered with the hypervisor as
 *   DM_STATE_FD_RESAMPLE  an irqfd, and a level GSI's resample eventfd: the
 *                         successor keeps the registration (it does not
 *                         register again), so an interrupt signalled or
 *                         acknowledged during the switch is neither lost nor
 *                         doubled.
 */
#ifndef FERRY_DM_HANDOVER_H
#define FERRY_DM_HANDOVER_H

#include <stdint.h>

#include <glib.h>

#include "devmodel/dm.h"

/*
 * Predecessor: the fds to pass and their roles (at most max); the count,
 * or -errno with a sentence in why (nothing changed).  The devices' own
 * (DM_STATE_FD_DEVICE) go while the predecessor still serves, for the
 * successor to add its devices with (a device refused: nothing changed;
 * dm_handover_abort undoes the others); the interrupt lines' (IRQFD,
 * RESAMPLE, MSI: the guest may route an MSI any time) when it stops.
 */
FERRY_MUST_CHECK int dm_handover_export_devices(struct ferry_dm *dm, int *fds, uint32_t *roles,
                                                unsigned max, char *why, size_t why_len);
FERRY_MUST_CHECK int dm_handover_export_irqs(struct ferry_dm *dm, int *fds, uint32_t *roles,
                                             unsigned max, char *why, size_t why_len);
/* Changes whenever a device is added or removed: the devices' fds passed early still hold. */
uint64_t dm_handover_generation(const struct ferry_dm *dm);
/* Predecessor: the replace failed; the devices keep what they handed over. */
void dm_handover_abort(struct ferry_dm *dm);
/*
 * Successor, before the devices are added: the fds of those roles (now the
 * stash's; on -EINVAL still the caller's).
 */
FERRY_MUST_CHECK int dm_handover_inherit(const int *fds, const uint32_t *roles, unsigned n);
/* Successor, after the take-over: close what no device or line took. */
void dm_handover_inherit_done(void);
/*
 * The MSI messages with a routed eventfd (the state's IRQS section): the
 * predecessor writes them; the successor takes them, with the eventfds
 * passed, instead of routing them again (the hypervisor's routes stay).
 * load: 0 or -EBADMSG with a sentence in why.
 */
void dm_handover_save_irqs(struct ferry_dm *dm, GByteArray *out);
FERRY_MUST_CHECK int dm_handover_load_irqs(struct ferry_dm *dm, const uint8_t *buf, size_t len,
                                           char *why, size_t why_len);

#endif
