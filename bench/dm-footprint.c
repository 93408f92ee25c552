// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/dm-footprint: the memory of an idle ferry-dm, against a baseline
 * measured in the same run: a process that links exactly ferry-dm's
 * libraries and idles in a libevent loop (dm-footprint-idle), so that the
 * difference is Ferry's own memory and the baseline the libraries' and the
 * C runtime's.
 *
 * Processes, each started REPS times, interleaved, measured after IDLE
 * seconds of idleness from /proc/PID/smaps_rollup (Rss, Pss, private =
 * Private_Clean + Private_Dirty, Anonymous), medians:
 *   baseline           dm-footprint-idle: ferry-dm's libraries, idle
 *   baseline+json      the same after one use of jansson as ferry-dm's
 *                      prewarm makes (hash seeded, parse, build, generate)
 *   ferry-dm           behind an ioreq router in this process
 *                      (--ioreq-fd), default devices, confined as deployed
 *   ferry-dm+usb+qemu  the same with the USB service on (--qmp to an idle
 *                      QEMU, -machine none; no host device to serve, so
 *                      libusb's context and hotplug thread but no endpoint)
 *                      and one QEMU-hosted device (rtl8139 in its own QEMU,
 *                      behind ferry-dm's launcher process)
 *   ... MALLOC_ARENA_MAX=1  the last one with one malloc arena (the libusb
 *                      thread otherwise gets its own)
 * Differences follow, the goals of issue 15 (idle RSS <= 5 MiB, private <=
 * 1 MiB), and the ratio ferry-dm / baseline (private) on the last line.
 * PSS depends on what else maps the same libraries at that moment.
 *
 *   build/bench/dm-footprint [REPS] [IDLE_SECONDS] [maps]   (root: ferry-dm confines itself)
 * maps: also list the baseline's and ferry-dm's largest mappings.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ioreq/ioreq.h"
#include "bench/bench.h"

#define COM1 0x3f8
#define REPS_MAX 15

enum { M_RSS, M_PSS, M_PRIV, M_ANON, M_THREADS, M_N };
enum { P_BASE, P_BASE_JSON, P_DM, P_DM_USB, P_DM_USB_ARENA, P_N };

static const char *const p_name[P_N] = {
    "baseline: ferry-dm's libraries, idle",
    "baseline + jansson used once",
    "ferry-dm, default devices",
    "ferry-dm, + USB service + QEMU device",
    "  the same, MALLOC_ARENA_MAX=1",
};

struct proc {
    pid_t pid;
    int in_w;                   /* idle programs: their stdin */
    struct ioreq_router *r;     /* ferry-dm: its router */
    pthread_t thread;
    atomic_bool stop;
};

static char dm_path[4096], idle_path[4096];
static char qmp_path[256];

static void *router_thread(void *arg)
{
    struct proc *p = arg;
    struct pollfd pf = { .fd = ioreq_router_get_fd(p->r), .events = POLLIN };

    while (!atomic_load(&p->stop))
        if (poll(&pf, 1, 20) > 0)
            ioreq_router_dispatch(p->r);
    return NULL;
}

static const struct ioreq_router_ops router_ops = { 0 };

static int start_dm(struct proc *p, bool usb, bool arena1)
{
    struct ioreq_router_config cfg = { .nr_vcpus = 1, .ops = &router_ops };
    char fdarg[32], qmparg[300];
    int sv[2];

    memset(p, 0, sizeof(*p));
    p->in_w = -1;
    if (ioreq_router_create(&cfg, &p->r) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
        ioreq_router_add_connection(p->r, sv[0]) < 0)
        return -1;
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    snprintf(qmparg, sizeof(qmparg), "--qmp=%s", qmp_path);
    p->pid = fork();
    if (p->pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        dup2(null, 2);
        fcntl(sv[1], F_SETFD, 0);
        if (arena1)
            setenv("MALLOC_ARENA_MAX", "1", 1);
        if (usb)
            execl(dm_path, dm_path, fdarg, qmparg, "--serial=null",
                  "--device=qemu,id=nic0,device=rtl8139,addr=6", (char *)NULL);
        else
            execl(dm_path, dm_path, fdarg, "--serial=null", (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    if (pthread_create(&p->thread, NULL, router_thread, p))
        return -1;
    for (int i = 0; i < 20000; i++) {
        ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = COM1 + 5, .size = 1, .count = 1,
                        .dir = IOREQ_READ };

        if (ioreq_router_send(p->r, 0, &req) == IOREQ_SENT)
            return 0;
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            return -1;
        }
        usleep(1000);
    }
    return -1;
}

static int start_idle(struct proc *p, const char *path, const char *arg)
{
    int in[2], out[2];
    char buf[16] = "";
    FILE *f;

    memset(p, 0, sizeof(*p));
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -1;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(path, path, arg, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in_w = in[1];
    f = fdopen(out[0], "r");
    if (!f || !fgets(buf, sizeof(buf), f) || strncmp(buf, "ready", 5)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static void stop(struct proc *p)
{
    if (p->in_w >= 0)
        close(p->in_w);
    else if (p->pid > 0)
        kill(p->pid, SIGTERM);
    if (p->pid > 0)
        waitpid(p->pid, NULL, 0);
    if (p->r) {
        atomic_store(&p->stop, true);
        pthread_join(p->thread, NULL);
        ioreq_router_destroy(p->r);
    }
}

/* smaps_rollup and status of pid, in KiB (threads: a count) */
static int measure(pid_t pid, double *m)
{
    char path[64], line[256];
    unsigned long v;
    FILE *f;

    memset(m, 0, sizeof(*m) * M_N);
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Rss: %lu", &v) == 1)
            m[M_RSS] = (double)v;
        else if (sscanf(line, "Pss: %lu", &v) == 1)
            m[M_PSS] = (double)v;
        else if (sscanf(line, "Private_Clean: %lu", &v) == 1 ||
                 sscanf(line, "Private_Dirty: %lu", &v) == 1)
            m[M_PRIV] += (double)v;
        else if (sscanf(line, "Anonymous: %lu", &v) == 1)
            m[M_ANON] = (double)v;
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r"))) {
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "Threads: %lu", &v) == 1)
                m[M_THREADS] = (double)v;
        fclose(f);
    }
    return 0;
}

/* Per mapped file (or [heap], [anon]...): RSS and private KiB of pid, the
 * largest first: where the figure comes from. */
static void print_maps(pid_t pid, const char *who)
{
    char path[64], line[512], name[256] = "";
    struct row { char name[256]; unsigned long rss, priv; } rows[256];
    int n = 0, cur = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long v, lo, hi;
        char perms[8], *sp;

        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
            sp = strrchr(line, ' ');
            snprintf(name, sizeof(name), "%s", sp && sp[1] != '\n' ? sp + 1 : "[anon]\n");
            name[strcspn(name, "\n")] = 0;
            if (!name[0])
                snprintf(name, sizeof(name), "[anon]");
            for (cur = 0; cur < n && strcmp(rows[cur].name, name); cur++)
                ;
            if (cur == n && n < 256) {
                snprintf(rows[n].name, sizeof(rows[n].name), "%s", name);
                rows[n].rss = rows[n].priv = 0;
                n++;
            }
            if (cur >= 256)
                cur = -1;
        } else if (cur >= 0 && sscanf(line, "Rss: %lu", &v) == 1) {
            rows[cur].rss += v;
        } else if (cur >= 0 && (sscanf(line, "Private_Clean: %lu", &v) == 1 ||
                                sscanf(line, "Private_Dirty: %lu", &v) == 1)) {
            rows[cur].priv += v;
        }
    }
    fclose(f);
    printf("%s: mappings by RSS (KiB rss / private)\n", who);
    for (int k = 0; k < 14; k++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (rows[i].rss && (best < 0 || rows[i].rss > rows[best].rss))
                best = i;
        if (best < 0)
            break;
        printf("  %6lu %6lu  %s\n", rows[best].rss, rows[best].priv, rows[best].name);
        rows[best].rss = 0;
    }
}

/* The private and PSS KiB of pid's direct children (ferry-dm's QEMU launcher). */
static double children_private(pid_t pid, int *n, double *pss)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    double sum = 0;

    *n = 0;
    *pss = 0;
    while (d && (e = readdir(d))) {
        char path[300], buf[512], *rp;
        int ppid = -1;
        FILE *f;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
            sscanf(rp + 2, "%*c %d", &ppid);
        fclose(f);
        if (ppid == pid) {
            double m[M_N];
            if (measure(atoi(e->d_name), m) == 0) {
                sum += m[M_PRIV];
                *pss += m[M_PSS];
                (*n)++;
            }
        }
    }
    if (d)
        closedir(d);
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void paths(void)
{
    char self[4000];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    self[len > 0 ? len : 0] = 0;
    slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(dm_path, sizeof(dm_path), "%s/../devmodel/ferry-dm", self);
    snprintf(idle_path, sizeof(idle_path), "%s/dm-footprint-idle", self);
}

/* An idle QEMU for the USB service's QMP connection. */
static pid_t start_qemu(const char *dir)
{
    char chardev[300];
    struct stat st;
    pid_t pid;

    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", dir);
    snprintf(chardev, sizeof(chardev), "unix:%s,server=on,wait=off", qmp_path);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none", "-nodefaults",
               "-display", "none", "-S", "-qmp", chardev, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000 && stat(qmp_path, &st) < 0; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    return stat(qmp_path, &st) == 0 ? pid : -1;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    unsigned idle_s = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    static double v[P_N][M_N][REPS_MAX];
    double med[P_N][M_N], launcher = 0, launcher_pss = 0;
    bool maps = argc > 3 && !strcmp(argv[3], "maps");
    char dir[] = "/tmp/ferry-dm-footprint.XXXXXX";
    bool have[P_N] = { 0 };
    int nl = 0;
    pid_t qemu;

    if (reps < 1 || reps > REPS_MAX || idle_s < 1) {
        fprintf(stderr, "usage: dm-footprint [REPS 1..%d] [IDLE_SECONDS]\n", REPS_MAX);
        return 2;
    }
    paths();
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir))
        return 1;
    qemu = start_qemu(dir);
    bench_print_header();
    printf("method: %d repetitions, interleaved, each process measured after %u s idle, "
           "medians; KiB from /proc/PID/smaps_rollup\n", reps, idle_s);
    if (qemu < 0)
        printf("no qemu-system-x86_64: the USB + QEMU device lines are left out\n");
    for (int i = 0; i < reps; i++) {
        for (int k = 0; k < P_N; k++) {
            struct proc p;
            int rc;

            if (k >= P_DM_USB && qemu < 0)
                continue;
            switch (k) {
            case P_BASE: rc = start_idle(&p, idle_path, "libs"); break;
            case P_BASE_JSON: rc = start_idle(&p, idle_path, "json"); break;
            case P_DM: rc = start_dm(&p, false, false); break;
            default: rc = start_dm(&p, true, k == P_DM_USB_ARENA); break;
            }
            if (rc < 0) {
                fprintf(stderr, "dm-footprint: cannot start '%s'%s\n", p_name[k],
                        k >= P_DM ? " (root? the user 'ferry' of scripts/setup?)" : "");
                stop(&p);
                return 1;
            }
            sleep(idle_s);
            double m[M_N];
            if (measure(p.pid, m) < 0) {
                fprintf(stderr, "dm-footprint: cannot read /proc/%d/smaps_rollup\n", (int)p.pid);
                stop(&p);
                return 1;
            }
            if (k == P_DM_USB && i == 0)
                launcher = children_private(p.pid, &nl, &launcher_pss);
            if (maps && i == 0 && (k == P_DM || k == P_BASE))
                print_maps(p.pid, p_name[k]);
            for (int j = 0; j < M_N; j++)
                v[k][j][i] = m[j];
            have[k] = true;
            stop(&p);
        }
    }
    if (qemu > 0) {
        kill(qemu, SIGTERM);
        waitpid(qemu, NULL, 0);
    }
    unlink(qmp_path);
    rmdir(dir);

    printf("%-42s %9s %9s %12s %9s %8s\n", "process", "RSS KiB", "PSS KiB", "private KiB",
           "anon KiB", "threads");
    for (int k = 0; k < P_N; k++) {
        if (!have[k])
            continue;
        for (int j = 0; j < M_N; j++)
            med[k][j] = median(v[k][j], reps);
        printf("%-42s %9.0f %9.0f %12.0f %9.0f %8.0f\n", p_name[k], med[k][M_RSS],
               med[k][M_PSS], med[k][M_PRIV], med[k][M_ANON], med[k][M_THREADS]);
    }
    if (have[P_DM_USB])
        printf("(ferry-dm's QEMU launcher, its forked child: %d process(es), %.0f KiB private, "
               "PSS %.0f KiB; pages both still share after the fork count as shared, not "
               "private: PSS of the two %.0f KiB; the QEMU it runs is not counted)\n", nl,
               launcher, launcher_pss, med[P_DM_USB][M_PSS] + launcher_pss);
