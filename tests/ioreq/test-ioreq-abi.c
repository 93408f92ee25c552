// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Ferry's ioreq ABI: the sizes Xen's protocol fixes.  The field-by-field
 * comparison with Xen's own header is its own test (test-ioreq-xen.c), so
 * that it SKIPs on its own where libxen-dev is missing.
 */
#include <check.h>

#include "ioreq/ioreq-abi.h"
#include "tests/ioreq/test-ioreq.h"

START_TEST(test_sizes)
{
    ck_assert_uint_eq(sizeof(ioreq_t), 32);
    ck_assert_uint_eq(sizeof(buf_ioreq_t), 8);
    ck_assert_uint_eq(sizeof(buffered_iopage_t), 4096);
}
END_TEST

TCase *ioreq_abi_tcase(void)
{
    TCase *tc = tcase_create("abi");
    tcase_add_test(tc, test_sizes);
    return tc;
}
