// SPDX-License-Identifier: LGPL-2.1-or-later
/* Config defaults (Ferry's standard PC layout) and config checks. */
#include <errno.h>
#include <string.h>

#include "acpi/acpi-internal.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

#define DEFAULT_PCI_HOLE   0xc0000000ull
#define DEFAULT_LAPIC      0xfee00000ull
#define DEFAULT_IOAPIC     0xfec00000ull
#define DEFAULT_HPET       0xfed00000ull
#define DEFAULT_ECAM       0xe0000000ull
#define DEFAULT_MMIO32_LIMIT 0xdfffffffull
#define DEFAULT_MMIO64_SIZE (32 * GiB)
#define PCI_IO_START       0x1000
#define PCI_IO_END         0xffff
#define PCI_IO_HOLE_ALIGN  0x40     /* holes for fixed blocks round out to this */
#define ECAM_BUS_SIZE      MiB
#define HPET_SIZE          0x400
#define IOAPIC_SIZE        0x1000
#define LAPIC_SIZE         0x1000
#define NUMA_ALIGN         (2 * MiB)

static void set_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Remove [lo, hi] from the window list (in place, sorted, at most max). */
static void windows_subtract(struct acpi_window *w, uint32_t *nr, uint32_t max,
                             uint64_t lo, uint64_t hi)
{
    struct acpi_window out[ACPI_PCI_IO_WINDOWS_MAX + 1];
    uint32_t n = 0;

    for (uint32_t i = 0; i < *nr; i++) {
        if (hi < w[i].base || lo > w[i].limit) {
            out[n++] = w[i];
            continue;
        }
        if (lo > w[i].base && n < max)
            out[n++] = (struct acpi_window){ w[i].base, lo - 1 };
        if (hi < w[i].limit && n < max)
            out[n++] = (struct acpi_window){ hi + 1, w[i].limit };
    }
    memcpy(w, out, n * sizeof(*w));
    *nr = n;
}

static void io_hole(struct acpi_config *cfg, uint64_t port, uint64_t len)
{
    uint64_t lo = port & ~(uint64_t)(PCI_IO_HOLE_ALIGN - 1);
    uint64_t hi = (port + len + PCI_IO_HOLE_ALIGN - 1) & ~(uint64_t)(PCI_IO_HOLE_ALIGN - 1);

    windows_subtract(cfg->pci.io, &cfg->pci.nr_io, ACPI_PCI_IO_WINDOWS_MAX, lo, hi - 1);
}

static void pm_apply(struct acpi_config *cfg, const struct acpi_pm *pm)
{
    cfg->pm = *pm;
    cfg->pci.nr_io = 1;
    cfg->pci.io[0] = (struct acpi_window){ PCI_IO_START, PCI_IO_END };
    io_hole(cfg, cfg->pm.gpe0, cfg->pm.gpe0_len);
    io_hole(cfg, cfg->pm.pm1a_evt, cfg->pm.pm1_evt_len);
    io_hole(cfg, cfg->pm.pm1a_cnt, cfg->pm.pm1_cnt_len);
    io_hole(cfg, cfg->pm.pm_tmr, cfg->pm.pm_tmr_len);
}

int acpi_config_set_pm(struct acpi_config *cfg, const struct acpi_pm *pm)
{
    if (!cfg || !pm)
        return -EINVAL;
    pm_apply(cfg, pm);
    return 0;
}

