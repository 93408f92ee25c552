// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small PCI test function for guests and tests: enumeration, BAR sizing
 * and programming, INTx and MSI through ferry-dm.
 *
 *   ID       1234:fe01, subsystem the same, class 0xff0000 (unassigned),
 *            INTA, an MSI capability (1 vector, 64-bit, maskable).
 *            Ferry owns no PCI vendor ID.  1b36:0005 is QEMU's pci-testdev
 *            (devmodel/devices/pci-testdev.c serves it with QEMU's layout),
 *            and Red Hat's 1b36/1af4 ranges are QEMU's to hand out (it keeps
 *            adding devices there).  Vendor 0x1234 is the ID emulators use
 *            for their own devices without an upstream driver (QEMU's edu
 *            teaching device is 1234:11e8); the only Linux driver on it is
 *            bochs-drm, for 1234:1111.  0xfe01 is "Ferry test, number 1",
 *            far from both.
 *   BAR0     I/O, 16 ports:
 *              +0  scratch (4 bytes, read/write)
 *              +4  interrupts: bit 0 is the INTx level (write 1 asserts, 0
 *                  deasserts; reads the level); writing bit 1 signals MSI
 *                  vector 0 (dropped or pending as the guest's MSI setup says)
 *              +8  magic "FRRY" (0x59525246), read-only
 *              +12 BAR1 accesses counted so far (read-only)
 *   BAR1     32-bit memory, 4 KiB of scratch RAM (any width 1..8)
 *
 * Options: addr=DEV[.FN] (default: the first free slot)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/dm.h"
#include "pci/pcimodel.h"

#define PCI_TEST_VENDOR     0x1234
#define PCI_TEST_DEVICE     0xfe01
#define PCI_TEST_MAGIC      0x59525246u     /* "FRRY" */
#define PCI_TEST_IO_SIZE    16
#define PCI_TEST_MEM_SIZE   4096

struct pci_test {
    struct ferry_dm_device *dev;
    struct ferry_dm_pci *pci;
    uint32_t scratch;
    bool irq;
    uint32_t mem_accesses;
    uint8_t mem[PCI_TEST_MEM_SIZE];
};

static uint64_t io_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_test *t = opaque;
    uint8_t regs[16];
    uint64_t v = 0;

    memcpy(regs, &t->scratch, 4);
    memcpy(regs + 4, &(uint32_t){ t->irq }, 4);
    memcpy(regs + 8, &(uint32_t){ PCI_TEST_MAGIC }, 4);
    memcpy(regs + 12, &t->mem_accesses, 4);
    if (off + size > sizeof(regs))
        return UINT64_MAX;
    memcpy(&v, regs + off, size);
    return v;
}

static void io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pci_test *t = opaque;

    if (off < 4) {
        uint8_t b[4];

        memcpy(b, &t->scratch, 4);
        for (unsigned i = 0; i < size && off + i < 4; i++)
            b[off + i] = (uint8_t)(val >> (8 * i));
        memcpy(&t->scratch, b, 4);
    } else if (off == 4) {
        t->irq = val & 1;
        dm_pci_set_irq(t->pci, t->irq);
        if (val & 2) {
            int rc = dm_pci_msi_notify(t->pci, 0);
            if (rc < 0)
                dm_dev_guest_log(t->dev, "msi vector 0 not sent: %s",
                                       rc == -ENODEV ? "msi is disabled" : strerror(-rc));
        }
    }
}

static uint64_t mem_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_test *t = opaque;
    uint64_t v = 0;

    t->mem_accesses++;
    if (off + size <= PCI_TEST_MEM_SIZE)
        memcpy(&v, t->mem + off, size);
    return v;
}

static void mem_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pci_test *t = opaque;

    t->mem_accesses++;
    if (off + size <= PCI_TEST_MEM_SIZE)
        memcpy(t->mem + off, &val, size);
}

static const struct ferry_dm_region_ops io_ops = { .read = io_read, .write = io_write,
                                                   .max_size = 4 };
static const struct ferry_dm_region_ops mem_ops = { .read = mem_read, .write = mem_write,
                                                    .max_size = 8 };

