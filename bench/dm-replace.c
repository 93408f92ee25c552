// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dm-replace: the pause a guest sees while ferry-dm is replaced under it
 * (docs/ferry-dm.md, "Replacing ferry-dm"), against an ordinary ioreq round
 * trip measured in the same run by the same guest.
 *
 *   build/bench/dm-replace [-n REPLACES] [-v] [-d FERRY_DM]
 *
 * ferry-hv runs tests/devmodel/guests/bench-replace.c with ferry-dm (the
 * default devices); the guest reads COM1's LSR in a loop, timing every
 * read with the TSC.  The bench replaces ferry-dm REPLACES times (default
 * 10; `ferry dm -s SOCK replace`, 300 ms apart), then stops the guest.  Each
 * replace leaves one long read: the time that vCPU waited across the
 * switch.  The guest lists every read over ~0.4 ms with its TSC; placed on
 * the host's TSC (the guest says its TSC when it starts), each falls in a
 * replace command's time or outside (the load's doing: the longest such is
 * printed).  ferry-dm's reply says when it froze and how long it served
 * nothing: the pause is the longest read waiting then (across the switch);
 * the longest read in the command's time (the successor starting, the old
 * ferry-dm serving on a busier machine) is printed too.  Figures: the
 * ordinary read (the mean of all reads but the REPLACES longest), the
 * pauses (median, shortest, longest), their ratio last.  TSC cycles become
 * time by the host's TSC rate, measured here (KVM guests run on the host's
 * TSC frequency).
 * -v: ferry-dm -v, whose log
 * (stderr) says where each pause went ("replace: served nothing for").
 * -d: another ferry-dm binary (an older build, for a before/after run
 * interleaved with this one's: the same ferry-hv and guest).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bench/bench.h"

#define TOP_N           64      /* as the guest keeps */
#define REPLACES_MAX    (TOP_N / 2)
#define LONG_N          2048    /* as the guest lists */
#define LONG_CYCLES     1000000 /* the guest lists reads longer than this */
#define LATE_NS         20000000    /* the guest's clock read late: its line's way to us */

static double tsc_hz(void)
{
    uint64_t n0 = bench_now_ns(), c0 = __rdtsc();
    usleep(200000);
    uint64_t n1 = bench_now_ns(), c1 = __rdtsc();
    return (double)(c1 - c0) * 1e9 / (double)(n1 - n0);
}

/* Other processes compete for the CPUs: the figure depends on it. */
static void print_load(const char *when)
{
    double l[3];
    FILE *f = fopen("/proc/loadavg", "r");

    if (f && fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3)
        printf("load average %s: %.2f %.2f %.2f (1/5/15 min)\n", when, l[0], l[1], l[2]);
    if (f)
        fclose(f);
}

/*
 * One `ferry dm replace`: its time on the host's TSC (tsc0..tsc1), and the
 * freeze it reports (freeze-monotonic-ns, frozen-ns: 0 when this ferry-dm
 * does not say).
 */
static int run_replace(const char *ctl, double *secs, uint64_t *tsc0, uint64_t *tsc1,
                       uint64_t *freeze_ns, uint64_t *frozen_ns)
{
    double t0 = bench_now_s();
    int out[2];

    *freeze_ns = *frozen_ns = 0;
    if (pipe(out) < 0)
        return -1;
    *tsc0 = __rdtsc();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        execl(FERRY_CLI_PATH, "ferry", "dm", "-s", ctl, "replace", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char reply[1024];
    size_t have = 0;
    ssize_t k;
    while (have < sizeof(reply) - 1 && (k = read(out[0], reply + have,
                                                 sizeof(reply) - 1 - have)) > 0)
        have += (size_t)k;
    reply[have] = '\0';
    close(out[0]);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    *secs = bench_now_s() - t0;
    *tsc1 = __rdtsc();
    char *p = strstr(reply, "\"freeze-monotonic-ns\"");
    if (p && (p = strchr(p, ':')))
        *freeze_ns = strtoull(p + 1, NULL, 10);
    p = strstr(reply, "\"frozen-ns\"");
    if (p && (p = strchr(p, ':')))
        *frozen_ns = strtoull(p + 1, NULL, 10);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int replaces = 10;
    bool verbose = false;
    const char *dm = FERRY_DM_PATH;
    int opt;

    while ((opt = getopt(argc, argv, "n:vd:")) != -1) {
        if (opt == 'd') {
            dm = optarg;
        } else if (opt == 'v') {
            verbose = true;     /* ferry-dm -v: where each pause went, on stderr */
        } else if (opt == 'n' && atoi(optarg) >= 1 && atoi(optarg) <= REPLACES_MAX) {
            replaces = atoi(optarg);
        } else {
            fprintf(stderr, "usage: dm-replace [-n REPLACES (1..%d)] [-v] [-d FERRY_DM]\n",
                    REPLACES_MAX);
            return 2;
        }
    }
    if (access("/dev/kvm", R_OK | W_OK) < 0) {
        fprintf(stderr, "dm-replace: /dev/kvm: %s\n", strerror(errno));
        return 1;
    }
    if (access(dm, X_OK) < 0) {
        fprintf(stderr, "dm-replace: -d %s: %s\n", dm, strerror(errno));
        return 2;
    }
    bench_print_header();
    printf("ferry-dm: %s\n", dm);
    print_load("before");
    double hz = tsc_hz();
    printf("tsc: %.0f MHz (host)\n", hz / 1e6);

    char dir[] = "/tmp/ferry-dm-replace-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("dm-replace: mkdtemp");
        return 1;
    }
    char ctl[256], in[256], ctlarg[300], inarg[300];
    snprintf(ctl, sizeof(ctl), "%s/dm.sock", dir);
    snprintf(in, sizeof(in), "%s/com1.in", dir);
    snprintf(ctlarg, sizeof(ctlarg), "--control=%s", ctl);
    snprintf(inarg, sizeof(inarg), "--serial-in=socket:%s", in);

    int out[2];
    if (pipe(out) < 0)
        return 1;
    pid_t hv = fork();
    if (hv == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        char *hv_argv[] = { "ferry-hv", "--image", FERRY_BENCH_REPLACE_GUEST, "--entry", "pvh",
                            "--memory", "64M", "--dm", (char *)dm, "--dm-arg", ctlarg,
                            "--dm-arg", inarg, "--dm-arg", "--serial=null",
                            verbose ? "--dm-arg" : NULL, "-v", NULL };
        execv(FERRY_HV_PATH, hv_argv);
        _exit(127);
    }
    close(out[1]);
    FILE *gout = fdopen(out[0], "r");
    char line[8192];
    char *tscp;
    if (!fgets(line, sizeof(line), gout) || !strstr(line, "waiting") ||
        !(tscp = strstr(line, " tsc "))) {
        fprintf(stderr, "dm-replace: the guest did not start\n");
        kill(hv, SIGKILL);
        return 1;
    }
    /* host TSC = guest TSC + offset (a little late: the line's way here, LATE_NS) */
    int64_t offset = (int64_t)(__rdtsc() - strtoull(tscp + 5, NULL, 10));
    usleep(500000);     /* warm-up: the loop runs, ferry-dm is placed */
    double cmd[REPLACES_MAX];
    uint64_t win0[REPLACES_MAX], win1[REPLACES_MAX], frz0[REPLACES_MAX], frz1[REPLACES_MAX];
    int failed = 0;
    /* CLOCK_MONOTONIC (ferry-dm's freeze) to the host's TSC */
    uint64_t mono0 = bench_now_ns(), tsc_at_mono0 = __rdtsc();
    for (int i = 0; i < replaces && !failed; i++) {
        uint64_t at, len;
        if (run_replace(ctl, &cmd[i], &win0[i], &win1[i], &at, &len) < 0) {
            fprintf(stderr, "dm-replace: replace %d failed\n", i + 1);
            failed = 1;
        }
        frz0[i] = at ? tsc_at_mono0 + (uint64_t)((double)(int64_t)(at - mono0) * hz / 1e9) : 0;
        frz1[i] = at ? frz0[i] + (uint64_t)((double)len * hz / 1e9) : 0;
        usleep(300000);
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(in) >= sizeof(sa.sun_path))
        return 1;
    memcpy(sa.sun_path, in, strlen(in) + 1);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(s, "q", 1) != 1) {
        fprintf(stderr, "dm-replace: cannot stop the guest through %s: %s\n", in,
                strerror(errno));
        kill(hv, SIGKILL);
        return 1;
    }
    bool got = false;
    unsigned long long n = 0, cycles = 0, top[TOP_N] = { 0 };
    static unsigned long long long_at[LONG_N], long_d[LONG_N];
    unsigned nlong = 0;
    while (fgets(line, sizeof(line), gout)) {
        if (nlong < LONG_N &&
            sscanf(line, "long %llu %llu", &long_at[nlong], &long_d[nlong]) == 2) {
            nlong++;
            continue;
        }
        char *p = strstr(line, "reads ");
        if (!p || sscanf(p, "reads %llu cycles %llu", &n, &cycles) != 2)
            continue;
        p = strstr(p, " top");
        for (int i = 0; p && i < TOP_N; i++)
            top[i] = strtoull(p + 4, &p, 10), p -= 4;
        got = true;
    }
    int st = 0;
    fflush(stdout);
    waitpid(hv, &st, 0);
    close(s);
    unlink(ctl);
    unlink(in);
    rmdir(dir);
    if (!got || failed || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || n <= (unsigned)replaces) {
        fprintf(stderr, "dm-replace: the guest did not report (ferry-hv status 0x%x)\n", st);
        return 1;
    }
    if (nlong == LONG_N) {
        fprintf(stderr, "dm-replace: the guest listed %u reads over %.2f ms and no more: the "
                "replaces' reads may be missing (the machine is too loaded for this figure)\n",
                nlong, LONG_CYCLES / hz * 1e3);
        return 1;
    }
    unsigned long long pause_sum = 0;
    for (int i = 0; i < replaces; i++)
        pause_sum += top[i];
    /* Each listed long read: in a replace's time, or outside (the load's). */
    double pauses[REPLACES_MAX], during[REPLACES_MAX], outside = 0;
    uint64_t late = (uint64_t)(hz * LATE_NS / 1e9);
    unsigned quiet = 0, known = 0;
    for (int i = 0; i < replaces; i++) {
        pauses[i] = during[i] = 0;
        known += frz0[i] != 0;
    }
    for (unsigned k = 0; k < nlong; k++) {
        uint64_t at = long_at[k] + (uint64_t)offset;
        double ms = (double)long_d[k] / hz * 1e3;
        int slot = -1;
        for (int i = 0; i < replaces && slot < 0; i++)
            if (at + long_d[k] >= win0[i] && at <= win1[i] + late)
                slot = i;
        if (slot >= 0 && ms > during[slot])
            during[slot] = ms;
        else if (slot < 0 && ms > outside)
            outside = ms;
        /* across the switch: waiting when ferry-dm froze, or while it served nothing */
        if (slot >= 0 && frz0[slot] && at <= frz1[slot] + late && at + long_d[k] >= frz0[slot] &&
            ms > pauses[slot])
            pauses[slot] = ms;
    }
    for (int i = 0; i < replaces; i++) {
        if (during[i] == 0)
            during[i] = LONG_CYCLES / hz * 1e3;     /* no read over it: at most that */
        if (pauses[i] == 0) {
            pauses[i] = LONG_CYCLES / hz * 1e3;
            quiet++;
        }
    }
    double rtt_us = (double)(cycles - pause_sum) / (double)(n - (unsigned)replaces) / hz * 1e6;
    struct bench_stat3 ps = bench_stats(pauses, replaces);
    struct bench_stat3 ds = bench_stats(during, replaces);
    struct bench_stat3 cs = bench_stats(cmd, replaces);
    print_load("after");
    printf("placement: ferry-hv (vCPU) and ferry-dm as the scheduler puts them\n");
    printf("replaces: %d; the replace command took %.1f ms median (%.1f..%.1f)\n", replaces,
           cs.med * 1e3, cs.min * 1e3, cs.max * 1e3);
    printf("ordinary ioreq round trip (COM1 LSR read, %llu reads): %.2f us mean\n",
           n - (unsigned)replaces, rtt_us);
    printf("longest read outside the replaces (the load's doing): %.3f ms; %u reads over "
           "%.2f ms in all\n", outside, nlong, LONG_CYCLES / hz * 1e3);
    printf("longest read during a replace command (its successor starting too): %.2f ms "
           "median, %.2f ms min, %.2f ms max\n", ds.med, ds.min, ds.max);
    if (known < (unsigned)replaces) {
        printf("pause across the switch: unknown (this ferry-dm reports no freeze: compare "
               "the line above)\n");
        printf("ratio: longest read during a replace / round trip = %.0f (median), %.0f "
               "(max)\n", ds.med * 1e3 / rtt_us, ds.max * 1e3 / rtt_us);
        return 0;
    }
    printf("pause across the switch (the read waiting while ferry-dm froze): %.2f ms median, "
           "%.2f ms min, %.2f ms max (goal: under 10 ms)%s\n", ps.med, ps.min, ps.max,
           quiet ? "; none over the listing's threshold counts as it" : "");
    printf("ratio: pause / round trip = %.0f (median), %.0f (max)\n", ps.med * 1e3 / rtt_us,
           ps.max * 1e3 / rtt_us);
    return 0;
}
