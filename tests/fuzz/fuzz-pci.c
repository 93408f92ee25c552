// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for libferry-pci: the input is a stream of guest
 * accesses (config by SBDF, CF8/CFC, ECAM, MSI-X MMIO) and device events
 * (INTx, MSI, reset, save/restore of a tampered blob, unplug/replug)
 * against a bus with a host bridge, a device with every BAR kind, MSI,
 * MSI-X and extended capabilities, a second function, a bridge and a
 * function behind it.  Besides memory errors it aborts when the
 * library breaks its remap contract: handing back a range other than the
 * one claimed, or asking for one that overlaps another claim.
 *
 * Built with clang -fsanitize=fuzzer when -Dfuzzing=enabled; in every
 * build standalone.c replays tests/fuzz/corpus/pci (inputs libFuzzer found,
 * merged to the largest 32) plus seeded variations as the unit test
 * fuzz-corpus-pci.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFUNCS 4     /* dev, dev1, bridge, child behind the bridge */

struct fuzz_state {
    struct ferry_pci_func *fn[NFUNCS];
    struct ferry_pci_bar_range claim[NFUNCS][FERRY_PCI_NUM_REGIONS];
    unsigned gsi_level[FERRY_PCI_INTX_GSI_COUNT];
};

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static int fuzz_remap(void *opaque, struct ferry_pci_func *fn, unsigned bar,
                      const struct ferry_pci_bar_range *old,
                      const struct ferry_pci_bar_range *nr)
{
    struct fuzz_state *st = opaque;
    unsigned i;

    for (i = 0; i < NFUNCS && st->fn[i] != fn; i++)
        ;
    FUZZ_CHECK(i < NFUNCS && bar < FERRY_PCI_NUM_REGIONS);
    FUZZ_CHECK(old->mapped == st->claim[i][bar].mapped);
    FUZZ_CHECK(!old->mapped || old->addr == st->claim[i][bar].addr);
    if (nr->mapped) {
        uint64_t end = nr->addr + nr->size - 1;

        FUZZ_CHECK(end >= nr->addr);
        for (unsigned f = 0; f < NFUNCS; f++)
            for (unsigned b = 0; b < FERRY_PCI_NUM_REGIONS; b++) {
                const struct ferry_pci_bar_range *o = &st->claim[f][b];

                if ((f == i && b == bar) || !o->mapped || o->io != nr->io)
                    continue;
                FUZZ_CHECK(end < o->addr || nr->addr > o->addr + o->size - 1);
            }
    }
    st->claim[i][bar] = *nr;
    return 0;
}

static void fuzz_set_irq(void *opaque, uint32_t gsi, bool level)
{
    struct fuzz_state *st = opaque;

    FUZZ_CHECK(gsi >= FERRY_PCI_INTX_GSI_BASE &&
               gsi < FERRY_PCI_INTX_GSI_BASE + FERRY_PCI_INTX_GSI_COUNT);
    /* Only transitions are reported. */
    FUZZ_CHECK(st->gsi_level[gsi - FERRY_PCI_INTX_GSI_BASE] != level);
    st->gsi_level[gsi - FERRY_PCI_INTX_GSI_BASE] = level;
}

static const struct ferry_pci_func_ops fuzz_func_ops = { .bar_remap = fuzz_remap };
static const struct ferry_pci_bus_ops fuzz_bus_ops = { .set_irq = fuzz_set_irq };

/* Reads n little-endian bytes from the input; zeros once it runs out. */
static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n && *p < end; i++, (*p)++)
        v |= (uint64_t)**p << (8 * i);
    return v;
}

