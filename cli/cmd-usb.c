// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry usb list [GUEST] [--json]
 * ferry usb attach GUEST DEVICE [--pass-fd] [--follow]
 * ferry usb detach GUEST DEVICE
 * ferry usb share DEVICE --listen ADDR [options]   (cmd-usb-share.c)
 *
 * GUEST is the ferry-dm serving a QEMU guest (ferry-dm --qmp QMP --control
 * SOCK): the path of its control socket, or a name meaning
 * ${FERRY_RUN_DIR:-/run/ferry}/GUEST/dm.sock.  DEVICE is VID:PID,
 * VID:PID:SERIAL, a port path (1-2.3) or BUS.ADDR.  attach asks ferry-dm to
 * open the device itself, unless it is confined (query-usb says so) or
 * --pass-fd is given: then this process, as root, is the broker: it opens
 * the device node and passes the fd with SCM_RIGHTS.  --follow: stay and do
 * it again each time the device is replugged, and tell ferry-dm when it
 * goes (a confined ferry-dm sees no hotplug).  list without GUEST looks at
 * the host; share serves a device over the network from this process until
 * interrupted (cmd-usb-share.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/usb-ctl.h"
#include "common/log-glib.h"
#include "common/qmp.h"
#include "policy/owner.h"
#include "policy/policy.h"
#include "usb/ferry-usb.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry usb list [GUEST] [--json] [--connect URI]\n"
            "       ferry usb attach GUEST DEVICE [--pass-fd] [--follow] [--persistent]\n"
            "                        [--connect URI]\n"
            "       ferry usb detach GUEST DEVICE [--persistent] [--connect URI]\n"
            "       ferry usb share DEVICE --listen ADDR [--tls-creds DIR | --tls-psk FILE |\n"
            "                       --insecure] ... (ferry usb share --help)\n"
            "--verbose (-v): debug lines too.\n"
            "GUEST: the control socket of the guest's ferry-dm (ferry-dm --qmp QMP --control\n"
            "SOCK), or NAME for ${FERRY_RUN_DIR:-/run/ferry}/NAME/dm.sock, or else a libvirt\n"
            "domain (--connect URI, default qemu:///system; --persistent: its config too;\n"
            "docs/libvirt.md).  DEVICE: VID:PID,\n"
            "VID:PID:SERIAL, a port path (1-2.3) or BUS.ADDR.  A confined ferry-dm gets the\n"
            "device's fd from this command (--pass-fd forces it; --follow re-passes it after\n"
            "each replug).\n");
}

const char *usb_run_dir(void)
{
    const char *dir = getenv("FERRY_RUN_DIR");

    return dir && *dir ? dir : "/run/ferry";
}

/* GUEST: a path to ferry-dm's control socket, or a guest name. */
static char *guest_socket(const char *guest)
{
    if (strchr(guest, '/'))
        return g_strdup(guest);
    return g_build_filename(usb_run_dir(), guest, "dm.sock", NULL);
}

static int ctl_line(struct ctl *c, char **line)
{
    char buf[4096];
    ssize_t n;

    for (;;) {
        char *nl = memchr(c->in->str, '\n', c->in->len);

        if (nl) {
            *line = g_strndup(c->in->str, (gsize)(nl - c->in->str));
            g_string_erase(c->in, 0, nl - c->in->str + 1);
            return 0;
        }
        if (c->in->len > (1u << 22))
            return -EMSGSIZE;
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n == 0)
            return -EPIPE;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        g_string_append_len(c->in, buf, n);
    }
}

