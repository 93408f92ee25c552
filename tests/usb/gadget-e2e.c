// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * gadget-e2e: runs inside the Linux guest of tests/usb/gadget-usb.sh, where
 * dummy_hcd and a configfs gadget (tests/usb/gadget.sh: Loopback, SourceSink
 * and a HID that the guest's usbhid drives) make a real USB device with a
 * real usbfs node.  It checks that a confined ferry-dm (seccomp kill, user
 * ferry) serves that device over usbredir with real USBDEVFS ioctls (control,
 * bulk, interrupt, kernel driver detached and given back), before and after
 * replugs whose new fds come from the root broker (`ferry usb attach
 * --follow`).
 *
 * ferry-dm hands usbredir channels only to a QEMU, over QMP (getfd +
 * chardev-add of an fd + device_add usb-redir).  A QEMU in this guest could
 * only drive transfers with a nested guest OS under TCG-in-TCG (minutes per
 * boot), so this program takes QEMU's place on that QMP socket: it speaks the
 * subset ferry-dm uses (greeting, qmp_capabilities, getfd with SCM_RIGHTS,
 * chardev-add, device_add, device_del + DEVICE_DELETED, chardev-remove,
 * closefd) and is the usbredir guest side (tests/usb/redir-client) on the
 * channel fd it receives.  ferry-dm runs its production path unchanged.
 *
 *   gadget-e2e FERRY_DM FERRY WORKDIR GADGET_SCRIPT VID:PID [BENCH_ROUNDS]
 * GADGET_SCRIPT gadget-down|gadget-up|hcd-down|hcd-up unplugs and replugs the
 * gadget (the second pair by unloading and loading dummy_hcd).  Prints FERRY-FACT
 * lines (figures, never judged) and FERRY-GADGET-PASS when all checks pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include "common/json.h"
#include <libusb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redir-client.h"

#define WAIT_MS      60000      /* ferry-dm start, (re)plug: generous, TCG under load */
#define STEP_S       30         /* one transfer, request or driver change */
#define QMP_LINE_MAX (64 * 1024)
#define CHAN_MAX     8
#define LOOP_IFACE   0          /* the gadget script links Loopback first ... */
#define SS_IFACE     1          /* ... then SourceSink ... */
#define HID_IFACE    2          /* ... then the HID (usbhid binds to it here) */
#define HID_REPORT   8
#define BUFLEN       4096       /* SourceSink's bulk_buflen (its default) */
#define LOOP_BUFLEN  65536      /* Loopback's bulk_buflen (tests/usb/gadget.sh) */

struct chan {                   /* a getfd'ed fd, then a chardev on it */
    char name[64];
    int fd;
};

struct ctx {
    const char *dm, *ferry, *work, *gadget;
    uint16_t vid, pid;
    int lfd, qfd;               /* QMP listening socket, ferry-dm's connection */
    GString *qin;
    int pending_fd;             /* came with the last SCM_RIGHTS */
    struct chan fds[CHAN_MAX], chardevs[CHAN_MAX];
    char dev_id[64];            /* the usb-redir device now plugged */
    struct redirc *rc;
    unsigned plugs, unplugs, want_unplugs;
    GPid dm_pid, broker_pid;
    uint64_t next_id;
    uint8_t loop_in, loop_out, src_in, sink_out;
    unsigned ss_maxpacket;      /* the SourceSink pattern restarts with every packet */
    uint8_t int_in, int_out;
    bool int_started;
};

static int failures;

#define CHECK(cond, ...) do { \
    if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; goto out; } \
} while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- QEMU's part of QMP, as much as ferry-dm uses ------------------------ */

