// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of libferry-pcihost: libpci's dump method over `lspci -xxxx`
 * dumps recorded in a q35 + intel-iommu QEMU guest (data/), plus small fake
 * sysfs/proc trees for the facts only the kernel knows.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pci/host/pcihost.h"
#include "tests/check-main.h"

#define DUMP_Q35 PCIHOST_DATA "/q35-iommu.lspci"

static char tmpdir[256];

static FERRY_PRINTF(1, 2) void mkdirs(const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

static FERRY_PRINTF(2, 3) void put(const char *content, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    fputs(content, f);
    fclose(f);
}

static FERRY_PRINTF(2, 3) void link_to(const char *target, const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    ck_assert_int_eq(symlink(target, path), 0);
}

/* A device in the fake sysfs: group (-1 none), driver ("" none). */
static void fake_dev(const char *name, int group, const char *driver)
{
    mkdirs("%s/sys/bus/pci/devices/%s", tmpdir, name);
    put("-1\n", "%s/sys/bus/pci/devices/%s/numa_node", tmpdir, name);
    put("(null)\n", "%s/sys/bus/pci/devices/%s/driver_override", tmpdir, name);
    if (group >= 0) {
        char t[128];
        mkdirs("%s/sys/kernel/iommu_groups/%d/devices", tmpdir, group);
        snprintf(t, sizeof(t), "../../../kernel/iommu_groups/%d", group);
        link_to(t, "%s/sys/bus/pci/devices/%s/iommu_group", tmpdir, name);
        snprintf(t, sizeof(t), "../../../../bus/pci/devices/%s", name);
        link_to(t, "%s/sys/kernel/iommu_groups/%d/devices/%s", tmpdir, group, name);
    }
    if (driver[0]) {
        char t[128];
        mkdirs("%s/sys/bus/pci/drivers/%s", tmpdir, driver);
        snprintf(t, sizeof(t), "../../../bus/pci/drivers/%s", driver);
        link_to(t, "%s/sys/bus/pci/devices/%s/driver", tmpdir, name);
    }
}

/* The q35 guest as the kernel showed it with intel_iommu=on (groups as
 * recorded), except that 00:04.1 is bound to a host driver here. */
static void fake_q35(bool iommu)
{
    static const struct { const char *name; int group; const char *drv; } devs[] = {
        { "0000:00:00.0", 0, "" }, { "0000:00:01.0", 1, "" },
        { "0000:00:02.0", 2, "e1000e" }, { "0000:00:03.0", 3, "pcieport" },
        { "0000:00:04.0", 4, "" }, { "0000:00:04.1", 4, "hostdrv" },
        { "0000:00:1f.0", 5, "" }, { "0000:00:1f.2", 5, "ahci" },
        { "0000:00:1f.3", 5, "" }, { "0000:01:00.0", 6, "" },
    };

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-pcihost.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
        fake_dev(devs[i].name, iommu ? devs[i].group : -1, devs[i].drv);
    put("1\n", "%s/sys/bus/pci/devices/0000:00:01.0/boot_vga", tmpdir);
    put("pm\n", "%s/sys/bus/pci/devices/0000:00:02.0/reset_method", tmpdir);
    put("flr pm bus\n", "%s/sys/bus/pci/devices/0000:01:00.0/reset_method", tmpdir);
    mkdirs("%s/sys/firmware/acpi/tables", tmpdir);
    put("", "%s/sys/firmware/acpi/tables/DMAR", tmpdir);
    mkdirs("%s/sys/bus/pci/slots/0", tmpdir);
    put("0000:01:00\n", "%s/sys/bus/pci/slots/0/address", tmpdir);
    if (iommu) {
        mkdirs("%s/sys/class/iommu/dmar0/intel-iommu", tmpdir);
        put("f00f4a\n", "%s/sys/class/iommu/dmar0/intel-iommu/ecap", tmpdir);
    }
    /* The SATA disk behind 00:1f.2 holds the root filesystem. */
    mkdirs("%s/sys/devices/pci0000:00/0000:00:1f.2/ata1/block/sda", tmpdir);
    put("8:0\n", "%s/sys/devices/pci0000:00/0000:00:1f.2/ata1/block/sda/dev", tmpdir);
    mkdirs("%s/sys/class/block", tmpdir);
    link_to("../../devices/pci0000:00/0000:00:1f.2/ata1/block/sda",
            "%s/sys/class/block/sda", tmpdir);
    mkdirs("%s/sys/devices/pci0000:00/0000:00:02.0/net/eth0", tmpdir);
    mkdirs("%s/sys/class/net", tmpdir);
    link_to("../../devices/pci0000:00/0000:00:02.0/net/eth0", "%s/sys/class/net/eth0", tmpdir);
    mkdirs("%s/proc/self", tmpdir);
    put("  0:  92  IR-IO-APIC   2-edge      timer\n", "%s/proc/interrupts", tmpdir);
    put("1 1 8:0 / / rw - ext4 /dev/sda rw\n21 1 0:19 / /proc rw - proc proc rw\n",
        "%s/proc/self/mountinfo", tmpdir);
    put("", "%s/sys/bus/pci/drivers_probe", tmpdir);
}

static void rm_tree(void)
{
    char cmd[300];

    if (!tmpdir[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    tmpdir[0] = '\0';
}

static struct ferry_pcihost *open_dump_ops(const char *dump, const struct ferry_pcihost_ops *ops)
{
    char sys[300], proc[300], state[300];
    struct ferry_pcihost_config cfg = { .dump_file = dump };
    struct ferry_pcihost *h;

    if (tmpdir[0]) {
        snprintf(sys, sizeof(sys), "%s/sys", tmpdir);
        snprintf(proc, sizeof(proc), "%s/proc", tmpdir);
        snprintf(state, sizeof(state), "%s/state", tmpdir);
        cfg.sysfs_root = sys;
        cfg.proc_root = proc;
        cfg.state_dir = state;
    } else {
        cfg.sysfs_root = "/nonexistent";
    }
    h = pcihost_open(ops, &cfg);
    ck_assert_ptr_nonnull(h);
    return h;
}

static struct ferry_pcihost *open_dump(const char *dump)
{
    return open_dump_ops(dump, NULL);
}

/* Plays the kernel's part of an unbind, which the fake tree cannot: as
 * prepare unbinds the device from its driver, the driver link goes. */
static void unbound_at_unbind(void *opaque, const char *dev, const char *what)
{
    char path[400];

    (void)opaque;
    if (strcmp(what, "unbind"))
        return;
    snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/%s/driver", tmpdir, dev);
    ck_assert_int_eq(unlink(path), 0);
}

static const struct ferry_pcihost_dev *dev(struct ferry_pcihost *h, const char *bdf)
{
    struct ferry_pci_addr a;

    ck_assert_int_eq(pcihost_addr_parse(bdf, &a), 0);
    return pcihost_dev_find(h, &a);
}

START_TEST(test_addr_parse)
{
    static const char *const bad[] = {
        "", "0:0.0", "00:2.0", "00:02.8", "00:20.0", "000:00:02.0", "0000:00:02.0x",
        "0000-00:02.0", "00:02:0", "gg:00.0", "0000:00:02.0 ", "-1:00.0", "00:02.",
    };
    struct ferry_pci_addr a;
    char buf[FERRY_PCI_ADDR_STRLEN];

    ck_assert_int_eq(pcihost_addr_parse("0000:00:02.0", &a), 0);
    ck_assert_int_eq(a.bus, 0);
    ck_assert_int_eq(a.dev, 2);
    ck_assert_int_eq(pcihost_addr_parse("abcd:ff:1f.7", &a), 0);
    ck_assert_int_eq(a.domain, 0xabcd);
    ck_assert_int_eq(a.fn, 7);
    pcihost_addr_format(&a, buf);
    ck_assert_str_eq(buf, "abcd:ff:1f.7");
    ck_assert_int_eq(pcihost_addr_parse("01:00.0", &a), 0);
    pcihost_addr_format(&a, buf);
    ck_assert_str_eq(buf, "0000:01:00.0");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(pcihost_addr_parse(bad[i], &a) == -EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(pcihost_addr_parse(NULL, &a), -EINVAL);
}
END_TEST

START_TEST(test_dump_inventory)
{
    struct ferry_pcihost *h = open_dump(DUMP_Q35);
    const struct ferry_pcihost_dev *e, *rp, *vn, *vga, *sata;
    const struct ferry_pcihost_cap *c;

    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_uint_eq(pcihost_dev_count(h), 10);
    /* sorted by address */
    ck_assert_str_eq(pcihost_dev_get(h, 0)->name, "0000:00:00.0");
    ck_assert_str_eq(pcihost_dev_get(h, 9)->name, "0000:01:00.0");
    ck_assert(pcihost_hidden(h) & FERRY_PCIHOST_HIDDEN_SIZES);
    ck_assert(pcihost_hidden(h) & FERRY_PCIHOST_HIDDEN_SYSFS);

    e = dev(h, "00:02.0");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->vendor_id, 0x8086);
    ck_assert_uint_eq(e->device_id, 0x10d3);
    ck_assert_uint_eq(e->class_id, 0x0200);
    ck_assert_uint_eq(e->irq_pin, 1);
    ck_assert_int_eq(e->iommu_group, -1);
    ck_assert(e->bars[0].present && !e->bars[0].io && e->bars[0].addr == 0xfea40000);
    ck_assert(e->bars[2].present && e->bars[2].io && e->bars[2].addr == 0xc240);
    ck_assert(e->bars[3].present && e->bars[3].addr == 0xfea90000);
    ck_assert(!e->bars[4].present && !e->bars[5].present);
    ck_assert(e->rom.present && e->rom.addr == 0xfea00000);
    /* standard: pm@c8 msi@d0 exp@e0 msix@a0; extended: aer v2 @100, dsn @140 */
    c = pcihost_cap_find(e, 0x01, false);
    ck_assert(c && c->offset == 0xc8);
    ck_assert_str_eq(pcihost_cap_name(c), "pm");
    c = pcihost_cap_find(e, 0x10, false);
    ck_assert(c && c->offset == 0xe0);
    c = pcihost_cap_find(e, 0x01, true);
    ck_assert(c && c->offset == 0x100 && c->version == 2);
    ck_assert_str_eq(pcihost_cap_name(c), "aer");
    c = pcihost_cap_find(e, 0x03, true);
    ck_assert(c && c->offset == 0x140);
    ck_assert_str_eq(pcihost_cap_name(c), "dsn");
    ck_assert_str_eq(e->vendor_name, "Intel Corporation");

    rp = dev(h, "00:03.0");
    ck_assert_uint_eq(rp->header_type, 1);
    ck_assert_uint_eq(rp->secondary_bus, 1);
    ck_assert_uint_eq(rp->subordinate_bus, 1);
    ck_assert_ptr_nonnull(pcihost_cap_find(rp, 0x0d, true));     /* ACS */
    ck_assert(rp->bars[0].present && !rp->bars[1].present);

    vn = dev(h, "01:00.0");
    ck_assert_int_eq(vn->parent, pcihost_dev_find(h, &rp->addr) - pcihost_dev_get(h, 0));
    ck_assert(vn->bars[4].present && vn->bars[4].mem64 && vn->bars[4].prefetch);
    ck_assert_uint_eq(vn->bars[4].addr, 0xfe000000);
    ck_assert(!vn->bars[5].present);     /* upper half of the 64-bit BAR */
    ck_assert_int_eq(dev(h, "00:02.0")->parent, -1);

    vga = dev(h, "00:01.0");
    ck_assert_uint_eq(vga->class_id, 0x0300);
    ck_assert(vga->bars[0].prefetch && !vga->bars[0].mem64);
    ck_assert(dev(h, "00:04.0")->multifunction);
    sata = dev(h, "00:1f.2");
    ck_assert_uint_eq(sata->prog_if, 1);
    ck_assert_uint_eq(sata->revision, 2);
    pcihost_close(h);
}
END_TEST

START_TEST(test_dump_errors)
{
    struct ferry_pcihost *h;
    char path[300];

    h = open_dump("/nonexistent/dump.lspci");
    ck_assert_int_eq(pcihost_scan(h), -ENOENT);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "/nonexistent/dump.lspci"));
    pcihost_close(h);

    /* A malformed dump: libpci's error callback must not end the process. */
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-pcihost.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/bad.lspci", tmpdir);
    put("00:02.0 Ethernet\n00: 86 80 zz\nthis is not a dump\n", "%s", path);
    h = open_dump(path);
    ck_assert_int_eq(pcihost_scan(h), -EIO);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "libpci"));
    ck_assert_uint_eq(pcihost_dev_count(h), 0);
    /* and the context is still usable afterwards */
    pcihost_close(h);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);
    pcihost_close(h);

    /* An empty dump is no devices, not an error. */
    put("", "%s", path);
    h = open_dump(path);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_uint_eq(pcihost_dev_count(h), 0);
    pcihost_close(h);
    rm_tree();
}
END_TEST

