// SPDX-License-Identifier: GPL-2.0-or-later
/* Reset control (0xcf9), POST codes (0x80), the debug exit port (0xf4). */
#include <errno.h>

#include "tests/devmodel/test-devmodel.h"

START_TEST(test_reset_cf9)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "reset", "reset", NULL);
    tb_add(&t, "uart", "com1", "out=null");
    ck_assert_int_eq(dm_start(t.dm), 0);
    tb_out(&t, 0x3ff, 1, 0x77);                 /* UART scratch: reset clears it */
    tb_out(&t, 0xcf9, 1, 0x02);                 /* select hard reset */
    ck_assert_uint_eq(t.shutdowns, 0);
    ck_assert_uint_eq(tb_in(&t, 0xcf9, 1), 0x02);
    tb_out(&t, 0xcf9, 1, 0x06);                 /* and go */
    ck_assert_uint_eq(t.shutdowns, 1);
    ck_assert_int_eq(t.reason, IOREQ_SHUTDOWN_REBOOT);
    ck_assert_uint_eq(tb_in(&t, 0xcf9, 1), 0x00);
    ck_assert_uint_eq(tb_in(&t, 0x3ff, 1), 0x00);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    /* 0xcf8 stays the hypervisor's (CONFIG_ADDRESS): not decoded here. */
    ck_assert_uint_eq(tb_in(&t, 0xcf8, 1), 0xff);
    tb_fini(&t);
}
END_TEST

START_TEST(test_post_codes)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    for (unsigned i = 0; i < 20; i++)
        tb_out(&t, 0x80, 1, 0x10 + i);
    ck_assert_uint_eq(tb_in(&t, 0x80, 1), 0x23);
    tb_out(&t, 0x80, 4, 0xdeadbeef);            /* an I/O delay of any width: split */
    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 0);
    json_t *h = json_object_get(o, "history");
    ck_assert_uint_eq(json_array_size(h), 16);
    ck_assert_int_eq(json_integer_value(json_array_get(h, 15)), 0xef);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "writes")), 21);
    json_decref(root);
    tb_fini(&t);
}
END_TEST

START_TEST(test_debug_exit)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "debug-exit", "debug-exit", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xf4, 0xf7));
    ck_assert_uint_eq(tb_in(&t, 0xf4, 1), 0xff);
    tb_out(&t, 0xf5, 1, 3);                     /* not the port itself: ignored */
    ck_assert_uint_eq(t.shutdowns, 0);
    tb_out(&t, 0xf4, 4, 42);
    ck_assert_uint_eq(t.shutdowns, 1);
    ck_assert_int_eq(t.reason, IOREQ_SHUTDOWN_POWEROFF);
    ck_assert_uint_eq(t.code, 42);
    tb_fini(&t);
    tb_init(&t, false);
    tb_add(&t, "debug-exit", "dx", "port=0x600");
    tb_out(&t, 0x600, 1, 0);
    ck_assert_uint_eq(t.shutdowns, 1);
    ck_assert_uint_eq(t.code, 0);
    ck_assert_int_eq(tb_try_add(&t, "debug-exit", "dx2", "port=0xfffe"), -EINVAL);
    tb_fini(&t);
}
END_TEST

/*
 * A guest that loops on reset, power-off or POST writes: every request goes
 * to the hypervisor, but the log gets a few lines, not one or two per write.
 */
START_TEST(test_guest_requests_log_bounded)
{
    enum { WRITES = 500 };
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "reset", "reset", NULL);
    tb_add(&t, "debug-exit", "debug-exit", NULL);
    tb_add(&t, "acpi-pm", "pm", NULL);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    t.log_lines = 0;
    for (unsigned i = 0; i < WRITES; i++) {
        tb_out(&t, 0xcf9, 1, 0x06);
        tb_out(&t, 0xf4, 1, 1);
        tb_out(&t, 0xb004, 2, 0x2000);          /* SLP_EN, SLP_TYP 0: S5 */
        tb_out(&t, 0x80, 1, (uint8_t)i);
    }
    ck_assert_uint_eq(t.shutdowns, 3 * WRITES);
    /* Each device's limiter and the framework's: a burst each per interval. */
    ck_assert_msg(t.log_lines < 100, "%u log lines for %u guest writes", t.log_lines,
                  4 * WRITES);
    tb_fini(&t);
}
END_TEST

TCase *dm_misc_tcase(void)
{
    TCase *tc = tcase_create("misc");

    tcase_add_test(tc, test_reset_cf9);
    tcase_add_test(tc, test_post_codes);
    tcase_add_test(tc, test_debug_exit);
    tcase_add_test(tc, test_guest_requests_log_bounded);
    return tc;
}
