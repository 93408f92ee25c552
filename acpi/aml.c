// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * AML builder: terms are nodes in an arena owned by a struct aml_ctx;
 * aml_encode() writes a tree out in one pass after sizing it.  Section
 * numbers cite ACPI 6.4.  The resource descriptors (6.4) are in
 * aml-resource.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "acpi/aml.h"
#include "acpi/acpi-internal.h"
#include "acpi/aml-internal.h"

/* Opcodes (20.2.x). */
#define AML_ZERO_OP      0x00
#define AML_ONE_OP       0x01
#define AML_NAME_OP      0x08
#define AML_BYTE_PREFIX  0x0a
#define AML_WORD_PREFIX  0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP     0x10
#define AML_BUFFER_OP    0x11
#define AML_PACKAGE_OP   0x12
#define AML_METHOD_OP    0x14
#define AML_DUAL_NAME    0x2e
#define AML_MULTI_NAME   0x2f
#define AML_EXT_OP       0x5b
#define AML_DEVICE_OP    0x82   /* after AML_EXT_OP */
#define AML_ROOT_CHAR    0x5c
#define AML_PARENT_CHAR  0x5e
#define AML_LOCAL0_OP    0x60
#define AML_ARG0_OP      0x68
#define AML_RETURN_OP    0xa4
#define AML_SIZEOF_OP    0x87
#define AML_ONES_OP      0xff
#define AML_STORE_OP     0x70
#define AML_AND_OP       0x7b
#define AML_OR_OP        0x7d
#define AML_CREATE_DWORD_FIELD_OP 0x8a
#define AML_LNOT_OP      0x92
#define AML_LEQUAL_OP    0x93
#define AML_IF_OP        0xa0
#define AML_ELSE_OP      0xa1

#define AML_NAMESEGS_MAX 255

void aml_ctx_fail(struct aml_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    if (!ctx || ctx->err)
        return;
    ctx->err = err;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof(ctx->msg), fmt, ap);
    va_end(ap);
}

struct aml_ctx *aml_ctx_init(void *mem, size_t len)
{
    uintptr_t p = (uintptr_t)mem, a = (p + AML_ALIGN - 1) & ~(uintptr_t)(AML_ALIGN - 1);
    struct aml_ctx *ctx;

    if (!mem || len < AML_CTX_MIN || a - p > len - sizeof(*ctx))
        return NULL;
    ctx = (struct aml_ctx *)a;
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = (uint8_t *)ctx + ((sizeof(*ctx) + AML_ALIGN - 1) & ~(size_t)(AML_ALIGN - 1));
    ctx->len = len - (size_t)(ctx->base - (uint8_t *)mem);
    return ctx;
}

int aml_ctx_error(const struct aml_ctx *ctx)
{
    return ctx ? ctx->err : -EINVAL;
}

const char *aml_ctx_error_msg(const struct aml_ctx *ctx)
{
    return ctx ? ctx->msg : "no aml context";
}

size_t aml_ctx_used(const struct aml_ctx *ctx)
{
    return ctx ? ctx->used : 0;
}

static void *ctx_alloc(struct aml_ctx *ctx, size_t size)
{
    size_t n = (size + AML_ALIGN - 1) & ~(size_t)(AML_ALIGN - 1);
    void *p;

    if (!ctx || ctx->err)
        return NULL;
    if (n < size || n > ctx->len - ctx->used) {
        aml_ctx_fail(ctx, -ENOMEM, "aml: arena of %zu bytes exhausted (%zu more needed)",
                 ctx->len, n);
        return NULL;
    }
    p = ctx->base + ctx->used;
    ctx->used += n;
    memset(p, 0, n);
    return p;
}

struct aml *aml_node_new(struct aml_ctx *ctx, enum aml_kind kind, size_t ndata)
{
    struct aml *t;

    if (ndata > AML_PKGLEN_MAX) {
        aml_ctx_fail(ctx, -E2BIG, "aml: term of %zu bytes is too large", ndata);
        return NULL;
    }
    t = ctx_alloc(ctx, sizeof(*t) + ndata);
    if (!t)
        return NULL;
    t->ctx = ctx;
    t->kind = (uint8_t)kind;
    t->data = (uint8_t *)(t + 1);
    t->ndata = (uint32_t)ndata;
    return t;
}

