// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/uart-throughput: serial output bytes per second through the ioreq
 * path (an ioreq router in this process -> ferry-dm in its own process ->
 * its 16550A writing to /dev/null), driven the way a polling guest driver
 * does it (read LSR, write THR: two ioreqs per byte), against the same
 * UART called in-process through the device framework (no transport).
 * Then ferry-dm's idle cost: CPU time used and RSS over a few idle
 * seconds.  One line per figure; the throughput ratio is the last line.
 *
 *   build/bench/uart-throughput [BYTES] [IDLE_SECONDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/dm.h"
#include "bench/bench.h"

#define COM1 0x3f8

struct router {
    struct ioreq_router *r;
    pthread_t thread;
    atomic_bool stop;
    pid_t dm;
};

static void *control_thread(void *arg)
{
    struct router *t = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(t->r), .events = POLLIN };

    while (!atomic_load(&t->stop))
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(t->r);
    return NULL;
}

static const struct ioreq_router_ops router_ops = { 0 };

static int start(struct router *t, const char *dm_path)
{
    struct ioreq_router_config cfg = { .nr_vcpus = 1, .ops = &router_ops };
    char fdarg[32];
    int sv[2];

    if (ioreq_router_create(&cfg, &t->r) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
        ioreq_router_add_connection(t->r, sv[0]) < 0)
        return -1;
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    t->dm = fork();
    if (t->dm == 0) {
        fcntl(sv[1], F_SETFD, 0);
        execl(dm_path, dm_path, fdarg, "--no-defaults",
              "--device=uart,id=com1,out=file:/dev/null", (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    if (pthread_create(&t->thread, NULL, control_thread, t))
        return -1;
    for (int i = 0; i < 10000; i++) {
        ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = COM1 + 5, .size = 1, .count = 1,
                        .dir = IOREQ_READ };

        if (ioreq_router_send(t->r, 0, &req) == IOREQ_SENT)
            return 0;
        usleep(1000);
    }
    return -1;
}

/* A polling driver: wait for THRE, write the byte. */
static double send_bytes(void (*io)(void *, ioreq_t *), void *arg, unsigned n)
{
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        ioreq_t lsr = { .type = IOREQ_TYPE_PIO, .addr = COM1 + 5, .size = 1, .count = 1,
                        .dir = IOREQ_READ };
        ioreq_t thr = { .type = IOREQ_TYPE_PIO, .addr = COM1, .size = 1, .count = 1,
                        .dir = IOREQ_WRITE, .data = 'a' + i % 26 };

        do
            io(arg, &lsr);
        while (!(lsr.data & 0x20));
        io(arg, &thr);
    }
    return n / ((bench_now_ns() - t0) / 1e9);
}

static void via_router(void *arg, ioreq_t *req)
{
    struct router *t = arg;

    if (ioreq_router_send(t->r, 0, req) != IOREQ_SENT) {
        fprintf(stderr, "uart-throughput: ferry-dm stopped answering\n");
        exit(1);
    }
}

static void in_process(void *arg, ioreq_t *req)
{
    dm_handle_ioreq(arg, 0, req);
}

/* utime+stime in clock ticks and VmRSS in KiB of pid. */
static int proc_usage(pid_t pid, unsigned long long *ticks, unsigned long *rss_kib)
{
    char path[64], buf[4096];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    *ticks = ut + st;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    *rss_kib = 0;
    while (f && fgets(buf, sizeof(buf), f))
        if (sscanf(buf, "VmRSS: %lu kB", rss_kib) == 1)
            break;
    if (f)
        fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 100000;
    unsigned idle_s = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 5;
    const char *root = getenv("FERRY_BUILD_ROOT");
    char dm_path[4096];
    struct router t = { 0 };

    if (n == 0 || idle_s == 0) {
        fprintf(stderr, "usage: uart-throughput [BYTES] [IDLE_SECONDS]\n");
        return 2;
    }
    /* ferry-dm next to this program's build tree: build/bench/.. = build/. */
    if (root)
        snprintf(dm_path, sizeof(dm_path), "%s/devmodel/ferry-dm", root);
    else {
        char self[4000];
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

        self[len > 0 ? len : 0] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        snprintf(dm_path, sizeof(dm_path), "%s/../devmodel/ferry-dm", self);
    }
    signal(SIGPIPE, SIG_IGN);
    if (start(&t, dm_path) < 0) {
        fprintf(stderr, "uart-throughput: cannot start %s behind a router\n", dm_path);
        return 1;
    }

    /* The baseline: the same device model in this process, no transport. */
    struct event_base *base = event_base_new();
    struct ferry_dm_config cfg = { .name = "bench", .base = base };
    struct ferry_dm *dm;
    struct ferry_dm_opts *opts;
    if (dm_create(&cfg, &dm) < 0 || dm_opts_parse("out=file:/dev/null", &opts) < 0 ||
        dm_device_add(dm, "uart", "com1", opts, NULL) < 0 || dm_start(dm) < 0) {
        fprintf(stderr, "uart-throughput: cannot create the in-process UART\n");
        return 1;
    }
    dm_opts_free(opts);

    unsigned long long tick0, tick1;
    unsigned long rss0, rss1;
    proc_usage(t.dm, &tick0, &rss0);

    bench_print_header();
    bench_print_peer("ferry-dm", t.dm);
    printf("bytes: %u\n", n);
    send_bytes(via_router, &t, n / 10 + 1);              /* warm-up */
    send_bytes(in_process, dm, n / 10 + 1);
    double x = send_bytes(via_router, &t, n);
    double l = send_bytes(in_process, dm, n);
    printf("through ioreq (ferry-dm process): %.0f bytes/s (%.0f ioreqs/s)\n", x, 2 * x);
    printf("in-process framework call:        %.0f bytes/s\n", l);

    /* Idle: the guest does nothing; ferry-dm should sleep in epoll. */
    proc_usage(t.dm, &tick0, &rss0);
    sleep(idle_s);
    proc_usage(t.dm, &tick1, &rss1);
    long hz = sysconf(_SC_CLK_TCK);
    printf("ferry-dm idle: %.2f%% cpu over %u s (%llu ticks of 1/%ld s), rss %lu KiB\n",
           100.0 * (double)(tick1 - tick0) / (double)hz / idle_s, idle_s, tick1 - tick0, hz,
           rss1);
    printf("ratio in-process/ioreq throughput: %.1f\n", l / x);

    dm_destroy(dm);
    event_base_free(base);
    atomic_store(&t.stop, true);
    pthread_join(t.thread, NULL);
    ioreq_router_destroy(t.r);
    waitpid(t.dm, NULL, 0);
    return 0;
}
