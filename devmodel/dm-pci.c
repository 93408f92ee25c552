// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Devices with a PCI identity: pci/'s function model, with each BAR backed
 * by a framework region that follows the guest's programming.  See the PCI
 * section of dm.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "devmodel/dm-internal.h"
#include "pci/pcimodel.h"

/* A BAR region: MSI-X table/PBA accesses go to pci/, the rest to the device. */
struct dm_pci_bar_wrap {
    struct ferry_dm_pci *p;
    unsigned bar;
    const struct ferry_dm_region_ops *ops;
    void *opaque;
    struct ferry_dm_region_ops wrap;
};

struct ferry_dm_pci {
    struct ferry_dm_device *dev;
    struct ferry_pci_func *fn;
    struct ferry_dm_region *bar[FERRY_PCI_NUM_REGIONS];
    struct dm_pci_bar_wrap bar_wrap[FERRY_PCI_NUM_BARS];
    struct ferry_pci_bus *bus;      /* set while plugged */
};

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct dm_pci_bar_wrap *b = opaque;
    uint64_t v;

    if (pci_func_msix_mmio_read(b->p->fn, b->bar, off, size, &v))
        return v;
    return b->ops->read ? b->ops->read(b->opaque, off, size) : UINT64_MAX;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct dm_pci_bar_wrap *b = opaque;

    if (pci_func_msix_mmio_write(b->p->fn, b->bar, off, size, val))
        return;
    if (b->ops->write)
        b->ops->write(b->opaque, off, size, val);
}

static void pci_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct ferry_dm_pci *p = opaque;

    dm_dev_log(p->dev, level, "%s", msg);
}

/* The guest moved, enabled or disabled a BAR: the region follows. */
static int pci_bar_remap(void *opaque, struct ferry_pci_func *fn, unsigned bar,
                         const struct ferry_pci_bar_range *old,
                         const struct ferry_pci_bar_range *new_range)
{
    struct ferry_dm_pci *p = opaque;
    struct ferry_dm_region *r = bar < FERRY_PCI_NUM_REGIONS ? p->bar[bar] : NULL;
    int rc;

    if (!r)
        return new_range->mapped ? -ENODEV : 0;
    if (!new_range->mapped)
        return dm_region_unmap(r);
    rc = dm_region_move(r, new_range->addr);
    if (rc < 0)
        dm_dev_guest_log(p->dev, "bar %u at 0x%" PRIx64 "+0x%" PRIx64 " not decoded: %s",
                               bar, new_range->addr, new_range->size,
                               rc == -EEXIST ? "overlaps another device" : "claim refused");
    else
        dm_dev_guest_log_at(p->dev, FERRY_LOG_DEBUG, "bar %u -> %s 0x%" PRIx64 "+0x%"
                                  PRIx64, bar, new_range->io ? "io" : "mem", new_range->addr,
                                  new_range->size);
    return rc;
}

static void pci_msi_send(void *opaque, struct ferry_pci_func *fn, unsigned vector,
                         const struct ferry_pci_msi_msg *msg)
{
    struct ferry_dm_pci *p = opaque;

    (void)dm_signal_msi(dm_device_dm(p->dev), msg->address, msg->data);
}

static const struct ferry_pci_func_ops dm_pci_func_ops = {
    .log = pci_log,
    .bar_remap = pci_bar_remap,
    .msi_send = pci_msi_send,
};

int dm_pci_parse_addr(const char *s, int *devfn)
{
    unsigned dev, fn = 0;

    if (!s) {
        *devfn = -1;
        return 0;
    }
    /* By hand: sscanf's %x wraps silently on overflow ("100000001" is 1). */
    if (!g_ascii_isxdigit(s[0]) || (g_ascii_isxdigit(s[1]) && g_ascii_isxdigit(s[2])))
        return -EINVAL;
    dev = (unsigned)g_ascii_xdigit_value(*s++);
    if (g_ascii_isxdigit(*s))
        dev = dev * 16 + (unsigned)g_ascii_xdigit_value(*s++);
    if (*s == '.') {
        if (s[1] < '0' || s[1] > '7' || s[2])
            return -EINVAL;
        fn = (unsigned)(s[1] - '0');
    } else if (*s) {
        return -EINVAL;
    }
    if (dev == 0 || dev > 31)
        return -EINVAL;
    *devfn = FERRY_PCI_DEVFN(dev, fn);
    return 0;
}

