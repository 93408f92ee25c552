// SPDX-License-Identifier: GPL-2.0-or-later
/* The tables of a build: what each holds for the default and NUMA layouts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi-internal.h"
#include "tests/acpi/test-acpi.h"

#define BASE 0x000e0000ull

static struct acpi_config cfg;
static struct test_set set;

static void teardown(void)
{
    test_set_free(&set);
}

static const void *table(const char *sig)
{
    const struct acpi_table_ref *r = test_set_find(&set, sig);

    ck_assert_msg(r != NULL, "no %s", sig);
    return r->ptr;
}

START_TEST(default_set)
{
    static const char *const sigs[] = { "RSDP", "FACS", "DSDT", "FACP", "APIC", "HPET",
                                        "MCFG", "WAET", "SSDT", "XSDT", "RSDT" };

    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 512ull << 20), 0);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    ck_assert_uint_eq(set.t.nr, sizeof(sigs) / sizeof(sigs[0]));
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        ck_assert_str_eq(set.t.tables[i].sig, sigs[i]);
    ck_assert_uint_eq(set.t.rsdp_gpa, BASE);     /* RSDP allocated first */
    ck_assert_ptr_null(test_set_find(&set, "SRAT"));
    ck_assert_uint_eq(test_set_find(&set, "FACS")->gpa % 64, 0);
    for (uint32_t i = 1; i < set.t.nr; i++) {
        const struct acpi_header *h = set.t.tables[i].ptr;

        if (strcmp(set.t.tables[i].sig, "FACS")) {
            ck_assert_uint_eq(acpi_checksum(h, h->length), 0);
            ck_assert_mem_eq(h->oem_id, "FERRY ", 6);
            ck_assert_mem_eq(h->oem_table_id, "FERRYVM ", 8);
        }
    }
}
END_TEST

START_TEST(fadt_fields)
{
    const struct acpi_fadt *f;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 2, 1ull << 30), 0);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    f = table("FACP");
    ck_assert_uint_eq(f->h.revision, 6);
    ck_assert_uint_eq(f->h.length, 276);
    ck_assert_uint_eq(f->sci_int, 9);
    ck_assert_uint_eq(f->pm1a_evt_blk, 0xb000);
    ck_assert_uint_eq(f->pm1_evt_len, 4);
    ck_assert_uint_eq(f->pm1a_cnt_blk, 0xb004);
    ck_assert_uint_eq(f->pm1_cnt_len, 2);
    ck_assert_uint_eq(f->pm_tmr_blk, 0xb008);
    ck_assert_uint_eq(f->pm_tmr_len, 4);
    ck_assert_uint_eq(f->gpe0_blk, 0xafe0);
    ck_assert_uint_eq(f->gpe0_blk_len, 4);
    ck_assert_uint_eq(f->x_pm1a_evt_blk.address, 0xb000);
    ck_assert_uint_eq(f->x_pm1a_evt_blk.bit_width, 32);
    ck_assert_uint_eq(f->x_gpe0_blk.address, 0xafe0);
    ck_assert_uint_eq(f->reset_reg.space_id, 1);
    ck_assert_uint_eq(f->reset_reg.address, 0xcf9);
    ck_assert_uint_eq(f->reset_value, 6);
    ck_assert(f->flags & ACPI_FADT_RESET_REG_SUP);
    ck_assert(f->flags & ACPI_FADT_TMR_VAL_EXT);
    ck_assert_uint_eq(f->x_dsdt, test_set_find(&set, "DSDT")->gpa);
    ck_assert_uint_eq(f->dsdt, f->x_dsdt);
    /* ACPI 5.2.9: a FACS below 4 GiB in FIRMWARE_CTRL only (at most one of the two). */
    ck_assert_uint_eq(f->firmware_ctrl, test_set_find(&set, "FACS")->gpa);
    ck_assert_uint_eq(f->x_firmware_ctrl, 0);
}
END_TEST

