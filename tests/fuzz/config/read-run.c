// SPDX-License-Identifier: GPL-2.0-or-later
/* For fuzz-config: the guest config reader of `ferry run` ([guest]), static
 * in cli/cmd-run.c, compiled in here. */
#include "cli/cmd-run.c"

int fuzz_config_run(const char *path);

int fuzz_config_run(const char *path)
{
    struct run_opts o = { .vcpus = VCPUS_UNSET,
                          .config_tables = g_ptr_array_new_with_free_func(g_free) };
    int rc = run_read_config(path, &o);

    run_opts_free(&o);
    return rc;
}
