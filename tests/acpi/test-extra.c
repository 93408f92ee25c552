// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Caller-supplied tables (acpi_config.extra_tables): each refusal with a
 * message naming the table's index and the fault, and the accepted case:
 * copied byte for byte, 8-byte aligned, listed in RSDT and XSDT after
 * libacpi's own, the validator content and still catching every flipped
 * byte; a set too large for the table memory fails instead of overflowing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi-internal.h"
#include "tests/acpi/test-acpi.h"

#define BASE 0x000e0000ull

static struct acpi_config cfg;
static struct test_set set;
static uint8_t tables[ACPI_EXTRA_TABLES_MAX + 1][2048];

/* A complete table: header, len - 36 bytes of body, right checksum. */
static const void *make_table(unsigned slot, const char *sig, uint32_t len, uint8_t fill)
{
    struct acpi_header *h = (void *)tables[slot];

    ck_assert_uint_le(len, sizeof(tables[slot]));
    memset(h, fill, len);
    memcpy(h->signature, sig, 4);
    h->length = len;
    h->revision = 2;
    memcpy(h->oem_id, "TESTER", 6);
    memcpy(h->oem_table_id, "EXTRATBL", 8);
    h->oem_revision = slot;
    memcpy(h->creator_id, "TEST", 4);
    h->creator_revision = 1;
    h->checksum = 0;
    h->checksum = (uint8_t)(0x100 - acpi_checksum(h, len));
    return h;
}

static void add(const void *t, uint32_t len)
{
    cfg.extra_tables[cfg.nr_extra_tables++] = (struct acpi_extra_table){ t, len };
}

static void setup(void)
{
    memset(tables, 0, sizeof(tables));
    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 1ull << 30), 0);
}

static void teardown(void)
{
    test_set_free(&set);
}

/* Both the checker and a build must reject cfg with a message holding each of want[]. */
static void rejected(const char *want1, const char *want2)
{
    struct test_log log = { { 0 }, 0 };

    test_set_free(&set);
    ck_assert_int_eq(acpi_config_check(&cfg, test_log_fn, &log), -EINVAL);
    ck_assert_msg(strstr(log.last, want1) && strstr(log.last, want2),
                  "message '%s' lacks '%s' or '%s'", log.last, want1, want2);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), -EINVAL);
    ck_assert_msg(strstr(set.log.last, want1) && strstr(set.log.last, want2),
                  "build message '%s' lacks '%s' or '%s'", set.log.last, want1, want2);
}

START_TEST(too_short)
{
    add(make_table(0, "SSDT", 36, 0), 36);
    add(make_table(1, "SSDT", 40, 0), 35);
    rejected("extra_tables[1]", "shorter than a table header");
}
END_TEST

START_TEST(too_long)
{
    add(make_table(0, "SSDT", 40, 0), ACPI_EXTRA_TABLE_SIZE_MAX + 1);
    rejected("extra_tables[0]", "more than the table area");
}
END_TEST

START_TEST(length_mismatch)
{
    add(make_table(0, "SSDT", 100, 0x11), 96);
    rejected("extra_tables[0] (SSDT)", "header length 100, but 96 bytes given");
}
END_TEST

START_TEST(bad_signature)
{
    static const char *const bad[] = { "ssdt", "SS T", "SS-T", "\0SDT" };

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.nr_extra_tables = 0;
        add(make_table(0, bad[i], 64, 0), 64);
        rejected("extra_tables[0]", "is not four of A-Z 0-9 _");
    }
}
END_TEST

START_TEST(bad_checksum)
{
    uint8_t *t = (uint8_t *)make_table(0, "SSDT", 64, 0x22);

    add(t, 64);
    t[50] += 3;
    rejected("extra_tables[0] (SSDT)", "checksum: the bytes sum to 0x03, not 0");
}
END_TEST

START_TEST(owned_signature)
{
    static const char *const owned[] = { "RSDT", "XSDT", "FACP", "FACS", "DSDT", "APIC",
                                         "HPET", "MCFG", "SRAT", "SLIT", "WAET" };

    for (unsigned i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        char want[64];

        cfg.nr_extra_tables = 0;
        add(make_table(0, "SSDT", 64, 0), 64);
        add(make_table(1, owned[i], 64, 0), 64);
        snprintf(want, sizeof(want), "%s is a table libacpi builds itself", owned[i]);
        rejected("extra_tables[1]", want);
    }
    /* Even when this config leaves the table out (no HPET): libacpi owns it. */
    cfg.flags &= ~ACPI_HAS_HPET;
    cfg.nr_extra_tables = 0;
    add(make_table(0, "HPET", 56, 0), 56);
    rejected("extra_tables[0]", "HPET is a table libacpi builds itself");
}
END_TEST

