/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to the framework (dm.c, dm-pci.c). */
#ifndef FERRY_DM_INTERNAL_H
#define FERRY_DM_INTERNAL_H

#include "devmodel/dm.h"

/* The device owns p from now on: destroyed (unplugged) before its regions go. */
void ferry_dm_device_track_pci(struct ferry_dm_device *dev, struct ferry_dm_pci *p);
void ferry_dm_pci_destroy(struct ferry_dm_pci *p);
/* bus 0 devfn holds a pci/ function (dm-pci.c; keeps dm.c free of pci.h). */
bool ferry_dm_pci_bus_has(struct ferry_pci_bus *bus, unsigned devfn);

#endif
