// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/exit-rtt: port-I/O round trips per second, handled in-process
 * (ferry-hv's own handler table) versus by an ioreq server in another
 * process (the ioreq router: shared page + eventfds).
 *
 * The guest (real mode) writes port 0x5fe (start mark), then N times port
 * 0x600, then port 0x501 (end mark); both marks are in-process handlers
 * that take the time, so VM creation is not measured.  Baseline: port
 * 0x600 handled in-process.  Figure: port 0x600 claimed by a server
 * process started with fork.  Goal: the cross-process cost per exit at most
 * 2x the in-process one.
 *
 *   exit-rtt [N] [--server-poll]   N exits per run (default 200000);
 *                                  --server-poll: the server busy-polls its
 *                                  slots instead of sleeping on eventfds
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hypervisor/hv.h"
#include "bench/bench.h"

#define PORT_MARK   0x5fe
#define PORT_TEST   0x600

struct bench {
    _Atomic double t0, t1;
    uint64_t handled;
};

static void quiet_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "exit-rtt: %s\n", msg);
}

static void mark(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct bench *b = opaque;

    if (req->dir == IOREQ_WRITE)
        atomic_store(&b->t0, bench_now_s());
}

static void end_mark(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct bench *b = opaque;

    atomic_store(&b->t1, bench_now_s());
    hv_vm_end(vm, HV_END_DEBUG_EXIT, 0);
}

static void count(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct bench *b = opaque;

    b->handled++;
}

/* The server process: claim PORT_TEST, answer until the router goes. */
static void srv_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    uint64_t *n = opaque;

    (*n)++;
    if (req->dir == IOREQ_READ)
        req->data = 0;
}

static const struct ioreq_server_ops srv_ops = { .log = quiet_log, .handle = srv_handle };

static int server_main(int fd, bool busy)
{
    uint64_t n = 0;
    struct ioreq_server_config cfg = { .name = "exit-rtt", .ops = &srv_ops, .opaque = &n };
    struct ioreq_server *s;

    if (ioreq_server_create(fd, &cfg, &s) ||
        ioreq_server_claim_range(s, IOREQ_RANGE_PORT, PORT_TEST, PORT_TEST, 0) ||
        ioreq_server_enable(s, true))
        return 1;
    struct pollfd p[2] = {
        { .fd = ioreq_server_control_fd(s), .events = POLLIN },
        { .fd = ioreq_server_vcpu_fd(s, 0), .events = POLLIN },
    };
    for (;;) {
        if (busy) {
            ioreq_server_dispatch_all(s);
            if (poll(p, 1, 0) > 0 && ioreq_server_check_control(s) == -EPIPE)
                break;
            continue;
        }
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents && ioreq_server_check_control(s) == -EPIPE)
            break;
        if (p[1].revents)
            ioreq_server_dispatch_vcpu(s, 0);
    }
    ioreq_server_destroy(s);
    return 0;
}

static const struct ioreq_router_ops router_ops = { .log = quiet_log };

