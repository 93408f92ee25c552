/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every benchmark shares: a monotonic clock and the header lines that
 * say where a figure was measured (CPU model, build type, cores, and the
 * CPUs the process may run on: on a machine of two vCPUs, whether two
 * processes share one decides every cross-process figure).  The figure,
 * its baseline from the same run and their ratio are each benchmark's own;
 * the ratio is its last line.
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cpus.h"

#ifndef FERRY_BUILDTYPE
#define FERRY_BUILDTYPE "unknown"
#endif

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_now_s(void)
{
    return bench_now_ns() / 1e9;
}

/* The CPUs of set as a list, "0-1" or "0,2-3"; "none" if empty. */
static inline void bench_cpus_str(const cpu_set_t *set, char *buf, size_t len)
{
    ferry_cpus_format(set, buf, len);
}

/* The CPUs the calling thread may run on (sched_getaffinity), as above. */
static inline void bench_affinity_str(char *buf, size_t len)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        snprintf(buf, len, "unknown");
    else
        bench_cpus_str(&set, buf, len);
}

/*
 * Pin the calling thread (and what it forks or starts afterwards) to one
 * CPU; 0 or -errno.
 */
static inline int bench_pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* "placement: WHO (pid P) may run on CPUs L": where a peer process of the figure runs. */
static inline void bench_print_peer(const char *who, pid_t pid)
{
    cpu_set_t set;
    char cpus[128];

    if (pid <= 0 || sched_getaffinity(pid, sizeof(set), &set) < 0)
        snprintf(cpus, sizeof(cpus), "unknown");
    else
        bench_cpus_str(&set, cpus, sizeof(cpus));
    printf("placement: %s (pid %d) may run on CPUs %s\n", who, (int)pid, cpus);
}

/*
 * "cpu: MODEL", "build: TYPE, N cores online" and "placement: CPUs L"
 * (where this process may run when the header is printed; a benchmark that
 * moves its processes says so in its own lines).
 */
static inline void bench_print_header(void)
{
    char line[256], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        const char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            snprintf(model, sizeof(model), "%.200s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    char cpus[128];
    bench_affinity_str(cpus, sizeof(cpus));
    printf("cpu: %s\nbuild: %s, %ld cores online\nplacement: process %d may run on CPUs %s\n",
           model, FERRY_BUILDTYPE, sysconf(_SC_NPROCESSORS_ONLN), (int)getpid(), cpus);
}

/* Median, minimum and maximum of n figures (n >= 1); v is left as it is. */
struct bench_stat3 { double med, min, max; };

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline struct bench_stat3 bench_stats(const double *v, int n)
{
    double *t = malloc(sizeof(*t) * (size_t)n);
    struct bench_stat3 r;

    if (!t)
        abort();
    memcpy(t, v, sizeof(*t) * (size_t)n);
    qsort(t, (size_t)n, sizeof(*t), bench_cmp_double);
    r = (struct bench_stat3){ n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t[0], t[n - 1] };
    free(t);
    return r;
}

#endif
