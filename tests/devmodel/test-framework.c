// SPDX-License-Identifier: GPL-2.0-or-later
/* The framework: registry, decoding and dispatch, claims, interrupts, DMA, save/restore. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/devmodel/test-devmodel.h"

/* A probe device: one region (space, base, len, max) that records every access. */
struct probe {
    struct ferry_dm_region *r;
    struct ferry_dm_irq *irq;
    unsigned reads, writes;
    uint64_t last_off, last_val;
    unsigned last_size;
    uint8_t saved;
};

static uint64_t probe_read(void *opaque, uint64_t off, unsigned size)
{
    struct probe *p = opaque;

    p->reads++;
    p->last_off = off;
    p->last_size = size;
    return 0x1122334455667788ull >> (8 * (off & 7));
}

static void probe_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct probe *p = opaque;

    p->writes++;
    p->last_off = off;
    p->last_size = size;
    p->last_val = val;
}

static const struct ferry_dm_region_ops probe_ops[4] = {
    { probe_read, probe_write, 1 }, { probe_read, probe_write, 2 },
    { probe_read, probe_write, 4 }, { probe_read, probe_write, 8 },
};

static int probe_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                      void **state)
{
    uint64_t base, len, max, mmio, gsi, level;
    struct probe *p;
    int rc;

    if (dm_opts_get_u64(opts, "base", 0x1000, UINT64_MAX, &base) < 0 ||
        dm_opts_get_u64(opts, "len", 8, UINT64_MAX, &len) < 0 ||
        dm_opts_get_u64(opts, "max", 1, 8, &max) < 0 ||
        dm_opts_get_u64(opts, "mmio", 0, 1, &mmio) < 0 ||
        dm_opts_get_u64(opts, "gsi", 0, 31, &gsi) < 0 ||
        dm_opts_get_u64(opts, "level", 0, 1, &level) < 0)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    rc = dm_region_add(dev, mmio ? FERRY_DM_SPACE_MMIO : FERRY_DM_SPACE_PORT, base, len,
                             &probe_ops[max == 1 ? 0 : max == 2 ? 1 : max == 4 ? 2 : 3], p, 0,
                             &p->r);
    if (rc == 0 && gsi)
        rc = dm_irq_add(dev, (uint32_t)gsi, level ? FERRY_DM_IRQ_LEVEL : FERRY_DM_IRQ_EDGE,
                              &p->irq);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *state = p;
    return 0;
}

static void probe_exit(void *state)
{
    free(state);
}

static int probe_save(void *state, GByteArray *out)
{
    struct probe *p = state;

    g_byte_array_append(out, &p->saved, 1);
    return 0;
}

static int probe_restore(void *state, const uint8_t *buf, size_t len)
{
    struct probe *p = state;

    if (len != 1)
        return -EINVAL;
    p->saved = buf[0];
    return 0;
}

static const struct ferry_dm_device_type probe_device = {
    .name = "probe",
    .desc = "test probe",
    .hotplug = true,
    .init = probe_init,
    .exit = probe_exit,
    .save = probe_save,
    .restore = probe_restore,
};
FERRY_DM_DEVICE_TYPE(probe_device)

static const struct ferry_dm_device_type fixed_device = {
    .name = "fixed",
    .desc = "test device without hotplug",
    .init = probe_init,
    .exit = probe_exit,
};
FERRY_DM_DEVICE_TYPE(fixed_device)

static struct probe *probe_of(struct tb *t, const char *id)
{
    return dm_device_state(dm_device_find(t->dm, id));
}

