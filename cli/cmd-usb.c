// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry usb list [GUEST] [--json]
 * ferry usb attach GUEST DEVICE [--pass-fd] [--follow]
 * ferry usb detach GUEST DEVICE
 * ferry usb share DEVICE --listen ADDR:PORT
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
 * interrupted.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/usb-ctl.h"
#include "common/log-glib.h"
#include "usb/ferry-usb.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry usb list [GUEST] [--json] [--connect URI]\n"
            "       ferry usb attach GUEST DEVICE [--pass-fd] [--follow] [--persistent]\n"
            "                        [--connect URI]\n"
            "       ferry usb detach GUEST DEVICE [--persistent] [--connect URI]\n"
            "       ferry usb share DEVICE --listen ADDR:PORT\n"
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
    struct timeval tv = { .tv_sec = 30 };
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
    if (r == 0 && !strstr(greeting, "\"QMP\"")) {
        /* turned away (too many clients): ferry-dm says why */
        g_autoptr(JsonNode) n = json_from_string(greeting, NULL);
        JsonObject *e = n && JSON_NODE_HOLDS_OBJECT(n) ?
                        json_object_get_object_member(json_node_get_object(n), "error") : NULL;
        const char *desc = e ? json_object_get_string_member_with_default(e, "desc", NULL)
                             : NULL;

        if (desc) {
            fprintf(stderr, "ferry usb: %s: ferry-dm refused the connection: %s\n", c->path,
                    desc);
            g_free(greeting);
            return -EBUSY;
        }
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

int ctl_cmd(struct ctl *c, const char *cmd, const char *args, int fd, JsonNode **ret)
{
    char *msg = g_strdup_printf("{\"execute\": \"%s\"%s%s}\n", cmd, args ? ", \"arguments\": " : "",
                                args ? args : "");
    int r;

    if (ret)
        *ret = NULL;
    r = usb_fd_send(c->fd, fd, msg, strlen(msg));
    g_free(msg);
    if (r < 0) {
        fprintf(stderr, "ferry usb: %s: %s: cannot send: %s\n", c->path, cmd, g_strerror(-r));
        return -1;
    }
    for (;;) {
        char *line = NULL;
        JsonNode *n;
        JsonObject *o;

        r = ctl_line(c, &line);
        if (r < 0) {
            fprintf(stderr, "ferry usb: %s: %s: no reply: %s\n", c->path, cmd, g_strerror(-r));
            return -1;
        }
        n = json_from_string(line, NULL);
        g_free(line);
        if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
            if (n)
                json_node_unref(n);
            continue;
        }
        o = json_node_get_object(n);
        if (json_object_has_member(o, "return")) {
            if (ret)
                *ret = json_node_copy(json_object_get_member(o, "return"));
            json_node_unref(n);
            return 0;
        }
        if (json_object_has_member(o, "error")) {
            JsonObject *e = json_object_get_object_member(o, "error");
            fprintf(stderr, "ferry usb %s: %s\n", cmd,
                    e ? json_object_get_string_member_with_default(e, "desc", "error") : "error");
            json_node_unref(n);
            return -1;
        }
        json_node_unref(n);
    }
}

static char *json_string_arg(const char *key, const char *val, bool with_fd)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *root;
    char *s;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, val);
    if (with_fd) {
        json_builder_set_member_name(b, "fd");
        json_builder_add_boolean_value(b, TRUE);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    s = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);
    return s;
}

