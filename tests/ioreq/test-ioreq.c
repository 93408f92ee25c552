// SPDX-License-Identifier: GPL-2.0-or-later
/* The ioreq library's unit test binary: one suite, a test case per part. */
#include <stdlib.h>

#include "tests/check-main.h"
#include "tests/ioreq/test-ioreq.h"

FERRY_CHECK_MAIN("ioreq", ioreq_abi_tcase, ioreq_rangeset_tcase, ioreq_transport_tcase,
                 ioreq_handover_tcase);
