// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/exit-rtt: port-I/O exits per second, handled in-process (ferry-hv's
 * own handler table) versus by an ioreq server in another process (the
 * ioreq router: shared page + eventfds), for two kinds of access:
 *
 *   sync read     N `in` from port 0x600: each waits for the server's
 *                 answer (goal: at most 1.5x the in-process cost, one CPU)
 *   posted write  N `out` to port 0x600, claimed buffered: queued in the
 *                 ring, nobody waits (goal: at most 1.2x)
 *
 * The guest (real mode) writes port 0x5fe (start mark), does its N
 * accesses, one `in` from 0x600 (which, synchronous, is answered only
 * after every posted write was applied), then writes port 0x501 (end
 * mark); both marks are in-process handlers that take the time, so VM
 * creation is not measured.  Baseline: port 0x600 handled in-process, the
 * same guest code.
 *
 * On a machine of few CPUs the cross-process figure depends on where the
 * two processes run, so both placements are measured, with
 * sched_setaffinity: "one CPU" (exit-rtt, its vCPU thread and the server
 * on the first CPU exit-rtt may use) and "two CPUs" (exit-rtt and its vCPU
 * thread on the first, the server on the second).  Runs come in pairs (an
 * in-process run and a cross-process run, which goes first alternating;
 * for sync reads a floor run between them), round robin over the cases
 * (kind x server x placement), so that load from
 * elsewhere hits all alike; each line is the median of the pairs with the
 * fastest and slowest run, each ratio the median of the pairs' ratios with
 * their spread.  The last lines are the ratios, one per case.
 *
 * The server is a forked process running the ioreq library in a poll loop
 * of its own, or (sync, ferry-dm) the real ferry-dm with pc-testdev, the
 * guest reading its scratch register.  The floor: the in-process handler
 * wakes a process on the server's CPU through a futex in a shared page and
 * waits for its answer the same way, the cheapest wake-up round trip; what
 * any device model in another process costs at least.
 *
 *   exit-rtt [N] [PAIRS] [--server-poll] [--server-batch] [--server-slice US]
 *            [--posted-delay US|off] [--posted-both] [--only CASE[,CASE...]]
 *            [--dm PATH]
 *                          N exits per run (default 20000), PAIRS pairs
 *                          per placement (default 5); --server-poll: the
 *                          server busy-polls its slots instead of sleeping
 *                          on eventfds; --server-batch: the server runs
 *                          SCHED_BATCH; --server-slice: its EEVDF slice
 *                          (sched_runtime); --posted-delay: the server's
 *                          posted_delay_us (off: a doorbell whenever it
 *                          sleeps); --posted-both: posted writes also that
 *                          way ("bell each"), interleaved, as a reference;
 *                          --only: these cases (sync-one, sync-dm-one,
 *                          posted-one, posted-each-one, sync-two,
 *                          sync-dm-two, posted-two, posted-each-two);
 *                          --dm: the ferry-dm to run (default: the
 *                          build's)
 *
 * Each case also says how late a 1 ms periodic timer in the server was
 * handled: what a policy that spares the server's wake-ups would cost the
 * device model's timers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include "hypervisor/hv.h"
#include "bench/bench-vm.h"

#define PORT_MARK   0x5fe
#define PORT_TEST   0x600
#define PORT_DM     0xe0        /* ferry-dm's pc-testdev: its scratch register */
#define PAIRS_MAX   51

#ifndef FERRY_DM_PATH
#define FERRY_DM_PATH "ferry-dm"
#endif

/* Posted runs of one case: writes that went synchronously, doorbells, writes into a masked ring. */
struct posted_stats {
    uint64_t sync, bells, quiet;
};
static bool server_batch;               /* --server-batch: the server runs SCHED_BATCH */
static unsigned server_slice_us;        /* --server-slice: its EEVDF slice (sched_runtime) */
static unsigned posted_delay_us;        /* --posted-delay: the server's; 0: the library's */
static bool posted_both;                /* --posted-both: also a doorbell for each write */

/*
 * The server's device timer: a 1 ms periodic timerfd in the server's loop,
 * as ferry-dm's device timers are, and how late each expiry was handled
 * while the guest kept it busy.  What a scheduling policy that spares
 * wake-ups costs the device model's timers.  Shared with the forked server.
 */
#define TIMER_PERIOD_NS 1000000
#define LATE_MAX        4096
struct lateness {
    unsigned n;
    uint32_t us[LATE_MAX];
    double cpu0, cpu1;          /* the server's CPU time at its first and last request, s */
};

struct bench {
    struct bench_span span;     /* the guest's start and end marks */
    uint64_t handled;
};

static void quiet_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "exit-rtt: %s\n", msg);
}

