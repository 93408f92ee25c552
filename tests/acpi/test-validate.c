// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The validator catches corruption: every byte of every checksummed table
 * flipped in turn, broken pointers, duplicate signatures, a bad FACS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi-internal.h"
#include "tests/acpi/test-acpi.h"

#define BASE 0x000e0000ull

static uint8_t *buf;
static size_t used;
static struct acpi_config cfg;
static struct test_log tlog;

static void setup(void)
{
    uint64_t rsdp;

    buf = malloc(ACPI_BLOB_BUF_SIZE);
    ck_assert_int_eq(acpi_config_init_default(&cfg, 4, 2ull << 30), 0);
    ck_assert_int_eq(acpi_config_set_numa(&cfg, 2), 0);
    memset(&tlog, 0, sizeof(tlog));
    ck_assert_int_eq(acpi_build_blob(&cfg, BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp,
                                     test_log_fn, &tlog), 0);
    ck_assert_uint_eq(rsdp, BASE);
}

static void teardown(void)
{
    free(buf);
}

static int check(void)
{
    return acpi_blob_validate(buf, used, BASE, BASE, test_log_fn, &tlog);
}

/* Offsets of the tables in the blob, found by walking the XSDT like an OS. */
static size_t off_of(uint64_t gpa)
{
    ck_assert_uint_ge(gpa, BASE);
    ck_assert_uint_lt(gpa - BASE, used);
    return (size_t)(gpa - BASE);
}

static size_t xsdt_off(void)
{
    const struct acpi_rsdp *r = (const void *)buf;

    return off_of(r->xsdt_address);
}

static size_t listed_off(const char *sig)
{
    const struct acpi_header *x = (const void *)(buf + xsdt_off());

    for (uint32_t i = 0; i < (x->length - 36) / 8; i++) {
        uint64_t gpa;

        memcpy(&gpa, (const uint8_t *)(x + 1) + 8 * i, 8);
        if (!memcmp(buf + off_of(gpa), sig, 4))
            return off_of(gpa);
    }
    ck_abort_msg("%s not listed", sig);
    return 0;
}

static void reseal(size_t off)
{
    struct acpi_header *h = (void *)(buf + off);

    h->checksum = 0;
    h->checksum = (uint8_t)(0x100 - acpi_checksum(h, h->length));
}

/* Leave only the XSDT (RSDP RsdtAddress 0), so XSDT faults are reported as such. */
static void drop_rsdt(void)
{
    struct acpi_rsdp *r = (void *)buf;

    r->rsdt_address = 0;
    r->checksum = 0;
    r->checksum = (uint8_t)(0x100 - acpi_checksum(buf, 20));
    r->extended_checksum = 0;
    r->extended_checksum = (uint8_t)(0x100 - acpi_checksum(buf, 36));
}

START_TEST(clean_blob_passes)
{
    ck_assert_int_eq(check(), 0);
}
END_TEST

/* Flip every byte of a table in turn: each flip must be caught. */
static void flip_all(size_t off, size_t len, const char *what)
{
    for (size_t i = 0; i < len; i++) {
        buf[off + i] ^= 0x5a;
        memset(&tlog, 0, sizeof(tlog));
        ck_assert_msg(check() == -EPROTO, "%s: flipped byte %zu not caught", what, i);
        ck_assert_msg(tlog.errors > 0, "%s: byte %zu: no message", what, i);
        buf[off + i] ^= 0x5a;
    }
    ck_assert_int_eq(check(), 0);
}

START_TEST(every_byte_flip_is_caught)
{
    const struct acpi_fadt *f;
    static const char *const listed[] = { "FACP", "APIC", "HPET", "MCFG", "SRAT", "SLIT",
                                          "WAET", "SSDT" };

    flip_all(0, sizeof(struct acpi_rsdp), "RSDP");
    flip_all(xsdt_off(), ((struct acpi_header *)(buf + xsdt_off()))->length, "XSDT");
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
        size_t o = listed_off(listed[i]);

        flip_all(o, ((struct acpi_header *)(buf + o))->length, listed[i]);
    }
    f = (const void *)(buf + listed_off("FACP"));
    flip_all(off_of(f->x_dsdt), ((struct acpi_header *)(buf + off_of(f->x_dsdt)))->length,
             "DSDT");
    {
        const struct acpi_rsdp *r = (const void *)buf;

        flip_all(off_of(r->rsdt_address), 36 + 4 * 8, "RSDT");
    }
    /* The FACS has no checksum: its signature and length are what is checked. */
    flip_all(off_of(f->firmware_ctrl), 8, "FACS");
}
END_TEST

