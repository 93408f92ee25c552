// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * acpi_build_tables(): every table of a guest, in memory the caller
 * provides, checked by the validator before it is returned.
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi-internal.h"
#include "acpi/aml.h"

#define GAS_IO 1
#define DSDT_REVISION 2         /* 64-bit integers */
#define SSDT_REVISION 2
#define FADT_REVISION 6
#define FADT_MINOR    0
#define MADT_REVISION 4
#define HPET_BLOCK_ID 0x8086a201u   /* vendor 8086, 32 timers-1=2, rev 1 */

struct builder {
    const struct acpi_config *cfg;
    const struct acpi_ctx *ctx;
    struct acpi_tables *out;
    int err;
};

uint8_t acpi_checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + b[i]);
    return sum;
}

static void pad_copy(char *dst, const char *src, size_t n)
{
    size_t l = strnlen(src, n);

    memcpy(dst, src, l);
    memset(dst + l, ' ', n - l);
}

static void *table_alloc(struct builder *bd, const char *sig, size_t size, size_t align)
{
    const struct acpi_ctx *ctx = bd->ctx;
    struct acpi_table_ref *ref;
    void *p;

    if (bd->err)
        return NULL;
    if (bd->out->nr == ACPI_TABLES_MAX) {
        acpi_err(ctx->log, ctx->log_opaque, "build %s: more than %u tables", sig,
                 ACPI_TABLES_MAX);
        bd->err = -E2BIG;
        return NULL;
    }
    if (size > UINT32_MAX) {
        acpi_err(ctx->log, ctx->log_opaque, "build %s: %zu bytes is too large", sig, size);
        bd->err = -E2BIG;
        return NULL;
    }
    p = ctx->alloc(ctx->opaque, size, align);
    if (!p) {
        acpi_err(ctx->log, ctx->log_opaque,
                 "build %s: table memory exhausted (%zu bytes, align %zu)", sig, size, align);
        bd->err = -ENOMEM;
        return NULL;
    }
    memset(p, 0, size);
    ref = &bd->out->tables[bd->out->nr++];
    memcpy(ref->sig, sig, 4);
    ref->sig[4] = 0;
    ref->ptr = p;
    ref->gpa = ctx->v2p(ctx->opaque, p);
    ref->len = (uint32_t)size;
    if (ref->gpa % align) {
        acpi_err(ctx->log, ctx->log_opaque,
                 "build %s: guest address 0x%llx is not %zu-byte aligned", sig,
                 (unsigned long long)ref->gpa, align);
        bd->err = -EINVAL;
        return NULL;
    }
    return p;
}

static uint64_t gpa_of(struct builder *bd, const void *p)
{
    for (uint32_t i = 0; i < bd->out->nr; i++)
        if (bd->out->tables[i].ptr == p)
            return bd->out->tables[i].gpa;
    return 0;
}

/* A 32-bit pointer field to table p: 0 (and an error) if it lies above 4 GiB. */
static uint32_t gpa32(struct builder *bd, const void *p, const char *what)
{
    uint64_t gpa = gpa_of(bd, p);

    if (gpa > UINT32_MAX) {
        acpi_err(bd->ctx->log, bd->ctx->log_opaque,
                 "build %s: table at 0x%llx is above 4 GiB", what, (unsigned long long)gpa);
        if (!bd->err)
            bd->err = -ERANGE;
        return 0;
    }
    return (uint32_t)gpa;
}

static void header_init(struct builder *bd, struct acpi_header *h, const char *sig,
                        size_t len, uint8_t rev)
{
    memcpy(h->signature, sig, 4);
    h->length = (uint32_t)len;
    h->revision = rev;
    pad_copy(h->oem_id, bd->cfg->oem_id, 6);
    pad_copy(h->oem_table_id, bd->cfg->oem_table_id, 8);
    h->oem_revision = bd->cfg->oem_revision;
    memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
    h->creator_revision = ACPI_CREATOR_REVISION;
}

static void header_seal(struct acpi_header *h)
{
    h->checksum = 0;
    h->checksum = (uint8_t)(0x100 - acpi_checksum(h, h->length));
}

