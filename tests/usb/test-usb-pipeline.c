// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The usb suite, pipelined transfers: several bulk transfers in flight on one
 * endpoint through Ferry's usbredir endpoint (what QEMU's usb-redir does on
 * bulk endpoints: it queues the guest's transfers without waiting for the
 * previous answer), on the simulated vendor loopback (0x01 -> 0x82) of
 * sim/usbsim.h.  Run under umockdev-wrapper.
 *
 *   in order        8 bulk IN queued before any data exists: all 8 are URBs
 *                   in the device at once; then 8 OUTs of different sizes:
 *                   every answer comes back, in order, IN k with OUT k's bytes
 *   trickle         the same requests reach Ferry a few bytes at a time
 *                   (packets split anywhere: the read-ahead's edges)
 *   burst           200 small requests in one write: all answered, in order
 *   free            the endpoint freed (what a detach does) with 8 INs queued:
 *                   every URB is discarded, the next user gets exact data
 *   vanish          the peer closes with INs queued and OUTs unread: the
 *                   service ends the channel, no URB is left behind, the next
 *                   peer gets exact data
 *   bulk receiving  buffered bulk IN (usb_redir_cap_bulk_receiving, what
 *                   QEMU's usb-redir uses for serial adapters): Ferry keeps
 *                   the peer's count of URBs in flight on the endpoint and
 *                   streams what they receive, in order; stopping it
 *                   discards them
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <inttypes.h>
#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <usbredirproto.h>

#include "redir-client.h"
#include "tests/check-main.h"
#include "usb/ferry-usb.h"
#include "usbsim.h"

#define WAIT_MS 30000
#define NQ      8               /* transfers queued on one endpoint */
#define EP_OUT  0x01
#define EP_IN   0x82

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-usb-pipeline: %s\n", msg);
}

/* umockdev's nodes are regular files, which epoll refuses */
static struct event_base *base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;

    event_config_avoid_method(cfg, "epoll");
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b;
}

/* ---- a Ferry endpoint on a socketpair, optionally behind a trickling proxy -- */

struct rig {
    struct usbsim *sim;
    struct usbsim_dev *dev;
    struct event_base *b;
    struct ferry_usb_host *h;
    struct ferry_usb_redir *r;
    struct redirc *c;
    bool ended;
    enum ferry_usb_redir_end why;
    /* trickle: client <-> proxy[0] ... proxy[1] <-> Ferry; the client's bytes
     * go on in pieces of 1..chunk bytes */
    int proxy[2];
    unsigned chunk;
    GRand *rand;
};

static void on_end(void *o, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    struct rig *g = o;

    g->ended = true;
    g->why = why;
}

static void rig_endpoint(struct rig *g, unsigned chunk)
{
    struct ferry_usb_redir_ops rops = { .log = tlog, .ended = on_end, };
    struct ferry_usb_spec spec = { .kind = FERRY_USB_SPEC_VIDPID, .vid = USBSIM_VID,
                                   .pid = USBSIM_PID_VENDOR };
    struct ferry_usb_devinfo d;
    libusb_device_handle *handle;
    char err[FERRY_USB_ERR_MAX];
    int a[2], c[2];

    ck_assert_int_eq(usb_host_rescan(g->h), 0);
    ck_assert_msg(usb_host_find(g->h, &spec, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(usb_host_open(g->h, &d, &handle, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, a), 0);
    g->chunk = chunk;
    g->proxy[0] = g->proxy[1] = -1;
    if (chunk) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, c),
                         0);
        g->proxy[0] = c[0];
        g->proxy[1] = a[1];
        g->c = redirc_new(c[1]);
    } else {
        g->c = redirc_new(a[1]);
    }
    g->ended = false;
    ck_assert_int_eq(usb_redir_new(g->h, handle, a[0], "pipe", &rops, g, &g->r), 0);
}

static void rig_endpoint_free(struct rig *g)
{
    redirc_free(g->c);
    g->c = NULL;
    usb_redir_free(g->r);
    g->r = NULL;
    for (int i = 0; i < 2; i++)
        if (g->proxy[i] >= 0)
            close(g->proxy[i]);
    g->proxy[0] = g->proxy[1] = -1;
}

