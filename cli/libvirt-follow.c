// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `ferry libvirt-follow DOMAIN ALIAS IDENTITY`: the broker that brings a
 * replugged device back to a confined libvirt-mode ferry-dm (docs/libvirt.md).
 *
 * A confined ferry-dm sees no hotplug and opens no device node: at attach
 * the root broker (`ferry usb attach DOMAIN`, or the hook at `prepare`)
 * opens the device and passes its usbfs fd.  After a replug that fd is dead,
 * so the broker that passed it also starts this process (root, in its own
 * session, output to the domain's dm.log, pid in ALIAS.follow): it watches
 * the host's hotplug for that one device (its identity, given by root, not
 * by ferry-dm), tells ferry-dm when it goes (usb-unplugged: QEMU hears the
 * device is gone and keeps its connection) and, when it comes back, asks
 * the device-access policy again, opens the new node and passes its fd
 * (usb-attach with the alias: ferry-dm gives it to QEMU on that same
 * connection).  It ends when ferry-dm closes the control connection (the
 * domain stopped), when ferry-dm no longer serves the alias (detached), or
 * on SIGTERM (`ferry usb detach`, the hook's `stopped`).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "cli/cmd.h"
#include "cli/libvirt-internal.h"
#include "cli/usb-ctl.h"
#include "common/log-glib.h"
#include "usb/ferry-usb.h"

struct follow {
    struct ctl c;
    struct event_base *b;
    const char *domain, *alias;
    char ident[200];
    struct ferry_usb_spec spec;
    int cur_bus, cur_addr;      /* where the device is now; -1 while unplugged */
    bool started;               /* arrivals before are the devices present at start */
};

#define WHO "ferry libvirt-follow"

static void follow_arrived(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct follow *f = opaque;
    g_autofree char *args = NULL;
    char node[64];
    int fd;

    if (!f->started || !usb_spec_match(&f->spec, d) ||
        (d->bus == f->cur_bus && d->addr == f->cur_addr))
        return;
    f->cur_bus = d->bus;
    f->cur_addr = d->addr;
    if (usb_libvirt_policy_check(f->domain, f->ident, d, WHO) < 0)
        return;
    snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d->bus, d->addr);
    fd = open(node, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, WHO ": domain %s: %s is back at %s but cannot be opened: %s\n",
                f->domain, f->ident, node, g_strerror(errno));
        return;
    }
    args = ctl_json_args("device", f->ident, "alias", f->alias, true);
    if (ctl_cmd(&f->c, "usb-attach", args, fd, NULL) == 0)
        fprintf(stderr, WHO ": domain %s: %s is back at %s, its fd passed to ferry-dm\n",
                f->domain, f->ident, d->port);
    else
        event_base_loopbreak(f->b);         /* no longer served: detached */
    close(fd);
}

static void follow_left(void *opaque, const struct ferry_usb_devinfo *d)
{
    struct follow *f = opaque;
    g_autofree char *args = NULL;

    if (!f->started || d->bus != f->cur_bus || d->addr != f->cur_addr)
        return;
    f->cur_bus = f->cur_addr = -1;
    args = ctl_json_args("alias", f->alias, NULL, NULL, false);
    if (ctl_cmd(&f->c, "usb-unplugged", args, -1, NULL) == 0)
        fprintf(stderr, WHO ": domain %s: %s unplugged, ferry-dm told\n", f->domain, f->ident);
    else
        event_base_loopbreak(f->b);
}

/* ferry-dm closed the connection: the domain has stopped. */
static void follow_ctl_readable(evutil_socket_t fd, short what, void *opaque)
{
    struct follow *f = opaque;
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    /* replies are read inside ctl_cmd: anything here is unsolicited, dropped */
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (what & EV_CLOSED)) {
        fprintf(stderr, WHO ": domain %s: ferry-dm has gone: no more following %s\n", f->domain,
                f->ident);
        event_base_loopbreak(f->b);
    }
}

static void follow_signal(evutil_socket_t sig, short what, void *opaque)
{
    event_base_loopbreak(opaque);
}

