// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libferry-pcihost: the passthrough readiness report.  Each finding is one
 * verdict with its reason, in words a person can paste into a bug report.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pci/host/pcihost-priv.h"

#define PCI_EXP_DEVCAP          4
#define PCI_EXP_DEVCAP_FLR      (1u << 28)
#define PCI_EXP_FLAGS_TYPE(f)   (((f) >> 4) & 0xf)
#define PCI_EXP_TYPE_ROOT_PORT  4
#define PCI_EXP_TYPE_DOWNSTREAM 6
#define PCI_EXP_TYPE_PCIE_BRIDGE 8
#define PCI_AF_CAP              3
#define PCI_AF_CAP_TP           0x01
#define PCI_AF_CAP_FLR          0x02
#define PCI_PM_CTRL             4
#define PCI_PM_CTRL_NO_SOFT_RST 0x0008
#define PCI_ACS_CTRL            6
#define PCI_ACS_SV 0x01
#define PCI_ACS_RR 0x04
#define PCI_ACS_CR 0x08
#define PCI_ACS_UF 0x10
#define PCI_ACS_REQUIRED (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF)
#define DMAR_ECAP_IR            (1ull << 3)

const char *pcihost_verdict_name(enum ferry_pcihost_verdict v)
{
    switch (v) {
    case FERRY_PCIHOST_PASS: return "pass";
    case FERRY_PCIHOST_INFO: return "info";
    case FERRY_PCIHOST_WARN: return "warn";
    case FERRY_PCIHOST_FAIL: return "fail";
    }
    return "?";
}

static FERRY_PRINTF(4, 5) void add(struct ferry_pcihost_report *r, const char *check,
                                   enum ferry_pcihost_verdict v, const char *fmt, ...)
{
    struct ferry_pcihost_finding *f;
    va_list ap;

    if (r->n >= FERRY_PCIHOST_FINDINGS_MAX)
        return;
    f = &r->f[r->n++];
    f->check = check;
    f->verdict = v;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
    if (v == FERRY_PCIHOST_FAIL)
        r->ready = false;
}

/* Append to a bounded string, truncating with "..." rather than overflowing. */
static FERRY_PRINTF(3, 4) void cat(char *buf, size_t len, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    int m;

    if (n + 1 >= len)
        return;
    va_start(ap, fmt);
    m = vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= len - n) {
        if (len >= 4)
            strcpy(buf + len - 4, "...");
    }
}

static int count_dir(struct ferry_pcihost *h, const char *rel)
{
    char path[PCIHOST_PATH_MAX];
    struct dirent *e;
    DIR *d;
    int n = 0;

    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "%s", rel) < 0)
        return -ENAMETOOLONG;
    d = opendir(path);
    if (!d)
        return -errno;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static bool proc_interrupts_remapped(struct ferry_pcihost *h)
{
    char path[PCIHOST_PATH_MAX];
    char line[512];
    bool ir = false;
    FILE *f;

    if (pcihost_path(h, path, sizeof(path), h->proc_root, "interrupts") < 0)
        return false;
    f = fopen(path, "re");
    if (!f)
        return false;
    while (!ir && fgets(line, sizeof(line), f))
        if (strstr(line, " IR-"))
            ir = true;
    fclose(f);
    return ir;
}

static void check_device(struct ferry_pcihost *h, const struct ferry_pcihost_dev *d,
                         struct ferry_pcihost_report *r)
{
    char what[3 * FERRY_PCIHOST_NAME_MAX + 64];

    snprintf(what, sizeof(what), "%s [%04x] %s%s%s (%04x:%04x)",
             d->class_name[0] ? d->class_name : "device", d->class_id,
             d->vendor_name, d->vendor_name[0] ? " " : "", d->device_name,
             d->vendor_id, d->device_id);
    if (d->header_type == 1 || d->header_type == 2)
        add(r, "device", FERRY_PCIHOST_FAIL,
            "%s is a bridge: pass through the devices behind it, not the bridge", what);
    else if (d->class_id == 0x0600)
        add(r, "device", FERRY_PCIHOST_FAIL, "%s is a host bridge", what);
    else
        add(r, "device", FERRY_PCIHOST_PASS, "%s", what);
}

