// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The AML of a guest: the DSDT (PCI root bridge, ISA devices, HPET, power
 * button, motherboard resources, \_S3, \_S5) and the processor SSDT.
 */
#include <stdio.h>

#include "acpi/acpi-internal.h"
#include "acpi/aml.h"

#define ECAM_BUS_SIZE (1ull << 20)

static struct aml *crs(struct aml_ctx *b, struct aml *tmpl)
{
    return aml_name_decl(b, "_CRS", tmpl);
}

/*
 * _OSC (6.2.11; PCI Firmware spec 4.5.1): grant the OS native control of
 * what it asks for among PCIe hot plug, SHPC hot plug, PME, AER and the PCIe
 * capability structure (0x1f, as QEMU's q35 does); flag an unknown
 * revision or UUID, and masked bits, in CDW1.
 */
#define PCI_OSC_UUID "33DB4D5B-1FF7-401C-9657-7441C03DD766"
#define PCI_OSC_GRANT 0x1f
#define OSC_UNKNOWN_UUID 0x04
#define OSC_UNKNOWN_REVISION 0x08
#define OSC_MASKED 0x10

static struct aml *pci_osc(struct aml_ctx *b)
{
    struct aml *m = aml_method(b, "_OSC", 4, 0);
    struct aml *known = aml_if(b, aml_equal(b, aml_arg(b, 0), aml_touuid(b, PCI_OSC_UUID)));
    struct aml *other = aml_else(b), *rev, *masked;

    aml_append(m, aml_create_dword_field(b, aml_arg(b, 3), aml_int(b, 0), "CDW1"));
    aml_append(known, aml_create_dword_field(b, aml_arg(b, 3), aml_int(b, 8), "CDW3"));
    rev = aml_if(b, aml_lnot(b, aml_equal(b, aml_arg(b, 1), aml_int(b, 1))));
    aml_append(rev, aml_or(b, aml_name(b, "CDW1"), aml_int(b, OSC_UNKNOWN_REVISION),
                           aml_name(b, "CDW1")));
    aml_append(known, rev);
    aml_append(known, aml_and(b, aml_name(b, "CDW3"), aml_int(b, PCI_OSC_GRANT),
                              aml_local(b, 0)));
    masked = aml_if(b, aml_lnot(b, aml_equal(b, aml_local(b, 0), aml_name(b, "CDW3"))));
    aml_append(masked, aml_or(b, aml_name(b, "CDW1"), aml_int(b, OSC_MASKED),
                              aml_name(b, "CDW1")));
    aml_append(known, masked);
    aml_append(known, aml_store(b, aml_local(b, 0), aml_name(b, "CDW3")));
    aml_append(other, aml_or(b, aml_name(b, "CDW1"), aml_int(b, OSC_UNKNOWN_UUID),
                             aml_name(b, "CDW1")));
    aml_append(m, known);
    aml_append(m, other);
    aml_append(m, aml_return(b, aml_arg(b, 3)));
    return m;
}

static struct aml *pci_root(struct aml_ctx *b, const struct acpi_config *cfg)
{
    const struct acpi_pci *pci = &cfg->pci;
    struct aml *dev = aml_device(b, "PCI0");
    struct aml *res = aml_resource_template(b);
    struct aml *prt = aml_package(b);
    int pcie = !!(cfg->flags & ACPI_HAS_MCFG);

    aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, pcie ? "PNP0A08" : "PNP0A03")));
    if (pcie)
        aml_append(dev, aml_name_decl(b, "_CID", aml_eisaid(b, "PNP0A03")));
    aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, 0)));
    aml_append(dev, aml_name_decl(b, "_SEG", aml_int(b, 0)));
    aml_append(dev, aml_name_decl(b, "_BBN", aml_int(b, pci->bus_start)));

    aml_append(res, aml_word_bus_number(b, pci->bus_start, pci->bus_end));
    aml_append(res, aml_io(b, 0xcf8, 0xcf8, 1, 8));   /* CONFIG_ADDRESS/DATA */
    for (uint32_t i = 0; i < pci->nr_io; i++)
        aml_append(res, aml_dword_io(b, (uint32_t)pci->io[i].base, (uint32_t)pci->io[i].limit));
    aml_append(res, aml_dword_memory(b, 0, (uint32_t)pci->mmio32.base,
                                     (uint32_t)pci->mmio32.limit));
    if (pci->mmio64.limit)
        aml_append(res, aml_qword_memory(b, 0, pci->mmio64.base, pci->mmio64.limit));
    aml_append(dev, crs(b, res));

    /* _PRT (6.2.13): {Address, Pin, Source (0: GSI), SourceIndex}. */
    for (unsigned int d = 0; d < 32; d++)
        for (unsigned int p = 0; p < 4; p++) {
            struct aml *e = aml_package(b);

            aml_append(e, aml_int(b, ((uint64_t)d << 16) | 0xffff));
            aml_append(e, aml_int(b, p));
            aml_append(e, aml_int(b, 0));
            aml_append(e, aml_int(b, (uint64_t)acpi_pci_intx_gsi(cfg, d, p)));
            aml_append(prt, e);
        }
    aml_append(dev, aml_name_decl(b, "_PRT", prt));
    if (pcie)
        aml_append(dev, pci_osc(b));
    return dev;
}

