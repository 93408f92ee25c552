// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fw-cfg: QEMU's firmware configuration interface (docs/specs/fw_cfg.txt),
 * the x86 I/O port flavour, for kvm-unit-tests and, later, firmware
 * (SeaBIOS, OVMF).  Off by default: --device fw-cfg.
 *
 *   port 0x510 (16-bit write)  selector: a key; the item's read offset goes
 *                              back to 0.  Keys are 14 bits (bit 14, QEMU's
 *                              write channel, is ignored) plus bit 15 for the
 *                              x86-specific items; a key >= 0x40 (past the
 *                              file slots) selects nothing.
 *   port 0x511 (8-bit read)    the next byte of the selected item; 0 past its
 *                              end or with no/an empty item selected.  Byte
 *                              reads of 0x510 do the same; byte writes of
 *                              either port are ignored (QEMU >= 2.4).
 *   port 0x514..0x51b (DMA)    a 32-bit write at +0 latches the high half of
 *                              a guest-physical address, a 32-bit write at +4
 *                              the low half and starts the transfer; both
 *                              big-endian (the guest writes cpu_to_be32()).
 *                              Reads give the signature "QEMU CFG".
 *
 * A DMA transfer reads the 16-byte FWCfgDmaAccess at that address (be32
 * control, be32 length, be64 address), selects the key in control's upper
 * half if bit 3 (select) is set, then reads (bit 1: items into guest RAM,
 * 0 bytes past the item's end), skips (bit 2) or writes (bit 4: an error,
 * no item here is writable), and stores control back: 0 when done, 1
 * (error) when a guest address was not RAM or a write was asked.  Every
 * guest address and length goes through ferry-dm's DMA helpers, which
 * refuse anything not wholly inside guest RAM; the transfer stops at the
 * first error, as QEMU's.
 *
 * Items: SIGNATURE (0x00) "QEMU"; ID (0x01) le32 3 (traditional interface
 * and DMA); RAM_SIZE (0x03) le64; NB_CPUS (0x05) and MAX_CPUS (0x0f) le16;
 * FILE_DIR (0x19): be32 count, then per file be32 size, be16 key, be16 0,
 * char name[56], sorted by name, keys from 0x20 in the same order.  Files:
 * etc/e820, the guest's memory map as ferry-hv gives it (hypervisor/memmap.h
 * applied to the RAM regions ferry-dm got at registration), packed entries
 * of le64 address, le64 length, le32 type (1 RAM, 2 reserved, 3 ACPI).
 * More files come through fw_cfg_add_file() (sorted in, keys renumbered, as
 * QEMU does), e.g. etc/acpi/tables or bootorder for firmware.
 *
 * RAM size and map come from the guest RAM ferry-dm maps (no RAM: the
 * device refuses to start); the vCPU count from the ioreq registration.
 * Syscalls: none beyond the base list.  Options: cpus=N (the vCPU count
 * reported, default: the guest's); name=opt/...,string=TEXT adds one file
 * item holding TEXT (no NUL), as QEMU's -fw_cfg name=,string= (names of
 * user items must start with "opt/", QEMU's rule, at most 55 bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/dm.h"
#include "hypervisor/memmap.h"

#define FW_CFG_CTL_PORT     0x510
#define FW_CFG_DMA_PORT     0x514
#define FW_CFG_SIGNATURE    0x00
#define FW_CFG_ID           0x01
#define FW_CFG_RAM_SIZE     0x03
#define FW_CFG_NB_CPUS      0x05
#define FW_CFG_MAX_CPUS     0x0f
#define FW_CFG_FILE_DIR     0x19
#define FW_CFG_FILE_FIRST   0x20
#define FW_CFG_FILE_SLOTS   0x20
#define FW_CFG_MAX_ENTRY    (FW_CFG_FILE_FIRST + FW_CFG_FILE_SLOTS)
#define FW_CFG_ARCH_LOCAL   0x8000
#define FW_CFG_ENTRY_MASK   0x3fff
#define FW_CFG_INVALID      0xffff
#define FW_CFG_NAME_MAX     56          /* NUL included */
#define FW_CFG_ITEM_MAX     (16u << 20) /* one item's bytes */
#define FW_CFG_ID_TRAD      0x1
#define FW_CFG_ID_DMA       0x2
#define FW_CFG_DMA_ERROR    0x01
#define FW_CFG_DMA_READ     0x02
#define FW_CFG_DMA_SKIP     0x04
#define FW_CFG_DMA_SELECT   0x08
#define FW_CFG_DMA_WRITE    0x10
#define FW_CFG_DMA_SIG      "QEMU CFG"
#define FW_CFG_CPUS_MAX     1024
#define E820_RAM            1
#define E820_RESERVED       2
#define E820_ACPI           3
#define E820_MAX            32
#define E820_ENTRY_SIZE     20

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
};

