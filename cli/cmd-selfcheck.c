// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry selfcheck: prove the ioreq transport works on this host.  A child
 * process registers as an ioreq server holding a scratch register file; the
 * parent routes writes and reads to it, checks every answer, and reports
 * round trips per second.  Useful before blaming a guest or a device model.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/log-glib.h"
#include "ioreq/ioreq.h"

#define SELFCHECK_PORT 0x510

static uint32_t scratch[16];

static void scratch_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    uint32_t *reg = &scratch[(req->addr - SELFCHECK_PORT) % 16];
    if (req->dir == IOREQ_WRITE)
        *reg = (uint32_t)req->data;
    else
        req->data = ~*reg;
}

static int serve(int fd)
{
    static const struct ioreq_server_ops ops = { .log = ferry_log_glib, .handle = scratch_handle };
    struct ioreq_server_config cfg = { .name = "selfcheck", .ops = &ops, .opaque = "selfcheck" };
    struct ioreq_server *s;

    if (ioreq_server_create(fd, &cfg, &s) ||
        ioreq_server_claim_range(s, IOREQ_RANGE_PORT, SELFCHECK_PORT, SELFCHECK_PORT + 15, 0) ||
        ioreq_server_enable(s, true))
        return 1;
    struct pollfd p[2] = {
        { .fd = ioreq_server_vcpu_fd(s, 0), .events = POLLIN },
        { .fd = ioreq_server_control_fd(s), .events = POLLIN },
    };
    while (poll(p, 2, -1) >= 0 || errno == EINTR) {
        if (p[0].revents)
            ioreq_server_dispatch_vcpu(s, 0);
        if (p[1].revents && ioreq_server_check_control(s) < 0)
            break;
    }
    ioreq_server_destroy(s);
    return 0;
}

struct control {
    struct ioreq_router *r;
    volatile int stop;
};

static void *control_loop(void *arg)
{
    struct control *c = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(c->r), .events = POLLIN };
    while (!c->stop)
        if (poll(&p, 1, 50) > 0)
            ioreq_router_dispatch(c->r);
    return NULL;
}

int cmd_selfcheck(int argc, char **argv)
{
    static const struct ioreq_router_ops rops = { .log = ferry_log_glib };
    struct ioreq_router_config cfg = { .nr_vcpus = 1, .ops = &rops, .opaque = "router" };
    struct control c = { 0 };
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 100000;
    int sv[2], rc = FERRY_EXIT_FAILURE;
    pthread_t th;

    if (argc > 1 && (!strcmp(argv[1], "--help") || n == 0)) {
        printf("usage: ferry selfcheck [ROUND_TRIPS]\n"
               "Routes ROUND_TRIPS (default 100000) checked ioreqs to a device model in a\n"
               "second process and reports the rate.\n");
        return argc > 1 && n == 0 && strcmp(argv[1], "--help") ? FERRY_EXIT_USAGE : FERRY_EXIT_OK;
    }
    ferry_log_init("ferry", 0);
    if (ioreq_router_create(&cfg, &c.r) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        fprintf(stderr, "ferry selfcheck: cannot set up the router: %s\n", strerror(errno));
        return FERRY_EXIT_FAILURE;
    }
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        _exit(serve(sv[1]));
    }
    close(sv[1]);
    if (ioreq_router_add_connection(c.r, sv[0]) || pthread_create(&th, NULL, control_loop, &c)) {
        fprintf(stderr, "ferry selfcheck: cannot start the control loop\n");
        return FERRY_EXIT_FAILURE;
    }

    /* Wait for the device model to claim its ports. */
    ioreq_t probe = { .type = IOREQ_TYPE_PIO, .addr = SELFCHECK_PORT, .size = 4,
                      .dir = IOREQ_READ, .count = 1 };
    for (int i = 0; i < 2000 && ioreq_router_send(c.r, 0, &probe) != IOREQ_SENT; i++)
        usleep(1000);

    struct timespec t0, t1;
    unsigned bad = 0, failed = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < n; i++) {
        uint32_t port = SELFCHECK_PORT + i % 16, v = i * 2654435761u;
        ioreq_t w = { .type = IOREQ_TYPE_PIO, .addr = port, .size = 4, .dir = IOREQ_WRITE,
                      .data = v, .count = 1 };
        ioreq_t r = { .type = IOREQ_TYPE_PIO, .addr = port, .size = 4, .dir = IOREQ_READ,
                      .count = 1 };
        failed += ioreq_router_send(c.r, 0, &w) != IOREQ_SENT;
        failed += ioreq_router_send(c.r, 0, &r) != IOREQ_SENT;
        bad += r.data != (uint32_t)~v;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    if (failed || bad) {
        printf("ioreq selfcheck: FAILED: %u requests unanswered, %u wrong answers\n", failed, bad);
    } else {
        printf("ioreq selfcheck: %u round trips to a device model in process %d, all correct "
               "(%.0f/s)\n", 2 * n, (int)child, 2 * n / secs);
        rc = FERRY_EXIT_OK;
    }
    c.stop = 1;
    pthread_join(th, NULL);
    ioreq_router_destroy(c.r);
    waitpid(child, NULL, 0);
    return rc;
}
