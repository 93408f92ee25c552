// SPDX-License-Identifier: GPL-2.0-or-later
/* libferry-pci unit tests: one binary, a test case per part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check-main.h"
#include "tests/pci/test-pci.h"

static int rec_bar_remap(void *opaque, struct ferry_pci_func *fn, unsigned bar,
                         const struct ferry_pci_bar_range *old,
                         const struct ferry_pci_bar_range *new_range)
{
    struct rec *r = opaque;

    if (r->nremap < REC_MAX)
        r->remap[r->nremap++] = (struct rec_remap){ fn, bar, *old, *new_range };
    if (r->check_claims) {
        unsigned slot;

        ck_assert_uint_lt(bar, FERRY_PCI_NUM_REGIONS);
        for (slot = 0; slot < 16 && r->claims[slot].fn && r->claims[slot].fn != fn; slot++)
            ;
        ck_assert_uint_lt(slot, 16);
        r->claims[slot].fn = fn;
        /* The library must hand back exactly what we claimed before. */
        ck_assert_int_eq(old->mapped, r->claims[slot].r[bar].mapped);
        if (old->mapped)
            ck_assert_uint_eq(old->addr, r->claims[slot].r[bar].addr);
        /* And never ask for a range overlapping another claim. */
        if (new_range->mapped && r->remap_rc == 0) {
            uint64_t end = new_range->addr + new_range->size - 1;

            ck_assert_uint_ge(end, new_range->addr);
            for (unsigned s = 0; s < 16 && r->claims[s].fn; s++)
                for (unsigned b = 0; b < FERRY_PCI_NUM_REGIONS; b++) {
                    const struct ferry_pci_bar_range *o = &r->claims[s].r[b];

                    if ((s == slot && b == bar) || !o->mapped || o->io != new_range->io)
                        continue;
                    ck_assert_msg(end < o->addr || new_range->addr > o->addr + o->size - 1,
                                  "bar %u at 0x%llx overlaps claim 0x%llx", bar,
                                  (unsigned long long)new_range->addr,
                                  (unsigned long long)o->addr);
                }
        }
        r->claims[slot].r[bar] = r->remap_rc == 0 ? *new_range
                                                  : (struct ferry_pci_bar_range){ 0 };
    }
    return r->remap_rc;
}

static void rec_config_write(void *opaque, struct ferry_pci_func *fn, uint32_t reg,
                             unsigned size, uint32_t val)
{
    struct rec *r = opaque;

    ck_assert_uint_le(reg + size, FERRY_PCI_EXT_CONFIG_SIZE);
    r->ncfgw++;
}

static void rec_msi_config(void *opaque, struct ferry_pci_func *fn, unsigned vector,
                           const struct ferry_pci_msi_vector *vec)
{
    struct rec *r = opaque;

    if (r->nmsicfg < REC_MAX)
        r->msicfg[r->nmsicfg++] = (struct rec_msi){ .vector = vector, .v = *vec };
}

static void rec_msi_send(void *opaque, struct ferry_pci_func *fn, unsigned vector,
                         const struct ferry_pci_msi_msg *msg)
{
    struct rec *r = opaque;

    if (r->nsend < REC_MAX)
        r->send[r->nsend++] = (struct rec_msi){ .vector = vector, .msg = *msg };
}

static void rec_set_irq(void *opaque, uint32_t gsi, bool level)
{
    struct rec *r = opaque;

    if (r->nirq < REC_MAX) {
        r->irq[r->nirq].gsi = gsi;
        r->irq[r->nirq++].level = level;
    }
}

void rec_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct rec *r = opaque;

    r->nlog++;
    snprintf(r->lastlog, sizeof(r->lastlog), "%s", msg);
    if (getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "log: %s\n", msg);
}

const struct ferry_pci_func_ops rec_func_ops = {
    .log = rec_log,
    .bar_remap = rec_bar_remap,
    .config_write = rec_config_write,
    .msi_config = rec_msi_config,
    .msi_send = rec_msi_send,
};

const struct ferry_pci_bus_ops rec_bus_ops = {
    .log = rec_log,
    .set_irq = rec_set_irq,
};

struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof(*r));

    ck_assert_ptr_nonnull(r);
    return r;
}

struct ferry_pci_func *mkfunc(struct rec *r, uint16_t vendor, uint16_t device, uint8_t pin)
{
    struct ferry_pci_func_info info = {
        .name = "testdev", .vendor_id = vendor, .device_id = device, .revision = 3,
        .class_code = 0x020000, .subsystem_vendor_id = 0x1af4, .subsystem_id = 0x1100,
        .intx_pin = pin,
    };
    struct ferry_pci_func *fn = pci_func_new(&info, &rec_func_ops, r);

    ck_assert_ptr_nonnull(fn);
    return fn;
}

struct ferry_pci_func *mkbridge(struct rec *r)
{
    struct ferry_pci_func_info info = {
        .name = "bridge", .vendor_id = 0x1b36, .device_id = 0x0001,
        .class_code = 0x060400, .header_type = 1, .intx_pin = FERRY_PCI_INTA,
    };
    struct ferry_pci_func *fn = pci_func_new(&info, &rec_func_ops, r);

    ck_assert_ptr_nonnull(fn);
    return fn;
}

FERRY_CHECK_MAIN("pci", pci_func_tcase, pci_pcie_tcase, pci_edges_tcase, pci_msi_tcase,
                 pci_bus_tcase, pci_bridge_tcase, pci_save_tcase, pci_hostile_tcase);
