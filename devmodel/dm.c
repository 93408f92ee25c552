// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's device framework: the device registry, address decoding and
 * dispatch, interrupt lines, guest memory for DMA, save/restore.
 * See dm.h for the contract.
 */
#include "devmodel/dm.h"
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define FERRY_DM_REP_MAX 65536u     /* repetitions of one string-I/O ioreq */
#define FERRY_DM_SAVE_MAX (16u << 20)

/*
 * The registry of device types.  Filled by constructors before main() and
 * read-only afterwards (the only file-scope data of the framework).
 */
static const struct ferry_dm_device_type *dm_types[FERRY_DM_TYPES_MAX];
static unsigned dm_nr_types;

struct ferry_dm_region {
    struct ferry_dm_device *dev;
    enum ferry_dm_space space;
    uint64_t base, len;
    const struct ferry_dm_region_ops *ops;
    void *opaque;
    uint32_t flags;
    bool mapped;            /* in dm->ranges[space] */
    bool claimed;           /* claimed from the backend */
};

/* One GSI as the backend sees it; shared by every ferry_dm_irq on it. */
struct dm_gsi {
    struct ferry_dm *dm;
    uint32_t gsi;
    enum ferry_dm_irq_kind kind;
    unsigned users;
    unsigned asserted;      /* level: sources currently high */
    int efd, resample_fd;   /* -1 when not using an irqfd */
    struct event *resample_ev;
    bool irqfd;             /* registered with the backend */
    bool line_high;         /* irq_line mode: what the backend last saw */
    uint64_t count;
};

struct ferry_dm_irq {
    struct ferry_dm_device *dev;
    struct dm_gsi *line;
    bool level;
    uint64_t count;
};

struct ferry_dm_device {
    struct ferry_dm *dm;
    const struct ferry_dm_device_type *type;
    char id[FERRY_DM_ID_MAX];
    void *state;
    GPtrArray *regions;     /* struct ferry_dm_region * */
    GPtrArray *irqs;        /* struct ferry_dm_irq * */
    GPtrArray *pcis;        /* struct ferry_dm_pci * */
    struct ferry_ratelimit rl;
};

struct dm_memory {
    uint64_t gpa, size;
    uint8_t *hva;
};

struct ferry_dm {
    char name[64];
    struct event_base *base;
    const struct ferry_dm_backend_ops *ops;
    void *opaque;
    ferry_log_fn log;
    void *log_opaque;
    enum ferry_dm_status status;
    struct ioreq_rangeset *ranges[FERRY_DM_SPACE_NR];  /* port, mmio, pci */
    struct ferry_pci_bus *pci_bus;
    GPtrArray *devices;
    GHashTable *gsis;                   /* gsi -> struct dm_gsi */
    unsigned next_auto_id;
    ferry_dm_pci_config_fn pci_config;
    void *pci_opaque;
    struct dm_pci_ext {
        struct ferry_dm_device *dev;
        const struct ferry_dm_pci_ext_ops *ops;
        void *opaque;
    } pci_ext[256];                     /* bus 0 functions outside pci/'s model */
    struct dm_memory mem[IOREQ_MEMORY_MAX_REGIONS];
    unsigned nr_mem;
    int memfd;                          /* dup of the guest RAM memfd, or -1 */
    struct ioreq_msg_memory_reply mem_table;
    struct ferry_dm_stats stats;
    struct ferry_ratelimit rl;
    unsigned nr_vcpus;                  /* 0: unknown */
    const struct ferry_sandbox_config *sandbox;
    bool confined;
    const struct ferry_syscall_list *lists[FERRY_DM_TYPES_MAX + 4];   /* loaded when confined */
    size_t nr_lists;
};

/* ------------------------------------------------------------------ */
/* Logging                                                             */

static FERRY_PRINTF(3, 4) void dm_log(struct ferry_dm *dm, enum ferry_log_level level,
                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ferry_vlogf(dm->log, dm->log_opaque, level, fmt, ap);
    va_end(ap);
}

void ferry_dm_log(struct ferry_dm *dm, enum ferry_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ferry_vlogf(dm->log, dm->log_opaque, level, fmt, ap);
    va_end(ap);
}

/* Guest-triggered framework messages at level, rate-limited. */
static FERRY_PRINTF(3, 4) void dm_guest_log_at(struct ferry_dm *dm, enum ferry_log_level level,
                                               const char *fmt, ...)
{
    char buf[400];
    uint32_t dropped = 0;
    va_list ap;

    if (!ferry_ratelimit_ok(&dm->rl, &dropped))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (dropped)
        dm_log(dm, level, "%s (%" PRIu32 " similar suppressed)", buf, dropped);
    else
        dm_log(dm, level, "%s", buf);
}

#define dm_guest_log(dm, ...) dm_guest_log_at(dm, FERRY_LOG_WARNING, __VA_ARGS__)

