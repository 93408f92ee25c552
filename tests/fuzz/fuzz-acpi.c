// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz libacpi.  The first input byte picks what the rest is:
 *   even: a table blob laid out at 0xe0000 with its RSDP first, as someone
 *         else's tables would reach acpi_blob_validate();
 *   odd:  a default config (vCPUs from byte 1) patched by records
 *         {u16 offset; u8 value} into the raw struct acpi_config, then
 *         checked and built: a config must be rejected with -EINVAL or
 *         produce a set that the validator passes; nothing may crash.
 *         With bit 1 also set, the rest is instead one caller-supplied
 *         table (acpi_config.extra_tables) given as it is, or, with bit 2,
 *         with its length and checksum fixed up so that the copy and the
 *         RSDT/XSDT entries are exercised too.
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
    if (data[0] & 2) {
        static uint8_t tbl[65536];
        size_t n = size - 2 < sizeof(tbl) ? size - 2 : sizeof(tbl);

        memcpy(tbl, data + 2, n);
        if ((data[0] & 4) && n >= 36) {
            uint8_t sum = 0;

            tbl[4] = (uint8_t)n;
            tbl[5] = (uint8_t)(n >> 8);
            tbl[6] = (uint8_t)(n >> 16);
            tbl[7] = 0;
            tbl[9] = 0;
            for (size_t i = 0; i < n; i++)
                sum = (uint8_t)(sum + tbl[i]);
            tbl[9] = (uint8_t)-sum;
        }
        cfg.nr_extra_tables = 1;
        cfg.extra_tables[0].data = tbl;
        cfg.extra_tables[0].len = (uint32_t)n;
        goto build;
    }
    for (size_t i = 2; i + 3 <= size; i += 3) {
        size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8;

        /* Not into extra_tables: its pointers are trusted caller memory. */
        if (off < offsetof(struct acpi_config, nr_extra_tables))
            ((uint8_t *)&cfg)[off] = data[i + 2];
    }
build:
    rc = acpi_build_blob(&cfg, BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp, NULL, NULL);
    if (rc == 0 && acpi_blob_validate(buf, used, BASE, rsdp, NULL, NULL))
        abort();        /* a build that passed must stay valid */
    if (rc && rc != -EINVAL && rc != -ENOMEM && rc != -E2BIG && rc != -ERANGE)
        abort();        /* -EPROTO would mean the builder made a bad table */
    return 0;
}
