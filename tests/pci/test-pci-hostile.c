// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Hostile guests: every register offset with every access size through
 * each way in (bus config, CF8/CFC, ECAM, MSI-X MMIO), random values from
 * a fixed seed.  The recorder checks on every remap that the library hands
 * back exactly what was claimed and never asks for an overlapping range;
 * ASan/UBSan catch any out-of-bounds access.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/pci/test-pci.h"

#define SEED 0x5eed0f0e77e11ull

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/*
 * Pure random registers rarely hit the few that matter (command, BARs,
 * MSI/MSI-X control), so half of the picks come from those.
 */
static uint32_t pick_reg(uint64_t *s)
{
    static const uint16_t hot[] = {
        0x04, 0x04, 0x06, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x38, 0x3c,
        0x40, 0x42, 0x44, 0x48, 0x4c, 0x50, 0x54, 0x58, 0x5c, 0x60, 0x64, 0x68,
        0x6c, 0x70, 0x100, 0xf00, 0xffc, 0xfff,
    };
    uint64_t v = xorshift(s);

    if (v & 1)
        return hot[(v >> 1) % (sizeof(hot) / sizeof(hot[0]))] + ((v >> 16) & 1 ? 0 : (v >> 17) % 4);
    return (uint32_t)((v >> 1) % 0x1010);
}

static unsigned pick_size(uint64_t *s)
{
    static const unsigned sizes[] = { 1, 2, 4, 4, 4, 4, 0, 3, 8, 9 };

    return sizes[xorshift(s) % 10];
}

static uint64_t pick_val(uint64_t *s)
{
    uint64_t v = xorshift(s);

    switch (v % 8) {
    case 0: return UINT64_MAX;
    case 1: return 0;
    case 2: return 0x7;         /* command: I/O, memory, bus master */
    default: return xorshift(s);
    }
}

static uint32_t pick_sbdf(uint64_t *s)
{
    static const uint32_t sbdfs[] = { 0x00, 0x08, 0x08, 0x08, 0x09, 0x10, 0x0a, 0x18, 0x108,
                                      0x100, 0x100, 0x200 };

    return sbdfs[xorshift(s) % (sizeof(sbdfs) / sizeof(sbdfs[0]))];
}

struct rig {
    struct rec *r;
    struct ferry_pci_bus *bus;
    struct ferry_pci_func *dev, *dev1, *bridge, *child;
};

