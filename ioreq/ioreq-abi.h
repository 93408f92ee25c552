/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ioreq ABI, byte-compatible with Xen's public/hvm/ioreq.h.
 *
 * A hypervisor (the ioreq router) describes one trapped guest access in an
 * ioreq_t, puts it in the issuing vCPU's slot of the shared page, marks it
 * READY and notifies the device model (the ioreq server) that claimed the
 * address.  The server emulates the access, stores read data in `data`,
 * marks the slot IORESP_READY and notifies back.  Posted writes that need
 * no reply go through the buffered page, a ring of 511 eight-byte slots.
 *
 * tests/unit/test-ioreq-abi.c checks every size and offset against Xen's
 * own header when libxen-dev is installed.
 */
#ifndef FERRY_IOREQ_ABI_H
#define FERRY_IOREQ_ABI_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define IOREQ_READ              1
#define IOREQ_WRITE             0

#define STATE_IOREQ_NONE        0
#define STATE_IOREQ_READY       1
#define STATE_IOREQ_INPROCESS   2
#define STATE_IORESP_READY      3

#define IOREQ_TYPE_PIO          0   /* port I/O */
#define IOREQ_TYPE_COPY         1   /* MMIO */
#define IOREQ_TYPE_PCI_CONFIG   2   /* addr = SBDF << 32 | register */
#define IOREQ_TYPE_TIMEOFFSET   7
#define IOREQ_TYPE_INVALIDATE   8   /* mapcache */

/* One request: 32 bytes, the layout of Xen's struct ioreq. */
struct ioreq {
    uint64_t addr;          /* guest-physical address, port, or SBDF<<32|reg */
    uint64_t data;          /* data, or the guest paddr of it (data_is_ptr) */
    uint32_t count;         /* repetitions (rep prefix) */
    uint32_t size;          /* access size in bytes */
    uint32_t vp_eport;      /* Xen: event channel; Ferry: vCPU index */
    uint16_t _pad0;
    uint8_t state:4;
    uint8_t data_is_ptr:1;
    uint8_t dir:1;          /* IOREQ_READ or IOREQ_WRITE */
    uint8_t df:1;           /* direction flag for rep */
    uint8_t _pad1:1;
    uint8_t type;           /* IOREQ_TYPE_* */
};
typedef struct ioreq ioreq_t;

/* The synchronous page: one slot per vCPU, indexed by vCPU id. */
struct shared_iopage {
    struct ioreq vcpu_ioreq[1];
};
typedef struct shared_iopage shared_iopage_t;

/* One posted write in the buffered ring: 8 bytes. */
struct buf_ioreq {
    uint8_t type;           /* IOREQ_TYPE_PIO or IOREQ_TYPE_COPY */
    uint8_t pad:1;
    uint8_t dir:1;          /* always IOREQ_WRITE */
    uint8_t size:2;         /* 0 => 1, 1 => 2, 2 => 4, 3 => 8 (two slots) */
    uint32_t addr:20;       /* below 1 MiB only, as in Xen */
    uint32_t data;
};
typedef struct buf_ioreq buf_ioreq_t;

#define IOREQ_BUFFER_SLOT_NUM   511

/*
 * The buffered page.  Pointers only grow; the slot is pointer % 511.  The
 * producer canonicalises both pointers together with a 64-bit
 * compare-and-swap before they can overflow (Xen's "atomic" mode), so the
 * consumer only ever adds to read_pointer atomically.
 */
struct buffered_iopage {
    union bufioreq_pointers {
        struct {
            uint32_t read_pointer;
            uint32_t write_pointer;
        };
        uint64_t full;
    } ptrs;
    buf_ioreq_t buf_ioreq[IOREQ_BUFFER_SLOT_NUM];
};
typedef struct buffered_iopage buffered_iopage_t;

static_assert(sizeof(struct ioreq) == 32, "ioreq_t is 32 bytes");
static_assert(sizeof(struct buf_ioreq) == 8, "buf_ioreq_t is 8 bytes");
static_assert(sizeof(struct buffered_iopage) == 4096, "buffered page is one page");
static_assert(offsetof(struct ioreq, type) == 31, "type is the last byte");

/* PCI_CONFIG requests: the SBDF in the top half of addr, as Xen does. */
#define IOREQ_PCI_SBDF(seg, bus, dev, fn) \
    ((uint32_t)(seg) << 16 | (uint32_t)(bus) << 8 | (uint32_t)(dev) << 3 | (uint32_t)(fn))
#define IOREQ_PCI_ADDR(sbdf, reg)   ((uint64_t)(sbdf) << 32 | (uint32_t)(reg))
#define IOREQ_PCI_ADDR_SBDF(addr)   ((uint32_t)((addr) >> 32))
#define IOREQ_PCI_ADDR_REG(addr)    ((uint32_t)(addr) & 0xfff)

#endif /* FERRY_IOREQ_ABI_H */
