// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pci-testdev: QEMU's PCI test device (hw/misc/pci-testdev.c) with QEMU's
 * ID and layout, for kvm-unit-tests (x86/vmexit.c's pci cases, and
 * lib/pci-testdev.c) to measure Ferry's ioreq path.  Written from QEMU's
 * description of the protocol; ferry-dm's own test function with another
 * layout is `pci-test` (devmodel/devices/pci-test.c, another ID).
 *
 *   ID       1b36:0005 rev 0, class 0x00ff00 (QEMU's PCI_CLASS_OTHERS as a
 *            16-bit class id: lspci's "Unclassified device [00ff]"),
 *            subsystem 1af4:1100 (QEMU's default), no interrupt pin
 *   BAR0     32-bit memory, 4 KiB (2 x 2048)
 *   BAR1     I/O, 256 ports (2 x 128)
 *
 * Six tests, three per BAR: i = 0..2 on BAR0 are "mmio-no-eventfd",
 * "mmio-wildcard-eventfd", "mmio-datamatch-eventfd"; i = 3..5 on BAR1 the
 * same with "portio-".  Writing byte t at offset 0 of a BAR selects test
 * t (0..2) of that BAR (anything else selects none) and zeroes its count.
 * Reads of the BAR return, byte by byte, the selected test's header:
 *
 *   +0  u8  test (i)        +1 u8 width (1)
 *   +4  le32 offset         (2048 + i on BAR0, 128 + i on BAR1)
 *   +8  u8  data            (0xfa for the datamatch and no-eventfd tests,
 *                            0xce for wildcard)
 *   +12 le32 count          writes seen at offset so far
 *   +16 the test's name, NUL-terminated
 *
 * and 0 past it, or with no test selected.  A byte written at the test's
 * offset counts (for the datamatch and no-eventfd tests only if it is the
 * data byte).  Every access is taken as its bytes in ascending order, as
 * QEMU's memory core feeds its byte-wide handlers.
 * QEMU wires its eventfd tests to ioeventfds, which swallow the writes
 * (count stays 0); ferry-dm has none, so every test counts its writes,
 * which kvm-unit-tests also accepts (count 0 or the number written).
 *
 * Syscalls: none beyond the base list.  Options: addr=DEV[.FN].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmodel/dm.h"
#include "pci/pcimodel.h"

#define PTD_VENDOR          0x1b36      /* Red Hat: QEMU's devices */
#define PTD_DEVICE          0x0005      /* PCI_DEVICE_ID_REDHAT_TEST */
#define PTD_CLASS           0x00ff00
#define PTD_SUBVENDOR       0x1af4
#define PTD_SUBDEVICE       0x1100
#define PTD_MEM_SIZE        2048u
#define PTD_IO_SIZE         128u
#define PTD_TESTS_PER_BAR   3u
#define PTD_NR_TESTS        (2 * PTD_TESTS_PER_BAR)
#define PTD_HDR_NAME        16u
#define PTD_HDR_MAX         (PTD_HDR_NAME + 32u)
#define PTD_DATAMATCH       0xfa
#define PTD_NOMATCH         0xce

enum { PTD_MMIO = 0, PTD_PORTIO = 1 };

struct ptd_test {
    uint8_t hdr[PTD_HDR_MAX];
    unsigned len;               /* header and name with its NUL */
    uint32_t offset;
    bool match_data;
};

struct pci_testdev {
    struct ferry_dm_device *dev;
    struct ferry_dm_pci *pci;
    struct ptd_test tests[PTD_NR_TESTS];
    int current;                /* -1: none selected */
};

struct ptd_bar {
    struct pci_testdev *d;
    unsigned type;              /* PTD_MMIO or PTD_PORTIO */
};

static void put_le32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void tests_build(struct pci_testdev *d)
{
    static const char *const kind[] = { "no-eventfd", "wildcard-eventfd", "datamatch-eventfd" };
    static const char *const type[] = { "mmio", "portio" };

    for (unsigned i = 0; i < PTD_NR_TESTS; i++) {
        struct ptd_test *t = &d->tests[i];
        unsigned k = i % PTD_TESTS_PER_BAR, ty = i / PTD_TESTS_PER_BAR;
        int n;

        memset(t, 0, sizeof(*t));
        n = snprintf((char *)t->hdr + PTD_HDR_NAME, PTD_HDR_MAX - PTD_HDR_NAME, "%s-%s",
                     type[ty], kind[k]);
        t->len = PTD_HDR_NAME + (unsigned)n + 1;
        t->offset = (ty == PTD_MMIO ? PTD_MEM_SIZE : PTD_IO_SIZE) + i;
        t->match_data = k != 1;
        t->hdr[0] = (uint8_t)i;
        t->hdr[1] = 1;
        put_le32(t->hdr + 4, t->offset);
        t->hdr[8] = t->match_data ? PTD_DATAMATCH : PTD_NOMATCH;
    }
}

static uint8_t read_byte(const struct pci_testdev *d, uint64_t off)
{
    const struct ptd_test *t;

    if (d->current < 0)
        return 0;
    t = &d->tests[d->current];
    return off + 1 < t->len ? t->hdr[off] : 0;
}

static void write_byte(struct pci_testdev *d, unsigned type, uint64_t off, uint8_t val)
{
    struct ptd_test *t;

    if (off == 0) {
        d->current = -1;
        if (val >= PTD_TESTS_PER_BAR)
            return;
        d->current = (int)(type * PTD_TESTS_PER_BAR + val);
        put_le32(d->tests[d->current].hdr + 12, 0);
        return;
    }
    if (d->current < 0)
        return;
    t = &d->tests[d->current];
    if (off != t->offset || (t->match_data && val != t->hdr[8]))
        return;
    put_le32(t->hdr + 12, get_le32(t->hdr + 12) + 1);
}

/* QEMU's handlers take bytes: wider accesses are bytes in ascending order. */
static uint64_t ptd_read(void *opaque, uint64_t off, unsigned size)
{
    struct ptd_bar *b = opaque;
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)read_byte(b->d, off + i) << (8 * i);
    return v;
}

static void ptd_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct ptd_bar *b = opaque;

    for (unsigned i = 0; i < size; i++)
        write_byte(b->d, b->type, off + i, (uint8_t)(val >> (8 * i)));
}