struct aml *aml_append(struct aml *parent, struct aml *child)
{
    if (!parent)
        return NULL;
    if (!child) {
        aml_ctx_fail(parent->ctx, -EINVAL, "aml: appending a term that failed to build");
        return parent;
    }
    if (child->ctx != parent->ctx) {
        aml_ctx_fail(parent->ctx, -EINVAL, "aml: appending a term of another builder");
        return parent;
    }
    if (child->appended || child == parent) {
        aml_ctx_fail(parent->ctx, -EINVAL, "aml: term appended twice");
        return parent;
    }
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
    parent->nchildren++;
    child->appended = 1;
    return parent;
}

/* ---- sizes ---- */

static int pkglen_bytes(size_t content)
{
    if (content > AML_PKGLEN_MAX)
        return -E2BIG;
    if (content + 1 <= 0x3f)
        return 1;
    if (content + 2 <= 0xfff)
        return 2;
    if (content + 3 <= 0xfffff)
        return 3;
    if (content + 4 <= AML_PKGLEN_MAX)
        return 4;
    return -E2BIG;
}

int aml_pkglen_encode(uint8_t out[4], size_t content_len)
{
    int n = pkglen_bytes(content_len);
    size_t total;

    if (n < 0)
        return n;
    total = content_len + (size_t)n;
    if (n == 1) {
        out[0] = (uint8_t)total;
        return 1;
    }
    /* Lead byte: bits 7-6 count of following bytes, bits 3-0 low nibble. */
    out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
    for (int i = 1; i < n; i++)
        out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    return n;
}

static size_t int_encode(uint8_t *out, uint64_t v)
{
    size_t n;
    uint8_t prefix;

    if (v == 0 || v == 1 || v == UINT64_MAX) {
        if (out)
            out[0] = v == 0 ? AML_ZERO_OP : v == 1 ? AML_ONE_OP : AML_ONES_OP;
        return 1;
    }
    if (v <= 0xff) {
        prefix = AML_BYTE_PREFIX; n = 1;
    } else if (v <= 0xffff) {
        prefix = AML_WORD_PREFIX; n = 2;
    } else if (v <= 0xffffffffu) {
        prefix = AML_DWORD_PREFIX; n = 4;
    } else {
        prefix = AML_QWORD_PREFIX; n = 8;
    }
    if (out) {
        out[0] = prefix;
        for (size_t i = 0; i < n; i++)
            out[1 + i] = (uint8_t)(v >> (8 * i));
    }
    return 1 + n;
}

static size_t term_size(const struct aml *t);

static size_t children_size(const struct aml *t)
{
    size_t s = 0;

    for (const struct aml *c = t->first; c; c = c->next) {
        size_t cs = term_size(c);

        if (cs == SIZE_MAX || s + cs > AML_PKGLEN_MAX)
            return SIZE_MAX;
        s += cs;
    }
    return s;
}

static size_t with_pkglen(const struct aml *t, size_t head, size_t inner)
{
    int n = pkglen_bytes(inner);

    if (n < 0) {
        aml_ctx_fail(t->ctx, -E2BIG, "aml: package of %zu bytes exceeds the PkgLength limit",
                 inner);
        return SIZE_MAX;
    }
    return head + (size_t)n + inner;
}

static size_t term_size(const struct aml *t)
{
    size_t c = children_size(t), payload;

    if (c == SIZE_MAX) {
        aml_ctx_fail(t->ctx, -E2BIG, "aml: term list exceeds the PkgLength limit");
        return SIZE_MAX;
    }
    switch (t->kind) {
    case AML_K_LIST:
        return c;
    case AML_K_RAW:
        return t->ndata + c;
    case AML_K_PKG:
        return with_pkglen(t, t->nhead, t->ndata - t->nhead + c);
    case AML_K_BUFFER:
    case AML_K_RESTEMPLATE:
        payload = t->ndata + c + (t->kind == AML_K_RESTEMPLATE ? 2 : 0);
        return with_pkglen(t, 1, int_encode(NULL, payload) + payload);
    case AML_K_PACKAGE:
        if (t->nchildren > 255) {
            aml_ctx_fail(t->ctx, -E2BIG, "aml: Package of %u elements (max 255)", t->nchildren);
            return SIZE_MAX;
        }
        return with_pkglen(t, 1, 1 + c);
    }
    return SIZE_MAX;
}

