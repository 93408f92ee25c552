// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * MSI and MSI-X: the capabilities, the MSI-X table and PBA behind a BAR,
 * masking and pending bits, and the callbacks that tell the device model
 * what each vector looks like and when one fires.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci-internal.h"

#define MSI_CTRL_ENABLE         0x0001u
#define MSI_CTRL_MME_SHIFT      4
#define MSI_CTRL_64BIT          0x0080u
#define MSI_CTRL_MASKABLE       0x0100u
#define MSIX_CTRL_MASKALL       0x4000u
#define MSIX_CTRL_ENABLE        0x8000u
#define MSIX_ENTRY_SIZE         16u
#define MSIX_ENTRY_CTRL         12u
#define MSIX_CAP_LEN            12u

/* ---- MSI ---- */

static unsigned msi_data_off(const struct ferry_pci_func *fn)
{
    return fn->msi.off + ((fn->msi.flags & FERRY_PCI_MSI_64BIT) ? 0xc : 0x8);
}

static unsigned msi_cap_len(uint32_t flags)
{
    unsigned len = (flags & FERRY_PCI_MSI_64BIT) ? 0xe : 0xa;

    return (flags & FERRY_PCI_MSI_MASKABLE) ? len + 0xa : len;
}

static unsigned msi_enabled_count(const struct ferry_pci_func *fn)
{
    uint16_t ctrl = pci_get16(fn->cfg + fn->msi.off + 2);
    unsigned n = 1u << ((ctrl >> MSI_CTRL_MME_SHIFT) & 7);

    if (!(ctrl & MSI_CTRL_ENABLE))
        return 0;
    return n < fn->msi.nvec ? n : fn->msi.nvec;
}

static uint32_t msi_pending(const struct ferry_pci_func *fn)
{
    if (fn->msi.flags & FERRY_PCI_MSI_MASKABLE)
        return pci_get32(fn->cfg + msi_data_off(fn) + 8);
    return fn->msi.pending;
}

static void msi_set_pending(struct ferry_pci_func *fn, uint32_t v)
{
    if (fn->msi.flags & FERRY_PCI_MSI_MASKABLE)
        pci_put32(fn->cfg + msi_data_off(fn) + 8, v);
    else
        fn->msi.pending = v;
}

static void msi_compute(const struct ferry_pci_func *fn, unsigned i,
                        struct ferry_pci_msi_vector *v)
{
    const uint8_t *c = fn->cfg + fn->msi.off;
    unsigned nen = msi_enabled_count(fn);
    uint32_t data = pci_get16(fn->cfg + msi_data_off(fn));

    *v = (struct ferry_pci_msi_vector){ .msix = false };
    v->msg.address = pci_get32(c + 4);
    if (fn->msi.flags & FERRY_PCI_MSI_64BIT)
        v->msg.address |= (uint64_t)pci_get32(c + 8) << 32;
    v->enabled = i < nen;
    /* Multiple messages: the low bits of the data carry the vector number. */
    if (v->enabled)
        data = (data & ~(nen - 1)) | i;
    v->msg.data = data;
    if (fn->msi.flags & FERRY_PCI_MSI_MASKABLE)
        v->masked = (pci_get32(fn->cfg + msi_data_off(fn) + 4) >> i) & 1;
}

/* ---- MSI-X ---- */

static uint16_t msix_ctrl(const struct ferry_pci_func *fn)
{
    return pci_get16(fn->cfg + fn->msix.off + 2);
}

static void msix_compute(const struct ferry_pci_func *fn, unsigned i,
                         struct ferry_pci_msi_vector *v)
{
    const uint8_t *e = fn->msix.table + (size_t)i * MSIX_ENTRY_SIZE;
    uint16_t ctrl = msix_ctrl(fn);