void ferry_dm_dev_log(struct ferry_dm_device *dev, enum ferry_log_level level,
                      const char *fmt, ...)
{
    char buf[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    dm_log(dev->dm, level, "%s[%s]: %s", dev->type->name, dev->id, buf);
}

static FERRY_PRINTF(3, 0) void dev_guest_vlog(struct ferry_dm_device *dev,
                                              enum ferry_log_level level, const char *fmt,
                                              va_list ap)
{
    char buf[400];
    uint32_t dropped = 0;

    if (!ferry_ratelimit_ok(&dev->rl, &dropped))
        return;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (dropped)
        ferry_dm_dev_log(dev, level, "%s (%" PRIu32 " similar suppressed)", buf, dropped);
    else
        ferry_dm_dev_log(dev, level, "%s", buf);
}

void ferry_dm_dev_guest_log(struct ferry_dm_device *dev, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dev_guest_vlog(dev, FERRY_LOG_WARNING, fmt, ap);
    va_end(ap);
}

void ferry_dm_dev_guest_log_at(struct ferry_dm_device *dev, enum ferry_log_level level,
                               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dev_guest_vlog(dev, level, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Device types                                                        */

int ferry_dm_device_type_register(const struct ferry_dm_device_type *type)
{
    if (!type || !type->name || !type->init)
        return -EINVAL;
    if (ferry_dm_device_type_find(type->name))
        return -EEXIST;
    if (dm_nr_types >= FERRY_DM_TYPES_MAX)
        return -ENOSPC;
    dm_types[dm_nr_types++] = type;
    return 0;
}

const struct ferry_dm_device_type *ferry_dm_device_type_find(const char *name)
{
    for (unsigned i = 0; i < dm_nr_types; i++)
        if (strcmp(dm_types[i]->name, name) == 0)
            return dm_types[i];
    return NULL;
}

const struct ferry_dm_device_type *ferry_dm_device_type_nth(unsigned i)
{
    return i < dm_nr_types ? dm_types[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Context                                                             */

static void dm_gsi_free(gpointer p);

int ferry_dm_create(const struct ferry_dm_config *cfg, struct ferry_dm **out)
{
    struct ferry_dm *dm;

    if (!cfg || !out)
        return -EINVAL;
    dm = calloc(1, sizeof(*dm));
    if (!dm)
        return -ENOMEM;
    snprintf(dm->name, sizeof(dm->name), "%s", cfg->name ? cfg->name : "guest");
    dm->base = cfg->base;
    dm->ops = cfg->ops;
    dm->opaque = cfg->opaque;
    dm->log = cfg->log;
    dm->log_opaque = cfg->log_opaque;
    dm->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    dm->memfd = -1;
    for (unsigned i = 0; i < FERRY_DM_SPACE_NR; i++)
        dm->ranges[i] = ioreq_rangeset_new();
    dm->devices = g_ptr_array_new();
    dm->gsis = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, dm_gsi_free);
    if (!dm->ranges[0] || !dm->ranges[1] || !dm->ranges[2]) {
        ferry_dm_destroy(dm);
        return -ENOMEM;
    }
    *out = dm;
    return 0;
}

static void device_free(struct ferry_dm_device *dev);

void ferry_dm_destroy(struct ferry_dm *dm)
{
    if (!dm)
        return;
    while (dm->devices->len) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, dm->devices->len - 1);

        g_ptr_array_remove_index(dm->devices, dm->devices->len - 1);
        device_free(dev);
    }
    g_ptr_array_free(dm->devices, TRUE);
    g_hash_table_destroy(dm->gsis);
    for (unsigned i = 0; i < dm->nr_mem; i++)
        munmap(dm->mem[i].hva, dm->mem[i].size);
    if (dm->memfd >= 0)
        close(dm->memfd);
    for (unsigned i = 0; i < FERRY_DM_SPACE_NR; i++)
        ioreq_rangeset_free(dm->ranges[i]);
    free(dm);
}

const char *ferry_dm_name(const struct ferry_dm *dm)
{
    return dm->name;
}

struct event_base *ferry_dm_event_base(struct ferry_dm *dm)
{
    return dm->base;
}

enum ferry_dm_status ferry_dm_get_status(const struct ferry_dm *dm)
{
    return dm->status;
}

const char *ferry_dm_status_name(enum ferry_dm_status st)
{
    switch (st) {
    case FERRY_DM_CREATED: return "prelaunch";
    case FERRY_DM_RUNNING: return "running";
    case FERRY_DM_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}

uint64_t ferry_dm_clock_ns(struct ferry_dm *dm)
{
    struct timespec ts;

    if (dm->ops && dm->ops->clock_ns)
        return dm->ops->clock_ns(dm->opaque);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t ferry_dm_wall_ns(struct ferry_dm *dm)
{
    struct timespec ts;

    if (dm->ops && dm->ops->wall_ns)
        return dm->ops->wall_ns(dm->opaque);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ferry_dm_get_stats(const struct ferry_dm *dm, struct ferry_dm_stats *st)
{
    *st = dm->stats;
}

void ferry_dm_set_pci_config(struct ferry_dm *dm, ferry_dm_pci_config_fn fn, void *opaque)
{
    dm->pci_config = fn;
    dm->pci_opaque = opaque;
}

void ferry_dm_set_nr_vcpus(struct ferry_dm *dm, unsigned n)
{
    dm->nr_vcpus = n;
}

unsigned ferry_dm_nr_vcpus(const struct ferry_dm *dm)
{
    return dm->nr_vcpus;
}

int ferry_dm_signal_msi(struct ferry_dm *dm, uint64_t address, uint32_t data)
{
    int rc = dm->ops && dm->ops->msi ? dm->ops->msi(dm->opaque, address, data) : -ENOSYS;

    if (rc < 0)         /* devices send MSIs when the guest asks: rate-limited */
        dm_guest_log(dm, "msi 0x%" PRIx64 "/0x%" PRIx32 " not delivered: %s", address, data,
                     strerror(-rc));
    return rc;
}

void ferry_dm_request_shutdown(struct ferry_dm *dm, enum ioreq_shutdown_reason reason,
                               uint32_t code)
{
    static const char *const names[] = { "poweroff", "reboot", "crash" };
    int rc = 0;

    /* Guests can ask again and again (a loop on 0xcf9): rate-limited. */
    dm_guest_log_at(dm, FERRY_LOG_INFO, "guest requests %s code=%" PRIu32,
                    reason <= IOREQ_SHUTDOWN_CRASH ? names[reason] : "?", code);
    if (dm->ops && dm->ops->shutdown)
        rc = dm->ops->shutdown(dm->opaque, reason, code);
    if (rc < 0)
        dm_guest_log_at(dm, FERRY_LOG_ERROR, "cannot ask the hypervisor for %s: %s",
                        reason <= IOREQ_SHUTDOWN_CRASH ? names[reason] : "?", strerror(-rc));
    if (reason == IOREQ_SHUTDOWN_REBOOT)
        ferry_dm_reset(dm);
    else
        dm->status = FERRY_DM_SHUTDOWN;
}

void ferry_dm_reset(struct ferry_dm *dm)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->reset)
            dev->type->reset(dev->state);
    }
}

int ferry_dm_powerdown(struct ferry_dm *dm)
{
    int rc = -ENODEV;

    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->powerdown) {
            dev->type->powerdown(dev->state);
            rc = 0;
        }
    }
    return rc;
}

