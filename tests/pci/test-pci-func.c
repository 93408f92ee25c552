// SPDX-License-Identifier: GPL-2.0-or-later
/* Config-space semantics of one function: masks, BARs, caps, bridge. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/pci/test-pci.h"

#define RD(fn, reg, sz)         pci_func_config_read(fn, reg, sz)
#define WR(fn, reg, sz, v)      pci_func_config_write(fn, reg, sz, v)

START_TEST(test_header_identity_read_only)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);

    ck_assert_uint_eq(RD(fn, 0, 4), 0x10001af4);
    ck_assert_uint_eq(RD(fn, 8, 4), 0x02000003);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_INTERRUPT_PIN, 1), 1);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_HEADER_TYPE, 1), 0);
    /* Identity, class, header type, pin: all read-only. */
    for (uint32_t reg = 0; reg < 0x40; reg += 4)
        if (reg != FERRY_PCI_COMMAND && reg != FERRY_PCI_CACHE_LINE_SIZE &&
            reg != FERRY_PCI_INTERRUPT_LINE)
            WR(fn, reg, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0, 4), 0x10001af4);
    ck_assert_uint_eq(RD(fn, 8, 4), 0x02000003);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_INTERRUPT_PIN, 1), 1);
    /* No BARs declared: they stay zero. */
    for (uint32_t reg = FERRY_PCI_BAR0; reg < 0x28; reg += 4)
        ck_assert_uint_eq(RD(fn, reg, 4), 0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_ROM_ADDRESS, 4), 0);
    /* Interrupt line, cache line size and latency timer are read-write. */
    WR(fn, FERRY_PCI_INTERRUPT_LINE, 1, 0x5a);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_INTERRUPT_LINE, 1), 0x5a);
    WR(fn, FERRY_PCI_CACHE_LINE_SIZE, 2, 0x4010);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_CACHE_LINE_SIZE, 2), 0x4010);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_command_status_masks)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    uint8_t st[2] = { 0x00, 0xf9 };

    WR(fn, FERRY_PCI_COMMAND, 2, 0xffff);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_COMMAND, 2), 0x0547);
    WR(fn, FERRY_PCI_COMMAND, 2, 0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_COMMAND, 2), 0);

    /* Error bits latched by the device model; the guest clears them with 1s. */
    ck_assert_int_eq(pci_func_config_put(fn, FERRY_PCI_STATUS, st, 2), 0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2), 0xf900);
    WR(fn, FERRY_PCI_STATUS, 2, 0x0000);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2), 0xf900);
    WR(fn, FERRY_PCI_STATUS, 2, 0x2100);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2), 0xd800);
    /* A dword write of command + status: command takes, status W1C. */
    WR(fn, FERRY_PCI_COMMAND, 4, 0x80000006);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_COMMAND, 4), 0x58000006);
    /* Read-only status bits (66 MHz, DEVSEL, cap list) cannot be set. */
    WR(fn, FERRY_PCI_STATUS, 2, 0x06f0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2), 0x5800);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_custom_masks)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);
    uint8_t init[4] = { 0x11, 0x22, 0xff, 0x44 };

    ck_assert_int_eq(pci_func_config_put(fn, 0x80, init, 4), 0);
    ck_assert_int_eq(pci_func_set_masks(fn, 0x80, 4, 0x0000f00f, 0x00ff0000), 0);
    WR(fn, 0x80, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0x80, 4), 0x4400f21f);
    WR(fn, 0x80, 4, 0x00000000);
    ck_assert_uint_eq(RD(fn, 0x80, 4), 0x44000210);
    WR(fn, 0x81, 1, 0xa5);
    ck_assert_uint_eq(RD(fn, 0x80, 4), 0x4400a210);
    ck_assert_int_eq(pci_func_set_masks(fn, 0x80, 1, 0x1, 0x1), -EINVAL);
    ck_assert_int_eq(pci_func_set_masks(fn, 0xffe, 4, 0, 0), -ERANGE);
    ck_assert_int_eq(pci_func_set_masks(fn, 0x80, 5, 0, 0), -EINVAL);
    ck_assert_int_eq(pci_func_config_put(fn, 0xffd, init, 4), -ERANGE);
    ck_assert_int_eq(pci_func_config_put(fn, 0xffffffff, init, 4), -ERANGE);
    ck_assert_int_eq(pci_func_config_get(fn, 0x1000, init, 1), -ERANGE);
    ck_assert_int_eq(pci_func_config_get(fn, 0x80, init, 4), 0);
    ck_assert_uint_eq(init[1], 0xa2);
    /* Reset restores the power-on value of writable bytes. */
    pci_func_reset(fn);
    ck_assert_uint_eq(RD(fn, 0x80, 4), 0x44ff2211);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_bar_sizing)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);

    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO, 32), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_MEM32, 4096), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64 | FERRY_PCI_BAR_PREFETCH,
                                          1u << 20), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 4, FERRY_PCI_BAR_MEM64, 8ull << 30), 0);
    ck_assert_int_eq(pci_func_rom_declare(fn, 64 * 1024), 0);

    /* Type bits before sizing. */
    ck_assert_uint_eq(RD(fn, 0x10, 4), 0x1);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0x0);
    ck_assert_uint_eq(RD(fn, 0x18, 4), 0xc);
    ck_assert_uint_eq(RD(fn, 0x20, 4), 0x4);

    for (uint32_t reg = 0x10; reg < 0x28; reg += 4)
        WR(fn, reg, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0x10, 4), 0xffffffe1);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0xfffff000);
    ck_assert_uint_eq(RD(fn, 0x18, 4), 0xfff0000c);
    ck_assert_uint_eq(RD(fn, 0x1c, 4), 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0x20, 4), 0x00000004);
    ck_assert_uint_eq(RD(fn, 0x24, 4), 0xfffffffe);

    WR(fn, FERRY_PCI_ROM_ADDRESS, 4, 0xfffffffe);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_ROM_ADDRESS, 4), 0xffff0000);
    WR(fn, FERRY_PCI_ROM_ADDRESS, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_ROM_ADDRESS, 4), 0xffff0001);

    /* Program, read back. */
    WR(fn, 0x10, 4, 0xc040);
    ck_assert_uint_eq(RD(fn, 0x10, 4), 0xc041);
    WR(fn, 0x14, 4, 0xfebf1234);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0xfebf1000);
    /* Byte-wise sizing of a BAR works too (masks are per byte). */
    WR(fn, 0x14, 1, 0xff);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0xfebf1000);
    WR(fn, 0x15, 1, 0xff);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0xfebff000);

    /* No callbacks: decoding is off. */
    ck_assert_uint_eq(r->nremap, 0);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_bar_declare_errors)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);
    struct ferry_pci_func *br = mkbridge(r);
    struct ferry_pci_bar_range out;

    ck_assert_int_eq(pci_func_bar_declare(fn, 6, FERRY_PCI_BAR_MEM32, 4096), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 5, FERRY_PCI_BAR_MEM64, 4096), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO, 512), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO, 2), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM32, 8), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM32, 4097), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM32, 1ull << 32), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO | FERRY_PCI_BAR_PREFETCH, 16),
                     -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO | FERRY_PCI_BAR_MEM32, 16),
                     -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, 0, 16), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, 0x100, 16), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_MEM64, 4096), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM32, 4096), -EBUSY);
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM64, 4096), -EBUSY);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_MEM32, 4096), -EBUSY);
    ck_assert_int_eq(pci_func_bar_get(fn, 2, &out), -EINVAL);
    ck_assert_int_eq(pci_func_bar_get(fn, 0, &out), -EINVAL);
    ck_assert_int_eq(pci_func_bar_get(fn, 1, &out), 0);
    ck_assert(!out.mapped);
    ck_assert_uint_eq(out.size, 4096);
    ck_assert_int_eq(pci_func_rom_declare(fn, 1024), -EINVAL);
    ck_assert_int_eq(pci_func_rom_declare(fn, 3 * 2048), -EINVAL);
    ck_assert_int_eq(pci_func_rom_declare(fn, 2048), 0);
    ck_assert_int_eq(pci_func_rom_declare(fn, 2048), -EBUSY);

    /* Bridges have two BARs. */
    ck_assert_int_eq(pci_func_bar_declare(br, 2, FERRY_PCI_BAR_MEM32, 4096), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(br, 1, FERRY_PCI_BAR_MEM64, 4096), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(br, 0, FERRY_PCI_BAR_MEM64, 4096), 0);
    pci_func_free(fn);
    pci_func_free(br);
    free(r);
}
END_TEST