    *v = (struct ferry_pci_msi_vector){
        .msg.address = pci_get32(e) | (uint64_t)pci_get32(e + 4) << 32,
        .msg.data = pci_get32(e + 8),
        .enabled = ctrl & MSIX_CTRL_ENABLE,
        .masked = (ctrl & MSIX_CTRL_MASKALL) || (e[MSIX_ENTRY_CTRL] & 1),
        .msix = true,
    };
}

static bool pba_test_clear(struct ferry_pci_func *fn, unsigned i, bool clear)
{
    uint8_t bit = (uint8_t)(1u << (i % 8));
    bool set = fn->msix.pba[i / 8] & bit;

    if (clear)
        fn->msix.pba[i / 8] &= (uint8_t)~bit;
    return set;
}

/* ---- common ---- */

static bool master_enabled(const struct ferry_pci_func *fn)
{
    return pci_get16(fn->cfg + FERRY_PCI_COMMAND) & FERRY_PCI_COMMAND_MASTER;
}

static void send(struct ferry_pci_func *fn, unsigned vector, const struct ferry_pci_msi_msg *m)
{
    if (fn->ops && fn->ops->msi_send)
        fn->ops->msi_send(fn->opaque, fn, vector, m);
}

static bool vec_same(const struct ferry_pci_msi_vector *a, const struct ferry_pci_msi_vector *b)
{
    return a->msg.address == b->msg.address && a->msg.data == b->msg.data &&
           a->enabled == b->enabled && a->masked == b->masked && a->msix == b->msix;
}

/* Reports changed vectors; sends pending ones that got unmasked. */
static void msi_sync(struct ferry_pci_func *fn)
{
    for (unsigned i = 0; i < fn->msi.nvec; i++) {
        struct ferry_pci_msi_vector v;
        uint32_t pend;

        msi_compute(fn, i, &v);
        if (!vec_same(&v, &fn->msi.last[i])) {
            fn->msi.last[i] = v;
            if (fn->ops && fn->ops->msi_config)
                fn->ops->msi_config(fn->opaque, fn, i, &v);
        }
        pend = msi_pending(fn);
        if (v.enabled && !v.masked && (pend >> i & 1) && master_enabled(fn)) {
            msi_set_pending(fn, pend & ~(1u << i));
            send(fn, i, &v.msg);
        }
    }
}

static void msix_sync(struct ferry_pci_func *fn, unsigned first, unsigned last)
{
    for (unsigned i = first; i <= last && i < fn->msix.nvec; i++) {
        struct ferry_pci_msi_vector v;

        msix_compute(fn, i, &v);
        if (!vec_same(&v, &fn->msix.last[i])) {
            fn->msix.last[i] = v;
            if (fn->ops && fn->ops->msi_config)
                fn->ops->msi_config(fn->opaque, fn, i, &v);
        }
        if (v.enabled && !v.masked && master_enabled(fn) && pba_test_clear(fn, i, false)) {
            pba_test_clear(fn, i, true);
            send(fn, i, &v.msg);
        }
    }
}

static void msix_table_reset(struct ferry_pci_func *fn)
{
    memset(fn->msix.table, 0, fn->msix.table_len);
    memset(fn->msix.pba, 0, fn->msix.pba_len);
    for (unsigned i = 0; i < fn->msix.nvec; i++)
        fn->msix.table[(size_t)i * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL] = 1;
}

void pci_msi_config_written(struct ferry_pci_func *fn, uint32_t reg, unsigned len)
{
    bool cmd = reg < FERRY_PCI_COMMAND + 2 && FERRY_PCI_COMMAND < reg + len;

    /* Bus mastering turned on may release pending messages. */
    if (fn->msi.off && (cmd || (reg < fn->msi.off + msi_cap_len(fn->msi.flags) &&
                                fn->msi.off < reg + len)))
        msi_sync(fn);
    if (fn->msix.off && (cmd || (reg < fn->msix.off + MSIX_CAP_LEN && fn->msix.off < reg + len)))
        msix_sync(fn, 0, fn->msix.nvec - 1);
}