static void print_table(const char *json)
{
    JsonParser *p = json_parser_new();
    JsonArray *a;

    if (!json_parser_load_from_data(p, json, -1, NULL) ||
        !JSON_NODE_HOLDS_ARRAY(json_parser_get_root(p))) {
        fprintf(stderr, "ferry usb: unreadable device list\n");
        g_object_unref(p);
        return;
    }
    a = json_node_get_array(json_parser_get_root(p));
    printf("%-7s %-10s %-9s %-6s %-12s %-7s %-30s %s\n", "BUS.ADR", "PORT", "ID", "SPEED",
           "DRIVER", "POLICY", "PRODUCT", "ATTACHED");
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        char busaddr[16], prod[64];
        const char *att = json_object_get_null_member(o, "attached") ? "-" :
                          json_object_get_string_member(o, "attached");
        snprintf(busaddr, sizeof(busaddr), "%d.%d",
                 (int)json_object_get_int_member(o, "bus"),
                 (int)json_object_get_int_member(o, "addr"));
        snprintf(prod, sizeof(prod), "%s %s", json_object_get_string_member(o, "manufacturer"),
                 json_object_get_string_member(o, "product"));
        printf("%-7s %-10s %-9s %-6d %-12s %-7s %-30s %s\n", busaddr,
               json_object_get_string_member(o, "port"), json_object_get_string_member(o, "id"),
               (int)json_object_get_int_member(o, "speed_mbps"),
               *json_object_get_string_member(o, "driver") ?
                   json_object_get_string_member(o, "driver") : "-",
               json_object_get_boolean_member(o, "allowed") ? "allow" : "refuse", prod, att);
        if (!json_object_get_boolean_member(o, "allowed"))
            printf("        refused: %s\n", json_object_get_string_member(o, "rule"));
    }
    g_object_unref(p);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* Run the service here: list once, or share and serve until a signal. */
static int local(const char *verb, int argc, char **argv, bool json)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_service_ops ops = { .log = ferry_log_glib };
    struct ferry_usb_service *svc = NULL;
    char err[FERRY_USB_ERR_MAX];
    int rc = FERRY_EXIT_FAILURE, r = 0;

    if (!b) {
        fprintf(stderr, "ferry usb: cannot create an event loop\n");
        return FERRY_EXIT_FAILURE;
    }
    /* no guests here: the service needs no folder for their sockets (a full
     * or missing TMPDIR is none of list's and share's business) */
    r = usb_service_new(b, NULL, &ops, NULL, &svc);
    if (r < 0) {
        fprintf(stderr, "ferry usb: cannot start the usb service: %s\n", g_strerror(-r));
        goto out;
    }
    if (!strcmp(verb, "list")) {
        char *s = usb_service_list_json(svc);
        if (json)
            printf("%s\n", s);
        else
            print_table(s);
        g_free(s);
        rc = FERRY_EXIT_OK;
        goto out;
    }
    r = usb_service_share(svc, argv[0], argv[1], err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "ferry usb %s: %s\n", verb, err);
        goto out;
    }
    {
        struct event *si = evsignal_new(b, SIGINT, on_signal, b);
        struct event *st = evsignal_new(b, SIGTERM, on_signal, b);
        event_add(si, NULL);
        event_add(st, NULL);
        fprintf(stderr, "ferry usb: share %s: serving on %s until interrupted\n", argv[0],
                argv[1]);
        event_base_dispatch(b);
        event_free(si);
        event_free(st);
    }
    rc = FERRY_EXIT_OK;
out:
    usb_service_free(svc);
    event_base_free(b);
    return rc;
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

static int pass_fd(struct ctl *c, const struct ferry_usb_devinfo *d, const char *device)
{
    char node[64], *args;
    int fd, r;

    snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d->bus, d->addr);
    fd = open(node, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ferry usb attach: cannot open %s: %s\n", node, g_strerror(errno));
        return -1;
    }
    args = json_string_arg("device", device, true);
    r = ctl_cmd(c, "usb-attach", args, fd, NULL);
    g_free(args);
    close(fd);
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
    if (pass_fd(br->c, d, ident) == 0)
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
    args = json_string_arg("device", ident, false);
    if (ctl_cmd(br->c, "usb-unplugged", args, -1, NULL) == 0)
        fprintf(stderr, "ferry usb attach: %s unplugged, ferry-dm told\n", ident);
    g_free(args);
}