/* A table whose body is AML (DSDT, SSDT). */
static struct acpi_header *aml_table(struct builder *bd, struct aml_ctx *b,
                                     const char *sig, struct aml *body)
{
    const struct acpi_ctx *ctx = bd->ctx;
    size_t size = aml_size(body);
    struct acpi_header *h;
    ssize_t n;

    if (!size || aml_ctx_error(b)) {
        acpi_err(ctx->log, ctx->log_opaque, "build %s: %s", sig,
                 aml_ctx_error(b) ? aml_ctx_error_msg(b) : "empty AML body");
        if (!bd->err)
            bd->err = aml_ctx_error(b) ? aml_ctx_error(b) : -EINVAL;
        return NULL;
    }
    h = table_alloc(bd, sig, sizeof(*h) + size, 8);
    if (!h)
        return NULL;
    n = aml_encode(b, body, h + 1, size);
    if (n != (ssize_t)size) {
        acpi_err(ctx->log, ctx->log_opaque, "build %s: AML encoding failed: %s", sig,
                 aml_ctx_error_msg(b));
        bd->err = n < 0 ? (int)n : -EPROTO;
        return NULL;
    }
    header_init(bd, h, sig, sizeof(*h) + size, !strcmp(sig, "DSDT") ? DSDT_REVISION
                                                                     : SSDT_REVISION);
    header_seal(h);
    return h;
}

static struct acpi_gas gas_io(uint16_t port, uint8_t len, uint8_t access)
{
    return (struct acpi_gas){ .space_id = GAS_IO, .bit_width = (uint8_t)(len * 8),
                              .access_size = access, .address = port };
}

static struct acpi_fadt *build_fadt(struct builder *bd, struct acpi_facs *facs,
                                    struct acpi_header *dsdt)
{
    const struct acpi_config *cfg = bd->cfg;
    const struct acpi_pm *pm = &cfg->pm;
    struct acpi_fadt *f = table_alloc(bd, "FACP", sizeof(*f), 8);

    if (!f)
        return NULL;
    header_init(bd, &f->h, "FACP", sizeof(*f), FADT_REVISION);
    f->minor_version = FADT_MINOR;
    /*
     * ACPI 5.2.9 (4.0 to 6.x): at most one of FIRMWARE_CTRL and
     * X_FIRMWARE_CTRL is non-zero, X_FIRMWARE_CTRL being for a FACS above
     * 4 GiB.  Below, the 32-bit field: what ACPI 1.0 OSes, firmware's
     * resume code and kvm-unit-tests read (as QEMU and edk2 fill it).
     */
    if (gpa_of(bd, facs) <= UINT32_MAX)
        f->firmware_ctrl = (uint32_t)gpa_of(bd, facs);
    else
        f->x_firmware_ctrl = gpa_of(bd, facs);
    f->dsdt = gpa32(bd, dsdt, "FADT.DSDT");
    f->x_dsdt = gpa_of(bd, dsdt);
    f->preferred_pm_profile = 0;        /* unspecified */
    f->sci_int = pm->sci_irq;
    f->smi_cmd = 0;                     /* no SMM: always in ACPI mode */
    f->pm1a_evt_blk = pm->pm1a_evt;
    f->pm1a_cnt_blk = pm->pm1a_cnt;
    f->pm_tmr_blk = pm->pm_tmr;
    f->gpe0_blk = pm->gpe0;
    f->pm1_evt_len = pm->pm1_evt_len;
    f->pm1_cnt_len = pm->pm1_cnt_len;
    f->pm_tmr_len = pm->pm_tmr_len;
    f->gpe0_blk_len = pm->gpe0_len;
    f->p_lvl2_lat = 101;                /* > 100: C2 not supported */
    f->p_lvl3_lat = 1001;               /* > 1000: C3 not supported */
    f->century = (cfg->flags & ACPI_HAS_RTC) ? 0x32 : 0;
    f->iapc_boot_arch = ACPI_FADT_BOOT_LEGACY_DEVICES | ACPI_FADT_BOOT_VGA_NOT_PRESENT;
    f->flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_PWR_BUTTON |
               ACPI_FADT_SLP_BUTTON | ACPI_FADT_FIX_RTC | ACPI_FADT_TMR_VAL_EXT |
               ACPI_FADT_RESET_REG_SUP;
    f->reset_reg = gas_io(pm->reset_port, 1, 1);
    f->reset_value = pm->reset_value;
    f->x_pm1a_evt_blk = gas_io(pm->pm1a_evt, pm->pm1_evt_len, 0);
    f->x_pm1a_cnt_blk = gas_io(pm->pm1a_cnt, pm->pm1_cnt_len, 0);
    f->x_pm_tmr_blk = gas_io(pm->pm_tmr, pm->pm_tmr_len, 0);
    f->x_gpe0_blk = gas_io(pm->gpe0, pm->gpe0_len, 0);
    memcpy(&f->hypervisor_vendor_id, "Ferry\0\0\0", 8);
    header_seal(&f->h);
    return f;
}

