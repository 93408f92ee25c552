/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest's view of a capability list with MSI and MSI-X removed.  Stock
 * QEMU 7.2 devices in x-remote drop their MSI/MSI-X capabilities themselves
 * (no MSI-capable interrupt controller there), so the filter is checked on
 * config images laid out like real devices' here.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mpqemu/qemu-remote.h"
#include "tests/check-main.h"

static uint8_t read_view(const uint8_t *cfg, const struct mpqemu_remote_capview *v, unsigned o)
{
    return v->value[o] >= 0 ? (uint8_t)v->value[o] : cfg[o] & v->mask[o];
}

/* PM at 0x40 -> MSI (64-bit, masking) at 0x50 -> PCIe at 0x70 -> MSI-X at 0xb0 */
START_TEST(test_mixed_chain)
{
    uint8_t cfg[256] = { 0 };
    struct mpqemu_remote_capview v;
    unsigned p, n = 0;
    uint8_t ids[8];

    cfg[0x06] = 0x10;
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x01; cfg[0x41] = 0x50;
    cfg[0x50] = 0x05; cfg[0x51] = 0x70; cfg[0x52] = 0x80; cfg[0x53] = 0x01;
    cfg[0x70] = 0x10; cfg[0x71] = 0xb0;
    cfg[0xb0] = 0x11; cfg[0xb1] = 0x00;
    mpqemu_remote_capview_build(cfg, &v);
    ck_assert_uint_eq(v.hidden, 2);
    ck_assert(v.express);
    p = read_view(cfg, &v, 0x34);
    while (p && n < 8) {
        ids[n++] = read_view(cfg, &v, p);
        p = read_view(cfg, &v, p + 1);
    }
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ids[0], 0x01);
    ck_assert_uint_eq(ids[1], 0x10);
    /* MSI with 64-bit and masking is 24 bytes: all hidden, writes dropped. */
    for (unsigned o = 0x50; o < 0x68; o++) {
        ck_assert_uint_eq(read_view(cfg, &v, o), 0);
        ck_assert(v.drop[o]);
    }
    ck_assert(!v.drop[0x68]);
    for (unsigned o = 0xb0; o < 0xbc; o++)
        ck_assert(v.drop[o]);
    ck_assert_uint_eq(read_view(cfg, &v, 0x06) & 0x10, 0x10);
}
END_TEST

START_TEST(test_only_msi)
{
    uint8_t cfg[256] = { 0 };
    struct mpqemu_remote_capview v;

    cfg[0x06] = 0x18;   /* capability list + interrupt status */
    cfg[0x34] = 0x50;
    cfg[0x50] = 0x05;
    mpqemu_remote_capview_build(cfg, &v);
    ck_assert_uint_eq(v.hidden, 1);
    ck_assert_uint_eq(read_view(cfg, &v, 0x34), 0);
    ck_assert_uint_eq(read_view(cfg, &v, 0x06), 0x08);
    ck_assert_uint_eq(read_view(cfg, &v, 0x50), 0);
}
END_TEST

START_TEST(test_no_msi_untouched)
{
    uint8_t cfg[256];
    struct mpqemu_remote_capview v;

    for (unsigned i = 0; i < 256; i++)
        cfg[i] = (uint8_t)(i * 7);
    cfg[0x06] = 0x10;
    cfg[0x34] = 0xa0;
    cfg[0xa0] = 0x10; cfg[0xa1] = 0;
    mpqemu_remote_capview_build(cfg, &v);
    ck_assert_uint_eq(v.hidden, 0);
    for (unsigned i = 0; i < 256; i++) {
        ck_assert_uint_eq(read_view(cfg, &v, i), cfg[i]);
        ck_assert(!v.drop[i]);
    }
}
END_TEST

START_TEST(test_hostile_loop)
{
    uint8_t cfg[256] = { 0 };
    struct mpqemu_remote_capview v;

    cfg[0x06] = 0x10;
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x05; cfg[0x41] = 0x44;
    cfg[0x44] = 0x01; cfg[0x45] = 0x40;     /* loops back */
    cfg[0xfc] = 0x11; cfg[0xfd] = 0x00;     /* never reached */
    mpqemu_remote_capview_build(cfg, &v);
    ck_assert_uint_eq(v.hidden, 1);
    /* A capability at the very end cannot run past the array. */
    memset(cfg, 0, sizeof(cfg));
    cfg[0x06] = 0x10;
    cfg[0x34] = 0xfc;
    cfg[0xfc] = 0x05; cfg[0xfe] = 0x80; cfg[0xff] = 0x01;
    mpqemu_remote_capview_build(cfg, &v);
    ck_assert_uint_eq(v.hidden, 1);
    ck_assert(v.drop[0xff]);
}
END_TEST

static TCase *capview_tcase(void)
{
    return FERRY_CHECK_TCASE("capview", 0, test_mixed_chain, test_only_msi, test_no_msi_untouched,
                             test_hostile_loop);
}

FERRY_CHECK_MAIN("qemu-remote-capview", capview_tcase);