int ctl_open(const char *guest, struct ctl *c)
{
    char addr[300], err[FERRY_USB_ERR_MAX], *greeting = NULL;
    struct timeval tv = { .tv_sec = FERRY_QMP_GREETING_MS / 1000 };
    int r;

    c->path = guest_socket(guest);
    c->in = g_string_new(NULL);
    snprintf(addr, sizeof(addr), "unix:%s", c->path);
    c->fd = usb_connect(addr, err, sizeof(err));
    if (c->fd < 0) {
        fprintf(stderr, "ferry usb: no ferry-dm at %s: %s (start it with --qmp and --control)\n",
                c->path, g_strerror(-c->fd));
        return c->fd;
    }
    /* usb_connect makes it non-blocking; requests here wait, bounded */
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    r = ctl_line(c, &greeting);
    if (r == -EAGAIN || r == -EWOULDBLOCK) {
        fprintf(stderr, "ferry usb: %s accepted the connection but sent no greeting within "
                "%d s: not a ferry-dm control socket, or one another client holds (a QEMU "
                "monitor libvirt keeps?).  GUEST is ferry-dm's control socket (ferry-dm --qmp "
                "QMP --control SOCK) or its name\n", c->path, FERRY_QMP_GREETING_MS / 1000);
        g_free(greeting);
        return -ETIMEDOUT;
    }
    /* commands may take longer: a device_del waits for the guest */
    tv.tv_sec = 30;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (r == 0 && !strstr(greeting, "\"QMP\"")) {
        /* turned away (too many clients): ferry-dm says why */
        json_t *n = ferry_json_parse(greeting, strlen(greeting), NULL, 0);
        const char *desc = ferry_json_string(ferry_json_object(n, "error"), "desc", NULL);

        if (desc) {
            fprintf(stderr, "ferry usb: %s: ferry-dm refused the connection: %s\n", c->path,
                    desc);
            json_decref(n);
            g_free(greeting);
            return -EBUSY;
        }
        json_decref(n);
        r = -EPROTO;
    }
    if (r < 0)
        fprintf(stderr, "ferry usb: %s: no greeting from ferry-dm: %s\n", c->path,
                g_strerror(-r));
    g_free(greeting);
    return r;
}

void ctl_close(struct ctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->in)
        g_string_free(c->in, TRUE);
    g_free(c->path);
}