static struct acpi_header *build_madt(struct builder *bd)
{
    const struct acpi_config *cfg = bd->cfg;
    int x2 = cfg->madt_form == ACPI_MADT_X2APIC;
    size_t size = sizeof(struct acpi_madt) + sizeof(struct acpi_madt_ioapic) +
                  2 * sizeof(struct acpi_madt_iso) +
                  (x2 ? cfg->nr_vcpus * sizeof(struct acpi_madt_x2apic) +
                        sizeof(struct acpi_madt_x2apic_nmi)
                      : cfg->nr_vcpus * sizeof(struct acpi_madt_lapic) +
                        sizeof(struct acpi_madt_lapic_nmi));
    struct acpi_madt *m = table_alloc(bd, "APIC", size, 8);
    uint8_t *p;

    if (!m)
        return NULL;
    header_init(bd, &m->h, "APIC", size, MADT_REVISION);
    m->lapic_addr = (uint32_t)cfg->lapic_addr;
    m->flags = 1;                       /* PCAT_COMPAT: dual 8259s present */
    p = (uint8_t *)(m + 1);
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        if (x2) {
            struct acpi_madt_x2apic *e = (void *)p;

            *e = (struct acpi_madt_x2apic){ { 9, sizeof(*e) }, 0, cfg->vcpus[i].apic_id, 1, i };
            p += sizeof(*e);
        } else {
            struct acpi_madt_lapic *e = (void *)p;

            *e = (struct acpi_madt_lapic){ { 0, sizeof(*e) }, (uint8_t)i,
                                           (uint8_t)cfg->vcpus[i].apic_id, 1 };
            p += sizeof(*e);
        }
    }
    {
        struct acpi_madt_ioapic *e = (void *)p;

        *e = (struct acpi_madt_ioapic){ { 1, sizeof(*e) }, cfg->ioapic_id, 0,
                                        (uint32_t)cfg->ioapic_addr, cfg->ioapic_gsi_base };
        p += sizeof(*e);
    }
    {
        /* The PIT's IRQ 0 is IOAPIC pin 2 on a PC; SCI is level, active high. */
        struct acpi_madt_iso *e = (void *)p;

        *e = (struct acpi_madt_iso){ { 2, sizeof(*e) }, 0, 0, 2, 0 };
        e++;
        *e = (struct acpi_madt_iso){ { 2, sizeof(*e) }, 0, cfg->pm.sci_irq, cfg->pm.sci_irq,
                                     ACPI_MPS_POLARITY_HIGH | ACPI_MPS_TRIGGER_LEVEL };
        p = (uint8_t *)(e + 1);
    }
    /* NMI on LINT1 of every processor. */
    if (x2) {
        struct acpi_madt_x2apic_nmi *e = (void *)p;

        *e = (struct acpi_madt_x2apic_nmi){ { 10, sizeof(*e) }, 0, 0xffffffffu, 1, { 0 } };
    } else {
        struct acpi_madt_lapic_nmi *e = (void *)p;

        *e = (struct acpi_madt_lapic_nmi){ { 4, sizeof(*e) }, 0xff, 0, 1 };
    }
    header_seal(&m->h);
    return &m->h;
}

static struct acpi_header *build_hpet(struct builder *bd)
{
    struct acpi_hpet *t = table_alloc(bd, "HPET", sizeof(*t), 8);