START_TEST(test_dispatch_lookup)
{
    struct tb t;
    struct ferry_dm_stats st;

    tb_init(&t, false);
    tb_add(&t, "probe", "a", "base=0x1000,len=8,max=1");
    tb_add(&t, "probe", "b", "base=0x1008,len=4,max=4");
    tb_add(&t, "probe", "m", "mmio=1,base=0xfe000000,len=0x1000,max=8");
    struct probe *a = probe_of(&t, "a"), *b = probe_of(&t, "b"), *m = probe_of(&t, "m");

    tb_out(&t, 0x1003, 1, 0xab);
    ck_assert_uint_eq(a->writes, 1);
    ck_assert_uint_eq(a->last_off, 3);
    ck_assert_uint_eq(a->last_val, 0xab);
    ck_assert_uint_eq(tb_in(&t, 0x100a, 2), 0x5566);   /* offset 2 of b, 2 bytes */
    ck_assert_uint_eq(b->last_off, 2);
    ck_assert_uint_eq(b->last_size, 2);
    /* Nothing at 0x2000: the bus floats. */
    ck_assert_uint_eq(tb_in(&t, 0x2000, 1), 0xff);
    ck_assert_uint_eq(tb_in(&t, 0x2000, 4), 0xffffffff);
    /* A word access over a byte-wide region: two byte accesses. */
    a->reads = 0;
    ck_assert_uint_eq(tb_in(&t, 0x1000, 2), 0x7788);
    ck_assert_uint_eq(a->reads, 2);
    /* A dword straddling a's end into b: bytes from each. */
    a->reads = b->reads = 0;
    uint64_t v = tb_in(&t, 0x1006, 4);
    ck_assert_uint_eq(a->reads, 2);
    ck_assert_uint_eq(b->reads, 2);
    ck_assert_uint_eq(v, 0x77881122);
    /* Straddling the end of the port space floats high past 0xffff. */
    ck_assert_uint_eq(tb_in(&t, 0xfffe, 4), 0xffffffff);
    /* MMIO, 8 bytes. */
    ioreq_t req = { .addr = 0xfe000010, .size = 8, .count = 1, .dir = IOREQ_WRITE,
                    .type = IOREQ_TYPE_COPY, .data = 0x0102030405060708ull };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(m->last_val, 0x0102030405060708ull);
    ck_assert_uint_eq(m->last_off, 0x10);
    dm_get_stats(t.dm, &st);
    ck_assert_uint_ge(st.split, 2);
    ck_assert_uint_ge(st.unclaimed, 1);
    tb_fini(&t);
}
END_TEST

START_TEST(test_hostile_requests)
{
    struct tb t;
    struct ferry_dm_stats st;

    tb_init(&t, false);
    tb_add(&t, "probe", "a", "base=0x1000,len=8,max=4");
    struct probe *a = probe_of(&t, "a");

    /* Sizes that no instruction makes: all ones, nothing reaches the device. */
    ioreq_t req = { .addr = 0x1000, .size = 3, .count = 1, .dir = IOREQ_READ,
                    .type = IOREQ_TYPE_PIO };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, 0xffffff);
    req = (ioreq_t){ .addr = 0x1000, .size = 8, .count = 1, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_PIO };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, UINT64_MAX);
    req = (ioreq_t){ .addr = 0x1000, .size = 0xffffffff, .count = 1, .dir = IOREQ_WRITE,
                     .type = IOREQ_TYPE_PIO };
    dm_handle_ioreq(t.dm, 0, &req);
    /* A port above 0xffff, an unknown type, a huge count without a pointer. */
    req = (ioreq_t){ .addr = 0x11000, .size = 1, .count = 1, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_PIO };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, 0xff);
    req = (ioreq_t){ .addr = 0x1000, .size = 1, .count = 1, .dir = IOREQ_READ, .type = 99 };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, UINT64_MAX);
    req = (ioreq_t){ .addr = 0x1000, .size = 1, .count = 1000000, .dir = IOREQ_WRITE,
                     .type = IOREQ_TYPE_PIO, .data = 7 };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(a->writes, 1);
    /* MMIO at the very top of the address space does not wrap. */
    req = (ioreq_t){ .addr = UINT64_MAX - 1, .size = 8, .count = 1, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_COPY };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(req.data, UINT64_MAX);
    /* String I/O with a data pointer but no guest memory: nothing happens. */
    a->writes = 0;
    req = (ioreq_t){ .addr = 0x1000, .size = 1, .count = 4, .dir = IOREQ_WRITE,
                     .type = IOREQ_TYPE_PIO, .data_is_ptr = 1, .data = 0x1000 };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(a->writes, 0);
    /* PCI config without a bus, and beyond 4 KiB. */
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0, 4), 0xffffffff);
    ck_assert_uint_eq(tb_cfg_read(&t, 3, 0, 0xffe, 4), 0xffffffff);
    dm_get_stats(t.dm, &st);
    ck_assert_uint_ge(st.bad, 5);
    tb_fini(&t);
}
END_TEST