/* msg with fds (SCM_RIGHTS, in this order) on the control connection; 0 or -errno. */
static int ctl_send(int sock, const char *msg, const int *fds, unsigned nfds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (nfds > CTL_FDS_MAX)
        return -E2BIG;
    if (nfds) {
        struct cmsghdr *cm;

        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    return n == (ssize_t)iov.iov_len ? 0 : -EIO;
}

int ctl_cmd(struct ctl *c, const char *cmd, const char *args, int fd, json_t **ret)
{
    return ctl_cmd_fds(c, cmd, args, &fd, fd >= 0 ? 1 : 0, ret);
}

int ctl_cmd_fds(struct ctl *c, const char *cmd, const char *args, const int *fds,
                unsigned nfds, json_t **ret)
{
    char *msg = g_strdup_printf("{\"execute\": \"%s\"%s%s}\n", cmd, args ? ", \"arguments\": " : "",
                                args ? args : "");
    int r;

    if (ret)
        *ret = NULL;
    r = ctl_send(c->fd, msg, fds, nfds);
    g_free(msg);
    if (r < 0) {
        fprintf(stderr, "ferry usb: %s: %s: cannot send: %s\n", c->path, cmd, g_strerror(-r));
        return -1;
    }
    for (;;) {
        char *line = NULL;
        json_t *o;

        r = ctl_line(c, &line);
        if (r == -EPIPE || r == -ECONNRESET) {
            fprintf(stderr, "ferry usb: %s: %s: ferry-dm closed the connection without a reply: "
                    "did it exit?  Its log says why (a confined ferry-dm that its seccomp filter "
                    "killed logs `seccomp: forbidden syscall NAME`)\n", c->path, cmd);
            return -1;
        }
        if (r < 0) {
            fprintf(stderr, "ferry usb: %s: %s: no reply: %s\n", c->path, cmd, g_strerror(-r));
            return -1;
        }
        o = ferry_json_parse_object(line, strlen(line), NULL, 0);
        g_free(line);
        if (!o)
            continue;
        if (json_object_get(o, "return")) {
            if (ret)
                *ret = json_incref(json_object_get(o, "return"));
            json_decref(o);
            return 0;
        }
        if (json_object_get(o, "error")) {
            fprintf(stderr, "ferry usb %s: %s\n", cmd,
                    ferry_json_string(ferry_json_object(o, "error"), "desc", "error"));
            json_decref(o);
            return -1;
        }
        json_decref(o);
    }
}

/* {"k1": v1[, "k2": v2][, "fd": true]} as text (g_free). */
char *ctl_json_args(const char *k1, const char *v1, const char *k2, const char *v2,
                    bool with_fd)
{
    json_t *o = json_object();
    char *s;

    json_object_set_new(o, k1, ferry_json_str(v1));
    if (k2)
        json_object_set_new(o, k2, ferry_json_str(v2));
    if (with_fd)
        json_object_set_new(o, "fd", json_true());
    s = ferry_json_dumps(o, false);
    json_decref(o);
    return s;
}

static void print_table(const char *json)
{
    char why[160];
    json_t *a = ferry_json_parse(json, strlen(json), why, sizeof(why)), *o;
    size_t i;

    if (!json_is_array(a)) {
        fprintf(stderr, "ferry usb: unreadable device list: %s\n",
                a ? "not a JSON array" : why);
        json_decref(a);
        return;
    }
    printf("%-7s %-10s %-9s %-6s %-12s %-7s %-30s %s\n", "BUS.ADR", "PORT", "ID", "SPEED",
           "DRIVER", "POLICY", "PRODUCT", "ATTACHED");
    json_array_foreach(a, i, o) {
        char busaddr[16], prod[64];
        /* attached by this ferry-dm, else held by another Ferry process (list_local) */
        const char *att = ferry_json_string(o, "attached",
                                            ferry_json_string(o, "holder", "-"));
        const char *driver = ferry_json_string(o, "driver", "");
        bool allowed = json_is_true(json_object_get(o, "allowed"));

        snprintf(busaddr, sizeof(busaddr), "%d.%d", (int)ferry_json_int(o, "bus", 0),
                 (int)ferry_json_int(o, "addr", 0));
        snprintf(prod, sizeof(prod), "%s %s", ferry_json_string(o, "manufacturer", ""),
                 ferry_json_string(o, "product", ""));
        printf("%-7s %-10s %-9s %-6d %-12s %-7s %-30s %s\n", busaddr,
               ferry_json_string(o, "port", ""), ferry_json_string(o, "id", ""),
               (int)ferry_json_int(o, "speed_mbps", 0), *driver ? driver : "-",
               allowed ? "allow" : "refuse", prod, att);
        if (!allowed)
            printf("        refused: %s\n", ferry_json_string(o, "rule", ""));
    }
    json_decref(a);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* Each device's "holder": the Ferry process that owns it (policy/owner.h:
 * a ferry-dm's guest, a share), or null; g_free the result. */
static char *list_add_holders(const char *json)
{
    json_t *a = ferry_json_parse(json, strlen(json), NULL, 0), *o;
    size_t i;
    char *s;

    if (!json_is_array(a)) {
        json_decref(a);
        return g_strdup(json);
    }
    json_array_foreach(a, i, o) {
        const char *id = ferry_json_string(o, "identity", NULL);
        struct ferry_policy_owner_info info;
        char who[400];

        if (id && policy_owner_query(NULL, "usb", id, &info) == 1) {
            policy_owner_describe(&info, who, sizeof(who));
            json_object_set_new(o, "holder", ferry_json_str(who));
        } else {
            json_object_set_new(o, "holder", json_null());
        }
    }
    s = ferry_json_dumps(a, true);
    json_decref(a);
    return s;
}

/* The host's devices, as the service sees them (policy, attachments). */
static int list_local(bool json)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_service_ops ops = { .log = ferry_log_glib };
    struct ferry_usb_service *svc = NULL;
    int r;

    if (!b) {
        fprintf(stderr, "ferry usb: cannot create an event loop\n");
        return FERRY_EXIT_FAILURE;
    }
    /* no guests here: the service needs no folder for their sockets (a full
     * or missing TMPDIR is none of list's business) */
    r = usb_service_new(b, NULL, &ops, NULL, &svc);
    if (r < 0) {
        fprintf(stderr, "ferry usb: cannot start the usb service: %s\n", g_strerror(-r));
        event_base_free(b);
        return FERRY_EXIT_FAILURE;
    }
    {
        char *s = usb_service_list_json(svc), *out = list_add_holders(s);

        if (json)
            printf("%s\n", out);
        else
            print_table(out);
        g_free(out);
        g_free(s);
    }
    usb_service_free(svc);
    event_base_free(b);
    return FERRY_EXIT_OK;
}

/* The broker: open the device node here (root) and hand the fd to ferry-dm. */
struct broker {
    struct ctl *c;
    struct ferry_usb_spec spec;
    struct event_base *b;
    int status;
    bool following;             /* arrivals before are the devices present at start */
    int cur_bus, cur_addr;      /* where the device is now; -1 while unplugged */
};

/* The device node's fd to ferry-dm; with claim (ours, just made), its lock
 * fd too, which ferry-dm keeps with the assignment (and hands to each
 * successor on replace): the claim is then held by the process serving the
 * device, not only described (policy/owner.h). */
static int pass_fd(struct ctl *c, const struct ferry_usb_devinfo *d, const char *device,
                   const char *ident, struct ferry_policy_owner *claim)
{
    char node[64], *args;
    json_t *o;
    int fds[2], r;

    snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d->bus, d->addr);
    fds[0] = open(node, O_RDWR | O_CLOEXEC);
    if (fds[0] < 0) {
        fprintf(stderr, "ferry usb attach: cannot open %s: %s\n", node, g_strerror(errno));
        return -1;
    }
    o = json_object();
    json_object_set_new(o, "device", ferry_json_str(device));
    json_object_set_new(o, "fd", json_true());
    if (claim) {
        json_t *cl = json_object();

        json_object_set_new(cl, "id", ferry_json_str(ident));
        json_object_set_new(cl, "path", ferry_json_str(policy_owner_path(claim)));
        json_object_set_new(o, "claim", cl);
        fds[1] = policy_owner_fd(claim);
    }
    args = ferry_json_dumps(o, false);
    json_decref(o);
    r = ctl_cmd_fds(c, "usb-attach", args, fds, claim ? 2 : 1, NULL);
    g_free(args);
    close(fds[0]);
    return r;
}

