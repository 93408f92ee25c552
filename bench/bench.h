/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every benchmark shares: a monotonic clock and the header lines that
 * say where a figure was measured (CPU model, build type, cores).  The
 * figure, its baseline from the same run and their ratio are each
 * benchmark's own; the ratio is its last line.
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* "cpu: MODEL" and "build: TYPE, N cores online". */
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
    printf("cpu: %s\nbuild: %s, %ld cores online\n", model, FERRY_BUILDTYPE,
           sysconf(_SC_NPROCESSORS_ONLN));
}

#endif