struct fw_cfg_file {
    char name[FW_CFG_NAME_MAX];
    struct fw_cfg_item item;
};

struct fw_cfg {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    struct fw_cfg_item items[2][FW_CFG_MAX_ENTRY];  /* [arch-local][key] */
    struct fw_cfg_file files[FW_CFG_FILE_SLOTS];     /* sorted by name */
    unsigned nr_files;
    uint16_t cur_key;           /* FW_CFG_INVALID: none */
    uint32_t cur_offset;
    uint64_t dma_addr;          /* high half latched by a write at +0 */
    uint64_t dma_transfers, dma_errors;
};

struct e820_entry {
    uint64_t addr, len;
    uint32_t type;
};

/* ------------------------------------------------------------------ */
/* Items and the file directory                                        */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Takes a copy of data; the item's old bytes go. */
static int item_set(struct fw_cfg_item *it, const void *data, size_t len)
{
    uint8_t *copy = NULL;

    if (len > FW_CFG_ITEM_MAX)
        return -EFBIG;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, data, len);
    }
    free(it->data);
    it->data = copy;
    it->len = (uint32_t)len;
    return 0;
}

static int item_set_le(struct fw_cfg *s, uint16_t key, uint64_t v, unsigned n)
{
    uint8_t b[8];

    put_le(b, v, n);
    return item_set(&s->items[0][key], b, n);
}

/* FILE_DIR and the file keys from the sorted file list. */
static int dir_rebuild(struct fw_cfg *s)
{
    size_t len = 4 + (size_t)s->nr_files * (8 + FW_CFG_NAME_MAX);
    uint8_t *dir = calloc(1, len);
    int rc;

    if (!dir)
        return -ENOMEM;
    put_be(dir, s->nr_files, 4);
    for (unsigned i = 0; i < s->nr_files; i++) {
        uint8_t *e = dir + 4 + (size_t)i * (8 + FW_CFG_NAME_MAX);

        put_be(e, s->files[i].item.len, 4);
        put_be(e + 4, FW_CFG_FILE_FIRST + i, 2);
        memcpy(e + 8, s->files[i].name, strlen(s->files[i].name));
        /* The key's item shares the file's bytes (owned by files[]). */
        s->items[0][FW_CFG_FILE_FIRST + i] = s->files[i].item;
    }
    for (unsigned i = s->nr_files; i < FW_CFG_FILE_SLOTS; i++)
        s->items[0][FW_CFG_FILE_FIRST + i] = (struct fw_cfg_item){ 0 };
    rc = item_set(&s->items[0][FW_CFG_FILE_DIR], dir, len);
    free(dir);
    return rc;
}

/*
 * Add a file item (a copy of data), sorted into the directory by name:
 * -EINVAL for an empty or too long name, -EEXIST if present, -ENOSPC when
 * the slots are taken, -EFBIG past FW_CFG_ITEM_MAX.
 */
static int fw_cfg_add_file(struct fw_cfg *s, const char *name, const void *data, size_t len)
{
    struct fw_cfg_file f = { 0 };
    unsigned pos = 0;
    int rc;

    if (!name[0] || strlen(name) >= FW_CFG_NAME_MAX)
        return -EINVAL;
    if (s->nr_files == FW_CFG_FILE_SLOTS)
        return -ENOSPC;
    while (pos < s->nr_files && strcmp(s->files[pos].name, name) < 0)
        pos++;
    if (pos < s->nr_files && strcmp(s->files[pos].name, name) == 0)
        return -EEXIST;
    rc = item_set(&f.item, data, len);
    if (rc < 0)
        return rc;
    memcpy(f.name, name, strlen(name) + 1);
    memmove(&s->files[pos + 1], &s->files[pos], (s->nr_files - pos) * sizeof(f));
    s->files[pos] = f;
    s->nr_files++;
    return dir_rebuild(s);
}

/* ------------------------------------------------------------------ */
/* The guest's memory map                                              */

static void e820_add(struct e820_entry *e, unsigned *n, uint64_t addr, uint64_t end,
                     uint32_t type)
{
    if (end > addr && *n < E820_MAX)
        e[(*n)++] = (struct e820_entry){ addr, end - addr, type };
}