/* --follow: the device came back; ferry-dm (confined, it sees no hotplug) gets its new fd. */
static void broker_arrived(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct broker *br = opaque;
    char ident[200];

    /* libusb reports the devices present at start as arrivals too */
    if (!br->following || !usb_spec_match(&br->spec, d) ||
        (d->bus == br->cur_bus && d->addr == br->cur_addr))
        return;
    br->cur_bus = d->bus;
    br->cur_addr = d->addr;
    usb_identity(d, ident, sizeof(ident));
    if (pass_fd(br->c, d, ident, ident, NULL) == 0)
        fprintf(stderr, "ferry usb attach: %s is back at %s, passed to ferry-dm\n", ident, d->port);
}

static void broker_left(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct broker *br = opaque;
    char ident[200], *args;

    if (!br->following || !usb_spec_match(&br->spec, d))
        return;
    br->cur_bus = br->cur_addr = -1;
    usb_identity(d, ident, sizeof(ident));
    args = ctl_json_args("device", ident, NULL, NULL, false);
    if (ctl_cmd(br->c, "usb-unplugged", args, -1, NULL) == 0)
        fprintf(stderr, "ferry usb attach: %s unplugged, ferry-dm told\n", ident);
    g_free(args);
}

/* Does ferry-dm serve the device with this identity already (its [usb] config)? */
static bool already_attached(struct ctl *c, const char *ident)
{
    json_t *q = NULL, *d;
    bool found = false;
    size_t i;

    if (ctl_cmd(c, "query-usb", NULL, -1, &q) < 0)
        return false;
    json_array_foreach(ferry_json_array(q, "devices"), i, d) {
        if (!g_strcmp0(ferry_json_string(d, "identity", ""), ident) &&
            json_object_get(d, "attached") && !json_is_null(json_object_get(d, "attached")))
            found = true;
    }
    json_decref(q);
    return found;
}

