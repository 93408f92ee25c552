// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ACPI table files given on the command line (ferry-hv --acpi-table, ferry
 * acpi dump --table, [acpi] tables=) as libacpi's extra tables.  libacpi
 * checks the tables themselves and names them ("[file PATH]") in its
 * messages; here the files are read and capped.
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
        size_t name_len = strlen("file ") + strlen(paths[i]) + 1;
        uint8_t *data = NULL;
        char *name = NULL;
        size_t size;
        int rc;

        if (i == ACPI_EXTRA_TABLES_MAX) {
            snprintf(why, why_len, "%s: more than %u ACPI tables given", paths[i],
                     ACPI_EXTRA_TABLES_MAX);
            rc = -E2BIG;
        } else {
            rc = hv_file_read(paths[i], ACPI_EXTRA_TABLE_SIZE_MAX, "an ACPI table", &data,
                              &size, why, why_len);
            if (!rc && !(name = malloc(name_len))) {
                snprintf(why, why_len, "%s: out of memory", paths[i]);
                rc = -ENOMEM;
            }
        }
        if (rc) {
            free(data);
            hv_acpi_files_free(f);
            return rc;
        }
        snprintf(name, name_len, "file %s", paths[i]);
        f->name[f->nr] = name;
        f->data[f->nr++] = data;
        cfg->extra_tables[i] = (struct acpi_extra_table){ data, (uint32_t)size, name };
    }
    cfg->nr_extra_tables = f->nr;
    return 0;
}

void hv_acpi_files_free(struct hv_acpi_files *f)
{
    for (uint32_t i = 0; i < f->nr; i++) {
        free(f->data[i]);
        free(f->name[i]);
    }
    f->nr = 0;
}
