/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The [pci] group of a ferry-dm config file: PCI devices of the host that
 * the guest's QEMU gets as vfio-pci for as long as ferry-dm runs.
 *
 *     [pci]
 *     devices=0000:03:00.0;0000:00:19.0,bus=rp1,addr=0,id=nic0
 *     group=false     # prepare/release each device's whole IOMMU group
 *     force=false     # prepare even a device a host driver uses (not the root disk's)
 *     qmp=PATH        # the QEMU's QMP socket (else --qmp or [usb] qmp=)
 *
 * Each entry of devices= is a host address ([DDDD:]BB:DD.F) and optional
 * device_add options: bus= (a PCIe root port's id, for q35), addr=
 * (SLOT[.FN] on that bus) and id= (default ferry-pci-BB-DD-F).
 *
 * Program-side helper (GKeyFile): ferry-dm reads it to prepare and plug the
 * devices, `ferry pci release --config FILE` to give them back.  Not part
 * of libferry-pcihost, which uses no glib.
 */
#ifndef FERRY_PCI_CONFIG_H
#define FERRY_PCI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "pci/host/pcihost.h"

#define FERRY_PCI_CONFIG_DEVICES_MAX 32
#define FERRY_PCI_CONFIG_ID_MAX      48     /* QEMU device ids, with NUL */
#define FERRY_PCI_CONFIG_ERR_MAX     512
#define FERRY_PCI_CONFIG_QMP_MAX     108    /* sun_path */

struct ferry_pci_config_dev {
    struct ferry_pci_addr host;
    char name[FERRY_PCI_ADDR_STRLEN];      /* "dddd:bb:dd.f" */
    char id[FERRY_PCI_CONFIG_ID_MAX];
    char bus[FERRY_PCI_CONFIG_ID_MAX];     /* "" = QEMU's choice */
    char addr[8];                          /* "" = QEMU's choice */
};

struct ferry_pci_config {
    bool group, force;
    char qmp[FERRY_PCI_CONFIG_QMP_MAX];
    size_t n;
    struct ferry_pci_config_dev dev[FERRY_PCI_CONFIG_DEVICES_MAX];
};

/* Read FILE's [pci] group into c (c->n = 0 when there is none).  0 or
 * -errno with a message naming the file, the key and the value in err. */
int pcihost_config_load(const char *file, struct ferry_pci_config *c, char *err,
                          size_t errlen);

/* One devices= entry ("BDF[,bus=B][,addr=A][,id=ID]"), also what a control
 * command's arguments are checked with: 0 or -EINVAL, the reason (without
 * file or key) in err. */
int pcihost_config_parse_dev(const char *entry, struct ferry_pci_config_dev *d, char *err,
                               size_t errlen);

/* A QEMU id, bus name: [A-Za-z][A-Za-z0-9._-]*, shorter than ID_MAX. */
bool pcihost_config_id_valid(const char *s);
/* device_add's addr: SLOT[.FN], hex, slot < 0x20, fn < 8 (optional 0x). */
bool pcihost_config_addr_valid(const char *s);
/* The id a device gets when none is given: ferry-pci-BB-DD-F. */
void pcihost_config_default_id(const struct ferry_pci_addr *a, char *buf, size_t len);

#endif
