/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libferry-pci: the guest-facing PCI model used by ferry-dm.
 *
 *   function   one PCI function's config space: 256 bytes conventional plus
 *              4 KiB extended, per-byte write masks (RO / RW / RW1C),
 *              header type 0 (endpoint) and 1 (bridge), command/status,
 *              capability lists, BARs with sizing and remap callbacks,
 *              expansion ROM, INTx line/pin, MSI and MSI-X
 *   bus        host bridge at 00.0 (i440FX- or Q35-like), functions by devfn
 *              (multi-function) on bus 0 and behind bridges, config
 *              mechanism #1 (CF8/CFC), ECAM, PCI_CONFIG ioreqs, INTx routing
 *              to GSIs, BAR conflict checks; save/restore of a function
 *
 * Pure C: no I/O, no globals, no threads.  Nothing here prints; messages go
 * to the log callback of the ops structs, rate-limited when a guest can
 * trigger them.  Calls return 0 or a negative errno unless they say
 * otherwise; calls returning a pointer return NULL and set errno.
 *
 * Everything a guest can reach (config reads/writes, CF8/CFC, ECAM, MSI-X
 * table MMIO) has defined behaviour for every offset and size: absent
 * functions and out-of-range bytes read as all ones, writes to them are
 * dropped; a library call never reads or writes outside its buffers.
 *
 * Not thread-safe: ferry-dm drives it from its event loop.
 *
 * Note on the name: pciutils installs its libpci header as <pci/pci.h> too,
 * and the project's include path (the source root) shadows it.  So that
 * code using libpci (pci/host/, the CLI) still gets it, this header pulls
 * in libpci's <pci/pci.h> first when it is installed.  Everything declared
 * below is prefixed (pci_bus_, pci_func_, ferry_pci_, FERRY_PCI_) and does
 * not collide with libpci's names.
 */
#if defined(__has_include_next)
#if __has_include_next(<pci/pci.h>)
#include_next <pci/pci.h>
#endif
#endif

#ifndef FERRY_PCI_H
#define FERRY_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ferry-log.h"
#include "ioreq/ioreq-abi.h"

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

/*
 * A function is named by an SBDF, the same value as IOREQ_PCI_SBDF():
 * segment << 16 | bus << 8 | device << 3 | function.  Only segment 0
 * exists; anything else is absent.
 */
#define FERRY_PCI_DEVFN(dev, fn)    ((uint8_t)(((dev) & 0x1f) << 3 | ((fn) & 7)))
#define FERRY_PCI_SBDF(bus, devfn)  ((uint32_t)((bus) & 0xff) << 8 | ((devfn) & 0xff))
#define FERRY_PCI_SBDF_SEG(sbdf)    (((sbdf) >> 16) & 0xffff)
#define FERRY_PCI_SBDF_BUS(sbdf)    (((sbdf) >> 8) & 0xff)
#define FERRY_PCI_SBDF_DEVFN(sbdf)  ((sbdf) & 0xff)
#define FERRY_PCI_SBDF_DEV(sbdf)    (((sbdf) >> 3) & 0x1f)
#define FERRY_PCI_SBDF_FN(sbdf)     ((sbdf) & 7)

#define FERRY_PCI_CONFIG_SIZE       256     /* conventional config space */
#define FERRY_PCI_EXT_CONFIG_SIZE   4096    /* PCIe extended config space */

/* Config mechanism #1 ports. */
#define FERRY_PCI_CF8_PORT          0xcf8   /* address register, 4 bytes */
#define FERRY_PCI_CFC_PORT          0xcfc   /* data window, 4 bytes */
#define FERRY_PCI_CF8_ENABLE        0x80000000u

/* ECAM: 1 MiB per bus, 4 KiB per function; 256 buses = 256 MiB. */
#define FERRY_PCI_ECAM_BUS_SHIFT    20
#define FERRY_PCI_ECAM_SIZE(nbuses) ((uint64_t)(nbuses) << FERRY_PCI_ECAM_BUS_SHIFT)

/*
 * Decodes a config mechanism #1 access: the latched CF8 value and the byte
 * offset into the CFC window (0..3).  Returns false when CF8's enable bit
 * is clear (the access is not a config cycle).  *reg gets
 * (cf8 & 0xfc) + data_off; the reserved bits 30:24 are ignored (no AMD
 * extended-register extension).
 */
