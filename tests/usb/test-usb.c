// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The usb suite: libferry-usb against simulated devices (umockdev, see
 * sim/usbsim.h) driven by unmodified libusb.  Run under umockdev-wrapper.
 * The attach tests use a real QEMU (TCG, vCPUs stopped: no guest needed)
 * and check its view of its USB bus through QMP.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <libusb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redir-client.h"
#include "tests/check-main.h"
#include "usb/ferry-usb.h"
#include "usbsim.h"

#define WAIT_MS 30000

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_INFO || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-usb: %s\n", msg);
}

/* Run the loop (and the client, if any) until pred holds or time is up. */
static bool loop_until(struct event_base *b, struct redirc *c, bool (*pred)(void *), void *arg,
                       int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (!pred(arg)) {
        if (g_get_monotonic_time() > end)
            return false;
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (c)
            redirc_step(c, 1);
        else
            g_usleep(1000);
    }
    return true;
}

/* umockdev's device nodes are regular files, which epoll refuses: use
 * poll(2) underneath libevent here (real usbfs nodes work with epoll). */
static struct event_base *base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;

    event_config_avoid_method(cfg, "epoll");
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b;
}

static struct usbsim *sim_or_skip(void)
{
    struct usbsim *sim = usbsim_new();

    ck_assert_msg(sim, "not under umockdev-wrapper (meson runs this test with it)");
    return sim;
}

/* ---- enumeration ------------------------------------------------------- */

static const struct ferry_usb_devinfo *find_port(struct ferry_usb_host *h, const char *port)
{
    size_t n;
    const struct ferry_usb_devinfo *d = usb_host_devices(h, &n);

    for (size_t i = 0; i < n; i++)
        if (!strcmp(d[i].port, port))
            return &d[i];
    return NULL;
}

START_TEST(test_enumerate)
{
    struct usbsim *sim = sim_or_skip();
    struct event_base *b = base_new();
    struct ferry_usb_host_ops ops = { .log = tlog };
    struct ferry_usb_host *h;
    const struct ferry_usb_devinfo *d;
    size_t n;

    ck_assert_ptr_nonnull(usbsim_add(sim, USBSIM_KEYBOARD, "1-2", "KBD0001"));
    ck_assert_ptr_nonnull(usbsim_add(sim, USBSIM_STORAGE, "1-3.1", "DISK0001"));
    ck_assert_ptr_nonnull(usbsim_add(sim, USBSIM_VENDOR, "1-4", NULL));
    ck_assert_ptr_nonnull(usbsim_add(sim, USBSIM_DISGUISED, "1-5", NULL));
    ck_assert_int_eq(usb_host_new(b, true, &ops, NULL, &h), 0);
    usb_host_devices(h, &n);
    ck_assert_uint_ge(n, 4);

    d = find_port(h, "1-2");
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->vid, USBSIM_VID);
    ck_assert_uint_eq(d->pid, USBSIM_PID_KEYBOARD);
    ck_assert_str_eq(d->manufacturer, "Ferry");
    ck_assert_str_eq(d->product, "Ferry Sim Keyboard");
    ck_assert_str_eq(d->serial, "KBD0001");
    ck_assert_int_eq(d->speed_mbps, 12);
    ck_assert_uint_eq(d->n_ifaces, 1);
    ck_assert_uint_eq(d->ifaces[0].cls, 3);
    ck_assert_str_eq(d->driver, "usbhid");
    ck_assert_uint_eq(d->bus, 1);

    d = find_port(h, "1-3.1");
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->pid, USBSIM_PID_STORAGE);
    ck_assert_int_eq(d->speed_mbps, 480);
    ck_assert_uint_eq(d->ifaces[0].cls, 8);
    ck_assert_str_eq(d->driver, "usb-storage");

    d = find_port(h, "1-4");
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->n_ifaces, 2);
    ck_assert_str_eq(d->serial, "");
    ck_assert_str_eq(d->driver, "");
    {
        char id[64];
        usb_identity(d, id, sizeof(id));
        ck_assert_str_eq(id, "1-4");
        d = find_port(h, "1-2");
        usb_identity(d, id, sizeof(id));
        ck_assert_str_eq(id, "1d50:6101:KBD0001");
    }
    /* The vendor device's altsetting 1 is the same class as altsetting 0:
     * nothing else to judge.  The disguised one hides a keyboard there. */
    d = find_port(h, "1-4");
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->n_other, 0);
    d = find_port(h, "1-5");
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->n_ifaces, 1);
    ck_assert_uint_eq(d->ifaces[0].cls, 0xff);
    ck_assert_uint_eq(d->n_other, 1);
    ck_assert_uint_eq(d->other[0].cls, 3);
    ck_assert_uint_eq(d->other[0].proto, 1);
    ck_assert(!d->other_truncated);
    {
        char why[FERRY_USB_ERR_MAX];

        ck_assert_int_eq(usb_policy_check(NULL, d, why, sizeof(why)), -EPERM);
        ck_assert_ptr_nonnull(strstr(why, "HID keyboards"));
    }
    usb_host_free(h);
    event_base_free(b);
    usbsim_free(sim);
}
END_TEST

/* ---- hotplug through the event loop ------------------------------------ */

struct hp {
    int arrived, left;
    struct ferry_usb_devinfo last;
};

static void hp_arrived(void *o, const struct ferry_usb_devinfo *d)
{
    struct hp *hp = o;

    if (d->vid == USBSIM_VID) {
        hp->arrived++;
        hp->last = *d;
    }
}

