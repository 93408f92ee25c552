// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry-dm's QMP connection to its QEMU; see dm-qmp.h. */
#include "devmodel/dm-qmp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <glib.h>

#include "common/log-glib.h"
#include "usb/ferry-usb.h"

struct dm_qmp {
    struct ferry_usb_qmp *q;
    struct event *ev;
    char *path;
    void (*gone)(void *opaque);
    void *opaque;
};

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct dm_qmp *d = arg;
    int r = ferry_usb_qmp_drain(d->q);

    if (r == 0)
        return;
    ferry_log(FERRY_LOG_INFO, NULL, "qmp: connection to %s ended: %s", d->path,
              r == -EPIPE ? "QEMU has gone" : g_strerror(-r));
    event_del(d->ev);
    if (d->gone)
        d->gone(d->opaque);
}

int dm_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct dm_qmp **out)
{
    char err[FERRY_USB_ERR_MAX];
    struct dm_qmp *d = g_new0(struct dm_qmp, 1);
    int r;

    *out = NULL;
    d->path = g_strdup(path);
    d->gone = gone;
    d->opaque = opaque;
    r = ferry_usb_qmp_open(path, DM_QMP_TIMEOUT_MS, &d->q, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "ferry-dm: %s\n", err);
        dm_qmp_free(d);
        return r;
    }
    d->ev = event_new(base, ferry_usb_qmp_fd(d->q), EV_READ | EV_PERSIST, on_readable, d);
    if (!d->ev || event_add(d->ev, NULL) < 0) {
        fprintf(stderr, "ferry-dm: cannot watch the QMP connection to %s\n", path);
        dm_qmp_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

struct ferry_usb_qmp *dm_qmp_client(struct dm_qmp *d)
{
    return d ? d->q : NULL;
}

const char *dm_qmp_path(const struct dm_qmp *d)
{
    return d ? d->path : NULL;
}

void dm_qmp_free(struct dm_qmp *d)
{
    if (!d)
        return;
    if (d->ev)
        event_free(d->ev);
    ferry_usb_qmp_close(d->q);
    g_free(d->path);
    g_free(d);
}
