// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libferry-policy over a recorded host: a sysfs and proc tree shaped as the
 * q35 + intel-iommu guest of tests/pcihost (root disk on the AHCI at 1f.2,
 * the default route on the NIC at 02.0, boot VGA 01.0, an e1000e at 01:00.0
 * behind the root port 1c.0, a USB disk on the xHCI at 1d.0 mounted on
 * /mnt/usb), built by the test as tests/pcihost/test-pcihost.c builds its
 * fake trees.  Rules per guest, first match wins, file:line in every
 * verdict, force, and every kind of bad file.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "policy/policy.h"
#include "tests/check-main.h"
#include "usb/ferry-usb.h"

static char tmpdir[256];
static char sysfs[300], proc[300];
static int decisions;
static struct ferry_policy_verdict last;

static FERRY_PRINTF(1, 2) void mkdirs(const char *fmt, ...)
{
    char path[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    ck_assert(g_mkdir_with_parents(path, 0755) == 0);
}

static FERRY_PRINTF(2, 3) void put(const char *content, const char *fmt, ...)
{
    char path[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    ck_assert_msg(g_file_set_contents(path, content, -1, NULL), "cannot write %s", path);
}

static FERRY_PRINTF(2, 3) void link_to(const char *target, const char *fmt, ...)
{
    char path[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    ck_assert_msg(symlink(target, path) == 0, "symlink %s", path);
}

/* A PCI function at devices/PATH (path from the root complex, "0000:00:1c.0/0000:01:00.0"). */
static void pci_dev(const char *path, const char *vendor, const char *device, const char *cls,
                    int group)
{
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char t[700];

    mkdirs("%s/devices/pci0000:00/%s", sysfs, path);
    put(vendor, "%s/devices/pci0000:00/%s/vendor", sysfs, path);
    put(device, "%s/devices/pci0000:00/%s/device", sysfs, path);
    put(cls, "%s/devices/pci0000:00/%s/class", sysfs, path);
    snprintf(t, sizeof(t), "../../../devices/pci0000:00/%s", path);
    link_to(t, "%s/bus/pci/devices/%s", sysfs, name);
    mkdirs("%s/kernel/iommu_groups/%d/devices", sysfs, group);
    snprintf(t, sizeof(t), "../../../../devices/pci0000:00/%s", path);
    link_to(t, "%s/kernel/iommu_groups/%d/devices/%s", sysfs, group, name);
    snprintf(t, sizeof(t), "%s/kernel/iommu_groups/%d", sysfs, group);
    link_to(t, "%s/devices/pci0000:00/%s/iommu_group", sysfs, path);
}

static void build_host(void)
{
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-policy-XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(sysfs, sizeof(sysfs), "%s/sys", tmpdir);
    snprintf(proc, sizeof(proc), "%s/proc", tmpdir);
    mkdirs("%s/bus/pci/devices", sysfs);
    mkdirs("%s/dev/block", sysfs);
    mkdirs("%s/class/net", sysfs);
    mkdirs("%s/class/block", sysfs);
    pci_dev("0000:00:00.0", "0x8086\n", "0x29c0\n", "0x060000\n", 0);
    pci_dev("0000:00:01.0", "0x1234\n", "0x1111\n", "0x030000\n", 1);
    put("1\n", "%s/devices/pci0000:00/0000:00:01.0/boot_vga", sysfs);
    pci_dev("0000:00:02.0", "0x8086\n", "0x100e\n", "0x020000\n", 2);
    pci_dev("0000:00:1c.0", "0x8086\n", "0x2918\n", "0x060400\n", 3);
    pci_dev("0000:00:1c.0/0000:01:00.0", "0x8086\n", "0x10d3\n", "0x020000\n", 4);
    pci_dev("0000:00:1d.0", "0x1b36\n", "0x000d\n", "0x0c0330\n", 5);
    pci_dev("0000:00:1f.2", "0x8086\n", "0x2922\n", "0x010601\n", 6);
    pci_dev("0000:00:1f.3", "0x8086\n", "0x2930\n", "0x0c0500\n", 6);
    /* the root disk: sda1 on the AHCI */
    mkdirs("%s/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1",
           sysfs);
    link_to("../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1",
            "%s/dev/block/8:1", sysfs);
    /* /mnt/usb: sdb1 on the USB disk at port 1-1 of the xHCI */
    mkdirs("%s/devices/pci0000:00/0000:00:1d.0/usb1/1-1/1-1:1.0/host2/target2:0:0/2:0:0:0/"
           "block/sdb/sdb1", sysfs);
    link_to("../../devices/pci0000:00/0000:00:1d.0/usb1/1-1/1-1:1.0/host2/target2:0:0/"
            "2:0:0:0/block/sdb/sdb1", "%s/dev/block/8:17", sysfs);
    /* the NIC with the default route, behind a bridge br0 */
    mkdirs("%s/devices/pci0000:00/0000:00:02.0/net/eth0", sysfs);
    link_to("../../devices/pci0000:00/0000:00:02.0/net/eth0", "%s/class/net/eth0", sysfs);
    mkdirs("%s/devices/virtual/net/br0", sysfs);
    link_to("../../devices/virtual/net/br0", "%s/class/net/br0", sysfs);
    link_to("../../../devices/pci0000:00/0000:00:02.0/net/eth0",
            "%s/devices/virtual/net/br0/lower_eth0", sysfs);
    /* the e1000e has an interface too, with no address and no route */
    mkdirs("%s/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/net/eth1", sysfs);
    link_to("../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0/net/eth1", "%s/class/net/eth1",
            sysfs);
    mkdirs("%s/self", proc);
    mkdirs("%s/net", proc);
    put("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
        "24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=10240k\n"
        "25 22 8:17 / /mnt/usb\\040disk rw,relatime shared:30 - vfat /dev/sdb1 rw\n"
        "26 22 0:33 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n", "%s/self/mountinfo", proc);
    put("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "br0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "br0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", "%s/net/route", proc);
    put("", "%s/net/ipv6_route", proc);
    put("fe800000000000000000000000000001 03 40 20 80     eth1\n", "%s/net/if_inet6", proc);
}

static void rm_host(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void on_decided(void *opaque, const struct ferry_policy_verdict *v)
{
    decisions++;
    last = *v;
}

static struct ferry_policy *load_text(const char *text, char *err, size_t errlen, int *rc)
{
    struct ferry_policy_config cfg = { .sysfs_root = sysfs, .proc_root = proc };
    struct ferry_policy_ops ops = { .decided = on_decided };
    struct ferry_policy *p = NULL;
    char file[400];

    snprintf(file, sizeof(file), "%s/policy.conf", tmpdir);
    if (text)
        put(text, "%s", file);
    else
        unlink(file);
    cfg.file = file;
    *rc = policy_load(&cfg, &ops, &p, err, errlen);
    return p;
}

static struct ferry_policy *load_ok(const char *text)
{
    char err[512] = "";
    int rc;
    struct ferry_policy *p = load_text(text, err, sizeof(err), &rc);

    ck_assert_msg(rc == 0 && p, "policy did not load: %s", err);
    return p;
}

static void pci_is(struct ferry_policy *p, const char *guest, const char *bdf, bool allowed,
                   const char *rule_part)
{
    struct ferry_policy_verdict v;
    int r = policy_check_pci(p, guest, bdf, &v);

    ck_assert_msg((r == 0) == allowed, "%s for %s: %s", bdf, guest, v.reason);
    ck_assert_msg(v.allowed == allowed, "%s", v.reason);
    ck_assert_msg(strstr(v.rule, rule_part), "%s for %s: rule '%s' lacks '%s'", bdf, guest,
                  v.rule, rule_part);
    ck_assert_str_eq(last.device, v.device);
}

START_TEST(test_discovery)
{
    struct ferry_policy *p;
    char *show;

    build_host();
    p = load_ok(NULL);
    ck_assert_ptr_null(policy_file(p));
    ck_assert(strstr(policy_protection(p, "pci", "0000:00:1f.2"), "mounted on / "));
    ck_assert(strstr(policy_protection(p, "pci", "0000:00:1f.3"), "shares IOMMU group 6"));
    ck_assert(strstr(policy_protection(p, "pci", "0000:00:02.0"), "default route"));
    ck_assert(strstr(policy_protection(p, "pci", "0000:00:01.0"), "boot VGA"));
    ck_assert(strstr(policy_protection(p, "pci", "0000:00:1d.0"), "/mnt/usb disk"));
    ck_assert(strstr(policy_protection(p, "usb", "1-1"), "/mnt/usb disk"));
    ck_assert_str_eq(policy_protection(p, "pci", "0000:01:00.0"), "");
    ck_assert_str_eq(policy_protection(p, "pci", "0000:00:1c.0"), "");
    show = policy_show(p, false);
    ck_assert_msg(strstr(show, "pci:0000:00:1f.2 backs the filesystem mounted on /"), "%s",
                  show);
    g_free(show);
    /* the built-in default: what the host does not need goes to anyone */
    pci_is(p, "a", "0000:01:00.0", true, "built-in default");
    pci_is(p, "a", "0000:00:1f.2", false, "host protection");
    pci_is(p, "a", "0000:00:02.0", false, "host protection");
    ck_assert_int_eq(policy_check_pci(p, "a", "0000:09:00.0", &last), -ENODEV);
    policy_free(p);
    rm_host();
}
END_TEST

static const char rules[] =
    "# test policy\n"
    "[policy]\n"
    "default = deny\n"
    "\n"
    "[groups]\n"
    "lab = b;lab-*\n"
    "\n"
    "[rule no-nic-for-lab]\n"
    "guests = @lab\n"
    "pci-class = 0x0200\n"
    "action = deny\n"
    "\n"
    "[rule e1000e]\n"
    "guests = a;lab-*\n"
    "pci-id = 8086:10d3\n"
    "action = allow\n"
    "\n"
    "[rule host-nic]\n"
    "guests = a\n"
    "pci = 00:02.0\n"
    "action = allow\n"
    "\n"
    "[rule sound-forced]\n"
    "guests = admin\n"
    "iommu-group = 6\n"
    "pci = 0000:00:1f.*\n"
    "action = allow\n"
    "force = true\n";

START_TEST(test_rules)
{
    struct ferry_policy *p;
    struct ferry_policy_verdict v;
    char want[300];

    build_host();
    p = load_ok(rules);
    snprintf(want, sizeof(want), "rule 'e1000e' (%s/policy.conf:13)", tmpdir);
    pci_is(p, "a", "0000:01:00.0", true, want);
    /* first match wins: the lab's deny comes before the allow */
    snprintf(want, sizeof(want), "rule 'no-nic-for-lab' (%s/policy.conf:8)", tmpdir);
    pci_is(p, "b", "0000:01:00.0", false, want);
    pci_is(p, "lab-3", "0000:01:00.0", false, want);
    snprintf(want, sizeof(want), "default deny (%s/policy.conf:3)", tmpdir);
    pci_is(p, "c", "0000:01:00.0", false, want);
    /* an allow rule without force does not give the host's NIC away */
    pci_is(p, "a", "0000:00:02.0", false, "host protection (rule 'host-nic'");
    ck_assert_int_eq(policy_check_pci(p, "a", "0000:00:02.0", &v), -EPERM);
    ck_assert_msg(strstr(v.reason, "default route") && strstr(v.reason, "no force=true"), "%s",
                  v.reason);
    /* force does, and says so */
    ck_assert_int_eq(policy_check_pci(p, "admin", "0000:00:1f.3", &v), 0);
    ck_assert(v.forced);
    ck_assert_msg(strstr(v.reason, "forced") && strstr(v.reason, "IOMMU group 6"), "%s",
                  v.reason);
    ck_assert(last.forced);
    policy_free(p);
    rm_host();
}
END_TEST

static void usb_dev(struct ferry_usb_devinfo *d, uint16_t vid, uint16_t pid, const char *port,
                    uint8_t cls, uint8_t sub, uint8_t proto)
{
    memset(d, 0, sizeof(*d));
    d->vid = vid;
    d->pid = pid;
    snprintf(d->port, sizeof(d->port), "%s", port);
    d->n_ifaces = 1;
    d->ifaces[0].cls = cls;
    d->ifaces[0].subcls = sub;
    d->ifaces[0].proto = proto;
}

START_TEST(test_usb)
{
    struct ferry_policy *p;
    struct ferry_usb_devinfo disk, kbd, rootdisk, combo;
    struct ferry_policy_verdict v;

    build_host();
    p = load_ok("[policy]\ndefault = deny\n"
                "[rule storage]\nguests = a\nusb = 0x08,-1,-1,-1,1\n"
                "[rule keyboard]\nguests = vdi-*\nusb = 0x03,0x046d,-1,-1,1\nforce = yes\n"
                "[rule no-storage]\nguests = *\nusb = 0x08,-1,-1,-1,0\n");
    usb_dev(&disk, 0x0781, 0x5567, "2-3", 0x08, 0x06, 0x50);
    usb_dev(&rootdisk, 0x0781, 0x5567, "1-1", 0x08, 0x06, 0x50);
    usb_dev(&kbd, 0x046d, 0xc31c, "2-4", 0x03, 0x01, 0x01);
    /* a storage device with a keyboard in another configuration */
    usb_dev(&combo, 0x1234, 0x5678, "2-5", 0x08, 0x06, 0x50);
    combo.n_other = 1;
    combo.other[0] = (struct ferry_usb_iface){ 0x03, 0x01, 0x01 };
    ck_assert_int_eq(policy_check_usb(p, "a", &disk, &v), 0);
    ck_assert_msg(strstr(v.rule, "rule 'storage'") && strstr(v.rule, ":3)"), "%s", v.rule);
    ck_assert_int_eq(policy_check_usb(p, "b", &disk, &v), -EPERM);
    ck_assert_msg(strstr(v.rule, "rule 'no-storage'"), "%s", v.rule);
    /* the USB disk under /mnt/usb */
    ck_assert_int_eq(policy_check_usb(p, "a", &rootdisk, &v), -EPERM);
    ck_assert_msg(strstr(v.reason, "/mnt/usb"), "%s", v.reason);
    /* keyboards: built-in protection; a forced rule names them */
    ck_assert_int_eq(policy_check_usb(p, "a", &kbd, &v), -EPERM);
    ck_assert_msg(strstr(v.reason, "HID keyboards"), "%s", v.reason);
    ck_assert_int_eq(policy_check_usb(p, "vdi-1", &kbd, &v), 0);
    ck_assert(v.forced);
    /* every interface of every configuration is judged */
    ck_assert_int_eq(policy_check_usb(p, "a", &combo, &v), -EPERM);
    ck_assert_msg(strstr(v.protection, "HID keyboards"), "%s", v.protection);
    ck_assert_msg(strstr(v.rule, "rule 'no-storage'"), "%s", v.rule);
    policy_free(p);
    rm_host();
}
END_TEST

static void bad(const char *text, const char *want_line, const char *want)
{
    char err[512] = "";
    int rc;
    struct ferry_policy *p = load_text(text, err, sizeof(err), &rc);

    ck_assert_msg(rc < 0 && !p, "loaded: %s", text);
    ck_assert_msg(strstr(err, want_line) && strstr(err, want), "error '%s' lacks '%s' or '%s'",
                  err, want_line, want);
}

START_TEST(test_bad_files)
{
    build_host();
    bad("[rule x]\nguests = a\npci-id = 8086-10d3\naction = allow\n", "policy.conf:3:",
        "VENDOR:DEVICE");
    bad("[rule x]\nguests = a\npci = 0000:00:02.0\n", "policy.conf:1:", "no action=");
    bad("[rule x]\nguests = a\npci = 0000:00:02.0\naction = maybe\n", "policy.conf:4:",
        "expected allow or deny");
    bad("[rule x]\nguests = @nobody\npci = 00:02.0\naction = allow\n", "policy.conf:2:",
        "no such group");
    bad("[rule x]\nguests = a\nusb = 0x08,-1\n", "policy.conf:3:", "usbredir filter syntax");
    bad("[rule x]\nguests = a\nusb = 0x08,-1,-1,-1,1\naction = allow\n", "policy.conf:4:",
        "last field");
    bad("[rule x]\nguests = a\npci = 00:02.0\naction = allow\nforse = true\n", "policy.conf:5:",
        "unknown key");
    bad("[rule x]\nguests = a\nguests = b\n", "policy.conf:3:", "again");
    bad("[policy]\ndefault = allow\n\nthis is not a key\n", "policy.conf:4:", "not 'key = value'");
    bad("[rules x]\nguests = a\n", "policy.conf:1:", "unknown group");
    bad("[policy]\ndefault = open\n", "policy.conf:2:", "allow or deny");
    bad("[rule x]\nguests = a\naction = allow\n", "policy.conf:1:", "matches no device");
    bad("[rule x]\nguests = a\npci = 00:02.0\naction = deny\nforce = true\n", "policy.conf:5:",
        "allow rule");
    bad("[rule x]\nguests = a\nusb = 1,-1,-1,-1,1\npci = 00:02.0\n", "policy.conf:3:",
        "not both");
    /* unreadable is not missing */
    {
        char path[400], err[512];
        struct ferry_policy_config cfg = { .sysfs_root = sysfs, .proc_root = proc,
                                           .file = path };
        struct ferry_policy *p = NULL;

        snprintf(path, sizeof(path), "%s/a-directory", tmpdir);
        mkdirs("%s", path);
        ck_assert_int_lt(policy_load(&cfg, NULL, &p, err, sizeof(err)), 0);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err, path), "%s", err);
    }
    rm_host();
}
END_TEST

static TCase *policy_tcase(void)
{
    return FERRY_CHECK_TCASE("policy", 60, test_discovery, test_rules, test_usb, test_bad_files);
}

FERRY_CHECK_MAIN("policy", policy_tcase);
