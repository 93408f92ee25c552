// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/ioreq/ioreq-peer.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static void peer_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "test-server: %s\n", msg);
}

void test_peer_init(struct test_peer *p, unsigned nr_vcpus)
{
    p->regs = calloc(nr_vcpus, sizeof(*p->regs));
    p->hash = calloc(nr_vcpus, sizeof(*p->hash));
}

void test_peer_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct test_peer *p = opaque;
    uint64_t mask = req->size >= 8 ? ~0ull : (1ull << (req->size * 8)) - 1;
    uint64_t key = req->type == IOREQ_TYPE_PCI_CONFIG ? IOREQ_PCI_ADDR_REG(req->addr) : req->addr;
    /* Posted writes carry no vCPU: they count as vCPU 0's, in arrival order. */
    uint64_t *h = &p->hash[vcpu == -1u ? 0 : vcpu];

    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_DIE)
        _exit(0);
    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_HANG)
        for (;;)
            pause();
    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_PAUSE) {
        struct timespec ts = { req->data / 1000, (long)(req->data % 1000) * 1000000 };
        nanosleep(&ts, NULL);
        return;
    }
    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_MSI) {
        if (req->dir == IOREQ_WRITE)
            p->msi_status = p->srv ? ioreq_server_signal_msi(p->srv, 0xfee00000 | (req->data >> 32),
                                                             (uint32_t)req->data)
                                   : -ENOTCONN;
        else
            req->data = (uint32_t)p->msi_status;
        return;
    }
    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_MSI_FD && req->dir == IOREQ_WRITE) {
        int efd = eventfd(0, EFD_CLOEXEC);
        p->msi_status = efd < 0 || !p->srv ? -EIO
                        : ioreq_server_msi_route(p->srv, 0xfee00000 | (req->data >> 32),
                                                 (uint32_t)req->data, efd, (uint32_t)req->data);
        if (p->msi_status == 0 && eventfd_write(efd, 1) < 0)
            p->msi_status = -errno;
        if (efd >= 0)
            close(efd);
        return;
    }
    if (req->type == IOREQ_TYPE_PIO && req->addr == TEST_PORT_HASH) {
        req->data = *h;
        return;
    }
    if (req->dir == IOREQ_WRITE) {
        unsigned v = vcpu == -1u ? 0 : vcpu;
        p->regs[v][key % 64] = req->data & mask;
        *h = test_hash_step(*h, req->addr, req->size, req->data & mask);
    } else {
        req->data = (p->regs[vcpu][key % 64] ^ test_mix(req->addr)) & mask;
    }
}

static const struct ioreq_server_ops peer_ops = { .log = peer_log, .handle = test_peer_handle };

static void claim_or_die(struct ioreq_server *s, enum ioreq_range_type t, uint64_t a,
                         uint64_t b, uint32_t flags)
{
    int rc = ioreq_server_claim_range(s, t, a, b, flags);
    if (rc) {
        fprintf(stderr, "test-server: claim 0x%llx-0x%llx: %s: %s\n", (unsigned long long)a,
                (unsigned long long)b, strerror(-rc), ioreq_server_last_error(s));
        _exit(3);
    }
}

unsigned test_peer_posted_delay_us;
bool test_peer_edge_doorbells;

/* Serving with poll(): every fd level-triggered, the doorbells read. */
static void serve_level(struct ioreq_server *srv, unsigned n)
{
    struct pollfd *pfd = calloc(n + 2, sizeof(*pfd));

    if (!pfd)
        _exit(5);
    for (unsigned i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = ioreq_server_vcpu_fd(srv, i), .events = POLLIN };
    pfd[n] = (struct pollfd){ .fd = ioreq_server_control_fd(srv), .events = POLLIN };
    pfd[n + 1] = (struct pollfd){ .fd = ioreq_server_buffered_fd(srv), .events = POLLIN };
    for (;;) {
        if (poll(pfd, n + 2, -1) < 0 && errno != EINTR)
            _exit(5);
        for (unsigned i = 0; i < n; i++)
            if (pfd[i].revents)
                ioreq_server_dispatch_vcpu(srv, i);
        if (pfd[n + 1].revents)
            ioreq_server_dispatch_buffered(srv);
        if (pfd[n].revents && ioreq_server_check_control(srv) < 0)
            break;
    }
    free(pfd);
}

/*
 * Serving with test_peer_edge_doorbells: the vCPU doorbells in an epoll set
 * edge-triggered (ioreq_server_config.edge_doorbells: never read), the
 * control socket and the ring level-triggered, as ferry-dm's libevent does.
 */
static void serve_edge(struct ioreq_server *srv, unsigned n)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e;

    if (ep < 0)
        _exit(5);
    for (unsigned i = 0; i <= n + 1; i++) {
        int fd = i < n ? ioreq_server_vcpu_fd(srv, i)
                 : i == n ? ioreq_server_control_fd(srv) : ioreq_server_buffered_fd(srv);
        e = (struct epoll_event){ .events = EPOLLIN | (i < n ? EPOLLET : 0), .data.u32 = i };
        if (fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
            _exit(5);
    }
    for (;;) {
        struct epoll_event ev[8];
        int k = epoll_wait(ep, ev, 8, -1);
        if (k < 0 && errno != EINTR)
            _exit(5);
        for (int j = 0; j < k; j++) {
            uint32_t i = ev[j].data.u32;
            if (i < n)
                ioreq_server_dispatch_vcpu(srv, i);
            else if (i == n + 1)
                ioreq_server_dispatch_buffered(srv);
            else if (ioreq_server_check_control(srv) < 0) {
                close(ep);
                return;
            }
        }
    }
}