bool pci_cf8_decode(uint32_t cf8, unsigned data_off, uint32_t *sbdf, uint32_t *reg);

/*
 * Decodes an offset into an ECAM window of nbuses buses (1..256; the
 * window starts at bus 0).  Returns false for offsets outside the window.
 */
bool pci_ecam_decode(uint64_t offset, unsigned nbuses, uint32_t *sbdf, uint32_t *reg);

/* ------------------------------------------------------------------ */
/* INTx routing (shared with libacpi's _PRT; keep both in step)        */

/*
 * Legacy interrupt of a function on the root bus: with pin 0 = INTA,
 * 1 = INTB, 2 = INTC, 3 = INTD (the interrupt pin register minus one),
 *
 *     gsi = 16 + ((dev + pin) % 4)
 *
 * This is exactly the _PRT libacpi writes (GSIs 16..19, level-triggered,
 * active-low on the IOAPIC); change one, change both.  A bus programs each
 * function's interrupt line register to this GSI when it is added.
 */
#define FERRY_PCI_INTX_GSI_BASE     16u
#define FERRY_PCI_INTX_GSI_COUNT    4u

static inline uint32_t pci_intx_gsi(unsigned dev, unsigned pin)
{
    return FERRY_PCI_INTX_GSI_BASE + ((dev + pin) % FERRY_PCI_INTX_GSI_COUNT);
}

/* Interrupt pin register values. */
enum ferry_pci_intx_pin {
    FERRY_PCI_INTX_NONE = 0,
    FERRY_PCI_INTA = 1,
    FERRY_PCI_INTB = 2,
    FERRY_PCI_INTC = 3,
    FERRY_PCI_INTD = 4,
};

/* ------------------------------------------------------------------ */
/* Standard registers (offsets into config space)                      */

#define FERRY_PCI_VENDOR_ID         0x00
#define FERRY_PCI_DEVICE_ID         0x02
#define FERRY_PCI_COMMAND           0x04
#define FERRY_PCI_STATUS            0x06
#define FERRY_PCI_REVISION_ID       0x08
#define FERRY_PCI_CLASS_PROG        0x09
#define FERRY_PCI_CACHE_LINE_SIZE   0x0c
#define FERRY_PCI_LATENCY_TIMER     0x0d
#define FERRY_PCI_HEADER_TYPE       0x0e
#define FERRY_PCI_BIST              0x0f
#define FERRY_PCI_BAR0              0x10
#define FERRY_PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define FERRY_PCI_SUBSYSTEM_ID      0x2e
#define FERRY_PCI_ROM_ADDRESS       0x30    /* header type 0 */
#define FERRY_PCI_CAPABILITY_LIST   0x34
#define FERRY_PCI_INTERRUPT_LINE    0x3c
#define FERRY_PCI_INTERRUPT_PIN     0x3d

/* Header type 1 (PCI-to-PCI bridge). */
#define FERRY_PCI_PRIMARY_BUS       0x18
#define FERRY_PCI_SECONDARY_BUS     0x19
#define FERRY_PCI_SUBORDINATE_BUS   0x1a
#define FERRY_PCI_SEC_LATENCY_TIMER 0x1b
#define FERRY_PCI_IO_BASE           0x1c
#define FERRY_PCI_IO_LIMIT          0x1d
#define FERRY_PCI_SEC_STATUS        0x1e
#define FERRY_PCI_MEMORY_BASE       0x20
#define FERRY_PCI_MEMORY_LIMIT      0x22
#define FERRY_PCI_PREF_MEMORY_BASE  0x24
#define FERRY_PCI_PREF_MEMORY_LIMIT 0x26
#define FERRY_PCI_PREF_BASE_UPPER32 0x28
#define FERRY_PCI_PREF_LIMIT_UPPER32 0x2c
#define FERRY_PCI_IO_BASE_UPPER16   0x30
#define FERRY_PCI_IO_LIMIT_UPPER16  0x32
#define FERRY_PCI_ROM_ADDRESS1      0x38    /* header type 1 */
#define FERRY_PCI_BRIDGE_CONTROL    0x3e

#define FERRY_PCI_COMMAND_IO        0x0001
#define FERRY_PCI_COMMAND_MEMORY    0x0002
#define FERRY_PCI_COMMAND_MASTER    0x0004
#define FERRY_PCI_COMMAND_PARITY    0x0040
#define FERRY_PCI_COMMAND_SERR      0x0100
#define FERRY_PCI_COMMAND_INTX_DISABLE 0x0400