static void count(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct bench *b = opaque;

    b->handled++;
}

/*
 * The floor: the in-process handler plus the cheapest wake-up round trip
 * to another process, a futex in a shared page (no fd, no poll): the
 * handler makes the word odd and wakes the peer, the peer makes it even
 * and wakes the handler.  Odd words from FLOOR_END on tell the peer to end.
 */
#define FLOOR_END   0xffffffffu
struct floor_page {
    uint32_t word;
    double cpu0, cpu1;          /* the peer's CPU time at its first answer and at its end, s */
};
struct floor {
    struct bench *b;
    struct floor_page *pg;      /* shared with the peer process */
    uint32_t seq;
};

static long futex_op(uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* Wait until *w != old. */
static void futex_wait_change(uint32_t *w, uint32_t old)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == old)
        futex_op(w, FUTEX_WAIT, old);
}

static void floor_access(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct floor *f = opaque;
    uint32_t odd = f->seq + 1;

    f->b->handled++;
    __atomic_store_n(&f->pg->word, odd, __ATOMIC_RELEASE);
    futex_op(&f->pg->word, FUTEX_WAKE, 1);
    futex_wait_change(&f->pg->word, odd);
    f->seq = odd + 1;
    if (req->dir == IOREQ_READ)
        req->data = 0;
}

static double process_cpu_s(void);

/* The floor's peer: answer each odd word with the next even one. */
static int floor_peer(struct floor_page *pg, int cpu)
{
    uint32_t *w = &pg->word, seen = 0;

    if (cpu >= 0 && bench_pin(cpu) < 0)
        return 1;
    for (;;) {
        futex_wait_change(w, seen);
        uint32_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        if (seen == 0)
            pg->cpu0 = process_cpu_s();
        if (v == FLOOR_END) {
            pg->cpu1 = process_cpu_s();
            return 0;
        }
        __atomic_store_n(w, v + 1, __ATOMIC_RELEASE);
        futex_op(w, FUTEX_WAKE, 1);
        seen = v + 1;
    }
}

/* The server process: claim PORT_TEST, answer until the router goes. */
/* The server's count of requests; its CPU time at the first and at the last (the final read). */
struct srv_state {
    uint64_t n, last;
    struct lateness *sh;
};

static double process_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void srv_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct srv_state *st = opaque;

    if (++st->n == 1 && st->sh)
        st->sh->cpu0 = process_cpu_s();
    if (st->n == st->last && st->sh)
        st->sh->cpu1 = process_cpu_s();
    if (req->dir == IOREQ_READ)
        req->data = 0;
}

static const struct ioreq_server_ops srv_ops = { .log = quiet_log, .handle = srv_handle };

struct linux_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};

static int server_main(int fd, bool busy, bool posted, unsigned delay_us, int cpu,
                       struct lateness *late, uint64_t requests)
{
    struct srv_state n = { .last = requests, .sh = late };
    struct ioreq_server_config cfg = { .name = "exit-rtt", .buffered = posted, .ops = &srv_ops,
                                       .opaque = &n, .posted_delay_us = delay_us };
    struct ioreq_server *s;

