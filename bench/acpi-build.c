// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * acpi-build: how long libacpi takes to build, validate and lay out a
 * guest's whole table set (acpi_build_blob), against a baseline from the
 * same run: clearing the same buffer (memset of ACPI_BLOB_BUF_SIZE), which
 * any VMM pays anyway.  Figures for the default 4-vCPU guest and for the
 * largest config (512 vCPUs, x2APIC, 16 NUMA nodes).
 *
 *   ninja -C build && build/bench/acpi-build [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acpi/acpi.h"
#include "bench/bench.h"

static double bench_build(const struct acpi_config *cfg, uint8_t *buf, int iters, size_t *used)
{
    double t0 = (bench_now_ns() / 1e3);

    for (int i = 0; i < iters; i++) {
        uint64_t rsdp;

        if (acpi_build_blob(cfg, ACPI_BLOB_BASE_DEFAULT, buf, ACPI_BLOB_BUF_SIZE, used, &rsdp,
                            NULL, NULL)) {
            fprintf(stderr, "acpi-build: acpi_build_blob failed\n");
            exit(1);
        }
    }
    return ((bench_now_ns() / 1e3) - t0) / iters;
}

static double bench_memset(uint8_t *buf, int iters)
{
    double t0 = (bench_now_ns() / 1e3);

    for (int i = 0; i < iters; i++) {
        memset(buf, i, ACPI_BLOB_BUF_SIZE);
        __asm__ volatile("" : : "r"(buf) : "memory");
    }
    return ((bench_now_ns() / 1e3) - t0) / iters;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 200;
    static struct acpi_config small, large;
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE);
    double t_small, t_large, t_base;
    size_t used_small = 0, used_large = 0;

    if (!buf || iters <= 0 ||
        acpi_config_init_default(&small, 4, 4ull << 30) ||
        acpi_config_init_default(&large, ACPI_VCPUS_MAX, 1ull << 40) ||
        acpi_config_set_numa(&large, ACPI_NODES_MAX)) {
        fprintf(stderr, "acpi-build: setup failed\n");
        return 1;
    }
    bench_print_header();
    /* Warm-up: page in the buffer and the code. */
    bench_build(&small, buf, 10, &used_small);
    bench_memset(buf, 10);

    t_small = bench_build(&small, buf, iters, &used_small);
    t_large = bench_build(&large, buf, iters / 10 + 1, &used_large);
    t_base = bench_memset(buf, iters);
    printf("build 4 vcpus: %.1f us per table set (%zu bytes)\n", t_small, used_small);
    printf("build %u vcpus %u nodes: %.1f us per table set (%zu bytes)\n", ACPI_VCPUS_MAX,
           ACPI_NODES_MAX, t_large, used_large);
    printf("baseline memset of %u bytes: %.1f us\n", ACPI_BLOB_BUF_SIZE, t_base);
    printf("ratio build(4 vcpus)/memset: %.2f\n", t_small / t_base);
    free(buf);
    return 0;
}
