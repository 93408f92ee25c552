/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libferry-acpi: a guest's complete ACPI table set, built from a config.
 *
 * Pure C: no I/O, no globals, no system calls.  The caller supplies the
 * memory the tables live in (an allocator with alignment), a translation
 * from those pointers to guest-physical addresses, and a log callback, as
 * Xen's libacpi does with its struct acpi_ctxt.  The same code therefore
 * lays the tables out in a host buffer (the CLI, tests) or straight in guest
 * RAM (ferry-hv).
 *
 *     struct acpi_config cfg;
 *     acpi_config_init_default(&cfg, 4, 512 << 20);
 *     acpi_build_blob(&cfg, ACPI_BLOB_BASE_DEFAULT, buf, ACPI_BLOB_BUF_SIZE,
 *                     &used, &rsdp_gpa, log, log_opaque);
 *     (copy buf[0..used) to guest RAM at the base; rsdp_paddr = rsdp_gpa)
 *
 * Every table is checked (length, checksum, pointer graph, duplicate
 * signatures) before a build returns success; an invalid config is
 * rejected with a message naming the field.
 */
#ifndef FERRY_ACPI_H
#define FERRY_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ferry-log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is its API. */
#pragma GCC visibility push(default)

#define ACPI_VCPUS_MAX        512   /* vCPUs in one config */
#define ACPI_XAPIC_ID_MAX     254   /* highest APIC id of the xAPIC MADT form */
#define ACPI_MEM_RANGES_MAX   32    /* RAM ranges in one config */
#define ACPI_NODES_MAX        16    /* NUMA proximity domains */
#define ACPI_PCI_IO_WINDOWS_MAX 4   /* I/O windows of the PCI root bridge */
#define ACPI_EXTRA_TABLES_MAX 8     /* caller-supplied tables (acpi_config.extra_tables) */
#define ACPI_TABLES_MAX       24    /* tables in one set, RSDP included: 13 own + the extra */
#define ACPI_TABLES_SIZE_MAX  (64u << 10) /* whole set laid out as a blob */
#define ACPI_SCRATCH_SIZE     (1u << 20)  /* AML builder working memory */
/* One caller-supplied table: the whole table fits the table area or nothing does. */
#define ACPI_EXTRA_TABLE_SIZE_MAX ACPI_TABLES_SIZE_MAX
/* Buffer acpi_build_blob() needs: the blob plus the builder's scratch. */
#define ACPI_BLOB_BUF_SIZE    (ACPI_TABLES_SIZE_MAX + ACPI_SCRATCH_SIZE)
/*
 * Where Ferry's guests keep their tables unless told otherwise: the PC
 * BIOS E-segment (0xe0000-0xfffff); the VMM marks the 64 KiB there as ACPI
 * data (E820 type 3) and passes the base as the RSDP address.
 */
#define ACPI_BLOB_BASE_DEFAULT 0x000e0000ull

/* Optional tables and devices (acpi_config.flags). */
#define ACPI_HAS_COM1   (1u << 0)
#define ACPI_HAS_COM2   (1u << 1)
#define ACPI_HAS_RTC    (1u << 2)
#define ACPI_HAS_HPET   (1u << 3)   /* HPET table + \_SB.HPET */
#define ACPI_HAS_PCI    (1u << 4)   /* \_SB.PCI0 */
#define ACPI_HAS_MCFG   (1u << 5)   /* MCFG (needs ACPI_HAS_PCI) */
#define ACPI_HAS_WAET   (1u << 6)
#define ACPI_HAS_PWRB   (1u << 7)   /* control-method power button */
#define ACPI_HAS_CPU_SSDT (1u << 8) /* processor devices in an SSDT */
#define ACPI_HAS_S3     (1u << 9)   /* \_S3: suspend to RAM with pm.s3_slp_typ */

enum acpi_madt_form {
    ACPI_MADT_XAPIC = 0,    /* Processor Local APIC entries, ids <= 254 */
    ACPI_MADT_X2APIC = 1,   /* Processor Local x2APIC entries */
};

struct acpi_vcpu {
    uint32_t apic_id;
    uint32_t node;          /* proximity domain; 0 without NUMA */
};

struct acpi_mem_range {     /* guest RAM */
    uint64_t base;
    uint64_t size;
    uint32_t node;
};

struct acpi_uart {
    uint16_t port;
    uint8_t irq;
};

