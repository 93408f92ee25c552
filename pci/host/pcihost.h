/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libferry-pcihost: host PCI devices through libpci (pciutils) and sysfs.
 *
 *  - inventory: every device with ident, class, IRQ, BARs and sizes,
 *    capabilities, extended capabilities, IOMMU group, NUMA node, physical
 *    slot, bound driver and parent bridge (pcihost_scan);
 *  - readiness for VFIO passthrough: one verdict per topic with its reason
 *    (pcihost_check);
 *  - preparation: bind a device (or its whole IOMMU group) to vfio-pci through
 *    driver_override and the driver's bind/unbind files, remember the driver
 *    it had, and give it back on release (pcihost_prepare/pcihost_release).
 *
 * All paths hang off configurable roots so the tests can point the library at
 * a recorded tree: sysfs_root ("/sys"), proc_root ("/proc"), state_dir
 * ("/run/ferry/pci").  Config space comes from libpci's Linux sysfs method, or
 * from an `lspci -xxxx` dump file (libpci's dump method) when dump_file is set.
 *
 * No printing, no exit: errors are returned as -errno with a message in the
 * context (pcihost_last_error) and logged through ops->log.
 */
#ifndef FERRY_PCIHOST_H
#define FERRY_PCIHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ferry-log.h"

#define FERRY_PCIHOST_BARS       6
#define FERRY_PCIHOST_CAPS_MAX   48     /* standard + extended, per device */
#define FERRY_PCIHOST_DEVS_MAX   4096   /* devices in one scan */
#define FERRY_PCIHOST_NAME_MAX   128
#define FERRY_PCIHOST_FINDINGS_MAX 24
#define FERRY_PCIHOST_GROUP_MAX  64
#define FERRY_PCI_ADDR_STRLEN    16     /* "dddd:bb:dd.f" + NUL, rounded */

struct ferry_pci_addr {
    uint16_t domain;
    uint8_t bus, dev, fn;
};

/* "dddd:bb:dd.f" or "bb:dd.f" (domain 0); hex; strict.  0 or -EINVAL. */
int pcihost_addr_parse(const char *s, struct ferry_pci_addr *out) FERRY_MUST_CHECK;
/* Always "dddd:bb:dd.f". */
void pcihost_addr_format(const struct ferry_pci_addr *a, char buf[FERRY_PCI_ADDR_STRLEN]);
bool pcihost_addr_equal(const struct ferry_pci_addr *a, const struct ferry_pci_addr *b);

struct ferry_pcihost_bar {
    bool present;
    bool io;            /* I/O space, else memory */
    bool mem64;
    bool prefetch;
    uint64_t addr;      /* without flag bits; 0 when unassigned */
    uint64_t size;      /* 0 when the access method cannot tell (dump) */
};

struct ferry_pcihost_cap {
    uint16_t id;
    uint16_t offset;
    bool ext;           /* PCIe extended capability (offset >= 0x100) */
    uint8_t version;    /* extended capabilities only */
};

enum ferry_pcihost_hidden {
    FERRY_PCIHOST_HIDDEN_CAPS = 1u << 0,   /* config space past 64 bytes (needs root) */
    FERRY_PCIHOST_HIDDEN_EXT  = 1u << 1,   /* extended config space (no ECAM/root) */
    FERRY_PCIHOST_HIDDEN_SIZES = 1u << 2,  /* BAR sizes (dump has none) */
    FERRY_PCIHOST_HIDDEN_SYSFS = 1u << 3,  /* no sysfs entry: group/driver/numa unknown */
};

struct ferry_pcihost_dev {
    struct ferry_pci_addr addr;
    char name[FERRY_PCI_ADDR_STRLEN];      /* "dddd:bb:dd.f" */
    uint16_t vendor_id, device_id;
    uint16_t subsys_vendor_id, subsys_id;
    uint16_t class_id;                     /* base << 8 | sub */
    uint8_t prog_if, revision;
    uint8_t header_type;                   /* low 7 bits */
    bool multifunction;
    uint8_t irq_pin;                       /* 0 none, 1..4 = INTA..INTD */
    int irq;                               /* as the OS reports it */
    struct ferry_pcihost_bar bars[FERRY_PCIHOST_BARS];
    struct ferry_pcihost_bar rom;
    size_t ncaps;
    struct ferry_pcihost_cap caps[FERRY_PCIHOST_CAPS_MAX];
    char vendor_name[FERRY_PCIHOST_NAME_MAX];
    char device_name[FERRY_PCIHOST_NAME_MAX];
    char class_name[FERRY_PCIHOST_NAME_MAX];
    int iommu_group;                       /* -1: none */
    int numa_node;                         /* -1: none/unknown */
    char phys_slot[32];                    /* "" none */
    char driver[64];                       /* "" none */
    int parent;                            /* index of upstream bridge, -1 root bus */
    uint8_t secondary_bus, subordinate_bus;/* bridges only */
    unsigned hidden;                       /* FERRY_PCIHOST_HIDDEN_* */
};

struct ferry_pcihost_ops {
    ferry_log_fn log;
    void *log_opaque;
    /* Optional: called before each step of prepare/release ("override",
     * "unbind", "probe", "restore"...).  Tests use it to interrupt a job. */
    void (*step)(void *opaque, const char *dev, const char *step);
    void *step_opaque;
};

struct ferry_pcihost_config {
    const char *sysfs_root;  /* NULL: "/sys" */
    const char *proc_root;   /* NULL: "/proc" */
    const char *state_dir;   /* NULL: "/run/ferry/pci" */
    const char *dump_file;   /* NULL: live system through sysfs */
    const char *ids_file;    /* NULL: libpci's default pci.ids */
};

struct ferry_pcihost;

/* NULL with errno set on failure (message through ops->log). */
struct ferry_pcihost *pcihost_open(const struct ferry_pcihost_ops *ops,
                                   const struct ferry_pcihost_config *cfg);
void pcihost_close(struct ferry_pcihost *h);
/* The message of the last failed call ("" if none). */
const char *pcihost_last_error(const struct ferry_pcihost *h);

/* (Re)reads every device.  0 or -errno. */
int pcihost_scan(struct ferry_pcihost *h) FERRY_MUST_CHECK;
size_t pcihost_dev_count(const struct ferry_pcihost *h);
const struct ferry_pcihost_dev *pcihost_dev_get(const struct ferry_pcihost *h, size_t i);
const struct ferry_pcihost_dev *pcihost_dev_find(const struct ferry_pcihost *h,
                                                 const struct ferry_pci_addr *a);
/* Which facts the live system hides from this process (FERRY_PCIHOST_HIDDEN_*
 * of any device), for the "what is hidden" line. */
unsigned pcihost_hidden(const struct ferry_pcihost *h);
/* The first capability with that id (standard or extended), or NULL. */
const struct ferry_pcihost_cap *pcihost_cap_find(const struct ferry_pcihost_dev *d,
                                                 uint16_t id, bool ext);
/* Short lowercase name of a capability ("pm", "msi", "exp", "aer"...). */
const char *pcihost_cap_name(const struct ferry_pcihost_cap *c);

/* ---- readiness report ---- */
enum ferry_pcihost_verdict {
    FERRY_PCIHOST_PASS = 0,
    FERRY_PCIHOST_INFO,
    FERRY_PCIHOST_WARN,
    FERRY_PCIHOST_FAIL,
};
const char *pcihost_verdict_name(enum ferry_pcihost_verdict v);

struct ferry_pcihost_finding {
    const char *check;  /* "device", "iommu", "group", "interrupt-remapping",
                           "reset", "acs", "vga", "driver" */
    enum ferry_pcihost_verdict verdict;
    char reason[384];
};

enum ferry_pcihost_reset {
    FERRY_PCIHOST_RESET_FLR    = 1u << 0,  /* PCIe DevCap FLR */
    FERRY_PCIHOST_RESET_AF_FLR = 1u << 1,  /* Advanced Features FLR */
    FERRY_PCIHOST_RESET_PM     = 1u << 2,  /* D3hot->D0 with NoSoftRst clear */
    FERRY_PCIHOST_RESET_BUS    = 1u << 3,  /* secondary bus reset, alone on its bus */
};

struct ferry_pcihost_member {
    char name[FERRY_PCI_ADDR_STRLEN];
    char driver[64];
    bool bridge;
};

struct ferry_pcihost_report {
    char dev[FERRY_PCI_ADDR_STRLEN];
    bool ready;                     /* no FAIL */
    int iommu_group;                /* -1 none */
    size_t nmembers;                /* including the device itself */
    struct ferry_pcihost_member members[FERRY_PCIHOST_GROUP_MAX];
    unsigned resets;                /* FERRY_PCIHOST_RESET_* */
    char kernel_reset_method[64];   /* sysfs reset_method, "" if absent */
    bool holds_rootfs;              /* its driver serves the root filesystem */
    size_t n;
    struct ferry_pcihost_finding f[FERRY_PCIHOST_FINDINGS_MAX];
};

/* Fills *r for device a (after pcihost_scan).  0 or -ENODEV. */
int pcihost_check(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                  struct ferry_pcihost_report *r) FERRY_MUST_CHECK;

/* ---- preparation ---- */
enum ferry_pcihost_prepare_flags {
    FERRY_PCIHOST_PREPARE_GROUP = 1u << 0,  /* also bind the other group members */
    FERRY_PCIHOST_PREPARE_FORCE = 1u << 1,  /* bind even if a host driver holds something */
};

/* Bind to vfio-pci.  Idempotent; a rerun finishes an interrupted job.  On
 * failure the device is left bound to a driver (its own when possible). */
int pcihost_prepare(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                    unsigned flags) FERRY_MUST_CHECK;
/* Give the device (and group members ferry prepared) back to their original
 * drivers.  Idempotent.  -EIO when an original driver does not take its
 * device back; its record is kept, so that a later release retries. */
int pcihost_release(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                    unsigned flags) FERRY_MUST_CHECK;

/* The current driver of a device straight from sysfs ("" for none). */
int pcihost_driver_get(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                       char *buf, size_t len) FERRY_MUST_CHECK;

#endif /* FERRY_PCIHOST_H */