static const char *space_name(enum ferry_dm_space space)
{
    switch (space) {
    case FERRY_DM_SPACE_PORT: return "port";
    case FERRY_DM_SPACE_MMIO: return "mmio";
    case FERRY_DM_SPACE_PCI: return "pci";
    default: return "?";
    }
}

struct ferry_pci_bus *ferry_dm_pci_bus(struct ferry_dm *dm)
{
    return dm->pci_bus;
}

void ferry_dm_set_pci_bus(struct ferry_dm *dm, struct ferry_pci_bus *bus)
{
    dm->pci_bus = bus;
}

/* ------------------------------------------------------------------ */
/* Claims                                                              */

static int region_claim(struct ferry_dm_region *r)
{
    struct ferry_dm *dm = r->dev->dm;
    int rc = 0;

    if (dm->status != FERRY_DM_RUNNING || r->claimed || !r->mapped)
        return 0;
    if (dm->ops && dm->ops->claim)
        rc = dm->ops->claim(dm->opaque, (enum ioreq_range_type)r->space, r->base,
                            r->base + r->len - 1, r->flags);
    if (rc < 0) {
        ferry_dm_dev_log(r->dev, FERRY_LOG_ERROR,
                         "cannot claim %s 0x%" PRIx64 "-0x%" PRIx64 ": %s",
                         space_name(r->space), r->base,
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
        ferry_dm_dev_guest_log(r->dev, "%s 0x%" PRIx64 "+0x%" PRIx64 " overlaps %s[%s] at 0x%"
                               PRIx64, space_name(r->space), r->base, r->len,
                               o->dev->type->name, o->dev->id, o->base);
    }
    if (rc < 0)
        return rc;
    r->mapped = true;
    rc = region_claim(r);
    if (rc < 0) {
        ioreq_rangeset_remove(r->dev->dm->ranges[r->space], r->base, r->base + r->len - 1, r);
        r->mapped = false;
    }
    return rc;
}

int ferry_dm_region_add(struct ferry_dm_device *dev, enum ferry_dm_space space,
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

int ferry_dm_region_unmap(struct ferry_dm_region *r)
{
    if (!r->mapped)
        return 0;
    region_release(r);
    ioreq_rangeset_remove(r->dev->dm->ranges[r->space], r->base, r->base + r->len - 1, r);
    r->mapped = false;
    return 0;
}

int ferry_dm_region_map(struct ferry_dm_region *r)
{
    if (r->mapped)
        return 0;
    return region_insert(r);
}

int ferry_dm_region_move(struct ferry_dm_region *r, uint64_t new_base)
{
    if (!range_ok(r->space, new_base, r->len))
        return -EINVAL;
    if (r->mapped && r->base == new_base)
        return 0;
    ferry_dm_region_unmap(r);
    r->base = new_base;
    return region_insert(r);
}

void ferry_dm_region_del(struct ferry_dm_region *r)
{
    if (!r)
        return;
    ferry_dm_region_unmap(r);
    g_ptr_array_remove(r->dev->regions, r);
    free(r);
}

uint64_t ferry_dm_region_base(const struct ferry_dm_region *r)
{
    return r->base;
}

bool ferry_dm_region_mapped(const struct ferry_dm_region *r)
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
                     space_name(space), size, addr,
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

void ferry_dm_io(struct ferry_dm *dm, enum ferry_dm_space space, uint64_t addr,
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
            if (ferry_dm_dma_read(dm, gpa, &val, req->size) < 0)
                return;
            ferry_dm_io(dm, space, addr, req->size, true, &val);
        } else {
            ferry_dm_io(dm, space, addr, req->size, false, &val);
            if (ferry_dm_dma_write(dm, gpa, &val, req->size) < 0)
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

void ferry_dm_handle_ioreq(struct ferry_dm *dm, unsigned vcpu, ioreq_t *req)
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
        ferry_dm_io(dm, space, req->addr, req->size, req->dir == IOREQ_WRITE, &req->data);
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

/* ------------------------------------------------------------------ */
/* Interrupts                                                          */

static void dm_gsi_free(gpointer p)
{
    struct dm_gsi *g = p;
    struct ferry_dm *dm = g->dm;

    if (g->irqfd && dm->ops && dm->ops->irqfd)
        dm->ops->irqfd(dm->opaque, g->gsi, g->efd, g->resample_fd, false);
    if (g->line_high && dm->ops && dm->ops->irq_line)
        dm->ops->irq_line(dm->opaque, g->gsi, false);
    if (g->resample_ev)
        event_free(g->resample_ev);
    if (g->efd >= 0)
        close(g->efd);
    if (g->resample_fd >= 0)
        close(g->resample_fd);
    free(g);
}

static void kick(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void gsi_resample_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dm_gsi *g = arg;
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0)
        return;
    /* The guest acknowledged the interrupt: still asserted means again. */
    if (g->asserted) {
        g->count++;
        kick(g->efd);
    }
}

/* Try to deliver through an irqfd; on failure the line uses irq_line. */
static void gsi_connect(struct dm_gsi *g)
{
    struct ferry_dm *dm = g->dm;
    bool level = g->kind == FERRY_DM_IRQ_LEVEL;
    int rc;

    if (g->irqfd || dm->status != FERRY_DM_RUNNING || !dm->ops || !dm->ops->irqfd)
        return;
    if (g->efd < 0)
        g->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (level && g->resample_fd < 0)
        g->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->efd < 0 || (level && g->resample_fd < 0)) {
        dm_log(dm, FERRY_LOG_WARNING, "gsi %" PRIu32 ": eventfd: %s; using irq line calls",
               g->gsi, strerror(errno));
        return;
    }
    rc = dm->ops->irqfd(dm->opaque, g->gsi, g->efd, level ? g->resample_fd : -1, true);
    if (rc < 0) {
        dm_log(dm, FERRY_LOG_INFO, "gsi %" PRIu32 ": irqfd refused (%s); using irq line calls",
               g->gsi, strerror(-rc));
        return;
    }
    if (level && dm->base) {
        g->resample_ev = event_new(dm->base, g->resample_fd, EV_READ | EV_PERSIST,
                                   gsi_resample_cb, g);
        if (g->resample_ev)
            event_add(g->resample_ev, NULL);
    }
    g->irqfd = true;
    if (level && g->asserted)
        kick(g->efd);
}

static void gsi_deliver(struct dm_gsi *g, bool rising, bool line)
{
    struct ferry_dm *dm = g->dm;

    if (dm->status != FERRY_DM_RUNNING)
        return;
    if (g->irqfd) {
        if (rising) {
            g->count++;
            kick(g->efd);
        }
        return;
    }
    if (!dm->ops || !dm->ops->irq_line) {
        dm_guest_log(dm, "gsi %" PRIu32 ": no way to deliver interrupts", g->gsi);
        return;
    }
    if (g->kind == FERRY_DM_IRQ_EDGE) {
        if (rising) {
            g->count++;
            dm->ops->irq_line(dm->opaque, g->gsi, true);
            dm->ops->irq_line(dm->opaque, g->gsi, false);
        }
        return;
    }
    if (line != g->line_high) {
        g->line_high = line;
        if (line)
            g->count++;
        dm->ops->irq_line(dm->opaque, g->gsi, line);
    }
}

int ferry_dm_irq_add(struct ferry_dm_device *dev, uint32_t gsi, enum ferry_dm_irq_kind kind,
                     struct ferry_dm_irq **out)
{
    struct ferry_dm *dm = dev->dm;
    struct dm_gsi *g = g_hash_table_lookup(dm->gsis, GUINT_TO_POINTER(gsi));
    struct ferry_dm_irq *irq;

    if (kind != FERRY_DM_IRQ_EDGE && kind != FERRY_DM_IRQ_LEVEL)
        return -EINVAL;
    if (g && (g->kind != kind || kind == FERRY_DM_IRQ_EDGE)) {
        ferry_dm_dev_log(dev, FERRY_LOG_ERROR, "gsi %" PRIu32 " is already used%s", gsi,
                         kind == FERRY_DM_IRQ_EDGE ? " (edge lines are not shared)"
                                                   : " as an edge line");
        return -EBUSY;
    }
    irq = calloc(1, sizeof(*irq));
    if (!irq)
        return -ENOMEM;
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g) {
            free(irq);
            return -ENOMEM;
        }
        *g = (struct dm_gsi){ .dm = dm, .gsi = gsi, .kind = kind, .efd = -1,
                              .resample_fd = -1 };
        g_hash_table_insert(dm->gsis, GUINT_TO_POINTER(gsi), g);
        gsi_connect(g);
    }
    g->users++;
    irq->dev = dev;
    irq->line = g;
    g_ptr_array_add(dev->irqs, irq);
    *out = irq;
    return 0;
}