size_t aml_size(const struct aml *t)
{
    size_t s;

    if (!t || t->ctx->err)
        return 0;
    s = term_size(t);
    return s == SIZE_MAX ? 0 : s;
}

/* ---- encoding ---- */

static uint8_t *term_write(const struct aml *t, uint8_t *p);

static uint8_t *children_write(const struct aml *t, uint8_t *p)
{
    for (const struct aml *c = t->first; c; c = c->next)
        p = term_write(c, p);
    return p;
}

static uint8_t *pkglen_write(uint8_t *p, size_t inner)
{
    return p + aml_pkglen_encode(p, inner);   /* sized before: cannot fail */
}

static uint8_t *term_write(const struct aml *t, uint8_t *p)
{
    size_t c, payload;
    uint8_t *start, sum;

    switch (t->kind) {
    case AML_K_LIST:
        return children_write(t, p);
    case AML_K_RAW:
        memcpy(p, t->data, t->ndata);
        return children_write(t, p + t->ndata);
    case AML_K_PKG:
        c = children_size(t);
        memcpy(p, t->data, t->nhead);
        p = pkglen_write(p + t->nhead, t->ndata - t->nhead + c);
        memcpy(p, t->data + t->nhead, t->ndata - t->nhead);
        return children_write(t, p + t->ndata - t->nhead);
    case AML_K_BUFFER:
    case AML_K_RESTEMPLATE:
        c = children_size(t);
        payload = t->ndata + c + (t->kind == AML_K_RESTEMPLATE ? 2 : 0);
        *p++ = AML_BUFFER_OP;
        p = pkglen_write(p, int_encode(NULL, payload) + payload);
        p += int_encode(p, payload);
        start = p;
        memcpy(p, t->data, t->ndata);
        p = children_write(t, p + t->ndata);
        if (t->kind == AML_K_RESTEMPLATE) {
            /* End Tag (6.4.2.9): checksum makes the template sum to zero. */
            *p++ = 0x79;
            sum = 0;
            for (uint8_t *q = start; q < p; q++)
                sum = (uint8_t)(sum + *q);
            *p++ = (uint8_t)(0x100 - sum);
        }
        return p;
    case AML_K_PACKAGE:
        c = children_size(t);
        *p++ = AML_PACKAGE_OP;
        p = pkglen_write(p, 1 + c);
        *p++ = (uint8_t)t->nchildren;
        return children_write(t, p);
    }
    return p;
}

ssize_t aml_encode(struct aml_ctx *ctx, const struct aml *t, void *out, size_t out_len)
{
    size_t s;
    uint8_t *end;

    if (!ctx)
        return -EINVAL;
    if (!t)
        aml_ctx_fail(ctx, -EINVAL, "aml: encoding a term that failed to build");
    if (ctx->err)
        return ctx->err;
    s = term_size(t);
    if (s == SIZE_MAX)
        return ctx->err ? ctx->err : -E2BIG;
    if (s > out_len)
        return -ENOSPC;
    end = term_write(t, out);
    if ((size_t)(end - (uint8_t *)out) != s) {
        aml_ctx_fail(ctx, -EPROTO, "aml: encoder wrote %zu bytes for a term sized %zu",
                 (size_t)(end - (uint8_t *)out), s);
        return ctx->err;
    }
    return (ssize_t)s;
}

/* ---- names (20.2.2) ---- */

