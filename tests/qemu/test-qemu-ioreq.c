/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A QEMU-hosted RTL8139 reached through the real ioreq transport: the
 * closest thing to the full guest test until ferry-hv and ferry-dm land.
 *
 *   test thread     plays ferry-hv's vCPU 0: ioreq_router_send() of PCI
 *                   config, port and MMIO requests (Xen ioreq_t)
 *   control thread  the router's registration socket
 *   dm thread       plays ferry-dm: an ioreq server on a libevent loop that
 *                   wraps the QEMU remote device engine in a few lines:
 *                   guest RAM from the router (GET_MEMORY), the device's
 *                   SBDF claimed, its BARs claimed as the guest programs
 *                   them, INTx registered as an irqfd with resample fd
 *
 * The guest finds 10ec:8139 by config reads, programs its BARs, reads the
 * MAC, transmits a frame from guest RAM in loopback and finds it in the
 * receive ring in guest RAM, takes the interrupt on the irqfd the router
 * was given, and sees all ones and then the same device again when the
 * remote QEMU is killed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/qemu-remote.h"
#include "ioreq/ioreq.h"

#define RAM_SIZE        (16u << 20)
#define RX_RING_GPA     0x100000u
#define TX_BUF_GPA      0x200000u
#define IO_BAR          0xc100u
#define MMIO_BAR        0xfebf1000u
#define DEV_SBDF        IOREQ_PCI_SBDF(0, 0, 5, 0)
#define DEV_GSI         11

static const char *qemu_bin;

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_INFO || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", msg);
}

/* ---- ferry-dm's side: the engine wrapped as an ioreq server ---- */

struct dm {
    struct event_base *base;
    struct ioreq_server *srv;
    struct ferry_qemu_remote *dev;
    struct event *ev_vcpu, *ev_ctl, *ev_stop;
    int stop_fd, ready_fd;
    int sock;
    pid_t pid;                  /* for the test thread, after ready */
    int error;
};

static void dm_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct dm *d = opaque;
    uint64_t v = 0;
    bool rd = req->dir == IOREQ_READ;

    if (req->data_is_ptr || req->count != 1) {
        req->data = ~0ull;
        return;
    }
    switch (req->type) {
    case IOREQ_TYPE_PCI_CONFIG:
        if (IOREQ_PCI_ADDR_SBDF(req->addr) != DEV_SBDF) {
            req->data = ~0ull;
        } else if (rd) {
            req->data = qemu_remote_config_read(d->dev, IOREQ_PCI_ADDR_REG(req->addr),
                                                req->size);
        } else {
            qemu_remote_config_write(d->dev, IOREQ_PCI_ADDR_REG(req->addr), req->size,
                                     (uint32_t)req->data);
        }
        break;
    case IOREQ_TYPE_PIO:
    case IOREQ_TYPE_COPY:
        if (rd) {
            qemu_remote_bar_read(d->dev, req->type == IOREQ_TYPE_PIO, req->addr, req->size, &v);
            req->data = v;
        } else {
            qemu_remote_bar_write(d->dev, req->type == IOREQ_TYPE_PIO, req->addr, req->size,
                                  req->data);
        }
        break;
    default:
        req->data = ~0ull;
    }
}

static const struct ioreq_server_ops dm_server_ops = { .log = tlog, .handle = dm_handle };

/* The guest moved a BAR: claim or release its range with the router. */
static void dm_bar_map(void *opaque, unsigned bar, bool io, uint64_t addr, uint64_t size,
                       bool mapped)
{
    struct dm *d = opaque;
    enum ioreq_range_type t = io ? IOREQ_RANGE_PORT : IOREQ_RANGE_MMIO;

    if (mapped) {
        int rc = ioreq_server_claim_range(d->srv, t, addr, addr + size - 1, 0);

        if (rc)
            fprintf(stderr, "dm: claim bar %u: %s: %s\n", bar, strerror(-rc),
                    ioreq_server_last_error(d->srv));
    } else {
        ioreq_server_release_range(d->srv, t, addr, addr + size - 1);
    }
}

static const struct ferry_qemu_remote_ops dm_remote_ops = { .log = tlog, .bar_map = dm_bar_map };

static void on_vcpu(evutil_socket_t fd, short what, void *arg)
{
    struct dm *d = arg;

    ioreq_server_dispatch_vcpu(d->srv, 0);
}

