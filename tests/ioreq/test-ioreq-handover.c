// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A server hands its registration to another (ioreq_server_export /
 * ioreq_server_adopt, IOREQ_MSG_HANDOVER) while a vCPU keeps sending: the
 * switch takes longer than the router's timeout, and still no request is
 * answered all ones, lost or failed, and the router never sees the server
 * go.  Without BEGIN the same pause detaches the server (the timeout
 * stands).  A server whose process dies (its socket hangs up) is kept when
 * the hypervisor asks (server_lost) and taken over by a fresh server of the
 * same name, the vCPU waiting meanwhile; unclaimed in time, it is detached.
 * Router and servers in one process: the fds are dup'ed as
 * SCM_RIGHTS would.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ioreq/ioreq.h"
#include "tests/ioreq/test-ioreq.h"

#define PORT 0x510

struct rig {
    struct ioreq_router *r;
    pthread_t ctl, srv_thread, vcpu;
    atomic_bool stop;
    pthread_mutex_t lock;           /* held while a server dispatches; the switch takes it */
    struct ioreq_server *srv;
    uint64_t reg;                   /* the "device state" both servers share */
    atomic_uint done, bad, gone, lost, moved;
    unsigned keep_ms;               /* server_lost's answer */
    int32_t moved_pid;
    char why[128];
};

static void h_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
}

static void r_gone(void *opaque, const char *name, const char *why)
{
    struct rig *g = opaque;
    atomic_fetch_add(&g->gone, 1);
}

static void handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct rig *g = opaque;

    if (req->dir == IOREQ_WRITE)
        g->reg = req->data;
    else
        req->data = g->reg;
}

static unsigned r_lost(void *opaque, uint32_t id, const char *name)
{
    struct rig *g = opaque;
    atomic_fetch_add(&g->lost, 1);
    return g->keep_ms;
}

static void r_moved(void *opaque, uint32_t id, const char *name, int32_t pid)
{
    struct rig *g = opaque;
    g->moved_pid = pid;
    atomic_fetch_add(&g->moved, 1);
}

static const struct ioreq_router_ops r_ops = { .log = h_log, .server_gone = r_gone,
                                               .server_lost = r_lost, .server_moved = r_moved };
static const struct ioreq_server_ops s_ops = { .log = h_log, .handle = handle };

static void *ctl_thread(void *arg)
{
    struct rig *g = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(g->r), .events = POLLIN };

    while (!atomic_load(&g->stop))
        if (poll(&p, 1, 5) > 0)
            ioreq_router_dispatch(g->r);
    return NULL;
}

static void *srv_thread(void *arg)
{
    struct rig *g = arg;

    while (!atomic_load(&g->stop)) {
        pthread_mutex_lock(&g->lock);
        if (g->srv) {
            struct pollfd p = { .fd = ioreq_server_vcpu_fd(g->srv, 0), .events = POLLIN };
            if (poll(&p, 1, 1) > 0)
                ioreq_server_dispatch_vcpu(g->srv, 0);
        }
        pthread_mutex_unlock(&g->lock);
    }
    return NULL;
}

static void *vcpu_thread(void *arg)
{
    struct rig *g = arg;

    for (uint64_t i = 1; !atomic_load(&g->stop); i++) {
        ioreq_t w = { .type = IOREQ_TYPE_PIO, .addr = PORT, .size = 4, .count = 1,
                      .dir = IOREQ_WRITE, .data = i };
        ioreq_t rd = { .type = IOREQ_TYPE_PIO, .addr = PORT, .size = 4, .count = 1,
                       .dir = IOREQ_READ };
        int a = ioreq_router_send(g->r, 0, &w), b = ioreq_router_send(g->r, 0, &rd);
        if (a != IOREQ_SENT || b != IOREQ_SENT || rd.data != i) {
            if (atomic_fetch_add(&g->bad, 1) == 0)
                snprintf(g->why, sizeof(g->why), "request %llu: %d/%d, read 0x%llx",
                         (unsigned long long)i, a, b, (unsigned long long)rd.data);
            return NULL;
        }
        atomic_fetch_add(&g->done, 1);
    }
    return NULL;
}