static void qmp_send(struct ctx *c, const char *line)
{
    size_t len = strlen(line), off = 0;

    while (off < len) {
        ssize_t n = send(c->qfd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
    send(c->qfd, "\n", 1, MSG_NOSIGNAL);
}

static void qmp_reply(struct ctx *c, const char *error)
{
    char *s = error ? g_strdup_printf("{\"error\": {\"class\": \"GenericError\", "
                                      "\"desc\": \"%s\"}}", error)
                    : g_strdup("{\"return\": {}}");
    qmp_send(c, s);
    g_free(s);
}

static struct chan *chan_find(struct chan *tab, const char *name)
{
    for (int i = 0; i < CHAN_MAX; i++)
        if (tab[i].fd >= 0 && !strcmp(tab[i].name, name))
            return &tab[i];
    return NULL;
}

static struct chan *chan_free_slot(struct chan *tab)
{
    for (int i = 0; i < CHAN_MAX; i++)
        if (tab[i].fd < 0)
            return &tab[i];
    return NULL;
}

/* {"backend": {"data": {"addr": {"type": "fd", "data": {"str": NAME}}}}} */
static const char *chardev_fdname(json_t *args)
{
    json_t *o = args;
    const char *path[] = { "backend", "data", "addr", "data" };

    for (size_t i = 0; o && i < G_N_ELEMENTS(path); i++) {
        json_t *n = json_object_get(o, path[i]);
        o = json_is_object(n) ? n : NULL;
    }
    return o ? ferry_json_string(o, "str", NULL) : NULL;
}

static void qmp_command(struct ctx *c, const char *cmd, json_t *args)
{
    const char *id = args ? ferry_json_string(args, "id", NULL) : NULL;
    struct chan *ch;

    if (!strcmp(cmd, "qmp_capabilities")) {
        qmp_reply(c, NULL);
    } else if (!strcmp(cmd, "getfd")) {
        const char *name = args ? ferry_json_string(args, "fdname", NULL) : NULL;
        if (c->pending_fd < 0 || !name || !(ch = chan_free_slot(c->fds))) {
            qmp_reply(c, "getfd: no fd or no name");
            return;
        }
        g_strlcpy(ch->name, name, sizeof(ch->name));
        ch->fd = c->pending_fd;
        c->pending_fd = -1;
        qmp_reply(c, NULL);
    } else if (!strcmp(cmd, "closefd")) {
        const char *name = args ? ferry_json_string(args, "fdname", NULL) : NULL;
        if (name && (ch = chan_find(c->fds, name))) {
            close(ch->fd);
            ch->fd = -1;
        }
        qmp_reply(c, NULL);
    } else if (!strcmp(cmd, "chardev-add")) {
        const char *fdname = args ? chardev_fdname(args) : NULL;
        struct chan *src = fdname ? chan_find(c->fds, fdname) : NULL;

        if (!id || !src || !(ch = chan_free_slot(c->chardevs))) {
            qmp_reply(c, "chardev-add: only a socket chardev on a getfd'ed fd here");
            return;
        }
        g_strlcpy(ch->name, id, sizeof(ch->name));
        ch->fd = src->fd;
        src->fd = -1;
        qmp_reply(c, NULL);
    } else if (!strcmp(cmd, "device_add")) {
        const char *drv = ferry_json_string(args, "driver", "");
        const char *cd = ferry_json_string(args, "chardev", "");

        if (strcmp(drv, "usb-redir") || !id || !(ch = chan_find(c->chardevs, cd)) || c->rc) {
            qmp_reply(c, "device_add: one usb-redir on a known chardev at a time");
            return;
        }
        c->rc = redirc_new(ch->fd);
        c->int_started = false;
        ch->fd = -1;
        g_strlcpy(c->dev_id, id, sizeof(c->dev_id));
        c->plugs++;
        qmp_reply(c, NULL);
    } else if (!strcmp(cmd, "device_del")) {
        char *ev;

        if (!id || strcmp(id, c->dev_id)) {
            qmp_reply(c, "device_del: no such device");
            return;
        }
        redirc_free(c->rc);
        c->rc = NULL;
        c->dev_id[0] = 0;
        c->unplugs++;
        qmp_reply(c, NULL);
        ev = g_strdup_printf("{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"%s\", "
                             "\"path\": \"/machine/peripheral/%s\"}}", id, id);
        qmp_send(c, ev);
        g_free(ev);
    } else if (!strcmp(cmd, "chardev-remove")) {
        qmp_reply(c, NULL);     /* QEMU 7.2 removed it with the device */
    } else {
        char *e = g_strdup_printf("%s: not QEMU, only what ferry-dm uses", cmd);
        qmp_reply(c, e);
        g_free(e);
    }
}

static void qmp_line(struct ctx *c, const char *line)
{
    json_t *n = json_loads(line, JSON_DECODE_ANY, NULL);
    json_t *o = json_is_object(n) ? n : NULL;
    const char *cmd = o ? ferry_json_string(o, "execute", NULL) : NULL;
    json_t *a = o ? json_object_get(o, "arguments") : NULL;

    if (cmd)
        qmp_command(c, cmd, json_is_object(a) ? a : NULL);
    else
        qmp_reply(c, "expected {\"execute\": ...}");
    if (n)
        json_decref(n);
}

static void qmp_readable(struct ctx *c)
{
    char buf[4096], cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = { buf, sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ssize_t n = recvmsg(c->qfd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        printf("qmp: ferry-dm closed its QMP connection\n");
        close(c->qfd);
        c->qfd = -1;
        return;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->pending_fd >= 0)
                close(c->pending_fd);
            c->pending_fd = fd;
        }
    }
    g_string_append_len(c->qin, buf, n);
    while ((nl = memchr(c->qin->str, '\n', c->qin->len))) {
        char *line = g_strndup(c->qin->str, (gsize)(nl - c->qin->str));
        g_string_erase(c->qin, 0, nl - c->qin->str + 1);
        qmp_line(c, line);
        g_free(line);
    }
    if (c->qin->len > QMP_LINE_MAX)
        g_string_truncate(c->qin, 0);
}

/* One round of everything: QMP (accept, commands) and the usbredir channel. */
static void pump(struct ctx *c, int timeout_ms)
{
    struct pollfd p = { .fd = c->qfd >= 0 ? c->qfd : c->lfd, .events = POLLIN };

    /* the channel's own poll first; QMP then gets a turn without waiting
     * (a closed channel stays until ferry-dm's device_del) */
    if (c->rc && redirc_step(c->rc, timeout_ms > 5 ? 5 : timeout_ms) == 0)
        timeout_ms = 0;
    if (poll(&p, 1, timeout_ms) <= 0)
        return;
    if (c->qfd < 0) {
        c->qfd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c->qfd >= 0)
            qmp_send(c, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, "
                        "\"micro\": 0}, \"package\": \"ferry gadget-e2e\"}, "
                        "\"capabilities\": []}}");
        return;
    }
    qmp_readable(c);
}