static void on_ctl(evutil_socket_t fd, short what, void *arg)
{
    struct dm *d = arg;

    if (ioreq_server_check_control(d->srv) < 0)
        event_base_loopbreak(d->base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(((struct dm *)arg)->base);
}

static int dm_setup(struct dm *d)
{
    struct ioreq_server_config scfg = { .name = "qemu-rtl8139", .ops = &dm_server_ops,
                                        .opaque = d };
    struct ferry_qemu_remote_config rcfg = {
        .qemu = qemu_bin, .device = "rtl8139", .id = "nic0", .irq_fd = -1,
        .resample_fd = -1, .reply_timeout_ms = 10000, .start_timeout_ms = 30000,
        .max_restarts = 1, .restart_delay_ms = 100,
    };
    struct ioreq_msg_memory_reply mem;
    int memfd, rc;

    rc = ioreq_server_create(d->sock, &scfg, &d->srv);
    if (rc)
        return rc;
    rc = qemu_remote_new(d->base, &rcfg, &dm_remote_ops, d, &d->dev);
    if (rc)
        return rc;
    /* Guest RAM comes from the hypervisor: one memfd, its regions. */
    rc = ioreq_server_get_memory(d->srv, &memfd, &mem);
    if (rc)
        return rc;
    for (unsigned i = 0; i < mem.nr_regions && !rc; i++)
        rc = qemu_remote_add_ram(d->dev, memfd, mem.region[i].gpa, mem.region[i].size,
                                 mem.region[i].offset);
    close(memfd);
    if (!rc)
        rc = qemu_remote_start(d->dev);
    if (!rc)
        rc = ioreq_server_claim_range(d->srv, IOREQ_RANGE_PCI, DEV_SBDF, DEV_SBDF, 0);
    if (!rc)
        rc = ioreq_server_set_irqfd(d->srv, DEV_GSI, qemu_remote_irq_fd(d->dev),
                                    qemu_remote_resample_fd(d->dev), true);
    if (!rc)
        rc = ioreq_server_enable(d->srv, true);
    if (rc)
        return rc;
    d->ev_vcpu = event_new(d->base, ioreq_server_vcpu_fd(d->srv, 0), EV_READ | EV_PERSIST,
                           on_vcpu, d);
    d->ev_ctl = event_new(d->base, ioreq_server_control_fd(d->srv), EV_READ | EV_PERSIST,
                          on_ctl, d);
    d->ev_stop = event_new(d->base, d->stop_fd, EV_READ, on_stop, d);
    if (!d->ev_vcpu || !d->ev_ctl || !d->ev_stop)
        return -ENOMEM;
    event_add(d->ev_vcpu, NULL);
    event_add(d->ev_ctl, NULL);
    event_add(d->ev_stop, NULL);
    d->pid = qemu_remote_pid(d->dev);
    return 0;
}

static void *dm_thread(void *arg)
{
    struct dm *d = arg;
    uint64_t one = 1;

    d->base = event_base_new();
    d->error = d->base ? dm_setup(d) : -ENOMEM;
    if (write(d->ready_fd, &one, 8) != 8)
        d->error = -EIO;
    if (!d->error)
        event_base_dispatch(d->base);
    if (d->ev_vcpu)
        event_free(d->ev_vcpu);
    if (d->ev_ctl)
        event_free(d->ev_ctl);
    if (d->ev_stop)
        event_free(d->ev_stop);
    qemu_remote_free(d->dev);
    if (d->srv)
        ioreq_server_destroy(d->srv);
    event_base_free(d->base);
    return NULL;
}

/* ---- ferry-hv's side: a router with guest RAM and an irqfd table ---- */

struct hv {
    struct ioreq_router *router;
    pthread_t ctl;
    volatile bool stop;
    int memfd;
    uint8_t *ram;
    int irqfd, resamplefd;      /* what KVM_IRQFD would have been given */
    uint32_t gsi;
};

static int hv_memory(void *opaque, struct ioreq_msg_memory_reply *m)
{
    struct hv *h = opaque;

    m->nr_regions = 1;
    m->region[0].gpa = 0;
    m->region[0].size = RAM_SIZE;
    m->region[0].offset = 0;
    return h->memfd;
}

static int hv_irqfd(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    struct hv *h = opaque;

    if (!assign)
        return 0;
    h->gsi = gsi;
    h->irqfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    h->resamplefd = resample_fd >= 0 ? fcntl(resample_fd, F_DUPFD_CLOEXEC, 3) : -1;
    return h->irqfd < 0 ? -errno : 0;
}

static const struct ioreq_router_ops hv_ops = {
    .log = tlog, .memory = hv_memory, .irqfd = hv_irqfd,
};

static void *hv_control(void *arg)
{
    struct hv *h = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(h->router), .events = POLLIN };

    while (!h->stop) {
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(h->router);
    }
    return NULL;
}