void pci_msi_reset(struct ferry_pci_func *fn)
{
    if (fn->msi.off) {
        msi_set_pending(fn, 0);
        msi_sync(fn);
    }
    if (fn->msix.off) {
        msix_table_reset(fn);
        msix_sync(fn, 0, fn->msix.nvec - 1);
    }
}

void pci_msi_free(struct ferry_pci_func *fn)
{
    free(fn->msix.table);
    free(fn->msix.pba);
    free(fn->msix.last);
}

int pci_func_msi_add(struct ferry_pci_func *fn, unsigned nvectors, uint32_t flags,
                     unsigned offset)
{
    unsigned log2n = 0, data;
    uint16_t ctrl;
    int off;

    if (fn->msi.off)
        return -EEXIST;
    if (!nvectors || nvectors > FERRY_PCI_MSI_VECTORS_MAX || (nvectors & (nvectors - 1)) ||
        (flags & ~(FERRY_PCI_MSI_64BIT | FERRY_PCI_MSI_MASKABLE)))
        return -EINVAL;
    while ((1u << log2n) < nvectors)
        log2n++;
    off = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_MSI, msi_cap_len(flags), offset);
    if (off < 0)
        return off;
    fn->msi.off = (unsigned)off;
    fn->msi.nvec = nvectors;
    fn->msi.flags = flags;
    ctrl = (uint16_t)(log2n << 1);
    if (flags & FERRY_PCI_MSI_64BIT)
        ctrl |= MSI_CTRL_64BIT;
    if (flags & FERRY_PCI_MSI_MASKABLE)
        ctrl |= MSI_CTRL_MASKABLE;
    pci_func_init_bytes(fn, (uint32_t)off + 2, ctrl, 2);
    pci_func_init_masks(fn, (uint32_t)off + 2, MSI_CTRL_ENABLE | 0x70, 0, 2);
    pci_func_init_masks(fn, (uint32_t)off + 4, 0xfffffffc, 0, 4);
    if (flags & FERRY_PCI_MSI_64BIT)
        pci_func_init_masks(fn, (uint32_t)off + 8, 0xffffffff, 0, 4);
    data = msi_data_off(fn);
    pci_func_init_masks(fn, data, 0xffff, 0, 2);
    if (flags & FERRY_PCI_MSI_MASKABLE)
        pci_func_init_masks(fn, data + 4, nvectors == 32 ? 0xffffffffu : (1u << nvectors) - 1,
                            0, 4);
    for (unsigned i = 0; i < nvectors; i++)
        msi_compute(fn, i, &fn->msi.last[i]);
    return off;
}

static bool bar_is_mem(const struct ferry_pci_func *fn, unsigned bar)
{
    uint32_t k = bar < FERRY_PCI_NUM_BARS ? fn->bars[bar].kind : 0;

    return k & (FERRY_PCI_BAR_MEM32 | FERRY_PCI_BAR_MEM64);
}

