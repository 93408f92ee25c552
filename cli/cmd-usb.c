// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry usb list [--json]
 * ferry usb attach GUEST DEVICE [--pass-fd]
 * ferry usb detach GUEST DEVICE
 * ferry usb share DEVICE --listen ADDR:PORT
 *
 * GUEST is the QMP socket of a QEMU guest (for now); DEVICE is VID:PID,
 * VID:PID:SERIAL, a port path (1-2.3) or BUS.ADDR.  With ferry-usbd running
 * ($FERRY_USBD_SOCKET, else /run/ferry/usbd.sock) requests go to it; without
 * it, list looks at the host directly and attach/share serve the device
 * from this process until interrupted.  --pass-fd: this (privileged)
 * process opens the device node and passes the fd to ferry-usbd, which
 * then needs no access to /dev/bus/usb.
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
#include "common/log-glib.h"
#include "usb/ferry-usb.h"
#include "usb/usbd-proto.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry usb list [--json]\n"
            "       ferry usb attach GUEST DEVICE [--pass-fd]\n"
            "       ferry usb detach GUEST DEVICE\n"
            "       ferry usb share DEVICE --listen ADDR:PORT\n"
            "GUEST: the guest's QMP socket path.  DEVICE: VID:PID, VID:PID:SERIAL,\n"
            "a port path (1-2.3) or BUS.ADDR.  Requests go to ferry-usbd at\n"
            "$FERRY_USBD_SOCKET (default /run/ferry/usbd.sock) when it runs.\n");
}

/* One request to ferry-usbd; -ECONNREFUSED/-ENOENT when it is not there. */
static int usbd_request(const char *req, char **reply)
{
    char addr[300], err[FERRY_USB_ERR_MAX], buf[4096];
    GString *out = g_string_new(NULL);
    int fd;
    ssize_t n;

    snprintf(addr, sizeof(addr), "unix:%s", usbd_default_socket());
    fd = ferry_usb_connect(addr, err, sizeof(err));
    if (fd < 0) {
        g_string_free(out, TRUE);
        return fd;
    }
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
        close(fd);
        g_string_free(out, TRUE);
        return -EIO;
    }
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        g_string_append_len(out, buf, n);
    close(fd);
    *reply = g_string_free(out, FALSE);
    return 0;
}

static bool usbd_absent(int r)
{
    return r == -ENOENT || r == -ECONNREFUSED;
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

/* Run the service here: list once, or attach/share and serve until a signal. */
static int local(const char *verb, int argc, char **argv, bool json)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_service_ops ops = { .log = ferry_log_glib };
    struct ferry_usb_service *svc = NULL;
    char err[FERRY_USB_ERR_MAX], *rundir = NULL;
    int rc = FERRY_EXIT_FAILURE, r = 0;

    if (!b)
        return FERRY_EXIT_FAILURE;
    rundir = g_dir_make_tmp("ferry-usb-XXXXXX", NULL);
    if (!rundir || ferry_usb_service_new(b, rundir, &ops, NULL, &svc) < 0) {
        fprintf(stderr, "ferry usb: cannot start the usb service (libusb)\n");
        goto out;
    }
    if (!strcmp(verb, "list")) {
        char *s = ferry_usb_service_list_json(svc);
        if (json)
            printf("%s\n", s);
        else
            print_table(s);
        g_free(s);
        rc = FERRY_EXIT_OK;
        goto out;
    }
    if (!strcmp(verb, "attach"))
        r = ferry_usb_service_attach(svc, argv[0], argv[1], err, sizeof(err));
    else
        r = ferry_usb_service_share(svc, argv[0], argv[1], err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "ferry usb %s: %s\n", verb, err);
        goto out;
    }
    {
        struct event *si = evsignal_new(b, SIGINT, on_signal, b);
        struct event *st = evsignal_new(b, SIGTERM, on_signal, b);
        event_add(si, NULL);
        event_add(st, NULL);
        fprintf(stderr, "ferry usb: %s %s: serving until interrupted (no ferry-usbd at %s)\n",
                verb, argv[!strcmp(verb, "attach")], usbd_default_socket());
        event_base_dispatch(b);
        event_free(si);
        event_free(st);
        if (!strcmp(verb, "attach") &&
            ferry_usb_service_detach(svc, argv[0], argv[1], err, sizeof(err)) < 0)
            fprintf(stderr, "ferry usb: %s\n", err);
    }
    rc = FERRY_EXIT_OK;
out:
    ferry_usb_service_free(svc);
    event_base_free(b);
    if (rundir) {
        rmdir(rundir);
        g_free(rundir);
    }
    return rc;
}

