/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared parts of the libferry-pci unit tests: recording callbacks. */
#ifndef FERRY_TEST_PCI_H
#define FERRY_TEST_PCI_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci/pci.h"

#define REC_MAX 4096

struct rec_remap {
    struct ferry_pci_func *fn;
    unsigned bar;
    struct ferry_pci_bar_range old, new_range;
};

struct rec_msi {
    unsigned vector;
    struct ferry_pci_msi_vector v;
    struct ferry_pci_msi_msg msg;
};

/* Everything the callbacks saw; one per test. */
struct rec {
    unsigned nremap, nmsicfg, nsend, nirq, nlog, ncfgw;
    struct rec_remap remap[REC_MAX];
    struct rec_msi msicfg[REC_MAX];
    struct rec_msi send[REC_MAX];
    struct { uint32_t gsi; bool level; } irq[REC_MAX];
    int remap_rc;                   /* what bar_remap returns */
    bool check_claims;              /* verify old == what was claimed */
    char lastlog[512];
    /* Claims as the device model would hold them: per function slot, per BAR. */
    struct { struct ferry_pci_func *fn; struct ferry_pci_bar_range r[FERRY_PCI_NUM_REGIONS]; }
        claims[16];
};

extern const struct ferry_pci_func_ops rec_func_ops;
extern const struct ferry_pci_bus_ops rec_bus_ops;

struct rec *rec_new(void);
void rec_log(void *opaque, enum ferry_log_level level, const char *msg);

/* A type-0 function with the recorder as opaque. */
struct ferry_pci_func *mkfunc(struct rec *r, uint16_t vendor, uint16_t device, uint8_t pin);
struct ferry_pci_func *mkbridge(struct rec *r);

TCase *pci_func_tcase(void);
TCase *pci_pcie_tcase(void);
TCase *pci_edges_tcase(void);
TCase *pci_msi_tcase(void);
TCase *pci_bus_tcase(void);
TCase *pci_bridge_tcase(void);
TCase *pci_hostile_tcase(void);
TCase *pci_save_tcase(void);

#endif
