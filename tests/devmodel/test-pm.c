// SPDX-License-Identifier: GPL-2.0-or-later
/* The ACPI PM block: PM timer, PM1 status/enable, SCI, S5, GPE0. */
#include <errno.h>

#include "tests/devmodel/test-devmodel.h"

#define PM1_STS 0xb000
#define PM1_EN  0xb002
#define PM1_CNT 0xb004
#define PM_TMR  0xb008
#define GPE_STS 0xafe0
#define GPE_EN  0xafe2

static void pm_tb(struct tb *t)
{
    tb_init(t, false);
    t->fake_clock = true;
    t->clock_ns = 1000000000ull;
    tb_add(t, "acpi-pm", "pm", NULL);
    ck_assert_int_eq(dm_start(t->dm), 0);
}

START_TEST(test_pm_timer)
{
    struct tb t;

    pm_tb(&t);
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 4), 0);
    t.clock_ns += 1000000000ull;                    /* one second: 3579545 ticks */
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 4), 3579545);
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 2), 3579545 & 0xffff);
    ck_assert_uint_eq(tb_in(&t, PM_TMR + 2, 1), (3579545 >> 16) & 0xff);
    ck_assert_uint_eq(tb_in(&t, PM_TMR + 3, 1), 0);
    t.clock_ns += 1000ull;                          /* 1 us: 3.58 ticks */
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 4), 3579548);
    tb_out(&t, PM_TMR, 4, 0);                       /* read-only */
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 4), 3579548);
    /* After 2^31 ticks (10 minutes) bit 31 flips: TMR_STS. */
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2) & 1, 0);
    t.clock_ns += 600ull * 1000000000ull;
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2) & 1, 1);
    tb_out(&t, PM1_STS, 2, 1);                      /* write 1 to clear */
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2) & 1, 0);
    tb_fini(&t);
}
END_TEST

START_TEST(test_pm_sci_and_power_button)
{
    struct tb t;

    pm_tb(&t);
    ck_assert_uint_eq(tb_in(&t, PM1_CNT, 2) & 1, 1);            /* SCI_EN from reset */
    ck_assert_int_eq(dm_powerdown(t.dm), 0);
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2), 0x0100);           /* PWRBTN_STS */
    ck_assert(!t.line[9]);                                      /* not enabled yet */
    tb_out(&t, PM1_EN, 2, 0x0100);
    ck_assert(t.line[9]);                                       /* SCI asserted (level) */
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 4), 0x01000100);       /* STS | EN << 16 */
    tb_out(&t, PM1_STS, 2, 0x0100);
    ck_assert(!t.line[9]);
    /* Bits that do not exist in PM1_EN stay clear; a dword write does both halves. */
    tb_out(&t, PM1_STS, 4, 0xffff0000);
    ck_assert_uint_eq(tb_in(&t, PM1_EN, 2), 0x0721);
    /* GPE0: status is write-1-to-clear, enables are plain. */
    tb_out(&t, GPE_EN, 2, 0x0003);
    ck_assert_uint_eq(tb_in(&t, GPE_EN, 2), 0x0003);
    ck_assert_uint_eq(tb_in(&t, GPE_STS, 4), 0x00030000);
    tb_out(&t, GPE_STS, 1, 0xff);
    ck_assert_uint_eq(tb_in(&t, GPE_STS, 2), 0);
    tb_fini(&t);
}
END_TEST