static void hp_left(void *o, const struct ferry_usb_devinfo *d)
{
    struct hp *hp = o;

    if (d->vid == USBSIM_VID)
        hp->left++;
}

static bool hp_arr1(void *o) { return ((struct hp *)o)->arrived >= 1; }
static bool hp_left1(void *o) { return ((struct hp *)o)->left >= 1; }
static bool hp_arr2(void *o) { return ((struct hp *)o)->arrived >= 2; }

START_TEST(test_hotplug)
{
    struct usbsim *sim = sim_or_skip();
    struct event_base *b = base_new();
    struct hp hp = { 0 };
    struct ferry_usb_host_ops ops = { .log = tlog, .arrived = hp_arrived, .left = hp_left };
    struct ferry_usb_host *h;
    struct usbsim_dev *dev;
    int addr1;

    ck_assert_int_eq(usb_host_new(b, true, &ops, &hp, &h), 0);
    ck_assert_int_eq(hp.arrived, 0);
    dev = usbsim_add(sim, USBSIM_VENDOR, "1-5", "V1");
    ck_assert_ptr_nonnull(dev);
    ck_assert_msg(loop_until(b, NULL, hp_arr1, &hp, WAIT_MS), "no arrival");
    ck_assert_str_eq(hp.last.port, "1-5");
    ck_assert_str_eq(hp.last.serial, "V1");
    addr1 = hp.last.addr;
    usbsim_unplug(sim, dev);
    ck_assert_msg(loop_until(b, NULL, hp_left1, &hp, WAIT_MS), "no departure");
    ck_assert_ptr_null(find_port(h, "1-5"));
    ck_assert_int_eq(usbsim_replug(sim, dev), 0);
    ck_assert_msg(loop_until(b, NULL, hp_arr2, &hp, WAIT_MS), "no second arrival");
    ck_assert_int_ne(hp.last.addr, addr1);
    ck_assert_ptr_nonnull(find_port(h, "1-5"));
    usb_host_free(h);
    event_base_free(b);
    usbsim_free(sim);
}
END_TEST

/* ---- device specifications ------------------------------------------------ */

START_TEST(test_spec)
{
    static const struct {
        const char *in;
        int ok;
        enum ferry_usb_spec_kind kind;
    } t[] = {
        { "046d:c52b", 1, FERRY_USB_SPEC_VIDPID },
        { "046D:C52B:ABC123", 1, FERRY_USB_SPEC_VIDPID_SERIAL },
        { "1-2", 1, FERRY_USB_SPEC_PORT },
        { "3-1.4.2", 1, FERRY_USB_SPEC_PORT },
        { "1.5", 1, FERRY_USB_SPEC_BUSADDR },
        { "", 0, 0 }, { "046d", 0, 0 }, { "046d:", 0, 0 }, { "12345:1", 0, 0 },
        { "zz:11", 0, 0 }, { "1-", 0, 0 }, { "1-2-3", 0, 0 }, { "1.0", 0, 0 },
        { "1.300", 0, 0 }, { "046d:c52b:", 0, 0 }, { "-1", 0, 0 },
    };
    struct ferry_usb_spec s;
    char buf[64];

    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        int r = usb_spec_parse(t[i].in, &s);
        ck_assert_msg((r == 0) == (t[i].ok == 1), "spec '%s': %d", t[i].in, r);
        if (r == 0)
            ck_assert_int_eq(s.kind, t[i].kind);
    }
    ck_assert_int_eq(usb_spec_parse("046D:C52B:x", &s), 0);
    usb_spec_format(&s, buf, sizeof(buf));
    ck_assert_str_eq(buf, "046d:c52b:x");
}
END_TEST

/* ---- policy, table-driven ---------------------------------------------------- */

static struct ferry_usb_devinfo mkdev(uint16_t vid, uint16_t pid, uint8_t cls,
                                      uint8_t icls, uint8_t isub, uint8_t iproto)
{
    struct ferry_usb_devinfo d = { .vid = vid, .pid = pid, .cls = cls, .bcd_device = 0x100,
                                   .n_ifaces = 1 };

    d.ifaces[0].cls = icls;
    d.ifaces[0].subcls = isub;
    d.ifaces[0].proto = iproto;
    return d;
}

