// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libferry-pcihost: context, sysfs helpers, and the device inventory
 * (libpci's sysfs or dump access method plus sysfs-only facts).
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pci/pci.h>

#include "pci/host/pcihost-priv.h"

/*
 * libpci's error/warning callbacks carry no context pointer and its error
 * callback must not return.  The one piece of file-scope state in this
 * library is therefore this thread-local pointer to the context whose libpci
 * call is in progress; it is set only around libpci calls.
 */
static __thread struct ferry_pcihost *pcihost_current;

void pcihost_log(struct ferry_pcihost *h, enum ferry_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ferry_vlogf(h->ops.log, h->ops.log_opaque, lvl, fmt, ap);
    va_end(ap);
}

int pcihost_fail(struct ferry_pcihost *h, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    pcihost_log(h, FERRY_LOG_DEBUG, "pcihost: %s", h->err);
    return err;
}

const char *pcihost_last_error(const struct ferry_pcihost *h)
{
    return h->err;
}

static FERRY_PRINTF(1, 2) __attribute__((noreturn)) void pcihost_pci_error(char *msg, ...)
{
    struct ferry_pcihost *h = pcihost_current;
    va_list ap;

    va_start(ap, msg);
    vsnprintf(h->err, sizeof(h->err), msg, ap);
    va_end(ap);
    longjmp(h->pci_jmp, 1);
}

static FERRY_PRINTF(1, 2) void pcihost_pci_warning(char *msg, ...)
{
    struct ferry_pcihost *h = pcihost_current;
    char buf[256];
    va_list ap;

    va_start(ap, msg);
    vsnprintf(buf, sizeof(buf), msg, ap);
    va_end(ap);
    if (h)
        pcihost_log(h, FERRY_LOG_WARNING, "pcihost: libpci: %s", buf);
}

static FERRY_PRINTF(1, 2) void pcihost_pci_debug(char *msg, ...)
{
}

/* ---- addresses ---- */

static int parse_hex(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
                                 : tolower((unsigned char)s[i]) - 'a' + 10);
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int pcihost_addr_parse(const char *s, struct ferry_pci_addr *out)
{
    unsigned dom = 0, bus, dev, fn;
    size_t n;

    if (!s)
        return -EINVAL;
    n = strlen(s);
    if (n == 12) {          /* dddd:bb:dd.f */
        if (s[4] != ':' || parse_hex(s, 4, 0xffff, &dom) < 0)
            return -EINVAL;
        s += 5;
        n -= 5;
    }
    if (n != 7 || s[2] != ':' || s[5] != '.')
        return -EINVAL;
    if (parse_hex(s, 2, 0xff, &bus) < 0 || parse_hex(s + 3, 2, 0x1f, &dev) < 0 ||
        parse_hex(s + 6, 1, 7, &fn) < 0)
        return -EINVAL;
    out->domain = (uint16_t)dom;
    out->bus = (uint8_t)bus;
    out->dev = (uint8_t)dev;
    out->fn = (uint8_t)fn;
    return 0;
}

void pcihost_addr_format(const struct ferry_pci_addr *a, char buf[FERRY_PCI_ADDR_STRLEN])
{
    snprintf(buf, FERRY_PCI_ADDR_STRLEN, "%04x:%02x:%02x.%x",
             a->domain, a->bus, a->dev & 0x1f, a->fn & 7);
}

bool pcihost_addr_equal(const struct ferry_pci_addr *a, const struct ferry_pci_addr *b)
{
    return a->domain == b->domain && a->bus == b->bus && a->dev == b->dev && a->fn == b->fn;
}

/* ---- sysfs/proc helpers ---- */

static FERRY_PRINTF(4, 0) int vpath(char *out, size_t len, const char *root, const char *fmt,
                                   va_list ap)
{
    int n = snprintf(out, len, "%s/", root);
    int m;

    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    m = vsnprintf(out + n, len - (size_t)n, fmt, ap);
    if (m < 0 || (size_t)m >= len - (size_t)n)
        return -ENAMETOOLONG;
    return 0;
}

int pcihost_path(struct ferry_pcihost *h, char *out, size_t len, const char *root,
                 const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vpath(out, len, root, fmt, ap);
    va_end(ap);
    return r;
}

int pcihost_read_file(const char *path, char *buf, size_t len)
{
    ssize_t n;
    size_t got = 0;
    int fd;

    if (len == 0)
        return -EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (got < len - 1) {
        n = read(fd, buf + got, len - 1 - got);
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (got && buf[got - 1] == '\n')
        buf[got - 1] = '\0';
    return 0;
}

int pcihost_sys_read(struct ferry_pcihost *h, char *buf, size_t len, const char *fmt, ...)
{
    char path[PCIHOST_PATH_MAX];
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vpath(path, sizeof(path), h->sysfs_root, fmt, ap);
    va_end(ap);
    if (r < 0)
        return r;
    return pcihost_read_file(path, buf, len);
}

int pcihost_sys_link_base(struct ferry_pcihost *h, char *buf, size_t len, const char *fmt, ...)
{
    char path[PCIHOST_PATH_MAX], target[PCIHOST_PATH_MAX];
    const char *base;
    ssize_t n;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vpath(path, sizeof(path), h->sysfs_root, fmt, ap);
    va_end(ap);
    if (r < 0)
        return r;
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) >= len)
        return -ENAMETOOLONG;
    strcpy(buf, base);
    return 0;
}

