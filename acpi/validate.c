// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The validator: walks a table set from its RSDP the way an OS does and
 * checks every signature, length, checksum and pointer on the way
 * (RSDP -> XSDT/RSDT -> FADT -> DSDT/FACS, and every other listed table),
 * and that no signature but SSDT appears twice.
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi-internal.h"

#define TABLE_LEN_MAX (1u << 24)    /* no table of ours comes near this */
#define LISTED_MAX 64

struct walk {
    acpi_resolve_fn resolve;
    void *opaque;
    ferry_log_fn log;
    void *lo;
};

#define BAD(w, ...) do { acpi_err((w)->log, (w)->lo, "validate: " __VA_ARGS__); \
                         return -EPROTO; } while (0)

int acpi_sig_ok(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Resolve and check one table with a standard header; returns it or NULL. */
static int table_get(struct walk *w, uint64_t gpa, const char *want, const char *via,
                     const struct acpi_header **out)
{
    const struct acpi_header *h = w->resolve(w->opaque, gpa, sizeof(*h));
    uint32_t len;

    if (!gpa || !h)
        BAD(w, "%s: 0x%llx does not point at a table", via, (unsigned long long)gpa);
    if (!acpi_sig_ok(h->signature) || (want && memcmp(h->signature, want, 4)))
        BAD(w, "%s: table at 0x%llx has signature '%.4s', expected %s", via,
            (unsigned long long)gpa, h->signature, want ? want : "A-Z0-9_");
    len = h->length;
    if (len < sizeof(*h) || len > TABLE_LEN_MAX)
        BAD(w, "%.4s at 0x%llx: length %u is invalid", h->signature,
            (unsigned long long)gpa, len);
    if (!w->resolve(w->opaque, gpa, len))
        BAD(w, "%.4s at 0x%llx: length %u runs past the table memory", h->signature,
            (unsigned long long)gpa, len);
    h = w->resolve(w->opaque, gpa, len);
    if (acpi_checksum(h, len))
        BAD(w, "%.4s at 0x%llx: checksum does not sum to zero (off by 0x%02x)",
            h->signature, (unsigned long long)gpa, acpi_checksum(h, len));
    *out = h;
    return 0;
}

/* Subtables of MADT/SRAT: lengths must tile the table exactly. */
static int subtables_check(struct walk *w, const struct acpi_header *h, size_t hdr,
                           const uint8_t *exact, size_t nexact)
{
    const uint8_t *p = (const uint8_t *)h + hdr, *end = (const uint8_t *)h + h->length;

    if (h->length < hdr)
        BAD(w, "%.4s: length %u below its fixed part %zu", h->signature, h->length, hdr);
    while (p < end) {
        if (end - p < 2 || p[1] < 2 || p[1] > end - p)
            BAD(w, "%.4s: subtable at offset %zu has length %u, %zu bytes left", h->signature,
                (size_t)(p - (const uint8_t *)h), end - p < 2 ? 0 : p[1], (size_t)(end - p));
        if (p[0] < nexact && exact[p[0]] && p[1] != exact[p[0]])
            BAD(w, "%.4s: subtable type %u at offset %zu has length %u, expected %u",
                h->signature, p[0], (size_t)(p - (const uint8_t *)h), p[1], exact[p[0]]);
        p += p[1];
    }
    return 0;
}

static int table_contents_check(struct walk *w, const struct acpi_header *h)
{
    static const uint8_t madt_len[] = { [0] = 8, [1] = 12, [2] = 10, [4] = 6, [9] = 16,
                                        [10] = 12 };
    static const uint8_t srat_len[] = { [0] = 16, [1] = 40, [2] = 24 };

    if (!memcmp(h->signature, "APIC", 4))
        return subtables_check(w, h, sizeof(struct acpi_madt), madt_len, sizeof(madt_len));
    if (!memcmp(h->signature, "SRAT", 4))
        return subtables_check(w, h, sizeof(struct acpi_srat), srat_len, sizeof(srat_len));
    if (!memcmp(h->signature, "SLIT", 4)) {
        const struct acpi_slit *s = (const void *)h;
        uint64_t n = h->length >= sizeof(*s) ? s->localities : 0;

        if (h->length < sizeof(*s) || n > 255 || sizeof(*s) + n * n != h->length)
            BAD(w, "SLIT: %llu localities do not fit length %u", (unsigned long long)n,
                h->length);
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)(s + 1))[i * n + i] != 10)
                BAD(w, "SLIT: distance of locality %llu to itself is not 10",
                    (unsigned long long)i);
    }
    if (!memcmp(h->signature, "MCFG", 4) &&
        (h->length < sizeof(struct acpi_mcfg) ||
         (h->length - sizeof(struct acpi_mcfg)) % sizeof(struct acpi_mcfg_alloc)))
        BAD(w, "MCFG: length %u is not 44 + 16n", h->length);
    if (!memcmp(h->signature, "HPET", 4) && h->length != sizeof(struct acpi_hpet))
        BAD(w, "HPET: length %u, expected %zu", h->length, sizeof(struct acpi_hpet));
    if (!memcmp(h->signature, "WAET", 4) && h->length != sizeof(struct acpi_waet))
        BAD(w, "WAET: length %u, expected %zu", h->length, sizeof(struct acpi_waet));
    return 0;
}

