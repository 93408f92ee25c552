// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bus: host bridge at 00.0, functions by devfn, config mechanism #1,
 * ECAM, PCI_CONFIG ioreqs, BAR conflict checks and INTx wired-OR per GSI.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci-internal.h"

#define PCI_WHAT_MAX        24

struct pcim_reserved {
    bool io;
    uint64_t start, end;            /* inclusive */
    char what[PCI_WHAT_MAX];
};

struct ferry_pci_bus {
    char name[PCI_NAME_MAX];
    const struct ferry_pci_bus_ops *ops;
    void *opaque;
    unsigned ecam_buses;
    uint32_t cf8;                   /* config mechanism #1 address latch */
    struct ferry_pci_func *host;
    struct ferry_pci_func *slots[PCI_DEVFN_MAX];
    unsigned gsi_count[FERRY_PCI_INTX_GSI_COUNT];
    struct pcim_reserved reserved[FERRY_PCI_RESERVED_MAX];
    unsigned nreserved;
    struct ferry_ratelimit rl;
};

static FERRY_PRINTF(3, 4) void bus_log_rl(struct ferry_pci_bus *bus,
                                          enum ferry_log_level level,
                                          const char *fmt, ...)
{
    uint32_t suppressed = 0;
    char msg[400];
    va_list ap;

    if (!bus->ops || !bus->ops->log || !ferry_ratelimit_ok(&bus->rl, &suppressed))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed)
        ferry_logf(bus->ops->log, bus->opaque, level, "pci[%s] %s: %u messages suppressed",
                   bus->name, pci_log_level_name(level), suppressed);
    ferry_logf(bus->ops->log, bus->opaque, level, "pci[%s] %s: %s", bus->name,
               pci_log_level_name(level), msg);
}

ferry_log_fn pci_bus_log_fn(const struct ferry_pci_bus *bus, void **opaque)
{
    *opaque = bus->opaque;
    return bus->ops ? bus->ops->log : NULL;
}

/* ------------------------------------------------------------------ */
/* Address decoding helpers                                            */

bool pci_cf8_decode(uint32_t cf8, unsigned data_off, uint32_t *sbdf, uint32_t *reg)
{
    if (!(cf8 & FERRY_PCI_CF8_ENABLE) || data_off > 3)
        return false;
    *sbdf = (cf8 >> 8) & 0xffff;
    *reg = (cf8 & 0xfc) + data_off;
    return true;
}

bool pci_ecam_decode(uint64_t offset, unsigned nbuses, uint32_t *sbdf, uint32_t *reg)
{
    if (nbuses == 0 || nbuses > 256 || offset >= FERRY_PCI_ECAM_SIZE(nbuses))
        return false;
    *sbdf = (uint32_t)(offset >> 12) & 0xffff;
    *reg = (uint32_t)offset & 0xfff;
    return true;
}

static uint32_t ones(unsigned size)
{
    return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
}

/* ------------------------------------------------------------------ */
/* Bus and registry                                                    */

struct ferry_pci_bus *pci_bus_new(const struct ferry_pci_bus_config *cfg,
                                  const struct ferry_pci_bus_ops *ops, void *opaque)
{
    static const struct ferry_pci_bus_config defaults = { .host = FERRY_PCI_HOST_I440FX };
    struct ferry_pci_func_info info = {
        .name = "host-bridge", .vendor_id = 0x8086, .class_code = 0x060000,
    };
    struct ferry_pci_bus *bus;
    int rc;

    if (!cfg)
        cfg = &defaults;
    if ((cfg->host != FERRY_PCI_HOST_I440FX && cfg->host != FERRY_PCI_HOST_Q35) ||
        cfg->ecam_buses > 256) {
        errno = EINVAL;
        return NULL;
    }
    bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    snprintf(bus->name, sizeof(bus->name), "%s", cfg->name ? cfg->name : "pci");
    bus->ops = ops;
    bus->opaque = opaque;
    bus->ecam_buses = cfg->ecam_buses ? cfg->ecam_buses : 256;
    bus->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    if (cfg->host == FERRY_PCI_HOST_I440FX) {
        info.device_id = 0x1237;    /* 440FX - 82441FX PMC [Natoma] */
        info.revision = 0x02;
    } else {
        info.device_id = 0x29c0;    /* 82G33/G31/P35/P31 DRAM controller */
    }
    bus->host = pci_func_new(&info, NULL, NULL);
    if (!bus->host)
        goto fail;
    rc = pci_bus_add(bus, bus->host, 0);
    if (rc < 0) {
        errno = -rc;
        goto fail;
    }
    return bus;

fail:
    pci_func_free(bus->host);
    free(bus);
    return NULL;
}

