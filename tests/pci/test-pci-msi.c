// SPDX-License-Identifier: GPL-2.0-or-later
/* MSI and MSI-X: programming, masking, pending bits, callbacks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/pci/test-pci.h"

#define RD(fn, reg, sz)         pci_func_config_read(fn, reg, sz)
#define WR(fn, reg, sz, v)      pci_func_config_write(fn, reg, sz, v)

/* The last msi_config report of `vector` (the test fails if there is none). */
static const struct ferry_pci_msi_vector *last_cfg(const struct rec *r, unsigned vector)
{
    for (unsigned i = r->nmsicfg; i-- > 0;)
        if (r->msicfg[i].vector == vector)
            return &r->msicfg[i].v;
    ck_abort_msg("no msi_config report for vector %u", vector);
    return &r->msicfg[0].v;
}

START_TEST(test_msi_64bit_maskable)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    const struct ferry_pci_msi_vector *v;
    struct ferry_pci_msi_vector got;
    int off = pci_func_msi_add(fn, 4, FERRY_PCI_MSI_64BIT | FERRY_PCI_MSI_MASKABLE, 0);

    ck_assert_int_eq(off, 0x40);
    ck_assert_int_eq(pci_func_msi_add(fn, 4, 0, 0), -EEXIST);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_MSI, 0), 0x40);
    ck_assert_uint_eq(RD(fn, 0x40, 4), 0x01840005);
    ck_assert(!pci_func_msi_enabled(fn));
    ck_assert_int_eq(pci_func_msi_notify(fn, 0), -ENODEV);

    WR(fn, 0x44, 4, 0xfee00007);
    ck_assert_uint_eq(RD(fn, 0x44, 4), 0xfee00004);
    WR(fn, 0x48, 4, 0x1);
    WR(fn, 0x4c, 4, 0xffff4041);
    ck_assert_uint_eq(RD(fn, 0x4c, 4), 0x4041);
    /* Configured but disabled: reported so. */
    v = last_cfg(r, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert(!v->enabled);
    ck_assert(!v->msix);
    ck_assert_uint_eq(v->msg.address, 0x1fee00004ull);

    /* Enable with 4 messages. */
    r->nmsicfg = 0;
    WR(fn, 0x42, 2, 0x0021);
    ck_assert_uint_eq(RD(fn, 0x42, 2), 0x01a5);
    ck_assert(pci_func_msi_enabled(fn));
    ck_assert_uint_eq(pci_func_msi_vectors(fn), 4);
    ck_assert_uint_eq(r->nmsicfg, 4);
    for (unsigned i = 0; i < 4; i++) {
        v = last_cfg(r, i);
        ck_assert_ptr_nonnull(v);
        ck_assert(v->enabled);
        ck_assert(!v->masked);
        ck_assert_uint_eq(v->msg.data, 0x4040 | i);
    }

    /* Bus mastering off: dropped. */
    ck_assert_int_eq(pci_func_msi_notify(fn, 2), -EPERM);
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MASTER);
    ck_assert_int_eq(pci_func_msi_notify(fn, 2), 1);
    ck_assert_uint_eq(r->nsend, 1);
    ck_assert_uint_eq(r->send[0].vector, 2);
    ck_assert_uint_eq(r->send[0].msg.address, 0x1fee00004ull);
    ck_assert_uint_eq(r->send[0].msg.data, 0x4042);
    ck_assert_int_eq(pci_func_msi_notify(fn, 4), -EINVAL);

    /* Per-vector mask: pending, then delivered on unmask. */
    WR(fn, 0x50, 4, 0x4);
    v = last_cfg(r, 2);
    ck_assert(v->masked);
    ck_assert_int_eq(pci_func_msi_notify(fn, 2), 0);
    ck_assert_uint_eq(r->nsend, 1);
    ck_assert_uint_eq(RD(fn, 0x54, 4), 0x4);
    WR(fn, 0x54, 4, 0);                 /* pending bits are read-only */
    ck_assert_uint_eq(RD(fn, 0x54, 4), 0x4);
    WR(fn, 0x50, 4, 0x0);
    ck_assert_uint_eq(r->nsend, 2);
    ck_assert_uint_eq(r->send[1].vector, 2);
    ck_assert_uint_eq(RD(fn, 0x54, 4), 0);
    /* Only the implemented vectors' mask bits exist. */
    WR(fn, 0x50, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0x50, 4), 0xf);
    ck_assert_int_eq(pci_func_msi_get(fn, 3, &got), 0);
    ck_assert(got.masked);
    WR(fn, 0x50, 4, 0);

    /* Asking for more messages than capable: clamped to 4. */
    WR(fn, 0x42, 2, 0x0051);
    ck_assert_uint_eq(pci_func_msi_vectors(fn), 4);
    /* One message: the data is used as written. */
    WR(fn, 0x42, 2, 0x0001);
    ck_assert_uint_eq(pci_func_msi_vectors(fn), 1);
    ck_assert_int_eq(pci_func_msi_notify(fn, 1), -EINVAL);
    ck_assert_int_eq(pci_func_msi_notify(fn, 0), 1);
    ck_assert_uint_eq(r->send[r->nsend - 1].msg.data, 0x4041);
    v = last_cfg(r, 1);
    ck_assert(!v->enabled);

    /* Disable, reset. */
    WR(fn, 0x42, 2, 0x0000);
    ck_assert(!pci_func_msi_enabled(fn));
    ck_assert(!last_cfg(r, 0)->enabled);
    WR(fn, 0x42, 2, 0x0001);
    pci_func_reset(fn);
    ck_assert(!pci_func_msi_enabled(fn));
    ck_assert_uint_eq(RD(fn, 0x44, 4), 0);
    ck_assert_int_eq(pci_func_msi_get(fn, 4, &got), -EINVAL);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_msi_32bit)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    struct ferry_pci_func *plain = mkfunc(r, 1, 1, 0);
    struct ferry_pci_msi_vector got;

    ck_assert_int_eq(pci_func_msi_add(fn, 3, 0, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msi_add(fn, 64, 0, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msi_add(fn, 1, 0x4, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msi_add(fn, 1, 0, 0x50), 0x50);
    ck_assert_uint_eq(RD(fn, 0x50, 4), 0x00000005);
    WR(fn, 0x54, 4, 0xfee00000);
    WR(fn, 0x58, 2, 0x0031);
    /* 0x5a.. is past the capability: read-only. */
    WR(fn, 0x5a, 2, 0xffff);
    ck_assert_uint_eq(RD(fn, 0x5a, 2), 0);
    WR(fn, 0x52, 2, 0x0071);            /* enable, MME beyond capable */
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MASTER);
    ck_assert_uint_eq(pci_func_msi_vectors(fn), 1);
    ck_assert_int_eq(pci_func_msi_notify(fn, 0), 1);
    ck_assert_uint_eq(r->send[0].msg.address, 0xfee00000);
    ck_assert_uint_eq(r->send[0].msg.data, 0x31);
    ck_assert_int_eq(pci_func_msi_get(fn, 0, &got), 0);
    ck_assert(got.enabled);
    ck_assert(!got.masked);
    ck_assert_int_eq(pci_func_msi_get(plain, 0, &got), -ENODEV);
    ck_assert_uint_eq(pci_func_msi_vectors(plain), 0);
    pci_func_free(fn);
    pci_func_free(plain);
    free(r);
}
END_TEST

static struct ferry_pci_func *msix_func(struct rec *r, unsigned nvec)
{
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1041, FERRY_PCI_INTA);

    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM32, 0x4000), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64, 0x1000), 0);
    ck_assert_int_eq(pci_func_msix_add(fn, nvec, 0, 0, 0, 0x2000, 0), 0x40);
    return fn;
}