START_TEST(test_claims_follow_regions)
{
    struct tb t;

    tb_init(&t, false);
    tb_add(&t, "probe", "a", "base=0x1000,len=8");
    ck_assert_uint_eq(t.nr_claims, 0);          /* nothing before start */
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x1000, 0x1007));
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    /* Hotplug after start claims at once; overlap is refused. */
    tb_add(&t, "probe", "b", "mmio=1,base=0xd0000000,len=0x1000");
    ck_assert(tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0000000, 0xd0000fff));
    ck_assert_int_eq(tb_try_add(&t, "probe", "c", "base=0x1004,len=8"), -EEXIST);
    ck_assert_ptr_null(dm_device_find(t.dm, "c"));
    /* A refused claim fails the device add and leaves nothing behind. */
    t.claim_fail = -EEXIST;
    ck_assert_int_eq(tb_try_add(&t, "probe", "d", "base=0x3000,len=8"), -EEXIST);
    ck_assert_uint_eq(tb_in(&t, 0x3000, 1), 0xff);
    /* Moving a region moves its claim. */
    struct probe *b = probe_of(&t, "b");
    ck_assert_int_eq(dm_region_move(b->r, 0xd0001000), 0);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0000000, 0xd0000fff));
    ck_assert(tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0001000, 0xd0001fff));
    ck_assert_int_eq(dm_region_unmap(b->r), 0);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0001000, 0xd0001fff));
    ck_assert_int_eq(dm_region_map(b->r), 0);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0001000, 0xd0001fff));
    /* Removing a device releases its claims; a fixed one cannot go at run time. */
    ck_assert_int_eq(dm_device_remove(t.dm, "b"), 0);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_MMIO, 0xd0001000, 0xd0001fff));
    ck_assert_int_eq(tb_try_add(&t, "fixed", "f", "base=0x4000"), -EBUSY);
    ck_assert_int_eq(dm_device_remove(t.dm, "nope"), -ENOENT);
    tb_fini(&t);
}
END_TEST

START_TEST(test_device_ids)
{
    struct tb t;

    tb_init(&t, false);
    ck_assert_int_eq(tb_try_add(&t, "no-such-type", NULL, NULL), -ENOENT);
    ck_assert_int_eq(tb_try_add(&t, "probe", "bad id", NULL), -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "probe", "0123456789012345678901234567890123456789", NULL),
                     -EINVAL);
    ck_assert_int_eq(tb_try_add(&t, "probe", "", NULL), -EINVAL);
    tb_add(&t, "probe", "x", "base=0x1000");
    ck_assert_int_eq(tb_try_add(&t, "probe", "x", "base=0x2000"), -EEXIST);
    ck_assert_int_eq(tb_try_add(&t, "probe", NULL, "base=0x2000"), 0);
    ck_assert_ptr_nonnull(dm_device_find(t.dm, "probe0"));
    ck_assert_int_eq(tb_try_add(&t, "probe", NULL, "base=0x10000"), -EINVAL);  /* past 0xffff */
    ck_assert_int_eq(tb_try_add(&t, "probe", NULL, "base=0x1000,len=0"), -EINVAL);
    ck_assert_uint_eq(dm_device_count(t.dm), 2);
    tb_fini(&t);
}
END_TEST