#define DIFF(label, a, b)                                                                   \
    printf("%-42s RSS %+6.0f  PSS %+6.0f  private %+6.0f  anon %+6.0f KiB\n", label,        \
           med[a][M_RSS] - med[b][M_RSS], med[a][M_PSS] - med[b][M_PSS],                   \
           med[a][M_PRIV] - med[b][M_PRIV], med[a][M_ANON] - med[b][M_ANON])
    DIFF("Ferry's own (ferry-dm - baseline)", P_DM, P_BASE);
    DIFF("JSON used (+jansson - baseline)", P_BASE_JSON, P_BASE);
    if (have[P_DM_USB]) {
        DIFF("USB service + QEMU device (vs default)", P_DM_USB, P_DM);
        DIFF("MALLOC_ARENA_MAX=1 (vs the same without)", P_DM_USB_ARENA, P_DM_USB);
    }
    printf("goal (issue 15): idle RSS <= 5120 KiB: %.0f KiB (%s); private <= 1024 KiB: %.0f KiB "
           "(%s)\n", med[P_DM][M_RSS], med[P_DM][M_RSS] <= 5120 ? "met" : "not met",
           med[P_DM][M_PRIV], med[P_DM][M_PRIV] <= 1024 ? "met" : "not met");
    printf("ratio ferry-dm (default devices) / baseline (same libraries, idle), private: %.2f\n",
           med[P_DM][M_PRIV] / med[P_BASE][M_PRIV]);
    return 0;
}