START_TEST(test_msix_program_and_mask)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = msix_func(r, 8);
    const struct ferry_pci_msi_vector *v;
    uint64_t val = 0;

    struct ferry_pci_msi_vector got;

    ck_assert_int_eq(pci_func_msi_get(fn, 8, &got), -EINVAL);
    ck_assert_int_eq(pci_func_msi_get(fn, 7, &got), 0);
    ck_assert(got.msix);
    ck_assert(got.masked);
    ck_assert(!got.enabled);
    ck_assert_uint_eq(RD(fn, 0x40, 4), 0x00070011);
    ck_assert_uint_eq(RD(fn, 0x44, 4), 0x00000000);
    ck_assert_uint_eq(RD(fn, 0x48, 4), 0x00002000);
    /* Only enable and function mask are writable. */
    WR(fn, 0x42, 2, 0x3fff);
    ck_assert_uint_eq(RD(fn, 0x42, 2), 0x0007);
    WR(fn, 0x44, 4, 0xffffffff);
    ck_assert_uint_eq(RD(fn, 0x44, 4), 0);

    /* Vectors start masked. */
    ck_assert(pci_func_msix_mmio_read(fn, 0, 12, 4, &val));
    ck_assert_uint_eq(val, 1);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0, 8, &val));
    ck_assert_uint_eq(val, 0);

    /* Program entry 3 with 4-byte writes, entry 5 with 8-byte ones. */
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x30, 4, 0xfee01003));
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x34, 4, 0));
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x38, 4, 0x55));
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x3c, 4, 0xfffffffe));
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x30, 4, &val));
    ck_assert_uint_eq(val, 0xfee01000);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x3c, 4, &val));
    ck_assert_uint_eq(val, 0);
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x50, 8, 0x00000001fee02000ull));
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x58, 8, 0x0000000000000066ull));
    v = last_cfg(r, 3);
    ck_assert_ptr_nonnull(v);
    ck_assert(v->msix);
    ck_assert(!v->enabled);
    ck_assert(!v->masked);
    ck_assert_uint_eq(v->msg.address, 0xfee01000);
    ck_assert_uint_eq(v->msg.data, 0x55);
    v = last_cfg(r, 5);
    ck_assert_uint_eq(v->msg.address, 0x1fee02000ull);

    ck_assert_int_eq(pci_func_msi_notify(fn, 3), -ENODEV);
    r->nmsicfg = 0;
    WR(fn, 0x43, 1, 0x80);
    ck_assert(pci_func_msix_enabled(fn));
    ck_assert_uint_eq(pci_func_msi_vectors(fn), 8);
    ck_assert_uint_eq(r->nmsicfg, 8);
    ck_assert(last_cfg(r, 3)->enabled);
    ck_assert(!last_cfg(r, 3)->masked);
    ck_assert(last_cfg(r, 0)->masked);

    ck_assert_int_eq(pci_func_msi_notify(fn, 3), -EPERM);
    WR(fn, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MASTER | FERRY_PCI_COMMAND_MEMORY);
    ck_assert_int_eq(pci_func_msi_notify(fn, 3), 1);
    ck_assert_uint_eq(r->nsend, 1);
    ck_assert_uint_eq(r->send[0].vector, 3);
    ck_assert_uint_eq(r->send[0].msg.data, 0x55);
    ck_assert_int_eq(pci_func_msi_notify(fn, 8), -EINVAL);

    /* Masked vector 0: pending bit in the PBA, delivered on unmask. */
    ck_assert_int_eq(pci_func_msi_notify(fn, 0), 0);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x2000, 8, &val));
    ck_assert_uint_eq(val, 0x1);
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x2000, 8, 0));   /* PBA is read-only */
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x2000, 1, &val));
    ck_assert_uint_eq(val, 0x1);
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x00, 4, 0xfee00000));
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x08, 4, 0x41));
    ck_assert_uint_eq(r->nsend, 1);
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x0c, 1, 0x00));
    ck_assert_uint_eq(r->nsend, 2);
    ck_assert_uint_eq(r->send[1].vector, 0);
    ck_assert_uint_eq(r->send[1].msg.data, 0x41);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x2000, 8, &val));
    ck_assert_uint_eq(val, 0);

    /* Function mask holds everything back, unmasking releases it. */
    WR(fn, 0x43, 1, 0xc0);
    ck_assert(last_cfg(r, 3)->masked);
    ck_assert_int_eq(pci_func_msi_notify(fn, 3), 0);
    ck_assert_int_eq(pci_func_msi_notify(fn, 0), 0);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x2000, 8, &val));
    ck_assert_uint_eq(val, 0x9);
    WR(fn, 0x43, 1, 0x80);
    ck_assert_uint_eq(r->nsend, 4);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x2000, 8, &val));
    ck_assert_uint_eq(val, 0);

    /* Disabled: MSI-X off, vectors reported disabled. */
    WR(fn, 0x43, 1, 0x00);
    ck_assert(!last_cfg(r, 3)->enabled);
    ck_assert_int_eq(pci_func_msi_notify(fn, 3), -ENODEV);

    /* Reset masks the table again. */
    pci_func_reset(fn);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x3c, 4, &val));
    ck_assert_uint_eq(val, 1);
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x30, 4, &val));
    ck_assert_uint_eq(val, 0);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_msix_mmio_edges)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = msix_func(r, 8);
    uint64_t val = 0;

    /* Outside table and PBA, other BARs: not ours. */
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0x80, 4, &val));
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0x1ffc, 4, &val));
    ck_assert(!pci_func_msix_mmio_read(fn, 2, 0x0, 4, &val));
    ck_assert(!pci_func_msix_mmio_write(fn, 1, 0x0, 4, 0));
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0x2008, 4, &val));
    ck_assert(!pci_func_msix_mmio_read(fn, 0, UINT64_MAX - 2, 8, &val));
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0, 0, &val));
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0, 16, &val));
    /* Straddling the end of the table: the inside bytes only. */
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x7c, 8, &val));
    ck_assert_uint_eq(val, 0x1);
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x7c, 8, 0xffffffffffffffffull));
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x7c, 4, &val));
    ck_assert_uint_eq(val, 0x1);
    /* Unaligned access across two entries. */
    ck_assert(pci_func_msix_mmio_write(fn, 0, 0x0e, 4, 0xaabbccdd));
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x0c, 8, &val));
    ck_assert_uint_eq(val, 0x0000aab800000001ull);   /* 0xdd, 0xcc hit RO bytes */
    ck_assert(pci_func_msix_mmio_read(fn, 0, 0x0e, 4, &val));
    ck_assert_uint_eq(val, 0xaab80000);   /* address bits 1:0 stay 0 */
    pci_func_free(fn);

    /* A function without MSI-X: never ours. */
    fn = mkfunc(r, 1, 1, 0);
    ck_assert(!pci_func_msix_mmio_read(fn, 0, 0, 4, &val));
    ck_assert(!pci_func_msix_enabled(fn));
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_msix_add_errors)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1041, FERRY_PCI_INTA);

    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_MEM32, 0x1000), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_IO, 0x100), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64, 0x1000), 0);
    ck_assert_int_eq(pci_func_msix_add(fn, 0, 0, 0, 0, 0x800, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msix_add(fn, 2049, 0, 0, 0, 0x800, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 1, 0, 0, 0x800, 0), -EINVAL);    /* I/O */
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 3, 0, 0, 0x800, 0), -EINVAL);    /* upper */
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 4, 0, 0, 0x800, 0), -EINVAL);    /* none */
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 9, 0, 0, 0x800, 0), -EINVAL);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 4, 0, 0x800, 0), -EINVAL);    /* align */
    ck_assert_int_eq(pci_func_msix_add(fn, 257, 0, 0, 2, 0, 0), -ERANGE);     /* 4 KiB+ */
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0xff8, 2, 0, 0), -ERANGE);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0xffffff00, 2, 0, 0), -ERANGE);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0, 0, 0x38, 0), -EINVAL);    /* overlap */
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0, 2, 0, 0x41), -EINVAL);    /* cap off */
    ck_assert_int_eq(pci_func_msix_add(fn, 2048, 2, 0, 2, 0, 0), -ERANGE);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0, 2, 0x100, 0x60), 0x60);
    ck_assert_int_eq(pci_func_msix_add(fn, 4, 0, 0, 2, 0x100, 0), -EEXIST);
    ck_assert_uint_eq(RD(fn, 0x64, 4), 0);
    ck_assert_uint_eq(RD(fn, 0x68, 4), 0x102);
    pci_func_free(fn);
    free(r);
}
END_TEST

