// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The framework's devices: the registry of device types, a device's
 * lifecycle (add, start, remove, find), save/restore and query-devices.
 */
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define FERRY_DM_SAVE_MAX (16u << 20)

/*
 * The registry of device types.  Filled by constructors before main() and
 * read-only afterwards (the only file-scope data of the framework).
 */
static const struct ferry_dm_device_type *dm_types[FERRY_DM_TYPES_MAX];
static unsigned dm_nr_types;

/* ------------------------------------------------------------------ */
/* Device types                                                        */

int dm_device_type_register(const struct ferry_dm_device_type *type)
{
    if (!type || !type->name || !type->init)
        return -EINVAL;
    if (dm_device_type_find(type->name))
        return -EEXIST;
    if (dm_nr_types >= FERRY_DM_TYPES_MAX)
        return -ENOSPC;
    dm_types[dm_nr_types++] = type;
    return 0;
}

const struct ferry_dm_device_type *dm_device_type_find(const char *name)
{
    for (unsigned i = 0; i < dm_nr_types; i++)
        if (strcmp(dm_types[i]->name, name) == 0)
            return dm_types[i];
    return NULL;
}

const struct ferry_dm_device_type *dm_device_type_nth(unsigned i)
{
    return i < dm_nr_types ? dm_types[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Start                                                               */

static void device_start(struct ferry_dm_device *dev)
{
    int rc;

    if (!dev->type->start)
        return;
    rc = dev->type->start(dev->state);
    if (rc < 0)
        dm_dev_log(dev, FERRY_LOG_ERROR, "cannot start: %s", strerror(-rc));
}

int dm_start(struct ferry_dm *dm)
{
    if (dm->status != FERRY_DM_CREATED)
        return -EALREADY;
    dm->status = FERRY_DM_RUNNING;
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        for (guint j = 0; j < dev->regions->len; j++) {
            int rc = dm_region_claim(g_ptr_array_index(dev->regions, j));

            if (rc < 0)
                return rc;
        }
    }
    dm_gsis_start(dm);
    for (guint i = 0; i < dm->devices->len; i++)
        device_start(g_ptr_array_index(dm->devices, i));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= FERRY_DM_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.')
            return false;
    return true;
}

void dm_device_free(struct ferry_dm_device *dev)
{
    /* Unplug and stop decoding first, then let the device free its state. */
    while (dev->pcis->len) {
        struct ferry_dm_pci *p = g_ptr_array_index(dev->pcis, dev->pcis->len - 1);

        g_ptr_array_remove_index(dev->pcis, dev->pcis->len - 1);
        dm_pci_destroy(p);
    }
    for (unsigned i = 0; i < 256; i++)
        if (dev->dm->pci_ext[i].dev == dev)
            dev->dm->pci_ext[i] = (struct dm_pci_ext){ 0 };
    while (dev->regions->len)
        dm_region_del(g_ptr_array_index(dev->regions, dev->regions->len - 1));
    if (dev->state && dev->type->exit)
        dev->type->exit(dev->state);
    while (dev->irqs->len) {
        struct ferry_dm_irq *irq = g_ptr_array_index(dev->irqs, dev->irqs->len - 1);

        g_ptr_array_remove_index(dev->irqs, dev->irqs->len - 1);
        dm_irq_free(irq);
    }
    g_ptr_array_free(dev->regions, TRUE);
    g_ptr_array_free(dev->irqs, TRUE);
    g_ptr_array_free(dev->pcis, TRUE);
    free(dev);
}

static int device_add(struct ferry_dm *dm, const char *type_name, const char *id,
                      const struct ferry_dm_opts *opts, struct ferry_dm_device **out)
{
    const struct ferry_dm_device_type *type = dm_device_type_find(type_name);
    struct ferry_dm_device *dev;
    char auto_id[FERRY_DM_ID_MAX];
    int rc;

    if (!type) {
        dm_log(dm, FERRY_LOG_ERROR, "no device type '%s'", type_name);
        return -ENOENT;
    }
    if (dm->status != FERRY_DM_CREATED && !type->hotplug) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: cannot add at run time: no hotplug", type_name);
        return -EBUSY;
    }
    if (dm->confined && type->syscalls && type->syscalls->n) {
        bool in = false;

        for (size_t i = 0; i < dm->nr_lists && !in; i++)
            in = dm->lists[i] == type->syscalls;
        if (!in) {
            dm_log(dm, FERRY_LOG_ERROR, "%s: cannot add to a confined ferry-dm: its seccomp "
                   "filter has no '%s' list (configure such a device at start-up, or run "
                   "ferry-dm with --seccomp=off)", type_name, type->syscalls->name);
            return -EPERM;
        }
    }
    if (dm->devices->len >= FERRY_DM_DEVICES_MAX)
        return -ENOSPC;
    if (!id) {
        do {
            snprintf(auto_id, sizeof(auto_id), "%.20s%u", type->name, dm->next_auto_id++);
        } while (dm_device_find(dm, auto_id));
        id = auto_id;
    }
    if (!id_ok(id)) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: bad device id '%.40s': use 1-%d of [A-Za-z0-9._-]",
               type_name, id, FERRY_DM_ID_MAX - 1);
        return -EINVAL;
    }
    if (dm_device_find(dm, id)) {
        dm_log(dm, FERRY_LOG_ERROR, "%s: device id '%s' is taken", type_name, id);
        return -EEXIST;
    }
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    dev->dm = dm;
    dev->type = type;
    snprintf(dev->id, sizeof(dev->id), "%s", id);
    dev->regions = g_ptr_array_new();
    dev->irqs = g_ptr_array_new();
    dev->pcis = g_ptr_array_new();
    dev->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    rc = type->init(dev, opts, &dev->state);
    if (rc < 0) {
        dm_log(dm, FERRY_LOG_ERROR, "%s[%s]: cannot create: %s", type->name, dev->id,
               strerror(-rc));
        dev->state = NULL;      /* init unwound its own state */
        dm_device_free(dev);
        return rc;
    }
    if (type->reset)
        type->reset(dev->state);
    g_ptr_array_add(dm->devices, dev);
    dm->devices_gen++;
    if (dm->status == FERRY_DM_RUNNING)
        device_start(dev);
    if (out)
        *out = dev;
    return 0;
}

