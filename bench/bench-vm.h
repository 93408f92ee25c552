/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * For benchmarks that run a guest on the hypervisor library (exit-rtt,
 * string-io): the guest's start and end marks, in-process port handlers
 * that take the time, so the VM's creation and boot are not in the figure.
 */
#ifndef FERRY_BENCH_VM_H
#define FERRY_BENCH_VM_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "hypervisor/hv.h"

struct bench_span {
    _Atomic double t0, t1;      /* seconds, bench_now_s() */
    _Atomic double c0, c1;      /* the marking (vCPU) thread's CPU time, seconds */
};

static inline double bench_thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* hv_io handler, opaque a struct bench_span: a write takes the start time. */
static inline void bench_span_start(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req,
                                    void *opaque)
{
    struct bench_span *s = opaque;

    if (req->dir == IOREQ_WRITE) {
        atomic_store(&s->c0, bench_thread_cpu_s());
        atomic_store(&s->t0, bench_now_s());
    }
}

/* hv_io handler, opaque a struct bench_span: takes the end time, ends the VM. */
static inline void bench_span_end(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req,
                                  void *opaque)
{
    struct bench_span *s = opaque;

    atomic_store(&s->t1, bench_now_s());
    atomic_store(&s->c1, bench_thread_cpu_s());
    hv_vm_end(vm, HV_END_DEBUG_EXIT, 0);
}

/* Dispatches router until one server has enabled (registered and claimed);
 * -1, said on stderr as "PROG: WHO did not register", after 10 s of silence. */
static inline int bench_router_wait_enabled(struct ioreq_router *router, const char *prog,
                                            const char *who)
{
    struct ioreq_router_stats st = { 0 };

    while (st.enabled < 1) {
        struct pollfd p = { .fd = ioreq_router_get_fd(router), .events = POLLIN };

        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "%s: %s did not register\n", prog, who);
            return -1;
        }
        ioreq_router_dispatch(router);
        ioreq_router_get_stats(router, &st);
    }
    return 0;
}

/* Runs the started vCPUs until the VM ends, dispatching router (if any) meanwhile. */
static inline void bench_vm_serve(struct ferry_vm *vm, struct ioreq_router *router)
{
    for (;;) {
        struct pollfd p[2] = {
            { .fd = vm->done_fd, .events = POLLIN },
            { .fd = router ? ioreq_router_get_fd(router) : -1, .events = POLLIN },
        };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents)
            ioreq_router_dispatch(router);
    }
}

/* Starts DM (ferry-dm) serving pc-testdev only, pinned to srv_cpu (< 0: not
 * pinned), registered over a socket pair with router; its pid, or -1.
 * PROG names the benchmark in what goes wrong. */
static inline pid_t bench_spawn_testdev_dm(const char *prog, const char *dm, int srv_cpu,
                                           struct ioreq_router *router)
{
    char fdarg[32];
    const char *argv[] = { dm, fdarg, "--no-defaults", "--device=pc-testdev", NULL };
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        fcntl(sv[1], F_SETFD, 0);
        signal(SIGPIPE, SIG_DFL);
        if (srv_cpu >= 0 && bench_pin(srv_cpu) < 0)
            fprintf(stderr, "%s: cannot pin ferry-dm: %s\n", prog, strerror(errno));
        execv(dm, (char **)argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", prog, dm, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    if (pid < 0 || ioreq_router_add_connection(router, sv[0]) < 0) {
        close(sv[0]);
        return -1;
    }
    return pid;
}

#endif
