/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libacpi unit tests: shared helpers. */
#ifndef FERRY_TEST_ACPI_H
#define FERRY_TEST_ACPI_H
#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi/acpi.h"

TCase *acpi_aml_tcase(void);
TCase *acpi_tables_tcase(void);
TCase *acpi_config_tcase(void);
TCase *acpi_validate_tcase(void);
TCase *acpi_extra_tcase(void);

/* A log callback that keeps the last error line (for "names the field"). */
struct test_log {
    char last[512];
    int errors;
};
void test_log_fn(void *opaque, enum ferry_log_level level, const char *msg);

/* A heap-backed table set: tables bump-allocated in mem, laid out at base. */
struct test_set {
    uint8_t *mem;
    size_t cap, used;
    uint64_t base;
    uint8_t *scratch;
    struct acpi_ctx ctx;
    struct acpi_tables t;
    struct test_log log;
};
int test_set_build(struct test_set *s, const struct acpi_config *cfg, uint64_t base);
void test_set_free(struct test_set *s);
const struct acpi_table_ref *test_set_find(const struct test_set *s, const char *sig);
#endif
