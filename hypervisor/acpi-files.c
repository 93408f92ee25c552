// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ACPI table files given on the command line (ferry-hv --acpi-table, ferry
 * acpi dump --table, [acpi] tables=) as libacpi's extra tables.  libacpi
 * checks the tables themselves; here the files are read, capped, and its
 * messages get the file's name.
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hv_acpi_files_load(struct hv_acpi_files *f, struct acpi_config *cfg,
                       const char *const *paths, char *why, size_t why_len)
{
    f->nr = 0;
    cfg->nr_extra_tables = 0;
    for (uint32_t i = 0; paths && paths[i]; i++) {
        uint8_t *data;
        size_t size;
        int rc;

        if (i == ACPI_EXTRA_TABLES_MAX) {
            snprintf(why, why_len, "%s: more than %u ACPI tables given", paths[i],
                     ACPI_EXTRA_TABLES_MAX);
            rc = -E2BIG;
        } else {
            rc = hv_file_read(paths[i], ACPI_EXTRA_TABLE_SIZE_MAX, "an ACPI table", &data,
                              &size, why, why_len);
        }
        if (rc) {
            hv_acpi_files_free(f);
            return rc;
        }
        f->path[f->nr] = paths[i];
        f->data[f->nr++] = data;
        cfg->extra_tables[i] = (struct acpi_extra_table){ data, (uint32_t)size };
    }
    cfg->nr_extra_tables = f->nr;
    return 0;
}

void hv_acpi_files_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct hv_acpi_files *f = opaque;
    const char *at = strstr(msg, "extra_tables[");
    char *end;
    unsigned long i;

    if (!f->log)
        return;
    if (at) {
        i = strtoul(at + strlen("extra_tables["), &end, 10);
        if (*end == ']' && i < f->nr) {
            char line[768];

            snprintf(line, sizeof(line), "%s [file %s]", msg, f->path[i]);
            f->log(f->log_opaque, level, line);
            return;
        }
    }
    f->log(f->log_opaque, level, msg);
}

void hv_acpi_files_free(struct hv_acpi_files *f)
{
    for (uint32_t i = 0; i < f->nr; i++)
        free(f->data[i]);
    f->nr = 0;
}
