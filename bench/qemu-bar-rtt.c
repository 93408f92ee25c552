/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-bar-rtt: what a guest pays to read a register of a device hosted in
 * a stock QEMU (ferry-dm's qemu device: an RTL8139 in a `-machine x-remote`
 * QEMU over mpqemu) against the same kind of read of a device hosted by
 * ferry-dm itself (its pci-test function), both over the real path, in the
 * same run:
 *
 *   guest `in`/`mov` -> KVM exit -> ferry-hv -> ioreq -> ferry-dm
 *                                                   [-> mpqemu -> QEMU]
 *
 * This program plays ferry-hv (it links the hypervisor library, as
 * exit-rtt and vm-start do: one vCPU thread, the ioreq router, ferry-hv's
 * debug ports) and starts the real ferry-dm binary as `ferry run` does
 * (--ioreq-fd, confined by default) with `--device=pci-test,addr=5
 * --device=qemu,device=rtl8139,addr=6`.  The guest
 * (tests/devmodel/guests/bench-bar.S) programs both functions' BARs and
 * runs a warm-up round and R rounds of one block of N reads per kind, the
 * order rotating from round to round, each read checked against its value:
 *
 *   floor      an in-process port of ferry-hv (the KVM exit alone)
 *   dm io      pci-test BAR0 +8 (magic), I/O BAR in ferry-dm
 *   dm mmio    pci-test BAR1 +0 (scratch), memory BAR in ferry-dm
 *   qemu io    RTL8139 IDR0, I/O BAR in QEMU
 *   qemu mmio  RTL8139 IDR0, memory BAR in QEMU
 *
 * A marker write to an in-process port starts each block; this program
 * takes the time there, so VM creation and QEMU's start are not measured.
 * Printed: the median over rounds of each kind in us per read.  The
 * headline is the ratio qemu / dm per BAR type (goal <= 2).
 *
 * Second part, the engine alone: ferry-dm's remote engine
 * (mpqemu/qemu-remote.h) in this process reading IDR0 from its own
 * x-remote QEMU directly, interleaved with its baseline, a unix stream
 * socket round trip with a forked child carrying the same message sizes
 * (40-byte request, 24-byte reply): the IPC floor under the engine.
 *
 * Placement decides cross-process figures on this machine (a shared-CPU
 * round trip costs a fraction of a cross-CPU one), so both parts run in
 * up to three placements: one-cpu (every process pinned to the first CPU
 * this program may use; set before anything starts, ferry-dm and QEMU
 * inherit it), split (this process on that CPU; ferry-dm, its QEMU, the
 * engine's QEMU and the echo child on the next one) and default (the CPUs
 * this program was started with, placed by the scheduler).  For each, both
 * parts list the processes with their allowed CPUs, and the guest part
 * says how often, sampled every 100 ms, the vCPU thread, ferry-dm and QEMU
 * were last seen on one CPU.
 *
 *   build/bench/qemu-bar-rtt [--reads N] [--rounds R] [--placement all|one-cpu|split|default]
 *                            [--no-sandbox] [--router-spin-us US] [--guest ELF] [--dm PATH]
 *                            [--dm-arg ARG]...
 *   defaults: 500 reads, 15 rounds, all placements (split only with two
 *   CPUs or more); --no-sandbox turns
 *   QEMU's own seccomp filter off (ferry-dm's and the engine's QEMU);
 *   --router-spin-us sets how long the vCPU thread spins for an ioreq's
 *   answer before it blocks (0: never; default ferry-hv's 20 us), which
 *   matters when every process shares one CPU; --dm-arg passes one more
 *   argument to ferry-dm (e.g. --seccomp=off, to see what confinement costs).
 *
 * Each part prints its lines per placement; the last line is the headline
 * ratio for each placement measured.
 *
 * Needs /dev/kvm and qemu-system-x86_64 in PATH (or FERRY_QEMU); without
 * them it says so and exits 77.
 */
#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mpqemu/qemu-remote.h"
#include "hypervisor/hv.h"
#include "tests/devmodel/guests/bench-bar.h"
#include "bench/bench.h"

#ifndef FERRY_DM_PATH
#define FERRY_DM_PATH "ferry-dm"
#endif
#ifndef FERRY_BENCH_BAR_GUEST
#define FERRY_BENCH_BAR_GUEST "bench-bar.elf"
#endif

#define EXIT_SKIP       77
#define START_MS        30000       /* ferry-dm (and its QEMU) enabled */
#define RUN_MS          600000      /* the guest's whole run */
#define SAMPLE_MS       100
#define DM_ARGS_MAX     8

/* Engine part: where the remote QEMU's BARs sit (outside the fake RAM). */
#define ENG_IO_BAR      0xc000u
#define ENG_MMIO_BAR    0xfebf0000u
#define ENG_KINDS       3
#define MSG_REQ         40          /* mpqemu BAR_READ: 16-byte header + 24 */
#define MSG_REPLY       24          /* RET: 16-byte header + 8 */

struct opts {
    unsigned reads, rounds;
    unsigned spin_us;               /* the router's spin before it blocks; 0: ferry-hv's */
    bool sandbox;
    const char *guest, *dm, *qemu;
    const char *dm_args[DM_ARGS_MAX + 1];   /* more for ferry-dm, NULL-terminated */
};

/* Where the processes run: this one (ferry-hv, the engine) and the others. */
struct placement {
    const char *name;
    char label[192];
    cpu_set_t self, others;
};

static const char *const kind_names[BB_KINDS + 1] = {
    [BB_KIND_FLOOR] = "in-process port of ferry-hv (KVM exit floor)",
    [BB_KIND_DM_IO] = "ferry-dm pci-test, I/O BAR",
    [BB_KIND_DM_MEM] = "ferry-dm pci-test, MMIO BAR",
    [BB_KIND_QEMU_IO] = "QEMU rtl8139 IDR0, I/O BAR",
    [BB_KIND_QEMU_MEM] = "QEMU rtl8139 IDR0, MMIO BAR",
};

static void bench_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING && !strstr(msg, "has no peer"))
        fprintf(stderr, "qemu-bar-rtt: %s\n", msg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- placement: which CPUs the processes may use and where they ran ---- */

static void cpus_allowed(pid_t pid, char *out, size_t len)
{
    char path[64], line[256];
    FILE *f;

    snprintf(out, len, "?");
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "Cpus_allowed_list:", 18)) {
            snprintf(out, len, "%s", line + 18 + strspn(line + 18, " \t"));
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

/* The CPU task tid of process pid last ran on (field 39 of stat), or -1. */
static int last_cpu(pid_t pid, pid_t tid)
{
    char path[80], buf[1024];
    int fd, cpu = -1;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    /* after ") " comes field 3; the CPU is field 39 */
    for (int field = 2; p && field < 39; field++)
        p = strchr(p + 1, ' ');
    if (p)
        cpu = atoi(p + 1);
    return cpu;
}

static void proc_comm(pid_t pid, char *out, size_t len)
{
    char path[64];
    FILE *f;

    snprintf(out, len, "?");
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    f = fopen(path, "r");
    if (f && fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    if (f)
        fclose(f);
}

#define PROCS_MAX 16
struct proc_list {
    pid_t pid[PROCS_MAX];
    unsigned n;
};

/* pid and its descendants (through /proc/P/task/T/children). */
static void proc_tree(pid_t pid, struct proc_list *l)
{
    char path[64];
    struct dirent *e;
    DIR *d;

    if (l->n >= PROCS_MAX)
        return;
    l->pid[l->n++] = pid;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    while (d && (e = readdir(d))) {
        char cpath[300];
        FILE *f;
        int child;

        if (e->d_name[0] == '.')
            continue;
        snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, e->d_name);
        f = fopen(cpath, "r");
        while (f && fscanf(f, "%d", &child) == 1)
            proc_tree(child, l);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
}

/* The first process in l whose command name starts with prefix, or -1. */
static pid_t proc_find(const struct proc_list *l, const char *prefix)
{
    char comm[64];

    for (unsigned i = 0; i < l->n; i++) {
        proc_comm(l->pid[i], comm, sizeof(comm));
        if (!strncmp(comm, prefix, strlen(prefix)))
            return l->pid[i];
    }
    return -1;
}

/* Every thread of process pid to the CPUs in set. */
static void pin_tasks(pid_t pid, const cpu_set_t *set)
{
    char path[64];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    while (d && (e = readdir(d))) {
        pid_t t = atoi(e->d_name);
        if (t > 0 && sched_setaffinity(t, sizeof(*set), set) < 0)
            fprintf(stderr, "qemu-bar-rtt: cannot pin task %d of pid %d: %s\n", (int)t,
                    (int)pid, strerror(errno));
    }
    if (d)
        closedir(d);
}

/* The thread of this process other than the main one (the vCPU), or -1. */
static pid_t vcpu_tid(void)
{
    pid_t self = getpid(), tid = -1;
    struct dirent *e;
    DIR *d = opendir("/proc/self/task");

    while (d && (e = readdir(d))) {
        pid_t t = atoi(e->d_name);
        if (t > 0 && t != self && tid < 0)
            tid = t;
    }
    if (d)
        closedir(d);
    return tid;
}

static void print_procs(const char *self_role, const struct proc_list *l, const char *other_role)
{
    char cpus[128], comm[64];

    cpus_allowed(getpid(), cpus, sizeof(cpus));
    printf("  %s: this process, pid %d, cpus %s\n", self_role, (int)getpid(), cpus);
    for (unsigned i = 0; i < l->n; i++) {
        proc_comm(l->pid[i], comm, sizeof(comm));
        cpus_allowed(l->pid[i], cpus, sizeof(cpus));
        printf("  %s: %s pid %d, cpus %s\n",
               !strncmp(comm, "qemu-system", 11) ? "QEMU" : other_role, comm,
               (int)l->pid[i], cpus);
    }
}

/* ---- the guest part: ferry-hv in this process, the real ferry-dm ---- */

struct guest_run {
    const struct opts *o;
    uint64_t *mark_t;
    uint32_t *mark_k;
    unsigned nr_marks, max_marks;
    bool overflow;
};

static void params_access(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct guest_run *g = opaque;

    if (req->dir == IOREQ_READ)
        req->data = req->addr == BB_PORT_READS ? g->o->reads :
                    req->addr == BB_PORT_ROUNDS ? g->o->rounds + 1 : 0;  /* + warm-up */
}

static void floor_access(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    if (req->dir == IOREQ_READ)
        req->data = BB_FLOOR_VALUE;
}

static void mark_access(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct guest_run *g = opaque;
    uint64_t now = bench_now_ns();

    if (req->dir != IOREQ_WRITE)
        return;
    if (g->nr_marks >= g->max_marks) {
        g->overflow = true;
        return;
    }
    g->mark_t[g->nr_marks] = now;
    g->mark_k[g->nr_marks++] = (uint32_t)req->data;
}

static void shutdown_op(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    hv_vm_end(opaque, reason == IOREQ_SHUTDOWN_POWEROFF ? HV_END_POWEROFF : HV_END_CRASH, code);
}

static int irqfd_op(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    return hv_vm_irqfd(opaque, gsi, fd, resample_fd, assign);
}

static int irq_line_op(void *opaque, uint32_t gsi, bool level)
{
    return hv_vm_irq_line(opaque, gsi, level);
}

static int msi_op(void *opaque, uint64_t address, uint32_t data)
{
    return hv_vm_signal_msi(opaque, address, data);
}

static int memory_op(void *opaque, struct ioreq_msg_memory_reply *regions)
{
    return hv_vm_memory_regions(opaque, regions);
}

static void server_gone_op(void *opaque, const char *name, const char *why)
{
    struct ferry_vm *vm = opaque;

    if (!atomic_load(&vm->stopping))
        fprintf(stderr, "qemu-bar-rtt: ioreq server %s gone: %s\n", name, why);
}

static const struct ioreq_router_ops router_ops = {
    .log = bench_log, .irqfd = irqfd_op, .irq_line = irq_line_op, .msi = msi_op,
    .memory = memory_op, .shutdown = shutdown_op, .server_gone = server_gone_op,
};

/* ferry-dm --ioreq-fd=N with the two devices, as ferry-hv --dm starts it. */
static pid_t spawn_dm(const struct opts *o, const struct placement *pl,
                      struct ioreq_router *router)
{
    char fdarg[32], dmdev[64], qdev[512];
    const char *argv[DM_ARGS_MAX + 5] = { o->dm, fdarg, dmdev, qdev };
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    snprintf(dmdev, sizeof(dmdev), "--device=pci-test,id=bench-dm,addr=%x", BB_DM_SLOT);
    snprintf(qdev, sizeof(qdev), "--device=qemu,id=bench-qemu,device=rtl8139,addr=%x%s%s%s",
             BB_QEMU_SLOT, o->sandbox ? "" : ",sandbox=off", o->qemu ? ",qemu=" : "",
             o->qemu ? o->qemu : "");
    pid = fork();
    if (pid == 0) {
        fcntl(sv[1], F_SETFD, 0);
        signal(SIGPIPE, SIG_DFL);
        /* before exec: ferry-dm, its launcher and QEMU all inherit it */
        if (sched_setaffinity(0, sizeof(pl->others), &pl->others) < 0)
            fprintf(stderr, "qemu-bar-rtt: cannot pin ferry-dm: %s\n", strerror(errno));
        for (unsigned i = 0; o->dm_args[i]; i++)
            argv[4 + i] = o->dm_args[i];
        execv(o->dm, (char **)argv);
        fprintf(stderr, "qemu-bar-rtt: cannot run %s: %s\n", o->dm, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    if (pid < 0 || ioreq_router_add_connection(router, sv[0]) < 0) {
        close(sv[0]);
        return -1;
    }
    return pid;
}

struct guest_result {
    double us[BB_KINDS + 1];        /* median us per read, by kind */
    unsigned samples, same_cpu;     /* placement samples; all three on one CPU */
};

/* One guest run: every kind's median us per read into res.  0 or -1 (said why). */
static int guest_part(const struct opts *o, const struct placement *pl,
                      struct guest_result *res)
{
    struct ferry_vm_config cfg = { .memory = 64ull << 20, .nr_vcpus = 1, .log = bench_log };
    struct hv_load_config lc = { .image = o->guest, .entry = HV_ENTRY_PVH };
    struct guest_run g = { .o = o };
    struct hv_io_handler h_params = { "bench-params", params_access, &g },
                         h_floor = { "bench-floor", floor_access, &g },
                         h_mark = { "bench-mark", mark_access, &g };
    struct ioreq_router *router = NULL;
    struct ferry_vm *vm = NULL;
    struct proc_list procs = { .n = 0 };
    struct hv_boot boot;
    uint64_t needed_end, t0;
    pid_t dm = -1, qemu = -1, vtid = -1;
    char why[512];
    double *v = NULL;
    int ret = -1, rc;

    g.max_marks = (o->rounds + 1) * (BB_KINDS + 1);     /* round 0 is the warm-up */
    g.mark_t = calloc(g.max_marks, sizeof(*g.mark_t));
    g.mark_k = calloc(g.max_marks, sizeof(*g.mark_k));
    v = calloc(o->rounds, sizeof(*v));
    if (!g.mark_t || !g.mark_k || !v)
        goto out;
    rc = hv_vm_create(&cfg, &vm);
    if (rc) {
        fprintf(stderr, "qemu-bar-rtt: cannot create the VM: %s\n", strerror(-rc));
        vm = NULL;
        goto out;
    }
    if (hv_io_init(vm) || hv_io_add_debug_ports(vm, STDERR_FILENO) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, BB_PORT_READS, BB_PORT_ROUNDS + 3, &h_params) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, BB_PORT_FLOOR, BB_PORT_FLOOR + 3, &h_floor) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, BB_PORT_MARK, BB_PORT_MARK + 3, &h_mark))
        goto out;
    if (hv_load(vm, &lc, &boot, &needed_end, why, sizeof(why))) {
        fprintf(stderr, "qemu-bar-rtt: cannot load the guest: %s\n", why);
        goto out;
    }
    if (hv_vm_commit_memory(vm, needed_end) || hv_vcpus_create(vm) ||
        hv_vcpus_setup_boot(vm, &boot))
        goto out;
    struct ioreq_router_config rcfg = { .nr_vcpus = 1, .spin_us = o->spin_us,
                                        .ops = &router_ops, .opaque = vm };
    if (ioreq_router_create(&rcfg, &router))
        goto out;
    vm->router = router;
    dm = spawn_dm(o, pl, router);
    if (dm < 0) {
        fprintf(stderr, "qemu-bar-rtt: cannot start %s: %s\n", o->dm, strerror(errno));
        goto out;
    }

    /* ferry-dm enables once its devices (and QEMU) are up */
    t0 = bench_now_ns();
    for (;;) {
        struct ioreq_router_stats st;
        struct pollfd p = { .fd = ioreq_router_get_fd(router), .events = POLLIN };

        ioreq_router_get_stats(router, &st);
        if (st.enabled >= 1)
            break;
        if (waitpid(dm, NULL, WNOHANG) == dm) {
            dm = -1;
            fprintf(stderr, "qemu-bar-rtt: ferry-dm exited before enabling (its log is above)\n");
            goto out;
        }
        if (bench_now_ns() - t0 > START_MS * 1000000ull) {
            fprintf(stderr, "qemu-bar-rtt: ferry-dm did not enable within %d ms\n", START_MS);
            goto out;
        }
        if (poll(&p, 1, 100) > 0)
            ioreq_router_dispatch(router);
    }
    proc_tree(dm, &procs);
    qemu = proc_find(&procs, "qemu-system");
    if (qemu < 0) {
        fprintf(stderr, "qemu-bar-rtt: ferry-dm pid %d has no QEMU among its descendants\n",
                (int)dm);
        goto out;
    }
    printf("placement %s, guest part:\n", pl->label);
    print_procs("ferry-hv (vCPU thread, ioreq router)", &procs, "ferry-dm");

    if (hv_vcpus_start(vm))
        goto out;
    vtid = vcpu_tid();
    t0 = bench_now_ns();
    for (;;) {
        struct pollfd p[2] = {
            { .fd = vm->done_fd, .events = POLLIN },
            { .fd = ioreq_router_get_fd(router), .events = POLLIN },
        };
        int n = poll(p, 2, SAMPLE_MS);

        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents)
            ioreq_router_dispatch(router);
        if (n == 0) {
            int a = last_cpu(getpid(), vtid), b = last_cpu(dm, dm), c = last_cpu(qemu, qemu);
            if (a >= 0 && b >= 0 && c >= 0) {
                res->samples++;
                res->same_cpu += a == b && b == c;
            }
        }
        if (bench_now_ns() - t0 > RUN_MS * 1000000ull) {
            fprintf(stderr, "qemu-bar-rtt: the guest did not finish within %d ms\n", RUN_MS);
            hv_vm_end(vm, HV_END_STOPPED, 0);
            break;
        }
    }
    hv_vcpus_stop(vm);
    if (atomic_load(&vm->end) != HV_END_DEBUG_EXIT || atomic_load(&vm->end_code) != 0) {
        fprintf(stderr, "qemu-bar-rtt: the guest ended with %d code %u, not its debug exit 0 "
                "(its FAIL line is above)\n", atomic_load(&vm->end), atomic_load(&vm->end_code));
        goto out;
    }
    if (g.overflow || g.nr_marks != g.max_marks) {
        fprintf(stderr, "qemu-bar-rtt: the guest wrote %s markers than %u\n",
                g.overflow ? "more" : "fewer", g.max_marks);
        goto out;
    }
    for (unsigned k = 1; k <= BB_KINDS; k++) {
        unsigned n = 0;
        for (unsigned i = BB_KINDS + 1; i + 1 < g.nr_marks; i++)
            if (g.mark_k[i] == k && n < o->rounds)
                v[n++] = (g.mark_t[i + 1] - g.mark_t[i]) / 1e3 / o->reads;
        if (n != o->rounds) {
            fprintf(stderr, "qemu-bar-rtt: %u blocks of kind %u, not %u\n", n, k, o->rounds);
            goto out;
        }
        res->us[k] = median(v, n);
    }
    ret = 0;
out:
    if (vm)
        hv_vcpus_stop(vm);
    if (router) {
        if (vm)
            vm->router = NULL;
        ioreq_router_destroy(router);
    }
    if (dm > 0) {
        /* ferry-dm sees the router hang up and exits (ending its QEMU) */
        for (int i = 0; i < 500 && waitpid(dm, NULL, WNOHANG) != dm; i++)
            usleep(10000);
        if (kill(dm, 0) == 0) {
            fprintf(stderr, "qemu-bar-rtt: ferry-dm pid %d still running; killing it\n",
                    (int)dm);
            kill(dm, SIGKILL);
            waitpid(dm, NULL, 0);
        }
    }
    if (vm) {
        hv_io_fini(vm);
        hv_vm_destroy(vm);
    }
    free(g.mark_t);
    free(g.mark_k);
    free(v);
    return ret;
}