/* Found by fuzz-pcihost (corpus/pcihost/regress-bridge-loop): bridges whose
 * secondary bus numbers make a loop (a bridge claiming its own bus; two
 * claiming each other's) made the walk to the root never end. */
START_TEST(test_bridge_loop)
{
    static const char dump[] =
        /* a type-1 header: secondary bus 0 = its own bus */
        "00:03.0 PCI bridge\n"
        "00: 36 1b 0c 00 07 01 10 00 00 00 04 06 00 00 01 00\n"
        "10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
        /* two bridges, each the other's parent */
        "01:00.0 PCI bridge\n"
        "00: 36 1b 0c 00 07 01 10 00 00 00 04 06 00 00 01 00\n"
        "10: 00 00 00 00 00 00 00 00 02 02 02 00 00 00 00 00\n"
        "02:00.0 PCI bridge\n"
        "00: 36 1b 0c 00 07 01 10 00 00 00 04 06 00 00 01 00\n"
        "10: 00 00 00 00 00 00 00 00 01 01 01 00 00 00 00 00\n"
        "01:00.1 Ethernet\n"
        "00: 86 80 d3 10 07 01 10 00 00 00 00 02 00 00 00 00\n";
    struct ferry_pcihost_report *r = calloc(1, sizeof(*r));
    struct ferry_pcihost *h;
    char path[300];
    int loops = 0;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-pcihost.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/loop.lspci", tmpdir);
    put(dump, "%s", path);
    h = open_dump(path);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_uint_eq(pcihost_dev_count(h), 4);
    for (size_t i = 0; i < pcihost_dev_count(h); i++) {
        const struct ferry_pcihost_dev *d = pcihost_dev_get(h, i);
        int p = d->parent;
        unsigned steps = 0;
        while (p >= 0 && steps++ < 300)
            p = pcihost_dev_get(h, (size_t)p)->parent;
        loops += p >= 0;
        ck_assert_int_eq(pcihost_check(h, &d->addr, r), 0);
    }
    ck_assert_int_eq(loops, 0);
    pcihost_close(h);
    rm_tree();
    free(r);
}
END_TEST

