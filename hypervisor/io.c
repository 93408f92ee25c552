// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Exit -> ioreq routing.
 *
 * Every trapped access becomes one ioreq_t.  String port I/O (rep ins/outs:
 * KVM hands over up to a page of elements per exit) goes to an ioreq server
 * as one request through the vCPU's bounce page, and element by element
 * to in-process handlers and PCI config ports.  In-process handlers (the debug ports, benchmarks)
 * are looked up first, in range sets of their own; everything else goes to
 * the ioreq router, which finds the server that claimed it.  Nobody owns
 * it: reads return all ones, writes are dropped, and the place is counted
 * and logged once.
 *
 * PCI config space: port 0xcf8 latches an address (enable bit 31, bus,
 * device, function, register); 0xcfc..0xcff then become PCI_CONFIG ioreqs
 * with addr = SBDF << 32 | register.  The ECAM window (HV_ECAM_BASE, one
 * MiB per bus) turns MMIO into the same PCI_CONFIG ioreqs.
 */
#include "hypervisor/hv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define vm_log(vm, lvl, ...) ferry_logf((vm)->cfg.log, (vm)->cfg.log_opaque, lvl, __VA_ARGS__)

#define PCI_CF8_PORT    0xcf8
#define PCI_CFC_PORT    0xcfc
#define PCI_CF8_ENABLE  0x80000000u

static const char *const range_names[IOREQ_RANGE_NR] = { "port", "mmio", "pci" };

int hv_io_init(struct ferry_vm *vm)
{
    for (int t = 0; t < IOREQ_RANGE_NR; t++) {
        vm->local[t] = ioreq_rangeset_new();
        if (!vm->local[t])
            return -ENOMEM;
    }
    return 0;
}

void hv_io_fini(struct ferry_vm *vm)
{
    for (int t = 0; t < IOREQ_RANGE_NR; t++) {
        ioreq_rangeset_free(vm->local[t]);
        vm->local[t] = NULL;
    }
}

int hv_io_register(struct ferry_vm *vm, enum ioreq_range_type type, uint64_t start,
                   uint64_t end, const struct hv_io_handler *h)
{
    void *other = NULL;
    int rc;

    if ((unsigned)type >= IOREQ_RANGE_NR || end < start)
        return -EINVAL;
    rc = ioreq_rangeset_add(vm->local[type], start, end, (void *)h, &other);
    if (rc)
        vm_log(vm, FERRY_LOG_ERROR, "in-process %s [0x%llx, 0x%llx] for %s: %s%s%s",
               range_names[type], (unsigned long long)start, (unsigned long long)end,
               h->name, strerror(-rc), other ? ", taken by " : "",
               other ? ((const struct hv_io_handler *)other)->name : "");
    return rc;
}