static bool dm_alive(struct ctx *c);

static bool wait_for(struct ctx *c, bool (*pred)(struct ctx *), int ms)
{
    double end = now_s() + ms / 1000.0;

    while (!pred(c)) {
        if (now_s() > end || (c->dm_pid > 0 && !dm_alive(c)))
            return false;
        pump(c, 20);
    }
    return true;
}

static bool connected(struct ctx *c) { return c->rc && redirc_connected(c->rc); }
static bool unplugged(struct ctx *c) { return !c->rc && c->unplugs >= c->want_unplugs; }

/* ---- transfers through the channel --------------------------------------- */

static int xfer_wait(struct ctx *c, uint64_t id, uint8_t *buf, size_t *len)
{
    double end = now_s() + STEP_S;
    int status;

    while (now_s() < end && c->rc) {
        if (redirc_done(c->rc, id, &status, buf, len))
            return status;
        pump(c, 5);
    }
    return -1;
}

static int control_in(struct ctx *c, uint16_t value, uint8_t *buf, size_t *len)
{
    uint64_t id = ++c->next_id;

    if (!c->rc)
        return -1;
    redirc_control(c->rc, id, 0x80, 6 /* GET_DESCRIPTOR */, value, 0, (uint16_t)*len);
    return xfer_wait(c, id, buf, len);
}

static int bulk(struct ctx *c, uint8_t ep, uint8_t *buf, size_t *len)
{
    uint64_t id = ++c->next_id;

    if (!c->rc)
        return -1;
    redirc_bulk(c->rc, id, ep, buf, (uint32_t)*len);
    return xfer_wait(c, id, buf, len);
}

/* Endpoints of the two functions from the configuration descriptor. */
static int parse_config(struct ctx *c, const uint8_t *d, size_t len)
{
    int iface = -1, alt = 0;

    c->loop_in = c->loop_out = c->src_in = c->sink_out = c->int_in = c->int_out = 0;
    for (size_t off = 0; off + 2 <= len && d[off] >= 2 && off + d[off] <= len; off += d[off]) {
        if (d[off + 1] == 4 && d[off] >= 9) {           /* interface */
            iface = d[off + 2];
            alt = d[off + 3];
        } else if (d[off + 1] == 5 && d[off] >= 7 && iface == HID_IFACE && (d[off + 3] & 3) == 3) {
            *(d[off + 2] & 0x80 ? &c->int_in : &c->int_out) = d[off + 2];
        } else if (d[off + 1] == 5 && d[off] >= 7 && alt == 0 && (d[off + 3] & 3) == 2) {
            uint8_t ep = d[off + 2];
            if (iface == LOOP_IFACE)
                *(ep & 0x80 ? &c->loop_in : &c->loop_out) = ep;
            else if (iface == SS_IFACE) {
                *(ep & 0x80 ? &c->src_in : &c->sink_out) = ep;
                c->ss_maxpacket = (d[off + 4] | d[off + 5] << 8) & 0x7ff;
            }
        }
    }
    return c->loop_in && c->loop_out && c->src_in && c->sink_out && c->ss_maxpacket &&
           c->int_in && c->int_out ? 0 : -1;
}

static bool cfg_answered(struct ctx *c) { return !c->rc || redirc_config_status(c->rc) >= 0; }
static bool alt_answered(struct ctx *c) { return !c->rc || redirc_alt_status(c->rc) >= 0; }

