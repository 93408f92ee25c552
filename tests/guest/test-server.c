// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small ioreq server for the guest suite, built from the ioreq library:
 * what ferry-dm will be, reduced to test devices.  It takes the same
 * arguments ferry-hv gives a device model (--ioreq-fd=N) or connects to a
 * socket (--socket=PATH).  The devices (tests/guests/guest.h):
 *
 *   TS_REGS..+63       byte-addressed registers, any width
 *   TS_FIFO            a byte queue: writes append, reads take (0xee if empty)
 *   TS_IRQ             write: signal the irqfd wired to GSI TS_IRQ_GSI
 *   TS_IRQ_LINE        write L: set GSI TS_IRQ_LINE_GSI to L through the router
 *   TS_DIE             write: exit at once (a device model dying)
 *   TS_SHUTDOWN        write N: ask the router for a power-off with code N
 *   TS_DMA_*           fill, sum or copy 4 KiB of guest RAM through the memfd
 *   TS_MMIO            4 KiB of byte-addressed registers
 *   TS_BUF_MMIO        the same, claimed buffered (posted writes)
 *   PCI 00:TS_PCI_DEV.0  4 KiB of config space, ID TS_PCI_ID (read-only)
 *   TS_UART..+7        a 16550 that only transmits: THR bytes go to stdout,
 *                      LSR says "transmitter empty" (for Linux's earlyprintk)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ioreq/ioreq.h"
#include "tests/guests/guest.h"

#define FIFO_SIZE 256

struct ts {
    struct ioreq_server *srv;
    uint8_t regs[TS_REGS_SIZE];
    uint8_t fifo[FIFO_SIZE];
    unsigned fifo_head, fifo_len;
    uint8_t mmio[TS_MMIO_SIZE];
    uint8_t buf_mmio[TS_BUF_MMIO_SIZE];
    uint8_t pci[4096];
    int irq_fd;
    uint8_t uart_lcr;
    uint64_t dma_addr, dma_src;
    uint8_t *ram;
    size_t ram_map_size;
    struct ioreq_msg_memory_reply mem;
};

static void ts_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    if (level <= FERRY_LOG_WARNING)
        fprintf(stderr, "test-server %s: %s\n", names[level], msg);
}

static void bytes_rw(uint8_t *base, size_t size, uint64_t off, ioreq_t *req)
{
    if (off >= size || req->size > size - off) {
        if (req->dir == IOREQ_READ)
            req->data = ~0ull;
        return;
    }
    if (req->dir == IOREQ_WRITE) {
        memcpy(base + off, &req->data, req->size);
    } else {
        req->data = 0;
        memcpy(&req->data, base + off, req->size);
    }
}

static uint8_t *ts_gpa(struct ts *t, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < t->mem.nr_regions; i++) {
        uint64_t g = t->mem.region[i].gpa, sz = t->mem.region[i].size;
        if (gpa >= g && gpa - g < sz && len <= sz - (gpa - g))
            return t->ram + t->mem.region[i].offset + (gpa - g);
    }
    return NULL;
}

static void ts_dma(struct ts *t, ioreq_t *req)
{
    uint64_t *p = (uint64_t *)ts_gpa(t, t->dma_addr, 4096);

    if (!p) {
        fprintf(stderr, "test-server: DMA address 0x%llx is not guest RAM\n",
                (unsigned long long)t->dma_addr);
        req->data = ~0ull;
        return;
    }
    if (req->dir == IOREQ_WRITE) {
        for (unsigned i = 0; i < 512; i++)
            p[i] = (uint32_t)req->data * (uint64_t)(i + 1);
    } else {
        uint64_t sum = 0;
        for (unsigned i = 0; i < 512; i++)
            sum += p[i];
        req->data = (uint32_t)sum;
    }
}