/* ---- the engine part: qemu-remote in this process, and its IPC floor ---- */

static void engine_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING && !strstr(msg, "has no peer"))
        fprintf(stderr, "qemu-bar-rtt: engine: %s\n", msg);
}

static const struct ferry_qemu_remote_ops engine_ops = { .log = engine_log };

static bool full_io(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* The floor's other end: read a request, answer it, until EOF. */
static void echo_child(int fd)
{
    uint8_t req[MSG_REQ], reply[MSG_REPLY] = { 1 };

    while (full_io(fd, req, sizeof(req), false))
        if (!full_io(fd, reply, sizeof(reply), true))
            break;
    _exit(0);
}

struct engine_result {
    double us[ENG_KINDS];           /* engine io, engine mmio, IPC floor */
};

static const char *const engine_names[ENG_KINDS] = {
    "ferry-dm's engine -> QEMU rtl8139 IDR0, I/O BAR",
    "ferry-dm's engine -> QEMU rtl8139 IDR0, MMIO BAR",
    "unix stream round trip to a child, 40/24 bytes (IPC floor)",
};

/* One block of n reads of kind k; us per read, or < 0. */
static double engine_block(struct ferry_qemu_remote *dev, int sock, unsigned k, unsigned n)
{
    uint8_t req[MSG_REQ] = { 5 }, reply[MSG_REPLY];
    uint64_t t0 = bench_now_ns(), val;

    for (unsigned i = 0; i < n; i++) {
        if (k == 2) {
            if (!full_io(sock, req, sizeof(req), true) ||
                !full_io(sock, reply, sizeof(reply), false)) {
                fprintf(stderr, "qemu-bar-rtt: the echo child is gone\n");
                return -1;
            }
            continue;
        }
        if (mpqemu_remote_bar_read(dev, k == 0, k == 0 ? ENG_IO_BAR : ENG_MMIO_BAR, 4,
                                 &val) < 0 || val != BB_MAC_LO) {
            fprintf(stderr, "qemu-bar-rtt: engine read of IDR0 gave %#llx, not %#x\n",
                    (unsigned long long)val, BB_MAC_LO);
            return -1;
        }
    }
    return (bench_now_ns() - t0) / 1e3 / n;
}

static int engine_part(const struct opts *o, const struct placement *pl,
                       struct engine_result *res)
{
    struct ferry_qemu_remote_config cfg = {
        .qemu = o->qemu, .device = "rtl8139", .id = "bench0", .irq_fd = -1,
        .resample_fd = -1, .reply_timeout_ms = 10000, .start_timeout_ms = START_MS,
        .no_sandbox = !o->sandbox,
    };
    struct event_base *base = event_base_new();
    struct ferry_qemu_remote *dev = NULL;
    struct proc_list procs = { .n = 0 };
    double *v[ENG_KINDS] = { 0 };
    int memfd = -1, sv[2] = { -1, -1 }, ret = -1, rc;
    pid_t child = -1, qemu;

    memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    if (!base || memfd < 0 || ftruncate(memfd, 16 << 20) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("qemu-bar-rtt: engine setup");
        goto out;
    }
    for (unsigned k = 0; k < ENG_KINDS; k++)
        if (!(v[k] = calloc(o->rounds, sizeof(double))))
            goto out;
    child = fork();
    if (child == 0) {
        close(sv[0]);
        sched_setaffinity(0, sizeof(pl->others), &pl->others);
        echo_child(sv[1]);
    }
    close(sv[1]);
    sv[1] = -1;
    if (child < 0)
        goto out;
    rc = mpqemu_remote_new(base, &cfg, &engine_ops, NULL, &dev);
    if (!rc)
        rc = mpqemu_remote_add_ram(dev, memfd, 0, 16 << 20, 0);
    if (!rc)
        rc = mpqemu_remote_start(dev);
    if (rc < 0) {
        fprintf(stderr, "qemu-bar-rtt: cannot start rtl8139 in x-remote QEMU: %s\n",
                strerror(-rc));
        goto out;
    }
    mpqemu_remote_config_write(dev, 0x10, 4, ENG_IO_BAR);
    mpqemu_remote_config_write(dev, 0x14, 4, ENG_MMIO_BAR);
    mpqemu_remote_config_write(dev, 0x04, 2, 0x3);

    qemu = mpqemu_remote_pid(dev);
    pin_tasks(qemu, &pl->others);       /* QEMU is the launcher's child, forked from here */
    procs.pid[procs.n++] = child;
    proc_tree(qemu, &procs);
    printf("placement %s, engine part:\n", pl->label);
    print_procs("engine", &procs, "echo child");

    /* warm-up, then rounds with the order rotating */
    for (unsigned k = 0; k < ENG_KINDS; k++)
        if (engine_block(dev, sv[0], k, o->reads / 4 + 1) < 0)
            goto out;
    for (unsigned r = 0; r < o->rounds; r++) {
        for (unsigned j = 0; j < ENG_KINDS; j++) {
            unsigned k = (j + r) % ENG_KINDS;
            if ((v[k][r] = engine_block(dev, sv[0], k, o->reads)) < 0)
                goto out;
        }
    }
    for (unsigned k = 0; k < ENG_KINDS; k++)
        res->us[k] = median(v[k], o->rounds);
    ret = 0;
out:
    if (dev)
        mpqemu_remote_free(dev);
    if (sv[0] >= 0)
        close(sv[0]);
    if (child > 0)
        waitpid(child, NULL, 0);
    if (memfd >= 0)
        close(memfd);
    if (base)
        event_base_free(base);
    for (unsigned k = 0; k < ENG_KINDS; k++)
        free(v[k]);
    return ret;
}

/* ---- main ---- */

/* "load: 1.00 0.50 0.20 (1/5/15 min)": other processes compete for the CPUs. */
static void print_load(const char *when)
{
    double l[3];
    FILE *f = fopen("/proc/loadavg", "r");

    if (f && fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3)
        printf("load average %s: %.2f %.2f %.2f (1/5/15 min)\n", when, l[0], l[1], l[2]);
    if (f)
        fclose(f);
}

/* "0-1,3" for set. */
static void cpu_list(const cpu_set_t *set, char *out, size_t len)
{
    size_t at = 0;

    out[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && at < len; c++) {
        int e = c;
        if (!CPU_ISSET(c, set))
            continue;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
            e++;
        at += (size_t)snprintf(out + at, len - at, e > c ? "%s%d-%d" : "%s%d", at ? "," : "",
                               c, e);
        c = e;
    }
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];

    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    while (path && *path) {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog);
        if (len && access(buf, X_OK) == 0)
            return true;
        path += len + (path[len] == ':');
    }
    return false;
}