int pci_func_msix_add(struct ferry_pci_func *fn, unsigned nvectors, unsigned table_bar,
                      uint32_t table_offset, unsigned pba_bar, uint32_t pba_offset,
                      unsigned offset)
{
    uint32_t table_len, pba_len;
    int off;

    if (fn->msix.off)
        return -EEXIST;
    if (!nvectors || nvectors > FERRY_PCI_MSIX_VECTORS_MAX)
        return -EINVAL;
    if (!bar_is_mem(fn, table_bar) || !bar_is_mem(fn, pba_bar))
        return -EINVAL;
    if ((table_offset & 7) || (pba_offset & 7))
        return -EINVAL;
    table_len = nvectors * MSIX_ENTRY_SIZE;
    pba_len = (nvectors + 63) / 64 * 8;
    if ((uint64_t)table_offset + table_len > fn->bars[table_bar].size ||
        (uint64_t)pba_offset + pba_len > fn->bars[pba_bar].size)
        return -ERANGE;
    if (table_bar == pba_bar && table_offset < pba_offset + pba_len &&
        pba_offset < table_offset + table_len)
        return -EINVAL;

    fn->msix.table = calloc(1, table_len);
    fn->msix.pba = calloc(1, pba_len);
    fn->msix.last = calloc(nvectors, sizeof(*fn->msix.last));
    if (!fn->msix.table || !fn->msix.pba || !fn->msix.last)
        goto nomem;
    off = pci_func_cap_add(fn, FERRY_PCI_CAP_ID_MSIX, MSIX_CAP_LEN, offset);
    if (off < 0) {
        pci_msi_free(fn);
        fn->msix.table = NULL;
        fn->msix.pba = NULL;
        fn->msix.last = NULL;
        return off;
    }
    fn->msix.off = (unsigned)off;
    fn->msix.nvec = nvectors;
    fn->msix.table_bar = table_bar;
    fn->msix.pba_bar = pba_bar;
    fn->msix.table_off = table_offset;
    fn->msix.pba_off = pba_offset;
    fn->msix.table_len = table_len;
    fn->msix.pba_len = pba_len;
    pci_func_init_bytes(fn, (uint32_t)off + 2, nvectors - 1, 2);
    pci_func_init_masks(fn, (uint32_t)off + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL, 0, 2);
    pci_func_init_bytes(fn, (uint32_t)off + 4, table_offset | table_bar, 4);
    pci_func_init_bytes(fn, (uint32_t)off + 8, pba_offset | pba_bar, 4);
    msix_table_reset(fn);
    for (unsigned i = 0; i < nvectors; i++)
        msix_compute(fn, i, &fn->msix.last[i]);
    return off;

nomem:
    free(fn->msix.table);
    free(fn->msix.pba);
    free(fn->msix.last);
    fn->msix.table = NULL;
    fn->msix.pba = NULL;
    fn->msix.last = NULL;
    return -ENOMEM;
}

/* Guest-writable bits of byte p (0..15) of a table entry. */
static uint8_t msix_entry_wmask(unsigned p)
{
    if (p == 0)
        return 0xfc;                /* address bits 1:0 are zero */
    if (p < MSIX_ENTRY_CTRL)
        return 0xff;
    return p == MSIX_ENTRY_CTRL ? 0x01 : 0x00;
}

static bool msix_mmio(struct ferry_pci_func *fn, unsigned bar, uint64_t offset,
                      unsigned size, bool write, uint64_t *val)
{
    struct pcim_msix *x = &fn->msix;
    uint64_t rv = 0;
    bool hit = false;
    unsigned first = UINT32_MAX, last = 0;

    if (!x->off || size < 1 || size > 8)
        return false;
    for (unsigned k = 0; k < size; k++) {
        uint64_t o = offset + k;
        uint8_t b = write ? (uint8_t)(*val >> (8 * k)) : 0;

        if (o < offset)
            break;                  /* wrapped around: outside everything */
        if (bar == x->table_bar && o >= x->table_off && o - x->table_off < x->table_len) {
            uint32_t t = (uint32_t)(o - x->table_off);

            hit = true;
            if (write) {
                uint8_t wm = msix_entry_wmask(t % MSIX_ENTRY_SIZE);

                x->table[t] = (uint8_t)((x->table[t] & ~wm) | (b & wm));
                if (t / MSIX_ENTRY_SIZE < first)
                    first = t / MSIX_ENTRY_SIZE;
                last = t / MSIX_ENTRY_SIZE;
            } else {
                rv |= (uint64_t)x->table[t] << (8 * k);
            }
        } else if (bar == x->pba_bar && o >= x->pba_off && o - x->pba_off < x->pba_len) {
            hit = true;
            if (!write)
                rv |= (uint64_t)x->pba[o - x->pba_off] << (8 * k);
        }
    }
    if (!hit)
        return false;
    if (write && first != UINT32_MAX)
        msix_sync(fn, first, last);
    if (!write)
        *val = rv;
    return true;
}

