// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One PCI function's config space: header types 0 and 1, per-byte write
 * masks, command/status, BARs and their remap callbacks, expansion ROM,
 * INTx, capability lists.  MSI and MSI-X live in msi.c, the bus in bus.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci-internal.h"

#define PCI_COMMAND_WMASK   (FERRY_PCI_COMMAND_IO | FERRY_PCI_COMMAND_MEMORY | \
                             FERRY_PCI_COMMAND_MASTER | FERRY_PCI_COMMAND_PARITY | \
                             FERRY_PCI_COMMAND_SERR | FERRY_PCI_COMMAND_INTX_DISABLE)
#define PCI_BRIDGE_CTL_WMASK    0x00ffu
#define PCI_MEM64_END_MAX   ((1ull << 52) - 1)  /* beyond any x86 MAXPHYADDR */

const char *pci_log_level_name(enum ferry_log_level level)
{
    switch (level) {
    case FERRY_LOG_ERROR: return "error";
    case FERRY_LOG_WARNING: return "warning";
    case FERRY_LOG_INFO: return "info";
    default: return "debug";
    }
}

void pci_func_instance(const struct ferry_pci_func *fn, char *buf, size_t len)
{
    int64_t sbdf = pci_func_sbdf(fn);

    if (sbdf >= 0)
        snprintf(buf, len, "%02x:%02x.%x", (unsigned)FERRY_PCI_SBDF_BUS(sbdf),
                 (unsigned)FERRY_PCI_SBDF_DEV(sbdf), (unsigned)FERRY_PCI_SBDF_FN(sbdf));
    else
        snprintf(buf, len, "%s", fn->name);
}

static FERRY_PRINTF(3, 0) void func_vlog(struct ferry_pci_func *fn,
                                         enum ferry_log_level level,
                                         const char *fmt, va_list ap)
{
    ferry_log_fn log = fn->ops ? fn->ops->log : NULL;
    void *opaque = fn->opaque;
    char inst[PCI_NAME_MAX + 16];
    char msg[400];

    if (!log && fn->bus)
        log = pci_bus_log_fn(fn->bus, &opaque);
    if (!log)
        return;
    pci_func_instance(fn, inst, sizeof(inst));
    vsnprintf(msg, sizeof(msg), fmt, ap);
    ferry_logf(log, opaque, level, "pci[%s] %s: %s dev=%s", inst, pci_log_level_name(level), msg,
               fn->name);
}

void pci_func_log(struct ferry_pci_func *fn, enum ferry_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    func_vlog(fn, level, fmt, ap);
    va_end(ap);
}

void pci_func_log_rl(struct ferry_pci_func *fn, enum ferry_log_level level,
                     const char *fmt, ...)
{
    uint32_t suppressed = 0;
    va_list ap;

    if (!ferry_ratelimit_ok(&fn->rl, &suppressed))
        return;
    if (suppressed)
        pci_func_log(fn, level, "%u messages suppressed", suppressed);
    va_start(ap, fmt);
    func_vlog(fn, level, fmt, ap);
    va_end(ap);
}

void pci_func_init_bytes(struct ferry_pci_func *fn, uint32_t reg, uint32_t val, unsigned len)
{
    for (unsigned i = 0; i < len && reg + i < PCI_CFG_SPACE; i++) {
        fn->cfg[reg + i] = (uint8_t)(val >> (8 * i));
        fn->def[reg + i] = (uint8_t)(val >> (8 * i));
    }
}

