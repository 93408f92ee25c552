// SPDX-License-Identifier: GPL-2.0-or-later
/* The bus: host bridge, CF8/CFC, ECAM, ioreqs, multi-function, INTx, conflicts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/pci/test-pci.h"

#define CF8(bus, dev, fn, reg) \
    (0x80000000u | (bus) << 16 | (dev) << 11 | (fn) << 8 | (reg))

static struct ferry_pci_bus *mkbus(struct rec *r, enum ferry_pci_host_model host)
{
    struct ferry_pci_bus_config cfg = { .host = host, .name = "test" };
    struct ferry_pci_bus *bus = pci_bus_new(&cfg, &rec_bus_ops, r);

    ck_assert_ptr_nonnull(bus);
    return bus;
}

static uint32_t cfg_rd(struct ferry_pci_bus *bus, uint32_t cf8, unsigned off, unsigned size)
{
    pci_bus_pio_write(bus, FERRY_PCI_CF8_PORT, 4, cf8);
    return pci_bus_pio_read(bus, (uint16_t)(FERRY_PCI_CFC_PORT + off), size);
}

static void cfg_wr(struct ferry_pci_bus *bus, uint32_t cf8, unsigned off, unsigned size,
                   uint32_t val)
{
    pci_bus_pio_write(bus, FERRY_PCI_CF8_PORT, 4, cf8);
    pci_bus_pio_write(bus, (uint16_t)(FERRY_PCI_CFC_PORT + off), size, val);
}

START_TEST(test_host_bridge_cf8)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);

    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 0, 4), 0x12378086);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 8), 0, 4) >> 8, 0x060000);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0xc), 2, 1), 0);    /* single function */
    ck_assert_ptr_nonnull(pci_bus_host_bridge(bus));
    ck_assert_int_eq(pci_func_sbdf(pci_bus_host_bridge(bus)), 0);
    ck_assert_int_eq(pci_bus_remove(bus, pci_bus_host_bridge(bus)), -EPERM);
    pci_bus_free(bus);

    bus = mkbus(r, FERRY_PCI_HOST_Q35);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 0, 4), 0x29c08086);
    pci_bus_free(bus);

    struct ferry_pci_bus_config bad = { .host = 7 };
    ck_assert_ptr_null(pci_bus_new(&bad, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    bad = (struct ferry_pci_bus_config){ .ecam_buses = 257 };
    ck_assert_ptr_null(pci_bus_new(&bad, NULL, NULL));
    bus = pci_bus_new(NULL, NULL, NULL);
    ck_assert_ptr_nonnull(bus);
    ck_assert_uint_eq(pci_bus_config_read(bus, 0, 0, 2), 0x8086);
    pci_bus_free(bus);
    pci_bus_free(NULL);
    free(r);
}
END_TEST

START_TEST(test_cf8_latch_and_partial_accesses)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);

    ck_assert_int_eq(pci_func_set_masks(fn, 0x80, 4, 0xffffffff, 0), 0);
    ck_assert_int_eq(pci_bus_add(bus, fn, FERRY_PCI_DEVFN(3, 0)), 0);

    /* The latch reads back, without bits 1:0. */
    pci_bus_pio_write(bus, 0xcf8, 4, 0x80001237);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcf8, 4), 0x80001234);
    /* Narrow accesses to 0xcf8..0xcfb are not the latch. */
    pci_bus_pio_write(bus, 0xcf8, 1, 0);
    pci_bus_pio_write(bus, 0xcfa, 2, 0);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcf8, 4), 0x80001234);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcf8, 2), 0xffff);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcf9, 1), 0xff);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcf7, 4), 0xffffffff);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xd00, 1), 0xff);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcfc, 3), 0xffffffff);
    ck_assert_uint_eq(pci_bus_pio_read(bus, 0xcfc, 0), 0xffffffff);

    /* Enable bit clear: not a config cycle. */
    ck_assert_uint_eq(cfg_rd(bus, 0x00000000, 0, 4), 0xffffffff);
    cfg_wr(bus, 0x00001880, 0, 4, 0x12345678);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x80), 0, 4), 0);

    /* Sub-dword reads at each offset of the data window. */
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 0, 1), 0x86);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 1, 1), 0x80);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 2, 2), 0x1237);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 1, 2), 0x3780);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 3, 1), 0x12);
    /* Running past 0xcff: the bytes beyond read as ones. */
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 3, 4), 0xffffff12);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 2, 4), 0xffff1237);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 0, 0, 0), 3, 2), 0xff12);

    /* Writes the same way. */
    cfg_wr(bus, CF8(0, 3, 0, 0x80), 0, 4, 0x11223344);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x80), 0, 4), 0x11223344);
    cfg_wr(bus, CF8(0, 3, 0, 0x80), 2, 4, 0xaabbccdd);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x80), 0, 4), 0xccdd3344);
    cfg_wr(bus, CF8(0, 3, 0, 0x80), 1, 2, 0x5566);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x80), 0, 4), 0xcc556644);
    cfg_wr(bus, CF8(0, 3, 0, 0x80), 3, 1, 0x77);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x80), 0, 4), 0x77556644);

    /* cf8/cfc decode helper. */
    uint32_t sbdf, reg;
    ck_assert(pci_cf8_decode(0x80123456, 2, &sbdf, &reg));
    ck_assert_uint_eq(sbdf, 0x1234);
    ck_assert_uint_eq(reg, 0x56);
    ck_assert(!pci_cf8_decode(0x00123456, 0, &sbdf, &reg));
    ck_assert(!pci_cf8_decode(0x80123456, 4, &sbdf, &reg));

    ck_assert_int_eq(pci_bus_remove(bus, fn), 0);
    pci_func_free(fn);
    pci_bus_free(bus);
    free(r);
}
END_TEST