START_TEST(rsdp_refused)
{
    uint8_t *t = tables[0];

    memset(t, 0, 36);
    memcpy(t, "RSD PTR ", 8);
    add(t, 36);
    rejected("extra_tables[0]", "an RSDP");
}
END_TEST

START_TEST(duplicate_signature)
{
    add(make_table(0, "MSDM", 85, 1), 85);
    add(make_table(1, "SSDT", 64, 2), 64);
    add(make_table(2, "MSDM", 85, 3), 85);
    rejected("extra_tables[2]", "MSDM is already extra_tables[0]");
}
END_TEST

START_TEST(no_data_and_count)
{
    cfg.extra_tables[0] = (struct acpi_extra_table){ NULL, 64 };
    cfg.nr_extra_tables = 1;
    rejected("extra_tables[0]", "no data");
    cfg.nr_extra_tables = ACPI_EXTRA_TABLES_MAX + 1;
    rejected("nr_extra_tables", "at most");
}
END_TEST

static const struct acpi_header *at(uint64_t gpa)
{
    ck_assert_uint_ge(gpa, set.base);
    ck_assert_uint_lt(gpa - set.base, set.used);
    return (const void *)(set.mem + (gpa - set.base));
}

START_TEST(accepted)
{
    const struct acpi_header *xsdt, *rsdt;
    const struct acpi_rsdp *rsdp;
    uint32_t nx, own;
    const uint32_t lens[] = { 61, 85, 200 };

    add(make_table(0, "SSDT", lens[0], 0x31), lens[0]);
    add(make_table(1, "MSDM", lens[1], 0x32), lens[1]);
    add(make_table(2, "SSDT", lens[2], 0x33), lens[2]);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    ck_assert_int_eq(acpi_tables_validate(&set.t, test_log_fn, &set.log), 0);

    rsdp = (const void *)at(set.t.rsdp_gpa);
    xsdt = at(rsdp->xsdt_address);
    rsdt = at(rsdp->rsdt_address);
    ck_assert_uint_eq(acpi_checksum(xsdt, xsdt->length), 0);
    ck_assert_uint_eq(acpi_checksum(rsdt, rsdt->length), 0);
    nx = (xsdt->length - 36) / 8;
    ck_assert_uint_eq((rsdt->length - 36) / 4, nx);
    /* Without extras the same config lists three fewer tables. */
    {
        struct test_set plain;
        const struct acpi_table_ref *x;

        cfg.nr_extra_tables = 0;
        ck_assert_int_eq(test_set_build(&plain, &cfg, BASE), 0);
        x = test_set_find(&plain, "XSDT");
        own = (x->len - 36) / 8;
        test_set_free(&plain);
        cfg.nr_extra_tables = 3;
    }
    ck_assert_uint_eq(nx, own + 3);
    for (uint32_t i = 0; i < 3; i++) {
        uint64_t x;
        uint32_t r;
        const struct acpi_header *h;

        memcpy(&x, (const uint8_t *)(xsdt + 1) + 8 * (own + i), 8);
        memcpy(&r, (const uint8_t *)(rsdt + 1) + 4 * (own + i), 4);
        ck_assert_uint_eq(x, r);
        ck_assert_uint_eq(x % 8, 0);
        h = at(x);
        ck_assert_uint_eq(h->length, lens[i]);
        ck_assert_msg(!memcmp(h, tables[i], lens[i]), "extra table %u not copied as given", i);
        ck_assert_uint_eq(acpi_checksum(h, h->length), 0);
    }
    ck_assert_ptr_nonnull(test_set_find(&set, "MSDM"));
}
END_TEST

/* The blob path: valid, and every byte of the extra tables is covered by the validator. */
START_TEST(blob_flips_caught)
{
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE);
    size_t used = 0;
    uint64_t rsdp_gpa = 0;
    struct test_log log = { { 0 }, 0 };
    const struct acpi_rsdp *rsdp;
    const struct acpi_header *xsdt;
    uint32_t n;

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    add(make_table(0, "SSDT", 77, 0x41), 77);
    add(make_table(1, "OEM1", 48, 0x42), 48);
    ck_assert_int_eq(acpi_build_blob(&cfg, BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp_gpa,
                                     test_log_fn, &log), 0);
    ck_assert_int_eq(acpi_blob_validate(buf, used, BASE, rsdp_gpa, test_log_fn, &log), 0);
    rsdp = (const void *)buf;
    xsdt = (const void *)(buf + (rsdp->xsdt_address - BASE));
    n = (xsdt->length - 36) / 8;
    for (uint32_t e = n - 2; e < n; e++) {
        uint64_t gpa;
        uint8_t *t;
        uint32_t len;

        memcpy(&gpa, (const uint8_t *)(xsdt + 1) + 8 * e, 8);
        t = buf + (gpa - BASE);
        len = ((const struct acpi_header *)t)->length;
        ck_assert(!memcmp(t, tables[e - (n - 2)], len));
        for (uint32_t i = 0; i < len; i++) {
            t[i] ^= 0x5a;
            log.errors = 0;
            ck_assert_msg(acpi_blob_validate(buf, used, BASE, rsdp_gpa, test_log_fn, &log) ==
                          -EPROTO, "extra table %u: flipped byte %u not caught", e, i);
            ck_assert_int_gt(log.errors, 0);
            t[i] ^= 0x5a;
        }
    }
    ck_assert_int_eq(acpi_blob_validate(buf, used, BASE, rsdp_gpa, test_log_fn, &log), 0);
    free(buf);
}
END_TEST

