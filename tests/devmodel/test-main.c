// SPDX-License-Identifier: GPL-2.0-or-later
/* The devmodel unit test binary: one suite, a test case per part. */
#include "tests/check-main.h"
#include "tests/devmodel/test-devmodel.h"

FERRY_CHECK_MAIN("devmodel", dm_framework_tcase, dm_control_tcase, dm_uart_tcase, dm_rtc_tcase,
                 dm_pm_tcase, dm_misc_tcase, dm_pci_tcase, dm_testdevs_tcase, dm_state_tcase);