START_TEST(test_absent_functions)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);

    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(0, FERRY_PCI_DEVFN(5, 0)), 0, 4),
                      0xffffffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(0, FERRY_PCI_DEVFN(5, 0)), 2, 2),
                      0xffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(0, FERRY_PCI_DEVFN(5, 0)), 3, 1),
                      0xff);
    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(0, FERRY_PCI_DEVFN(0, 1)), 0, 4),
                      0xffffffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, 0x10000, 0, 4), 0xffffffff);   /* segment 1 */
    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(1, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, FERRY_PCI_SBDF(255, 255), 0xffc, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 31, 7, 0xfc), 0, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(255, 0, 0, 0), 0, 2), 0xffff);
    /* Bad sizes on a present function. */
    ck_assert_uint_eq(pci_bus_config_read(bus, 0, 0, 3), 0xffffffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, 0, 0, 8), 0xffffffff);
    pci_bus_config_write(bus, 0, 0, 8, 0);
    pci_bus_config_write(bus, FERRY_PCI_SBDF(0, 0x28), 0x4, 4, 0xffffffff);
    ck_assert_uint_eq(pci_bus_config_read(bus, 0, 0, 4), 0x12378086);
    ck_assert_ptr_null(pci_bus_lookup(bus, FERRY_PCI_SBDF(0, 8)));
    pci_bus_free(bus);
    free(r);
}
END_TEST

START_TEST(test_multifunction)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *f0 = mkfunc(r, 0x8086, 0x7000, 0);
    struct ferry_pci_func *f1 = mkfunc(r, 0x8086, 0x7010, 0);
    struct ferry_pci_func *f2 = mkfunc(r, 0x8086, 0x7020, 0);

    ck_assert_int_eq(pci_func_sbdf(f1), -ENODEV);
    ck_assert_int_eq(pci_bus_add(bus, f1, FERRY_PCI_DEVFN(1, 1)), 0);
    ck_assert_int_eq(pci_func_sbdf(f1), 0x09);
    /* Function 1 without function 0: invisible. */
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 1, 0), 0, 4), 0xffffffff);
    ck_assert_ptr_null(pci_bus_lookup(bus, 0x09));
    ck_assert_int_eq(pci_bus_add(bus, f0, FERRY_PCI_DEVFN(1, 0)), 0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 1, 0), 0, 4), 0x70108086);
    ck_assert_ptr_eq(pci_bus_lookup(bus, 0x09), f1);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 0, 0xc), 2, 1), 0x80);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 1, 0xc), 2, 1), 0x00);
    /* Taken slots, double adds. */
    ck_assert_int_eq(pci_bus_add(bus, f2, FERRY_PCI_DEVFN(1, 1)), -EBUSY);
    ck_assert_int_eq(pci_bus_add(bus, f1, FERRY_PCI_DEVFN(2, 0)), -EALREADY);
    ck_assert_int_eq(pci_bus_remove(bus, f2), -ENOENT);
    ck_assert_int_eq(pci_bus_add(bus, f2, FERRY_PCI_DEVFN(1, 7)), 0);
    ck_assert_int_eq(pci_bus_remove(bus, f1), 0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 0, 0xc), 2, 1), 0x80);
    ck_assert_int_eq(pci_bus_remove(bus, f2), 0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 0, 0xc), 2, 1), 0x00);
    /* Reset keeps the bit as the bus set it. */
    ck_assert_int_eq(pci_bus_add(bus, f1, FERRY_PCI_DEVFN(1, 3)), 0);
    pci_func_reset(f0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 1, 0, 0xc), 2, 1), 0x80);
    /* Freeing the bus leaves the functions to us, unplugged. */
    pci_bus_free(bus);
    ck_assert_int_eq(pci_func_sbdf(f0), -ENODEV);
    pci_func_free(f0);
    pci_func_free(f1);
    pci_func_free(f2);
    free(r);
}
END_TEST

