// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * acpi-build: what it costs ferry-hv to give a guest its ACPI tables by
 * building them (libacpi) instead of shipping them prebuilt.
 *
 * The job, both ways: the guest's ACPI area (a 64 KiB buffer standing for
 * guest RAM at ACPI_BLOB_BASE_DEFAULT) ends up holding the guest's whole
 * table set, byte for byte the same.
 *   figure    what ferry-hv does at every guest start (hv_acpi_place,
 *             without reading table files): acpi_build_blob builds,
 *             validates and lays out the set in its work buffer
 *             (ACPI_BLOB_BUF_SIZE, allocated once here; ferry-hv allocates
 *             it per start), then the used bytes are copied into the area
 *   baseline  what a VMM that ships static tables does: copy a prebuilt
 *             blob of the same bytes (built once before timing, and checked
 *             equal to what the builder produces) into the area
 * Both for the default 4-vCPU guest and for the largest config (512 vCPUs,
 * x2APIC, 16 NUMA nodes), timed in interleaved rounds; each figure is the
 * median of the rounds' per-set times.  Also how the build cost scales:
 * (512-vCPU cost / 4-vCPU cost) against (512-vCPU bytes / 4-vCPU bytes),
 * 1.0 meaning the cost grows with the size of the tables and no faster.
 * The last line is build / copy for the default guest.
 *
 *   ninja -C build && build/bench/acpi-build [ITERATIONS]
 *                        builds per round for the 4-vCPU set (default 200);
 *                        the 512-vCPU set gets a tenth, the copies 100x
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acpi/acpi.h"
#include "bench/bench.h"

#define ROUNDS      9

struct job {
    const char *name;
    struct acpi_config cfg;
    uint8_t *blob;              /* the prebuilt set */
    size_t used;
    double build_us[ROUNDS], copy_us[ROUNDS];
};

static void build_once(struct job *j, uint8_t *buf, uint8_t *area)
{
    size_t used;
    uint64_t rsdp;

    if (acpi_build_blob(&j->cfg, ACPI_BLOB_BASE_DEFAULT, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp,
                        NULL, NULL)) {
        fprintf(stderr, "acpi-build: acpi_build_blob failed for %s\n", j->name);
        exit(1);
    }
    memcpy(area, buf, used);
    j->used = used;
}

/* Per table set, in us. */
static double time_build(struct job *j, uint8_t *buf, uint8_t *area, int iters)
{
    uint64_t t0 = bench_now_ns();

    for (int i = 0; i < iters; i++)
        build_once(j, buf, area);
    return (bench_now_ns() - t0) / 1e3 / iters;
}

static double time_copy(struct job *j, uint8_t *area, int iters)
{
    uint64_t t0 = bench_now_ns();

    for (int i = 0; i < iters; i++) {
        memcpy(area, j->blob, j->used);
        __asm__ volatile("" : : "r"(area) : "memory");
    }
    return (bench_now_ns() - t0) / 1e3 / iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t)
{
    qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
    return t[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 200;
    static struct job jobs[2] = { { .name = "4 vCPUs" }, { .name = "512 vCPUs" } };
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE), *area = malloc(ACPI_TABLES_SIZE_MAX);

    if (!buf || !area || iters <= 0 ||
        acpi_config_init_default(&jobs[0].cfg, 4, 4ull << 30) ||
        acpi_config_init_default(&jobs[1].cfg, ACPI_VCPUS_MAX, 1ull << 40) ||
        acpi_config_set_numa(&jobs[1].cfg, ACPI_NODES_MAX)) {
        fprintf(stderr, "acpi-build: setup failed\n");
        return 1;
    }
    bench_print_header();
    /* The prebuilt blobs, and a check that building gives the same bytes again. */
    for (int k = 0; k < 2; k++) {
        struct job *j = &jobs[k];
        build_once(j, buf, area);
        j->blob = malloc(j->used);
        if (!j->blob)
            return 1;
        memcpy(j->blob, area, j->used);
        memset(area, 0, ACPI_TABLES_SIZE_MAX);
        build_once(j, buf, area);
        if (memcmp(j->blob, area, j->used)) {
            fprintf(stderr, "acpi-build: two builds of %s differ\n", j->name);
            return 1;
        }
    }
    /* Warm-up: page in the buffers and the code. */
    for (int k = 0; k < 2; k++) {
        time_build(&jobs[k], buf, area, 10);
        time_copy(&jobs[k], area, 1000);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 2; k++) {
            int n = k ? iters / 10 + 1 : iters;
            jobs[k].build_us[r] = time_build(&jobs[k], buf, area, n);
            jobs[k].copy_us[r] = time_copy(&jobs[k], area, n * 100);
        }
    }
    double b[2], c[2];
    printf("per table set, median of %d interleaved rounds (%d builds per round for %s, %d for "
           "%s, 100x as many copies)\n", ROUNDS, iters, jobs[0].name, iters / 10 + 1,
           jobs[1].name);
    for (int k = 0; k < 2; k++) {
        b[k] = median(jobs[k].build_us);
        c[k] = median(jobs[k].copy_us);
        printf("%-10s %6zu bytes: build + copy %9.2f us, copy of the prebuilt blob %7.3f us, "
               "ratio %.0f\n", jobs[k].name, jobs[k].used, b[k], c[k], b[k] / c[k]);
    }
    printf("scaling 512 / 4 vCPUs: build cost %.2fx for %.2fx the bytes: %.2f\n", b[1] / b[0],
           (double)jobs[1].used / jobs[0].used, (b[1] / b[0]) / ((double)jobs[1].used / jobs[0].used));
    printf("ratio build / copy of a prebuilt blob, %s (median): %.0f\n", jobs[0].name,
           b[0] / c[0]);
    for (int k = 0; k < 2; k++)
        free(jobs[k].blob);
    free(buf);
    free(area);
    return 0;
}
