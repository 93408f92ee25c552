// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/vm-start: what guest RAM costs from creation on, for 64 MiB,
 * 4 GiB, 64 GiB and 1 TiB guests, with ferry-hv's default (on demand: the
 * RAM the guest needs to boot is registered up front, the rest as 1 GiB
 * memslots when the guest first touches them) against --eager-memory
 * (every memslot registered up front), both in the same run.
 *
 * One run: open /dev/kvm, create the VM and its RAM (memfd), write the
 * guest and its list of addresses into low RAM, register the memslots,
 * create the vCPU, start its thread; the guest (113 bytes, entered in flat
 * 32-bit mode as PVH) first writes a mark port (the first exit), enters
 * long mode (compatibility mode: 32-bit code, 4-level paging, so that it
 * reaches 1 TiB) with one 2 MiB page at 0 and one 2 MiB window page (no
 * 1 GiB pages here), then for every address of the list points the
 * window's page directory entry at it, invlpg's the window and stores one
 * byte through it, then writes the debug exit port.  The list holds one address per GiB of guest-physical
 * space that has RAM (the last byte of RAM in that GiB, so that GiB 0's
 * touch lands above the boot RAM; the PCI hole at 3-4 GiB has none: a
 * 1 TiB guest has 1024 such GiBs): all of them, only the lowest, or only
 * the highest.  After the run the bench checks that every byte reached the
 * memfd and that each touch of a slot not registered up front registered
 * it (none, eager).
 *
 * Figures (medians, with the fastest and slowest run):
 *   creation to first exit           what an idle guest pays; on demand,
 *                                    1 TiB against 64 MiB (goal <= 1.5)
 *   creation to every GiB touched    what a guest that uses its RAM pays;
 *                                    on demand against eager for the 1 TiB
 *                                    guest (goal <= 1.0: lazy must never
 *                                    lose); also the lowest and highest
 *                                    GiB alone
 * The last two lines are those two ratios, the very last the second.  Runs
 * go round robin over sizes, modes and lists, so that load from elsewhere
 * hits all alike; a warm-up run of each mode comes first, and a pause
 * follows each run (300 ms after eager 64 GiB and 1 TiB: the kernel frees
 * their memslots after the VM's fds close, and the next run would pay).
 *
 *   vm-start [REPS]        runs per size, mode and list, default 7; eager
 *                          1 TiB runs 5 times at most per list (each run
 *                          registers 1 TiB of memslots, seconds and about
 *                          2.5 GiB of kernel memory while it lasts)
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

#define REPS_MAX        51
#define EAGER_1T_REPS   5
#define GIB             (1ull << 30)
#define PORT_MARK       0x5fe

/* Guest layout: all in the RAM registered up front (below 16 MiB). */
#define G_CODE          0x10000u
#define G_PML4          0x11000u
#define G_PDPT          0x12000u
#define G_PD            0x13000u
#define G_LIST          0x20000u        /* u32 count, pad, then u64 addresses */
#define G_WINDOW        0x200000u       /* virtual: PD entry 1 */
#define G_LIST_MAX      1100u           /* 1024 GiBs of RAM for 1 TiB, and some */

static const uint8_t guest_code[] = {
    0x66, 0xba, 0xfe, 0x05,             /* mov $PORT_MARK, %dx */
    0xee,                               /* out %al, %dx: the first exit */
    0x0f, 0x20, 0xe0,                   /* mov %cr4, %eax */
    0x83, 0xc8, 0x20,                   /* or $0x20, %eax (PAE) */
    0x0f, 0x22, 0xe0,                   /* mov %eax, %cr4 */
    0xb8, 0x00, 0x10, 0x01, 0x00,       /* mov $G_PML4, %eax */
    0x0f, 0x22, 0xd8,                   /* mov %eax, %cr3 */
    0xb9, 0x80, 0x00, 0x00, 0xc0,       /* mov $0xc0000080, %ecx (EFER) */
    0x0f, 0x32,                         /* rdmsr */
    0x0d, 0x00, 0x01, 0x00, 0x00,       /* or $0x100, %eax (LME) */
    0x0f, 0x30,                         /* wrmsr */
    0x0f, 0x20, 0xc0,                   /* mov %cr0, %eax */
    0x0d, 0x00, 0x00, 0x00, 0x80,       /* or $0x80000000, %eax (PG) */
    0x0f, 0x22, 0xc0,                   /* mov %eax, %cr0: compatibility mode */
    0xbe, 0x00, 0x00, 0x02, 0x00,       /* mov $G_LIST, %esi */
    0x8b, 0x0e,                         /* mov (%esi), %ecx */
    0xe3, 0x31,                         /* jecxz 2f */
    0x83, 0xc6, 0x08,                   /* 1: add $8, %esi */
    0x8b, 0x06,                         /* mov (%esi), %eax */
    0x89, 0xc3,                         /* mov %eax, %ebx */
    0x25, 0x00, 0x00, 0xe0, 0xff,       /* and $0xffe00000, %eax */
    0x0c, 0x83,                         /* or $0x83, %al (P, RW, PS) */
    0xa3, 0x08, 0x30, 0x01, 0x00,       /* mov %eax, G_PD + 8 */
    0x8b, 0x46, 0x04,                   /* mov 4(%esi), %eax */
    0xa3, 0x0c, 0x30, 0x01, 0x00,       /* mov %eax, G_PD + 12 */
    0x0f, 0x01, 0x3d, 0x00, 0x00, 0x20, 0x00, /* invlpg G_WINDOW */
    0x81, 0xe3, 0xff, 0xff, 0x1f, 0x00, /* and $0x1fffff, %ebx */
    0xc6, 0x83, 0x00, 0x00, 0x20, 0x00, 0x01, /* movb $1, G_WINDOW(%ebx) */
    0xe2, 0xcf,                         /* loop 1b */
    0x66, 0xba, 0x01, 0x05,             /* 2: mov $0x501, %dx */
    0x31, 0xc0,                         /* xor %eax, %eax */
    0xee,                               /* out %al, %dx: debug exit, status 0 */
    0xf4,                               /* hlt */
};

enum touch { TOUCH_BOTTOM, TOUCH_TOP, TOUCH_ALL, TOUCH_NR };
static const char *const touch_name[TOUCH_NR] = { "lowest GiB", "highest GiB", "every GiB" };

struct run {
    uint64_t t0;
    _Atomic uint64_t t_first;
    double first_ms, done_ms;
    unsigned touched;
};

static void quiet_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "vm-start: %s\n", msg);
}

