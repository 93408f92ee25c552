// SPDX-License-Identifier: GPL-2.0-or-later
/* The recording backend and helpers of the ferry-dm unit tests. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/devmodel/test-devmodel.h"

static int tb_claim_op(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end,
                       uint32_t flags)
{
    struct tb *t = opaque;

    if (t->claim_fail) {
        int rc = t->claim_fail;

        t->claim_fail = 0;
        return rc;
    }
    ck_assert_uint_lt(t->nr_claims, TB_CLAIMS_MAX);
    t->claims[t->nr_claims++] = (struct tb_claim){ type, start, end, true };
    return 0;
}

static int tb_release_op(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end)
{
    struct tb *t = opaque;

    for (unsigned i = 0; i < t->nr_claims; i++) {
        struct tb_claim *c = &t->claims[i];

        if (c->live && c->type == type && c->start == start && c->end == end) {
            c->live = false;
            return 0;
        }
    }
    ck_abort_msg("release of an unclaimed range 0x%llx-0x%llx", (unsigned long long)start,
                 (unsigned long long)end);
    return -ENOENT;
}

static int tb_irqfd_op(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    struct tb *t = opaque;

    if (!t->irqfd_ok)
        return -ENOSYS;
    ck_assert_uint_lt(gsi, TB_GSI_MAX);
    t->irqfd_fd[gsi] = assign ? fd : -1;
    t->resample_fd[gsi] = assign ? resample_fd : -1;
    return 0;
}

static int tb_irq_line_op(void *opaque, uint32_t gsi, bool level)
{
    struct tb *t = opaque;

    ck_assert_uint_lt(gsi, TB_GSI_MAX);
    t->line_calls[gsi]++;
    if (level && !t->line[gsi])
        t->line_raises[gsi]++;
    t->line[gsi] = level;
    return 0;
}

static void tb_log_op(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct tb *t = opaque;

    t->log_lines++;
    if (t->log)
        g_string_append_printf(t->log, "%s\n", msg);
}

static int tb_shutdown_op(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    struct tb *t = opaque;

    t->shutdowns++;
    t->reason = reason;
    t->code = code;
    return 0;
}

static int tb_sleep_op(void *opaque, enum ioreq_sleep_state state)
{
    struct tb *t = opaque;

    if (!t->sleep_ok)
        return -ENOSYS;
    if (t->sleep_fail)
        return t->sleep_fail;
    if (state == IOREQ_SLEEP_S3)
        t->suspends++;
    else
        t->wakes++;
    return 0;
}

static uint64_t tb_clock_op(void *opaque)
{
    struct tb *t = opaque;
    struct timespec ts;

    if (t->fake_clock)
        return t->clock_ns;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t tb_wall_op(void *opaque)
{
    struct tb *t = opaque;
    struct timespec ts;

    if (t->fake_clock)
        return t->wall_ns;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int tb_msi_op(void *opaque, uint64_t address, uint32_t data)
{
    struct tb *t = opaque;

    t->msis++;
    t->msi_address = address;
    t->msi_data = data;
    return t->msi_fail;
}

static const struct ferry_dm_backend_ops tb_ops = {
    .claim = tb_claim_op,
    .release = tb_release_op,
    .irqfd = tb_irqfd_op,
    .irq_line = tb_irq_line_op,
    .msi = tb_msi_op,
    .shutdown = tb_shutdown_op,
    .sleep = tb_sleep_op,
    .clock_ns = tb_clock_op,
    .wall_ns = tb_wall_op,
};

void tb_init(struct tb *t, bool irqfd_ok)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < TB_GSI_MAX; i++)
        t->irqfd_fd[i] = t->resample_fd[i] = -1;
    t->irqfd_ok = irqfd_ok;
    t->base = event_base_new();
    ck_assert_ptr_nonnull(t->base);
    struct ferry_dm_config cfg = { .name = "test", .base = t->base, .ops = &tb_ops,
                                   .opaque = t, .log = tb_log_op, .log_opaque = t };
    ck_assert_int_eq(dm_create(&cfg, &t->dm), 0);
}

void tb_fini(struct tb *t)
{
    dm_destroy(t->dm);
    event_base_free(t->base);
    for (unsigned i = 0; i < t->nr_claims; i++)
        ck_assert_msg(!t->claims[i].live, "claim 0x%llx-0x%llx left behind",
                      (unsigned long long)t->claims[i].start,
                      (unsigned long long)t->claims[i].end);
}

int tb_try_add(struct tb *t, const char *type, const char *id, const char *opts)
{
    struct ferry_dm_opts *o = NULL;
    int rc;

    if (opts)
        ck_assert_int_eq(dm_opts_parse(opts, &o), 0);
    rc = dm_device_add(t->dm, type, id, o, NULL);
    dm_opts_free(o);
    return rc;
}

struct ferry_dm_device *tb_add(struct tb *t, const char *type, const char *id, const char *opts)
{
    int rc = tb_try_add(t, type, id, opts);

    ck_assert_msg(rc == 0, "adding %s: %s", type, strerror(-rc));
    return dm_device_find(t->dm, id);
}

uint64_t tb_in(struct tb *t, uint16_t port, unsigned size)
{
    ioreq_t req = { .addr = port, .size = size, .count = 1, .dir = IOREQ_READ,
                    .type = IOREQ_TYPE_PIO, .data = 0x5a5a5a5a5a5a5a5aull };

    dm_handle_ioreq(t->dm, 0, &req);
    return req.data;
}

void tb_out(struct tb *t, uint16_t port, unsigned size, uint64_t val)
{
    ioreq_t req = { .addr = port, .size = size, .count = 1, .dir = IOREQ_WRITE,
                    .type = IOREQ_TYPE_PIO, .data = val };

    dm_handle_ioreq(t->dm, 0, &req);
}

bool tb_claimed(const struct tb *t, enum ioreq_range_type type, uint64_t start, uint64_t end)
{
    for (unsigned i = 0; i < t->nr_claims; i++)
        if (t->claims[i].live && t->claims[i].type == type && t->claims[i].start == start &&
            t->claims[i].end == end)
            return true;
    return false;
}

uint64_t tb_irqfd_count(struct tb *t, uint32_t gsi)
{
    uint64_t n = 0;

    ck_assert_int_ge(t->irqfd_fd[gsi], 0);
    if (read(t->irqfd_fd[gsi], &n, sizeof(n)) < 0)
        return 0;
    return n;
}

uint32_t tb_cfg_read(struct tb *t, unsigned dev, unsigned fn, unsigned reg, unsigned size)
{
    ioreq_t req = { .addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, dev, fn), reg), .size = size,
                    .count = 1, .dir = IOREQ_READ, .type = IOREQ_TYPE_PCI_CONFIG };

    dm_handle_ioreq(t->dm, 0, &req);
    return (uint32_t)req.data;
}

void tb_cfg_write(struct tb *t, unsigned dev, unsigned fn, unsigned reg, unsigned size,
                  uint32_t val)
{
    ioreq_t req = { .addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, dev, fn), reg), .size = size,
                    .count = 1, .dir = IOREQ_WRITE, .type = IOREQ_TYPE_PCI_CONFIG,
                    .data = val };

    dm_handle_ioreq(t->dm, 0, &req);
}

void tb_loop_until(struct tb *t, bool (*done)(struct tb *t, void *arg), void *arg, unsigned ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!done(t, arg)) {
        struct timeval tv = { .tv_sec = 0, .tv_usec = 2000 };

        event_base_loopexit(t->base, &tv);
        event_base_loop(t->base, 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
            (long)ms)
            break;
    }
}