/* The child's whole life: register, claim, serve until the router goes. */
static void peer_main(int fd, const char *path, const char *name, bool buffered)
{
    struct ioreq_server_config cfg = { .name = name, .buffered = buffered, .ops = &peer_ops,
                                       .posted_delay_us = test_peer_posted_delay_us,
                                       .edge_doorbells = test_peer_edge_doorbells };
    struct test_peer p = { 0 };
    struct ioreq_server *srv;
    int rc;

    cfg.opaque = &p;
    rc = path ? ioreq_server_connect(path, &cfg, &srv) : ioreq_server_create(fd, &cfg, &srv);
    if (rc) {
        fprintf(stderr, "test-server: register: %s\n", strerror(-rc));
        _exit(2);
    }
    unsigned n = ioreq_server_nr_vcpus(srv);
    test_peer_init(&p, n);
    p.srv = srv;
    claim_or_die(srv, IOREQ_RANGE_PORT, TEST_PORT_BASE, TEST_PORT_MSI_FD, 0);
    claim_or_die(srv, IOREQ_RANGE_MMIO, TEST_MMIO_BASE, TEST_MMIO_END, 0);
    claim_or_die(srv, IOREQ_RANGE_MMIO, TEST_BUF_BASE, TEST_BUF_END, IOREQ_CLAIM_F_BUFFERED);
    claim_or_die(srv, IOREQ_RANGE_PCI, TEST_PCI_SBDF, TEST_PCI_SBDF, 0);
    if (ioreq_server_enable(srv, true))
        _exit(4);

    if (test_peer_edge_doorbells)
        serve_edge(srv, n);
    else
        serve_level(srv, n);
    ioreq_server_destroy(srv);
    free(p.regs);
    free(p.hash);
    _exit(0);
}

pid_t test_server_spawn_fd(int fd, const char *name, bool buffered)
{
    pid_t pid = fork();
    if (pid == 0)
        peer_main(fd, NULL, name, buffered);
    close(fd);
    return pid;
}

pid_t test_server_spawn_path(const char *path, const char *name, bool buffered)
{
    pid_t pid = fork();
    if (pid == 0)
        peer_main(-1, path, name, buffered);
    return pid;
}

static void *control_thread(void *arg)
{
    struct test_router *t = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(t->r), .events = POLLIN };

    while (!t->stop) {
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(t->r);
    }
    return NULL;
}

static void router_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct test_router *t = opaque;

    if (strstr(msg, "requests shutdown"))
        __atomic_fetch_add(&t->shutdown_logs, 1, __ATOMIC_SEQ_CST);
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-router: %s\n", msg);
}

static int router_msi(void *opaque, uint64_t address, uint32_t data)
{
    struct test_router *t = opaque;

    t->msi_address = address;
    t->msi_data = data;
    __atomic_fetch_add(&t->msis, 1, __ATOMIC_SEQ_CST);
    return data == 0xdead ? -EIO : 0;   /* lets a test see a failure come back */
}

/* A hypervisor's view of S3: one suspend at a time, a wake only while suspended. */
static int router_sleep(void *opaque, enum ioreq_sleep_state state, char *why, size_t why_len)
{
    struct test_router *t = opaque;

    if ((state == IOREQ_SLEEP_S3) == t->asleep) {
        snprintf(why, why_len, "test router: %s", t->asleep ? "asleep already" : "not asleep");
        return t->asleep ? -EBUSY : -EALREADY;
    }
    t->asleep = state == IOREQ_SLEEP_S3;
    __atomic_fetch_add(t->asleep ? &t->suspends : &t->wakes, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int router_msi_route(void *opaque, uint64_t address, uint32_t data, int fd, bool assign,
                            uint32_t *gsi)
{
    struct test_router *t = opaque;

    if (assign) {
        t->route_address = address;
        t->route_data = data;
        t->route_fd = fd;
        *gsi = 100 + t->routes;
        __atomic_fetch_add(&t->routes, 1, __ATOMIC_SEQ_CST);
    } else {
        t->route_fd = -1;
    }
    return 0;
}

static const struct ioreq_router_ops router_ops = {
    .log = router_log, .msi = router_msi, .sleep = router_sleep, .msi_route = router_msi_route,
};

int test_router_start(struct test_router *t, unsigned nr_vcpus, bool buffered,
                      unsigned timeout_ms)
{
    struct ioreq_router_config cfg = {
        .nr_vcpus = nr_vcpus, .timeout_ms = timeout_ms, .ops = &router_ops, .opaque = t,
    };
    int sv[2], rc;

    memset(t, 0, sizeof(*t));
    rc = ioreq_router_create(&cfg, &t->r);
    if (rc)
        return rc;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    rc = ioreq_router_add_connection(t->r, sv[0]);
    if (rc)
        return rc;
    t->child = test_server_spawn_fd(sv[1], "test-dm", buffered);
    if (pthread_create(&t->thread, NULL, control_thread, t))
        return -EAGAIN;
    /* Wait until the server is enabled: a PCI read answers differently then. */
    for (int i = 0; i < 5000; i++) {
        ioreq_t req = { .type = IOREQ_TYPE_PCI_CONFIG, .addr = IOREQ_PCI_ADDR(TEST_PCI_SBDF, 0),
                        .size = 4, .dir = IOREQ_READ, .count = 1 };
        if (ioreq_router_send(t->r, 0, &req) == IOREQ_SENT)
            return 0;
        usleep(1000);
    }
    return -ETIMEDOUT;
}

void test_router_stop(struct test_router *t)
{
    t->stop = true;
    pthread_join(t->thread, NULL);
    ioreq_router_destroy(t->r);
    if (t->child > 0) {
        int st;
        kill(t->child, SIGKILL);
        waitpid(t->child, &st, 0);
    }
}
