// SPDX-License-Identifier: GPL-2.0-or-later
/* Save/restore of a function's state: round trip, rejection, forged blobs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/pci/test-pci.h"

#define RD(fn, reg, sz)         pci_func_config_read(fn, reg, sz)
#define WR(fn, reg, sz, v)      pci_func_config_write(fn, reg, sz, v)

static struct ferry_pci_func *mkrich(struct rec *r)
{
    struct ferry_pci_func *fn = mkfunc(r, 0x1af4, 0x1041, FERRY_PCI_INTA);

    ck_assert_int_eq(pci_func_bar_declare(fn, 0, FERRY_PCI_BAR_IO, 32), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 1, FERRY_PCI_BAR_MEM32, 0x4000), 0);
    ck_assert_int_eq(pci_func_bar_declare(fn, 2, FERRY_PCI_BAR_MEM64, 0x10000), 0);
    ck_assert_int_eq(pci_func_rom_declare(fn, 0x8000), 0);
    ck_assert_int_eq(pci_func_msi_add(fn, 8, FERRY_PCI_MSI_64BIT | FERRY_PCI_MSI_MASKABLE, 0),
                     0x40);
    ck_assert_int_eq(pci_func_msix_add(fn, 16, 1, 0, 1, 0x1000, 0), 0x58);
    return fn;
}

/* Guest programming: BARs, decode, MSI with a masked pending vector, MSI-X. */
static void program(struct ferry_pci_func *fn)
{
    WR(fn, 0x10, 4, 0xc000);
    WR(fn, 0x14, 4, 0xfe000000);
    WR(fn, 0x18, 4, 0x00000000);
    WR(fn, 0x1c, 4, 0x00000002);
    WR(fn, FERRY_PCI_ROM_ADDRESS, 4, 0xfe100001);
    WR(fn, FERRY_PCI_INTERRUPT_LINE, 1, 0x0b);
    WR(fn, FERRY_PCI_COMMAND, 2, 0x0007);
    WR(fn, 0x44, 4, 0xfee00000);
    WR(fn, 0x48, 4, 0);
    WR(fn, 0x4c, 2, 0x4020);
    WR(fn, 0x50, 4, 0x2);
    WR(fn, 0x42, 2, 0x0031);            /* enable, 8 messages */
    ck_assert_int_eq(pci_func_msi_notify(fn, 1), 0);
    ck_assert(pci_func_msix_mmio_write(fn, 1, 0x20, 4, 0xfee01000));
    ck_assert(pci_func_msix_mmio_write(fn, 1, 0x28, 4, 0x77));
    ck_assert(pci_func_msix_mmio_write(fn, 1, 0x2c, 4, 0));
    pci_func_set_irq(fn, true);
}