START_TEST(test_opts)
{
    struct ferry_dm_opts *o = NULL;
    uint64_t v;
    const char *bad = NULL;
    static const char *const known[] = { "a", "path", "flag", NULL };

    ck_assert_int_eq(dm_opts_parse("a=0x10,path=/x,,y,flag", &o), 0);
    ck_assert_str_eq(dm_opts_get(o, "path"), "/x,y");
    ck_assert_str_eq(dm_opts_get(o, "flag"), "on");
    ck_assert_int_eq(dm_opts_get_u64(o, "a", 0, 0xff, &v), 0);
    ck_assert_uint_eq(v, 16);
    ck_assert_int_eq(dm_opts_get_u64(o, "a", 0, 0xf, &v), -EINVAL);
    ck_assert_int_eq(dm_opts_get_u64(o, "path", 0, 0xff, &v), -EINVAL);
    ck_assert_int_eq(dm_opts_get_u64(o, "missing", 42, 0xff, &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(dm_opts_check(o, known, &bad), 0);
    ck_assert_int_eq(dm_opts_set(o, "zz", "1"), 0);
    ck_assert_int_eq(dm_opts_check(o, known, &bad), -EINVAL);
    ck_assert_str_eq(bad, "zz");
    dm_opts_free(o);
    /* Too many options. */
    GString *s = g_string_new(NULL);
    for (int i = 0; i < FERRY_DM_OPTS_MAX + 1; i++)
        g_string_append_printf(s, "k%d=1,", i);
    ck_assert_int_eq(dm_opts_parse(s->str, &o), -E2BIG);
    g_string_free(s, TRUE);
}
END_TEST

START_TEST(test_irq_edge_irqfd)
{
    struct tb t;

    tb_init(&t, true);
    tb_add(&t, "probe", "a", "base=0x1000,gsi=5");
    struct probe *a = probe_of(&t, "a");
    ck_assert_int_eq(t.irqfd_fd[5], -1);        /* wired at start */
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_ge(t.irqfd_fd[5], 0);
    ck_assert_int_eq(t.resample_fd[5], -1);     /* edge: no resample */
    /* A device with its own eventfd wires it straight through. */
    ck_assert_int_eq(dm_irqfd_assign(t.dm, 11, 99, 98, true), 0);
    ck_assert_int_eq(t.irqfd_fd[11], 99);
    ck_assert_int_eq(dm_irqfd_assign(t.dm, 11, 99, 98, false), 0);
    dm_irq_set(a->irq, true);
    dm_irq_set(a->irq, true);             /* no new edge */
    ck_assert_uint_eq(tb_irqfd_count(&t, 5), 1);
    dm_irq_set(a->irq, false);
    dm_irq_set(a->irq, true);
    ck_assert_uint_eq(tb_irqfd_count(&t, 5), 1);
    ck_assert_uint_eq(dm_irq_count(a->irq), 2);
    /* An edge line is not shared. */
    ck_assert_int_eq(tb_try_add(&t, "probe", "b", "base=0x2000,gsi=5"), -EBUSY);
    tb_fini(&t);
}
END_TEST

static bool resampled(struct tb *t, void *arg)
{
    return *(uint64_t *)arg > 0;
}

START_TEST(test_irq_level_resample)
{
    struct tb t;
    uint64_t n = 0, one = 1;

    tb_init(&t, true);
    tb_add(&t, "probe", "a", "base=0x1000,gsi=9,level=1");
    tb_add(&t, "probe", "b", "base=0x2000,gsi=9,level=1");
    struct probe *a = probe_of(&t, "a"), *b = probe_of(&t, "b");
    dm_irq_set(a->irq, true);             /* before start: delivered at start */
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_ge(t.resample_fd[9], 0);
    ck_assert_uint_eq(tb_irqfd_count(&t, 9), 1);
    dm_irq_set(b->irq, true);             /* already asserted: nothing new */
    ck_assert_int_eq(read(t.irqfd_fd[9], &n, 8), -1);
    /* The guest EOIs while the line is still high: asserted again. */
    ck_assert_int_eq(write(t.resample_fd[9], &one, 8), 8);
    n = 0;
    struct timeval tv = { 0, 20000 };
    event_base_loopexit(t.base, &tv);
    event_base_dispatch(t.base);
    n = tb_irqfd_count(&t, 9);
    ck_assert_uint_eq(n, 1);
    /* Both sources low: an EOI brings nothing. */
    dm_irq_set(a->irq, false);
    dm_irq_set(b->irq, false);
    ck_assert_int_eq(write(t.resample_fd[9], &one, 8), 8);
    event_base_loopexit(t.base, &tv);
    event_base_dispatch(t.base);
    ck_assert_int_eq(read(t.irqfd_fd[9], &n, 8), -1);
    (void)resampled;
    /* A level GSI cannot become an edge one. */
    ck_assert_int_eq(tb_try_add(&t, "probe", "c", "base=0x3000,gsi=9"), -EBUSY);
    tb_fini(&t);
}
END_TEST

START_TEST(test_irq_line_fallback)
{
    struct tb t;

    tb_init(&t, false);                         /* the backend refuses irqfds */
    tb_add(&t, "probe", "e", "base=0x1000,gsi=4");
    tb_add(&t, "probe", "l1", "base=0x2000,gsi=10,level=1");
    tb_add(&t, "probe", "l2", "base=0x3000,gsi=10,level=1");
    struct probe *e = probe_of(&t, "e"), *l1 = probe_of(&t, "l1"), *l2 = probe_of(&t, "l2");
    ck_assert_int_eq(dm_start(t.dm), 0);
    dm_irq_set(e->irq, true);             /* an edge: a pulse */
    ck_assert_uint_eq(t.line_raises[4], 1);
    ck_assert(!t.line[4]);
    dm_irq_set(l1->irq, true);
    ck_assert(t.line[10]);
    dm_irq_set(l2->irq, true);
    dm_irq_set(l1->irq, false);
    ck_assert(t.line[10]);                      /* wired-OR: l2 still holds it */
    dm_irq_set(l2->irq, false);
    ck_assert(!t.line[10]);
    ck_assert_uint_eq(t.line_raises[10], 1);
    /* Removing an asserting device drops its share of the line. */
    dm_irq_set(l2->irq, true);
    ck_assert_int_eq(dm_device_remove(t.dm, "l2"), 0);
    ck_assert(!t.line[10]);
    tb_fini(&t);
}
END_TEST

START_TEST(test_dma_and_string_io)
{
    struct tb t;
    int fd = memfd_create("guest", MFD_CLOEXEC);
    struct ioreq_msg_memory_reply regions = { .nr_regions = 2 };
    uint8_t buf[16];

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 0x3000), 0);
    regions.region[0].gpa = 0;
    regions.region[0].size = 0x1000;
    regions.region[0].offset = 0;
    regions.region[1].gpa = 0x100000;
    regions.region[1].size = 0x2000;
    regions.region[1].offset = 0x1000;
    tb_init(&t, false);
    tb_add(&t, "probe", "a", "base=0x1000,len=1");
    struct probe *a = probe_of(&t, "a");
    ck_assert_int_eq(dm_dma_read(t.dm, 0, buf, 4), -ENODEV);
    ck_assert_int_eq(dm_guest_memory_fd(t.dm, &regions), -ENODEV);
    ck_assert_int_eq(dm_set_guest_memory(t.dm, fd, &regions), 0);
    close(fd);
    struct ioreq_msg_memory_reply back;
    int kept = dm_guest_memory_fd(t.dm, &back);
    ck_assert_int_ge(kept, 0);
    ck_assert_uint_eq(back.nr_regions, 2);
    ck_assert_int_eq(pwrite(kept, "wxyz", 4, 0x1000 + 0xffc), 4);  /* the same RAM */
    ck_assert_int_eq(dm_dma_read(t.dm, 0x100ffc, buf, 4), 0);
    ck_assert_int_eq(memcmp(buf, "wxyz", 4), 0);
    ck_assert_int_eq(dm_dma_write(t.dm, 0x100ffc, "abcd", 4), 0);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x100ffc, buf, 4), 0);
    ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
    /* Outside RAM, straddling a region's end, wrapping: refused, nothing copied. */
    ck_assert_int_eq(dm_dma_read(t.dm, 0x1000, buf, 1), -EFAULT);
    ck_assert_int_eq(dm_dma_read(t.dm, 0xffe, buf, 4), -EFAULT);
    ck_assert_int_eq(dm_dma_read(t.dm, 0x101ffe, buf, 4), -EFAULT);
    ck_assert_int_eq(dm_dma_read(t.dm, UINT64_MAX - 1, buf, 4), -EFAULT);
    /* rep outsb from guest RAM: four writes of the bytes in order. */
    ioreq_t req = { .addr = 0x1000, .size = 1, .count = 4, .dir = IOREQ_WRITE,
                    .type = IOREQ_TYPE_PIO, .data_is_ptr = 1, .data = 0x100ffc };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(a->writes, 4);
    ck_assert_uint_eq(a->last_val, 'd');
    /* rep insb into guest RAM, backwards (DF=1). */
    req = (ioreq_t){ .addr = 0x1000, .size = 1, .count = 2, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_PIO, .data_is_ptr = 1, .df = 1, .data = 0x10 };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_int_eq(dm_dma_read(t.dm, 0xf, buf, 2), 0);
    ck_assert_uint_eq(buf[0], 0x88);
    ck_assert_uint_eq(buf[1], 0x88);
    /* A string op that runs out of RAM stops there. */
    a->writes = 0;
    req = (ioreq_t){ .addr = 0x1000, .size = 1, .count = 8, .dir = IOREQ_WRITE,
                     .type = IOREQ_TYPE_PIO, .data_is_ptr = 1, .data = 0xffc };
    dm_handle_ioreq(t.dm, 0, &req);
    ck_assert_uint_eq(a->writes, 4);
    /* A malformed table is refused. */
    struct tb t2;
    tb_init(&t2, false);
    regions.nr_regions = IOREQ_MEMORY_MAX_REGIONS + 1;
    ck_assert_int_eq(dm_set_guest_memory(t2.dm, -1, &regions), -EINVAL);
    regions.nr_regions = 1;
    regions.region[0].offset = 123;
    ck_assert_int_eq(dm_set_guest_memory(t2.dm, -1, &regions), -EINVAL);
    tb_fini(&t2);
    tb_fini(&t);
}
END_TEST

