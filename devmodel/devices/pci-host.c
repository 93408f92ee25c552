// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest's PCI bus 0 with its host bridge at 00.0 (pci/'s model:
 * i440FX-like 8086:1237 or Q35-like 8086:29c0).
 *
 * Config cycles reach it as PCI_CONFIG ioreqs: ferry-hv decodes config
 * mechanism #1 (CF8/CFC) and the ECAM window (0xe0000000) itself and
 * routes by SBDF, so this device claims the SBDFs of bus 0 rather than
 * ports.  INTx of the bus's functions arrives on GSIs 16..19 (level,
 * pci_intx_gsi(), the same swizzle as libacpi's _PRT).  BARs may not be
 * programmed over low RAM, the ECAM window, the IOAPIC/LAPIC or the
 * legacy ports below 0x1000 (nor over another device: the framework
 * refuses overlaps).
 *
 * Options: model=i440fx|q35
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/dm.h"
#include "pci/pcimodel.h"

#define PCI_HOST_LOW_RAM_END    0xc0000000ull   /* ferry-hv's PCI hole starts here */
#define PCI_HOST_ECAM_BASE      0xe0000000ull
#define PCI_HOST_ECAM_SIZE      0x10000000ull
#define PCI_HOST_APIC_BASE      0xfec00000ull
#define PCI_HOST_APIC_SIZE      0x01400000ull   /* IOAPIC .. top of 4 GiB */

struct pci_host {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    struct ferry_pci_bus *bus;
    struct ferry_dm_irq *intx[FERRY_PCI_INTX_GSI_COUNT];
    uint64_t config_reads, config_writes;
};

static void host_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct pci_host *h = opaque;

    dm_dev_log(h->dev, level, "%s", msg);
}

static void host_set_irq(void *opaque, uint32_t gsi, bool level)
{
    struct pci_host *h = opaque;

    if (gsi >= FERRY_PCI_INTX_GSI_BASE &&
        gsi < FERRY_PCI_INTX_GSI_BASE + FERRY_PCI_INTX_GSI_COUNT)
        dm_irq_set(h->intx[gsi - FERRY_PCI_INTX_GSI_BASE], level);
}

static const struct ferry_pci_bus_ops host_bus_ops = {
    .log = host_log,
    .set_irq = host_set_irq,
};

static void host_config(void *opaque, uint32_t sbdf, uint32_t reg, unsigned size,
                        bool is_write, uint64_t *data)
{
    struct pci_host *h = opaque;

    if (is_write) {
        h->config_writes++;
        pci_bus_config_write(h->bus, sbdf, reg, size, (uint32_t)*data);
    } else {
        h->config_reads++;
        *data = pci_bus_config_read(h->bus, sbdf, reg, size);
    }
}

/* The SBDF claim has no port/MMIO handlers: config goes through host_config. */
static const struct ferry_dm_region_ops sbdf_ops = { .max_size = 4 };

static int host_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "model", NULL };
    struct ferry_pci_bus_config cfg = { .host = FERRY_PCI_HOST_I440FX, .name = "pci" };
    const char *model = dm_opts_get(opts, "model");
    struct ferry_dm *dm = dm_device_dm(dev);
    struct pci_host *h;
    int rc;

    if (dm_opts_check(opts, known, NULL) < 0 ||
        (model && strcmp(model, "i440fx") != 0 && strcmp(model, "q35") != 0)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: model=i440fx|q35");
        return -EINVAL;
    }
    if (dm_pci_bus(dm)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "the guest already has a PCI bus");
        return -EEXIST;
    }
    if (model && strcmp(model, "q35") == 0)
        cfg.host = FERRY_PCI_HOST_Q35;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->dev = dev;
    h->dm = dm;
    for (unsigned i = 0; i < FERRY_PCI_INTX_GSI_COUNT; i++) {
        rc = dm_irq_add(dev, FERRY_PCI_INTX_GSI_BASE + i, FERRY_DM_IRQ_LEVEL, &h->intx[i]);
        if (rc < 0)
            goto err_free;
    }
    h->bus = pci_bus_new(&cfg, &host_bus_ops, h);
    if (!h->bus) {
        rc = -errno;
        goto err_free;
    }
    if ((rc = pci_bus_reserve(h->bus, false, 0, PCI_HOST_LOW_RAM_END, "low ram")) < 0 ||
        (rc = pci_bus_reserve(h->bus, false, PCI_HOST_ECAM_BASE, PCI_HOST_ECAM_SIZE, "ecam")) < 0 ||
        (rc = pci_bus_reserve(h->bus, false, PCI_HOST_APIC_BASE, PCI_HOST_APIC_SIZE,
                              "ioapic/lapic")) < 0 ||
        (rc = pci_bus_reserve(h->bus, true, 0, 0x1000, "legacy ports")) < 0)
        goto err_bus;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PCI, IOREQ_PCI_SBDF(0, 0, 0, 0), 256,
                             &sbdf_ops, h, 0, NULL);
    if (rc < 0)
        goto err_bus;
    dm_set_pci_bus(dm, h->bus);
    dm_set_pci_config(dm, host_config, h);
    *state = h;
    return 0;
err_bus:
    pci_bus_free(h->bus);
err_free:
    free(h);
    return rc;
}

static void host_exit(void *state)
{
    struct pci_host *h = state;

    dm_set_pci_config(h->dm, NULL, NULL);
    dm_set_pci_bus(h->dm, NULL);
    pci_bus_free(h->bus);
    free(h);
}

static void host_reset(void *state)
{
    struct pci_host *h = state;

    pci_func_reset(pci_bus_host_bridge(h->bus));
}

static void host_query(void *state, json_t *b)
{
    struct pci_host *h = state;

    json_t *fns = json_array();

    for (unsigned devfn = 0; devfn < 256; devfn++) {
        struct ferry_pci_func *fn = pci_bus_lookup(h->bus, FERRY_PCI_SBDF(0, devfn));
        uint16_t ids[2];

        if (!fn || pci_func_config_get(fn, FERRY_PCI_VENDOR_ID, ids, sizeof(ids)) < 0)
            continue;
        json_t *f = json_object();
        char bdf[16];

        snprintf(bdf, sizeof(bdf), "00:%02x.%x", devfn >> 3, devfn & 7);
        json_object_set_new(f, "bdf", json_string(bdf));
        json_object_set_new(f, "name", ferry_json_str(pci_func_name(fn)));
        json_object_set_new(f, "vendor-id", json_integer(ids[0]));
        json_object_set_new(f, "device-id", json_integer(ids[1]));
        json_array_append_new(fns, f);
    }
    json_object_set_new(b, "functions", fns);
    json_object_set_new(b, "config-reads", json_integer((json_int_t)h->config_reads));
    json_object_set_new(b, "config-writes", json_integer((json_int_t)h->config_writes));
}

FERRY_SYSCALL_LIST_NONE(pci_host_syscalls, "pci-host",
    "config space in memory, INTx messages to the hypervisor");

const struct ferry_dm_device_type pci_host_device = {
    .name = "pci-host",
    .desc = "PCI bus 0 and host bridge at 00.0 (model=i440fx|q35), INTx on GSI 16-19",
    .syscalls = &pci_host_syscalls,
    .init = host_init,
    .exit = host_exit,
    .reset = host_reset,
    .query = host_query,
};
FERRY_DM_DEVICE_TYPE(pci_host_device)
