// SPDX-License-Identifier: GPL-2.0-or-later
/* The AML encoder: PkgLength at every size boundary, names, integers, terms. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/aml.h"
#include "tests/acpi/test-acpi.h"

#define ARENA (16u << 20)

static uint8_t *arena_mem;
static struct aml_ctx *b;

static void setup(void)
{
    arena_mem = malloc(ARENA);
    b = aml_ctx_init(arena_mem, ARENA);
    ck_assert_ptr_nonnull(b);
}

static void teardown(void)
{
    free(arena_mem);
}

/* Encode t and compare with the expected bytes. */
static void expect(struct aml *t, const uint8_t *want, size_t n)
{
    uint8_t out[256];
    ssize_t got = aml_encode(b, t, out, sizeof(out));

    ck_assert_msg(got == (ssize_t)n, "encoded %zd bytes, expected %zu (%s)", got, n,
                  aml_ctx_error_msg(b));
    ck_assert_uint_eq(aml_size(t), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(out[i] == want[i], "byte %zu: 0x%02x, expected 0x%02x", i, out[i],
                      want[i]);
}
#define EXPECT(t, ...) do { const uint8_t w_[] = { __VA_ARGS__ }; expect((t), w_, sizeof(w_)); } while (0)

/* Decode a PkgLength the way ACPICA does (AcpiPsGetNextPackageLength). */
static size_t pkglen_decode(const uint8_t *p, int *nbytes)
{
    int n = (p[0] >> 6) + 1;
    size_t v;

    *nbytes = n;
    if (n == 1)
        return p[0] & 0x3f;
    v = p[0] & 0x0f;
    for (int i = 1; i < n; i++)
        v |= (size_t)p[i] << (4 + 8 * (i - 1));
    return v;
}

static const struct {
    size_t content;
    int nbytes;
    uint8_t enc[4];
} pkglen_cases[] = {
    { 0, 1, { 0x01 } },
    { 62, 1, { 0x3f } },                        /* largest 1-byte: 63 */
    { 63, 2, { 0x41, 0x04 } },                  /* 65 */
    { 4093, 2, { 0x4f, 0xff } },                /* largest 2-byte: 0xfff */
    { 4094, 3, { 0x81, 0x00, 0x01 } },          /* 0x1001 */
    { 0xffffc, 3, { 0x8f, 0xff, 0xff } },       /* largest 3-byte: 0xfffff */
    { 0xffffd, 4, { 0xc1, 0x00, 0x00, 0x01 } }, /* 0x100001 */
    { 0xffffffb, 4, { 0xcf, 0xff, 0xff, 0xff } },/* largest: 0xfffffff */
};

START_TEST(pkglen_boundaries)
{
    uint8_t out[4];

    for (size_t i = 0; i < sizeof(pkglen_cases) / sizeof(pkglen_cases[0]); i++) {
        int n = aml_pkglen_encode(out, pkglen_cases[i].content), dn;

        ck_assert_int_eq(n, pkglen_cases[i].nbytes);
        ck_assert_mem_eq(out, pkglen_cases[i].enc, (size_t)n);
        ck_assert_uint_eq(pkglen_decode(out, &dn), pkglen_cases[i].content + (size_t)n);
        ck_assert_int_eq(dn, n);
    }
    ck_assert_int_eq(aml_pkglen_encode(out, 0xffffffc), -E2BIG);
    ck_assert_int_eq(aml_pkglen_encode(out, SIZE_MAX - 2), -E2BIG);
}
END_TEST

/* Buffers whose PkgLength sits at each boundary, encoded and decoded back. */
START_TEST(pkglen_in_terms)
{
    static const size_t sizes[] = { 0, 1, 58, 59, 60, 61, 62, 63, 64, 4086, 4087, 4088,
                                    4089, 4090, 4091, 0xffff0, 0xffff5, 0xffff6, 0xffff7,
                                    0xffff8, 0x100000 };
    uint8_t *data = calloc(1, 0x100000), *out = malloc(0x100100);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct aml *t = aml_buffer(b, data, sizes[i]);
        ssize_t n = aml_encode(b, t, out, 0x100100);
        int nb;
        size_t pl;

        ck_assert_msg(n > 0, "buffer of %zu: %s", sizes[i], aml_ctx_error_msg(b));
        ck_assert_uint_eq(out[0], 0x11);
        pl = pkglen_decode(out + 1, &nb);
        /* PkgLength counts itself and everything after it in the term. */
        ck_assert_uint_eq(pl, (size_t)n - 1);
        ck_assert_uint_eq(aml_size(t), (size_t)n);
    }
    free(data);
    free(out);
}
END_TEST

