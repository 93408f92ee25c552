// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-hv: run one HVM guest on KVM and route its I/O as ioreqs.
 *
 *   ferry-hv --image FILE [--entry auto|real|pvh|multiboot] [--memory SIZE] [--vcpus N]
 *            [--cmdline S] [--module FILE[,ARGS]]... [--cpu host[,+F|-F]...] [--ioreq-socket PATH]
 *            [--dm PATH [--dm-arg ARG]... [--dm-restarts N]] [--keep-servers MS]
 *            [--wait-servers N] [--eager-memory]
 *            [--no-acpi | --acpi-table FILE...] [--no-pit] [--cpu-weight N] [--cpu-cap PERCENT]
 *            [--cpus LIST [--dm-cpus LIST]]
 *   ferry-hv --print-cpuid [--cpu host[,+F|-F]...]
 *
 * The main thread runs the control loop (ioreq server registrations,
 * signals, the guest's end); each vCPU has a thread of its own.  The exit
 * status says how the guest ended (hypervisor/hv-exit.h).
 *
 * Placement: --cpus pins vCPU i to the i-th CPU of the list (round robin).
 * A device model then shares the CPU of the vCPU that sends it the most
 * ioreqs (checked once a second; the one --dm starts begins on vCPU 0's),
 * unless --dm-cpus pins the one --dm starts.  On one CPU a round trip is a
 * context switch; across two it is two wake-ups, which cost more here.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cpus.h"
#include "common/log-glib.h"
#include "hypervisor/hv.h"

#define HV_WAIT_SERVERS_MS_DEFAULT  10000
#define HV_DM_ARGS_MAX              64
#define HV_DM_RESTARTS_DEFAULT      3
#define HV_DM_RESTART_MS            10000   /* vCPUs wait this long for a restarted one */
#define HV_DM_KNOWN                 64      /* device model pids remembered (replaces, restarts) */
#define IOREQ_MAX_SERVERS_PLACED    64

struct hv_opts {
    char *image, *entry, *memory, *cmdline, *socket, *dm, *cpu, *cpus, *dm_cpus;
    char **modules;                 /* --module FILE[,ARGS], in order */
    char **dm_args;
    char **acpi_tables;             /* --acpi-table, in order */
    int vcpus, wait_servers, wait_ms, verbose, cpu_weight, cpu_cap, dm_restarts, keep_ms;
    gboolean eager, no_debug_ports, no_acpi, print_cpuid, no_pit;
};

struct hv_main {
    struct ferry_vm *vm;
    struct ioreq_router *router;
    /*
     * The device model ferry-hv supervises (--dm): the process that serves
     * its registration now, ferry-hv's child or, after a replace, a
     * successor that is not (followed by a pidfd; the router says who by
     * the kernel's word, server_moved).
     */
    pid_t dm_pid;
    int dm_pidfd;                   /* -1 unless dm_pid is not our child */
    bool dm_child;
    bool dm_spawned;
    /* Every pid that was the device model (spawned, or a successor followed): the others
     * reaped here are what replaced ones left (their launchers), adopted as subreaper. */
    pid_t dm_known[HV_DM_KNOWN];
    unsigned dm_nknown;
    uint32_t dm_server_id;          /* its registration (kept across replaces and restarts) */
    const char *dm_path;
    char **dm_args;
    int dm_restarts;                /* restarts left (--dm-restarts) */
    bool dm_restart_due;            /* its registration lost its process: start a fresh one */
    unsigned keep_ms;               /* --keep-servers: keep any lost registration this long */
    bool cgroup_on;                 /* --cpu-weight/--cpu-cap: m->cg is set up */
    struct hv_cgroup cg;
    int sigfd;
    int want_servers;               /* enabled servers needed before the guest starts */
    bool pinned;                    /* --cpus: vCPU i on vcpu_cpu[i] */
    int vcpu_cpu[HV_VCPUS_MAX];
    bool dm_fixed;                  /* --dm-cpus: the spawned device model stays there */
    cpu_set_t dm_cpus;
    bool follow;                    /* servers follow their busiest vCPU */
    struct { uint32_t id; int cpu; bool refused; } placed[IOREQ_MAX_SERVERS_PLACED];
    unsigned nr_placed;
    struct timespec last_place;
};

static void hv_shutdown_op(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    struct ferry_vm *vm = ((struct hv_main *)opaque)->vm;

    switch (reason) {
    case IOREQ_SHUTDOWN_POWEROFF:
        hv_vm_end(vm, code ? HV_END_DEBUG_EXIT : HV_END_POWEROFF, code);
        break;
    case IOREQ_SHUTDOWN_REBOOT:
        hv_vm_end(vm, HV_END_REBOOT, code);
        break;
    default:
        hv_vm_end(vm, HV_END_CRASH, code);
        break;
    }
}

static void hv_router_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_glib(NULL, level, msg);
}

static void hv_server_gone_op(void *opaque, const char *name, const char *why)
{
    struct ferry_vm *vm = ((struct hv_main *)opaque)->vm;

    if (atomic_load(&vm->stopping))
        return;                     /* teardown: every server goes */
    ferry_log(FERRY_LOG_WARNING, NULL, "ioreq server %s gone: %s; its ranges are unclaimed now, "
              "the guest keeps running", name, why);
}

static int hv_irqfd_op(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    return hv_vm_irqfd(((struct hv_main *)opaque)->vm, gsi, fd, resample_fd, assign);
}

static int hv_irq_line_op(void *opaque, uint32_t gsi, bool level)
{
    return hv_vm_irq_line(((struct hv_main *)opaque)->vm, gsi, level);
}

static int hv_msi_op(void *opaque, uint64_t address, uint32_t data)
{
    return hv_vm_signal_msi(((struct hv_main *)opaque)->vm, address, data);
}

static int hv_msi_route_op(void *opaque, uint64_t address, uint32_t data, int fd, bool assign,
                           uint32_t *gsi)
{
    int rc = hv_vm_msi_route(((struct hv_main *)opaque)->vm, address, data, fd, assign, gsi);

    if (rc == 0 && assign)
        ferry_log(FERRY_LOG_INFO, NULL, "msi 0x%llx/0x%x routed to gsi %u (irqfd)",
                  (unsigned long long)address, data, *gsi);
    return rc;
}

static int hv_memory_op(void *opaque, struct ioreq_msg_memory_reply *regions)
{
    return hv_vm_memory_regions(((struct hv_main *)opaque)->vm, regions);
}

static int hv_sleep_op(void *opaque, enum ioreq_sleep_state state, char *why, size_t why_len)
{
    return hv_vm_sleep(((struct hv_main *)opaque)->vm, state, why, why_len);
}

static void hv_dm_remember(struct hv_main *m, pid_t pid)
{
    m->dm_known[m->dm_nknown++ % HV_DM_KNOWN] = pid;
}

static bool hv_dm_known(const struct hv_main *m, pid_t pid)
{
    for (unsigned i = 0; i < HV_DM_KNOWN && i < m->dm_nknown; i++)
        if (m->dm_known[i] == pid)
            return true;
    return false;
}

static int hv_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * A registration's process died (its connection hung up).  The device model
 * ferry-hv started is started afresh (--dm-restarts times); meanwhile the
 * router keeps its registration and vCPUs that reach it wait.  Others are
 * kept --keep-servers ms for a restart of their own (systemd's Restart=).
 */
static unsigned hv_server_lost_op(void *opaque, uint32_t id, const char *name)
{
    struct hv_main *m = opaque;

    if (atomic_load(&m->vm->stopping))
        return 0;
    if (m->dm_spawned && id == m->dm_server_id) {
        if (m->dm_restarts <= 0) {
            ferry_log(FERRY_LOG_WARNING, NULL, "device model %s: its process is gone and no "
                      "restart is left (--dm-restarts)", name);
            return 0;
        }
        m->dm_restart_due = true;
        return HV_DM_RESTART_MS;
    }
    return m->keep_ms;
}

/* Server id is served by pid now (a replace, or a restarted server): follow it. */
static void hv_server_moved_op(void *opaque, uint32_t id, const char *name, int32_t pid)
{
    struct hv_main *m = opaque;

    if (!m->dm_spawned || id != m->dm_server_id || pid <= 0 || pid == m->dm_pid)
        return;
    if (m->dm_pidfd >= 0)
        close(m->dm_pidfd);
    /* Our children are reaped by SIGCHLD; this is a successor (its launcher's child). */
    m->dm_pidfd = hv_pidfd_open(pid);
    if (m->dm_pidfd < 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "device model %s: cannot follow pid %d: %s; its "
                  "end shows only as its registration's", name, (int)pid, strerror(errno));
    m->dm_pid = pid;
    m->dm_child = false;
    hv_dm_remember(m, pid);
    ferry_log(FERRY_LOG_INFO, NULL, "device model %s is pid %d now (not ferry-hv's child: "
              "followed by a pidfd; reaped here once its launcher is gone)", name, (int)pid);
}

static const struct ioreq_router_ops hv_router_ops = {
    .server_lost = hv_server_lost_op,
    .server_moved = hv_server_moved_op,
    .log = hv_router_log,
    .irqfd = hv_irqfd_op,
    .irq_line = hv_irq_line_op,
    .msi = hv_msi_op,
    .msi_route = hv_msi_route_op,
    .memory = hv_memory_op,
    .shutdown = hv_shutdown_op,
    .sleep = hv_sleep_op,
    .server_gone = hv_server_gone_op,
};

/* Runs PATH --ioreq-fd=N [args] with N one end of a seqpacket socketpair. */
static int hv_spawn_dm(struct hv_main *m, const char *path, char **args)
{
    int sv[2];
    char fdarg[32];
    char *argv[HV_DM_ARGS_MAX + 3];
    unsigned argc = 0;
    int rc;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: socketpair: %s", path, strerror(errno));
        return rc;
    }
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    argv[argc++] = (char *)path;
    argv[argc++] = fdarg;
    for (unsigned i = 0; args && args[i]; i++) {
        if (argc >= HV_DM_ARGS_MAX + 2) {
            ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: more than %d arguments", path,
                      HV_DM_ARGS_MAX);
            close(sv[0]);
            close(sv[1]);
            return -E2BIG;
        }
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: fork: %s", path, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);   /* ignored here; exec would pass that on */
        cpu_set_t first;
        CPU_ZERO(&first);
        if (m->pinned)
            CPU_SET(m->vcpu_cpu[0], &first);
        if ((m->dm_fixed || m->pinned) &&
            sched_setaffinity(0, sizeof(cpu_set_t), m->dm_fixed ? &m->dm_cpus : &first) < 0)
            fprintf(stderr, "ferry-hv: device model %s: cannot pin it: %s\n", path,
                    strerror(errno));
        int fl = fcntl(sv[1], F_GETFD);
        if (fl >= 0)
            fcntl(sv[1], F_SETFD, fl & ~FD_CLOEXEC);
        execv(path, argv);
        fprintf(stderr, "ferry-hv: device model %s: cannot run: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    m->dm_pid = pid;
    m->dm_child = true;
    hv_dm_remember(m, pid);
    if (m->dm_pidfd >= 0)
        close(m->dm_pidfd);
    m->dm_pidfd = -1;
    m->dm_spawned = true;
    if (m->cgroup_on) {
        char why[PATH_MAX + 128];

        rc = hv_cgroup_attach_dm(&m->cg, pid, why, sizeof(why));
        if (rc < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: %s", path, why);
            close(sv[0]);
            return rc;
        }
    }
    uint32_t id = 0;
    rc = ioreq_router_add_connection_id(m->router, sv[0], &id);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: cannot add its connection: %s",
                  path, strerror(-rc));
        close(sv[0]);
        return rc;
    }
    /* A restarted one takes the first one's registration over (server_moved). */
    if (!m->dm_server_id)
        m->dm_server_id = id;
    ferry_log(FERRY_LOG_INFO, NULL, "device model %s started pid=%d", path, (int)pid);
    return 0;
}