START_TEST(test_pm_s5)
{
    struct tb t;

    pm_tb(&t);
    /* S2 (SLP_TYP 2): not supported, ignored. */
    tb_out(&t, PM1_CNT, 2, (2 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.shutdowns, 0);
    ck_assert_uint_eq(tb_in(&t, PM1_CNT, 2) & (1 << 13), 0);    /* SLP_EN reads 0 */
    /* SLP_TYP 5 (not declared by libacpi) with SLP_EN: not S5, ignored. */
    tb_out(&t, PM1_CNT, 2, (5 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.shutdowns, 0);
    ck_assert_uint_eq((tb_in(&t, PM1_CNT, 2) >> 10) & 7, 5);
    /* A byte write of the high half, SLP_TYP 0 with SLP_EN: S5, power off. */
    tb_out(&t, PM1_CNT + 1, 1, (1 << 13) >> 8);
    ck_assert_uint_eq(t.shutdowns, 1);
    ck_assert_int_eq(t.reason, IOREQ_SHUTDOWN_POWEROFF);
    ck_assert_uint_eq(t.code, 0);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_SHUTDOWN);
    tb_fini(&t);

    /* s5-slp-typ names another value for tables that declare one. */
    tb_init(&t, false);
    tb_add(&t, "acpi-pm", "pm", "s5-slp-typ=7");
    ck_assert_int_eq(dm_start(t.dm), 0);
    tb_out(&t, PM1_CNT, 2, (1 << 13) | 1);
    tb_out(&t, PM1_CNT, 2, (5 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.shutdowns, 0);
    tb_out(&t, PM1_CNT, 2, (7 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.shutdowns, 1);
    tb_fini(&t);
    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "acpi-pm", "pm", "s5-slp-typ=8"), -EINVAL);
    tb_fini(&t);
}
END_TEST

static bool pm_running(struct tb *t, void *arg)
{
    return dm_get_status(t->dm) == FERRY_DM_RUNNING;
}

/* S3: SLP_TYP 1 suspends; the button, system_wakeup and (with RTC_EN) the RTC alarm wake. */
START_TEST(test_pm_s3)
{
    struct tb t;

    tb_init(&t, false);
    t.fake_clock = true;
    t.clock_ns = 1000000000ull;
    tb_add(&t, "acpi-pm", "pm", NULL);
    tb_add(&t, "rtc", "rtc", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    t.sleep_ok = true;
    /* Without RTC_EN the PM block does not let the RTC wake the guest. */
    tb_out(&t, PM1_EN, 2, 0x0100);
    tb_out(&t, PM1_CNT, 2, (1 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.suspends, 1);
    ck_assert_uint_eq(t.shutdowns, 0);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_SUSPENDED);
    ck_assert_str_eq(dm_status_name(FERRY_DM_SUSPENDED), "suspended");
    ck_assert_int_eq(dm_wakeup(t.dm, FERRY_DM_WAKE_RTC), -EPERM);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_SUSPENDED);
    /* The power button wakes: devices reset, then WAK_STS | PWRBTN_STS. */
    ck_assert_int_eq(dm_powerdown(t.dm), 0);
    ck_assert_uint_eq(t.wakes, 1);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2), 0x8100);
    ck_assert_uint_eq(tb_in(&t, PM1_EN, 2), 0);
    ck_assert_int_eq(dm_wakeup(t.dm, FERRY_DM_WAKE_OTHER), -EALREADY);
    tb_out(&t, PM1_STS, 2, 0xffff);
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2), 0);

    /* system_wakeup (OTHER) reports the power button too, as QEMU does. */
    tb_out(&t, PM1_CNT, 2, (1 << 10) | (1 << 13) | 1);
    ck_assert_int_eq(dm_wakeup(t.dm, FERRY_DM_WAKE_OTHER), 0);
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2), 0x8100);
    tb_out(&t, PM1_STS, 2, 0xffff);

    /* The RTC alarm with RTC_EN: RTC_STS.  Alarm every second ("don't care"), AIE. */
    tb_out(&t, PM1_EN, 2, 0x0400);
    for (unsigned reg = 1; reg <= 5; reg += 2) {
        tb_out(&t, 0x70, 1, reg);
        tb_out(&t, 0x71, 1, 0xc0);
    }
    tb_out(&t, 0x70, 1, 0x0b);
    tb_out(&t, 0x71, 1, 0x22);                          /* 24 hours, AIE */
    tb_out(&t, PM1_CNT, 2, (1 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.suspends, 3);
    tb_loop_until(&t, pm_running, NULL, 5000);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    ck_assert_uint_eq(t.wakes, 3);
    ck_assert_uint_eq(tb_in(&t, PM1_STS, 2), 0x8400);
    tb_out(&t, 0x70, 1, 0x0b);
    ck_assert_uint_eq(tb_in(&t, 0x71, 1) & 0x20, 0);    /* the RTC was reset: no AIE */

    /* A backend that cannot suspend: the guest runs on. */
    t.sleep_fail = -ENOSYS;
    tb_out(&t, PM1_CNT, 2, (1 << 10) | (1 << 13) | 1);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    tb_fini(&t);

    /* s3-slp-typ: none turns S3 off; a value may not be S5's. */
    tb_init(&t, false);
    t.sleep_ok = true;
    tb_add(&t, "acpi-pm", "pm", "s3-slp-typ=none");
    ck_assert_int_eq(dm_start(t.dm), 0);
    tb_out(&t, PM1_CNT, 2, (1 << 10) | (1 << 13) | 1);
    ck_assert_uint_eq(t.suspends, 0);
    tb_fini(&t);
    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "acpi-pm", "pm", "s3-slp-typ=0"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "acpi-pm", "pm", "s3-slp-typ=9"), -EINVAL);
    tb_add(&t, "acpi-pm", "pm", "s3-slp-typ=5,s5-slp-typ=7");
    tb_fini(&t);
}
END_TEST

START_TEST(test_pm_save_restore)
{
    struct tb t;
    GByteArray *img = g_byte_array_new();

    pm_tb(&t);
    t.clock_ns += 2000000000ull;
    tb_out(&t, PM1_EN, 2, 0x0100);
    ck_assert_int_eq(dm_save(t.dm, img), 0);
    /* Restored later on a clock that has moved on: the timer continues from its count. */
    t.clock_ns += 5000000000ull;
    dm_reset(t.dm);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    ck_assert_uint_eq(tb_in(&t, PM_TMR, 4), 2 * 3579545);
    ck_assert_uint_eq(tb_in(&t, PM1_EN, 2), 0x0100);
    g_byte_array_free(img, TRUE);
    tb_fini(&t);
}
END_TEST

TCase *dm_pm_tcase(void)
{
    TCase *tc = tcase_create("acpi-pm");

    tcase_add_test(tc, test_pm_timer);
    tcase_add_test(tc, test_pm_sci_and_power_button);
    tcase_add_test(tc, test_pm_s5);
    tcase_add_test(tc, test_pm_s3);
    tcase_add_test(tc, test_pm_save_restore);
    return tc;
}
