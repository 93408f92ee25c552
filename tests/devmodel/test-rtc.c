// SPDX-License-Identifier: GPL-2.0-or-later
/* The RTC/CMOS: time registers, formats, setting the clock, NMI mask, interrupts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/devmodel/test-devmodel.h"

#define NS 1000000000ll
/* Thu 2026-11-26 12:34:56 UTC */
#define T0 1795696496ll

static uint8_t cmos(struct tb *t, uint8_t idx)
{
    tb_out(t, 0x70, 1, idx);
    return (uint8_t)tb_in(t, 0x71, 1);
}

static void cmos_set(struct tb *t, uint8_t idx, uint8_t v)
{
    tb_out(t, 0x70, 1, idx);
    tb_out(t, 0x71, 1, v);
}

static void rtc_tb(struct tb *t)
{
    tb_init(t, false);
    t->fake_clock = true;
    t->wall_ns = T0 * NS + NS / 2;
    tb_add(t, "rtc", "rtc", NULL);
    ck_assert_int_eq(dm_start(t->dm), 0);
}

START_TEST(test_rtc_reads_time)
{
    struct tb t;

    rtc_tb(&t);
    ck_assert_uint_eq(cmos(&t, 0x00), 0x56);
    ck_assert_uint_eq(cmos(&t, 0x02), 0x34);
    ck_assert_uint_eq(cmos(&t, 0x04), 0x12);
    ck_assert_uint_eq(cmos(&t, 0x06), 0x05);        /* Thursday: day 5 of 1..7 */
    ck_assert_uint_eq(cmos(&t, 0x07), 0x26);
    ck_assert_uint_eq(cmos(&t, 0x08), 0x11);
    ck_assert_uint_eq(cmos(&t, 0x09), 0x26);
    ck_assert_uint_eq(cmos(&t, 0x32), 0x20);        /* century */
    ck_assert_uint_eq(cmos(&t, 0x0a), 0x26);
    ck_assert_uint_eq(cmos(&t, 0x0b), 0x02);        /* BCD, 24 h */
    ck_assert_uint_eq(cmos(&t, 0x0d), 0x80);        /* battery good */
    /* Time moves with the host clock. */
    t.wall_ns += 65 * NS;
    ck_assert_uint_eq(cmos(&t, 0x00), 0x01);
    ck_assert_uint_eq(cmos(&t, 0x02), 0x36);
    /* Binary mode and 12-hour mode. */
    cmos_set(&t, 0x0b, 0x04);                       /* binary, 12 h */
    ck_assert_uint_eq(cmos(&t, 0x02), 36);
    ck_assert_uint_eq(cmos(&t, 0x04), 0x80 | 12);   /* 12 PM */
    t.wall_ns += 3600 * NS;
    ck_assert_uint_eq(cmos(&t, 0x04), 0x80 | 1);    /* 1 PM */
    /* UIP in the last 244 us before a second. */
    t.wall_ns = (T0 + 1) * NS - 100000;
    ck_assert_uint_eq(cmos(&t, 0x0a) & 0x80, 0x80);
    t.wall_ns = (T0 + 1) * NS + 100000;
    ck_assert_uint_eq(cmos(&t, 0x0a) & 0x80, 0);
    tb_fini(&t);
}
END_TEST

START_TEST(test_rtc_set_time)
{
    struct tb t;

    rtc_tb(&t);
    /* The SET procedure: freeze, write, release. */
    cmos_set(&t, 0x0b, 0x82);
    t.wall_ns += 10 * NS;                           /* frozen meanwhile */
    ck_assert_uint_eq(cmos(&t, 0x00), 0x56);
    ck_assert_uint_eq(cmos(&t, 0x0a) & 0x80, 0);    /* no UIP while SET */
    cmos_set(&t, 0x09, 0x99);
    cmos_set(&t, 0x32, 0x19);
    cmos_set(&t, 0x08, 0x12);
    cmos_set(&t, 0x07, 0x31);
    cmos_set(&t, 0x04, 0x23);
    cmos_set(&t, 0x02, 0x59);
    cmos_set(&t, 0x00, 0x58);
    cmos_set(&t, 0x0b, 0x02);
    ck_assert_uint_eq(cmos(&t, 0x00), 0x58);
    t.wall_ns += 3 * NS;                            /* 1999-12-31 23:59:58 + 3 s */
    ck_assert_uint_eq(cmos(&t, 0x00), 0x01);
    ck_assert_uint_eq(cmos(&t, 0x02), 0x00);
    ck_assert_uint_eq(cmos(&t, 0x09), 0x00);
    ck_assert_uint_eq(cmos(&t, 0x32), 0x20);
    ck_assert_uint_eq(cmos(&t, 0x08), 0x01);
    /* One register at a time without SET. */
    cmos_set(&t, 0x04, 0x05);
    ck_assert_uint_eq(cmos(&t, 0x04), 0x05);
    ck_assert_uint_eq(cmos(&t, 0x02), 0x00);
    /* Garbage (bad BCD, month 0x99) is clamped, never trusted. */
    cmos_set(&t, 0x08, 0x99);
    ck_assert_uint_eq(cmos(&t, 0x08), 0x12);
    cmos_set(&t, 0x00, 0xff);
    ck_assert_uint_le(cmos(&t, 0x00), 0x59);
    /* Reset keeps the time (it is a battery clock). */
    dm_reset(t.dm);
    ck_assert_uint_eq(cmos(&t, 0x04), 0x05);
    tb_fini(&t);
}
END_TEST