/*
 * Reap every child that has exited (device models, earlier ones too);
 * true once the supervised device model is gone.
 */
static bool hv_reap_dm(struct hv_main *m, bool quiet)
{
    int status;
    pid_t p;

    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        bool current = p == m->dm_pid;
        if (current)
            m->dm_pid = -1;
        if (quiet)
            continue;
        if (!current && !hv_dm_known(m, p)) {
            /* Orphaned to us (PR_SET_CHILD_SUBREAPER): a replaced device model's launcher, or
             * a remote QEMU's launcher or QEMU handed to a successor. */
            ferry_log(FERRY_LOG_DEBUG, NULL, "reaped pid=%d (left by a replaced device model), "
                      "status 0x%x", (int)p, status);
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            /* Replaced (ferry dm GUEST replace): its successor holds the registration. */
            ferry_log(FERRY_LOG_INFO, NULL, "device model pid=%d exited (status 0)", (int)p);
        else if (WIFEXITED(status))
            ferry_log(FERRY_LOG_WARNING, NULL, "device model pid=%d exited with status %d",
                      (int)p, WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            ferry_log(FERRY_LOG_WARNING, NULL, "device model pid=%d killed by signal %d%s",
                      (int)p, WTERMSIG(status),
                      WTERMSIG(status) == SIGSYS ? " (SIGSYS: a syscall its seccomp filter "
                      "forbids; docs/confinement.md)" : "");
    }
    /* A successor (not our child): its pidfd says when it is gone. */
    if (m->dm_pid > 0 && !m->dm_child && m->dm_pidfd >= 0) {
        struct pollfd pf = { .fd = m->dm_pidfd, .events = POLLIN };
        if (poll(&pf, 1, 0) > 0) {
            /* Replaced again (its successor's DONE may come later) or dead: its
             * registration's hang-up, not its exit, says which (server_lost). */
            if (!quiet)
                ferry_log(FERRY_LOG_INFO, NULL, "device model pid=%d (a successor, not "
                          "ferry-hv's child) has exited", (int)m->dm_pid);
            m->dm_pid = -1;
        }
    }
    if (m->dm_pid < 0 && m->dm_pidfd >= 0) {
        close(m->dm_pidfd);
        m->dm_pidfd = -1;
    }
    return m->dm_pid <= 0;
}

static void hv_handle_signals(struct hv_main *m)
{
    struct signalfd_siginfo si;

    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            hv_reap_dm(m, false);
        } else {
            ferry_log(FERRY_LOG_INFO, NULL, "signal %u: stopping the guest", si.ssi_signo);
            hv_vm_end(m->vm, HV_END_STOPPED, 0);
        }
    }
}