START_TEST(test_msi_hidden_cap_still_works)
{
    /* A QEMU-hosted device without MSI: the capability is hidden from the list. */
    struct rec *r = rec_new();
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    int msi = pci_func_msi_add(fn, 1, FERRY_PCI_MSI_64BIT, 0);
    int vndr = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_VNDR, 4, 0);

    ck_assert_int_gt(msi, 0);
    ck_assert_int_gt(vndr, 0);
    ck_assert_int_eq(pci_func_cap_hide(fn, (unsigned)msi), 0);
    ck_assert_uint_eq(pci_func_cap_find(fn, FERRY_PCI_CAP_ID_MSI, 0), 0);
    ck_assert_uint_eq(pci_func_cap_next(fn, 0), (unsigned)vndr);
    ck_assert_uint_eq(pci_func_cap_next(fn, (unsigned)vndr), 0);
    pci_func_free(fn);
    free(r);
}
END_TEST

TCase *pci_msi_tcase(void)
{
    TCase *tc = tcase_create("msi");

    tcase_add_test(tc, test_msi_64bit_maskable);
    tcase_add_test(tc, test_msi_32bit);
    tcase_add_test(tc, test_msix_program_and_mask);
    tcase_add_test(tc, test_msix_mmio_edges);
    tcase_add_test(tc, test_msix_add_errors);
    tcase_add_test(tc, test_msi_hidden_cap_still_works);
    return tc;
}
