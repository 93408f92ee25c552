// SPDX-License-Identifier: GPL-2.0-or-later
/* vfio-pci over QMP, shared by `ferry pci` and ferry-dm; see vfio-qmp.h. */
#include "companion/vfio-qmp.h"

JsonNode *companion_vfio_qmp_add_args(const struct ferry_pci_config_dev *d)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, "vfio-pci");
    json_builder_set_member_name(b, "host");
    json_builder_add_string_value(b, d->name);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, d->id);
    if (d->bus[0]) {
        json_builder_set_member_name(b, "bus");
        json_builder_add_string_value(b, d->bus);
    }
    if (d->addr[0]) {
        json_builder_set_member_name(b, "addr");
        json_builder_add_string_value(b, d->addr);
    }
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

int companion_vfio_qmp_plug(struct ferry_qmp *q, const struct ferry_pci_config_dev *d)
{
    g_autoptr(JsonNode) args = companion_vfio_qmp_add_args(d);

    return ferry_qmp_execute(q, "device_add", args, NULL);
}

void companion_vfio_qmp_guest_address(struct ferry_qmp *q, const char *id, char *where, size_t len)
{
    JsonNode *ret = NULL;

    where[0] = '\0';
    if (ferry_qmp_execute(q, "query-pci", NULL, &ret) == 0 && ret)
        (void)ferry_qmp_pci_find(ret, id, where, len);
    if (ret)
        json_node_unref(ret);
}