/*
 * Each server moves to the CPU of the vCPU that sent it the most ioreqs
 * since the last look (the main thread of its process: the one that serves
 * them).  Only with --cpus: unpinned vCPUs wander, and the scheduler places
 * both.
 */
static void hv_place_servers(struct hv_main *m)
{
    struct ioreq_router_load load[IOREQ_MAX_SERVERS_PLACED];
    unsigned n = ioreq_router_take_load(m->router, load, IOREQ_MAX_SERVERS_PLACED);

    for (unsigned i = 0; i < n; i++) {
        const struct ioreq_router_load *l = &load[i];
        if (!l->requests || l->pid <= 0 || l->pinned)
            continue;
        if (m->dm_fixed && l->pid == m->dm_pid)
            continue;
        unsigned k;
        for (k = 0; k < m->nr_placed && m->placed[k].id != l->server_id; k++)
            ;
        if (k == m->nr_placed) {
            if (k == IOREQ_MAX_SERVERS_PLACED)
                continue;
            m->placed[m->nr_placed++] = (__typeof__(m->placed[0])){ l->server_id, -1, false };
        }
        int cpu = m->vcpu_cpu[l->busiest_vcpu];
        if (m->placed[k].cpu == cpu || m->placed[k].refused)
            continue;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(l->pid, sizeof(set), &set) < 0) {
            ferry_log(FERRY_LOG_WARNING, NULL, "placement: cannot move ioreq server %u (%s) "
                      "pid %d to CPU %d: %s; it stays where it is", l->server_id, l->name,
                      (int)l->pid, cpu, strerror(errno));
            m->placed[k].refused = true;
            continue;
        }
        ferry_log(FERRY_LOG_INFO, NULL, "placement: ioreq server %u (%s) pid %d on CPU %d, "
                  "with vcpu %u (%llu of its %llu ioreqs)", l->server_id, l->name, (int)l->pid,
                  cpu, l->busiest_vcpu, (unsigned long long)l->busiest_requests,
                  (unsigned long long)l->requests);
        m->placed[k].cpu = cpu;
    }
}