struct acpi_pm {            /* fixed-hardware register blocks (I/O ports) */
    uint16_t pm1a_evt, pm1a_cnt, pm_tmr, gpe0;
    uint8_t pm1_evt_len, pm1_cnt_len, pm_tmr_len, gpe0_len;
    uint8_t sci_irq;
    uint8_t s5_slp_typ;     /* SLP_TYP written to PM1a_CNT for \_S5 */
    uint16_t reset_port;
    uint8_t reset_value;
    uint8_t s3_slp_typ;     /* SLP_TYP for \_S3 (with ACPI_HAS_S3); not s5_slp_typ */
    /* (s3_slp_typ took what was padding: the struct's size and layout are soname 1's) */
};

struct acpi_window {        /* inclusive range */
    uint64_t base;
    uint64_t limit;
};

struct acpi_pci {
    uint8_t bus_start, bus_end;
    uint64_t ecam_base;     /* ECAM of bus_start..bus_end, 1 MiB per bus */
    uint32_t nr_io;
    struct acpi_window io[ACPI_PCI_IO_WINDOWS_MAX];
    struct acpi_window mmio32;
    struct acpi_window mmio64;      /* limit 0: none */
    uint32_t intx_gsi_base;         /* see acpi_pci_intx_gsi() */
};

/*
 * A complete table of the caller's own (header, body, checksum), as Xen's
 * libacpi takes pass-through tables and QEMU -acpitable file=.
 */
struct acpi_extra_table {
    const void *data;       /* read during the build only, never kept */
    uint32_t len;           /* bytes at data; must equal the header's length */
    const char *name;       /* shown after messages about it ("[NAME]"); may be NULL */
};

struct acpi_config {
    char oem_id[7];         /* up to 6 characters */
    char oem_table_id[9];   /* up to 8 characters */
    uint32_t oem_revision;
    uint32_t flags;         /* ACPI_HAS_* */
    enum acpi_madt_form madt_form;

    uint32_t nr_vcpus;
    struct acpi_vcpu vcpus[ACPI_VCPUS_MAX];

    uint32_t nr_mem;
    struct acpi_mem_range mem[ACPI_MEM_RANGES_MAX];
    uint64_t pci_hole_start;        /* RAM below 4 GiB ends here */

    /* NUMA: nr_nodes 0 means none (no SRAT/SLIT). */
    uint32_t nr_nodes;
    uint8_t distance[ACPI_NODES_MAX][ACPI_NODES_MAX];

    uint64_t lapic_addr;
    uint64_t ioapic_addr;
    uint8_t ioapic_id;
    uint8_t ioapic_pins;
    uint32_t ioapic_gsi_base;
    uint64_t hpet_addr;

    struct acpi_uart com1, com2;
    uint16_t rtc_port;
    uint8_t rtc_irq;
    struct acpi_pm pm;
    struct acpi_pci pci;

    /*
     * Caller-supplied tables (an SSDT for a passthrough device, a SLIC or
     * MSDM licence table, a vendor table), copied into the table memory
     * after libacpi's own (8-byte aligned, through ctx->alloc) and listed in
     * both RSDT and XSDT, in this order.  acpi_config_check() refuses one
     * shorter than 36 bytes or longer than ACPI_EXTRA_TABLE_SIZE_MAX, whose
     * header length is not len, whose signature is not four of [A-Z0-9_],
     * whose checksum does not sum to zero, whose signature is one libacpi
     * builds (RSDT XSDT FACP FACS DSDT APIC HPET MCFG SRAT SLIT WAET, and the
     * RSDP), or whose signature another one has already (SSDTs excepted).
     * A set that does not fit the table memory fails with -ENOMEM.
     */
    uint32_t nr_extra_tables;
    struct acpi_extra_table extra_tables[ACPI_EXTRA_TABLES_MAX];
};

/*
 * Fill cfg with Ferry's standard PC layout: nr_vcpus vCPUs with APIC ids
 * 0..n-1, mem_size bytes of RAM (below the PCI hole 0xc0000000-0xffffffff,
 * the rest from 4 GiB), LAPIC 0xfee00000, IOAPIC 0xfec00000 (id nr_vcpus,
 * GSI base 0, 24 pins), HPET 0xfed00000, COM1 0x3f8/4, COM2 0x2f8/3, RTC
 * 0x70/8, Xen's PM block (PM1a_EVT 0xb000, PM1a_CNT 0xb004, PM_TMR 0xb008,
 * GPE0 0xafe0, SCI 9), reset 0xcf9/6, PCI root bridge with ECAM at
 * 0xe0000000 (buses 0-255), I/O windows 0x1000-0xffff less the PM block,
 * MMIO 0xc0000000-0xdfffffff and a 64-bit window above RAM, INTx on GSIs
 * 16-19, \_S5 SLP_TYP 0 and \_S3 SLP_TYP 1 (PIIX4's codes).  No NUMA.  Returns 0 or -EINVAL (message through log when given).
 */
