// SPDX-License-Identifier: GPL-2.0-or-later
/* Broken configs are rejected, and the message names the field. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/acpi/test-acpi.h"

static struct acpi_config cfg;
static struct test_set set;

static void setup(void)
{
    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 1ull << 30), 0);
}

static void teardown(void)
{
    test_set_free(&set);
}

/* Both the checker and a build must reject cfg naming `field`. */
static void rejected(const char *field)
{
    struct test_log log = { { 0 }, 0 };

    test_set_free(&set);
    ck_assert_int_eq(acpi_config_check(&cfg, test_log_fn, &log), -EINVAL);
    ck_assert_msg(strstr(log.last, field) != NULL, "message '%s' does not name %s",
                  log.last, field);
    ck_assert_int_eq(test_set_build(&set, &cfg, 0xe0000), -EINVAL);
    ck_assert_msg(strstr(set.log.last, field) != NULL, "build message '%s' does not name %s",
                  set.log.last, field);
}

START_TEST(zero_vcpus)
{
    cfg.nr_vcpus = 0;
    rejected("nr_vcpus");
    ck_assert_int_eq(acpi_config_init_default(&cfg, 0, 1ull << 30), -EINVAL);
}
END_TEST

START_TEST(too_many_vcpus_for_xapic)
{
    ck_assert_int_eq(acpi_config_init_default(&cfg, 300, 1ull << 30), 0);
    cfg.madt_form = ACPI_MADT_XAPIC;
    rejected("nr_vcpus");
}
END_TEST

START_TEST(apic_id_too_big_for_xapic)
{
    cfg.vcpus[2].apic_id = 255;
    rejected("vcpus[2].apic_id");
    cfg.madt_form = ACPI_MADT_X2APIC;
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);
}
END_TEST

START_TEST(duplicate_apic_id)
{
    cfg.vcpus[3].apic_id = 1;
    rejected("vcpus[3].apic_id");
}
END_TEST

START_TEST(node_without_memory)
{
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    for (uint32_t i = 0; i < cfg.nr_mem; i++)
        cfg.mem[i].node = 0;
    rejected("numa node 1 has no memory");
}
END_TEST

/* A refused split leaves the config as it was, still valid. */
START_TEST(numa_refused_leaves_config)
{
    static struct acpi_config before;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 2ull << 20), 0);
    before = cfg;
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), -EINVAL);   /* 1 MiB a node */
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);

    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 1ull << 30), 0);
    cfg.nr_mem = ACPI_MEM_RANGES_MAX;
    for (uint32_t i = 0; i < cfg.nr_mem; i++)
        cfg.mem[i] = (struct acpi_mem_range){ (uint64_t)i << 24, 3ull << 20, 0 };
    before = cfg;
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 3), -E2BIG);   /* splits 2 ranges */
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}
END_TEST

START_TEST(node_out_of_range)
{
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    cfg.vcpus[1].node = 2;
    rejected("vcpus[1].node");
}
END_TEST

START_TEST(overlapping_ranges)
{
    cfg.mem[cfg.nr_mem++] = (struct acpi_mem_range){ 0x100000, 0x100000, 0 };
    rejected("mem[1]");
}
END_TEST

START_TEST(ram_in_pci_hole)
{
    cfg.mem[0].size = 0xd0000000;
    rejected("mem[0]");
}
END_TEST

START_TEST(empty_range)
{
    cfg.mem[0].size = 0;
    rejected("mem[0].size");
}
END_TEST

START_TEST(bad_distances)
{
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    cfg.distance[1][1] = 11;
    rejected("distance[1][1]");
    cfg.distance[1][1] = 10;
    cfg.distance[0][1] = 10;
    rejected("distance[0][1]");
}
END_TEST

START_TEST(io_window_over_pm_block)
{
    cfg.pci.io[0].limit = 0xb002;
    rejected("pci.io[0]");
}
END_TEST

START_TEST(ecam_over_ram)
{
    cfg.pci.ecam_base = 0x10000000;
    rejected("pci.ecam_base");
}
END_TEST

START_TEST(oem_id_too_long)
{
    memcpy(cfg.oem_id, "ABCDEFG", 7);   /* no terminator within 7 bytes */
    rejected("oem_id");
}
END_TEST

START_TEST(pm_lengths_and_sci)
{
    cfg.pm.pm_tmr_len = 3;
    rejected("pm.pm_tmr_len");
    setup();
    cfg.pm.sci_irq = 2;
    rejected("pm.sci_irq");
}
END_TEST

START_TEST(s3_slp_typ)
{
    ck_assert(cfg.flags & ACPI_HAS_S3);
    ck_assert_uint_eq(cfg.pm.s3_slp_typ, 1);
    cfg.pm.s3_slp_typ = cfg.pm.s5_slp_typ;
    rejected("pm.s3_slp_typ");
    setup();
    cfg.pm.s3_slp_typ = 8;
    rejected("pm.s3_slp_typ");
    setup();
    cfg.flags &= ~ACPI_HAS_S3;      /* no \_S3: the value does not matter */
    cfg.pm.s3_slp_typ = 8;
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);
}
END_TEST

START_TEST(intx_outside_ioapic)
{
    cfg.ioapic_pins = 16;
    rejected("pci.intx_gsi_base");
}
END_TEST

/* Fuzz find (tests/fuzz/corpus/acpi/regress-pci-nr-io-past-array): the PM
 * block checks walked pci.io[] before pci.nr_io was bounded. */
START_TEST(io_window_count_past_array)
{
    cfg.pci.nr_io = ACPI_PCI_IO_WINDOWS_MAX + 1;
    rejected("pci.nr_io");
}
END_TEST

START_TEST(set_pm_moves_io_windows)
{
    struct acpi_pm pm = cfg.pm;

    pm.pm1a_evt = 0x600;
    pm.pm1a_cnt = 0x604;
    pm.pm_tmr = 0x608;
    ck_assert_int_eq(acpi_config_set_pm(&cfg, &pm), 0);
    ck_assert_uint_eq(cfg.pci.nr_io, 2);
    ck_assert_uint_eq(cfg.pci.io[0].limit, 0xafbf);
    ck_assert_uint_eq(cfg.pci.io[1].base, 0xb000);
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);
}
END_TEST

TCase *acpi_config_tcase(void)
{
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, zero_vcpus);
    tcase_add_test(tc, too_many_vcpus_for_xapic);
    tcase_add_test(tc, apic_id_too_big_for_xapic);
    tcase_add_test(tc, duplicate_apic_id);
    tcase_add_test(tc, node_without_memory);
    tcase_add_test(tc, numa_refused_leaves_config);
    tcase_add_test(tc, node_out_of_range);
    tcase_add_test(tc, overlapping_ranges);
    tcase_add_test(tc, ram_in_pci_hole);
    tcase_add_test(tc, empty_range);
    tcase_add_test(tc, bad_distances);
    tcase_add_test(tc, io_window_over_pm_block);
    tcase_add_test(tc, ecam_over_ram);
    tcase_add_test(tc, oem_id_too_long);
    tcase_add_test(tc, pm_lengths_and_sci);
    tcase_add_test(tc, s3_slp_typ);
    tcase_add_test(tc, intx_outside_ioapic);
    tcase_add_test(tc, io_window_count_past_array);
    tcase_add_test(tc, set_pm_moves_io_windows);
    return tc;
}