#define FERRY_PCI_STATUS_INTERRUPT  0x0008  /* RO: INTx asserted */
#define FERRY_PCI_STATUS_CAP_LIST   0x0010  /* RO: capability list present */
#define FERRY_PCI_STATUS_RW1C       0xf900  /* parity, aborts, SERR: write 1 to clear */

#define FERRY_PCI_HEADER_TYPE_MULTI 0x80    /* set on fn 0 when fns 1..7 exist */

#define FERRY_PCI_CAP_ID_PM         0x01
#define FERRY_PCI_CAP_ID_MSI        0x05
#define FERRY_PCI_CAP_ID_VNDR       0x09
#define FERRY_PCI_CAP_ID_EXP        0x10
#define FERRY_PCI_CAP_ID_MSIX       0x11

/* ------------------------------------------------------------------ */
/* Functions                                                           */

struct ferry_pci_func;
struct ferry_pci_bus;

#define FERRY_PCI_NUM_BARS          6
#define FERRY_PCI_ROM_BAR           6       /* BAR index used for the expansion ROM */
#define FERRY_PCI_NUM_REGIONS       7       /* BARs 0..5 + ROM */

/* BAR kinds for pci_func_bar_declare(). */
#define FERRY_PCI_BAR_IO            0x1u    /* I/O space, 4..256 bytes */
#define FERRY_PCI_BAR_MEM32         0x2u    /* 32-bit memory, >= 16 bytes */
#define FERRY_PCI_BAR_MEM64         0x4u    /* 64-bit memory: uses BAR idx and idx+1 */
#define FERRY_PCI_BAR_PREFETCH      0x8u    /* with MEM32 or MEM64 */

#define FERRY_PCI_IO_BAR_MAX        256u
#define FERRY_PCI_ROM_MIN           2048u

/*
 * Where a BAR decodes.  mapped is false when decoding is off (command
 * register, ROM enable bit), the BAR is unprogrammed (address 0), its range
 * does not fit its address space (a 32-bit BAR reaching 4 GiB - 1, a
 * 64-bit one reaching 2^52 (beyond any x86 physical address width), I/O
 * above 0xffff: what a guest sees mid-sizing), or
 * the bus refused it (overlap with another BAR or a reserved range).
 */
struct ferry_pci_bar_range {
    bool mapped;
    bool io;                /* I/O space (port numbers), else memory */
    bool prefetch;
    uint64_t addr;          /* valid when mapped */
    uint64_t size;          /* the declared size, also when not mapped */
};

/* One MSI or MSI-X message as the guest programmed it. */
struct ferry_pci_msi_msg {
    uint64_t address;
    uint32_t data;
};

/*
 * The state of one vector.  enabled: MSI/MSI-X is enabled and this vector
 * exists (for MSI: vector < the number of vectors the guest enabled).
 * masked: per-vector mask or MSI-X function mask.
 */
struct ferry_pci_msi_vector {
    struct ferry_pci_msi_msg msg;
    bool enabled;
    bool masked;
    bool msix;              /* from MSI-X, else MSI */
};

struct ferry_pci_func_ops {
    /*
     * Optional, called with the function's opaque; when NULL, the bus's
     * log (with the bus's opaque) while the function sits on one.
     */
    ferry_log_fn log;

    /*
     * BAR `bar` (0..5, or FERRY_PCI_ROM_BAR) moved: the function decoded
     * *old and now decodes *new (either may have mapped == false).  The
     * device model releases its claim on old (if mapped) and claims new
     * (if mapped), e.g. with ioreq_server_release_range / _claim_range.
     * Return 0 when new is claimed, or a negative errno when it could not
     * be (e.g. -EEXIST from the router): the library logs that, records
     * the BAR as not decoding, and passes old.mapped == false next time.
     * Only called when something changes (never with both unmapped or
     * with the same range twice); also from pci_func_reset,
     * pci_bus_remove and pci_func_restore.  Must not write config space.
     * Optional.
     */
    int (*bar_remap)(void *opaque, struct ferry_pci_func *fn, unsigned bar,
                     const struct ferry_pci_bar_range *old,
                     const struct ferry_pci_bar_range *new_range);

