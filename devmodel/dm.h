/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's device framework.
 *
 * A `struct ferry_dm` is the device model of one guest: the devices, the
 * address ranges they decode, their interrupt lines, and the link to
 * whatever delivers the guest's accesses (the ioreq server in ferry-dm,
 * nothing at all in unit tests).  It is single-threaded: every call below
 * runs on the thread of the event_base it was created with.
 *
 * A device is one file in devmodel/devices/.  It defines a const
 * `struct ferry_dm_device_type` and registers it with
 * FERRY_DM_DEVICE_TYPE(); its init hook allocates the instance state and
 * declares port/MMIO regions and interrupt lines through the calls below;
 * everything a device adds through the framework is removed with the device.
 *
 * Dispatch: an ioreq for port P goes to the region containing P, found by a
 * binary search in a range set (ioreq/'s struct ioreq_rangeset), never by a
 * scan over devices.  Accesses wider than a region's max_size, or crossing
 * its end, are split into single bytes, each dispatched on its own (as the
 * ISA bus would); accesses that fit no region read all ones and drop writes.
 */
#ifndef FERRY_DM_H
#define FERRY_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "common/ferry-log.h"
#include "common/json.h"
#include "sandbox/sandbox.h"
#include "ioreq/ioreq.h"

struct event_base;
struct ferry_dm;
struct ferry_dm_device;
struct ferry_dm_region;
struct ferry_dm_irq;
struct ferry_dm_opts;

#define FERRY_DM_ID_MAX         32      /* device id, NUL included */
#define FERRY_DM_DEVICES_MAX    256     /* devices per guest */
#define FERRY_DM_TYPES_MAX      64      /* registered device types */
#define FERRY_DM_OPTS_MAX       32      /* key=value pairs per device */
#define FERRY_DM_OPT_LEN_MAX    1024    /* one key or value */

/* ------------------------------------------------------------------ */
/* The device model                                                    */

enum ferry_dm_space {
    FERRY_DM_SPACE_PORT = IOREQ_RANGE_PORT,
    FERRY_DM_SPACE_MMIO = IOREQ_RANGE_MMIO,
    /* PCI functions by SBDF: claimed like the others; config accesses go to the PCI hook. */
    FERRY_DM_SPACE_PCI = IOREQ_RANGE_PCI,
    FERRY_DM_SPACE_NR
};

enum ferry_dm_status {
    FERRY_DM_CREATED = 0,   /* devices being added, nothing claimed */
    FERRY_DM_RUNNING,       /* claims made, ioreqs flowing */
    FERRY_DM_SHUTDOWN,      /* the guest asked to power off (or crashed) */
    FERRY_DM_SUSPENDED,     /* ACPI S3: vCPUs stopped, memory kept, waiting for a wake event */
};

/* What woke a guest from S3 (the PM block reports it in PM1_STS). */
enum ferry_dm_wake_reason {
    FERRY_DM_WAKE_RTC = 0,      /* the RTC alarm, if the guest enabled it (RTC_EN) */
    FERRY_DM_WAKE_PWRBTN,       /* the power button (system_powerdown): always a wake event */
    FERRY_DM_WAKE_OTHER,        /* system_wakeup from the control socket: always */
    FERRY_DM_WAKE_NR
};

/*
 * What the device model needs from the outside.  ferry-dm binds these to an
 * ioreq server; tests bind them to recorders.  Every hook is optional: a
 * missing claim/release succeeds, a missing irqfd makes the framework use
 * irq_line, a missing irq_line drops the interrupt (logged once).
 */
struct ferry_dm_backend_ops {
    int (*claim)(void *opaque, enum ioreq_range_type type, uint64_t start,
                 uint64_t end, uint32_t flags);
    int (*release)(void *opaque, enum ioreq_range_type type, uint64_t start,
                   uint64_t end);
    /* Wire fd (and for level lines resample_fd, else -1) to gsi. */
    int (*irqfd)(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign);
    int (*irq_line)(void *opaque, uint32_t gsi, bool level);
    /* Deliver one MSI/MSI-X message (address and data as the guest programmed them). */
    int (*msi)(void *opaque, uint64_t address, uint32_t data);
    /*
     * Optional: have the eventfd fd deliver the MSI (address, data) from now
     * on (a KVM irqfd on a GSI routed to it), or (assign false, fd -1) undo
     * the route named cookie.  Without it every MSI goes through msi.
     */
    int (*msi_route)(void *opaque, uint64_t address, uint32_t data, int fd, uint32_t cookie,
                     bool assign);
    int (*shutdown)(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code);
    /* S3: stop the vCPUs (IOREQ_SLEEP_S3) or resume them at the waking vector (WAKE). */
    int (*sleep)(void *opaque, enum ioreq_sleep_state state);
    /* Clocks, for tests to control; NULL means CLOCK_MONOTONIC / CLOCK_REALTIME. */
    uint64_t (*clock_ns)(void *opaque);
    int64_t (*wall_ns)(void *opaque);
};

struct ferry_dm_config {
    const char *name;                       /* guest name, for logs */
    struct event_base *base;                /* timers and fds of devices */
    const struct ferry_dm_backend_ops *ops; /* may be NULL */
    void *opaque;
    ferry_log_fn log;                       /* may be NULL */
    void *log_opaque;
};

FERRY_MUST_CHECK int dm_create(const struct ferry_dm_config *cfg,
                                     struct ferry_dm **out);
/* Removes every device (in reverse order of addition), then frees. */
void dm_destroy(struct ferry_dm *dm);

/* Claim every region and irq of the devices added so far; RUNNING after. */
FERRY_MUST_CHECK int dm_start(struct ferry_dm *dm);
enum ferry_dm_status dm_get_status(const struct ferry_dm *dm);
const char *dm_status_name(enum ferry_dm_status st);
const char *dm_name(const struct ferry_dm *dm);
struct event_base *dm_event_base(struct ferry_dm *dm);

/* Reset every device (guest reboot). */
void dm_reset(struct ferry_dm *dm);
/*
 * Press the power button: -ENODEV when no device has one.  While the guest
 * is suspended (S3) the button wakes it instead (dm_wakeup, PWRBTN).
 */
int dm_powerdown(struct ferry_dm *dm);
/*
 * ACPI S3, asked for by the PM device when the guest writes its SLP_TYP
 * with SLP_EN: the hypervisor stops the vCPUs, the status becomes
 * SUSPENDED.  -ENOSYS when the backend cannot (the guest then runs on),
 * -EBUSY when suspended already.
 */
int dm_request_suspend(struct ferry_dm *dm);
/*
 * A wake event while suspended: -EALREADY when not suspended, -EPERM when
 * the guest has not enabled this source (dm_set_wakeup_enabled; the power
 * button and OTHER always wake).  Otherwise, as a platform leaving S3
 * does: every device is reset (dm_reset), each device's wakeup hook is
 * told the reason (the PM block sets WAK_STS and the source's status bit),
 * then the hypervisor resumes the guest at its FACS waking vector; status
 * RUNNING again.  A backend error is returned (and logged).
 */
int dm_wakeup(struct ferry_dm *dm, enum ferry_dm_wake_reason reason);
/* The PM device says which optional wake sources the guest enabled (RTC_EN). */
void dm_set_wakeup_enabled(struct ferry_dm *dm, enum ferry_dm_wake_reason reason, bool on);
const char *dm_wake_reason_name(enum ferry_dm_wake_reason reason);
/* A device asks to end or reboot the guest. */
void dm_request_shutdown(struct ferry_dm *dm, enum ioreq_shutdown_reason reason,
                               uint32_t code);

/*
 * The guest's vCPU count, as the hypervisor registered it (ferry-dm sets it
 * from its ioreq registration before adding devices; 0 when unknown).
 */
void dm_set_nr_vcpus(struct ferry_dm *dm, unsigned n);
unsigned dm_nr_vcpus(const struct ferry_dm *dm);

/*
 * Deliver an MSI through the backend: -ENOSYS when it cannot.  The first
 * time a message is sent it gets an eventfd routed to it (msi_route), and
 * from then on sending it is one eventfd write, no round trip; the last
 * FERRY_DM_MSI_FDS messages keep theirs.
 */
int dm_signal_msi(struct ferry_dm *dm, uint64_t address, uint32_t data);

/* Clocks in ns, through the backend's hooks when it has them. */
uint64_t dm_clock_ns(struct ferry_dm *dm);
int64_t dm_wall_ns(struct ferry_dm *dm);

/*
 * The ioreq_server_ops.handle callback: emulate one access.  For reads the
 * result is stored in req->data.  Never fails: bad requests get the
 * behaviour of real hardware (all ones / dropped) and a rate-limited log.
 */
void dm_handle_ioreq(struct ferry_dm *dm, unsigned vcpu, ioreq_t *req);
/* The same for one access given directly (tests, the PCI glue, benches). */
void dm_io(struct ferry_dm *dm, enum ferry_dm_space space, uint64_t addr,
                 unsigned size, bool is_write, uint64_t *data);

struct ferry_dm_stats {
    uint64_t ioreqs;        /* handled */
    uint64_t unclaimed;     /* accesses that hit no region */
    uint64_t split;         /* accesses split into bytes */
    uint64_t bad;           /* malformed ioreqs (size, type, count) */
};
void dm_get_stats(const struct ferry_dm *dm, struct ferry_dm_stats *st);

/*
 * PCI config space: PCI_CONFIG ioreqs (addr = SBDF << 32 | reg) go to this
 * hook (the PCI bus glue sets it).  Without one, reads return all ones.
 */
typedef void (*ferry_dm_pci_config_fn)(void *opaque, uint32_t sbdf, uint32_t reg,
                                       unsigned size, bool is_write, uint64_t *data);
void dm_set_pci_config(struct ferry_dm *dm, ferry_dm_pci_config_fn fn,
                             void *opaque);

/*
 * Guest RAM for DMA: memfd with the router's region table (ferry-dm passes
 * what ioreq_server_get_memory returned).  The framework maps each region
 * shared (MAP_NORESERVE, so a huge guest costs nothing up front) and keeps
 * a dup of memfd for devices that share guest RAM with another process;
 * the caller may close its memfd afterwards.  -EINVAL for a malformed table.
 */
FERRY_MUST_CHECK int dm_set_guest_memory(struct ferry_dm *dm, int memfd,
                                               const struct ioreq_msg_memory_reply *regions);
/*
 * Copy between guest RAM and buf.  The whole [gpa, gpa+len) must lie in one
 * region: -EFAULT otherwise (nothing copied, rate-limited log), -ENODEV when
 * no guest memory was set.
 */
/*
 * For a device that hands guest RAM to another process (the QEMU-remote
 * engine's SYNC_SYSMEM): the memfd (still the framework's: dup it to keep
 * it) and the region table; -ENODEV when no guest memory was set.
 */
int dm_guest_memory_fd(struct ferry_dm *dm, struct ioreq_msg_memory_reply *regions);
FERRY_MUST_CHECK int dm_dma_read(struct ferry_dm *dm, uint64_t gpa, void *buf,
                                       size_t len);
FERRY_MUST_CHECK int dm_dma_write(struct ferry_dm *dm, uint64_t gpa,
                                        const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Device types                                                        */

struct ferry_dm_device_type {
    const char *name;           /* "uart", "rtc", ... (command line, QMP driver) */
    const char *desc;           /* one line for --help and query-device-types */
    bool hotplug;               /* device_add/device_del at run time */
    /*
     * Syscalls this type needs beyond the base list of a confined ferry-dm
     * (sandbox/sandbox.h), defined in the device's source: every type
     * states one, FERRY_SYSCALL_LIST_NONE when the base list is enough.
     */
    const struct ferry_syscall_list *syscalls;
    /*
     * Create one instance: parse opts, allocate state, add regions and
     * irqs; on failure undo what was done (goto unwind) and return -errno.
     * Regions and irqs added through dev are removed by the framework.
     */
    int (*init)(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                void **state);
    void (*exit)(void *state);              /* free what init allocated */
    void (*reset)(void *state);             /* power-on state */
    void (*powerdown)(void *state);         /* optional: the power button was pressed */
    /* Optional: the guest leaves S3 for this reason (after every device was reset). */
    void (*wakeup)(void *state, enum ferry_dm_wake_reason reason);
    /*
     * Optional: the device model is running (claims made, backend wired):
     * for what needs the hypervisor, e.g. irqfds the device owns.  Called
     * by dm_start, or right after init for a device added later.
     * A failure is logged; the device stays.
     */
    int (*start)(void *state);
    /* Save/restore the guest-visible state; restore checks what it reads. */
    int (*save)(void *state, GByteArray *out);
    int (*restore)(void *state, const uint8_t *buf, size_t len);
    /* Optional: add this instance's properties (members) to its
     * query-devices entry, an object. */
    void (*query)(void *state, json_t *entry);
    /*
     * Optional, replacing ferry-dm (docs/ferry-dm.md, "Replacing ferry-dm"):
     * put the fds this instance hands its successor in fds (at most max;
     * they stay this process's) and make what they stand for outlive this
     * process; the count, or -errno to refuse the replace.  The successor's
     * instance finds them in init with dm_device_inherited_fds.
     * handover_abort: the replace failed, this process keeps serving.
     */
    int (*handover_fds)(void *state, int *fds, unsigned max);
    void (*handover_abort)(void *state);
};

/*
 * In a successor's init (a replace): the fds the predecessor's instance of
 * this device (the same id) handed over, now the caller's; the count (0:
 * none, start afresh; a missing slot is -1) or -E2BIG when more than max.
 */
int dm_device_inherited_fds(struct ferry_dm_device *dev, int *fds, unsigned max);
#define FERRY_DM_HANDOVER_DEV_FDS   16      /* per device */

/* Only for FERRY_DM_DEVICE_TYPE(); -ENOSPC when FERRY_DM_TYPES_MAX are taken. */
int dm_device_type_register(const struct ferry_dm_device_type *type);
const struct ferry_dm_device_type *dm_device_type_find(const char *name);
/* Types in registration order; NULL past the end. */
const struct ferry_dm_device_type *dm_device_type_nth(unsigned i);

/*
 * Register a device type before main() runs.  Devices are linked whole
 * (link_whole / objects) so that their constructors are kept.
 */
#define FERRY_DM_DEVICE_TYPE(type_var)                                        \
    static void __attribute__((constructor)) dm_register_##type_var(void) \
    {                                                                         \
        (void)dm_device_type_register(&(type_var));                     \
    }

/* ------------------------------------------------------------------ */
/* Devices                                                             */

/*
 * Add an instance of type `type` with options (may be NULL).  id NULL picks
 * "<type><n>".  After dm_start only types with hotplug may be added.
 */
FERRY_MUST_CHECK int dm_device_add(struct ferry_dm *dm, const char *type,
                                         const char *id, const struct ferry_dm_opts *opts,
                                         struct ferry_dm_device **out);
/* Why the last dm_device_add failed: its first error line, or "". */
const char *dm_device_add_error(const struct ferry_dm *dm);
/*
 * Confinement (sandbox/sandbox.h).  dm_set_sandbox: the
 * configuration ferry-dm will confine itself with (kept by pointer; it
 * must outlive dm), for devices that start helpers (qemu's launcher drops
 * to the same user).  dm_set_confined: the syscall lists now
 * loaded: from then on, device_add refuses a type whose list is not among
 * them (-EPERM, with a log line naming the list), and a device type may
 * refuse what it cannot do confined (dm_confined()).
 */
void dm_set_sandbox(struct ferry_dm *dm, const struct ferry_sandbox_config *sbx);
const struct ferry_sandbox_config *dm_sandbox(const struct ferry_dm *dm);
void dm_set_confined(struct ferry_dm *dm, const struct ferry_syscall_list *const *lists,
                           size_t n);
bool dm_confined(const struct ferry_dm *dm);

/*
 * A USB host controller emulated by a QEMU that takes usb-redir devices
 * over QMP (the xhci device): ferry-dm's USB service serves host devices to
 * it (companion/dm-usb.h), as to a QEMU guest.  qmp names that QMP channel
 * (logs, the USB service's guest); fd is the connected QMP socket (owned by
 * dm until dm_usb_host_take_fd; closed on failure).  One per guest: -EEXIST
 * for a second.  dm_usb_host_restarted: that QEMU was restarted, fd the new
 * QEMU's QMP socket (or -1); the handler ferry-dm's program set with
 * dm_usb_host_set_handler owns fd, reconnects and plugs the devices in
 * again.
 */
FERRY_MUST_CHECK int dm_usb_host_set(struct ferry_dm *dm, const char *qmp, int fd);
const char *dm_usb_host_qmp(const struct ferry_dm *dm);       /* NULL if none */
int dm_usb_host_take_fd(struct ferry_dm *dm);                 /* -1 if none or taken */
void dm_usb_host_set_handler(struct ferry_dm *dm, void (*restarted)(void *opaque, int fd),
                             void *opaque);
void dm_usb_host_restarted(struct ferry_dm *dm, int fd);

/* Remove one (calls exit, releases its claims); -EBUSY if not hotpluggable while running. */
int dm_device_remove(struct ferry_dm *dm, const char *id);
struct ferry_dm_device *dm_device_find(struct ferry_dm *dm, const char *id);
size_t dm_device_count(const struct ferry_dm *dm);

struct ferry_dm *dm_device_dm(struct ferry_dm_device *dev);
const char *dm_device_id(const struct ferry_dm_device *dev);
const struct ferry_dm_device_type *dm_device_get_type(const struct ferry_dm_device *dev);
void *dm_device_state(struct ferry_dm_device *dev);

/* Save/restore every device: a sequence of (id, length, bytes) records. */
FERRY_MUST_CHECK int dm_save(struct ferry_dm *dm, GByteArray *out);
FERRY_MUST_CHECK int dm_restore(struct ferry_dm *dm, const uint8_t *buf, size_t len);

/* query-devices: a JSON array of the devices (json_decref it). */
json_t *dm_query_devices(struct ferry_dm *dm);

/* ferry-dm's own messages (not a device's): through the log callback, as they are. */
FERRY_PRINTF(3, 4) void dm_log(struct ferry_dm *dm, enum ferry_log_level level,
                                     const char *fmt, ...);
/* Log as "<type>[<id>] <level>: ...". */
FERRY_PRINTF(3, 4) void dm_dev_log(struct ferry_dm_device *dev,
                                         enum ferry_log_level level,
                                         const char *fmt, ...);
/* For what a guest can trigger: at most a few lines per interval per device. */
FERRY_PRINTF(2, 3) void dm_dev_guest_log(struct ferry_dm_device *dev,
                                               const char *fmt, ...);
/* The same at another level (guest events that are not warnings: a reset, a power-off). */
FERRY_PRINTF(3, 4) void dm_dev_guest_log_at(struct ferry_dm_device *dev,
                                                  enum ferry_log_level level,
                                                  const char *fmt, ...);

/* ------------------------------------------------------------------ */
/* Regions                                                             */

struct ferry_dm_region_ops {
    /* offset is from the region base; size is 1, 2, 4 or 8 and <= max_size. */
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
    unsigned max_size;          /* widest access the handlers take: 1, 2, 4 or 8 */
};

/*
 * Posted writes allowed: the device declares that a write to this region has
 * no effect the guest must wait for (no interrupt, no reply, nothing another
 * vCPU or the outside sees before the next access).  ferry-hv then queues
 * writes in the buffered ring without waiting (ports and MMIO below 1 MiB,
 * Xen's limit); any synchronous request to ferry-dm, a read of the same
 * region included, is handled only after every earlier posted write.  In a
 * burst the ring is drained on a timer: a write may take effect up to about
 * IOREQ_POSTED_DELAY_US (1 ms) late if no synchronous request comes first.
 */
#define FERRY_DM_REGION_BUFFERED  IOREQ_CLAIM_F_BUFFERED
#define FERRY_DM_REGION_UNMAPPED  (1u << 16)  /* add without decoding (a BAR not yet programmed) */

FERRY_MUST_CHECK int dm_region_add(struct ferry_dm_device *dev,
                                         enum ferry_dm_space space, uint64_t base,
                                         uint64_t len, const struct ferry_dm_region_ops *ops,
                                         void *opaque, uint32_t flags,
                                         struct ferry_dm_region **out);
/*
 * Move a region (a BAR the guest reprogrammed): releases the old claim and
 * claims the new range.  -EEXIST if the new range overlaps another region
 * (the region is then left unmapped, as a conflicting BAR decodes nothing).
 */
int dm_region_move(struct ferry_dm_region *r, uint64_t new_base);
/* Stop decoding (BAR disabled) / decode again at the current base. */
int dm_region_unmap(struct ferry_dm_region *r);
int dm_region_map(struct ferry_dm_region *r);
void dm_region_del(struct ferry_dm_region *r);
uint64_t dm_region_base(const struct ferry_dm_region *r);
bool dm_region_mapped(const struct ferry_dm_region *r);

/* ------------------------------------------------------------------ */
/* PCI                                                                 */

struct ferry_pci_bus;
struct ferry_pci_func;
struct ferry_pci_func_info;
struct ferry_dm_pci;

/* The guest's PCI bus (set by the pci-host device), or NULL. */
struct ferry_pci_bus *dm_pci_bus(struct ferry_dm *dm);
void dm_set_pci_bus(struct ferry_dm *dm, struct ferry_pci_bus *bus);

/*
 * The addr= option of a PCI device: "DEV" or "DEV.FN", DEV in hex 1..1f
 * (device 0 is the host bridge), FN 0..7.  NULL (no option) gives -1: the
 * bus picks a free slot.  -EINVAL for anything else.
 */
FERRY_MUST_CHECK int dm_pci_parse_addr(const char *s, int *devfn);

/*
 * A device's PCI function (pci/'s model) whose BARs are framework regions:
 * when the guest programs or disables a BAR, the region (and its claim)
 * moves with it; a BAR that would overlap another region is not decoded.
 * Create, declare BARs, plug; everything goes with the device.
 */
FERRY_MUST_CHECK int dm_pci_create(struct ferry_dm_device *dev,
                                         const struct ferry_pci_func_info *info,
                                         struct ferry_dm_pci **out);
/* BAR bar (0..5) of kind FERRY_PCI_BAR_* and size, served by ops/opaque. */
FERRY_MUST_CHECK int dm_pci_bar(struct ferry_dm_pci *p, unsigned bar, uint32_t kind,
                                      uint64_t size, const struct ferry_dm_region_ops *ops,
                                      void *opaque);
/* Put the function on the bus at devfn, or at the first free slot (device 1..31) if < 0. */
FERRY_MUST_CHECK int dm_pci_plug(struct ferry_dm_pci *p, int devfn);
struct ferry_pci_func *dm_pci_func(struct ferry_dm_pci *p);
/* INTx of the function (level; the bus routes it to GSI 16..19). */
void dm_pci_set_irq(struct ferry_dm_pci *p, bool level);
/*
 * Signal MSI/MSI-X vector `vector` of the function (pci_func_msi_notify's
 * results: 1 sent, 0 masked and pending, -ENODEV when the guest enabled
 * neither MSI nor MSI-X, so the device should use INTx).
 */
int dm_pci_msi_notify(struct ferry_dm_pci *p, unsigned vector);

/*
 * A PCI function whose config space lives outside pci/'s model (the
 * QEMU-remote engine): config ioreqs for bus 0, devfn go to read/write
 * (reg < 4096, size 1, 2 or 4, naturally aligned: others are split into
 * bytes first).  -EBUSY if devfn is taken by either kind of function.
 * Released with the device.  devfn < 0 picks the first free slot
 * (device 1..31, function 0); the chosen devfn is returned.
 */
struct ferry_dm_pci_ext_ops {
    uint32_t (*read)(void *opaque, uint32_t reg, unsigned size);
    void (*write)(void *opaque, uint32_t reg, unsigned size, uint32_t val);
};
FERRY_MUST_CHECK int dm_pci_ext_add(struct ferry_dm_device *dev, int devfn,
                                          const struct ferry_dm_pci_ext_ops *ops,
                                          void *opaque);
/* True if bus 0 devfn has a function of either kind. */
bool dm_pci_devfn_taken(struct ferry_dm *dm, unsigned devfn);

/* ------------------------------------------------------------------ */
/* Interrupt lines                                                     */

enum ferry_dm_irq_kind {
    FERRY_DM_IRQ_EDGE,      /* ISA: a rising level sends one edge */
    FERRY_DM_IRQ_LEVEL,     /* PCI INTx, SCI: held while asserted (resample) */
};

/*
 * One device's connection to a GSI.  Several devices may share a level GSI
 * (the line is the OR of them).  Delivery is an irqfd registered with the
 * backend (with a resample fd for level lines) or, if that fails,
 * backend irq_line calls.
 */
FERRY_MUST_CHECK int dm_irq_add(struct ferry_dm_device *dev, uint32_t gsi,
                                      enum ferry_dm_irq_kind kind,
                                      struct ferry_dm_irq **out);
void dm_irq_set(struct ferry_dm_irq *irq, bool level);
bool dm_irq_level(const struct ferry_dm_irq *irq);
uint32_t dm_irq_gsi(const struct ferry_dm_irq *irq);
/* Edges and assertions delivered on this line so far (tests, query). */
uint64_t dm_irq_count(const struct ferry_dm_irq *irq);

/*
 * Set the level of GSI gsi through the backend's irq_line hook at once
 * (KVM_IRQ_LINE in ferry-hv): the hypervisor has the new level before this
 * returns, so before the guest access that asked for it completes, and the
 * interrupt controller alone decides edge or level from how the guest
 * programmed it.  For test devices that drive lines as QEMU's
 * qemu_set_irq() does (pc-testdev); no irqfd, no sharing: a device that
 * uses it lowers what it raised on reset and exit.  -ENOSYS without an
 * irq_line hook, -ENOTCONN before dm_start.
 */
int dm_gsi_set_level(struct ferry_dm *dm, uint32_t gsi, bool level);

/*
 * For a device whose interrupt eventfds come from elsewhere (e.g. a QEMU
 * process signalling an irqfd itself): wire fd (and resample_fd, or -1)
 * to gsi in the hypervisor directly.  -ENOTCONN before dm_start,
 * -ENOSYS when the backend has no irqfds.  The caller owns the fds and
 * deassigns (assign = false) before closing them.
 */
FERRY_MUST_CHECK int dm_irqfd_assign(struct ferry_dm *dm, uint32_t gsi, int fd,
                                           int resample_fd, bool assign);

/* ------------------------------------------------------------------ */
/* Options: "key=value,key=value" (QEMU -device style, ",," is a comma)  */

FERRY_MUST_CHECK int dm_opts_parse(const char *s, struct ferry_dm_opts **out);
struct ferry_dm_opts *dm_opts_new(void);
FERRY_MUST_CHECK int dm_opts_set(struct ferry_dm_opts *o, const char *key,
                                       const char *value);
void dm_opts_free(struct ferry_dm_opts *o);
/* NULL when absent. */
const char *dm_opts_get(const struct ferry_dm_opts *o, const char *key);
/* Integer (0x.. accepted): def when absent, -EINVAL if malformed or > max. */
FERRY_MUST_CHECK int dm_opts_get_u64(const struct ferry_dm_opts *o, const char *key,
                                           uint64_t def, uint64_t max, uint64_t *out);
size_t dm_opts_count(const struct ferry_dm_opts *o);
const char *dm_opts_key(const struct ferry_dm_opts *o, size_t i);
/* -EINVAL naming the first key not in the NULL-terminated list. */
int dm_opts_check(const struct ferry_dm_opts *o, const char *const *known,
                        const char **bad_key);

#endif /* FERRY_DM_H */