    if (!t)
        return NULL;
    header_init(bd, &t->h, "HPET", sizeof(*t), 1);
    t->event_timer_block_id = HPET_BLOCK_ID;
    t->base = (struct acpi_gas){ .space_id = 0, .bit_width = 64, .address = bd->cfg->hpet_addr };
    t->min_tick = 0x80;
    header_seal(&t->h);
    return &t->h;
}

static struct acpi_header *build_mcfg(struct builder *bd)
{
    size_t size = sizeof(struct acpi_mcfg) + sizeof(struct acpi_mcfg_alloc);
    struct acpi_mcfg *t = table_alloc(bd, "MCFG", size, 8);
    struct acpi_mcfg_alloc *a;

    if (!t)
        return NULL;
    header_init(bd, &t->h, "MCFG", size, 1);
    a = (void *)(t + 1);
    /* Base of bus 0 even when bus_start is not 0 (PCI Firmware spec). */
    a->base = bd->cfg->pci.ecam_base - ((uint64_t)bd->cfg->pci.bus_start << 20);
    a->segment = 0;
    a->bus_start = bd->cfg->pci.bus_start;
    a->bus_end = bd->cfg->pci.bus_end;
    header_seal(&t->h);
    return &t->h;
}

static struct acpi_header *build_srat(struct builder *bd)
{
    const struct acpi_config *cfg = bd->cfg;
    int x2 = cfg->madt_form == ACPI_MADT_X2APIC;
    size_t size = sizeof(struct acpi_srat) +
                  cfg->nr_vcpus * (x2 ? sizeof(struct acpi_srat_x2apic)
                                      : sizeof(struct acpi_srat_lapic)) +
                  cfg->nr_mem * sizeof(struct acpi_srat_mem);
    struct acpi_srat *t = table_alloc(bd, "SRAT", size, 8);
    uint8_t *p;

    if (!t)
        return NULL;
    header_init(bd, &t->h, "SRAT", size, 3);
    t->reserved1 = 1;
    p = (uint8_t *)(t + 1);
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        uint32_t node = cfg->vcpus[i].node;

        if (x2) {
            struct acpi_srat_x2apic *e = (void *)p;

            *e = (struct acpi_srat_x2apic){ .s = { 2, sizeof(*e) }, .proximity = node,
                                            .x2apic_id = cfg->vcpus[i].apic_id, .flags = 1 };
            p += sizeof(*e);
        } else {
            struct acpi_srat_lapic *e = (void *)p;

            *e = (struct acpi_srat_lapic){ .s = { 0, sizeof(*e) },
                                           .proximity_lo = (uint8_t)node,
                                           .apic_id = (uint8_t)cfg->vcpus[i].apic_id,
                                           .flags = 1,
                                           .proximity_hi = { (uint8_t)(node >> 8),
                                                             (uint8_t)(node >> 16),
                                                             (uint8_t)(node >> 24) } };
            p += sizeof(*e);
        }
    }
    for (uint32_t i = 0; i < cfg->nr_mem; i++) {
        struct acpi_srat_mem *e = (void *)p;

        *e = (struct acpi_srat_mem){ .s = { 1, sizeof(*e) }, .proximity = cfg->mem[i].node,
                                     .base = cfg->mem[i].base, .length = cfg->mem[i].size,
                                     .flags = 1 };
        p += sizeof(*e);
    }
    header_seal(&t->h);
    return &t->h;
}

static struct acpi_header *build_slit(struct builder *bd)
{
    uint32_t n = bd->cfg->nr_nodes;
    size_t size = sizeof(struct acpi_slit) + (size_t)n * n;
    struct acpi_slit *t = table_alloc(bd, "SLIT", size, 8);
    uint8_t *d;

    if (!t)
        return NULL;
    header_init(bd, &t->h, "SLIT", size, 1);
    t->localities = n;
    d = (uint8_t *)(t + 1);
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = 0; b < n; b++)
            d[a * n + b] = bd->cfg->distance[a][b];
    header_seal(&t->h);
    return &t->h;
}

/* A caller-supplied table, checked by acpi_config_check(): copied as it is. */
static struct acpi_header *copy_extra(struct builder *bd, uint32_t i)
{
    const struct acpi_extra_table *e = &bd->cfg->extra_tables[i];
    const struct acpi_ctx *ctx = bd->ctx;
    char sig[5];
    void *p;