/* Unplugs a table's functions, and those behind its bridges, without callbacks. */
static void detach_all(struct ferry_pci_func **table, unsigned depth)
{
    for (unsigned i = 0; i < PCI_DEVFN_MAX; i++) {
        struct ferry_pci_func *fn = table[i];

        if (!fn)
            continue;
        if (fn->children && depth < PCI_BRIDGE_DEPTH_MAX)
            detach_all(fn->children, depth + 1);
        fn->bus = NULL;
        fn->parent = NULL;
        table[i] = NULL;
    }
}

void pci_bus_free(struct ferry_pci_bus *bus)
{
    if (!bus)
        return;
    detach_all(bus->slots, 0);
    pci_func_free(bus->host);
    free(bus);
}

struct ferry_pci_func *pci_bus_host_bridge(struct ferry_pci_bus *bus)
{
    return bus->host;
}

/* Function 0 of a device says whether functions 1..7 exist. */
static void update_multi(struct ferry_pci_func **table, unsigned dev)
{
    struct ferry_pci_func *f0 = table[dev << 3];
    bool multi = false;

    if (!f0)
        return;
    for (unsigned fnum = 1; fnum < 8; fnum++)
        multi |= table[dev << 3 | fnum] != NULL;
    if (multi) {
        f0->cfg[FERRY_PCI_HEADER_TYPE] |= FERRY_PCI_HEADER_TYPE_MULTI;
        f0->def[FERRY_PCI_HEADER_TYPE] |= FERRY_PCI_HEADER_TYPE_MULTI;
    } else {
        f0->cfg[FERRY_PCI_HEADER_TYPE] &= (uint8_t)~FERRY_PCI_HEADER_TYPE_MULTI;
        f0->def[FERRY_PCI_HEADER_TYPE] &= (uint8_t)~FERRY_PCI_HEADER_TYPE_MULTI;
    }
}

/*
 * The GSI of a function's pin: swizzled through every bridge on the way
 * ((pin + dev) % 4 at each, the PCI-to-PCI bridge rule), then the root
 * bus formula.
 */
static uint32_t func_gsi(const struct ferry_pci_func *fn, struct ferry_pci_func *parent,
                         uint8_t devfn)
{
    unsigned pin = fn->intx_pin - 1u, dev = devfn >> 3;

    for (const struct ferry_pci_func *b = parent; b; b = b->parent) {
        pin = (pin + dev) % 4;
        dev = b->devfn >> 3;
    }
    return pci_intx_gsi(dev, pin);
}

static int attach(struct ferry_pci_bus *bus, struct ferry_pci_func *parent,
                  struct ferry_pci_func **table, struct ferry_pci_func *fn, uint8_t devfn)
{
    if (fn->bus)
        return -EALREADY;
    if (table[devfn])
        return -EBUSY;
    table[devfn] = fn;
    fn->bus = bus;
    fn->parent = parent;
    fn->devfn = devfn;
    fn->gsi = fn->intx_pin ? func_gsi(fn, parent, devfn) : 0;
    pci_func_init_bytes(fn, FERRY_PCI_INTERRUPT_LINE, fn->intx_pin ? fn->gsi : 0, 1);
    update_multi(table, devfn >> 3);
    if (fn->irq_out)
        pci_bus_irq_change(bus, fn, true);
    return 0;
}

int pci_bus_add(struct ferry_pci_bus *bus, struct ferry_pci_func *fn, uint8_t devfn)
{
    return attach(bus, NULL, bus->slots, fn, devfn);
}

int pci_bridge_add(struct ferry_pci_func *bridge, struct ferry_pci_func *fn, uint8_t devfn)
{
    unsigned depth = 0;

    if (bridge->header_type != 1 || !bridge->children || fn == bridge)
        return -EINVAL;
    if (!bridge->bus)
        return -ENODEV;
    for (const struct ferry_pci_func *b = bridge; b; b = b->parent)
        depth++;
    if (depth > PCI_BRIDGE_DEPTH_MAX)
        return -ELOOP;
    return attach(bridge->bus, bridge, bridge->children, fn, devfn);
}

static bool has_children(const struct ferry_pci_func *fn)
{
    if (!fn->children)
        return false;
    for (unsigned i = 0; i < PCI_DEVFN_MAX; i++)
        if (fn->children[i])
            return true;
    return false;
}