    struct sched_param sp = { 0 };
    if (server_batch && sched_setscheduler(0, SCHED_BATCH, &sp) < 0) {
        fprintf(stderr, "exit-rtt: server: SCHED_BATCH: %s\n", strerror(errno));
        return 1;
    }
    if (server_slice_us) {
        struct linux_sched_attr a = { .size = sizeof(a), .sched_policy = SCHED_OTHER,
                                      .sched_runtime = server_slice_us * 1000ull };
        if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) {
            fprintf(stderr, "exit-rtt: server: slice %u us: %s\n", server_slice_us,
                    strerror(errno));
            return 1;
        }
    }
    if (cpu >= 0 && bench_pin(cpu) < 0) {
        fprintf(stderr, "exit-rtt: server: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
        return 1;
    }
    if (ioreq_server_create(fd, &cfg, &s) ||
        ioreq_server_claim_range(s, IOREQ_RANGE_PORT, PORT_TEST, PORT_TEST,
                                 posted ? IOREQ_CLAIM_F_BUFFERED : 0) ||
        ioreq_server_enable(s, true))
        return 1;
    int tfd = late ? timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC) : -1;
    struct itimerspec its = { .it_interval.tv_nsec = TIMER_PERIOD_NS,
                              .it_value.tv_nsec = TIMER_PERIOD_NS };
    uint64_t due = bench_now_ns() + TIMER_PERIOD_NS;
    if (tfd >= 0 && timerfd_settime(tfd, 0, &its, NULL) < 0) {
        close(tfd);
        tfd = -1;
    }
    struct pollfd p[4] = {
        { .fd = ioreq_server_control_fd(s), .events = POLLIN },
        { .fd = ioreq_server_vcpu_fd(s, 0), .events = POLLIN },
        { .fd = ioreq_server_buffered_fd(s), .events = POLLIN },
        { .fd = tfd, .events = POLLIN },
    };
    for (;;) {
        if (busy) {
            ioreq_server_dispatch_all(s);
            if (poll(p, 1, 0) > 0 && ioreq_server_check_control(s) == -EPIPE)
                break;
            continue;
        }
        if (poll(p, 4, -1) < 0 && errno != EINTR)
            break;
        if (p[3].revents) {
            uint64_t now = bench_now_ns(), ticks = 0;
            if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks > 0) {
                /* Late by the oldest expiry not handled yet. */
                unsigned k = __atomic_fetch_add(&late->n, 1, __ATOMIC_RELAXED);
                if (k < LATE_MAX)
                    late->us[k] = now > due ? (uint32_t)((now - due) / 1000) : 0;
                due += ticks * TIMER_PERIOD_NS;
            }
        }
        if (p[0].revents && ioreq_server_check_control(s) == -EPIPE)
            break;
        if (p[1].revents)
            ioreq_server_dispatch_vcpu(s, 0);
        if (p[2].revents)
            ioreq_server_dispatch_buffered(s);
    }
    if (tfd >= 0)
        close(tfd);
    ioreq_server_destroy(s);
    return 0;
}

static const struct ioreq_router_ops router_ops = { .log = quiet_log };

/*
 * One run: N exits to PORT_TEST; returns exits per second or < 0.  The
 * vCPU thread runs where the calling thread may; the server (remote) on
 * srv_cpu.
 */
struct run {
    bool posted;
    unsigned delay_us;          /* the server's posted_delay_us */
    int srv_cpu;
    struct lateness *late;      /* NULL: not measured */
    struct posted_stats *ps;    /* NULL: not counted */
    bool floor;                 /* in-process: the handler does a futex round trip to srv_cpu */
    const char *dm;             /* remote: this ferry-dm serves PORT_DM (else a forked server) */
    double cpu_us;              /* out: CPU per exit, the vCPU thread's and the server's */
};