static void check_iommu(struct ferry_pcihost *h, struct ferry_pcihost_report *r)
{
    int ngroups = count_dir(h, "kernel/iommu_groups");
    int nunits = count_dir(h, "class/iommu");
    bool dmar = pcihost_sys_exists(h, "firmware/acpi/tables/DMAR");
    bool ivrs = pcihost_sys_exists(h, "firmware/acpi/tables/IVRS");

    if (ngroups > 0)
        add(r, "iommu", FERRY_PCIHOST_PASS, "IOMMU enabled: %d unit%s, %d group%s",
            nunits > 0 ? nunits : 0, nunits == 1 ? "" : "s", ngroups, ngroups == 1 ? "" : "s");
    else if (dmar || ivrs || nunits > 0)
        add(r, "iommu", FERRY_PCIHOST_FAIL,
            "IOMMU present (%s) but not enabled: no IOMMU groups; boot with %s",
            dmar ? "ACPI DMAR table" : ivrs ? "ACPI IVRS table" : "class/iommu",
            ivrs && !dmar ? "amd_iommu=on iommu=pt" : "intel_iommu=on");
    else
        add(r, "iommu", FERRY_PCIHOST_FAIL,
            "no IOMMU: no ACPI DMAR/IVRS table and no IOMMU groups; VFIO cannot isolate devices");
}

static void check_group(struct ferry_pcihost *h, const struct ferry_pcihost_dev *d,
                        struct ferry_pcihost_report *r)
{
    char rel[64], path[PCIHOST_PATH_MAX], others[320] = "";
    struct dirent *e;
    DIR *dir;
    int busy = 0, free_members = 0;

    r->iommu_group = d->iommu_group;
    r->nmembers = 0;
    if (d->iommu_group < 0) {
        add(r, "group", FERRY_PCIHOST_FAIL, "%s has no IOMMU group", d->name);
        return;
    }
    snprintf(rel, sizeof(rel), "kernel/iommu_groups/%d/devices", d->iommu_group);
    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "%s", rel) < 0 ||
        !(dir = opendir(path))) {
        add(r, "group", FERRY_PCIHOST_FAIL, "cannot read IOMMU group %d", d->iommu_group);
        return;
    }
    while ((e = readdir(dir)) && r->nmembers < FERRY_PCIHOST_GROUP_MAX) {
        struct ferry_pcihost_member *m;
        struct ferry_pci_addr a;
        const struct ferry_pcihost_dev *md;

        if (e->d_name[0] == '.' || pcihost_addr_parse(e->d_name, &a) < 0)
            continue;
        m = &r->members[r->nmembers++];
        pcihost_addr_format(&a, m->name);
        md = pcihost_dev_find(h, &a);
        m->bridge = md && (md->header_type == 1 || md->header_type == 2);
        if (pcihost_sys_link_base(h, m->driver, sizeof(m->driver),
                                  "bus/pci/devices/%s/driver", m->name) < 0)
            m->driver[0] = '\0';
    }
    closedir(dir);
    /* Stable order: by address. */
    for (size_t i = 1; i < r->nmembers; i++)
        for (size_t j = i; j > 0 && strcmp(r->members[j - 1].name, r->members[j].name) > 0; j--) {
            struct ferry_pcihost_member t = r->members[j];
            r->members[j] = r->members[j - 1];
            r->members[j - 1] = t;
        }
    for (size_t i = 0; i < r->nmembers; i++) {
        const struct ferry_pcihost_member *m = &r->members[i];
        if (!strcmp(m->name, d->name) || m->bridge)
            continue;
        cat(others, sizeof(others), "%s%s (%s)", others[0] ? ", " : "", m->name,
            m->driver[0] ? m->driver : "no driver");
        if (m->driver[0] && strcmp(m->driver, "vfio-pci") && strcmp(m->driver, "pci-stub"))
            busy++;
        else
            free_members++;
    }
    if (!others[0])
        add(r, "group", FERRY_PCIHOST_PASS, "IOMMU group %d holds only this device%s",
            d->iommu_group, r->nmembers > 1 ? " (and bridges)" : "");
    else if (busy)
        add(r, "group", FERRY_PCIHOST_WARN,
            "IOMMU group %d also holds %s: the group passes through whole; "
            "%d member%s bound to host drivers (prepare --group takes them too)",
            d->iommu_group, others, busy, busy == 1 ? " is" : "s are");
    else
        add(r, "group", FERRY_PCIHOST_WARN,
            "IOMMU group %d also holds %s: the group passes through whole", d->iommu_group,
            others);
}

