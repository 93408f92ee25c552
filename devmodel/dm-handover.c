// SPDX-License-Identifier: GPL-2.0-or-later
/* Devices' and interrupt lines' fds across a replace of ferry-dm (dm-handover.h). */
#include "devmodel/dm-handover.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devmodel/dm-internal.h"
#include "devmodel/dm-state.h"

#define GSI_INH_MAX     64

/*
 * A device's fds are tagged with its id (20 bits of its CRC-32) and the
 * slot (4 bits): the successor adds the devices of the same config, but a
 * device removed at run time must not shift another's fds onto a third.
 */
static uint32_t dev_key(const char *id)
{
    return dm_state_crc32((const uint8_t *)id, strlen(id)) & 0xfffff;
}

#define DEV_TAG(key, slot)  ((key) << 4 | (slot))
#define DEV_TAG_KEY(tag)    ((tag) >> 4)
#define DEV_TAG_SLOT(tag)   ((tag) & 0xf)

struct dev_fd {
    uint32_t key;
    unsigned slot;
    int fd;
};

struct gsi_fd {
    uint32_t gsi;
    int efd, resample_fd;
};

/* The successor's stash, filled before the devices are added. */
static struct dev_fd inh_dev[DM_STATE_FDS_MAX];
static unsigned inh_ndev;
static struct gsi_fd inh_gsi[GSI_INH_MAX];
static unsigned inh_ngsi;
static int inh_msi[FERRY_DM_MSI_FDS];      /* fd + 1, 0: none */

static void abort_upto(struct ferry_dm *dm, guint upto)
{
    for (guint i = 0; i < upto && i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->handover_fds && dev->type->handover_abort)
            dev->type->handover_abort(dev->state);
    }
}

int dm_handover_export_devices(struct ferry_dm *dm, int *fds, uint32_t *roles, unsigned max,
                               char *why, size_t why_len)
{
    unsigned n = 0;
    guint i;

    for (i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);
        int one[FERRY_DM_HANDOVER_DEV_FDS];
        int k;

        if (!dev->type->handover_fds)
            continue;
        bool clash = false;
        for (guint j = 0; j < i; j++) {
            struct ferry_dm_device *o = g_ptr_array_index(dm->devices, j);
            clash |= o->type->handover_fds && dev_key(o->id) == dev_key(dev->id);
        }
        if (clash) {
            snprintf(why, why_len, "device %s's fds cannot be told from another's (rename it)",
                     dev->id);
            abort_upto(dm, i);
            return -ENOTUNIQ;
        }
        k = dev->type->handover_fds(dev->state, one, FERRY_DM_HANDOVER_DEV_FDS);
        if (k >= 0 && n + (unsigned)k > max) {
            if (dev->type->handover_abort)
                dev->type->handover_abort(dev->state);
            k = -E2BIG;
        }
        if (k < 0) {
            snprintf(why, why_len, "device %s cannot be handed over: %s", dev->id,
                     k == -EBUSY ? "it is restarting" : strerror(-k));
            abort_upto(dm, i);
            return k;
        }
        for (int s = 0; s < k; s++) {
            fds[n] = one[s];
            roles[n++] = DM_STATE_FD_DEVICE | DEV_TAG(dev_key(dev->id), (uint32_t)s) << 8;
        }
    }
    return (int)n;
}

uint64_t dm_handover_generation(const struct ferry_dm *dm)
{
    return dm->devices_gen;
}

int dm_handover_export_irqs(struct ferry_dm *dm, int *fds, uint32_t *roles, unsigned max,
                            char *why, size_t why_len)
{
    unsigned n = 0;
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, dm->gsis);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct dm_gsi *g = v;

        if (!g->irqfd || g->gsi > 0xffffff)
            continue;
        if (n + 2 > max) {
            snprintf(why, why_len, "too many fds to hand over (at most %u more)", max);
            return -E2BIG;
        }
        fds[n] = g->efd;
        roles[n++] = DM_STATE_FD_IRQFD | g->gsi << 8;
        if (g->resample_fd >= 0) {
            fds[n] = g->resample_fd;
            roles[n++] = DM_STATE_FD_RESAMPLE | g->gsi << 8;
        }
    }
    for (unsigned k = 0; k < FERRY_DM_MSI_FDS; k++) {
        if (!dm->msi_fds[k].used)
            continue;
        if (n == max) {
            snprintf(why, why_len, "too many fds to hand over (at most %u more)", max);
            return -E2BIG;
        }
        fds[n] = dm->msi_fds[k].efd;
        roles[n++] = DM_STATE_FD_MSI | k << 8;
    }
    return (int)n;
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    g_byte_array_append(b, x, 4);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void dm_handover_save_irqs(struct ferry_dm *dm, GByteArray *out)
{
    uint32_t n = 0;

    for (unsigned k = 0; k < FERRY_DM_MSI_FDS; k++)
        n += dm->msi_fds[k].used;
    put32(out, dm->msi_cookie);
    put32(out, n);
    for (unsigned k = 0; k < FERRY_DM_MSI_FDS; k++) {
        const struct dm_msi_fd *m = &dm->msi_fds[k];

        if (!m->used)
            continue;
        put32(out, k);
        put32(out, m->cookie);
        put32(out, (uint32_t)m->address);
        put32(out, (uint32_t)(m->address >> 32));
        put32(out, m->data);
    }
}