START_TEST(test_policy)
{
    const struct ferry_usb_devinfo kbd = mkdev(0x046d, 0xc31c, 0, 3, 1, 1);
    const struct ferry_usb_devinfo mouse = mkdev(0x046d, 0xc077, 0, 3, 1, 2);
    const struct ferry_usb_devinfo hub = mkdev(0x05e3, 0x0608, 9, 9, 0, 0);
    const struct ferry_usb_devinfo disk = mkdev(0x0781, 0x5567, 0, 8, 6, 0x50);
    const struct ferry_usb_devinfo hidgen = mkdev(0x1234, 0x0001, 0, 3, 0, 0);
    struct ferry_usb_devinfo combo = mkdev(0x0781, 0x5567, 0, 8, 6, 0x50);
    static const struct {
        const char *rules;
        int dev;            /* 0 kbd 1 mouse 2 hub 3 disk 4 generic hid 5 disk+kbd
                               6 disk with a keyboard altsetting 7 too many kinds */
        int allowed;
        const char *why;    /* substring of the verdict */
    } t[] = {
        { NULL, 0, 0, "built-in rule: HID keyboards" },
        { NULL, 1, 0, "built-in rule: HID mice" },
        { NULL, 2, 0, "built-in rule: hubs" },
        { NULL, 3, 1, "allowed by default" },
        { NULL, 4, 1, "allowed by default" },
        { "0x03,-1,-1,-1,1", 0, 1, "rule 1 '0x03,-1,-1,-1,1'" },
        { "-1,0x046d,0xc31c,-1,1", 0, 1, "rule 1" },
        { "-1,0x046d,0xc31c,-1,1", 1, 0, "built-in rule: HID mice" },
        { "0x08,-1,-1,-1,0|-1,-1,-1,-1,1", 3, 0, "rule 1 '0x08,-1,-1,-1,0'" },
        { "0x08,-1,-1,-1,0|-1,-1,-1,-1,1", 4, 1, "rule 2 '-1,-1,-1,-1,1'" },
        { "-1,0x0781,-1,-1,0", 3, 0, "rule 1" },
        { "0x09,-1,-1,-1,1", 2, 1, "rule 1" },
        { "-1,0x9999,-1,-1,1", 3, 1, "no rule matched" },
        { "0x03,-1,-1,-1,0", 0, 0, "rule 1 '0x03,-1,-1,-1,0'" },
        /* a rule for a composite device's disk does not name its keyboard */
        { "0x08,-1,-1,-1,1", 5, 0, "built-in rule: HID keyboards" },
        { "0x08,-1,-1,-1,1|0x03,-1,-1,-1,1", 5, 1, "rule 2" },
        { "-1,0x0781,0x5567,-1,1", 5, 1, "rule 1" },
        /* a keyboard only in another altsetting or configuration counts too */
        { NULL, 6, 0, "built-in rule: HID keyboards" },
        { "0x08,-1,-1,-1,1", 6, 0, "built-in rule: HID keyboards" },
        { "0x08,-1,-1,-1,1|0x03,-1,-1,-1,0", 6, 0, "rule 2 '0x03,-1,-1,-1,0'" },
        { "-1,0x0781,0x5567,-1,1", 6, 1, "rule 1" },
        { NULL, 7, 0, "more configurations or kinds of interfaces" },
        { "-1,-1,-1,-1,1", 7, 0, "more configurations or kinds of interfaces" },
    };
    struct ferry_usb_devinfo hidden = mkdev(0x0781, 0x5567, 0, 8, 6, 0x50);
    struct ferry_usb_devinfo toomany = mkdev(0x0781, 0x5567, 0, 8, 6, 0x50);
    const struct ferry_usb_devinfo *devs[] = { &kbd, &mouse, &hub, &disk, &hidgen, &combo,
                                               &hidden, &toomany };
    char why[FERRY_USB_ERR_MAX], err[FERRY_USB_ERR_MAX];
    struct ferry_usb_policy *p;

    combo.n_ifaces = 2;
    combo.ifaces[1].cls = 3;
    combo.ifaces[1].subcls = 1;
    combo.ifaces[1].proto = 1;
    hidden.n_other = 1;
    hidden.other[0] = (struct ferry_usb_iface){ .cls = 3, .subcls = 1, .proto = 1 };
    toomany.other_truncated = true;
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        int r;
        ck_assert_int_eq(usb_policy_new(t[i].rules, &p, err, sizeof(err)), 0);
        r = usb_policy_check(p, devs[t[i].dev], why, sizeof(why));
        ck_assert_msg((r == 0) == (t[i].allowed == 1), "case %zu: verdict %d (%s)", i, r, why);
        ck_assert_msg(strstr(why, t[i].why), "case %zu: '%s' lacks '%s'", i, why, t[i].why);
        usb_policy_free(p);
    }
    ck_assert_int_eq(usb_policy_new("bogus", &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "usbredir filter syntax"));
    ck_assert_int_eq(usb_policy_new("1,2,3", &p, err, sizeof(err)), -EINVAL);
}
END_TEST

/* ---- sharing, usbredir round trips, malformed input --------------------------- */

struct env {
    struct usbsim *sim;
    struct event_base *b;
    struct ferry_usb_service *svc;
    char dir[64];
};

static void env_init(struct env *e)
{
    struct ferry_usb_service_ops ops = { .log = tlog };

    e->sim = sim_or_skip();
    e->b = base_new();
    g_strlcpy(e->dir, "/tmp/ferry-usb-test-XXXXXX", sizeof(e->dir));
    ck_assert_ptr_nonnull(g_mkdtemp(e->dir));
    ck_assert_int_eq(usb_service_new(e->b, e->dir, &ops, NULL, &e->svc), 0);
}

static void env_fini(struct env *e)
{
    usb_service_free(e->svc);
    event_base_free(e->b);
    usbsim_free(e->sim);
    rmdir(e->dir);
}

static bool c_conn(void *o) { return redirc_connected(o); }
static bool c_gone(void *o) { return redirc_closed(o) || redirc_disconnected(o); }

struct wait_done {
    struct redirc *c;
    uint64_t id;
    int status;
    uint8_t buf[65536];
    size_t len;
};

static bool c_done(void *o)
{
    struct wait_done *w = o;

    w->len = sizeof(w->buf);
    return redirc_done(w->c, w->id, &w->status, w->buf, &w->len);
}

static bool dev_arrived(void *o)
{
    struct env *e = o;
    size_t n;
    const struct ferry_usb_devinfo *d = usb_host_devices(usb_service_host(e->svc), &n);

    for (size_t i = 0; i < n; i++)
        if (d[i].vid == USBSIM_VID)
            return true;
    return false;
}

static struct redirc *connect_client(struct env *e, const char *addr)
{
    char err[FERRY_USB_ERR_MAX];
    int fd = usb_connect(addr, err, sizeof(err));

