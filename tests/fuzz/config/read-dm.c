// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * For fuzz-config: ferry-dm's own config reader ([dm], [qemu], [qemu:ID])
 * and its device list (devmodel/dm-config.h, the module ferry-dm runs).
 */
#include "devmodel/dm-config.h"

int fuzz_config_dm(const char *path);

int fuzz_config_dm(const char *path)
{
    struct dm_args a = { .ioreq_fd = -1, .config = (char *)path, .qemu = g_ptr_array_new() };
    int rc = dm_args_read_config(&a);

    for (gsize i = 0; rc == 0 && a.devices && a.devices[i]; i++) {
        char *type = NULL, *id = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (dm_device_spec_split(a.devices[i], &type, &id, &opts) == 0) {
            g_free(type);
            g_free(id);
            dm_opts_free(opts);
        }
    }
    for (guint i = 0; i < a.qemu->len; i++)
        dm_opts_free(g_ptr_array_index(a.qemu, i));
    g_ptr_array_free(a.qemu, TRUE);
    g_free(a.name);
    g_free(a.connect);
    g_free(a.control);
    g_free(a.serial);
    g_free(a.serial_in);
    g_strfreev(a.devices);
    return rc;
}
