// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QEMU's test devices as kvm-unit-tests drives them: pc-testdev (scratch,
 * flush page, GSI levels, iomem), pci-testdev (the mmio/portio count
 * tests) and fw-cfg (items by port and by DMA, and hostile DMA requests).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/devmodel/test-devmodel.h"

#define RAM_SIZE    0x200000u   /* 2 MiB: [0, 0xa0000) and [0xc0000, 2 MiB) */

/* Guest RAM laid out as ferry-hv lays it out; returns the memfd (kept by the test). */
static int tb_guest_ram(struct tb *t)
{
    int fd = memfd_create("guest", MFD_CLOEXEC);
    struct ioreq_msg_memory_reply regions = { .nr_regions = 2 };

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, RAM_SIZE), 0);
    regions.region[0].gpa = 0;
    regions.region[0].size = 0xa0000;
    regions.region[0].offset = 0;
    regions.region[1].gpa = 0xc0000;
    regions.region[1].size = RAM_SIZE - 0xc0000;
    regions.region[1].offset = 0xc0000;
    ck_assert_int_eq(dm_set_guest_memory(t->dm, fd, &regions), 0);
    return fd;
}

static uint64_t mmio(struct tb *t, uint64_t addr, unsigned size, bool wr, uint64_t v)
{
    dm_io(t->dm, FERRY_DM_SPACE_MMIO, addr, size, wr, &v);
    return v;
}

/* ------------------------------------------------------------------ */
/* pc-testdev                                                          */

START_TEST(test_pc_testdev_ports)
{
    struct tb t;
    int fd;

    tb_init(&t, false);
    fd = tb_guest_ram(&t);
    tb_add(&t, "pc-testdev", "testdev", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0xe0, 0xe3));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x2000, 0x2017));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_MMIO, 0xff000000, 0xff00ffff));
    /* The scratch register at 1, 2 and 4 bytes, and by byte at 0xe8. */
    tb_out(&t, 0xe0, 4, 0x12345678);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 4), 0x12345678);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 2), 0x5678);
    ck_assert_uint_eq(tb_in(&t, 0xe2, 2), 0x1234);
    ck_assert_uint_eq(tb_in(&t, 0xe3, 1), 0x12);
    tb_out(&t, 0xe1, 1, 0xab);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 4), 0x1234ab78);
    tb_out(&t, 0xe2, 2, 0xcdef);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 4), 0xcdefab78);
    ck_assert_uint_eq(tb_in(&t, 0xe8, 4), 0xcdefab78);     /* byte by byte: the same */
    tb_out(&t, 0xe8, 4, 0x01020304);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 4), 0x01020304);
    /* Flush page: RAM pages count, others are refused, other widths ignored. */
    tb_out(&t, 0xe4, 4, 0x100123);
    tb_out(&t, 0xe4, 4, 0xa0000);                           /* the VGA hole */
    tb_out(&t, 0xe4, 4, 0xfffff000);
    tb_out(&t, 0xe4, 2, 0x1000);
    /* iomem: 64 KiB of memory at every width, nothing past its end. */
    mmio(&t, 0xff000000, 8, true, 0x1122334455667788ull);
    ck_assert_uint_eq(mmio(&t, 0xff000000, 8, false, 0), 0x1122334455667788ull);
    ck_assert_uint_eq(mmio(&t, 0xff000002, 2, false, 0), 0x5566);
    mmio(&t, 0xff00fffc, 4, true, 0xdeadbeef);
    ck_assert_uint_eq(mmio(&t, 0xff00fffc, 4, false, 0), 0xdeadbeef);
    ck_assert_uint_eq(mmio(&t, 0xff00ffff, 1, false, 0), 0xde);
    ck_assert_uint_eq(mmio(&t, 0xff00fffe, 4, false, 0), 0xffffdead);   /* past the end */

    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "flushes")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bad-flushes")), 2);
    json_decref(root);
    dm_reset(t.dm);
    ck_assert_uint_eq(tb_in(&t, 0xe0, 4), 0);
    ck_assert_uint_eq(mmio(&t, 0xff000000, 8, false, 0), 0);
    tb_fini(&t);
    close(fd);
}
END_TEST