    /*
     * A config write from the guest has been applied (after masks and
     * side effects); val is what the guest wrote.  For device-specific
     * registers.  Only for accesses of size 1, 2 or 4 that lie wholly
     * inside the 4 KiB.  Optional.
     */
    void (*config_write)(void *opaque, struct ferry_pci_func *fn, uint32_t reg,
                         unsigned size, uint32_t val);
    /*
     * A config read from the guest: *val holds the model's answer and may
     * be replaced.  Same access rules as config_write.  Optional.
     */
    void (*config_read)(void *opaque, struct ferry_pci_func *fn, uint32_t reg,
                        unsigned size, uint32_t *val);

    /*
     * The guest changed how MSI/MSI-X vector `vector` is set up (address,
     * data, enabled, masked), e.g. to update a KVM MSI route.  Called once
     * per changed vector after the write that changed it.  Optional.
     */
    void (*msi_config)(void *opaque, struct ferry_pci_func *fn, unsigned vector,
                       const struct ferry_pci_msi_vector *vec);
    /*
     * Deliver one MSI/MSI-X message (from pci_func_msi_notify, or a
     * pending vector getting unmasked).  Optional (then nothing is sent).
     */
    void (*msi_send)(void *opaque, struct ferry_pci_func *fn, unsigned vector,
                     const struct ferry_pci_msi_msg *msg);
};

/* The identity of a function; becomes its read-only header bytes. */
struct ferry_pci_func_info {
    const char *name;               /* for log lines; copied */
    uint16_t vendor_id;
    uint16_t device_id;
    uint8_t revision;
    uint32_t class_code;            /* 24 bits: class << 16 | subclass << 8 | prog-if */
    uint16_t subsystem_vendor_id;   /* type 0 only */
    uint16_t subsystem_id;
    uint8_t header_type;            /* 0 or 1 (bridge); bit 7 is managed by the bus */
    uint8_t intx_pin;               /* enum ferry_pci_intx_pin */
};

/* Creates a function in its power-on state: no BARs, no capabilities. */
struct ferry_pci_func *pci_func_new(const struct ferry_pci_func_info *info,
                                    const struct ferry_pci_func_ops *ops, void *opaque);
/*
 * Frees fn; it must not be on a bus (pci_bus_remove or pci_bus_free first).
 * NULL is fine.
 */
void pci_func_free(struct ferry_pci_func *fn);
const char *pci_func_name(const struct ferry_pci_func *fn);
void *pci_func_opaque(const struct ferry_pci_func *fn);
/*
 * The SBDF the function sits at, -ENODEV if it is on no bus, -ENXIO if it
 * sits behind a bridge the guest has not given a bus number yet.
 */
int64_t pci_func_sbdf(const struct ferry_pci_func *fn);

/*
 * Declares BAR idx (0..5 for type 0, 0..1 for type 1) of `kind`
 * (FERRY_PCI_BAR_*) and size, a power of two: I/O 4..256, 32-bit memory
 * 16 bytes..2 GiB, 64-bit memory 16 bytes..2^62.  A 64-bit BAR also takes
 * idx + 1.  -EINVAL for a bad index, kind or size, -EBUSY if the slot is
 * taken or the function is already on a bus (declare BARs first).
 */
FERRY_MUST_CHECK int pci_func_bar_declare(struct ferry_pci_func *fn, unsigned idx,
                                          uint32_t kind, uint64_t size);
/* Declares the expansion ROM (a power of two, 2 KiB..2 GiB); -EBUSY as above. */
FERRY_MUST_CHECK int pci_func_rom_declare(struct ferry_pci_func *fn, uint64_t size);
/* Where BAR idx (0..6) decodes now.  -EINVAL if idx is not a declared BAR. */
int pci_func_bar_get(const struct ferry_pci_func *fn, unsigned idx,
                     struct ferry_pci_bar_range *out);
/*
 * Which decoding BAR holds addr in I/O (io) or memory space: 0 and *bar,
 * *offset, or -ENOENT.
 */
int pci_func_bar_lookup(const struct ferry_pci_func *fn, bool io, uint64_t addr,
                        unsigned *bar, uint64_t *offset);

