// SPDX-License-Identifier: GPL-2.0-or-later
/* For fuzz-config: the config reader of `ferry acpi` ([guest], [acpi]),
 * static in cli/cmd-acpi.c, compiled in here; a config it accepts is built. */
#include "cli/cmd-acpi.c"

int fuzz_config_acpi(const char *path);

int fuzz_config_acpi(const char *path)
{
    struct cli_opts o = { .vcpus = OPT_UNSET, .numa = OPT_UNSET };
    struct acpi_config cfg;
    GPtrArray *tables = g_ptr_array_new_with_free_func(g_free);
    int rc = build_config(&o, path, &cfg, tables);

    g_ptr_array_unref(tables);
    return rc;
}