START_TEST(madt_xapic)
{
    const struct acpi_madt *m;
    const uint8_t *p, *end;
    unsigned int nlapic = 0, niso = 0, nioapic = 0, nnmi = 0;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 8, 512ull << 20), 0);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    m = table("APIC");
    ck_assert_uint_eq(m->lapic_addr, 0xfee00000);
    ck_assert_uint_eq(m->flags & 1, 1);
    p = (const uint8_t *)(m + 1);
    end = (const uint8_t *)m + m->h.length;
    while (p < end) {
        switch (p[0]) {
        case 0: {
            const struct acpi_madt_lapic *e = (const void *)p;

            ck_assert_uint_eq(e->acpi_processor_id, nlapic);
            ck_assert_uint_eq(e->apic_id, nlapic);
            ck_assert_uint_eq(e->flags, 1);
            nlapic++;
            break;
        }
        case 1: {
            const struct acpi_madt_ioapic *e = (const void *)p;

            ck_assert_uint_eq(e->id, 8);            /* after the CPUs */
            ck_assert_uint_eq(e->address, 0xfec00000);
            ck_assert_uint_eq(e->gsi_base, 0);
            nioapic++;
            break;
        }
        case 2: {
            const struct acpi_madt_iso *e = (const void *)p;

            if (niso++ == 0) {
                ck_assert_uint_eq(e->source, 0);
                ck_assert_uint_eq(e->gsi, 2);
                ck_assert_uint_eq(e->flags, 0);
            } else {
                ck_assert_uint_eq(e->source, 9);
                ck_assert_uint_eq(e->gsi, 9);
                ck_assert_uint_eq(e->flags, 0x0d);  /* level, active high */
            }
            break;
        }
        case 4:
            nnmi++;
            break;
        default:
            ck_abort_msg("unexpected MADT entry type %u", p[0]);
        }
        p += p[1];
    }
    ck_assert_uint_eq(nlapic, 8);
    ck_assert_uint_eq(nioapic, 1);
    ck_assert_uint_eq(niso, 2);
    ck_assert_uint_eq(nnmi, 1);
}
END_TEST

START_TEST(madt_x2apic_for_many_vcpus)
{
    const struct acpi_madt *m;
    const uint8_t *p;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 300, 4ull << 30), 0);
    ck_assert_int_eq(cfg.madt_form, ACPI_MADT_X2APIC);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    m = table("APIC");
    p = (const uint8_t *)(m + 1);
    for (uint32_t i = 0; i < 300; i++, p += 16) {
        const struct acpi_madt_x2apic *e = (const void *)p;

        ck_assert_uint_eq(e->s.type, 9);
        ck_assert_uint_eq(e->x2apic_id, i);
        ck_assert_uint_eq(e->acpi_processor_uid, i);
    }
}
END_TEST

START_TEST(numa_srat_slit)
{
    const struct acpi_srat *s;
    const struct acpi_slit *l;
    const uint8_t *p, *end, *d;
    uint64_t mem[2] = { 0, 0 };
    unsigned int cpus[2] = { 0, 0 };

    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 6ull << 30), 0);
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    cfg.distance[0][1] = 21;
    cfg.distance[1][0] = 22;
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    s = table("SRAT");
    p = (const uint8_t *)(s + 1);
    end = (const uint8_t *)s + s->h.length;
    for (; p < end; p += p[1]) {
        if (p[0] == 0) {
            const struct acpi_srat_lapic *e = (const void *)p;

            ck_assert_uint_eq(e->proximity_lo, e->apic_id / 2);
            cpus[e->proximity_lo]++;
        } else if (p[0] == 1) {
            const struct acpi_srat_mem *e = (const void *)p;

            ck_assert_uint_lt(e->proximity, 2);
            mem[e->proximity] += e->length;
            ck_assert_uint_eq(e->flags, 1);
        }
    }
    ck_assert_uint_eq(cpus[0], 2);
    ck_assert_uint_eq(cpus[1], 2);
    ck_assert_uint_eq(mem[0], 3ull << 30);
    ck_assert_uint_eq(mem[1], 3ull << 30);
    l = table("SLIT");
    ck_assert_uint_eq(l->localities, 2);
    d = (const uint8_t *)(l + 1);
    ck_assert_uint_eq(d[0], 10);
    ck_assert_uint_eq(d[1], 21);
    ck_assert_uint_eq(d[2], 22);
    ck_assert_uint_eq(d[3], 10);
}
END_TEST

