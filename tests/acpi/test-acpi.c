// SPDX-License-Identifier: GPL-2.0-or-later
/* libacpi's unit test binary: one suite, a test case per part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/acpi/test-acpi.h"
#include "tests/check-main.h"

void test_log_fn(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct test_log *l = opaque;

    if (level == FERRY_LOG_ERROR) {
        snprintf(l->last, sizeof(l->last), "%s", msg);
        l->errors++;
    }
}

static void *set_alloc(void *opaque, size_t size, size_t align)
{
    struct test_set *s = opaque;
    size_t off = (s->used + align - 1) & ~(align - 1);

    if (off > s->cap || size > s->cap - off)
        return NULL;
    s->used = off + size;
    return s->mem + off;
}

static uint64_t set_v2p(void *opaque, const void *p)
{
    struct test_set *s = opaque;

    return s->base + (uint64_t)((const uint8_t *)p - s->mem);
}

int test_set_build(struct test_set *s, const struct acpi_config *cfg, uint64_t base)
{
    memset(s, 0, sizeof(*s));
    s->cap = ACPI_TABLES_SIZE_MAX;
    s->mem = calloc(1, s->cap);
    s->scratch = malloc(ACPI_SCRATCH_SIZE);
    s->base = base;
    s->ctx = (struct acpi_ctx){
        .alloc = set_alloc, .v2p = set_v2p, .opaque = s,
        .scratch = s->scratch, .scratch_len = ACPI_SCRATCH_SIZE,
        .log = test_log_fn, .log_opaque = &s->log,
    };
    return acpi_build_tables(cfg, &s->ctx, &s->t);
}

void test_set_free(struct test_set *s)
{
    free(s->mem);
    free(s->scratch);
    s->mem = s->scratch = NULL;
}

const struct acpi_table_ref *test_set_find(const struct test_set *s, const char *sig)
{
    for (uint32_t i = 0; i < s->t.nr; i++)
        if (!strcmp(s->t.tables[i].sig, sig))
            return &s->t.tables[i];
    return NULL;
}

FERRY_CHECK_MAIN("acpi", acpi_aml_tcase, acpi_tables_tcase, acpi_config_tcase,
                 acpi_validate_tcase, acpi_extra_tcase);
