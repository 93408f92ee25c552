// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/string-io: a guest reads 1 MiB through `rep insw` (2048 sectors of
 * 256 words, disk PIO's way) from pc-testdev's port 0xe0 served by the real
 * ferry-dm, against the same loop served by an in-process handler.  KVM
 * hands over a sector's words per exit; ferry-hv sends them to ferry-dm as
 * one ioreq through the vCPU's bounce page, so the figure to watch besides
 * the time is ioreqs per sector (it was 256: one per word).
 *
 * The guest (real mode) writes port 0x5fe (start mark), reads the sectors,
 * then writes port 0x501 (end mark); the marks are in-process handlers
 * that take the time.  Runs come in pairs (in-process and through
 * ferry-dm, which goes first alternating), round robin over the
 * placements "one CPU" (this process, its vCPU thread and ferry-dm on the
 * first CPU it may use) and "two CPUs" (ferry-dm on the second); each line
 * is the median of the pairs with the fastest and slowest run, each ratio
 * the median of the pairs' ratios.  Goal: at most 2x the in-process time.
 *
 *   string-io [PAIRS] [--dm PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench-vm.h"
#include "hypervisor/hv.h"

#ifndef FERRY_DM_PATH
#define FERRY_DM_PATH "ferry-dm"
#endif

#define PORT_MARK   0x5fe
#define PORT_END    0x501
#define PORT_DATA   0xe0        /* pc-testdev's scratch register */
#define SECTORS     2048u       /* 1 MiB */
#define PAIRS_MAX   51

struct bench {
    struct bench_span span;     /* the guest's start and end marks */
    uint64_t words;
};

static void quiet_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "string-io: %s\n", msg);
}

/* The in-process baseline: pc-testdev's scratch register, read one word at a time. */
static void scratch(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct bench *b = opaque;

    b->words++;
    if (req->dir == IOREQ_READ)
        req->data = 0;
}

static const struct ioreq_router_ops router_ops = { .log = quiet_log };

/* One run: seconds for the 1 MiB, or < 0; *per_sector gets ioreqs per sector. */
static double one_run(const char *dm, bool remote, int srv_cpu, double *per_sector)
{
    uint8_t code[] = {
        0xba, PORT_MARK & 0xff, PORT_MARK >> 8, 0xee,   /* mov $PORT_MARK, %dx; out */
        0xba, PORT_DATA, 0x00,                          /* mov $PORT_DATA, %dx */
        0xbb, SECTORS & 0xff, SECTORS >> 8,             /* mov $SECTORS, %bx */
        0xbf, 0x00, 0x20,                               /* 1: mov $0x2000, %di */
        0xb9, 0x00, 0x01,                               /* mov $256, %cx */
        0xfc, 0xf3, 0x6d,                               /* cld; rep insw */
        0x4b, 0x75, 0xf4,                               /* dec %bx; jnz 1b */
        0xba, PORT_END & 0xff, PORT_END >> 8, 0xee, 0xf4, /* mov $PORT_END, %dx; out; hlt */
    };
    struct ferry_vm_config cfg = { .memory = 64ull << 20, .nr_vcpus = 1, .log = quiet_log };
    struct hv_boot boot = { .entry = HV_ENTRY_REAL, .rip = HV_REAL_LOAD_ADDR };
    struct bench b = { 0 };
    struct hv_io_handler h_mark = { "mark", bench_span_start, &b.span },
                         h_end = { "end", bench_span_end, &b.span },
                         h_data = { "scratch", scratch, &b };
    struct ioreq_router *router = NULL;
    struct ferry_vm *vm;
    pid_t child = -1;
    double result = -1;

    if (hv_vm_create(&cfg, &vm))
        return -1;
    if (hv_io_init(vm) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, PORT_MARK, PORT_MARK, &h_mark) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, PORT_END, PORT_END, &h_end))
        goto out;
    if (!remote && hv_io_register(vm, IOREQ_RANGE_PORT, PORT_DATA, PORT_DATA + 3, &h_data))
        goto out;
    memcpy(hv_vm_gpa_ptr(vm, HV_REAL_LOAD_ADDR, sizeof(code)), code, sizeof(code));
    if (hv_vm_commit_memory(vm, HV_BIOS_END) || hv_vcpus_create(vm) ||
        hv_vcpus_setup_boot(vm, &boot))
        goto out;
    if (remote) {
        struct ioreq_router_config rc = { .nr_vcpus = 1, .ops = &router_ops, .opaque = vm };
        if (ioreq_router_create(&rc, &router))
            goto out;
        vm->router = router;
        child = bench_spawn_testdev_dm("string-io", dm, srv_cpu, router);
        if (child < 0)
            goto out;
        if (bench_router_wait_enabled(router, "string-io", "ferry-dm") < 0)
            goto out;
    }
    if (hv_vcpus_start(vm))
        goto out;
    bench_vm_serve(vm, router);
    hv_vcpus_stop(vm);
    if (atomic_load(&vm->end) == HV_END_DEBUG_EXIT && b.span.t1 > b.span.t0)
        result = b.span.t1 - b.span.t0;
    if (router) {
        struct ioreq_router_stats st;
        ioreq_router_get_stats(router, &st);
        if (st.rep_elements + (st.sent - st.rep_sent) != SECTORS * 256u || st.failed ||
            st.unclaimed_reads) {
            fprintf(stderr, "string-io: ferry-dm served %llu words in %llu ioreqs "
                    "(%llu failed, %llu unclaimed) of %u\n",
                    (unsigned long long)st.rep_elements, (unsigned long long)st.sent,
                    (unsigned long long)st.failed, (unsigned long long)st.unclaimed_reads,
                    SECTORS * 256u);
            result = -1;
        }
        *per_sector = (double)st.sent / SECTORS;
    } else {
        if (b.words != SECTORS * 256u) {
            fprintf(stderr, "string-io: handled %llu of %u words\n",
                    (unsigned long long)b.words, SECTORS * 256u);
            result = -1;
        }
        *per_sector = 0;
    }