static struct aml *isa_dev(struct aml_ctx *b, const char *name, const char *hid,
                           unsigned int uid, uint16_t port, uint8_t len, uint8_t irq)
{
    struct aml *dev = aml_device(b, name);
    struct aml *res = aml_resource_template(b);

    aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, hid)));
    aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, uid)));
    aml_append(dev, aml_name_decl(b, "_STA", aml_int(b, 0x0f)));
    aml_append(res, aml_io(b, port, port, 1, len));
    aml_append(res, aml_irq_noflags(b, irq));
    aml_append(dev, crs(b, res));
    return dev;
}

/* Motherboard resources (PNP0C02): the ECAM and the PM register blocks. */
static struct aml *mb_resources(struct aml_ctx *b, const struct acpi_config *cfg)
{
    const struct acpi_pm *pm = &cfg->pm;
    struct aml *dev = aml_device(b, "MRES");
    struct aml *res = aml_resource_template(b);

    aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, "PNP0C02")));
    aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, 1)));
    if (cfg->flags & ACPI_HAS_MCFG)
        aml_append(res, aml_memory32_fixed(b, 1, (uint32_t)cfg->pci.ecam_base,
                   (uint32_t)((cfg->pci.bus_end - cfg->pci.bus_start + 1) * ECAM_BUS_SIZE)));
    aml_append(res, aml_io(b, pm->pm1a_evt, pm->pm1a_evt, 1, pm->pm1_evt_len));
    aml_append(res, aml_io(b, pm->pm1a_cnt, pm->pm1a_cnt, 1, pm->pm1_cnt_len));
    aml_append(res, aml_io(b, pm->pm_tmr, pm->pm_tmr, 1, pm->pm_tmr_len));
    aml_append(res, aml_io(b, pm->gpe0, pm->gpe0, 1, pm->gpe0_len));
    aml_append(dev, crs(b, res));
    return dev;
}

struct aml *acpi_dsdt_body(struct aml_ctx *b, const struct acpi_config *cfg)
{
    struct aml *root = aml_list(b);
    struct aml *sb = aml_scope(b, "\\_SB");
    struct aml *s5 = aml_package(b);

    if (cfg->flags & ACPI_HAS_PCI)
        aml_append(sb, pci_root(b, cfg));
    if (cfg->flags & ACPI_HAS_COM1)
        aml_append(sb, isa_dev(b, "COM1", "PNP0501", 1, cfg->com1.port, 8, cfg->com1.irq));
    if (cfg->flags & ACPI_HAS_COM2)
        aml_append(sb, isa_dev(b, "COM2", "PNP0501", 2, cfg->com2.port, 8, cfg->com2.irq));
    if (cfg->flags & ACPI_HAS_RTC)
        aml_append(sb, isa_dev(b, "RTC", "PNP0B00", 0, cfg->rtc_port, 2, cfg->rtc_irq));
    if (cfg->flags & ACPI_HAS_HPET) {
        struct aml *dev = aml_device(b, "HPET");
        struct aml *res = aml_resource_template(b);

        aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, "PNP0103")));
        aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, 0)));
        aml_append(dev, aml_name_decl(b, "_STA", aml_int(b, 0x0f)));
        aml_append(res, aml_memory32_fixed(b, 0, (uint32_t)cfg->hpet_addr, 0x400));
        aml_append(dev, crs(b, res));
        aml_append(sb, dev);
    }
    if (cfg->flags & ACPI_HAS_PWRB) {
        struct aml *dev = aml_device(b, "PWRB");

        aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, "PNP0C0C")));
        aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, 1)));
        aml_append(sb, dev);
    }
    aml_append(sb, mb_resources(b, cfg));
    aml_append(root, sb);

    /* \_S3 (7.4.2): suspend to RAM, in the same form. */
    if (cfg->flags & ACPI_HAS_S3) {
        struct aml *s3 = aml_package(b);

        aml_append(s3, aml_int(b, cfg->pm.s3_slp_typ));
        aml_append(s3, aml_int(b, cfg->pm.s3_slp_typ));
        aml_append(s3, aml_int(b, 0));
        aml_append(s3, aml_int(b, 0));
        aml_append(root, aml_name_decl(b, "\\_S3", s3));
    }
    /* \_S5 (7.4.2): SLP_TYPa, SLP_TYPb, reserved, reserved. */
    aml_append(s5, aml_int(b, cfg->pm.s5_slp_typ));
    aml_append(s5, aml_int(b, cfg->pm.s5_slp_typ));
    aml_append(s5, aml_int(b, 0));
    aml_append(s5, aml_int(b, 0));
    aml_append(root, aml_name_decl(b, "\\_S5", s5));
    return root;
}

/* Processor devices (8.4): \_SB.Cnnn, _UID = MADT processor UID = index. */
_Static_assert(ACPI_VCPUS_MAX <= 0x1000, "processor device names C000-CFFF");
struct aml *acpi_cpu_ssdt_body(struct aml_ctx *b, const struct acpi_config *cfg)
{
    struct aml *root = aml_list(b);
    struct aml *sb = aml_scope(b, "\\_SB");

    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        char name[16];
        struct aml *dev;

        snprintf(name, sizeof(name), "C%03X", i);
        dev = aml_device(b, name);
        aml_append(dev, aml_name_decl(b, "_HID", aml_string(b, "ACPI0007")));
        aml_append(dev, aml_name_decl(b, "_UID", aml_int(b, i)));
        if (cfg->nr_nodes)
            aml_append(dev, aml_name_decl(b, "_PXM", aml_int(b, cfg->vcpus[i].node)));
        aml_append(sb, dev);
    }
    aml_append(root, sb);
    return root;
}
