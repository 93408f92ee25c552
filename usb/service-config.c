// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The [usb] group of a guest config (GKeyFile), read in one place: by
 * ferry-dm's companion (companion/dm-usb.c) and by
 * usb_service_load_config, which hands the result to the service's
 * state machine (service.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "usb/ferry-usb.h"
#include "usb/service-internal.h"

const char *const usb_config_keys[] = { "qmp", "policy", "devices", NULL };

int usb_config_read(GKeyFile *kf, struct ferry_usb_config *c)
{
    g_auto(GStrv) list = NULL;
    GPtrArray *devs;

    memset(c, 0, sizeof(*c));
    if (!kf || !g_key_file_has_group(kf, "usb"))
        return 0;
    c->present = true;
    c->qmp = g_key_file_get_string(kf, "usb", "qmp", NULL);
    c->policy = g_key_file_get_string(kf, "usb", "policy", NULL);
    list = g_key_file_get_string_list(kf, "usb", "devices", NULL, NULL);
    devs = g_ptr_array_new();
    for (size_t i = 0; list && list[i]; i++) {
        const char *dev = g_strstrip(list[i]);

        if (*dev)
            g_ptr_array_add(devs, g_strdup(dev));
    }
    g_ptr_array_add(devs, NULL);
    c->devices = (char **)g_ptr_array_free(devs, FALSE);
    return 0;
}

int usb_config_load(const char *file, struct ferry_usb_config *c)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();

    memset(c, 0, sizeof(*c));
    if (!file || !g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL))
        return 0;
    return usb_config_read(kf, c);
}

void usb_config_clear(struct ferry_usb_config *c)
{
    if (!c)
        return;
    g_free(c->qmp);
    g_free(c->policy);
    g_strfreev(c->devices);
    memset(c, 0, sizeof(*c));
}

int usb_service_apply_config(struct ferry_usb_service *s, const char *guest,
                                   const struct ferry_usb_config *c, char *err, size_t errlen)
{
    int r = c->policy ? usb_service_set_policy(s, guest, c->policy, err, errlen) : 0;

    return r < 0 ? r : usb_service_assign_devices(s, guest, c->devices, err, errlen);
}

int usb_service_load_config(struct ferry_usb_service *s, GKeyFile *kf,
                                  char *err, size_t errlen)
{
    struct ferry_usb_config c;
    int r;

    usb_config_read(kf, &c);
    if (!c.present)
        return 0;
    if (!c.qmp) {
        snprintf(err, errlen, "config [usb]: no qmp= (the guest's QMP socket)");
        usb_config_clear(&c);
        return -EINVAL;
    }
    r = usb_service_apply_config(s, c.qmp, &c, err, errlen);
    usb_config_clear(&c);
    return r;
}
