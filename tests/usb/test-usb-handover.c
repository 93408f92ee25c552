// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The usb suite, a usbredir connection handed from one host side to another
 * (what ferry-dm's replace does with every channel to QEMU, docs/usb.md):
 * the simulated vendor loopback (0x01 -> 0x82, sim/usbsim.h) served to a
 * usbredir guest (redir-client, with QEMU's capabilities) by one endpoint,
 * then by five successors in turn, each built from its predecessor's
 * exported state on the same socket and the same usbfs fd.  In one process,
 * as umockdev's preload answers ioctls only on fds it saw opened.
 *
 *   stream      every round queues bulk INs and OUTs, quiesces the endpoint
 *               with transfers in the device and more requests arriving,
 *               hands it over once they are answered, then queues more: every
 *               answer comes once, in order, with its bytes; the guest saw
 *               one device_connect and one hello in all (no parser error)
 *   receiving   bulk receiving on the loopback runs through five handovers:
 *               every byte once, in order, no stream status not asked for
 *   keys        a keyboard read by interrupt receiving, keys pressed around
 *               five handovers: every report once, in order
 *   iso         an isochronous IN stream on an alternate setting, the
 *               simulator's frames passing by the test's clock, handed over
 *               five times in the middle of a URB: every packet the device
 *               filled reaches the guest once, in order, with ids that go
 *               on; only the frames of the switch windows are missing; a
 *               state with a corrupt stream or setting is refused (named)
 *   streams     bulk streams (USB 3) allocated by the guest stay allocated
 *               across three handovers (no free, no second alloc on the
 *               device) and are freed through the third successor
 *   share       a device shared on a listening socket, handed from service
 *               to service: with no peer (the next one connects to the
 *               successor), then with its peer connected and transfers going
 *               (its connection goes along, nothing lost or repeated)
 *   refusals    a state of another version or truncated is refused; a
 *               channel whose peer set a usbredir filter is not handed over
 *               (named) and serves on
 * Run under umockdev-wrapper.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <inttypes.h>
#include <limits.h>
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
#define NQ      6
#define ROUNDS  5
#define EP_OUT  0x01
#define EP_IN   0x82

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-usb-handover: %s\n", msg);
}

static struct event_base *base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;

    event_config_avoid_method(cfg, "epoll");    /* umockdev's nodes are regular files */
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b;
}

struct rig {
    struct usbsim *sim;
    struct usbsim_dev *dev;
    struct event_base *b;
    struct ferry_usb_host *h;
    struct ferry_usb_redir *r;      /* the one serving */
    GPtrArray *old;                 /* handed over, freed at the end (newest first) */
    struct redirc *c;
    int devfd;
    bool ended;
    /* split: the client's bytes pass through here (c0 -> e1) only when the
     * test says; the endpoint's go on at once (e1 -> c0) */
    int c0, e1;
    GByteArray *held;
};

static void on_end(void *o, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    ((struct rig *)o)->ended = true;
}

static const struct ferry_usb_redir_ops rops = { .log = tlog, .ended = on_end };