int acpi_config_init_default(struct acpi_config *cfg, uint32_t nr_vcpus, uint64_t mem_size)
{
    uint64_t low, ram_end;

    if (!cfg)
        return -EINVAL;
    memset(cfg, 0, sizeof(*cfg));
    if (nr_vcpus == 0 || nr_vcpus > ACPI_VCPUS_MAX || mem_size == 0)
        return -EINVAL;

    set_str(cfg->oem_id, sizeof(cfg->oem_id), "FERRY");
    set_str(cfg->oem_table_id, sizeof(cfg->oem_table_id), "FERRYVM");
    cfg->oem_revision = 1;
    cfg->flags = ACPI_HAS_COM1 | ACPI_HAS_COM2 | ACPI_HAS_RTC | ACPI_HAS_HPET |
                 ACPI_HAS_PCI | ACPI_HAS_MCFG | ACPI_HAS_WAET | ACPI_HAS_PWRB |
                 ACPI_HAS_CPU_SSDT | ACPI_HAS_S3;
    cfg->madt_form = nr_vcpus <= ACPI_XAPIC_ID_MAX ? ACPI_MADT_XAPIC : ACPI_MADT_X2APIC;

    cfg->nr_vcpus = nr_vcpus;
    for (uint32_t i = 0; i < nr_vcpus; i++)
        cfg->vcpus[i].apic_id = i;

    cfg->pci_hole_start = DEFAULT_PCI_HOLE;
    low = mem_size < DEFAULT_PCI_HOLE ? mem_size : DEFAULT_PCI_HOLE;
    cfg->mem[cfg->nr_mem++] = (struct acpi_mem_range){ 0, low, 0 };
    ram_end = low;
    if (mem_size > low) {
        cfg->mem[cfg->nr_mem++] = (struct acpi_mem_range){ 4 * GiB, mem_size - low, 0 };
        ram_end = 4 * GiB + (mem_size - low);
    }

    cfg->lapic_addr = DEFAULT_LAPIC;
    cfg->ioapic_addr = DEFAULT_IOAPIC;
    cfg->ioapic_id = nr_vcpus < 0xff ? (uint8_t)nr_vcpus : 0;
    cfg->ioapic_pins = 24;
    cfg->ioapic_gsi_base = 0;
    cfg->hpet_addr = DEFAULT_HPET;

    cfg->com1 = (struct acpi_uart){ 0x3f8, 4 };
    cfg->com2 = (struct acpi_uart){ 0x2f8, 3 };
    cfg->rtc_port = 0x70;
    cfg->rtc_irq = 8;

    /* Xen's HVM PM block, which ferry-dm emulates. */
    cfg->pm = (struct acpi_pm){
        .pm1a_evt = 0xb000, .pm1_evt_len = 4,
        .pm1a_cnt = 0xb004, .pm1_cnt_len = 2,
        .pm_tmr = 0xb008, .pm_tmr_len = 4,
        .gpe0 = 0xafe0, .gpe0_len = 4,
        .sci_irq = 9,
        .s5_slp_typ = 0,            /* \_S5 of Xen's DSDT (and QEMU's PIIX4) */
        .reset_port = 0xcf9, .reset_value = 6,
        .s3_slp_typ = 1,            /* \_S3 of QEMU's PIIX4 (Xen's DSDT has 5) */
    };

    cfg->pci.bus_start = 0;
    cfg->pci.bus_end = 255;
    cfg->pci.ecam_base = DEFAULT_ECAM;
    pm_apply(cfg, &cfg->pm);
    cfg->pci.mmio32 = (struct acpi_window){ DEFAULT_PCI_HOLE, DEFAULT_MMIO32_LIMIT };
    ram_end = ram_end < 4 * GiB ? 4 * GiB : (ram_end + GiB - 1) & ~(GiB - 1);
    cfg->pci.mmio64 = (struct acpi_window){ ram_end, ram_end + DEFAULT_MMIO64_SIZE - 1 };
    cfg->pci.intx_gsi_base = 16;
    return 0;
}

