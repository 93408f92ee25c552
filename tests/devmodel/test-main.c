// SPDX-License-Identifier: GPL-2.0-or-later
/* The devmodel unit test binary: one suite, a test case per part. */
#include "tests/devmodel/test-devmodel.h"

int main(void)
{
    Suite *s = suite_create("devmodel");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, dm_framework_tcase());
    suite_add_tcase(s, dm_control_tcase());
    suite_add_tcase(s, dm_uart_tcase());
    suite_add_tcase(s, dm_rtc_tcase());
    suite_add_tcase(s, dm_pm_tcase());
    suite_add_tcase(s, dm_misc_tcase());
    suite_add_tcase(s, dm_pci_tcase());
    suite_add_tcase(s, dm_testdevs_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
