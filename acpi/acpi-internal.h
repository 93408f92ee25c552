/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libferry-acpi internals: the table layouts (packed, sizes checked at
 * compile time against ACPI 6.4) and helpers shared by the library's files.
 * Not installed.
 */
#ifndef FERRY_ACPI_INTERNAL_H
#define FERRY_ACPI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "acpi/acpi.h"

#define ACPI_PACKED __attribute__((packed))

struct acpi_header {                    /* 5.2.6 */
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
} ACPI_PACKED;

struct acpi_gas {                       /* 5.2.3.2 Generic Address Structure */
    uint8_t space_id;                   /* 0 memory, 1 I/O */
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;                /* 0 undefined, 1 byte .. 4 qword */
    uint64_t address;
} ACPI_PACKED;

struct acpi_rsdp {                      /* 5.2.5.3 */
    char signature[8];
    uint8_t checksum;                   /* first 20 bytes */
    char oem_id[6];
    uint8_t revision;                   /* 2 */
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;          /* whole structure */
    uint8_t reserved[3];
} ACPI_PACKED;

struct acpi_fadt {                      /* 5.2.9, revision 6 */
    struct acpi_header h;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
    uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
    uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
    uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
    uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
    uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
    uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    struct acpi_gas reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
    struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
    struct acpi_gas sleep_control_reg, sleep_status_reg;
    uint64_t hypervisor_vendor_id;
} ACPI_PACKED;

#define ACPI_FADT_WBINVD        (1u << 0)
#define ACPI_FADT_PROC_C1       (1u << 2)
#define ACPI_FADT_PWR_BUTTON    (1u << 4)   /* no fixed-feature power button */
#define ACPI_FADT_SLP_BUTTON    (1u << 5)   /* no fixed-feature sleep button */
#define ACPI_FADT_FIX_RTC       (1u << 6)
#define ACPI_FADT_TMR_VAL_EXT   (1u << 8)
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define ACPI_FADT_BOOT_VGA_NOT_PRESENT (1u << 2)

struct acpi_facs {                      /* 5.2.10 */
    char signature[4];
    uint32_t length;
    uint32_t hardware_signature;
    uint32_t firmware_waking_vector;
    uint32_t global_lock;
    uint32_t flags;
    uint64_t x_firmware_waking_vector;
    uint8_t version;
    uint8_t reserved0[3];
    uint32_t ospm_flags;
    uint8_t reserved1[24];
} ACPI_PACKED;

struct acpi_madt {                      /* 5.2.12 */
    struct acpi_header h;
    uint32_t lapic_addr;
    uint32_t flags;                     /* bit 0 PCAT_COMPAT */
} ACPI_PACKED;

struct acpi_madt_sub {
    uint8_t type;
    uint8_t length;
} ACPI_PACKED;

struct acpi_madt_lapic {                /* type 0 */
    struct acpi_madt_sub s;
    uint8_t acpi_processor_id;
    uint8_t apic_id;
    uint32_t flags;                     /* bit 0 enabled */
} ACPI_PACKED;

struct acpi_madt_ioapic {               /* type 1 */
    struct acpi_madt_sub s;
    uint8_t id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
} ACPI_PACKED;

struct acpi_madt_iso {                  /* type 2 Interrupt Source Override */
    struct acpi_madt_sub s;
    uint8_t bus;
    uint8_t source;
    uint32_t gsi;
    uint16_t flags;                     /* MPS INTI flags */
} ACPI_PACKED;

#define ACPI_MPS_POLARITY_HIGH 0x1
#define ACPI_MPS_POLARITY_LOW  0x3
#define ACPI_MPS_TRIGGER_EDGE  (0x1 << 2)
#define ACPI_MPS_TRIGGER_LEVEL (0x3 << 2)

struct acpi_madt_lapic_nmi {            /* type 4 */
    struct acpi_madt_sub s;
    uint8_t acpi_processor_id;          /* 0xff: all */
    uint16_t flags;
    uint8_t lint;
} ACPI_PACKED;

struct acpi_madt_x2apic {               /* type 9 */
    struct acpi_madt_sub s;
    uint16_t reserved;
    uint32_t x2apic_id;
    uint32_t flags;
    uint32_t acpi_processor_uid;
} ACPI_PACKED;

struct acpi_madt_x2apic_nmi {           /* type 10 */
    struct acpi_madt_sub s;
    uint16_t flags;
    uint32_t acpi_processor_uid;        /* 0xffffffff: all */
    uint8_t lint;
    uint8_t reserved[3];
} ACPI_PACKED;

