/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ferry acpi`'s options and config file ([guest], [acpi]) turned into a
 * libacpi configuration: a module of its own so that tests
 * (tests/fuzz/config) link the real reader.
 */
#ifndef FERRY_CLI_ACPI_CONFIG_H
#define FERRY_CLI_ACPI_CONFIG_H

#include <glib.h>
#include <limits.h>
#include <stdint.h>

#include "acpi/acpi.h"

#define FERRY_ACPI_DEFAULT_VCPUS   1
#define FERRY_ACPI_DEFAULT_MEMORY  (512ull << 20)
#define FERRY_ACPI_OPT_UNSET       INT_MIN     /* an integer option not given */

struct cmd_acpi_opts {
    int vcpus, numa;
    char *memory, *base, *out;
    char **tables;          /* --table, in order */
    gboolean blob, verbose;
};

/* A whole unsigned number (decimal, 0x hex, 0 octal): 0 or -EINVAL. */
int cmd_acpi_parse_u64(const char *s, uint64_t *out);

/*
 * The configuration for o and the config file (NULL: none), with the extra
 * tables' paths appended to tables ([acpi] tables, then --table): 0, or
 * -EINVAL after one line on stderr naming what was wrong.
 */
int cmd_acpi_config_build(const struct cmd_acpi_opts *o, const char *file, struct acpi_config *cfg,
                          GPtrArray *tables);

#endif