int dm_handover_load_irqs(struct ferry_dm *dm, const uint8_t *buf, size_t len, char *why,
                          size_t why_len)
{
    uint32_t n = len >= 8 ? get32(buf + 4) : 0;

    if (len < 8 || len != 8 + 20 * (size_t)n) {
        snprintf(why, why_len, "irqs section of %zu bytes", len);
        return -EBADMSG;
    }
    /* Checked whole first: nothing changes when one entry is bad. */
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = buf + 8 + 20 * i;
        uint32_t slot = get32(e);
        uint64_t address = get32(e + 8) | (uint64_t)get32(e + 12) << 32;

        if (slot >= FERRY_DM_MSI_FDS || !inh_msi[slot] || (address >> 20) != 0xfee ||
            dm->msi_fds[slot].used) {
            snprintf(why, why_len, "msi route %u (slot %u, address 0x%llx) has no eventfd "
                     "passed or is not an MSI", i, slot, (unsigned long long)address);
            return -EBADMSG;
        }
    }
    dm->msi_cookie = get32(buf);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = buf + 8 + 20 * i;
        uint32_t slot = get32(e);

        dm->msi_fds[slot] = (struct dm_msi_fd){
            .used = true, .cookie = get32(e + 4),
            .address = get32(e + 8) | (uint64_t)get32(e + 12) << 32, .data = get32(e + 16),
            .efd = inh_msi[slot] - 1, .last_use = ++dm->msi_clock };
        inh_msi[slot] = 0;
        if (dm->msi_fds[slot].cookie > dm->msi_cookie)
            dm->msi_cookie = dm->msi_fds[slot].cookie;
    }
    return 0;
}

void dm_handover_abort(struct ferry_dm *dm)
{
    abort_upto(dm, dm->devices->len);
}

static struct gsi_fd *gsi_slot(uint32_t gsi)
{
    for (unsigned i = 0; i < inh_ngsi; i++)
        if (inh_gsi[i].gsi == gsi)
            return &inh_gsi[i];
    if (inh_ngsi == GSI_INH_MAX)
        return NULL;
    inh_gsi[inh_ngsi] = (struct gsi_fd){ .gsi = gsi, .efd = -1, .resample_fd = -1 };
    return &inh_gsi[inh_ngsi++];
}

static int inherit(const int *fds, const uint32_t *roles, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint32_t kind = DM_STATE_FD_KIND(roles[i]), tag = DM_STATE_FD_TAG(roles[i]);

        if (kind == DM_STATE_FD_DEVICE) {
            if (inh_ndev == DM_STATE_FDS_MAX)
                return -EINVAL;
            for (unsigned k = 0; k < inh_ndev; k++)
                if (inh_dev[k].key == DEV_TAG_KEY(tag) && inh_dev[k].slot == DEV_TAG_SLOT(tag))
                    return -EINVAL;
            inh_dev[inh_ndev++] = (struct dev_fd){ DEV_TAG_KEY(tag), DEV_TAG_SLOT(tag), fds[i] };
        } else if (kind == DM_STATE_FD_MSI) {
            if (tag >= FERRY_DM_MSI_FDS || inh_msi[tag])
                return -EINVAL;
            inh_msi[tag] = fds[i] + 1;
        } else if (kind == DM_STATE_FD_IRQFD || kind == DM_STATE_FD_RESAMPLE) {
            struct gsi_fd *g = gsi_slot(tag);
            int *slot = g ? (kind == DM_STATE_FD_IRQFD ? &g->efd : &g->resample_fd) : NULL;

            if (!slot || *slot >= 0)
                return -EINVAL;
            *slot = fds[i];
        }
    }
    return 0;
}

int dm_handover_inherit(const int *fds, const uint32_t *roles, unsigned n)
{
    int rc = inherit(fds, roles, n);

    if (rc < 0) {
        inh_ndev = inh_ngsi = 0;    /* not taken: the caller closes them */
        memset(inh_msi, 0, sizeof(inh_msi));
    }
    return rc;
}

int dm_device_inherited_fds(struct ferry_dm_device *dev, int *fds, unsigned max)
{
    uint32_t key = dev_key(dev->id);
    unsigned n = 0;

    if (!dev->dm->adding)
        return 0;
    for (unsigned k = 0; k < inh_ndev; k++)
        if (inh_dev[k].key == key && inh_dev[k].fd >= 0 && inh_dev[k].slot + 1 > n)
            n = inh_dev[k].slot + 1;
    if (n > max)
        return -E2BIG;
    for (unsigned s = 0; s < n; s++)
        fds[s] = -1;
    for (unsigned k = 0; k < inh_ndev; k++)
        if (inh_dev[k].key == key && inh_dev[k].fd >= 0) {
            fds[inh_dev[k].slot] = inh_dev[k].fd;
            inh_dev[k].fd = -1;
        }
    return (int)n;
}

bool dm_gsi_inherited(uint32_t gsi, int *efd, int *resample_fd)
{
    for (unsigned i = 0; i < inh_ngsi; i++)
        if (inh_gsi[i].gsi == gsi && inh_gsi[i].efd >= 0) {
            *efd = inh_gsi[i].efd;
            *resample_fd = inh_gsi[i].resample_fd;
            inh_gsi[i].efd = inh_gsi[i].resample_fd = -1;
            return true;
        }
    return false;
}

void dm_handover_inherit_done(void)
{
    for (unsigned k = 0; k < inh_ndev; k++)
        if (inh_dev[k].fd >= 0)
            close(inh_dev[k].fd);
    for (unsigned i = 0; i < inh_ngsi; i++) {
        if (inh_gsi[i].efd >= 0)
            close(inh_gsi[i].efd);
        if (inh_gsi[i].resample_fd >= 0)
            close(inh_gsi[i].resample_fd);
    }
    for (unsigned k = 0; k < FERRY_DM_MSI_FDS; k++)
        if (inh_msi[k])
            close(inh_msi[k] - 1);
    memset(inh_msi, 0, sizeof(inh_msi));
    inh_ndev = inh_ngsi = 0;
}