START_TEST(test_pc_testdev_irq_lines)
{
    struct tb t;

    /* irqfds on offer: the device still sets levels through irq-line calls. */
    tb_init(&t, true);
    tb_add(&t, "pc-testdev", "testdev", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    tb_out(&t, 0x200e, 1, 1);
    ck_assert(t.line[14]);
    ck_assert_uint_eq(t.line_calls[14], 1);
    tb_out(&t, 0x200e, 1, 1);       /* again: passed on, the IOAPIC decides */
    ck_assert_uint_eq(t.line_calls[14], 2);
    ck_assert_uint_eq(t.line_raises[14], 1);
    tb_out(&t, 0x200e, 1, 0);
    ck_assert(!t.line[14]);
    tb_out(&t, 0x2017, 1, 0x80);    /* any non-zero byte is high */
    ck_assert(t.line[23]);
    tb_out(&t, 0x2000, 2, 0x0101);  /* not a byte: ignored, as QEMU's */
    ck_assert(!t.line[0] && !t.line[1]);
    ck_assert_uint_eq(tb_in(&t, 0x2000, 1), 0xff);
    tb_out(&t, 0x2010, 1, 1);
    dm_reset(t.dm);           /* lines left high go low */
    ck_assert(!t.line[16] && !t.line[23]);
    tb_out(&t, 0x2005, 1, 1);
    ck_assert(t.line[5]);
    ck_assert_int_eq(dm_device_remove(t.dm, "testdev"), -EBUSY);     /* not hotplug */
    tb_fini(&t);                    /* ... and when the device goes */
    ck_assert(!t.line[5]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* pci-testdev                                                         */

#define MEMBAR  0xd0000000u
#define IOBAR   0xc000u

static uint32_t rd32(struct tb *t, bool io, uint32_t off)
{
    return io ? (uint32_t)tb_in(t, (uint16_t)(IOBAR + off), 4)
              : (uint32_t)mmio(t, MEMBAR + off, 4, false, 0);
}

static void wr(struct tb *t, bool io, uint32_t off, unsigned size, uint32_t v)
{
    if (io)
        tb_out(t, (uint16_t)(IOBAR + off), size, v);
    else
        mmio(t, MEMBAR + off, size, true, v);
}

/* lib/pci-testdev.c's check of one test: 16 writes of the data, count 16. */
static bool run_one(struct tb *t, bool io, unsigned nr, char *name)
{
    wr(t, io, 0, 1, nr);
    if (rd32(t, io, 12) != 0)
        return false;
    uint32_t width = rd32(t, io, 0) >> 8 & 0xff, data = rd32(t, io, 8), off = rd32(t, io, 4);
    if (width != 1)
        return false;
    for (unsigned i = 0; i < 16; i++)
        wr(t, io, off, 1, data);
    wr(t, io, off, 1, data ^ 1);        /* another byte: counted by wildcard only */
    for (unsigned i = 0; i < 31; i++) {
        name[i] = (char)(rd32(t, io, 16 + i) & 0xff);
        if (!name[i])
            break;
    }
    name[31] = 0;
    return rd32(t, io, 12) == (data == 0xce ? 17u : 16u);
}

START_TEST(test_pci_testdev)
{
    static const char *const names[] = {
        "mmio-no-eventfd", "mmio-wildcard-eventfd", "mmio-datamatch-eventfd",
        "portio-no-eventfd", "portio-wildcard-eventfd", "portio-datamatch-eventfd",
    };
    struct tb t;
    char name[32];

    tb_init(&t, false);
    tb_add(&t, "pci-host", "pci", NULL);
    tb_add(&t, "pci-testdev", "ptd", "addr=3");
    tb_add(&t, "pci-test", "pt", NULL);         /* Ferry's own, another ID */
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0, 4), 0x00051b36);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0x08, 4), 0x00ff0000);      /* class 00ff, rev 0 */
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0x2c, 4), 0x11001af4);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0x3d, 1), 0);                /* no INTx pin */
    ck_assert_uint_eq(tb_cfg_read(&t, 1, 0, 0, 4), 0xfe011234);
    /* BAR sizes: 4 KiB memory, 256 ports. */
    tb_cfg_write(&t, 3, 0, 0x10, 4, 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0x10, 4), 0xfffff000);
    tb_cfg_write(&t, 3, 0, 0x14, 4, 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0x14, 4) & 0xffff, 0xff01);
    tb_cfg_write(&t, 3, 0, 0x10, 4, MEMBAR);
    tb_cfg_write(&t, 3, 0, 0x14, 4, IOBAR);
    tb_cfg_write(&t, 3, 0, 0x04, 2, 0x0003);
    ck_assert_uint_eq(rd32(&t, false, 0), 0);       /* nothing selected: zeroes */
    for (unsigned i = 0; i < 6; i++) {
        ck_assert_msg(run_one(&t, i >= 3, i % 3, name), "test %u", i);
        ck_assert_str_eq(name, names[i]);
        ck_assert_uint_eq(rd32(&t, i >= 3, 4), (i >= 3 ? 128u : 2048u) + i);
        ck_assert_uint_eq(rd32(&t, i >= 3, 0) & 0xff, i);
    }
    /* Test 3 of a BAR does not exist: nothing selected, count and width 0. */
    ck_assert(!run_one(&t, false, 3, name));
    ck_assert_uint_eq(rd32(&t, false, 12), 0);
    /* A wide write at offset 0 selects by its low byte; reads past the name are 0. */
    wr(&t, true, 0, 4, 0x00000001);
    ck_assert_uint_eq(rd32(&t, true, 0) & 0xff, 4);
    ck_assert_uint_eq(rd32(&t, true, 40), 0);
    ck_assert_uint_eq(rd32(&t, true, 252), 0);
    dm_reset(t.dm);
    tb_fini(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* fw-cfg                                                              */

static void sel(struct tb *t, uint16_t key)
{
    tb_out(t, 0x510, 2, key);
}

static uint64_t rd_le(struct tb *t, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= tb_in(t, 0x511, 1) << (8 * i);
    return v;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Write a FWCfgDmaAccess at desc and start it as a guest does (two be32 halves). */
static uint32_t dma(struct tb *t, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t d[16];

    put_be(d, control, 4);
    put_be(d + 4, len, 4);
    put_be(d + 8, addr, 8);
    if (dm_dma_write(t->dm, desc, d, sizeof(d)) < 0)
        ck_abort_msg("descriptor at 0x%lx is not RAM", (unsigned long)desc);
    tb_out(t, 0x514, 4, __builtin_bswap32((uint32_t)(desc >> 32)));
    tb_out(t, 0x518, 4, __builtin_bswap32((uint32_t)desc));
    ck_assert_int_eq(dm_dma_read(t->dm, desc, d, 4), 0);
    return (uint32_t)be(d, 4);
}

START_TEST(test_fw_cfg_ports)
{
    struct tb t;
    int fd;

    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "fwcfg", "cpus=2"), -ENODEV);   /* no RAM */
    fd = tb_guest_ram(&t);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "fwcfg", NULL), -EINVAL);  /* vCPUs unknown */
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "fwcfg", "cpus=5000"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "fwcfg", "size=1"), -EINVAL);
    dm_set_nr_vcpus(t.dm, 3);
    tb_add(&t, "fw-cfg", "fwcfg", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x510, 0x511));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x514, 0x51b));
    sel(&t, 0x0000);
    ck_assert_uint_eq(rd_le(&t, 4), 0x554d4551);        /* "QEMU" */
    ck_assert_uint_eq(rd_le(&t, 2), 0);                 /* past the end: 0 */
    sel(&t, 0x0001);
    ck_assert_uint_eq(rd_le(&t, 4), 3);                 /* traditional + DMA */
    sel(&t, 0x0003);
    ck_assert_uint_eq(rd_le(&t, 8), RAM_SIZE);
    sel(&t, 0x0005);
    ck_assert_uint_eq(rd_le(&t, 2), 3);
    sel(&t, 0x000f);
    ck_assert_uint_eq(tb_in(&t, 0x510, 1), 3);          /* a byte read of 0x510 is data */
    sel(&t, 0x4005);                                    /* the write-channel bit: ignored */
    ck_assert_uint_eq(rd_le(&t, 2), 3);
    /* Out of range, empty and arch-local keys read 0. */
    sel(&t, 0x0040);
    ck_assert_uint_eq(rd_le(&t, 4), 0);
    sel(&t, 0xffff);
    ck_assert_uint_eq(rd_le(&t, 4), 0);
    sel(&t, 0x0002);
    ck_assert_uint_eq(rd_le(&t, 4), 0);
    sel(&t, 0x8003);
    ck_assert_uint_eq(rd_le(&t, 4), 0);
    /* Invalid widths: a word read reads 0 and consumes nothing; byte writes are ignored. */
    sel(&t, 0x0000);
    ck_assert_uint_eq(tb_in(&t, 0x510, 2), 0);
    tb_out(&t, 0x510, 1, 0x05);
    tb_out(&t, 0x511, 1, 0x05);
    ck_assert_uint_eq(rd_le(&t, 1), 'Q');
    /* The DMA port's signature, big-endian "QEMU CFG". */
    ck_assert_uint_eq(tb_in(&t, 0x514, 4), 0x554d4551);
    ck_assert_uint_eq(tb_in(&t, 0x518, 4), 0x47464320);
    ck_assert_uint_eq(tb_in(&t, 0x51a, 1), 'F');
    /* FILE_DIR: one file, etc/e820 at key 0x20. */
    sel(&t, 0x0019);
    uint8_t dir[4 + 64];
    for (unsigned i = 0; i < sizeof(dir); i++)
        dir[i] = (uint8_t)tb_in(&t, 0x511, 1);
    ck_assert_uint_eq(be(dir, 4), 1);
    ck_assert_uint_eq(be(dir + 8, 2), 0x20);
    ck_assert_str_eq((const char *)dir + 12, "etc/e820");
    unsigned e820_len = (unsigned)be(dir + 4, 4);
    /* ferry-hv's map: RAM, reserved, ACPI, reserved, RAM, ECAM, identity map. */
    ck_assert_uint_eq(e820_len, 7 * 20);
    static const uint64_t want[7][3] = {
        { 0, 0xa0000, 1 }, { 0xc0000, 0x20000, 2 }, { 0xe0000, 0x10000, 3 },
        { 0xf0000, 0x10000, 2 }, { 0x100000, RAM_SIZE - 0x100000, 1 },
        { 0xe0000000, 0x10000000, 2 }, { 0xfeffc000, 0x4000, 2 },
    };
    sel(&t, 0x0020);
    for (unsigned i = 0; i < 7; i++) {
        ck_assert_uint_eq(rd_le(&t, 8), want[i][0]);
        ck_assert_uint_eq(rd_le(&t, 8), want[i][1]);
        ck_assert_uint_eq(rd_le(&t, 4), want[i][2]);
    }
    ck_assert_uint_eq(rd_le(&t, 1), 0);
    tb_fini(&t);
    close(fd);
}
END_TEST