static enum ferry_pcihost_verdict verdict(const struct ferry_pcihost_report *r, const char *check)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->f[i].check, check))
            return r->f[i].verdict;
    ck_abort_msg("no %s finding", check);
    return FERRY_PCIHOST_FAIL;
}

static const char *reason(const struct ferry_pcihost_report *r, const char *check)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->f[i].check, check))
            return r->f[i].reason;
    return "";
}

static void check_dev(struct ferry_pcihost *h, const char *bdf, struct ferry_pcihost_report *r)
{
    struct ferry_pci_addr a;

    ck_assert_int_eq(pcihost_addr_parse(bdf, &a), 0);
    ck_assert_int_eq(pcihost_check(h, &a, r), 0);
}

START_TEST(test_check_verdicts)
{
    struct ferry_pcihost_report *r = calloc(1, sizeof(*r));
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;

    fake_q35(true);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_int_eq(dev(h, "00:02.0")->iommu_group, 2);
    ck_assert_str_eq(dev(h, "00:02.0")->driver, "e1000e");
    ck_assert_str_eq(dev(h, "01:00.0")->phys_slot, "0");

    /* e1000e: group of one, no FLR (PM reset only), on the root bus. */
    check_dev(h, "00:02.0", r);
    ck_assert(r->ready);
    ck_assert_int_eq(verdict(r, "device"), FERRY_PCIHOST_PASS);
    ck_assert_int_eq(verdict(r, "iommu"), FERRY_PCIHOST_PASS);
    ck_assert_int_eq(verdict(r, "group"), FERRY_PCIHOST_PASS);
    ck_assert_int_eq(verdict(r, "interrupt-remapping"), FERRY_PCIHOST_PASS);
    ck_assert_int_eq(verdict(r, "reset"), FERRY_PCIHOST_WARN);
    ck_assert_uint_eq(r->resets, FERRY_PCIHOST_RESET_PM);
    ck_assert_str_eq(r->kernel_reset_method, "pm");
    ck_assert_int_eq(verdict(r, "acs"), FERRY_PCIHOST_INFO);
    ck_assert_int_eq(verdict(r, "vga"), FERRY_PCIHOST_PASS);
    ck_assert_int_eq(verdict(r, "driver"), FERRY_PCIHOST_INFO);
    ck_assert_ptr_nonnull(strstr(reason(r, "driver"), "eth0"));
    ck_assert_uint_eq(r->nmembers, 1);

    /* virtio-net behind the root port: FLR, PM, bus reset; ACS on the port. */
    check_dev(h, "01:00.0", r);
    ck_assert_int_eq(verdict(r, "reset"), FERRY_PCIHOST_PASS);
    ck_assert_uint_eq(r->resets, FERRY_PCIHOST_RESET_FLR | FERRY_PCIHOST_RESET_PM |
                                     FERRY_PCIHOST_RESET_BUS);
    ck_assert_int_eq(verdict(r, "acs"), FERRY_PCIHOST_PASS);
    ck_assert_ptr_nonnull(strstr(reason(r, "acs"), "0000:00:03.0"));

    /* pci-testdev: a group of two, the other function on a host driver. */
    check_dev(h, "00:04.0", r);
    ck_assert_int_eq(verdict(r, "group"), FERRY_PCIHOST_WARN);
    ck_assert_uint_eq(r->nmembers, 2);
    ck_assert_str_eq(r->members[1].name, "0000:00:04.1");
    ck_assert_str_eq(r->members[1].driver, "hostdrv");
    ck_assert_int_eq(verdict(r, "reset"), FERRY_PCIHOST_FAIL);

    check_dev(h, "00:01.0", r);
    ck_assert_int_eq(verdict(r, "vga"), FERRY_PCIHOST_FAIL);
    check_dev(h, "00:03.0", r);
    ck_assert_int_eq(verdict(r, "device"), FERRY_PCIHOST_FAIL);
    ck_assert(!r->ready);

    /* The SATA controller holds the root filesystem. */
    check_dev(h, "00:1f.2", r);
    ck_assert_int_eq(verdict(r, "driver"), FERRY_PCIHOST_FAIL);
    ck_assert_ptr_nonnull(strstr(reason(r, "driver"), "root filesystem"));
    ck_assert_ptr_nonnull(strstr(reason(r, "driver"), "/dev/sda on /"));

    ck_assert_int_eq(pcihost_addr_parse("00:1e.0", &a), 0);
    ck_assert_int_eq(pcihost_check(h, &a, r), -ENODEV);
    pcihost_close(h);
    rm_tree();
    free(r);
}
END_TEST