static const struct ferry_dm_region_ops ptd_ops = { .read = ptd_read, .write = ptd_write,
                                                    .max_size = 4 };

/* The instance with the BARs' handler contexts next to it. */
struct ptd_instance {
    struct pci_testdev d;
    struct ptd_bar bars[2];
};

static int ptd_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                    void **state)
{
    static const char *const known[] = { "addr", NULL };
    const struct ferry_pci_func_info info = {
        .name = dm_device_id(dev),
        .vendor_id = PTD_VENDOR,
        .device_id = PTD_DEVICE,
        .class_code = PTD_CLASS,
        .subsystem_vendor_id = PTD_SUBVENDOR,
        .subsystem_id = PTD_SUBDEVICE,
        .intx_pin = FERRY_PCI_INTX_NONE,
    };
    struct ptd_instance *in;
    int devfn, rc;

    if (dm_opts_check(opts, known, NULL) < 0 ||
        dm_pci_parse_addr(dm_opts_get(opts, "addr"), &devfn) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: addr=DEV[.FN] (hex device 1..1f)");
        return -EINVAL;
    }
    in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    in->d.dev = dev;
    in->d.current = -1;
    tests_build(&in->d);
    in->bars[0] = (struct ptd_bar){ .d = &in->d, .type = PTD_MMIO };
    in->bars[1] = (struct ptd_bar){ .d = &in->d, .type = PTD_PORTIO };
    /* The function and its BAR regions go with the device if a step fails. */
    if ((rc = dm_pci_create(dev, &info, &in->d.pci)) < 0 ||
        (rc = dm_pci_bar(in->d.pci, 0, FERRY_PCI_BAR_MEM32, 2 * PTD_MEM_SIZE, &ptd_ops,
                               &in->bars[0])) < 0 ||
        (rc = dm_pci_bar(in->d.pci, 1, FERRY_PCI_BAR_IO, 2 * PTD_IO_SIZE, &ptd_ops,
                               &in->bars[1])) < 0 ||
        (rc = dm_pci_plug(in->d.pci, devfn)) < 0) {
        free(in);
        return rc;
    }
    *state = in;
    return 0;
}

static void ptd_exit(void *state)
{
    free(state);
}

static void ptd_reset(void *state)
{
    struct ptd_instance *in = state;

    in->d.current = -1;
    tests_build(&in->d);
    pci_func_reset(dm_pci_func(in->d.pci));
}

static void ptd_query(void *state, json_t *b)
{
    struct ptd_instance *in = state;
    const struct ptd_test *t = in->d.current >= 0 ? &in->d.tests[in->d.current] : NULL;

    json_object_set_new(b, "sbdf", json_integer(pci_func_sbdf(dm_pci_func(in->d.pci))));
    json_object_set_new(b, "test", t ? ferry_json_str((const char *)t->hdr + PTD_HDR_NAME)
                                     : json_null());
    json_object_set_new(b, "count", json_integer(t ? get_le32(t->hdr + 12) : 0));
}

FERRY_SYSCALL_LIST_NONE(pci_testdev_syscalls, "pci-testdev",
    "BARs and write counters in memory");

const struct ferry_dm_device_type pci_testdev_device = {
    .name = "pci-testdev",
    .desc = "QEMU's PCI test device 1b36:0005: memory BAR0 (4 KiB), I/O BAR1 (256), "
            "the mmio/portio write-count tests",
    .hotplug = true,
    .syscalls = &pci_testdev_syscalls,
    .init = ptd_init,
    .exit = ptd_exit,
    .reset = ptd_reset,
    .query = ptd_query,
};
FERRY_DM_DEVICE_TYPE(pci_testdev_device)