static int attach_broker(struct ctl *c, const char *device, bool follow,
                         struct ferry_policy_owner **claim)
{
    struct broker br = { .c = c, .status = FERRY_EXIT_FAILURE };
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib, .arrived = broker_arrived,
                                      .left = broker_left };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_devinfo d;
    char err[FERRY_USB_ERR_MAX], ident[200];

    br.b = event_base_new();
    if (usb_spec_parse(device, &br.spec) < 0) {
        fprintf(stderr, "ferry usb attach: '%s': expected VID:PID, VID:PID:SERIAL, a port "
                "path (1-2.3) or BUS.ADDR\n", device);
        goto out;
    }
    if (!br.b || usb_host_new(br.b, true, &hops, &br, &h) < 0) {
        fprintf(stderr, "ferry usb attach: cannot start libusb\n");
        goto out;
    }
    if (usb_host_find(h, &br.spec, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "ferry usb attach: %s\n", err);
        goto out;
    }
    br.cur_bus = d.bus;
    br.cur_addr = d.addr;
    usb_identity(&d, ident, sizeof(ident));
    if (follow && already_attached(c, ident))
        fprintf(stderr, "ferry usb attach: %s is already served by ferry-dm\n", ident);
    else if (pass_fd(c, &d, device, ident, *claim) < 0)
        goto out;
    /* ferry-dm holds the lock now (a copy of our fd): ours goes before a long --follow */
    policy_owner_detach(*claim);
    *claim = NULL;
    br.status = FERRY_EXIT_OK;
    if (follow) {
        struct event *si = evsignal_new(br.b, SIGINT, on_signal, br.b);
        struct event *st = evsignal_new(br.b, SIGTERM, on_signal, br.b);

        /* from now on the same device, wherever it comes back */
        if (usb_spec_parse(ident, &br.spec) < 0)
            goto out;
        /* a long wait: not one of ferry-dm's interactive slots, no idle bound */
        if (ctl_cmd(c, "client-follow", NULL, -1, NULL) < 0) {
            br.status = FERRY_EXIT_FAILURE;
            goto out;
        }
        event_add(si, NULL);
        event_add(st, NULL);
        br.following = true;
        fprintf(stderr, "ferry usb attach: following %s; its fd goes to ferry-dm after each "
                "replug, until interrupted\n", ident);
        event_base_dispatch(br.b);
        event_free(si);
        event_free(st);
    }
out:
    usb_host_free(h);
    if (br.b)
        event_base_free(br.b);
    return br.status;
}

/* The device-access policy (policy/policy.h) for guest and the device, and
 * its claim for the guest's ferry-dm (policy/owner.h), before anything is
 * handed over.  *claimed: a new claim, to undo if the attach fails. */
static int grant(struct ctl *c, const char *gname, const char *device, char *ident,
                 size_t identlen, bool *claimed, struct ferry_policy_owner **claim)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_host *h = NULL;
    struct ferry_policy *p = NULL;
    struct ferry_policy_verdict v;
    struct ferry_usb_devinfo d;
    struct ferry_usb_spec spec;
    char err[FERRY_USB_ERR_MAX];
    int r = -EINVAL;

    *claimed = false;
    if (usb_spec_parse(device, &spec) < 0) {
        fprintf(stderr, "ferry usb attach: '%s': expected VID:PID, VID:PID:SERIAL, a port "
                "path (1-2.3) or BUS.ADDR\n", device);
        goto out;
    }
    if (!b || usb_host_new(b, true, &hops, NULL, &h) < 0) {
        fprintf(stderr, "ferry usb attach: cannot start libusb\n");
        r = -EIO;
        goto out;
    }
    if ((r = usb_host_find(h, &spec, &d, err, sizeof(err))) < 0) {
        fprintf(stderr, "ferry usb attach: %s\n", err);
        goto out;
    }
    if ((r = cli_policy_load(NULL, &p)) < 0)
        goto out;
    if ((r = policy_check_usb(p, gname, &d, &v)) < 0) {
        fprintf(stderr, "ferry usb attach: %s (%04x:%04x at %s) for guest %s: %s\n",
                device, d.vid, d.pid, d.port[0] ? d.port : "?", gname, v.reason);
        goto out;
    }
    usb_identity(&d, ident, identlen);
    {
        struct ferry_policy_owner_info before;
        bool had = policy_owner_query(NULL, "usb", ident, &before) == 1;

        r = cli_owner_claim("ferry usb attach", "usb", ident, gname, "ferry-dm",
                            cli_peer_pid(c->fd), claim);
        *claimed = r == 0 && !had;
    }
out:
    policy_free(p);
    usb_host_free(h);
    if (b)
        event_base_free(b);
    return r;
}

