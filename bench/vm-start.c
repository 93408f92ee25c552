// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/vm-start: guest creation to first exit, for 64 MiB, 4 GiB, 64 GiB
 * and 1 TiB guests.
 *
 * One measurement: open /dev/kvm, create the VM and its RAM (memfd),
 * load a four-byte real-mode guest (`mov $0x501, %dx; out %al, %dx`),
 * register the memslots, create the vCPU, start its thread, and wait for
 * its first exit (the debug exit port).  ferry-hv's default registers only
 * what the guest needs to boot and the rest on demand; --eager-memory
 * registers everything up front.  Both are measured; the figure is the
 * on-demand one, the baseline the 64 MiB guest, the ratio 1 TiB / 64 MiB
 * (goal: at most 1.5).  Each figure is the fastest and the median of REPS
 * runs after a warm-up run; the ratio uses the fastest runs, which on a
 * machine shared with other work are the ones least disturbed by it.
 *
 *   vm-start [REPS]        default 7, round-robin over the sizes; eager 1 TiB
 *                          runs 3 times at most (each pins about 2.5 GiB of
 *                          kernel memory)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hypervisor/hv.h"
#include "bench/bench.h"

#define REPS_MAX 101

static void quiet_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "vm-start: %s\n", msg);
}

/* One guest, creation to first exit, in ms; < 0 on failure. */
static double one_run(uint64_t memory, bool eager)
{
    static const uint8_t code[] = { 0xba, 0x01, 0x05, 0xee, 0xf4 };   /* mov dx; out; hlt */
    struct ferry_vm_config cfg = { .memory = memory, .nr_vcpus = 1, .eager_memory = eager,
                                   .log = quiet_log };
    struct hv_boot boot = { .entry = HV_ENTRY_REAL, .rip = HV_REAL_LOAD_ADDR };
    struct ferry_vm *vm;
    double t0 = (bench_now_ns() / 1e6), t1 = -1;

    if (hv_vm_create(&cfg, &vm))
        return -1;
    if (hv_io_init(vm) || hv_io_add_debug_ports(vm, -1))
        goto out;
    memcpy(hv_vm_gpa_ptr(vm, HV_REAL_LOAD_ADDR, sizeof(code)), code, sizeof(code));
    if (hv_vm_commit_memory(vm, HV_BIOS_END) || hv_vcpus_create(vm) ||
        hv_vcpus_setup_boot(vm, &boot) || hv_vcpus_start(vm))
        goto out;
    struct pollfd p = { .fd = vm->done_fd, .events = POLLIN };
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    t1 = (bench_now_ns() / 1e6) - t0;
    if (atomic_load(&vm->end) != HV_END_DEBUG_EXIT) {
        fprintf(stderr, "vm-start: the guest did not reach its first exit\n");
        t1 = -1;
    }
out:
    hv_vcpus_stop(vm);
    hv_io_fini(vm);
    hv_vm_destroy(vm);
    return t1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void min_median(double *t, int n, double *min, double *median)
{
    qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
    *min = t[0];
    *median = t[n / 2];
}

int main(int argc, char **argv)
{
    static const struct { const char *name; uint64_t size; } sizes[] = {
        { "64 MiB", 64ull << 20 }, { "4 GiB", 4ull << 30 },
        { "64 GiB", 64ull << 30 }, { "1 TiB", 1ull << 40 },
    };
    double lazy[4], eager[4], lazy_med[4], eager_med[4];
    int reps = argc > 1 ? atoi(argv[1]) : 7;

    if (reps < 1 || reps > REPS_MAX) {
        fprintf(stderr, "usage: vm-start [REPS 1..%d]\n", REPS_MAX);
        return 2;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "vm-start: /dev/kvm: %s\n", strerror(errno));
        return 1;
    }
    bench_print_header();
    /* Warm-up: page cache, KVM module paths, thread creation. */
    if (one_run(64ull << 20, false) < 0 || one_run(64ull << 20, true) < 0)
        return 1;
    /* Round-robin over the sizes, so that load from elsewhere hits all alike. */
    static double t_lazy[4][REPS_MAX], t_eager[4][REPS_MAX];
    int eager_reps[4];
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < 4; i++) {
            t_lazy[i][r] = one_run(sizes[i].size, false);
            if (t_lazy[i][r] < 0)
                return 1;
            /* eager 1 TiB pins 2.5 GiB of kernel memory per run: 3 runs at most */
            if (sizes[i].size >= (1ull << 40) && r >= 3)
                continue;
            t_eager[i][r] = one_run(sizes[i].size, true);
            if (t_eager[i][r] < 0)
                return 1;
            eager_reps[i] = r + 1;
        }
    }
    printf("creation to first exit, ms (fastest / median of %d runs)\n", reps);
    printf("%-8s %24s %24s\n", "guest", "on demand", "eager");
    for (int i = 0; i < 4; i++) {
        min_median(t_lazy[i], reps, &lazy[i], &lazy_med[i]);
        min_median(t_eager[i], eager_reps[i], &eager[i], &eager_med[i]);
        printf("%-8s %11.3f / %10.3f %11.3f / %10.3f\n", sizes[i].name, lazy[i], lazy_med[i],
               eager[i], eager_med[i]);
    }
    printf("eager 1 TiB / 64 MiB: %.1fx\n", eager[3] / eager[0]);
    printf("ratio 1 TiB / 64 MiB (on demand, fastest runs, goal <= 1.5): %.2f\n",
           lazy[3] / lazy[0]);
    return 0;
}
