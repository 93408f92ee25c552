// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry-dm's QMP connection to its QEMU; see dm-qmp.h. */
#include "companion/dm-qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "common/log-glib.h"
#include "common/qmp-wait.h"
#include "usb/ferry-usb.h"

struct companion_qmp {
    struct ferry_usb_qmp *q;
    struct ferry_qmp_watch *watch;
    char *path;
    void (*gone)(void *opaque);
    void *opaque;
};

int companion_qmp_wait_timeout_ms(void)
{
    const char *s = getenv(DM_QMP_WAIT_ENV);
    char *end;
    long v;

    if (!s || !*s)
        return DM_QMP_TIMEOUT_MS;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 600000)
        return DM_QMP_TIMEOUT_MS;
    return (int)v;
}

/* The watch saw QEMU's connection end (its waiters have had -EPIPE). */
static void on_gone(void *opaque, int err)
{
    struct companion_qmp *d = opaque;

    ferry_log(FERRY_LOG_INFO, NULL, "qmp: connection to %s ended: %s", d->path,
              err == -EPIPE ? "QEMU has gone" : g_strerror(-err));
    if (d->gone)
        d->gone(d->opaque);
}

int companion_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct companion_qmp **out)
{
    return companion_qmp_open_fd(base, -1, path, gone, opaque, out);
}

int companion_qmp_open_fd(struct event_base *base, int fd, const char *path,
                          void (*gone)(void *opaque), void *opaque, struct companion_qmp **out)
{
    char err[FERRY_USB_ERR_MAX];
    struct companion_qmp *d = g_new0(struct companion_qmp, 1);
    int r;

    *out = NULL;
    d->path = g_strdup(path);
    d->gone = gone;
    d->opaque = opaque;
    /* QEMU and ferry-dm may be started together (two units, a script): a
     * socket not there yet, or there but not listening yet, is waited for
     * within the same bound as the greeting. */
    for (gint64 end = g_get_monotonic_time() + DM_QMP_TIMEOUT_MS * (gint64)1000;;) {
        if (fd >= 0) {
            r = usb_qmp_open_fd(fd, path, DM_QMP_TIMEOUT_MS, &d->q, err, sizeof(err));
            break;
        }
        r = usb_qmp_open(path, DM_QMP_TIMEOUT_MS, &d->q, err, sizeof(err));
        if ((r != -ENOENT && r != -ECONNREFUSED) || g_get_monotonic_time() >= end)
            break;
        g_usleep(50 * 1000);
    }
    if (r < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "%s", err);
        companion_qmp_free(d);
        return r;
    }
    if (ferry_qmp_watch_new(base, usb_qmp_base(d->q), on_gone, d, &d->watch) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot watch the QMP connection to %s", path);
        companion_qmp_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

int companion_qmp_adopt(struct event_base *base, const char *path, int fd, const void *unread,
                        size_t len, void (*gone)(void *opaque), void *opaque,
                        struct companion_qmp **out)
{
    struct companion_qmp *d = g_new0(struct companion_qmp, 1);
    int r;

    *out = NULL;
    d->path = g_strdup(path);
    d->gone = gone;
    d->opaque = opaque;
    r = usb_qmp_adopt(path, fd, unread, len, DM_QMP_TIMEOUT_MS, &d->q);
    if (r < 0) {
        close(fd);
        companion_qmp_free(d);
        return r;
    }
    if (ferry_qmp_watch_new(base, usb_qmp_base(d->q), on_gone, d, &d->watch) < 0) {
        companion_qmp_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

int companion_qmp_fd(struct companion_qmp *d)
{
    return ferry_qmp_fd(usb_qmp_base(d->q));
}

struct ferry_usb_qmp *companion_qmp_client(struct companion_qmp *d)
{
    return d ? d->q : NULL;
}

struct ferry_qmp *companion_qmp_conn(struct companion_qmp *d)
{
    return d ? usb_qmp_base(d->q) : NULL;
}

struct ferry_qmp_watch *companion_qmp_watch(struct companion_qmp *d)
{
    return d ? d->watch : NULL;
}

const char *companion_qmp_path(const struct companion_qmp *d)
{
    return d ? d->path : NULL;
}

void companion_qmp_free(struct companion_qmp *d)
{
    if (!d)
        return;
    ferry_qmp_watch_free(d->watch);
    usb_qmp_close(d->q);
    g_free(d->path);
    g_free(d);
}
