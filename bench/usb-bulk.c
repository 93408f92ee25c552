// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb-bulk: bulk transfers through Ferry's usbredir path against direct
 * libusb on the same device, in the same run, interleaved.
 *
 * Through Ferry: libferry-usb's usbredir endpoint (ferry_usb_redir:
 * libusbredirhost on a libevent loop, what ferry-dm runs for each device, in
 * this process, unconfined) on one end of a socketpair, the loop run
 * normally (event_base_dispatch); on the other end,
 * in a second thread, a usbredir guest side (tests/usb/redir-client) that
 * blocks in poll/recv as QEMU's usb-redir does, so QEMU's own speed is not
 * measured.  Direct: libusb on the same device (synchronous API for the
 * single transfers, the asynchronous API for the streaming figure).
 *
 * Figures, each the median of REPS repetitions (sides alternate first):
 *   urb    the device's cost of one minimal URB (a control GET_STATUS,
 *          direct libusb): with the simulator, what the simulator costs
 *   rtt64  round trips/s of 64 bytes (bulk OUT, then bulk IN)
 *   bulk64k MiB/s of one 64 KiB URB at a time (OUT, then IN)
 *   stream MiB/s with DEPTH loopback rounds in flight (each a 64 KiB OUT and
 *          a 64 KiB IN; what usb-storage and QEMU's usb-redir do): the client
 *          sends DEPTH pairs of bulk packets before it waits for replies;
 *          direct libusb queues the same with the asynchronous API
 *   cpu    the process's cpu share while measuring, and for the Ferry side
 *          its loop thread's and the guest side's thread's
 * The last line is the ratios ferry/direct of the medians.  (The usb
 * suite's gadget test, tests/usb/gadget-e2e.c, prints one more figure
 * through a confined ferry-dm process: 64 KiB round trips.)
 *
 * Devices:
 *   umockdev-wrapper build/bench/usb-bulk [OPTIONS]
 *       the simulated vendor loopback of tests/usb/sim (0x01 -> 0x82).
 *       Every figure there is bound by the simulator (an RPC to its worker
 *       thread per usbfs ioctl, 160-330 us on an idle machine; the urb line
 *       says what it cost in this run).  Its usbfs node is a regular file,
 *       always ready: libusb and Ferry's loop (poll backend) both reap
 *       without sleeping in poll, paced by those RPCs.
 *   build/bench/usb-bulk --device VID:PID [--iface N] [OPTIONS]
 *       a real device whose interface N (default 0) loops bulk OUT back to
 *       bulk IN, e.g. Linux's Loopback gadget function; bench/usb-bulk-gadget
 *       boots one (dummy_hcd + configfs in a QEMU TCG guest) and runs this.
 * Options: --reps N (5), --seconds S per figure and side (1), --depth D (4;
 * the simulator buffers at most 4 rounds), --side direct|ferry (one side
 * alone, to profile it: no baseline then, the ratios are meaningless), --only
 * rtt64|bulk64k|stream (that figure alone, with the rounds the Ferry side made:
 * `strace -f -c` per round; the other figures then read 0), --guest-side
 * thread|loop (thread: the usbredir guest side in a thread of its own,
 * blocking in poll as QEMU does in its process; loop: on Ferry's loop
 * thread, running Ferry's loop whenever it waits, so the Ferry side has no
 * thread hop, as direct libusb has none: Ferry's own cost without the
 * guest side's scheduling).
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <libusb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redir-client.h"
#include "usb/ferry-usb.h"
#include "usbsim.h"
#include "bench/bench.h"

#define SMALL     64
#define LARGE     (64 * 1024)
#define WARMUP    20
#define DEPTH_MAX 32
#define WAIT_MS   10000         /* one transfer; generous for a TCG guest */

/* F_CPU: the process; F_LOOP / F_GUEST: Ferry's loop thread and the guest
 * side's thread (through Ferry only), % of one cpu over the three figures */
/* F_ROUNDS: with --only, the rounds (OUT+IN pairs) that figure made */
enum { F_URB, F_RTT, F_BULK, F_STREAM, F_CPU, F_LOOP, F_GUEST, F_ROUNDS, F_N };

struct cfg {
    uint16_t vid, pid;
    int iface;
    uint8_t ep_out, ep_in;
    double secs;
    int reps, depth;
    bool sim;
    bool skip_direct, skip_ferry;   /* --side: one side alone, for profiling */
    int only;                       /* --only: one figure (F_RTT...), for strace; 0: all */
    bool guest_on_loop;             /* --guest-side loop: the client on Ferry's loop thread */
};

static bool want(const struct cfg *c, int fig)
{
    return !c->only || c->only == fig;
}

struct run {                    /* one side's figures of one repetition */
    double v[F_N];
};

/* CPU time of the whole process (every thread), in seconds. */
static double cpu_now_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double thread_cpu_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- direct libusb ---------------------------------------------------------- */

static int direct_round(libusb_device_handle *h, const struct cfg *c, uint8_t *buf, int len)
{
    int done = 0, r;

    r = libusb_bulk_transfer(h, c->ep_out, buf, len, &done, WAIT_MS);
    if (r == 0)
        r = libusb_bulk_transfer(h, c->ep_in, buf, len, &done, WAIT_MS);
    return r == 0 && done == len ? 0 : -1;
}

struct dslot {
    struct dstream *s;
    struct libusb_transfer *out, *in;
    int pending;                /* transfers of this round not yet completed */
};

struct dstream {
    const struct cfg *c;
    struct dslot slot[DEPTH_MAX];
    double end;
    uint64_t bytes;
    int active, failed;
};

static void dslot_submit(struct dslot *sl)
{
    sl->pending = 2;
    if (libusb_submit_transfer(sl->out) < 0) {
        sl->pending = 0;
        sl->s->failed = 1;
        return;
    }
    sl->s->active++;
    if (libusb_submit_transfer(sl->in) < 0) {
        sl->pending = 1;        /* the OUT still completes */
        sl->s->failed = 1;
    }
}

static void LIBUSB_CALL dstream_done(struct libusb_transfer *t)
{
    struct dslot *sl = t->user_data;
    struct dstream *s = sl->s;

    if (t->status != LIBUSB_TRANSFER_COMPLETED || t->actual_length != LARGE)
        s->failed = 1;
    s->bytes += (uint64_t)t->actual_length;
    if (--sl->pending)
        return;
    s->active--;
    if (!s->failed && bench_now_s() < s->end)
        dslot_submit(sl);
}

static double direct_stream(libusb_context *ctx, libusb_device_handle *h, const struct cfg *c)
{
    struct dstream s = { .c = c };
    double t0, rate = -1;

    for (int i = 0; i < c->depth; i++) {
        struct dslot *sl = &s.slot[i];
        sl->s = &s;
        sl->out = libusb_alloc_transfer(0);
        sl->in = libusb_alloc_transfer(0);
        libusb_fill_bulk_transfer(sl->out, h, c->ep_out, g_malloc0(LARGE), LARGE, dstream_done,
                                  sl, WAIT_MS);
        libusb_fill_bulk_transfer(sl->in, h, c->ep_in, g_malloc0(LARGE), LARGE, dstream_done,
                                  sl, WAIT_MS);
    }
    t0 = bench_now_s();
    s.end = t0 + c->secs;
    for (int i = 0; i < c->depth && !s.failed; i++)
        dslot_submit(&s.slot[i]);
    while (s.active > 0)
        if (libusb_handle_events(ctx) < 0)
            break;
    if (!s.failed && s.active == 0)
        rate = (double)s.bytes / (1 << 20) / (bench_now_s() - t0);
    for (int i = 0; i < c->depth; i++) {
        g_free(s.slot[i].out->buffer);
        g_free(s.slot[i].in->buffer);
        libusb_free_transfer(s.slot[i].out);
        libusb_free_transfer(s.slot[i].in);
    }
    return rate;
}

static int bench_direct(const struct cfg *c, struct run *f)
{
    libusb_context *ctx;
    libusb_device_handle *h;
    uint8_t *buf = g_malloc0(LARGE), st[2];
    double t0, cpu0, wall0;
    long n;
    int rc = -1;

    if (libusb_init(&ctx) < 0)
        return -1;
    h = libusb_open_device_with_vid_pid(ctx, c->vid, c->pid);
    if (!h || libusb_claim_interface(h, c->iface) < 0) {
        fprintf(stderr, "usb-bulk: direct libusb: cannot open %04x:%04x and claim interface "
                "%d\n", c->vid, c->pid, c->iface);
        goto out;
    }
    for (int i = 0; i < WARMUP; i++)
        if (direct_round(h, c, buf, SMALL) < 0)
            goto out;
    /* one minimal URB: GET_STATUS of the device */
    cpu0 = cpu_now_s();
    wall0 = t0 = bench_now_s();
    for (n = 0; bench_now_s() - t0 < c->secs; n++)
        if (libusb_control_transfer(h, 0x80, 0, 0, 0, st, 2, WAIT_MS) != 2)
            goto out;
    f->v[F_URB] = (bench_now_s() - t0) / (double)n * 1e6;
    t0 = bench_now_s();
    for (n = 0; want(c, F_RTT) && bench_now_s() - t0 < c->secs; n++)
        if (direct_round(h, c, buf, SMALL) < 0)
            goto out;
    f->v[F_RTT] = (double)n / (bench_now_s() - t0);
    t0 = bench_now_s();
    for (n = 0; want(c, F_BULK) && bench_now_s() - t0 < c->secs; n++)
        if (direct_round(h, c, buf, LARGE) < 0)
            goto out;
    f->v[F_BULK] = (double)n * 2 * LARGE / (1 << 20) / (bench_now_s() - t0);
    f->v[F_STREAM] = want(c, F_STREAM) ? direct_stream(ctx, h, c) : 0;
    f->v[F_CPU] = (cpu_now_s() - cpu0) / (bench_now_s() - wall0) * 100;
    rc = f->v[F_STREAM] > 0 || !want(c, F_STREAM) ? 0 : -1;
out:
    if (rc < 0)
        fprintf(stderr, "usb-bulk: direct libusb run failed\n");
    if (h) {
        libusb_release_interface(h, c->iface);
        libusb_close(h);
    }
    libusb_exit(ctx);
    g_free(buf);
    return rc;
}

/* ---- the usbredir guest side (QEMU's place), in its own thread -------------- */

struct guest {
    const struct cfg *c;
    struct event_base *loop;    /* --guest-side loop: Ferry's loop, run while waiting */
    struct event *wake;         /* ... and the channel's readiness in it */
    int fd, done_fd;            /* the channel; written once finished */
    clockid_t loop_clock;       /* cpu clock of the thread running Ferry's loop */
    struct run f;
    int rc;
};

/* Wait for the peer: in poll (another thread, as QEMU would), or, with
 * --guest-side loop, by running Ferry's loop once in this same thread until
 * it or the channel has something; then read what came. */
static int guest_step(struct guest *g, struct redirc *rc)
{
    if (!g->loop)
        return redirc_step(rc, WAIT_MS);
    if (redirc_step(rc, 0) < 0)
        return -1;
    event_base_loop(g->loop, EVLOOP_ONCE);
    return redirc_step(rc, 0);
}

static void on_guest_readable(evutil_socket_t fd, short what, void *arg)
{
    /* only wakes the loop: guest_step reads */
}

/* Block (poll) until transfer id completes; its status, -1 on timeout. */
static int guest_wait(struct guest *g, struct redirc *rc, uint64_t id, uint8_t *buf, size_t *len)
{
    double end = bench_now_s() + WAIT_MS / 1000.0;
    int status;

    while (!redirc_done(rc, id, &status, buf, len)) {
        if (bench_now_s() > end || guest_step(g, rc) < 0)
            return -1;
    }
    return status;
}

static int guest_round(struct guest *g, struct redirc *rc, const struct cfg *c, uint64_t *id, uint8_t *buf,
                       uint32_t len)
{
    size_t got = len;

    redirc_bulk(rc, ++*id, c->ep_out, buf, len);
    if (guest_wait(g, rc, *id, NULL, NULL) != 0)
        return -1;
    redirc_bulk(rc, ++*id, c->ep_in, NULL, len);
    if (guest_wait(g, rc, *id, buf, &got) != 0 || got != len)
        return -1;
    return 0;
}

/* DEPTH rounds in flight: each slot is a bulk OUT and a bulk IN sent
 * together; a slot whose two replies are in is sent again. */
static double guest_stream(struct guest *g, struct redirc *rc, const struct cfg *c, uint64_t *id, uint8_t *buf,
                           double *rounds)
{
    uint64_t out_id[DEPTH_MAX], in_id[DEPTH_MAX], bytes = 0;
    bool out_busy[DEPTH_MAX], in_busy[DEPTH_MAX];
    int active = 0, failed = 0, status;
    double t0 = bench_now_s(), end = t0 + c->secs, deadline;

    for (int i = 0; i < c->depth; i++) {
        out_id[i] = ++*id;
        in_id[i] = ++*id;
        redirc_bulk(rc, out_id[i], c->ep_out, buf, LARGE);
        redirc_bulk(rc, in_id[i], c->ep_in, NULL, LARGE);
        out_busy[i] = in_busy[i] = true;
        active++;
    }
    deadline = bench_now_s() + WAIT_MS / 1000.0;
    while (active > 0) {
        if (bench_now_s() > deadline || guest_step(g, rc) < 0)
            return -1;
        for (int i = 0; i < c->depth; i++) {
            size_t got = LARGE;
            if (out_busy[i] && redirc_done(rc, out_id[i], &status, NULL, NULL)) {
                out_busy[i] = false;
                failed |= status != 0;
                bytes += LARGE;
            }
            if (in_busy[i] && redirc_done(rc, in_id[i], &status, buf, &got)) {
                in_busy[i] = false;
                failed |= status != 0 || got != LARGE;
                bytes += got;
            }
            if (out_busy[i] || in_busy[i] || out_id[i] == 0)
                continue;
            deadline = bench_now_s() + WAIT_MS / 1000.0;
            if (failed || bench_now_s() >= end) {
                out_id[i] = 0;  /* this slot is finished */
                active--;
                continue;
            }
            out_id[i] = ++*id;
            in_id[i] = ++*id;
            redirc_bulk(rc, out_id[i], c->ep_out, buf, LARGE);
            redirc_bulk(rc, in_id[i], c->ep_in, NULL, LARGE);
            out_busy[i] = in_busy[i] = true;
        }
    }
    *rounds += (double)bytes / (2 * LARGE);
    return failed ? -1 : (double)bytes / (1 << 20) / (bench_now_s() - t0);
}

static gpointer guest_thread(gpointer arg)
{
    struct guest *g = arg;
    const struct cfg *c = g->c;
    uint8_t *buf = g_malloc0(LARGE);
    struct redirc *rc = redirc_new(g->fd);
    double t0, cpu0, loop0, own0, wall0, end = bench_now_s() + WAIT_MS / 1000.0;
    uint64_t id = 0;
    long n;

    g->rc = -1;
    while (!redirc_connected(rc))
        if (bench_now_s() > end || guest_step(g, rc) < 0)
            goto done;
    /* Interfaces Ferry claimed but the figures do not use stay idle. */
    for (int i = 0; i < WARMUP; i++)
        if (guest_round(g, rc, c, &id, buf, SMALL) < 0)
            goto done;
    cpu0 = cpu_now_s();
    loop0 = thread_cpu_s(g->loop_clock);
    own0 = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID);
    wall0 = t0 = bench_now_s();
    for (n = 0; want(c, F_RTT) && bench_now_s() - t0 < c->secs; n++)
        if (guest_round(g, rc, c, &id, buf, SMALL) < 0)
            goto done;
    g->f.v[F_RTT] = (double)n / (bench_now_s() - t0);
    g->f.v[F_ROUNDS] += (double)n;
    t0 = bench_now_s();
    for (n = 0; want(c, F_BULK) && bench_now_s() - t0 < c->secs; n++)
        if (guest_round(g, rc, c, &id, buf, LARGE) < 0)
            goto done;
    g->f.v[F_BULK] = (double)n * 2 * LARGE / (1 << 20) / (bench_now_s() - t0);
    g->f.v[F_ROUNDS] += (double)n;
    g->f.v[F_STREAM] = want(c, F_STREAM) ? guest_stream(g, rc, c, &id, buf, &g->f.v[F_ROUNDS]) : 0;
    t0 = bench_now_s() - wall0;
    g->f.v[F_CPU] = (cpu_now_s() - cpu0) / t0 * 100;
    g->f.v[F_LOOP] = (thread_cpu_s(g->loop_clock) - loop0) / t0 * 100;
    g->f.v[F_GUEST] = (thread_cpu_s(CLOCK_THREAD_CPUTIME_ID) - own0) / t0 * 100;
    g->rc = g->f.v[F_STREAM] > 0 || !want(c, F_STREAM) ? 0 : -1;
done:
    if (g->wake)
        event_del(g->wake);     /* before the channel closes */
    redirc_free(rc);
    g_free(buf);
    if (write(g->done_fd, "x", 1) != 1)
        g->rc = -1;
    return NULL;
}

/* ---- through Ferry ---------------------------------------------------------- */

static void bench_log(void *o, enum ferry_log_level l, const char *m)
{
    if (l <= FERRY_LOG_WARNING)
        fprintf(stderr, "usb-bulk: %s\n", m);
}

static void on_guest_done(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void on_redir_ended(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    /* the guest side closes the channel when it is done; freed after the loop */
}

static int bench_ferry(struct event_base *b, struct ferry_usb_host *host, const struct cfg *c,
                       struct run *f)
{
    struct ferry_usb_redir_ops ops = { .log = bench_log, .ended = on_redir_ended };
    struct ferry_usb_spec spec = { .kind = FERRY_USB_SPEC_VIDPID, .vid = c->vid, .pid = c->pid };
    struct ferry_usb_devinfo d;
    struct ferry_usb_redir *r = NULL;
    libusb_device_handle *h;
    struct guest g = { .c = c, .rc = -1 };
    char err[FERRY_USB_ERR_MAX];
    int sv[2], done[2];
    struct event *ev;
    GThread *t;

    if (usb_host_rescan(host) < 0 || usb_host_find(host, &spec, &d, err,
                                                                sizeof(err)) < 0 ||
        usb_host_open(host, &d, &h, err, sizeof(err)) < 0) {
        fprintf(stderr, "usb-bulk: ferry: %s\n", err);
        return -1;
    }
    if (pipe2(done, O_CLOEXEC) < 0) {
        libusb_close(h);
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        libusb_close(h);
        close(done[0]);
        close(done[1]);
        return -1;
    }
    if (usb_redir_new(host, h, sv[0], "bench", &ops, NULL, &r) < 0) {
        close(sv[1]);
        close(done[0]);
        close(done[1]);
        return -1;
    }
    g.fd = sv[1];
    g.done_fd = done[1];
    if (pthread_getcpuclockid(pthread_self(), &g.loop_clock) != 0)
        g.loop_clock = CLOCK_THREAD_CPUTIME_ID;    /* not expected on Linux */
    if (c->guest_on_loop) {
        /* the guest side runs Ferry's loop whenever it waits: no thread hop */
        g.loop = b;
        g.wake = event_new(b, g.fd, EV_READ | EV_PERSIST, on_guest_readable, NULL);
        event_add(g.wake, NULL);
        guest_thread(&g);
        event_free(g.wake);
    } else {
        ev = event_new(b, done[0], EV_READ, on_guest_done, b);
        event_add(ev, NULL);
        t = g_thread_new("guest", guest_thread, &g);
        event_base_dispatch(b);     /* until the guest side says it is done */
        g_thread_join(t);
        event_free(ev);
    }
    usb_redir_free(r);    /* gives the device back */
    close(done[0]);
    close(done[1]);
    *f = g.f;
    if (g.rc < 0)
        fprintf(stderr, "usb-bulk: ferry usbredir run failed\n");
    return g.rc;
}

/* ---- setup and output ------------------------------------------------------------ */

/* The first bulk OUT and bulk IN endpoint of interface c->iface. */
static int find_endpoints(struct cfg *c)
{
    libusb_context *ctx;
    libusb_device_handle *h;
    struct libusb_config_descriptor *cd = NULL;
    int rc = -1;

    if (libusb_init(&ctx) < 0)
        return -1;
    h = libusb_open_device_with_vid_pid(ctx, c->vid, c->pid);
    if (h && libusb_get_active_config_descriptor(libusb_get_device(h), &cd) == 0) {
        for (int i = 0; i < cd->bNumInterfaces; i++) {
            const struct libusb_interface_descriptor *id = &cd->interface[i].altsetting[0];
            if (id->bInterfaceNumber != c->iface)
                continue;
            for (int e = 0; e < id->bNumEndpoints; e++) {
                const struct libusb_endpoint_descriptor *ep = &id->endpoint[e];
                if ((ep->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK)
                    continue;
                if ((ep->bEndpointAddress & 0x80) && !c->ep_in)
                    c->ep_in = ep->bEndpointAddress;
                else if (!(ep->bEndpointAddress & 0x80) && !c->ep_out)
                    c->ep_out = ep->bEndpointAddress;
            }
        }
        rc = c->ep_in && c->ep_out ? 0 : -1;
        libusb_free_config_descriptor(cd);
    }
    if (h)
        libusb_close(h);
    libusb_exit(ctx);
    if (rc < 0)
        fprintf(stderr, "usb-bulk: %04x:%04x: %s\n", c->vid, c->pid,
                h ? "interface has no bulk IN and OUT endpoint" : "cannot open (present? root?)");
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void stats(const struct run *runs, int n, int fig, double *med, double *lo, double *hi)
{
    double *v = g_new(double, n);

    for (int i = 0; i < n; i++)
        v[i] = runs[i].v[fig];
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *lo = v[0];
    *hi = v[n - 1];
    g_free(v);
}

static void usage(void)
{
    fprintf(stderr, "usage: usb-bulk [--device VID:PID [--iface N]] [--reps N] [--seconds S] "
            "[--depth D] [--side direct|ferry] [--only rtt64|bulk64k|stream]\n"
            "       [--guest-side thread|loop]\n"
            "  without --device: the simulated loopback, under umockdev-wrapper\n");
}

int main(int argc, char **argv)
{
    struct cfg c = { .secs = 1.0, .reps = 5, .depth = 4, .sim = true };
    static const char *names[F_N] = { "urb", "rtt64", "bulk64k", "stream" };
    static const char *units[F_N] = { "us/URB", "round trips/s", "MiB/s", "MiB/s" };
    struct run *direct, *ferry;
    struct usbsim *sim = NULL;
    struct event_config *ec;
    struct event_base *b;
    struct ferry_usb_host *host;
    struct ferry_usb_host_ops hops = { .log = bench_log };
    const char *bound;
    double med[2][F_N];

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned vid, pid;
        if (!strcmp(argv[i], "--device") && v && sscanf(v, "%x:%x", &vid, &pid) == 2) {
            c.vid = (uint16_t)vid;
            c.pid = (uint16_t)pid;
            c.sim = false;
        } else if (!strcmp(argv[i], "--iface") && v) {
            c.iface = atoi(v);
        } else if (!strcmp(argv[i], "--reps") && v) {
            c.reps = atoi(v);
        } else if (!strcmp(argv[i], "--seconds") && v) {
            c.secs = atof(v);
        } else if (!strcmp(argv[i], "--depth") && v) {
            c.depth = atoi(v);
        } else if (!strcmp(argv[i], "--only") && v && (!strcmp(v, "rtt64") ||
                                                        !strcmp(v, "bulk64k") ||
                                                        !strcmp(v, "stream"))) {
            c.only = !strcmp(v, "rtt64") ? F_RTT : !strcmp(v, "bulk64k") ? F_BULK : F_STREAM;
        } else if (!strcmp(argv[i], "--guest-side") && v && (!strcmp(v, "thread") ||
                                                              !strcmp(v, "loop"))) {
            c.guest_on_loop = !strcmp(v, "loop");
        } else if (!strcmp(argv[i], "--side") && v && (!strcmp(v, "direct") ||
                                                        !strcmp(v, "ferry"))) {
            c.skip_direct = !strcmp(v, "ferry");
            c.skip_ferry = !c.skip_direct;
        } else {
            fprintf(stderr, "usb-bulk: bad argument '%s'\n", argv[i]);
            usage();
            return 2;
        }
        i++;
    }
    if (c.reps < 1 || c.secs <= 0 || c.depth < 1 || c.depth > DEPTH_MAX) {
        fprintf(stderr, "usb-bulk: --reps >= 1, --seconds > 0, --depth 1..%d\n", DEPTH_MAX);
        return 2;
    }
    if (c.sim) {
        sim = usbsim_new();
        if (!sim) {
            fprintf(stderr, "usb-bulk: run me under umockdev-wrapper, or give --device\n");
            return 77;
        }
        if (!usbsim_add(sim, USBSIM_VENDOR, "1-1", "BENCH"))
            return 1;
        c.vid = USBSIM_VID;
        c.pid = USBSIM_PID_VENDOR;
        c.ep_out = 0x01;
        c.ep_in = 0x82;
    } else if (find_endpoints(&c) < 0) {
        return 1;
    }

    ec = event_config_new();
    if (c.sim)
        event_config_avoid_method(ec, "epoll");   /* umockdev nodes are regular files */
    b = event_base_new_with_config(ec);
    event_config_free(ec);
    if (usb_host_new(b, true, &hops, NULL, &host) < 0)
        return 1;
    direct = g_new0(struct run, c.reps);
    ferry = g_new0(struct run, c.reps);

    bench_print_header();
    {
        char load[64] = "?";
        FILE *f = fopen("/proc/loadavg", "r");
        if (f && fgets(load, sizeof(load), f))
            load[strcspn(load, "\n")] = '\0';
        if (f)
            fclose(f);
        printf("load average at start: %s (other work on these cpus skews every figure)\n",
               load);
    }
    if (c.sim)
        printf("device: simulated vendor loopback (umockdev), ep %02x -> %02x\n", c.ep_out,
               c.ep_in);
    else
        printf("device: %04x:%04x interface %d, bulk loopback ep %02x -> %02x (real usbfs)\n",
               c.vid, c.pid, c.iface, c.ep_out, c.ep_in);
    printf("method: %d repetitions of %.1f s per figure and side, interleaved, medians; "
           "stream depth %d x (64 KiB OUT + 64 KiB IN)\n", c.reps, c.secs, c.depth);
    printf("ferry: usbredir endpoint (libusbredirhost) on a libevent loop (%s), guest side %s, "
           "socketpair\n", event_base_get_method(b),
           c.guest_on_loop ? "on the loop's thread, running the loop while it waits (no thread "
                             "hop; loop and guest side cpu are that one thread's)"
                           : "blocking in poll in another thread");
    for (int i = 0; i < c.reps; i++) {
        /* alternate which side goes first */
        for (int k = 0; k < 2; k++) {
            bool d = (k == 0) == (i % 2 == 0);
            if ((d && c.skip_direct) || (!d && c.skip_ferry))
                continue;
            if (d ? bench_direct(&c, &direct[i]) < 0 : bench_ferry(b, host, &c, &ferry[i]) < 0)
                return 1;
        }
        printf("rep %d: direct %.0f us/URB, %.0f rt/s, %.1f MiB/s, stream %.1f MiB/s, "
               "cpu %.0f%%; ferry %.0f rt/s, %.1f MiB/s, stream %.1f MiB/s, cpu %.0f%% "
               "(loop %.0f%%, guest side %.0f%%)\n", i + 1,
               direct[i].v[F_URB], direct[i].v[F_RTT], direct[i].v[F_BULK],
               direct[i].v[F_STREAM], direct[i].v[F_CPU], ferry[i].v[F_RTT],
               ferry[i].v[F_BULK], ferry[i].v[F_STREAM], ferry[i].v[F_CPU], ferry[i].v[F_LOOP],
               ferry[i].v[F_GUEST]);
        if (c.only)
            printf("rep %d: the ferry side made %.0f rounds (OUT+IN) of that figure\n", i + 1,
                   ferry[i].v[F_ROUNDS]);
        fflush(stdout);
    }
    bound = c.sim ? " [bound by the simulator]" : "";
    for (int fig = 0; fig < F_N; fig++) {
        double lo, hi;
        stats(direct, c.reps, fig, &med[0][fig], &lo, &hi);
        if (fig == F_URB) {
            printf("%s per URB (control GET_STATUS, direct libusb): %.0f us (%.0f-%.0f)%s\n",
                   c.sim ? "simulator cost" : "usbfs cost", med[0][fig], lo, hi,
                   c.sim ? " -- every figure below is mostly this" : "");
            continue;
        }
        if (fig == F_CPU) {
            double m1, ml, mg;
            stats(ferry, c.reps, fig, &m1, &lo, &hi);
            stats(ferry, c.reps, F_LOOP, &ml, &lo, &hi);
            stats(ferry, c.reps, F_GUEST, &mg, &lo, &hi);
            printf("process cpu while measuring (all threads%s; %% of one cpu): direct %.0f%%, "
                   "ferry %.0f%% (its loop thread %.0f%%, the guest side's thread %.0f%%)\n",
                   c.sim ? ", the simulator's too" : "", med[0][fig], m1, ml, mg);
            break;
        }
        printf("%-8s direct libusb:  %9.1f %s (%.1f-%.1f)%s\n", names[fig], med[0][fig],
               units[fig], lo, hi, bound);
        stats(ferry, c.reps, fig, &med[1][fig], &lo, &hi);
        printf("%-8s ferry usbredir: %9.1f %s (%.1f-%.1f)%s\n", names[fig], med[1][fig],
               units[fig], lo, hi, bound);
    }
    usb_host_free(host);
    event_base_free(b);
    usbsim_free(sim);
    g_free(direct);
    g_free(ferry);
    printf("ratio ferry/direct (medians): rtt64 %.2f, bulk64k %.2f, stream(depth %d) %.2f%s\n",
           med[1][F_RTT] / med[0][F_RTT], med[1][F_BULK] / med[0][F_BULK], c.depth,
           med[1][F_STREAM] / med[0][F_STREAM], c.sim ? " (simulator-bound)" : "");
    return 0;
}