int pci_bus_remove(struct ferry_pci_bus *bus, struct ferry_pci_func *fn)
{
    struct ferry_pci_func **table = fn->parent ? fn->parent->children : bus->slots;

    if (fn->bus != bus || table[fn->devfn] != fn)
        return -ENOENT;
    if (fn == bus->host)
        return -EPERM;
    if (has_children(fn))
        return -EBUSY;
    pci_func_reset(fn);
    if (fn->irq_out)
        pci_bus_irq_change(bus, fn, false);
    table[fn->devfn] = NULL;
    fn->bus = NULL;
    fn->parent = NULL;
    update_multi(table, fn->devfn >> 3);
    return 0;
}

/*
 * The slots of bus number busno: bus 0, or the secondary bus of a bridge
 * reached through the bridges' bus number registers, as a type 1 config
 * cycle would travel.  First match wins when a guest gives two bridges
 * overlapping bus ranges.
 */
static struct ferry_pci_func *const *route(struct ferry_pci_func *const *table, unsigned busno,
                                            unsigned depth)
{
    if (depth > PCI_BRIDGE_DEPTH_MAX)
        return NULL;
    for (unsigned d = 0; d < PCI_DEVFN_MAX; d++) {
        const struct ferry_pci_func *b = table[d];
        unsigned sec, sub;

        if (!b || !b->children || ((d & 7) && !table[d & ~7u]))
            continue;
        sec = b->cfg[FERRY_PCI_SECONDARY_BUS];
        sub = b->cfg[FERRY_PCI_SUBORDINATE_BUS];
        if (sec == 0)
            continue;
        if (busno == sec)
            return b->children;
        if (busno > sec && busno <= sub)
            return route(b->children, busno, depth + 1);
    }
    return NULL;
}

struct ferry_pci_func *pci_bus_lookup(const struct ferry_pci_bus *bus, uint32_t sbdf)
{
    unsigned devfn = FERRY_PCI_SBDF_DEVFN(sbdf);
    struct ferry_pci_func *const *table = bus->slots;

    if (FERRY_PCI_SBDF_SEG(sbdf) != 0)
        return NULL;
    if (FERRY_PCI_SBDF_BUS(sbdf) != 0)
        table = route(bus->slots, FERRY_PCI_SBDF_BUS(sbdf), 0);
    if (!table)
        return NULL;
    /* Functions 1..7 answer only when function 0 does. */
    if ((devfn & 7) && !table[devfn & ~7u])
        return NULL;
    return table[devfn];
}

int pci_bus_reserve(struct ferry_pci_bus *bus, bool io, uint64_t start, uint64_t size,
                    const char *what)
{
    struct pcim_reserved *r;

    if (size == 0 || start > UINT64_MAX - (size - 1))
        return -EINVAL;
    if (bus->nreserved >= FERRY_PCI_RESERVED_MAX)
        return -ENOSPC;
    r = &bus->reserved[bus->nreserved++];
    r->io = io;
    r->start = start;
    r->end = start + (size - 1);
    snprintf(r->what, sizeof(r->what), "%s", what ? what : "reserved");
    return 0;
}

/* -EADDRINUSE (logged) if r overlaps a decoding BAR in table or behind its bridges. */
static int check_overlap(struct ferry_pci_func *const *table, unsigned depth,
                         struct ferry_pci_func *fn, unsigned bar,
                         const struct ferry_pci_bar_range *r)
{
    uint64_t end = r->addr + (r->size - 1);
    char inst[PCI_NAME_MAX + 16];

    for (unsigned d = 0; d < PCI_DEVFN_MAX; d++) {
        const struct ferry_pci_func *g = table[d];

        if (!g)
            continue;
        if (g->children && depth < PCI_BRIDGE_DEPTH_MAX &&
            check_overlap(g->children, depth + 1, fn, bar, r) < 0)
            return -EADDRINUSE;
        for (unsigned j = 0; j < FERRY_PCI_NUM_REGIONS; j++) {
            const struct ferry_pci_bar_range *o = &g->bars[j].cur;

            if ((g == fn && j == bar) || !g->bars[j].kind || g->bars[j].kind == PCI_BAR_UPPER ||
                !o->mapped || o->io != r->io)
                continue;
            if (r->addr <= o->addr + (o->size - 1) && o->addr <= end) {
                pci_func_instance(g, inst, sizeof(inst));
                pci_func_log_rl(fn, FERRY_LOG_WARNING,
                                "bar %u at 0x%llx size 0x%llx overlaps bar %u of %s "
                                "at 0x%llx, not decoded", bar, (unsigned long long)r->addr,
                                (unsigned long long)r->size, j, inst,
                                (unsigned long long)o->addr);
                return -EADDRINUSE;
            }
        }
    }
    return 0;
}