START_TEST(test_rtc_nmi_and_ram)
{
    struct tb t;

    rtc_tb(&t);
    tb_out(&t, 0x70, 1, 0x80 | 0x40);               /* NMI off, index 0x40 */
    tb_out(&t, 0x71, 1, 0xa5);
    ck_assert_uint_eq(cmos(&t, 0x40), 0xa5);
    ck_assert_uint_eq(tb_in(&t, 0x70, 1), 0xff);    /* the index is write-only */
    tb_out(&t, 0x70, 1, 0x80);
    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 0);
    ck_assert(json_is_true(json_object_get(o, "nmi-masked")));
    json_decref(root);
    /* REG_C and REG_D are read-only; a wide access splits into index + data. */
    cmos_set(&t, 0x0d, 0x00);
    ck_assert_uint_eq(cmos(&t, 0x0d), 0x80);
    tb_out(&t, 0x70, 2, 0x3341);                    /* index 0x41, data 0x33 */
    ck_assert_uint_eq(cmos(&t, 0x41), 0x33);
    /* Base memory 640 KiB in CMOS 0x15/0x16. */
    ck_assert_uint_eq(cmos(&t, 0x15) | cmos(&t, 0x16) << 8, 640);
    tb_fini(&t);
}
END_TEST

static bool irq_seen(struct tb *t, void *arg)
{
    return t->line_raises[8] >= *(unsigned *)arg;
}

START_TEST(test_rtc_periodic_interrupt)
{
    struct tb t;
    unsigned want = 3;

    tb_init(&t, false);
    tb_add(&t, "rtc", "rtc", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    cmos_set(&t, 0x0a, 0x26);                       /* 1024 Hz */
    cmos_set(&t, 0x0b, 0x42);                       /* PIE */
    /* Each interrupt is acknowledged by reading REG_C, as a guest does. */
    for (unsigned i = 1; i <= want; i++) {
        tb_loop_until(&t, irq_seen, &i, 10000);
        ck_assert_uint_ge(t.line_raises[8], i);
        ck_assert_uint_eq(cmos(&t, 0x0c) & 0xc0, 0xc0);  /* IRQF | PF */
    }
    ck_assert_uint_eq(cmos(&t, 0x0c), 0);            /* cleared by the read */
    cmos_set(&t, 0x0b, 0x02);
    tb_fini(&t);
}
END_TEST

START_TEST(test_rtc_update_interrupt)
{
    struct tb t;
    unsigned one = 1;

    tb_init(&t, false);
    tb_add(&t, "rtc", "rtc", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    cmos_set(&t, 0x0b, 0x12);                       /* UIE */
    tb_loop_until(&t, irq_seen, &one, 5000);
    ck_assert_uint_ge(t.line_raises[8], 1);
    ck_assert_uint_eq(cmos(&t, 0x0c) & 0x90, 0x90); /* IRQF | UF */
    tb_fini(&t);
}
END_TEST

START_TEST(test_rtc_save_restore)
{
    struct tb t;
    GByteArray *img = g_byte_array_new();

    rtc_tb(&t);
    cmos_set(&t, 0x04, 0x07);
    cmos_set(&t, 0x50, 0x77);
    ck_assert_int_eq(dm_save(t.dm, img), 0);
    cmos_set(&t, 0x04, 0x09);
    cmos_set(&t, 0x50, 0x00);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    ck_assert_uint_eq(cmos(&t, 0x04), 0x07);
    ck_assert_uint_eq(cmos(&t, 0x50), 0x77);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len - 1), -EBADMSG);
    /* An offset that would overflow the clock (the last 8 bytes) is refused. */
    memset(img->data + img->len - 8, 0x7f, 8);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -ERANGE);
    memset(img->data + img->len - 8, 0x80, 8);
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -ERANGE);
    ck_assert_uint_eq(cmos(&t, 0x50), 0x77);    /* and nothing of it was taken */
    g_byte_array_free(img, TRUE);
    tb_fini(&t);
}
END_TEST

TCase *dm_rtc_tcase(void)
{
    TCase *tc = tcase_create("rtc");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rtc_reads_time);
    tcase_add_test(tc, test_rtc_set_time);
    tcase_add_test(tc, test_rtc_nmi_and_ram);
    tcase_add_test(tc, test_rtc_periodic_interrupt);
    tcase_add_test(tc, test_rtc_update_interrupt);
    tcase_add_test(tc, test_rtc_save_restore);
    return tc;
}
