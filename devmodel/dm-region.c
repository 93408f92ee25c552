// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The framework's address decoding: regions (add, map, move, claim from
 * the backend) and the dispatch of accesses to them: dm_io, string
 * I/O, bus 0 functions outside pci/'s model, dm_handle_ioreq.
 */
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


#define FERRY_DM_REP_MAX 65536u     /* repetitions of one string-I/O ioreq */

const char *dm_space_name(enum ferry_dm_space space)
{
    switch (space) {
    case FERRY_DM_SPACE_PORT: return "port";
    case FERRY_DM_SPACE_MMIO: return "mmio";
    case FERRY_DM_SPACE_PCI: return "pci";
    default: return "?";
    }
}

/* ------------------------------------------------------------------ */
/* Claims                                                              */

int dm_region_claim(struct ferry_dm_region *r)
{
    struct ferry_dm *dm = r->dev->dm;
    int rc = 0;

    if (dm->status != FERRY_DM_RUNNING || r->claimed || !r->mapped)
        return 0;
    if (dm->ops && dm->ops->claim)
        rc = dm->ops->claim(dm->opaque, (enum ioreq_range_type)r->space, r->base,
                            r->base + r->len - 1, r->flags);
    if (rc < 0) {
        dm_dev_log(r->dev, FERRY_LOG_ERROR,
                         "cannot claim %s 0x%" PRIx64 "-0x%" PRIx64 ": %s",
                         dm_space_name(r->space), r->base,
                         r->base + r->len - 1, strerror(-rc));
        return rc;
    }
    r->claimed = true;
    return 0;
}

static void region_release(struct ferry_dm_region *r)
{
    struct ferry_dm *dm = r->dev->dm;

    if (!r->claimed)
        return;
    if (dm->ops && dm->ops->release)
        dm->ops->release(dm->opaque, (enum ioreq_range_type)r->space, r->base,
                         r->base + r->len - 1);
    r->claimed = false;
}

/* ------------------------------------------------------------------ */
/* Regions                                                             */

static bool range_ok(enum ferry_dm_space space, uint64_t base, uint64_t len)
{
    if (len == 0 || base > UINT64_MAX - (len - 1))
        return false;
    if (space == FERRY_DM_SPACE_PORT && base + (len - 1) > 0xffff)
        return false;
    if (space == FERRY_DM_SPACE_PCI && base + (len - 1) > UINT32_MAX)
        return false;
    return space == FERRY_DM_SPACE_PORT || space == FERRY_DM_SPACE_MMIO ||
           space == FERRY_DM_SPACE_PCI;
}

static int region_insert(struct ferry_dm_region *r)
{
    void *conflict = NULL;
    int rc;

    rc = ioreq_rangeset_add(r->dev->dm->ranges[r->space], r->base, r->base + r->len - 1,
                            r, &conflict);
    if (rc == -EEXIST && conflict) {
        struct ferry_dm_region *o = conflict;

        /* A guest programming a BAR gets here too: rate-limited. */
        dm_dev_guest_log(r->dev, "%s 0x%" PRIx64 "+0x%" PRIx64 " overlaps %s[%s] at 0x%"
                               PRIx64, dm_space_name(r->space), r->base, r->len,
                               o->dev->type->name, o->dev->id, o->base);
    }
    if (rc < 0)
        return rc;
    r->mapped = true;
    rc = dm_region_claim(r);
    if (rc < 0) {
        ioreq_rangeset_remove(r->dev->dm->ranges[r->space], r->base, r->base + r->len - 1, r);
        r->mapped = false;
    }
    return rc;
}

int dm_region_add(struct ferry_dm_device *dev, enum ferry_dm_space space,
                        uint64_t base, uint64_t len, const struct ferry_dm_region_ops *ops,
                        void *opaque, uint32_t flags, struct ferry_dm_region **out)
{
    struct ferry_dm_region *r;
    int rc;

    if (!ops || !range_ok(space, base, len) ||
        (ops->max_size != 1 && ops->max_size != 2 && ops->max_size != 4 &&
         ops->max_size != 8))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (struct ferry_dm_region){ .dev = dev, .space = space, .base = base, .len = len,
                                   .ops = ops, .opaque = opaque,
                                   .flags = flags & ~FERRY_DM_REGION_UNMAPPED };
    rc = (flags & FERRY_DM_REGION_UNMAPPED) ? 0 : region_insert(r);
    if (rc < 0) {
        free(r);
        return rc;
    }
    g_ptr_array_add(dev->regions, r);
    if (out)
        *out = r;
    return 0;
}

int dm_region_unmap(struct ferry_dm_region *r)
{
    if (!r->mapped)
        return 0;
    region_release(r);
    ioreq_rangeset_remove(r->dev->dm->ranges[r->space], r->base, r->base + r->len - 1, r);
    r->mapped = false;
    return 0;
}