START_TEST(checksum_message)
{
    size_t o = listed_off("APIC");

    buf[o + 50] ^= 1;
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_ptr_nonnull(strstr(tlog.last, "APIC"));
    ck_assert_ptr_nonnull(strstr(tlog.last, "checksum"));
}
END_TEST

START_TEST(duplicate_signature)
{
    size_t x = xsdt_off();
    uint64_t first;

    /* Point the second XSDT entry at the first table and reseal. */
    memcpy(&first, buf + x + 36, 8);
    memcpy(buf + x + 44, &first, 8);
    reseal(x);
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_msg(strstr(tlog.last, "twice") || strstr(tlog.last, "RSDT entry"),
                  "message: %s", tlog.last);
    /* With the RSDT gone (RSDP v1 pointer 0) the duplicate itself is reported. */
    drop_rsdt();
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_ptr_nonnull(strstr(tlog.last, "appears twice"));
}
END_TEST

START_TEST(dangling_pointer)
{
    size_t x = xsdt_off();
    uint64_t bad = BASE + used + 0x1000;

    memcpy(buf + x + 36, &bad, 8);
    reseal(x);
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_ptr_nonnull(strstr(tlog.last, "RSDT entry 0"));
    drop_rsdt();
    ck_assert_int_eq(acpi_blob_validate(buf, used, BASE, BASE, test_log_fn, &tlog), -EPROTO);
    ck_assert_msg(strstr(tlog.last, "does not point at a table") != NULL, "message: %s",
                  tlog.last);
}
END_TEST

/* FIRMWARE_CTRL and X_FIRMWARE_CTRL: at most one non-zero (ACPI 5.2.9), and one. */
START_TEST(firmware_ctrl_rules)
{
    size_t o = listed_off("FACP");
    struct acpi_fadt *f = (void *)(buf + o);
    uint32_t facs = f->firmware_ctrl;

    f->x_firmware_ctrl = facs;
    reseal(o);
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_msg(strstr(tlog.last, "both set") != NULL, "message: %s", tlog.last);
    f->firmware_ctrl = 0;
    reseal(o);
    ck_assert_int_eq(check(), 0);       /* the 64-bit field alone is fine */
    f->x_firmware_ctrl = 0;
    reseal(o);
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_msg(strstr(tlog.last, "neither") != NULL, "message: %s", tlog.last);
}
END_TEST

START_TEST(truncated_blob)
{
    ck_assert_int_eq(acpi_blob_validate(buf, used - 1, BASE, BASE, test_log_fn, &tlog),
                     -EPROTO);
    ck_assert_int_eq(acpi_blob_validate(buf, 20, BASE, BASE, test_log_fn, &tlog), -EPROTO);
    ck_assert_int_eq(acpi_blob_validate(buf, used, BASE, BASE + 8, test_log_fn, &tlog),
                     -EPROTO);
}
END_TEST

START_TEST(madt_subtable_overrun)
{
    size_t o = listed_off("APIC");
    struct acpi_header *h = (void *)(buf + o);

    /* The last subtable claims more bytes than the table has. */
    buf[o + h->length - 6 + 1] = 40;
    reseal(o);
    ck_assert_int_eq(check(), -EPROTO);
    ck_assert_ptr_nonnull(strstr(tlog.last, "subtable"));
}
END_TEST

START_TEST(unreachable_table_in_set)
{
    struct test_set s;

    ck_assert_int_eq(test_set_build(&s, &cfg, BASE), 0);
    ck_assert_int_eq(acpi_tables_validate(&s.t, test_log_fn, &tlog), 0);
    /* Claim an extra table nothing points at. */
    s.t.tables[s.t.nr] = s.t.tables[s.t.nr - 1];
    s.t.tables[s.t.nr].gpa += 0x8000;
    s.t.nr++;
    ck_assert_int_eq(acpi_tables_validate(&s.t, test_log_fn, &tlog), -EPROTO);
    ck_assert_ptr_nonnull(strstr(tlog.last, "not reachable"));
    test_set_free(&s);
}
END_TEST

TCase *acpi_validate_tcase(void)
{
    TCase *tc = tcase_create("validate");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, clean_blob_passes);
    tcase_add_test(tc, every_byte_flip_is_caught);
    tcase_add_test(tc, checksum_message);
    tcase_add_test(tc, duplicate_signature);
    tcase_add_test(tc, dangling_pointer);
    tcase_add_test(tc, firmware_ctrl_rules);
    tcase_add_test(tc, truncated_blob);
    tcase_add_test(tc, madt_subtable_overrun);
    tcase_add_test(tc, unreachable_table_in_set);
    return tc;
}