START_TEST(test_save_restore_round_trip)
{
    struct rec *ra = rec_new(), *rb = rec_new();
    struct ferry_pci_func *a = mkrich(ra), *b = mkrich(rb);
    size_t n = pci_func_save_size(a);
    uint8_t *blob = malloc(n), ca[4096], cb[4096];
    uint64_t va = 0, vb = 0;
    struct ferry_pci_bar_range out;
    struct ferry_pci_msi_vector vec;

    ck_assert_ptr_nonnull(blob);
    ck_assert_uint_eq(n, 32 + 4096 + 16 * 16 + 8);
    program(a);
    ck_assert_int_eq(pci_func_save(a, blob, n - 1), -ENOSPC);
    ck_assert_int_eq(pci_func_save(a, blob, n), 0);

    rb->check_claims = true;
    ck_assert_int_eq(pci_func_restore(b, blob, n), 0);
    ck_assert_int_eq(pci_func_config_get(a, 0, ca, sizeof(ca)), 0);
    ck_assert_int_eq(pci_func_config_get(b, 0, cb, sizeof(cb)), 0);
    ck_assert_mem_eq(ca, cb, sizeof(ca));
    for (uint64_t off = 0; off < 16 * 16; off += 8) {
        ck_assert(pci_func_msix_mmio_read(a, 1, off, 8, &va));
        ck_assert(pci_func_msix_mmio_read(b, 1, off, 8, &vb));
        ck_assert_uint_eq(va, vb);
    }
    /* Side effects replayed: BARs claimed, INTx, MSI state reported. */
    ck_assert_uint_eq(rb->nremap, 4);
    ck_assert_int_eq(pci_func_bar_get(b, 2, &out), 0);
    ck_assert(out.mapped);
    ck_assert_uint_eq(out.addr, 0x200000000ull);
    ck_assert(pci_func_irq_level(b));
    ck_assert_uint_eq(RD(b, FERRY_PCI_STATUS, 2) & FERRY_PCI_STATUS_INTERRUPT,
                      FERRY_PCI_STATUS_INTERRUPT);
    ck_assert_uint_gt(rb->nmsicfg, 0);
    ck_assert_int_eq(pci_func_msi_get(b, 1, &vec), 0);
    ck_assert(vec.enabled);
    ck_assert(vec.masked);
    ck_assert_uint_eq(vec.msg.data, 0x4021);
    /* The pending MSI survives and is sent when unmasked. */
    WR(b, 0x50, 4, 0);
    ck_assert_uint_eq(rb->nsend, 1);
    ck_assert_uint_eq(rb->send[0].vector, 1);

    /* Restoring a fresh function's blob stops the decoding again. */
    struct ferry_pci_func *c = mkrich(ra);
    ck_assert_int_eq(pci_func_save(c, blob, n), 0);
    ck_assert_int_eq(pci_func_restore(b, blob, n), 0);
    ck_assert_int_eq(pci_func_bar_get(b, 1, &out), 0);
    ck_assert(!out.mapped);
    for (unsigned s = 0; s < 16; s++)
        for (unsigned k = 0; k < FERRY_PCI_NUM_REGIONS; k++)
            ck_assert(!rb->claims[s].r[k].mapped);
    ck_assert(!pci_func_irq_level(b));
    pci_func_free(a);
    pci_func_free(b);
    pci_func_free(c);
    free(blob);
    free(ra);
    free(rb);
}
END_TEST

START_TEST(test_restore_rejects)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *a = mkrich(r), *b = mkrich(r);
    struct ferry_pci_func *other = mkfunc(r, 0x1af4, 0x1000, FERRY_PCI_INTA);
    size_t n = pci_func_save_size(a);
    uint8_t *blob = malloc(n), *bad = malloc(n), before[4096], after[4096];

    ck_assert_ptr_nonnull(blob);
    ck_assert_ptr_nonnull(bad);
    program(a);
    ck_assert_int_eq(pci_func_save(a, blob, n), 0);
    ck_assert_int_eq(pci_func_config_get(b, 0, before, sizeof(before)), 0);

    ck_assert_int_eq(pci_func_restore(b, blob, n - 1), -EINVAL);
    ck_assert_int_eq(pci_func_restore(b, blob, 3), -EINVAL);
    ck_assert_int_eq(pci_func_restore(b, blob, 0), -EINVAL);
    const unsigned fields[] = { 0, 4, 6, 8, 12, 14, 16, 24, 28 };
    for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        memcpy(bad, blob, n);
        bad[fields[i]] ^= 0x01;
        ck_assert_int_eq(pci_func_restore(b, bad, n), -EINVAL);
    }
    /* Another device's blob. */
    ck_assert_int_eq(pci_func_restore(other, blob, n), -EINVAL);
    ck_assert_int_eq(pci_func_config_get(b, 0, after, sizeof(after)), 0);
    ck_assert_mem_eq(before, after, sizeof(before));
    ck_assert_uint_eq(r->nremap, 4);        /* only a's own programming */

    /* A forged blob cannot change read-only parts: class, BAR sizes, caps. */
    memcpy(bad, blob, n);
    memset(bad + 32 + 0x08, 0xab, 4);       /* revision, class */
    memset(bad + 32 + 0x14, 0xff, 4);       /* BAR1 with size bits */
    bad[32 + FERRY_PCI_CAPABILITY_LIST] = 0x10;
    bad[32 + 0x40] = 0x11;
    ck_assert_int_eq(pci_func_restore(b, bad, n), 0);
    ck_assert_uint_eq(RD(b, 0x08, 4), 0x02000003);
    ck_assert_uint_eq(RD(b, 0x14, 4), 0xffffc000);
    ck_assert_uint_eq(RD(b, FERRY_PCI_CAPABILITY_LIST, 1), 0x40);
    ck_assert_uint_eq(RD(b, 0x40, 1), FERRY_PCI_CAP_ID_MSI);
    pci_func_free(a);
    pci_func_free(b);
    pci_func_free(other);
    free(blob);
    free(bad);
    free(r);
}
END_TEST