/* Seconds pid has run on a CPU (/proc/PID/schedstat), or < 0. */
static double schedstat_s(pid_t pid)
{
    char path[64];
    unsigned long long ns;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int k = fscanf(f, "%llu", &ns);
    fclose(f);
    return k == 1 ? ns / 1e9 : -1;
}

static double one_run(uint32_t n, bool remote, bool busy, struct run *run)
{
    bool posted = run->posted;
    uint16_t port = run->dm ? PORT_DM : PORT_TEST;
    double dm_cpu0 = -1, dm_cpu1 = -1;

    uint8_t code[] = {
        0xba, PORT_MARK & 0xff, PORT_MARK >> 8, 0xee,   /* mov $PORT_MARK, %dx; out */
        0xba, port & 0xff, port >> 8,                   /* mov $port, %dx */
        0x66, 0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24, /* mov $n, %ecx */
        posted ? 0xee : 0xec, 0x66, 0x49, 0x75, 0xfb,   /* 1: out or in; dec %ecx; jnz 1b */
        0xec,                                           /* in: after every posted write */
        0xba, 0x01, 0x05, 0xee, 0xf4,                   /* mov $0x501, %dx; out; hlt */
    };
    struct ferry_vm_config cfg = { .memory = 64ull << 20, .nr_vcpus = 1, .log = quiet_log };
    struct hv_boot boot = { .entry = HV_ENTRY_REAL, .rip = HV_REAL_LOAD_ADDR };
    struct bench b = { 0 };
    struct hv_io_handler h_mark = { "mark", bench_span_start, &b.span },
                         h_end = { "end", bench_span_end, &b.span },
                         h_count = { "count", count, &b };
    struct floor fl = { .b = &b };
    struct hv_io_handler h_floor = { "floor", floor_access, &fl };
    struct ioreq_router *router = NULL;
    struct ferry_vm *vm;
    pid_t child = -1;
    double result = -1;

    if (hv_vm_create(&cfg, &vm))
        return -1;
    if (hv_io_init(vm) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, PORT_MARK, PORT_MARK, &h_mark) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, 0x501, 0x501, &h_end))
        goto out;
    if (!remote && hv_io_register(vm, IOREQ_RANGE_PORT, port, port,
                                  run->floor ? &h_floor : &h_count))
        goto out;
    if (!remote && run->floor) {
        fl.pg = mmap(NULL, sizeof(*fl.pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
        if (fl.pg == MAP_FAILED) {
            fl.pg = NULL;
            goto out;
        }
        child = fork();
        if (child == 0)
            _exit(floor_peer(fl.pg, run->srv_cpu));
        if (child < 0)
            goto out;
    }
    memcpy(hv_vm_gpa_ptr(vm, HV_REAL_LOAD_ADDR, sizeof(code)), code, sizeof(code));
    if (hv_vm_commit_memory(vm, HV_BIOS_END) || hv_vcpus_create(vm) ||
        hv_vcpus_setup_boot(vm, &boot))
        goto out;
    if (remote && run->dm) {
        struct ioreq_router_config rc = { .nr_vcpus = 1, .ops = &router_ops, .opaque = vm };
        if (ioreq_router_create(&rc, &router))
            goto out;
        vm->router = router;
        child = bench_spawn_testdev_dm("exit-rtt", run->dm, run->srv_cpu, router);
        if (child < 0 || bench_router_wait_enabled(router, "exit-rtt", "ferry-dm") < 0)
            goto out;
        dm_cpu0 = schedstat_s(child);
    } else if (remote) {
        struct ioreq_router_config rc = { .nr_vcpus = 1, .ops = &router_ops, .opaque = vm };
        int sv[2];
        if (ioreq_router_create(&rc, &router))
            goto out;
        vm->router = router;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
            goto out;
        if (run->late)
            run->late->cpu0 = run->late->cpu1 = 0;
        child = fork();
        if (child == 0) {
            close(sv[0]);
            _exit(server_main(sv[1], busy, posted, run->delay_us, run->srv_cpu, run->late,
                              (uint64_t)n + 1));
        }
        close(sv[1]);
        if (child < 0 || ioreq_router_add_connection(router, sv[0]) < 0)
            goto out;
        if (bench_router_wait_enabled(router, "exit-rtt", "the server") < 0)
            goto out;
    }
    if (hv_vcpus_start(vm))
        goto out;
    bench_vm_serve(vm, router);
    hv_vcpus_stop(vm);
    if (run->dm && child > 0)
        dm_cpu1 = schedstat_s(child);
    if (atomic_load(&vm->end) == HV_END_DEBUG_EXIT && b.span.t1 > b.span.t0)
        result = n / (b.span.t1 - b.span.t0);
    if (router) {
        struct ioreq_router_stats st;
        ioreq_router_get_stats(router, &st);
        if (st.sent + st.posted != n + 1 || (!posted && st.posted)) {
            fprintf(stderr, "exit-rtt: the server answered %llu and was posted %llu of %u exits\n",
                    (unsigned long long)st.sent, (unsigned long long)st.posted, n + 1);
            result = -1;
        }
        if (posted && run->ps) {
            run->ps->sync += st.sent - 1;       /* less the final read */
            run->ps->bells += st.doorbells;
            run->ps->quiet += st.posted_quiet;
        }
    } else if (b.handled != n + 1) {
        fprintf(stderr, "exit-rtt: handled %llu of %u exits\n", (unsigned long long)b.handled, n);
        result = -1;
    }
out:
    hv_vcpus_stop(vm);
    if (router) {
        vm->router = NULL;
        ioreq_router_destroy(router);
    }
    if (fl.pg) {
        __atomic_store_n(&fl.pg->word, FLOOR_END, __ATOMIC_RELEASE);
        futex_op(&fl.pg->word, FUTEX_WAKE, 1);
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    if (result > 0) {
        double c = b.span.c1 - b.span.c0;
        if (remote && run->dm)
            c += dm_cpu0 >= 0 && dm_cpu1 >= dm_cpu0 ? dm_cpu1 - dm_cpu0 : 0;  /* ferry-dm's */
        else if (remote && run->late)
            c += run->late->cpu1 - run->late->cpu0;     /* the server's, written before it exited */
        if (fl.pg)
            c += fl.pg->cpu1 - fl.pg->cpu0;             /* the peer's, likewise */
        run->cpu_us = c * 1e6 / n;
    }
    if (fl.pg)
        munmap(fl.pg, sizeof(*fl.pg));
    hv_io_fini(vm);
    hv_vm_destroy(vm);
    return result;
}

struct placement {
    const char *name, *tag;
    int vm_cpu, srv_cpu;
    bool posted;
    unsigned delay_us;
    bool dm, two, each;         /* served by ferry-dm; the server on the second CPU; bell each */
    struct posted_stats ps;
    double local[PAIRS_MAX], remote[PAIRS_MAX], ratio[PAIRS_MAX];
    double lcpu[PAIRS_MAX], rcpu[PAIRS_MAX], cratio[PAIRS_MAX];     /* CPU us per exit */
    double floor[PAIRS_MAX], fcpu[PAIRS_MAX];   /* sync: in-process + a futex round trip */
    double fratio[PAIRS_MAX], fcratio[PAIRS_MAX];       /* floor / in-process */
    struct lateness *late;      /* the server's timer in this case's cross-process runs */
};

/* Whether word is one of list's comma-separated words. */
static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint32_t n = 20000;
    int pairs = 5, nums = 0;
    const char *dm = FERRY_DM_PATH;
    bool busy = false;
    const char *only = NULL;
    cpu_set_t orig;
    int cpu[2] = { -1, -1 }, nr_cpus = 0;

    for (int i = 1; i < argc; i++) {
        int v = atoi(argv[i]);
        if (!strcmp(argv[i], "--server-poll")) {
            busy = true;
        } else if (!strcmp(argv[i], "--server-batch")) {
            server_batch = true;
        } else if (!strcmp(argv[i], "--server-slice") && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            server_slice_us = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--posted-delay") && i + 1 < argc) {
            i++;
            posted_delay_us = !strcmp(argv[i], "off") ? IOREQ_POSTED_IMMEDIATE
                                                      : (unsigned)atoi(argv[i]);
            if (posted_delay_us == 0) {
                fprintf(stderr, "exit-rtt: --posted-delay: 'off' or microseconds, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--posted-both")) {
            posted_both = true;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--dm") && i + 1 < argc) {
            dm = argv[++i];
        } else if (v > 0 && nums == 0) {
            n = (uint32_t)v;
            nums++;
        } else if (v > 0 && v <= PAIRS_MAX && nums == 1) {
            pairs = v;
            nums++;
        } else {
            fprintf(stderr, "usage: exit-rtt [N] [PAIRS 1..%d] [--server-poll] [--server-batch] "
                    "[--server-slice US] [--posted-delay US|off] [--posted-both] [--only CASE,...] "
                    "[--dm PATH]\n",
                    PAIRS_MAX);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (sched_getaffinity(0, sizeof(orig), &orig) < 0) {
        fprintf(stderr, "exit-rtt: sched_getaffinity: %s\n", strerror(errno));
        return 1;
    }
    for (int c = 0; c < CPU_SETSIZE && nr_cpus < 2; c++)
        if (CPU_ISSET(c, &orig))
            cpu[nr_cpus++] = c;
    const unsigned each = IOREQ_POSTED_IMMEDIATE;
#define NR_CASES 8
    struct placement all[NR_CASES] = {
        { "sync read, one CPU", "sync-one", cpu[0], cpu[0], false, posted_delay_us },
        { "sync, ferry-dm, one CPU", "sync-dm-one", cpu[0], cpu[0], false, 0, .dm = true },
        { "posted write, one CPU", "posted-one", cpu[0], cpu[0], true, posted_delay_us },
        { "posted, bell each, 1 CPU", "posted-each-one", cpu[0], cpu[0], true, each,
          .each = true },
        { "sync read, two CPUs", "sync-two", cpu[0], cpu[1], false, posted_delay_us,
          .two = true },
        { "sync, ferry-dm, two CPUs", "sync-dm-two", cpu[0], cpu[1], false, 0, .dm = true,
          .two = true },
        { "posted write, two CPUs", "posted-two", cpu[0], cpu[1], true, posted_delay_us,
          .two = true },
        { "posted, bell each, 2 CPUs", "posted-each-two", cpu[0], cpu[1], true, each,
          .two = true, .each = true },
    }, pl[NR_CASES];
    int nr_pl = 0;
    for (int k = 0; k < NR_CASES; k++) {
        if ((only ? in_list(only, all[k].tag) : !all[k].each || posted_both) &&
            (!all[k].two || nr_cpus > 1))
            pl[nr_pl++] = all[k];
    }
    if (nr_pl == 0) {
        fprintf(stderr, "exit-rtt: --only %s: no such case here (sync-one, sync-dm-one, "
                "posted-one, posted-each-one, sync-two, sync-dm-two, posted-two, "
                "posted-each-two; the *-two ones need two CPUs)\n", only);
        return 2;
    }
    for (int p = 0; p < nr_pl; p++) {
        pl[p].late = mmap(NULL, sizeof(struct lateness), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (pl[p].late == MAP_FAILED) {
            fprintf(stderr, "exit-rtt: mmap: %s\n", strerror(errno));
            return 1;
        }
    }

    bench_print_header();
    printf("placement one CPU: exit-rtt, its vCPU thread and the server on CPU %d\n", cpu[0]);
    if (nr_cpus > 1)
        printf("placement two CPUs: exit-rtt and its vCPU thread on CPU %d, the server on "
               "CPU %d\n", cpu[0], cpu[1]);
    else
        printf("placement two CPUs: not measured, exit-rtt may use only CPU %d\n", cpu[0]);
    printf("runs: %d pairs per case, %u exits per run (+1 read), %s server%s", pairs, n,
           busy ? "polling" : "eventfd", server_batch ? " (SCHED_BATCH)" : "");
    if (server_slice_us)
        printf(" (slice %u us)", server_slice_us);
    if (posted_delay_us == IOREQ_POSTED_IMMEDIATE)
        printf("; posted writes: a doorbell whenever the server sleeps (--posted-delay off)\n");
    else
        printf("; posted writes: a busy ring drained every %u us%s\n",
               posted_delay_us ? posted_delay_us : IOREQ_POSTED_DELAY_US,
               posted_both ? " (\"bell each\": a doorbell whenever the server sleeps)" : "");
    printf("ferry-dm cases: %s --no-defaults --device=pc-testdev, the guest reads its scratch "
           "register (port 0x%x; the server options above are not its)\n", dm, PORT_DM);
    printf("floor: the in-process handler wakes a process on the server's CPU through a futex "
           "in a shared page and waits for its answer the same way\n");
    fflush(stdout);
    /* Warm-up */
    struct run w = { .srv_cpu = pl[nr_pl - 1].srv_cpu, .delay_us = posted_delay_us };
    if (bench_pin(cpu[0]) < 0 || one_run(n / 10 + 1, false, busy, &w) < 0 ||
        one_run(n / 10 + 1, true, busy, &w) < 0)
        return 1;
    w.posted = true;
    if (one_run(n / 10 + 1, true, busy, &w) < 0)
        return 1;
    for (int i = 0; i < pairs; i++) {
        for (int p = 0; p < nr_pl; p++) {
            struct placement *x = &pl[p];
            if (bench_pin(x->vm_cpu) < 0) {
                fprintf(stderr, "exit-rtt: cannot pin to CPU %d: %s\n", x->vm_cpu,
                        strerror(errno));
                return 1;
            }
            const char *xdm = x->dm ? dm : NULL;
            struct run rr = { .posted = x->posted, .delay_us = x->delay_us,
                              .srv_cpu = x->srv_cpu, .late = x->dm ? NULL : x->late,
                              .ps = &x->ps, .dm = xdm };
            struct run lr = { .posted = x->posted, .srv_cpu = -1, .dm = xdm };
            /* Sync cases: the floor run between the two (their order alternates). */
            struct run fr = { .srv_cpu = x->srv_cpu, .floor = true, .dm = xdm };
            if (i % 2)
                x->remote[i] = one_run(n, true, busy, &rr);
            else
                x->local[i] = one_run(n, false, busy, &lr);
            if (!x->posted && (x->floor[i] = one_run(n, false, busy, &fr)) < 0)
                return 1;
            if (i % 2)
                x->local[i] = one_run(n, false, busy, &lr);
            else
                x->remote[i] = one_run(n, true, busy, &rr);
            if (x->local[i] < 0 || x->remote[i] < 0)
                return 1;
            if (!x->posted) {
                x->fratio[i] = x->local[i] / x->floor[i];
                x->fcpu[i] = fr.cpu_us;
                x->fcratio[i] = fr.cpu_us / lr.cpu_us;
            }
            x->ratio[i] = x->local[i] / x->remote[i];
            x->lcpu[i] = lr.cpu_us;
            x->rcpu[i] = rr.cpu_us;
            x->cratio[i] = rr.cpu_us / lr.cpu_us;
        }
    }
    sched_setaffinity(0, sizeof(orig), &orig);

    for (int p = 0; p < nr_pl; p++) {
        struct bench_stat3 l = bench_stats(pl[p].local, pairs);
        struct bench_stat3 r = bench_stats(pl[p].remote, pairs);
        printf("%-25s in-process handler:    %9.0f exits/s (%9.0f..%9.0f) %7.2f us/exit\n",
               pl[p].name, l.med, l.min, l.max, 1e6 / l.med);
        printf("%-25s %-23s %9.0f exits/s (%9.0f..%9.0f) %7.2f us/exit\n", pl[p].name,
               pl[p].dm ? "ferry-dm:" : busy ? "ioreq server (polling):" : "ioreq server (eventfd):",
               r.med, r.min, r.max, 1e6 / r.med);
    }
    for (int p = 0; p < nr_pl; p++) {
        if (pl[p].posted)
            continue;
        struct bench_stat3 f = bench_stats(pl[p].floor, pairs);
        printf("%-25s floor (in-process + a futex round trip to a process): %9.0f exits/s "
               "(%9.0f..%9.0f) %7.2f us/exit\n", pl[p].name, f.med, f.min, f.max, 1e6 / f.med);
    }
    for (int p = 0; p < nr_pl && !busy; p++) {
        struct lateness *l = pl[p].late;
        unsigned k = l->n < LATE_MAX ? l->n : LATE_MAX;
        if (k == 0)
            continue;
        qsort(l->us, k, sizeof(l->us[0]), cmp_u32);
        printf("%-25s server's 1 ms timer late by: median %u us, 99%% %u us, "
               "max %u us (%u expiries)\n", pl[p].name, l->us[k / 2], l->us[k * 99 / 100],
               l->us[k - 1], k);
    }
    for (int p = 0; p < nr_pl; p++) {
        double writes = (double)n * pairs;
        if (pl[p].posted)
            printf("%-25s %.2f%% went synchronously (ring full), %.3f doorbells per write, "
                   "%.1f%% into a masked ring\n", pl[p].name, 100.0 * pl[p].ps.sync / writes,
                   pl[p].ps.bells / writes, 100.0 * pl[p].ps.quiet / writes);
    }
    for (int p = 0; p < nr_pl; p++) {
        struct bench_stat3 l = bench_stats(pl[p].lcpu, pairs), r = bench_stats(pl[p].rcpu, pairs);
        struct bench_stat3 q = bench_stats(pl[p].cratio, pairs);
        printf("%-25s CPU per exit (vCPU thread + server): in-process %.2f us, cross-process "
               "%.2f us, ratio %.2f (%.2f..%.2f)\n", pl[p].name, l.med, r.med, q.med, q.min, q.max);
        if (!pl[p].posted) {
            struct bench_stat3 f = bench_stats(pl[p].fcpu, pairs);
            struct bench_stat3 fq = bench_stats(pl[p].fcratio, pairs);
            printf("%-25s CPU per exit, floor (vCPU thread + peer): %.2f us, ratio to "
                   "in-process %.2f (%.2f..%.2f); the server's transport above it: %.2f us\n",
                   pl[p].name, f.med, fq.med, fq.min, fq.max, r.med - f.med);
        }
    }
    for (int p = 0; p < nr_pl; p++) {
        if (pl[p].posted)
            continue;
        struct bench_stat3 q = bench_stats(pl[p].fratio, pairs);
        printf("floor ratio (in-process + futex round trip) / in-process cost per exit, %s "
               "(median of %d pairs, %.2f..%.2f): %.2f\n", pl[p].name, pairs, q.min, q.max,
               q.med);
    }
    for (int p = 0; p < nr_pl; p++) {
        struct bench_stat3 q = bench_stats(pl[p].ratio, pairs);
        printf("ratio cross-process / in-process cost per exit, %s (median of %d pairs, "
               "%.2f..%.2f, %s): %.2f\n", pl[p].name, pairs, q.min, q.max,
               !pl[p].posted ? "goal <= 1.5" : pl[p].delay_us == IOREQ_POSTED_IMMEDIATE
               ? "reference, no goal" : "goal <= 1.2", q.med);
    }
    return 0;
}
