/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the framework: what its pieces share (dm.c, dm-region.c,
 * dm-irq.c, dm-device.c, dm-memory.c, dm-pci.c).  Devices use dm.h only.
 */
#ifndef FERRY_DM_INTERNAL_H
#define FERRY_DM_INTERNAL_H

#include "devmodel/dm.h"

#define FERRY_DM_MSI_FDS 32     /* distinct MSI messages with an irqfd at once */

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
    struct dm_msi_fd {
        bool used;
        uint64_t address;
        uint32_t data;
        int efd;
        uint32_t cookie;
        uint64_t last_use;
    } msi_fds[FERRY_DM_MSI_FDS];        /* MSIs with an irqfd of their own */
    uint32_t msi_cookie;
    uint64_t msi_clock;
    bool msi_route_off;                 /* the backend cannot route: every MSI synchronous */
    struct ferry_dm_stats stats;
    struct ferry_ratelimit rl;
    unsigned nr_vcpus;                  /* 0: unknown */
    uint32_t wake_enabled;              /* bit per enum ferry_dm_wake_reason */
    bool adding;                        /* inside dm_device_add */
    uint64_t devices_gen;               /* +1 on every device added or removed (a replace) */
    bool taking_over;                   /* a replace's restore: lines' levels are set, not
                                         * delivered (the predecessor delivered them) */
    char add_error[400];                /* its first error line, for the caller */
    const struct ferry_sandbox_config *sandbox;
    bool confined;
    struct {                            /* a USB controller's QEMU (dm_usb_host_set) */
        char qmp[108];
        int fd;                         /* its QMP socket until taken, or -1 */
        void (*restarted)(void *opaque, int fd);
        void *opaque;
    } usb_host;
    const struct ferry_syscall_list *lists[FERRY_DM_TYPES_MAX + 4];   /* loaded when confined */
    size_t nr_lists;
};

/* dm.c: guest-triggered framework log lines, rate-limited (others: dm_log). */
FERRY_PRINTF(3, 4) void dm_guest_log_at(struct ferry_dm *dm, enum ferry_log_level level,
                                        const char *fmt, ...);
#define dm_guest_log(dm, ...) dm_guest_log_at(dm, FERRY_LOG_WARNING, __VA_ARGS__)

/* dm-region.c */
const char *dm_space_name(enum ferry_dm_space space);
int dm_region_claim(struct ferry_dm_region *r);

/* dm-irq.c */
void dm_gsi_free(gpointer p);
void dm_gsis_start(struct ferry_dm *dm);
/* dm-handover.c: a GSI's irqfd and resample fd from the predecessor (now the caller's). */
bool dm_gsi_inherited(uint32_t gsi, int *efd, int *resample_fd);
void dm_irq_free(struct ferry_dm_irq *irq);

/* dm-device.c */
void dm_device_free(struct ferry_dm_device *dev);

/* The device owns p from now on: destroyed (unplugged) before its regions go. */
void dm_device_track_pci(struct ferry_dm_device *dev, struct ferry_dm_pci *p);
void dm_pci_destroy(struct ferry_dm_pci *p);
/* bus 0 devfn holds a pci/ function (dm-pci.c; keeps dm.c free of pci.h). */
bool dm_pci_bus_has(struct ferry_pci_bus *bus, unsigned devfn);

#endif