    ck_assert_msg(fd >= 0, "%s", err);
    return redirc_new(fd);
}

static bool alt_answered(void *o) { return redirc_alt_status(o) >= 0; }
static bool iso_flowing(void *o) { return redirc_iso_good(o, 192) >= 32; }

START_TEST(test_share_loopback)
{
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128];
    struct redirc *c;
    struct wait_done w = { 0 };
    uint8_t pattern[3000];
    struct usbsim_dev *dev;

    env_init(&e);
    dev = usbsim_add(e.sim, USBSIM_VENDOR, "1-4", "LOOP1");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    /* over TCP, as `ferry usb share` does (TCP_NODELAY on both ends); the
     * machine is shared, so walk on from a busy port */
    {
        int r = -EADDRINUSE;
        for (int i = 0; i < 50 && r == -EADDRINUSE; i++) {
            snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + (int)((getpid() + i * 7) % 20000));
            r = usb_service_share(e.svc, "1d50:6103", addr, err, sizeof(err));
        }
        ck_assert_msg(r == 0, "%s", err);
    }
    c = connect_client(&e, addr);
    ck_assert_msg(loop_until(e.b, c, c_conn, c, WAIT_MS), "no device_connect");
    ck_assert_uint_eq(redirc_vid(c), USBSIM_VID);
    ck_assert_uint_eq(redirc_pid(c), USBSIM_PID_VENDOR);

    /* control: GET_DESCRIPTOR(device) */
    w.c = c;
    w.id = 1;
    redirc_control(c, 1, 0x80, 6, 0x0100, 0, 18);
    ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
    ck_assert_int_eq(w.status, 0);
    ck_assert_uint_eq(w.len, 18);
    ck_assert_uint_eq(w.buf[8] | w.buf[9] << 8, USBSIM_VID);

    /* bulk loopback: out then in */
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7 + 1);
    redirc_bulk(c, 2, 0x01, pattern, sizeof(pattern));
    w.id = 2;
    ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
    ck_assert_int_eq(w.status, 0);
    redirc_bulk(c, 3, 0x82, NULL, sizeof(pattern));
    w.id = 3;
    ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
    ck_assert_int_eq(w.status, 0);
    ck_assert_uint_eq(w.len, sizeof(pattern));
    ck_assert_mem_eq(w.buf, pattern, sizeof(pattern));
    ck_assert_uint_eq(usb_service_connected(e.svc), 1);

    /* isochronous IN through usbredir: alt setting 1 of interface 1 */
    redirc_set_alt(c, 4, 1, 1);
    ck_assert(loop_until(e.b, c, alt_answered, c, WAIT_MS));
    ck_assert_int_eq(redirc_alt_status(c), 0);
    redirc_start_iso(c, 5, 0x83, 8, 2);
    ck_assert_msg(loop_until(e.b, c, iso_flowing, c, WAIT_MS), "no iso packets");

    /* unplug: the client hears the device is gone */
    usbsim_unplug(e.sim, dev);
    ck_assert_msg(loop_until(e.b, c, c_gone, c, WAIT_MS), "no disconnect after unplug");
    redirc_free(c);
    env_fini(&e);
}
END_TEST

/*
 * A device served on a listening socket made elsewhere (a libvirt domain's:
 * usb_service_serve_listener): the peer that connects gets it; an unplug
 * tells that peer the device is gone but keeps the connection (a hot-added
 * redirdev's chardev does not reconnect), and the replug gives it the
 * device again on the same connection.  A later peer gets it as well.
 */
static bool c_disc(void *o) { return redirc_disconnected(o); }

static bool svc_idle(void *o);

START_TEST(test_serve_listener_replug)
{
    struct env e;
    char err[FERRY_USB_ERR_MAX], path[128], addr[160];
    struct redirc *c;
    struct usbsim_dev *dev;
    int lfd;

    env_init(&e);
    dev = usbsim_add(e.sim, USBSIM_VENDOR, "1-8", "LISTEN1");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(path, sizeof(path), "%s/ferry-listen-%d.sock", g_get_tmp_dir(), (int)getpid());
    snprintf(addr, sizeof(addr), "unix:%s", path);
    unlink(path);
    lfd = usb_listen(addr, err, sizeof(err));
    ck_assert_msg(lfd >= 0, "%s", err);
    ck_assert_msg(usb_service_serve_listener(e.svc, "libvirt:test/ua-ferry-x", lfd,
                                             "1d50:6103:LISTEN1", -1, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert(usb_service_assigned(e.svc, "libvirt:test/ua-ferry-x", "1-8"));
    c = connect_client(&e, addr);
    ck_assert_msg(loop_until(e.b, c, c_conn, c, WAIT_MS), "no device_connect");
    usbsim_unplug(e.sim, dev);
    ck_assert_msg(loop_until(e.b, c, c_disc, c, WAIT_MS), "no device_disconnect after unplug");
    ck_assert(!redirc_closed(c));
    ck_assert_int_eq(usbsim_replug(e.sim, dev), 0);
    ck_assert_msg(loop_until(e.b, c, c_conn, c, WAIT_MS), "no device_connect after the replug");
    ck_assert(!redirc_closed(c));
    ck_assert_uint_eq(redirc_pid(c), USBSIM_PID_VENDOR);
    redirc_free(c);
    ck_assert_msg(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS), "still connected");
    /* the next peer (QEMU after a domain restart) */
    c = connect_client(&e, addr);
    ck_assert_msg(loop_until(e.b, c, c_conn, c, WAIT_MS), "no device_connect for a new peer");
    redirc_free(c);
    ck_assert_msg(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS), "still connected");
    ck_assert_int_eq(usb_service_detach(e.svc, "libvirt:test/ua-ferry-x", "1-8", err,
                                        sizeof(err)), 0);
    unlink(path);
    env_fini(&e);
}
END_TEST