START_TEST(test_bar_remap_callbacks)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);
    struct ferry_pci_bar_range out;
    unsigned bar;
    uint64_t off;

    r->check_claims = true;
    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO, 32), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_MEM32, 4096), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64, 1 << 16), 0);
    ck_assert_int_eq(pci_func_rom_declare(fn, 2048), 0);

    WR(fn, 0x10, 4, 0xc000);
    WR(fn, 0x14, 4, 0xfe000000);
    WR(fn, 0x18, 4, 0x00000000);
    WR(fn, 0x1c, 4, 0x00000010);    /* 0x10_0000_0000 */
    WR(fn, FERRY_PCI_ROM_ADDRESS, 4, 0xfe100000);   /* not enabled */
    ck_assert_uint_eq(r->nremap, 0);

    /* Memory decode on: BARs 1 and 2 appear, not the I/O BAR or the ROM. */
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(r->nremap, 2);
    ck_assert_uint_eq(r->remap[0].bar, 1);
    ck_assert(!r->remap[0].old.mapped);
    ck_assert(r->remap[0].new_range.mapped);
    ck_assert(!r->remap[0].new_range.io);
    ck_assert_uint_eq(r->remap[0].new_range.addr, 0xfe000000);
    ck_assert_uint_eq(r->remap[0].new_range.size, 4096);
    ck_assert_uint_eq(r->remap[1].bar, 2);
    ck_assert_uint_eq(r->remap[1].new_range.addr, 0x1000000000ull);

    /* I/O on as well. */
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MEMORY | FERRY_PCI_COMMAND_IO);
    ck_assert_uint_eq(r->nremap, 3);
    ck_assert_uint_eq(r->remap[2].bar, 0);
    ck_assert(r->remap[2].new_range.io);
    ck_assert_uint_eq(r->remap[2].new_range.addr, 0xc000);
    ck_assert_int_eq(pci_func_bar_lookup(fn, true, 0xc01f, &bar, &off), 0);
    ck_assert_uint_eq(bar, 0);
    ck_assert_uint_eq(off, 0x1f);
    ck_assert_int_eq(pci_func_bar_lookup(fn, true, 0xc020, &bar, &off), -ENOENT);
    ck_assert_int_eq(pci_func_bar_lookup(fn, false, 0x1000000000ull + 0x8000, &bar, &off), 0);
    ck_assert_uint_eq(bar, 2);
    ck_assert_uint_eq(off, 0x8000);

    /* Moving a decoding BAR: one callback with old and new. */
    WR(fn, 0x14, 4, 0xfd000000);
    ck_assert_uint_eq(r->nremap, 4);
    ck_assert_uint_eq(r->remap[3].old.addr, 0xfe000000);
    ck_assert_uint_eq(r->remap[3].new_range.addr, 0xfd000000);
    /* Writing the same value again: nothing moves. */
    WR(fn, 0x14, 4, 0xfd000000);
    ck_assert_uint_eq(r->nremap, 4);

    /* Sizing while decoding: all ones is not a place, it stops decoding. */
    WR(fn, 0x14, 4, 0xffffffff);
    ck_assert_uint_eq(r->nremap, 5);
    ck_assert(r->remap[4].old.mapped);
    ck_assert(!r->remap[4].new_range.mapped);
    WR(fn, 0x14, 4, 0xfd000000);
    ck_assert_uint_eq(r->nremap, 6);
    ck_assert(r->remap[5].new_range.mapped);

    /* A 64-bit pair: the upper half sized to ones is far out of reach. */
    WR(fn, 0x1c, 4, 0xffffffff);
    ck_assert_uint_eq(r->nremap, 7);
    ck_assert(!r->remap[6].new_range.mapped);
    WR(fn, 0x1c, 4, 0x00000001);
    ck_assert_uint_eq(r->nremap, 8);
    ck_assert_uint_eq(r->remap[7].new_range.addr, 0x100000000ull);

    /* I/O BAR beyond 64 KiB does not decode. */
    WR(fn, 0x10, 4, 0x10000);
    ck_assert_uint_eq(r->nremap, 9);
    ck_assert(!r->remap[8].new_range.mapped);
    WR(fn, 0x10, 4, 0xffe0);
    ck_assert_uint_eq(r->nremap, 10);
    ck_assert_uint_eq(r->remap[9].new_range.addr, 0xffe0);

    /* ROM: needs its enable bit and memory decode. */
    WR(fn, FERRY_PCI_ROM_ADDRESS, 4, 0xfe100001);
    ck_assert_uint_eq(r->nremap, 11);
    ck_assert_uint_eq(r->remap[10].bar, FERRY_PCI_ROM_BAR);
    ck_assert_uint_eq(r->remap[10].new_range.addr, 0xfe100000);
    ck_assert_uint_eq(r->remap[10].new_range.size, 2048);

    /* Decode off: every mapped region goes, in one write. */
    WR(fn, FERRY_PCI_COMMAND, 2, 0);
    ck_assert_uint_eq(r->nremap, 15);
    for (unsigned i = 11; i < 15; i++) {
        ck_assert(r->remap[i].old.mapped);
        ck_assert(!r->remap[i].new_range.mapped);
    }
    ck_assert_int_eq(pci_func_bar_get(fn, 1, &out), 0);
    ck_assert(!out.mapped);

    /* A refused claim: the BAR is recorded as not decoding. */
    r->remap_rc = -EEXIST;
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MEMORY);
    ck_assert_int_eq(pci_func_bar_get(fn, 1, &out), 0);
    ck_assert(!out.mapped);
    ck_assert_uint_gt(r->nlog, 0);
    ck_assert(strstr(r->lastlog, "refused") != NULL);
    r->remap_rc = 0;
    /*
     * Next BAR write re-evaluates every region: the refused ones are offered
     * again with old not mapped (bars 1, 2 and the ROM).
     */
    unsigned before = r->nremap;
    WR(fn, 0x14, 4, 0xfc000000);
    ck_assert_uint_eq(r->nremap, before + 3);
    ck_assert_uint_eq(r->remap[before].bar, 1);
    ck_assert(!r->remap[before].old.mapped);
    ck_assert(r->remap[before].new_range.mapped);
    ck_assert_uint_eq(r->remap[before].new_range.addr, 0xfc000000);

    /* Reset: all decoding stops through the callback. */
    pci_func_reset(fn);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_COMMAND, 2), 0);
    ck_assert_uint_eq(RD(fn, 0x14, 4), 0);
    ck_assert_int_eq(pci_func_bar_get(fn, 1, &out), 0);
    ck_assert(!out.mapped);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_capability_chain)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);
    int a, b, c, d;

    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2) & FERRY_PCI_STATUS_CAP_LIST, 0);

    a = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_VNDR, 8, 0);
    b = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_PM, 8, 0);
    c = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_VNDR, 6, 0x80);
    ck_assert_int_eq(a, 0x40);
    ck_assert_int_eq(b, 0x48);
    ck_assert_int_eq(c, 0x80);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2) & FERRY_PCI_STATUS_CAP_LIST,
                      FERRY_PCI_STATUS_CAP_LIST);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_CAPABILITY_LIST, 1), 0x40);
    ck_assert_uint_eq(RD(fn, 0x40, 2), 0x4809);
    ck_assert_uint_eq(RD(fn, 0x48, 2), 0x8001);
    ck_assert_uint_eq(RD(fn, 0x80, 2), 0x0009);
    /* Next-free placement skips the taken 0x80..0x85 and aligns. */
    d = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_EXP, 0x3c, 0);
    ck_assert_int_eq(d, 0x88);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0x40);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x40), 0x48);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x48), 0x80);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x80), 0x88);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x88), 0);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_VNDR, 0), 0x40);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_VNDR, 0x40), 0x80);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_VNDR, 0x80), 0);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_MSI, 0), 0);

    /* Cap bytes are read-only by default; the list itself cannot be changed. */
    WR(fn, 0x40, 4, 0xffffffff);
    WR(fn, FERRY_PCI_CAPABILITY_LIST, 1, 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0x40);
    ck_assert_uint_eq(RD(fn, 0x40, 2), 0x4809);

    /* Hiding unlinks, unhiding relinks in add order. */
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x48), 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x40), 0x80);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_PM, 0), 0);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x40), 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0x80);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x80), 0);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x88), 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0);
    ck_assert_uint_eq(RD(fn, FERRY_PCI_STATUS, 2) & FERRY_PCI_STATUS_CAP_LIST, 0);
    ck_assert_int_eq(pci_func_cap_unhide(fn, 0x48), 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), 0x48);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0x48), 0);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x44), -ENOENT);

    /* Placement errors. */
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 4, 0x41), -EINVAL);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 4, 0x3c), -EINVAL);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 4, 0x100), -EINVAL);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 4, 0x44), -EBUSY);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 8, 0xfc), -ENOSPC);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 1, 0), -EINVAL);
    ck_assert_int_eq(pci_func_cap_add(fn, 9, 200, 0), -EINVAL);
    /* Fill the rest: eventually no room. */
    int rc;
    unsigned n = 0;
    while ((rc = pci_func_cap_add(fn, 9, 16, 0)) > 0)
        n++;
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_uint_gt(n, 0);
    /* The walk of a full list terminates. */
    unsigned p = 0, steps = 0;
    while ((p = pci_func_cap_next(fn, p)) != 0)
        ck_assert_uint_lt(++steps, 64);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_ext_capability_chain)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, 0);

    ck_assert_uint_eq(RD(fn, 0x100, 4), 0);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 1, 0), 0);
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 0x0001, 2, 0x40, 0), 0x100);   /* AER */
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 0x000b, 1, 0x18, 0), 0x140);   /* VSEC */
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 0x0003, 1, 0x0c, 0x200), 0x200); /* DSN */
    ck_assert_uint_eq(RD(fn, 0x100, 4), 0x14020001);
    ck_assert_uint_eq(RD(fn, 0x140, 4), 0x2001000b);
    ck_assert_uint_eq(RD(fn, 0x200, 4), 0x00010003);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 0x000b, 0), 0x140);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 0x0003, 0), 0x200);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 0x0001, 0x100), 0);

    /* Hiding the one at 0x100 leaves a null header pointing on. */
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x100), 0);
    ck_assert_uint_eq(RD(fn, 0x100, 4), 0x14000000);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 0x0001, 0), 0);
    ck_assert_uint_eq(pci_func_ext_cap_find(fn, 0x0003, 0), 0x200);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x140), 0);
    ck_assert_int_eq(pci_func_cap_hide(fn, 0x200), 0);
    ck_assert_uint_eq(RD(fn, 0x100, 4), 0);
    ck_assert_int_eq(pci_func_cap_unhide(fn, 0x100), 0);
    ck_assert_uint_eq(RD(fn, 0x100, 4), 0x00020001);

    ck_assert_int_eq(pci_func_ext_cap_add(fn, 1, 16, 8, 0), -EINVAL);
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 1, 1, 2, 0), -EINVAL);
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 1, 1, 8, 0xffc), -ENOSPC);
    ck_assert_int_eq(pci_func_ext_cap_add(fn, 1, 1, 8, 0x80), -EINVAL);
    /* Conventional reads of the extended space of a plain function. */
    ck_assert_uint_eq(RD(fn, 0xffc, 4), 0);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_bridge_header)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *br = mkbridge(r);
    struct ferry_pci_bridge_windows w;
    struct ferry_pci_func *fn = mkfunc(r, 1, 2, 0);
    uint8_t st[2] = { 0x00, 0xf9 };

    ck_assert_int_eq(pci_bridge_windows(fn, &w), -EINVAL);
    ck_assert_uint_eq(RD(br, FERRY_PCI_HEADER_TYPE, 1), 1);
    ck_assert_uint_eq(RD(br, 0x08, 4) >> 8, 0x060400);
    /* Bus numbers and secondary latency timer. */
    WR(br, FERRY_PCI_PRIMARY_BUS, 4, 0x40050100);
    ck_assert_uint_eq(RD(br, FERRY_PCI_PRIMARY_BUS, 4), 0x40050100);
    /* Window type nibbles are read-only: 32-bit I/O, 64-bit prefetchable. */
    WR(br, FERRY_PCI_IO_BASE, 2, 0xffff);
    ck_assert_uint_eq(RD(br, FERRY_PCI_IO_BASE, 2), 0xf1f1);
    WR(br, FERRY_PCI_IO_BASE, 2, 0x2010);
    WR(br, FERRY_PCI_MEMORY_BASE, 4, 0xfe1ffe00);
    WR(br, FERRY_PCI_PREF_MEMORY_BASE, 4, 0xffffffff);
    ck_assert_uint_eq(RD(br, FERRY_PCI_PREF_MEMORY_BASE, 4), 0xfff1fff1);
    WR(br, FERRY_PCI_PREF_MEMORY_BASE, 4, 0x00f10001);
    WR(br, FERRY_PCI_PREF_BASE_UPPER32, 4, 0x8);
    WR(br, FERRY_PCI_PREF_LIMIT_UPPER32, 4, 0x8);
    ck_assert_int_eq(pci_bridge_windows(br, &w), 0);
    ck_assert_uint_eq(w.primary, 0);
    ck_assert_uint_eq(w.secondary, 1);
    ck_assert_uint_eq(w.subordinate, 5);
    ck_assert(w.io_enabled);
    ck_assert_uint_eq(w.io_base, 0x1000);
    ck_assert_uint_eq(w.io_limit, 0x2fff);
    ck_assert(w.mem_enabled);
    ck_assert_uint_eq(w.mem_base, 0xfe000000);
    ck_assert_uint_eq(w.mem_limit, 0xfe1fffff);
    ck_assert(w.pref_enabled);
    ck_assert_uint_eq(w.pref_base, 0x800000000ull);
    ck_assert_uint_eq(w.pref_limit, 0x800ffffffull);
    /* base > limit: window closed. */
    WR(br, FERRY_PCI_MEMORY_BASE, 4, 0x0000fff0);
    ck_assert_int_eq(pci_bridge_windows(br, &w), 0);
    ck_assert(!w.mem_enabled);
    /* Secondary status is RW1C. */
    ck_assert_int_eq(pci_func_config_put(br, FERRY_PCI_SEC_STATUS, st, 2), 0);
    WR(br, FERRY_PCI_SEC_STATUS, 2, 0x8000);
    ck_assert_uint_eq(RD(br, FERRY_PCI_SEC_STATUS, 2), 0x7900);
    /* Bridge control, ROM at 0x38. */
    WR(br, FERRY_PCI_BRIDGE_CONTROL, 2, 0xffff);
    ck_assert_uint_eq(RD(br, FERRY_PCI_BRIDGE_CONTROL, 2), 0x00ff);
    ck_assert_int_eq(pci_func_rom_declare(br, 4096), 0);
    WR(br, FERRY_PCI_ROM_ADDRESS1, 4, 0xffffffff);
    ck_assert_uint_eq(RD(br, FERRY_PCI_ROM_ADDRESS1, 4), 0xfffff001);
    /* Reset: bus numbers back to 0. */
    pci_func_reset(br);
    ck_assert_uint_eq(RD(br, FERRY_PCI_PRIMARY_BUS, 4), 0);
    ck_assert_uint_eq(RD(br, FERRY_PCI_IO_BASE, 2), 0x0101);
    pci_func_free(br);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_func_new_errors)
{
    struct ferry_pci_func_info info = { .header_type = 2 };

    ck_assert_ptr_null(pci_func_new(&info, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    info.header_type = 0;
    info.intx_pin = 5;
    ck_assert_ptr_null(pci_func_new(&info, NULL, NULL));
    info.intx_pin = 0;
    info.class_code = 0x1000000;
    ck_assert_ptr_null(pci_func_new(&info, NULL, NULL));
    ck_assert_ptr_null(pci_func_new(NULL, NULL, NULL));
    pci_func_free(NULL);
}
END_TEST

TCase *pci_func_tcase(void)
{
    TCase *tc = tcase_create("func");

    tcase_add_test(tc, test_header_identity_read_only);
    tcase_add_test(tc, test_command_status_masks);
    tcase_add_test(tc, test_custom_masks);
    tcase_add_test(tc, test_bar_sizing);
    tcase_add_test(tc, test_bar_declare_errors);
    tcase_add_test(tc, test_bar_remap_callbacks);
    tcase_add_test(tc, test_capability_chain);
    tcase_add_test(tc, test_ext_capability_chain);
    tcase_add_test(tc, test_bridge_header);
    tcase_add_test(tc, test_func_new_errors);
    return tc;
}

START_TEST(test_pcie_capability)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1041, FERRY_PCI_INTA);
    struct ferry_pci_func *rp = mkbridge(r);
    struct ferry_pci_func *rc = mkfunc(r, 0x8086, 0x10d3, 0);
    uint8_t sta[2] = { 0x0f, 0x00 };
    int off;

    ck_assert_int_eq(pci_func_pcie_add(fn, (enum ferry_pci_pcie_type)3, 0), -EINVAL);
    off = pci_func_pcie_add(fn, FERRY_PCI_EXP_ENDPOINT, 0);
    ck_assert_int_eq(off, 0x40);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_EXP, 0), 0x40);
    ck_assert_uint_eq(RD(fn, 0x40, 4), 0x00020010);
    ck_assert_uint_eq(RD(fn, 0x44, 4), 0x00008000);
    ck_assert_uint_eq(RD(fn, 0x48, 2), 0x2810);
    WR(fn, 0x48, 2, 0xffff);
    ck_assert_uint_eq(RD(fn, 0x48, 2), 0x79ff);
    ck_assert_int_eq(pci_func_config_put(fn, 0x4a, sta, 2), 0);
    WR(fn, 0x4a, 2, 0x0005);
    ck_assert_uint_eq(RD(fn, 0x4a, 2), 0x000a);
    ck_assert_uint_eq(RD(fn, 0x4c, 4), 0x11);
    ck_assert_uint_eq(RD(fn, 0x52, 2), 0x11);
    WR(fn, 0x50, 2, 0xffff);
    ck_assert_uint_eq(RD(fn, 0x50, 2), 0x00cb);
    pci_func_reset(fn);
    ck_assert_uint_eq(RD(fn, 0x48, 2), 0x2810);
    ck_assert_uint_eq(RD(fn, 0x50, 2), 0);
    ck_assert_int_eq(pci_func_pcie_add(fn, FERRY_PCI_EXP_ENDPOINT, 0x40), -EBUSY);

    /* Root port: root control and status. */
    off = pci_func_pcie_add(rp, FERRY_PCI_EXP_ROOT_PORT, 0x60);
    ck_assert_int_eq(off, 0x60);
    ck_assert_uint_eq(RD(rp, 0x62, 2), 0x0042);
    WR(rp, 0x7c, 2, 0xffff);
    ck_assert_uint_eq(RD(rp, 0x7c, 2), 0x001f);

    /* Root-complex integrated endpoint: no link registers. */
    off = pci_func_pcie_add(rc, FERRY_PCI_EXP_RC_ENDPOINT, 0);
    ck_assert_int_eq(off, 0x40);
    ck_assert_uint_eq(RD(rc, 0x42, 2), 0x0092);
    ck_assert_uint_eq(RD(rc, 0x4c, 4), 0);
    WR(rc, 0x50, 2, 0xffff);
    ck_assert_uint_eq(RD(rc, 0x50, 4), 0);
    pci_func_free(fn);
    pci_func_free(rp);
    pci_func_free(rc);
    free(r);
}
END_TEST

