// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the sysfs and proc text libferry-pcihost reads about a
 * host's PCI devices (numa_node, slot addresses, IOMMU ecap, vfio's
 * allow_unsafe_interrupts, reset_method, boot_vga, block devices' dev,
 * /proc/self/mountinfo, /proc/interrupts) and the names and link targets it
 * follows (iommu_group, driver, the entries of class/{block,net,drm},
 * an IOMMU group's devices), in a tree under a temporary root (the
 * library's sysfs_root/proc_root).  The config space comes from a fixed
 * libpci dump of two devices (a NIC at 00:03.0, a bridge at 00:1c.0).
 * Every device must scan, get a readiness report within its arrays, and
 * a driver name must be read back as it is.
 *
 * Input records: kind u8, length u8, bytes; by kind % 16 (the files are
 * written first, then the links):
 *   0-9   the text of a file (the list below); 10-13 the target of a link
 *   (iommu_group, driver, class/block/sda, class/net/eth0); 14 an entry name
 *   in the device's IOMMU group; 15 a class/drm entry name (to 00:03.0)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pci/host/pcihost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define DEV "0000:00:03.0"

static char root[] = "/tmp/ferry-fuzz-pcihost-sysfs-XXXXXX";
static char tree[160], dump[160];

static const char *const files[10] = {
    "sys/bus/pci/devices/" DEV "/numa_node",
    "sys/bus/pci/slots/1/address",
    "sys/class/iommu/dmar0/intel-iommu/ecap",
    "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
    "sys/bus/pci/devices/" DEV "/reset_method",
    "sys/bus/pci/devices/" DEV "/boot_vga",
    "sys/class/block/sda/dev",
    "proc/self/mountinfo",
    "proc/interrupts",
    "sys/bus/pci/devices/0000:00:1c.0/numa_node",
};
static const char *const links[4] = {
    "sys/bus/pci/devices/" DEV "/iommu_group",
    "sys/bus/pci/devices/" DEV "/driver",
    "sys/class/block/sda",
    "sys/class/net/eth0",
};

/* A NIC (8086:10d3, MSI-X, PCIe, FLR) and a PCIe root port. */
static const char dump_text[] =
    "00:03.0 Ethernet controller\n"
    "00: 86 80 d3 10 07 04 10 00 00 00 00 02 10 00 00 00\n"
    "10: 00 00 08 fe 00 00 0a fe 81 c0 00 00 00 00 0c fe\n"
    "20: 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 00 11\n"
    "30: 00 00 00 00 c8 00 00 00 00 00 00 00 0b 01 00 00\n"
    "c0: 00 00 00 00 00 00 00 00 01 e0 22 c8 00 00 00 00\n"
    "e0: 10 a0 02 00 c1 8c 00 10 30 28 10 00 11 3c 01 00\n"
    "a0: 11 00 04 80 03 00 00 00 03 20 00 00 00 00 00 00\n"
    "\n"
    "00:1c.0 PCI bridge\n"
    "00: 86 80 10 9d 07 04 10 00 f1 00 04 06 10 00 81 00\n"
    "10: 00 00 00 00 00 00 00 00 00 01 01 00 f0 00 00 20\n"
    "20: f0 ff 00 00 f1 ff 01 00 00 00 00 00 00 00 00 00\n"
    "30: 00 00 00 00 40 00 00 00 00 00 00 00 ff 01 12 00\n"
    "40: 10 00 42 01 00 80 00 00 00 00 10 00 12 4c 72 01\n"
    "\n";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

static void cleanup(void)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p of the directory part of rel (under tree). */
static void make_parents(const char *rel)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", tree, rel);
    for (char *s = p + strlen(tree) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        (void)mkdir(p, 0700);
        *s = '/';
    }
}

static void put_file(const char *rel, const uint8_t *b, size_t n)
{
    char p[1024];
    int fd;

    make_parents(rel);
    snprintf(p, sizeof(p), "%s/%s", tree, rel);
    /* O_NOFOLLOW, and nothing through a link the input made: the tree only */
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    FUZZ_CHECK(write(fd, b, n) == (ssize_t)n);
    close(fd);
}

static void put_link(const char *rel, const char *target)
{
    char p[1024];

    make_parents(rel);
    snprintf(p, sizeof(p), "%s/%s", tree, rel);
    unlink(p);
    (void)symlink(target, p);
}

/* A name that is one path component: no '/', NUL, ".", "..", or empty. */
static void component(char *out, size_t len, const uint8_t *b, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n && k + 1 < len; i++)
        out[k++] = b[i] == '/' || b[i] == 0 ? '_' : (char)b[i];
    out[k] = 0;
    if (!k || !strcmp(out, ".") || !strcmp(out, ".."))
        snprintf(out, len, "x");
}

