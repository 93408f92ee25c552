/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef FERRY_TEST_IOREQ_H
#define FERRY_TEST_IOREQ_H
#include <check.h>
TCase *ioreq_abi_tcase(void);
TCase *ioreq_rangeset_tcase(void);
TCase *ioreq_transport_tcase(void);
TCase *ioreq_handover_tcase(void);
#endif