/* A failed add keeps its first error line for the caller (the control socket's reply). */
int dm_device_add(struct ferry_dm *dm, const char *type_name, const char *id,
                        const struct ferry_dm_opts *opts, struct ferry_dm_device **out)
{
    int rc;

    dm->add_error[0] = '\0';
    dm->adding = true;
    rc = device_add(dm, type_name, id, opts, out);
    dm->adding = false;
    if (rc == 0)
        dm->add_error[0] = '\0';
    return rc;
}

const char *dm_device_add_error(const struct ferry_dm *dm)
{
    return dm->add_error;
}

int dm_device_remove(struct ferry_dm *dm, const char *id)
{
    struct ferry_dm_device *dev = dm_device_find(dm, id);

    if (!dev)
        return -ENOENT;
    if (dm->status != FERRY_DM_CREATED && !dev->type->hotplug)
        return -EBUSY;
    g_ptr_array_remove(dm->devices, dev);
    dm->devices_gen++;
    dm_device_free(dev);
    return 0;
}

struct ferry_dm_device *dm_device_find(struct ferry_dm *dm, const char *id)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (strcmp(dev->id, id) == 0)
            return dev;
    }
    return NULL;
}

size_t dm_device_count(const struct ferry_dm *dm)
{
    return dm->devices->len;
}

void dm_device_track_pci(struct ferry_dm_device *dev, struct ferry_dm_pci *p)
{
    g_ptr_array_add(dev->pcis, p);
}

struct ferry_dm *dm_device_dm(struct ferry_dm_device *dev)
{
    return dev->dm;
}

const char *dm_device_id(const struct ferry_dm_device *dev)
{
    return dev->id;
}

const struct ferry_dm_device_type *dm_device_get_type(const struct ferry_dm_device *dev)
{
    return dev->type;
}

void *dm_device_state(struct ferry_dm_device *dev)
{
    return dev->state;
}