void pci_func_init_masks(struct ferry_pci_func *fn, uint32_t reg, uint32_t wmask,
                         uint32_t w1cmask, unsigned len)
{
    for (unsigned i = 0; i < len && reg + i < PCI_CFG_SPACE; i++) {
        fn->wmask[reg + i] = (uint8_t)(wmask >> (8 * i));
        fn->w1cmask[reg + i] = (uint8_t)(w1cmask >> (8 * i));
    }
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */

static void init_header(struct ferry_pci_func *fn, const struct ferry_pci_func_info *info)
{
    pci_func_init_bytes(fn, FERRY_PCI_VENDOR_ID, info->vendor_id, 2);
    pci_func_init_bytes(fn, FERRY_PCI_DEVICE_ID, info->device_id, 2);
    pci_func_init_masks(fn, FERRY_PCI_COMMAND, PCI_COMMAND_WMASK, 0, 2);
    pci_func_init_masks(fn, FERRY_PCI_STATUS, 0, FERRY_PCI_STATUS_RW1C, 2);
    pci_func_init_bytes(fn, FERRY_PCI_REVISION_ID, info->revision, 1);
    pci_func_init_bytes(fn, FERRY_PCI_CLASS_PROG, info->class_code, 3);
    pci_func_init_masks(fn, FERRY_PCI_CACHE_LINE_SIZE, 0xff, 0, 1);
    pci_func_init_masks(fn, FERRY_PCI_LATENCY_TIMER, 0xff, 0, 1);
    pci_func_init_bytes(fn, FERRY_PCI_HEADER_TYPE, fn->header_type, 1);
    pci_func_init_masks(fn, FERRY_PCI_INTERRUPT_LINE, 0xff, 0, 1);
    pci_func_init_bytes(fn, FERRY_PCI_INTERRUPT_PIN, fn->intx_pin, 1);

    if (fn->header_type == 0) {
        pci_func_init_bytes(fn, FERRY_PCI_SUBSYSTEM_VENDOR_ID, info->subsystem_vendor_id, 2);
        pci_func_init_bytes(fn, FERRY_PCI_SUBSYSTEM_ID, info->subsystem_id, 2);
    } else {
        /* Bus numbers and secondary latency timer. */
        pci_func_init_masks(fn, FERRY_PCI_PRIMARY_BUS, 0xffffffff, 0, 4);
        /* I/O window: 32-bit addressing (low nibble 1), 4 KiB granules. */
        pci_func_init_bytes(fn, FERRY_PCI_IO_BASE, 0x0101, 2);
        pci_func_init_masks(fn, FERRY_PCI_IO_BASE, 0xf0f0, 0, 2);
        pci_func_init_masks(fn, FERRY_PCI_SEC_STATUS, 0, FERRY_PCI_STATUS_RW1C, 2);
        pci_func_init_masks(fn, FERRY_PCI_MEMORY_BASE, 0xfff0fff0, 0, 4);
        /* Prefetchable window: 64-bit addressing (low nibble 1), 1 MiB granules. */
        pci_func_init_bytes(fn, FERRY_PCI_PREF_MEMORY_BASE, 0x00010001, 4);
        pci_func_init_masks(fn, FERRY_PCI_PREF_MEMORY_BASE, 0xfff0fff0, 0, 4);
        pci_func_init_masks(fn, FERRY_PCI_PREF_BASE_UPPER32, 0xffffffff, 0, 4);
        pci_func_init_masks(fn, FERRY_PCI_PREF_LIMIT_UPPER32, 0xffffffff, 0, 4);
        pci_func_init_masks(fn, FERRY_PCI_IO_BASE_UPPER16, 0xffffffff, 0, 4);
        pci_func_init_masks(fn, FERRY_PCI_BRIDGE_CONTROL, PCI_BRIDGE_CTL_WMASK, 0, 2);
    }
    memset(fn->used, 1, 0x40);
}

struct ferry_pci_func *pci_func_new(const struct ferry_pci_func_info *info,
                                    const struct ferry_pci_func_ops *ops, void *opaque)
{
    struct ferry_pci_func *fn;

    if (!info || info->header_type > 1 || info->intx_pin > FERRY_PCI_INTD ||
        info->class_code > 0xffffff) {
        errno = EINVAL;
        return NULL;
    }
    fn = calloc(1, sizeof(*fn));
    if (!fn)
        return NULL;
    snprintf(fn->name, sizeof(fn->name), "%s", info->name ? info->name : "pci-func");
    fn->ops = ops;
    fn->opaque = opaque;
    fn->header_type = info->header_type;
    fn->intx_pin = info->intx_pin;
    fn->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    if (fn->header_type == 1) {
        fn->children = calloc(PCI_DEVFN_MAX, sizeof(*fn->children));
        if (!fn->children) {
            free(fn);
            return NULL;
        }
    }
    init_header(fn, info);
    return fn;
}

void pci_func_free(struct ferry_pci_func *fn)
{
    if (!fn)
        return;
    pci_msi_free(fn);
    free(fn->children);
    free(fn);
}

const char *pci_func_name(const struct ferry_pci_func *fn)
{
    return fn->name;
}

void *pci_func_opaque(const struct ferry_pci_func *fn)
{
    return fn->opaque;
}

int64_t pci_func_sbdf(const struct ferry_pci_func *fn)
{
    uint8_t busno = 0;

    if (!fn->bus)
        return -ENODEV;
    if (fn->parent) {
        busno = fn->parent->cfg[FERRY_PCI_SECONDARY_BUS];
        /* Reachable only while every bridge on the way has a bus number. */
        for (const struct ferry_pci_func *b = fn->parent; b; b = b->parent)
            if (b->cfg[FERRY_PCI_SECONDARY_BUS] == 0)
                return -ENXIO;
    }
    return FERRY_PCI_SBDF(busno, fn->devfn);
}

/* ------------------------------------------------------------------ */
/* BARs                                                                */

static unsigned bar_count(const struct ferry_pci_func *fn)
{
    return fn->header_type == 0 ? FERRY_PCI_NUM_BARS : 2;
}

static uint32_t bar_reg(const struct ferry_pci_func *fn, unsigned idx)
{
    if (idx == FERRY_PCI_ROM_BAR)
        return fn->header_type == 0 ? FERRY_PCI_ROM_ADDRESS : FERRY_PCI_ROM_ADDRESS1;
    return FERRY_PCI_BAR0 + 4 * idx;
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

int pci_func_bar_declare(struct ferry_pci_func *fn, unsigned idx, uint32_t kind, uint64_t size)
{
    uint32_t space = kind & (FERRY_PCI_BAR_IO | FERRY_PCI_BAR_MEM32 | FERRY_PCI_BAR_MEM64);
    bool pref = kind & FERRY_PCI_BAR_PREFETCH;
    uint32_t reg, low;

    if (fn->bus)
        return -EBUSY;
    if (idx >= bar_count(fn) || !is_pow2(space) ||
        (kind & ~(space | FERRY_PCI_BAR_PREFETCH)) || (pref && space == FERRY_PCI_BAR_IO))
        return -EINVAL;
    if (space == FERRY_PCI_BAR_MEM64 && idx + 1 >= bar_count(fn))
        return -EINVAL;
    if (!is_pow2(size))
        return -EINVAL;
    if (space == FERRY_PCI_BAR_IO && (size < 4 || size > FERRY_PCI_IO_BAR_MAX))
        return -EINVAL;
    if (space == FERRY_PCI_BAR_MEM32 && (size < 16 || size > (1ull << 31)))
        return -EINVAL;
    if (space == FERRY_PCI_BAR_MEM64 && (size < 16 || size > (1ull << 62)))
        return -EINVAL;
    if (fn->bars[idx].kind || (space == FERRY_PCI_BAR_MEM64 && fn->bars[idx + 1].kind))
        return -EBUSY;

    reg = bar_reg(fn, idx);
    fn->bars[idx].kind = kind;
    fn->bars[idx].size = size;
    fn->bars[idx].cur = (struct ferry_pci_bar_range){
        .io = space == FERRY_PCI_BAR_IO, .prefetch = pref, .size = size,
    };
    if (space == FERRY_PCI_BAR_IO) {
        pci_func_init_bytes(fn, reg, 0x1, 4);
        pci_func_init_masks(fn, reg, (uint32_t)~(size - 1) & ~0x3u, 0, 4);
        return 0;
    }
    low = (space == FERRY_PCI_BAR_MEM64 ? 0x4 : 0x0) | (pref ? 0x8 : 0x0);
    pci_func_init_bytes(fn, reg, low, 4);
    pci_func_init_masks(fn, reg, (uint32_t)~(size - 1) & ~0xfu, 0, 4);
    if (space == FERRY_PCI_BAR_MEM64) {
        fn->bars[idx + 1].kind = PCI_BAR_UPPER;
        pci_func_init_bytes(fn, reg + 4, 0, 4);
        pci_func_init_masks(fn, reg + 4, (uint32_t)(~(size - 1) >> 32), 0, 4);
    }
    return 0;
}

int pci_func_rom_declare(struct ferry_pci_func *fn, uint64_t size)
{
    uint32_t reg = bar_reg(fn, FERRY_PCI_ROM_BAR);

    if (fn->bus)
        return -EBUSY;
    if (!is_pow2(size) || size < FERRY_PCI_ROM_MIN || size > (1ull << 31))
        return -EINVAL;
    if (fn->bars[FERRY_PCI_ROM_BAR].kind)
        return -EBUSY;
    fn->bars[FERRY_PCI_ROM_BAR].kind = FERRY_PCI_BAR_MEM32;
    fn->bars[FERRY_PCI_ROM_BAR].size = size;
    fn->bars[FERRY_PCI_ROM_BAR].cur = (struct ferry_pci_bar_range){ .size = size };
    pci_func_init_bytes(fn, reg, 0, 4);
    pci_func_init_masks(fn, reg, ((uint32_t)~(size - 1) & 0xfffff800u) | 1u, 0, 4);
    return 0;
}

/* Where region idx decodes according to the registers alone. */
static void bar_compute(const struct ferry_pci_func *fn, unsigned idx,
                        struct ferry_pci_bar_range *r)
{
    const struct pcim_bar *b = &fn->bars[idx];
    uint16_t cmd = pci_get16(fn->cfg + FERRY_PCI_COMMAND);
    uint32_t low = pci_get32(fn->cfg + bar_reg(fn, idx));
    uint64_t addr, end;

    *r = (struct ferry_pci_bar_range){
        .io = b->kind & FERRY_PCI_BAR_IO,
        .prefetch = b->kind & FERRY_PCI_BAR_PREFETCH,
        .size = b->size,
    };
    if (idx == FERRY_PCI_ROM_BAR) {
        if (!(cmd & FERRY_PCI_COMMAND_MEMORY) || !(low & 1))
            return;
        addr = low & 0xfffff800u;
        end = addr + b->size - 1;
        if (addr == 0 || end >= 0xffffffffu)
            return;
    } else if (b->kind & FERRY_PCI_BAR_IO) {
        if (!(cmd & FERRY_PCI_COMMAND_IO))
            return;
        addr = low & ~0x3u;
        end = addr + b->size - 1;
        if (addr == 0 || end > 0xffff)
            return;
    } else {
        if (!(cmd & FERRY_PCI_COMMAND_MEMORY))
            return;
        addr = low & ~0xfu;
        if (b->kind & FERRY_PCI_BAR_MEM64) {
            addr |= (uint64_t)pci_get32(fn->cfg + bar_reg(fn, idx) + 4) << 32;
            if (addr == 0 || addr > UINT64_MAX - (b->size - 1))
                return;
            end = addr + b->size - 1;
            if (end > PCI_MEM64_END_MAX)
                return;
        } else {
            end = addr + b->size - 1;
            if (addr == 0 || end >= 0xffffffffu)
                return;
        }
    }
    r->mapped = true;
    r->addr = addr;
}

static bool range_same(const struct ferry_pci_bar_range *a, const struct ferry_pci_bar_range *b)
{
    if (a->mapped != b->mapped)
        return false;
    return !a->mapped || a->addr == b->addr;
}

/* Brings every region's decoding in line with the registers. */
void pci_func_bars_update(struct ferry_pci_func *fn)
{
    if (fn->in_update)
        return;
    fn->in_update = true;
    for (unsigned idx = 0; idx < FERRY_PCI_NUM_REGIONS; idx++) {
        struct pcim_bar *b = &fn->bars[idx];
        struct ferry_pci_bar_range r, old;
        int rc = 0;

        if (!b->kind || b->kind == PCI_BAR_UPPER)
            continue;
        bar_compute(fn, idx, &r);
        if (r.mapped && fn->bus && pci_bus_check_range(fn->bus, fn, idx, &r) < 0)
            r.mapped = false;
        if (range_same(&b->cur, &r))
            continue;
        old = b->cur;
        /* Nothing claimed and nothing to claim: cur already says so. */
        if (fn->ops && fn->ops->bar_remap)
            rc = fn->ops->bar_remap(fn->opaque, fn, idx, &old, &r);
        if (rc < 0) {
            pci_func_log_rl(fn, FERRY_LOG_WARNING,
                            "bar %u remap refused by device model addr=0x%llx size=0x%llx "
                            "io=%d: %s", idx, (unsigned long long)r.addr,
                            (unsigned long long)r.size, r.io, strerror(-rc));
            r.mapped = false;
        }
        b->cur = r;
    }
    fn->in_update = false;
}

int pci_func_bar_get(const struct ferry_pci_func *fn, unsigned idx,
                     struct ferry_pci_bar_range *out)
{
    if (idx >= FERRY_PCI_NUM_REGIONS || !fn->bars[idx].kind ||
        fn->bars[idx].kind == PCI_BAR_UPPER)
        return -EINVAL;
    *out = fn->bars[idx].cur;
    return 0;
}

int pci_func_bar_lookup(const struct ferry_pci_func *fn, bool io, uint64_t addr,
                        unsigned *bar, uint64_t *offset)
{
    for (unsigned idx = 0; idx < FERRY_PCI_NUM_REGIONS; idx++) {
        const struct ferry_pci_bar_range *r = &fn->bars[idx].cur;

        if (!fn->bars[idx].kind || fn->bars[idx].kind == PCI_BAR_UPPER || !r->mapped ||
            r->io != io)
            continue;
        if (addr >= r->addr && addr - r->addr < r->size) {
            if (bar)
                *bar = idx;
            if (offset)
                *offset = addr - r->addr;
            return 0;
        }
    }
    return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* INTx                                                                */

void pci_func_irq_update(struct ferry_pci_func *fn)
{
    uint16_t cmd = pci_get16(fn->cfg + FERRY_PCI_COMMAND);
    bool out = fn->irq_level && fn->intx_pin && !(cmd & FERRY_PCI_COMMAND_INTX_DISABLE);

    if (fn->irq_level)
        fn->cfg[FERRY_PCI_STATUS] |= FERRY_PCI_STATUS_INTERRUPT;
    else
        fn->cfg[FERRY_PCI_STATUS] &= (uint8_t)~FERRY_PCI_STATUS_INTERRUPT;
    if (out == fn->irq_out)
        return;
    fn->irq_out = out;
    if (fn->bus)
        pci_bus_irq_change(fn->bus, fn, out);
}

void pci_func_set_irq(struct ferry_pci_func *fn, bool level)
{
    if (!fn->intx_pin)
        return;
    fn->irq_level = level;
    pci_func_irq_update(fn);
}

bool pci_func_irq_level(const struct ferry_pci_func *fn)
{
    return fn->irq_level;
}

/* ------------------------------------------------------------------ */
/* Config accesses                                                     */

static bool size_ok(unsigned size)
{
    return size == 1 || size == 2 || size == 4;
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return a < b + blen && b < a + alen;
}

uint32_t pci_func_config_read(struct ferry_pci_func *fn, uint32_t reg, unsigned size)
{
    uint32_t val = 0;

    if (!size_ok(size)) {
        pci_func_log_rl(fn, FERRY_LOG_WARNING, "config read of bad size reg=0x%x size=%u",
                        reg, size);
        return 0xffffffffu;
    }
    for (unsigned i = 0; i < size; i++) {
        uint64_t r = (uint64_t)reg + i;
        uint8_t b = r < PCI_CFG_SPACE ? fn->cfg[r] : 0xff;

        val |= (uint32_t)b << (8 * i);
    }
    if ((uint64_t)reg + size <= PCI_CFG_SPACE && fn->ops && fn->ops->config_read)
        fn->ops->config_read(fn->opaque, fn, reg, size, &val);
    return val;
}

void pci_func_config_write(struct ferry_pci_func *fn, uint32_t reg, unsigned size, uint32_t val)
{
    uint32_t bars_end = fn->header_type == 0 ? 0x28 : 0x18;
    uint32_t rom = bar_reg(fn, FERRY_PCI_ROM_BAR);
    uint32_t len;

    if (!size_ok(size)) {
        pci_func_log_rl(fn, FERRY_LOG_WARNING, "config write of bad size reg=0x%x size=%u",
                        reg, size);
        return;
    }
    if (reg >= PCI_CFG_SPACE) {
        pci_func_log_rl(fn, FERRY_LOG_WARNING, "config write beyond 4 KiB reg=0x%x size=%u",
                        reg, size);
        return;
    }
    len = reg + size <= PCI_CFG_SPACE ? size : PCI_CFG_SPACE - reg;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        uint8_t wm = fn->wmask[reg + i], w1c = fn->w1cmask[reg + i];
        uint8_t nv = (uint8_t)((fn->cfg[reg + i] & ~wm) | (b & wm));

        fn->cfg[reg + i] = (uint8_t)(nv & ~(b & w1c));
    }
    if (overlaps(reg, len, FERRY_PCI_COMMAND, 2) || overlaps(reg, len, FERRY_PCI_BAR0,
                                                             bars_end - FERRY_PCI_BAR0) ||
        overlaps(reg, len, rom, 4))
        pci_func_bars_update(fn);
    if (overlaps(reg, len, FERRY_PCI_COMMAND, 2))
        pci_func_irq_update(fn);
    pci_msi_config_written(fn, reg, len);
    if (len == size && fn->ops && fn->ops->config_write)
        fn->ops->config_write(fn->opaque, fn, reg, size, val);
}

int pci_func_config_get(const struct ferry_pci_func *fn, uint32_t reg, void *buf, size_t len)
{
    if (reg > PCI_CFG_SPACE || len > PCI_CFG_SPACE - reg)
        return -ERANGE;
    memcpy(buf, fn->cfg + reg, len);
    return 0;
}

int pci_func_config_put(struct ferry_pci_func *fn, uint32_t reg, const void *buf, size_t len)
{
    if (reg > PCI_CFG_SPACE || len > PCI_CFG_SPACE - reg)
        return -ERANGE;
    memcpy(fn->cfg + reg, buf, len);
    memcpy(fn->def + reg, buf, len);
    return 0;
}

int pci_func_set_masks(struct ferry_pci_func *fn, uint32_t reg, unsigned len,
                       uint32_t wmask, uint32_t w1cmask)
{
    if (len < 1 || len > 4)
        return -EINVAL;
    if (reg > PCI_CFG_SPACE || len > PCI_CFG_SPACE - reg)
        return -ERANGE;
    if (wmask & w1cmask)
        return -EINVAL;
    pci_func_init_masks(fn, reg, wmask, w1cmask, len);
    return 0;
}

void pci_func_reset(struct ferry_pci_func *fn)
{
    for (unsigned i = 0; i < PCI_CFG_SPACE; i++)
        if (fn->wmask[i] | fn->w1cmask[i])
            fn->cfg[i] = fn->def[i];
    fn->irq_level = false;
    pci_func_bars_update(fn);
    pci_func_irq_update(fn);
    pci_msi_reset(fn);
}

/* ------------------------------------------------------------------ */
/* Capabilities                                                        */

static void caps_relink(struct ferry_pci_func *fn)
{
    uint32_t link = FERRY_PCI_CAPABILITY_LIST;
    bool any = false;
    unsigned order[PCI_CAPS_MAX], n = 0;

    /* Conventional list, in the order the capabilities were added. */
    for (unsigned i = 0; i < fn->ncaps; i++) {
        const struct pcim_cap *c = &fn->caps[i];

        if (c->ext || c->hidden)
            continue;
        pci_func_init_bytes(fn, link, c->off, 1);
        pci_func_init_bytes(fn, c->off, c->id, 1);
        link = c->off + 1u;
        any = true;
    }
    pci_func_init_bytes(fn, link, 0, 1);
    if (any)
        fn->def[FERRY_PCI_STATUS] |= FERRY_PCI_STATUS_CAP_LIST;
    else
        fn->def[FERRY_PCI_STATUS] &= (uint8_t)~FERRY_PCI_STATUS_CAP_LIST;
    fn->cfg[FERRY_PCI_STATUS] = (uint8_t)((fn->cfg[FERRY_PCI_STATUS] &
                                           ~FERRY_PCI_STATUS_CAP_LIST) |
                                          (fn->def[FERRY_PCI_STATUS] &
                                           FERRY_PCI_STATUS_CAP_LIST));

    /* Extended list: it must start at 0x100, so that one goes first. */
    for (unsigned i = 0; i < fn->ncaps; i++)
        if (fn->caps[i].ext && !fn->caps[i].hidden && fn->caps[i].off == 0x100)
            order[n++] = i;
    for (unsigned i = 0; i < fn->ncaps; i++)
        if (fn->caps[i].ext && !fn->caps[i].hidden && fn->caps[i].off != 0x100)
            order[n++] = i;
    if (n == 0 || fn->caps[order[0]].off != 0x100) {
        /* A null header at 0x100 that only points on (or ends the list). */
        uint32_t next = n ? fn->caps[order[0]].off : 0;

        pci_func_init_bytes(fn, 0x100, next << 20, 4);
    }
    for (unsigned k = 0; k < n; k++) {
        const struct pcim_cap *c = &fn->caps[order[k]];
        uint32_t next = k + 1 < n ? fn->caps[order[k + 1]].off : 0;

        pci_func_init_bytes(fn, c->off, c->id | (uint32_t)(c->version & 0xf) << 16 |
                                        next << 20, 4);
    }
}

static bool range_free(const struct ferry_pci_func *fn, unsigned off, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        if (fn->used[off + i])
            return false;
    return true;
}

static int cap_place(struct ferry_pci_func *fn, bool ext, uint16_t id, uint8_t version,
                     unsigned len, unsigned offset)
{
    unsigned lo = ext ? 0x100 : 0x40, hi = ext ? PCI_CFG_SPACE : FERRY_PCI_CONFIG_SIZE;
    struct pcim_cap *c;

    if (len < (ext ? 4u : 2u) || len > hi - lo)
        return -EINVAL;
    if (fn->ncaps >= PCI_CAPS_MAX)
        return -ENOSPC;
    if (offset) {
        if ((offset & 3) || offset < lo || offset >= hi)
            return -EINVAL;
        if (offset + len > hi)
            return -ENOSPC;
        if (!range_free(fn, offset, len))
            return -EBUSY;
    } else {
        for (offset = lo; offset + len <= hi; offset += 4)
            if (range_free(fn, offset, len))
                break;
        if (offset + len > hi)
            return -ENOSPC;
    }
    memset(fn->used + offset, 1, len);
    c = &fn->caps[fn->ncaps++];
    *c = (struct pcim_cap){ .off = (uint16_t)offset, .len = (uint16_t)len, .id = id,
                           .version = version, .ext = ext };
    caps_relink(fn);
    return (int)offset;
}

int pci_func_cap_add(struct ferry_pci_func *fn, uint8_t id, unsigned len, unsigned offset)
{
    return cap_place(fn, false, id, 0, len, offset);
}

int pci_func_ext_cap_add(struct ferry_pci_func *fn, uint16_t id, uint8_t version,
                         unsigned len, unsigned offset)
{
    if (version > 0xf)
        return -EINVAL;
    return cap_place(fn, true, id, version, len, offset);
}

unsigned pci_func_cap_next(const struct ferry_pci_func *fn, unsigned prev)
{
    unsigned p;

    if (prev == 0) {
        if (!(fn->cfg[FERRY_PCI_STATUS] & FERRY_PCI_STATUS_CAP_LIST))
            return 0;
        p = fn->cfg[FERRY_PCI_CAPABILITY_LIST];
    } else {
        if (prev < 0x40 || prev >= FERRY_PCI_CONFIG_SIZE - 1)
            return 0;
        p = fn->cfg[prev + 1];
    }
    p &= 0xfc;
    return p >= 0x40 ? p : 0;
}

unsigned pci_func_cap_find(const struct ferry_pci_func *fn, uint8_t id, unsigned prev)
{
    unsigned p = pci_func_cap_next(fn, prev);

    for (unsigned n = 0; p && n < PCI_CAP_WALK_MAX; n++) {
        if (fn->cfg[p] == id)
            return p;
        p = pci_func_cap_next(fn, p);
    }
    return 0;
}

unsigned pci_func_ext_cap_find(const struct ferry_pci_func *fn, uint16_t id, unsigned prev)
{
    unsigned p;

    if (prev) {
        if (prev < 0x100 || prev > PCI_CFG_SPACE - 4)
            return 0;
        p = (pci_get32(fn->cfg + prev) >> 20) & 0xffc;
    } else {
        p = 0x100;
    }
    for (unsigned n = 0; p >= 0x100 && p <= PCI_CFG_SPACE - 4 && n < PCI_CAP_WALK_MAX; n++) {
        uint32_t h = pci_get32(fn->cfg + p);

        if (h == 0 || h == 0xffffffffu)
            return 0;
        if ((h & 0xffff) == id && (h & 0xffff))
            return p;
        p = (h >> 20) & 0xffc;
    }
    return 0;
}

static int cap_set_hidden(struct ferry_pci_func *fn, unsigned offset, bool hidden)
{
    for (unsigned i = 0; i < fn->ncaps; i++) {
        if (fn->caps[i].off == offset) {
            fn->caps[i].hidden = hidden;
            caps_relink(fn);
            return 0;
        }
    }
    return -ENOENT;
}

int pci_func_cap_hide(struct ferry_pci_func *fn, unsigned offset)
{
    return cap_set_hidden(fn, offset, true);
}

int pci_func_cap_unhide(struct ferry_pci_func *fn, unsigned offset)
{
    return cap_set_hidden(fn, offset, false);
}

/* ------------------------------------------------------------------ */
/* Bridges                                                             */

int pci_bridge_windows(const struct ferry_pci_func *fn, struct ferry_pci_bridge_windows *w)
{
    const uint8_t *c = fn->cfg;
    uint64_t base, limit;

    if (fn->header_type != 1)
        return -EINVAL;
    *w = (struct ferry_pci_bridge_windows){
        .primary = c[FERRY_PCI_PRIMARY_BUS],
        .secondary = c[FERRY_PCI_SECONDARY_BUS],
        .subordinate = c[FERRY_PCI_SUBORDINATE_BUS],
    };
    base = (uint64_t)(c[FERRY_PCI_IO_BASE] & 0xf0) << 8 |
           (uint64_t)pci_get16(c + FERRY_PCI_IO_BASE_UPPER16) << 16;
    limit = (uint64_t)(c[FERRY_PCI_IO_LIMIT] & 0xf0) << 8 | 0xfff |
            (uint64_t)pci_get16(c + FERRY_PCI_IO_LIMIT_UPPER16) << 16;
    w->io_base = base;
    w->io_limit = limit;
    w->io_enabled = base <= limit;

    base = (uint64_t)(pci_get16(c + FERRY_PCI_MEMORY_BASE) & 0xfff0) << 16;
    limit = (uint64_t)(pci_get16(c + FERRY_PCI_MEMORY_LIMIT) & 0xfff0) << 16 | 0xfffff;
    w->mem_base = base;
    w->mem_limit = limit;
    w->mem_enabled = base <= limit;

    base = (uint64_t)(pci_get16(c + FERRY_PCI_PREF_MEMORY_BASE) & 0xfff0) << 16 |
           (uint64_t)pci_get32(c + FERRY_PCI_PREF_BASE_UPPER32) << 32;
    limit = (uint64_t)(pci_get16(c + FERRY_PCI_PREF_MEMORY_LIMIT) & 0xfff0) << 16 | 0xfffff |
            (uint64_t)pci_get32(c + FERRY_PCI_PREF_LIMIT_UPPER32) << 32;
    w->pref_base = base;
    w->pref_limit = limit;
    w->pref_enabled = base <= limit;
    return 0;
}

/* ------------------------------------------------------------------ */
/* PCI Express capability                                              */

#define PCIE_DEVCAP_RBER        0x00008000u     /* role-based error reporting */
#define PCIE_DEVCTL_WMASK       0x79ffu
#define PCIE_DEVCTL_DEFAULT     0x2810u         /* MRRS 512, no snoop, relaxed ordering */
#define PCIE_DEVSTA_W1C         0x000fu
#define PCIE_LINK_X1_2_5GT      0x0011u         /* speed 1, width 1 */
#define PCIE_LNKCTL_WMASK       0x00cbu         /* ASPM, RCB, common clock, ext. sync */
#define PCIE_RTCTL_WMASK        0x001fu
#define PCIE_RTSTA_PME          0x00010000u

int pci_func_pcie_add(struct ferry_pci_func *fn, enum ferry_pci_pcie_type type, unsigned offset)
{
    bool link = type != FERRY_PCI_EXP_RC_ENDPOINT;
    uint32_t off;
    int rc;

    if (type != FERRY_PCI_EXP_ENDPOINT && type != FERRY_PCI_EXP_LEGACY_ENDPOINT &&
        type != FERRY_PCI_EXP_ROOT_PORT && type != FERRY_PCI_EXP_RC_ENDPOINT)
        return -EINVAL;
    rc = cap_place(fn, false, FERRY_PCI_CAP_ID_EXP, 0, FERRY_PCI_EXP_CAP_LEN, offset);
    if (rc < 0)
        return rc;
    off = (uint32_t)rc;
    pci_func_init_bytes(fn, off + 0x02, (uint32_t)type << 4 | 2, 2);
    pci_func_init_bytes(fn, off + 0x04, PCIE_DEVCAP_RBER, 4);
    pci_func_init_bytes(fn, off + 0x08, PCIE_DEVCTL_DEFAULT, 2);
    pci_func_init_masks(fn, off + 0x08, PCIE_DEVCTL_WMASK, 0, 2);
    pci_func_init_masks(fn, off + 0x0a, 0, PCIE_DEVSTA_W1C, 2);
    if (link) {
        pci_func_init_bytes(fn, off + 0x0c, PCIE_LINK_X1_2_5GT, 4);
        pci_func_init_masks(fn, off + 0x10, PCIE_LNKCTL_WMASK, 0, 2);
        pci_func_init_bytes(fn, off + 0x12, PCIE_LINK_X1_2_5GT, 2);
    }
    if (type == FERRY_PCI_EXP_ROOT_PORT) {
        pci_func_init_masks(fn, off + 0x1c, PCIE_RTCTL_WMASK, 0, 2);
        pci_func_init_masks(fn, off + 0x20, 0, PCIE_RTSTA_PME, 4);
    }
    return rc;
}