static int attach(const char *guest, const char *device, bool pass, bool follow)
{
    struct ctl c = { .fd = -1 };
    json_t *q = NULL;
    char *args, *gname = cli_guest_name(guest), ident[160] = "";
    struct ferry_policy_owner *claim = NULL;
    bool claimed = false;
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) < 0)
        goto out;
    if (grant(&c, gname, device, ident, sizeof(ident), &claimed, &claim) < 0)
        goto out;
    if (!pass && !follow) {
        /* a confined ferry-dm cannot open device nodes: then we are its broker */
        if (ctl_cmd(&c, "query-usb", NULL, -1, &q) < 0)
            goto out;
        pass = json_is_true(json_object_get(q, "confined"));
        json_decref(q);
    }
    if (pass || follow) {
        /* the claim's lock goes along with the device's fd */
        rc = attach_broker(&c, device, follow, &claim);
        goto out;
    }
    /* ferry-dm opens the device itself and claims it (its own lock): ours must be free */
    policy_owner_detach(claim);
    claim = NULL;
    args = ctl_json_args("device", device, NULL, NULL, false);
    rc = ctl_cmd(&c, "usb-attach", args, -1, NULL) < 0 ? FERRY_EXIT_FAILURE : FERRY_EXIT_OK;
    g_free(args);
out:
    /* ours goes; ferry-dm's copy of the lock fd (same open file description) holds it on */
    policy_owner_detach(claim);
    if (rc != FERRY_EXIT_OK && claimed && policy_owner_drop(NULL, "usb", ident, gname) < 0)
        fprintf(stderr, "ferry usb attach: cannot drop the claim on %s\n", ident);
    g_free(gname);
    ctl_close(&c);
    return rc;
}

/* After a detach: the guest's claim on the device goes (policy/owner.h).
 * The device may be gone: then every claim of the guest whose identity the
 * spec matches. */
static void owner_drop_matching(const char *gname, const char *device);

static int detach(const char *guest, const char *device)
{
    struct ctl c = { .fd = -1 };
    char *args = ctl_json_args("device", device, NULL, NULL, false);
    char *gname = cli_guest_name(guest);
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) == 0 && ctl_cmd(&c, "usb-detach", args, -1, NULL) == 0) {
        rc = FERRY_EXIT_OK;
        owner_drop_matching(gname, device);
    }
    g_free(args);
    g_free(gname);
    ctl_close(&c);
    return rc;
}

struct drop_ctx {
    const char *gname;
    struct ferry_usb_spec spec;
    char ident[160];
};

static void drop_one(void *opaque, const struct ferry_policy_owner_info *i)
{
    struct drop_ctx *x = opaque;
    struct ferry_usb_spec s;

    if (strcmp(i->guest, x->gname))
        return;
    if (!strcmp(i->id, x->ident) ||
        (usb_spec_parse(i->id, &s) == 0 && !memcmp(&s, &x->spec, sizeof(s))))
        if (policy_owner_drop(NULL, "usb", i->id, x->gname) < 0)
            fprintf(stderr, "ferry usb detach: cannot drop the claim on %s\n", i->id);
}

static void owner_drop_matching(const char *gname, const char *device)
{
    struct drop_ctx x = { .gname = gname };
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = NULL };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_devinfo d;
    char err[FERRY_USB_ERR_MAX];

    if (usb_spec_parse(device, &x.spec) < 0)
        goto out;
    if (b && usb_host_new(b, true, &hops, NULL, &h) == 0 &&
        usb_host_find(h, &x.spec, &d, err, sizeof(err)) == 0)
        usb_identity(&d, x.ident, sizeof(x.ident));
    (void)policy_owner_list(NULL, "usb", drop_one, &x);
out:
    usb_host_free(h);
    if (b)
        event_base_free(b);
}

/* ferry usb list GUEST: what that ferry-dm serves. */
static int list_guest(const char *guest, bool json)
{
    struct ctl c = { .fd = -1 };
    json_t *q = NULL;
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) == 0 && ctl_cmd(&c, "query-usb", NULL, -1, &q) == 0 &&
        json_is_object(q)) {
        json_t *devs = json_object_get(q, "devices");
        char *s = devs ? ferry_json_dumps(devs, true) : g_strdup("[]");

        if (json)
            printf("%s\n", s);
        else
            print_table(s);
        g_free(s);
        rc = FERRY_EXIT_OK;
    }
    json_decref(q);
    ctl_close(&c);
    return rc;
}