static bool seg_char_ok(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* Encode path into out (NULL: only count); returns the length or 0. */
static size_t name_encode(struct aml_ctx *ctx, const char *path, uint8_t *out)
{
    const char *p = path;
    size_t n = 0, nsegs = 0;

    if (!path || !*path) {
        aml_ctx_fail(ctx, -EINVAL, "aml: empty name");
        return 0;
    }
    if (*p == '\\') {
        if (out)
            out[n] = AML_ROOT_CHAR;
        n++, p++;
    } else {
        while (*p == '^') {
            if (out)
                out[n] = AML_PARENT_CHAR;
            n++, p++;
        }
    }
    if (*p)
        for (const char *q = p; ; q++) {
            if (*q == '.' || !*q)
                nsegs++;
            if (!*q)
                break;
        }
    if (nsegs > AML_NAMESEGS_MAX) {
        aml_ctx_fail(ctx, -EINVAL, "aml: name '%s' has %zu segments (max %d)", path,
                 nsegs, AML_NAMESEGS_MAX);
        return 0;
    }
    if (nsegs == 0) {
        if (n == 0 || *path != '\\') {   /* only "\" alone is a NullName path */
            aml_ctx_fail(ctx, -EINVAL, "aml: name '%s' has no segment", path);
            return 0;
        }
        if (out)
            out[n] = 0x00;
        return n + 1;
    }
    if (nsegs == 2) {
        if (out)
            out[n] = AML_DUAL_NAME;
        n++;
    } else if (nsegs > 2) {
        if (out) {
            out[n] = AML_MULTI_NAME;
            out[n + 1] = (uint8_t)nsegs;
        }
        n += 2;
    }
    for (size_t s = 0; s < nsegs; s++) {
        size_t len = 0;

        while (p[len] && p[len] != '.') {
            if (len >= 4 || !seg_char_ok(p[len], len == 0)) {
                aml_ctx_fail(ctx, -EINVAL, "aml: name '%s': bad segment at '%.*s'",
                         path, (int)(len + 1), p);
                return 0;
            }
            len++;
        }
        if (len == 0) {
            aml_ctx_fail(ctx, -EINVAL, "aml: name '%s': empty segment", path);
            return 0;
        }
        for (size_t i = 0; i < 4; i++)
            if (out)
                out[n + i] = (uint8_t)(i < len ? p[i] : '_');
        n += 4;
        p += len + (p[len] == '.');
    }
    return n;
}

struct aml *aml_raw_new(struct aml_ctx *ctx, const void *bytes, size_t len)
{
    struct aml *t = aml_node_new(ctx, AML_K_RAW, len);

    if (t && len)
        memcpy(t->data, bytes, len);
    return t;
}

struct aml *aml_list(struct aml_ctx *ctx)
{
    return aml_node_new(ctx, AML_K_LIST, 0);
}

struct aml *aml_int(struct aml_ctx *ctx, uint64_t v)
{
    uint8_t b[9];

    return aml_raw_new(ctx, b, int_encode(b, v));
}

struct aml *aml_string(struct aml_ctx *ctx, const char *s)
{
    size_t len;
    struct aml *t;

    if (!s) {
        aml_ctx_fail(ctx, -EINVAL, "aml: NULL string");
        return NULL;
    }
    len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] > 0x7f) {   /* AsciiCharList: 0x01-0x7f */
            aml_ctx_fail(ctx, -EINVAL, "aml: string has a non-ASCII byte at %zu", i);
            return NULL;
        }
    t = aml_node_new(ctx, AML_K_RAW, len + 2);
    if (!t)
        return NULL;
    t->data[0] = AML_STRING_PREFIX;
    memcpy(t->data + 1, s, len);
    t->data[len + 1] = 0;
    return t;
}

struct aml *aml_buffer(struct aml_ctx *ctx, const void *bytes, size_t len)
{
    struct aml *t = aml_node_new(ctx, AML_K_BUFFER, len);

    if (t && len)
        memcpy(t->data, bytes, len);
    return t;
}

struct aml *aml_package(struct aml_ctx *ctx)
{
    return aml_node_new(ctx, AML_K_PACKAGE, 0);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

struct aml *aml_eisaid(struct aml_ctx *ctx, const char *id)
{
    uint32_t v = 0;

    /* Compressed EISA id (6.1.5): three letters of 5 bits, four hex digits. */
    if (!id || strlen(id) != 7) {
        aml_ctx_fail(ctx, -EINVAL, "aml: EISA id '%s' is not 7 characters", id ? id : "(null)");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            aml_ctx_fail(ctx, -EINVAL, "aml: EISA id '%s': '%c' is not A-Z", id, id[i]);
            return NULL;
        }
        v |= (uint32_t)(id[i] - 0x40) << (26 - 5 * i);
    }
    for (int i = 3; i < 7; i++) {
        int h = hexval(id[i]);

        if (h < 0) {
            aml_ctx_fail(ctx, -EINVAL, "aml: EISA id '%s': '%c' is not a hex digit", id, id[i]);
            return NULL;
        }
        v |= (uint32_t)h << (4 * (6 - i));
    }
    return aml_int(ctx, __builtin_bswap32(v));
}