static uint64_t vcpu(struct hv *h, uint8_t type, uint64_t addr, unsigned size, bool write,
                     uint64_t data, int expect)
{
    ioreq_t req = { .type = type, .addr = addr, .size = size, .count = 1,
                    .dir = write ? IOREQ_WRITE : IOREQ_READ, .data = data };

    ck_assert_int_eq(ioreq_router_send(h->router, 0, &req), expect);
    if (write || size >= 8)
        return req.data;
    return req.data & ((1ull << (8 * size)) - 1);
}

#define CFG_RD(off, len) vcpu(&h, IOREQ_TYPE_PCI_CONFIG, IOREQ_PCI_ADDR(DEV_SBDF, off), len, \
                              false, 0, IOREQ_SENT)
#define CFG_WR(off, len, v) vcpu(&h, IOREQ_TYPE_PCI_CONFIG, IOREQ_PCI_ADDR(DEV_SBDF, off), \
                                 len, true, v, IOREQ_SENT)
#define IN(port, len) vcpu(&h, IOREQ_TYPE_PIO, port, len, false, 0, IOREQ_SENT)
#define OUT(port, len, v) vcpu(&h, IOREQ_TYPE_PIO, port, len, true, v, IOREQ_SENT)
#define MMIO_RD(a, len) vcpu(&h, IOREQ_TYPE_COPY, a, len, false, 0, IOREQ_SENT)

static void wait_eventfd(int fd, uint64_t *count)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    *count = 0;
    if (poll(&p, 1, 30000) == 1 && read(fd, count, 8) != 8)
        *count = 0;
}