FERRY_MUST_CHECK int acpi_config_init_default(struct acpi_config *cfg, uint32_t nr_vcpus,
                             uint64_t mem_size);

/*
 * Split the vCPUs and the RAM of cfg into nr_nodes equal NUMA nodes
 * (vCPU i on node i * nr_nodes / nr_vcpus; RAM in address order, node
 * boundaries 2 MiB aligned), distances 10 local and 20 remote.  On an
 * error (-EINVAL, -E2BIG) cfg is left unchanged.
 */
FERRY_MUST_CHECK int acpi_config_set_numa(struct acpi_config *cfg, uint32_t nr_nodes);

/*
 * Set the PM register blocks and recompute the PCI root bridge's I/O
 * windows (0x1000-0xffff less the blocks, rounded out to 64 ports), so
 * that the two never overlap.  0 or -EINVAL.
 */
FERRY_MUST_CHECK int acpi_config_set_pm(struct acpi_config *cfg, const struct acpi_pm *pm);

/*
 * Check a config; 0 or -EINVAL with a message naming the field logged at
 * error level.  acpi_build_tables() calls it too.
 */
FERRY_MUST_CHECK int acpi_config_check(const struct acpi_config *cfg, ferry_log_fn log,
                      void *log_opaque);

/*
 * PCI INTx routing, shared with ferry-dm: device dev (0-31) on the root bus,
 * pin 0-3 (INTA#-INTD#), is wired to IOAPIC input
 *     GSI = cfg->pci.intx_gsi_base + (dev + pin) % 4
 * (16-19 by default), level-triggered, active-low; the DSDT's _PRT says the
 * same.  Returns the GSI or -EINVAL.
 */
int acpi_pci_intx_gsi(const struct acpi_config *cfg, unsigned int dev,
                      unsigned int pin);

/* What the caller provides. */
struct acpi_ctx {
    /* Memory for one table, zeroed, aligned to align; NULL if none left. */
    void *(*alloc)(void *opaque, size_t size, size_t align);
    /* Guest-physical address of a pointer alloc returned. */
    uint64_t (*v2p)(void *opaque, const void *ptr);
    void *opaque;
    /* Working memory for the AML builder (ACPI_SCRATCH_SIZE is enough). */
    void *scratch;
    size_t scratch_len;
    ferry_log_fn log;
    void *log_opaque;
};

struct acpi_table_ref {
    char sig[5];            /* "FACP", "DSDT", ...; "RSDP" for the RSDP */
    void *ptr;
    uint64_t gpa;
    uint32_t len;
};

/* What a build produced: tables[0] is the RSDP. */
struct acpi_tables {
    uint32_t nr;
    struct acpi_table_ref tables[ACPI_TABLES_MAX];
    uint64_t rsdp_gpa;
};

/*
 * Build the whole set.  The RSDP is allocated first (so with a bump
 * allocator it sits at the start).  Returns 0, -EINVAL (bad config),
 * -ENOMEM (alloc or scratch exhausted), -ERANGE (a table above 4 GiB
 * where a 32-bit pointer must reach it) or -EPROTO (validator failure).
 */
FERRY_MUST_CHECK int acpi_build_tables(const struct acpi_config *cfg, const struct acpi_ctx *ctx,
                      struct acpi_tables *out);

/*
 * Lay the whole set out contiguously for guest-physical base_gpa (64-byte
 * aligned, for the FACS), RSDP first, in buf: the first *used bytes are the blob as it
 * sits in guest memory, at most ACPI_TABLES_SIZE_MAX; the rest of buf is
 * used as scratch and left zeroed.  buf_len must be at least
 * ACPI_BLOB_BUF_SIZE.  *rsdp_gpa is base_gpa.  Errors as acpi_build_tables.
 */
FERRY_MUST_CHECK int acpi_build_blob(const struct acpi_config *cfg, uint64_t base_gpa,
                    void *buf, size_t buf_len, size_t *used,
                    uint64_t *rsdp_gpa, ferry_log_fn log, void *log_opaque);

/*
 * The validator on its own: walk the set a build produced (or a blob of len
 * bytes laid out for base_gpa with the RSDP at rsdp_gpa) and check every
 * length, checksum, signature and pointer.  0 or -EPROTO with the reason
 * logged.
 */
FERRY_MUST_CHECK int acpi_tables_validate(const struct acpi_tables *t, ferry_log_fn log,
                         void *log_opaque);
FERRY_MUST_CHECK int acpi_blob_validate(const void *blob, size_t len, uint64_t base_gpa,
                       uint64_t rsdp_gpa, ferry_log_fn log, void *log_opaque);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ACPI_H */