int dm_pci_create(struct ferry_dm_device *dev, const struct ferry_pci_func_info *info,
                        struct ferry_dm_pci **out)
{
    struct ferry_dm_pci *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->dev = dev;
    p->fn = pci_func_new(info, &dm_pci_func_ops, p);
    if (!p->fn) {
        int err = errno;

        free(p);
        return -err;
    }
    dm_device_track_pci(dev, p);
    *out = p;
    return 0;
}

int dm_pci_bar(struct ferry_dm_pci *p, unsigned bar, uint32_t kind, uint64_t size,
                     const struct ferry_dm_region_ops *ops, void *opaque)
{
    enum ferry_dm_space space = (kind & FERRY_PCI_BAR_IO) ? FERRY_DM_SPACE_PORT
                                                          : FERRY_DM_SPACE_MMIO;
    int rc;

    struct dm_pci_bar_wrap *b;

    if (bar >= FERRY_PCI_NUM_BARS || p->bar[bar] || p->bus || !ops)
        return -EINVAL;
    rc = pci_func_bar_declare(p->fn, bar, kind, size);
    if (rc < 0)
        return rc;
    b = &p->bar_wrap[bar];
    *b = (struct dm_pci_bar_wrap){ .p = p, .bar = bar, .ops = ops, .opaque = opaque,
                              .wrap = { .read = bar_read, .write = bar_write,
                                        .max_size = ops->max_size } };
    /* Unmapped until the guest programs it; base 0 is a placeholder. */
    return dm_region_add(p->dev, space, 0, size, &b->wrap, b, FERRY_DM_REGION_UNMAPPED,
                               &p->bar[bar]);
}

bool dm_pci_bus_has(struct ferry_pci_bus *bus, unsigned devfn)
{
    return pci_bus_lookup(bus, FERRY_PCI_SBDF(0, devfn)) != NULL;
}

int dm_pci_plug(struct ferry_dm_pci *p, int devfn)
{
    struct ferry_pci_bus *bus = dm_pci_bus(dm_device_dm(p->dev));
    int rc;

    if (!bus) {
        dm_dev_log(p->dev, FERRY_LOG_ERROR, "no PCI bus: add a pci-host device first");
        return -ENODEV;
    }
    if (p->bus)
        return -EALREADY;
    if (devfn < 0) {
        for (unsigned d = 1; d < 32 && devfn < 0; d++)
            if (!dm_pci_devfn_taken(dm_device_dm(p->dev), FERRY_PCI_DEVFN(d, 0)))
                devfn = FERRY_PCI_DEVFN(d, 0);
        if (devfn < 0)
            return -ENOSPC;
    }
    if (devfn > 0xff)
        return -EINVAL;
    if (dm_pci_devfn_taken(dm_device_dm(p->dev), (unsigned)devfn))
        return -EBUSY;
    rc = pci_bus_add(bus, p->fn, (uint8_t)devfn);
    if (rc < 0)
        return rc;
    p->bus = bus;
    dm_dev_log(p->dev, FERRY_LOG_DEBUG, "on pci 00:%02x.%x", devfn >> 3, devfn & 7);
    return 0;
}

struct ferry_pci_func *dm_pci_func(struct ferry_dm_pci *p)
{
    return p->fn;
}

void dm_pci_set_irq(struct ferry_dm_pci *p, bool level)
{
    pci_func_set_irq(p->fn, level);
}

int dm_pci_msi_notify(struct ferry_dm_pci *p, unsigned vector)
{
    return pci_func_msi_notify(p->fn, vector);
}

void dm_pci_destroy(struct ferry_dm_pci *p)
{
    if (p->bus)
        pci_bus_remove(p->bus, p->fn);     /* resets it: its BARs stop decoding */
    pci_func_free(p->fn);
    free(p);
}