static void proxy_step(struct rig *g, size_t release)
{
    uint8_t buf[65536];
    ssize_t n;

    if (g->c0 < 0)
        return;
    while ((n = read(g->e1, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(g->c0, buf, (size_t)n), n);
    while ((n = read(g->c0, buf, sizeof(buf))) > 0)
        g_byte_array_append(g->held, buf, (guint)n);
    if (release && g->held->len) {
        size_t k = MIN(release, (size_t)g->held->len);

        n = write(g->e1, g->held->data, k);
        ck_assert_int_gt(n, 0);
        g_byte_array_remove_range(g->held, 0, (guint)n);
    }
}

static size_t release_all = (size_t)-1;

static void step(struct rig *g)
{
    event_base_loop(g->b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    if (g->c)
        redirc_step(g->c, 1);
    else
        g_usleep(1000);
    proxy_step(g, release_all);
}

static bool loop_until(struct rig *g, bool (*pred)(struct rig *, void *), void *arg)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;

    while (!pred(g, arg)) {
        if (g_get_monotonic_time() > end)
            return false;
        step(g);
    }
    return true;
}

static bool connected(struct rig *g, void *arg) { return redirc_connected(g->c); }

static void rig_init_dev(struct rig *g, bool split, enum usbsim_kind kind, uint16_t pid)
{
    struct ferry_usb_host_ops hops = { .log = tlog };
    struct ferry_usb_spec spec = { .kind = FERRY_USB_SPEC_VIDPID, .vid = USBSIM_VID,
                                   .pid = pid };
    struct ferry_usb_devinfo d;
    libusb_device_handle *handle;
    char err[FERRY_USB_ERR_MAX];
    int sv[2];

    memset(g, 0, sizeof(*g));
    g->c0 = g->e1 = -1;
    g->sim = usbsim_new();
    ck_assert_msg(g->sim, "not under umockdev-wrapper (meson runs this test with it)");
    g->dev = usbsim_add(g->sim, kind, "1-4", "HAND1");
    ck_assert_ptr_nonnull(g->dev);
    g->b = base_new();
    g->old = g_ptr_array_new();
    ck_assert_int_eq(usb_host_new(g->b, true, &hops, NULL, &g->h), 0);
    ck_assert_int_eq(usb_host_rescan(g->h), 0);
    ck_assert_msg(usb_host_find(g->h, &spec, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(usb_host_open(g->h, &d, &handle, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    if (split) {
        int cv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, cv),
                         0);
        g->c0 = cv[0];
        g->e1 = sv[1];
        g->held = g_byte_array_new();
        g->c = redirc_new(cv[1]);
    } else {
        g->c = redirc_new(sv[1]);
    }
    ck_assert_int_eq(usb_redir_new(g->h, handle, sv[0], "hand", &rops, g, &g->r), 0);
    ck_assert_msg(loop_until(g, connected, NULL), "the guest side saw no device_connect");
    g->devfd = usb_redir_device_fd(g->r);
    ck_assert_msg(g->devfd >= 0, "the endpoint's usbfs fd was not found: %s",
                  g_strerror(-g->devfd));
}

static void rig_init_split(struct rig *g, bool split)
{
    rig_init_dev(g, split, USBSIM_VENDOR, USBSIM_PID_VENDOR);
}

static void rig_init(struct rig *g)
{
    rig_init_split(g, false);
}

static void rig_fini(struct rig *g)
{
    if (g->c0 >= 0) {
        close(g->c0);
        close(g->e1);
        g_byte_array_unref(g->held);
    }
    redirc_free(g->c);
    usb_redir_free(g->r);
    /* newest first; the first one's handle closes the usbfs fd */
    for (guint i = g->old->len; i-- > 0;)
        usb_redir_free(g_ptr_array_index(g->old, i));
    g_ptr_array_free(g->old, TRUE);
    usb_host_free(g->h);
    event_base_free(g->b);
    usbsim_free(g->sim);
}

static bool ready(struct rig *g, void *arg)
{
    char why[200];

    return usb_redir_handover_ready(g->r, why, sizeof(why)) == 0;
}

static void hand_over_window(struct rig *g, void (*window)(struct rig *));

/* The serving endpoint's state to a successor on the same socket and usbfs fd. */
static void hand_over(struct rig *g)
{
    hand_over_window(g, NULL);
}

/* ... with window() run between the predecessor's export and the successor's adopt. */
static void hand_over_window(struct rig *g, void (*window)(struct rig *))
{
    g_autoptr(GByteArray) state = g_byte_array_new();
    libusb_device_handle *handle;
    struct ferry_usb_devinfo d;
    char why[300];
    int rc;

    usb_redir_quiesce(g->r);
    if (!loop_until(g, ready, NULL)) {
        usb_redir_handover_ready(g->r, why, sizeof(why));
        ck_abort_msg("the endpoint did not quiesce: %s", why);
    }
    rc = usb_redir_export(g->r, state, why, sizeof(why));
    ck_assert_msg(rc == 0, "export: %s", why);
    if (window)
        window(g);
    ck_assert_msg(usb_host_wrap_fd(g->h, g->devfd, &handle, &d, why, sizeof(why)) == 0, "%s",
                  why);
    g_ptr_array_add(g->old, g->r);
    g->r = NULL;
    rc = usb_redir_adopt(g->h, handle, dup(usb_redir_fd(g_ptr_array_index(g->old,
                                                                         g->old->len - 1))),
                         state->data, state->len, "hand", &rops, g, &g->r, why, sizeof(why));
    ck_assert_msg(rc == 0, "adopt: %s", why);
}

static size_t xlen(uint64_t k) { return 1 + (k * 4999u + 17u) % 15000u; }
static uint8_t xbyte(uint64_t k, size_t i) { return (uint8_t)(k * 31u + i * 7u + 1u); }

static void queue_out(struct rig *g, uint64_t k)
{
    uint8_t *p = g_malloc(xlen(k));

    for (size_t i = 0; i < xlen(k); i++)
        p[i] = xbyte(k, i);
    redirc_bulk(g->c, 2 * k + 1, EP_OUT, p, (uint32_t)xlen(k));
    g_free(p);
}

static void queue_pairs(struct rig *g, uint64_t from, unsigned n)
{
    /* IN k first (the loopback holds nothing yet), then OUT k with k's bytes */
    for (uint64_t k = from; k < from + n; k++)
        redirc_bulk(g->c, 2 * k, EP_IN, NULL, (uint32_t)xlen(k));
    for (uint64_t k = from; k < from + n; k++)
        queue_out(g, k);
}

/* OUT k, then IN k: wherever the stream stops, an IN taken has its data coming */
static void queue_pairs_out_first(struct rig *g, uint64_t from, unsigned n)
{
    for (uint64_t k = from; k < from + n; k++) {
        queue_out(g, k);
        redirc_bulk(g->c, 2 * k, EP_IN, NULL, (uint32_t)xlen(k));
    }
}

struct tally {
    uint64_t next_in, next_out, want;   /* pairs */
    uint8_t buf[20000];
};

static bool tally_all(struct rig *g, void *arg)
{
    struct tally *t = arg;
    uint64_t id;
    int status;
    size_t len = sizeof(t->buf);

    while (redirc_pop_done(g->c, &id, &status, t->buf, &len)) {
        ck_assert_int_eq(status, usb_redir_success);
        if (id & 1) {
            ck_assert_msg(id / 2 == t->next_out, "OUT %" PRIu64 " answered, OUT %" PRIu64
                          " was due (lost or repeated)", id / 2, t->next_out);
            t->next_out++;
        } else {
            uint64_t k = id / 2;

            ck_assert_msg(k == t->next_in, "IN %" PRIu64 " answered, IN %" PRIu64 " was due "
                          "(lost or repeated)", k, t->next_in);
            ck_assert_uint_eq(len, xlen(k));
            for (size_t i = 0; i < len; i++)
                ck_assert_msg(t->buf[i] == xbyte(k, i), "IN %" PRIu64 " byte %zu", k, i);
            t->next_in++;
        }
        len = sizeof(t->buf);
    }
    return t->next_in == t->want && t->next_out == t->want;
}

START_TEST(stream)
{
    struct rig g;
    struct tally *t = g_new0(struct tally, 1);
    uint64_t next = 0;

    rig_init(&g);
    for (unsigned round = 0; round < ROUNDS; round++) {
        queue_pairs(&g, next, NQ);
        next += NQ;
        /* some in the device, some answered, some still in the socket */
        for (int i = 0; i < 3; i++)
            step(&g);
        usb_redir_quiesce(g.r);
        queue_pairs(&g, next, 2);   /* arrive while quiescing: taken by the successor */
        next += 2;
        redirc_push(g.c);
        hand_over(&g);
        t->want = next;
        ck_assert_msg(loop_until(&g, tally_all, t), "round %u: %" PRIu64 " INs and %" PRIu64
                      " OUTs of %" PRIu64 " answered", round, t->next_in, t->next_out, next);
        ck_assert(!g.ended);
    }
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_msg(redirc_errors(g.c) == 0, "the guest side's parser complained %u times "
                  "(a second hello?)", redirc_errors(g.c));
    ck_assert(redirc_connected(g.c) && !redirc_disconnected(g.c));
    g_free(t);
    rig_fini(&g);
}
END_TEST

/*
 * The handover while a request is half read: the first 30 bytes of a burst
 * reach the endpoint, it quiesces, then the rest of the burst comes in one
 * piece (each OUT before its IN: an IN taken without its data would keep
 * the endpoint from quiescing until the caller gives up).  The endpoint takes that request whole (its read also fetches the
 * following ones into the read-ahead), stops at its end, and the successor
 * parses what was read ahead first: every answer once, in order.
 */
START_TEST(split)
{
    struct rig g;
    struct tally *t = g_new0(struct tally, 1);
    uint64_t next = 0;

    rig_init_split(&g, true);
    for (unsigned round = 0; round < 3; round++) {
        queue_pairs_out_first(&g, next, NQ);
        next += NQ;
        redirc_push(g.c);
        for (int i = 0; i < 5; i++) {
            event_base_loop(g.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            proxy_step(&g, i == 0 ? 30 : 0);
        }
        usb_redir_quiesce(g.r);
        proxy_step(&g, release_all);
        hand_over(&g);
        t->want = next;
        ck_assert_msg(loop_until(&g, tally_all, t), "round %u: %" PRIu64 " INs and %" PRIu64
                      " OUTs of %" PRIu64 " answered", round, t->next_in, t->next_out, next);
    }
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_uint_eq(redirc_errors(g.c), 0);
    g_free(t);
    rig_fini(&g);
}
END_TEST

static bool bulk_recv_answered(struct rig *g, void *arg)
{
    return redirc_bulk_recv_status(g->c) >= 0;
}

static bool statuses(struct rig *g, void *arg)
{
    return redirc_stream_statuses(g->c) >= *(unsigned *)arg;
}

static bool alt_answered(struct rig *g, void *arg) { return redirc_alt_status(g->c) >= 0; }

struct recv_want {
    size_t len;
    uint64_t outs;
};

/* every OUT answered (in order), and the receiving stream has brought len bytes */
static bool recv_all(struct rig *g, void *arg)
{
    struct recv_want *w = arg;
    const uint8_t *d;
    uint8_t buf[64];
    size_t len = sizeof(buf);
    uint64_t id;
    int status;

    while (redirc_pop_done(g->c, &id, &status, buf, &len)) {
        ck_assert_int_eq(status, usb_redir_success);
        ck_assert_uint_eq(id, 2 * w->outs + 1);
        w->outs++;
        len = sizeof(buf);
    }
    return redirc_bulk_recv_data(g->c, &d, NULL) >= w->len;
}

/*
 * Bulk receiving on the loopback's IN endpoint, running while the endpoint
 * is handed over five times: the bytes written to the OUT endpoint come back
 * through the stream once each and in order, and the guest saw no stream
 * status it did not ask for (the stops and starts of a handover are the
 * host side's own).
 */
START_TEST(receiving)
{
    g_autoptr(GByteArray) want = g_byte_array_new();
    struct recv_want w = { 0, 0 };
    const uint8_t *got;
    struct rig g;
    uint64_t k = 0;
    size_t n;

    rig_init(&g);
    redirc_start_bulk_recv(g.c, 900, EP_IN, 512, 2);
    ck_assert(loop_until(&g, bulk_recv_answered, NULL));
    ck_assert_int_eq(redirc_bulk_recv_status(g.c), usb_redir_success);
    ck_assert_uint_eq(redirc_stream_statuses(g.c), 1);
    for (unsigned round = 0; round < ROUNDS; round++) {
        for (unsigned i = 0; i < 3; i++, k++) {
            queue_out(&g, k);
            for (size_t j = 0; j < xlen(k); j++)
                g_byte_array_append(want, &(uint8_t){ xbyte(k, j) }, 1);
        }
        /* some of it received, some still in the loopback or in the socket */
        for (unsigned i = 0; i < 3 + round; i++)
            step(&g);
        hand_over(&g);
    }
    w.len = want->len;
    ck_assert_msg(loop_until(&g, recv_all, &w), "the stream brought %zu of %u bytes",
                  redirc_bulk_recv_data(g.c, &got, NULL), want->len);
    n = redirc_bulk_recv_data(g.c, &got, NULL);
    ck_assert_uint_eq(n, want->len);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want->data[i], "received byte %zu differs (lost or repeated "
                      "data)", i);
    ck_assert_uint_eq(w.outs, k);
    ck_assert_uint_eq(redirc_stream_statuses(g.c), 1);
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_uint_eq(redirc_errors(g.c), 0);
    /* the guest stops it: answered by the fifth successor */
    redirc_stop_bulk_recv(g.c, 901, EP_IN);
    ck_assert(loop_until(&g, statuses, &(unsigned){ 2 }));
    ck_assert_int_eq(redirc_bulk_recv_status(g.c), usb_redir_success);
    rig_fini(&g);
}
END_TEST

struct keys {
    unsigned seen, want;
};

/* reports in order: press of key i (usage 4 + i % 26), then a release */
static bool keys_all(struct rig *g, void *arg)
{
    struct keys *k = arg;
    uint8_t rep[64];
    size_t len = sizeof(rep);

    while (redirc_int_in(g->c, rep, &len)) {
        unsigned key = k->seen / 2;

        ck_assert_uint_eq(len, 8);
        ck_assert_msg(rep[2] == (k->seen % 2 ? 0 : 4 + key % 26), "report %u: usage %02x, "
                      "report of key %u was due (lost or repeated)", k->seen, rep[2], key);
        k->seen++;
        len = sizeof(rep);
    }
    return k->seen >= k->want;
}

/*
 * A HID keyboard the guest reads (interrupt receiving on 0x81), its keys
 * pressed while the endpoint is handed over five times: every press and
 * release reaches the guest once, in order, and no stream status it did
 * not ask for.
 */
START_TEST(keys)
{
    struct keys k = { 0, 0 };
    struct rig g;
    unsigned key = 0;

    rig_init_dev(&g, false, USBSIM_KEYBOARD, USBSIM_PID_KEYBOARD);
    redirc_start_int(g.c, 0, 0x81);
    ck_assert(loop_until(&g, statuses, &(unsigned){ 1 }));
    for (unsigned round = 0; round < ROUNDS; round++) {
        for (unsigned i = 0; i < 2; i++)
            usbsim_key_tap(g.dev, (uint8_t)(4 + key++ % 26));
        for (unsigned i = 0; i < round; i++)
            step(&g);
        hand_over(&g);
        usbsim_key_tap(g.dev, (uint8_t)(4 + key++ % 26));
    }
    k.want = 2 * key;
    ck_assert_msg(loop_until(&g, keys_all, &k), "%u of %u reports", k.seen, k.want);
    for (int i = 0; i < 20; i++)
        step(&g);
    ck_assert(!keys_all(&g, &(struct keys){ k.want, k.want + 1 }));
    ck_assert_uint_eq(redirc_stream_statuses(g.c), 1);
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_uint_eq(redirc_errors(g.c), 0);
    rig_fini(&g);
}
END_TEST

#define ISO_EP      0x83
#define ISO_PKTS    8       /* packets per URB */
#define ISO_URBS    2
#define ISO_WINDOW  2       /* frames that pass while no URB is in the device */

/*
 * The simulator's isochronous bus runs on the test's clock: a URB waits in
 * it until the test lets its frames pass (usbsim_iso_tick), however long the
 * test takes.  On a real bus an isochronous URB is given back once its
 * frames have passed (8 ms here), so the timeout usbredirhost puts on it
 * (1 s, its ISO_TIMEOUT) never fires.  Here it fired when a loaded machine
 * ran the test slowly: libusb discarded the waiting URB as timed out,
 * usbredirhost sent the guest one error packet for it (no data: not in the
 * guest's log), took its ISO_PKTS ids and submitted it again behind the
 * other URB, whose packets then came first with ids ISO_PKTS further on
 * ("packet 62 has id 70").  That is the bus clock standing still, not a
 * handover: isochronous transfers go to the simulator without a timeout.
 */
int LIBUSB_CALL libusb_submit_transfer(struct libusb_transfer *t);
int LIBUSB_CALL libusb_submit_transfer(struct libusb_transfer *t)
{
    static int (*real)(struct libusb_transfer *);

    if (!real)
        real = (int (*)(struct libusb_transfer *))dlsym(RTLD_NEXT, "libusb_submit_transfer");
    if (!real)
        return LIBUSB_ERROR_NOT_SUPPORTED;
    if (t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS)
        t->timeout = 0;
    return real(t);
}

static bool iso_started(struct rig *g, void *arg)
{
    return redirc_iso_statuses(g->c) >= *(unsigned *)arg;
}

/* every URB of the stream is in the device again (none filled yet) */
static bool iso_all_waiting(struct rig *g, void *arg)
{
    return usbsim_urbs_pending(g->dev) == ISO_URBS;
}

struct iso_want {
    size_t packets;
};

static bool iso_received(struct rig *g, void *arg)
{
    const uint64_t *ids;
    const uint32_t *frames;

    return redirc_iso_log(g->c, &ids, &frames) >= ((struct iso_want *)arg)->packets;
}

/* whole URBs' worth of frames, each URB given back and submitted again */
static void iso_run(struct rig *g, unsigned urbs)
{
    for (unsigned i = 0; i < urbs; i++) {
        ck_assert_msg(loop_until(g, iso_all_waiting, NULL), "the stream's URBs are not back "
                      "in the device (%u waiting)", usbsim_urbs_pending(g->dev));
        usbsim_iso_tick(g->dev, ISO_PKTS);
    }
    ck_assert(loop_until(g, iso_all_waiting, NULL));
}

/* the switch window: frames pass on the bus with no URB of the stream in the device */
static void iso_window(struct rig *g)
{
    ck_assert_uint_eq(usbsim_urbs_pending(g->dev), 0);
    usbsim_iso_tick(g->dev, ISO_WINDOW);
}

/* A copy of state with byte `at` (from the end) changed: refused, naming `what`. */
static void refuse_corrupt(struct rig *g, const GByteArray *state, size_t from_end, uint8_t v,
                           const char *what)
{
    g_autoptr(GByteArray) bad = g_byte_array_new();
    struct ferry_usb_redir *r2 = NULL;
    char why[300];
    int rc;

    g_byte_array_append(bad, state->data, state->len);
    bad->data[bad->len - from_end] = v;
    rc = usb_redir_adopt(g->h, NULL, dup(usb_redir_fd(g->r)), bad->data, bad->len, "x", &rops,
                         g, &r2, why, sizeof(why));
    ck_assert_int_eq(rc, -EBADMSG);
    ck_assert_ptr_null(r2);
    ck_assert_msg(strstr(why, what), "refused for another reason: %s", why);
}

/*
 * An isochronous IN stream (a camera, a microphone: interface 1 on
 * alternate setting 1, endpoint 0x83, 8 packets per URB, 2 URBs), the
 * simulator's frames passing by the test's clock.  Five handovers, each
 * with a URB part-filled (3 of its 8 frames): the predecessor stops the
 * stream and sends on what that URB had received, ISO_WINDOW frames pass
 * with no URB in the device, the successor selects the alternate setting
 * again (in its host side only) and starts the stream again.  The guest
 * sees every packet the device filled once, in order; the ids go on by one
 * per packet across every switch; the frames missing are exactly those of
 * the switch windows; no stream status, no second connect.
 */
START_TEST(iso)
{
    g_autoptr(GByteArray) state = g_byte_array_new();
    struct usbsim_iso_stats st;
    struct iso_want w;
    const uint64_t *ids;
    const uint32_t *frames;
    uint64_t gap_sum = 0, gap_max = 0;
    struct rig g;
    char why[300];
    size_t n;

    rig_init(&g);
    usbsim_iso_manual(g.dev, true);
    redirc_set_alt(g.c, 902, 1, 1);
    ck_assert(loop_until(&g, alt_answered, NULL));
    ck_assert_int_eq(redirc_alt_status(g.c), usb_redir_success);
    redirc_start_iso(g.c, 903, ISO_EP, ISO_PKTS, ISO_URBS);
    ck_assert(loop_until(&g, iso_started, &(unsigned){ 1 }));
    for (unsigned round = 0; round < ROUNDS; round++) {
        iso_run(&g, 2 + round);
        usbsim_iso_tick(g.dev, 3);          /* the oldest URB part-filled */
        hand_over_window(&g, iso_window);
        gap_sum += usb_redir_stream_gap_us(g.r);
        gap_max = MAX(gap_max, usb_redir_stream_gap_us(g.r));
        ck_assert_msg(usb_redir_stream_gap_us(g.r) > 0, "the successor measured no switch "
                      "window");
    }
    iso_run(&g, 3);
    usbsim_iso_stats(g.dev, &st);
    w.packets = st.completed_packets;
    ck_assert_msg(loop_until(&g, iso_received, &w), "%zu of %" PRIu64 " packets the device "
                  "filled reached the guest", redirc_iso_log(g.c, &ids, &frames),
                  st.completed_packets);
    n = redirc_iso_log(g.c, &ids, &frames);
    ck_assert_uint_eq(n, st.completed_packets);
    ck_assert_uint_eq(st.partial_discards, ROUNDS);
    ck_assert_uint_eq(st.lost, (uint64_t)ROUNDS * ISO_WINDOW);
    for (size_t k = 0; k < n; k++) {
        ck_assert_msg(ids[k] == k, "packet %zu has id %" PRIu64 " (the ids do not go on)", k,
                      ids[k]);
        ck_assert_msg(k == 0 || frames[k] > frames[k - 1], "packet %zu: frame %u after frame "
                      "%u (repeated or out of order)", k, frames[k], frames[k - 1]);
    }
    /* every frame of the bus reached the guest but those of the switch windows */
    ck_assert_uint_eq((uint64_t)frames[n - 1] + 1 - n, st.lost);
    ck_assert_uint_eq(st.frames, (uint64_t)frames[n - 1] + 1);
    ck_assert_uint_eq(redirc_iso_statuses(g.c), 1);
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_uint_eq(redirc_errors(g.c), 0);
    fprintf(stderr, "test-usb-handover: iso switch window (no URB in the device, in one "
            "process): mean %" PRIu64 " us, max %" PRIu64 " us over %d handovers; frames "
            "missing: %u per handover (the simulator's bus clock is the test's)\n",
            gap_sum / ROUNDS, gap_max, ROUNDS, ISO_WINDOW);

    /* a state with a corrupt stream or setting: refused, naming it */
    usb_redir_quiesce(g.r);
    ck_assert_msg(loop_until(&g, ready, NULL), "not ready");
    ck_assert_int_eq(usb_redir_export(g.r, state, why, sizeof(why)), 0);
    /* ... iso record (endpoint, pkts_per_urb, no_urbs, next u64), then 24 bytes */
    ck_assert_uint_eq(state->data[state->len - 24 - 11], ISO_EP);
    refuse_corrupt(&g, state, 24 + 11 - 1, 0, "isochronous stream on endpoint 83");
    refuse_corrupt(&g, state, 24 + 11 - 2, 17, "isochronous stream on endpoint 83");
    refuse_corrupt(&g, state, 24 + 11, 0x13, "isochronous stream on endpoint 13");
    /* ... the alternate settings before it: interface 1 on 1 */
    ck_assert_uint_eq(state->data[state->len - 24 - 15 - 2], 1);
    refuse_corrupt(&g, state, 24 + 15 + 2, 40, "interface 40");
    refuse_corrupt(&g, state, 24 + 15 + 1, 0, "alternate setting 0 of interface 1");
    usb_redir_resume(g.r);
    /* the stream runs on after the failed handovers; the guest stops it */
    usbsim_iso_stats(g.dev, &st);
    iso_run(&g, 2);
    w.packets = n + 2 * ISO_PKTS;
    ck_assert(loop_until(&g, iso_received, &w));
    n = redirc_iso_log(g.c, &ids, &frames);
    ck_assert_uint_eq(ids[n - 1], n - 1);
    redirc_stop_iso(g.c, 904, ISO_EP);
    ck_assert(loop_until(&g, iso_started, &(unsigned){ 2 }));
    rig_fini(&g);
}
END_TEST

static bool streams_answered(struct rig *g, void *arg)
{
    return redirc_bulk_streams_status(g->c, NULL) >= 0;
}

/*
 * Bulk streams (USB 3, UAS): the kernel keeps them with the usbfs file,
 * which is handed over; the successor has only the bookkeeping.  Allocated
 * by the guest, they stay allocated through three handovers (the device
 * sees no free and no second alloc) while bulk transfers go on, and the
 * guest frees them through the third successor.
 */
START_TEST(streams)
{
    const uint32_t eps = 1u << (16 + 2) | 1u << 1;     /* IN 0x82, OUT 0x01 */
    unsigned allocs, frees, now;
    struct tally *t = g_new0(struct tally, 1);
    uint32_t count;
    struct rig g;

    rig_init(&g);
    redirc_alloc_bulk_streams(g.c, 910, eps, 16);
    ck_assert(loop_until(&g, streams_answered, NULL));
    ck_assert_int_eq(redirc_bulk_streams_status(g.c, &count), usb_redir_success);
    ck_assert_uint_eq(count, 16);
    for (unsigned round = 0; round < 3; round++) {
        queue_pairs(&g, t->want, 2);
        t->want += 2;
        hand_over(&g);
        ck_assert(loop_until(&g, tally_all, t));
        usbsim_streams(g.dev, &allocs, &frees, &now);
        ck_assert_uint_eq(allocs, 1);
        ck_assert_uint_eq(frees, 0);
        ck_assert_uint_eq(now, 16);
    }
    redirc_free_bulk_streams(g.c, 911, eps);
    ck_assert(loop_until(&g, streams_answered, NULL));
    ck_assert_int_eq(redirc_bulk_streams_status(g.c, &count), usb_redir_success);
    ck_assert_uint_eq(count, 0);
    usbsim_streams(g.dev, &allocs, &frees, &now);
    ck_assert_uint_eq(allocs, 1);
    ck_assert_uint_eq(frees, 1);
    ck_assert_uint_eq(now, 0);
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_uint_eq(redirc_errors(g.c), 0);
    g_free(t);
    rig_fini(&g);
}
END_TEST

/* ---- a device shared on the network, handed from service to service ---- */

static const struct ferry_usb_service_ops svc_ops = { .log = tlog };

static bool svc_has_dev(struct rig *g, void *arg)
{
    size_t n;
    const struct ferry_usb_devinfo *d = usb_host_devices(usb_service_host(arg), &n);

    for (size_t i = 0; i < n; i++)
        if (d[i].vid == USBSIM_VID)
            return true;
    return false;
}

static bool svc_connected(struct rig *g, void *arg)
{
    return usb_service_connected(arg) == 1 && redirc_connected(g->c);
}

static bool svc_idle(struct rig *g, void *arg)
{
    return usb_service_connected(arg) == 0;
}

/* A successor service on a loop of its own (the predecessor's runs no more,
 * as a replaced ferry-dm's), built from *svc's state and copies of its fds. */
static struct ferry_usb_service *svc_hand_over(struct rig *g, struct ferry_usb_service *svc,
                                               struct event_base **base)
{
    g_autoptr(GByteArray) state = g_byte_array_new();
    struct ferry_usb_service *next = NULL;
    int fds[16], copies[16];
    unsigned n = 0;
    char why[400];

    ck_assert_msg(usb_service_quiesce(svc, WAIT_MS, why, sizeof(why)) == 0, "quiesce: %s", why);
    ck_assert_msg(usb_service_export(svc, state, fds, G_N_ELEMENTS(fds), &n, why,
                                     sizeof(why)) == 0, "export: %s", why);
    /* sockets as SCM_RIGHTS would pass them; a usbfs fd as it is (umockdev
     * answers ioctls on the fds it saw opened, not on copies) */
    for (unsigned i = 0; i < n; i++) {
        char link[PATH_MAX], path[64];
        ssize_t k;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
        k = readlink(path, link, sizeof(link) - 1);
        link[k > 0 ? k : 0] = 0;
        copies[i] = strstr(link, "/dev/bus/usb/") ? fds[i] : dup(fds[i]);
    }
    *base = base_new();
    g->b = *base;
    ck_assert_int_eq(usb_service_new(*base, NULL, &svc_ops, NULL, &next), 0);
    ck_assert(loop_until(g, svc_has_dev, next));
    ck_assert_msg(usb_service_adopt(next, state->data, state->len, copies, n, why,
                                    sizeof(why)) == 0, "adopt: %s", why);
    return next;
}

/*
 * `share`: the vendor loopback shared on a unix socket (as on TCP), handed
 * over twice: first with no peer (the listening socket alone: the next peer
 * connects to the successor), then with that peer connected and transfers
 * going (its connection goes along: no second connect, no parser error,
 * every answer once in order).  When the peer leaves, the second successor
 * takes the next one on the same socket.
 */
START_TEST(share)
{
    struct ferry_usb_service *svc[3] = { NULL };
    struct event_base *base[3] = { NULL };
    struct tally *t = g_new0(struct tally, 1);
    char err[FERRY_USB_ERR_MAX], dir[64], addr[128];
    struct rig g;
    int fd;

    memset(&g, 0, sizeof(g));
    g.c0 = g.e1 = -1;
    g.sim = usbsim_new();
    ck_assert_msg(g.sim, "not under umockdev-wrapper (meson runs this test with it)");
    g.dev = usbsim_add(g.sim, USBSIM_VENDOR, "1-4", "SHARE1");
    ck_assert_ptr_nonnull(g.dev);
    g_strlcpy(dir, "/tmp/ferry-usb-handover-XXXXXX", sizeof(dir));
    ck_assert_ptr_nonnull(g_mkdtemp(dir));
    snprintf(addr, sizeof(addr), "unix:%s/share.sock", dir);
    base[0] = base_new();
    g.b = base[0];
    ck_assert_int_eq(usb_service_new(base[0], NULL, &svc_ops, NULL, &svc[0]), 0);
    ck_assert(loop_until(&g, svc_has_dev, svc[0]));
    ck_assert_msg(usb_service_share(svc[0], "1-4", addr, err, sizeof(err)) == 0, "%s", err);

    /* no peer yet: the listening socket alone */
    svc[1] = svc_hand_over(&g, svc[0], &base[1]);
    fd = usb_connect(addr, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    g.c = redirc_new(fd);
    ck_assert_msg(loop_until(&g, svc_connected, svc[1]), "the successor took no peer on the "
                  "handed listening socket");
    queue_pairs(&g, 0, NQ);
    t->want = NQ;
    ck_assert(loop_until(&g, tally_all, t));

    /* the peer connected, requests in the socket and in the device */
    queue_pairs(&g, t->want, NQ);
    t->want += NQ;
    for (int i = 0; i < 3; i++)
        step(&g);
    svc[2] = svc_hand_over(&g, svc[1], &base[2]);
    ck_assert_msg(loop_until(&g, tally_all, t), "%" PRIu64 " INs and %" PRIu64 " OUTs of %"
                  PRIu64 " answered after the handover", t->next_in, t->next_out, t->want);
    queue_pairs(&g, t->want, NQ);
    t->want += NQ;
    ck_assert(loop_until(&g, tally_all, t));
    ck_assert_uint_eq(usb_service_connected(svc[2]), 1);
    ck_assert_uint_eq(redirc_connects(g.c), 1);
    ck_assert_msg(redirc_errors(g.c) == 0, "the peer's parser complained %u times",
                  redirc_errors(g.c));

    /* it leaves; the next peer is the successor's, on the same socket */
    redirc_free(g.c);
    g.c = NULL;
    ck_assert(loop_until(&g, svc_idle, svc[2]));
    fd = usb_connect(addr, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    g.c = redirc_new(fd);
    ck_assert(loop_until(&g, svc_connected, svc[2]));
    memset(t, 0, sizeof(*t));
    queue_pairs(&g, 0, 2);
    t->want = 2;
    ck_assert(loop_until(&g, tally_all, t));

    redirc_free(g.c);
    /* newest first: the last one's free closes the usbfs fd they share */
    for (int i = 2; i >= 0; i--) {
        usb_service_free(svc[i]);
        event_base_free(base[i]);
    }
    usbsim_free(g.sim);
    g_free(t);
    unlink(addr + 5);
    rmdir(dir);
}
END_TEST

START_TEST(refusals)
{
    g_autoptr(GByteArray) state = g_byte_array_new();
    struct ferry_usb_redir *r2 = NULL;
    struct rig g;
    char why[300];
    int rc;

    rig_init(&g);
    usb_redir_quiesce(g.r);
    ck_assert_msg(loop_until(&g, ready, NULL), "not ready");
    ck_assert_int_eq(usb_redir_export(g.r, state, why, sizeof(why)), 0);
    usb_redir_resume(g.r);

    /* a state of another version, and a truncated one */
    state->data[4] ^= 2;
    rc = usb_redir_adopt(g.h, NULL, dup(usb_redir_fd(g.r)), state->data, state->len, "x", &rops,
                         &g, &r2, why, sizeof(why));
    ck_assert_int_eq(rc, -EPROTONOSUPPORT);
    ck_assert_msg(strstr(why, "version"), "%s", why);
    state->data[4] ^= 2;
    rc = usb_redir_adopt(g.h, NULL, dup(usb_redir_fd(g.r)), state->data, state->len - 3, "x",
                         &rops, &g, &r2, why, sizeof(why));
    ck_assert_int_eq(rc, -EBADMSG);
    ck_assert_ptr_null(r2);
    /* the old one still serves */
    queue_pairs(&g, 0, 2);
    {
        struct tally *t = g_new0(struct tally, 1);

        t->want = 2;
        ck_assert(loop_until(&g, tally_all, t));

        /* a filter from the peer: not handed over (named), and it serves on */
        redirc_filter(g.c);
        for (int i = 0; i < 20; i++)
            step(&g);
        usb_redir_quiesce(g.r);
        for (int i = 0; i < 20; i++)
            step(&g);
        rc = usb_redir_handover_ready(g.r, why, sizeof(why));
        ck_assert_int_eq(rc, -EBUSY);
        ck_assert_msg(strstr(why, "filter"), "reason: %s", why);
        ck_assert_int_eq(usb_redir_export(g.r, state, why, sizeof(why)), -EBUSY);
        usb_redir_resume(g.r);
        queue_pairs(&g, 2, 2);
        t->want = 4;
        ck_assert(loop_until(&g, tally_all, t));
        g_free(t);
    }
    rig_fini(&g);
}
END_TEST

static TCase *handover_tcase(void)
{
    return FERRY_CHECK_TCASE("handover", 300, stream, split, receiving, keys, iso, streams,
                             share, refusals);
}

FERRY_CHECK_MAIN("usb-handover", handover_tcase);
