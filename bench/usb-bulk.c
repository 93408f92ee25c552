// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb-bulk: bulk round trips per second and bulk throughput through Ferry's
 * usbredir path (libusbredirhost on the event loop, a test usbredir guest on
 * a unix socket in another thread, so QEMU's speed is not measured) against
 * direct libusb on the same simulated device (the vendor loopback of
 * tests/usb/sim) in the same run.  Run under umockdev-wrapper:
 *     umockdev-wrapper build/bench/usb-bulk [SECONDS]
 */
#include <event2/event.h>
#include <glib.h>
#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redir-client.h"
#include "usb/ferry-usb.h"
#include "usbsim.h"
#include "bench/bench.h"

#define SMALL 64
#define LARGE (64 * 1024)
#define WARMUP 50

struct figure {
    double rtt_per_s;
    double mib_per_s;
};

/* One loopback round: OUT len bytes, IN len bytes. */
static int direct_round(libusb_device_handle *h, uint8_t *buf, int len)
{
    int done = 0, r;

    r = libusb_bulk_transfer(h, 0x01, buf, len, &done, 5000);
    if (r == 0)
        r = libusb_bulk_transfer(h, 0x82, buf, len, &done, 5000);
    return r == 0 && done == len ? 0 : -1;
}

static int bench_direct(double secs, struct figure *f)
{
    libusb_context *ctx;
    libusb_device_handle *h;
    uint8_t *buf = g_malloc0(LARGE);
    double t0;
    long n;
    int rc = -1;

    if (libusb_init(&ctx) < 0)
        return -1;
    h = libusb_open_device_with_vid_pid(ctx, USBSIM_VID, USBSIM_PID_VENDOR);
    if (!h || libusb_claim_interface(h, 0) < 0)
        goto out;
    for (int i = 0; i < WARMUP; i++)
        if (direct_round(h, buf, SMALL) < 0)
            goto out;
    t0 = bench_now_s();
    for (n = 0; bench_now_s() - t0 < secs; n++)
        if (direct_round(h, buf, SMALL) < 0)
            goto out;
    f->rtt_per_s = (double)n / (bench_now_s() - t0);
    t0 = bench_now_s();
    for (n = 0; bench_now_s() - t0 < secs; n++)
        if (direct_round(h, buf, LARGE) < 0)
            goto out;
    f->mib_per_s = (double)n * 2 * LARGE / (1 << 20) / (bench_now_s() - t0);
    rc = 0;
out:
    if (h) {
        libusb_release_interface(h, 0);
        libusb_close(h);
    }
    libusb_exit(ctx);
    g_free(buf);
    return rc;
}

/* ---- through Ferry ------------------------------------------------------ */

struct guest {
    char addr[128];
    double secs;
    struct figure f;
    int rc;
    volatile int stop;
};

static int guest_wait(struct redirc *c, uint64_t id, uint8_t *buf, size_t *len)
{
    int status;

    for (int i = 0; i < 50000; i++) {
        if (redirc_done(c, id, &status, buf, len))
            return status == 0 ? 0 : -1;
        if (redirc_step(c, 100) < 0)
            return -1;
    }
    return -1;
}

static int guest_round(struct redirc *c, uint64_t *id, uint8_t *buf, uint32_t len)
{
    size_t got = len;

    redirc_bulk(c, ++*id, 0x01, buf, len);
    if (guest_wait(c, *id, NULL, NULL) < 0)
        return -1;
    redirc_bulk(c, ++*id, 0x82, NULL, len);
    if (guest_wait(c, *id, buf, &got) < 0 || got != len)
        return -1;
    return 0;
}

static gpointer guest_thread(gpointer arg)
{
    struct guest *g = arg;
    char err[FERRY_USB_ERR_MAX];
    int fd = ferry_usb_connect(g->addr, err, sizeof(err));
    uint8_t *buf = g_malloc0(LARGE);
    struct redirc *c;
    uint64_t id = 0;
    double t0;
    long n;

    g->rc = -1;
    if (fd < 0)
        goto out;
    c = redirc_new(fd);
    while (!redirc_connected(c))
        if (redirc_step(c, 100) < 0)
            goto done;
    for (int i = 0; i < WARMUP; i++)
        if (guest_round(c, &id, buf, SMALL) < 0)
            goto done;
    t0 = bench_now_s();
    for (n = 0; bench_now_s() - t0 < g->secs; n++)
        if (guest_round(c, &id, buf, SMALL) < 0)
            goto done;
    g->f.rtt_per_s = (double)n / (bench_now_s() - t0);
    t0 = bench_now_s();
    for (n = 0; bench_now_s() - t0 < g->secs; n++)
        if (guest_round(c, &id, buf, LARGE) < 0)
            goto done;
    g->f.mib_per_s = (double)n * 2 * LARGE / (1 << 20) / (bench_now_s() - t0);
    g->rc = 0;
done:
    redirc_free(c);
out:
    g_free(buf);
    g->stop = 1;
    return NULL;
}

static void nolog(void *o, enum ferry_log_level l, const char *m)
{
    if (l <= FERRY_LOG_WARNING)
        fprintf(stderr, "usb-bulk: %s\n", m);
}

static int bench_ferry(double secs, const char *dir, struct figure *f)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;
    struct ferry_usb_service_ops ops = { .log = nolog };
    struct ferry_usb_service *svc;
    struct guest g = { .secs = secs };
    char err[FERRY_USB_ERR_MAX];
    GThread *t;

    event_config_avoid_method(cfg, "epoll");   /* umockdev nodes are regular files */
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (ferry_usb_service_new(b, dir, &ops, NULL, &svc) < 0)
        return -1;
    snprintf(g.addr, sizeof(g.addr), "unix:%s/bench.sock", dir);
    if (ferry_usb_service_share(svc, "1d50:6103", g.addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "usb-bulk: %s\n", err);
        ferry_usb_service_free(svc);
        event_base_free(b);
        return -1;
    }
    t = g_thread_new("guest", guest_thread, &g);
    while (!g.stop)
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    g_thread_join(t);
    ferry_usb_service_free(svc);
    event_base_free(b);
    *f = g.f;
    return g.rc;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    struct figure direct = { 0 }, ferry = { 0 };
    char dir[] = "/tmp/ferry-usb-bench-XXXXXX";
    struct usbsim *sim;

    if (secs <= 0)
        secs = 3.0;
    sim = usbsim_new();
    if (!sim) {
        fprintf(stderr, "usb-bulk: run me under umockdev-wrapper\n");
        return 77;
    }
    if (!usbsim_add(sim, USBSIM_VENDOR, "1-1", "BENCH") || !g_mkdtemp(dir))
        return 1;
    bench_print_header();
    printf("device: simulated vendor loopback (umockdev)\n");
    if (bench_direct(secs, &direct) < 0) {
        fprintf(stderr, "usb-bulk: direct libusb run failed\n");
        return 1;
    }
    printf("direct libusb:  %8.0f round trips/s (%d bytes), %8.1f MiB/s (%d KiB out+in)\n",
           direct.rtt_per_s, SMALL, direct.mib_per_s, LARGE / 1024);
    if (bench_ferry(secs, dir, &ferry) < 0) {
        fprintf(stderr, "usb-bulk: ferry usbredir run failed\n");
        return 1;
    }
    printf("ferry usbredir: %8.0f round trips/s (%d bytes), %8.1f MiB/s (%d KiB out+in)\n",
           ferry.rtt_per_s, SMALL, ferry.mib_per_s, LARGE / 1024);
    usbsim_free(sim);
    rmdir(dir);
    printf("ratio ferry/direct: round trips %.2f, throughput %.2f (goal >= 0.9)\n",
           ferry.rtt_per_s / direct.rtt_per_s, ferry.mib_per_s / direct.mib_per_s);
    return 0;
}