static bool svc_idle(void *o)
{
    return usb_service_connected(((struct env *)o)->svc) == 0;
}

static bool driver_back(void *o)
{
    char drv[32];

    usbsim_driver(o, drv, sizeof(drv));
    return !strcmp(drv, "usb-storage");
}

START_TEST(test_malformed)
{
    static const struct {
        const char *what;
        uint8_t bytes[32];
        size_t len;
    } bad[] = {
        /* hello with an absurd length */
        { "oversized", { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f }, 16 },
        /* unknown type, length smaller than any header */
        { "unknown type", { 0xee, 0xee, 0, 0, 4, 0, 0, 0 }, 16 },
        /* a data packet before hello, claiming 1 GiB */
        { "bulk before hello", { 101, 0, 0, 0, 0, 0, 0, 0x40 }, 16 },
    };
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128], drv[32];
    struct usbsim_dev *dev;

    env_init(&e);
    dev = usbsim_add(e.sim, USBSIM_STORAGE, "1-3", "DISKM");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(addr, sizeof(addr), "unix:%s/m.sock", e.dir);
    ck_assert_msg(usb_service_share(e.svc, "1-3", addr, err, sizeof(err)) == 0, "%s", err);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        struct redirc *c = connect_client(&e, addr);
        int fd;
        ck_assert_msg(loop_until(e.b, c, c_conn, c, WAIT_MS), "%s: no connect", bad[i].what);
        usbsim_driver(dev, drv, sizeof(drv));
        ck_assert_str_eq(drv, "");       /* detached from the host driver */
        /* the raw socket underneath the client */
        fd = usb_connect(addr, err, sizeof(err));
        ck_assert_int_ge(fd, 0);
        close(fd);                       /* a second peer that vanishes at once */
        redirc_step(c, 1);
        redirc_free(c);                  /* peer disappears mid-session */
        ck_assert_msg(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS), "%s: still connected",
                      bad[i].what);
        ck_assert_msg(loop_until(e.b, NULL, driver_back, dev, WAIT_MS),
                      "%s: host driver not given back", bad[i].what);
        /* a peer that sends only garbage */
        fd = usb_connect(addr, err, sizeof(err));
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, bad[i].bytes, bad[i].len), (ssize_t)bad[i].len);
        {
            gint64 end = g_get_monotonic_time() + 20 * 1000 * 1000;
            char tmp[4096];
            bool closed = false;
            while (!closed && g_get_monotonic_time() < end) {
                ssize_t n;
                event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
                n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
                closed = n == 0 || (n < 0 && errno != EAGAIN);
                g_usleep(1000);
            }
            ck_assert_msg(closed, "%s: not disconnected", bad[i].what);
        }
        close(fd);
        ck_assert(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS));
        ck_assert(loop_until(e.b, NULL, driver_back, dev, WAIT_MS));
    }
    /* and the device still serves a well-behaved peer */
    {
        struct redirc *c = connect_client(&e, addr);
        struct wait_done w = { .c = c, .id = 9 };
        ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
        redirc_control(c, 9, 0xa1, 0xfe, 0, 0, 1);     /* GET MAX LUN */
        ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
        ck_assert_int_eq(w.status, 0);
        ck_assert_uint_eq(w.len, 1);
        redirc_free(c);
    }
    env_fini(&e);
}
END_TEST

/*
 * A peer that announces a 100 MiB bulk packet (under usbredirparser's own
 * 128 MiB limit) is refused at its header: Ferry reads no more than
 * FERRY_USB_REDIR_PACKET_MAX of it (plus what the socket buffers hold)
 * instead of buffering it whole.
 */
START_TEST(test_oversized_packet)
{
    enum { ANNOUNCED = 100u << 20, SLACK = 4u << 20 };
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128];
    struct redirc *c;
    uint8_t pkt[16 + 10] = { 0 }, *chunk = g_malloc0(65536);
    uint32_t type = 101, len = 10 + ANNOUNCED;  /* usb_redir_bulk_packet */
    uint64_t id = 7, sent = 0;
    bool refused = false;
    int fd;

    env_init(&e);
    usbsim_add(e.sim, USBSIM_VENDOR, "1-6", "BIG");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(addr, sizeof(addr), "unix:%s/big.sock", e.dir);
    ck_assert_msg(usb_service_share(e.svc, "1-6", addr, err, sizeof(err)) == 0, "%s", err);
    c = connect_client(&e, addr);
    ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
    ck_assert_int_eq(redirc_push(c), 0);       /* at a packet boundary */
    fd = redirc_fd(c);
    /* 64-bit ids (both sides have the cap): type, length, id; then the bulk
     * header: endpoint 0x01 OUT, status, length low 16, stream, length high */
    memcpy(pkt, &type, 4);
    memcpy(pkt + 4, &len, 4);
    memcpy(pkt + 8, &id, 8);
    pkt[16] = 0x01;
    pkt[18] = ANNOUNCED & 0xff;
    pkt[19] = (ANNOUNCED >> 8) & 0xff;
    pkt[24] = (ANNOUNCED >> 16) & 0xff;
    pkt[25] = (ANNOUNCED >> 24) & 0xff;
    ck_assert_int_eq(send(fd, pkt, sizeof(pkt), MSG_NOSIGNAL), (ssize_t)sizeof(pkt));
    while (!refused && sent < ANNOUNCED) {
        size_t want = ANNOUNCED - sent < 65536 ? ANNOUNCED - sent : 65536;
        ssize_t n = send(fd, chunk, want, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0)
            sent += (uint64_t)n;
        else if (n < 0 && errno != EAGAIN)
            refused = true;         /* EPIPE / ECONNRESET: Ferry hung up */
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    ck_assert_msg(refused, "Ferry took all %u bytes of an announced %u MiB packet", ANNOUNCED,
                  ANNOUNCED >> 20);
    ck_assert_msg(sent < FERRY_USB_REDIR_PACKET_MAX + SLACK, "Ferry read %" PRIu64 " bytes of "
                  "the packet before refusing it", sent);
    redirc_free(c);
    ck_assert(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS));
    g_free(chunk);
    env_fini(&e);
}
END_TEST