    memcpy(sig, e->data, 4);
    sig[4] = 0;
    p = table_alloc(bd, sig, e->len, 8);
    if (!p) {
        acpi_err(ctx->log, ctx->log_opaque,
                 "build: extra_tables[%u] (%s, %u bytes) does not fit in the table memory%s%s%s",
                 i, sig, e->len, e->name ? " [" : "", e->name ? e->name : "", e->name ? "]" : "");
        return NULL;
    }
    memcpy(p, e->data, e->len);
    return p;
}

static struct acpi_header *build_waet(struct builder *bd)
{
    struct acpi_waet *t = table_alloc(bd, "WAET", sizeof(*t), 8);

    if (!t)
        return NULL;
    header_init(bd, &t->h, "WAET", sizeof(*t), 1);
    t->flags = 1u << 1;                 /* ACPI PM timer good: one read suffices */
    header_seal(&t->h);
    return &t->h;
}

int acpi_build_tables(const struct acpi_config *cfg, const struct acpi_ctx *ctx,
                      struct acpi_tables *out)
{
    struct builder bd = { .cfg = cfg, .ctx = ctx, .out = out };
    struct acpi_header *listed[ACPI_TABLES_MAX];
    uint32_t nlisted = 0;
    struct acpi_rsdp *rsdp;
    struct acpi_facs *facs;
    struct acpi_header *dsdt, *xsdt, *rsdt;
    struct aml_ctx *b;
    int rc;

