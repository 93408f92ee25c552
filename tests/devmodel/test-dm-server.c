// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's ioreq-server side (devmodel/dm-server.h) in one process, the
 * module ferry-dm itself runs: a real ioreq router played by the test on a
 * thread, a framework with the POST device behind a ferry_dm_server on a
 * libevent loop.  The server registers over a socketpair (--ioreq-fd's
 * way), maps the guest RAM the router hands over, serves a vCPU's ioreqs
 * through its doorbell, and ends the loop when the router hangs up.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/dm-server.h"
#include "devmodel/dm.h"
#include "tests/check-main.h"

#define RAM_SIZE (1u << 20)

struct rig {
    struct ioreq_router *r;
    pthread_t control, vcpu;
    atomic_bool stop, vcpu_done;
    int memfd;
    int sent, read_back;
    uint64_t data;
    struct event_base *base;
    struct event *tick;
    struct ferry_dm_server *srv;
    struct ferry_dm *dm;
};

static void *control_thread(void *arg)
{
    struct rig *t = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(t->r), .events = POLLIN };

    while (!atomic_load(&t->stop))
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(t->r);
    return NULL;
}

static void r_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-router: %s\n", msg);
}

static int r_memory(void *opaque, struct ioreq_msg_memory_reply *m)
{
    struct rig *t = opaque;

    memset(m, 0, sizeof(*m));
    m->nr_regions = 1;
    m->region[0].size = RAM_SIZE;
    return t->memfd;
}

static const struct ioreq_router_ops r_ops = { .log = r_log, .memory = r_memory };

/* vCPU 0: POST code 0x42 out, then read back, while the loop serves. */
static void *vcpu_thread(void *arg)
{
    struct rig *t = arg;
    ioreq_t w = { .type = IOREQ_TYPE_PIO, .addr = 0x80, .size = 1, .count = 1,
                  .dir = IOREQ_WRITE, .data = 0x42 };
    ioreq_t r = { .type = IOREQ_TYPE_PIO, .addr = 0x80, .size = 1, .count = 1,
                  .dir = IOREQ_READ };

    t->sent = ioreq_router_send(t->r, 0, &w);
    t->read_back = ioreq_router_send(t->r, 0, &r);
    t->data = r.data;
    atomic_store(&t->vcpu_done, true);
    return NULL;
}

/* The vCPU thread's end is seen on the loop (which only wakes for events). */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rig *t = arg;

    if (atomic_load(&t->vcpu_done))
        event_base_loopbreak(t->base);
}

static void rig_start(struct rig *t)
{
    struct ioreq_router_config rcfg = { .nr_vcpus = 1, .timeout_ms = 5000, .ops = &r_ops,
                                        .opaque = t };
    struct timeval tv = { 0, 10000 };
    struct ferry_dm_opts *opts = dm_opts_new();
    int sv[2];

    memset(t, 0, sizeof(*t));
    t->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    ck_assert_int_ge(t->memfd, 0);
    ck_assert_int_eq(ftruncate(t->memfd, RAM_SIZE), 0);
    ck_assert_int_eq(ioreq_router_create(&rcfg, &t->r), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(t->r, sv[0]), 0);
    ck_assert_int_eq(pthread_create(&t->control, NULL, control_thread, t), 0);

    t->base = event_base_new();
    ck_assert_ptr_nonnull(t->base);
    ck_assert_int_eq(dm_server_new(t->base, &t->srv), 0);
    ck_assert(!dm_server_connected(t->srv));
    struct ferry_dm_config cfg = { .name = "server-test", .base = t->base,
                                   .ops = dm_server_backend(), .opaque = t->srv };
    ck_assert_int_eq(dm_create(&cfg, &t->dm), 0);
    dm_server_set_dm(t->srv, t->dm);
    ck_assert_int_eq(dm_server_connect(t->srv, "server-test", NULL, sv[1]), 0);
    ck_assert(dm_server_connected(t->srv));
    ck_assert_uint_eq(dm_server_nr_vcpus(t->srv), 1);
    ck_assert_uint_eq(dm_nr_vcpus(t->dm), 1);       /* told to the framework */
    ck_assert_int_eq(dm_device_add(t->dm, "post", "post", opts, NULL), 0);
    dm_opts_free(opts);
    ck_assert_int_eq(dm_start(t->dm), 0);
    ck_assert_int_eq(dm_server_enable(t->srv), 0);
    t->tick = event_new(t->base, -1, EV_PERSIST, tick_cb, t);
    ck_assert_ptr_nonnull(t->tick);
    ck_assert_int_eq(event_add(t->tick, &tv), 0);
}

static void rig_stop_router(struct rig *t)
{
    atomic_store(&t->stop, true);
    pthread_join(t->control, NULL);
    ioreq_router_destroy(t->r);
    t->r = NULL;
}

static void rig_free(struct rig *t)
{
    if (t->r)
        rig_stop_router(t);
    event_free(t->tick);
    /* Devices first (their claims go back over the socket), then the server. */
    dm_destroy(t->dm);
    dm_server_free(t->srv);
    event_base_free(t->base);
    close(t->memfd);
}

START_TEST(server_serves_ioreqs)
{
    struct rig t;

    rig_start(&t);
    ck_assert_int_eq(pthread_create(&t.vcpu, NULL, vcpu_thread, &t), 0);
    ck_assert_int_eq(event_base_dispatch(t.base), 0);
    pthread_join(t.vcpu, NULL);
    /* post declares posted writes: queued in the ring, yet the read after it sees it. */
    ck_assert_int_eq(t.sent, IOREQ_POSTED);
    ck_assert_int_eq(t.read_back, IOREQ_SENT);
    ck_assert_uint_eq(t.data, 0x42);
    rig_free(&t);
}
END_TEST

/* The router's RAM is the framework's DMA target: bytes written show in the memfd. */
START_TEST(server_maps_guest_ram)
{
    struct rig t;
    struct ioreq_msg_memory_reply regions;
    uint8_t out[4] = { 1, 2, 3, 4 }, in[4] = { 0 };

    rig_start(&t);
    ck_assert_int_ge(dm_guest_memory_fd(t.dm, &regions), 0);
    ck_assert_uint_eq(regions.nr_regions, 1);
    ck_assert_int_eq(dm_dma_write(t.dm, 0x1000, out, sizeof(out)), 0);
    ck_assert_int_eq(pread(t.memfd, in, sizeof(in), 0x1000), (ssize_t)sizeof(in));
    ck_assert_mem_eq(in, out, sizeof(in));
    ck_assert_int_eq(dm_dma_read(t.dm, RAM_SIZE - 2, in, sizeof(in)), -EFAULT);
    rig_free(&t);
}
END_TEST

/* The hypervisor goes away: the loop ends by itself (ferry-dm then exits 0). */
START_TEST(server_hangup_ends_loop)
{
    struct rig t;

    rig_start(&t);
    event_del(t.tick);
    rig_stop_router(&t);
    ck_assert_int_eq(event_base_dispatch(t.base), 0);
    ck_assert(event_base_got_break(t.base));
    rig_free(&t);
}
END_TEST

static TCase *server_tcase(void)
{
    return FERRY_CHECK_TCASE("dm-server", 60, server_serves_ioreqs, server_maps_guest_ram,
                             server_hangup_ends_loop);
}

FERRY_CHECK_MAIN("dm-server", server_tcase);