/* Run the control loop until fn(m) is true or the guest ends; -ETIMEDOUT after ms. */
static int hv_loop(struct hv_main *m, bool (*until)(struct hv_main *), int ms)
{
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p[4] = {
            { .fd = m->sigfd, .events = POLLIN },
            { .fd = m->vm->done_fd, .events = POLLIN },
            { .fd = m->router ? ioreq_router_get_fd(m->router) : -1, .events = POLLIN },
            { .fd = m->dm_child ? -1 : m->dm_pidfd, .events = POLLIN },
        };
        if (until && until(m))
            return 0;
        if (until && m->dm_spawned && m->dm_pid < 0)
            return -ECHILD;         /* the device model died before it was ready */
        if (atomic_load(&m->vm->stopping))
            return -ECANCELED;
        int wait = 1000;
        if (ms >= 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
            if (el >= ms)
                return -ETIMEDOUT;
            wait = (int)(ms - el) < wait ? (int)(ms - el) : wait;
        }
        if (poll(p, 4, wait) < 0 && errno != EINTR)
            return -errno;
        /*
         * The router first: a device model's hang-up is there before its
         * SIGCHLD.  Every round: registrations kept for a restart expire.
         */
        if (m->router)
            ioreq_router_dispatch(m->router);
        if (p[0].revents)
            hv_handle_signals(m);
        if (p[3].revents)
            hv_reap_dm(m, false);
        if (m->dm_restart_due && !atomic_load(&m->vm->stopping)) {
            m->dm_restart_due = false;
            m->dm_restarts--;
            ferry_log(FERRY_LOG_WARNING, NULL, "device model %s: its process is gone; starting "
                      "a fresh one (its devices start from the config, reset; %d restart(s) "
                      "left)", m->dm_path, m->dm_restarts);
            if (hv_spawn_dm(m, m->dm_path, m->dm_args) < 0)
                ferry_log(FERRY_LOG_ERROR, NULL, "device model %s: cannot restart it; its "
                          "devices are gone when the kept registration expires", m->dm_path);
        }
        if (m->follow && m->router) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec > m->last_place.tv_sec) {
                m->last_place = t;
                hv_place_servers(m);
            }
        }
    }
}

static bool hv_servers_ready(struct hv_main *m)
{
    struct ioreq_router_stats st;

    ioreq_router_get_stats(m->router, &st);
    return st.enabled >= (unsigned)m->want_servers;
}

static int hv_exit_status(struct ferry_vm *vm)
{
    unsigned code = atomic_load(&vm->end_code);

    switch ((enum hv_end)atomic_load(&vm->end)) {
    case HV_END_POWEROFF:
    case HV_END_DEBUG_EXIT:
        if (code > FERRY_HV_EXIT_GUEST_MAX) {
            ferry_log(FERRY_LOG_WARNING, NULL, "guest exit code %u is above %d; reporting %d",
                      code, FERRY_HV_EXIT_GUEST_MAX, FERRY_HV_EXIT_GUEST_MAX);
            return FERRY_HV_EXIT_GUEST_MAX;
        }
        return (int)code;
    case HV_END_REBOOT: return FERRY_HV_EXIT_REBOOT;
    case HV_END_CRASH: return FERRY_HV_EXIT_CRASH;
    case HV_END_STOPPED: return FERRY_HV_EXIT_STOPPED;
    default: return FERRY_HV_EXIT_FAILURE;
    }
}

static const char *hv_end_name(int end)
{
    static const char *const names[] = { "none", "poweroff", "debug-exit", "reboot", "crash",
                                         "stopped", "error" };
    return end >= 0 && end <= HV_END_ERROR ? names[end] : "?";
}

static int kvm_error_status(int rc)
{
    switch (rc) {
    case -ENOENT: case -ENODEV: case -ENXIO: return FERRY_HV_EXIT_NO_KVM;
    case -EACCES: case -EPERM: return FERRY_HV_EXIT_KVM_ACCESS;
    case -ENOTSUP: return FERRY_HV_EXIT_KVM_CAP;
    default: return FERRY_HV_EXIT_FAILURE;
    }
}