static void ts_port(struct ts *t, ioreq_t *req)
{
    uint64_t a = req->addr;

    if (a >= TS_REGS && a < TS_REGS + TS_REGS_SIZE) {
        bytes_rw(t->regs, sizeof(t->regs), a - TS_REGS, req);
    } else if (a == TS_FIFO) {
        uint8_t b[8];
        memcpy(b, &req->data, sizeof(b));
        for (unsigned i = 0; i < req->size; i++) {
            if (req->dir == IOREQ_WRITE) {
                if (t->fifo_len < FIFO_SIZE)
                    t->fifo[(t->fifo_head + t->fifo_len++) % FIFO_SIZE] = b[i];
            } else if (t->fifo_len) {
                b[i] = t->fifo[t->fifo_head];
                t->fifo_head = (t->fifo_head + 1) % FIFO_SIZE;
                t->fifo_len--;
            } else {
                b[i] = 0xee;
            }
        }
        if (req->dir == IOREQ_READ)
            memcpy(&req->data, b, sizeof(b));
    } else if (a == TS_IRQ && req->dir == IOREQ_WRITE) {
        if (eventfd_write(t->irq_fd, 1) < 0)
            fprintf(stderr, "test-server: irqfd write: %s\n", strerror(errno));
    } else if (a == TS_IRQ_LINE && req->dir == IOREQ_WRITE) {
        int rc = ioreq_server_set_irq_line(t->srv, TS_IRQ_LINE_GSI, req->data & 1);
        if (rc)
            fprintf(stderr, "test-server: irq line %d: %s\n", TS_IRQ_LINE_GSI, strerror(-rc));
    } else if (a == TS_DIE && req->dir == IOREQ_WRITE) {
        _exit(3);
    } else if (a == TS_SHUTDOWN && req->dir == IOREQ_WRITE) {
        int rc = ioreq_server_shutdown(t->srv, IOREQ_SHUTDOWN_POWEROFF, (uint32_t)req->data & 0xff);
        if (rc)
            fprintf(stderr, "test-server: shutdown request: %s\n", strerror(-rc));
    } else if (a == TS_DMA_LO && req->dir == IOREQ_WRITE) {
        t->dma_addr = (t->dma_addr & ~0xffffffffull) | (uint32_t)req->data;
    } else if (a == TS_DMA_HI && req->dir == IOREQ_WRITE) {
        t->dma_addr = (t->dma_addr & 0xffffffffull) | (uint64_t)(uint32_t)req->data << 32;
    } else if (a == TS_DMA_CMD) {
        ts_dma(t, req);
    } else if (a == TS_DMA_SRC_LO && req->dir == IOREQ_WRITE) {
        t->dma_src = (t->dma_src & ~0xffffffffull) | (uint32_t)req->data;
    } else if (a == TS_DMA_SRC_HI && req->dir == IOREQ_WRITE) {
        t->dma_src = (t->dma_src & 0xffffffffull) | (uint64_t)(uint32_t)req->data << 32;
    } else if (a == TS_DMA_COPY && req->dir == IOREQ_WRITE) {
        uint8_t *src = ts_gpa(t, t->dma_src, 4096), *dst = ts_gpa(t, t->dma_addr, 4096);
        if (src && dst)
            memmove(dst, src, 4096);
        else
            fprintf(stderr, "test-server: DMA copy 0x%llx -> 0x%llx: not guest RAM\n",
                    (unsigned long long)t->dma_src, (unsigned long long)t->dma_addr);
    } else if (req->dir == IOREQ_READ) {
        req->data = 0;
    }
}

static void ts_uart(struct ts *t, ioreq_t *req)
{
    unsigned reg = (unsigned)(req->addr - TS_UART);
    uint8_t c = (uint8_t)req->data;

    if (req->dir == IOREQ_WRITE) {
        if (reg == 0 && !(t->uart_lcr & 0x80) && write(STDOUT_FILENO, &c, 1) < 0)
            return;
        if (reg == 3)
            t->uart_lcr = c;
        return;
    }
    req->data = reg == 5 ? 0x60 : reg == 3 ? t->uart_lcr : 0;
}

static void ts_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct ts *t = opaque;

    switch (req->type) {
    case IOREQ_TYPE_PIO:
        if (req->addr >= TS_UART && req->addr < TS_UART + 8)
            ts_uart(t, req);
        else
            ts_port(t, req);
        break;
    case IOREQ_TYPE_COPY:
        if (req->addr >= TS_MMIO && req->addr < TS_MMIO + TS_MMIO_SIZE)
            bytes_rw(t->mmio, sizeof(t->mmio), req->addr - TS_MMIO, req);
        else if (req->addr >= TS_BUF_MMIO && req->addr < TS_BUF_MMIO + TS_BUF_MMIO_SIZE)
            bytes_rw(t->buf_mmio, sizeof(t->buf_mmio), req->addr - TS_BUF_MMIO, req);
        else if (req->dir == IOREQ_READ)
            req->data = ~0ull;
        break;
    case IOREQ_TYPE_PCI_CONFIG: {
        uint32_t reg = IOREQ_PCI_ADDR_REG(req->addr);
        if (req->dir == IOREQ_WRITE && reg < 4)
            break;                  /* vendor and device ID are read-only */
        bytes_rw(t->pci, sizeof(t->pci), reg, req);
        break;
    }
    default:
        if (req->dir == IOREQ_READ)
            req->data = ~0ull;
        break;
    }
}

static const struct ioreq_server_ops ts_ops = { .log = ts_log, .handle = ts_handle };