static int test_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "addr", NULL };
    const struct ferry_pci_func_info info = {
        .name = dm_device_id(dev),
        .vendor_id = PCI_TEST_VENDOR,
        .device_id = PCI_TEST_DEVICE,
        .class_code = 0xff0000,
        .subsystem_vendor_id = PCI_TEST_VENDOR,
        .subsystem_id = PCI_TEST_DEVICE,
        .intx_pin = FERRY_PCI_INTA,
    };
    struct pci_test *t;
    int devfn, rc;

    if (dm_opts_check(opts, known, NULL) < 0 ||
        dm_pci_parse_addr(dm_opts_get(opts, "addr"), &devfn) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: addr=DEV[.FN] (hex device 1..1f)");
        return -EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->dev = dev;
    /* The function and its BAR regions go with the device if a step fails. */
    if ((rc = dm_pci_create(dev, &info, &t->pci)) < 0 ||
        (rc = dm_pci_bar(t->pci, 0, FERRY_PCI_BAR_IO, PCI_TEST_IO_SIZE, &io_ops, t)) < 0 ||
        (rc = dm_pci_bar(t->pci, 1, FERRY_PCI_BAR_MEM32, PCI_TEST_MEM_SIZE, &mem_ops,
                               t)) < 0 ||
        (rc = pci_func_msi_add(dm_pci_func(t->pci), 1,
                               FERRY_PCI_MSI_64BIT | FERRY_PCI_MSI_MASKABLE, 0)) < 0 ||
        (rc = dm_pci_plug(t->pci, devfn)) < 0) {
        free(t);
        return rc;
    }
    *state = t;
    return 0;
}

static void test_exit(void *state)
{
    free(state);
}

static void test_reset(void *state)
{
    struct pci_test *t = state;

    t->scratch = 0;
    t->irq = false;
    t->mem_accesses = 0;
    memset(t->mem, 0, sizeof(t->mem));
    pci_func_reset(dm_pci_func(t->pci));
}

#define PCI_TEST_SAVE_VERSION 1

struct pci_test_saved {
    uint32_t scratch, mem_accesses;
    uint8_t irq;
    uint8_t mem[PCI_TEST_MEM_SIZE];
};

/* version, the device's registers, then pci/'s blob of the function. */
static int test_save(void *state, GByteArray *out)
{
    struct pci_test *t = state;
    struct ferry_pci_func *fn = dm_pci_func(t->pci);
    struct pci_test_saved sv = { .scratch = t->scratch, .mem_accesses = t->mem_accesses,
                                 .irq = t->irq };
    uint8_t version = PCI_TEST_SAVE_VERSION;
    size_t n = pci_func_save_size(fn);
    guint old = out->len;
    int rc;

    memcpy(sv.mem, t->mem, sizeof(sv.mem));
    g_byte_array_append(out, &version, 1);
    g_byte_array_append(out, (const guint8 *)&sv, sizeof(sv));
    g_byte_array_set_size(out, out->len + (guint)n);
    rc = pci_func_save(fn, out->data + out->len - n, n);
    if (rc < 0)
        g_byte_array_set_size(out, old);
    return rc;
}

static int test_restore(void *state, const uint8_t *buf, size_t len)
{
    struct pci_test *t = state;
    struct pci_test_saved sv;
    int rc;

    if (len < 1 + sizeof(sv) || buf[0] != PCI_TEST_SAVE_VERSION)
        return -EINVAL;
    memcpy(&sv, buf + 1, sizeof(sv));
    rc = pci_func_restore(dm_pci_func(t->pci), buf + 1 + sizeof(sv),
                          len - 1 - sizeof(sv));
    if (rc < 0)
        return rc;
    t->scratch = sv.scratch;
    t->mem_accesses = sv.mem_accesses;
    memcpy(t->mem, sv.mem, sizeof(t->mem));
    t->irq = sv.irq & 1;
    dm_pci_set_irq(t->pci, t->irq);
    return 0;
}

static void test_query(void *state, json_t *b)
{
    struct pci_test *t = state;
    int64_t sbdf = pci_func_sbdf(dm_pci_func(t->pci));

    json_object_set_new(b, "sbdf", json_integer(sbdf));
    json_object_set_new(b, "intx", json_boolean(t->irq));
}

FERRY_SYSCALL_LIST_NONE(pci_test_syscalls, "pci-test",
    "config space and BARs in memory, INTx and MSI via the hypervisor");

const struct ferry_dm_device_type pci_test_device = {
    .name = "pci-test",
    .desc = "Ferry's PCI test function 1234:fe01: I/O BAR0 (16), memory BAR1 (4 KiB), INTA",
    .hotplug = true,
    .syscalls = &pci_test_syscalls,
    .init = test_init,
    .exit = test_exit,
    .reset = test_reset,
    .save = test_save,
    .restore = test_restore,
    .query = test_query,
};
FERRY_DM_DEVICE_TYPE(pci_test_device)