void ferry_dm_irq_set(struct ferry_dm_irq *irq, bool level)
{
    struct dm_gsi *g = irq->line;
    bool rising = level && !irq->level;

    if (level == irq->level)
        return;
    irq->level = level;
    if (level)
        irq->count++;
    if (g->kind == FERRY_DM_IRQ_EDGE) {
        gsi_deliver(g, rising, level);
        return;
    }
    g->asserted += level ? 1 : -1;
    gsi_deliver(g, level && g->asserted == 1, g->asserted > 0);
}

bool ferry_dm_irq_level(const struct ferry_dm_irq *irq)
{
    return irq->level;
}

uint32_t ferry_dm_irq_gsi(const struct ferry_dm_irq *irq)
{
    return irq->line->gsi;
}

uint64_t ferry_dm_irq_count(const struct ferry_dm_irq *irq)
{
    return irq->count;
}

static void irq_free(struct ferry_dm_irq *irq)
{
    struct dm_gsi *g = irq->line;

    ferry_dm_irq_set(irq, false);
    if (--g->users == 0)
        g_hash_table_remove(g->dm->gsis, GUINT_TO_POINTER(g->gsi));
    free(irq);
}

/* ------------------------------------------------------------------ */
/* Start                                                               */

static void device_start(struct ferry_dm_device *dev)
{
    int rc;

    if (!dev->type->start)
        return;
    rc = dev->type->start(dev->state);
    if (rc < 0)
        ferry_dm_dev_log(dev, FERRY_LOG_ERROR, "cannot start: %s", strerror(-rc));
}

