// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The handover stream (devmodel/dm-state.h): a state goes from one device
 * model to another built from the same config; a corrupt, truncated,
 * foreign-version, other-guest or other-config state is refused with a
 * reason, before any device is touched.
 */
#include <errno.h>
#include <string.h>

#include "devmodel/dm-state.h"
#include "tests/devmodel/test-devmodel.h"

#define COM1 0x3f8
#define SCR 7

static void machine(struct tb *t)
{
    tb_init(t, false);
    tb_add(t, "uart", "com1", "out=null");
    tb_add(t, "rtc", "rtc", NULL);
}

static GByteArray *saved(const char *guest)
{
    static const uint32_t roles[] = { DM_STATE_FD_IOREQ_SOCK, DM_STATE_FD_CONTROL };
    struct tb t;
    GByteArray *img = g_byte_array_new();

    machine(&t);
    tb_out(&t, COM1 + SCR, 1, 0x5a);
    tb_out(&t, 0x70, 1, 0x30);
    tb_out(&t, 0x71, 1, 0x77);      /* CMOS RAM byte */
    ck_assert_int_eq(dm_state_save(t.dm, guest, roles, 2, img), 0);
    tb_fini(&t);
    return img;
}

/* The load must fail with rc and leave the scratch register at 0. */
static void refused(GByteArray *img, int rc, const char *needle)
{
    struct tb t;
    struct dm_state_view v;
    char why[256];

    machine(&t);
    ck_assert_int_eq(dm_state_load(t.dm, "g1", img->data, img->len, &v, why, sizeof(why)), rc);
    ck_assert_msg(strstr(why, needle), "reason '%s' lacks '%s'", why, needle);
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0);
    tb_fini(&t);
}

START_TEST(test_state_round_trip)
{
    g_autoptr(GByteArray) img = saved("g1");
    struct tb t;
    struct dm_state_view v;
    char why[256];

    machine(&t);
    ck_assert_int_eq(dm_state_load(t.dm, "g1", img->data, img->len, &v, why, sizeof(why)), 0);
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0x5a);
    tb_out(&t, 0x70, 1, 0x30);
    ck_assert_uint_eq(tb_in(&t, 0x71, 1), 0x77);
    ck_assert_uint_eq(v.nr_fds, 2);
    ck_assert_uint_eq(v.fd_roles[0], DM_STATE_FD_IOREQ_SOCK);
    ck_assert_uint_eq(v.fd_roles[1], DM_STATE_FD_CONTROL);
    ck_assert_str_eq(v.guest, "g1");
    ck_assert(g_str_has_prefix(v.source, "ferry-dm "));
    tb_fini(&t);
}
END_TEST

START_TEST(test_state_refusals)
{
    g_autoptr(GByteArray) img = saved("g1");
    g_autoptr(GByteArray) bad = g_byte_array_new();

    /* every truncation */
    for (size_t n = 0; n < img->len; n++) {
        struct dm_state_view v;
        char why[256];
        ck_assert_int_eq(dm_state_parse(img->data, n, &v, why, sizeof(why)), -EBADMSG);
        ck_assert(why[0]);
    }
    /* every single flipped bit is caught (the checksum, or a header check before it) */
    for (size_t i = 0; i < img->len; i++) {
        struct dm_state_view v;
        char why[256];
        img->data[i] ^= 0x10;
        ck_assert_int_lt(dm_state_parse(img->data, img->len, &v, why, sizeof(why)), 0);
        img->data[i] ^= 0x10;
    }
    g_byte_array_append(bad, img->data, img->len);
    bad->data[bad->len - 10] ^= 1;
    refused(bad, -EBADMSG, "checksum");
    g_byte_array_set_size(bad, 0);
    g_byte_array_append(bad, img->data, img->len - 1);
    refused(bad, -EBADMSG, "truncated");
    /* another version: refused for the version, whatever the checksum */
    g_byte_array_set_size(bad, 0);
    g_byte_array_append(bad, img->data, img->len);
    bad->data[4] = DM_STATE_VERSION + 1;
    refused(bad, -EPROTONOSUPPORT, "version");
}
END_TEST

START_TEST(test_state_other_guest_or_config)
{
    g_autoptr(GByteArray) img = saved("g2");
    struct tb t;
    struct dm_state_view v;
    char why[256];

    refused(img, -EINVAL, "guest 'g2'");
    /* A device model with one more device: its state is missing. */
    g_autoptr(GByteArray) img1 = saved("g1");
    machine(&t);
    tb_add(&t, "uart", "com2", "out=null,port=0x2f8,irq=3");
    ck_assert_int_eq(dm_state_load(t.dm, "g1", img1->data, img1->len, &v, why, sizeof(why)),
                     -ESRCH);
    ck_assert_ptr_nonnull(strstr(why, "com2"));
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0);
    tb_fini(&t);
    /* One device fewer: the state has one it cannot place. */
    tb_init(&t, false);
    tb_add(&t, "uart", "com1", "out=null");
    ck_assert_int_eq(dm_state_load(t.dm, "g1", img1->data, img1->len, &v, why, sizeof(why)),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "'rtc'"));
    ck_assert_uint_eq(tb_in(&t, COM1 + SCR, 1), 0);
    tb_fini(&t);
}
END_TEST

TCase *dm_state_tcase(void)
{
    TCase *tc = tcase_create("state");

    tcase_add_test(tc, test_state_round_trip);
    tcase_add_test(tc, test_state_refusals);
    tcase_add_test(tc, test_state_other_guest_or_config);
    return tc;
}
