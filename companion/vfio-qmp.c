// SPDX-License-Identifier: GPL-2.0-or-later
/* vfio-pci over QMP, shared by `ferry pci` and ferry-dm; see vfio-qmp.h. */
#include "companion/vfio-qmp.h"

json_t *companion_vfio_qmp_add_args(const struct ferry_pci_config_dev *d)
{
    json_t *b = json_object();

    json_object_set_new(b, "driver", ferry_json_str("vfio-pci"));
    json_object_set_new(b, "host", ferry_json_str(d->name));
    json_object_set_new(b, "id", ferry_json_str(d->id));
    if (d->bus[0])
        json_object_set_new(b, "bus", ferry_json_str(d->bus));
    if (d->addr[0])
        json_object_set_new(b, "addr", ferry_json_str(d->addr));
    return b;
}

int companion_vfio_qmp_plug(struct ferry_qmp *q, const struct ferry_pci_config_dev *d)
{
    json_t *args = companion_vfio_qmp_add_args(d);
    int r = ferry_qmp_execute(q, "device_add", args, NULL);

    json_decref(args);
    return r;
}

void companion_vfio_qmp_guest_address(struct ferry_qmp *q, const char *id, char *where, size_t len)
{
    json_t *ret = NULL;

    where[0] = '\0';
    if (ferry_qmp_execute(q, "query-pci", NULL, &ret) == 0 && ret)
        (void)ferry_qmp_pci_find(ret, id, where, len);
    json_decref(ret);
}