/* Open the device node here and hand the fd to ferry-usbd. */
static int attach_pass_fd(const char *guest, const char *device)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_devinfo d;
    struct ferry_usb_spec spec;
    char err[FERRY_USB_ERR_MAX], node[64], addr[300], *req = NULL, reply[1024];
    int rc = FERRY_EXIT_FAILURE, fd = -1, s = -1;
    ssize_t n;

    if (ferry_usb_spec_parse(device, &spec) < 0) {
        fprintf(stderr, "ferry usb attach: '%s': expected VID:PID, VID:PID:SERIAL, a port "
                "path (1-2.3) or BUS.ADDR\n", device);
        goto out;
    }
    if (!b || ferry_usb_host_new(b, true, &hops, NULL, &h) < 0) {
        fprintf(stderr, "ferry usb attach: cannot start libusb\n");
        goto out;
    }
    if (ferry_usb_host_find(h, &spec, &d, err, sizeof(err)) < 0) {
        fprintf(stderr, "ferry usb attach: %s\n", err);
        goto out;
    }
    snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d.bus, d.addr);
    fd = open(node, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ferry usb attach: cannot open %s: %s\n", node, g_strerror(errno));
        goto out;
    }
    snprintf(addr, sizeof(addr), "unix:%s", usbd_default_socket());
    s = ferry_usb_connect(addr, err, sizeof(err));
    if (s < 0) {
        fprintf(stderr, "ferry usb attach: %s\n", err);
        goto out;
    }
    req = g_strdup_printf("attach-fd %s\n", guest);
    if (ferry_usb_fd_send(s, fd, req, strlen(req)) < 0) {
        fprintf(stderr, "ferry usb attach: cannot pass %s to ferry-usbd\n", node);
        goto out;
    }
    /* the reply ends when ferry-usbd closes the connection */
    {
        size_t got = 0;
        while (got < sizeof(reply) - 1 && (n = recv(s, reply + got, sizeof(reply) - 1 - got, 0)) > 0)
            got += (size_t)n;
        reply[got] = 0;
    }
    g_strchomp(reply);
    if (strcmp(reply, "ok")) {
        fprintf(stderr, "ferry usb attach: %s\n",
                g_str_has_prefix(reply, "error: ") ? reply + 7 : "no answer from ferry-usbd");
        goto out;
    }
    rc = FERRY_EXIT_OK;
out:
    g_free(req);
    if (s >= 0)
        close(s);
    if (fd >= 0)
        close(fd);
    ferry_usb_host_free(h);
    if (b)
        event_base_free(b);
    return rc;
}

int ferry_cmd_usb(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    char *reply = NULL, *req;
    int r;

    ferry_log_init("ferry", getenv("FERRY_VERBOSE") ? 2 : 0);
    if (!verb || !strcmp(verb, "--help") || !strcmp(verb, "help")) {
        usage(verb ? stdout : stderr);
        return verb ? FERRY_EXIT_OK : FERRY_EXIT_USAGE;
    }
    if (!strcmp(verb, "list")) {
        bool json = argc == 3 && !strcmp(argv[2], "--json");
        if (argc > 3 || (argc == 3 && !json)) {
            usage(stderr);
            return FERRY_EXIT_USAGE;
        }
        r = usbd_request("list", &reply);
        if (usbd_absent(r))
            return local("list", 0, NULL, json);
        if (r < 0) {
            fprintf(stderr, "ferry usb: ferry-usbd at %s: %s\n", usbd_default_socket(),
                    g_strerror(-r));
            return FERRY_EXIT_FAILURE;
        }
        if (json)
            printf("%s", reply);
        else
            print_table(reply);
        g_free(reply);
        return FERRY_EXIT_OK;
    }
    if (!strcmp(verb, "attach") && argc == 5 && !strcmp(argv[4], "--pass-fd"))
        return attach_pass_fd(argv[2], argv[3]);
    if ((!strcmp(verb, "attach") || !strcmp(verb, "detach")) && argc == 4) {
        req = g_strdup_printf("%s %s %s", verb, argv[2], argv[3]);
    } else if (!strcmp(verb, "share") && argc == 5 && !strcmp(argv[3], "--listen")) {
        req = g_strdup_printf("share %s %s", argv[2], argv[4]);
    } else {
        usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (strchr(argv[2], ' ') || strchr(argv[3], ' ') || strchr(argv[2], '\n') ||
        strchr(argv[3], '\n')) {
        fprintf(stderr, "ferry usb: arguments must not contain blanks\n");
        g_free(req);
        return FERRY_EXIT_USAGE;
    }
    r = usbd_request(req, &reply);
    g_free(req);
    if (usbd_absent(r)) {
        if (!strcmp(verb, "detach")) {
            fprintf(stderr, "ferry usb detach: no ferry-usbd at %s (a foreground 'ferry usb "
                    "attach' detaches when interrupted)\n", usbd_default_socket());
            return FERRY_EXIT_FAILURE;
        }
        if (!strcmp(verb, "share")) {
            char *a[2] = { argv[2], argv[4] };
            return local("share", 2, a, false);
        }
        return local("attach", 2, argv + 2, false);
    }
    if (r < 0) {
        fprintf(stderr, "ferry usb: ferry-usbd at %s: %s\n", usbd_default_socket(),
                g_strerror(-r));
        return FERRY_EXIT_FAILURE;
    }
    g_strchomp(reply);
    if (strcmp(reply, "ok")) {
        fprintf(stderr, "ferry usb %s: %s\n", verb,
                g_str_has_prefix(reply, "error: ") ? reply + 7 : reply);
        g_free(reply);
        return FERRY_EXIT_FAILURE;
    }
    g_free(reply);
    return FERRY_EXIT_OK;
}