static void mark(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct run *r = opaque;
    uint64_t zero = 0;

    atomic_compare_exchange_strong(&r->t_first, &zero, bench_now_ns());
}

/* One address per GiB that has RAM: the last byte of RAM in it. */
static unsigned touch_list(struct ferry_vm *vm, enum touch t, uint64_t *list)
{
    unsigned n = 0;

    for (unsigned r = 0; r < vm->nr_regions; r++) {
        uint64_t a = vm->regions[r].gpa, end = a + vm->regions[r].size;
        while (a < end) {
            uint64_t gib_end = (a / GIB + 1) * GIB;
            uint64_t last = (end < gib_end ? end : gib_end) - 1;
            if (n && list[n - 1] / GIB == last / GIB)
                list[n - 1] = last;
            else if (n < G_LIST_MAX)
                list[n++] = last;
            a = gib_end;
        }
    }
    if (t == TOUCH_TOP)
        list[0] = list[n - 1];
    return t == TOUCH_ALL ? n : 1;
}

/* One guest: creation to first exit and to the end of its touches, in ms. */
static int one_run(uint64_t memory, bool eager, enum touch t, struct run *res)
{
    struct ferry_vm_config cfg = { .memory = memory, .nr_vcpus = 1, .eager_memory = eager,
                                   .log = quiet_log };
    struct hv_boot boot = { .entry = HV_ENTRY_PVH, .rip = G_CODE };
    struct hv_io_handler h_mark = { "mark", mark, res };
    static uint64_t list[G_LIST_MAX];
    struct ferry_vm *vm;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    res->t0 = bench_now_ns();
    if (hv_vm_create(&cfg, &vm))
        return -1;
    if (hv_io_init(vm) || hv_io_add_debug_ports(vm, -1) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, PORT_MARK, PORT_MARK, &h_mark))
        goto out;
    unsigned n = touch_list(vm, t, list);
    uint64_t *pml4 = hv_vm_gpa_ptr(vm, G_PML4, 8), *pdpt = hv_vm_gpa_ptr(vm, G_PDPT, 8),
             *pd = hv_vm_gpa_ptr(vm, G_PD, 16);
    uint8_t *l = hv_vm_gpa_ptr(vm, G_LIST, 8 + 8ull * n);
    memcpy(hv_vm_gpa_ptr(vm, G_CODE, sizeof(guest_code)), guest_code, sizeof(guest_code));
    pml4[0] = G_PDPT | 3;
    pdpt[0] = G_PD | 3;
    pd[0] = 0x83;                       /* 0 .. 2 MiB, identity */
    memcpy(l, &n, sizeof(n));
    memcpy(l + 8, list, 8ull * n);
    if (hv_vm_commit_memory(vm, HV_BIOS_END))
        goto out;
    unsigned later = 0;                 /* touches of slots not registered up front */
    for (unsigned i = 0; i < n; i++)
        later += !atomic_load(&hv_vm_find_slot(vm, list[i])->registered);
    if (hv_vcpus_create(vm) || hv_vcpus_setup_boot(vm, &boot) || hv_vcpus_start(vm))
        goto out;
    struct pollfd p = { .fd = vm->done_fd, .events = POLLIN };
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    uint64_t t_done = bench_now_ns();
    hv_vcpus_stop(vm);
    if (atomic_load(&vm->end) != HV_END_DEBUG_EXIT || atomic_load(&vm->end_code) != 0 ||
        !res->t_first) {
        fprintf(stderr, "vm-start: the %s guest did not finish (end %d)\n",
                eager ? "eager" : "on-demand", atomic_load(&vm->end));
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        uint8_t *b = hv_vm_gpa_ptr(vm, list[i], 1);
        if (!b || *b != 1) {
            fprintf(stderr, "vm-start: the guest's byte at 0x%llx is not in guest RAM\n",
                    (unsigned long long)list[i]);
            goto out;
        }
    }
    if (atomic_load(&vm->lazy_registered) != later || (eager && later)) {
        fprintf(stderr, "vm-start: %u memslots registered on demand for %u touches of "
                "%u slots not registered up front\n", atomic_load(&vm->lazy_registered), n,
                later);
        goto out;
    }
    res->first_ms = (res->t_first - res->t0) / 1e6;
    res->done_ms = (t_done - res->t0) / 1e6;
    res->touched = n;
    rc = 0;
