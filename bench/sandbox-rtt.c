// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/sandbox-rtt: the ioreq round trip (router -> device model in
 * another process -> router) to a confined device model (user switch, no
 * capabilities, namespaces, the seccomp allow-list of ferry-dm) against
 * the same device model unconfined, both in the same run, interleaved in
 * rounds so that machine noise hits both alike.  Prints one line per
 * figure and the ratio last.  Needs root and the 'ferry' user for the full
 * confinement; otherwise it confines without the user switch.
 *
 * Then the same for the real ferry-dm (FERRY_DM_PATH, or argv[2]), started
 * on the router's socket with --ioreq-fd and one POST port: ferry-dm as it
 * runs by default (confined) against ferry-dm --seccomp=off
 * --no-namespaces --user=root (no filter, no namespaces, no user switch;
 * capabilities are dropped either way, which the hot path never sees).
 * The last line is that ratio.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/sandbox/sandbox-rig.h"
#include "bench/bench.h"

#define ROUNDS 10

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define DM_PORT 0x3000u

/* n accesses (alternating write/read) into lat[], returns the total time. */
static uint64_t run_size(struct sandbox_rig *t, unsigned n, uint64_t *lat, uint16_t port,
                         unsigned size, unsigned spread)
{
    uint64_t start = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        uint32_t v = i & 0xff;
        uint64_t t0 = bench_now_ns();
        if (sandbox_rig_io_size(t, (uint16_t)(port + (i % spread)), size, i & 1, &v) !=
            IOREQ_SENT) {
            fprintf(stderr, "sandbox-rtt: request %u failed\n", i);
            exit(1);
        }
        if (lat)
            lat[i] = bench_now_ns() - t0;
    }
    return bench_now_ns() - start;
}

static uint64_t run(struct sandbox_rig *t, unsigned n, uint64_t *lat)
{
    return run_size(t, n, lat, POKE_PORT_REG, 4, 64);
}

static uint64_t run_dm(struct sandbox_rig *t, unsigned n, uint64_t *lat)
{
    return run_size(t, n, lat, DM_PORT, 1, 1);
}

struct figure {
    double per_sec;
    double median_us, p99_us;
};

static struct figure summarize(uint64_t *lat, unsigned n, uint64_t total)
{
    qsort(lat, n, sizeof(*lat), cmp_u64);
    return (struct figure){ n / (total / 1e9), lat[n / 2] / 1e3, lat[(size_t)n * 99 / 100] / 1e3 };
}

int main(int argc, char **argv)
{
    static const struct ferry_syscall_list *const plain[] = { &sandbox_syscalls_base };
    static const struct ferry_syscall_list *const san[] = {
        &sandbox_syscalls_base, &sandbox_syscalls_sanitizer,
    };
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
    bool full = geteuid() == 0 && getpwnam("ferry");
    struct ferry_sandbox_config cfg = {
        .user = full ? "ferry" : "", .mode = FERRY_SECCOMP_KILL, .namespaces = true,
        .lists = sandbox_sanitized() ? san : plain,
        .nr_lists = sandbox_sanitized() ? 2 : 1,
    };
    struct sandbox_rig conf, open;
    unsigned per = n / ROUNDS;

    if (per == 0) {
        fprintf(stderr, "sandbox-rtt: need at least %d requests\n", ROUNDS);
        return 1;
    }
    n = per * ROUNDS;
    if (sandbox_rig_start(&conf, &cfg) || sandbox_rig_start(&open, NULL)) {
        char log[4096];
        sandbox_rig_read_log(&conf, log, sizeof(log));
        fprintf(stderr, "sandbox-rtt: cannot start the device models\n%s", log);
        return 1;
    }
    uint64_t *lc = malloc(n * sizeof(*lc)), *lo = malloc(n * sizeof(*lo));
    uint64_t tc = 0, to = 0;

    bench_print_header();
    bench_print_peer("the confined ferry-dm", conf.child);
    bench_print_peer("the unconfined ferry-dm", open.child);
    printf("requests: %u per side in %d interleaved rounds\n", n, ROUNDS);
    printf("confinement: %s, namespaces, no capabilities, no_new_privs, seccomp kill (%zu rules)\n",
           full ? "user ferry" : "same user (not root)", sandbox_syscalls_base.n);
    run(&conf, per, NULL);      /* warm-up */
    run(&open, per, NULL);
    for (unsigned r = 0; r < ROUNDS; r++) {
        tc += run(&conf, per, lc + (size_t)r * per);
        to += run(&open, per, lo + (size_t)r * per);
    }
    struct figure c = summarize(lc, n, tc), o = summarize(lo, n, to);
    printf("unconfined: %.0f round trips/s, median %.2f us, p99 %.2f us\n", o.per_sec,
           o.median_us, o.p99_us);
    printf("confined:   %.0f round trips/s, median %.2f us, p99 %.2f us\n", c.per_sec,
           c.median_us, c.p99_us);
    printf("rig ratio confined/unconfined median round trip: %.3f\n", c.median_us / o.median_us);
    fflush(stdout);
    sandbox_rig_stop(&conf);
    sandbox_rig_stop(&open);

    /* The real ferry-dm, default (confined) against seccomp off. */
    const char *dm = argc > 2 ? argv[2] : FERRY_DM_PATH;
    const char *dm_conf[] = { dm, "--no-defaults", "--device=post,port=0x3000", NULL };
    const char *dm_open[] = { dm, "--no-defaults", "--device=post,port=0x3000",
                              "--seccomp=off", "--no-namespaces",
                              geteuid() == 0 ? "--user=root" : NULL, NULL };
    if (sandbox_rig_start_program(&conf, dm_conf, DM_PORT, 1) ||
        sandbox_rig_start_program(&open, dm_open, DM_PORT, 1)) {
        fprintf(stderr, "sandbox-rtt: cannot start %s (give its path as the second argument)\n",
                dm);
        return 1;
    }
    tc = to = 0;
    run_dm(&conf, per, NULL);   /* warm-up */
    run_dm(&open, per, NULL);
    for (unsigned r = 0; r < ROUNDS; r++) {
        tc += run_dm(&conf, per, lc + (size_t)r * per);
        to += run_dm(&open, per, lo + (size_t)r * per);
    }
    c = summarize(lc, n, tc);
    o = summarize(lo, n, to);
    printf("ferry-dm --seccomp=off --no-namespaces%s: %.0f round trips/s, median %.2f us, "
           "p99 %.2f us\n", geteuid() == 0 ? " --user=root" : "", o.per_sec, o.median_us,
           o.p99_us);
    printf("ferry-dm (default, confined): %.0f round trips/s, median %.2f us, p99 %.2f us\n",
           c.per_sec, c.median_us, c.p99_us);
    printf("ratio ferry-dm confined/seccomp-off median round trip: %.3f\n",
           c.median_us / o.median_us);
    fflush(stdout);
    free(lc);
    free(lo);
    sandbox_rig_stop(&conf);
    sandbox_rig_stop(&open);
    return 0;
}
