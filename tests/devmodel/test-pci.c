// SPDX-License-Identifier: GPL-2.0-or-later
/* The PCI bus glue: config ioreqs, enumeration, BAR programming moving claims, INTx. */
#include <errno.h>

#include "pci/pcimodel.h"
#include "tests/devmodel/test-devmodel.h"

static void pci_tb(struct tb *t)
{
    tb_init(t, false);
    tb_add(t, "pci-host", "pci", NULL);
    tb_add(t, "acpi-pm", "pm", NULL);
    tb_add(t, "pci-test", "pt", NULL);
    ck_assert_int_eq(dm_start(t->dm), 0);
}

START_TEST(test_pci_enumeration)
{
    struct tb t;

    pci_tb(&t);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PCI, 0, 0xff));       /* bus 0 by SBDF */
    ck_assert_uint_eq(tb_cfg_read(&t, 0, 0, 0, 4), 0x12378086); /* i440FX host bridge */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0, 4), 0xfe011234); /* the test function at 01.0 */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x08, 4) >> 8, 0xff0000);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x3d, 1), 1);       /* INTA */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x3c, 1), pci_intx_gsi(1, 0));
    ck_assert_uint_eq(tb_cfg_read(&t, 2, 0, 0, 4), 0xffffffff); /* nobody at 02.0 */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 3, 0, 2), 0xffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 0, 0, 0, 1), 0x86);
    tb_fini(&t);
}
END_TEST

/* The guest programs pci-test's MSI capability; the device's vector reaches the backend. */
START_TEST(test_pci_msi)
{
    struct tb t;

    pci_tb(&t);
    unsigned cap = tb_cfg_read(&t, 1, 0, 0x34, 1);
    ck_assert(tb_cfg_read(&t, 1, 0, 0x06, 2) & 0x10);               /* capability list */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, cap, 1), 0x05);           /* MSI */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0001);                         /* I/O, no bus master */
    /* MSI disabled: bit 1 of +4 sends nothing. */
    tb_out(&t, 0xc004, 4, 2);
    ck_assert_uint_eq(t.msis, 0);
    tb_cfg_write(&t, 1, 0, cap + 4, 4, 0xfee01000);                  /* address (64-bit cap) */
    tb_cfg_write(&t, 1, 0, cap + 8, 4, 0);
    tb_cfg_write(&t, 1, 0, cap + 12, 2, 0x4051);                     /* data */
    tb_cfg_write(&t, 1, 0, cap + 2, 2, 0x0001);                      /* MSI enable */
    /* No bus mastering: dropped, like hardware. */
    tb_out(&t, 0xc004, 4, 2);
    ck_assert_uint_eq(t.msis, 0);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0005);
    tb_out(&t, 0xc004, 4, 2);
    ck_assert_uint_eq(t.msis, 1);
    ck_assert_uint_eq(t.msi_address, 0xfee01000);
    ck_assert_uint_eq(t.msi_data, 0x4051);
    /* Masked: pending, sent when unmasked. */
    tb_cfg_write(&t, 1, 0, cap + 16, 4, 1);
    tb_out(&t, 0xc004, 4, 2);
    ck_assert_uint_eq(t.msis, 1);
    tb_cfg_write(&t, 1, 0, cap + 16, 4, 0);
    ck_assert_uint_eq(t.msis, 2);
    /* MSIs the hypervisor refuses: the guest can send many, the log gets a few. */
    t.msi_fail = -ENOTCONN;
    t.log_lines = 0;
    for (unsigned i = 0; i < 500; i++)
        tb_out(&t, 0xc004, 4, 2);
    ck_assert_uint_eq(t.msis, 502);
    ck_assert_uint_lt(t.log_lines, 50);
    tb_fini(&t);
}
END_TEST