int acpi_config_set_numa(struct acpi_config *cfg, uint32_t nr_nodes)
{
    uint64_t total = 0, per, done = 0;
    struct acpi_mem_range out[ACPI_MEM_RANGES_MAX];
    uint32_t n = 0, node = 0;

    if (!cfg || nr_nodes > ACPI_NODES_MAX || nr_nodes > cfg->nr_vcpus ||
        cfg->nr_vcpus > ACPI_VCPUS_MAX || cfg->nr_mem > ACPI_MEM_RANGES_MAX)
        return -EINVAL;
    /* Split the RAM first: on an error cfg must be left as it was. */
    if (nr_nodes) {
        for (uint32_t i = 0; i < cfg->nr_mem; i++)
            total += cfg->mem[i].size;
        per = (total / nr_nodes) & ~(NUMA_ALIGN - 1);
        if (per == 0)
            return -EINVAL;
        /* Walk the RAM in address order (ranges are sorted by the defaults). */
        for (uint32_t i = 0; i < cfg->nr_mem; i++) {
            uint64_t base = cfg->mem[i].base, left = cfg->mem[i].size;

            while (left) {
                uint64_t boundary = (uint64_t)(node + 1) * per;
                uint64_t take = node == nr_nodes - 1 || boundary - done > left ? left
                                                                             : boundary - done;

                if (n == ACPI_MEM_RANGES_MAX)
                    return -E2BIG;
                out[n++] = (struct acpi_mem_range){ base, take, node };
                base += take;
                left -= take;
                done += take;
                if (node < nr_nodes - 1 && done == boundary)
                    node++;
            }
        }
    }

    cfg->nr_nodes = nr_nodes;
    memset(cfg->distance, 0, sizeof(cfg->distance));
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++)
        cfg->vcpus[i].node = nr_nodes ? (uint32_t)((uint64_t)i * nr_nodes / cfg->nr_vcpus) : 0;
    if (nr_nodes == 0) {
        for (uint32_t i = 0; i < cfg->nr_mem; i++)
            cfg->mem[i].node = 0;
        return 0;
    }
    for (uint32_t a = 0; a < nr_nodes; a++)
        for (uint32_t b = 0; b < nr_nodes; b++)
            cfg->distance[a][b] = a == b ? 10 : 20;
    memcpy(cfg->mem, out, n * sizeof(out[0]));
    cfg->nr_mem = n;
    return 0;
}

int acpi_pci_intx_gsi(const struct acpi_config *cfg, unsigned int dev, unsigned int pin)
{
    if (!cfg || dev > 31 || pin > 3)
        return -EINVAL;
    return (int)(cfg->pci.intx_gsi_base + (dev + pin) % 4);
}

/* ---- checks ---- */

#define FAIL(...) do { acpi_err(log, lo, "config: " __VA_ARGS__); return -EINVAL; } while (0)

static int name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Signatures of the tables libacpi builds and owns ("RSD " for "RSD PTR "). */
static const char owned_sigs[][5] = {
    "RSD ", "RSDT", "XSDT", "FACP", "FACS", "DSDT", "APIC", "HPET", "MCFG", "SRAT", "SLIT",
    "WAET",
};

/* The same with the table's name (the caller's, e.g. its file) at the end. */
#define XFAIL(fmt, ...) FAIL(fmt "%s%s%s", __VA_ARGS__, e->name ? " [" : "", \
                             e->name ? e->name : "", e->name ? "]" : "")

static int extra_tables_check(const struct acpi_config *cfg, ferry_log_fn log, void *lo)
{
    if (cfg->nr_extra_tables > ACPI_EXTRA_TABLES_MAX)
        FAIL("nr_extra_tables: %u (at most %u)", cfg->nr_extra_tables, ACPI_EXTRA_TABLES_MAX);
    for (uint32_t i = 0; i < cfg->nr_extra_tables; i++) {
        const struct acpi_extra_table *e = &cfg->extra_tables[i];
        struct acpi_header h;
        uint8_t sum;

        if (!e->data)
            XFAIL("extra_tables[%u]: no data", i);
        if (e->len < sizeof(h))
            XFAIL("extra_tables[%u]: %u bytes, shorter than a table header (%zu)", i, e->len,
                 sizeof(h));
        if (e->len > ACPI_EXTRA_TABLE_SIZE_MAX)
            XFAIL("extra_tables[%u]: %u bytes, more than the table area (%u)", i, e->len,
                 (unsigned)ACPI_EXTRA_TABLE_SIZE_MAX);
        memcpy(&h, e->data, sizeof(h));
        if (!memcmp(h.signature, "RSD PTR ", 8))
            XFAIL("extra_tables[%u]: an RSDP; libacpi builds its own", i);
        if (!acpi_sig_ok(h.signature))
            XFAIL("extra_tables[%u]: signature %02x %02x %02x %02x is not four of A-Z 0-9 _",
                 i, (uint8_t)h.signature[0], (uint8_t)h.signature[1], (uint8_t)h.signature[2],
                 (uint8_t)h.signature[3]);
        if (h.length != e->len)
            XFAIL("extra_tables[%u] (%.4s): header length %u, but %u bytes given", i,
                 h.signature, h.length, e->len);
        for (size_t k = 0; k < sizeof(owned_sigs) / sizeof(owned_sigs[0]); k++)
            if (!memcmp(h.signature, owned_sigs[k], 4))
                XFAIL("extra_tables[%u]: %.4s is a table libacpi builds itself", i, h.signature);
        sum = acpi_checksum(e->data, e->len);
        if (sum)
            XFAIL("extra_tables[%u] (%.4s): checksum: the bytes sum to 0x%02x, not 0", i,
                 h.signature, sum);
        if (memcmp(h.signature, "SSDT", 4))
            for (uint32_t j = 0; j < i; j++)
                if (!memcmp(cfg->extra_tables[j].data, h.signature, 4))
                    XFAIL("extra_tables[%u]: %.4s is already extra_tables[%u] (only SSDTs may "
                         "repeat)", i, h.signature, j);
    }
    return 0;
}