START_TEST(test_ecam)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus_config cfg = { .host = FERRY_PCI_HOST_Q35, .ecam_buses = 1 };
    struct ferry_pci_bus *bus = pci_bus_new(&cfg, &rec_bus_ops, r);
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    uint32_t sbdf, reg;

    ck_assert_ptr_nonnull(bus);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64, 1 << 20), 0);
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 0x0b, 1, 0x10, 0), 0x100);
    ck_assert_int_eq(pci_bus_add(bus, fn, FERRY_PCI_DEVFN(3, 0)), 0);

    ck_assert(pci_ecam_decode(0x1234567, 256, &sbdf, &reg));
    ck_assert_uint_eq(sbdf, 0x1234);
    ck_assert_uint_eq(reg, 0x567);
    ck_assert(!pci_ecam_decode(0x100000, 1, &sbdf, &reg));
    ck_assert(!pci_ecam_decode(0, 0, &sbdf, &reg));
    ck_assert(!pci_ecam_decode(UINT64_MAX, 256, &sbdf, &reg));

    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0, 4), 0x29c08086);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18000, 2), 0x1af4);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18000, 8), 0x0000000010001af4ull);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18100, 4), 0x0001000b);     /* extended */
    /* 8-byte write programs a 64-bit BAR pair. */
    pci_bus_ecam_write(bus, 0x18018, 8, 0x00000008fe000000ull);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18018, 8), 0x00000008fe000004ull);
    /* Crossing into the next (absent) function: its bytes are ones. */
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0xffe, 4), 0xffff0000);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18ffc, 8), 0xffffffff00000000ull);
    pci_bus_ecam_write(bus, 0x18ffe, 4, 0xffffffff);
    /* Outside the one-bus window, bad sizes. */
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x100000, 4), 0xffffffff);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 0x18000, 3), UINT64_MAX);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, UINT64_MAX - 3, 8), UINT64_MAX);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, UINT64_MAX, 4), 0xffffffff);
    pci_bus_ecam_write(bus, UINT64_MAX - 3, 8, 0);
    pci_bus_ecam_write(bus, 0x18000, 16, 0);

    ck_assert_int_eq(pci_bus_remove(bus, fn), 0);
    pci_func_free(fn);
    pci_bus_free(bus);
    free(r);
}
END_TEST