START_TEST(test_rtl8139_over_ioreq)
{
    struct hv h = { .irqfd = -1, .resamplefd = -1 };
    struct dm d = { .sock = -1 };
    struct ioreq_router_config rcfg = { .nr_vcpus = 1, .timeout_ms = 60000, .ops = &hv_ops,
                                        .opaque = &h };
    pthread_t dmt;
    int sv[2];
    uint64_t n;
    uint8_t *tx, *rx;
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    unsigned spins = 0;
    pid_t pid1;

    h.memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    ck_assert_int_ge(h.memfd, 0);
    ck_assert_int_eq(ftruncate(h.memfd, RAM_SIZE), 0);
    h.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h.memfd, 0);
    ck_assert_ptr_ne(h.ram, MAP_FAILED);
    ck_assert_int_eq(ioreq_router_create(&rcfg, &h.router), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(h.router, sv[0]), 0);
    ck_assert_int_eq(pthread_create(&h.ctl, NULL, hv_control, &h), 0);

    d.sock = sv[1];
    d.stop_fd = eventfd(0, EFD_CLOEXEC);
    d.ready_fd = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_eq(pthread_create(&dmt, NULL, dm_thread, &d), 0);
    wait_eventfd(d.ready_fd, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(d.error, 0);
    ck_assert_int_eq(h.gsi, DEV_GSI);
    ck_assert_int_ge(h.irqfd, 0);
    ck_assert_int_ge(h.resamplefd, 0);

    /* Enumerate: other functions are not claimed, this one is 10ec:8139. */
    ck_assert_uint_eq(vcpu(&h, IOREQ_TYPE_PCI_CONFIG, IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, 4, 0), 0),
                           4, false, 0, IOREQ_UNCLAIMED), 0xffffffff);
    ck_assert_uint_eq(CFG_RD(0x00, 4), 0x813910ec);
    ck_assert_uint_eq(CFG_RD(0x3d, 1), 1);
    CFG_WR(0x10, 4, 0xffffffff);
    ck_assert_uint_eq(CFG_RD(0x10, 4), 0xff01);          /* 16-bit I/O decoder */
    CFG_WR(0x10, 4, IO_BAR);
    CFG_WR(0x14, 4, MMIO_BAR);
    /* Not decoded yet: nobody has claimed the ports. */
    vcpu(&h, IOREQ_TYPE_PIO, IO_BAR, 1, false, 0, IOREQ_UNCLAIMED);
    CFG_WR(0x04, 2, 0x0007);
    for (unsigned i = 0; i < 6; i++) {
        ck_assert_uint_eq(IN(IO_BAR + i, 1), mac[i]);
        ck_assert_uint_eq(MMIO_RD(MMIO_BAR + i, 1), mac[i]);
    }
    /* Just past the BARs: the router answers, the remote never hears of it. */
    vcpu(&h, IOREQ_TYPE_PIO, IO_BAR + 0x100, 1, false, 0, IOREQ_UNCLAIMED);
    vcpu(&h, IOREQ_TYPE_COPY, MMIO_BAR + 0x100, 4, false, 0, IOREQ_UNCLAIMED);

    /* Loopback: a frame from guest RAM into the receive ring in guest RAM. */
    tx = h.ram + TX_BUF_GPA;
    rx = h.ram + RX_RING_GPA;
    OUT(IO_BAR + 0x37, 1, 0x10);
    while (IN(IO_BAR + 0x37, 1) & 0x10)
        ck_assert_uint_lt(++spins, 1000);
    OUT(IO_BAR + 0x30, 4, RX_RING_GPA);
    OUT(IO_BAR + 0x3c, 2, 0x0005);
    OUT(IO_BAR + 0x44, 4, 0x8f);
    OUT(IO_BAR + 0x37, 1, 0x0c);
    OUT(IO_BAR + 0x40, 4, 0x00060000);
    memcpy(tx, mac, 6);
    memcpy(tx + 6, "\x02\0\0\0\0\x02\x88\xb5", 8);
    for (unsigned i = 14; i < 200; i++)
        tx[i] = (uint8_t)(i ^ 0x5a);
    OUT(IO_BAR + 0x20, 4, TX_BUF_GPA);
    OUT(IO_BAR + 0x10, 4, 200);
    wait_eventfd(h.irqfd, &n);                  /* the irqfd KVM would have */
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(IN(IO_BAR + 0x3e, 2) & 0x5, 0x5);
    ck_assert_uint_eq(rx[0] & 1, 1);
    ck_assert_uint_eq(rx[2] | rx[3] << 8, 204);
    ck_assert_mem_eq(rx + 4, tx, 200);
    OUT(IO_BAR + 0x3e, 2, 0xffff);              /* the guest's handler acks ... */
    n = 1;
    ck_assert_int_eq(write(h.resamplefd, &n, 8), 8);    /* ... and KVM resamples at EOI */

    /* Kill the remote: all ones through the whole path, then it is back. */
    pid1 = d.pid;
    ck_assert_int_gt(pid1, 0);
    ck_assert_int_eq(kill(pid1, SIGKILL), 0);
    for (unsigned i = 0; i < 10000 && CFG_RD(0x00, 4) != 0xffffffff; i++)
        usleep(1000);
    ck_assert_uint_eq(IN(IO_BAR, 4), 0xffffffff);
    for (unsigned i = 0; i < 60000 && CFG_RD(0x00, 4) != 0x813910ec; i++)
        usleep(1000);
    ck_assert_uint_eq(CFG_RD(0x00, 4), 0x813910ec);
    ck_assert_uint_eq(CFG_RD(0x04, 2) & 7, 7);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(IN(IO_BAR + i, 1), mac[i]);

    n = 1;
    ck_assert_int_eq(write(d.stop_fd, &n, 8), 8);
    pthread_join(dmt, NULL);
    h.stop = true;
    pthread_join(h.ctl, NULL);
    ioreq_router_destroy(h.router);
    close(h.irqfd);
    close(h.resamplefd);
    close(d.stop_fd);
    close(d.ready_fd);
    munmap(h.ram, RAM_SIZE);
    close(h.memfd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qemu-ioreq");
    TCase *tc = tcase_create("qemu-ioreq");
    SRunner *sr;
    int failed;
    static char path[4096];
    const char *env = getenv("FERRY_QEMU");

    if (env && *env) {
        qemu_bin = env;
    } else {
        FILE *f = popen("command -v qemu-system-x86_64", "r");

        if (f && fgets(path, sizeof(path), f))
            path[strcspn(path, "\n")] = '\0';
        if (f)
            pclose(f);
        qemu_bin = path[0] ? path : NULL;
    }
    if (!qemu_bin || access(qemu_bin, X_OK) != 0) {
        printf("SKIP: qemu-system-x86_64 not found (install qemu-system-x86)\n");
        return 77;
    }
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_rtl8139_over_ioreq);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