    if (!ctx || !ctx->alloc || !ctx->v2p || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    rc = acpi_config_check(cfg, ctx->log, ctx->log_opaque);
    if (rc)
        return rc;
    b = aml_ctx_init(ctx->scratch, ctx->scratch_len);
    if (!b) {
        acpi_err(ctx->log, ctx->log_opaque, "build: ctx.scratch: missing or below %d bytes",
                 AML_CTX_MIN);
        return -EINVAL;
    }

    rsdp = table_alloc(&bd, "RSDP", sizeof(*rsdp), 16);
    facs = table_alloc(&bd, "FACS", sizeof(*facs), 64);
    if (facs) {
        memcpy(facs->signature, "FACS", 4);
        facs->length = sizeof(*facs);
        facs->version = 2;
    }
    dsdt = aml_table(&bd, b, "DSDT", acpi_dsdt_body(b, cfg));
    if (facs && dsdt) {
        struct acpi_fadt *fadt = build_fadt(&bd, facs, dsdt);

        listed[nlisted++] = fadt ? &fadt->h : NULL;
    }
    listed[nlisted++] = build_madt(&bd);
    if (cfg->flags & ACPI_HAS_HPET)
        listed[nlisted++] = build_hpet(&bd);
    if (cfg->flags & ACPI_HAS_MCFG)
        listed[nlisted++] = build_mcfg(&bd);
    if (cfg->nr_nodes) {
        listed[nlisted++] = build_srat(&bd);
        listed[nlisted++] = build_slit(&bd);
    }
    if (cfg->flags & ACPI_HAS_WAET)
        listed[nlisted++] = build_waet(&bd);
    if (cfg->flags & ACPI_HAS_CPU_SSDT)
        listed[nlisted++] = aml_table(&bd, b, "SSDT", acpi_cpu_ssdt_body(b, cfg));
    for (uint32_t i = 0; i < cfg->nr_extra_tables && !bd.err; i++)
        listed[nlisted++] = copy_extra(&bd, i);
    if (bd.err)
        return bd.err;

    xsdt = table_alloc(&bd, "XSDT", sizeof(*xsdt) + 8 * nlisted, 8);
    rsdt = table_alloc(&bd, "RSDT", sizeof(*rsdt) + 4 * nlisted, 8);
    if (bd.err)
        return bd.err;
    header_init(&bd, xsdt, "XSDT", sizeof(*xsdt) + 8 * nlisted, 1);
    header_init(&bd, rsdt, "RSDT", sizeof(*rsdt) + 4 * nlisted, 1);
    for (uint32_t i = 0; i < nlisted; i++) {
        uint64_t x = gpa_of(&bd, listed[i]);
        uint32_t r = gpa32(&bd, listed[i], "RSDT entry");

        memcpy((uint8_t *)(xsdt + 1) + 8 * i, &x, 8);
        memcpy((uint8_t *)(rsdt + 1) + 4 * i, &r, 4);
    }
    header_seal(xsdt);
    header_seal(rsdt);

    memcpy(rsdp->signature, "RSD PTR ", 8);
    pad_copy(rsdp->oem_id, cfg->oem_id, 6);
    rsdp->revision = 2;
    rsdp->rsdt_address = gpa32(&bd, rsdt, "RSDP.RsdtAddress");
    rsdp->length = sizeof(*rsdp);
    rsdp->xsdt_address = gpa_of(&bd, xsdt);
    rsdp->checksum = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
    rsdp->extended_checksum = (uint8_t)(0x100 - acpi_checksum(rsdp, sizeof(*rsdp)));
    out->rsdp_gpa = gpa_of(&bd, rsdp);
    if (bd.err)
        return bd.err;
    acpi_log(ctx->log, ctx->log_opaque, FERRY_LOG_DEBUG,
             "built %u tables rsdp=0x%llx aml_scratch_used=%zu", out->nr,
             (unsigned long long)out->rsdp_gpa, aml_ctx_used(b));
    return acpi_tables_validate(out, ctx->log, ctx->log_opaque);
}

/* ---- contiguous blob ---- */

struct bump {
    uint8_t *buf;
    size_t cap, used;
    uint64_t base;
};

static void *bump_alloc(void *opaque, size_t size, size_t align)
{
    struct bump *bp = opaque;
    size_t off = (bp->used + align - 1) & ~(align - 1);

    if (!align || align & (align - 1) || off < bp->used || off > bp->cap ||
        size > bp->cap - off)
        return NULL;
    bp->used = off + size;
    return bp->buf + off;
}

static uint64_t bump_v2p(void *opaque, const void *p)
{
    struct bump *bp = opaque;

    return bp->base + (uint64_t)((const uint8_t *)p - bp->buf);
}

int acpi_build_blob(const struct acpi_config *cfg, uint64_t base_gpa, void *buf,
                    size_t buf_len, size_t *used, uint64_t *rsdp_gpa,
                    ferry_log_fn log, void *log_opaque)
{
    struct bump bp = { .buf = buf, .cap = ACPI_TABLES_SIZE_MAX, .base = base_gpa };
    struct acpi_ctx ctx = {
        .alloc = bump_alloc, .v2p = bump_v2p, .opaque = &bp,
        .log = log, .log_opaque = log_opaque,
    };
    struct acpi_tables t;
    int rc;

    if (!buf || buf_len < ACPI_BLOB_BUF_SIZE) {
        acpi_err(log, log_opaque, "blob: buffer of %zu bytes, need %u", buf_len,
                 (unsigned)ACPI_BLOB_BUF_SIZE);
        return -EINVAL;
    }
    if (base_gpa & 63 || base_gpa + ACPI_TABLES_SIZE_MAX < base_gpa) {
        acpi_err(log, log_opaque, "blob: base 0x%llx must be 64-byte aligned",
                 (unsigned long long)base_gpa);
        return -EINVAL;
    }
    ctx.scratch = (uint8_t *)buf + buf_len - ACPI_SCRATCH_SIZE;
    ctx.scratch_len = ACPI_SCRATCH_SIZE;
    memset(buf, 0, ACPI_TABLES_SIZE_MAX);
    rc = acpi_build_tables(cfg, &ctx, &t);
    if (!rc && t.rsdp_gpa != base_gpa) {
        acpi_err(log, log_opaque, "blob: RSDP at 0x%llx, not at the base",
                 (unsigned long long)t.rsdp_gpa);
        rc = -EPROTO;
    }
    if (!rc)
        rc = acpi_blob_validate(buf, bp.used, base_gpa, base_gpa, log, log_opaque);
    memset((uint8_t *)buf + (rc ? 0 : bp.used), 0, buf_len - (rc ? 0 : bp.used));
    if (rc)
        return rc;
    if (used)
        *used = bp.used;
    if (rsdp_gpa)
        *rsdp_gpa = base_gpa;
    return 0;
}