START_TEST(test_ioreq)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTB);
    ioreq_t req = {
        .addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, 0, 0), 0), .size = 4, .count = 1,
        .dir = IOREQ_READ, .type = IOREQ_TYPE_PCI_CONFIG,
    };

    ck_assert_int_eq(pci_bus_add(bus, fn, FERRY_PCI_DEVFN(4, 0)), 0);
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    ck_assert_uint_eq(req.data, 0x12378086);

    req.addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, 4, 0), FERRY_PCI_INTERRUPT_LINE);
    req.size = 1;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    ck_assert_uint_eq(req.data, 16 + (4 + 1) % 4);
    req.dir = IOREQ_WRITE;
    req.data = 0x0b;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    req.dir = IOREQ_READ;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    ck_assert_uint_eq(req.data, 0x0b);

    /* Absent function. */
    req.addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, 9, 0), 0);
    req.size = 2;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    ck_assert_uint_eq(req.data, 0xffff);
    /* Register bits above 4 KiB: all ones. */
    req.addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, 0, 0), 0x10000);
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), 0);
    ck_assert_uint_eq(req.data, 0xffff);

    /* Refused shapes. */
    req.addr = 0;
    req.size = 8;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), -EINVAL);
    ck_assert_uint_eq(req.data, UINT64_MAX);
    req.size = 4;
    req.count = 2;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), -EINVAL);
    req.count = 0;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), -EINVAL);
    req.count = 1;
    req.data_is_ptr = 1;
    req.data = 0x1000;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), -EINVAL);
    ck_assert_uint_eq(req.data, 0x1000);
    req.data_is_ptr = 0;
    req.type = IOREQ_TYPE_PIO;
    ck_assert_int_eq(pci_bus_handle_ioreq(bus, &req), -EINVAL);
    ck_assert_uint_gt(r->nlog, 0);

    ck_assert_int_eq(pci_bus_remove(bus, fn), 0);
    pci_func_free(fn);
    pci_bus_free(bus);
    free(r);
}
END_TEST

START_TEST(test_intx_swizzle_and_levels)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *a = mkfunc(r, 1, 1, FERRY_PCI_INTA);
    struct ferry_pci_func *b = mkfunc(r, 1, 2, FERRY_PCI_INTA);
    struct ferry_pci_func *c = mkfunc(r, 1, 3, FERRY_PCI_INTD);
    struct ferry_pci_func *none = mkfunc(r, 1, 4, 0);

    /* The documented formula, the one libacpi's _PRT uses. */
    ck_assert_uint_eq(pci_intx_gsi(0, 0), 16);
    ck_assert_uint_eq(pci_intx_gsi(1, 0), 17);
    ck_assert_uint_eq(pci_intx_gsi(3, 1), 16);
    ck_assert_uint_eq(pci_intx_gsi(31, 3), 18);
    for (unsigned dev = 0; dev < 32; dev++)
        for (unsigned pin = 0; pin < 4; pin++)
            ck_assert_uint_eq(pci_intx_gsi(dev, pin), 16 + (dev + pin) % 4);

    ck_assert_int_eq(pci_bus_add(bus, a, FERRY_PCI_DEVFN(3, 0)), 0);
    ck_assert_int_eq(pci_bus_add(bus, b, FERRY_PCI_DEVFN(7, 0)), 0);
    ck_assert_int_eq(pci_bus_add(bus, c, FERRY_PCI_DEVFN(4, 0)), 0);
    ck_assert_int_eq(pci_bus_add(bus, none, FERRY_PCI_DEVFN(5, 0)), 0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 0x3c), 0, 2), 0x0113);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 7, 0, 0x3c), 0, 2), 0x0113);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 4, 0, 0x3c), 0, 2), 0x0413);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 5, 0, 0x3c), 0, 2), 0x0000);

    /* a and b share GSI 19 (wired-OR), c is there too: 16 + (4 + 3) % 4. */
    pci_func_set_irq(a, true);
    ck_assert_uint_eq(r->nirq, 1);
    ck_assert_uint_eq(r->irq[0].gsi, 19);
    ck_assert(r->irq[0].level);
    ck_assert(pci_func_irq_level(a));
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 4), 2, 2) & FERRY_PCI_STATUS_INTERRUPT,
                      FERRY_PCI_STATUS_INTERRUPT);
    pci_func_set_irq(a, true);
    pci_func_set_irq(b, true);
    pci_func_set_irq(c, true);
    ck_assert_uint_eq(r->nirq, 1);
    pci_func_set_irq(a, false);
    pci_func_set_irq(b, false);
    ck_assert_uint_eq(r->nirq, 1);
    pci_func_set_irq(c, false);
    ck_assert_uint_eq(r->nirq, 2);
    ck_assert(!r->irq[1].level);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 4), 2, 2) & FERRY_PCI_STATUS_INTERRUPT, 0);

    /* INTx disable masks the line but not the status bit. */
    pci_func_set_irq(a, true);
    ck_assert_uint_eq(r->nirq, 3);
    cfg_wr(bus, CF8(0, 3, 0, 4), 0, 2, FERRY_PCI_COMMAND_INTX_DISABLE);
    ck_assert_uint_eq(r->nirq, 4);
    ck_assert(!r->irq[3].level);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 4), 2, 2) & FERRY_PCI_STATUS_INTERRUPT,
                      FERRY_PCI_STATUS_INTERRUPT);
    cfg_wr(bus, CF8(0, 3, 0, 4), 0, 2, 0);
    ck_assert_uint_eq(r->nirq, 5);
    ck_assert(r->irq[4].level);
    /* The status bit is read-only to the guest. */
    cfg_wr(bus, CF8(0, 3, 0, 4), 2, 2, 0xffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 3, 0, 4), 2, 2) & FERRY_PCI_STATUS_INTERRUPT,
                      FERRY_PCI_STATUS_INTERRUPT);
    /* Unplugging an asserting function drops its line. */
    ck_assert_int_eq(pci_bus_remove(bus, a), 0);
    ck_assert_uint_eq(r->nirq, 6);
    ck_assert(!r->irq[5].level);
    ck_assert(!pci_func_irq_level(a));
    /* A function without a pin never interrupts. */
    pci_func_set_irq(none, true);
    ck_assert_uint_eq(r->nirq, 6);
    /* Asserted before being plugged: the bus sees it on add. */
    pci_func_set_irq(a, true);
    ck_assert_uint_eq(r->nirq, 6);
    ck_assert_int_eq(pci_bus_add(bus, a, FERRY_PCI_DEVFN(3, 0)), 0);
    ck_assert_uint_eq(r->nirq, 7);
    ck_assert(r->irq[6].level);

    pci_bus_free(bus);
    pci_func_free(a);
    pci_func_free(b);
    pci_func_free(c);
    pci_func_free(none);
    free(r);
}
END_TEST