static void fixed_tree(void)
{
    static const uint8_t node[] = "0\n";

    put_file("sys/bus/pci/devices/" DEV "/numa_node", node, 2);
    put_file("sys/bus/pci/devices/0000:00:1c.0/numa_node", node, 2);
    put_link("sys/bus/pci/devices/" DEV "/iommu_group", "../../../../kernel/iommu_groups/7");
    put_link("sys/bus/pci/devices/0000:00:1c.0/iommu_group", "../../../../kernel/iommu_groups/7");
    put_link("sys/kernel/iommu_groups/7/devices/" DEV, "../../../../bus/pci/devices/" DEV);
    put_link("sys/kernel/iommu_groups/7/devices/0000:00:1c.0",
             "../../../../bus/pci/devices/0000:00:1c.0");
    (void)mkdir(tree, 0700);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_pcihost_config cfg = { .ids_file = "/nonexistent/pci.ids" };
    char sys[200], proc[200], state[200];
    struct ferry_pcihost_report *rep;
    struct ferry_pcihost *h;
    size_t pos = 0;

    if (!tree[0]) {
        FUZZ_CHECK(mkdtemp(root));
        snprintf(dump, sizeof(dump), "%s/lspci.dump", root);
        snprintf(tree, sizeof(tree), "%s/t", root);
        (void)mkdir(tree, 0700);
        put_file("../lspci.dump", (const uint8_t *)dump_text, sizeof(dump_text) - 1);
        atexit(cleanup);
    }
    nftw(tree, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    (void)mkdir(tree, 0700);
    fixed_tree();
    /* Files first, then the links: nothing is written through a link the
     * input made (a link may point anywhere, / included). */
    for (int pass = 0; pass < 2; pass++)
    for (pos = 0; size - pos >= 2;) {
        uint8_t kind = data[pos] % 16;
        size_t n = data[pos + 1];
        const uint8_t *b = data + pos + 2;
        char text[256], name[256], rel[400];

        pos += 2;
        if (n > size - pos)
            n = size - pos;
        pos += n;
        if ((kind < 10) != (pass == 0))
            continue;
        if (kind < 10) {
            put_file(files[kind], b, n);
        } else if (kind < 14) {
            size_t k = 0;

            for (size_t i = 0; i < n && k + 1 < sizeof(text); i++)
                text[k++] = b[i] ? (char)b[i] : '_';
            text[k] = 0;
            if (!k)
                snprintf(text, sizeof(text), "x");
            put_link(links[kind - 10], text);
        } else if (kind == 14) {
            component(name, sizeof(name), b, n);
            snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/7/devices/%s", name);
            put_link(rel, "../../../../bus/pci/devices/" DEV);
        } else {
            component(name, sizeof(name), b, n);
            snprintf(rel, sizeof(rel), "sys/class/drm/%s", name);
            put_link(rel, "../../devices/pci0000:00/" DEV "/drm/card0");
        }
    }

    snprintf(sys, sizeof(sys), "%s/sys", tree);
    snprintf(proc, sizeof(proc), "%s/proc", tree);
    snprintf(state, sizeof(state), "%s/state", tree);
    cfg.sysfs_root = sys;
    cfg.proc_root = proc;
    cfg.state_dir = state;
    cfg.dump_file = dump;
    h = pcihost_open(NULL, &cfg);
    FUZZ_CHECK(h);
    rep = malloc(sizeof(*rep));
    FUZZ_CHECK(rep);
    FUZZ_CHECK(pcihost_scan(h) == 0);
    for (size_t i = 0; i < pcihost_dev_count(h); i++) {
        const struct ferry_pcihost_dev *d = pcihost_dev_get(h, i);
        struct ferry_pci_addr a = d->addr;
        char drv[64];

        FUZZ_CHECK(pcihost_check(h, &a, rep) == 0);
        FUZZ_CHECK(rep->n <= FERRY_PCIHOST_FINDINGS_MAX &&
                   rep->nmembers <= FERRY_PCIHOST_GROUP_MAX);
        for (size_t f = 0; f < rep->n; f++)
            FUZZ_CHECK(memchr(rep->f[f].reason, 0, sizeof(rep->f[f].reason)));
        FUZZ_CHECK(memchr(rep->kernel_reset_method, 0, sizeof(rep->kernel_reset_method)));
        if (pcihost_driver_get(h, &a, drv, sizeof(drv)) == 0)
            FUZZ_CHECK(memchr(drv, 0, sizeof(drv)));
    }
    free(rep);
    pcihost_close(h);
    return 0;
}