int acpi_config_check(const struct acpi_config *cfg, ferry_log_fn log, void *lo)
{
    const struct acpi_pm *pm;
    const struct acpi_pci *pci;

    if (!cfg)
        FAIL("no config");
    pm = &cfg->pm;
    pci = &cfg->pci;
    if (!name_ok(cfg->oem_id, 6))
        FAIL("oem_id: must be at most 6 printable ASCII characters");
    if (!name_ok(cfg->oem_table_id, 8))
        FAIL("oem_table_id: must be at most 8 printable ASCII characters");
    if (cfg->madt_form != ACPI_MADT_XAPIC && cfg->madt_form != ACPI_MADT_X2APIC)
        FAIL("madt_form: %d is neither xapic nor x2apic", (int)cfg->madt_form);

    if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > ACPI_VCPUS_MAX)
        FAIL("nr_vcpus: %u (must be 1-%u)", cfg->nr_vcpus, ACPI_VCPUS_MAX);
    if (cfg->madt_form == ACPI_MADT_XAPIC && cfg->nr_vcpus > ACPI_XAPIC_ID_MAX + 1)
        FAIL("nr_vcpus: %u too many for the xAPIC MADT form (max %u); use x2apic",
             cfg->nr_vcpus, ACPI_XAPIC_ID_MAX + 1);
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        uint32_t id = cfg->vcpus[i].apic_id;

        if (cfg->madt_form == ACPI_MADT_XAPIC && id > ACPI_XAPIC_ID_MAX)
            FAIL("vcpus[%u].apic_id: %u does not fit the xAPIC MADT form (max %u); use x2apic",
                 i, id, ACPI_XAPIC_ID_MAX);
        if (id == UINT32_MAX)
            FAIL("vcpus[%u].apic_id: 0xffffffff is the broadcast id", i);
        for (uint32_t j = 0; j < i; j++)
            if (cfg->vcpus[j].apic_id == id)
                FAIL("vcpus[%u].apic_id: %u already used by vcpus[%u]", i, id, j);
        if (cfg->nr_nodes ? cfg->vcpus[i].node >= cfg->nr_nodes : cfg->vcpus[i].node != 0)
            FAIL("vcpus[%u].node: %u but nr_nodes is %u", i, cfg->vcpus[i].node, cfg->nr_nodes);
    }

    if (cfg->pci_hole_start == 0 || cfg->pci_hole_start > 0x100000000ull ||
        cfg->pci_hole_start & 0xfffff)
        FAIL("pci_hole_start: 0x%llx must be 1 MiB aligned and at most 4 GiB",
             (unsigned long long)cfg->pci_hole_start);
    if (cfg->nr_mem == 0 || cfg->nr_mem > ACPI_MEM_RANGES_MAX)
        FAIL("nr_mem: %u (must be 1-%u)", cfg->nr_mem, ACPI_MEM_RANGES_MAX);
    for (uint32_t i = 0; i < cfg->nr_mem; i++) {
        const struct acpi_mem_range *m = &cfg->mem[i];

        if (m->size == 0)
            FAIL("mem[%u].size: 0", i);
        if (m->base + m->size < m->base)
            FAIL("mem[%u]: 0x%llx+0x%llx wraps around", i, (unsigned long long)m->base,
                 (unsigned long long)m->size);
        if (overlaps(m->base, m->size, cfg->pci_hole_start,
                     0x100000000ull - cfg->pci_hole_start))
            FAIL("mem[%u]: 0x%llx-0x%llx overlaps the PCI hole at 0x%llx", i,
                 (unsigned long long)m->base, (unsigned long long)(m->base + m->size - 1),
                 (unsigned long long)cfg->pci_hole_start);
        if (cfg->nr_nodes ? m->node >= cfg->nr_nodes : m->node != 0)
            FAIL("mem[%u].node: %u but nr_nodes is %u", i, m->node, cfg->nr_nodes);
        for (uint32_t j = 0; j < i; j++)
            if (overlaps(m->base, m->size, cfg->mem[j].base, cfg->mem[j].size))
                FAIL("mem[%u]: 0x%llx-0x%llx overlaps mem[%u]", i,
                     (unsigned long long)m->base,
                     (unsigned long long)(m->base + m->size - 1), j);
    }

    if (cfg->nr_nodes > ACPI_NODES_MAX)
        FAIL("nr_nodes: %u (max %u)", cfg->nr_nodes, ACPI_NODES_MAX);
    for (uint32_t n = 0; n < cfg->nr_nodes; n++) {
        int has_mem = 0, has_cpu = 0;

        for (uint32_t i = 0; i < cfg->nr_mem; i++)
            has_mem |= cfg->mem[i].node == n;
        for (uint32_t i = 0; i < cfg->nr_vcpus; i++)
            has_cpu |= cfg->vcpus[i].node == n;
        if (!has_mem)
            FAIL("mem: numa node %u has no memory", n);
        if (!has_cpu)
            FAIL("vcpus: numa node %u has no vcpu", n);
        for (uint32_t m = 0; m < cfg->nr_nodes; m++) {
            uint8_t d = cfg->distance[n][m];

            if (n == m && d != 10)
                FAIL("distance[%u][%u]: %u (a node's distance to itself is 10)", n, m, d);
            if (n != m && d <= 10)
                FAIL("distance[%u][%u]: %u (distances between nodes are 11-255)", n, m, d);
        }
    }

    if (cfg->lapic_addr > UINT32_MAX - LAPIC_SIZE || cfg->lapic_addr & 0xfff)
        FAIL("lapic_addr: 0x%llx must be 4 KiB aligned below 4 GiB",
             (unsigned long long)cfg->lapic_addr);
    if (cfg->ioapic_addr > UINT32_MAX - IOAPIC_SIZE || cfg->ioapic_addr & 0xfff)
        FAIL("ioapic_addr: 0x%llx must be 4 KiB aligned below 4 GiB",
             (unsigned long long)cfg->ioapic_addr);
    if (cfg->ioapic_pins == 0 || cfg->ioapic_pins > 240)
        FAIL("ioapic_pins: %u (must be 1-240)", cfg->ioapic_pins);
    if (cfg->ioapic_id == 0xff)
        FAIL("ioapic_id: 255 is reserved");
    if (cfg->ioapic_gsi_base != 0)
        FAIL("ioapic_gsi_base: %u (the only IOAPIC serves the ISA IRQs from GSI 0)",
             cfg->ioapic_gsi_base);
    if ((cfg->flags & ACPI_HAS_HPET) &&
        (cfg->hpet_addr > UINT32_MAX - HPET_SIZE || cfg->hpet_addr & (HPET_SIZE - 1)))
        FAIL("hpet_addr: 0x%llx must be 1 KiB aligned below 4 GiB",
             (unsigned long long)cfg->hpet_addr);
    for (uint32_t i = 0; i < cfg->nr_mem; i++) {
        const struct acpi_mem_range *m = &cfg->mem[i];

        if (overlaps(m->base, m->size, cfg->lapic_addr, LAPIC_SIZE) ||
            overlaps(m->base, m->size, cfg->ioapic_addr, IOAPIC_SIZE) ||
            ((cfg->flags & ACPI_HAS_HPET) && overlaps(m->base, m->size, cfg->hpet_addr, HPET_SIZE)))
            FAIL("mem[%u]: overlaps the LAPIC, IOAPIC or HPET registers", i);
    }

    if ((cfg->flags & ACPI_HAS_COM1) && (cfg->com1.irq > 15 || cfg->com1.port > 0xfff8))
        FAIL("com1: port 0x%x irq %u (irq must be 0-15)", cfg->com1.port, cfg->com1.irq);
    if ((cfg->flags & ACPI_HAS_COM2) && (cfg->com2.irq > 15 || cfg->com2.port > 0xfff8))
        FAIL("com2: port 0x%x irq %u (irq must be 0-15)", cfg->com2.port, cfg->com2.irq);
    if ((cfg->flags & ACPI_HAS_RTC) && (cfg->rtc_irq > 15 || cfg->rtc_port > 0xfffe))
        FAIL("rtc: port 0x%x irq %u (irq must be 0-15)", cfg->rtc_port, cfg->rtc_irq);

    if (pm->pm1_evt_len < 4 || pm->pm1_evt_len & 1)
        FAIL("pm.pm1_evt_len: %u (must be even and at least 4)", pm->pm1_evt_len);
    if (pm->pm1_cnt_len < 2)
        FAIL("pm.pm1_cnt_len: %u (must be at least 2)", pm->pm1_cnt_len);
    if (pm->pm_tmr_len != 4)
        FAIL("pm.pm_tmr_len: %u (must be 4)", pm->pm_tmr_len);
    if (pm->gpe0_len == 0 || pm->gpe0_len & 1)
        FAIL("pm.gpe0_len: %u (must be even and nonzero)", pm->gpe0_len);
    if (!pm->pm1a_evt || !pm->pm1a_cnt || !pm->pm_tmr || !pm->gpe0)
        FAIL("pm: pm1a_evt, pm1a_cnt, pm_tmr and gpe0 must all be set");
    if ((cfg->flags & ACPI_HAS_PCI) && (pci->nr_io == 0 || pci->nr_io > ACPI_PCI_IO_WINDOWS_MAX))
        FAIL("pci.nr_io: %u (must be 1-%u)", pci->nr_io, ACPI_PCI_IO_WINDOWS_MAX);
    {
        const struct { const char *name; uint32_t port, len; } blk[] = {
            { "pm.pm1a_evt", pm->pm1a_evt, pm->pm1_evt_len },
            { "pm.pm1a_cnt", pm->pm1a_cnt, pm->pm1_cnt_len },
            { "pm.pm_tmr", pm->pm_tmr, pm->pm_tmr_len },
            { "pm.gpe0", pm->gpe0, pm->gpe0_len },
        };

        for (size_t i = 0; i < sizeof(blk) / sizeof(blk[0]); i++) {
            if (blk[i].port + blk[i].len > 0x10000)
                FAIL("%s: 0x%x+%u passes the end of I/O space", blk[i].name,
                     blk[i].port, blk[i].len);
            for (size_t j = 0; j < i; j++)
                if (overlaps(blk[i].port, blk[i].len, blk[j].port, blk[j].len))
                    FAIL("%s: 0x%x+%u overlaps %s", blk[i].name, blk[i].port, blk[i].len,
                         blk[j].name);
            if (cfg->flags & ACPI_HAS_PCI)
                for (uint32_t w = 0; w < pci->nr_io; w++)
                    if (overlaps(blk[i].port, blk[i].len, pci->io[w].base,
                                 pci->io[w].limit - pci->io[w].base + 1))
                        FAIL("pci.io[%u]: 0x%llx-0x%llx overlaps %s at 0x%x", w,
                             (unsigned long long)pci->io[w].base,
                             (unsigned long long)pci->io[w].limit, blk[i].name, blk[i].port);
        }
    }
    if (pm->sci_irq > 15 || pm->sci_irq == 0 || pm->sci_irq == 2)
        FAIL("pm.sci_irq: %u (must be an ISA IRQ other than 0 and 2)", pm->sci_irq);
    if (pm->s5_slp_typ > 7)
        FAIL("pm.s5_slp_typ: %u (SLP_TYP is 3 bits)", pm->s5_slp_typ);
    if ((cfg->flags & ACPI_HAS_S3) && pm->s3_slp_typ > 7)
        FAIL("pm.s3_slp_typ: %u (SLP_TYP is 3 bits)", pm->s3_slp_typ);
    if ((cfg->flags & ACPI_HAS_S3) && pm->s3_slp_typ == pm->s5_slp_typ)
        FAIL("pm.s3_slp_typ: %u is pm.s5_slp_typ too (S3 and S5 need different values)",
             pm->s3_slp_typ);

    if (!(cfg->flags & ACPI_HAS_PCI)) {
        if (cfg->flags & ACPI_HAS_MCFG)
            FAIL("flags: MCFG needs the PCI root bridge");
        return 0;
    }
    if (pci->bus_start > pci->bus_end)
        FAIL("pci.bus_start: %u above bus_end %u", pci->bus_start, pci->bus_end);
    if (cfg->flags & ACPI_HAS_MCFG) {
        uint64_t size = (uint64_t)(pci->bus_end - pci->bus_start + 1) * ECAM_BUS_SIZE;

        if (pci->ecam_base & (ECAM_BUS_SIZE - 1) || pci->ecam_base + size < pci->ecam_base ||
            pci->ecam_base + size > UINT32_MAX + 1ull)
            FAIL("pci.ecam_base: 0x%llx must be 1 MiB aligned with all %u buses below 4 GiB",
                 (unsigned long long)pci->ecam_base, pci->bus_end - pci->bus_start + 1u);
        for (uint32_t i = 0; i < cfg->nr_mem; i++)
            if (overlaps(cfg->mem[i].base, cfg->mem[i].size, pci->ecam_base, size))
                FAIL("pci.ecam_base: ECAM 0x%llx-0x%llx overlaps mem[%u]",
                     (unsigned long long)pci->ecam_base,
                     (unsigned long long)(pci->ecam_base + size - 1), i);
        if (overlaps(pci->mmio32.base, pci->mmio32.limit - pci->mmio32.base + 1,
                     pci->ecam_base, size))
            FAIL("pci.mmio32: overlaps the ECAM at 0x%llx", (unsigned long long)pci->ecam_base);
    }
    for (uint32_t w = 0; w < pci->nr_io; w++)
        if (pci->io[w].base > pci->io[w].limit || pci->io[w].limit > 0xffff ||
            pci->io[w].base < 0xd00)
            FAIL("pci.io[%u]: 0x%llx-0x%llx must lie within 0x0d00-0xffff", w,
                 (unsigned long long)pci->io[w].base, (unsigned long long)pci->io[w].limit);
    if (pci->mmio32.base > pci->mmio32.limit || pci->mmio32.limit > UINT32_MAX ||
        pci->mmio32.base < cfg->pci_hole_start)
        FAIL("pci.mmio32: 0x%llx-0x%llx must lie within the PCI hole 0x%llx-0xffffffff",
             (unsigned long long)pci->mmio32.base, (unsigned long long)pci->mmio32.limit,
             (unsigned long long)cfg->pci_hole_start);
    if (overlaps(pci->mmio32.base, pci->mmio32.limit - pci->mmio32.base + 1,
                 cfg->ioapic_addr, IOAPIC_SIZE) ||
        overlaps(pci->mmio32.base, pci->mmio32.limit - pci->mmio32.base + 1,
                 cfg->lapic_addr, LAPIC_SIZE))
        FAIL("pci.mmio32: overlaps the LAPIC or IOAPIC");
    if (pci->mmio64.limit) {
        if (pci->mmio64.base > pci->mmio64.limit || pci->mmio64.base < 0x100000000ull)
            FAIL("pci.mmio64: 0x%llx-0x%llx must lie above 4 GiB",
                 (unsigned long long)pci->mmio64.base, (unsigned long long)pci->mmio64.limit);
        for (uint32_t i = 0; i < cfg->nr_mem; i++)
            if (overlaps(cfg->mem[i].base, cfg->mem[i].size, pci->mmio64.base,
                         pci->mmio64.limit - pci->mmio64.base + 1))
                FAIL("pci.mmio64: overlaps mem[%u]", i);
    }
    if (pci->intx_gsi_base < 16 || pci->intx_gsi_base + 4 > cfg->ioapic_gsi_base + cfg->ioapic_pins)
        FAIL("pci.intx_gsi_base: %u (GSIs %u-%u must be IOAPIC pins above the ISA IRQs)",
             pci->intx_gsi_base, pci->intx_gsi_base, pci->intx_gsi_base + 3);
    return extra_tables_check(cfg, log, lo);
}