out:
    hv_vcpus_stop(vm);
    hv_io_fini(vm);
    hv_vm_destroy(vm);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stat3 { double med, min, max; };

static struct stat3 stats(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
    return (struct stat3){ n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t[0], t[n - 1] };
}

#define NSIZES 4

int main(int argc, char **argv)
{
    static const struct { const char *name; uint64_t size; } sizes[NSIZES] = {
        { "64 MiB", 64ull << 20 }, { "4 GiB", 4ull << 30 },
        { "64 GiB", 64ull << 30 }, { "1 TiB", 1ull << 40 },
    };
    /* [size][eager][touch][rep] */
    static double done[NSIZES][2][TOUCH_NR][REPS_MAX];
    static double first[NSIZES][2][TOUCH_NR * REPS_MAX];
    static unsigned touched[NSIZES][TOUCH_NR];
    int nrep[NSIZES][2] = { { 0 } }, nfirst[NSIZES][2] = { { 0 } };
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    struct run run;

    if (reps < 1 || reps > REPS_MAX) {
        fprintf(stderr, "usage: vm-start [REPS 1..%d]\n", REPS_MAX);
        return 2;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "vm-start: /dev/kvm: %s\n", strerror(errno));
        return 1;
    }
    bench_print_header();
    fflush(stdout);
    /* Warm-up: page cache, KVM module paths, thread creation. */
    if (one_run(64ull << 20, false, TOUCH_ALL, &run) || one_run(64ull << 20, true, TOUCH_ALL, &run))
        return 1;
    for (int r = 0; r < reps; r++) {
        for (int s = 0; s < NSIZES; s++) {
            for (int e = 0; e < 2; e++) {
                if (e && sizes[s].size >= (1ull << 40) && r >= EAGER_1T_REPS)
                    continue;
                for (int t = 0; t < TOUCH_NR; t++) {
                    if (one_run(sizes[s].size, e, t, &run))
                        return 1;
                    /*
                     * The kernel frees a big eager guest's memslots after
                     * its fds close; without a pause the next run pays.
                     */
                    usleep(e && sizes[s].size >= (64ull << 30) ? 300000 : 10000);
                    done[s][e][t][r] = run.done_ms;
                    first[s][e][nfirst[s][e]++] = run.first_ms;
                    touched[s][t] = run.touched;
                }
                nrep[s][e] = r + 1;
            }
        }
    }

    struct stat3 f[NSIZES][2], d[NSIZES][2][TOUCH_NR];
    printf("creation to first exit, ms: median (fastest..slowest) of every run\n");
    printf("%-7s %30s %30s\n", "guest", "on demand", "eager");
    for (int s = 0; s < NSIZES; s++) {
        for (int e = 0; e < 2; e++)
            f[s][e] = stats(first[s][e], nfirst[s][e]);
        printf("%-7s %9.2f (%8.2f..%8.2f) %2d runs %9.2f (%8.2f..%8.2f) %2d runs\n",
               sizes[s].name, f[s][0].med, f[s][0].min, f[s][0].max, nfirst[s][0],
               f[s][1].med, f[s][1].min, f[s][1].max, nfirst[s][1]);
    }
    printf("creation until the guest has touched one byte in each GiB listed, ms: "
           "median (fastest..slowest)\n");
    printf("%-7s %-12s %5s %27s %27s %9s\n", "guest", "touched", "GiBs", "on demand",
           "eager", "od/eager");
    for (int s = 0; s < NSIZES; s++) {
        for (int t = 0; t < TOUCH_NR; t++) {
            for (int e = 0; e < 2; e++)
                d[s][e][t] = stats(done[s][e][t], nrep[s][e]);
            printf("%-7s %-12s %5u %9.2f (%7.2f..%7.2f) %9.2f (%7.2f..%7.2f) %9.2f\n",
                   sizes[s].name, touch_name[t], touched[s][t], d[s][0][t].med, d[s][0][t].min,
                   d[s][0][t].max, d[s][1][t].med, d[s][1][t].min, d[s][1][t].max,
                   d[s][0][t].med / d[s][1][t].med);
        }
    }
    printf("runs: %d per size, mode and list (eager %s: %d)\n", reps, sizes[NSIZES - 1].name,
           nrep[NSIZES - 1][1]);
    printf("ratio 1 TiB / 64 MiB creation to first exit (on demand, medians, goal <= 1.5): "
           "%.2f\n", f[NSIZES - 1][0].med / f[0][0].med);
    printf("ratio on demand / eager, 1 TiB guest touching every GiB (medians, goal <= 1.0): "
           "%.2f\n", d[NSIZES - 1][0][TOUCH_ALL].med / d[NSIZES - 1][1][TOUCH_ALL].med);
    return 0;
}