int pcihost_sys_write(struct ferry_pcihost *h, const char *val, const char *fmt, ...)
{
    char path[PCIHOST_PATH_MAX];
    size_t len = strlen(val);
    ssize_t n;
    va_list ap;
    int r, fd;

    va_start(ap, fmt);
    r = vpath(path, sizeof(path), h->sysfs_root, fmt, ap);
    va_end(ap);
    if (r < 0)
        return r;
    /* No O_CREAT: sysfs attributes exist or the write is wrong. */
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    do {
        n = write(fd, val, len);
    } while (n < 0 && errno == EINTR);
    r = n < 0 ? -errno : ((size_t)n != len ? -EIO : 0);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

bool pcihost_sys_exists(struct ferry_pcihost *h, const char *fmt, ...)
{
    char path[PCIHOST_PATH_MAX];
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vpath(path, sizeof(path), h->sysfs_root, fmt, ap);
    va_end(ap);
    return r == 0 && access(path, F_OK) == 0;
}

/* ---- context ---- */

static int copy_root(char *dst, const char *src, const char *def)
{
    const char *s = src && *src ? src : def;
    size_t n = strlen(s);

    while (n > 1 && s[n - 1] == '/')
        n--;
    if (n >= PCIHOST_PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

struct ferry_pcihost *pcihost_open(const struct ferry_pcihost_ops *ops,
                                   const struct ferry_pcihost_config *cfg)
{
    static const struct ferry_pcihost_config defaults;
    struct ferry_pcihost *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    if (ops)
        h->ops = *ops;
    if (!cfg)
        cfg = &defaults;
    if (copy_root(h->sysfs_root, cfg->sysfs_root, "/sys") < 0 ||
        copy_root(h->proc_root, cfg->proc_root, "/proc") < 0 ||
        copy_root(h->state_dir, cfg->state_dir, "/run/ferry/pci") < 0 ||
        (cfg->dump_file && copy_root(h->dump_file, cfg->dump_file, "") < 0) ||
        (cfg->ids_file && copy_root(h->ids_file, cfg->ids_file, "") < 0)) {
        ferry_logf(h->ops.log, h->ops.log_opaque, FERRY_LOG_ERROR,
                   "pcihost: configured path too long");
        free(h);
        errno = ENAMETOOLONG;
        return NULL;
    }
    return h;
}

void pcihost_close(struct ferry_pcihost *h)
{
    if (!h)
        return;
    free(h->devs);
    free(h->cfg);
    free(h);
}

size_t pcihost_dev_count(const struct ferry_pcihost *h)
{
    return h->ndevs;
}

const struct ferry_pcihost_dev *pcihost_dev_get(const struct ferry_pcihost *h, size_t i)
{
    return i < h->ndevs ? &h->devs[i] : NULL;
}

const struct ferry_pcihost_dev *pcihost_dev_find(const struct ferry_pcihost *h,
                                                 const struct ferry_pci_addr *a)
{
    for (size_t i = 0; i < h->ndevs; i++)
        if (pcihost_addr_equal(&h->devs[i].addr, a))
            return &h->devs[i];
    return NULL;
}

int pcihost_dev_index(const struct ferry_pcihost *h, const struct ferry_pcihost_dev *d)
{
    return (int)(d - h->devs);
}

unsigned pcihost_hidden(const struct ferry_pcihost *h)
{
    return h->hidden;
}

int pcihost_cfg_read(const struct ferry_pcihost *h, size_t dev, unsigned off,
                     unsigned len, uint32_t *val)
{
    const struct pcihost_cfg *c;
    uint32_t v = 0;

    if (dev >= h->ndevs || (len != 1 && len != 2 && len != 4))
        return -EINVAL;
    c = &h->cfg[dev];
    if (off > PCIHOST_CFG_MAX || len > c->len || off > c->len - len)
        return -ERANGE;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)c->b[off + i] << (8 * i);
    *val = v;
    return 0;
}

const struct ferry_pcihost_cap *pcihost_cap_find(const struct ferry_pcihost_dev *d,
                                                 uint16_t id, bool ext)
{
    for (size_t i = 0; i < d->ncaps; i++)
        if (d->caps[i].id == id && d->caps[i].ext == ext)
            return &d->caps[i];
    return NULL;
}

const char *pcihost_cap_name(const struct ferry_pcihost_cap *c)
{
    static const char *const std[] = {
        [0x01] = "pm", [0x02] = "agp", [0x03] = "vpd", [0x04] = "slotid",
        [0x05] = "msi", [0x06] = "chswp", [0x07] = "pcix", [0x08] = "ht",
        [0x09] = "vndr", [0x0a] = "dbg", [0x0b] = "ccrc", [0x0c] = "hotplug",
        [0x0d] = "ssvid", [0x0e] = "agp3", [0x0f] = "secure", [0x10] = "exp",
        [0x11] = "msix", [0x12] = "sata", [0x13] = "af", [0x14] = "ea",
    };
    static const char *const ext[] = {
        [0x01] = "aer", [0x02] = "vc", [0x03] = "dsn", [0x04] = "pb",
        [0x05] = "rclink", [0x06] = "rcilink", [0x07] = "rcec", [0x08] = "mfvc",
        [0x09] = "vc2", [0x0a] = "rcrb", [0x0b] = "vndr", [0x0d] = "acs",
        [0x0e] = "ari", [0x0f] = "ats", [0x10] = "sriov", [0x11] = "mriov",
        [0x12] = "mcast", [0x13] = "pri", [0x15] = "rebar", [0x16] = "dpa",
        [0x17] = "tph", [0x18] = "ltr", [0x19] = "secpci", [0x1a] = "pmux",
        [0x1b] = "pasid", [0x1c] = "lnr", [0x1d] = "dpc", [0x1e] = "l1pm",
        [0x1f] = "ptm", [0x20] = "mpcie", [0x21] = "frs", [0x22] = "rtr",
        [0x23] = "dvsec", [0x24] = "vfrebar", [0x25] = "dlnk", [0x26] = "16gt",
        [0x27] = "lmr", [0x28] = "hierid", [0x29] = "npem", [0x2e] = "doe",
    };
    const char *n = NULL;

    if (c->ext && c->id < sizeof(ext) / sizeof(ext[0]))
        n = ext[c->id];
    else if (!c->ext && c->id < sizeof(std) / sizeof(std[0]))
        n = std[c->id];
    return n ? n : "unknown";
}

/* ---- scan ---- */

static void cfg_capture(struct pci_dev *p, struct pcihost_cfg *c, unsigned max)
{
    /* Read in the chunks the kernel exposes: 64 bytes to anyone, 256 to root,
     * 4096 with extended config space.  Stop at the first refusal. */
    static const unsigned steps[] = { 64, 256, PCIHOST_CFG_MAX };
    unsigned have = 0;

    c->len = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && steps[i] <= max; i++) {
        if (!pci_read_block(p, (int)have, c->b + have, (int)(steps[i] - have)))
            break;
        have = steps[i];
    }
    c->len = have;
}

static uint32_t cfg32(const struct pcihost_cfg *c, unsigned off)
{
    if (off + 4 > c->len)
        return 0xffffffffu;
    return (uint32_t)c->b[off] | (uint32_t)c->b[off + 1] << 8 |
           (uint32_t)c->b[off + 2] << 16 | (uint32_t)c->b[off + 3] << 24;
}

static void fill_bars(struct ferry_pcihost_dev *d, struct pci_dev *p,
                      const struct pcihost_cfg *c, bool have_sizes)
{
    int nbars = d->header_type == 0 ? 6 : (d->header_type == 1 ? 2 : 0);

    for (int i = 0; i < nbars; i++) {
        struct ferry_pcihost_bar *b = &d->bars[i];
        uint32_t raw = cfg32(c, 0x10 + 4u * (unsigned)i);
        uint64_t size = have_sizes ? p->size[i] : 0;

        if (raw == 0xffffffffu)
            continue;
        b->io = raw & 1;
        if (b->io) {
            b->addr = raw & ~3u;
        } else {
            b->mem64 = ((raw >> 1) & 3) == 2;
            b->prefetch = raw & 8;
            b->addr = raw & ~0xfu;
            if (b->mem64 && i + 1 < nbars)
                b->addr |= (uint64_t)cfg32(c, 0x14 + 4u * (unsigned)i) << 32;
        }
        b->size = size;
        b->present = size != 0 || (b->addr != 0) || (raw & 0xf) != 0;
        if (b->mem64)
            i++;    /* the upper half is not a BAR of its own */
    }
    if (d->header_type == 0) {
        uint32_t raw = cfg32(c, 0x30);
        if (raw != 0xffffffffu && (raw & ~0x7ffu)) {
            d->rom.present = true;
            d->rom.addr = raw & ~0x7ffu;
        }
        if (have_sizes && p->rom_size) {
            d->rom.present = true;
            d->rom.size = p->rom_size;
        }
    }
}

static void fill_sysfs(struct ferry_pcihost *h, struct ferry_pcihost_dev *d,
                       const struct pcihost_cfg *c)
{
    char buf[64];
    struct stat st;
    char path[PCIHOST_PATH_MAX];

    d->iommu_group = -1;
    d->numa_node = -1;
    if (!pcihost_sys_exists(h, "bus/pci/devices/%s", d->name)) {
        d->hidden |= FERRY_PCIHOST_HIDDEN_SYSFS;
        return;
    }
    if (pcihost_sys_link_base(h, buf, sizeof(buf), "bus/pci/devices/%s/iommu_group",
                              d->name) == 0)
        d->iommu_group = atoi(buf);
    if (pcihost_sys_read(h, buf, sizeof(buf), "bus/pci/devices/%s/numa_node", d->name) == 0)
        d->numa_node = atoi(buf);
    if (pcihost_sys_link_base(h, d->driver, sizeof(d->driver), "bus/pci/devices/%s/driver",
                              d->name) < 0)
        d->driver[0] = '\0';
    /* Config space the kernel has but does not show this process (non-root
     * users see only the first 64 bytes). */
    if (!h->dump_file[0] &&
        pcihost_path(h, path, sizeof(path), h->sysfs_root, "bus/pci/devices/%s/config",
                     d->name) == 0 && stat(path, &st) == 0) {
        if ((off_t)c->len < st.st_size && c->len <= 64)
            d->hidden |= FERRY_PCIHOST_HIDDEN_CAPS;
        else if ((off_t)c->len < st.st_size)
            d->hidden |= FERRY_PCIHOST_HIDDEN_EXT;
    }
}

static void fill_slots(struct ferry_pcihost *h)
{
    char path[PCIHOST_PATH_MAX], buf[64];
    struct dirent *e;
    DIR *dir;

    if (pcihost_path(h, path, sizeof(path), h->sysfs_root, "bus/pci/slots") < 0)
        return;
    dir = opendir(path);
    if (!dir)
        return;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(h->devs[0].phys_slot))
            continue;
        if (pcihost_sys_read(h, buf, sizeof(buf), "bus/pci/slots/%s/address", e->d_name) < 0)
            continue;
        /* "dddd:bb:dd": every function of that device sits in the slot */
        for (size_t i = 0; i < h->ndevs; i++)
            if (!strncmp(h->devs[i].name, buf, 10) && strlen(buf) == 10)
                strcpy(h->devs[i].phys_slot, e->d_name);
    }
    closedir(dir);
}

