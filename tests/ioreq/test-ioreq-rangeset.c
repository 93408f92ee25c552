// SPDX-License-Identifier: GPL-2.0-or-later
#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "ioreq/ioreq.h"
#include "tests/ioreq/test-ioreq.h"

static int A, B, C;   /* owners: only their addresses matter */

START_TEST(test_overlap_rules)
{
    struct ioreq_rangeset *s = ioreq_rangeset_new();
    void *who = NULL;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x3f8, 0x3ff, &A, NULL), 0);
    /* Adjacent on both sides is fine. */
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x3f0, 0x3f7, &B, NULL), 0);
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x400, 0x400, &C, NULL), 0);
    /* Any overlap is refused and names the owner. */
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x3ff, 0x3ff, &C, &who), -EEXIST);
    ck_assert_ptr_eq(who, &A);
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x300, 0x500, &C, &who), -EEXIST);
    ck_assert_int_eq(ioreq_rangeset_add(s, 0x3fc, 0x3fd, &C, &who), -EEXIST);
    ck_assert_int_eq(ioreq_rangeset_add(s, 5, 4, &C, NULL), -EINVAL);
    ck_assert_uint_eq(ioreq_rangeset_count(s), 3);

    uint64_t st, en;
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0x3f8, &st, &en), &A);
    ck_assert_uint_eq(st, 0x3f8);
    ck_assert_uint_eq(en, 0x3ff);
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0x3ff, NULL, NULL), &A);
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0x3f7, NULL, NULL), &B);
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0x400, NULL, NULL), &C);
    ck_assert_ptr_null(ioreq_rangeset_lookup(s, 0x401, NULL, NULL));
    ck_assert_ptr_null(ioreq_rangeset_lookup(s, 0, NULL, NULL));
    ioreq_rangeset_free(s);
}
END_TEST

START_TEST(test_full_width_and_removal)
{
    struct ioreq_rangeset *s = ioreq_rangeset_new();

    ck_assert_int_eq(ioreq_rangeset_add(s, UINT64_MAX - 0xfff, UINT64_MAX, &A, NULL), 0);
    ck_assert_int_eq(ioreq_rangeset_add(s, 0, 0, &B, NULL), 0);
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, UINT64_MAX, NULL, NULL), &A);
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0, NULL, NULL), &B);
    /* Removal must name the exact range and owner. */
    ck_assert_int_eq(ioreq_rangeset_remove(s, 0, 0, &A), -ENOENT);
    ck_assert_int_eq(ioreq_rangeset_remove(s, UINT64_MAX - 0xfff, UINT64_MAX - 1, &A), -ENOENT);
    ck_assert_int_eq(ioreq_rangeset_remove(s, 0, 0, &B), 0);
    ck_assert_ptr_null(ioreq_rangeset_lookup(s, 0, NULL, NULL));
    /* The freed space can be claimed again. */
    ck_assert_int_eq(ioreq_rangeset_add(s, 0, 0x10, &C, NULL), 0);
    ck_assert_uint_eq(ioreq_rangeset_remove_owner(s, &A), 1);
    ck_assert_uint_eq(ioreq_rangeset_count(s), 1);
    ioreq_rangeset_free(s);
}
END_TEST

static int count_in_order(void *arg, uint64_t start, uint64_t end, void *owner)
{
    uint64_t *prev_end = arg;

    ck_assert(start > *prev_end || *prev_end == UINT64_MAX);
    *prev_end = end;
    return 0;
}

START_TEST(test_ten_thousand)
{
    struct ioreq_rangeset *s = ioreq_rangeset_new();
    const unsigned n = 10000;

    /* Insert in a scrambled order: i * 7919 mod n visits every index once. */
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (unsigned)((k * 7919ull) % n);
        ck_assert_int_eq(ioreq_rangeset_add(s, i * 0x1000ull, i * 0x1000ull + 0x7ff,
                                            (void *)(uintptr_t)(i + 1), NULL), 0);
    }
    ck_assert_uint_eq(ioreq_rangeset_count(s), n);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_ptr_eq(ioreq_rangeset_lookup(s, i * 0x1000ull + 0x7ff, NULL, NULL),
                         (void *)(uintptr_t)(i + 1));
        ck_assert_ptr_null(ioreq_rangeset_lookup(s, i * 0x1000ull + 0x800, NULL, NULL));
    }
    uint64_t prev = UINT64_MAX;
    ck_assert_int_eq(ioreq_rangeset_foreach(s, count_in_order, &prev), 0);
    for (unsigned i = 0; i < n; i += 2)
        ck_assert_int_eq(ioreq_rangeset_remove(s, i * 0x1000ull, i * 0x1000ull + 0x7ff,
                                               (void *)(uintptr_t)(i + 1)), 0);
    ck_assert_uint_eq(ioreq_rangeset_count(s), n / 2);
    ck_assert_ptr_null(ioreq_rangeset_lookup(s, 0, NULL, NULL));
    ck_assert_ptr_eq(ioreq_rangeset_lookup(s, 0x1000, NULL, NULL), (void *)2);
    ioreq_rangeset_free(s);
}
END_TEST

TCase *ioreq_rangeset_tcase(void)
{
    TCase *tc = tcase_create("rangeset");
    tcase_add_test(tc, test_overlap_rules);
    tcase_add_test(tc, test_full_width_and_removal);
    tcase_add_test(tc, test_ten_thousand);
    return tc;
}
