// SPDX-License-Identifier: GPL-2.0-or-later
/* DEVICE_DELETED, the one way to wait for it; see qmp-wait.h. */
#include "common/qmp-wait.h"

#include <errno.h>
#include <string.h>

#include <event2/event.h>
#include <glib.h>

struct ferry_qmp_waiter {
    struct ferry_qmp_watch *w;
    char *id;
    struct event *timer;
    void (*fn)(void *opaque, int result);
    void *opaque;
};

struct ferry_qmp_watch {
    struct ferry_qmp *q;
    struct event *ev;
    struct event *check_ev;     /* look at the kept events from the loop */
    bool lost;                  /* QEMU's connection has gone */
    GQueue waiters;             /* struct ferry_qmp_waiter *, oldest first */
    void (*gone)(void *opaque, int err);
    void *opaque;
};

int ferry_qmp_device_del(struct ferry_qmp *q, const char *id)
{
    json_t *args = json_object();
    const char *e;
    int r;

    json_object_set_new(args, "id", ferry_json_str(id));
    r = ferry_qmp_execute(q, "device_del", args, NULL);
    json_decref(args);
    if (r != -EREMOTEIO)
        return r;
    e = ferry_qmp_error(q);
    /* a device_del asked before whose guest has not answered yet (QEMU 7.2:
     * "Device ID is already in the process of unplug"): wait again */
    if (strstr(e, "in the process of unplug") || strstr(e, "in progress"))
        return 0;
    if (strstr(e, "not found"))
        return 1;
    return r;
}

int ferry_qmp_wait_deleted(struct ferry_qmp *q, const char *id, int timeout_ms)
{
    return ferry_qmp_wait_event(q, "DEVICE_DELETED", id, timeout_ms, NULL);
}

static bool take_deleted(struct ferry_qmp_watch *w, const char *id)
{
    return ferry_qmp_take_event(w->q, "DEVICE_DELETED", id, NULL) == 0;
}

static void waiter_free(struct ferry_qmp_waiter *wt)
{
    if (wt->timer)
        event_free(wt->timer);
    g_free(wt->id);
    g_free(wt);
}

/* Out of the list first, so that fn may add or cancel waiters. */
static void waiter_finish(struct ferry_qmp_waiter *wt, int result)
{
    g_queue_remove(&wt->w->waiters, wt);
    wt->fn(wt->opaque, result);
    waiter_free(wt);
}

/* The waiters whose DEVICE_DELETED has been kept, then (QEMU gone) all. */
static void dispatch(struct ferry_qmp_watch *w)
{
    bool again = true;

    while (again) {
        again = false;
        for (GList *l = w->waiters.head; l; l = l->next) {
            struct ferry_qmp_waiter *wt = l->data;

            if (take_deleted(w, wt->id)) {
                waiter_finish(wt, 0);
                again = true;   /* the list may have changed */
                break;
            }
        }
    }
    while (w->lost && w->waiters.head)
        waiter_finish(w->waiters.head->data, -EPIPE);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch(arg);
}

/* qmp.c kept an event, perhaps inside a synchronous command: look from the
 * loop, never from in there. */
static void on_event_kept(void *opaque)
{
    struct ferry_qmp_watch *w = opaque;

    if (w->waiters.length)
        event_active(w->check_ev, EV_TIMEOUT, 0);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qmp_waiter *wt = arg;

    (void)fd;
    (void)what;
    /* arrived in the same turn of the loop: it counts */
    waiter_finish(wt, take_deleted(wt->w, wt->id) ? 0 : -ETIMEDOUT);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_qmp_watch *w = arg;
    int r = ferry_qmp_drain(w->q);

    if (r == 0) {
        dispatch(w);
        return;
    }
    event_del(w->ev);
    w->lost = true;
    dispatch(w);        /* what had arrived still counts; the rest fails */
    if (w->gone)
        w->gone(w->opaque, r);
}

int ferry_qmp_watch_deleted(struct ferry_qmp_watch *w, const char *dev_id, int timeout_ms,
                            void (*fn)(void *opaque, int result), void *opaque,
                            struct ferry_qmp_waiter **out)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct ferry_qmp_waiter *wt;

    if (out)
        *out = NULL;
    if (w->waiters.length >= FERRY_QMP_WAITERS_MAX)
        return -EBUSY;
    wt = g_new0(struct ferry_qmp_waiter, 1);
    wt->w = w;
    wt->id = g_strdup(dev_id);
    wt->fn = fn;
    wt->opaque = opaque;
    wt->timer = evtimer_new(event_get_base(w->check_ev), timer_cb, wt);
    if (!wt->timer || evtimer_add(wt->timer, &tv) < 0) {
        waiter_free(wt);
        return -ENOMEM;
    }
    g_queue_push_tail(&w->waiters, wt);
    /* it may have come with device_del's reply, or QEMU may be gone */
    event_active(w->check_ev, EV_TIMEOUT, 0);
    if (out)
        *out = wt;
    return 0;
}

void ferry_qmp_waiter_cancel(struct ferry_qmp_waiter *wt)
{
    if (!wt)
        return;
    g_queue_remove(&wt->w->waiters, wt);
    waiter_free(wt);
}

int ferry_qmp_watch_new(struct event_base *base, struct ferry_qmp *q,
                        void (*gone)(void *opaque, int err), void *opaque,
                        struct ferry_qmp_watch **out)
{
    struct ferry_qmp_watch *w = g_new0(struct ferry_qmp_watch, 1);

    *out = NULL;
    g_queue_init(&w->waiters);
    w->q = q;
    w->gone = gone;
    w->opaque = opaque;
    w->ev = event_new(base, ferry_qmp_fd(q), EV_READ | EV_PERSIST, on_readable, w);
    w->check_ev = event_new(base, -1, 0, check_cb, w);
    if (!w->ev || !w->check_ev || event_add(w->ev, NULL) < 0) {
        ferry_qmp_watch_free(w);
        return -ENOMEM;
    }
    ferry_qmp_set_event_cb(q, on_event_kept, w);
    *out = w;
    return 0;
}

void ferry_qmp_watch_free(struct ferry_qmp_watch *w)
{
    if (!w)
        return;
    while (w->waiters.head)
        waiter_finish(w->waiters.head->data, -ECANCELED);
    ferry_qmp_set_event_cb(w->q, NULL, NULL);
    if (w->ev)
        event_free(w->ev);
    if (w->check_ev)
        event_free(w->check_ev);
    g_free(w);
}