int dm_region_map(struct ferry_dm_region *r)
{
    if (r->mapped)
        return 0;
    return region_insert(r);
}

int dm_region_move(struct ferry_dm_region *r, uint64_t new_base)
{
    if (!range_ok(r->space, new_base, r->len))
        return -EINVAL;
    if (r->mapped && r->base == new_base)
        return 0;
    dm_region_unmap(r);
    r->base = new_base;
    return region_insert(r);
}

void dm_region_del(struct ferry_dm_region *r)
{
    if (!r)
        return;
    dm_region_unmap(r);
    g_ptr_array_remove(r->dev->regions, r);
    free(r);
}

uint64_t dm_region_base(const struct ferry_dm_region *r)
{
    return r->base;
}

bool dm_region_mapped(const struct ferry_dm_region *r)
{
    return r->mapped;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

static void dispatch(struct ferry_dm *dm, enum ferry_dm_space space, uint64_t addr,
                     unsigned size, bool is_write, uint64_t *data)
{
    uint64_t start, end;
    struct ferry_dm_region *r = ioreq_rangeset_lookup(dm->ranges[space], addr, &start, &end);

    if (r && size <= r->ops->max_size && size - 1 <= end - addr) {
        uint64_t off = addr - r->base;

        if (is_write) {
            if (r->ops->write)
                r->ops->write(r->opaque, off, size, *data & size_mask(size));
        } else {
            *data = r->ops->read ? r->ops->read(r->opaque, off, size) & size_mask(size)
                                 : size_mask(size);
        }
        return;
    }
    if (size == 1) {
        /* Nobody decodes this byte: the bus floats high, writes vanish. */
        dm->stats.unclaimed++;
        if (!is_write)
            *data = 0xff;
        return;
    }
    /* Too wide for the region or straddling its end: one byte at a time. */
    dm->stats.split++;
    if (r)
        dm_guest_log(dm, "%s access size=%u at 0x%" PRIx64 " does not fit %s[%s] "
                     "(max %u, end 0x%" PRIx64 "): split into bytes",
                     dm_space_name(space), size, addr,
                     r->dev->type->name, r->dev->id, r->ops->max_size, end);
    uint64_t val = 0;
    for (unsigned i = 0; i < size; i++) {
        uint64_t b = is_write ? (*data >> (8 * i)) & 0xff : 0;
        uint64_t a = addr + i;

        if ((space == FERRY_DM_SPACE_PORT && a > 0xffff) || a < addr) {
            b = 0xff;       /* past the end of the space: floats */
        } else {
            dispatch(dm, space, a, 1, is_write, &b);
        }
        val |= (b & 0xff) << (8 * i);
    }
    if (!is_write)
        *data = val;
}

void dm_io(struct ferry_dm *dm, enum ferry_dm_space space, uint64_t addr,
                 unsigned size, bool is_write, uint64_t *data)
{
    if ((space != FERRY_DM_SPACE_PORT && space != FERRY_DM_SPACE_MMIO) ||
        (size != 1 && size != 2 && size != 4 && size != 8) ||
        (space == FERRY_DM_SPACE_PORT && (size == 8 || addr > 0xffff))) {
        dm->stats.bad++;
        dm_guest_log(dm, "bad access space=%d addr=0x%" PRIx64 " size=%u", (int)space,
                     addr, size);
        if (!is_write)
            *data = size >= 1 && size <= 8 ? size_mask(size) : UINT64_MAX;
        return;
    }
    dispatch(dm, space, addr, size, is_write, data);
}

/* String I/O (rep ins/outs, rep movs to MMIO): data is a guest address. */
static void handle_rep(struct ferry_dm *dm, enum ferry_dm_space space, ioreq_t *req)
{
    uint32_t count = req->count;
    int64_t step = req->df ? -(int64_t)req->size : (int64_t)req->size;

    if (count > FERRY_DM_REP_MAX) {
        dm->stats.bad++;
        dm_guest_log(dm, "string i/o count=%" PRIu32 " over %u: clamped", count,
                     FERRY_DM_REP_MAX);
        count = FERRY_DM_REP_MAX;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint64_t gpa = req->data + (uint64_t)(step * (int64_t)i);
        uint64_t addr = space == FERRY_DM_SPACE_MMIO ? req->addr + (uint64_t)(step * (int64_t)i)
                                                     : req->addr;
        uint64_t val = 0;

        if (req->dir == IOREQ_WRITE) {
            if (dm_dma_read(dm, gpa, &val, req->size) < 0)
                return;
            dm_io(dm, space, addr, req->size, true, &val);
        } else {
            dm_io(dm, space, addr, req->size, false, &val);
            if (dm_dma_write(dm, gpa, &val, req->size) < 0)
                return;
        }
    }
}

/* An external function's config access: naturally aligned pieces only. */
static void pci_ext_access(struct dm_pci_ext *e, uint32_t reg, unsigned size, bool is_write,
                           uint64_t *data)
{
    if (reg % size == 0) {
        if (is_write)
            e->ops->write(e->opaque, reg, size, (uint32_t)*data);
        else
            *data = e->ops->read(e->opaque, reg, size);
        return;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        if (is_write)
            e->ops->write(e->opaque, reg + i, 1, (uint32_t)(*data >> (8 * i)) & 0xff);
        else
            v |= (uint64_t)(e->ops->read(e->opaque, reg + i, 1) & 0xff) << (8 * i);
    }
    if (!is_write)
        *data = v;
}

void dm_handle_ioreq(struct ferry_dm *dm, unsigned vcpu, ioreq_t *req)
{
    enum ferry_dm_space space = FERRY_DM_SPACE_PORT;

    dm->stats.ioreqs++;
    switch (req->type) {
    case IOREQ_TYPE_COPY:
        space = FERRY_DM_SPACE_MMIO;
        /* fall through */
    case IOREQ_TYPE_PIO:
        if (req->data_is_ptr) {
            if (req->size == 1 || req->size == 2 || req->size == 4 || req->size == 8)
                handle_rep(dm, space, req);
            else
                dm->stats.bad++;
            return;
        }
        if (req->count > 1) {
            dm->stats.bad++;
            dm_guest_log(dm, "ioreq count=%" PRIu32 " without a data pointer: one access",
                         req->count);
        }
        dm_io(dm, space, req->addr, req->size, req->dir == IOREQ_WRITE, &req->data);
        return;
    case IOREQ_TYPE_PCI_CONFIG: {
        uint32_t sbdf = IOREQ_PCI_ADDR_SBDF(req->addr);
        uint32_t reg = (uint32_t)req->addr;

        if ((req->size != 1 && req->size != 2 && req->size != 4) || reg > 0xfff ||
            reg + req->size > 0x1000) {
            dm->stats.bad++;
            dm_guest_log(dm, "bad pci config access sbdf=%04x:%02x:%02x.%x reg=0x%x size=%u",
                         sbdf >> 16, (sbdf >> 8) & 0xff, (sbdf >> 3) & 0x1f, sbdf & 7, reg,
                         req->size);
            if (req->dir == IOREQ_READ)
                req->data = req->size >= 1 && req->size <= 8 ? size_mask(req->size) : UINT64_MAX;
            return;
        }
        if (req->dir == IOREQ_READ)
            req->data = size_mask(req->size);
        if (sbdf < 256 && dm->pci_ext[sbdf].ops) {
            pci_ext_access(&dm->pci_ext[sbdf], reg, req->size, req->dir == IOREQ_WRITE,
                           &req->data);
        } else if (dm->pci_config)
            dm->pci_config(dm->pci_opaque, sbdf, reg, req->size, req->dir == IOREQ_WRITE,
                           &req->data);
        else
            dm->stats.unclaimed++;
        if (req->dir == IOREQ_READ)
            req->data &= size_mask(req->size);
        return;
    }
    case IOREQ_TYPE_TIMEOFFSET:
    case IOREQ_TYPE_INVALIDATE:
        return;
    default:
        dm->stats.bad++;
        dm_guest_log(dm, "unknown ioreq type %u from vcpu %u", req->type, vcpu);
        if (req->dir == IOREQ_READ)
            req->data = UINT64_MAX;
        return;
    }
}

bool dm_pci_devfn_taken(struct ferry_dm *dm, unsigned devfn)
{
    if (devfn > 0xff)
        return true;
    if (dm->pci_ext[devfn].ops)
        return true;
    return dm->pci_bus && dm_pci_bus_has(dm->pci_bus, devfn);
}

int dm_pci_ext_add(struct ferry_dm_device *dev, int devfn,
                         const struct ferry_dm_pci_ext_ops *ops, void *opaque)
{
    struct ferry_dm *dm = dev->dm;

    if (!ops || !ops->read || !ops->write || devfn > 0xff)
        return -EINVAL;
    if (!dm->pci_bus) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "no PCI bus: add a pci-host device first");
        return -ENODEV;
    }
    if (devfn < 0) {
        for (unsigned d = 1; d < 32 && devfn < 0; d++)
            if (!dm_pci_devfn_taken(dm, d << 3))
                devfn = (int)(d << 3);
        if (devfn < 0)
            return -ENOSPC;
    }
    if (devfn == 0 || dm_pci_devfn_taken(dm, (unsigned)devfn))
        return -EBUSY;
    dm->pci_ext[devfn] = (struct dm_pci_ext){ .dev = dev, .ops = ops, .opaque = opaque };
    return devfn;
}