static void check_irq_remap(struct ferry_pcihost *h, struct ferry_pcihost_report *r)
{
    char path[PCIHOST_PATH_MAX], buf[64], unsafe[8] = "";
    struct dirent *e;
    DIR *dir;
    bool supported = false, any_unit = false;

    if (proc_interrupts_remapped(h)) {
        add(r, "interrupt-remapping", FERRY_PCIHOST_PASS,
            "interrupt remapping enabled (IR- interrupt domains in /proc/interrupts)");
        return;
    }
    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "class/iommu") == 0 &&
        (dir = opendir(path))) {
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.')
                continue;
            any_unit = true;
            if (pcihost_sys_read(h, buf, sizeof(buf), "class/iommu/%s/intel-iommu/ecap",
                                 e->d_name) == 0 &&
                (strtoull(buf, NULL, 16) & DMAR_ECAP_IR))
                supported = true;
        }
        closedir(dir);
    }
    if (pcihost_sys_read(h, unsafe, sizeof(unsafe),
                         "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts") < 0)
        unsafe[0] = '\0';
    if (unsafe[0] == 'Y')
        add(r, "interrupt-remapping", FERRY_PCIHOST_WARN,
            "no interrupt remapping in use; vfio_iommu_type1 allow_unsafe_interrupts=Y lets "
            "the guest forge MSIs");
    else if (supported)
        add(r, "interrupt-remapping", FERRY_PCIHOST_WARN,
            "the IOMMU supports interrupt remapping but it is not in use (intremap=off?)");
    else
        add(r, "interrupt-remapping", FERRY_PCIHOST_FAIL,
            "no interrupt remapping%s: vfio_iommu_type1 refuses MSI isolation unless "
            "allow_unsafe_interrupts=1", any_unit ? " on this IOMMU" : "");
}

static bool dev_has_flr(const struct ferry_pcihost *h, size_t idx, unsigned *how)
{
    const struct ferry_pcihost_dev *d = &h->devs[idx];
    const struct ferry_pcihost_cap *c;
    uint32_t v;

    if ((c = pcihost_cap_find(d, 0x10, false)) &&
        pcihost_cfg_read(h, idx, c->offset + PCI_EXP_DEVCAP, 4, &v) == 0 &&
        (v & PCI_EXP_DEVCAP_FLR))
        *how |= FERRY_PCIHOST_RESET_FLR;
    if ((c = pcihost_cap_find(d, 0x13, false)) &&
        pcihost_cfg_read(h, idx, c->offset + PCI_AF_CAP, 1, &v) == 0 &&
        (v & PCI_AF_CAP_TP) && (v & PCI_AF_CAP_FLR))
        *how |= FERRY_PCIHOST_RESET_AF_FLR;
    return *how & (FERRY_PCIHOST_RESET_FLR | FERRY_PCIHOST_RESET_AF_FLR);
}