/* A peer that disappears with a transfer in flight: the endpoint ends, the
 * transfer is cancelled (USBDEVFS_DISCARDURB), and the next peer gets a
 * working device. */
/* A peer that sends requests but never reads the answers: Ferry stops
 * taking its requests instead of queueing answers without end. */
START_TEST(test_peer_never_reads)
{
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128];
    struct redirc *c;
    int left = 0;

    env_init(&e);
    usbsim_add(e.sim, USBSIM_VENDOR, "1-5", "DEAF");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(addr, sizeof(addr), "unix:%s/deaf.sock", e.dir);
    ck_assert_msg(usb_service_share(e.svc, "1-5", addr, err, sizeof(err)) == 0, "%s", err);
    c = connect_client(&e, addr);
    ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
    for (uint64_t i = 0; i < 20000; i++) {
        redirc_control(c, 100 + i, 0x80, 6, 0x0100, 0, 18);   /* GET_DESCRIPTOR device */
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        left = redirc_push(c);
    }
    /* give Ferry every chance to take the rest */
    for (int i = 0; i < 5000 && left > 0; i++) {
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        left = redirc_push(c);
    }
    ck_assert_msg(left > 0, "Ferry took all 20000 requests of a peer that reads nothing");
    redirc_free(c);
    ck_assert(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS));
    env_fini(&e);
}
END_TEST

/* The same in bytes: a peer that asks for 256 KiB answers (bulk loopback)
 * and reads none gets its requests read no more once about
 * FERRY_USB_REDIR_PACKET_MAX of answers wait for it. */
START_TEST(test_peer_never_reads_bulk)
{
    enum { PAIRS = 100, CHUNK = 256 * 1024 };
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128];
    struct redirc *c;
    struct usbsim_dev *dev;
    uint8_t *chunk = g_malloc0(CHUNK);
    uint64_t urbs;

    env_init(&e);
    dev = usbsim_add(e.sim, USBSIM_VENDOR, "1-7", "DEAFBULK");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(addr, sizeof(addr), "unix:%s/deafbulk.sock", e.dir);
    ck_assert_msg(usb_service_share(e.svc, "1-7", addr, err, sizeof(err)) == 0, "%s", err);
    c = connect_client(&e, addr);
    ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
    urbs = usbsim_urbs_done(dev);
    for (unsigned i = 0; i < PAIRS; i++) {
        redirc_bulk(c, 1000 + 2 * i, 0x01, chunk, CHUNK);          /* into the loop */
        redirc_bulk(c, 1001 + 2 * i, 0x82, NULL, CHUNK);           /* and back out */
    }
    for (int i = 0; i < 5000 && redirc_push(c) > 0; i++)
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_msg(usbsim_urbs_done(dev) - urbs < 2 * 2 * (FERRY_USB_REDIR_PACKET_MAX / CHUNK),
                  "Ferry ran %" PRIu64 " of the %u transfers of a peer that reads nothing",
                  usbsim_urbs_done(dev) - urbs, 2 * PAIRS);
    redirc_free(c);
    ck_assert(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS));
    g_free(chunk);
    env_fini(&e);
}
END_TEST

START_TEST(test_peer_vanishes_mid_transfer)
{
    struct env e;
    char err[FERRY_USB_ERR_MAX], addr[128];
    struct redirc *c;
    struct wait_done w = { 0 };
    uint64_t urbs;
    struct usbsim_dev *dev;
    const uint8_t ping[4] = { 1, 2, 3, 4 };

    env_init(&e);
    dev = usbsim_add(e.sim, USBSIM_VENDOR, "1-4", "VANISH");
    ck_assert(loop_until(e.b, NULL, dev_arrived, &e, WAIT_MS));
    snprintf(addr, sizeof(addr), "unix:%s/v.sock", e.dir);
    ck_assert_msg(usb_service_share(e.svc, "1-4", addr, err, sizeof(err)) == 0, "%s", err);
    c = connect_client(&e, addr);
    ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
    urbs = usbsim_urbs_done(dev);
    redirc_bulk(c, 1, 0x82, NULL, 512);          /* nothing to read: stays pending */
    for (int i = 0; i < 200; i++) {
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        redirc_step(c, 1);
    }
    redirc_free(c);
    ck_assert(loop_until(e.b, NULL, svc_idle, &e, WAIT_MS));
    ck_assert_uint_gt(usbsim_urbs_done(dev), urbs);   /* the pending URB was reaped */
    c = connect_client(&e, addr);
    w.c = c;
    ck_assert(loop_until(e.b, c, c_conn, c, WAIT_MS));
    redirc_bulk(c, 2, 0x01, ping, sizeof(ping));
    w.id = 2;
    ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
    redirc_bulk(c, 3, 0x82, NULL, sizeof(ping));
    w.id = 3;
    ck_assert(loop_until(e.b, c, c_done, &w, WAIT_MS));
    ck_assert_int_eq(w.status, 0);
    ck_assert_uint_eq(w.len, sizeof(ping));
    ck_assert_mem_eq(w.buf, ping, sizeof(ping));
    redirc_free(c);
    env_fini(&e);
}
END_TEST