START_TEST(hpet_mcfg)
{
    const struct acpi_hpet *h;
    const struct acpi_mcfg_alloc *a;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 1, 256ull << 20), 0);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    h = table("HPET");
    ck_assert_uint_eq(h->base.address, 0xfed00000);
    a = (const void *)((const uint8_t *)table("MCFG") + sizeof(struct acpi_mcfg));
    ck_assert_uint_eq(a->base, 0xe0000000);
    ck_assert_uint_eq(a->bus_start, 0);
    ck_assert_uint_eq(a->bus_end, 255);
}
END_TEST

START_TEST(intx_swizzle)
{
    ck_assert_int_eq(acpi_config_init_default(&cfg, 1, 256ull << 20), 0);
    for (unsigned int d = 0; d < 32; d++)
        for (unsigned int p = 0; p < 4; p++)
            ck_assert_int_eq(acpi_pci_intx_gsi(&cfg, d, p), 16 + (int)((d + p) % 4));
    ck_assert_int_eq(acpi_pci_intx_gsi(&cfg, 32, 0), -EINVAL);
    ck_assert_int_eq(acpi_pci_intx_gsi(&cfg, 0, 4), -EINVAL);
    ck_assert_int_eq(acpi_pci_intx_gsi(NULL, 0, 0), -EINVAL);
}
END_TEST

START_TEST(default_layout)
{
    ck_assert_int_eq(acpi_config_init_default(&cfg, 2, 5ull << 30), 0);
    ck_assert_uint_eq(cfg.nr_mem, 2);
    ck_assert_uint_eq(cfg.mem[0].base, 0);
    ck_assert_uint_eq(cfg.mem[0].size, 0xc0000000);
    ck_assert_uint_eq(cfg.mem[1].base, 1ull << 32);
    ck_assert_uint_eq(cfg.mem[1].size, 2ull << 30);
    ck_assert_uint_eq(cfg.pci.mmio64.base, 6ull << 30);
    ck_assert_uint_eq(cfg.pci.mmio32.base, 0xc0000000);
    ck_assert_uint_eq(cfg.pci.mmio32.limit, 0xdfffffff);
    /* I/O windows: 0x1000-0xffff less the PM block and GPE0. */
    ck_assert_uint_eq(cfg.pci.nr_io, 2);
    ck_assert_uint_eq(cfg.pci.io[0].base, 0x1000);
    ck_assert_uint_eq(cfg.pci.io[0].limit, 0xafbf);
    ck_assert_uint_eq(cfg.pci.io[1].base, 0xb040);
    ck_assert_uint_eq(cfg.pci.io[1].limit, 0xffff);
    ck_assert_uint_eq(cfg.ioapic_id, 2);
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);
}
END_TEST

/* The largest config must fit the blob size the API promises. */
START_TEST(largest_config_fits)
{
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE);
    struct test_log log = { { 0 }, 0 };
    size_t used = 0;
    uint64_t rsdp = 0;

    ck_assert_int_eq(acpi_config_init_default(&cfg, ACPI_VCPUS_MAX, 1ull << 40), 0);
    ck_assert_int_eq(acpi_config_set_numa(&cfg, ACPI_NODES_MAX), 0);
    ck_assert_int_eq(acpi_build_blob(&cfg, 0x100000, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp,
                                     test_log_fn, &log), 0);
    ck_assert_uint_le(used, ACPI_TABLES_SIZE_MAX);
    ck_assert_uint_eq(rsdp, 0x100000);
    ck_assert_mem_eq(buf, "RSD PTR ", 8);
    for (size_t i = used; i < ACPI_BLOB_BUF_SIZE; i++)
        ck_assert_msg(buf[i] == 0, "byte %zu after the blob is not zero", i);
    free(buf);
}
END_TEST