static int e820_cmp(const void *a, const void *b)
{
    const struct e820_entry *x = a, *y = b;

    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * ferry-hv's map (hypervisor/memmap.h, as its hv_e820_build lays it out)
 * from the RAM regions: each region is RAM except the BIOS area
 * 0xc0000-0xfffff (reserved, ACPI tables at 0xe0000, reserved), plus the
 * ECAM window and KVM's identity map/TSS pages, reserved.
 */
static unsigned e820_build(const struct ioreq_msg_memory_reply *mt, struct e820_entry *e)
{
    static const struct { uint64_t start, end; uint32_t type; } bios[] = {
        { HV_VGA_HOLE_END, HV_ACPI_BASE, E820_RESERVED },
        { HV_ACPI_BASE, HV_ACPI_BASE + HV_ACPI_SIZE, E820_ACPI },
        { HV_ACPI_BASE + HV_ACPI_SIZE, HV_BIOS_END, E820_RESERVED },
    };
    unsigned n = 0;

    for (uint32_t r = 0; r < mt->nr_regions && r < IOREQ_MEMORY_MAX_REGIONS; r++) {
        uint64_t a = mt->region[r].gpa, end = a + mt->region[r].size;

        if (end <= HV_VGA_HOLE_END || a >= HV_BIOS_END) {
            e820_add(e, &n, a, end, E820_RAM);
            continue;
        }
        e820_add(e, &n, a, HV_VGA_HOLE_END, E820_RAM);
        for (unsigned i = 0; i < sizeof(bios) / sizeof(bios[0]); i++)
            e820_add(e, &n, a > bios[i].start ? a : bios[i].start,
                     end < bios[i].end ? end : bios[i].end, bios[i].type);
        e820_add(e, &n, HV_BIOS_END, end, E820_RAM);
    }
    e820_add(e, &n, HV_ECAM_BASE, HV_ECAM_BASE + HV_ECAM_SIZE, E820_RESERVED);
    e820_add(e, &n, HV_IDENTITY_MAP_ADDR, HV_IDENTITY_MAP_ADDR + 0x4000, E820_RESERVED);
    qsort(e, n, sizeof(*e), e820_cmp);
    return n;
}

/* The standard items and etc/e820. */
static int items_build(struct fw_cfg *s, unsigned cpus)
{
    struct ioreq_msg_memory_reply mt;
    struct e820_entry e[E820_MAX];
    uint8_t blob[E820_MAX * E820_ENTRY_SIZE];
    uint64_t ram = 0;
    unsigned n;
    int rc;

    if (dm_guest_memory_fd(s->dm, &mt) < 0) {
        dm_dev_log(s->dev, FERRY_LOG_ERROR,
                         "no guest RAM: fw-cfg needs the memory map and DMA (ferry-dm got no "
                         "memory from the hypervisor)");
        return -ENODEV;
    }
    /* Guest RAM is the memfd: its size is where the last region ends in it. */
    for (uint32_t r = 0; r < mt.nr_regions && r < IOREQ_MEMORY_MAX_REGIONS; r++)
        if (mt.region[r].offset + mt.region[r].size > ram)
            ram = mt.region[r].offset + mt.region[r].size;
    n = e820_build(&mt, e);
    for (unsigned i = 0; i < n; i++) {
        put_le(blob + i * E820_ENTRY_SIZE, e[i].addr, 8);
        put_le(blob + i * E820_ENTRY_SIZE + 8, e[i].len, 8);
        put_le(blob + i * E820_ENTRY_SIZE + 16, e[i].type, 4);
    }
    if ((rc = item_set(&s->items[0][FW_CFG_SIGNATURE], "QEMU", 4)) < 0 ||
        (rc = item_set_le(s, FW_CFG_ID, FW_CFG_ID_TRAD | FW_CFG_ID_DMA, 4)) < 0 ||
        (rc = item_set_le(s, FW_CFG_RAM_SIZE, ram, 8)) < 0 ||
        (rc = item_set_le(s, FW_CFG_NB_CPUS, cpus, 2)) < 0 ||
        (rc = item_set_le(s, FW_CFG_MAX_CPUS, cpus, 2)) < 0 ||
        (rc = dir_rebuild(s)) < 0 ||
        (rc = fw_cfg_add_file(s, "etc/e820", blob, (size_t)n * E820_ENTRY_SIZE)) < 0)
        return rc;
    return 0;
}

static void items_free(struct fw_cfg *s)
{
    for (unsigned i = 0; i < s->nr_files; i++)
        free(s->files[i].item.data);
    for (unsigned a = 0; a < 2; a++)
        for (unsigned k = 0; k < FW_CFG_MAX_ENTRY; k++)
            if (a || k < FW_CFG_FILE_FIRST)     /* file keys share files[]'s bytes */
                free(s->items[a][k].data);
}

/* ------------------------------------------------------------------ */
/* The traditional interface                                           */

static void fw_cfg_select(struct fw_cfg *s, uint16_t key)
{
    s->cur_offset = 0;
    s->cur_key = (key & FW_CFG_ENTRY_MASK) < FW_CFG_MAX_ENTRY ? key : FW_CFG_INVALID;
}

static const struct fw_cfg_item *cur_item(const struct fw_cfg *s)
{
    if (s->cur_key == FW_CFG_INVALID)
        return NULL;
    return &s->items[!!(s->cur_key & FW_CFG_ARCH_LOCAL)][s->cur_key & FW_CFG_ENTRY_MASK];
}

static uint64_t ctl_read(void *opaque, uint64_t off, unsigned size)
{
    struct fw_cfg *s = opaque;
    const struct fw_cfg_item *it = cur_item(s);

    (void)off;
    if (size != 1)
        return 0;       /* only byte reads are valid: QEMU reads 0 */
    if (!it || !it->data || s->cur_offset >= it->len)
        return 0;
    return it->data[s->cur_offset++];
}

static void ctl_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    if (off == 0 && size == 2)
        fw_cfg_select(opaque, (uint16_t)val);
}