int ferry_dm_start(struct ferry_dm *dm)
{
    GHashTableIter it;
    gpointer v;

    if (dm->status != FERRY_DM_CREATED)
        return -EALREADY;
    dm->status = FERRY_DM_RUNNING;
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        for (guint j = 0; j < dev->regions->len; j++) {
            int rc = region_claim(g_ptr_array_index(dev->regions, j));

            if (rc < 0)
                return rc;
        }
    }
    g_hash_table_iter_init(&it, dm->gsis);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct dm_gsi *g = v;

        gsi_connect(g);
        if (!g->irqfd && g->kind == FERRY_DM_IRQ_LEVEL)
            gsi_deliver(g, false, g->asserted > 0);
    }
    for (guint i = 0; i < dm->devices->len; i++)
        device_start(g_ptr_array_index(dm->devices, i));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= FERRY_DM_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.')
            return false;
    return true;
}

static void device_free(struct ferry_dm_device *dev)
{
    /* Unplug and stop decoding first, then let the device free its state. */
    while (dev->pcis->len) {
        struct ferry_dm_pci *p = g_ptr_array_index(dev->pcis, dev->pcis->len - 1);

        g_ptr_array_remove_index(dev->pcis, dev->pcis->len - 1);
        ferry_dm_pci_destroy(p);
    }
    for (unsigned i = 0; i < 256; i++)
        if (dev->dm->pci_ext[i].dev == dev)
            dev->dm->pci_ext[i] = (struct dm_pci_ext){ 0 };
    while (dev->regions->len)
        ferry_dm_region_del(g_ptr_array_index(dev->regions, dev->regions->len - 1));
    if (dev->state && dev->type->exit)
        dev->type->exit(dev->state);
    while (dev->irqs->len) {
        struct ferry_dm_irq *irq = g_ptr_array_index(dev->irqs, dev->irqs->len - 1);

        g_ptr_array_remove_index(dev->irqs, dev->irqs->len - 1);
        irq_free(irq);
    }
    g_ptr_array_free(dev->regions, TRUE);
    g_ptr_array_free(dev->irqs, TRUE);
    g_ptr_array_free(dev->pcis, TRUE);
    free(dev);
}