out:
    hv_vcpus_stop(vm);
    if (router) {
        vm->router = NULL;
        ioreq_router_destroy(router);     /* ferry-dm sees the hang-up and exits */
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    hv_io_fini(vm);
    hv_vm_destroy(vm);
    return result;
}

struct placement {
    const char *name;
    int vm_cpu, srv_cpu;
    double local[PAIRS_MAX], remote[PAIRS_MAX], ratio[PAIRS_MAX], per_sector[PAIRS_MAX];
};

int main(int argc, char **argv)
{
    const char *dm = FERRY_DM_PATH;
    int pairs = 5;
    cpu_set_t orig;
    int cpu[2] = { -1, -1 }, nr_cpus = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dm") && i + 1 < argc) {
            dm = argv[++i];
        } else if (atoi(argv[i]) > 0 && atoi(argv[i]) <= PAIRS_MAX) {
            pairs = atoi(argv[i]);
        } else {
            fprintf(stderr, "usage: string-io [PAIRS 1..%d] [--dm PATH]\n", PAIRS_MAX);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (sched_getaffinity(0, sizeof(orig), &orig) < 0) {
        fprintf(stderr, "string-io: sched_getaffinity: %s\n", strerror(errno));
        return 1;
    }
    for (int c = 0; c < CPU_SETSIZE && nr_cpus < 2; c++)
        if (CPU_ISSET(c, &orig))
            cpu[nr_cpus++] = c;
    struct placement pl[2] = {
        { .name = "one CPU", .vm_cpu = cpu[0], .srv_cpu = cpu[0] },
        { .name = "two CPUs", .vm_cpu = cpu[0], .srv_cpu = cpu[1] },
    };
    int nr_pl = nr_cpus;

    bench_print_header();
    printf("placement one CPU: string-io, its vCPU thread and ferry-dm on CPU %d\n", cpu[0]);
    if (nr_pl > 1)
        printf("placement two CPUs: string-io and its vCPU thread on CPU %d, ferry-dm on "
               "CPU %d\n", cpu[0], cpu[1]);
    else
        printf("placement two CPUs: not measured, string-io may use only CPU %d\n", cpu[0]);
    printf("runs: %d pairs per placement, 1 MiB = %u sectors of rep insw from port 0x%x; "
           "ferry-dm: %s --no-defaults --device=pc-testdev\n", pairs, SECTORS, PORT_DATA, dm);
    fflush(stdout);
    double ps;
    if (bench_pin(cpu[0]) < 0 || one_run(dm, false, -1, &ps) < 0 ||
        one_run(dm, true, pl[nr_pl - 1].srv_cpu, &ps) < 0)
        return 1;
    for (int i = 0; i < pairs; i++) {
        for (int p = 0; p < nr_pl; p++) {
            struct placement *x = &pl[p];
            if (bench_pin(x->vm_cpu) < 0)
                return 1;
            if (i % 2) {
                x->remote[i] = one_run(dm, true, x->srv_cpu, &x->per_sector[i]);
                x->local[i] = one_run(dm, false, -1, &ps);
            } else {
                x->local[i] = one_run(dm, false, -1, &ps);
                x->remote[i] = one_run(dm, true, x->srv_cpu, &x->per_sector[i]);
            }
            if (x->local[i] < 0 || x->remote[i] < 0)
                return 1;
            x->ratio[i] = x->remote[i] / x->local[i];
        }
    }
    sched_setaffinity(0, sizeof(orig), &orig);

    for (int p = 0; p < nr_pl; p++) {
        struct bench_stat3 l = bench_stats(pl[p].local, pairs);
        struct bench_stat3 r = bench_stats(pl[p].remote, pairs);
        struct bench_stat3 q = bench_stats(pl[p].per_sector, pairs);
        printf("%-8s in-process handler: %8.2f ms per MiB (%.2f..%.2f)\n", pl[p].name,
               l.med * 1e3, l.min * 1e3, l.max * 1e3);
        printf("%-8s ferry-dm:           %8.2f ms per MiB (%.2f..%.2f), %.2f ioreqs per sector\n",
               pl[p].name, r.med * 1e3, r.min * 1e3, r.max * 1e3, q.med);
    }
    for (int p = 0; p < nr_pl; p++) {
        struct bench_stat3 q = bench_stats(pl[p].ratio, pairs);
        printf("ratio ferry-dm / in-process time per MiB, %s (median of %d pairs, %.2f..%.2f, "
               "goal <= 2): %.2f\n", pl[p].name, pairs, q.min, q.max, q.med);
    }
    return 0;
}