START_TEST(test_bar_conflicts)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *a = mkfunc(r, 1, 1, 0);
    struct ferry_pci_func *b = mkfunc(r, 1, 2, 0);
    struct ferry_pci_bar_range out;

    r->check_claims = true;
    ck_assert_int_eq(pci_bus_reserve(bus, false, 0, 0x80000000, "ram"), 0);
    ck_assert_int_eq(pci_bus_reserve(bus, true, 0xcf8, 8, "pci-conf"), 0);
    ck_assert_int_eq(pci_bus_reserve(bus, false, 0, 0, "zero"), -EINVAL);
    ck_assert_int_eq(pci_bus_reserve(bus, false, UINT64_MAX, 2, "wrap"), -EINVAL);
    for (unsigned i = 2; i < FERRY_PCI_RESERVED_MAX; i++)
        ck_assert_int_eq(pci_bus_reserve(bus, false, 0x100000000ull * (i + 16), 4096, NULL), 0);
    ck_assert_int_eq(pci_bus_reserve(bus, false, 0xf0000000, 4096, "full"), -ENOSPC);

    ck_assert_int_eq(pci_func_bar_declare(a, 0, FERRY_PCI_BAR_MEM32, 4096), 0);
    ck_assert_int_eq(pci_func_bar_declare(a, 1, FERRY_PCI_BAR_IO, 16), 0);
    ck_assert_int_eq(pci_func_bar_declare(b, 0, FERRY_PCI_BAR_MEM32, 8192), 0);
    ck_assert_int_eq(pci_bus_add(bus, a, FERRY_PCI_DEVFN(2, 0)), 0);
    ck_assert_int_eq(pci_bus_add(bus, b, FERRY_PCI_DEVFN(3, 0)), 0);
    ck_assert_int_eq(pci_func_bar_declare(a, 2, FERRY_PCI_BAR_MEM32, 4096), -EBUSY);

    /* Over RAM: refused, logged, not offered to the device model. */
    cfg_wr(bus, CF8(0, 2, 0, 0x10), 0, 4, 0x1000);
    cfg_wr(bus, CF8(0, 2, 0, 0x14), 0, 4, 0xcf0);
    cfg_wr(bus, CF8(0, 2, 0, 4), 0, 2, FERRY_PCI_COMMAND_MEMORY | FERRY_PCI_COMMAND_IO);
    ck_assert_uint_eq(r->nremap, 0);
    ck_assert_uint_ge(r->nlog, 2);
    ck_assert(strstr(r->lastlog, "pci-conf") != NULL);
    ck_assert_int_eq(pci_func_bar_get(a, 0, &out), 0);
    ck_assert(!out.mapped);
    /* The register still holds what the guest wrote. */
    ck_assert_uint_eq(cfg_rd(bus, CF8(0, 2, 0, 0x10), 0, 4), 0x1000);

    cfg_wr(bus, CF8(0, 2, 0, 0x10), 0, 4, 0xfe001000);
    ck_assert_uint_eq(r->nremap, 1);
    ck_assert_uint_eq(r->remap[0].new_range.addr, 0xfe001000);

    /* b over a: refused while a decodes there. */
    cfg_wr(bus, CF8(0, 3, 0, 0x10), 0, 4, 0xfe000000);
    cfg_wr(bus, CF8(0, 3, 0, 4), 0, 2, FERRY_PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(r->nremap, 1);
    ck_assert(strstr(r->lastlog, "overlaps bar 0 of 00:02.0") != NULL);
    ck_assert_int_eq(pci_func_bar_get(b, 0, &out), 0);
    ck_assert(!out.mapped);
    /* a moves away; b's next write gets it decoded. */
    cfg_wr(bus, CF8(0, 2, 0, 0x10), 0, 4, 0xfe100000);
    ck_assert_uint_eq(r->nremap, 2);
    cfg_wr(bus, CF8(0, 3, 0, 0x10), 0, 4, 0xfe000000);
    ck_assert_uint_eq(r->nremap, 3);
    ck_assert_ptr_eq(r->remap[2].fn, b);
    ck_assert(r->remap[2].new_range.mapped);
    /* a cannot come back over b. */
    cfg_wr(bus, CF8(0, 2, 0, 0x10), 0, 4, 0xfe001000);
    ck_assert_uint_eq(r->nremap, 4);
    ck_assert(!r->remap[3].new_range.mapped);

    /* Unplug: BARs released through the callback. */
    ck_assert_int_eq(pci_bus_remove(bus, b), 0);
    ck_assert_uint_eq(r->nremap, 5);
    ck_assert_ptr_eq(r->remap[4].fn, b);
    ck_assert(!r->remap[4].new_range.mapped);

    pci_bus_free(bus);
    pci_func_free(a);
    pci_func_free(b);
    free(r);
}
END_TEST