START_TEST(test_save_restore)
{
    struct tb t;
    GByteArray *img = g_byte_array_new();

    tb_init(&t, false);
    tb_add(&t, "probe", "a", "base=0x1000");
    tb_add(&t, "probe", "b", "base=0x2000");
    probe_of(&t, "a")->saved = 7;
    probe_of(&t, "b")->saved = 9;
    ck_assert_int_eq(dm_save(t.dm, img), 0);
    probe_of(&t, "a")->saved = 0;
    probe_of(&t, "b")->saved = 0;
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), 0);
    ck_assert_uint_eq(probe_of(&t, "a")->saved, 7);
    ck_assert_uint_eq(probe_of(&t, "b")->saved, 9);
    /* Truncated or corrupted images are refused. */
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len - 1), -EBADMSG);
    img->data[0] = 40;
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -EBADMSG);
    img->data[0] = 1;
    img->data[1] = 'z';
    ck_assert_int_eq(dm_restore(t.dm, img->data, img->len), -ENOENT);
    g_byte_array_free(img, TRUE);
    tb_fini(&t);
}
END_TEST

/*
 * A guest that writes and reads garbage everywhere: every default device,
 * a PCI function, random ports/MMIO/config registers, sizes, counts, types
 * and string-I/O pointers, with a fixed seed.  Nothing may crash or touch
 * memory it should not (the ASan build checks that).
 */