static int setup(struct fuzz_state *st, struct ferry_pci_bus **busp)
{
    struct ferry_pci_bus_config cfg = { .host = FERRY_PCI_HOST_Q35, .ecam_buses = 4 };
    struct ferry_pci_func_info dev = {
        .name = "fuzz-dev", .vendor_id = 0x1af4, .device_id = 0x1041,
        .class_code = 0x020000, .intx_pin = FERRY_PCI_INTA,
    };
    struct ferry_pci_func_info dev1 = dev;
    struct ferry_pci_func_info br = {
        .name = "fuzz-bridge", .vendor_id = 0x1b36, .device_id = 0x0001,
        .class_code = 0x060400, .header_type = 1, .intx_pin = FERRY_PCI_INTA,
    };
    struct ferry_pci_func_info child = dev;
    struct ferry_pci_bus *bus = pci_bus_new(&cfg, &fuzz_bus_ops, st);
    int rc = 0;

    if (!bus)
        return -1;
    dev1.intx_pin = FERRY_PCI_INTB;
    child.intx_pin = FERRY_PCI_INTC;
    st->fn[0] = pci_func_new(&dev, &fuzz_func_ops, st);
    st->fn[1] = pci_func_new(&dev1, &fuzz_func_ops, st);
    st->fn[2] = pci_func_new(&br, &fuzz_func_ops, st);
    st->fn[3] = pci_func_new(&child, &fuzz_func_ops, st);
    for (unsigned i = 0; i < NFUNCS; i++)
        FUZZ_CHECK(st->fn[i]);
    rc |= pci_func_bar_declare(st->fn[0], 0, FERRY_PCI_BAR_IO, 64);
    rc |= pci_func_bar_declare(st->fn[0], 1, FERRY_PCI_BAR_MEM32, 0x4000);
    rc |= pci_func_bar_declare(st->fn[0], 2, FERRY_PCI_BAR_MEM64 | FERRY_PCI_BAR_PREFETCH,
                               0x10000);
    rc |= pci_func_bar_declare(st->fn[0], 4, FERRY_PCI_BAR_MEM64, 1ull << 32);
    rc |= pci_func_rom_declare(st->fn[0], 0x10000);
    rc |= pci_func_msi_add(st->fn[0], 32, FERRY_PCI_MSI_64BIT | FERRY_PCI_MSI_MASKABLE, 0) < 0;
    rc |= pci_func_msix_add(st->fn[0], 64, 1, 0, 1, 0x2000, 0) < 0;
    rc |= pci_func_ext_cap_add(st->fn[0], 0x0b, 1, 0x20, 0) < 0;
    rc |= pci_func_msi_add(st->fn[1], 1, 0, 0) < 0;
    rc |= pci_func_bar_declare(st->fn[1], 0, FERRY_PCI_BAR_MEM32, 0x1000);
    rc |= pci_func_bar_declare(st->fn[2], 0, FERRY_PCI_BAR_MEM64, 0x1000);
    rc |= pci_bus_reserve(bus, false, 0, 1ull << 30, "ram");
    rc |= pci_bus_add(bus, st->fn[0], FERRY_PCI_DEVFN(1, 0));
    rc |= pci_bus_add(bus, st->fn[1], FERRY_PCI_DEVFN(1, 1));
    rc |= pci_bus_add(bus, st->fn[2], FERRY_PCI_DEVFN(2, 0));
    rc |= pci_func_bar_declare(st->fn[3], 0, FERRY_PCI_BAR_MEM32, 0x2000);
    rc |= pci_bridge_add(st->fn[2], st->fn[3], 0);
    FUZZ_CHECK(rc == 0);
    *busp = bus;
    return 0;
}

/*
 * A migration stream is peer data too: save fn, overwrite a few bytes of
 * the blob from the input (header fields included), restore it.
 */