/* ---- the simulator's isochronous IN endpoint through unmodified libusb ---- */

static void LIBUSB_CALL iso_done(struct libusb_transfer *t)
{
    *(int *)t->user_data = 1;
}

START_TEST(test_sim_iso)
{
    struct usbsim *sim = sim_or_skip();
    libusb_context *ctx;
    libusb_device_handle *h;
    struct libusb_transfer *t;
    uint8_t buf[8 * 192];
    int done = 0;

    ck_assert_ptr_nonnull(usbsim_add(sim, USBSIM_VENDOR, "1-7", "ISO1"));
    ck_assert_int_eq(libusb_init(&ctx), 0);
    h = libusb_open_device_with_vid_pid(ctx, USBSIM_VID, USBSIM_PID_VENDOR);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(libusb_claim_interface(h, 1), 0);
    ck_assert_int_eq(libusb_set_interface_alt_setting(h, 1, 1), 0);
    t = libusb_alloc_transfer(8);
    libusb_fill_iso_transfer(t, h, 0x83, buf, sizeof(buf), 8, iso_done, &done, 5000);
    libusb_set_iso_packet_lengths(t, 192);
    memset(buf, 0xee, sizeof(buf));
    ck_assert_int_eq(libusb_submit_transfer(t), 0);
    while (!done)
        libusb_handle_events_completed(ctx, &done);
    ck_assert_int_eq(t->status, LIBUSB_TRANSFER_COMPLETED);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(t->iso_packet_desc[i].status, LIBUSB_TRANSFER_COMPLETED);
        ck_assert_uint_eq(t->iso_packet_desc[i].actual_length, 192);
        /* frame i starts with its sequence number, then counts up */
        ck_assert_uint_eq(buf[i * 192 + 1], (uint8_t)(buf[i * 192] + 1));
    }
    ck_assert_uint_eq((uint8_t)(buf[192] - buf[0]), 1);
    libusb_free_transfer(t);
    libusb_release_interface(h, 1);
    libusb_close(h);
    libusb_exit(ctx);
    usbsim_free(sim);
}
END_TEST

/* ---- fd passing ---------------------------------------------------------------- */

START_TEST(test_fd_passing)
{
    struct usbsim *sim = sim_or_skip();
    struct usbsim_dev *dev = usbsim_add(sim, USBSIM_VENDOR, "1-6", "FD1");
    int sv[2], fd, got = -1, r;
    char msg[64] = { 0 };
    struct stat a, b;

    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    /* the broker opens the node and passes it with the device's identity */
    fd = open(usbsim_devnode(dev), O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(usb_fd_send(sv[0], fd, "1d50:6103:FD1", 14), 0);
    r = usb_fd_recv(sv[1], &got, msg, sizeof(msg));
    ck_assert_int_eq(r, 14);
    ck_assert_str_eq(msg, "1d50:6103:FD1");
    ck_assert_int_ge(got, 0);
    ck_assert_int_eq(fstat(fd, &a), 0);
    ck_assert_int_eq(fstat(got, &b), 0);
    ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    /* a message without an fd, and a truncated one */
    ck_assert_int_eq(usb_fd_send(sv[0], -1, "x", 1), 0);
    r = usb_fd_recv(sv[1], &got, msg, sizeof(msg));
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(got, -1);
    ck_assert_int_eq(usb_fd_send(sv[0], fd, "0123456789", 10), 0);
    r = usb_fd_recv(sv[1], &got, msg, 4);
    ck_assert_int_eq(r, -EMSGSIZE);
    ck_assert_int_eq(got, -1);
    close(fd);
    close(sv[0]);
    close(sv[1]);
    usbsim_free(sim);
}
END_TEST

/* One case per test, so that CK_RUN_CASE=name runs one of them. */
#define ADD(s, fn) do { TCase *tc = tcase_create(#fn); tcase_set_timeout(tc, 240); \
                        tcase_add_test(tc, fn); suite_add_tcase(s, tc); } while (0)

/* A broker opened the node; this process wraps the fd (libusb_wrap_sys_device)
 * and serves it.  (An fd received over SCM_RIGHTS is a new descriptor
 * umockdev's preload does not know, so the transport is tested above and
 * the wrapping here on the broker's own descriptor.) */
static bool wrapped_ended;

static void on_wrapped_end(void *o, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    wrapped_ended = true;
}