/*
 * Guest-visible config accesses (what the bus calls).  reg + size may be
 * any values: bytes beyond 4 KiB read as 0xff and are not written; sizes
 * other than 1, 2 and 4 read all ones and are dropped.  Unaligned accesses
 * are performed byte by byte.  Writes apply the write masks and their
 * side effects (BAR remap, INTx, MSI); callbacks run before return.
 */
uint32_t pci_func_config_read(struct ferry_pci_func *fn, uint32_t reg, unsigned size);
void pci_func_config_write(struct ferry_pci_func *fn, uint32_t reg, unsigned size,
                           uint32_t val);

/*
 * Device-model access to config bytes: no masks, no side effects, no
 * callbacks.  put also sets the power-on value that pci_func_reset
 * restores.  -ERANGE if reg + len runs past 4 KiB.
 */
int pci_func_config_get(const struct ferry_pci_func *fn, uint32_t reg, void *buf, size_t len);
int pci_func_config_put(struct ferry_pci_func *fn, uint32_t reg, const void *buf, size_t len);

/*
 * Per-byte write semantics for device-specific registers: bits set in
 * wmask are read-write, bits set in w1cmask are write-1-to-clear, all
 * others read-only.  len bytes (1..4) at reg, little-endian masks.
 * -ERANGE past 4 KiB, -EINVAL if a bit is in both masks.
 */
int pci_func_set_masks(struct ferry_pci_func *fn, uint32_t reg, unsigned len,
                       uint32_t wmask, uint32_t w1cmask);

/*
 * Power-on reset: command 0 (BARs stop decoding; bar_remap is called),
 * BAR and other guest-writable registers back to their power-on values,
 * MSI/MSI-X disabled, MSI-X vectors masked, INTx deasserted.
 */
void pci_func_reset(struct ferry_pci_func *fn);

/* ---- capabilities ---- */

/*
 * Adds a capability of `len` bytes (2..192) with ID `id` to the
 * conventional list and returns its offset (0x40..0xfc), or -ENOSPC (no
 * room, or 64 capabilities in all already).
 * offset 0 picks the lowest free dword-aligned place; otherwise the
 * capability goes exactly there (-EBUSY if taken, -EINVAL if unaligned or
 * outside 0x40..0xff).  It is linked at the end of the list.  Its body is
 * zero and read-only until pci_func_config_put / pci_func_set_masks.
 */
FERRY_MUST_CHECK int pci_func_cap_add(struct ferry_pci_func *fn, uint8_t id, unsigned len,
                                      unsigned offset);
/*
 * Walks the guest-visible list: the offset of the capability after the
 * one at `prev` (prev 0: the first), or 0 at the end or for a pointer
 * below 0x40.  Hidden capabilities are not on the list.
 */
unsigned pci_func_cap_next(const struct ferry_pci_func *fn, unsigned prev);
/*
 * The offset of the first visible capability with ID id after prev, or 0;
 * gives up after 64 steps (a list a device model corrupted by config_put).
 */
unsigned pci_func_cap_find(const struct ferry_pci_func *fn, uint8_t id, unsigned prev);
/*
 * Unlinks the capability at offset from the guest-visible list (its bytes
 * stay in place; the function keeps using it internally, e.g. MSI state).
 * -ENOENT if no capability was added there.  pci_func_cap_unhide undoes it.
 */
int pci_func_cap_hide(struct ferry_pci_func *fn, unsigned offset);
int pci_func_cap_unhide(struct ferry_pci_func *fn, unsigned offset);

/*
 * Extended capabilities (0x100..0xfff): header id (16 bits), version
 * (4 bits), next (12 bits).  Same rules as above, len 4..3840; the list
 * starts at 0x100, with a null header there (id 0) pointing on when no
 * visible capability sits at 0x100.  pci_func_cap_hide works on them too.
 */
FERRY_MUST_CHECK int pci_func_ext_cap_add(struct ferry_pci_func *fn, uint16_t id,
                                          uint8_t version, unsigned len, unsigned offset);
unsigned pci_func_ext_cap_find(const struct ferry_pci_func *fn, uint16_t id, unsigned prev);

/* ---- PCI Express capability ---- */

/* Device/port type field of the PCI Express capability. */
enum ferry_pci_pcie_type {
    FERRY_PCI_EXP_ENDPOINT = 0x0,
    FERRY_PCI_EXP_LEGACY_ENDPOINT = 0x1,
    FERRY_PCI_EXP_ROOT_PORT = 0x4,
    FERRY_PCI_EXP_RC_ENDPOINT = 0x9,    /* root-complex integrated endpoint (no link) */
};