static void lookup_names(struct pci_access *pacc, struct pci_dev *p, struct ferry_pcihost_dev *d)
{
    const int fl = PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;
    char buf[FERRY_PCIHOST_NAME_MAX];
    char *n;

    n = pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_VENDOR | fl, p->vendor_id);
    snprintf(d->vendor_name, sizeof(d->vendor_name), "%s", n ? n : "");
    n = pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_DEVICE | fl,
                        p->vendor_id, p->device_id);
    snprintf(d->device_name, sizeof(d->device_name), "%s", n ? n : "");
    n = pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_CLASS | fl, p->device_class);
    snprintf(d->class_name, sizeof(d->class_name), "%s", n ? n : "");
}

static int dev_cmp(const void *a, const void *b)
{
    const struct ferry_pcihost_dev *x = a, *y = b;
    uint64_t kx = (uint64_t)x->addr.domain << 16 | x->addr.bus << 8 | x->addr.dev << 3 | x->addr.fn;
    uint64_t ky = (uint64_t)y->addr.domain << 16 | y->addr.bus << 8 | y->addr.dev << 3 | y->addr.fn;

    return kx < ky ? -1 : kx > ky;
}

/* Bus numbers are 8 bits: a legitimate path to the root has at most 256
 * bridges.  Config space is what the hardware says, so a bridge may claim
 * its own bus, or two bridges each other's: such loops are cut here so that
 * every walk towards the root ends. */