int cmd_libvirt_follow(int argc, char **argv)
{
    struct follow f = { .c = { .fd = -1 }, .cur_bus = -1, .cur_addr = -1 };
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib, .arrived = follow_arrived,
                                      .left = follow_left };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_devinfo d;
    struct event *ev[3] = { NULL };
    g_autofree char *dir = NULL, *sock = NULL;
    char err[FERRY_USB_ERR_MAX];
    int rc = FERRY_EXIT_FAILURE;

    if (argc != 4 || !usb_libvirt_domain_name_ok(argv[1]) ||
        !g_str_has_prefix(argv[2], "ua-ferry-") || usb_spec_parse(argv[3], &f.spec) < 0) {
        fprintf(stderr, "usage: ferry libvirt-follow DOMAIN ALIAS IDENTITY (started by ferry "
                "for a confined ferry-dm; docs/libvirt.md)\n");
        return FERRY_EXIT_USAGE;
    }
    f.domain = argv[1];
    f.alias = argv[2];
    snprintf(f.ident, sizeof(f.ident), "%s", argv[3]);
    dir = usb_libvirt_domain_dir(f.domain);
    sock = g_build_filename(dir, "dm.sock", NULL);
    f.b = event_base_new();
    if (!f.b || ctl_open(sock, &f.c) < 0)
        goto out;
    /* a long wait: not one of ferry-dm's interactive slots, no idle bound */
    if (ctl_cmd(&f.c, "client-follow", NULL, -1, NULL) < 0)
        goto out;
    if (usb_host_new(f.b, true, &hops, &f, &h) < 0) {
        fprintf(stderr, WHO ": cannot start libusb\n");
        goto out;
    }
    if (usb_host_find(h, &f.spec, &d, err, sizeof(err)) == 0) {
        f.cur_bus = d.bus;
        f.cur_addr = d.addr;
    }
    ev[0] = event_new(f.b, f.c.fd, EV_READ | EV_PERSIST | EV_CLOSED, follow_ctl_readable, &f);
    ev[1] = evsignal_new(f.b, SIGTERM, follow_signal, f.b);
    ev[2] = evsignal_new(f.b, SIGINT, follow_signal, f.b);
    for (unsigned i = 0; i < 3; i++)
        if (!ev[i] || event_add(ev[i], NULL) < 0)
            goto out;
    f.started = true;
    fprintf(stderr, WHO ": domain %s: following %s (%s) for a confined ferry-dm\n", f.domain,
            f.ident, f.alias);
    event_base_dispatch(f.b);
    rc = FERRY_EXIT_OK;
out:
    for (unsigned i = 0; i < 3; i++)
        if (ev[i])
            event_free(ev[i]);
    usb_host_free(h);
    ctl_close(&f.c);
    if (f.b)
        event_base_free(f.b);
    return rc;
}

/* ---- started and stopped by the broker -------------------------------------- */

/* The follower's pid file: dir/ALIAS.follow. */
static char *follow_pidfile(const char *dir, const char *alias)
{
    g_autofree char *base = g_strdup_printf("%s.follow", alias);

    return g_build_filename(dir, base, NULL);
}

void usb_libvirt_follow_stop(const char *dir, const char *alias)
{
    g_autofree char *pidf = follow_pidfile(dir, alias);
    g_autofree char *pids = NULL, *cmdf = NULL, *cmd = NULL;
    gsize len = 0;
    gint64 pid;

    if (!g_file_get_contents(pidf, &pids, NULL, NULL) ||
        (pid = g_ascii_strtoll(pids, NULL, 10)) <= 1)
        goto out;
    /* only `ferry libvirt-follow ... ALIAS ...`, not a recycled pid */
    cmdf = g_strdup_printf("/proc/%d/cmdline", (int)pid);
    if (g_file_get_contents(cmdf, &cmd, &len, NULL) && len > 0 &&
        g_strstr_len(cmd, (gssize)len, "libvirt-follow") &&
        memmem(cmd, len, alias, strlen(alias) + 1)) {
        kill((pid_t)pid, SIGTERM);
        (void)waitpid((pid_t)pid, NULL, WNOHANG);
    }
out:
    unlink(pidf);
}

int usb_libvirt_follow_start(const char *domain, const char *dir, const char *alias,
                             const char *ident, const char *who)
{
    g_autofree char *pidf = follow_pidfile(dir, alias);
    g_autofree char *log = g_build_filename(dir, "dm.log", NULL);
    g_autofree char *pids = NULL;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    pid_t pid;

    if (n <= 0) {
        fprintf(stderr, "%s: cannot find this program to follow %s: %s\n", who, ident,
                g_strerror(errno));
        return -ENOENT;
    }
    self[n] = '\0';
    usb_libvirt_follow_stop(dir, alias);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot start the follower of %s: %s\n", who, ident,
                g_strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        const char *argv[] = { self, "libvirt-follow", domain, alias, ident, NULL };
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        setsid();
        /* libvirt waits for its hook's output to end: the follower keeps none of it */
        if (nul < 0 || out < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        execv(self, (char **)argv);
        _exit(127);
    }
    pids = g_strdup_printf("%d\n", (int)pid);
    (void)g_file_set_contents(pidf, pids, -1, NULL);
    return 0;
}