TCase *pci_bus_tcase(void)
{
    TCase *tc = tcase_create("bus");

    tcase_add_test(tc, test_host_bridge_cf8);
    tcase_add_test(tc, test_cf8_latch_and_partial_accesses);
    tcase_add_test(tc, test_absent_functions);
    tcase_add_test(tc, test_multifunction);
    tcase_add_test(tc, test_ecam);
    tcase_add_test(tc, test_ioreq);
    tcase_add_test(tc, test_intx_swizzle_and_levels);
    tcase_add_test(tc, test_bar_conflicts);
    return tc;
}

START_TEST(test_bridge_routing)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_Q35);
    struct ferry_pci_func *br1 = mkbridge(r), *br2 = mkbridge(r);
    struct ferry_pci_func *child = mkfunc(r, 0x1af4, 0x1100, FERRY_PCI_INTA);
    struct ferry_pci_func *child1 = mkfunc(r, 0x1af4, 0x1101, FERRY_PCI_INTB);
    struct ferry_pci_func *child1f1 = mkfunc(r, 0x1af4, 0x1102, FERRY_PCI_INTA);
    struct ferry_pci_func *grand = mkfunc(r, 0x1af4, 0x1200, FERRY_PCI_INTA);
    struct ferry_pci_func *top = mkfunc(r, 0x1af4, 0x1300, 0);

    r->check_claims = true;
    ck_assert_int_eq(pci_bridge_add(br1, child, 0), -ENODEV);
    ck_assert_int_eq(pci_bridge_add(child, grand, 0), -EINVAL);
    ck_assert_int_eq(pci_bus_add(bus, br1, FERRY_PCI_DEVFN(2, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(br1, br1, 0), -EINVAL);
    ck_assert_int_eq(pci_bridge_add(br1, child, FERRY_PCI_DEVFN(0, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(br1, child1, FERRY_PCI_DEVFN(1, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(br1, child1f1, FERRY_PCI_DEVFN(1, 1)), 0);
    ck_assert_int_eq(pci_bridge_add(br1, br2, FERRY_PCI_DEVFN(3, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(br2, grand, FERRY_PCI_DEVFN(0, 0)), 0);
    ck_assert_int_eq(pci_bridge_add(br1, grand, FERRY_PCI_DEVFN(5, 0)), -EALREADY);
    ck_assert_int_eq(pci_bridge_add(br1, top, FERRY_PCI_DEVFN(0, 0)), -EBUSY);

    /* Not reachable before the guest numbers the buses. */
    ck_assert_int_eq(pci_func_sbdf(child), -ENXIO);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 0, 0, 0), 0, 4), 0xffffffff);
    ck_assert_ptr_null(pci_bus_lookup(bus, FERRY_PCI_SBDF(1, 0)));

    /* Bus numbers as firmware would assign them, through config cycles. */
    cfg_wr(bus, CF8(0, 2, 0, FERRY_PCI_PRIMARY_BUS), 0, 4, 0x00020100);
    cfg_wr(bus, CF8(1, 3, 0, FERRY_PCI_PRIMARY_BUS), 0, 4, 0x00020201);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 0, 0, 0), 0, 4), 0x11001af4);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 1, 1, 0), 0, 4), 0x11021af4);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 1, 0, 0xc), 2, 1), 0x80);
    ck_assert_uint_eq(cfg_rd(bus, CF8(2, 0, 0, 0), 0, 4), 0x12001af4);
    ck_assert_uint_eq(cfg_rd(bus, CF8(3, 0, 0, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 2, 0, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(pci_bus_ecam_read(bus, 2ull << 20, 4), 0x12001af4);
    ck_assert_int_eq(pci_func_sbdf(child), 0x100);
    ck_assert_int_eq(pci_func_sbdf(child1f1), 0x109);
    ck_assert_int_eq(pci_func_sbdf(grand), 0x200);
    ck_assert_ptr_eq(pci_bus_lookup(bus, 0x200), grand);

    /* Swizzled INTx: (pin + dev) % 4 at each bridge, then 16 + (2 + pin) % 4. */
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 0, 0, 0x3c), 0, 1), 18);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 1, 0, 0x3c), 0, 1), 16);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 1, 1, 0x3c), 0, 1), 19);
    ck_assert_uint_eq(cfg_rd(bus, CF8(2, 0, 0, 0x3c), 0, 1), 17);
    pci_func_set_irq(grand, true);
    ck_assert_uint_eq(r->nirq, 1);
    ck_assert_uint_eq(r->irq[0].gsi, 17);

    /* A narrower subordinate range cuts bus 2 off. */
    cfg_wr(bus, CF8(0, 2, 0, FERRY_PCI_PRIMARY_BUS), 2, 1, 1);    /* subordinate */
    ck_assert_uint_eq(cfg_rd(bus, CF8(2, 0, 0, 0), 0, 4), 0xffffffff);
    cfg_wr(bus, CF8(0, 2, 0, FERRY_PCI_PRIMARY_BUS), 2, 1, 2);
    ck_assert_uint_eq(cfg_rd(bus, CF8(2, 0, 0, 0), 0, 4), 0x12001af4);

    /* BAR conflicts are checked across the whole tree. */
    ck_assert_int_eq(pci_func_bar_declare(top, 0, FERRY_PCI_BAR_MEM32, 4096), 0);
    ck_assert_int_eq(pci_bus_add(bus, top, FERRY_PCI_DEVFN(4, 0)), 0);
    cfg_wr(bus, CF8(0, 4, 0, 0x10), 0, 4, 0xfe000000);
    cfg_wr(bus, CF8(0, 4, 0, 4), 0, 2, FERRY_PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(r->nremap, 1);
    ck_assert_int_eq(pci_func_bar_declare(grand, 0, FERRY_PCI_BAR_MEM32, 4096), -EBUSY);
    ck_assert_int_eq(pci_bus_remove(bus, grand), 0);
    ck_assert_uint_eq(r->nirq, 2);
    ck_assert(!r->irq[1].level);
    ck_assert_int_eq(pci_func_bar_declare(grand, 0, FERRY_PCI_BAR_MEM32, 4096), 0);
    ck_assert_int_eq(pci_bridge_add(br2, grand, FERRY_PCI_DEVFN(0, 0)), 0);
    cfg_wr(bus, CF8(2, 0, 0, 0x10), 0, 4, 0xfe000000);
    cfg_wr(bus, CF8(2, 0, 0, 4), 0, 2, FERRY_PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(r->nremap, 1);
    ck_assert(strstr(r->lastlog, "overlaps bar 0 of 00:04.0") != NULL);
    cfg_wr(bus, CF8(0, 4, 0, 0x10), 0, 4, 0xfd000000);
    ck_assert_uint_eq(r->nremap, 2);       /* top moved away */
    cfg_wr(bus, CF8(2, 0, 0, 0x10), 0, 4, 0xfe000000);
    ck_assert_uint_eq(r->nremap, 3);
    ck_assert_ptr_eq(r->remap[2].fn, grand);
    /* top cannot come back over it. */
    cfg_wr(bus, CF8(0, 4, 0, 0x10), 0, 4, 0xfe000000);
    ck_assert(strstr(r->lastlog, "overlaps bar 0 of 02:00.0") != NULL);

    /* Unplug order: a bridge goes only when empty. */
    ck_assert_int_eq(pci_bus_remove(bus, br1), -EBUSY);
    ck_assert_int_eq(pci_bus_remove(bus, br2), -EBUSY);
    ck_assert_int_eq(pci_bus_remove(bus, grand), 0);
    ck_assert_int_eq(pci_bus_remove(bus, br2), 0);
    ck_assert_int_eq(pci_bus_remove(bus, child), 0);
    ck_assert_uint_eq(cfg_rd(bus, CF8(1, 0, 0, 0), 0, 4), 0xffffffff);
    /* Freeing the bus unplugs what is left, bridges and all. */
    pci_bus_free(bus);
    ck_assert_int_eq(pci_func_sbdf(child1), -ENODEV);
    pci_func_free(br1);
    pci_func_free(br2);
    pci_func_free(child);
    pci_func_free(child1);
    pci_func_free(child1f1);
    pci_func_free(grand);
    pci_func_free(top);
    free(r);
}
END_TEST

START_TEST(test_bridge_depth_limit)
{
    struct rec *r = rec_new();
    struct ferry_pci_bus *bus = mkbus(r, FERRY_PCI_HOST_I440FX);
    struct ferry_pci_func *chain[10];
    unsigned n;
    int rc = 0;

    for (n = 0; n < 10; n++)
        chain[n] = mkbridge(r);
    ck_assert_int_eq(pci_bus_add(bus, chain[0], FERRY_PCI_DEVFN(1, 0)), 0);
    for (n = 1; n < 10; n++) {
        rc = pci_bridge_add(chain[n - 1], chain[n], 0);
        if (rc < 0)
            break;
    }
    ck_assert_int_eq(rc, -ELOOP);
    ck_assert_uint_eq(n, 9);        /* chain[8] sits behind 8 bridges */
    /* Number them all: bridge k sits on bus k, bus 9 is empty. */
    for (unsigned k = 0; k < n; k++) {
        uint32_t busno = k;     /* the bus the k-th bridge sits on */

        cfg_wr(bus, CF8(busno, k ? 0 : 1, 0, FERRY_PCI_PRIMARY_BUS), 0, 4,
               busno | (busno + 1) << 8 | 0xffu << 16);
    }
    ck_assert_uint_eq(cfg_rd(bus, CF8(8, 0, 0, 0), 0, 4), 0x00011b36);
    ck_assert_uint_eq(cfg_rd(bus, CF8(9, 0, 0, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(200, 0, 0, 0), 0, 4), 0xffffffff);
    ck_assert_int_eq(pci_func_sbdf(chain[8]), 0x800);
    /* Routing only ever descends: a bridge given its own bus number cuts
     * off what is below until the range fits again. */
    cfg_wr(bus, CF8(1, 0, 0, FERRY_PCI_PRIMARY_BUS), 1, 1, 1);    /* secondary */
    ck_assert_uint_eq(cfg_rd(bus, CF8(2, 0, 0, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(bus, CF8(5, 0, 0, 0), 0, 4), 0x00011b36);
    pci_bus_free(bus);
    for (n = 0; n < 10; n++)
        pci_func_free(chain[n]);
    free(r);
}
END_TEST

TCase *pci_bridge_tcase(void)
{
    TCase *tc = tcase_create("bridge");

    tcase_add_test(tc, test_bridge_routing);
    tcase_add_test(tc, test_bridge_depth_limit);
    return tc;
}
