// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-usbd: the USB service on a libevent loop with a control socket of
 * its own, until ferry-dm embeds the service and serves the same requests
 * on its control socket.  One request per connection, one line each:
 *     list                    -> JSON array, then EOF
 *     attach GUEST DEVICE     -> "ok" or "error: MESSAGE"
 *     detach GUEST DEVICE     -> "ok" or "error: MESSAGE"
 *     share DEVICE ADDR:PORT  -> "ok" or "error: MESSAGE"
 *     attach-fd GUEST         -> "ok" or "error: MESSAGE"; the usbfs fd of
 *                                the device comes with it (SCM_RIGHTS) from
 *                                a privileged broker such as `ferry usb
 *                                attach --pass-fd`
 * GUEST is the guest's QMP socket path.
 *   ferry-usbd [-v] [--control PATH] [--rundir DIR] [--config FILE]
 */
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log-glib.h"
#include "usb/ferry-usb.h"
#include "usb/usbd-proto.h"

#define REQ_MAX 4096

struct usbd {
    struct event_base *b;
    struct ferry_usb_service *svc;
};

struct client {
    struct usbd *d;
    int fd;
    struct event *ev;
    char buf[REQ_MAX];
    size_t len;
    int passed_fd;
};

static void reply(int fd, const char *s)
{
    size_t off = 0, n = strlen(s);

    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            g_usleep(1000);
            continue;
        }
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static void client_free(struct client *c)
{
    if (c->passed_fd >= 0)
        close(c->passed_fd);
    event_free(c->ev);
    close(c->fd);
    g_free(c);
}

static void handle(struct client *c, char *line)
{
    char err[FERRY_USB_ERR_MAX] = "";
    gchar **w = g_strsplit_set(g_strstrip(line), " \t", 4);
    guint n = g_strv_length(w);
    int r = -EINVAL;

    if (n == 1 && !strcmp(w[0], "list")) {
        char *json = ferry_usb_service_list_json(c->d->svc);
        reply(c->fd, json);
        reply(c->fd, "\n");
        g_free(json);
        g_strfreev(w);
        return;
    }
    if (n == 3 && !strcmp(w[0], "attach"))
        r = ferry_usb_service_attach(c->d->svc, w[1], w[2], err, sizeof(err));
    else if (n == 3 && !strcmp(w[0], "detach"))
        r = ferry_usb_service_detach(c->d->svc, w[1], w[2], err, sizeof(err));
    else if (n == 3 && !strcmp(w[0], "share"))
        r = ferry_usb_service_share(c->d->svc, w[1], w[2], err, sizeof(err));
    else if (n == 2 && !strcmp(w[0], "attach-fd") && c->passed_fd < 0)
        snprintf(err, sizeof(err), "attach-fd: no fd came with the request");
    else if (n == 2 && !strcmp(w[0], "attach-fd")) {
        r = ferry_usb_service_attach_fd(c->d->svc, w[1], c->passed_fd, err, sizeof(err));
        if (r == 0)
            c->passed_fd = -1;      /* the service's now */
    }
    else
        snprintf(err, sizeof(err), "unknown request '%s'", n ? w[0] : "");
    if (r == 0) {
        reply(c->fd, "ok\n");
    } else {
        reply(c->fd, "error: ");
        reply(c->fd, err);
        reply(c->fd, "\n");
    }
    g_strfreev(w);
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    int got = -1;
    int n = ferry_usb_fd_recv(fd, &got, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    char *nl;

    if (got >= 0) {
        if (c->passed_fd >= 0)
            close(c->passed_fd);    /* one fd per request */
        c->passed_fd = got;
    }
    if (n <= 0) {
        if (n == -EAGAIN)
            return;
        client_free(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    nl = strchr(c->buf, '\n');
    if (!nl && c->len < sizeof(c->buf) - 1)
        return;
    if (nl)
        *nl = 0;
    handle(c, c->buf);
    client_free(c);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct usbd *d = arg;
    struct client *c;
    int fd = ferry_usb_accept(lfd);

    if (fd < 0)
        return;
    c = g_new0(struct client, 1);
    c->d = d;
    c->fd = fd;
    c->passed_fd = -1;
    c->ev = event_new(d->b, fd, EV_READ | EV_PERSIST, on_client, c);
    event_add(c->ev, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    const char *control = usbd_default_socket(), *config = NULL;
    char *rundir = NULL;
    int verbose = 0, lfd, rc = 1;
    char err[FERRY_USB_ERR_MAX], addr[300];
    struct usbd d = { 0 };
    struct ferry_usb_service_ops ops = { .log = ferry_log_glib };
    struct event *lev, *sint, *sterm;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose++;
        else if (!strcmp(argv[i], "--control") && i + 1 < argc)
            control = argv[++i];
        else if (!strcmp(argv[i], "--rundir") && i + 1 < argc)
            rundir = g_strdup(argv[++i]);
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "usage: ferry-usbd [-v] [--control PATH] [--rundir DIR] "
                    "[--config FILE]\n");
            return 2;
        }
    }
    ferry_log_init("ferry-usbd", verbose + 1);
    if (!rundir)
        rundir = g_path_get_dirname(control);
    g_mkdir_with_parents(rundir, 0700);
    d.b = event_base_new();
    if (ferry_usb_service_new(d.b, rundir, &ops, NULL, &d.svc) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot start the usb service");
        goto out;
    }
    if (config) {
        GKeyFile *kf = g_key_file_new();
        GError *gerr = NULL;
        if (!g_key_file_load_from_file(kf, config, 0, &gerr)) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s: %s", config, gerr->message);
            g_error_free(gerr);
            g_key_file_unref(kf);
            goto out;
        }
        if (ferry_usb_service_load_config(d.svc, kf, err, sizeof(err)) < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s: %s", config, err);
            g_key_file_unref(kf);
            goto out;
        }
        g_key_file_unref(kf);
    }
    snprintf(addr, sizeof(addr), "unix:%s", control);
    lfd = ferry_usb_listen(addr, err, sizeof(err));
    if (lfd < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    lev = event_new(d.b, lfd, EV_READ | EV_PERSIST, on_accept, &d);
    event_add(lev, NULL);
    sint = evsignal_new(d.b, SIGINT, on_signal, d.b);
    sterm = evsignal_new(d.b, SIGTERM, on_signal, d.b);
    event_add(sint, NULL);
    event_add(sterm, NULL);
    ferry_log(FERRY_LOG_INFO, NULL, "serving on %s", control);
    event_base_dispatch(d.b);
    event_free(lev);
    event_free(sint);
    event_free(sterm);
    close(lfd);
    unlink(control);
    rc = 0;
out:
    ferry_usb_service_free(d.svc);
    event_base_free(d.b);
    g_free(rundir);
    return rc;
}