START_TEST(test_restore_corrupted_blobs)
{
    struct rec *r = rec_new();
    struct ferry_pci_func *a = mkrich(r), *b = mkrich(r);
    size_t n = pci_func_save_size(a);
    uint8_t *blob = malloc(n), *bad = malloc(n);
    uint64_t s = 0x5a5e;

    ck_assert_ptr_nonnull(blob);
    ck_assert_ptr_nonnull(bad);
    program(a);
    ck_assert_int_eq(pci_func_save(a, blob, n), 0);
    r->check_claims = false;
    for (unsigned iter = 0; iter < 3000; iter++) {
        memcpy(bad, blob, n);
        for (unsigned k = 0; k < 16; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            /* Mostly the config and MSI-X parts; now and then the header. */
            size_t at = (s >> 8) % ((s & 0xf) ? n - 32 : 32) + ((s & 0xf) ? 32 : 0);

            bad[at] = (uint8_t)(s >> 40);
        }
        int rc = pci_func_restore(b, bad, n);
        ck_assert(rc == 0 || rc == -EINVAL);
    }
    pci_func_reset(b);
    pci_func_free(a);
    pci_func_free(b);
    free(blob);
    free(bad);
    free(r);
}
END_TEST

START_TEST(test_save_restore_msi_unmaskable_pending)
{
    struct rec *ra = rec_new(), *rb = rec_new();
    struct ferry_pci_func *a = mkfunc(ra, 1, 2, 0), *b = mkfunc(rb, 1, 2, 0);
    uint8_t blob[32 + 4096];

    ck_assert_int_eq(pci_func_msi_add(a, 2, 0, 0), 0x40);
    ck_assert_int_eq(pci_func_msi_add(b, 2, 0, 0), 0x40);
    ck_assert_uint_eq(pci_func_save_size(a), sizeof(blob));
    WR(a, 0x44, 4, 0xfee00000);
    WR(a, 0x48, 2, 0x40);
    WR(a, 0x42, 2, 0x0011);
    /* Bus mastering off: dropped, not pending; the restore carries no pending. */
    ck_assert_int_eq(pci_func_msi_notify(a, 1), -EPERM);
    ck_assert_int_eq(pci_func_save(a, blob, sizeof(blob)), 0);
    ck_assert_int_eq(pci_func_restore(b, blob, sizeof(blob)), 0);
    ck_assert_uint_eq(pci_func_msi_vectors(b), 2);
    WR(b, FERRY_PCI_COMMAND, 2, FERRY_PCI_COMMAND_MASTER);
    ck_assert_uint_eq(rb->nsend, 0);
    ck_assert_int_eq(pci_func_msi_notify(b, 1), 1);
    ck_assert_uint_eq(rb->send[0].msg.data, 0x41);
    pci_func_free(a);
    pci_func_free(b);
    free(ra);
    free(rb);
}
END_TEST

TCase *pci_save_tcase(void)
{
    TCase *tc = tcase_create("save");

    tcase_add_test(tc, test_save_restore_round_trip);
    tcase_add_test(tc, test_restore_rejects);
    tcase_add_test(tc, test_restore_corrupted_blobs);
    tcase_add_test(tc, test_save_restore_msi_unmaskable_pending);
    return tc;
}