struct acpi_hpet {                      /* IA-PC HPET spec 1.0a, 3.2.4 */
    struct acpi_header h;
    uint32_t event_timer_block_id;
    struct acpi_gas base;
    uint8_t hpet_number;
    uint16_t min_tick;
    uint8_t page_protection;
} ACPI_PACKED;

struct acpi_mcfg {                      /* PCI Firmware spec 3.0, 4.1.2 */
    struct acpi_header h;
    uint64_t reserved;
} ACPI_PACKED;

struct acpi_mcfg_alloc {
    uint64_t base;
    uint16_t segment;
    uint8_t bus_start;
    uint8_t bus_end;
    uint32_t reserved;
} ACPI_PACKED;

struct acpi_srat {                      /* 5.2.16 */
    struct acpi_header h;
    uint32_t reserved1;                 /* 1 */
    uint64_t reserved2;
} ACPI_PACKED;

struct acpi_srat_lapic {                /* type 0 */
    struct acpi_madt_sub s;
    uint8_t proximity_lo;
    uint8_t apic_id;
    uint32_t flags;
    uint8_t sapic_eid;
    uint8_t proximity_hi[3];
    uint32_t clock_domain;
} ACPI_PACKED;

struct acpi_srat_mem {                  /* type 1 */
    struct acpi_madt_sub s;
    uint32_t proximity;
    uint16_t reserved1;
    uint64_t base;
    uint64_t length;
    uint32_t reserved2;
    uint32_t flags;                     /* bit 0 enabled */
    uint64_t reserved3;
} ACPI_PACKED;

struct acpi_srat_x2apic {               /* type 2 */
    struct acpi_madt_sub s;
    uint16_t reserved1;
    uint32_t proximity;
    uint32_t x2apic_id;
    uint32_t flags;
    uint32_t clock_domain;
    uint32_t reserved2;
} ACPI_PACKED;

struct acpi_slit {                      /* 5.2.17 */
    struct acpi_header h;
    uint64_t localities;
} ACPI_PACKED;

struct acpi_waet {                      /* Microsoft WAET 1.0 */
    struct acpi_header h;
    uint32_t flags;                     /* bit 0 RTC good, bit 1 PM timer good */
} ACPI_PACKED;

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT X_FIRMWARE_CTRL");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS");
/* ABI of soname 1: struct acpi_pm (inside struct acpi_config) keeps its size. */
_Static_assert(sizeof(struct acpi_pm) == 18, "struct acpi_pm layout (soname 1)");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC");
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT ISO");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT LAPIC NMI");
_Static_assert(sizeof(struct acpi_madt_x2apic) == 16, "MADT x2APIC");
_Static_assert(sizeof(struct acpi_madt_x2apic_nmi) == 12, "MADT x2APIC NMI");
_Static_assert(sizeof(struct acpi_hpet) == 56, "HPET");
_Static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG");
_Static_assert(sizeof(struct acpi_mcfg_alloc) == 16, "MCFG allocation");
_Static_assert(sizeof(struct acpi_srat) == 48, "SRAT");
_Static_assert(sizeof(struct acpi_srat_lapic) == 16, "SRAT LAPIC affinity");
_Static_assert(sizeof(struct acpi_srat_mem) == 40, "SRAT memory affinity");
_Static_assert(sizeof(struct acpi_srat_x2apic) == 24, "SRAT x2APIC affinity");
_Static_assert(sizeof(struct acpi_slit) == 44, "SLIT");
_Static_assert(sizeof(struct acpi_waet) == 40, "WAET");

#define ACPI_CREATOR_ID "FRRY"
#define ACPI_CREATOR_REVISION 1

uint8_t acpi_checksum(const void *p, size_t len);

/* Build the DSDT body and the processor SSDT body into the AML arena. */
struct aml_ctx;
struct aml;
struct aml *acpi_dsdt_body(struct aml_ctx *b, const struct acpi_config *cfg);
struct aml *acpi_cpu_ssdt_body(struct aml_ctx *b, const struct acpi_config *cfg);

/* Locate `len` bytes at guest-physical gpa; NULL if not there. */
/* Four characters of A-Z, 0-9 and _. */
int acpi_sig_ok(const char *s);
typedef const void *(*acpi_resolve_fn)(void *opaque, uint64_t gpa, uint32_t len);
int acpi_validate_graph(acpi_resolve_fn resolve, void *opaque, uint64_t rsdp_gpa,
                        ferry_log_fn log, void *log_opaque);

#define acpi_log(fn, op, lvl, ...) ferry_logf((fn), (op), (lvl), "acpi: " __VA_ARGS__)
#define acpi_err(fn, op, ...) acpi_log((fn), (op), FERRY_LOG_ERROR, __VA_ARGS__)

#endif