struct aml *aml_name(struct aml_ctx *ctx, const char *path)
{
    size_t n = name_encode(ctx, path, NULL);
    struct aml *t;

    if (!n)
        return NULL;
    t = aml_node_new(ctx, AML_K_RAW, n);
    if (t)
        name_encode(ctx, path, t->data);
    return t;
}

/* op bytes, then (for PKG kinds) name and extra bytes after the PkgLength. */
static struct aml *named_new(struct aml_ctx *ctx, enum aml_kind kind,
                             const uint8_t *op, size_t nop, const char *name,
                             const uint8_t *extra, size_t nextra)
{
    size_t n = name_encode(ctx, name, NULL);
    struct aml *t;

    if (!n)
        return NULL;
    t = aml_node_new(ctx, kind, nop + n + nextra);
    if (!t)
        return NULL;
    t->nhead = (uint8_t)nop;
    memcpy(t->data, op, nop);
    name_encode(ctx, name, t->data + nop);
    if (nextra)
        memcpy(t->data + nop + n, extra, nextra);
    return t;
}

struct aml *aml_name_decl(struct aml_ctx *ctx, const char *name, struct aml *value)
{
    static const uint8_t op[] = { AML_NAME_OP };
    struct aml *t;

    if (!value) {
        aml_ctx_fail(ctx, -EINVAL, "aml: Name(%s) without a value", name ? name : "(null)");
        return NULL;
    }
    t = named_new(ctx, AML_K_RAW, op, 1, name, NULL, 0);
    return aml_append(t, value);
}

struct aml *aml_scope(struct aml_ctx *ctx, const char *path)
{
    static const uint8_t op[] = { AML_SCOPE_OP };

    return named_new(ctx, AML_K_PKG, op, 1, path, NULL, 0);
}

struct aml *aml_device(struct aml_ctx *ctx, const char *name)
{
    static const uint8_t op[] = { AML_EXT_OP, AML_DEVICE_OP };

    return named_new(ctx, AML_K_PKG, op, 2, name, NULL, 0);
}

struct aml *aml_method(struct aml_ctx *ctx, const char *name, unsigned int nr_args,
                       int serialized)
{
    static const uint8_t op[] = { AML_METHOD_OP };
    uint8_t flags;

    if (nr_args > 7) {
        aml_ctx_fail(ctx, -EINVAL, "aml: Method(%s) with %u arguments (max 7)",
                 name ? name : "(null)", nr_args);
        return NULL;
    }
    /* MethodFlags (20.2.5.2): bits 0-2 ArgCount, bit 3 SerializeFlag. */
    flags = (uint8_t)(nr_args | (serialized ? 0x08 : 0));
    return named_new(ctx, AML_K_PKG, op, 1, name, &flags, 1);
}

static struct aml *op1(struct aml_ctx *ctx, uint8_t op, struct aml *arg, const char *what)
{
    if (!arg) {
        aml_ctx_fail(ctx, -EINVAL, "aml: %s without an operand", what);
        return NULL;
    }
    return aml_append(aml_raw_new(ctx, &op, 1), arg);
}

struct aml *aml_return(struct aml_ctx *ctx, struct aml *value)
{
    return op1(ctx, AML_RETURN_OP, value, "Return");
}

struct aml *aml_sizeof(struct aml_ctx *ctx, struct aml *obj)
{
    return op1(ctx, AML_SIZEOF_OP, obj, "SizeOf");
}

struct aml *aml_arg(struct aml_ctx *ctx, unsigned int n)
{
    uint8_t op = (uint8_t)(AML_ARG0_OP + n);

    if (n > 6) {
        aml_ctx_fail(ctx, -EINVAL, "aml: Arg%u does not exist (Arg0-Arg6)", n);
        return NULL;
    }
    return aml_raw_new(ctx, &op, 1);
}

struct aml *aml_local(struct aml_ctx *ctx, unsigned int n)
{
    uint8_t op = (uint8_t)(AML_LOCAL0_OP + n);

