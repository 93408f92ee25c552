/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A test ioreq server run in a child process, and a router harness with a
 * control thread, shared by the transport tests and bench/ioreq-rtt.
 *
 * The test device: per vCPU a file of 64 registers.  A write stores data in
 * reg[addr % 64]; a read returns reg[addr % 64] ^ mix(addr), masked to the
 * access size.  Every write also folds (addr, size, data) into a running
 * hash that reads of TEST_PORT_HASH return, so the router can check that
 * posted and synchronous writes arrived complete and in order.
 */
#ifndef FERRY_TEST_IOREQ_PEER_H
#define FERRY_TEST_IOREQ_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ioreq/ioreq.h"

#define TEST_PORT_BASE      0x1000u
#define TEST_PORT_END       0x1fffu
#define TEST_PORT_HASH      0x2000u     /* read: running write hash of this vCPU */
#define TEST_PORT_DIE       0x2001u     /* any access: the server exits at once */
#define TEST_PORT_HANG      0x2002u     /* any access: the server never answers */
#define TEST_PORT_PAUSE     0x2003u     /* write N: stop serving for N ms */
#define TEST_PORT_MSI       0x2004u     /* write N: signal MSI 0xfee00000/N; read: its status */
#define TEST_PORT_MSI_FD    0x2005u     /* write N: route an eventfd to 0xfee00000/N, write it */
#define TEST_MMIO_BASE      0x10000000ull
#define TEST_MMIO_END       0x1fffffffull
#define TEST_BUF_BASE       0xa0000ull  /* buffered MMIO (below 1 MiB) */
#define TEST_BUF_END        0xbffffull
#define TEST_PCI_SBDF       IOREQ_PCI_SBDF(0, 0, 3, 0)

static inline uint64_t test_mix(uint64_t addr)
{
    uint64_t x = addr * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static inline uint64_t test_hash_step(uint64_t h, uint64_t addr, uint32_t size, uint64_t data)
{
    return (h ^ addr ^ ((uint64_t)size << 56) ^ data) * 0x100000001b3ull;
}

/* The device itself, usable in-process too (bench/ioreq-rtt's baseline). */
struct test_peer {
    uint64_t (*regs)[64];
    uint64_t *hash;
    struct ioreq_server *srv;   /* NULL in-process */
    int msi_status;
};
void test_peer_init(struct test_peer *p, unsigned nr_vcpus);
/* The servers forked from now on: ioreq_server_config.posted_delay_us (0: the default). */
extern unsigned test_peer_posted_delay_us;
/* ... and edge_doorbells, served from an epoll set (the doorbells EPOLLET). */
extern bool test_peer_edge_doorbells;
void test_peer_handle(void *opaque, unsigned vcpu, ioreq_t *req);

struct test_router {
    struct ioreq_router *r;
    pthread_t thread;
    volatile bool stop;
    pid_t child;
    unsigned msis;              /* MSIs the router delivered (ops->msi) */
    uint64_t msi_address;
    uint32_t msi_data;
    unsigned shutdown_logs;     /* router log lines about shutdown requests */
    unsigned suspends, wakes;   /* ops->sleep calls (S3, WAKE) that succeeded */
    bool asleep;                /* as a hypervisor would track it */
    int route_fd;               /* the last fd ops->msi_route assigned, -1 after removal */
    uint64_t route_address;
    uint32_t route_data;
    unsigned routes;
};

/* Fork a test server connected to a new router with nr_vcpus; waits until it is enabled. */
int test_router_start(struct test_router *t, unsigned nr_vcpus, bool buffered,
                      unsigned timeout_ms);
void test_router_stop(struct test_router *t);
/* Fork a test server connected by the router's listening path. */
pid_t test_server_spawn_path(const char *path, const char *name, bool buffered);
/* Fork a test server on one end of a socketpair (the other goes to the router). */
pid_t test_server_spawn_fd(int fd, const char *name, bool buffered);

#endif