START_TEST(test_check_iommu_off)
{
    struct ferry_pcihost_report *r = calloc(1, sizeof(*r));
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;

    fake_q35(false);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);
    check_dev(h, "00:02.0", r);
    ck_assert(!r->ready);
    ck_assert_int_eq(verdict(r, "iommu"), FERRY_PCIHOST_FAIL);
    ck_assert_ptr_nonnull(strstr(reason(r, "iommu"), "intel_iommu=on"));
    ck_assert_int_eq(verdict(r, "group"), FERRY_PCIHOST_FAIL);
    ck_assert_int_eq(pcihost_addr_parse("00:02.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EPERM);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "refusing"));
    pcihost_close(h);
    rm_tree();
    free(r);
}
END_TEST

START_TEST(test_prepare_refusals)
{
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;
    char path[400];

    fake_q35(true);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);

    /* group not viable: 00:04.1 sits on a host driver */
    ck_assert_int_eq(pcihost_addr_parse("00:04.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EBUSY);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "not viable"));
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "0000:00:04.1"));
    /* a bridge */
    ck_assert_int_eq(pcihost_addr_parse("00:03.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EPERM);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "bridge"));
    /* the root disk's controller; --force does not override that */
    ck_assert_int_eq(pcihost_addr_parse("00:1f.2", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EBUSY);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "root filesystem"));
    ck_assert_int_eq(pcihost_prepare(h, &a, FERRY_PCIHOST_PREPARE_FORCE), -EBUSY);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "root filesystem"));
    ck_assert_int_eq(pcihost_prepare(h, &a, FERRY_PCIHOST_PREPARE_GROUP), -EBUSY);
    /* the boot VGA */
    ck_assert_int_eq(pcihost_addr_parse("00:01.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EPERM);
    /* nothing was recorded or written for any of them */
    snprintf(path, sizeof(path), "%s/state", tmpdir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:00:04.0/driver_override", tmpdir);
    {
        char buf[32] = "";
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
        fclose(f);
        ck_assert_str_eq(buf, "(null)\n");
    }
    /* release of a device that was never prepared: nothing to do */
    ck_assert_int_eq(pcihost_addr_parse("00:02.0", &a), 0);
    ck_assert_int_eq(pcihost_release(h, &a, 0), 0);
    /* a device that vanished from sysfs */
    snprintf(path, sizeof(path), "rm -rf '%s/sys/bus/pci/devices/0000:00:02.0'", tmpdir);
    ck_assert_int_eq(system(path), 0);
    ck_assert_int_eq(pcihost_release(h, &a, 0), -ENODEV);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "no such device"));
    pcihost_close(h);
    rm_tree();
}
END_TEST

