/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * AML builder (ACPI 6.4, chapter 20 "ACPI Machine Language Specification").
 *
 * A builder context owns an arena in caller-supplied memory; every term is
 * a node allocated there.  Constructors return a term, aml_append() makes
 * it a child of another, and aml_encode() writes a finished tree out,
 * computing every PkgLength.  There is no static state: any number of
 * builders may run at once.
 *
 * Errors are sticky: a constructor that cannot allocate or gets a bad
 * argument (a malformed name, an out-of-range value) records the first
 * error in the context and returns NULL; appending or encoding NULL is
 * harmless, and aml_encode() then returns that error.  So building code can
 * chain calls and check once, at the end.
 */
#ifndef FERRY_ACPI_AML_H
#define FERRY_ACPI_AML_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is its API. */
#pragma GCC visibility push(default)

struct aml_ctx;
struct aml;

#define AML_PKGLEN_MAX 0x0fffffffu  /* largest PkgLength (28 bits) */
#define AML_CTX_MIN    512          /* smallest arena aml_ctx_init takes */

/* Builder in mem[0..len); NULL if len < AML_CTX_MIN.  No cleanup needed. */
struct aml_ctx *aml_ctx_init(void *mem, size_t len);
/* First error (0 or -errno) and its message ("" when none). */
int aml_ctx_error(const struct aml_ctx *ctx);
const char *aml_ctx_error_msg(const struct aml_ctx *ctx);
/* Arena bytes in use. */
size_t aml_ctx_used(const struct aml_ctx *ctx);

/* Append child to parent's term list; returns parent. */
struct aml *aml_append(struct aml *parent, struct aml *child);

/*
 * Encoded size of term (0 on error), and encoding: writes the term into
 * out[0..out_len) and returns the bytes written, or -ENOSPC if out_len is
 * too small, or the context's error.
 */
size_t aml_size(const struct aml *term);
ssize_t aml_encode(struct aml_ctx *ctx, const struct aml *term,
                   void *out, size_t out_len);

/*
 * PkgLength (20.2.4) for a package whose contents (after the PkgLength)
 * are content_len bytes: writes 1-4 bytes to out, returns how many, or
 * -E2BIG past AML_PKGLEN_MAX.
 */
int aml_pkglen_encode(uint8_t out[4], size_t content_len);

/* A bare list of terms (a TermList, e.g. a table body). */
struct aml *aml_list(struct aml_ctx *ctx);

/* Data objects (20.2.3). */
struct aml *aml_int(struct aml_ctx *ctx, uint64_t v);  /* Zero/One/Ones/Byte..QWord */
struct aml *aml_string(struct aml_ctx *ctx, const char *s);
struct aml *aml_buffer(struct aml_ctx *ctx, const void *bytes, size_t len);
struct aml *aml_package(struct aml_ctx *ctx);         /* elements appended */
struct aml *aml_eisaid(struct aml_ctx *ctx, const char *id); /* "PNP0A03" */

/*
 * Names (20.2.2): "\\_SB.PCI0", "^^FOO", "_HID", "A.B.C".  Segments are
 * up to four characters [A-Z_][A-Z0-9_]*, padded with '_'.
 */
struct aml *aml_name(struct aml_ctx *ctx, const char *path); /* reference */

/* Namespace modifiers and named objects (20.2.5). */
struct aml *aml_name_decl(struct aml_ctx *ctx, const char *name, struct aml *value);
struct aml *aml_scope(struct aml_ctx *ctx, const char *path);
struct aml *aml_device(struct aml_ctx *ctx, const char *name);
struct aml *aml_method(struct aml_ctx *ctx, const char *name,
                       unsigned int nr_args, int serialized);

/* Statements and expressions (20.2.5.3/4). */
struct aml *aml_return(struct aml_ctx *ctx, struct aml *value);
struct aml *aml_sizeof(struct aml_ctx *ctx, struct aml *obj);
struct aml *aml_arg(struct aml_ctx *ctx, unsigned int n);    /* Arg0-6 */
struct aml *aml_local(struct aml_ctx *ctx, unsigned int n);  /* Local0-7 */
struct aml *aml_store(struct aml_ctx *ctx, struct aml *value, struct aml *target);
/* target may be NULL (no result stored). */
struct aml *aml_and(struct aml_ctx *ctx, struct aml *a, struct aml *b, struct aml *target);
struct aml *aml_or(struct aml_ctx *ctx, struct aml *a, struct aml *b, struct aml *target);
struct aml *aml_equal(struct aml_ctx *ctx, struct aml *a, struct aml *b);   /* LEqual */
struct aml *aml_lnot(struct aml_ctx *ctx, struct aml *a);                   /* LNot */
/* If (predicate) { appended terms }; an Else must be appended right after its If. */
struct aml *aml_if(struct aml_ctx *ctx, struct aml *predicate);
struct aml *aml_else(struct aml_ctx *ctx);
/* CreateDWordField (buffer, byte_index, name) */
struct aml *aml_create_dword_field(struct aml_ctx *ctx, struct aml *buffer,
                                   struct aml *byte_index, const char *name);
/* ToUUID ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"): a 16-byte Buffer. */
struct aml *aml_touuid(struct aml_ctx *ctx, const char *uuid);

/*
 * Resource templates (6.4): a Buffer whose elements are descriptors; the
 * EndTag and its checksum are added when it is encoded.
 */
struct aml *aml_resource_template(struct aml_ctx *ctx);

#define AML_RES_CONSUMER  (1u << 0)

/* IO (Decode16), FixedIO, IRQNoFlags (small descriptors). */
struct aml *aml_io(struct aml_ctx *ctx, uint16_t min, uint16_t max,
                   uint8_t align, uint8_t len);
struct aml *aml_fixed_io(struct aml_ctx *ctx, uint16_t base, uint8_t len);
struct aml *aml_irq_noflags(struct aml_ctx *ctx, uint8_t irq);

/* Extended Interrupt: ResourceConsumer, one GSI. */
#define AML_IRQ_EDGE       (1u << 1)
#define AML_IRQ_ACTIVE_LOW (1u << 2)
#define AML_IRQ_SHARED     (1u << 3)
struct aml *aml_interrupt(struct aml_ctx *ctx, unsigned int flags, uint32_t gsi);

/* Memory32Fixed. */
struct aml *aml_memory32_fixed(struct aml_ctx *ctx, int read_write,
                               uint32_t base, uint32_t len);

/*
 * Address space descriptors of a bridge (ResourceProducer, MinFixed,
 * MaxFixed, PosDecode, granularity 0, translation 0); min..max inclusive.
 */
struct aml *aml_word_bus_number(struct aml_ctx *ctx, uint16_t min, uint16_t max);
struct aml *aml_dword_io(struct aml_ctx *ctx, uint32_t min, uint32_t max);
struct aml *aml_dword_memory(struct aml_ctx *ctx, int cacheable,
                             uint32_t min, uint32_t max);
struct aml *aml_qword_memory(struct aml_ctx *ctx, int cacheable,
                             uint64_t min, uint64_t max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ACPI_AML_H */