#define FERRY_PCI_EXP_CAP_LEN       0x3c    /* version 2 */

/*
 * Adds a PCI Express capability (version 2) of `type` and returns its
 * offset, or -errno as pci_func_cap_add.  Guests look for it before they
 * use the extended config space (Linux reads beyond 0x100 only on PCIe
 * functions), so a function with extended capabilities wants one.  Device
 * control is guest-writable (error reporting, relaxed ordering, payload and
 * read request sizes, extended tags, no snoop; power-on 0x2810), device
 * status errors are RW1C; links are x1 at 2.5 GT/s, except for
 * root-complex integrated endpoints, which have none.  Root ports get root
 * control (RW) and root status (PME status RW1C); no slot.  No FLR.
 */
FERRY_MUST_CHECK int pci_func_pcie_add(struct ferry_pci_func *fn, enum ferry_pci_pcie_type type,
                                       unsigned offset);

/* ---- MSI and MSI-X ---- */

#define FERRY_PCI_MSI_64BIT         0x1u    /* 64-bit message address */
#define FERRY_PCI_MSI_MASKABLE      0x2u    /* per-vector masking */
#define FERRY_PCI_MSI_VECTORS_MAX   32u
#define FERRY_PCI_MSIX_VECTORS_MAX  2048u

/*
 * Adds an MSI capability with nvectors (1, 2, 4, 8, 16 or 32) and
 * FERRY_PCI_MSI_* flags; returns its offset, -EEXIST if there is one,
 * or -errno as pci_func_cap_add.  A guest enabling more messages than
 * offered gets the offered number; with n messages enabled, vector i sends
 * the programmed data with its low log2(n) bits replaced by i.
 */
FERRY_MUST_CHECK int pci_func_msi_add(struct ferry_pci_func *fn, unsigned nvectors,
                                      uint32_t flags, unsigned offset);
/*
 * Adds an MSI-X capability with nvectors (1..2048) whose table lives in
 * memory BAR table_bar at table_offset (8-byte aligned) and whose PBA lives
 * in pba_bar at pba_offset; both must fit their BAR and not overlap each
 * other.  Declare the BARs first.  Returns the capability offset; -EINVAL
 * (bad count, not a memory BAR, misaligned, overlapping), -ERANGE (does
 * not fit the BAR), -EEXIST (already has one), -ENOMEM.  Vectors start
 * masked.
 */
FERRY_MUST_CHECK int pci_func_msix_add(struct ferry_pci_func *fn, unsigned nvectors,
                                       unsigned table_bar, uint32_t table_offset,
                                       unsigned pba_bar, uint32_t pba_offset,
                                       unsigned offset);
/*
 * MMIO access at `offset` into BAR bar: if any byte falls in the MSI-X
 * table or PBA, performs it byte by byte (any size 1..8, any alignment;
 * bytes outside the structures read as 0 and are not written; the PBA and
 * reserved bits are read-only) and returns true; otherwise, or for sizes 0
 * and above 8, returns false and the device handles it.
 */
bool pci_func_msix_mmio_read(struct ferry_pci_func *fn, unsigned bar, uint64_t offset,
                             unsigned size, uint64_t *val);
bool pci_func_msix_mmio_write(struct ferry_pci_func *fn, unsigned bar, uint64_t offset,
                              unsigned size, uint64_t val);

/*
 * The device signals vector `vector`: with MSI-X enabled through its
 * table entry, else with MSI enabled through the MSI capability.  Returns
 * 1 if the message was sent (ops->msi_send), 0 if the vector is masked
 * (its pending bit is set; it is sent when unmasked), -ENODEV if neither
 * MSI nor MSI-X is enabled (use INTx), -EINVAL if vector is out of range,
 * -EPERM if bus mastering is off (the message is dropped, like hardware).
 */
int pci_func_msi_notify(struct ferry_pci_func *fn, unsigned vector);
/* The current state of one vector; -EINVAL if out of range, -ENODEV if no MSI. */
int pci_func_msi_get(const struct ferry_pci_func *fn, unsigned vector,
                     struct ferry_pci_msi_vector *out);