static int fadt_check(struct walk *w, const struct acpi_header *h)
{
    const struct acpi_fadt *f = (const void *)h;
    const struct acpi_header *dsdt;
    const struct acpi_facs *facs;
    uint64_t dsdt_gpa, facs_gpa;
    int rc;

    if (h->length < offsetof(struct acpi_fadt, x_pm1a_evt_blk))
        BAD(w, "FACP: length %u is too short for X_DSDT", h->length);
    if (f->dsdt && f->x_dsdt && f->dsdt != f->x_dsdt)
        BAD(w, "FACP: DSDT 0x%x and X_DSDT 0x%llx disagree", f->dsdt,
            (unsigned long long)f->x_dsdt);
    dsdt_gpa = f->x_dsdt ? f->x_dsdt : f->dsdt;
    rc = table_get(w, dsdt_gpa, "DSDT", "FACP.X_DSDT", &dsdt);
    if (rc)
        return rc;
    /* ACPI 5.2.9: at most one of the two is non-zero. */
    if (f->firmware_ctrl && f->x_firmware_ctrl)
        BAD(w, "FACP: FIRMWARE_CTRL 0x%x and X_FIRMWARE_CTRL 0x%llx are both set (at most "
            "one may be non-zero)", f->firmware_ctrl, (unsigned long long)f->x_firmware_ctrl);
    if (!f->firmware_ctrl && !f->x_firmware_ctrl)
        BAD(w, "FACP: neither FIRMWARE_CTRL nor X_FIRMWARE_CTRL points at the FACS");
    facs_gpa = f->x_firmware_ctrl ? f->x_firmware_ctrl : f->firmware_ctrl;
    facs = facs_gpa ? w->resolve(w->opaque, facs_gpa, sizeof(*facs)) : NULL;
    if (!facs)
        BAD(w, "FACP.%sFIRMWARE_CTRL: 0x%llx does not point at the FACS",
            f->x_firmware_ctrl ? "X_" : "", (unsigned long long)facs_gpa);
    if (memcmp(facs->signature, "FACS", 4) || facs->length != sizeof(*facs))
        BAD(w, "FACS at 0x%llx: signature '%.4s' length %u", (unsigned long long)facs_gpa,
            facs->signature, facs->length);
    if (facs_gpa & 63)
        BAD(w, "FACS at 0x%llx is not 64-byte aligned", (unsigned long long)facs_gpa);
    return 0;
}

int acpi_validate_graph(acpi_resolve_fn resolve, void *opaque, uint64_t rsdp_gpa,
                        ferry_log_fn log, void *lo)
{
    struct walk w = { resolve, opaque, log, lo };
    const struct acpi_rsdp *rsdp = resolve(opaque, rsdp_gpa, sizeof(*rsdp));
    const struct acpi_header *xsdt, *rsdt = NULL;
    char sigs[LISTED_MAX][4];
    uint32_t n;
    int rc, have_fadt = 0;

    if (!rsdp)
        BAD(&w, "RSDP: 0x%llx is outside the tables", (unsigned long long)rsdp_gpa);
    if (memcmp(rsdp->signature, "RSD PTR ", 8))
        BAD(&w, "RSDP: signature is not 'RSD PTR '");
    if (acpi_checksum(rsdp, 20))
        BAD(&w, "RSDP: checksum of the first 20 bytes does not sum to zero");
    if (rsdp->revision < 2 || rsdp->length != sizeof(*rsdp))
        BAD(&w, "RSDP: revision %u length %u (expected 2 and 36)", rsdp->revision,
            rsdp->length);
    if (acpi_checksum(rsdp, sizeof(*rsdp)))
        BAD(&w, "RSDP: extended checksum does not sum to zero");

    rc = table_get(&w, rsdp->xsdt_address, "XSDT", "RSDP.XsdtAddress", &xsdt);
    if (rc)
        return rc;
    if ((xsdt->length - sizeof(*xsdt)) % 8)
        BAD(&w, "XSDT: length %u is not 36 + 8n", xsdt->length);
    n = (xsdt->length - sizeof(*xsdt)) / 8;
    if (n > LISTED_MAX)
        BAD(&w, "XSDT: %u entries (max %d)", n, LISTED_MAX);
    if (rsdp->rsdt_address) {
        rc = table_get(&w, rsdp->rsdt_address, "RSDT", "RSDP.RsdtAddress", &rsdt);
        if (rc)
            return rc;
        if (rsdt->length != sizeof(*rsdt) + 4 * n)
            BAD(&w, "RSDT: length %u does not list the %u tables of the XSDT", rsdt->length, n);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t gpa;
        const struct acpi_header *h;

        memcpy(&gpa, (const uint8_t *)(xsdt + 1) + 8 * i, 8);
        if (rsdt) {
            uint32_t r;

            memcpy(&r, (const uint8_t *)(rsdt + 1) + 4 * i, 4);
            if (r != gpa)
                BAD(&w, "RSDT entry %u (0x%x) differs from XSDT entry 0x%llx", i, r,
                    (unsigned long long)gpa);
        }
        rc = table_get(&w, gpa, NULL, "XSDT entry", &h);
        if (rc)
            return rc;
        if (!memcmp(h->signature, "DSDT", 4) || !memcmp(h->signature, "FACS", 4) ||
            !memcmp(h->signature, "XSDT", 4) || !memcmp(h->signature, "RSDT", 4))
            BAD(&w, "XSDT entry %u: %.4s must not be listed", i, h->signature);
        for (uint32_t j = 0; j < i; j++)
            if (!memcmp(sigs[j], h->signature, 4) && memcmp(h->signature, "SSDT", 4))
                BAD(&w, "XSDT: signature %.4s appears twice", h->signature);
        memcpy(sigs[i], h->signature, 4);
        if (!memcmp(h->signature, "FACP", 4)) {
            have_fadt = 1;
            rc = fadt_check(&w, h);
        } else {
            rc = table_contents_check(&w, h);
        }
        if (rc)
            return rc;
    }
    if (!have_fadt)
        BAD(&w, "XSDT: no FACP");
    return 0;
}

