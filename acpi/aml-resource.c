// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * AML builder: resource descriptors (ACPI 6.4 section 6.4) inside a
 * ResourceTemplate, small and large, each checked as the spec constrains it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "acpi/aml.h"
#include "acpi/acpi-internal.h"
#include "acpi/aml-internal.h"

struct aml *aml_resource_template(struct aml_ctx *ctx)
{
    return aml_node_new(ctx, AML_K_RESTEMPLATE, 0);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

struct aml *aml_io(struct aml_ctx *ctx, uint16_t min, uint16_t max, uint8_t align,
                   uint8_t len)
{
    uint8_t d[8] = { 0x47, 0x01 };   /* I/O Port Descriptor (6.4.2.5), Decode16 */

    if (min > max) {
        aml_ctx_fail(ctx, -EINVAL, "aml: IO min 0x%x above max 0x%x", min, max);
        return NULL;
    }
    put16(d + 2, min);
    put16(d + 4, max);
    d[6] = align;
    d[7] = len;
    return aml_raw_new(ctx, d, sizeof(d));
}

struct aml *aml_fixed_io(struct aml_ctx *ctx, uint16_t base, uint8_t len)
{
    uint8_t d[4] = { 0x4b };         /* Fixed Location I/O Port (6.4.2.6) */

    if (base > 0x3ff) {
        aml_ctx_fail(ctx, -EINVAL, "aml: FixedIO base 0x%x is past 10 bits", base);
        return NULL;
    }
    put16(d + 1, base);
    d[3] = len;
    return aml_raw_new(ctx, d, sizeof(d));
}

struct aml *aml_irq_noflags(struct aml_ctx *ctx, uint8_t irq)
{
    uint8_t d[3] = { 0x22 };         /* IRQ Descriptor (6.4.2.1), 2 bytes */

    if (irq > 15) {
        aml_ctx_fail(ctx, -EINVAL, "aml: IRQNoFlags irq %u is not an ISA IRQ", irq);
        return NULL;
    }
    put16(d + 1, (uint16_t)(1u << irq));
    return aml_raw_new(ctx, d, sizeof(d));
}

struct aml *aml_interrupt(struct aml_ctx *ctx, unsigned int flags, uint32_t gsi)
{
    uint8_t d[9] = { 0x89 };         /* Extended Interrupt (6.4.3.6) */

    put16(d + 1, 6);
    d[3] = (uint8_t)(AML_RES_CONSUMER |
                     (flags & (AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED)));
    d[4] = 1;
    put32(d + 5, gsi);
    return aml_raw_new(ctx, d, sizeof(d));
}

struct aml *aml_memory32_fixed(struct aml_ctx *ctx, int read_write, uint32_t base,
                               uint32_t len)
{
    uint8_t d[12] = { 0x86 };        /* 32-Bit Fixed Memory Range (6.4.3.4) */

    if (len && (uint64_t)base + len - 1 > UINT32_MAX) {
        aml_ctx_fail(ctx, -EINVAL, "aml: Memory32Fixed 0x%x+0x%x passes 4 GiB", base, len);
        return NULL;
    }
    put16(d + 1, 9);
    d[3] = read_write ? 1 : 0;
    put32(d + 4, base);
    put32(d + 8, len);
    return aml_raw_new(ctx, d, sizeof(d));
}

/*
 * Address space descriptors (6.4.3.5): general flags bit 0 consumer (0:
 * producer), bit 1 subtractive decode, bit 2 MinFixed, bit 3 MaxFixed.
 */
#define AML_AS_MEM 0
#define AML_AS_IO  1
#define AML_AS_BUS 2
#define AML_AS_PRODUCER_FIXED 0x0c

static int window_check(struct aml_ctx *ctx, const char *what, uint64_t min, uint64_t max)
{
    if (min > max) {
        aml_ctx_fail(ctx, -EINVAL, "aml: %s min 0x%llx above max 0x%llx", what,
                 (unsigned long long)min, (unsigned long long)max);
        return -EINVAL;
    }
    if (min == 0 && max == UINT64_MAX) {
        aml_ctx_fail(ctx, -EINVAL, "aml: %s covers the whole 64-bit space", what);
        return -EINVAL;
    }
    return 0;
}

struct aml *aml_word_bus_number(struct aml_ctx *ctx, uint16_t min, uint16_t max)
{
    uint8_t d[16] = { 0x88 };

    if (window_check(ctx, "WordBusNumber", min, max))
        return NULL;
    put16(d + 1, 13);
    d[3] = AML_AS_BUS;
    d[4] = AML_AS_PRODUCER_FIXED;
    d[5] = 0;
    put16(d + 6, 0);                  /* granularity */
    put16(d + 8, min);
    put16(d + 10, max);
    put16(d + 12, 0);                 /* translation */
    put16(d + 14, (uint16_t)(max - min + 1));
    return aml_raw_new(ctx, d, sizeof(d));
}

static struct aml *dword_as(struct aml_ctx *ctx, uint8_t type, uint8_t tflags,
                            uint32_t min, uint32_t max, const char *what)
{
    uint8_t d[26] = { 0x87 };

    if (window_check(ctx, what, min, max))
        return NULL;
    if (min == 0 && max == UINT32_MAX) {
        aml_ctx_fail(ctx, -EINVAL, "aml: %s covers the whole 32-bit space", what);
        return NULL;
    }
    put16(d + 1, 23);
    d[3] = type;
    d[4] = AML_AS_PRODUCER_FIXED;
    d[5] = tflags;
    put32(d + 6, 0);
    put32(d + 10, min);
    put32(d + 14, max);
    put32(d + 18, 0);
    put32(d + 22, max - min + 1);
    return aml_raw_new(ctx, d, sizeof(d));
}

struct aml *aml_dword_io(struct aml_ctx *ctx, uint32_t min, uint32_t max)
{
    /* Type-specific flags: _RNG = 3, entire range. */
    return dword_as(ctx, AML_AS_IO, 0x03, min, max, "DWordIO");
}

/* Memory type-specific flags: bit 0 read-write, bits 1-2 _MEM (1 cacheable). */
struct aml *aml_dword_memory(struct aml_ctx *ctx, int cacheable, uint32_t min, uint32_t max)
{
    return dword_as(ctx, AML_AS_MEM, (uint8_t)(0x01 | (cacheable ? 0x02 : 0)),
                    min, max, "DWordMemory");
}

struct aml *aml_qword_memory(struct aml_ctx *ctx, int cacheable, uint64_t min, uint64_t max)
{
    uint8_t d[46] = { 0x8a };

    if (window_check(ctx, "QWordMemory", min, max))
        return NULL;
    put16(d + 1, 43);
    d[3] = AML_AS_MEM;
    d[4] = AML_AS_PRODUCER_FIXED;
    d[5] = (uint8_t)(0x01 | (cacheable ? 0x02 : 0));
    put64(d + 6, 0);
    put64(d + 14, min);
    put64(d + 22, max);
    put64(d + 30, 0);
    put64(d + 38, max - min + 1);
    return aml_raw_new(ctx, d, sizeof(d));
}
