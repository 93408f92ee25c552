// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry-dm's QMP connection to its QEMU; see dm-qmp.h. */
#include "companion/dm-qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <glib.h>

#include "common/log-glib.h"
#include "usb/ferry-usb.h"

struct dm_qmp_wait {
    struct dm_qmp *d;
    char *id;
    struct event *timer;
    void (*fn)(void *opaque, int result);
    void *opaque;
};

struct dm_qmp {
    struct ferry_usb_qmp *q;
    struct event *ev;
    struct event *check_ev;     /* look at the kept events from the loop */
    char *path;
    bool lost;                  /* QEMU's connection has gone */
    GQueue waiters;             /* struct dm_qmp_wait *, oldest first */
    void (*gone)(void *opaque);
    void *opaque;
};

int dm_qmp_wait_timeout_ms(void)
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

static void wait_free(struct dm_qmp_wait *w)
{
    if (w->timer)
        event_free(w->timer);
    g_free(w->id);
    g_free(w);
}

/* Out of the list first, so that fn may add or cancel waiters. */
static void wait_finish(struct dm_qmp_wait *w, int result)
{
    g_queue_remove(&w->d->waiters, w);
    w->fn(w->opaque, result);
    wait_free(w);
}

/* The waiters whose DEVICE_DELETED has been kept, then (QEMU gone) all. */
static void dispatch(struct dm_qmp *d)
{
    bool again = true;

    while (again) {
        again = false;
        for (GList *l = d->waiters.head; l; l = l->next) {
            struct dm_qmp_wait *w = l->data;

            if (ferry_usb_qmp_take_deleted(d->q, w->id) == 0) {
                wait_finish(w, 0);
                again = true;   /* the list may have changed */
                break;
            }
        }
    }
    while (d->lost && d->waiters.head)
        wait_finish(d->waiters.head->data, -EPIPE);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch(arg);
}

/* common/qmp.c kept an event, perhaps inside a synchronous command: look
 * from the loop, never from in there. */
static void on_event_kept(void *opaque)
{
    struct dm_qmp *d = opaque;

    if (d->waiters.length)
        event_active(d->check_ev, EV_TIMEOUT, 0);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dm_qmp_wait *w = arg;

    (void)fd;
    (void)what;
    /* arrived in the same turn of the loop: it counts */
    wait_finish(w, ferry_usb_qmp_take_deleted(w->d->q, w->id) == 0 ? 0 : -ETIMEDOUT);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct dm_qmp *d = arg;
    int r = ferry_usb_qmp_drain(d->q);

    if (r == 0) {
        dispatch(d);
        return;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "qmp: connection to %s ended: %s", d->path,
              r == -EPIPE ? "QEMU has gone" : g_strerror(-r));
    event_del(d->ev);
    d->lost = true;
    dispatch(d);        /* what had arrived still counts; the rest fails */
    if (d->gone)
        d->gone(d->opaque);
}

int dm_qmp_wait_deleted(struct dm_qmp *d, const char *dev_id, int timeout_ms,
                        void (*fn)(void *opaque, int result), void *opaque,
                        struct dm_qmp_wait **out)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct dm_qmp_wait *w;

    if (out)
        *out = NULL;
    if (d->waiters.length >= DM_QMP_WAITERS_MAX)
        return -EBUSY;
    w = g_new0(struct dm_qmp_wait, 1);
    w->d = d;
    w->id = g_strdup(dev_id);
    w->fn = fn;
    w->opaque = opaque;
    w->timer = evtimer_new(event_get_base(d->check_ev), timer_cb, w);
    if (!w->timer || evtimer_add(w->timer, &tv) < 0) {
        wait_free(w);
        return -ENOMEM;
    }
    g_queue_push_tail(&d->waiters, w);
    /* it may have come with device_del's reply, or QEMU may be gone */
    event_active(d->check_ev, EV_TIMEOUT, 0);
    if (out)
        *out = w;
    return 0;
}

void dm_qmp_wait_cancel(struct dm_qmp_wait *w)
{
    if (!w)
        return;
    g_queue_remove(&w->d->waiters, w);
    wait_free(w);
}

int dm_qmp_open(struct event_base *base, const char *path, void (*gone)(void *opaque),
                void *opaque, struct dm_qmp **out)
{
    char err[FERRY_USB_ERR_MAX];
    struct dm_qmp *d = g_new0(struct dm_qmp, 1);
    int r;

    *out = NULL;
    g_queue_init(&d->waiters);
    d->path = g_strdup(path);
    d->gone = gone;
    d->opaque = opaque;
    /* QEMU and ferry-dm may be started together (two units, a script): a
     * socket not there yet, or there but not listening yet, is waited for
     * within the same bound as the greeting. */
    for (gint64 end = g_get_monotonic_time() + DM_QMP_TIMEOUT_MS * (gint64)1000;;) {
        r = ferry_usb_qmp_open(path, DM_QMP_TIMEOUT_MS, &d->q, err, sizeof(err));
        if ((r != -ENOENT && r != -ECONNREFUSED) || g_get_monotonic_time() >= end)
            break;
        g_usleep(50 * 1000);
    }
    if (r < 0) {
        fprintf(stderr, "ferry-dm: %s\n", err);
        dm_qmp_free(d);
        return r;
    }
    d->ev = event_new(base, ferry_usb_qmp_fd(d->q), EV_READ | EV_PERSIST, on_readable, d);
    d->check_ev = event_new(base, -1, 0, check_cb, d);
    if (!d->ev || !d->check_ev || event_add(d->ev, NULL) < 0) {
        fprintf(stderr, "ferry-dm: cannot watch the QMP connection to %s\n", path);
        dm_qmp_free(d);
        return -ENOMEM;
    }
    ferry_usb_qmp_set_event_cb(d->q, on_event_kept, d);
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
    while (d->waiters.head)
        wait_finish(d->waiters.head->data, -ECANCELED);
    if (d->q)
        ferry_usb_qmp_set_event_cb(d->q, NULL, NULL);
    if (d->ev)
        event_free(d->ev);
    if (d->check_ev)
        event_free(d->check_ev);
    ferry_usb_qmp_close(d->q);
    g_free(d->path);
    g_free(d);
}