int ferry_dm_device_add(struct ferry_dm *dm, const char *type_name, const char *id,
                        const struct ferry_dm_opts *opts, struct ferry_dm_device **out)
{
    const struct ferry_dm_device_type *type = ferry_dm_device_type_find(type_name);
    struct ferry_dm_device *dev;
    char auto_id[FERRY_DM_ID_MAX];
    int rc;

    if (!type) {
        dm_log(dm, FERRY_LOG_ERROR, "no device type '%s'", type_name);
        return -ENOENT;
    }
    if (dm->status != FERRY_DM_CREATED && !type->hotplug) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: cannot add at run time: no hotplug", type_name);
        return -EBUSY;
    }
    if (dm->confined && type->syscalls && type->syscalls->n) {
        bool in = false;

        for (size_t i = 0; i < dm->nr_lists && !in; i++)
            in = dm->lists[i] == type->syscalls;
        if (!in) {
            dm_log(dm, FERRY_LOG_ERROR, "%s: cannot add to a confined ferry-dm: its seccomp "
                   "filter has no '%s' list (configure such a device at start-up, or run "
                   "ferry-dm with --seccomp=off)", type_name, type->syscalls->name);
            return -EPERM;
        }
    }
    if (dm->devices->len >= FERRY_DM_DEVICES_MAX)
        return -ENOSPC;
    if (!id) {
        do {
            snprintf(auto_id, sizeof(auto_id), "%.20s%u", type->name, dm->next_auto_id++);
        } while (ferry_dm_device_find(dm, auto_id));
        id = auto_id;
    }
    if (!id_ok(id)) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: bad device id '%.40s': use 1-%d of [A-Za-z0-9._-]",
               type_name, id, FERRY_DM_ID_MAX - 1);
        return -EINVAL;
    }
    if (ferry_dm_device_find(dm, id)) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: device id '%s' is taken", type_name, id);
        return -EEXIST;
    }
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    dev->dm = dm;
    dev->type = type;
    snprintf(dev->id, sizeof(dev->id), "%s", id);
    dev->regions = g_ptr_array_new();
    dev->irqs = g_ptr_array_new();
    dev->pcis = g_ptr_array_new();
    dev->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    rc = type->init(dev, opts, &dev->state);
    if (rc < 0) {
        dm_log(dm, FERRY_LOG_ERROR, "%s[%s]: cannot create: %s", type->name, dev->id,
               strerror(-rc));
        dev->state = NULL;      /* init unwound its own state */
        device_free(dev);
        return rc;
    }
    if (type->reset)
        type->reset(dev->state);
    g_ptr_array_add(dm->devices, dev);
    if (dm->status == FERRY_DM_RUNNING)
        device_start(dev);
    if (out)
        *out = dev;
    return 0;
}

void ferry_dm_set_sandbox(struct ferry_dm *dm, const struct ferry_sandbox_config *sbx)
{
    dm->sandbox = sbx;
}

const struct ferry_sandbox_config *ferry_dm_sandbox(const struct ferry_dm *dm)
{
    return dm->sandbox;
}

void ferry_dm_set_confined(struct ferry_dm *dm, const struct ferry_syscall_list *const *lists,
                           size_t n)
{
    dm->confined = true;
    dm->nr_lists = 0;
    for (size_t i = 0; i < n && dm->nr_lists < G_N_ELEMENTS(dm->lists); i++)
        dm->lists[dm->nr_lists++] = lists[i];
}

bool ferry_dm_confined(const struct ferry_dm *dm)
{
    return dm->confined;
}

int ferry_dm_device_remove(struct ferry_dm *dm, const char *id)
{
    struct ferry_dm_device *dev = ferry_dm_device_find(dm, id);

    if (!dev)
        return -ENOENT;
    if (dm->status != FERRY_DM_CREATED && !dev->type->hotplug)
        return -EBUSY;
    g_ptr_array_remove(dm->devices, dev);
    device_free(dev);
    return 0;
}

struct ferry_dm_device *ferry_dm_device_find(struct ferry_dm *dm, const char *id)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (strcmp(dev->id, id) == 0)
            return dev;
    }
    return NULL;
}

size_t ferry_dm_device_count(const struct ferry_dm *dm)
{
    return dm->devices->len;
}

bool ferry_dm_pci_devfn_taken(struct ferry_dm *dm, unsigned devfn)
{
    if (devfn > 0xff)
        return true;
    if (dm->pci_ext[devfn].ops)
        return true;
    return dm->pci_bus && ferry_dm_pci_bus_has(dm->pci_bus, devfn);
}