static void check_reset(struct ferry_pcihost *h, size_t idx, struct ferry_pcihost_report *r)
{
    const struct ferry_pcihost_dev *d = &h->devs[idx];
    const struct ferry_pcihost_cap *pm = pcihost_cap_find(d, 0x01, false);
    char list[96] = "", kern[96] = "";
    unsigned how = 0;
    uint32_t v;
    size_t on_bus = 0;

    dev_has_flr(h, idx, &how);
    if (pm && pcihost_cfg_read(h, idx, pm->offset + PCI_PM_CTRL, 2, &v) == 0 &&
        !(v & PCI_PM_CTRL_NO_SOFT_RST))
        how |= FERRY_PCIHOST_RESET_PM;
    /* Secondary bus reset through the parent bridge: only when the device is
     * alone on its bus (Linux refuses otherwise) and not on a root bus. */
    if (d->parent >= 0) {
        for (size_t i = 0; i < h->ndevs; i++)
            if (h->devs[i].addr.domain == d->addr.domain && h->devs[i].addr.bus == d->addr.bus)
                on_bus++;
        if (on_bus == 1 && d->header_type == 0)
            how |= FERRY_PCIHOST_RESET_BUS;
    }
    r->resets = how;
    if (pcihost_sys_read(h, r->kernel_reset_method, sizeof(r->kernel_reset_method),
                         "bus/pci/devices/%s/reset_method", d->name) < 0)
        r->kernel_reset_method[0] = '\0';
    if (how & FERRY_PCIHOST_RESET_FLR)
        cat(list, sizeof(list), "%sFLR (PCIe)", list[0] ? ", " : "");
    if (how & FERRY_PCIHOST_RESET_AF_FLR)
        cat(list, sizeof(list), "%sFLR (AF)", list[0] ? ", " : "");
    if (how & FERRY_PCIHOST_RESET_PM)
        cat(list, sizeof(list), "%sPM reset (D3hot, NoSoftRst-)", list[0] ? ", " : "");
    if (how & FERRY_PCIHOST_RESET_BUS)
        cat(list, sizeof(list), "%ssecondary bus reset", list[0] ? ", " : "");
    if (r->kernel_reset_method[0])
        snprintf(kern, sizeof(kern), "; kernel reset_method: %s", r->kernel_reset_method);
    else
        snprintf(kern, sizeof(kern), "; kernel lists no reset method");
    if (how & (FERRY_PCIHOST_RESET_FLR | FERRY_PCIHOST_RESET_AF_FLR))
        add(r, "reset", FERRY_PCIHOST_PASS, "function level reset: %s%s", list, kern);
    else if (how)
        add(r, "reset", FERRY_PCIHOST_WARN,
            "no function level reset; only %s: device state may survive between guests%s",
            list, kern);
    else
        add(r, "reset", FERRY_PCIHOST_FAIL,
            "no reset method (no FLR, PM reset blocked by NoSoftRst or no PM, "
            "not alone on a secondary bus)%s", kern);
}

static void check_acs(struct ferry_pcihost *h, const struct ferry_pcihost_dev *d,
                      struct ferry_pcihost_report *r)
{
    char good[192] = "", bad[192] = "";
    int p = d->parent;
    unsigned steps = 0;

    if (p < 0) {
        add(r, "acs", FERRY_PCIHOST_INFO,
            "on the root bus (root complex integrated): no switch or port on the path; "
            "isolation is what the IOMMU group shows");
        return;
    }
    while (p >= 0 && steps++ < 256) {      /* scan cut loops; bounded anyway */
        const struct ferry_pcihost_dev *b = &h->devs[p];
        const struct ferry_pcihost_cap *exp = pcihost_cap_find(b, 0x10, false);
        const struct ferry_pcihost_cap *acs = pcihost_cap_find(b, 0x0d, true);
        uint32_t flags = 0, ctrl = 0;

        if (!exp) {
            cat(bad, sizeof(bad), "%s%s (conventional PCI bridge: no isolation behind it)",
                bad[0] ? ", " : "", b->name);
        } else if (pcihost_cfg_read(h, (size_t)p, exp->offset + 2, 2, &flags) == 0 &&
                   (PCI_EXP_FLAGS_TYPE(flags) == PCI_EXP_TYPE_ROOT_PORT ||
                    PCI_EXP_FLAGS_TYPE(flags) == PCI_EXP_TYPE_DOWNSTREAM)) {
            if (!acs)
                cat(bad, sizeof(bad), "%s%s (no ACS capability)", bad[0] ? ", " : "", b->name);
            else if (pcihost_cfg_read(h, (size_t)p, acs->offset + PCI_ACS_CTRL, 2, &ctrl) < 0 ||
                     (ctrl & PCI_ACS_REQUIRED) != PCI_ACS_REQUIRED)
                cat(bad, sizeof(bad), "%s%s (ACS control 0x%02x lacks SV/RR/CR/UF)",
                    bad[0] ? ", " : "", b->name, ctrl & 0xff);
            else
                cat(good, sizeof(good), "%s%s", good[0] ? ", " : "", b->name);
        }
        p = b->parent;
    }
    if (bad[0])
        add(r, "acs", FERRY_PCIHOST_WARN,
            "no ACS isolation at %s: peer-to-peer traffic may bypass the IOMMU%s%s", bad,
            good[0] ? "; ACS enabled at " : "", good);
    else if (good[0])
        add(r, "acs", FERRY_PCIHOST_PASS, "ACS (SV RR CR UF) enabled on every port to the root: %s",
            good);
    else
        add(r, "acs", FERRY_PCIHOST_INFO, "no downstream or root port on the path to the root");
}