/* A user item (QEMU's -fw_cfg name=opt/...,string=) sorts into the directory. */
START_TEST(test_fw_cfg_user_file)
{
    struct tb t;
    uint8_t dir[4 + 2 * 64];
    int fd;

    tb_init(&t, false);
    fd = tb_guest_ram(&t);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "f", "cpus=1,name=etc/x,string=a"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "f", "cpus=1,name=opt/x"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "f", "cpus=1,string=a"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "f", "cpus=1,name=opt/,string=a"), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "fw-cfg", "f", "cpus=1,name=opt/"
                                "0123456789012345678901234567890123456789012345678901,string=a"),
                     -EINVAL);
    tb_add(&t, "fw-cfg", "f", "cpus=1,name=opt/ferry/hello,string=hi there");
    ck_assert_int_eq(dm_start(t.dm), 0);
    sel(&t, 0x0019);
    for (unsigned i = 0; i < sizeof(dir); i++)
        dir[i] = (uint8_t)tb_in(&t, 0x511, 1);
    ck_assert_uint_eq(be(dir, 4), 2);
    ck_assert_str_eq((const char *)dir + 12, "etc/e820");
    ck_assert_uint_eq(be(dir + 8, 2), 0x20);
    ck_assert_str_eq((const char *)dir + 4 + 64 + 8, "opt/ferry/hello");
    ck_assert_uint_eq(be(dir + 4 + 64, 4), 8);
    ck_assert_uint_eq(be(dir + 4 + 64 + 4, 2), 0x21);
    sel(&t, 0x0021);
    ck_assert_uint_eq(rd_le(&t, 8), 0x6572656874206968ull);     /* "hi there" */
    ck_assert_uint_eq(rd_le(&t, 1), 0);
    tb_fini(&t);
    close(fd);
}
END_TEST