/* --connect URI or --connect=URI at argv[*i]: the URI (i moved past it), or NULL. */
static const char *opt_connect(int argc, char **argv, int *i)
{
    if (!strcmp(argv[*i], "--connect") && *i + 1 < argc)
        return argv[++*i];
    if (g_str_has_prefix(argv[*i], "--connect="))
        return argv[*i] + strlen("--connect=");
    return NULL;
}

/* GUEST is a libvirt domain: --connect given, or a name with no ferry-dm socket. */
static bool libvirt_wanted(const char *guest, const char *uri, const char *verb)
{
#ifdef FERRY_HAVE_LIBVIRT
    return usb_libvirt_wanted(guest, uri);
#else
    if (uri)
        fprintf(stderr, "ferry usb %s: --connect: this ferry was built without libvirt "
                "(libvirt-dev missing at configure time): libvirt domains are unavailable\n",
                verb);
    return false;
#endif
}

int ferry_cmd_usb(int argc, char **argv)
{
    const char *verb;
    const char *uri = NULL;
    int verbose = 0, n = 0;

    /* --verbose (-v) anywhere: debug lines too */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")))
            verbose = 1;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    verb = argc > 1 ? argv[1] : NULL;
    /* share logs every connection at info: what an operator must see */
    ferry_log_init("ferry", verbose ? 2 : verb && !strcmp(verb, "share") ? 1 : 0);
    signal(SIGPIPE, SIG_IGN);
    if (!verb || !strcmp(verb, "--help") || !strcmp(verb, "help")) {
        usage(verb ? stdout : stderr);
        return verb ? FERRY_EXIT_OK : FERRY_EXIT_USAGE;
    }
    if (!strcmp(verb, "list")) {
        bool json = false;
        const char *guest = NULL, *u;

        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--json"))
                json = true;
            else if ((u = opt_connect(argc, argv, &i)))
                uri = u;
            else if (!guest && argv[i][0] != '-')
                guest = argv[i];
            else {
                usage(stderr);
                return FERRY_EXIT_USAGE;
            }
        }
        if (guest && libvirt_wanted(guest, uri, verb)) {
#ifdef FERRY_HAVE_LIBVIRT
            return usb_libvirt_list(guest, uri, json);
#endif
        }
        if (uri)
            return FERRY_EXIT_FAILURE;
        return guest ? list_guest(guest, json) : list_local(json);
    }
    if ((!strcmp(verb, "attach") || !strcmp(verb, "detach")) && argc >= 4) {
        bool pass = false, follow = false, persistent = false;
        bool att = !strcmp(verb, "attach");
        const char *u;

        for (int i = 4; i < argc; i++) {
            if (att && !strcmp(argv[i], "--pass-fd"))
                pass = true;
            else if (att && !strcmp(argv[i], "--follow"))
                follow = true;
            else if (!strcmp(argv[i], "--persistent"))
                persistent = true;
            else if ((u = opt_connect(argc, argv, &i)))
                uri = u;
            else {
                usage(stderr);
                return FERRY_EXIT_USAGE;
            }
        }
        if (libvirt_wanted(argv[2], uri, verb)) {
#ifdef FERRY_HAVE_LIBVIRT
            if (follow) {
                fprintf(stderr, "ferry usb attach: --follow is for a ferry-dm socket; for a "
                        "libvirt domain replugs are followed without it (by ferry-dm, or for "
                        "a confined one by ferry libvirt-follow, started by the attach)\n");
                return FERRY_EXIT_USAGE;
            }
            return att ? usb_libvirt_attach(argv[2], uri, argv[3], persistent, pass)
                       : usb_libvirt_detach(argv[2], uri, argv[3], persistent);
#endif
        }
        if (uri)
            return FERRY_EXIT_FAILURE;
        if (persistent) {
            fprintf(stderr, "ferry usb %s: --persistent is for a libvirt domain; a ferry-dm's "
                    "persistent devices are its config's [usb] devices=\n", verb);
            return FERRY_EXIT_USAGE;
        }
        return att ? attach(argv[2], argv[3], pass, follow) : detach(argv[2], argv[3]);
    }
    if (!strcmp(verb, "share"))
        return ferry_cmd_usb_share(argc - 2, argv + 2);
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