static int ts_setup(struct ts *t)
{
    static const struct { enum ioreq_range_type type; uint64_t start, end; uint32_t flags; } r[] = {
        { IOREQ_RANGE_PORT, TS_REGS, TS_PORT_END, 0 },
        { IOREQ_RANGE_PORT, TS_UART, TS_UART + 7, 0 },
        { IOREQ_RANGE_MMIO, TS_MMIO, TS_MMIO + TS_MMIO_SIZE - 1, 0 },
        { IOREQ_RANGE_MMIO, TS_BUF_MMIO, TS_BUF_MMIO + TS_BUF_MMIO_SIZE - 1,
          IOREQ_CLAIM_F_BUFFERED },
        { IOREQ_RANGE_PCI, IOREQ_PCI_SBDF(0, 0, TS_PCI_DEV, 0), IOREQ_PCI_SBDF(0, 0, TS_PCI_DEV, 0),
          0 },
    };
    int memfd = -1, rc;

    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        rc = ioreq_server_claim_range(t->srv, r[i].type, r[i].start, r[i].end, r[i].flags);
        if (rc) {
            fprintf(stderr, "test-server: claim 0x%llx-0x%llx: %s (%s)\n",
                    (unsigned long long)r[i].start, (unsigned long long)r[i].end,
                    strerror(-rc), ioreq_server_last_error(t->srv));
            return rc;
        }
    }
    t->irq_fd = eventfd(0, EFD_CLOEXEC);
    if (t->irq_fd < 0)
        return -errno;
    rc = ioreq_server_set_irqfd(t->srv, TS_IRQ_GSI, t->irq_fd, -1, true);
    if (rc) {
        fprintf(stderr, "test-server: irqfd gsi %d: %s\n", TS_IRQ_GSI, strerror(-rc));
        return rc;
    }
    rc = ioreq_server_get_memory(t->srv, &memfd, &t->mem);
    if (rc) {
        fprintf(stderr, "test-server: guest memory: %s\n", strerror(-rc));
        return rc;
    }
    for (unsigned i = 0; i < t->mem.nr_regions && i < IOREQ_MEMORY_MAX_REGIONS; i++) {
        uint64_t end = t->mem.region[i].offset + t->mem.region[i].size;
        if (end > t->ram_map_size)
            t->ram_map_size = end;
    }
    t->ram = mmap(NULL, t->ram_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                  memfd, 0);
    close(memfd);
    if (t->ram == MAP_FAILED) {
        fprintf(stderr, "test-server: mmap guest memory: %s\n", strerror(errno));
        return -errno;
    }
    memcpy(t->pci, &(uint32_t){ TS_PCI_ID }, 4);
    rc = ioreq_server_enable(t->srv, true);
    if (rc)
        fprintf(stderr, "test-server: enable: %s\n", strerror(-rc));
    return rc;
}

int main(int argc, char **argv)
{
    struct ioreq_server_config cfg = { .name = "test-server", .buffered = true, .ops = &ts_ops };
    struct ts *t = calloc(1, sizeof(*t));
    int fd = -1, rc;
    const char *path = NULL;

    if (!t)
        return 1;
    cfg.opaque = t;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--ioreq-fd=", 11))
            fd = atoi(argv[i] + 11);
        else if (!strncmp(argv[i], "--socket=", 9))
            path = argv[i] + 9;
        else {
            fprintf(stderr, "usage: test-server --ioreq-fd=N | --socket=PATH\n");
            return 2;
        }
    }
    rc = path ? ioreq_server_connect(path, &cfg, &t->srv) : ioreq_server_create(fd, &cfg, &t->srv);
    if (rc) {
        fprintf(stderr, "test-server: register: %s\n", strerror(-rc));
        return 1;
    }
    if (ts_setup(t))
        return 1;

    unsigned n = ioreq_server_nr_vcpus(t->srv);
    struct pollfd *p = calloc(n + 2, sizeof(*p));
    if (!p)
        return 1;
    p[0] = (struct pollfd){ .fd = ioreq_server_control_fd(t->srv), .events = POLLIN };
    p[1] = (struct pollfd){ .fd = ioreq_server_buffered_fd(t->srv), .events = POLLIN };
    for (unsigned i = 0; i < n; i++)
        p[i + 2] = (struct pollfd){ .fd = ioreq_server_vcpu_fd(t->srv, i), .events = POLLIN };
    for (;;) {
        if (poll(p, n + 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents && ioreq_server_check_control(t->srv) == -EPIPE)
            break;                  /* the router has gone: the guest ended */
        if (p[1].revents)
            ioreq_server_dispatch_buffered(t->srv);
        for (unsigned i = 0; i < n; i++)
            if (p[i + 2].revents)
                ioreq_server_dispatch_vcpu(t->srv, i);
    }
    ioreq_server_destroy(t->srv);
    if (t->ram && t->ram != MAP_FAILED)
        munmap(t->ram, t->ram_map_size);
    close(t->irq_fd);
    free(p);
    free(t);
    return 0;
}