int ferry_dm_pci_ext_add(struct ferry_dm_device *dev, int devfn,
                         const struct ferry_dm_pci_ext_ops *ops, void *opaque)
{
    struct ferry_dm *dm = dev->dm;

    if (!ops || !ops->read || !ops->write || devfn > 0xff)
        return -EINVAL;
    if (!dm->pci_bus) {
        ferry_dm_dev_log(dev, FERRY_LOG_ERROR, "no PCI bus: add a pci-host device first");
        return -ENODEV;
    }
    if (devfn < 0) {
        for (unsigned d = 1; d < 32 && devfn < 0; d++)
            if (!ferry_dm_pci_devfn_taken(dm, d << 3))
                devfn = (int)(d << 3);
        if (devfn < 0)
            return -ENOSPC;
    }
    if (devfn == 0 || ferry_dm_pci_devfn_taken(dm, (unsigned)devfn))
        return -EBUSY;
    dm->pci_ext[devfn] = (struct dm_pci_ext){ .dev = dev, .ops = ops, .opaque = opaque };
    return devfn;
}

void ferry_dm_device_track_pci(struct ferry_dm_device *dev, struct ferry_dm_pci *p)
{
    g_ptr_array_add(dev->pcis, p);
}

struct ferry_dm *ferry_dm_device_dm(struct ferry_dm_device *dev)
{
    return dev->dm;
}

const char *ferry_dm_device_id(const struct ferry_dm_device *dev)
{
    return dev->id;
}

const struct ferry_dm_device_type *ferry_dm_device_get_type(const struct ferry_dm_device *dev)
{
    return dev->type;
}

void *ferry_dm_device_state(struct ferry_dm_device *dev)
{
    return dev->state;
}

/* ------------------------------------------------------------------ */
/* Save / restore: records of u8 idlen, id, u32 len (LE), bytes         */

int ferry_dm_save(struct ferry_dm *dm, GByteArray *out)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);
        GByteArray *one;
        uint8_t idlen = (uint8_t)strlen(dev->id);
        uint32_t len;
        int rc;

        if (!dev->type->save)
            continue;
        one = g_byte_array_new();
        rc = dev->type->save(dev->state, one);
        if (rc < 0 || one->len > FERRY_DM_SAVE_MAX) {
            g_byte_array_free(one, TRUE);
            return rc < 0 ? rc : -E2BIG;
        }
        len = GUINT32_TO_LE(one->len);
        g_byte_array_append(out, &idlen, 1);
        g_byte_array_append(out, (const guint8 *)dev->id, idlen);
        g_byte_array_append(out, (const guint8 *)&len, 4);
        g_byte_array_append(out, one->data, one->len);
        g_byte_array_free(one, TRUE);
    }
    return 0;
}

int ferry_dm_restore(struct ferry_dm *dm, const uint8_t *buf, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        char id[FERRY_DM_ID_MAX];
        uint8_t idlen = buf[pos++];
        uint32_t len;
        struct ferry_dm_device *dev;
        int rc;

        if (idlen == 0 || idlen >= FERRY_DM_ID_MAX || n - pos < (size_t)idlen + 4)
            return -EBADMSG;
        memcpy(id, buf + pos, idlen);
        id[idlen] = 0;
        pos += idlen;
        memcpy(&len, buf + pos, 4);
        len = GUINT32_FROM_LE(len);
        pos += 4;
        if (len > n - pos)
            return -EBADMSG;
        dev = ferry_dm_device_find(dm, id);
        if (!dev || !dev->type->restore) {
            dm_log(dm, FERRY_LOG_ERROR, "restore: no device '%s' to take its state", id);
            return -ENOENT;
        }
        rc = dev->type->restore(dev->state, buf + pos, len);
        if (rc < 0) {
            ferry_dm_dev_log(dev, FERRY_LOG_ERROR, "restore: %s", strerror(-rc));
            return rc;
        }
        pos += len;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Query                                                               */

void ferry_dm_query_devices(struct ferry_dm *dm, JsonBuilder *b)
{
    json_builder_begin_array(b);
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, dev->id);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, dev->type->name);
        json_builder_set_member_name(b, "hotplug");
        json_builder_add_boolean_value(b, dev->type->hotplug);
        json_builder_set_member_name(b, "regions");
        json_builder_begin_array(b);
        for (guint j = 0; j < dev->regions->len; j++) {
            struct ferry_dm_region *r = g_ptr_array_index(dev->regions, j);

            json_builder_begin_object(b);
            json_builder_set_member_name(b, "space");
            json_builder_add_string_value(b, space_name(r->space));
            json_builder_set_member_name(b, "base");
            json_builder_add_int_value(b, (gint64)r->base);
            json_builder_set_member_name(b, "size");
            json_builder_add_int_value(b, (gint64)r->len);
            json_builder_set_member_name(b, "mapped");
            json_builder_add_boolean_value(b, r->mapped);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "irqs");
        json_builder_begin_array(b);
        for (guint j = 0; j < dev->irqs->len; j++) {
            struct ferry_dm_irq *irq = g_ptr_array_index(dev->irqs, j);

            json_builder_begin_object(b);
            json_builder_set_member_name(b, "gsi");
            json_builder_add_int_value(b, irq->line->gsi);
            json_builder_set_member_name(b, "kind");
            json_builder_add_string_value(b, irq->line->kind == FERRY_DM_IRQ_EDGE ? "edge"
                                                                                  : "level");
            json_builder_set_member_name(b, "delivery");
            json_builder_add_string_value(b, irq->line->irqfd ? "irqfd" : "line");
            json_builder_set_member_name(b, "level");
            json_builder_add_boolean_value(b, irq->level);
            json_builder_set_member_name(b, "count");
            json_builder_add_int_value(b, (gint64)irq->count);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        if (dev->type->query)
            dev->type->query(dev->state, b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */

int ferry_dm_set_guest_memory(struct ferry_dm *dm, int memfd,
                              const struct ioreq_msg_memory_reply *regions)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned n = regions->nr_regions;

    if (dm->nr_mem)
        return -EALREADY;
    if (n == 0 || n > IOREQ_MEMORY_MAX_REGIONS)
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const __typeof__(regions->region[0]) *rg = &regions->region[i];

        if (rg->size == 0 || rg->gpa > UINT64_MAX - (rg->size - 1) ||
            rg->offset % (uint64_t)page || rg->size > (uint64_t)SIZE_MAX ||
            rg->offset > (uint64_t)INT64_MAX - rg->size)
            goto bad;
    }
    for (unsigned i = 0; i < n; i++) {
        void *p = mmap(NULL, regions->region[i].size, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_NORESERVE, memfd, (off_t)regions->region[i].offset);

        if (p == MAP_FAILED) {
            int err = errno;

            dm_log(dm, FERRY_LOG_ERROR, "cannot map guest ram 0x%" PRIx64 "+0x%" PRIx64 ": %s",
                   regions->region[i].gpa, regions->region[i].size, strerror(err));
            while (dm->nr_mem)
                munmap(dm->mem[dm->nr_mem - 1].hva, dm->mem[dm->nr_mem - 1].size),
                    dm->nr_mem--;
            return -err;
        }
        dm->mem[i] = (struct dm_memory){ .gpa = regions->region[i].gpa,
                                         .size = regions->region[i].size, .hva = p };
        dm->nr_mem++;
    }
    dm->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
    dm->mem_table = *regions;
    return 0;
bad:
    dm_log(dm, FERRY_LOG_ERROR, "guest memory table from the hypervisor is malformed");
    return -EINVAL;
}

