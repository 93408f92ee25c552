/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libferry-policy's files share this: host protection found by discovery. */
#ifndef FERRY_POLICY_INTERNAL_H
#define FERRY_POLICY_INTERNAL_H

#include <glib.h>

/* kind "pci" (id a BDF) or "usb" (id a port path) -> why (g_strdup'd). */
struct policy_host {
    GHashTable *pci;
    GHashTable *usb;
    GPtrArray *notes;       /* what discovery could not read (char *) */
};

void policy_host_init(struct policy_host *h);
void policy_host_clear(struct policy_host *h);
/* Everything the host stands on, under sysfs and proc. */
void policy_host_discover(struct policy_host *h, const char *sysfs, const char *proc);
/* A sysfs file's first line (trimmed), or NULL. */
char *policy_sysfs_read(const char *sysfs, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The IOMMU group of a PCI device, -1 if none. */
int policy_pci_group(const char *sysfs, const char *bdf);

#endif
