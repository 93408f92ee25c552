/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-bar-rtt: BAR register read round trips per second to a device
 * hosted by a stock QEMU in -machine x-remote (RTL8139, IDR0 through its
 * I/O BAR and its MMIO BAR, over mpqemu), against the same kind of register
 * read served in-process by a trivial local register file behind the same
 * kind of dispatch (bounds check, function pointer), in the same run.
 *
 *   build/bench/qemu-bar-rtt [seconds-per-figure [no-sandbox]]   (default 2)
 * Needs qemu-system-x86_64 in PATH (or FERRY_QEMU).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/qemu-remote.h"
#include "bench/bench.h"

#define IO_BAR   0xc000u
#define MMIO_BAR 0xfebf0000u

static void bench_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING && !strstr(msg, "has no peer"))
        fprintf(stderr, "%s\n", msg);
}

static const struct ferry_qemu_remote_ops ops = { .log = bench_log };

/* The baseline: a device inside the device model, a 256-byte register file. */
struct local_dev {
    uint64_t base, size;
    uint8_t regs[256];
};

typedef int (*bar_read_fn)(void *dev, bool io, uint64_t addr, unsigned size, uint64_t *val);

static int local_bar_read(void *opaque, bool io, uint64_t addr, unsigned size, uint64_t *val)
{
    struct local_dev *d = opaque;
    uint64_t v = 0;

    if (!io || addr < d->base || addr + size > d->base + d->size || size > 8)
        return -ENXIO;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)d->regs[addr - d->base + i] << (8 * i);
    *val = v;
    return 0;
}

static int remote_bar_read(void *opaque, bool io, uint64_t addr, unsigned size, uint64_t *val)
{
    return qemu_remote_bar_read(opaque, io, addr, size, val);
}

/* Reads for about secs seconds; returns reads per second. */
static double measure(bar_read_fn volatile fn, void *dev, bool io, uint64_t addr,
                      double secs, uint64_t expect)
{
    uint64_t n = 0, v = 0;
    double t0 = bench_now_s(), t;
    unsigned batch = 64;

    do {
        for (unsigned i = 0; i < batch; i++) {
            if (fn(dev, io, addr, 4, &v) < 0 || v != expect) {
                fprintf(stderr, "qemu-bar-rtt: read at %#llx gave %#llx, not %#llx\n",
                        (unsigned long long)addr, (unsigned long long)v,
                        (unsigned long long)expect);
                exit(1);
            }
        }
        n += batch;
        t = bench_now_s() - t0;
        if (t < secs / 100 && batch < (1u << 20))
            batch *= 2;
    } while (t < secs);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    struct ferry_qemu_remote_config cfg = {
        .qemu = getenv("FERRY_QEMU"), .device = "rtl8139", .id = "bench0",
        .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 10000,
        .start_timeout_ms = 30000,
    };
    struct event_base *base = event_base_new();
    struct ferry_qemu_remote *dev;
    struct local_dev local = { .base = IO_BAR, .size = 256 };
    double r_io, r_mmio, l_io;
    int memfd, rc;

    if (secs <= 0)
        secs = 2.0;
    cfg.no_sandbox = argc > 2 && !strcmp(argv[2], "no-sandbox");
    memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    if (!base || memfd < 0 || ftruncate(memfd, 16 << 20) < 0) {
        perror("qemu-bar-rtt: setup");
        return 1;
    }
    rc = qemu_remote_new(base, &cfg, &ops, NULL, &dev);
    if (!rc)
        rc = qemu_remote_add_ram(dev, memfd, 0, 16 << 20, 0);
    if (!rc)
        rc = qemu_remote_start(dev);
    if (rc < 0) {
        fprintf(stderr, "qemu-bar-rtt: cannot start rtl8139 in x-remote QEMU: %s\n",
                strerror(-rc));
        return 1;
    }
    qemu_remote_config_write(dev, 0x10, 4, IO_BAR);
    qemu_remote_config_write(dev, 0x14, 4, MMIO_BAR);
    qemu_remote_config_write(dev, 0x04, 2, 0x3);
    memcpy(local.regs, "\x52\x54\x00\x12\x34\x56", 6);

    bench_print_header();
    printf("device: rtl8139 in qemu-system-x86_64 -machine x-remote, pid %d, sandbox %s\n",
           (int)qemu_remote_pid(dev), cfg.no_sandbox ? "off" : "on");
    /* warm-up */
    measure(remote_bar_read, dev, true, IO_BAR, secs / 4, 0x12005452);
    measure(local_bar_read, &local, true, IO_BAR, secs / 4, 0x12005452);

    r_io = measure(remote_bar_read, dev, true, IO_BAR, secs, 0x12005452);
    r_mmio = measure(remote_bar_read, dev, false, MMIO_BAR, secs, 0x12005452);
    l_io = measure(local_bar_read, &local, true, IO_BAR, secs, 0x12005452);
    printf("qemu remote io bar read:   %.0f round trips/s (%.2f us each)\n", r_io, 1e6 / r_io);
    printf("qemu remote mmio bar read: %.0f round trips/s (%.2f us each)\n", r_mmio,
           1e6 / r_mmio);
    printf("in-process register read (baseline): %.0f reads/s (%.4f us each)\n", l_io,
           1e6 / l_io);
    printf("ratio in-process/qemu-remote (io): %.0f\n", l_io / r_io);
    qemu_remote_free(dev);
    close(memfd);
    event_base_free(base);
    return 0;
}
