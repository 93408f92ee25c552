/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * For benchmarks that run a guest on the hypervisor library (exit-rtt,
 * string-io): the guest's start and end marks, in-process port handlers
 * that take the time, so the VM's creation and boot are not in the figure.
 */
#ifndef FERRY_BENCH_VM_H
#define FERRY_BENCH_VM_H

#include <stdatomic.h>

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

#endif
