// SPDX-License-Identifier: GPL-2.0-or-later
/* For fuzz-config: the [guest] reader of `ferry run` (cli/run-config.c). */
#include "cli/run-config.h"

int fuzz_config_run(const char *path);

int fuzz_config_run(const char *path)
{
    struct cmd_run_opts o = { .vcpus = FERRY_RUN_VCPUS_UNSET,
                              .config_tables = g_ptr_array_new_with_free_func(g_free),
                              .config_modules = g_ptr_array_new_with_free_func(g_free) };
    int rc = cmd_run_config_read(path, &o);

    cmd_run_opts_free(&o);
    return rc;
}