/* True if the guest enabled MSI-X, MSI; how many vectors (0 when disabled). */
bool pci_func_msix_enabled(const struct ferry_pci_func *fn);
bool pci_func_msi_enabled(const struct ferry_pci_func *fn);
unsigned pci_func_msi_vectors(const struct ferry_pci_func *fn);

/* ---- INTx ---- */

/*
 * Drives the function's INTx line (level-triggered).  The status register's
 * interrupt bit follows level; the line reaches the bus (and the GSI, see
 * pci_intx_gsi) only while the command register's INTx-disable bit is
 * clear.  No effect when the interrupt pin is 0.
 */
void pci_func_set_irq(struct ferry_pci_func *fn, bool level);
bool pci_func_irq_level(const struct ferry_pci_func *fn);

/* ---- bridges (header type 1) ---- */

struct ferry_pci_bridge_windows {
    uint8_t primary, secondary, subordinate;
    bool io_enabled, mem_enabled, pref_enabled;     /* base <= limit */
    uint64_t io_base, io_limit;                     /* inclusive */
    uint64_t mem_base, mem_limit;
    uint64_t pref_base, pref_limit;
};
/* Decodes a bridge's bus numbers and windows; -EINVAL if fn is not type 1. */
int pci_bridge_windows(const struct ferry_pci_func *fn, struct ferry_pci_bridge_windows *out);

/* ---- save / restore ---- */

/*
 * A function's guest-visible state as a flat, versioned, little-endian
 * blob: a header (magic "FPCS", version, length, vendor/device, MSI-X
 * geometry), the 4 KiB config space, the MSI-X table and PBA, the INTx
 * level.  Restore takes only what the guest could have written (bits under
 * the write masks, the MSI-X table's writable bits, pending bits); the
 * read-only parts come from the function as the device model declared it,
 * so a blob from another build of the same device restores, and a forged
 * one cannot change identity, BAR sizes or capability layout.  Restore
 * then replays the side effects: bar_remap for every region whose decoding
 * changes, INTx level, msi_config for changed vectors.
 */
#define FERRY_PCI_SAVE_MAGIC        0x53435046u     /* "FPCS" little-endian */
#define FERRY_PCI_SAVE_VERSION      1u

/* The blob size for fn. */
size_t pci_func_save_size(const struct ferry_pci_func *fn);
/* Writes the blob to buf; -ENOSPC if len < pci_func_save_size(fn). */
FERRY_MUST_CHECK int pci_func_save(const struct ferry_pci_func *fn, void *buf, size_t len);
/*
 * -EINVAL for a bad magic, version or length, or a blob of another device
 * (vendor/device, header type or MSI-X geometry differ); fn is unchanged
 * then.
 */
