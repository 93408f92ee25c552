// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz libacpi.  The first input byte picks what the rest is:
 *   even: a table blob laid out at 0xe0000 with its RSDP first, as someone
 *         else's tables would reach acpi_blob_validate();
 *   odd:  a default config (vCPUs from byte 1) patched by records
 *         {u16 offset; u8 value} into the raw struct acpi_config, then
 *         checked and built: a config must be rejected with -EINVAL or
 *         produce a set that the validator passes; nothing may crash.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE 0xe0000ull

static uint8_t *buf;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct acpi_config cfg;
    size_t used;
    uint64_t rsdp;
    int rc;

    if (!buf && !(buf = malloc(ACPI_BLOB_BUF_SIZE)))
        abort();
    if (size < 2)
        return 0;
    if (!(data[0] & 1)) {
        (void)!acpi_blob_validate(data + 1, size - 1, BASE, BASE, NULL, NULL);
        return 0;
    }
    if (acpi_config_init_default(&cfg, 1 + data[1] % 64, (uint64_t)(data[1] + 1) << 24))
        abort();
    for (size_t i = 2; i + 3 <= size; i += 3) {
        size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8;

        /* Not into extra_tables: its pointers are trusted caller memory. */
        if (off < offsetof(struct acpi_config, nr_extra_tables))
            ((uint8_t *)&cfg)[off] = data[i + 2];
    }
    rc = acpi_build_blob(&cfg, BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp, NULL, NULL);
    if (rc == 0 && acpi_blob_validate(buf, used, BASE, rsdp, NULL, NULL))
        abort();        /* a build that passed must stay valid */
    if (rc && rc != -EINVAL && rc != -ENOMEM && rc != -E2BIG && rc != -ERANGE)
        abort();        /* -EPROTO would mean the builder made a bad table */
    return 0;
}