TCase *pci_pcie_tcase(void)
{
    TCase *tc = tcase_create("pcie");

    tcase_add_test(tc, test_pcie_capability);
    return tc;
}

/* A device-specific register served by the config_read hook. */
static void hook_read(void *opaque, struct ferry_pci_func *fn, uint32_t reg, unsigned size,
                      uint32_t *val)
{
    if (reg == 0xa0 && size == 4)
        *val = 0xfeedf00d;
}

static const struct ferry_pci_func_ops hook_ops = { .config_read = hook_read };

START_TEST(test_edges_and_hooks)
{
    struct ferry_pci_func_info info = { .name = "hooked", .vendor_id = 1, .device_id = 2 };
    struct ferry_pci_func *fn = pci_func_new(&info, &hook_ops, NULL);
    struct rec *r = rec_new();
    struct ferry_pci_func *g = mkfunc(r, 1, 2, 0);
    int n = 0, rc;

    ck_assert_ptr_nonnull(fn);
    ck_assert_str_eq(pci_func_name(fn), "hooked");
    ck_assert_ptr_null(pci_func_opaque(fn));
    ck_assert_ptr_eq(pci_func_opaque(g), r);
    ck_assert_uint_eq(RD(fn, 0xa0, 4), 0xfeedf00d);
    ck_assert_uint_eq(RD(fn, 0xa0, 2), 0);
    /* Direct accesses of bad sizes and beyond 4 KiB: ones, dropped, logged. */
    ck_assert_uint_eq(RD(g, 0, 3), 0xffffffff);
    ck_assert_uint_eq(RD(g, 0, 0), 0xffffffff);
    ck_assert_uint_eq(RD(g, 0xffe, 4), 0xffff0000);
    ck_assert_uint_eq(RD(g, 0xffffffff, 4), 0xffffffff);
    WR(g, 0, 3, 0);
    WR(g, 0x1000, 4, 0);
    WR(g, 0xffffffff, 4, 0);
    ck_assert_uint_eq(RD(g, 0, 4), 0x00020001);
    ck_assert_uint_ge(r->nlog, 4);
    ck_assert(strstr(r->lastlog, "pci[testdev] warning: config write beyond 4 KiB") != NULL);
    /* Walks from nonsense positions end at once. */
    ck_assert_uint_eq(pci_func_cap_next(g, 0x10), 0);
    ck_assert_uint_eq(pci_func_cap_next(g, 0xff), 0);
    ck_assert_uint_eq(pci_func_ext_cap_find(g, 1, 0x10), 0);
    ck_assert_uint_eq(pci_func_ext_cap_find(g, 1, 0xffe), 0);
    /* Size limits of BAR kinds. */
    ck_assert_int_eq(pci_func_bar_declare(g, 0, FERRY_PCI_BAR_MEM64, 1ull << 63), -EINVAL);
    ck_assert_int_eq(pci_func_bar_declare(g, 0, FERRY_PCI_BAR_MEM64, 1ull << 62), 0);
    ck_assert_int_eq(pci_func_bar_declare(g, 2, FERRY_PCI_BAR_MEM32, 16), 0);
    ck_assert_int_eq(pci_func_bar_declare(g, 3, FERRY_PCI_BAR_MEM32, 1ull << 31), 0);
    for (uint32_t reg = 0x10; reg < 0x20; reg += 4)
        WR(g, reg, 4, 0xffffffff);
    ck_assert_uint_eq(RD(g, 0x10, 4), 0x4);
    ck_assert_uint_eq(RD(g, 0x14, 4), 0xc0000000);
    ck_assert_uint_eq(RD(g, 0x18, 4), 0xfffffff0);
    ck_assert_uint_eq(RD(g, 0x1c, 4), 0x80000000);
    /* Conventional space full of 4-byte capabilities, then the 64 in all. */
    while ((rc = pci_func_cap_add(g, FERRY_PCI_CAP_ID_VNDR, 4, 0)) > 0)
        n++;
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_int_eq(n, 48);
    ck_assert_int_eq(pci_func_msi_add(g, 1, 0, 0), -ENOSPC);
    while ((rc = pci_func_ext_cap_add(g, 0x0b, 1, 4, 0)) > 0)
        n++;
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_int_eq(n, 64);
    pci_func_free(fn);
    pci_func_free(g);
    free(r);
}
END_TEST

TCase *pci_edges_tcase(void)
{
    TCase *tc = tcase_create("edges");

    tcase_add_test(tc, test_edges_and_hooks);
    return tc;
}