/* ------------------------------------------------------------------ */
/* Save / restore: records of u8 idlen, id, u32 len (LE), bytes         */

int dm_save(struct ferry_dm *dm, GByteArray *out)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);
        GByteArray *one;
        uint8_t idlen = (uint8_t)strlen(dev->id);
        uint32_t len;
        int rc;

        if (!dev->type->save)
            continue;
        one = g_byte_array_new();
        rc = dev->type->save(dev->state, one);
        if (rc < 0 || one->len > FERRY_DM_SAVE_MAX) {
            g_byte_array_free(one, TRUE);
            return rc < 0 ? rc : -E2BIG;
        }
        len = GUINT32_TO_LE(one->len);
        g_byte_array_append(out, &idlen, 1);
        g_byte_array_append(out, (const guint8 *)dev->id, idlen);
        g_byte_array_append(out, (const guint8 *)&len, 4);
        g_byte_array_append(out, one->data, one->len);
        g_byte_array_free(one, TRUE);
    }
    return 0;
}

int dm_restore(struct ferry_dm *dm, const uint8_t *buf, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        char id[FERRY_DM_ID_MAX];
        uint8_t idlen = buf[pos++];
        uint32_t len;
        struct ferry_dm_device *dev;
        int rc;

        if (idlen == 0 || idlen >= FERRY_DM_ID_MAX || n - pos < (size_t)idlen + 4)
            return -EBADMSG;
        memcpy(id, buf + pos, idlen);
        id[idlen] = 0;
        pos += idlen;
        memcpy(&len, buf + pos, 4);
        len = GUINT32_FROM_LE(len);
        pos += 4;
        if (len > n - pos)
            return -EBADMSG;
        dev = dm_device_find(dm, id);
        if (!dev || !dev->type->restore) {
            dm_log(dm, FERRY_LOG_ERROR, "restore: no device '%s' to take its state", id);
            return -ENOENT;
        }
        rc = dev->type->restore(dev->state, buf + pos, len);
        if (rc < 0) {
            dm_dev_log(dev, FERRY_LOG_ERROR, "restore: %s", strerror(-rc));
            return rc;
        }
        pos += len;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Query                                                               */

json_t *dm_query_devices(struct ferry_dm *dm)
{
    json_t *list = json_array();

    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);
        json_t *b = json_object(), *regions = json_array(), *irqs = json_array();

        json_object_set_new(b, "id", ferry_json_str(dev->id));
        json_object_set_new(b, "type", ferry_json_str(dev->type->name));
        json_object_set_new(b, "hotplug", json_boolean(dev->type->hotplug));
        for (guint j = 0; j < dev->regions->len; j++) {
            struct ferry_dm_region *r = g_ptr_array_index(dev->regions, j);
            json_t *o = json_object();

            json_object_set_new(o, "space", ferry_json_str(dm_space_name(r->space)));
            json_object_set_new(o, "base", json_integer((json_int_t)r->base));
            json_object_set_new(o, "size", json_integer((json_int_t)r->len));
            json_object_set_new(o, "mapped", json_boolean(r->mapped));
            json_array_append_new(regions, o);
        }
        json_object_set_new(b, "regions", regions);
        for (guint j = 0; j < dev->irqs->len; j++) {
            struct ferry_dm_irq *irq = g_ptr_array_index(dev->irqs, j);
            json_t *o = json_object();

            json_object_set_new(o, "gsi", json_integer(irq->line->gsi));
            json_object_set_new(o, "kind", json_string(irq->line->kind == FERRY_DM_IRQ_EDGE
                                                           ? "edge" : "level"));
            json_object_set_new(o, "delivery", json_string(irq->line->irqfd ? "irqfd" : "line"));
            json_object_set_new(o, "level", json_boolean(irq->level));
            json_object_set_new(o, "count", json_integer((json_int_t)irq->count));
            json_array_append_new(irqs, o);
        }
        json_object_set_new(b, "irqs", irqs);
        if (dev->type->query)
            dev->type->query(dev->state, b);
        json_array_append_new(list, b);
    }
    return list;
}