/* Does the sysfs path of a class entry (class/CLASS/NAME -> ../../devices/...)
 * lie under device `name`? */
static bool class_entry_of(struct ferry_pcihost *h, const char *cls, const char *entry,
                           const char *name)
{
    char path[PCIHOST_PATH_MAX], target[PCIHOST_PATH_MAX], needle[32];
    ssize_t n;

    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "class/%s/%s", cls, entry) < 0)
        return false;
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    snprintf(needle, sizeof(needle), "/%s/", name);
    return strstr(target, needle) != NULL;
}

/* Every entry of /sys/class/CLS that belongs to the device, as "a, b". */
static int class_children(struct ferry_pcihost *h, const char *cls, const char *name,
                          char *out, size_t len)
{
    char path[PCIHOST_PATH_MAX];
    struct dirent *e;
    DIR *dir;
    int n = 0;

    out[0] = '\0';
    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "class/%s", cls) < 0 ||
        !(dir = opendir(path)))
        return 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' || !class_entry_of(h, cls, e->d_name, name))
            continue;
        cat(out, len, "%s%s", out[0] ? ", " : "", e->d_name);
        n++;
    }
    closedir(dir);
    return n;
}

static void check_vga(struct ferry_pcihost *h, const struct ferry_pcihost_dev *d,
                      struct ferry_pcihost_report *r)
{
    char buf[16], fbs[128], drm[128];
    bool boot_vga = pcihost_sys_read(h, buf, sizeof(buf), "bus/pci/devices/%s/boot_vga",
                                     d->name) == 0 && buf[0] == '1';
    int nfb = class_children(h, "graphics", d->name, fbs, sizeof(fbs));
    int ndrm = class_children(h, "drm", d->name, drm, sizeof(drm));

    if (boot_vga)
        add(r, "vga", FERRY_PCIHOST_FAIL,
            "boot VGA device: firmware and the host console use it%s%s",
            nfb ? "; framebuffer " : "", nfb ? fbs : "");
    else if (nfb)
        add(r, "vga", FERRY_PCIHOST_WARN, "drives host framebuffer %s (console)", fbs);
    else if ((d->class_id >> 8) == 0x03)
        add(r, "vga", FERRY_PCIHOST_INFO, "display controller, not the boot VGA%s%s",
            ndrm ? "; drm " : "", ndrm ? drm : "");
    else
        add(r, "vga", FERRY_PCIHOST_PASS, "not a display device");
}

/* major:minor of the filesystem mounted at `/`, and whether a block device
 * (by "M:m") is mounted anywhere; from proc_root/self/mountinfo. */
