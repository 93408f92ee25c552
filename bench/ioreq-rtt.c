// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/ioreq-rtt: round trips per second and median/p99 latency of one
 * ioreq router -> server (another process) -> router, against the same
 * device handler called in-process.  Prints one line per figure and the
 * ratio last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/ioreq/ioreq-peer.h"
#include "bench/bench.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct figure {
    double per_sec;
    uint64_t median_ns, p99_ns;
};

/* Times n reads through fn; each sample is one request. */
static struct figure measure(unsigned n, void (*fn)(void *, ioreq_t *), void *arg)
{
    uint64_t *lat = malloc(n * sizeof(*lat));
    uint64_t start = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_BASE + (i & 63), .size = 4,
                        .dir = i & 1 ? IOREQ_READ : IOREQ_WRITE, .data = i, .count = 1 };
        uint64_t t0 = bench_now_ns();
        fn(arg, &req);
        lat[i] = bench_now_ns() - t0;
    }
    uint64_t total = bench_now_ns() - start;
    qsort(lat, n, sizeof(*lat), cmp_u64);
    struct figure f = { n / (total / 1e9), lat[n / 2], lat[(size_t)n * 99 / 100] };
    free(lat);
    return f;
}

static void via_router(void *arg, ioreq_t *req)
{
    struct test_router *t = arg;
    if (ioreq_router_send(t->r, 0, req) != IOREQ_SENT)
        abort();
}

static void in_process(void *arg, ioreq_t *req)
{
    test_peer_handle(arg, 0, req);
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 200000;
    struct test_router t;
    struct test_peer local;

    if (test_router_start(&t, 1, false, 0)) {
        fprintf(stderr, "ioreq-rtt: cannot start the router and the test server\n");
        return 1;
    }
    test_peer_init(&local, 1);
    bench_print_header();
    bench_print_peer("the test server", t.child);
    printf("requests: %u\n", n);
    measure(n / 10, via_router, &t);            /* warm-up */
    measure(n / 10, in_process, &local);
    struct figure x = measure(n, via_router, &t);
    struct figure l = measure(n, in_process, &local);
    printf("cross-process: %.0f round trips/s, median %.2f us, p99 %.2f us\n", x.per_sec,
           x.median_ns / 1e3, x.p99_ns / 1e3);
    printf("in-process:    %.0f calls/s, median %.3f us, p99 %.3f us\n", l.per_sec,
           l.median_ns / 1e3, l.p99_ns / 1e3);
    printf("ratio in-process/cross-process throughput: %.1f\n", l.per_sec / x.per_sec);
    test_router_stop(&t);
    return 0;
}