static void rig_init(struct rig *g)
{
    struct ferry_pci_bus_config cfg = { .host = FERRY_PCI_HOST_Q35, .ecam_buses = 4 };

    g->r = rec_new();
    g->r->check_claims = true;
    g->bus = pci_bus_new(&cfg, &rec_bus_ops, g->r);
    ck_assert_ptr_nonnull(g->bus);
    g->dev = mkfunc(g->r, 0x1af4, 0x1041, FERRY_PCI_INTA);
    g->dev1 = mkfunc(g->r, 0x1af4, 0x1042, FERRY_PCI_INTB);
    g->bridge = mkbridge(g->r);
    g->child = mkfunc(g->r, 0x1af4, 0x1043, FERRY_PCI_INTC);
    ck_assert_int_eq(pci_func_bar_declare(g->dev, 0, FERRY_PCI_BAR_IO, 64), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->dev, 1, FERRY_PCI_BAR_MEM32, 0x4000), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->dev, 2, FERRY_PCI_BAR_MEM64 |
                                                     FERRY_PCI_BAR_PREFETCH, 0x10000), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->dev, 4, FERRY_PCI_BAR_MEM64, 1ull << 32), 0);
    ck_assert_int_eq(pci_func_rom_declare(g->dev, 0x10000), 0);
    ck_assert_int_gt(pci_func_msi_add(g->dev, 32, FERRY_PCI_MSI_64BIT |
                                                 FERRY_PCI_MSI_MASKABLE, 0), 0);
    ck_assert_int_gt(pci_func_msix_add(g->dev, 64, 1, 0, 1, 0x2000, 0), 0);
    ck_assert_int_gt(pci_func_cap_add(g->dev, FERRY_PCI_CAP_ID_VNDR, 16, 0), 0);
    ck_assert_int_eq(pci_func_ext_cap_add(g->dev, 0x0b, 1, 0x20, 0), 0x100);
    ck_assert_int_gt(pci_func_ext_cap_add(g->dev, 0x01, 2, 0x40, 0xf00), 0);
    ck_assert_int_gt(pci_func_msi_add(g->dev1, 1, 0, 0), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->dev1, 0, FERRY_PCI_BAR_MEM32, 0x1000), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->bridge, 0, FERRY_PCI_BAR_MEM64, 0x1000), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->child, 0, FERRY_PCI_BAR_MEM32, 0x2000), 0);
    ck_assert_int_eq(pci_func_bar_declare(g->child, 1, FERRY_PCI_BAR_IO, 0x10), 0);
    ck_assert_int_eq(pci_bus_reserve(g->bus, false, 0, 1ull << 30, "ram"), 0);
    ck_assert_int_eq(pci_bus_add(g->bus, g->dev, FERRY_PCI_DEVFN(1, 0)), 0);
    ck_assert_int_eq(pci_bus_add(g->bus, g->dev1, FERRY_PCI_DEVFN(1, 1)), 0);
    ck_assert_int_eq(pci_bus_add(g->bus, g->bridge, FERRY_PCI_DEVFN(2, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(g->bridge, g->child, 0), 0);
}

static void rig_check_and_free(struct rig *g)
{
    int levels[FERRY_PCI_INTX_GSI_COUNT] = { 0 };

    /* The traffic reached the interesting paths. */
    if (getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "remaps=%u msi-config=%u sends=%u irqs=%u logs=%u\n", g->r->nremap,
                g->r->nmsicfg, g->r->nsend, g->r->nirq, g->r->nlog);
    ck_assert_uint_gt(g->r->nremap, 0);
    /* Identity survived. */
    ck_assert_uint_eq(pci_bus_config_read(g->bus, 0x08, 0, 4), 0x10411af4);
    ck_assert_uint_eq(pci_bus_config_read(g->bus, 0x09, 0, 4), 0x10421af4);
    ck_assert_uint_eq(pci_bus_config_read(g->bus, 0x10, 0, 4), 0x00011b36);
    ck_assert_uint_eq(pci_bus_config_read(g->bus, 0, 0, 4), 0x29c08086);
    ck_assert_uint_eq(pci_bus_config_read(g->bus, 0x18, 0, 4), 0xffffffff);

    ck_assert_int_eq(pci_bus_remove(g->bus, g->bridge), -EBUSY);
    ck_assert_int_eq(pci_bus_remove(g->bus, g->child), 0);
    ck_assert_int_eq(pci_bus_remove(g->bus, g->dev1), 0);
    ck_assert_int_eq(pci_bus_remove(g->bus, g->dev), 0);
    ck_assert_int_eq(pci_bus_remove(g->bus, g->bridge), 0);
    /* Every claim released, every GSI back low. */
    for (unsigned s = 0; s < 16; s++)
        for (unsigned b = 0; b < FERRY_PCI_NUM_REGIONS; b++)
            ck_assert(!g->r->claims[s].r[b].mapped);
    for (unsigned i = 0; i < g->r->nirq && i < REC_MAX; i++)
        levels[g->r->irq[i].gsi - FERRY_PCI_INTX_GSI_BASE] = g->r->irq[i].level;
    for (unsigned i = 0; i < FERRY_PCI_INTX_GSI_COUNT; i++)
        ck_assert_int_eq(levels[i], 0);
    pci_bus_free(g->bus);
    pci_func_free(g->dev);
    pci_func_free(g->dev1);
    pci_func_free(g->bridge);
    pci_func_free(g->child);
    free(g->r);
}

/* Random side traffic from the device model: IRQs, MSIs, MSI-X MMIO. */
static void device_noise(struct rig *g, uint64_t *s)
{
    uint64_t v = xorshift(s), val = 0;

    switch (v % 6) {
    case 0:
        pci_func_set_irq((v >> 8) & 1 ? g->dev : g->dev1, (v >> 9) & 1);
        break;
    case 1:
        (void)pci_func_msi_notify((v >> 8) & 1 ? g->dev : g->dev1, (unsigned)(v >> 16) % 80);
        break;
    case 2:
        (void)pci_func_msix_mmio_read(g->dev, (unsigned)(v >> 8) % 8, (v >> 16) % 0x2100,
                                      (unsigned)(v >> 40) % 10, &val);
        break;
    case 3:
        (void)pci_func_msix_mmio_write(g->dev, (unsigned)(v >> 8) % 8, (v >> 16) % 0x2100,
                                       (unsigned)(v >> 40) % 10, xorshift(s));
        break;
    default:
        break;
    }
}

START_TEST(test_every_offset_and_size_config)
{
    struct rig g;
    uint64_t s = SEED;
    const uint32_t sbdfs[] = { 0x00, 0x08, 0x09, 0x10, 0x0a, 0x18, 0x108, 0x10008, 0x100 };

    rig_init(&g);
    /* Bus 1 behind the bridge, until random writes renumber it. */
    pci_bus_config_write(g.bus, 0x10, FERRY_PCI_PRIMARY_BUS, 4, 0x00010100);
    for (unsigned k = 0; k < sizeof(sbdfs) / sizeof(sbdfs[0]); k++) {
        for (uint32_t reg = 0; reg < 0x1010; reg++) {
            for (unsigned size = 0; size <= 9; size++) {
                uint32_t v = pci_bus_config_read(g.bus, sbdfs[k], reg, size);

                if (sbdfs[k] == 0x0a || sbdfs[k] == 0x18 || sbdfs[k] >= 0x108)
                    ck_assert_uint_eq(v, size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff);
                /* Bytes past 4 KiB read as ones. */
                if (reg + size > 0x1000 && (size == 1 || size == 2 || size == 4)) {
                    unsigned inside = reg < 0x1000 ? 0x1000 - reg : 0;

                    ck_assert_uint_eq(v >> (8 * inside),
                                      0xffffffffu >> (8 * (4 - (size - inside))));
                }
                /* Identity registers included: they are read-only. */
                pci_bus_config_write(g.bus, sbdfs[k], reg, size, (uint32_t)xorshift(&s));
                device_noise(&g, &s);
            }
        }
        /* Everything again with ones, zeros: sizing and decode toggles. */
        for (uint32_t reg = 0x04; reg < 0x40; reg += 4) {
            pci_bus_config_write(g.bus, sbdfs[k], reg, 4, 0xffffffff);
            pci_bus_config_write(g.bus, sbdfs[k], reg, 4, 0);
            pci_bus_config_write(g.bus, sbdfs[k], reg, 4, (uint32_t)xorshift(&s));
        }
    }
    rig_check_and_free(&g);
}
END_TEST

START_TEST(test_every_port_and_size_cf8)
{
    struct rig g;
    uint64_t s = SEED ^ 0xcf8;

    rig_init(&g);
    for (unsigned iter = 0; iter < 40000; iter++) {
        uint64_t v = xorshift(&s);
        uint16_t port = (uint16_t)(0xcf4 + v % 16);
        unsigned size = pick_size(&s);
        uint32_t reg = pick_reg(&s) & 0xff;
        uint32_t cf8 = 0x80000000u | pick_sbdf(&s) << 8 | (reg & 0xfc);

        if (!(v & (1ull << 40)))
            cf8 = (uint32_t)xorshift(&s);   /* anything at all */
        if ((v >> 41) & 1)
            port = (uint16_t)(0xcfc + (reg & 3));
        pci_bus_pio_write(g.bus, 0xcf8, 4, cf8);
        if (v & (1ull << 42))
            (void)pci_bus_pio_read(g.bus, port, size);
        else
            pci_bus_pio_write(g.bus, port, size, (uint32_t)pick_val(&s));
        device_noise(&g, &s);
    }
    rig_check_and_free(&g);
}
END_TEST

START_TEST(test_ecam_offsets_and_sizes)
{
    struct rig g;
    uint64_t s = SEED ^ 0xeca;
    const uint64_t edges[] = { 0, 0xffc, 0xffd, 0xffe, 0xfff, 0x7ffc, 0x8000, 0x8ffe, 0x10ffc,
                               0x3ffffc, 0x3ffffe, 0x3fffff, 0x400000, UINT64_MAX - 7,
                               UINT64_MAX - 3, UINT64_MAX };

    rig_init(&g);
    for (unsigned e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
        for (unsigned size = 0; size <= 16; size++) {
            (void)pci_bus_ecam_read(g.bus, edges[e], size);
            pci_bus_ecam_write(g.bus, edges[e], size, xorshift(&s));
        }
    for (unsigned iter = 0; iter < 40000; iter++) {
        uint64_t v = xorshift(&s);
        uint64_t off = (uint64_t)pick_sbdf(&s) << 12 | pick_reg(&s);
        unsigned size = pick_size(&s);

        if ((v >> 32) & 1)
            off = v % 0x410000;             /* anywhere in (and past) the 4-bus window */
        if (v & (1ull << 60))
            (void)pci_bus_ecam_read(g.bus, off, size);
        else
            pci_bus_ecam_write(g.bus, off, size, pick_val(&s));
        device_noise(&g, &s);
    }
    rig_check_and_free(&g);
}
END_TEST

START_TEST(test_ioreq_garbage)
{
    struct rig g;
    uint64_t s = SEED ^ 0x10;

    rig_init(&g);
    for (unsigned iter = 0; iter < 40000; iter++) {
        ioreq_t req;
        uint64_t v = xorshift(&s);

        memset(&req, 0, sizeof(req));
        req.addr = IOREQ_PCI_ADDR(pick_sbdf(&s), pick_reg(&s));
        if (v & (1ull << 50))
            req.addr = xorshift(&s);
        req.data = pick_val(&s);
        req.size = pick_size(&s);
        req.count = (v >> 45) & 1 ? 1 : (uint32_t)(v >> 46);
        req.dir = (v >> 51) & 1;
        req.data_is_ptr = (v >> 52) & 1;
        req.type = (v >> 53) & 1 ? IOREQ_TYPE_PCI_CONFIG : (uint8_t)(v >> 54);
        (void)pci_bus_handle_ioreq(g.bus, &req);
        device_noise(&g, &s);
    }
    rig_check_and_free(&g);
}
END_TEST

TCase *pci_hostile_tcase(void)
{
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_every_offset_and_size_config);
    tcase_add_test(tc, test_every_port_and_size_cf8);
    tcase_add_test(tc, test_ecam_offsets_and_sizes);
    tcase_add_test(tc, test_ioreq_garbage);
    return tc;
}
