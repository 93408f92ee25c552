// SPDX-License-Identifier: GPL-2.0-or-later
/* For fuzz-config: the config reader of `ferry acpi` ([guest], [acpi]),
 * cli/acpi-config.c; a config it accepts is built. */
#include "cli/acpi-config.h"

int fuzz_config_acpi(const char *path);

int fuzz_config_acpi(const char *path)
{
    struct cmd_acpi_opts o = { .vcpus = FERRY_ACPI_OPT_UNSET, .numa = FERRY_ACPI_OPT_UNSET };
    struct acpi_config cfg;
    GPtrArray *tables = g_ptr_array_new_with_free_func(g_free);
    int rc = cmd_acpi_config_build(&o, path, &cfg, tables);

    g_ptr_array_unref(tables);
    return rc;
}
