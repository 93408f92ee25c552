// SPDX-License-Identifier: GPL-2.0-or-later
/* The ioreq library's unit test binary: one suite, a test case per part. */
#include <stdlib.h>

#include "tests/ioreq/test-ioreq.h"

int main(void)
{
    Suite *s = suite_create("ioreq");
    suite_add_tcase(s, ioreq_abi_tcase());
    suite_add_tcase(s, ioreq_rangeset_tcase());
    suite_add_tcase(s, ioreq_transport_tcase());

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