START_TEST(integers_every_width)
{
    EXPECT(aml_int(b, 0), 0x00);
    EXPECT(aml_int(b, 1), 0x01);
    EXPECT(aml_int(b, UINT64_MAX), 0xff);
    EXPECT(aml_int(b, 2), 0x0a, 0x02);
    EXPECT(aml_int(b, 0xff), 0x0a, 0xff);
    EXPECT(aml_int(b, 0x100), 0x0b, 0x00, 0x01);
    EXPECT(aml_int(b, 0xffff), 0x0b, 0xff, 0xff);
    EXPECT(aml_int(b, 0x10000), 0x0c, 0x00, 0x00, 0x01, 0x00);
    EXPECT(aml_int(b, 0xffffffff), 0x0c, 0xff, 0xff, 0xff, 0xff);
    EXPECT(aml_int(b, 0x100000000ull), 0x0e, 0, 0, 0, 0, 1, 0, 0, 0);
    EXPECT(aml_int(b, 0xfffffffffffffffeull), 0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
           0xff, 0xff);
}
END_TEST

START_TEST(name_paths)
{
    EXPECT(aml_name(b, "\\"), 0x5c, 0x00);
    EXPECT(aml_name(b, "_SB"), '_', 'S', 'B', '_');
    EXPECT(aml_name(b, "\\_SB"), 0x5c, '_', 'S', 'B', '_');
    EXPECT(aml_name(b, "\\_SB.PCI0"), 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
    EXPECT(aml_name(b, "^^AB"), 0x5e, 0x5e, 'A', 'B', '_', '_');
    EXPECT(aml_name(b, "^X.Y"), 0x5e, 0x2e, 'X', '_', '_', '_', 'Y', '_', '_', '_');
    EXPECT(aml_name(b, "A.B.C"), 0x2f, 0x03, 'A', '_', '_', '_', 'B', '_', '_', '_',
           'C', '_', '_', '_');
    EXPECT(aml_name(b, "\\_SB.PCI0.S08_.FOO"), 0x5c, 0x2f, 0x04, '_', 'S', 'B', '_',
           'P', 'C', 'I', '0', 'S', '0', '8', '_', 'F', 'O', 'O', '_');
}
END_TEST

static void bad_name(const char *path)
{
    uint8_t mem[4096];
    struct aml_ctx *c = aml_ctx_init(mem, sizeof(mem));

    ck_assert_ptr_null(aml_name(c, path));
    ck_assert_int_eq(aml_ctx_error(c), -EINVAL);
    ck_assert_msg(strstr(aml_ctx_error_msg(c), "name"), "message: %s", aml_ctx_error_msg(c));
}

START_TEST(name_errors)
{
    bad_name("");
    bad_name("_sb");        /* lower case */
    bad_name("ABCDE");      /* five characters */
    bad_name("1ABC");       /* leading digit */
    bad_name("A..B");       /* empty segment */
    bad_name("A.");
    bad_name("^\\X");       /* root after parent */
    bad_name("^");          /* prefix only */
}
END_TEST

START_TEST(data_objects)
{
    struct aml *pkg;

    EXPECT(aml_string(b, "ACPI0007"), 0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00);
    /* EisaId ("PNP0A03") is 0x030AD041. */
    EXPECT(aml_eisaid(b, "PNP0A03"), 0x0c, 0x41, 0xd0, 0x0a, 0x03);
    EXPECT(aml_buffer(b, "\x01\x02", 2), 0x11, 0x05, 0x0a, 0x02, 0x01, 0x02);
    pkg = aml_package(b);
    aml_append(pkg, aml_int(b, 5));
    aml_append(pkg, aml_int(b, 0));
    EXPECT(pkg, 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00);
    EXPECT(aml_name_decl(b, "_UID", aml_int(b, 1)), 0x08, '_', 'U', 'I', 'D', 0x01);
    ck_assert_ptr_null(aml_eisaid(b, "pnp0a03"));
}
END_TEST

START_TEST(named_objects)
{
    struct aml *dev = aml_device(b, "PCI0"), *m, *sc;

    EXPECT(dev, 0x5b, 0x82, 0x05, 'P', 'C', 'I', '0');
    m = aml_method(b, "_STA", 0, 0);
    aml_append(m, aml_return(b, aml_int(b, 0x0f)));
    EXPECT(m, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f);
    m = aml_method(b, "FOO", 2, 1);
    aml_append(m, aml_return(b, aml_sizeof(b, aml_arg(b, 1))));
    EXPECT(m, 0x14, 0x09, 'F', 'O', 'O', '_', 0x0a, 0xa4, 0x87, 0x69);
    sc = aml_scope(b, "\\_SB");
    aml_append(sc, aml_device(b, "X"));
    EXPECT(sc, 0x10, 0x0d, 0x5c, '_', 'S', 'B', '_', 0x5b, 0x82, 0x05, 'X', '_', '_', '_');
    EXPECT(aml_local(b, 7), 0x67);
    ck_assert_ptr_null(aml_method(b, "BAD", 8, 0));
}
END_TEST

START_TEST(expressions_and_control_flow)
{
    struct aml *i, *e;

    EXPECT(aml_store(b, aml_int(b, 1), aml_local(b, 0)), 0x70, 0x01, 0x60);
    EXPECT(aml_and(b, aml_local(b, 0), aml_int(b, 0x1f), NULL), 0x7b, 0x60, 0x0a, 0x1f, 0x00);
    EXPECT(aml_or(b, aml_name(b, "CDW1"), aml_int(b, 8), aml_name(b, "CDW1")),
           0x7d, 'C', 'D', 'W', '1', 0x0a, 0x08, 'C', 'D', 'W', '1');
    EXPECT(aml_lnot(b, aml_equal(b, aml_arg(b, 1), aml_int(b, 1))), 0x92, 0x93, 0x69, 0x01);
    EXPECT(aml_create_dword_field(b, aml_arg(b, 3), aml_int(b, 0), "CDW1"),
           0x8a, 0x6b, 0x00, 'C', 'D', 'W', '1');
    i = aml_if(b, aml_equal(b, aml_arg(b, 0), aml_int(b, 0)));
    aml_append(i, aml_return(b, aml_int(b, 1)));
    EXPECT(i, 0xa0, 0x06, 0x93, 0x68, 0x00, 0xa4, 0x01);
    e = aml_else(b);
    aml_append(e, aml_return(b, aml_int(b, 0)));
    EXPECT(e, 0xa1, 0x03, 0xa4, 0x00);
    /* ToUUID: the first three groups byte-swapped, case-insensitive. */
    EXPECT(aml_touuid(b, "33db4d5b-1FF7-401C-9657-7441C03DD766"), 0x11, 0x13, 0x0a, 0x10,
           0x5b, 0x4d, 0xdb, 0x33, 0xf7, 0x1f, 0x1c, 0x40, 0x96, 0x57, 0x74, 0x41, 0xc0,
           0x3d, 0xd7, 0x66);
    ck_assert_ptr_null(aml_touuid(b, "33DB4D5B-1FF7-401C-9657-7441C03DD76"));
    ck_assert_ptr_null(aml_if(b, NULL));
    ck_assert_int_eq(aml_ctx_error(b), -EINVAL);
}
END_TEST

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;

    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

START_TEST(resource_templates)
{
    struct aml *rt = aml_resource_template(b);
    uint8_t out[512];
    ssize_t n;

    aml_append(rt, aml_io(b, 0x3f8, 0x3f8, 1, 8));
    aml_append(rt, aml_irq_noflags(b, 4));
    /* Buffer (0x0D) { IO..., IRQNoFlags, EndTag + checksum }. */
    EXPECT(rt, 0x11, 0x10, 0x0a, 0x0d,
           0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
           0x22, 0x10, 0x00,
           0x79, (uint8_t)(0x100 - ((0x47 + 0x01 + 0xf8 + 0x03 + 0xf8 + 0x03 + 0x01 + 0x08 +
                                     0x22 + 0x10 + 0x79) & 0xff)));

    rt = aml_resource_template(b);
    aml_append(rt, aml_fixed_io(b, 0x60, 1));
    aml_append(rt, aml_interrupt(b, AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, 16));
    aml_append(rt, aml_memory32_fixed(b, 1, 0xfed00000, 0x400));
    aml_append(rt, aml_word_bus_number(b, 0, 255));
    aml_append(rt, aml_dword_io(b, 0x1000, 0xffff));
    aml_append(rt, aml_dword_memory(b, 0, 0xc0000000, 0xdfffffff));
    aml_append(rt, aml_qword_memory(b, 1, 0x100000000ull, 0x8ffffffffull));
    n = aml_encode(b, rt, out, sizeof(out));
    /* BufferOp, 2-byte PkgLength, BytePrefix 141, then the descriptors. */
    ck_assert_int_eq(n, 1 + 2 + 2 + 4 + 9 + 12 + 16 + 26 + 26 + 46 + 2);
    ck_assert_uint_eq(out[3], 0x0a);
    ck_assert_uint_eq(out[4], 141);
    ck_assert_uint_eq(sum(out + 5, (size_t)n - 5), 0);   /* template sums to zero */
    ck_assert_uint_eq(out[5], 0x4b);
    ck_assert_uint_eq(out[9], 0x89);
    ck_assert_uint_eq(out[12], 0x01 | 0x04 | 0x08);      /* consumer, low, shared */
    ck_assert_uint_eq(out[18], 0x86);
    ck_assert_uint_eq(out[30], 0x88);
    ck_assert_uint_eq(out[46], 0x87);
    ck_assert_uint_eq(out[72], 0x87);
    ck_assert_uint_eq(out[98], 0x8a);
    ck_assert_uint_eq(out[(size_t)n - 2], 0x79);

    ck_assert_ptr_null(aml_irq_noflags(b, 16));
}
END_TEST

START_TEST(errors_are_sticky_and_returned)
{
    uint8_t mem[AML_CTX_MIN + 256];
    struct aml_ctx *c = aml_ctx_init(mem, sizeof(mem));
    struct aml *list = aml_list(c), *pkg;
    uint8_t out[64];

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(aml_ctx_init(mem, AML_CTX_MIN - 1));
    /* Exhaust the arena: every later constructor fails, encode says why. */
    for (int i = 0; i < 100; i++)
        aml_append(list, aml_int(c, 0x12345678));
    ck_assert_int_eq(aml_ctx_error(c), -ENOMEM);
    ck_assert_int_eq(aml_encode(c, list, out, sizeof(out)), -ENOMEM);
    ck_assert_ptr_nonnull(strstr(aml_ctx_error_msg(c), "exhausted"));

    /* A package of more than 255 elements. */
    pkg = aml_package(b);
    for (int i = 0; i < 256; i++)
        aml_append(pkg, aml_int(b, 0));
    ck_assert_int_eq(aml_encode(b, pkg, out, sizeof(out)), -E2BIG);
}
END_TEST

START_TEST(encode_checks_space_and_misuse)
{
    struct aml *d = aml_device(b, "DEV"), *i = aml_int(b, 7);
    uint8_t out[4];

    ck_assert_int_eq(aml_encode(b, d, out, sizeof(out)), -ENOSPC);
    aml_append(d, i);
    aml_append(d, i);           /* appended twice */
    ck_assert_int_eq(aml_ctx_error(b), -EINVAL);
    ck_assert_ptr_nonnull(strstr(aml_ctx_error_msg(b), "twice"));
}
END_TEST

/* Two builders at once share nothing. */
START_TEST(independent_builders)
{
    uint8_t m1[4096], m2[4096], o1[64], o2[64];
    struct aml_ctx *c1 = aml_ctx_init(m1, sizeof(m1)), *c2 = aml_ctx_init(m2, sizeof(m2));
    struct aml *t1 = aml_name_decl(c1, "A", aml_int(c1, 1));
    struct aml *t2 = aml_name_decl(c2, "B", aml_int(c2, 2));

    ck_assert_ptr_null(aml_name(c2, "bad"));
    ck_assert_int_eq(aml_ctx_error(c1), 0);
    ck_assert_int_eq(aml_encode(c1, t1, o1, sizeof(o1)), 6);
    ck_assert_int_lt(aml_encode(c2, t2, o2, sizeof(o2)), 0);
    aml_append(t1, t2);                     /* across builders */
    ck_assert_int_eq(aml_ctx_error(c1), -EINVAL);
}
END_TEST

TCase *acpi_aml_tcase(void)
{
    TCase *tc = tcase_create("aml");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pkglen_boundaries);
    tcase_add_test(tc, pkglen_in_terms);
    tcase_add_test(tc, integers_every_width);
    tcase_add_test(tc, name_paths);
    tcase_add_test(tc, name_errors);
    tcase_add_test(tc, data_objects);
    tcase_add_test(tc, named_objects);
    tcase_add_test(tc, expressions_and_control_flow);
    tcase_add_test(tc, resource_templates);
    tcase_add_test(tc, errors_are_sticky_and_returned);
    tcase_add_test(tc, encode_checks_space_and_misuse);
    tcase_add_test(tc, independent_builders);
    return tc;
}