/* ------------------------------------------------------------------ */
/* DMA                                                                 */

static int dma_zero(struct ferry_dm *dm, uint64_t gpa, uint64_t len)
{
    static const uint8_t zero[4096];

    while (len) {
        size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);

        if (dm_dma_write(dm, gpa, zero, n) < 0)
            return -EFAULT;
        gpa += n;
        len -= n;
    }
    return 0;
}

static void dma_transfer(struct fw_cfg *s)
{
    uint64_t desc = s->dma_addr, addr;
    uint8_t d[16], st[4];
    uint32_t control, len, out = 0;
    const struct fw_cfg_item *it;
    bool rd = false, wr = false;

    s->dma_addr = 0;
    s->dma_transfers++;
    if (dm_dma_read(s->dm, desc, d, sizeof(d)) < 0) {
        out = FW_CFG_DMA_ERROR;
        goto done;
    }
    control = (uint32_t)get_be(d, 4);
    len = (uint32_t)get_be(d + 4, 4);
    addr = get_be(d + 8, 8);
    if (control & FW_CFG_DMA_SELECT)
        fw_cfg_select(s, (uint16_t)(control >> 16));
    it = cur_item(s);
    if (control & FW_CFG_DMA_READ)
        rd = true;
    else if (control & FW_CFG_DMA_WRITE)
        wr = true;
    else if (!(control & FW_CFG_DMA_SKIP))
        len = 0;
    while (len && !(out & FW_CFG_DMA_ERROR)) {
        uint32_t n;

        if (addr + len < addr) {            /* wraps: nothing of it is RAM */
            out |= FW_CFG_DMA_ERROR;
            break;
        }
        if (!it || !it->data || s->cur_offset >= it->len) {
            n = len;                        /* past the end: zeroes */
            if ((rd && dma_zero(s->dm, addr, n) < 0) || wr)
                out |= FW_CFG_DMA_ERROR;
        } else {
            n = it->len - s->cur_offset < len ? it->len - s->cur_offset : len;
            if ((rd && dm_dma_write(s->dm, addr, it->data + s->cur_offset, n) < 0) ||
                wr)                         /* no item is writable */
                out |= FW_CFG_DMA_ERROR;
            s->cur_offset += n;
        }
        addr += n;
        len -= n;
    }
done:
    if (out & FW_CFG_DMA_ERROR) {
        s->dma_errors++;
        dm_dev_guest_log(s->dev, "dma at 0x%" PRIx64 ": error (a guest address outside "
                               "RAM, or a write)", desc);
    }
    put_be(st, out, 4);
    /* control: done, or the error bit (nowhere to say so if desc is not RAM) */
    if (dm_dma_write(s->dm, desc, st, 4) < 0 && !(out & FW_CFG_DMA_ERROR))
        s->dma_errors++;
}