static int fail_alloc_after;
static void *limited_alloc(void *opaque, size_t size, size_t align)
{
    static _Alignas(64) uint8_t mem[ACPI_TABLES_SIZE_MAX];
    size_t *used = opaque, off = (*used + align - 1) & ~(align - 1);

    if (fail_alloc_after-- <= 0)
        return NULL;
    *used = off + size;
    return mem + off;
}

static uint64_t high_v2p(void *opaque, const void *p)
{
    return 0x100000000ull + ((uintptr_t)p & 0xffff);
}

START_TEST(allocator_failures)
{
    static uint8_t scratch[ACPI_SCRATCH_SIZE];
    struct test_log log = { { 0 }, 0 };
    size_t used = 0;
    struct acpi_ctx ctx = { .alloc = limited_alloc, .v2p = high_v2p, .opaque = &used,
                            .scratch = scratch, .scratch_len = sizeof(scratch),
                            .log = test_log_fn, .log_opaque = &log };
    struct acpi_tables t;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 1, 256ull << 20), 0);
    fail_alloc_after = 3;
    ck_assert_int_eq(acpi_build_tables(&cfg, &ctx, &t), -ENOMEM);
    ck_assert_ptr_nonnull(strstr(log.last, "table memory exhausted"));
    /* Tables above 4 GiB cannot be reached by 32-bit pointers. */
    used = 0;
    fail_alloc_after = 100;
    ck_assert_int_eq(acpi_build_tables(&cfg, &ctx, &t), -ERANGE);
    ck_assert_ptr_nonnull(strstr(log.last, "above 4 GiB"));
    /* No scratch. */
    used = 0;
    fail_alloc_after = 100;
    ctx.scratch = NULL;
    ck_assert_int_eq(acpi_build_tables(&cfg, &ctx, &t), -EINVAL);
    ck_assert_ptr_nonnull(strstr(log.last, "scratch"));
}
END_TEST

START_TEST(blob_arguments)
{
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE);
    struct test_log log = { { 0 }, 0 };
    size_t used;

    ck_assert_int_eq(acpi_config_init_default(&cfg, 1, 256ull << 20), 0);
    ck_assert_int_eq(acpi_build_blob(&cfg, 0x1000, buf, ACPI_BLOB_BUF_SIZE - 1, &used, NULL,
                                     test_log_fn, &log), -EINVAL);
    ck_assert_ptr_nonnull(strstr(log.last, "buffer"));
    ck_assert_int_eq(acpi_build_blob(&cfg, 0x1010, buf, ACPI_BLOB_BUF_SIZE, &used, NULL,
                                     test_log_fn, &log), -EINVAL);
    ck_assert_ptr_nonnull(strstr(log.last, "aligned"));
    free(buf);
}
END_TEST

TCase *acpi_tables_tcase(void)
{
    TCase *tc = tcase_create("tables");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, default_set);
    tcase_add_test(tc, fadt_fields);
    tcase_add_test(tc, madt_xapic);
    tcase_add_test(tc, madt_x2apic_for_many_vcpus);
    tcase_add_test(tc, numa_srat_slit);
    tcase_add_test(tc, hpet_mcfg);
    tcase_add_test(tc, intx_swizzle);
    tcase_add_test(tc, default_layout);
    tcase_add_test(tc, largest_config_fits);
    tcase_add_test(tc, allocator_failures);
    tcase_add_test(tc, blob_arguments);
    return tc;
}
