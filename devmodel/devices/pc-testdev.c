// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pc-testdev: QEMU's x86 ISA test device (hw/misc/pc-testdev.c), the one
 * kvm-unit-tests' x86 tests drive.  Off by default: --device pc-testdev.
 * The same registers at the same places, written from QEMU's description
 * of them:
 *
 *   port 0xe0..0xe3        a 32-bit scratch register: an access of 1, 2 or
 *                          4 bytes at 0xe0 + k reads/writes its bytes k..
 *                          (the emulator tests' plain and string I/O)
 *   port 0xe4 (4 bytes)    "flush page": a 32-bit write of a guest-physical
 *                          address.  QEMU mprotects the host page of guest
 *                          RAM behind it, so that KVM drops its mapping and
 *                          the guest's next access faults into KVM.  Ferry's
 *                          guest RAM is mapped by ferry-hv, another process:
 *                          ferry-dm cannot do that, so here it is a no-op
 *                          that checks the address lies in guest RAM and
 *                          counts the flushes (query: flushes, bad-flushes).
 *                          Other widths are ignored, as QEMU's (4-byte only).
 *   port 0xe8..0xeb        the same scratch register (QEMU serves it byte
 *                          by byte, which comes to the same bytes).
 *                          Under ferry-hv, 0xe9 stays ferry-hv's debug
 *                          console (served in-process before any ioreq), so
 *                          byte 1 of this window is out of reach there, as
 *                          it is in QEMU when isa-debugcon sits at 0xe9
 *   ports 0x2000..0x2017   one per GSI n = 0..23: a byte written sets the
 *                          level of GSI n (non-zero: high).  Every write goes
 *                          to the hypervisor at once through the irq-line
 *                          call (KVM_IRQ_LINE), as QEMU's qemu_set_irq does:
 *                          the in-kernel IOAPIC/PIC sees the new level before
 *                          the guest's OUT completes and decides edge/level,
 *                          masking, remote IRR and coalescing itself (an
 *                          irqfd would be asynchronous, and its resampler
 *                          re-fires edge lines held high).  So a guest can
 *                          raise a level line, take the interrupt, EOI with
 *                          the line still high and take it again, then lower
 *                          it.  Writes of other widths are ignored (QEMU's
 *                          are byte-only); reads return all ones.
 *   MMIO 0xff000000        64 KiB "iomem": plain memory, read and written
 *                          at any width 1..8 (QEMU's is a 64 KiB buffer).
 *
 * Lines left high are lowered on reset and when the device goes.
 * Syscalls: none beyond the base list (the irq-line call is a message on
 * the ioreq socket), so the type declares no list.
 * Options: none.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/dm.h"

#define PCT_SCRATCH_PORT    0xe0
#define PCT_FLUSH_PORT      0xe4
#define PCT_BYTE_PORT       0xe8
#define PCT_IRQ_PORT        0x2000
#define PCT_NR_GSI          24
#define PCT_IOMEM_BASE      0xff000000ull
#define PCT_IOMEM_SIZE      0x10000u
#define PCT_PAGE_SIZE       4096u

struct pc_testdev {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    uint32_t scratch;
    uint32_t levels;            /* bit n: GSI n was last set high */
    uint64_t irq_writes, flushes, bad_flushes;
    uint8_t iomem[PCT_IOMEM_SIZE];
};

/* Bytes [off & 3, (off & 3) + size) of the scratch register, as QEMU's. */
static uint64_t scratch_read(void *opaque, uint64_t off, unsigned size)
{
    struct pc_testdev *p = opaque;
    unsigned shift = (unsigned)(off & 3) * 8;
    uint64_t mask = size >= 4 ? UINT32_MAX : (1ull << (8 * size)) - 1;

    return ((uint64_t)p->scratch >> shift) & mask;
}

static void scratch_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pc_testdev *p = opaque;
    unsigned shift = (unsigned)(off & 3) * 8;
    uint64_t mask = (size >= 4 ? UINT32_MAX : (1ull << (8 * size)) - 1) << shift;

    p->scratch = (uint32_t)((p->scratch & ~mask) | ((val << shift) & mask));
}

static void flush_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pc_testdev *p = opaque;
    uint64_t page = (uint32_t)val & ~(uint64_t)(PCT_PAGE_SIZE - 1);
    uint8_t byte;

    if (off != 0 || size != 4)
        return;
    /* The whole page must be guest RAM (one DMA region): read its ends. */
    if (dm_dma_read(p->dm, page, &byte, 1) < 0 ||
        dm_dma_read(p->dm, page + PCT_PAGE_SIZE - 1, &byte, 1) < 0) {
        p->bad_flushes++;
        dm_dev_guest_log(p->dev, "flush page 0x%" PRIx64 ": not guest RAM", page);
        return;
    }
    p->flushes++;
}