START_TEST(test_fw_cfg_dma)
{
    struct tb t;
    uint8_t buf[64];
    int fd;

    tb_init(&t, false);
    fd = tb_guest_ram(&t);
    tb_add(&t, "fw-cfg", "fwcfg", "cpus=2");
    ck_assert_int_eq(dm_start(t.dm), 0);
    /* Select + read the signature, then the rest of the item and zeroes past its end. */
    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(dm_dma_write(t.dm, 0x2000, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x02, 2, 0x2000), 0);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x02, 6, 0x2002), 0);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x2000, buf, 10), 0);
    ck_assert_int_eq(memcmp(buf, "QEMU\0\0\0\0\xaa\xaa", 10), 0);
    /* Skip 2 bytes of RAM_SIZE, read the next 2 (bytes 2..3 of le64 0x200000: 0x20, 0). */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0003 << 16 | 0x08 | 0x04, 2, 0), 0);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x02, 2, 0x2010), 0);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x2010, buf, 2), 0);
    ck_assert_uint_eq(buf[0], 0x20);
    ck_assert_uint_eq(buf[1], 0);
    /* ... and the port continues where DMA stopped. */
    ck_assert_uint_eq(rd_le(&t, 4), 0);
    /* The directory by DMA. */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0019 << 16 | 0x08 | 0x02, 64, 0x3000), 0);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x3000, buf, 64), 0);
    ck_assert_str_eq((const char *)buf + 12, "etc/e820");
    /* Another key into the same buffer. */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0001 << 16 | 0x08 | 0x02, 4, 0x3100), 0);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x3100, buf, 4), 0);
    ck_assert_uint_eq(buf[0], 3);

    /* Hostile requests: the error bit, never a crash, nothing outside RAM touched. */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x02, 4, 0xa0000), 1);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x02, 4, RAM_SIZE - 2), 1);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x02, 16,
                          0xfffffffffffffff8ull), 1);                   /* wraps */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x02, 0xffffffffu, 0x4000), 1);
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0000 << 16 | 0x08 | 0x10, 4, 0x2000), 1); /* write */
    ck_assert_uint_eq(dma(&t, 0x1000, 0x0040 << 16 | 0x08 | 0x02, 4, 0x2000), 0); /* no key */
    ck_assert_int_eq(dm_dma_read(t.dm, 0x2000, buf, 4), 0);
    ck_assert_uint_eq(buf[0] | buf[1] | buf[2] | buf[3], 0);            /* zeroes */
    ck_assert_uint_eq(dma(&t, 0x1000, 0, 4, 0x2000), 0);                /* no operation */
    /* A descriptor outside RAM, or straddling its end: nothing to do, nothing written. */
    tb_out(&t, 0x514, 4, 0);
    tb_out(&t, 0x518, 4, __builtin_bswap32(0xa0000));
    tb_out(&t, 0x514, 4, __builtin_bswap32(0xffffffffu));
    tb_out(&t, 0x518, 4, __builtin_bswap32(0xfffffff8u));
    tb_out(&t, 0x514, 4, 0);
    tb_out(&t, 0x518, 4, __builtin_bswap32(RAM_SIZE - 8));
    tb_out(&t, 0x516, 2, 0x1234);                   /* other widths/offsets: ignored */
    tb_out(&t, 0x51b, 1, 0x12);

    json_t *root = dm_query_devices(t.dm);
    json_t *o = json_array_get(root, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "dma-transfers")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "dma-errors")), 8);
    json_decref(root);
    tb_fini(&t);
    close(fd);
}
END_TEST

TCase *dm_testdevs_tcase(void)
{
    TCase *tc = tcase_create("testdevs");

    tcase_add_test(tc, test_pc_testdev_ports);
    tcase_add_test(tc, test_pc_testdev_irq_lines);
    tcase_add_test(tc, test_pci_testdev);
    tcase_add_test(tc, test_fw_cfg_ports);
    tcase_add_test(tc, test_fw_cfg_dma);
    tcase_add_test(tc, test_fw_cfg_user_file);
    return tc;
}
