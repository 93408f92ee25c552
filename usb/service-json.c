// SPDX-License-Identifier: GPL-2.0-or-later
/* The USB service's devices as JSON (query-usb, `ferry usb list --json`);
 * see usb_service_list_json in ferry-usb.h. */
#include <stdio.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "usb/ferry-usb.h"
#include "usb/service-internal.h"

/* One device's object; att: the assignment serving it, if any. */
static void list_device(struct ferry_usb_service *s, JsonBuilder *b,
                        const struct ferry_usb_devinfo *d, struct assign *att)
{
    char buf[200], why[FERRY_USB_ERR_MAX];
    int allowed;

    allowed = usb_policy_check(att ? usb_service_guest_policy(s, att->guest)
                                         : s->default_policy,
                                     d, why, sizeof(why));
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "bus");
    json_builder_add_int_value(b, d->bus);
    json_builder_set_member_name(b, "addr");
    json_builder_add_int_value(b, d->addr);
    json_builder_set_member_name(b, "port");
    json_builder_add_string_value(b, d->port);
    snprintf(buf, sizeof(buf), "%04x:%04x", d->vid, d->pid);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, buf);
    json_builder_set_member_name(b, "manufacturer");
    json_builder_add_string_value(b, d->manufacturer);
    json_builder_set_member_name(b, "product");
    json_builder_add_string_value(b, d->product);
    json_builder_set_member_name(b, "serial");
    json_builder_add_string_value(b, d->serial);
    json_builder_set_member_name(b, "class");
    json_builder_add_int_value(b, d->cls);
    json_builder_set_member_name(b, "interfaces");
    json_builder_begin_array(b);
    for (unsigned k = 0; k < d->n_ifaces; k++) {
        snprintf(buf, sizeof(buf), "%02x/%02x/%02x", d->ifaces[k].cls, d->ifaces[k].subcls,
                 d->ifaces[k].proto);
        json_builder_add_string_value(b, buf);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "speed_mbps");
    json_builder_add_int_value(b, d->speed_mbps);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, d->driver);
    usb_identity(d, buf, sizeof(buf));
    json_builder_set_member_name(b, "identity");
    json_builder_add_string_value(b, buf);
    json_builder_set_member_name(b, "allowed");
    json_builder_add_boolean_value(b, allowed == 0);
    json_builder_set_member_name(b, "rule");
    json_builder_add_string_value(b, why);
    json_builder_set_member_name(b, "attached");
    if (att)
        json_builder_add_string_value(b, usb_service_assign_where(att));
    else
        json_builder_add_null_value(b);
    json_builder_set_member_name(b, "connected");
    json_builder_add_boolean_value(b, att && att->redir);
    json_builder_end_object(b);
}

char *usb_service_list_json(struct ferry_usb_service *s)
{
    JsonBuilder *b = json_builder_new();
    const struct ferry_usb_devinfo *devs;
    size_t n;
    char *out;
    JsonNode *root;

    devs = usb_host_devices(s->host, &n);
    json_builder_begin_array(b);
    for (size_t i = 0; i < n; i++) {
        struct assign *att = NULL;

        for (guint k = 0; k < s->assigns->len; k++) {
            struct assign *a = g_ptr_array_index(s->assigns, k);
            if (a->present && a->dev.bus == devs[i].bus && a->dev.addr == devs[i].addr)
                att = a;
        }
        list_device(s, b, &devs[i], att);
    }
    /* devices known only from a broker's fd (no discovery) */
    for (guint k = 0; k < s->assigns->len; k++) {
        struct assign *a = g_ptr_array_index(s->assigns, k);
        bool listed = false;

        for (size_t i = 0; i < n && !listed; i++)
            listed = a->dev.bus == devs[i].bus && a->dev.addr == devs[i].addr;
        if (a->present && !listed)
            list_device(s, b, &a->dev, a);
    }
    json_builder_end_array(b);
    root = json_builder_get_root(b);
    out = json_to_string(root, TRUE);
    json_node_unref(root);
    g_object_unref(b);
    return out;
}