int pci_bus_check_range(struct ferry_pci_bus *bus, struct ferry_pci_func *fn, unsigned bar,
                        const struct ferry_pci_bar_range *r)
{
    uint64_t end = r->addr + (r->size - 1);

    for (unsigned i = 0; i < bus->nreserved; i++) {
        const struct pcim_reserved *res = &bus->reserved[i];

        if (res->io == r->io && r->addr <= res->end && res->start <= end) {
            pci_func_log_rl(fn, FERRY_LOG_WARNING,
                            "bar %u at 0x%llx size 0x%llx overlaps %s 0x%llx-0x%llx, "
                            "not decoded", bar, (unsigned long long)r->addr,
                            (unsigned long long)r->size, res->what,
                            (unsigned long long)res->start, (unsigned long long)res->end);
            return -EADDRINUSE;
        }
    }
    return check_overlap(bus->slots, 0, fn, bar, r);
}

void pci_bus_irq_change(struct ferry_pci_bus *bus, struct ferry_pci_func *fn, bool level)
{
    unsigned idx;

    if (fn->gsi < FERRY_PCI_INTX_GSI_BASE ||
        fn->gsi >= FERRY_PCI_INTX_GSI_BASE + FERRY_PCI_INTX_GSI_COUNT)
        return;
    idx = fn->gsi - FERRY_PCI_INTX_GSI_BASE;
    if (level) {
        if (bus->gsi_count[idx]++ == 0 && bus->ops && bus->ops->set_irq)
            bus->ops->set_irq(bus->opaque, fn->gsi, true);
    } else if (bus->gsi_count[idx] > 0) {
        if (--bus->gsi_count[idx] == 0 && bus->ops && bus->ops->set_irq)
            bus->ops->set_irq(bus->opaque, fn->gsi, false);
    }
}

/* ------------------------------------------------------------------ */
/* Config accesses                                                     */

uint32_t pci_bus_config_read(struct ferry_pci_bus *bus, uint32_t sbdf, uint32_t reg,
                             unsigned size)
{
    struct ferry_pci_func *fn = pci_bus_lookup(bus, sbdf);

    if (size != 1 && size != 2 && size != 4) {
        bus_log_rl(bus, FERRY_LOG_WARNING, "config read of bad size sbdf=0x%x reg=0x%x size=%u",
                   sbdf, reg, size);
        return 0xffffffffu;
    }
    if (!fn)
        return ones(size);
    return pci_func_config_read(fn, reg, size);
}

void pci_bus_config_write(struct ferry_pci_bus *bus, uint32_t sbdf, uint32_t reg,
                          unsigned size, uint32_t val)
{
    struct ferry_pci_func *fn = pci_bus_lookup(bus, sbdf);

    if (size != 1 && size != 2 && size != 4) {
        bus_log_rl(bus, FERRY_LOG_WARNING,
                   "config write of bad size sbdf=0x%x reg=0x%x size=%u", sbdf, reg, size);
        return;
    }
    if (fn)
        pci_func_config_write(fn, reg, size, val);
}

int pci_bus_handle_ioreq(struct ferry_pci_bus *bus, ioreq_t *req)
{
    uint32_t sbdf = IOREQ_PCI_ADDR_SBDF(req->addr);
    uint32_t reg = (uint32_t)req->addr;
    bool ok_size = req->size == 1 || req->size == 2 || req->size == 4;

    if (req->type != IOREQ_TYPE_PCI_CONFIG || req->data_is_ptr || req->count != 1 || !ok_size) {
        bus_log_rl(bus, FERRY_LOG_WARNING,
                   "unsupported config ioreq type=%u addr=0x%llx size=%u count=%u ptr=%u",
                   req->type, (unsigned long long)req->addr, req->size, req->count,
                   req->data_is_ptr);
        if (req->dir == IOREQ_READ && !req->data_is_ptr)
            req->data = UINT64_MAX;
        return -EINVAL;
    }
    if (req->dir == IOREQ_READ)
        req->data = pci_bus_config_read(bus, sbdf, reg, req->size);
    else
        pci_bus_config_write(bus, sbdf, reg, req->size, (uint32_t)req->data);
    return 0;
}

/* ---- config mechanism #1 ---- */