/* One run: N exits to PORT_TEST; returns exits per second or < 0. */
static double one_run(uint32_t n, bool remote, bool busy)
{
    uint8_t code[] = {
        0xba, PORT_MARK & 0xff, PORT_MARK >> 8, 0xee,   /* mov $PORT_MARK, %dx; out */
        0xba, PORT_TEST & 0xff, PORT_TEST >> 8,         /* mov $PORT_TEST, %dx */
        0x66, 0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24, /* mov $n, %ecx */
        0xee, 0x66, 0x49, 0x75, 0xfb,                   /* 1: out; dec %ecx; jnz 1b */
        0xba, 0x01, 0x05, 0xee, 0xf4,                   /* mov $0x501, %dx; out; hlt */
    };
    struct ferry_vm_config cfg = { .memory = 64ull << 20, .nr_vcpus = 1, .log = quiet_log };
    struct hv_boot boot = { .entry = HV_ENTRY_REAL, .rip = HV_REAL_LOAD_ADDR };
    struct bench b = { 0 };
    struct hv_io_handler h_mark = { "mark", mark, &b }, h_end = { "end", end_mark, &b },
                         h_count = { "count", count, &b };
    struct ioreq_router *router = NULL;
    struct ferry_vm *vm;
    pid_t child = -1;
    double result = -1;

    if (hv_vm_create(&cfg, &vm))
        return -1;
    if (hv_io_init(vm) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, PORT_MARK, PORT_MARK, &h_mark) ||
        hv_io_register(vm, IOREQ_RANGE_PORT, 0x501, 0x501, &h_end))
        goto out;
    if (!remote && hv_io_register(vm, IOREQ_RANGE_PORT, PORT_TEST, PORT_TEST, &h_count))
        goto out;
    memcpy(hv_vm_gpa_ptr(vm, HV_REAL_LOAD_ADDR, sizeof(code)), code, sizeof(code));
    if (hv_vm_commit_memory(vm, HV_BIOS_END) || hv_vcpus_create(vm) ||
        hv_vcpus_setup_boot(vm, &boot))
        goto out;
    if (remote) {
        struct ioreq_router_config rc = { .nr_vcpus = 1, .ops = &router_ops, .opaque = vm };
        int sv[2];
        if (ioreq_router_create(&rc, &router))
            goto out;
        vm->router = router;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
            goto out;
        child = fork();
        if (child == 0) {
            close(sv[0]);
            _exit(server_main(sv[1], busy));
        }
        close(sv[1]);
        if (child < 0 || ioreq_router_add_connection(router, sv[0]) < 0)
            goto out;
        struct ioreq_router_stats st = { 0 };
        while (st.enabled < 1) {
            struct pollfd p = { .fd = ioreq_router_get_fd(router), .events = POLLIN };
            if (poll(&p, 1, 10000) <= 0) {
                fprintf(stderr, "exit-rtt: the server did not register\n");
                goto out;
            }
            ioreq_router_dispatch(router);
            ioreq_router_get_stats(router, &st);
        }
    }
    if (hv_vcpus_start(vm))
        goto out;
    for (;;) {
        struct pollfd p[2] = {
            { .fd = vm->done_fd, .events = POLLIN },
            { .fd = router ? ioreq_router_get_fd(router) : -1, .events = POLLIN },
        };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents)
            ioreq_router_dispatch(router);
    }
    hv_vcpus_stop(vm);
    if (atomic_load(&vm->end) == HV_END_DEBUG_EXIT && b.t1 > b.t0)
        result = n / (b.t1 - b.t0);
    if (router) {
        struct ioreq_router_stats st;
        ioreq_router_get_stats(router, &st);
        if (st.sent != n) {
            fprintf(stderr, "exit-rtt: the server answered %llu of %u exits\n",
                    (unsigned long long)st.sent, n);
            result = -1;
        }
    } else if (b.handled != n) {
        fprintf(stderr, "exit-rtt: handled %llu of %u exits\n", (unsigned long long)b.handled, n);
        result = -1;
    }
out:
    hv_vcpus_stop(vm);
    if (router) {
        vm->router = NULL;
        ioreq_router_destroy(router);
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    hv_io_fini(vm);
    hv_vm_destroy(vm);
    return result;
}

int main(int argc, char **argv)
{
    uint32_t n = 200000;
    bool busy = false;
    double local, remote;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--server-poll"))
            busy = true;
        else if (atoi(argv[i]) > 0)
            n = (uint32_t)atoi(argv[i]);
        else {
            fprintf(stderr, "usage: exit-rtt [N] [--server-poll]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    bench_print_header();
    /* Warm-up */
    if (one_run(n / 10 + 1, false, busy) < 0 || one_run(n / 10 + 1, true, busy) < 0)
        return 1;
    local = one_run(n, false, busy);
    remote = one_run(n, true, busy);
    if (local < 0 || remote < 0)
        return 1;
    printf("in-process handler:     %10.0f exits/s  %6.2f us/exit\n", local, 1e6 / local);
    printf("ioreq server (%s): %10.0f exits/s  %6.2f us/exit\n",
           busy ? "polling " : "eventfd ", remote, 1e6 / remote);
    printf("ratio cross-process / in-process cost per exit (goal <= 2): %.2f\n", local / remote);
    return 0;
}
