// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Save and restore of one function's guest-visible state as a flat,
 * versioned blob (see pci_func_save in pci.h for what is taken back).
 */
#include <errno.h>
#include <string.h>

#include "pci/pci-internal.h"

/*
 * Header, all little-endian:
 *   0  u32 magic            FERRY_PCI_SAVE_MAGIC
 *   4  u16 version          FERRY_PCI_SAVE_VERSION
 *   6  u16 header length    SAVE_HDR_LEN
 *   8  u32 total length     header + config + table + pba
 *  12  u16 vendor id, 14 u16 device id
 *  16  u8 header type, 17 u8 flags (bit 0: INTx level), 18 u16 zero
 *  20  u32 MSI pending bits (MSI without per-vector masking)
 *  24  u32 MSI-X table length, 28 u32 MSI-X PBA length
 * then the 4 KiB config space, the MSI-X table, the PBA.
 */
#define SAVE_HDR_LEN        32u
#define SAVE_FLAG_IRQ       0x01u

size_t pci_func_save_size(const struct ferry_pci_func *fn)
{
    return SAVE_HDR_LEN + PCI_CFG_SPACE + fn->msix.table_len + fn->msix.pba_len;
}

int pci_func_save(const struct ferry_pci_func *fn, void *buf, size_t len)
{
    size_t need = pci_func_save_size(fn);
    uint8_t *p = buf;

    if (len < need)
        return -ENOSPC;
    memset(p, 0, SAVE_HDR_LEN);
    pci_put32(p, FERRY_PCI_SAVE_MAGIC);
    pci_put16(p + 4, FERRY_PCI_SAVE_VERSION);
    pci_put16(p + 6, SAVE_HDR_LEN);
    pci_put32(p + 8, (uint32_t)need);
    memcpy(p + 12, fn->cfg + FERRY_PCI_VENDOR_ID, 4);
    p[16] = fn->header_type;
    p[17] = fn->irq_level ? SAVE_FLAG_IRQ : 0;
    pci_put32(p + 20, fn->msi.pending);
    pci_put32(p + 24, fn->msix.table_len);
    pci_put32(p + 28, fn->msix.pba_len);
    memcpy(p + SAVE_HDR_LEN, fn->cfg, PCI_CFG_SPACE);
    pci_msix_save(fn, p + SAVE_HDR_LEN + PCI_CFG_SPACE,
                  p + SAVE_HDR_LEN + PCI_CFG_SPACE + fn->msix.table_len);
    return 0;
}

int pci_func_restore(struct ferry_pci_func *fn, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    const uint8_t *cfg = p + SAVE_HDR_LEN;
    size_t need = pci_func_save_size(fn);
    unsigned msi_pend = 0;

    /* Everything is checked before anything changes. */
    if (len < SAVE_HDR_LEN || len != need)
        return -EINVAL;
    if (pci_get32(p) != FERRY_PCI_SAVE_MAGIC || pci_get16(p + 4) != FERRY_PCI_SAVE_VERSION ||
        pci_get16(p + 6) != SAVE_HDR_LEN || pci_get32(p + 8) != need)
        return -EINVAL;
    if (memcmp(p + 12, fn->cfg + FERRY_PCI_VENDOR_ID, 4) != 0 || p[16] != fn->header_type ||
        pci_get32(p + 24) != fn->msix.table_len || pci_get32(p + 28) != fn->msix.pba_len)
        return -EINVAL;

    for (unsigned i = 0; i < PCI_CFG_SPACE; i++) {
        uint8_t m = fn->wmask[i] | fn->w1cmask[i];

        fn->cfg[i] = (uint8_t)((fn->cfg[i] & ~m) | (cfg[i] & m));
    }
    /* MSI pending bits are the device's, not under a write mask. */
    if (fn->msi.off) {
        uint32_t valid = fn->msi.nvec == 32 ? 0xffffffffu : (1u << fn->msi.nvec) - 1;

        if (fn->msi.flags & FERRY_PCI_MSI_MASKABLE) {
            msi_pend = fn->msi.off + ((fn->msi.flags & FERRY_PCI_MSI_64BIT) ? 0x14 : 0x10);
            pci_put32(fn->cfg + msi_pend, pci_get32(cfg + msi_pend) & valid);
        } else {
            fn->msi.pending = pci_get32(p + 20) & valid;
        }
    }
    fn->irq_level = fn->intx_pin && (p[17] & SAVE_FLAG_IRQ);

    pci_func_bars_update(fn);
    pci_func_irq_update(fn);
    pci_msix_restore(fn, cfg + PCI_CFG_SPACE, cfg + PCI_CFG_SPACE + fn->msix.table_len);
    /* MSI (and the MSI-X control word) through the config-write path. */
    pci_msi_config_written(fn, 0, PCI_CFG_SPACE);
    return 0;
}