static void rig_init(struct rig *g)
{
    struct ferry_usb_host_ops hops = { .log = tlog };

    memset(g, 0, sizeof(*g));
    g->proxy[0] = g->proxy[1] = -1;
    g->sim = usbsim_new();
    ck_assert_msg(g->sim, "not under umockdev-wrapper (meson runs this test with it)");
    g->dev = usbsim_add(g->sim, USBSIM_VENDOR, "1-4", "PIPE1");
    ck_assert_ptr_nonnull(g->dev);
    g->b = base_new();
    g->rand = g_rand_new_with_seed(15);
    ck_assert_int_eq(usb_host_new(g->b, true, &hops, NULL, &g->h), 0);
}

static void rig_fini(struct rig *g)
{
    if (g->c || g->r)
        rig_endpoint_free(g);
    usb_host_free(g->h);
    event_base_free(g->b);
    usbsim_free(g->sim);
    g_rand_free(g->rand);
}

/* Move bytes through the proxy: all of Ferry's, a piece of the client's. */
static void proxy_step(struct rig *g)
{
    uint8_t buf[65536];
    ssize_t n;

    if (g->proxy[0] < 0)
        return;
    while ((n = read(g->proxy[1], buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(g->proxy[0], buf, (size_t)n), n);
    n = read(g->proxy[0], buf, 1 + g_rand_int_range(g->rand, 0, (gint32)g->chunk));
    if (n > 0)
        ck_assert_int_eq(write(g->proxy[1], buf, (size_t)n), n);
}

static bool loop_until(struct rig *g, bool (*pred)(struct rig *, void *), void *arg)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;

    while (!pred(g, arg)) {
        if (g_get_monotonic_time() > end)
            return false;
        event_base_loop(g->b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        proxy_step(g);
        if (g->c)
            redirc_step(g->c, g->chunk ? 0 : 1);
    }
    return true;
}

static bool connected(struct rig *g, void *arg) { return redirc_connected(g->c); }

static bool pending_is(struct rig *g, void *arg)
{
    return usbsim_urbs_pending(g->dev) == *(unsigned *)arg;
}

/* ---- the exchange -------------------------------------------------------------- */

struct answer {
    uint64_t id;
    int status;
    size_t len;
    uint8_t data[20000];
};

static struct answer *answers;
static unsigned n_answers;

static bool answered(struct rig *g, void *arg)
{
    while (n_answers < *(unsigned *)arg) {
        struct answer *a = &answers[n_answers];

        a->len = sizeof(a->data);
        if (!redirc_pop_done(g->c, &a->id, &a->status, a->data, &a->len))
            return false;
        n_answers++;
    }
    return true;
}

static size_t out_len(unsigned k) { return 1 + (k * 4999u + 17u) % 19000u; }
static uint8_t out_byte(unsigned k, size_t i) { return (uint8_t)(k * 31u + i * 7u + 1u); }

/* NQ INs queued with nothing to read, then NQ OUTs: all in flight together,
 * answered in order with the right bytes. */
static void exchange(struct rig *g, uint64_t base)
{
    unsigned want = NQ;

    answers = g_new0(struct answer, 2 * NQ);
    n_answers = 0;
    for (unsigned k = 0; k < NQ; k++)
        redirc_bulk(g->c, base + k, EP_IN, NULL, (uint32_t)out_len(k));
    ck_assert_msg(loop_until(g, pending_is, &want),
                  "only %u of %u bulk IN transfers became URBs at once",
                  usbsim_urbs_pending(g->dev), NQ);
    for (unsigned k = 0; k < NQ; k++) {
        uint8_t *p = g_malloc(out_len(k));
        for (size_t i = 0; i < out_len(k); i++)
            p[i] = out_byte(k, i);
        redirc_bulk(g->c, base + NQ + k, EP_OUT, p, (uint32_t)out_len(k));
        g_free(p);
    }
    want = 2 * NQ;
    ck_assert_msg(loop_until(g, answered, &want), "%u of %u answers", n_answers, 2 * NQ);
    {
        uint64_t next_in = base, next_out = base + NQ;
        for (unsigned i = 0; i < 2 * NQ; i++) {
            struct answer *a = &answers[i];
            ck_assert_int_eq(a->status, usb_redir_success);
            if (a->id < base + NQ) {
                unsigned k = (unsigned)(a->id - base);
                ck_assert_msg(a->id == next_in, "IN %" PRIu64 " answered before IN %" PRIu64,
                              a->id, next_in);
                next_in++;
                ck_assert_uint_eq(a->len, out_len(k));
                for (size_t j = 0; j < a->len; j++)
                    ck_assert_msg(a->data[j] == out_byte(k, j), "IN %u byte %zu", k, j);
            } else {
                ck_assert_msg(a->id == next_out, "OUT %" PRIu64 " answered before OUT %" PRIu64,
                              a->id, next_out);
                next_out++;
            }
        }
    }
    ck_assert_uint_eq(usbsim_urbs_pending(g->dev), 0);
    g_free(answers);
    answers = NULL;
}

START_TEST(test_in_order)
{
    struct rig g;

    rig_init(&g);
    rig_endpoint(&g, 0);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
    /* what QEMU's usb-redir needs before it queues bulk IN transfers
     * (usbredir_set_pipeline) and offers bulk streams and bulk receiving */
    ck_assert(redirc_peer_has_cap(g.c, usb_redir_cap_32bits_bulk_length));
    ck_assert(redirc_peer_has_cap(g.c, usb_redir_cap_ep_info_max_packet_size));
    ck_assert(redirc_peer_has_cap(g.c, usb_redir_cap_64bits_ids));
    ck_assert(redirc_peer_has_cap(g.c, usb_redir_cap_bulk_receiving));
    ck_assert(redirc_peer_has_cap(g.c, usb_redir_cap_bulk_streams));
    exchange(&g, 100);
    exchange(&g, 200);          /* and again on the same endpoint */
    ck_assert(!g.ended);
    rig_fini(&g);
}
END_TEST

START_TEST(test_trickle)
{
    struct rig g;

    rig_init(&g);
    rig_endpoint(&g, 37);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
    exchange(&g, 100);
    ck_assert(!g.ended);
    rig_fini(&g);
}
END_TEST

START_TEST(test_burst)
{
    enum { N = 200 };
    struct rig g;
    unsigned want = N;

    rig_init(&g);
    rig_endpoint(&g, 0);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
    answers = g_new0(struct answer, N);
    n_answers = 0;
    for (unsigned i = 0; i < N; i++)     /* GET_DESCRIPTOR(device), 18 bytes */
        redirc_control(g.c, 1000 + i, 0x80, 6, 0x0100, 0, 18);
    ck_assert_msg(loop_until(&g, answered, &want), "%u of %u answers", n_answers, N);
    for (unsigned i = 0; i < N; i++) {
        ck_assert_uint_eq(answers[i].id, 1000 + i);
        ck_assert_int_eq(answers[i].status, usb_redir_success);
        ck_assert_uint_eq(answers[i].len, 18);
        ck_assert_uint_eq(answers[i].data[8] | answers[i].data[9] << 8, USBSIM_VID);
    }
    g_free(answers);
    answers = NULL;
    rig_fini(&g);
}
END_TEST

/* Freeing the endpoint is what a detach does: the queued URBs are discarded,
 * none is left to take the next user's data. */
START_TEST(test_free_cancels_queued)
{
    struct rig g;
    unsigned want = NQ;

    rig_init(&g);
    rig_endpoint(&g, 0);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
    for (unsigned k = 0; k < NQ; k++)
        redirc_bulk(g.c, 10 + k, EP_IN, NULL, 512);
    ck_assert(loop_until(&g, pending_is, &want));
    rig_endpoint_free(&g);
    ck_assert_uint_eq(usbsim_urbs_pending(g.dev), 0);
    rig_endpoint(&g, 0);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect after the free");
    exchange(&g, 100);
    rig_fini(&g);
}
END_TEST

/* ---- through the service: the peer vanishes with transfers queued ------------ */

static bool svc_idle(struct rig *g, void *arg)
{
    return usb_service_connected(arg) == 0;
}

START_TEST(test_peer_vanishes_queued)
{
    struct ferry_usb_service_ops ops = { .log = tlog };
    struct ferry_usb_service *svc;
    struct rig g;
    char dir[64] = "/tmp/ferry-usb-pipe-XXXXXX", addr[128], err[FERRY_USB_ERR_MAX];
    unsigned want = NQ;
    uint8_t chunk[4096] = { 0 };
    int fd;

    rig_init(&g);
    ck_assert_ptr_nonnull(g_mkdtemp(dir));
    /* the service has its own host; this rig's stays idle */
    ck_assert_int_eq(usb_service_new(g.b, dir, &ops, NULL, &svc), 0);
    snprintf(addr, sizeof(addr), "unix:%s/p.sock", dir);
    ck_assert_msg(usb_service_share(svc, "1-4", addr, err, sizeof(err)) == 0, "%s", err);
    for (int round = 0; round < 2; round++) {
        fd = usb_connect(addr, err, sizeof(err));
        ck_assert_msg(fd >= 0, "%s", err);
        g.c = redirc_new(fd);
        ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
        if (round == 1) {       /* the next peer: every URB of the last one is gone */
            exchange(&g, 100);
            redirc_free(g.c);
            g.c = NULL;
            break;
        }
        for (unsigned k = 0; k < NQ; k++)
            redirc_bulk(g.c, 10 + k, EP_IN, NULL, 8192);
        ck_assert(loop_until(&g, pending_is, &want));
        /* OUTs Ferry reads after the peer is gone; their answers find no one */
        for (unsigned k = 0; k < 4; k++)
            redirc_bulk(g.c, 30 + k, EP_OUT, chunk, sizeof(chunk));
        while (redirc_push(g.c) > 0)
            event_base_loop(g.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        redirc_free(g.c);
        g.c = NULL;
        ck_assert_msg(loop_until(&g, svc_idle, svc), "the service kept the vanished peer");
        ck_assert_uint_eq(usbsim_urbs_pending(g.dev), 0);
    }
    usb_service_free(svc);
    rmdir(dir);
    rig_fini(&g);
}
END_TEST

static bool bulk_recv_answered(struct rig *g, void *arg)
{
    return redirc_bulk_recv_status(g->c) >= 0;
}

static bool bulk_recv_got(struct rig *g, void *arg)
{
    const uint8_t *d;

    return redirc_bulk_recv_data(g->c, &d, NULL) >= *(size_t *)arg;
}

START_TEST(test_bulk_receiving)
{
    enum { URBS = 4, BYTES = 1024, OUTS = 6, OUT_LEN = 1500 };
    struct rig g;
    unsigned want = URBS, zero = 0, packets;
    size_t total = OUTS * OUT_LEN;
    const uint8_t *d;
    uint8_t p[OUT_LEN];

    rig_init(&g);
    rig_endpoint(&g, 0);
    ck_assert_msg(loop_until(&g, connected, NULL), "no device_connect");
    redirc_start_bulk_recv(g.c, 5, EP_IN, BYTES, URBS);
    ck_assert(loop_until(&g, bulk_recv_answered, NULL));
    ck_assert_int_eq(redirc_bulk_recv_status(g.c), usb_redir_success);
    ck_assert_msg(loop_until(&g, pending_is, &want), "%u of %u bulk receiving URBs in flight",
                  usbsim_urbs_pending(g.dev), URBS);
    for (unsigned k = 0; k < OUTS; k++) {
        for (size_t i = 0; i < OUT_LEN; i++)
            p[i] = out_byte(k, i);
        redirc_bulk(g.c, 20 + k, EP_OUT, p, OUT_LEN);
    }
    ck_assert_msg(loop_until(&g, bulk_recv_got, &total), "%zu of %zu bytes received",
                  redirc_bulk_recv_data(g.c, &d, NULL), total);
    ck_assert_uint_eq(redirc_bulk_recv_data(g.c, &d, &packets), total);
    for (unsigned k = 0; k < OUTS; k++)
        for (size_t i = 0; i < OUT_LEN; i++)
            ck_assert_msg(d[k * OUT_LEN + i] == out_byte(k, i), "byte %zu of OUT %u", i, k);
    ck_assert_uint_ge(packets, total / BYTES);
    /* resubmitted as they complete: still URBS in flight */
    ck_assert(loop_until(&g, pending_is, &want));
    redirc_stop_bulk_recv(g.c, 6, EP_IN);
    ck_assert_msg(loop_until(&g, pending_is, &zero), "%u URBs left after stop",
                  usbsim_urbs_pending(g.dev));
    ck_assert(!g.ended);
    rig_fini(&g);
}
END_TEST

static TCase *pipeline_tcase(void)
{
    return FERRY_CHECK_TCASE("pipeline", 240, test_in_order, test_trickle, test_burst,
                             test_free_cancels_queued, test_peer_vanishes_queued,
                             test_bulk_receiving);
}

int main(void)
{
    Suite *s = suite_create("usb-pipeline");

    if (!getenv("UMOCKDEV_DIR") && !getenv("LD_PRELOAD")) {
        printf("FAIL: not running under umockdev-wrapper (meson test runs it with it)\n");
        return 1;
    }
    suite_add_tcase(s, pipeline_tcase());
    return ferry_check_run(s, CK_FORK_GETENV);
}