static void set_line(struct pc_testdev *p, unsigned gsi, bool high)
{
    int rc = dm_gsi_set_level(p->dm, gsi, high);

    if (rc == 0 || !high) {
        if (high)
            p->levels |= 1u << gsi;
        else
            p->levels &= ~(1u << gsi);
    }
}

static void irq_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pc_testdev *p = opaque;

    if (size != 1 || off >= PCT_NR_GSI)
        return;
    p->irq_writes++;
    set_line(p, (unsigned)off, (val & 0xff) != 0);
}

static uint64_t iomem_read(void *opaque, uint64_t off, unsigned size)
{
    struct pc_testdev *p = opaque;
    uint64_t v = 0;

    if (off < PCT_IOMEM_SIZE && size <= PCT_IOMEM_SIZE - off)
        memcpy(&v, p->iomem + off, size);
    return v;
}

static void iomem_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pc_testdev *p = opaque;

    if (off < PCT_IOMEM_SIZE && size <= PCT_IOMEM_SIZE - off)
        memcpy(p->iomem + off, &val, size);
}

static const struct ferry_dm_region_ops scratch_ops = {
    .read = scratch_read, .write = scratch_write, .max_size = 4,
};
static const struct ferry_dm_region_ops flush_ops = { .write = flush_write, .max_size = 4 };
static const struct ferry_dm_region_ops irq_ops = { .write = irq_write, .max_size = 4 };
static const struct ferry_dm_region_ops iomem_ops = {
    .read = iomem_read, .write = iomem_write, .max_size = 8,
};

static int pct_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts, void **state)
{
    static const char *const known[] = { NULL };
    const char *bad = NULL;
    struct pc_testdev *p;
    int rc;

    if (dm_opts_check(opts, known, &bad) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "unknown option %s: pc-testdev takes none",
                         bad ? bad : "?");
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->dev = dev;
    p->dm = dm_device_dm(dev);
    /* Regions go with the device if a later one fails. */
    if ((rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PCT_SCRATCH_PORT, 4, &scratch_ops,
                                  p, 0, NULL)) < 0 ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PCT_FLUSH_PORT, 4, &flush_ops, p, 0,
                                  NULL)) < 0 ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PCT_BYTE_PORT, 4, &scratch_ops, p, 0,
                                  NULL)) < 0 ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, PCT_IRQ_PORT, PCT_NR_GSI, &irq_ops,
                                  p, 0, NULL)) < 0 ||
        (rc = dm_region_add(dev, FERRY_DM_SPACE_MMIO, PCT_IOMEM_BASE, PCT_IOMEM_SIZE,
                                  &iomem_ops, p, 0, NULL)) < 0) {
        free(p);
        return rc;
    }
    *state = p;
    return 0;
}

static void lower_all(struct pc_testdev *p)
{
    for (unsigned gsi = 0; gsi < PCT_NR_GSI; gsi++)
        if (p->levels & (1u << gsi))
            set_line(p, gsi, false);
}

static void pct_exit(void *state)
{
    lower_all(state);
    free(state);
}

static void pct_reset(void *state)
{
    struct pc_testdev *p = state;

    lower_all(p);
    p->scratch = 0;
    memset(p->iomem, 0, sizeof(p->iomem));
}

static void pct_query(void *state, json_t *b)
{
    struct pc_testdev *p = state;

    json_object_set_new(b, "scratch", json_integer(p->scratch));
    json_object_set_new(b, "lines-high", json_integer(p->levels));
    json_object_set_new(b, "irq-writes", json_integer((int64_t)p->irq_writes));
    json_object_set_new(b, "flushes", json_integer((int64_t)p->flushes));
    json_object_set_new(b, "bad-flushes", json_integer((int64_t)p->bad_flushes));
}

FERRY_SYSCALL_LIST_NONE(pc_testdev_syscalls, "pc-testdev",
    "registers in memory, GSI levels are messages to the hypervisor");

const struct ferry_dm_device_type pc_testdev_device = {
    .name = "pc-testdev",
    .desc = "QEMU's x86 test device: scratch 0xe0, flush 0xe4, GSI levels 0x2000-0x2017, "
            "64 KiB iomem at 0xff000000",
    .syscalls = &pc_testdev_syscalls,
    .init = pct_init,
    .exit = pct_exit,
    .reset = pct_reset,
    .query = pct_query,
};
FERRY_DM_DEVICE_TYPE(pc_testdev_device)
