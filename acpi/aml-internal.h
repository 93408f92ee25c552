/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The AML builder's nodes and context, shared by aml.c and aml-resource.c. */
#ifndef FERRY_ACPI_AML_INTERNAL_H
#define FERRY_ACPI_AML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "acpi/aml.h"
#include "common/ferry-log.h"

enum aml_kind {
    AML_K_LIST,         /* children only */
    AML_K_RAW,          /* data bytes, then children */
    AML_K_PKG,          /* data[0..nhead) PkgLength data[nhead..] children */
    AML_K_BUFFER,       /* BufferOp PkgLength BufferSize data children */
    AML_K_RESTEMPLATE,  /* a Buffer of descriptors + EndTag */
    AML_K_PACKAGE,      /* PackageOp PkgLength NumElements children */
};

struct aml {
    struct aml_ctx *ctx;
    struct aml *first, *last, *next;
    uint8_t *data;
    uint32_t ndata;
    uint32_t nchildren;
    uint8_t kind;
    uint8_t nhead;
    uint8_t appended;
};

struct aml_ctx {
    uint8_t *base;
    size_t len, used;
    int err;
    char msg[160];
};

#define AML_ALIGN 8u

/* The first error of ctx (later ones are dropped). */
FERRY_PRINTF(3, 4) void aml_ctx_fail(struct aml_ctx *ctx, int err, const char *fmt, ...);
/* A node of kind with ndata data bytes in ctx's arena, or NULL (ctx failed). */
struct aml *aml_node_new(struct aml_ctx *ctx, enum aml_kind kind, size_t ndata);
/* A raw node holding a copy of bytes. */
struct aml *aml_raw_new(struct aml_ctx *ctx, const void *bytes, size_t len);

#endif