START_TEST(test_prepare_fake_kernel_refuses)
{
    /* The fake tree has no kernel behind it: drivers_probe binds nothing, so
     * vfio-pci "does not take" the device, and the rebind to e1000e binds
     * nothing either.  prepare must say so, clear driver_override, and keep
     * the record of e1000e so that a release can finish the repair. */
    const struct ferry_pcihost_ops ops = { .step = unbound_at_unbind };
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;
    char path[400], buf[64] = "";
    FILE *f;

    fake_q35(true);
    mkdirs("%s/sys/bus/pci/drivers/vfio-pci", tmpdir);
    put("", "%s/sys/bus/pci/drivers/vfio-pci/bind", tmpdir);
    put("", "%s/sys/bus/pci/drivers/e1000e/unbind", tmpdir);
    put("", "%s/sys/bus/pci/drivers/e1000e/bind", tmpdir);
    h = open_dump_ops(DUMP_Q35, &ops);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_int_eq(pcihost_addr_parse("00:02.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -EIO);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "vfio-pci did not take"));
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "the rebind to e1000e failed too"));
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "ferry pci release 0000:00:02.0"));
    snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:00:02.0/driver_override", tmpdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "\n");
    snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/e1000e/unbind", tmpdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "0000:00:02.0");
    snprintf(path, sizeof(path), "%s/state/0000:00:02.0", tmpdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "driver=e1000e\n");
    /* Once e1000e has it again, a release finds the record and drops it. */
    link_to("../../../bus/pci/drivers/e1000e", "%s/sys/bus/pci/devices/0000:00:02.0/driver",
            tmpdir);
    ck_assert_int_eq(pcihost_release(h, &a, 0), 0);
    snprintf(path, sizeof(path), "%s/state/0000:00:02.0", tmpdir);
    ck_assert_int_ne(access(path, F_OK), 0);
    pcihost_close(h);
    rm_tree();
}
END_TEST

