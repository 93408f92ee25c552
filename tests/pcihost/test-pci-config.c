// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the [pci] group of a ferry-dm config (pci/host/pci-config.c):
 * what it accepts, and that each mistake is named with file, key and value.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "pci/host/pci-config.h"
#include "tests/check-main.h"

static char file[64];

static int load(const char *text, struct ferry_pci_config *c, char *err, size_t len)
{
    FILE *f;

    snprintf(file, sizeof(file), "/tmp/test-pci-config.XXXXXX");
    {
        int fd = mkstemp(file);
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
    }
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    int r = pcihost_config_load(file, c, err, len);
    unlink(file);
    return r;
}

/* load must fail with -EINVAL and a message holding the file and each needle */
static void refused(const char *text, const char *n1, const char *n2)
{
    struct ferry_pci_config *c = g_new0(struct ferry_pci_config, 1);
    char err[FERRY_PCI_CONFIG_ERR_MAX];
    int r = load(text, c, err, sizeof(err));

    ck_assert_msg(r < 0, "accepted: %s", text);
    ck_assert_msg(strstr(err, file) != NULL, "no file name in: %s", err);
    ck_assert_msg(strstr(err, n1) != NULL, "no '%s' in: %s", n1, err);
    ck_assert_msg(!n2 || strstr(err, n2) != NULL, "no '%s' in: %s", n2, err);
    g_free(c);
}

START_TEST(test_accepts)
{
    struct ferry_pci_config *c = g_new0(struct ferry_pci_config, 1);
    char err[FERRY_PCI_CONFIG_ERR_MAX];

    ck_assert_int_eq(load("[dm]\nname=g\n[pci]\n# a comment\n"
                          "devices=00:02.0;0001:03:00.1,bus=rp1,addr=0,id=nic0; 00:1f.3 ,addr=1f.7\n"
                          "group=true\nqmp=/run/q.sock\n", c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c->n, 3);
    ck_assert(c->group);
    ck_assert(!c->force);
    ck_assert_str_eq(c->qmp, "/run/q.sock");
    ck_assert_str_eq(c->dev[0].name, "0000:00:02.0");
    ck_assert_str_eq(c->dev[0].id, "ferry-pci-00-02-0");
    ck_assert_str_eq(c->dev[0].bus, "");
    ck_assert_str_eq(c->dev[1].name, "0001:03:00.1");
    ck_assert_str_eq(c->dev[1].id, "nic0");
    ck_assert_str_eq(c->dev[1].bus, "rp1");
    ck_assert_str_eq(c->dev[1].addr, "0");
    ck_assert_str_eq(c->dev[2].name, "0000:00:1f.3");
    ck_assert_str_eq(c->dev[2].addr, "1f.7");
    /* no [pci] group: nothing, and no error */
    ck_assert_int_eq(load("[usb]\nqmp=/x\n", c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c->n, 0);
    /* an empty list */
    ck_assert_int_eq(load("[pci]\ndevices=\n", c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c->n, 0);
    g_free(c);
}
END_TEST

START_TEST(test_refuses)
{
    refused("[pci]\ndevices=00:02\n", "[pci] devices", "'00:02'");
    refused("[pci]\ndevices=00:20.0\n", "'00:20.0'", "not a PCI address");
    refused("[pci]\ndevices=zz:02.0\n", "'zz:02.0'", NULL);
    refused("[pci]\ndevices=0000:00:02.0.1\n", "'0000:00:02.0.1'", NULL);
    refused("[pci]\ndevices=,bus=rp1\n", "not a PCI address", NULL);
    refused("[pci]\ndevice=00:02.0\n", "[pci] has no key 'device'", NULL);
    refused("[pci]\ndevices=00:02.0,rombar=0\n", "unknown option 'rombar'", "0000:00:02.0");
    refused("[pci]\ndevices=00:02.0,bus=\n", "bus=''", NULL);
    refused("[pci]\ndevices=00:02.0,bus=1rp\n", "bus='1rp'", NULL);
    refused("[pci]\ndevices=00:02.0,addr=20\n", "addr='20'", NULL);
    refused("[pci]\ndevices=00:02.0,addr=1.8\n", "addr='1.8'", NULL);
    refused("[pci]\ndevices=00:02.0,addr=0x\n", "addr='0x'", NULL);
    refused("[pci]\ndevices=00:02.0,id=a\"b\n", "id='a\"b'", NULL);
    refused("[pci]\ndevices=00:02.0;0000:00:02.0\n", "0000:00:02.0 is listed twice", NULL);
    refused("[pci]\ndevices=00:02.0,id=x;00:03.0,id=x\n", "id 'x'", "0000:00:03.0");
    refused("[pci]\ndevices=00:02.0\ndevices=00:03.0\n", "[pci] devices: given twice", "line 3");
    refused("[pci]\ngroup=perhaps\n", "group='perhaps'", "not a boolean");
    refused("[pci]\nforce=1x\n", "force='1x'", NULL);
    refused("[pci\ndevices=00:02.0\n", "", NULL);
}
END_TEST

START_TEST(test_limits)
{
    GString *s = g_string_new("[pci]\ndevices=");
    char id[80];

    for (int i = 0; i <= FERRY_PCI_CONFIG_DEVICES_MAX; i++)
        g_string_append_printf(s, "00:%02x.%x;", i / 8, i % 8);
    refused(s->str, "more than", NULL);
    g_string_free(s, TRUE);
    memset(id, 'a', sizeof(id) - 1);
    id[FERRY_PCI_CONFIG_ID_MAX] = '\0';         /* one too long */
    ck_assert(!pcihost_config_id_valid(id));
    id[FERRY_PCI_CONFIG_ID_MAX - 1] = '\0';
    ck_assert(pcihost_config_id_valid(id));
    ck_assert(pcihost_config_addr_valid("1f"));
    ck_assert(pcihost_config_addr_valid("0x1f.7"));
    ck_assert(!pcihost_config_addr_valid(""));
    ck_assert(!pcihost_config_addr_valid("-1"));
    ck_assert(!pcihost_config_addr_valid("1.07"));
}
END_TEST

static TCase *core_tcase(void)
{
    return FERRY_CHECK_TCASE("core", 0, test_accepts, test_refuses, test_limits);
}

FERRY_CHECK_MAIN("pci-config", core_tcase);