#define PCIHOST_DEPTH_MAX 256

static void link_parents(struct ferry_pcihost *h)
{
    for (size_t i = 0; i < h->ndevs; i++) {
        struct ferry_pcihost_dev *d = &h->devs[i];
        d->parent = -1;
        for (size_t j = 0; j < h->ndevs; j++) {
            const struct ferry_pcihost_dev *b = &h->devs[j];
            if (j != i && b->header_type == 1 && b->addr.domain == d->addr.domain &&
                b->secondary_bus == d->addr.bus && b->secondary_bus != 0) {
                d->parent = (int)j;
                break;
            }
        }
    }
    for (size_t i = 0; i < h->ndevs; i++) {
        int p = h->devs[i].parent;
        unsigned steps = 0;

        while (p >= 0 && steps++ <= PCIHOST_DEPTH_MAX)
            p = h->devs[p].parent;
        if (p >= 0) {
            pcihost_log(h, FERRY_LOG_WARNING, "pcihost[%s] warning: bridge loop above it "
                        "(bus numbers claimed twice); treated as on a root bus", h->devs[i].name);
            h->devs[i].parent = -1;
        }
    }
}

static int scan_libpci(struct ferry_pcihost *h, struct pci_access *pacc, size_t *count)
{
    const int want = PCI_FILL_IDENT | PCI_FILL_IRQ | PCI_FILL_BASES | PCI_FILL_ROM_BASE |
                     PCI_FILL_SIZES | PCI_FILL_CLASS | PCI_FILL_CAPS | PCI_FILL_EXT_CAPS |
                     PCI_FILL_CLASS_EXT | PCI_FILL_SUBSYS;
    struct pci_dev *p;
    size_t n = 0;

    pci_init(pacc);
    pci_scan_bus(pacc);
    for (p = pacc->devices; p; p = p->next)
        n++;
    if (n > FERRY_PCIHOST_DEVS_MAX)
        return pcihost_fail(h, -E2BIG, "pci: %zu devices, more than the %d handled",
                            n, FERRY_PCIHOST_DEVS_MAX);
    h->devs = calloc(n ? n : 1, sizeof(*h->devs));
    h->cfg = calloc(n ? n : 1, sizeof(*h->cfg));
    if (!h->devs || !h->cfg)
        return pcihost_fail(h, -ENOMEM, "pci: out of memory for %zu devices", n);

    n = 0;
    for (p = pacc->devices; p; p = p->next, n++) {
        struct ferry_pcihost_dev *d = &h->devs[n];
        struct pcihost_cfg *c = &h->cfg[n];
        int known = pci_fill_info(p, want);
        struct pci_cap *cap;
        uint8_t ht;

        d->addr.domain = (uint16_t)p->domain;
        d->addr.bus = p->bus;
        d->addr.dev = p->dev;
        d->addr.fn = p->func;
        pcihost_addr_format(&d->addr, d->name);
        cfg_capture(p, c, PCIHOST_CFG_MAX);
        d->vendor_id = p->vendor_id;
        d->device_id = p->device_id;
        d->class_id = p->device_class;
        d->prog_if = p->prog_if;
        d->revision = p->rev_id;
        if (known & PCI_FILL_SUBSYS) {
            d->subsys_vendor_id = p->subsys_vendor_id;
            d->subsys_id = p->subsys_id;
        }
        ht = c->len > 0x0e ? c->b[0x0e] : 0;
        d->header_type = ht & 0x7f;
        d->multifunction = ht & 0x80;
        d->irq_pin = c->len > 0x3d ? c->b[0x3d] : 0;
        if (d->irq_pin > 4)
            d->irq_pin = 0;
        d->irq = p->irq;
        if (d->header_type == 1 && c->len > 0x1a) {
            d->secondary_bus = c->b[0x19];
            d->subordinate_bus = c->b[0x1a];
        }
        fill_bars(d, p, c, !h->dump_file[0] && (known & PCI_FILL_SIZES));
        if (h->dump_file[0])
            d->hidden |= FERRY_PCIHOST_HIDDEN_SIZES;
        if (c->len > 64) {
            for (cap = p->first_cap; cap && d->ncaps < FERRY_PCIHOST_CAPS_MAX; cap = cap->next) {
                struct ferry_pcihost_cap *fc = &d->caps[d->ncaps];
                if (cap->addr >= c->len)
                    continue;
                fc->id = cap->id;
                fc->offset = (uint16_t)cap->addr;
                fc->ext = cap->type == PCI_CAP_EXTENDED;
                if (fc->ext)
                    fc->version = (uint8_t)((cfg32(c, cap->addr) >> 16) & 0xf);
                d->ncaps++;
            }
        }
        lookup_names(pacc, p, d);
        fill_sysfs(h, d, c);
        h->hidden |= d->hidden;
    }
    *count = n;
    return 0;
}