static void rig_start(struct rig *g)
{
    struct ioreq_router_config rc = { .nr_vcpus = 1, .timeout_ms = 1000, .ops = &r_ops,
                                      .opaque = g };
    struct ioreq_server_config sc = { .name = "first", .ops = &s_ops, .opaque = g };
    int sv[2];

    unsigned keep = g->keep_ms;

    memset(g, 0, sizeof(*g));
    g->keep_ms = keep;
    pthread_mutex_init(&g->lock, NULL);
    ck_assert_int_eq(ioreq_router_create(&rc, &g->r), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(g->r, sv[0]), 0);
    ck_assert_int_eq(pthread_create(&g->ctl, NULL, ctl_thread, g), 0);
    ck_assert_int_eq(ioreq_server_create(sv[1], &sc, &g->srv), 0);
    ck_assert_int_eq(ioreq_server_claim_range(g->srv, IOREQ_RANGE_PORT, PORT, PORT + 3, 0), 0);
    ck_assert_int_eq(ioreq_server_enable(g->srv, true), 0);
    ck_assert_int_eq(pthread_create(&g->srv_thread, NULL, srv_thread, g), 0);
    ck_assert_int_eq(pthread_create(&g->vcpu, NULL, vcpu_thread, g), 0);
}

static void wait_done(struct rig *g, unsigned more)
{
    unsigned target = atomic_load(&g->done) + more;

    while (atomic_load(&g->done) < target && !atomic_load(&g->bad) &&
           atomic_load(&g->gone) == 0)
        usleep(100);
}

static void rig_stop(struct rig *g)
{
    atomic_store(&g->stop, true);
    pthread_join(g->vcpu, NULL);
    pthread_join(g->srv_thread, NULL);
    ioreq_server_destroy(g->srv);
    pthread_join(g->ctl, NULL);
    ioreq_router_destroy(g->r);
    pthread_mutex_destroy(&g->lock);
}

/* Hand g->srv to a new server after a pause of pause_ms, with or without BEGIN/DONE. */
static void switch_server(struct rig *g, unsigned pause_ms, bool announce)
{
    struct ioreq_server_handover h;
    int fds[64], dups[64];
    struct ioreq_server_config sc = { .name = "next", .ops = &s_ops, .opaque = g };
    struct ioreq_server *next;

    pthread_mutex_lock(&g->lock);       /* the old server answers nothing more */
    if (announce)
        ck_assert_int_eq(ioreq_server_handover(g->srv, IOREQ_HANDOVER_BEGIN, 2), 0);
    int n = ioreq_server_export(g->srv, &h, fds, 64);
    ck_assert_int_gt(n, 2);
    for (int i = 0; i < n; i++)
        ck_assert_int_ge(dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0), 0);
    ioreq_server_abandon(g->srv);
    g->srv = NULL;
    usleep(pause_ms * 1000);
    ck_assert_int_eq(ioreq_server_adopt(&h, dups, (unsigned)n, &sc, &next), 0);
    ioreq_server_take_over(next, h.seq);
    /* Its claim repeats the old one: a no-op, not an overlap (the unannounced one is gone). */
    int rc = ioreq_server_claim_range(next, IOREQ_RANGE_PORT, PORT, PORT + 3, 0);
    if (announce)
        ck_assert_int_eq(rc, 0);
    if (announce)
        ck_assert_int_eq(ioreq_server_handover(next, IOREQ_HANDOVER_DONE, 3), 0);
    ioreq_server_dispatch_all(next);
    g->srv = next;
    pthread_mutex_unlock(&g->lock);
}

START_TEST(test_handover_longer_than_timeout)
{
    struct rig g;
    struct ioreq_router_stats st;

    rig_start(&g);
    wait_done(&g, 1000);
    for (int k = 0; k < 3; k++) {
        switch_server(&g, 2500, true);  /* two and a half times the router's timeout */
        wait_done(&g, 1000);
        ck_assert_msg(!atomic_load(&g.bad), "%s", g.why);
    }
    ck_assert_uint_eq(atomic_load(&g.gone), 0);
    ioreq_router_get_stats(g.r, &st);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.unclaimed_reads + st.unclaimed_writes, 0);
    ck_assert_uint_eq(st.servers, 1);
    rig_stop(&g);
}
END_TEST

START_TEST(test_handover_unannounced_times_out)
{
    struct rig g;

    rig_start(&g);
    wait_done(&g, 100);
    switch_server(&g, 2500, false);
    /* The vCPU waited past the timeout: the server was detached, the request failed. */
    for (int i = 0; i < 5000 && !atomic_load(&g.gone); i++)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&g.gone), 1);
    ck_assert_uint_eq(atomic_load(&g.bad), 1);
    rig_stop(&g);
}
END_TEST

/*
 * The server's process dies (its socket hangs up, nothing said) and a fresh
 * one registers under the same name pause_ms later: the router kept the
 * registration (server_lost said so) and gives it to the fresh one.
 */