bool pci_func_msix_mmio_read(struct ferry_pci_func *fn, unsigned bar, uint64_t offset,
                             unsigned size, uint64_t *val)
{
    return msix_mmio(fn, bar, offset, size, false, val);
}

bool pci_func_msix_mmio_write(struct ferry_pci_func *fn, unsigned bar, uint64_t offset,
                              unsigned size, uint64_t val)
{
    return msix_mmio(fn, bar, offset, size, true, &val);
}

bool pci_func_msix_enabled(const struct ferry_pci_func *fn)
{
    return fn->msix.off && (msix_ctrl(fn) & MSIX_CTRL_ENABLE);
}

bool pci_func_msi_enabled(const struct ferry_pci_func *fn)
{
    return fn->msi.off && msi_enabled_count(fn) > 0;
}

unsigned pci_func_msi_vectors(const struct ferry_pci_func *fn)
{
    if (pci_func_msix_enabled(fn))
        return fn->msix.nvec;
    if (pci_func_msi_enabled(fn))
        return msi_enabled_count(fn);
    return 0;
}

int pci_func_msi_get(const struct ferry_pci_func *fn, unsigned vector,
                     struct ferry_pci_msi_vector *out)
{
    if (fn->msix.off && (pci_func_msix_enabled(fn) || !fn->msi.off)) {
        if (vector >= fn->msix.nvec)
            return -EINVAL;
        msix_compute(fn, vector, out);
        return 0;
    }
    if (fn->msi.off) {
        if (vector >= fn->msi.nvec)
            return -EINVAL;
        msi_compute(fn, vector, out);
        return 0;
    }
    return -ENODEV;
}

int pci_func_msi_notify(struct ferry_pci_func *fn, unsigned vector)
{
    struct ferry_pci_msi_vector v;

    if (pci_func_msix_enabled(fn)) {
        if (vector >= fn->msix.nvec)
            return -EINVAL;
        if (!master_enabled(fn))
            return -EPERM;
        msix_compute(fn, vector, &v);
        if (v.masked) {
            fn->msix.pba[vector / 8] |= (uint8_t)(1u << (vector % 8));
            return 0;
        }
        send(fn, vector, &v.msg);
        return 1;
    }
    if (pci_func_msi_enabled(fn)) {
        if (vector >= msi_enabled_count(fn))
            return -EINVAL;
        if (!master_enabled(fn))
            return -EPERM;
        msi_compute(fn, vector, &v);
        if (v.masked) {
            msi_set_pending(fn, msi_pending(fn) | 1u << vector);
            return 0;
        }
        send(fn, vector, &v.msg);
        return 1;
    }
    return -ENODEV;
}

void pci_msix_save(const struct ferry_pci_func *fn, uint8_t *table, uint8_t *pba)
{
    if (!fn->msix.off)
        return;
    memcpy(table, fn->msix.table, fn->msix.table_len);
    memcpy(pba, fn->msix.pba, fn->msix.pba_len);
}

void pci_msix_restore(struct ferry_pci_func *fn, const uint8_t *table, const uint8_t *pba)
{
    if (!fn->msix.off)
        return;
    for (uint32_t t = 0; t < fn->msix.table_len; t++) {
        uint8_t wm = msix_entry_wmask(t % MSIX_ENTRY_SIZE);

        fn->msix.table[t] = (uint8_t)((fn->msix.table[t] & ~wm) | (table[t] & wm));
    }
    /* Pending bits only for vectors that exist. */
    for (uint32_t i = 0; i < fn->msix.pba_len * 8; i++) {
        uint8_t bit = (uint8_t)(1u << (i % 8));

        if (i < fn->msix.nvec && (pba[i / 8] & bit))
            fn->msix.pba[i / 8] |= bit;
        else
            fn->msix.pba[i / 8] &= (uint8_t)~bit;
    }
    msix_sync(fn, 0, fn->msix.nvec - 1);
}
