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
 * Private_Clean + Private_Dirty, each also alone, Anonymous), medians:
 *   baseline           dm-footprint-idle: ferry-dm's libraries, idle
 *   baseline+json      the same after one use of jansson as ferry-dm's
 *                      prewarm makes (hash seeded, parse, build, generate)
 *   ferry-dm           behind an ioreq router in this process
 *                      (--ioreq-fd), default devices, confined as deployed
 *   a second one       the same, measured while a first one idles beside
 *                      it: what one more guest's ferry-dm costs
 *   vs=PATH            (optional) another build's ferry-dm, default
 *                      devices, measured alike: a before/after in one run
 *   ferry-dm+usb+qemu  the same with the USB service on (--qmp to an idle
 *                      QEMU, -machine none; no host device to serve, so
 *                      libusb's context and hotplug thread but no endpoint)
 *                      and one QEMU-hosted device (rtl8139 in its own QEMU,
 *                      behind ferry-dm's launcher process)
 *   ... MALLOC_ARENA_MAX=1  the last one with one malloc arena (the libusb
 *                      thread otherwise gets its own)
 * Differences follow, the goals of issue 15 (idle RSS <= 5 MiB, private
 * dirty <= 1 MiB), and a ratio on the last line: this build / vs=PATH's
 * with vs=, else ferry-dm / baseline (private dirty).
 *
 * Why private dirty is the figure: private clean pages are file pages
 * (text, read-only data) that no other process maps at that moment; they
 * become shared as soon as another process maps the same file (a second
 * ferry-dm: see its line), stay in the page cache when ferry-dm exits and
 * can be dropped at any time without I/O but a re-read.  So private clean
 * swings with what else runs (1.2 MiB on a quiet machine, 0.4 on a busy
 * one) while dirty pages are ferry-dm's own whatever runs beside it.  PSS
 * depends on the same.
 *
 *   build/bench/dm-footprint [REPS] [IDLE_SECONDS] [maps] [vs=FERRY_DM]
 *   (root: ferry-dm confines itself)
 * maps: also list the baseline's and ferry-dm's mappings with private
 * pages (clean and dirty), per file and permissions.
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

enum { M_RSS, M_PSS, M_PRIV, M_DIRTY, M_CLEAN, M_ANON, M_THREADS, M_N };
enum { P_BASE, P_BASE_JSON, P_DM, P_DM_SECOND, P_DM_OTHER, P_DM_USB, P_DM_USB_ARENA, P_N };

static const char *const p_name[P_N] = {
    "baseline: ferry-dm's libraries, idle",
    "baseline + jansson used once",
    "ferry-dm, default devices",
    "  a second one beside the first",
    "ferry-dm of vs=PATH, default devices",
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
static const char *other_dm;        /* vs=PATH: another build's ferry-dm, measured alike */
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

static int start_dm(struct proc *p, const char *path, bool usb, bool arena1)
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
            execl(path, path, fdarg, qmparg, "--serial=null",
                  "--device=qemu,id=nic0,device=rtl8139,addr=6", (char *)NULL);
        else
            execl(path, path, fdarg, "--serial=null", (char *)NULL);
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
        else if (sscanf(line, "Private_Clean: %lu", &v) == 1) {
            m[M_PRIV] += (double)v;
            m[M_CLEAN] = (double)v;
        } else if (sscanf(line, "Private_Dirty: %lu", &v) == 1) {
            m[M_PRIV] += (double)v;
            m[M_DIRTY] = (double)v;
        }
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

/* Per mapping kind (file or [heap], [anon]..., and permissions: a library's
 * text r-xp, its relro r--p after relocation, its data rw-p): RSS, private
 * clean and private dirty KiB of pid, every kind that has private pages,
 * the most dirty first: where the figures come from. */
static void print_maps(pid_t pid, const char *who)
{
    char path[64], line[512];
    struct row { char name[160]; unsigned long rss, clean, dirty; } rows[256];
    int n = 0, cur = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long v, lo, hi;
        char perms[8], name[160], *sp;

        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
            int field = 0;

            /* the name is the sixth field (none: anonymous) */
            sp = line;
            while (field < 5 && (sp = strchr(sp, ' '))) {
                while (*sp == ' ')
                    sp++;
                field++;
            }
            sp = sp && *sp && *sp != '\n' ? strrchr(sp, '/') ? strrchr(sp, '/') + 1 : sp : "[anon]";
            snprintf(name, sizeof(name), "%s %s", perms, sp);
            name[strcspn(name, "\n")] = 0;
            for (cur = 0; cur < n && strcmp(rows[cur].name, name); cur++)
                ;
            if (cur == n && n < 256) {
                snprintf(rows[n].name, sizeof(rows[n].name), "%s", name);
                rows[n].rss = rows[n].clean = rows[n].dirty = 0;
                n++;
            }
            if (cur >= 256)
                cur = -1;
        } else if (cur >= 0 && sscanf(line, "Rss: %lu", &v) == 1) {
            rows[cur].rss += v;
        } else if (cur >= 0 && sscanf(line, "Private_Clean: %lu", &v) == 1) {
            rows[cur].clean += v;
        } else if (cur >= 0 && sscanf(line, "Private_Dirty: %lu", &v) == 1) {
            rows[cur].dirty += v;
        }
    }
    fclose(f);
    printf("%s: mappings with private pages, the most dirty first (KiB)\n"
           "  %6s %6s %6s  perms name\n", who, "rss", "clean", "dirty");
    for (;;) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if ((rows[i].dirty || rows[i].clean) &&
                (best < 0 || rows[i].dirty > rows[best].dirty ||
                 (rows[i].dirty == rows[best].dirty && rows[i].clean > rows[best].clean)))
                best = i;
        if (best < 0)
            break;
        printf("  %6lu %6lu %6lu  %s\n", rows[best].rss, rows[best].clean, rows[best].dirty,
               rows[best].name);
        rows[best].dirty = rows[best].clean = 0;
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
    bool maps = false;
    char dir[] = "/tmp/ferry-dm-footprint.XXXXXX";
    bool have[P_N] = { 0 };
    int nl = 0;
    pid_t qemu;

    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "maps"))
            maps = true;
        else if (!strncmp(argv[i], "vs=", 3) && argv[i][3])
            other_dm = argv[i] + 3;
        else
            reps = 0;
    }
    if (reps < 1 || reps > REPS_MAX || idle_s < 1) {
        fprintf(stderr, "usage: dm-footprint [REPS 1..%d] [IDLE_SECONDS] [maps] [vs=FERRY_DM]\n",
                REPS_MAX);
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
    if (other_dm)
        printf("vs: %s (another build's ferry-dm, measured alike, interleaved)\n", other_dm);
    if (qemu < 0)
        printf("no qemu-system-x86_64: the USB + QEMU device lines are left out\n");
    for (int i = 0; i < reps; i++) {
        for (int k = 0; k < P_N; k++) {
            struct proc p, first = { .pid = 0, .in_w = -1 };
            int rc;

            if ((k >= P_DM_USB && qemu < 0) || (k == P_DM_OTHER && !other_dm))
                continue;
            switch (k) {
            case P_BASE: rc = start_idle(&p, idle_path, "libs"); break;
            case P_BASE_JSON: rc = start_idle(&p, idle_path, "json"); break;
            case P_DM: rc = start_dm(&p, dm_path, false, false); break;
            case P_DM_SECOND:
                /* the first one idles while the second starts and is measured */
                rc = start_dm(&first, dm_path, false, false);
                if (rc == 0)
                    rc = start_dm(&p, dm_path, false, false);
                break;
            case P_DM_OTHER: rc = start_dm(&p, other_dm, false, false); break;
            default: rc = start_dm(&p, dm_path, true, k == P_DM_USB_ARENA); break;
            }
            if (rc < 0) {
                fprintf(stderr, "dm-footprint: cannot start '%s'%s\n", p_name[k],
                        k >= P_DM ? " (root? the user 'ferry' of scripts/setup?)" : "");
                stop(&p);
                stop(&first);
                return 1;
            }
            sleep(idle_s);
            double m[M_N];
            if (measure(p.pid, m) < 0) {
                fprintf(stderr, "dm-footprint: cannot read /proc/%d/smaps_rollup\n", (int)p.pid);
                stop(&p);
                stop(&first);
                return 1;
            }
            if (k == P_DM_USB && i == 0)
                launcher = children_private(p.pid, &nl, &launcher_pss);
            if (maps && i == 0 && (k == P_DM || k == P_BASE || k == P_DM_SECOND))
                print_maps(p.pid, p_name[k]);
            for (int j = 0; j < M_N; j++)
                v[k][j][i] = m[j];
            have[k] = true;
            stop(&p);
            stop(&first);
        }
    }
    if (qemu > 0) {
        kill(qemu, SIGTERM);
        waitpid(qemu, NULL, 0);
    }
    unlink(qmp_path);
    rmdir(dir);

    printf("%-38s %7s %7s %8s %6s %6s %6s %7s\n", "process (KiB)", "RSS", "PSS", "private",
           "clean", "dirty", "anon", "threads");
    for (int k = 0; k < P_N; k++) {
        if (!have[k])
            continue;
        for (int j = 0; j < M_N; j++)
            med[k][j] = median(v[k][j], reps);
        printf("%-38s %7.0f %7.0f %8.0f %6.0f %6.0f %6.0f %7.0f\n", p_name[k], med[k][M_RSS],
               med[k][M_PSS], med[k][M_PRIV], med[k][M_CLEAN], med[k][M_DIRTY], med[k][M_ANON],
               med[k][M_THREADS]);
    }
    printf("(private = clean + dirty; clean: file pages no other process maps at that moment, "
           "dirty: written pages, ferry-dm's alone)\n");
    if (have[P_DM_USB])
        printf("(ferry-dm's QEMU launcher, its forked child: %d process(es), %.0f KiB private, "
               "PSS %.0f KiB; pages both still share after the fork count as shared, not "
               "private: PSS of the two %.0f KiB; the QEMU it runs is not counted)\n", nl,
               launcher, launcher_pss, med[P_DM_USB][M_PSS] + launcher_pss);
#define DIFF(label, a, b)                                                                   \
    printf("%-40s RSS %+6.0f  PSS %+6.0f  private %+6.0f  dirty %+5.0f  anon %+5.0f\n", label, \
           med[a][M_RSS] - med[b][M_RSS], med[a][M_PSS] - med[b][M_PSS],                   \
           med[a][M_PRIV] - med[b][M_PRIV], med[a][M_DIRTY] - med[b][M_DIRTY],             \
           med[a][M_ANON] - med[b][M_ANON])
    DIFF("Ferry's own (ferry-dm - baseline)", P_DM, P_BASE);
    DIFF("JSON used (+jansson - baseline)", P_BASE_JSON, P_BASE);
    DIFF("a second ferry-dm (vs the first alone)", P_DM_SECOND, P_DM);
    if (have[P_DM_OTHER])
        DIFF("this build (vs vs=PATH's)", P_DM, P_DM_OTHER);
    if (have[P_DM_USB]) {
        DIFF("USB service + QEMU device (vs default)", P_DM_USB, P_DM);
        DIFF("MALLOC_ARENA_MAX=1 (vs the same without)", P_DM_USB_ARENA, P_DM_USB);
    }
    printf("goal (issue 15): idle RSS <= 5120 KiB: %.0f KiB (%s); private (dirty) <= 1024 KiB: "
           "%.0f KiB (%s)\n", med[P_DM][M_RSS], med[P_DM][M_RSS] <= 5120 ? "met" : "not met",
           med[P_DM][M_DIRTY], med[P_DM][M_DIRTY] <= 1024 ? "met" : "not met");
    printf("  private clean + dirty: %.0f KiB alone, %.0f KiB for a second ferry-dm beside "
           "the first (%s)\n", med[P_DM][M_PRIV], med[P_DM_SECOND][M_PRIV],
           med[P_DM][M_PRIV] <= 1024 ? "<= 1024 alone too" : "> 1024 alone: clean pages of "
           "files only this ferry-dm maps now");
    if (have[P_DM_OTHER])
        printf("ratio ferry-dm this build / vs=PATH's, default devices: RSS %.2f, private dirty "
               "%.2f\n", med[P_DM][M_RSS] / med[P_DM_OTHER][M_RSS],
               med[P_DM][M_DIRTY] / med[P_DM_OTHER][M_DIRTY]);
    else
        printf("ratio ferry-dm (default devices) / baseline (same libraries, idle), private "
               "dirty: %.2f\n", med[P_DM][M_DIRTY] / med[P_BASE][M_DIRTY]);
    return 0;
}