uint32_t pci_bus_pio_read(struct ferry_pci_bus *bus, uint16_t port, unsigned size)
{
    uint32_t sbdf, reg, val = 0;
    unsigned off, n;

    if (size != 1 && size != 2 && size != 4)
        return 0xffffffffu;
    if (port == FERRY_PCI_CF8_PORT && size == 4)
        return bus->cf8;
    if (port < FERRY_PCI_CFC_PORT || port > FERRY_PCI_CFC_PORT + 3)
        return ones(size);
    off = port - FERRY_PCI_CFC_PORT;
    n = size <= 4 - off ? size : 4 - off;
    if (!pci_cf8_decode(bus->cf8, off, &sbdf, &reg))
        return ones(size);
    if (n == size)
        return pci_bus_config_read(bus, sbdf, reg, n);
    /* The access runs past 0xcff: the bytes inside go one by one. */
    for (unsigned i = 0; i < size; i++) {
        uint32_t b = i < n ? pci_bus_config_read(bus, sbdf, reg + i, 1) : 0xff;

        val |= b << (8 * i);
    }
    return val;
}

void pci_bus_pio_write(struct ferry_pci_bus *bus, uint16_t port, unsigned size, uint32_t val)
{
    uint32_t sbdf, reg;
    unsigned off, n;

    if (size != 1 && size != 2 && size != 4)
        return;
    if (port == FERRY_PCI_CF8_PORT && size == 4) {
        bus->cf8 = val & ~0x3u;
        return;
    }
    if (port < FERRY_PCI_CFC_PORT || port > FERRY_PCI_CFC_PORT + 3)
        return;
    off = port - FERRY_PCI_CFC_PORT;
    n = size <= 4 - off ? size : 4 - off;
    if (!pci_cf8_decode(bus->cf8, off, &sbdf, &reg))
        return;
    if (n == size) {
        pci_bus_config_write(bus, sbdf, reg, n, val);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        pci_bus_config_write(bus, sbdf, reg + i, 1, (val >> (8 * i)) & 0xff);
}

/* ---- ECAM ---- */

static uint32_t ecam_read4(struct ferry_pci_bus *bus, uint64_t offset, unsigned size)
{
    uint32_t sbdf, reg, val = 0;

    if ((offset & 0xfff) + size <= 0x1000) {
        if (!pci_ecam_decode(offset, bus->ecam_buses, &sbdf, &reg))
            return ones(size);
        return pci_bus_config_read(bus, sbdf, reg, size);
    }
    /* Crosses into the next function: byte by byte. */
    for (unsigned i = 0; i < size; i++) {
        uint32_t b = 0xff;

        if (offset + i >= offset && pci_ecam_decode(offset + i, bus->ecam_buses, &sbdf, &reg))
            b = pci_bus_config_read(bus, sbdf, reg, 1);
        val |= b << (8 * i);
    }
    return val;
}

static void ecam_write4(struct ferry_pci_bus *bus, uint64_t offset, unsigned size, uint32_t val)
{
    uint32_t sbdf, reg;

    if ((offset & 0xfff) + size <= 0x1000) {
        if (pci_ecam_decode(offset, bus->ecam_buses, &sbdf, &reg))
            pci_bus_config_write(bus, sbdf, reg, size, val);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        if (offset + i >= offset && pci_ecam_decode(offset + i, bus->ecam_buses, &sbdf, &reg))
            pci_bus_config_write(bus, sbdf, reg, 1, (val >> (8 * i)) & 0xff);
}

uint64_t pci_bus_ecam_read(struct ferry_pci_bus *bus, uint64_t offset, unsigned size)
{
    if (size == 8) {
        uint64_t hi = offset + 4 < offset ? 0xffffffffu : ecam_read4(bus, offset + 4, 4);

        return (uint64_t)ecam_read4(bus, offset, 4) | hi << 32;
    }
    if (size != 1 && size != 2 && size != 4) {
        bus_log_rl(bus, FERRY_LOG_WARNING, "ecam read of bad size offset=0x%llx size=%u",
                   (unsigned long long)offset, size);
        return UINT64_MAX;
    }
    return ecam_read4(bus, offset, size);
}

void pci_bus_ecam_write(struct ferry_pci_bus *bus, uint64_t offset, unsigned size,
                        uint64_t val)
{
    if (size == 8) {
        ecam_write4(bus, offset, 4, (uint32_t)val);
        if (offset + 4 >= offset)
            ecam_write4(bus, offset + 4, 4, (uint32_t)(val >> 32));
        return;
    }
    if (size != 1 && size != 2 && size != 4) {
        bus_log_rl(bus, FERRY_LOG_WARNING, "ecam write of bad size offset=0x%llx size=%u",
                   (unsigned long long)offset, size);
        return;
    }
    ecam_write4(bus, offset, size, (uint32_t)val);
}