static void restart_server(struct rig *g, unsigned pause_ms)
{
    struct ioreq_server_config sc = { .name = "first", .ops = &s_ops, .opaque = g };
    struct ioreq_server *fresh;
    int sv[2];

    pthread_mutex_lock(&g->lock);
    ioreq_server_destroy(g->srv);       /* as a SIGKILL would: no word to the router */
    g->srv = NULL;
    usleep(pause_ms * 1000);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(g->r, sv[0]), 0);
    ck_assert_int_eq(ioreq_server_create(sv[1], &sc, &fresh), 0);
    /* The kept claim is its own now: claiming it again is a no-op. */
    ck_assert_int_eq(ioreq_server_claim_range(fresh, IOREQ_RANGE_PORT, PORT, PORT + 3, 0), 0);
    ck_assert_int_eq(ioreq_server_enable(fresh, true), 0);
    g->srv = fresh;
    pthread_mutex_unlock(&g->lock);
}

START_TEST(test_restart_takes_kept_registration)
{
    struct rig g = { .keep_ms = 5000 };
    struct ioreq_router_stats st;

    rig_start(&g);
    wait_done(&g, 1000);
    for (int k = 0; k < 3; k++) {
        restart_server(&g, 2500);       /* past the router's timeout: the vCPU waited */
        wait_done(&g, 1000);
        ck_assert_msg(!atomic_load(&g.bad), "%s", g.why);
    }
    ck_assert_uint_eq(atomic_load(&g.gone), 0);
    ck_assert_uint_eq(atomic_load(&g.lost), 3);
    ck_assert_uint_eq(atomic_load(&g.moved), 3);
    ck_assert_int_eq(g.moved_pid, getpid());    /* the kernel's word: this process */
    ioreq_router_get_stats(g.r, &st);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.unclaimed_reads + st.unclaimed_writes, 0);
    ck_assert_uint_eq(st.servers, 1);
    rig_stop(&g);
}
END_TEST

/* Post one buffered write to PORT; IOREQ_POSTED expected. */
static int post_one(struct rig *g, uint32_t v)
{
    ioreq_t w = { .type = IOREQ_TYPE_PIO, .addr = PORT, .size = 4, .count = 1,
                  .dir = IOREQ_WRITE, .data = v };
    return ioreq_router_send(g->r, 0, &w);
}

/* Wait for the ring's fd and dispatch it once. */
static void serve_ring(struct ioreq_server *s)
{
    struct pollfd p = { .fd = ioreq_server_buffered_fd(s), .events = POLLIN };

    ck_assert_int_eq(poll(&p, 1, 30000), 1);
    ck_assert_int_eq(ioreq_server_dispatch_buffered(s), 0);
}

/*
 * A server dies with its ring masked (drained on its own timer, which died
 * with it): the restarted server that takes the kept registration gets a
 * ring that takes doorbells again, and the write left in it.
 */
START_TEST(test_restart_unmasks_ring)
{
    struct rig g = { .keep_ms = 10000 };
    struct ioreq_router_config rc = { .nr_vcpus = 1, .timeout_ms = 1000, .ops = &r_ops,
                                      .opaque = &g };
    struct ioreq_server_config sc = { .name = "ring", .buffered = true, .ops = &s_ops,
                                      .opaque = &g, .posted_delay_us = 10000000 };
    struct ioreq_router_stats st, before;
    struct ioreq_server *srv;
    int sv[2];

    ck_assert_int_eq(ioreq_router_create(&rc, &g.r), 0);
    ck_assert_int_eq(pthread_create(&g.ctl, NULL, ctl_thread, &g), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(g.r, sv[0]), 0);
    ck_assert_int_eq(ioreq_server_create(sv[1], &sc, &srv), 0);
    ck_assert_int_eq(ioreq_server_claim_range(srv, IOREQ_RANGE_PORT, PORT, PORT + 3,
                                              IOREQ_CLAIM_F_BUFFERED), 0);
    ck_assert_int_eq(ioreq_server_enable(srv, true), 0);
    /* Two doorbells that find work within the (10 s) delay: masked. */
    for (uint32_t v = 1; v <= 2; v++) {
        ck_assert_int_eq(post_one(&g, v), IOREQ_POSTED);
        serve_ring(srv);
        ck_assert_uint_eq(g.reg, v);
    }
    ioreq_router_get_stats(g.r, &before);
    ck_assert_int_eq(post_one(&g, 3), IOREQ_POSTED);
    ioreq_router_get_stats(g.r, &st);
    ck_assert_uint_eq(st.posted_quiet, before.posted_quiet + 1);
    /* Dies with write 3 in the ring; a fresh process takes the registration. */
    ioreq_server_destroy(srv);
    while (atomic_load(&g.lost) == 0)
        usleep(1000);
    sc.posted_delay_us = IOREQ_POSTED_IMMEDIATE;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(g.r, sv[0]), 0);
    ck_assert_int_eq(ioreq_server_create(sv[1], &sc, &srv), 0);
    serve_ring(srv);                    /* rung once at the takeover */
    ck_assert_uint_eq(g.reg, 3);
    /* Unmasked: the next write rings. */
    ioreq_router_get_stats(g.r, &before);
    ck_assert_int_eq(post_one(&g, 4), IOREQ_POSTED);
    ioreq_router_get_stats(g.r, &st);
    ck_assert_uint_eq(st.posted_quiet, before.posted_quiet);
    ck_assert_uint_eq(st.doorbells, before.doorbells + 1);
    serve_ring(srv);
    ck_assert_uint_eq(g.reg, 4);
    /* the router says whom it follows after it rang the doorbells: it may come later */
    while (atomic_load(&g.moved) == 0)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&g.moved), 1);
    ioreq_server_destroy(srv);
    atomic_store(&g.stop, true);
    pthread_join(g.ctl, NULL);
    ioreq_router_destroy(g.r);
}
END_TEST