int main(int argc, char **argv)
{
    struct hv_opts o = { .vcpus = 1, .wait_ms = HV_WAIT_SERVERS_MS_DEFAULT,
                         .dm_restarts = HV_DM_RESTARTS_DEFAULT,
                         .cpu_weight = -1, .cpu_cap = -1 };     /* -1: not given */
    GOptionEntry entries[] = {
        { "image", 'i', 0, G_OPTION_ARG_FILENAME, &o.image, "guest image", "FILE" },
        { "entry", 'e', 0, G_OPTION_ARG_STRING, &o.entry,
          "auto (default: pvh if the ELF has a PVH note, else multiboot if the image has a "
          "multiboot header), real, pvh or multiboot", "KIND" },
        { "memory", 'm', 0, G_OPTION_ARG_STRING, &o.memory, "guest RAM, K/M/G/T (default 64M)", "SIZE" },
        { "vcpus", 'c', 0, G_OPTION_ARG_INT, &o.vcpus, "number of vCPUs (default 1)", "N" },
        { "cpu-weight", 0, 0, G_OPTION_ARG_INT, &o.cpu_weight,
          "scheduling weight of the guest's vCPUs against other guests' (1..10000, default "
          "100: its own cgroup's cpu.weight, or cpu.shares N*1024/100)", "N" },
        { "cpu-cap", 0, 0, G_OPTION_ARG_INT, &o.cpu_cap,
          "at most this much host CPU for the guest, in percent of one CPU (1..6400)", "PERCENT" },
        { "cmdline", 0, 0, G_OPTION_ARG_STRING, &o.cmdline,
          "kernel command line (pvh, multiboot: after the image's name)", "S" },
        { "module", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.modules,
          "a module (initrd) with its arguments (repeatable, in order)",
          "FILE[,ARGS]" },
        { "cpu", 0, 0, G_OPTION_ARG_STRING, &o.cpu,
          "CPU model: host (KVM's supported CPUID), then ,-FEATURE or ,+FEATURE by "
          "/proc/cpuinfo names", "host[,+F|-F]..." },
        { "print-cpuid", 0, 0, G_OPTION_ARG_NONE, &o.print_cpuid,
          "list the CPUID the guest would get (with --cpu) and exit", NULL },
        { "ioreq-socket", 's', 0, G_OPTION_ARG_FILENAME, &o.socket,
          "listen for ioreq servers on this unix socket", "PATH" },
        { "dm", 0, 0, G_OPTION_ARG_FILENAME, &o.dm,
          "start this device model with --ioreq-fd=N", "PATH" },
        { "dm-arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.dm_args,
          "one more argument for the device model (repeatable)", "ARG" },
        { "dm-restarts", 0, 0, G_OPTION_ARG_INT, &o.dm_restarts,
          "start the --dm device model afresh this often when its process dies (default 3; "
          "0: its devices are gone)", "N" },
        { "keep-servers", 0, 0, G_OPTION_ARG_INT, &o.keep_ms,
          "keep the registration of a server whose process died this long for a restarted one "
          "(systemd's Restart=); vCPUs wait meanwhile (default 0: detach it)", "MS" },
        { "wait-servers", 'w', 0, G_OPTION_ARG_INT, &o.wait_servers,
          "start the guest once N servers (besides --dm) are enabled", "N" },
        { "wait-timeout", 0, 0, G_OPTION_ARG_INT, &o.wait_ms,
          "give up waiting for servers after MS milliseconds (default 10000)", "MS" },
        { "eager-memory", 0, 0, G_OPTION_ARG_NONE, &o.eager,
          "register all of guest RAM with KVM up front", NULL },
        { "no-acpi", 0, 0, G_OPTION_ARG_NONE, &o.no_acpi,
          "no ACPI tables for the guest", NULL },
        { "no-pit", 0, 0, G_OPTION_ARG_NONE, &o.no_pit,
          "no in-kernel PIT (8254) for the guest", NULL },
        { "acpi-table", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.acpi_tables,
          "one more ACPI table (a complete .aml/.dat: SSDT, SLIC, ...; repeatable)", "FILE" },
        { "no-debug-ports", 0, 0, G_OPTION_ARG_NONE, &o.no_debug_ports,
          "no in-process debug console (0xe9) and debug exit (0x501) ports", NULL },
        { "cpus", 0, 0, G_OPTION_ARG_STRING, &o.cpus,
          "pin vCPU i to the i-th CPU of LIST (0,2-3); device models follow the vCPU that "
          "drives them most", "LIST" },
        { "dm-cpus", 0, 0, G_OPTION_ARG_STRING, &o.dm_cpus,
          "pin the device model --dm starts to these CPUs instead", "LIST" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "more log (info)", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- run one HVM guest on KVM");
    g_autoptr(GError) err = NULL;
    struct hv_main m = { .dm_pid = -1, .dm_pidfd = -1, .sigfd = -1 };
    struct ferry_vm_config vcfg = { .log = ferry_log_glib };
    struct hv_load_config lc = { 0 };
    struct hv_module modules[HV_MODULES_MAX];
    struct hv_cpu_model cpu;
    struct hv_boot boot;
    uint64_t needed_end = 0;
    char why[512];
    int status = FERRY_HV_EXIT_FAILURE;
    int rc;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx,
        "Exit status: the guest's debug exit code (0..63), 70 crash, 71 reboot, 72 stopped,\n"
        "73 no /dev/kvm, 74 /dev/kvm not accessible, 75 KVM lacks a capability, 76 bad image.");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "ferry-hv: %s\n", err->message);
        return FERRY_HV_EXIT_USAGE;
    }
    ferry_log_init("ferry-hv", o.verbose ? 1 : 0);
    if (hv_cpu_model_parse(o.cpu ? o.cpu : "host", &cpu, why, sizeof(why)) < 0) {
        fprintf(stderr, "ferry-hv: --cpu: %s\n", why);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (!o.image && !o.print_cpuid) {
        fprintf(stderr, "ferry-hv: --image is required (see --help)\n");
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    lc.image = o.image;
    lc.cmdline = o.cmdline;
    for (unsigned i = 0; o.modules && o.modules[i]; i++) {
        if (i >= HV_MODULES_MAX) {
            fprintf(stderr, "ferry-hv: --module: more than %d modules\n", HV_MODULES_MAX);
            status = FERRY_HV_EXIT_USAGE;
            goto out;
        }
        if (hv_module_parse(o.modules[i], &modules[i]) < 0) {
            fprintf(stderr, "ferry-hv: --module '%s': no file name before the comma\n",
                    o.modules[i]);
            status = FERRY_HV_EXIT_USAGE;
            goto out;
        }
        lc.nr_modules = i + 1;
    }
    lc.modules = modules;
    lc.no_acpi = o.no_acpi;
    lc.acpi_tables = (const char *const *)o.acpi_tables;
    if (o.no_acpi && o.acpi_tables) {
        fprintf(stderr, "ferry-hv: --acpi-table %s: the guest has no ACPI tables (--no-acpi)\n",
                o.acpi_tables[0]);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (!o.entry || !strcmp(o.entry, "auto")) {
        lc.entry = HV_ENTRY_AUTO;
    } else if (!strcmp(o.entry, "pvh")) {
        lc.entry = HV_ENTRY_PVH;
    } else if (!strcmp(o.entry, "real")) {
        lc.entry = HV_ENTRY_REAL;
    } else if (!strcmp(o.entry, "multiboot")) {
        lc.entry = HV_ENTRY_MULTIBOOT;
    } else {
        fprintf(stderr, "ferry-hv: --entry %s: must be auto, real, pvh or multiboot\n", o.entry);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    vcfg.memory = 64ull << 20;
    if (o.memory && hv_parse_size(o.memory, &vcfg.memory) < 0) {
        fprintf(stderr, "ferry-hv: --memory %s: not a size; give " HV_MEMORY_RANGE_TEXT
                " (e.g. 64M, 4G, 1T)\n", o.memory);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (hv_memory_check(vcfg.memory, why, sizeof(why)) < 0) {
        fprintf(stderr, "ferry-hv: --memory %s: %s\n", o.memory, why);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (o.vcpus < 1 || o.vcpus > HV_VCPUS_MAX) {
        fprintf(stderr, "ferry-hv: --vcpus %d: must be 1..%d\n", o.vcpus, HV_VCPUS_MAX);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (o.cpu_weight != -1 && (o.cpu_weight < 1 || o.cpu_weight > HV_CPU_WEIGHT_MAX)) {
        fprintf(stderr, "ferry-hv: --cpu-weight %d: must be 1..%d\n", o.cpu_weight,
                HV_CPU_WEIGHT_MAX);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (o.cpu_cap != -1 && (o.cpu_cap < 1 || o.cpu_cap > HV_CPU_CAP_MAX)) {
        fprintf(stderr, "ferry-hv: --cpu-cap %d: must be 1..%d (percent of one host CPU)\n",
                o.cpu_cap, HV_CPU_CAP_MAX);
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    if (o.wait_servers < 0 || o.wait_ms < 0 || o.dm_restarts < 0 || o.keep_ms < 0) {
        fprintf(stderr, "ferry-hv: --wait-servers, --wait-timeout, --dm-restarts and "
                "--keep-servers must not be negative\n");
        status = FERRY_HV_EXIT_USAGE;
        goto out;
    }
    vcfg.nr_vcpus = (unsigned)o.vcpus;
    vcfg.eager_memory = o.eager;
    vcfg.no_pit = o.no_pit;
    if (o.cpus) {
        cpu_set_t set;
        if (ferry_cpus_parse(o.cpus, &set, why, sizeof(why)) < 0) {
            fprintf(stderr, "ferry-hv: --cpus: %s\n", why);
            status = FERRY_HV_EXIT_USAGE;
            goto out;
        }
        m.pinned = true;
        m.follow = true;
        for (int i = 0; i < o.vcpus; i++)
            m.vcpu_cpu[i] = ferry_cpus_nth(&set, (unsigned)i);
    }
    if (o.dm_cpus) {
        if (ferry_cpus_parse(o.dm_cpus, &m.dm_cpus, why, sizeof(why)) < 0) {
            fprintf(stderr, "ferry-hv: --dm-cpus: %s\n", why);
            status = FERRY_HV_EXIT_USAGE;
            goto out;
        }
        if (!o.dm) {
            fprintf(stderr, "ferry-hv: --dm-cpus %s: no device model to pin (give --dm)\n",
                    o.dm_cpus);
            status = FERRY_HV_EXIT_USAGE;
            goto out;
        }
        m.dm_fixed = true;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /*
     * A replaced device model's launcher and its successor lose their parent (it exits):
     * they come to us, not init, and are reaped here (SIGCHLD), and at the end waited for.
     */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "PR_SET_CHILD_SUBREAPER: %s; processes a replaced "
                  "device model leaves go to init", strerror(errno));
    m.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m.sigfd < 0) {
        fprintf(stderr, "ferry-hv: signalfd: %s\n", strerror(errno));
        return FERRY_HV_EXIT_FAILURE;
    }

    rc = hv_vm_create(&vcfg, &m.vm);
    if (rc) {
        status = kvm_error_status(rc);
        goto out;
    }
    rc = hv_cpuid_build(m.vm->kvm_fd, &cpu, &m.vm->cpuid, why, sizeof(why));
    if (rc) {
        ferry_log(FERRY_LOG_ERROR, NULL, "--cpu %s: %s", o.cpu ? o.cpu : "host", why);
        status = rc == -ENOTSUP ? FERRY_HV_EXIT_USAGE : FERRY_HV_EXIT_FAILURE;
        goto out;
    }
    if (o.print_cpuid) {
        hv_cpuid_print(m.vm->cpuid, stdout);
        status = fflush(stdout) == 0 ? FERRY_HV_EXIT_OK : FERRY_HV_EXIT_FAILURE;
        goto out;
    }
    if (o.cpu_weight != -1 || o.cpu_cap != -1) {
        char cwhy[PATH_MAX + 128];

        rc = hv_cgroup_setup(&m.cg, o.cpu_weight > 0 ? (unsigned)o.cpu_weight : 0,
                             o.cpu_cap > 0 ? (unsigned)o.cpu_cap : 0, cwhy, sizeof(cwhy));
        if (rc) {
            ferry_log(FERRY_LOG_ERROR, NULL, "--cpu-weight/--cpu-cap: %s", cwhy);
            goto out;
        }
        m.cgroup_on = true;
        ferry_log(FERRY_LOG_INFO, NULL, "cgroup v%d: guest in %s, device model in %s",
                  m.cg.version, m.cg.guest, m.cg.dm);
    }
    rc = hv_io_init(m.vm);
    if (!rc && !o.no_debug_ports)
        rc = hv_io_add_debug_ports(m.vm, STDOUT_FILENO);
    if (rc)
        goto out;
    rc = hv_load(m.vm, &lc, &boot, &needed_end, why, sizeof(why));
    if (rc) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot load the guest: %s", why);
        status = FERRY_HV_EXIT_BAD_IMAGE;
        goto out;
    }
    rc = hv_vm_commit_memory(m.vm, needed_end);
    if (!rc)
        rc = hv_vcpus_create(m.vm);
    if (!rc)
        rc = hv_vcpus_setup_boot(m.vm, &boot);
    if (!rc && boot.entry == HV_ENTRY_MULTIBOOT) {
        rc = hv_bios_chips_set(m.vm, why, sizeof(why));
        if (rc)
            ferry_log(FERRY_LOG_ERROR, NULL, "multiboot: %s", why);
    }
    if (rc)
        goto out;

    struct ioreq_router_config rcfg = {
        .nr_vcpus = vcfg.nr_vcpus, .ops = &hv_router_ops, .opaque = &m,
    };
    rc = ioreq_router_create(&rcfg, &m.router);
    if (rc) {
        ferry_log(FERRY_LOG_ERROR, NULL, "ioreq router: %s", strerror(-rc));
        goto out;
    }
    m.vm->router = m.router;
    if (o.socket) {
        rc = ioreq_router_listen(m.router, o.socket);
        if (rc) {
            ferry_log(FERRY_LOG_ERROR, NULL, "ioreq socket %s: %s", o.socket, strerror(-rc));
            goto out;
        }
    }
    m.want_servers = o.wait_servers;
    m.keep_ms = (unsigned)o.keep_ms;
    m.dm_restarts = o.dm_restarts;
    m.dm_path = o.dm;
    m.dm_args = o.dm_args;
    if (o.dm) {
        rc = hv_spawn_dm(&m, o.dm, o.dm_args);
        if (rc)
            goto out;
        m.want_servers++;
    }
    if (m.want_servers) {
        rc = hv_loop(&m, hv_servers_ready, o.wait_ms);
        if (rc == -ETIMEDOUT) {
            ferry_log(FERRY_LOG_ERROR, NULL, "waited %d ms for %d ioreq server(s) to enable; "
                      "giving up", o.wait_ms, m.want_servers);
            goto out;
        }
        if (rc == -ECHILD) {
            ferry_log(FERRY_LOG_ERROR, NULL, "device model %s exited before its ioreq server "
                      "was enabled", o.dm);
            goto out;
        }
        if (rc)
            goto ended;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "guest starts: %s entry 0x%llx, %llu MiB, %u vcpu(s)",
              hv_entry_name(boot.entry), (unsigned long long)boot.rip,
              (unsigned long long)(vcfg.memory >> 20), vcfg.nr_vcpus);
    rc = hv_vcpus_start(m.vm);
    if (rc)
        goto out;
    for (unsigned i = 0; m.pinned && i < m.vm->nr_vcpus; i++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(m.vcpu_cpu[i], &one);
        int perr = pthread_setaffinity_np(m.vm->vcpus[i].thread, sizeof(one), &one);
        if (perr)
            ferry_log(FERRY_LOG_WARNING, NULL, "placement: cannot pin vcpu %u to CPU %d: %s",
                      i, m.vcpu_cpu[i], strerror(perr));
    }
    if (m.pinned || m.dm_fixed) {
        char dmc[128] = "";
        if (m.dm_fixed)
            ferry_cpus_format(&m.dm_cpus, dmc, sizeof(dmc));
        for (unsigned i = 0; m.pinned && i < m.vm->nr_vcpus; i++)
            ferry_log(FERRY_LOG_INFO, NULL, "placement: vcpu %u on CPU %d", i, m.vcpu_cpu[i]);
        ferry_log(FERRY_LOG_INFO, NULL, "placement: device model %s%s", m.dm_fixed ? "on CPUs " :
                  "follows the vCPU that sends it the most ioreqs", dmc);
    }
    hv_loop(&m, NULL, -1);
ended:
    hv_vcpus_stop(m.vm);
    status = hv_exit_status(m.vm);
    ferry_log(FERRY_LOG_INFO, NULL, "guest ended: %s code=%u; exit status %d; "
              "lazily registered memslots: %u", hv_end_name(atomic_load(&m.vm->end)),
              atomic_load(&m.vm->end_code), status, atomic_load(&m.vm->lazy_registered));
    hv_io_log_unclaimed(m.vm);
    if (m.router) {
        struct ioreq_router_stats st;
        ioreq_router_get_stats(m.router, &st);
        ferry_log(FERRY_LOG_INFO, NULL, "ioreqs: sent=%llu posted=%llu unclaimed_reads=%llu "
                  "unclaimed_writes=%llu failed=%llu rep_sent=%llu rep_elements=%llu "
                  "doorbells=%llu posted_quiet=%llu", (unsigned long long)st.sent,
                  (unsigned long long)st.posted, (unsigned long long)st.unclaimed_reads,
                  (unsigned long long)st.unclaimed_writes, (unsigned long long)st.failed,
                  (unsigned long long)st.rep_sent, (unsigned long long)st.rep_elements,
                  (unsigned long long)st.doorbells, (unsigned long long)st.posted_quiet);
    }
out:
    if (m.vm)
        hv_vcpus_stop(m.vm);
    if (m.router) {
        ioreq_router_destroy(m.router);
        m.router = NULL;        /* hv_reap_dm below asks it for stats otherwise */
        m.vm->router = NULL;
    }
    if (m.dm_pid > 0) {
        /* The device model sees its socket hang up and exits by itself. */
        for (int i = 0; i < 300 && !hv_reap_dm(&m, true); i++)
            usleep(10000);
        if (m.dm_pid > 0) {
            ferry_log(FERRY_LOG_WARNING, NULL, "device model pid=%d still running; killing it",
                      (int)m.dm_pid);
            if (m.dm_child) {
                kill(m.dm_pid, SIGKILL);
                waitpid(m.dm_pid, NULL, 0);
            } else if (m.dm_pidfd >= 0) {
                /* Not our child: by its pidfd, so that a reused pid is never hit. */
                (void)syscall(SYS_pidfd_send_signal, m.dm_pidfd, SIGKILL, NULL, 0);
            }
        }
    }
    (void)hv_reap_dm(&m, true);     /* earlier device models (restarted, replaced) */
    /* What device models left to us (launchers, the QEMUs they ran): they end with the last
     * device model (PR_SET_PDEATHSIG, or their socket's hang-up).  Nothing outlives ferry-hv. */
    for (int i = 0; i < 500; i++) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p < 0)
            break;      /* ECHILD: none left */
        if (p == 0)
            usleep(10000);
    }
    if (waitpid(-1, NULL, WNOHANG) >= 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "processes left by the device model still run after "
                  "5 s; init inherits them");
    if (m.dm_pidfd >= 0)
        close(m.dm_pidfd);
    if (m.cgroup_on && hv_cgroup_cleanup(&m.cg) < 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "could not remove the cgroups %s and %s", m.cg.guest,
                  m.cg.dm);
    if (m.vm) {
        hv_io_fini(m.vm);
        hv_vm_destroy(m.vm);
    }
    if (m.sigfd >= 0)
        close(m.sigfd);
    g_free(o.image);
    g_free(o.entry);
    g_free(o.memory);
    g_free(o.cmdline);
    g_strfreev(o.modules);
    g_free(o.cpu);
    g_free(o.cpus);
    g_free(o.dm_cpus);
    g_free(o.socket);
    g_free(o.dm);
    g_strfreev(o.dm_args);
    g_strfreev(o.acpi_tables);
    return status;
}
