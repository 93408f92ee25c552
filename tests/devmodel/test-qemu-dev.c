// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qemu device: a real stock QEMU (-machine x-remote) hosting an
 * RTL8139 behind ferry-dm's framework.  Config ioreqs reach QEMU's config
 * space, the BAR the guest programs becomes a claimed region whose
 * accesses reach the NIC (its MAC), and query-devices shows QEMU's pid.
 * SKIP without qemu-system-x86_64.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/check-main.h"
#include "tests/devmodel/test-devmodel.h"

START_TEST(test_qemu_rtl8139)
{
    struct tb t;

    tb_init(&t, true);
    tb_add(&t, "pci-host", "pci", NULL);
    tb_add(&t, "qemu", "nic0", "device=rtl8139,addr=4,sandbox=off");
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_uint_eq(tb_cfg_read(&t, 4, 0, 0, 4), 0x813910ec);
    ck_assert_uint_eq(tb_cfg_read(&t, 4, 0, 0, 2), 0x10ec);
    ck_assert_uint_eq(tb_cfg_read(&t, 4, 0, 1, 2), 0x3910);      /* unaligned: split */
    /* INTA of device 4 -> GSI 16 + (4 + 0) % 4, wired to QEMU's own eventfd. */
    ck_assert_int_ge(t.irqfd_fd[16], 0);
    ck_assert_int_ge(t.resample_fd[16], 0);
    /* I/O BAR 0: 256 ports. */
    tb_cfg_write(&t, 4, 0, 0x10, 4, 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 4, 0, 0x10, 4) & 0xffff, 0xff01);    /* 16-bit I/O decode */
    tb_cfg_write(&t, 4, 0, 0x10, 4, 0xc400);
    tb_cfg_write(&t, 4, 0, 0x04, 2, 0x0001);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xc400, 0xc4ff));
    uint64_t mac = 0;
    for (unsigned i = 0; i < 6; i++)
        mac |= tb_in(&t, 0xc400 + i, 1) << (8 * i);
    ck_assert_uint_eq(mac, 0x563412005452ull);                     /* 52:54:00:12:34:56 */
    /* A slot taken by QEMU's function is not given to another device. */
    ck_assert_int_eq(tb_try_add(&t, "pci-test", "pt", "addr=4"), -EBUSY);
    tb_add(&t, "pci-test", "pt2", NULL);
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0, 4), 0xfe011234);
    /* query-devices names the QEMU process. */
    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 1);
    ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "running");
    ck_assert_int_gt(json_integer_value(json_object_get(o, "qemu-pid")), 0);
    json_decref(root);
    /* Unplug: QEMU goes, the claim and the irqfd go. */
    ck_assert_int_eq(dm_device_remove(t.dm, "nic0"), 0);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0xc400, 0xc4ff));
    ck_assert_int_eq(t.irqfd_fd[16], -1);
    ck_assert_uint_eq(tb_cfg_read(&t, 4, 0, 0, 4), 0xffffffff);
    tb_fini(&t);
}
END_TEST

START_TEST(test_qemu_bad_options)
{
    struct tb t;

    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "qemu", "q", "device=rtl8139"), -ENODEV);  /* no bus */
    tb_add(&t, "pci-host", "pci", NULL);
    ck_assert_int_eq(tb_try_add(&t, "qemu", "q", NULL), -EINVAL);               /* no device */
    ck_assert_int_eq(tb_try_add(&t, "qemu", "q", "device=rtl8139,addr=0"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "qemu", "q", "device=rtl8139,sandbox=maybe"), -EINVAL);
    ck_assert_int_lt(tb_try_add(&t, "qemu", "q", "device=no-such-device,sandbox=off"), 0);
    ck_assert_ptr_null(dm_device_find(t.dm, "q"));
    tb_fini(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("devmodel-qemu");
    char *qemu = g_find_program_in_path("qemu-system-x86_64");

    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    g_free(qemu);
    suite_add_tcase(s, FERRY_CHECK_TCASE("qemu", 120, test_qemu_rtl8139, test_qemu_bad_options));
    return ferry_check_run(s, CK_FORK_GETENV);
}
