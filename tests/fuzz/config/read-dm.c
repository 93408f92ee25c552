// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * For fuzz-config: ferry-dm's own config reader ([dm], [qemu], [qemu:ID])
 * and its device list, which are static in devmodel/main.c; the file is
 * compiled in here with its main() renamed.
 */
#define main ferry_dm_main_for_fuzzing
int ferry_dm_main_for_fuzzing(int argc, char **argv);
#include "devmodel/main.c"
#undef main

int fuzz_config_dm(const char *path);

int fuzz_config_dm(const char *path)
{
    struct dm_args a = { .ioreq_fd = -1, .config = (char *)path, .qemu = g_ptr_array_new() };
    int rc = read_config(&a);

    for (gsize i = 0; rc == 0 && a.devices && a.devices[i]; i++) {
        char *type = NULL, *id = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (split_device(a.devices[i], &type, &id, &opts) == 0) {
            g_free(type);
            g_free(id);
            ferry_dm_opts_free(opts);
        }
    }
    for (guint i = 0; i < a.qemu->len; i++)
        ferry_dm_opts_free(g_ptr_array_index(a.qemu, i));
    g_ptr_array_free(a.qemu, TRUE);
    g_free(a.name);
    g_free(a.connect);
    g_free(a.control);
    g_free(a.serial);
    g_free(a.serial_in);
    g_strfreev(a.devices);
    return rc;
}