static int requests(struct ctx *c, const char *when)
{
    size_t len = 0;
    int st = -1, rc = -1;

    for (int cfg = 0; cfg <= 1; cfg++) {
        redirc_set_config(c->rc, ++c->next_id, (uint8_t)cfg);
        CHECK(wait_for(c, cfg_answered, STEP_S * 1000) && c->rc && redirc_config_status(c->rc) == 0,
              "%s: SET_CONFIGURATION %d: status %d", when, cfg,
              c->rc ? redirc_config_status(c->rc) : -1);
    }
    redirc_set_alt(c->rc, ++c->next_id, SS_IFACE, 0);
    CHECK(wait_for(c, alt_answered, STEP_S * 1000) && c->rc && redirc_alt_status(c->rc) == 0,
          "%s: SET_INTERFACE %d alt 0: status %d", when, SS_IFACE,
          c->rc ? redirc_alt_status(c->rc) : -1);
    if (c->rc) {
        uint64_t id = ++c->next_id;
        /* CLEAR_FEATURE(ENDPOINT_HALT) on the loopback's OUT endpoint */
        redirc_control(c->rc, id, 0x02, 1, 0, c->loop_out, 0);
        st = xfer_wait(c, id, NULL, &len);
    }
    CHECK(st == 0, "%s: CLEAR_FEATURE(ENDPOINT_HALT) ep %02x: status %d", when, c->loop_out, st);
    printf("FERRY-GADGET-OK %s requests: SET_CONFIGURATION 0 and 1, SET_INTERFACE %d/0, "
           "CLEAR_FEATURE(HALT) ep %02x\n", when, SS_IFACE, c->loop_out);
    rc = 0;
out:
    return rc;
}