static uint64_t ones(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static uint8_t req_range_type(const ioreq_t *req)
{
    switch (req->type) {
    case IOREQ_TYPE_PIO: return IOREQ_RANGE_PORT;
    case IOREQ_TYPE_PCI_CONFIG: return IOREQ_RANGE_PCI;
    default: return IOREQ_RANGE_MMIO;
    }
}

static void io_unclaimed(struct ferry_vm *vm, const ioreq_t *req)
{
    uint8_t type = req_range_type(req);
    uint64_t key = req->addr;
    struct hv_unclaimed *u = NULL;
    bool first = false;

    if (type == IOREQ_RANGE_MMIO)
        key &= ~0xfffull;
    else if (type == IOREQ_RANGE_PCI)
        key = IOREQ_PCI_ADDR_SBDF(req->addr);
    pthread_mutex_lock(&vm->unclaimed_lock);
    for (unsigned i = 0; i < vm->nr_unclaimed; i++)
        if (vm->unclaimed[i].type == type && vm->unclaimed[i].key == key)
            u = &vm->unclaimed[i];
    if (!u && vm->nr_unclaimed < HV_UNCLAIMED_MAX) {
        u = &vm->unclaimed[vm->nr_unclaimed++];
        *u = (struct hv_unclaimed){ .type = type, .key = key };
        first = true;
    }
    if (u) {
        if (req->dir == IOREQ_READ)
            u->reads++;
        else
            u->writes++;
    } else {
        vm->unclaimed_other++;
    }
    pthread_mutex_unlock(&vm->unclaimed_lock);
    if (first)
        vm_log(vm, FERRY_LOG_INFO, "unclaimed %s %s at 0x%llx size %u: %s "
               "(logged once per place)", range_names[type],
               req->dir == IOREQ_READ ? "read" : "write",
               (unsigned long long)req->addr, req->size,
               req->dir == IOREQ_READ ? "reads all ones" : "dropped");
}

void hv_io_log_unclaimed(struct ferry_vm *vm)
{
    pthread_mutex_lock(&vm->unclaimed_lock);
    for (unsigned i = 0; i < vm->nr_unclaimed; i++) {
        const struct hv_unclaimed *u = &vm->unclaimed[i];
        vm_log(vm, FERRY_LOG_INFO, "unclaimed %s 0x%llx: reads=%llu writes=%llu",
               range_names[u->type], (unsigned long long)u->key,
               (unsigned long long)u->reads, (unsigned long long)u->writes);
    }
    if (vm->unclaimed_other)
        vm_log(vm, FERRY_LOG_INFO, "unclaimed elsewhere: %llu accesses",
               (unsigned long long)vm->unclaimed_other);
    pthread_mutex_unlock(&vm->unclaimed_lock);
}

void hv_io_dispatch(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req)
{
    uint8_t type = req_range_type(req);
    uint64_t key = type == IOREQ_RANGE_PCI ? IOREQ_PCI_ADDR_SBDF(req->addr) : req->addr;
    const struct hv_io_handler *h = ioreq_rangeset_lookup(vm->local[type], key, NULL, NULL);

    req->count = 1;
    req->vp_eport = vcpu;
    if (h) {
        h->access(vm, vcpu, req, h->opaque);
        return;
    }
    if (vm->router) {
        int rc = ioreq_router_send(vm->router, vcpu, req);
        if (rc == IOREQ_SENT || rc == IOREQ_POSTED)
            return;
        if (rc == IOREQ_SERVER_FAILED && req->dir == IOREQ_READ) {
            req->data = ones(req->size);
            return;
        }
        if (rc < 0) {
            uint32_t dropped = 0;
            pthread_mutex_lock(&vm->unclaimed_lock);
            bool ok = ferry_ratelimit_ok(&vm->send_rl, &dropped);
            pthread_mutex_unlock(&vm->unclaimed_lock);
            if (ok)
                vm_log(vm, FERRY_LOG_WARNING, "vcpu %u: ioreq send %s 0x%llx size %u: %s "
                       "(%u similar messages suppressed)", vcpu, range_names[type],
                       (unsigned long long)req->addr, req->size, strerror(-rc), dropped);
        }
    }
    io_unclaimed(vm, req);
    if (req->dir == IOREQ_READ)
        req->data = ones(req->size);
}

/* One access of the exit's data buffer as an ioreq of type, then its result back. */
static void io_access(struct ferry_vm *vm, unsigned vcpu, uint8_t type, uint64_t addr,
                      unsigned size, bool is_write, uint8_t *data)
{
    ioreq_t req = {
        .addr = addr,
        .size = size,
        .dir = is_write ? IOREQ_WRITE : IOREQ_READ,
        .type = type,
        .state = STATE_IOREQ_READY,
    };

    if (is_write)
        memcpy(&req.data, data, size);
    hv_io_dispatch(vm, vcpu, &req);
    if (!is_write)
        memcpy(data, &req.data, size);
}

static void io_pci_config(struct ferry_vm *vm, unsigned vcpu, uint32_t sbdf, uint32_t reg,
                          unsigned size, bool is_write, uint8_t *data)
{
    io_access(vm, vcpu, IOREQ_TYPE_PCI_CONFIG, IOREQ_PCI_ADDR(sbdf, reg), size, is_write, data);
}

void hv_io_port(struct ferry_vm *vm, unsigned vcpu, uint16_t port, unsigned size,
                bool is_write, uint8_t *data)
{
    if (port == PCI_CF8_PORT && size == 4) {
        uint32_t v;
        if (is_write) {
            memcpy(&v, data, 4);
            atomic_store(&vm->cf8, v);
        } else {
            v = (uint32_t)atomic_load(&vm->cf8);
            memcpy(data, &v, 4);
        }
        return;
    }
    if (port >= PCI_CFC_PORT && port <= PCI_CFC_PORT + 3) {
        uint32_t cf8 = (uint32_t)atomic_load(&vm->cf8);
        unsigned off = port - PCI_CFC_PORT;
        if (!(cf8 & PCI_CF8_ENABLE)) {
            if (!is_write)
                memset(data, 0xff, size);
            return;
        }
        if (off + size > 4 || (off & (size - 1))) {
            /* Unaligned or past 0xcff: byte by byte, as the bus would split it; bytes
             * beyond 0xcff are ordinary port I/O. */
            for (unsigned i = 0; i < size; i++)
                hv_io_port(vm, vcpu, (uint16_t)(port + i), 1, is_write, data + i);
            return;
        }
        uint32_t bdf = (cf8 >> 8) & 0xffff;
        /* AMD-style extended register bits 27:24 reach the whole 4 KiB. */
        uint32_t reg = (cf8 & 0xfc) | ((cf8 >> 16) & 0xf00);
        io_pci_config(vm, vcpu, IOREQ_PCI_SBDF(0, bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7),
                      reg + off, size, is_write, data);
        return;
    }

    io_access(vm, vcpu, IOREQ_TYPE_PIO, port, size, is_write, data);
}

void hv_io_port_rep(struct ferry_vm *vm, unsigned vcpu, uint16_t port, unsigned size,
                    uint32_t count, bool is_write, uint8_t *data)
{
    bool pci_ports = port >= PCI_CF8_PORT && port <= PCI_CFC_PORT + 3;

    if (count > 1 && vm->router && !pci_ports) {
        if (!ioreq_rangeset_lookup(vm->local[IOREQ_RANGE_PORT], port, NULL, NULL)) {
            /*
             * KVM's data page holds the elements in the order the instruction
             * handles them; where they land in guest memory (the direction
             * flag) is KVM's business, so df stays 0 here.
             */
            ioreq_t req = {
                .addr = port, .size = size, .count = count, .type = IOREQ_TYPE_PIO,
                .dir = is_write ? IOREQ_WRITE : IOREQ_READ, .vp_eport = vcpu,
                .state = STATE_IOREQ_READY,
            };
            int rc = ioreq_router_send_rep(vm->router, vcpu, &req, data);
            if (rc == IOREQ_SENT || rc == IOREQ_SERVER_FAILED)
                return;
            if (rc == IOREQ_UNCLAIMED) {
                req.count = 1;
                io_unclaimed(vm, &req);
                return;
            }
            /* Too big for one request (cannot happen with KVM's page): split. */
        }
    }
    for (uint32_t i = 0; i < count; i++)
        hv_io_port(vm, vcpu, port, size, is_write, data + (size_t)i * size);
}

void hv_io_mmio(struct ferry_vm *vm, unsigned vcpu, uint64_t gpa, unsigned len,
                bool is_write, uint8_t *data)
{
    if (gpa >= HV_ECAM_BASE && gpa - HV_ECAM_BASE < HV_ECAM_SIZE) {
        uint64_t off = gpa - HV_ECAM_BASE;
        uint32_t reg = off & 0xfff;
        if (reg + len > 0x1000 || len > 4) {
            /* Crosses a function's 4 KiB or wider than a dword: drop. */
            if (!is_write)
                memset(data, 0xff, len);
            return;
        }
        io_pci_config(vm, vcpu, IOREQ_PCI_SBDF(0, off >> 20, (off >> 15) & 0x1f,
                                               (off >> 12) & 7),
                      reg, len, is_write, data);
        return;
    }

    if (len != 1 && len != 2 && len != 4 && len != 8) {
        /* An unaligned access KVM cut at a page boundary: one byte at a time. */
        for (unsigned i = 0; i < len; i++)
            hv_io_mmio(vm, vcpu, gpa + i, 1, is_write, data + i);
        return;
    }
    io_access(vm, vcpu, IOREQ_TYPE_COPY, gpa, len, is_write, data);
}

/* ------------------------------------------------------------------ */
/* The debug ports                                                    */

static void debug_console(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    int fd = (int)(intptr_t)opaque;

    if (req->dir == IOREQ_READ) {
        req->data = 0xe9;           /* Bochs: reading the port identifies it */
        return;
    }
    uint8_t c = (uint8_t)req->data;
    if (fd >= 0 && write(fd, &c, 1) < 0) {
        /* Console gone (closed pipe): the guest keeps running. */
    }
}

static void debug_exit(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    if (req->dir == IOREQ_READ) {
        req->data = ones(req->size);
        return;
    }
    unsigned code = (unsigned)(req->data & ones(req->size));
    vm_log(vm, FERRY_LOG_INFO, "vcpu %u: guest wrote 0x%x to the debug exit port", vcpu, code);
    hv_vm_end(vm, HV_END_DEBUG_EXIT, code);
}

int hv_io_add_debug_ports(struct ferry_vm *vm, int console_fd)
{
    int rc;

    vm->debug_console = (struct hv_io_handler){ "debug-console", debug_console,
                                                (void *)(intptr_t)console_fd };
    vm->debug_exit = (struct hv_io_handler){ "debug-exit", debug_exit, NULL };
    rc = hv_io_register(vm, IOREQ_RANGE_PORT, FERRY_HV_DEBUG_CONSOLE_PORT,
                        FERRY_HV_DEBUG_CONSOLE_PORT, &vm->debug_console);
    if (rc)
        return rc;
    return hv_io_register(vm, IOREQ_RANGE_PORT, FERRY_HV_DEBUG_EXIT_PORT,
                          FERRY_HV_DEBUG_EXIT_PORT + 1, &vm->debug_exit);
}