START_TEST(test_wrap_fd)
{
    struct usbsim *sim = sim_or_skip();
    struct usbsim_dev *dev = usbsim_add(sim, USBSIM_STORAGE, "1-8", "WRAP1");
    struct event_base *b = base_new();
    struct ferry_usb_host_ops hops = { .log = tlog };
    struct ferry_usb_redir_ops rops = { .log = tlog, .ended = on_wrapped_end };
    struct ferry_usb_host *h;
    struct ferry_usb_redir *r;
    struct libusb_device_handle *handle;
    struct ferry_usb_devinfo info;
    struct redirc *c;
    struct wait_done w = { .id = 5 };
    char err[FERRY_USB_ERR_MAX], drv[32];
    int fd, sv[2];

    ck_assert_ptr_nonnull(dev);
    /* no discovery: this process only ever sees what it was handed */
    ck_assert_int_eq(usb_host_new(b, false, &hops, NULL, &h), 0);
    fd = open(usbsim_devnode(dev), O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(usb_host_wrap_fd(h, fd, &handle, &info, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(info.vid, USBSIM_VID);
    ck_assert_uint_eq(info.pid, USBSIM_PID_STORAGE);
    ck_assert_uint_eq(info.n_ifaces, 1);
    ck_assert_uint_eq(info.ifaces[0].cls, 8);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(usb_redir_new(h, handle, sv[0], "wrapped", &rops, NULL, &r), 0);
    c = redirc_new(sv[1]);
    w.c = c;
    ck_assert_msg(loop_until(b, c, c_conn, c, WAIT_MS), "no device_connect");
    ck_assert_uint_eq(redirc_pid(c), USBSIM_PID_STORAGE);
    usbsim_driver(dev, drv, sizeof(drv));
    ck_assert_str_eq(drv, "");
    redirc_control(c, 5, 0x80, 6, 0x0100, 0, 18);
    ck_assert(loop_until(b, c, c_done, &w, WAIT_MS));
    ck_assert_int_eq(w.status, 0);
    ck_assert_uint_eq(w.len, 18);
    redirc_free(c);
    usb_redir_free(r);
    usbsim_driver(dev, drv, sizeof(drv));
    ck_assert_str_eq(drv, "usb-storage");     /* given back */
    close(fd);
    usb_host_free(h);
    event_base_free(b);
    usbsim_free(sim);
}
END_TEST

/* ---- a hostile QMP peer ------------------------------------------------------ */

/* A fake QEMU on a unix socket: sends script after the connection, ends its
 * side, then reads until the client closes. */
static pid_t fake_qmp(const char *path, const char *script)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    ck_assert_int_ge(lfd, 0);
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char buf[4096];
        int fd = accept(lfd, NULL, NULL);
        size_t len = strlen(script), off = 0;

        while (fd >= 0 && off < len) {
            ssize_t n = write(fd, script + off, len - off);
            if (n <= 0)
                _exit(1);
            off += (size_t)n;
        }
        shutdown(fd, SHUT_WR);
        while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
            ;
        _exit(0);
    }
    close(lfd);
    return pid;
}

START_TEST(test_qmp_hostile)
{
    /* members of the wrong JSON type where strings and objects belong;
     * then a flood of DEVICE_DELETED nobody waits for */
    GString *script = g_string_new(
        "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n"
        "{\"event\":1}\n"
        "{\"event\":null}\n"
        "{\"event\":\"DEVICE_DELETED\",\"data\":\"x\"}\n"
        "{\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":7}}\n"
        "{\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":null}}\n"
        "{\"return\":{}}\n"
        "{\"error\":5}\n"
        "{\"error\":{\"desc\":[1]}}\n");
    char dir[] = "/tmp/ferry-qmp-XXXXXX", path[128], err[FERRY_USB_ERR_MAX];
    struct ferry_usb_qmp *q = NULL;
    int status, r;
    pid_t pid;

    for (int i = 0; i < 100000; i++)
        g_string_append_printf(script, "{\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":"
                               "\"flood%d\"}}\n", i);
    g_string_append(script, "{\"event\":\"DEVICE_DELETED\",\"data\":{\"device\":\"dev0\"}}\n");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/qmp.sock", dir);
    pid = fake_qmp(path, script->str);
    r = usb_qmp_open(path, 20000, &q, err, sizeof(err));
    ck_assert_msg(r == 0, "open: %d %s", r, err);
    ck_assert_int_eq(usb_qmp_execute(q, "a", NULL, NULL, err, sizeof(err)), -EIO);
    ck_assert_int_eq(usb_qmp_execute(q, "b", NULL, NULL, err, sizeof(err)), -EIO);
    ck_assert_ptr_nonnull(strstr(err, "qmp "));
    r = usb_qmp_wait_deleted(q, "dev0", err, sizeof(err));
    ck_assert_msg(r == 0, "wait_deleted: %d %s", r, err);
    /* the flood was not all kept: the newest ids are, the oldest are gone */
    ck_assert_int_eq(usb_qmp_wait_deleted(q, "flood99999", err, sizeof(err)), 0);
    ck_assert_int_eq(usb_qmp_wait_deleted(q, "flood0", err, sizeof(err)), -EPIPE);
    usb_qmp_close(q);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    unlink(path);
    rmdir(dir);
    g_string_free(script, TRUE);
}
END_TEST

static Suite *usb_suite(void)
{
    Suite *s = suite_create("usb");

    ADD(s, test_spec);
    ADD(s, test_policy);
    ADD(s, test_qmp_hostile);
    ADD(s, test_enumerate);
    ADD(s, test_hotplug);
    ADD(s, test_share_loopback);
    ADD(s, test_serve_listener_replug);
    ADD(s, test_malformed);
    ADD(s, test_oversized_packet);
    ADD(s, test_peer_never_reads_bulk);
    ADD(s, test_peer_vanishes_mid_transfer);
    ADD(s, test_peer_never_reads);
    ADD(s, test_fd_passing);
    ADD(s, test_sim_iso);
    ADD(s, test_wrap_fd);
    return s;
}

int main(void)
{
    if (!getenv("UMOCKDEV_DIR") && !getenv("LD_PRELOAD")) {
        printf("FAIL: not running under umockdev-wrapper (meson test runs it with it)\n");
        return 1;
    }
    return ferry_check_run(usb_suite(), CK_FORK_GETENV);
}