/* Does ferry-dm serve the device with this identity already (its [usb] config)? */
static bool already_attached(struct ctl *c, const char *ident)
{
    JsonNode *q = NULL;
    bool found = false;

    if (ctl_cmd(c, "query-usb", NULL, -1, &q) < 0)
        return false;
    if (JSON_NODE_HOLDS_OBJECT(q)) {
        JsonObject *o = json_node_get_object(q);
        JsonArray *devs = json_object_has_member(o, "devices") ?
                          json_object_get_array_member(o, "devices") : NULL;

        for (guint i = 0; devs && i < json_array_get_length(devs); i++) {
            JsonObject *d = json_array_get_object_element(devs, i);
            if (d && !g_strcmp0(json_object_get_string_member_with_default(d, "identity", ""),
                                ident) &&
                !json_object_get_null_member(d, "attached"))
                found = true;
        }
    }
    json_node_unref(q);
    return found;
}

static int attach_broker(struct ctl *c, const char *device, bool follow)
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
    else if (pass_fd(c, &d, device) < 0)
        goto out;
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

static int attach(const char *guest, const char *device, bool pass, bool follow)
{
    struct ctl c = { .fd = -1 };
    JsonNode *q = NULL;
    char *args;
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) < 0)
        goto out;
    if (!pass && !follow) {
        /* a confined ferry-dm cannot open device nodes: then we are its broker */
        if (ctl_cmd(&c, "query-usb", NULL, -1, &q) < 0)
            goto out;
        pass = JSON_NODE_HOLDS_OBJECT(q) &&
               json_object_get_boolean_member_with_default(json_node_get_object(q), "confined",
                                                           FALSE);
        json_node_unref(q);
    }
    if (pass || follow) {
        rc = attach_broker(&c, device, follow);
        goto out;
    }
    args = json_string_arg("device", device, false);
    rc = ctl_cmd(&c, "usb-attach", args, -1, NULL) < 0 ? FERRY_EXIT_FAILURE : FERRY_EXIT_OK;
    g_free(args);
out:
    ctl_close(&c);
    return rc;
}

static int detach(const char *guest, const char *device)
{
    struct ctl c = { .fd = -1 };
    char *args = json_string_arg("device", device, false);
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) == 0 && ctl_cmd(&c, "usb-detach", args, -1, NULL) == 0)
        rc = FERRY_EXIT_OK;
    g_free(args);
    ctl_close(&c);
    return rc;
}

/* ferry usb list GUEST: what that ferry-dm serves. */
static int list_guest(const char *guest, bool json)
{
    struct ctl c = { .fd = -1 };
    JsonNode *q = NULL;
    int rc = FERRY_EXIT_FAILURE;

    if (ctl_open(guest, &c) == 0 && ctl_cmd(&c, "query-usb", NULL, -1, &q) == 0 &&
        JSON_NODE_HOLDS_OBJECT(q)) {
        JsonNode *devs = json_object_get_member(json_node_get_object(q), "devices");
        char *s = devs ? json_to_string(devs, TRUE) : g_strdup("[]");

        if (json)
            printf("%s\n", s);
        else
            print_table(s);
        g_free(s);
        rc = FERRY_EXIT_OK;
    }
    if (q)
        json_node_unref(q);
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
    const char *verb = argc > 1 ? argv[1] : NULL;
    const char *uri = NULL;

    ferry_log_init("ferry", getenv("FERRY_VERBOSE") ? 2 : 0);
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
        return guest ? list_guest(guest, json) : local("list", 0, NULL, json);
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
                        "libvirt domain ferry-dm follows replugs itself\n");
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
    if (!strcmp(verb, "share") && argc == 5 && !strcmp(argv[3], "--listen")) {
        char *a[2] = { argv[2], argv[4] };
        return local("share", 2, a, false);
    }
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
