/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libferry-pci internals shared by func.c, msi.c and bus.c. */
#ifndef FERRY_PCI_INTERNAL_H
#define FERRY_PCI_INTERNAL_H

#include "pci/pcimodel.h"

#define PCI_CFG_SPACE           FERRY_PCI_EXT_CONFIG_SIZE
#define PCI_CAPS_MAX            64          /* conventional + extended */
#define PCI_CAP_WALK_MAX        64          /* loop guard for list walks */
#define PCI_NAME_MAX            32
#define PCI_DEVFN_MAX           256
#define PCI_BRIDGE_DEPTH_MAX    8           /* bridges behind bridges */

/* Internal BAR kind of the upper half of a 64-bit BAR. */
#define PCI_BAR_UPPER           0x100u

struct pcim_bar {
    uint32_t kind;                  /* 0: none; FERRY_PCI_BAR_* or PCI_BAR_UPPER */
    uint64_t size;
    struct ferry_pci_bar_range cur; /* what the device model has claimed */
};

struct pcim_cap {
    uint16_t off;
    uint16_t len;
    uint16_t id;
    uint8_t version;                /* extended only */
    bool ext;
    bool hidden;
};

struct pcim_msi {
    unsigned off;                   /* 0: no MSI capability */
    unsigned nvec;
    uint32_t flags;
    uint32_t pending;               /* when not maskable (else in config) */
    struct ferry_pci_msi_vector last[FERRY_PCI_MSI_VECTORS_MAX];
};

struct pcim_msix {
    unsigned off;                   /* 0: no MSI-X capability */
    unsigned nvec;
    unsigned table_bar, pba_bar;
    uint32_t table_off, pba_off;
    uint32_t table_len, pba_len;    /* bytes */
    uint8_t *table;                 /* nvec * 16 bytes */
    uint8_t *pba;                   /* pba_len bytes, little-endian bit array */
    struct ferry_pci_msi_vector *last;
};

struct ferry_pci_func {
    char name[PCI_NAME_MAX];
    const struct ferry_pci_func_ops *ops;
    void *opaque;
    struct ferry_pci_bus *bus;      /* NULL when unplugged */
    struct ferry_pci_func *parent;  /* the bridge it sits behind, NULL on bus 0 */
    struct ferry_pci_func **children;   /* type 1: PCI_DEVFN_MAX slots of its secondary bus */
    uint8_t devfn;
    uint8_t header_type;            /* 0 or 1 */
    uint8_t intx_pin;
    uint32_t gsi;
    bool irq_level;                 /* what the device drives */
    bool irq_out;                   /* what reaches the bus */
    bool in_update;                 /* guards BAR update recursion */

    struct pcim_bar bars[FERRY_PCI_NUM_REGIONS];
    struct pcim_cap caps[PCI_CAPS_MAX];
    unsigned ncaps;
    struct pcim_msi msi;
    struct pcim_msix msix;
    struct ferry_ratelimit rl;

    uint8_t cfg[PCI_CFG_SPACE];     /* current contents */
    uint8_t wmask[PCI_CFG_SPACE];   /* read-write bits */
    uint8_t w1cmask[PCI_CFG_SPACE]; /* write-1-to-clear bits */
    uint8_t def[PCI_CFG_SPACE];     /* power-on values */
    uint8_t used[PCI_CFG_SPACE];    /* bytes owned by the header or a capability */
};

/* Little-endian helpers on config bytes. */
static inline uint16_t pci_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pci_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void pci_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Sets current and power-on value. */
void pci_func_init_bytes(struct ferry_pci_func *fn, uint32_t reg, uint32_t val, unsigned len);
void pci_func_init_masks(struct ferry_pci_func *fn, uint32_t reg, uint32_t wmask,
                         uint32_t w1cmask, unsigned len);

const char *pci_log_level_name(enum ferry_log_level level);
FERRY_PRINTF(3, 4)
void pci_func_log(struct ferry_pci_func *fn, enum ferry_log_level level,
                  const char *fmt, ...);
/* The same, rate-limited (guest-triggerable events). */
FERRY_PRINTF(3, 4)
void pci_func_log_rl(struct ferry_pci_func *fn, enum ferry_log_level level,
                     const char *fmt, ...);

/* msi.c: after a guest config write touched [reg, reg + len). */
void pci_msi_config_written(struct ferry_pci_func *fn, uint32_t reg, unsigned len);
/* msi.c: reset MSI/MSI-X state (after config bytes are back to power-on). */
void pci_msi_reset(struct ferry_pci_func *fn);
void pci_msi_free(struct ferry_pci_func *fn);

/* msi.c: MSI-X table/PBA for save/restore (restore applies the masks). */
void pci_msix_save(const struct ferry_pci_func *fn, uint8_t *table, uint8_t *pba);
void pci_msix_restore(struct ferry_pci_func *fn, const uint8_t *table, const uint8_t *pba);

/* func.c: side effects after config bytes changed behind the guest's back. */
void pci_func_bars_update(struct ferry_pci_func *fn);
void pci_func_irq_update(struct ferry_pci_func *fn);

/* bus.c: hooks called by func.c. */
/* 0 if [addr, addr + size) may decode, or -EADDRINUSE (logged). */
int pci_bus_check_range(struct ferry_pci_bus *bus, struct ferry_pci_func *fn,
                        unsigned bar, const struct ferry_pci_bar_range *r);
void pci_bus_irq_change(struct ferry_pci_bus *bus, struct ferry_pci_func *fn, bool level);
ferry_log_fn pci_bus_log_fn(const struct ferry_pci_bus *bus, void **opaque);

/* The bus and slot for log lines: "00:03.0" or the name. */
void pci_func_instance(const struct ferry_pci_func *fn, char *buf, size_t len);

#endif /* FERRY_PCI_INTERNAL_H */