static void usage(void)
{
    fprintf(stderr, "usage: qemu-bar-rtt [--reads N] [--rounds R] "
            "[--placement all|one-cpu|split|default] [--no-sandbox]\n"
            "                    [--router-spin-us US]"
            " [--guest ELF] [--dm PATH] [--dm-arg ARG]...\n");
    exit(2);
}

struct placement_result {
    struct placement pl;
    bool ok;
    struct guest_result g;
    struct engine_result e;
};

int main(int argc, char **argv)
{
    struct opts o = { .reads = 500, .rounds = 15, .sandbox = true,
                      .guest = FERRY_BENCH_BAR_GUEST, .dm = FERRY_DM_PATH,
                      .qemu = getenv("FERRY_QEMU") };
    const char *which = "all";
    struct placement_result pl[3] = { { .pl.name = "one-cpu" }, { .pl.name = "split" },
                                      { .pl.name = "default" } };
    cpu_set_t orig;
    int first = -1, second = -1, fd, status = 0;
    char cpus[64];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-sandbox")) {
            o.sandbox = false;
        } else if (!val) {
            usage();
        } else if (!strcmp(a, "--reads")) {
            o.reads = (unsigned)strtoul(val, NULL, 0), i++;
        } else if (!strcmp(a, "--rounds")) {
            o.rounds = (unsigned)strtoul(val, NULL, 0), i++;
        } else if (!strcmp(a, "--router-spin-us")) {
            long us = strtol(val, NULL, 0);
            o.spin_us = us > 0 ? (unsigned)us : -1u, i++;
        } else if (!strcmp(a, "--placement")) {
            which = val, i++;
        } else if (!strcmp(a, "--guest")) {
            o.guest = val, i++;
        } else if (!strcmp(a, "--dm-arg")) {
            unsigned n = 0;
            while (o.dm_args[n])
                n++;
            if (n >= DM_ARGS_MAX) {
                fprintf(stderr, "qemu-bar-rtt: --dm-arg %s: at most %d\n", val, DM_ARGS_MAX);
                return 2;
            }
            o.dm_args[n] = val, i++;
        } else if (!strcmp(a, "--dm")) {
            o.dm = val, i++;
        } else {
            usage();
        }
    }
    if (!o.reads || o.reads > 10000000 || !o.rounds || o.rounds > 10000) {
        fprintf(stderr, "qemu-bar-rtt: --reads must be 1..10000000 and --rounds 1..10000\n");
        return 2;
    }
    if (strcmp(which, "all") && strcmp(which, "one-cpu") && strcmp(which, "split") &&
        strcmp(which, "default")) {
        fprintf(stderr, "qemu-bar-rtt: --placement %s: must be all, one-cpu, split or "
                "default\n", which);
        return 2;
    }
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "qemu-bar-rtt: /dev/kvm: %s; this bench needs KVM\n", strerror(errno));
        return EXIT_SKIP;
    }
    close(fd);
    if (!in_path(o.qemu ? o.qemu : "qemu-system-x86_64")) {
        fprintf(stderr, "qemu-bar-rtt: %s is not installed (or FERRY_QEMU is wrong); this "
                "bench needs it\n", o.qemu ? o.qemu : "qemu-system-x86_64");
        return EXIT_SKIP;
    }
    if (access(o.dm, X_OK) < 0 || access(o.guest, R_OK) < 0) {
        fprintf(stderr, "qemu-bar-rtt: %s: %s (build with ninja; --dm and --guest name "
                "others)\n", access(o.dm, X_OK) < 0 ? o.dm : o.guest, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (sched_getaffinity(0, sizeof(orig), &orig) < 0) {
        perror("qemu-bar-rtt: sched_getaffinity");
        return 1;
    }
    for (int c = 0; c < CPU_SETSIZE && second < 0; c++)
        if (CPU_ISSET(c, &orig))
            *(first < 0 ? &first : &second) = c;
    cpu_list(&orig, cpus, sizeof(cpus));
    CPU_ZERO(&pl[0].pl.self);
    CPU_SET(first, &pl[0].pl.self);
    pl[0].pl.others = pl[0].pl.self;
    snprintf(pl[0].pl.label, sizeof(pl[0].pl.label), "one-cpu (every process on CPU %d)",
             first);
    pl[1].pl.self = pl[0].pl.self;
    CPU_ZERO(&pl[1].pl.others);
    if (second >= 0)
        CPU_SET(second, &pl[1].pl.others);
    snprintf(pl[1].pl.label, sizeof(pl[1].pl.label), "split (ferry-hv and the engine on CPU %d; "
             "ferry-dm, QEMU and the echo child on CPU %d)", first, second);
    pl[2].pl.self = pl[2].pl.others = orig;
    snprintf(pl[2].pl.label, sizeof(pl[2].pl.label), "default (CPUs %s, the scheduler's "
             "choice)", cpus);
    if (second < 0 && !strcmp(which, "split")) {
        fprintf(stderr, "qemu-bar-rtt: --placement split needs two CPUs; this process may "
                "use only CPU %d\n", first);
        return 2;
    }

    bench_print_header();
    printf("placements: one-cpu = ferry-hv (this process), ferry-dm and QEMU all pinned to CPU "
           "%d;", first);
    if (second >= 0)
        printf(" split = ferry-hv on CPU %d, ferry-dm and QEMU on CPU %d;", first, second);
    printf(" default = CPUs %s as started, placed by the scheduler\n", cpus);
    printf("guest: %u rounds of %u reads per kind, order rotating; medians in us per read\n",
           o.rounds, o.reads);
    printf("QEMU's seccomp sandbox: %s; ferry-hv's router spins %s before it blocks\n",
           o.sandbox ? "on" : "off", !o.spin_us ? "as ferry-hv's (20 us)" :
           o.spin_us == -1u ? "never" : "as --router-spin-us says");
    printf("ferry-dm: %s --ioreq-fd=N --device=pci-test,... --device=qemu,...", o.dm);
    for (unsigned i = 0; o.dm_args[i]; i++)
        printf(" %s", o.dm_args[i]);
    printf("\n");
    print_load("before");
    fflush(stdout);
    for (unsigned p = 0; p < 3; p++) {
        struct placement_result *r = &pl[p];

        if (strcmp(which, "all") ? strcmp(which, r->pl.name) != 0 : p == 1 && second < 0)
            continue;
        if (sched_setaffinity(0, sizeof(cpu_set_t), &r->pl.self) < 0) {
            perror("qemu-bar-rtt: sched_setaffinity");
            return 1;
        }
        if (guest_part(&o, &r->pl, &r->g) < 0 || engine_part(&o, &r->pl, &r->e) < 0) {
            status = 1;
            continue;
        }
        r->ok = true;
        printf("placement %s, guest reads (us per read, median of %u rounds of %u):\n",
               r->pl.name, o.rounds, o.reads);
        for (unsigned k = 1; k <= BB_KINDS; k++)
            printf("  %-44s %8.2f\n", kind_names[k], r->g.us[k]);
        printf("  vCPU thread, ferry-dm and QEMU last seen on one CPU: %u of %u samples\n",
               r->g.same_cpu, r->g.samples);
        printf("  ratio QEMU-hosted / ferry-dm-hosted: I/O BAR %.2f, MMIO BAR %.2f\n",
               r->g.us[BB_KIND_QEMU_IO] / r->g.us[BB_KIND_DM_IO],
               r->g.us[BB_KIND_QEMU_MEM] / r->g.us[BB_KIND_DM_MEM]);
        printf("placement %s, engine alone (us per read, median of %u rounds of %u):\n",
               r->pl.name, o.rounds, o.reads);
        for (unsigned k = 0; k < ENG_KINDS; k++)
            printf("  %-60s %8.2f\n", engine_names[k], r->e.us[k]);
        printf("  ratio engine I/O BAR read / IPC floor: %.2f\n", r->e.us[0] / r->e.us[2]);
        fflush(stdout);
    }
    sched_setaffinity(0, sizeof(cpu_set_t), &orig);
    print_load("after");
    if (status)
        return status;
    printf("ratio QEMU-hosted / ferry-dm-hosted BAR read seen by the guest (goal <= 2):");
    for (unsigned p = 0, n = 0; p < 3; p++)
        if (pl[p].ok)
            printf("%s %s I/O %.2f MMIO %.2f", n++ ? ";" : "", pl[p].pl.name,
                   pl[p].g.us[BB_KIND_QEMU_IO] / pl[p].g.us[BB_KIND_DM_IO],
                   pl[p].g.us[BB_KIND_QEMU_MEM] / pl[p].g.us[BB_KIND_DM_MEM]);
    printf("\n");
    return 0;
}