static void save_mutate_restore(struct ferry_pci_func *fn, const uint8_t **p,
                                const uint8_t *end)
{
    size_t n = pci_func_save_size(fn);
    uint8_t *blob = malloc(n);
    unsigned edits = (unsigned)take(p, end, 1) % 8;

    if (!blob)
        return;
    FUZZ_CHECK(pci_func_save(fn, blob, n) == 0);
    for (unsigned k = 0; k < edits; k++) {
        size_t at = (size_t)take(p, end, 2) % n;

        blob[at] = (uint8_t)take(p, end, 1);
    }
    /* Either it restores or it is refused as a whole. */
    int rc = pci_func_restore(fn, blob, take(p, end, 1) == 0xff ? n - 1 : n);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sbdfs[8] = { 0x00, 0x08, 0x09, 0x10, 0x100, 0x18, 0x200, 0x10008 };
    const uint8_t *p = data, *end = data + size;
    struct fuzz_state st;
    struct ferry_pci_bus *bus = NULL;
    uint64_t val = 0;

    memset(&st, 0, sizeof(st));
    if (setup(&st, &bus) < 0)
        return 0;
    while (p < end) {
        unsigned op = (unsigned)take(&p, end, 1);
        uint32_t sbdf = sbdfs[take(&p, end, 1) % 8];
        uint32_t reg = (uint32_t)take(&p, end, 2) & 0x1fff;
        unsigned sz = (unsigned)take(&p, end, 1) % 10;
        struct ferry_pci_func *fn = st.fn[(op >> 4) % NFUNCS];

        switch (op % 12) {
        case 0:
            pci_bus_config_write(bus, sbdf, reg, sz, (uint32_t)take(&p, end, 4));
            break;
        case 1:
            (void)pci_bus_config_read(bus, sbdf, reg, sz);
            break;
        case 2:
            pci_bus_pio_write(bus, (uint16_t)(0xcf4 + reg % 16), sz, (uint32_t)take(&p, end, 4));
            break;
        case 3:
            (void)pci_bus_pio_read(bus, (uint16_t)(0xcf4 + reg % 16), sz);
            break;
        case 4:
            pci_bus_ecam_write(bus, (uint64_t)sbdf << 12 | reg, sz, take(&p, end, 8));
            break;
        case 5:
            (void)pci_bus_ecam_read(bus, take(&p, end, 4) % 0x410000, sz);
            break;
        case 6:
            (void)pci_func_msix_mmio_write(fn, sbdf % 8, reg, sz, take(&p, end, 8));
            break;
        case 7:
            (void)pci_func_msix_mmio_read(fn, sbdf % 8, reg, sz, &val);
            break;
        case 8:
            pci_func_set_irq(fn, reg & 1);
            break;
        case 9:
            (void)pci_func_msi_notify(fn, reg % 80);
            break;
        case 10:
            if (reg % 16 == 0)
                pci_func_reset(fn);
            else if (reg % 16 == 1)
                save_mutate_restore(fn, &p, end);
            break;
        case 11:
            /* Unplug and replug at the same place. */
            if (reg % 16 == 0 && fn == st.fn[2]) {
                FUZZ_CHECK(pci_bus_remove(bus, fn) == -EBUSY);
            } else if (reg % 16 == 0) {
                int64_t at = pci_func_sbdf(fn);

                FUZZ_CHECK(at >= 0 || (fn == st.fn[3] && at == -ENXIO));
                FUZZ_CHECK(pci_bus_remove(bus, fn) == 0);
                if (fn == st.fn[3])
                    FUZZ_CHECK(pci_bridge_add(st.fn[2], fn, 0) == 0);
                else
                    FUZZ_CHECK(pci_bus_add(bus, fn, (uint8_t)at) == 0);
            }
            break;
        }
    }
    /* Identity is read-only whatever happened. */
    FUZZ_CHECK(pci_bus_config_read(bus, 0x08, 0, 4) == 0x10411af4);
    FUZZ_CHECK(pci_bus_config_read(bus, 0, 0, 4) == 0x29c08086);
    for (unsigned i = NFUNCS; i-- > 0;)
        FUZZ_CHECK(pci_bus_remove(bus, st.fn[i]) == 0);
    for (unsigned i = 0; i < NFUNCS; i++) {
        for (unsigned b = 0; b < FERRY_PCI_NUM_REGIONS; b++)
            FUZZ_CHECK(!st.claim[i][b].mapped);
        pci_func_free(st.fn[i]);
    }
    for (unsigned i = 0; i < FERRY_PCI_INTX_GSI_COUNT; i++)
        FUZZ_CHECK(!st.gsi_level[i]);
    pci_bus_free(bus);
    return 0;
}