/* ---- resolvers ---- */

struct list_resolver {
    const struct acpi_tables *t;
    uint32_t seen;          /* bit per table */
};
_Static_assert(ACPI_TABLES_MAX <= 32, "list_resolver.seen has a bit per table");

static const void *list_resolve(void *opaque, uint64_t gpa, uint32_t len)
{
    struct list_resolver *lr = opaque;

    for (uint32_t i = 0; i < lr->t->nr; i++) {
        const struct acpi_table_ref *r = &lr->t->tables[i];

        if (r->gpa == gpa && len <= r->len) {
            lr->seen |= 1u << i;
            return r->ptr;
        }
    }
    return NULL;
}

int acpi_tables_validate(const struct acpi_tables *t, ferry_log_fn log, void *lo)
{
    struct list_resolver lr = { t, 0 };
    int rc;

    if (!t || t->nr == 0 || t->nr > ACPI_TABLES_MAX) {
        acpi_err(log, lo, "validate: no table set");
        return -EPROTO;
    }
    rc = acpi_validate_graph(list_resolve, &lr, t->rsdp_gpa, log, lo);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < t->nr; i++) {
        const struct acpi_table_ref *r = &t->tables[i];
        uint32_t hlen;

        if (!(lr.seen & (1u << i))) {
            acpi_err(log, lo, "validate: %s at 0x%llx is not reachable from the RSDP", r->sig,
                     (unsigned long long)r->gpa);
            return -EPROTO;
        }
        if (!strcmp(r->sig, "RSDP"))
            continue;
        memcpy(&hlen, (const uint8_t *)r->ptr + 4, 4);
        if (hlen != r->len) {
            acpi_err(log, lo, "validate: %s at 0x%llx: header length %u, built %u", r->sig,
                     (unsigned long long)r->gpa, hlen, r->len);
            return -EPROTO;
        }
        for (uint32_t j = 0; j < i; j++)
            if (r->gpa < t->tables[j].gpa + t->tables[j].len &&
                t->tables[j].gpa < r->gpa + r->len) {
                acpi_err(log, lo, "validate: %s at 0x%llx overlaps %s", r->sig,
                         (unsigned long long)r->gpa, t->tables[j].sig);
                return -EPROTO;
            }
    }
    return 0;
}

struct blob_resolver {
    const uint8_t *blob;
    size_t len;
    uint64_t base;
};

static const void *blob_resolve(void *opaque, uint64_t gpa, uint32_t len)
{
    struct blob_resolver *br = opaque;
    uint64_t off;

    if (gpa < br->base)
        return NULL;
    off = gpa - br->base;
    if (off > br->len || len > br->len - off)
        return NULL;
    return br->blob + off;
}

int acpi_blob_validate(const void *blob, size_t len, uint64_t base_gpa, uint64_t rsdp_gpa,
                       ferry_log_fn log, void *lo)
{
    struct blob_resolver br = { blob, len, base_gpa };

    if (!blob) {
        acpi_err(log, lo, "validate: no blob");
        return -EPROTO;
    }
    return acpi_validate_graph(blob_resolve, &br, rsdp_gpa, log, lo);
}