static uint64_t dma_read(void *opaque, uint64_t off, unsigned size)
{
    uint64_t v = 0;

    (void)opaque;
    for (unsigned i = 0; i < size && off + i < 8; i++)
        v |= (uint64_t)(uint8_t)FW_CFG_DMA_SIG[off + i] << (8 * i);
    return v;
}

static void dma_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct fw_cfg *s = opaque;

    if (size == 4 && off == 0) {
        s->dma_addr = (uint64_t)__builtin_bswap32((uint32_t)val) << 32;
    } else if (size == 4 && off == 4) {
        s->dma_addr |= __builtin_bswap32((uint32_t)val);
        dma_transfer(s);
    } else if (size == 8 && off == 0) {
        s->dma_addr = __builtin_bswap64(val);
        dma_transfer(s);
    }
}

static const struct ferry_dm_region_ops ctl_ops = { .read = ctl_read, .write = ctl_write,
                                                    .max_size = 2 };
static const struct ferry_dm_region_ops dma_ops = { .read = dma_read, .write = dma_write,
                                                    .max_size = 8 };

/* ------------------------------------------------------------------ */
/* The device                                                          */

static int fwc_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts, void **state)
{
    static const char *const known[] = { "cpus", "name", "string", NULL };
    const char *name = dm_opts_get(opts, "name");
    const char *str = dm_opts_get(opts, "string");
    struct fw_cfg *s;
    uint64_t cpus;
    int rc;

    if (dm_opts_check(opts, known, NULL) < 0 ||
        dm_opts_get_u64(opts, "cpus", dm_nr_vcpus(dm_device_dm(dev)),
                              FW_CFG_CPUS_MAX, &cpus) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: cpus=N (1..%d), name=opt/...,string=TEXT",
                         FW_CFG_CPUS_MAX);
        return -EINVAL;
    }
    if (cpus == 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "the guest's vCPU count is unknown: give cpus=N");
        return -EINVAL;
    }
    if (!name != !str || (name && (strncmp(name, "opt/", 4) != 0 || !name[4] ||
                                   strlen(name) >= FW_CFG_NAME_MAX))) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "name=%s: a user item needs name=opt/... "
                         "(at most %d bytes) and string=TEXT together", name ? name : "",
                         FW_CFG_NAME_MAX - 1);
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->dm = dm_device_dm(dev);
    s->cur_key = FW_CFG_INVALID;
    if ((rc = items_build(s, (unsigned)cpus)) < 0 ||
        (name && (rc = fw_cfg_add_file(s, name, str, strlen(str))) < 0) ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, FW_CFG_CTL_PORT, 2, &ctl_ops, s, 0,
                                  NULL)) < 0 ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, FW_CFG_DMA_PORT, 8, &dma_ops, s, 0,
                                  NULL)) < 0) {
        if (rc != -ENODEV)
            dm_dev_log(dev, FERRY_LOG_ERROR, "cannot set up: %s", strerror(-rc));
        items_free(s);
        free(s);
        return rc;
    }
    *state = s;
    return 0;
}

static void fwc_exit(void *state)
{
    items_free(state);
    free(state);
}

static void fwc_reset(void *state)
{
    struct fw_cfg *s = state;

    s->cur_key = FW_CFG_INVALID;
    s->cur_offset = 0;
    s->dma_addr = 0;
}

static void fwc_query(void *state, json_t *b)
{
    struct fw_cfg *s = state;

    json_t *files = json_array();

    for (unsigned i = 0; i < s->nr_files; i++)
        json_array_append_new(files, ferry_json_str(s->files[i].name));
    json_object_set_new(b, "files", files);
    json_object_set_new(b, "dma-transfers", json_integer((int64_t)s->dma_transfers));
    json_object_set_new(b, "dma-errors", json_integer((int64_t)s->dma_errors));
}

FERRY_SYSCALL_LIST_NONE(fw_cfg_syscalls, "fw-cfg",
    "items built at start-up, DMA into guest RAM already mapped");

const struct ferry_dm_device_type fw_cfg_device = {
    .name = "fw-cfg",
    .desc = "QEMU's firmware configuration (0x510 selector, 0x511 data, 0x514 DMA): "
            "signature, id, RAM size, vCPUs, etc/e820",
    .syscalls = &fw_cfg_syscalls,
    .init = fwc_init,
    .exit = fwc_exit,
    .reset = fwc_reset,
    .query = fwc_query,
};
FERRY_DM_DEVICE_TYPE(fw_cfg_device)