/* driver_override refused: with no earlier record nothing is left behind;
 * with a record of an interrupted earlier run, that record stays. */
START_TEST(test_prepare_override_refused)
{
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;
    char path[400];

    fake_q35(true);
    /* /dev/full: reads give zeros (an empty override), writes ENOSPC */
    snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:00:02.0/driver_override", tmpdir);
    ck_assert_int_eq(unlink(path), 0);
    link_to("/dev/full", "%s/sys/bus/pci/devices/0000:00:02.0/driver_override", tmpdir);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_int_eq(pcihost_addr_parse("00:02.0", &a), 0);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "refused driver_override"));
    snprintf(path, sizeof(path), "%s/state/0000:00:02.0", tmpdir);
    ck_assert_int_ne(access(path, F_OK), 0);

    put("driver=e1000e\n", "%s/state/0000:00:02.0", tmpdir);
    ck_assert_int_eq(pcihost_prepare(h, &a, 0), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "from an earlier run stays"));
    ck_assert_int_eq(access(path, F_OK), 0);
    pcihost_close(h);
    rm_tree();
}
END_TEST

/* A release whose original driver does not take the device back keeps the
 * record of that driver, so that a second release retries the rebind. */
START_TEST(test_release_keeps_record)
{
    struct ferry_pcihost *h;
    struct ferry_pci_addr a;
    char path[400];

    fake_q35(true);
    /* 00:04.0 was prepared from e1000e and vfio-pci has let go of it. */
    mkdirs("%s/state", tmpdir);
    put("driver=e1000e\n", "%s/state/0000:00:04.0", tmpdir);
    put("", "%s/sys/bus/pci/drivers/e1000e/bind", tmpdir);
    h = open_dump(DUMP_Q35);
    ck_assert_int_eq(pcihost_scan(h), 0);
    ck_assert_int_eq(pcihost_addr_parse("00:04.0", &a), 0);
    ck_assert_int_eq(pcihost_release(h, &a, 0), -EIO);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "e1000e did not take it back"));
    snprintf(path, sizeof(path), "%s/state/0000:00:04.0", tmpdir);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(pcihost_release(h, &a, 0), -EIO);
    ck_assert_ptr_nonnull(strstr(pcihost_last_error(h), "e1000e did not take it back"));
    pcihost_close(h);
    rm_tree();
}
END_TEST

static Suite *pcihost_suite(void)
{
    Suite *s = suite_create("pcihost");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_addr_parse);
    tcase_add_test(tc, test_dump_inventory);
    tcase_add_test(tc, test_dump_errors);
    tcase_add_test(tc, test_bridge_loop);
    tcase_add_test(tc, test_check_verdicts);
    tcase_add_test(tc, test_check_iommu_off);
    tcase_add_test(tc, test_prepare_refusals);
    tcase_add_test(tc, test_prepare_fake_kernel_refuses);
    tcase_add_test(tc, test_prepare_override_refused);
    tcase_add_test(tc, test_release_keeps_record);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ferry_check_run(pcihost_suite(), CK_FORK_GETENV);
}