START_TEST(test_pci_bar_programming)
{
    struct tb t;

    pci_tb(&t);
    /* Sizing: all ones in, size mask out. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x10, 4), 0xfffffff1);   /* 16 ports, I/O */
    tb_cfg_write(&t, 1, 0, 0x14, 4, 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x14, 4), 0xfffff000);   /* 4 KiB memory */
    /* Program both, then enable decoding: the regions and claims appear. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    tb_cfg_write(&t, 1, 0, 0x14, 4, 0xd0000000);
    ck_assert_uint_eq(tb_in(&t, 0xc008, 4), 0xffffffff);             /* not decoding yet */
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0003);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xc000, 0xc00f));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0000000, 0xd0000fff));
    ck_assert_uint_eq(tb_in(&t, 0xc008, 4), 0x59525246);             /* "FRRY" */
    tb_out(&t, 0xc000, 4, 0xcafef00d);
    ck_assert_uint_eq(tb_in(&t, 0xc000, 4), 0xcafef00d);
    ioreq_t req = { .addr = 0xd0000100, .size = 8, .count = 1, .dir = IOREQ_WRITE,
                    .type = IOREQ_TYPE_COPY, .data = 0x0123456789abcdefull };
    dm_handle_ioreq(t.dm, 0, &req);
    req = (ioreq_t){ .addr = 0xd0000104, .size = 4, .count = 1, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_COPY };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, 0x01234567);
    /* Move the I/O BAR: the old claim goes, the new one comes. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc100);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xc000, 0xc00f));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xc100, 0xc10f));
    ck_assert_uint_eq(tb_in(&t, 0xc000, 4), 0xffffffff);
    ck_assert_uint_eq(tb_in(&t, 0xc100, 4), 0xcafef00d);
    /* Over the ACPI PM block (another device): not decoded, no crash. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xb000);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xb000, 0xb00f));
    ck_assert_uint_eq(tb_in(&t, 0xb000, 2), 0);                      /* still PM1_STS */
    /* Over guest RAM (reserved): refused too. */
    tb_cfg_write(&t, 1, 0, 0x14, 4, 0x00100000);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_MMIO, 0x00100000, 0x00100fff));
    /* Decoding off: claims go away. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc200);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xc200, 0xc20f));
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0000);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xc200, 0xc20f));
    tb_fini(&t);
}
END_TEST

START_TEST(test_pci_intx_and_hotplug)
{
    struct tb t;
    uint32_t gsi = pci_intx_gsi(1, 0);

    pci_tb(&t);
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0001);
    tb_out(&t, 0xc004, 4, 1);
    ck_assert(t.line[gsi]);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x06, 2) & 0x08, 0x08);  /* status: interrupt */
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0401);                         /* INTx disable */
    ck_assert(!t.line[gsi]);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0001);
    ck_assert(t.line[gsi]);
    tb_out(&t, 0xc004, 4, 0);
    ck_assert(!t.line[gsi]);
    /* Hot-add a second function at 05.0, then remove both: claims and lines go. */
    ck_assert_int_eq(tb_try_add(&t, "pci-test", "pt2", "addr=5"), 0);
    ck_assert_uint_eq(tb_cfg_read(&t, 5, 0, 0, 4), 0xfe011234);
    ck_assert_int_eq(tb_try_add(&t, "pci-test", "pt3", "addr=5"), -EBUSY);
    ck_assert_int_eq(tb_try_add(&t, "pci-test", "pt3", "addr=40"), -EINVAL);
    tb_out(&t, 0xc004, 4, 1);
    ck_assert_int_eq(dm_device_remove(t.dm, "pt"), 0);
    ck_assert(!t.line[gsi]);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0, 4), 0xffffffff);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xc000, 0xc00f));
    ck_assert_int_eq(dm_device_remove(t.dm, "pt2"), 0);
    /* Without a bus a PCI device cannot be added; a second bus is refused. */
    ck_assert_int_eq(tb_try_add(&t, "pci-host", "pci2", NULL), -EBUSY);
    tb_fini(&t);
    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "pci-test", "lonely", NULL), -ENODEV);
    tb_fini(&t);
}
END_TEST

START_TEST(test_pci_save_restore)
{
    struct tb t;
    GByteArray *img = g_byte_array_new();

    pci_tb(&t);
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0001);
    tb_out(&t, 0xc000, 4, 0x600dcafe);
    ck_assert_int_eq(dm_save(t.dm, img), 0);
    /* Reset: the BAR stops decoding; restore brings back the BAR, its claim and the data. */
    dm_reset(t.dm);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xc000, 0xc00f));
    ck_assert_uint_eq(tb_in(&t, 0xc000, 4), 0xffffffff);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xc000, 0xc00f));
    ck_assert_uint_eq(tb_in(&t, 0xc000, 4), 0x600dcafe);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0x10, 4), 0xc001);
    g_byte_array_free(img, TRUE);
    tb_fini(&t);
}
END_TEST

/* A guest moving a BAR onto another device again and again: a few log lines, not two per move. */
START_TEST(test_pci_parse_addr)
{
    static const char *const bad[] = { "", "0", "0.1", "20", "1.8", "1.", "x", "1.0x", "-1",
                                       "1 ", "100000001", "001", "1.00" };
    int devfn = 0;

    ck_assert_int_eq(dm_pci_parse_addr(NULL, &devfn), 0);
    ck_assert_int_eq(devfn, -1);
    ck_assert_int_eq(dm_pci_parse_addr("1f.7", &devfn), 0);
    ck_assert_int_eq(devfn, 31 << 3 | 7);
    ck_assert_int_eq(dm_pci_parse_addr("3", &devfn), 0);
    ck_assert_int_eq(devfn, 3 << 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(dm_pci_parse_addr(bad[i], &devfn) == -EINVAL, "'%s' taken", bad[i]);
}
END_TEST

START_TEST(test_pci_bar_overlap_log)
{
    struct tb t;

    pci_tb(&t);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0001);                         /* I/O decode */
    t.log_lines = 0;
    for (unsigned i = 0; i < 30; i++) {       /* the harness keeps 64 claims */
        tb_cfg_write(&t, 1, 0, 0x10, 4, 0xb000);                     /* onto acpi-pm */
        tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    }
    ck_assert_uint_eq(tb_in(&t, 0xc008, 4), 0x59525246);              /* decoded at 0xc000 */
    /* This device's limiter and pci/'s: a burst each. */
    ck_assert_msg(t.log_lines <= 25, "%u log lines for 30 overlapping moves", t.log_lines);
    tb_fini(&t);
}
END_TEST

TCase *dm_pci_tcase(void)
{
    TCase *tc = tcase_create("pci");

    tcase_add_test(tc, test_pci_enumeration);
    tcase_add_test(tc, test_pci_parse_addr);
    tcase_add_test(tc, test_pci_bar_programming);
    tcase_add_test(tc, test_pci_msi);
    tcase_add_test(tc, test_pci_bar_overlap_log);
    tcase_add_test(tc, test_pci_intx_and_hotplug);
    tcase_add_test(tc, test_pci_save_restore);
    return tc;
}
