// SPDX-License-Identifier: GPL-2.0-or-later
/* The USB service's devices as JSON (query-usb, `ferry usb list --json`);
 * see usb_service_list_json in ferry-usb.h. */
#include <stdio.h>

#include <glib.h>
#include "common/json.h"
#include "usb/ferry-usb.h"
#include "usb/service-internal.h"

/* One device's object; att: the assignment serving it, if any. */
static json_t *list_device(struct ferry_usb_service *s, const struct ferry_usb_devinfo *d,
                           struct assign *att)
{
    char buf[200], why[FERRY_USB_ERR_MAX];
    json_t *o = json_object(), *ifaces = json_array();
    int allowed;

    allowed = usb_policy_check(att ? usb_service_guest_policy(s, att->guest)
                                         : s->default_policy,
                                     d, why, sizeof(why));
    json_object_set_new(o, "bus", json_integer(d->bus));
    json_object_set_new(o, "addr", json_integer(d->addr));
    json_object_set_new(o, "port", ferry_json_str(d->port));
    snprintf(buf, sizeof(buf), "%04x:%04x", d->vid, d->pid);
    json_object_set_new(o, "id", json_string(buf));
    json_object_set_new(o, "manufacturer", ferry_json_str(d->manufacturer));
    json_object_set_new(o, "product", ferry_json_str(d->product));
    json_object_set_new(o, "serial", ferry_json_str(d->serial));
    json_object_set_new(o, "class", json_integer(d->cls));
    for (unsigned k = 0; k < d->n_ifaces; k++) {
        snprintf(buf, sizeof(buf), "%02x/%02x/%02x", d->ifaces[k].cls, d->ifaces[k].subcls,
                 d->ifaces[k].proto);
        json_array_append_new(ifaces, json_string(buf));
    }
    json_object_set_new(o, "interfaces", ifaces);
    json_object_set_new(o, "speed_mbps", json_integer(d->speed_mbps));
    json_object_set_new(o, "driver", ferry_json_str(d->driver));
    usb_identity(d, buf, sizeof(buf));
    json_object_set_new(o, "identity", ferry_json_str(buf));
    json_object_set_new(o, "allowed", json_boolean(allowed == 0));
    json_object_set_new(o, "rule", ferry_json_str(why));
    json_object_set_new(o, "attached",
                        att ? ferry_json_str(usb_service_assign_where(att)) : json_null());
    json_object_set_new(o, "connected", json_boolean(att && att->redir));
    return o;
}

char *usb_service_list_json(struct ferry_usb_service *s)
{
    json_t *list = json_array();
    const struct ferry_usb_devinfo *devs;
    size_t n;
    char *out;

    devs = usb_host_devices(s->host, &n);
    for (size_t i = 0; i < n; i++) {
        struct assign *att = NULL;

        for (guint k = 0; k < s->assigns->len; k++) {
            struct assign *a = g_ptr_array_index(s->assigns, k);
            if (a->present && a->dev.bus == devs[i].bus && a->dev.addr == devs[i].addr)
                att = a;
        }
        json_array_append_new(list, list_device(s, &devs[i], att));
    }
    /* devices known only from a broker's fd (no discovery) */
    for (guint k = 0; k < s->assigns->len; k++) {
        struct assign *a = g_ptr_array_index(s->assigns, k);
        bool listed = false;

        for (size_t i = 0; i < n && !listed; i++)
            listed = a->dev.bus == devs[i].bus && a->dev.addr == devs[i].addr;
        if (a->present && !listed)
            json_array_append_new(list, list_device(s, &a->dev, a));
    }
    out = ferry_json_dumps(list, true);
    json_decref(list);
    return out;
}