static void mounts_of(struct ferry_pcihost *h, const char *devno, bool *root, bool *any,
                      char *where, size_t wlen)
{
    char path[PCIHOST_PATH_MAX], line[1024];
    FILE *f;

    *root = *any = false;
    if (pcihost_path(h, path, sizeof(path), h->proc_root, "self/mountinfo") < 0 ||
        !(f = fopen(path, "re")))
        return;
    while (fgets(line, sizeof(line), f)) {
        char mm[32], mnt[256];
        if (sscanf(line, "%*s %*s %31s %*s %255s", mm, mnt) != 2 || strcmp(mm, devno))
            continue;
        *any = true;
        if (!strcmp(mnt, "/"))
            *root = true;
        cat(where, wlen, "%s%s", where[0] ? " " : "", mnt);
    }
    fclose(f);
}

static void check_driver(struct ferry_pcihost *h, const struct ferry_pcihost_dev *d,
                         struct ferry_pcihost_report *r)
{
    char nets[160], blocks[256], path[PCIHOST_PATH_MAX], takes[384] = "", used[256] = "";
    struct dirent *e;
    DIR *dir;
    bool rootfs = false, mounted = false;
    int nnet = class_children(h, "net", d->name, nets, sizeof(nets));

    blocks[0] = '\0';
    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "class/block") == 0 &&
        (dir = opendir(path))) {
        while ((e = readdir(dir))) {
            char devno[32], where[128] = "";
            bool is_root, any;
            if (e->d_name[0] == '.' || !class_entry_of(h, "block", e->d_name, d->name))
                continue;
            cat(blocks, sizeof(blocks), "%s%s", blocks[0] ? ", " : "", e->d_name);
            if (pcihost_sys_read(h, devno, sizeof(devno), "class/block/%s/dev", e->d_name) < 0)
                continue;
            mounts_of(h, devno, &is_root, &any, where, sizeof(where));
            if (any)
                cat(used, sizeof(used), "%s/dev/%s on %s", used[0] ? ", " : "", e->d_name, where);
            rootfs |= is_root;
            mounted |= any;
        }
        closedir(dir);
    }
    if (nnet)
        cat(takes, sizeof(takes), "network interface%s %s", nnet > 1 ? "s" : "", nets);
    if (blocks[0])
        cat(takes, sizeof(takes), "%sblock device%s %s", takes[0] ? "; " : "",
            strchr(blocks, ',') ? "s" : "", blocks);

    r->holds_rootfs = rootfs && d->driver[0] && strcmp(d->driver, "vfio-pci");
    if (!d->driver[0])
        add(r, "driver", FERRY_PCIHOST_PASS, "no host driver bound");
    else if (!strcmp(d->driver, "vfio-pci"))
        add(r, "driver", FERRY_PCIHOST_PASS, "bound to vfio-pci already");
    else if (rootfs)
        add(r, "driver", FERRY_PCIHOST_FAIL,
            "host driver %s holds the root filesystem (%s): unbinding would take away the "
            "disk the system runs on", d->driver, used);
    else if (mounted)
        add(r, "driver", FERRY_PCIHOST_FAIL,
            "host driver %s holds mounted filesystems (%s): unmount them first", d->driver, used);
    else
        add(r, "driver", FERRY_PCIHOST_INFO, "bound to host driver %s; unbinding takes away %s",
            d->driver, takes[0] ? takes : "nothing visible (no net/block device)");
}

int pcihost_check(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                  struct ferry_pcihost_report *r)
{
    const struct ferry_pcihost_dev *d = pcihost_dev_find(h, a);
    char name[FERRY_PCI_ADDR_STRLEN];
    size_t idx;

    memset(r, 0, sizeof(*r));
    r->iommu_group = -1;
    pcihost_addr_format(a, name);
    if (!d)
        return pcihost_fail(h, -ENODEV, "pci %s: no such device", name);
    idx = (size_t)pcihost_dev_index(h, d);
    snprintf(r->dev, sizeof(r->dev), "%s", d->name);
    r->ready = true;
    check_device(h, d, r);
    check_iommu(h, r);
    check_group(h, d, r);
    check_irq_remap(h, r);
    check_reset(h, idx, r);
    check_acs(h, d, r);
    check_vga(h, d, r);
    check_driver(h, d, r);
    return 0;
}