/* The HID function's interrupt endpoints against /dev/hidg0 (its gadget side). */
static int interrupts(struct ctx *c, const char *when)
{
    uint8_t rep[HID_REPORT], got[64];
    size_t len;
    double end;
    int fd = open("/dev/hidg0", O_RDWR | O_NONBLOCK | O_CLOEXEC), st, rc = -1;
    ssize_t n;

    CHECK(fd >= 0, "%s: open /dev/hidg0: %s", when, strerror(errno));
    while (read(fd, got, sizeof(got)) > 0)
        ;   /* nothing old */
    if (!c->int_started) {
        redirc_start_int(c->rc, ++c->next_id, c->int_in);
        c->int_started = true;
    }
    /* IN: a report written on the gadget side arrives as an interrupt packet */
    for (int i = 0; i < HID_REPORT; i++)
        rep[i] = (uint8_t)(0xa0 + i + (when[0] == 'f' ? 0 : 0x10));
    CHECK(write(fd, rep, sizeof(rep)) == (ssize_t)sizeof(rep), "%s: write /dev/hidg0: %s",
          when, strerror(errno));
    end = now_s() + STEP_S;
    for (;;) {
        len = sizeof(got);
        if (c->rc && redirc_int_in(c->rc, got, &len)) {
            if (len == sizeof(rep) && !memcmp(got, rep, sizeof(rep)))
                break;
            continue;
        }
        CHECK(c->rc && now_s() < end, "%s: no interrupt IN report on ep %02x", when,
              c->int_in);
        pump(c, 5);
    }
    /* OUT: an interrupt packet from the guest side is read on the gadget side */
    for (int i = 0; i < HID_REPORT; i++)
        rep[i] = (uint8_t)(0x50 + i);
    redirc_interrupt(c->rc, ++c->next_id, c->int_out, rep, sizeof(rep));
    len = 0;
    st = xfer_wait(c, c->next_id, NULL, &len);
    CHECK(st == 0, "%s: interrupt OUT ep %02x: status %d", when, c->int_out, st);
    end = now_s() + STEP_S;
    while ((n = read(fd, got, sizeof(got))) < 0 && errno == EAGAIN && now_s() < end)
        pump(c, 5);
    CHECK(n == (ssize_t)sizeof(rep) && !memcmp(got, rep, sizeof(rep)),
          "%s: /dev/hidg0 read %zd bytes, not the OUT report", when, n);
    printf("FERRY-GADGET-OK %s interrupt: IN ep %02x and OUT ep %02x reports compared\n", when,
           c->int_in, c->int_out);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int transfers(struct ctx *c, const char *when)
{
    uint8_t dd[18], cfg[512], *out = g_malloc(LOOP_BUFLEN), *in = g_malloc(LOOP_BUFLEN);
    size_t len = sizeof(dd);
    int st, rc = -1;

    st = control_in(c, 0x0100, dd, &len);
    CHECK(st == 0 && len == 18 && dd[1] == 1, "%s: GET_DESCRIPTOR(device): status %d, %zu bytes",
          when, st, len);
    CHECK((dd[8] | dd[9] << 8) == c->vid && (dd[10] | dd[11] << 8) == c->pid,
          "%s: device descriptor says %02x%02x:%02x%02x", when, dd[9], dd[8], dd[11], dd[10]);
    len = sizeof(cfg);
    st = control_in(c, 0x0200, cfg, &len);
    CHECK(st == 0 && len >= 9 && len == (size_t)(cfg[2] | cfg[3] << 8),
          "%s: GET_DESCRIPTOR(configuration): status %d, %zu bytes", when, st, len);
    CHECK(parse_config(c, cfg, len) == 0, "%s: no bulk endpoints of Loopback (interface %d) "
          "and SourceSink (interface %d), or no interrupt endpoints of the HID (interface %d), "
          "in the configuration", when, LOOP_IFACE, SS_IFACE, HID_IFACE);
    printf("FERRY-GADGET-OK %s control: device and configuration descriptors (%zu bytes)\n",
           when, len);

    /* What a guest's USB core does: configure (0, then 1 again), select an
     * alternate setting, clear an endpoint halt (libusb_clear_halt) */
    CHECK(requests(c, when) == 0, "%s: standard requests", when);

    /* Loopback: what goes OUT comes back IN; a full buffer and a short one */
    for (int round = 0; round < 8; round++) {
        size_t n = round == 7 ? 1000 : LOOP_BUFLEN, back = LOOP_BUFLEN;
        for (size_t i = 0; i < n; i++)
            out[i] = (uint8_t)(i * 7 + round * 13 + 1);
        len = n;
        st = bulk(c, c->loop_out, out, &len);
        CHECK(st == 0, "%s: loopback bulk OUT ep %02x round %d: status %d", when, c->loop_out,
              round, st);
        st = bulk(c, c->loop_in, in, &back);
        CHECK(st == 0 && back == n && !memcmp(in, out, n), "%s: loopback bulk IN ep %02x round "
              "%d: status %d, %zu of %zu bytes%s", when, c->loop_in, round, st, back, n,
              back == n ? ", data differs" : "");
    }
    printf("FERRY-GADGET-OK %s bulk loopback: 8 rounds OUT ep %02x -> IN ep %02x compared\n",
           when, c->loop_out, c->loop_in);

    /* SourceSink with pattern=1: the source sends (i % maxpacket) % 63, the
     * sink checks the same (f_sourcesink.c) */
    len = BUFLEN;
    st = bulk(c, c->src_in, in, &len);
    CHECK(st == 0 && len == BUFLEN, "%s: source bulk IN ep %02x: status %d, %zu bytes", when,
          c->src_in, st, len);
    for (size_t i = 0; i < len; i++)
        CHECK(in[i] == (i % c->ss_maxpacket) % 63, "%s: source byte %zu is %u, not %zu", when,
              i, in[i], (i % c->ss_maxpacket) % 63);
    for (size_t i = 0; i < BUFLEN; i++)
        out[i] = (uint8_t)((i % c->ss_maxpacket) % 63);
    len = BUFLEN;
    st = bulk(c, c->sink_out, out, &len);
    CHECK(st == 0, "%s: sink bulk OUT ep %02x: status %d", when, c->sink_out, st);
    printf("FERRY-GADGET-OK %s bulk source/sink: IN ep %02x pattern checked, OUT ep %02x "
           "accepted\n", when, c->src_in, c->sink_out);
    CHECK(interrupts(c, when) == 0, "%s: interrupt transfers", when);
    rc = 0;
out:
    g_free(out);
    g_free(in);
    return rc;
}

/* ---- the processes ---------------------------------------------------------- */

/* The kernel driver bound to the gadget's interface iface ("" when none). */
static char *iface_driver(struct ctx *c, int iface)
{
    GDir *d = g_dir_open("/sys/bus/usb/devices", 0, NULL);
    const char *name;
    char *drv = g_strdup("");

    while (d && (name = g_dir_read_name(d))) {
        char *p = g_strdup_printf("/sys/bus/usb/devices/%s/idProduct", name), *t = NULL;
        unsigned pid = 0;

        if (!strchr(name, ':') && g_file_get_contents(p, &t, NULL, NULL) &&
            sscanf(t, "%x", &pid) == 1 && pid == c->pid) {
            char *link = g_strdup_printf("/sys/bus/usb/devices/%s/%s:1.%d/driver", name, name,
                                         iface);
            char *target = g_file_read_link(link, NULL);
            if (target) {
                g_free(drv);
                drv = g_path_get_basename(target);
            }
            g_free(target);
            g_free(link);
        }
        g_free(t);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    return drv;
}

/* The driver of the HID interface is want, within 10 s. */
static bool hid_driver_is(struct ctx *c, const char *want)
{
    double end = now_s() + STEP_S;

    for (;;) {
        char *drv = iface_driver(c, HID_IFACE);
        bool ok = !strcmp(drv, want);

        if (ok || now_s() > end) {
            if (!ok)
                printf("interface %d: driver '%s', expected '%s'\n", HID_IFACE, drv, want);
            g_free(drv);
            return ok;
        }
        g_free(drv);
        pump(c, 50);
    }
}

static bool dm_alive(struct ctx *c)
{
    int status;
    pid_t r = waitpid(c->dm_pid, &status, WNOHANG);

    if (r == 0)
        return true;
    if (r == c->dm_pid) {
        if (WIFSIGNALED(status))
            printf("ferry-dm died of signal %d%s\n", WTERMSIG(status),
                   WTERMSIG(status) == SIGSYS ? " (SIGSYS: the seccomp filter killed it)" : "");
        else
            printf("ferry-dm exited with status %d\n", WEXITSTATUS(status));
        c->dm_pid = 0;
    }
    return false;
}

/* /proc/PID/status: Seccomp 2, NoNewPrivs 1, every uid the ferry user's. */
static int check_confined(struct ctx *c, const char *when)
{
    struct passwd *pw = getpwnam("ferry");
    char *path = g_strdup_printf("/proc/%d/status", (int)c->dm_pid), *text = NULL, *want;
    int rc = -1;

    CHECK(pw, "no user ferry in the guest's /etc/passwd");
    CHECK(g_file_get_contents(path, &text, NULL, NULL), "%s: cannot read %s", when, path);
    want = g_strdup_printf("\nUid:\t%u\t%u\t%u\t%u\n", pw->pw_uid, pw->pw_uid, pw->pw_uid,
                           pw->pw_uid);
    rc = strstr(text, want) && strstr(text, "\nSeccomp:\t2\n") && strstr(text, "\nNoNewPrivs:\t1\n")
         ? 0 : -1;
    g_free(want);
    CHECK(rc == 0, "%s: ferry-dm is not confined as user ferry (%u):\n%s", when, pw->pw_uid,
          text);
    printf("FERRY-GADGET-OK %s ferry-dm pid %d: uid %u (ferry), Seccomp 2, NoNewPrivs 1\n",
           when, (int)c->dm_pid, pw->pw_uid);
out:
    g_free(text);
    g_free(path);
    return rc;
}

static GPid spawn(char **argv, const char *work, const char *log)
{
    char *path = g_build_filename(work, log, NULL);
    GPid pid = fork();

    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    g_free(path);
    return pid;
}

static void show_log(const char *work, const char *name)
{
    char *path = g_build_filename(work, name, NULL), *text = NULL;

    if (g_file_get_contents(path, &text, NULL, NULL))
        printf("---- %s ----\n%s---- end of %s ----\n", name, text, name);
    g_free(text);
    g_free(path);
}

static int gadget(struct ctx *c, const char *what)
{
    char *cmd = g_strdup_printf("sh %s %s", c->gadget, what);
    int r = system(cmd);

    g_free(cmd);
    return r == 0 ? 0 : -1;
}

/* ---- a figure: 64 KiB loopback round trips, direct libusb vs through ferry-dm ---- */

static double bench_direct(struct ctx *c, int rounds)
{
    libusb_context *lc = NULL;
    libusb_device_handle *h = NULL;
    uint8_t *buf = g_malloc0(LOOP_BUFLEN);
    double t0 = 0, rate = 0;
    int done;

    if (libusb_init(&lc) < 0)
        goto out;
    h = libusb_open_device_with_vid_pid(lc, c->vid, c->pid);
    if (!h || libusb_claim_interface(h, LOOP_IFACE) < 0)
        goto out;
    for (int i = -20; i < rounds; i++) {
        if (i == 0)
            t0 = now_s();
        if (libusb_bulk_transfer(h, c->loop_out, buf, LOOP_BUFLEN, &done, 5000) < 0 ||
            libusb_bulk_transfer(h, c->loop_in, buf, LOOP_BUFLEN, &done, 5000) < 0)
            goto out;
    }
    rate = rounds / (now_s() - t0);
out:
    if (h) {
        libusb_release_interface(h, LOOP_IFACE);
        libusb_close(h);
    }
    if (lc)
        libusb_exit(lc);
    g_free(buf);
    return rate;
}

static double bench_redir(struct ctx *c, int rounds)
{
    uint8_t *buf = g_malloc0(LOOP_BUFLEN);
    double t0 = 0, rate = 0;
    size_t len;

    for (int i = -20; i < rounds; i++) {
        if (i == 0)
            t0 = now_s();
        len = LOOP_BUFLEN;
        if (bulk(c, c->loop_out, buf, &len) != 0)
            goto out;
        len = LOOP_BUFLEN;
        if (bulk(c, c->loop_in, buf, &len) != 0)
            goto out;
    }
    rate = rounds / (now_s() - t0);
out:
    g_free(buf);
    return rate;
}

int main(int argc, char **argv)
{
    struct ctx c = { .lfd = -1, .qfd = -1, .pending_fd = -1 };
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *qmp, *ctl, spec[32];
    int bench_rounds = argc > 6 ? atoi(argv[6]) : 0;
    unsigned vid, pid;
    double direct = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 6 || sscanf(argv[5], "%x:%x", &vid, &pid) != 2) {
        fprintf(stderr, "usage: gadget-e2e FERRY_DM FERRY WORKDIR GADGET_SCRIPT VID:PID "
                "[BENCH_ROUNDS]\n");
        return 2;
    }
    c.dm = argv[1];
    c.ferry = argv[2];
    c.work = argv[3];
    c.gadget = argv[4];
    c.vid = (uint16_t)vid;
    c.pid = (uint16_t)pid;
    c.qin = g_string_new(NULL);
    for (int i = 0; i < CHAN_MAX; i++)
        c.fds[i].fd = c.chardevs[i].fd = -1;
    snprintf(spec, sizeof(spec), "%04x:%04x", c.vid, c.pid);
    qmp = g_build_filename(c.work, "qmp.sock", NULL);
    ctl = g_build_filename(c.work, "dm.sock", NULL);
    {
        /* owner records of our own (policy/owner.h): other runs do not see or hold ours */
        g_autofree char *run = g_build_filename(c.work, "run", NULL);

        if (g_mkdir_with_parents(run, 0755) < 0) {
            fprintf(stderr, "gadget-e2e: cannot make %s\n", run);
            return 1;
        }
        g_setenv("FERRY_RUN_DIR", run, TRUE);
    }

    /* The endpoints are known only from the descriptors; read them once
     * directly for the baseline figure (this process is root, unconfined). */
    if (bench_rounds > 0) {
        libusb_context *lc;
        if (libusb_init(&lc) == 0) {
            libusb_device_handle *h = libusb_open_device_with_vid_pid(lc, c.vid, c.pid);
            uint8_t raw[512];
            int n = h ? libusb_get_descriptor(h, LIBUSB_DT_CONFIG, 0, raw, sizeof(raw)) : -1;

            if (n > 0 && parse_config(&c, raw, (size_t)n) < 0)
                c.loop_in = 0;
            if (h)
                libusb_close(h);
            libusb_exit(lc);
        }
        if (c.loop_in)
            direct = bench_direct(&c, bench_rounds);
    }

    c.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_strlcpy(sa.sun_path, qmp, sizeof(sa.sun_path));
    CHECK(c.lfd >= 0 && bind(c.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
          listen(c.lfd, 2) == 0, "QMP socket %s: %s", qmp, strerror(errno));

    CHECK(hid_driver_is(&c, "usbhid"), "the guest's usbhid does not drive the gadget's HID");
    /* ferry-dm as QEMU's USB companion, confined by default (seccomp kill) */
    {
        char *dm_argv[] = { (char *)c.dm, "--qmp", qmp, "--control", ctl, "-v", NULL };
        c.dm_pid = spawn(dm_argv, c.work, "ferry-dm.log");
    }
    {
        double end = now_s() + WAIT_MS / 1000.0;
        while ((access(ctl, F_OK) < 0 || c.qfd < 0) && now_s() < end && dm_alive(&c))
            pump(&c, 20);
        CHECK(access(ctl, F_OK) == 0 && c.qfd >= 0, "ferry-dm did not start (control socket "
              "%s, QMP connection %s)", ctl, c.qfd >= 0 ? "made" : "not made");
    }
    /* the root broker opens the usbfs node and hands the fd over; it stays
     * to hand over the new one after a replug */
    {
        char *br_argv[] = { (char *)c.ferry, "usb", "attach", ctl, spec, "--follow", NULL };
        c.broker_pid = spawn(br_argv, c.work, "broker.log");
    }
    CHECK(wait_for(&c, connected, WAIT_MS), "no usbredir device_connect from ferry-dm");
    CHECK(redirc_vid(c.rc) == c.vid && redirc_pid(c.rc) == c.pid,
          "device_connect says %04x:%04x, the gadget is %s", redirc_vid(c.rc), redirc_pid(c.rc),
          spec);
    printf("FERRY-GADGET-OK device_connect %04x:%04x over channel %s\n", c.vid, c.pid, c.dev_id);
    CHECK(hid_driver_is(&c, "usbfs"), "usbhid was not detached from the HID interface");
    printf("FERRY-GADGET-OK kernel driver: usbhid detached, interface %d claimed through usbfs\n",
           HID_IFACE);
    CHECK(check_confined(&c, "attached") == 0, "confinement");
    /* the figure before interrupt receiving keeps URBs in flight */
    if (bench_rounds > 0 && direct > 0) {
        double redir = bench_redir(&c, bench_rounds);
        /* each round moves LOOP_BUFLEN bytes out and back */
        printf("FERRY-FACT bulk-64k-rtt-direct=%.0f/s (%.1f MiB/s) bulk-64k-rtt-ferry=%.0f/s "
               "(%.1f MiB/s) ratio=%.2f rounds=%d\n", direct, direct * 2 * LOOP_BUFLEN / 1048576.0,
               redir, redir * 2 * LOOP_BUFLEN / 1048576.0, redir / direct, bench_rounds);
    }
    CHECK(transfers(&c, "first") == 0, "transfers");
    CHECK(dm_alive(&c), "ferry-dm is gone after the transfers");


    /* replug twice: the gadget leaves the bus and comes back at a new
     * address (as rmmod/modprobe of a gadget driver does), then the whole
     * bus goes and comes back (dummy_hcd unloaded and loaded again) */
    for (unsigned round = 1; round <= 2; round++) {
        const char *kind = round == 1 ? "gadget" : "hcd";
        char down[16], up[16], when[32];

        snprintf(down, sizeof(down), "%s-down", kind);
        snprintf(up, sizeof(up), "%s-up", kind);
        snprintf(when, sizeof(when), "after-%s-replug", kind);
        c.want_unplugs = round;
        CHECK(gadget(&c, down) == 0, "gadget.sh %s", down);
        CHECK(wait_for(&c, unplugged, WAIT_MS), "%s: the usbredir device was not removed", down);
        printf("FERRY-GADGET-OK %s: channel removed (device_del)\n", down);
        CHECK(gadget(&c, up) == 0, "gadget.sh %s", up);
        CHECK(wait_for(&c, connected, WAIT_MS), "%s: no device_connect (the broker's new fd)", up);
        CHECK(c.plugs == round + 1, "%u channels plugged, expected %u", c.plugs, round + 1);
        printf("FERRY-GADGET-OK %s: device_connect again over channel %s\n", up, c.dev_id);
        CHECK(transfers(&c, when) == 0, "transfers %s", when);
        CHECK(dm_alive(&c), "ferry-dm is gone %s", when);
    }
    CHECK(check_confined(&c, "end") == 0, "confinement at the end");
    /* ferry-dm ends (SIGTERM): the device goes back to the kernel's drivers */
    {
        int status = 0;
        pid_t r = 0;

        kill(c.dm_pid, SIGTERM);
        for (int i = 0; i < 500 && (r = waitpid(c.dm_pid, &status, WNOHANG)) == 0; i++)
            pump(&c, 20);
        CHECK(r == c.dm_pid, "ferry-dm did not end on SIGTERM");
        c.dm_pid = 0;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ferry-dm ended with %s %d",
              WIFSIGNALED(status) ? "signal" : "status",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        CHECK(hid_driver_is(&c, "usbhid"), "usbhid was not given the HID interface back");
        printf("FERRY-GADGET-OK exit: ferry-dm ended cleanly, usbhid drives interface %d again\n",
               HID_IFACE);
    }
out:
    if (c.broker_pid > 0) {
        kill(c.broker_pid, SIGTERM);
        waitpid(c.broker_pid, NULL, 0);
    }
    if (c.dm_pid > 0 && dm_alive(&c)) {
        int status;
        kill(c.dm_pid, SIGTERM);
        /* ferry-dm removes its devices over QMP on the way out: keep answering */
        for (int i = 0; i < 500 && waitpid(c.dm_pid, &status, WNOHANG) == 0; i++)
            pump(&c, 20);
        kill(c.dm_pid, SIGKILL);
        waitpid(c.dm_pid, NULL, 0);
    }
    redirc_free(c.rc);
    for (int i = 0; i < CHAN_MAX; i++) {
        if (c.fds[i].fd >= 0)
            close(c.fds[i].fd);
        if (c.chardevs[i].fd >= 0)
            close(c.chardevs[i].fd);
    }
    if (c.pending_fd >= 0)
        close(c.pending_fd);
    if (failures) {
        show_log(c.work, "ferry-dm.log");
        show_log(c.work, "broker.log");
    } else {
        printf("FERRY-GADGET-PASS\n");
    }
    if (c.qfd >= 0)
        close(c.qfd);
    if (c.lfd >= 0)
        close(c.lfd);
    g_string_free(c.qin, TRUE);
    g_free(qmp);
    g_free(ctl);
    return failures ? 1 : 0;
}