int ferry_dm_guest_memory_fd(struct ferry_dm *dm, struct ioreq_msg_memory_reply *regions)
{
    if (!dm->nr_mem || dm->memfd < 0)
        return -ENODEV;
    *regions = dm->mem_table;
    return dm->memfd;
}

int ferry_dm_gsi_set_level(struct ferry_dm *dm, uint32_t gsi, bool level)
{
    int rc;

    if (dm->status != FERRY_DM_RUNNING)
        return -ENOTCONN;
    if (!dm->ops || !dm->ops->irq_line)
        return -ENOSYS;
    rc = dm->ops->irq_line(dm->opaque, gsi, level);
    if (rc < 0)         /* the guest asked for it: rate-limited */
        dm_guest_log(dm, "gsi %" PRIu32 ": cannot set level %d: %s", gsi, level, strerror(-rc));
    return rc;
}

int ferry_dm_irqfd_assign(struct ferry_dm *dm, uint32_t gsi, int fd, int resample_fd,
                          bool assign)
{
    if (dm->status != FERRY_DM_RUNNING)
        return -ENOTCONN;
    if (!dm->ops || !dm->ops->irqfd)
        return -ENOSYS;
    return dm->ops->irqfd(dm->opaque, gsi, fd, resample_fd, assign);
}

static uint8_t *dma_ptr(struct ferry_dm *dm, uint64_t gpa, size_t len)
{
    if (len == 0)
        return NULL;
    for (unsigned i = 0; i < dm->nr_mem; i++) {
        struct dm_memory *m = &dm->mem[i];

        if (gpa >= m->gpa && gpa - m->gpa < m->size && len <= m->size - (gpa - m->gpa))
            return m->hva + (gpa - m->gpa);
    }
    return NULL;
}

int ferry_dm_dma_read(struct ferry_dm *dm, uint64_t gpa, void *buf, size_t len)
{
    uint8_t *p;

    if (!dm->nr_mem)
        return -ENODEV;
    p = dma_ptr(dm, gpa, len);
    if (!p) {
        dm_guest_log(dm, "dma read 0x%" PRIx64 "+0x%zx outside guest ram", gpa, len);
        return -EFAULT;
    }
    memcpy(buf, p, len);
    return 0;
}

int ferry_dm_dma_write(struct ferry_dm *dm, uint64_t gpa, const void *buf, size_t len)
{
    uint8_t *p;

    if (!dm->nr_mem)
        return -ENODEV;
    p = dma_ptr(dm, gpa, len);
    if (!p) {
        dm_guest_log(dm, "dma write 0x%" PRIx64 "+0x%zx outside guest ram", gpa, len);
        return -EFAULT;
    }
    memcpy(p, buf, len);
    return 0;
}
