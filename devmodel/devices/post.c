// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The POST code port 0x80: firmware and guests write progress codes here.
 * The last code reads back (as on chipsets that latch it), the last
 * FERRY_POST_HISTORY codes appear in query-devices, and each code is
 * logged at debug level.  Guests also use port 0x80 as an I/O delay: every
 * width is accepted.  Writes are posted (the region is declared buffered):
 * the vCPU does not wait for them; a read still returns the last code, as
 * the server applies posted writes before any synchronous request.
 *
 * Options: port=0x80
 */
#include <errno.h>
#include <stdlib.h>

#include "devmodel/dm.h"

#define FERRY_POST_HISTORY 16

struct post {
    struct ferry_dm_device *dev;
    uint8_t last;
    uint8_t history[FERRY_POST_HISTORY];
    unsigned head, count;
    uint64_t writes;
};

static uint64_t post_read(void *opaque, uint64_t off, unsigned size)
{
    struct post *p = opaque;

    return p->last;
}

static void post_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct post *p = opaque;

    p->last = (uint8_t)val;
    p->history[(p->head + p->count) % FERRY_POST_HISTORY] = p->last;
    if (p->count < FERRY_POST_HISTORY)
        p->count++;
    else
        p->head = (p->head + 1) % FERRY_POST_HISTORY;
    p->writes++;
    dm_dev_guest_log_at(p->dev, FERRY_LOG_DEBUG, "post code 0x%02x", p->last);
}

static const struct ferry_dm_region_ops post_ops = {
    .read = post_read,
    .write = post_write,
    .max_size = 1,
};

static int post_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "port", NULL };
    struct post *p;
    uint64_t port;
    int rc;
    const char *bad = NULL;

    if (dm_opts_check(opts, known, &bad) < 0 ||
        dm_opts_get_u64(opts, "port", 0x80, 0xffff, &port) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "%s%s%soptions: port=N (0..0xffff)",
                         bad ? "unknown option " : "", bad ? bad : "", bad ? "; " : "");
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->dev = dev;
    /* A code written has no effect the guest waits for: posted writes. */
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, port, 1, &post_ops, p,
                       FERRY_DM_REGION_BUFFERED, NULL);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *state = p;
    return 0;
}

static void post_exit(void *state)
{
    free(state);
}

static void post_query(void *state, json_t *b)
{
    struct post *p = state;

    json_object_set_new(b, "last", json_integer(p->last));
    json_object_set_new(b, "writes", json_integer((json_int_t)p->writes));
    json_t *history = json_array();

    for (unsigned i = 0; i < p->count; i++)
        json_array_append_new(history,
                              json_integer(p->history[(p->head + i) % FERRY_POST_HISTORY]));
    json_object_set_new(b, "history", history);
}

FERRY_SYSCALL_LIST_NONE(post_syscalls, "post",
    "the last codes in memory, logged to an fd already open");

const struct ferry_dm_device_type post_device = {
    .name = "post",
    .desc = "POST code port (port=0x80): last code and history in query-devices",
    .hotplug = true,
    .syscalls = &post_syscalls,
    .init = post_init,
    .exit = post_exit,
    .query = post_query,
};
FERRY_DM_DEVICE_TYPE(post_device)