    if (n > 7) {
        aml_ctx_fail(ctx, -EINVAL, "aml: Local%u does not exist (Local0-Local7)", n);
        return NULL;
    }
    return aml_raw_new(ctx, &op, 1);
}

/* Opcode followed by its operands, each a term (NULL operand: an error). */
static struct aml *opn(struct aml_ctx *ctx, uint8_t op, const char *what, int n, ...)
{
    struct aml *t;
    va_list ap;

    va_start(ap, n);
    t = aml_raw_new(ctx, &op, 1);
    for (int i = 0; i < n; i++) {
        struct aml *arg = va_arg(ap, struct aml *);

        if (!arg) {
            aml_ctx_fail(ctx, -EINVAL, "aml: %s without operand %d", what, i + 1);
            t = NULL;
            break;
        }
        aml_append(t, arg);
    }
    va_end(ap);
    return t;
}

struct aml *aml_store(struct aml_ctx *ctx, struct aml *value, struct aml *target)
{
    return opn(ctx, AML_STORE_OP, "Store", 2, value, target);
}

/* Target (20.2.5.4): SuperName or NullName. */
static struct aml *target_or_null(struct aml_ctx *ctx, struct aml *target)
{
    static const uint8_t null_name = 0x00;

    return target ? target : aml_raw_new(ctx, &null_name, 1);
}

struct aml *aml_and(struct aml_ctx *ctx, struct aml *a, struct aml *b, struct aml *target)
{
    return opn(ctx, AML_AND_OP, "And", 3, a, b, target_or_null(ctx, target));
}

struct aml *aml_or(struct aml_ctx *ctx, struct aml *a, struct aml *b, struct aml *target)
{
    return opn(ctx, AML_OR_OP, "Or", 3, a, b, target_or_null(ctx, target));
}

struct aml *aml_equal(struct aml_ctx *ctx, struct aml *a, struct aml *b)
{
    return opn(ctx, AML_LEQUAL_OP, "LEqual", 2, a, b);
}

struct aml *aml_lnot(struct aml_ctx *ctx, struct aml *a)
{
    return opn(ctx, AML_LNOT_OP, "LNot", 1, a);
}

struct aml *aml_if(struct aml_ctx *ctx, struct aml *predicate)
{
    struct aml *t;

    if (!predicate) {
        aml_ctx_fail(ctx, -EINVAL, "aml: If without a predicate");
        return NULL;
    }
    t = aml_node_new(ctx, AML_K_PKG, 1);
    if (!t)
        return NULL;
    t->data[0] = AML_IF_OP;
    t->nhead = 1;
    return aml_append(t, predicate);
}

struct aml *aml_else(struct aml_ctx *ctx)
{
    struct aml *t = aml_node_new(ctx, AML_K_PKG, 1);

    if (t) {
        t->data[0] = AML_ELSE_OP;
        t->nhead = 1;
    }
    return t;
}

struct aml *aml_create_dword_field(struct aml_ctx *ctx, struct aml *buffer,
                                   struct aml *byte_index, const char *name)
{
    struct aml *t = opn(ctx, AML_CREATE_DWORD_FIELD_OP, "CreateDWordField", 2, buffer,
                        byte_index);

    return aml_append(t, aml_name(ctx, name));
}

static int hexval_ci(char c)
{
    return hexval(c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c);
}

struct aml *aml_touuid(struct aml_ctx *ctx, const char *uuid)
{
    /* Byte order of ToUUID (19.6.142): the first three groups little-endian. */
    static const uint8_t pos[16] = { 6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34 };
    uint8_t b[16];

    if (!uuid || strlen(uuid) != 36 || uuid[8] != '-' || uuid[13] != '-' ||
        uuid[18] != '-' || uuid[23] != '-') {
        aml_ctx_fail(ctx, -EINVAL, "aml: '%s' is not a UUID", uuid ? uuid : "(null)");
        return NULL;
    }
    for (int i = 0; i < 16; i++) {
        int hi = hexval_ci(uuid[pos[i]]), lo = hexval_ci(uuid[pos[i] + 1]);

        if (hi < 0 || lo < 0) {
            aml_ctx_fail(ctx, -EINVAL, "aml: '%s' is not a UUID", uuid);
            return NULL;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return aml_buffer(ctx, b, sizeof(b));
}