START_TEST(test_kept_registration_expires)
{
    struct rig g = { .keep_ms = 300 };

    rig_start(&g);
    wait_done(&g, 100);
    pthread_mutex_lock(&g.lock);
    ioreq_server_destroy(g.srv);
    g.srv = NULL;
    pthread_mutex_unlock(&g.lock);
    /* Nobody restarts it: detached when the 300 ms are up, the waiting request failed. */
    for (int i = 0; i < 5000 && !atomic_load(&g.gone); i++)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&g.lost), 1);
    ck_assert_uint_eq(atomic_load(&g.gone), 1);
    for (int i = 0; i < 5000 && !atomic_load(&g.bad); i++)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&g.bad), 1);
    rig_stop(&g);
}
END_TEST

/* Claims in a batch (a successor repeating its predecessor's): one failure is reported at the end. */
START_TEST(test_batched_claims)
{
    struct rig g;

    rig_start(&g);
    wait_done(&g, 100);
    pthread_mutex_lock(&g.lock);
    ck_assert_int_eq(ioreq_server_batch(g.srv, true), 0);
    ck_assert_int_eq(ioreq_server_claim_range(g.srv, IOREQ_RANGE_PORT, PORT + 0x10, PORT + 0x13, 0), 0);
    ck_assert_int_eq(ioreq_server_claim_range(g.srv, IOREQ_RANGE_PORT, PORT, PORT + 3, 0), 0);
    /* Overlaps its own claim with another range: refused, but only said at the end. */
    ck_assert_int_eq(ioreq_server_claim_range(g.srv, IOREQ_RANGE_PORT, PORT + 1, PORT + 2, 0), 0);
    ck_assert_int_eq(ioreq_server_claim_range(g.srv, IOREQ_RANGE_PORT, PORT + 0x20, PORT + 0x23, 0), 0);
    ck_assert_int_eq(ioreq_server_batch(g.srv, false), -EEXIST);
    ck_assert_ptr_nonnull(strstr(ioreq_server_last_error(g.srv), "overlaps"));
    /* The ones before and after it hold, and the exchange is in step again. */
    ck_assert_int_eq(ioreq_server_release_range(g.srv, IOREQ_RANGE_PORT, PORT + 0x10, PORT + 0x13), 0);
    ck_assert_int_eq(ioreq_server_release_range(g.srv, IOREQ_RANGE_PORT, PORT + 0x20, PORT + 0x23), 0);
    pthread_mutex_unlock(&g.lock);
    wait_done(&g, 100);
    ck_assert_msg(!atomic_load(&g.bad), "%s", g.why);
    rig_stop(&g);
}
END_TEST

TCase *ioreq_handover_tcase(void)
{
    TCase *tc = tcase_create("handover");

    tcase_add_test(tc, test_handover_longer_than_timeout);
    tcase_add_test(tc, test_handover_unannounced_times_out);
    tcase_add_test(tc, test_restart_takes_kept_registration);
    tcase_add_test(tc, test_kept_registration_expires);
    tcase_add_test(tc, test_restart_unmasks_ring);
    tcase_add_test(tc, test_batched_claims);
    return tc;
}