/* As many as allowed, with every optional table of libacpi's own: fits ACPI_TABLES_MAX. */
START_TEST(all_slots)
{
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    cfg.flags |= ACPI_HAS_HPET | ACPI_HAS_MCFG | ACPI_HAS_WAET | ACPI_HAS_CPU_SSDT;
    for (unsigned i = 0; i < ACPI_EXTRA_TABLES_MAX; i++)
        add(make_table(i, "SSDT", 40 + i, (uint8_t)i), 40 + i);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), 0);
    ck_assert_uint_eq(set.t.nr, 13 + ACPI_EXTRA_TABLES_MAX);
}
END_TEST

/* A set larger than the table memory: a clear -ENOMEM, nothing written past it. */
START_TEST(does_not_fit)
{
    uint8_t *big = malloc(ACPI_EXTRA_TABLE_SIZE_MAX);
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE + 64);
    struct acpi_header *h = (void *)big;
    struct test_log log = { { 0 }, 0 };
    size_t used = 0;
    uint64_t rsdp = 0;

    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(buf);
    /* One table alone as large as the whole area: valid, but cannot fit with the rest. */
    memset(big, 0, ACPI_EXTRA_TABLE_SIZE_MAX);
    memcpy(h->signature, "SSDT", 4);
    h->length = ACPI_EXTRA_TABLE_SIZE_MAX;
    h->checksum = (uint8_t)(0x100 - acpi_checksum(big, ACPI_EXTRA_TABLE_SIZE_MAX));
    add(big, ACPI_EXTRA_TABLE_SIZE_MAX);
    ck_assert_int_eq(acpi_config_check(&cfg, NULL, NULL), 0);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), -ENOMEM);
    ck_assert_msg(strstr(set.log.last, "extra_tables[0] (SSDT, 65536 bytes) does not fit"),
                  "message '%s'", set.log.last);
    ck_assert_uint_le(set.used, ACPI_TABLES_SIZE_MAX);

    memset(buf + ACPI_BLOB_BUF_SIZE, 0xa5, 64);
    ck_assert_int_eq(acpi_build_blob(&cfg, BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp,
                                     test_log_fn, &log), -ENOMEM);
    ck_assert_msg(strstr(log.last, "does not fit"), "message '%s'", log.last);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(buf[ACPI_BLOB_BUF_SIZE + i], 0xa5);
    /* Two halves: the second one is the one that does not fit. */
    cfg.nr_extra_tables = 0;
    h->length = ACPI_EXTRA_TABLE_SIZE_MAX / 2;
    h->checksum = 0;
    h->checksum = (uint8_t)(0x100 - acpi_checksum(big, h->length));
    add(big, h->length);
    add(big, h->length);
    test_set_free(&set);
    ck_assert_int_eq(test_set_build(&set, &cfg, BASE), -ENOMEM);
    ck_assert_msg(strstr(set.log.last, "extra_tables[1] (SSDT, 32768 bytes) does not fit"),
                  "message '%s'", set.log.last);
    free(big);
    free(buf);
}
END_TEST

TCase *acpi_extra_tcase(void)
{
    TCase *tc = tcase_create("extra");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, too_short);
    tcase_add_test(tc, too_long);
    tcase_add_test(tc, length_mismatch);
    tcase_add_test(tc, bad_signature);
    tcase_add_test(tc, bad_checksum);
    tcase_add_test(tc, owned_signature);
    tcase_add_test(tc, rsdp_refused);
    tcase_add_test(tc, duplicate_signature);
    tcase_add_test(tc, no_data_and_count);
    tcase_add_test(tc, accepted);
    tcase_add_test(tc, blob_flips_caught);
    tcase_add_test(tc, all_slots);
    tcase_add_test(tc, does_not_fit);
    return tc;
}