FERRY_MUST_CHECK int pci_func_restore(struct ferry_pci_func *fn, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* The bus                                                             */

enum ferry_pci_host_model {
    FERRY_PCI_HOST_I440FX = 0,      /* 8086:1237, PCI host bridge */
    FERRY_PCI_HOST_Q35 = 1,         /* 8086:29c0, DRAM controller / host bridge */
};

struct ferry_pci_bus_ops {
    ferry_log_fn log;
    /*
     * The wired-OR level of a GSI changed (FERRY_PCI_INTX_GSI_BASE..+3):
     * the device model asserts/deasserts its irqfd.  Optional.
     */
    void (*set_irq)(void *opaque, uint32_t gsi, bool level);
};

struct ferry_pci_bus_config {
    enum ferry_pci_host_model host;
    const char *name;               /* for log lines, default "pci" */
    unsigned ecam_buses;            /* ECAM window size in buses (0: 256) */
};

/* A bus with its host bridge at 00.0. */
struct ferry_pci_bus *pci_bus_new(const struct ferry_pci_bus_config *cfg,
                                  const struct ferry_pci_bus_ops *ops, void *opaque);
/*
 * Frees the bus and its host bridge; the other functions (on bus 0 and
 * behind bridges) are unplugged without callbacks and stay the caller's.
 */
void pci_bus_free(struct ferry_pci_bus *bus);
struct ferry_pci_func *pci_bus_host_bridge(struct ferry_pci_bus *bus);

/*
 * Puts fn at devfn on bus 0 (-EBUSY if taken, -EALREADY if fn is on a
 * bus).  Its interrupt line register gets pci_intx_gsi(dev, pin - 1).
 * Functions 1..7 of a device are visible only while function 0 exists, and
 * function 0's header type then reads with bit 7 set.
 */
FERRY_MUST_CHECK int pci_bus_add(struct ferry_pci_bus *bus, struct ferry_pci_func *fn,
                                 uint8_t devfn);
/*
 * Puts fn at devfn on the secondary bus of `bridge` (a type 1 function
 * already on the bus).  Config cycles reach it at the bus number the guest
 * writes into the bridge's secondary bus register; deeper buses route
 * through bridges whose secondary..subordinate range holds the number, as
 * type 1 cycles do (at most 8 bridges deep, -ELOOP beyond).  Its INTx pin is
 * swizzled at each bridge, pin = (pin + dev) % 4, then pci_intx_gsi of the
 * bridge's slot on bus 0 (what an OS does without a _PRT for the bus).  The
 * bridge's windows are decoded (pci_bridge_windows) but not enforced: BARs
 * behind it decode like BARs on bus 0.  -EINVAL if bridge is not type 1,
 * -ENODEV if it is on no bus, otherwise as pci_bus_add.
 */
FERRY_MUST_CHECK int pci_bridge_add(struct ferry_pci_func *bridge, struct ferry_pci_func *fn,
                                    uint8_t devfn);
/*
 * Unplugs fn (on bus 0 or behind a bridge): resets it (its BARs stop
 * decoding, INTx drops), then removes it.  -EBUSY for a bridge that still
 * has functions behind it, -EPERM for the host bridge.
 */
int pci_bus_remove(struct ferry_pci_bus *bus, struct ferry_pci_func *fn);
/* The function at sbdf as the guest would reach it (through bridges), or NULL. */
struct ferry_pci_func *pci_bus_lookup(const struct ferry_pci_bus *bus, uint32_t sbdf);

/*
 * Reserves a range no BAR may decode over (guest RAM, the LAPIC/IOAPIC,
 * the ECAM window, legacy ports): a BAR programmed to overlap it, or to
 * overlap another function's decoding BAR, is refused (not decoded, one
 * rate-limited warning naming both).  At most FERRY_PCI_RESERVED_MAX.
 */
#define FERRY_PCI_RESERVED_MAX      32
FERRY_MUST_CHECK int pci_bus_reserve(struct ferry_pci_bus *bus, bool io, uint64_t start,
                                     uint64_t size, const char *what);

/*
 * Config access by SBDF and register (what PCI_CONFIG ioreqs carry).
 * Absent functions read all ones and drop writes; see pci_func_config_read
 * for sizes and alignment.
 */
uint32_t pci_bus_config_read(struct ferry_pci_bus *bus, uint32_t sbdf, uint32_t reg,
                             unsigned size);
void pci_bus_config_write(struct ferry_pci_bus *bus, uint32_t sbdf, uint32_t reg,
                          unsigned size, uint32_t val);

/*
 * Serves one IOREQ_TYPE_PCI_CONFIG request (addr = SBDF << 32 | reg,
 * IOREQ_PCI_ADDR): reads store into req->data.  data_is_ptr and count > 1
 * are refused (-EINVAL; reads then return all ones), other types -EINVAL.
 */
int pci_bus_handle_ioreq(struct ferry_pci_bus *bus, ioreq_t *req);

/*
 * Config mechanism #1 for whoever claims ports 0xcf8..0xcff: the bus keeps
 * the CF8 latch.  A 4-byte access at 0xcf8 reads/writes the latch; other
 * accesses to 0xcf8..0xcfb read all ones and are dropped; accesses to
 * 0xcfc..0xcff go to the function CF8 selects (all ones when CF8's enable
 * bit is clear); bytes beyond 0xcff read all ones.
 */
uint32_t pci_bus_pio_read(struct ferry_pci_bus *bus, uint16_t port, unsigned size);
void pci_bus_pio_write(struct ferry_pci_bus *bus, uint16_t port, unsigned size, uint32_t val);

/*
 * ECAM (MMCONFIG) access at `offset` into the window: sizes 1, 2, 4 and 8
 * (an 8-byte access is two 4-byte ones).  Outside the window: all ones.
 */
uint64_t pci_bus_ecam_read(struct ferry_pci_bus *bus, uint64_t offset, unsigned size);
void pci_bus_ecam_write(struct ferry_pci_bus *bus, uint64_t offset, unsigned size,
                        uint64_t val);

#endif /* FERRY_PCI_H */