START_TEST(test_random_ioreqs)
{
    static const uint16_t hot_ports[] = { 0x3f8, 0x70, 0xb000, 0xafe0, 0xcf9, 0x80, 0xf4,
                                          0xc000 };
    struct tb t;
    const char *seed = getenv("FERRY_TEST_SEED");      /* to explore other sequences */
    GRand *rng = g_rand_new_with_seed(seed ? (guint32)strtoul(seed, NULL, 0) : 0xfe77);
    int fd = memfd_create("guest", MFD_CLOEXEC);
    struct ioreq_msg_memory_reply regions = { .nr_regions = 1 };

    ck_assert_int_eq(ftruncate(fd, 0x10000), 0);
    regions.region[0].size = 0x10000;
    tb_init(&t, true);
    tb_add(&t, "pci-host", "pci", NULL);
    tb_add(&t, "uart", "com1", "out=null");
    tb_add(&t, "rtc", "rtc", NULL);
    tb_add(&t, "acpi-pm", "pm", NULL);
    tb_add(&t, "reset", "reset", NULL);
    tb_add(&t, "post", "post", NULL);
    tb_add(&t, "debug-exit", "debug-exit", NULL);
    tb_add(&t, "pci-test", "pt", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_set_guest_memory(t.dm, fd, &regions), 0);
    close(fd);
    /* Decode the test function's BARs somewhere first. */
    tb_cfg_write(&t, 1, 0, 0x10, 4, 0xc000);
    tb_cfg_write(&t, 1, 0, 0x14, 4, 0xd0000000);
    tb_cfg_write(&t, 1, 0, 0x04, 2, 0x0007);
    for (unsigned i = 0; i < 200000; i++) {
        uint32_t r = g_rand_int(rng);
        ioreq_t req = { .count = 1, .data = ((uint64_t)g_rand_int(rng) << 32) | g_rand_int(rng) };
        static const uint32_t sizes[] = { 1, 2, 4, 8, 1, 2, 4, 0, 3, 16, 0xffffffff };

        req.size = sizes[r % G_N_ELEMENTS(sizes)];
        req.dir = (r >> 4) & 1;
        switch ((r >> 5) % 8) {
        case 0: case 1: case 2:
            req.type = IOREQ_TYPE_PIO;
            req.addr = hot_ports[(r >> 8) % G_N_ELEMENTS(hot_ports)] + ((r >> 12) & 15);
            break;
        case 3:
            req.type = IOREQ_TYPE_PIO;
            req.addr = g_rand_int(rng) & ((r >> 8) & 1 ? 0xffff : 0x1ffff);
            break;
        case 4:
            req.type = IOREQ_TYPE_COPY;
            req.addr = (r >> 8) & 1 ? 0xd0000000 + (g_rand_int(rng) & 0x1fff)
                                    : ((uint64_t)g_rand_int(rng) << 32) | g_rand_int(rng);
            break;
        case 5:
            req.type = IOREQ_TYPE_PCI_CONFIG;
            req.addr = IOREQ_PCI_ADDR(g_rand_int(rng) & ((r >> 8) & 1 ? 0xffff : 0x0f),
                                      g_rand_int(rng) & 0x1fff);
            break;
        case 6:
            req.type = (r >> 8) & 1 ? IOREQ_TYPE_PIO : IOREQ_TYPE_COPY;
            req.addr = hot_ports[(r >> 9) % G_N_ELEMENTS(hot_ports)];
            req.data_is_ptr = 1;
            req.df = (r >> 12) & 1;
            req.count = g_rand_int(rng) % ((r >> 13) & 1 ? 40 : 0x20000);
            req.data = (r >> 14) & 1 ? g_rand_int(rng) % 0x12000 : req.data;
            break;
        default:
            req.type = (uint8_t)g_rand_int(rng);
            req.addr = g_rand_int(rng);
            break;
        }
        /* Keep the machine running: no power-off, reboot or debug exit here. */
        if (req.type == IOREQ_TYPE_PIO) {
            uint64_t last = req.addr + (req.size <= 8 ? req.size : 8) - 1;

            if ((req.addr <= 0xcf9 && last >= 0xcf9) || (req.addr <= 0xf7 && last >= 0xf4) ||
                (req.addr <= 0xb005 && last >= 0xb004))
                req.dir = IOREQ_READ;
        }
        dm_handle_ioreq(t.dm, 0, &req);
        if (req.dir == IOREQ_READ && !req.data_is_ptr && req.size >= 1 && req.size <= 4 &&
            req.type <= IOREQ_TYPE_PCI_CONFIG)
            ck_assert_uint_eq(req.data >> (8 * req.size), 0);  /* only size bytes answered */
    }
    ck_assert_uint_eq(t.shutdowns, 0);
    g_rand_free(rng);
    tb_fini(&t);
}
END_TEST

TCase *dm_framework_tcase(void)
{
    TCase *tc = tcase_create("framework");

    tcase_add_test(tc, test_dispatch_lookup);
    tcase_add_test(tc, test_hostile_requests);
    tcase_add_test(tc, test_claims_follow_regions);
    tcase_add_test(tc, test_device_ids);
    tcase_add_test(tc, test_opts);
    tcase_add_test(tc, test_irq_edge_irqfd);
    tcase_add_test(tc, test_irq_level_resample);
    tcase_add_test(tc, test_irq_line_fallback);
    tcase_add_test(tc, test_dma_and_string_io);
    tcase_add_test(tc, test_save_restore);
    tcase_add_test(tc, test_random_ioreqs);
    tcase_set_timeout(tc, 240);
    return tc;
}