/* Everything that may end in libpci's error callback, which longjmps back
 * here; no local of this function changes after setjmp. */
static int scan_guarded(struct ferry_pcihost *h, struct pci_access *pacc,
                        char *sysfs_pci, size_t *n)
{
    pacc->error = pcihost_pci_error;
    pacc->warning = pcihost_pci_warning;
    pacc->debug = pcihost_pci_debug;
    pcihost_current = h;
    if (setjmp(h->pci_jmp)) {
        char msg[sizeof(h->err)];

        /* libpci may be half-initialised here; pci_cleanup copes with that */
        snprintf(msg, sizeof(msg), "%s", h->err);
        return pcihost_fail(h, -EIO, "pci: libpci: %s", msg);
    }
    if (h->dump_file[0]) {
        pacc->method = PCI_ACCESS_DUMP;
        pci_set_param(pacc, "dump.name", h->dump_file);
    } else {
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pci_set_param(pacc, "sysfs.path", sysfs_pci);
    }
    if (h->ids_file[0])
        pci_set_name_list_path(pacc, h->ids_file, 0);
    return scan_libpci(h, pacc, n);
}

int pcihost_scan(struct ferry_pcihost *h)
{
    char sysfs_pci[PCIHOST_PATH_MAX];
    struct pci_access *pacc;
    size_t n = 0;
    int r;

    free(h->devs);
    free(h->cfg);
    h->devs = NULL;
    h->cfg = NULL;
    h->ndevs = 0;
    h->hidden = 0;
    h->err[0] = '\0';

    if (h->dump_file[0]) {
        if (access(h->dump_file, R_OK) < 0)
            return pcihost_fail(h, -errno, "pci: cannot read dump %s: %s",
                                h->dump_file, strerror(errno));
    } else {
        r = pcihost_path(h, sysfs_pci, sizeof(sysfs_pci), h->sysfs_root, "bus/pci");
        if (r < 0)
            return pcihost_fail(h, r, "pci: sysfs path too long");
        if (access(sysfs_pci, R_OK) < 0)
            return pcihost_fail(h, -errno, "pci: cannot read %s: %s", sysfs_pci,
                                strerror(errno));
    }

    /* libpci (and libudev, libz with it): ferry-dm does not link it (pci/host/libs-dl.c) and
     * loads it here, still root and unconfined, only for a config's [pci] devices.  A
     * program that links it gets the same library back. */
    if (!dlopen(PCIHOST_LIBPCI, RTLD_NOW | RTLD_GLOBAL)) {
        const char *why = dlerror();

        return pcihost_fail(h, -ENOENT, "pci: cannot load %s: %s", PCIHOST_LIBPCI,
                            why ? why : "unknown error");
    }
    pacc = pci_alloc();
    if (!pacc)
        return pcihost_fail(h, -ENOMEM, "pci: libpci: out of memory");
    r = scan_guarded(h, pacc, sysfs_pci, &n);
    pci_cleanup(pacc);
    pcihost_current = NULL;
    if (r < 0) {
        free(h->devs);
        free(h->cfg);
        h->devs = NULL;
        h->cfg = NULL;
        return r;
    }

    /* Sort by address, devices and their config copies together. */
    {
        struct ferry_pcihost_dev *sd = calloc(n ? n : 1, sizeof(*sd));
        struct pcihost_cfg *sc = calloc(n ? n : 1, sizeof(*sc));

        if (!sd || !sc) {
            free(sd);
            free(sc);
            free(h->devs);
            free(h->cfg);
            h->devs = NULL;
            h->cfg = NULL;
            return pcihost_fail(h, -ENOMEM, "pci: out of memory");
        }
        memcpy(sd, h->devs, n * sizeof(*sd));
        qsort(sd, n, sizeof(*sd), dev_cmp);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                if (pcihost_addr_equal(&sd[i].addr, &h->devs[j].addr)) {
                    memcpy(&sc[i], &h->cfg[j], sizeof(sc[i]));
                    break;
                }
        free(h->devs);
        free(h->cfg);
        h->devs = sd;
        h->cfg = sc;
    }
    h->ndevs = n;
    link_parents(h);
    fill_slots(h);
    return 0;
}

int pcihost_driver_get(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                       char *buf, size_t len)
{
    char name[FERRY_PCI_ADDR_STRLEN];
    int r;

    pcihost_addr_format(a, name);
    if (!pcihost_sys_exists(h, "bus/pci/devices/%s", name))
        return -ENODEV;
    r = pcihost_sys_link_base(h, buf, len, "bus/pci/devices/%s/driver", name);
    if (r == -ENOENT) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    return r;
}
