// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Router and server in two real processes: a million checked round trips,
 * the buffered ring (wrap-around, 8-byte writes, back-pressure), server
 * death and silence, and registration-message errors.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ioreq/ioreq-internal.h"
#include "tests/ioreq/ioreq-peer.h"
#include "tests/ioreq/test-ioreq.h"

static uint64_t mask_of(uint32_t size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* A deterministic generator, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct vcpu_job {
    struct test_router *t;
    unsigned vcpu;
    unsigned count;
    unsigned errors;
    uint64_t hash;
};

/* One vCPU thread: random accesses of every kind, each checked. */
static void *vcpu_thread(void *arg)
{
    struct vcpu_job *j = arg;
    uint64_t regs[64] = { 0 };
    uint64_t seed = 0x1234567 + j->vcpu;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    for (unsigned i = 0; i < j->count; i++) {
        uint64_t x = rng_next(&seed);
        ioreq_t req = { .count = 1, .size = sizes[x & 3], .dir = (x >> 2) & 1 };
        switch ((x >> 3) % 3) {
        case 0:
            req.type = IOREQ_TYPE_PIO;
            req.addr = TEST_PORT_BASE + (x >> 8) % 0x1000;
            if (req.size == 8)
                req.size = 4;       /* port I/O has no 8-byte accesses */
            break;
        case 1:
            req.type = IOREQ_TYPE_COPY;
            req.addr = TEST_MMIO_BASE + (x >> 8) % 0x10000;
            break;
        default:
            req.type = IOREQ_TYPE_PCI_CONFIG;
            req.addr = IOREQ_PCI_ADDR(TEST_PCI_SBDF, (x >> 8) % 256);
            if (req.size == 8)
                req.size = 4;
            break;
        }
        uint64_t key = req.type == IOREQ_TYPE_PCI_CONFIG ? IOREQ_PCI_ADDR_REG(req.addr) : req.addr;
        uint64_t data = rng_next(&seed);
        if (req.dir == IOREQ_WRITE) {
            req.data = data;
            regs[key % 64] = data & mask_of(req.size);
            j->hash = test_hash_step(j->hash, req.addr, req.size, data & mask_of(req.size));
        }
        int rc = ioreq_router_send(j->t->r, j->vcpu, &req);
        if (rc != IOREQ_SENT) {
            j->errors++;
            continue;
        }
        if (req.dir == IOREQ_READ &&
            req.data != ((regs[key % 64] ^ test_mix(req.addr)) & mask_of(req.size)))
            j->errors++;
    }
    return NULL;
}

static uint64_t read_hash(struct test_router *t, unsigned vcpu)
{
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_HASH, .size = 8,
                    .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t->r, vcpu, &req), IOREQ_SENT);
    return req.data;
}

START_TEST(test_million_round_trips)
{
    enum { VCPUS = 2 };
    unsigned total = getenv("FERRY_IOREQ_TEST_COUNT") ? (unsigned)atoi(getenv("FERRY_IOREQ_TEST_COUNT"))
                                                      : 1000000;
    struct test_router t;
    struct vcpu_job jobs[VCPUS];
    pthread_t th[VCPUS];

    ck_assert_int_eq(test_router_start(&t, VCPUS, false, 0), 0);
    for (unsigned v = 0; v < VCPUS; v++) {
        jobs[v] = (struct vcpu_job){ .t = &t, .vcpu = v, .count = total / VCPUS };
        ck_assert_int_eq(pthread_create(&th[v], NULL, vcpu_thread, &jobs[v]), 0);
    }
    for (unsigned v = 0; v < VCPUS; v++) {
        pthread_join(th[v], NULL);
        ck_assert_uint_eq(jobs[v].errors, 0);
        ck_assert_uint_eq(read_hash(&t, v), jobs[v].hash);
    }
    struct ioreq_router_stats st;
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_ge(st.sent, total);
    ck_assert_uint_eq(st.failed, 0);
    test_router_stop(&t);
}
END_TEST

/*
 * A server that watches its doorbells edge-triggered and never reads them
 * (ferry-dm's way): no ring is lost, whoever is asleep, with two vCPUs
 * interleaving synchronous requests and posted writes.
 */
START_TEST(test_edge_doorbells)
{
    enum { VCPUS = 3, COUNT = 20000 };
    struct test_router t;
    struct vcpu_job jobs[VCPUS];
    pthread_t th[VCPUS];
    uint64_t posted_hash = 0;

    test_peer_edge_doorbells = true;
    ck_assert_int_eq(test_router_start(&t, VCPUS, true, 0), 0);
    test_peer_edge_doorbells = false;
    for (unsigned v = 1; v < VCPUS; v++) {
        jobs[v] = (struct vcpu_job){ .t = &t, .vcpu = v, .count = COUNT };
        ck_assert_int_eq(pthread_create(&th[v], NULL, vcpu_thread, &jobs[v]), 0);
    }
    /*
     * Meanwhile posted writes from vCPU 0 (the test device counts them as
     * its own): each one rings or finds the server awake.
     */
    for (unsigned i = 0; i < COUNT; i++) {
        ioreq_t req = { .type = IOREQ_TYPE_COPY, .addr = TEST_BUF_BASE + (i % 64) * 4, .size = 4,
                        .dir = IOREQ_WRITE, .data = i, .count = 1 };
        int rc = ioreq_router_send(t.r, 0, &req);
        ck_assert(rc == IOREQ_POSTED || rc == IOREQ_SENT);
        posted_hash = test_hash_step(posted_hash, req.addr, req.size, i);
    }
    ck_assert_uint_eq(read_hash(&t, 0), posted_hash);
    for (unsigned v = 1; v < VCPUS; v++) {
        pthread_join(th[v], NULL);
        ck_assert_uint_eq(jobs[v].errors, 0);
        ck_assert_uint_eq(read_hash(&t, v), jobs[v].hash);
    }
    struct ioreq_router_stats st;
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_ge(st.sent + st.posted, VCPUS * COUNT);
    ck_assert_uint_eq(st.failed, 0);
    test_router_stop(&t);
}
END_TEST

START_TEST(test_unclaimed)
{
    struct test_router t;

    struct ioreq_router_stats before, st;

    ck_assert_int_eq(test_router_start(&t, 1, false, 0), 0);
    ioreq_router_get_stats(t.r, &before);
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = 0x80, .size = 2, .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_UNCLAIMED);
    ck_assert_uint_eq(req.data, 0xffff);
    req = (ioreq_t){ .type = IOREQ_TYPE_COPY, .addr = 0xfee00000, .size = 8, .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_UNCLAIMED);
    ck_assert_uint_eq(req.data, ~0ull);
    req = (ioreq_t){ .type = IOREQ_TYPE_PIO, .addr = 0x80, .size = 1, .dir = IOREQ_WRITE, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_UNCLAIMED);
    /* Bad requests from the hypervisor itself are refused, not sent. */
    req.size = 3;
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), -EINVAL);
    req.size = 1;
    ck_assert_int_eq(ioreq_router_send(t.r, 7, &req), -EINVAL);
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_eq(st.unclaimed_reads - before.unclaimed_reads, 2);
    ck_assert_uint_eq(st.unclaimed_writes - before.unclaimed_writes, 1);
    ck_assert_uint_eq(st.servers, 1);
    test_router_stop(&t);
}
END_TEST

static int post(struct test_router *t, uint64_t addr, uint32_t size, uint64_t data)
{
    ioreq_t req = { .type = IOREQ_TYPE_COPY, .addr = addr, .size = size, .dir = IOREQ_WRITE,
                    .data = data, .count = 1 };
    return ioreq_router_send(t->r, 0, &req);
}

START_TEST(test_buffered_wraparound)
{
    struct test_router t;
    uint64_t hash = 0, seed = 99;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    unsigned posted = 0;

    ck_assert_int_eq(test_router_start(&t, 1, true, 0), 0);
    /* Far more writes than slots, 8-byte ones taking two slots each. */
    for (unsigned i = 0; i < 5000; i++) {
        uint64_t x = rng_next(&seed);
        uint32_t size = sizes[x & 3];
        uint64_t addr = TEST_BUF_BASE + (x >> 8) % 0x20000;
        uint64_t data = rng_next(&seed) & mask_of(size);
        int rc = post(&t, addr, size, data);
        ck_assert(rc == IOREQ_POSTED || rc == IOREQ_SENT);
        posted += rc == IOREQ_POSTED;
        hash = test_hash_step(hash, addr, size, data);
    }
    /* The sync read is answered after the ring is drained: all 5000 are in. */
    ck_assert_uint_eq(read_hash(&t, 0), hash);
    ck_assert_uint_gt(posted, 0);
    test_router_stop(&t);
}
END_TEST

/* A device that did not declare posted writes gets every write synchronously. */
START_TEST(test_unbuffered_claim_is_synchronous)
{
    struct test_router t;

    ck_assert_int_eq(test_router_start(&t, 1, true, 0), 0);
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(post(&t, TEST_MMIO_BASE + i, 4, i), IOREQ_SENT);
    struct ioreq_router_stats st;
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_eq(st.posted, 0);
    test_router_stop(&t);
}
END_TEST

/*
 * Posted writes then at once a synchronous read, many times: the read must
 * see every earlier write, whichever doorbells were coalesced away.
 */
START_TEST(test_posted_then_read)
{
    struct test_router t;
    uint64_t hash = 0, seed = 7;
    unsigned posted = 0;

    ck_assert_int_eq(test_router_start(&t, 1, true, 0), 0);
    for (unsigned i = 0; i < 20000; i++) {
        unsigned k = 1 + rng_next(&seed) % 4;
        for (unsigned j = 0; j < k; j++) {
            uint64_t addr = TEST_BUF_BASE + rng_next(&seed) % 0x1000, data = rng_next(&seed) & 0xff;
            int rc = post(&t, addr, 1, data);
            ck_assert(rc == IOREQ_POSTED || rc == IOREQ_SENT);
            posted += rc == IOREQ_POSTED;
            hash = test_hash_step(hash, addr, 1, data);
        }
        ck_assert_uint_eq(read_hash(&t, 0), hash);
    }
    ck_assert_uint_gt(posted, 0);
    struct ioreq_router_stats st;
    ioreq_router_get_stats(t.r, &st);
    /* Coalescing: far fewer doorbells than requests. */
    ck_assert_uint_lt(st.doorbells, st.sent + st.posted);
    test_router_stop(&t);
}
END_TEST

/* Until the server has applied every posted write, without a synchronous request. */
static void wait_posted_applied(struct test_router *t, struct ioreq_router_stats *st)
{
    for (int i = 0; i < 30000; i++) {
        ioreq_router_get_stats(t->r, st);
        if (st->posted_pending == 0)
            return;
        usleep(1000);
    }
    ck_abort_msg("%llu posted writes never applied", (unsigned long long)st->posted_pending);
}

/*
 * A burst of posted writes: once the ring's doorbell has found work twice
 * within the server's delay the ring is masked, the writes after it ring
 * nobody and are applied on the server's timer, with no synchronous
 * request to push them; a drain that finds the ring empty unmasks it, and
 * the next write rings again.
 */
START_TEST(test_posted_burst_masked)
{
    struct test_router t;
    struct ioreq_router_stats st, before;
    uint64_t hash = 0;
    unsigned i = 0;

    test_peer_posted_delay_us = 1000000;        /* 1 s: the steps below take microseconds */
    ck_assert_int_eq(test_router_start(&t, 1, true, 0), 0);
    test_peer_posted_delay_us = 0;
    /*
     * One write at a time, each applied before the next, until one goes into
     * a masked ring (how many doorbells that takes depends on whether the
     * server was still awake: a doorbell goes only to a sleeper).
     */
    for (;; i++) {
        ck_assert_uint_lt(i, 100);
        ioreq_router_get_stats(t.r, &before);
        ck_assert_int_eq(post(&t, TEST_BUF_BASE + i, 4, i), IOREQ_POSTED);
        hash = test_hash_step(hash, TEST_BUF_BASE + i, 4, i);
        ioreq_router_get_stats(t.r, &st);
        if (st.posted_quiet > before.posted_quiet)
            break;
        wait_posted_applied(&t, &st);
    }
    ck_assert_uint_ge(i, 1);
    ck_assert_uint_eq(st.doorbells, before.doorbells);
    /* Masked now: 100 more writes, not one doorbell, all applied on the timer. */
    for (unsigned k = 0; k < 100; k++) {
        ck_assert_int_eq(post(&t, TEST_BUF_BASE + 0x100 + k, 2, k), IOREQ_POSTED);
        hash = test_hash_step(hash, TEST_BUF_BASE + 0x100 + k, 2, k);
    }
    wait_posted_applied(&t, &st);
    ck_assert_uint_eq(st.doorbells, before.doorbells);
    ck_assert_uint_eq(st.posted_quiet - before.posted_quiet, 101);
    /* Two delays with no write: the timer found the ring empty and unmasked it. */
    usleep(2 * 1000000 + 200000);
    ck_assert_int_eq(post(&t, TEST_BUF_BASE, 1, 0x5a), IOREQ_POSTED);
    hash = test_hash_step(hash, TEST_BUF_BASE, 1, 0x5a);
    wait_posted_applied(&t, &st);
    ck_assert_uint_eq(st.doorbells, before.doorbells + 1);
    ck_assert_uint_eq(st.posted_quiet - before.posted_quiet, 101);
    ck_assert_uint_eq(read_hash(&t, 0), hash);
    test_router_stop(&t);
}
END_TEST

/* String I/O: one request per call, elements in order, both directions, df. */
START_TEST(test_string_io)
{
    struct test_router t;
    struct ioreq_router_stats before, st;
    uint64_t hash = 0;

    ck_assert_int_eq(test_router_start(&t, 2, false, 0), 0);
    ioreq_router_get_stats(t.r, &before);
    /* rep outsw: 1000 words to one port, in iteration order whatever df says. */
    for (int df = 0; df < 2; df++) {
        uint16_t words[1000];
        for (unsigned i = 0; i < 1000; i++)
            words[i] = (uint16_t)(i * 7 + df);
        ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_BASE + 2, .size = 2,
                        .count = 1000, .dir = IOREQ_WRITE, .df = df };
        ck_assert_int_eq(ioreq_router_send_rep(t.r, 1, &req, words), IOREQ_SENT);
        for (unsigned i = 0; i < 1000; i++)
            hash = test_hash_step(hash, TEST_PORT_BASE + 2, 2, words[i]);
    }
    ck_assert_uint_eq(read_hash(&t, 1), hash);
    /* rep movs from MMIO: addresses step up, or down with df. */
    for (int df = 0; df < 2; df++) {
        uint32_t v[512];
        uint64_t base = TEST_MMIO_BASE + 0x4000;
        ioreq_t req = { .type = IOREQ_TYPE_COPY, .addr = base, .size = 4, .count = 512,
                        .dir = IOREQ_READ, .df = df };
        ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, v), IOREQ_SENT);
        for (unsigned i = 0; i < 512; i++) {
            uint64_t a = df ? base - 4 * i : base + 4 * i;
            ck_assert_uint_eq(v[i], (uint32_t)test_mix(a));  /* registers still 0 */
        }
    }
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_eq(st.sent - before.sent, 4 + 1);
    ck_assert_uint_eq(st.rep_elements - before.rep_elements, 2 * 1000 + 2 * 512);
    /* Too big for the bounce page, empty, PCI config, or out of the claim: refused. */
    uint8_t big[IOREQ_BOUNCE_SIZE + 8];
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_BASE, .size = 2,
                    .count = IOREQ_BOUNCE_SIZE / 2 + 1, .dir = IOREQ_READ };
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), -E2BIG);
    req.count = 0;
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), -EINVAL);
    req = (ioreq_t){ .type = IOREQ_TYPE_COPY, .addr = TEST_MMIO_END - 7, .size = 4, .count = 3,
                     .dir = IOREQ_READ };
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), -E2BIG);
    req.count = 2;
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), IOREQ_SENT);
    req = (ioreq_t){ .type = IOREQ_TYPE_COPY, .addr = TEST_MMIO_BASE + 4, .size = 4, .count = 3,
                     .dir = IOREQ_READ, .df = 1 };
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), -E2BIG);
    /* Unclaimed: all ones. */
    req = (ioreq_t){ .type = IOREQ_TYPE_PIO, .addr = 0x80, .size = 2, .count = 4,
                     .dir = IOREQ_READ };
    ck_assert_int_eq(ioreq_router_send_rep(t.r, 0, &req, big), IOREQ_UNCLAIMED);
    for (unsigned i = 0; i < 8; i++)
        ck_assert_uint_eq(big[i], 0xff);
    test_router_stop(&t);
}
END_TEST

struct flood {
    struct test_router *t;
    unsigned posted, sent;
    uint64_t hash;
};

static void *flood_thread(void *arg)
{
    struct flood *f = arg;

    for (unsigned i = 0; i < 2 * IOREQ_BUFFER_SLOT_NUM; i++) {
        int rc = post(f->t, TEST_BUF_BASE + i, 4, i);
        f->posted += rc == IOREQ_POSTED;
        f->sent += rc == IOREQ_SENT;
        f->hash = test_hash_step(f->hash, TEST_BUF_BASE + i, 4, i);
    }
    return NULL;
}

START_TEST(test_buffered_backpressure)
{
    struct test_router t;
    struct flood f = { .t = &t };
    pthread_t th;

    ck_assert_int_eq(test_router_start(&t, 1, true, 0), 0);
    /* Freeze the server, flood the ring, thaw it: the ring fills up and the
     * rest must wait synchronously (back-pressure) without losing a write. */
    ck_assert_int_eq(kill(t.child, SIGSTOP), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, flood_thread, &f), 0);
    usleep(200 * 1000);
    ck_assert_int_eq(kill(t.child, SIGCONT), 0);
    pthread_join(th, NULL);
    ck_assert_uint_ge(f.posted, IOREQ_BUFFER_SLOT_NUM - 1);
    ck_assert_uint_ge(f.sent, 1);
    ck_assert_uint_eq(f.posted + f.sent, 2 * IOREQ_BUFFER_SLOT_NUM);
    ck_assert_uint_eq(read_hash(&t, 0), f.hash);
    test_router_stop(&t);
}
END_TEST

START_TEST(test_server_death)
{
    struct test_router t;

    ck_assert_int_eq(test_router_start(&t, 1, false, 0), 0);
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_DIE, .size = 4,
                    .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_SERVER_FAILED);
    ck_assert_uint_eq(req.data, 0xffffffff);
    /* Its ranges are gone: the same addresses are now unclaimed. */
    req = (ioreq_t){ .type = IOREQ_TYPE_COPY, .addr = TEST_MMIO_BASE, .size = 4,
                     .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_UNCLAIMED);
    /* A new server can take them over. */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(t.r, sv[0]), 0);
    pid_t second = test_server_spawn_fd(sv[1], "test-dm-2", false);
    int rc = IOREQ_UNCLAIMED;
    for (int i = 0; i < 5000 && rc != IOREQ_SENT; i++) {
        rc = ioreq_router_send(t.r, 0, &req);
        if (rc != IOREQ_SENT)
            usleep(1000);
    }
    ck_assert_int_eq(rc, IOREQ_SENT);
    ck_assert_uint_eq(req.data, test_mix(TEST_MMIO_BASE) & 0xffffffff);
    test_router_stop(&t);
    kill(second, SIGKILL);
    waitpid(second, NULL, 0);
}
END_TEST

static int msi_from_server(struct test_router *t, uint64_t addr_low, uint32_t data)
{
    ioreq_t w = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_MSI, .size = 8, .dir = IOREQ_WRITE,
                  .data = addr_low << 32 | data, .count = 1 };
    ioreq_t r = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_MSI, .size = 4, .dir = IOREQ_READ,
                  .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t->r, 0, &w), IOREQ_SENT);
    ck_assert_int_eq(ioreq_router_send(t->r, 0, &r), IOREQ_SENT);
    return (int)(uint32_t)r.data;
}

START_TEST(test_msi)
{
    struct test_router t;

    ck_assert_int_eq(test_router_start(&t, 1, false, 0), 0);
    /* The server signals an MSI while handling a request; the router hands it on. */
    ck_assert_int_eq(msi_from_server(&t, 0x1000, 0x4041), 0);
    ck_assert_uint_eq(__atomic_load_n(&t.msis, __ATOMIC_SEQ_CST), 1);
    ck_assert_uint_eq(t.msi_address, 0xfee01000);
    ck_assert_uint_eq(t.msi_data, 0x4041);
    /* The hypervisor's failure comes back to the server. */
    ck_assert_int_eq(msi_from_server(&t, 0, 0xdead), -EIO);
    /* An MSI through an eventfd the router was given: one write, no message. */
    unsigned before = __atomic_load_n(&t.msis, __ATOMIC_SEQ_CST);
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_MSI_FD, .size = 8, .count = 1,
                    .dir = IOREQ_WRITE, .data = 0x2000ull << 32 | 0x4051 };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_SENT);
    req = (ioreq_t){ .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_MSI, .size = 4, .count = 1,
                     .dir = IOREQ_READ };
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_SENT);
    ck_assert_int_eq((int32_t)req.data, 0);
    ck_assert_uint_eq(__atomic_load_n(&t.routes, __ATOMIC_SEQ_CST), 1);
    ck_assert_uint_eq(t.route_address, 0xfee02000);
    ck_assert_uint_eq(t.route_data, 0x4051);
    eventfd_t v = 0;
    ck_assert_int_ge(t.route_fd, 0);
    ck_assert_int_eq(eventfd_read(t.route_fd, &v), 0);      /* the router kept it open */
    ck_assert_uint_eq(v, 1);
    ck_assert_uint_eq(__atomic_load_n(&t.msis, __ATOMIC_SEQ_CST), before);
    test_router_stop(&t);
    ck_assert_int_eq(t.route_fd, -1);                       /* undone with the server */
}
END_TEST

/* Out of file descriptors, a connecting server is dropped instead of spinning the loop. */
START_TEST(test_accept_out_of_fds)
{
    struct ioreq_router_config cfg = { .nr_vcpus = 1 };
    struct ioreq_router *r;
    char path[64];
    struct rlimit rl;
    int sv[2];

    snprintf(path, sizeof(path), "/tmp/ferry-test-ioreq-%d.sock", (int)getpid());
    ck_assert_int_eq(ioreq_router_create(&cfg, &r), 0);
    ck_assert_int_eq(ioreq_router_listen(r, path), 0);
    /* The client lives in a child that connects when told, over a pipe made now. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(sv[1], &c, 1) != 1)
            _exit(2);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            _exit(3);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        /* The router must hang up on us. */
        _exit(poll(&p, 1, 10000) == 1 && recv(fd, &c, 1, 0) <= 0 ? 0 : 4);
    }
    /* Use up every fd this process may have. */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 64;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (dup(0) >= 0)
        ;
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_int_eq(write(sv[0], "c", 1), 1);
    struct pollfd p = { .fd = ioreq_router_get_fd(r), .events = POLLIN };
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    ioreq_router_dispatch(r);
    /* Nothing is left pending: the loop would not spin. */
    ck_assert_int_eq(poll(&p, 1, 100), 0);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct ioreq_router_stats stats;
    ioreq_router_get_stats(r, &stats);
    ck_assert_uint_eq(stats.servers, 0);
    ioreq_router_destroy(r);
}
END_TEST

START_TEST(test_server_timeout)
{
    struct test_router t;

    ck_assert_int_eq(test_router_start(&t, 2, false, 300), 0);
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = TEST_PORT_HANG, .size = 1,
                    .dir = IOREQ_READ, .count = 1 };
    ck_assert_int_eq(ioreq_router_send(t.r, 1, &req), IOREQ_SERVER_FAILED);
    ck_assert_uint_eq(req.data, 0xff);
    struct ioreq_router_stats st;
    ioreq_router_get_stats(t.r, &st);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.servers, 0);
    /* The other vCPU is not stuck behind it. */
    req.addr = TEST_PORT_BASE;
    ck_assert_int_eq(ioreq_router_send(t.r, 0, &req), IOREQ_UNCLAIMED);
    test_router_stop(&t);
}
END_TEST

/* ---- registration messages, spoken by hand ---------------------------- */

struct raw {
    struct test_router t;
    int sock;
};

static int raw_call(int sock, uint16_t type, const void *p, size_t len, const int *fds,
                    unsigned nfds, char *why, size_t why_len)
{
    char buf[IOREQ_MSG_MAX];
    int rfds[IOREQ_MSG_MAX_FDS];
    unsigned rn;

    if (ioreq_msg_send(sock, type, 77, p, len, fds, nfds))
        return -999;
    struct pollfd pf = { .fd = sock, .events = POLLIN };
    if (poll(&pf, 1, 5000) <= 0)
        return -998;
    ssize_t n = ioreq_msg_recv(sock, buf, rfds, &rn);
    for (unsigned i = 0; i < rn; i++)
        close(rfds[i]);
    if (n < (ssize_t)(sizeof(struct ioreq_msg_hdr) + 4))
        return -997;
    const struct ioreq_msg_reply *rep = (const void *)(buf + sizeof(struct ioreq_msg_hdr));
    if (why) {
        size_t m = (size_t)n - sizeof(struct ioreq_msg_hdr) - 4;
        snprintf(why, why_len, "%.*s", (int)m, rep->message);
    }
    return rep->status;
}

static void raw_open(struct raw *w)
{
    int sv[2];

    ck_assert_int_eq(test_router_start(&w->t, 1, false, 0), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(w->t.r, sv[0]), 0);
    w->sock = sv[1];
}

START_TEST(test_registration_errors)
{
    struct raw w;
    char why[256];
    struct ioreq_msg_range m = { .type = IOREQ_RANGE_PORT, .start = 0x3f8, .end = 0x3ff };

    raw_open(&w);
    /* Nothing before HELLO. */
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, why, sizeof(why)),
                     -EPROTO);
    ck_assert_msg(strstr(why, "before HELLO"), "%s", why);
    /* Wrong payload size for the type. */
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, 4, NULL, 0, why, sizeof(why)),
                     -EBADMSG);
    ck_assert_msg(strstr(why, "payload of 4 bytes"), "%s", why);
    /* Unknown type. */
    ck_assert_int_eq(raw_call(w.sock, 99, NULL, 0, NULL, 0, why, sizeof(why)), -EBADMSG);
    ck_assert_msg(strstr(why, "unknown message type 99"), "%s", why);
    /* fds where none belong. */
    int fd = dup(0);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_ENABLE, NULL, 0, &fd, 1, why, sizeof(why)),
                     -EBADMSG);
    close(fd);

    struct ioreq_msg_hello h = { .name = "raw" };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_HELLO, &h, sizeof(h), NULL, 0, NULL, 0), 0);
    /* Drain the doorbells message that follows the HELLO reply. */
    char buf[IOREQ_MSG_MAX];
    int rfds[IOREQ_MSG_MAX_FDS];
    unsigned rn;
    ck_assert_int_gt(ioreq_msg_recv(w.sock, buf, rfds, &rn), 0);
    ck_assert_uint_eq(rn, 2);
    close(rfds[0]);
    close(rfds[1]);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_HELLO, &h, sizeof(h), NULL, 0, why, sizeof(why)),
                     -EALREADY);
    /* A range the test server already owns: refused, naming the owner. */
    m = (struct ioreq_msg_range){ .type = IOREQ_RANGE_PORT, .start = 0x1ff0, .end = 0x2000 };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, why, sizeof(why)),
                     -EEXIST);
    ck_assert_msg(strstr(why, "claimed by test-dm"), "%s", why);
    m = (struct ioreq_msg_range){ .type = IOREQ_RANGE_PORT, .start = 0x10, .end = 0x10000 };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, why, sizeof(why)),
                     -ERANGE);
    m = (struct ioreq_msg_range){ .type = 7, .start = 0, .end = 1 };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, why, sizeof(why)),
                     -EINVAL);
    m = (struct ioreq_msg_range){ .type = IOREQ_RANGE_MMIO, .start = 9, .end = 8 };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, why, sizeof(why)),
                     -EINVAL);
    /* Claim, release twice. */
    m = (struct ioreq_msg_range){ .type = IOREQ_RANGE_PORT, .start = 0x3f8, .end = 0x3ff };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_CLAIM, &m, sizeof(m), NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_RELEASE, &m, sizeof(m), NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_RELEASE, &m, sizeof(m), NULL, 0, NULL, 0),
                     -ENOENT);
    /* No irqfd support in this router, and a wrong fd count. */
    struct ioreq_msg_irqfd irq = { .gsi = 4, .flags = IOREQ_IRQFD_F_RESAMPLE };
    fd = dup(0);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_IRQFD, &irq, sizeof(irq), &fd, 1, why, sizeof(why)),
                     -EINVAL);
    irq.flags = 0;
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_IRQFD, &irq, sizeof(irq), &fd, 1, why, sizeof(why)),
                     -ENOSYS);
    close(fd);
    /* An MSI outside the interrupt window would be a DMA write: refused. */
    struct ioreq_msg_msi msi = { .address = 0x1000, .data = 0x41 };
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_MSI, &msi, sizeof(msi), NULL, 0, why, sizeof(why)),
                     -EINVAL);
    ck_assert_msg(strstr(why, "outside 0xfee00000"), "%s", why);
    /* The router still serves the well-behaved server. */
    ck_assert_uint_eq(read_hash(&w.t, 0), 0);
    close(w.sock);
    test_router_stop(&w.t);
}
END_TEST

static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Wait until the router has read everything sent on sock. */
static void wait_consumed(int sock)
{
    for (int i = 0; i < 10000; i++) {
        int q = 0;
        ck_assert_int_eq(ioctl(sock, SIOCOUTQ, &q), 0);
        if (q == 0)
            return;
        usleep(1000);
    }
    ck_abort_msg("the router did not read its messages");
}

/*
 * A peer that never reads its replies makes the HELLO reply fail; the
 * HELLO it retries must not leave the pages and doorbells of the last one
 * open (3 fds and a mapping each time).
 */
START_TEST(test_failed_hello_retried)
{
    struct raw w;
    struct ioreq_msg_range m = { .type = IOREQ_RANGE_PORT, .start = 0x3f8, .end = 0x3ff };
    struct ioreq_msg_hello h = { .name = "deaf" };

    raw_open(&w);
    /* Fill the peer's receive queue with refusals it does not read. */
    for (int i = 0; i < 4096; i++)
        ck_assert_int_eq(ioreq_msg_send(w.sock, IOREQ_MSG_CLAIM, 1, &m, sizeof(m), NULL, 0), 0);
    wait_consumed(w.sock);
    ck_assert_int_eq(ioreq_msg_send(w.sock, IOREQ_MSG_HELLO, 2, &h, sizeof(h), NULL, 0), 0);
    wait_consumed(w.sock);
    unsigned before = open_fds();
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(ioreq_msg_send(w.sock, IOREQ_MSG_HELLO, 3, &h, sizeof(h), NULL, 0), 0);
    wait_consumed(w.sock);
    unsigned after = open_fds();
    ck_assert_msg(after <= before + 3, "%u fds open before 50 failed HELLOs, %u after", before,
                  after);
    close(w.sock);
    test_router_stop(&w.t);
}
END_TEST

/* A server asking for shutdown in a loop does not flood the log. */
START_TEST(test_shutdown_flood)
{
    struct raw w;
    struct ioreq_msg_hello h = { .name = "loud" };
    struct ioreq_msg_shutdown sd = { .reason = IOREQ_SHUTDOWN_POWEROFF };

    raw_open(&w);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_HELLO, &h, sizeof(h), NULL, 0, NULL, 0), 0);
    char buf[IOREQ_MSG_MAX];
    int rfds[IOREQ_MSG_MAX_FDS];
    unsigned rn;
    ck_assert_int_gt(ioreq_msg_recv(w.sock, buf, rfds, &rn), 0);
    for (unsigned i = 0; i < rn; i++)
        close(rfds[i]);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SHUTDOWN, &sd, sizeof(sd), NULL, 0, NULL, 0),
                         0);
    unsigned logged = __atomic_load_n(&w.t.shutdown_logs, __ATOMIC_SEQ_CST);
    ck_assert_msg(logged >= 1 && logged < 100, "%u log lines for 200 shutdown requests", logged);
    close(w.sock);
    test_router_stop(&w.t);
}
END_TEST

/* SLEEP (S3): state and flags checked before the hypervisor sees them; its refusals come back. */
START_TEST(test_sleep_message)
{
    struct raw w;
    struct ioreq_msg_hello h = { .name = "pm" };
    struct ioreq_msg_sleep m = { .state = IOREQ_SLEEP_S3 };
    char why[IOREQ_REPLY_MSG_MAX];

    raw_open(&w);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, why,
                              sizeof(why)), -EPROTO);                   /* before HELLO */
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_HELLO, &h, sizeof(h), NULL, 0, NULL, 0), 0);
    char buf[IOREQ_MSG_MAX];
    int rfds[IOREQ_MSG_MAX_FDS];
    unsigned rn;
    ck_assert_int_gt(ioreq_msg_recv(w.sock, buf, rfds, &rn), 0);       /* VCPU_FDS */
    for (unsigned i = 0; i < rn; i++)
        close(rfds[i]);
    m.state = 1;
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, why,
                              sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "unknown sleep state 1"));
    m.state = IOREQ_SLEEP_S3;
    m.flags = 4;
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, why,
                              sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "flags"));
    m.flags = 0;
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, 4, NULL, 0, why, sizeof(why)),
                     -EBADMSG);                                         /* short payload */
    ck_assert_int_eq(__atomic_load_n(&w.t.suspends, __ATOMIC_SEQ_CST), 0);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(__atomic_load_n(&w.t.suspends, __ATOMIC_SEQ_CST), 1);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, why,
                              sizeof(why)), -EBUSY);
    ck_assert_ptr_nonnull(strstr(why, "asleep already"));
    m.state = IOREQ_SLEEP_WAKE;
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(__atomic_load_n(&w.t.wakes, __ATOMIC_SEQ_CST), 1);
    ck_assert_int_eq(raw_call(w.sock, IOREQ_MSG_SLEEP, &m, sizeof(m), NULL, 0, NULL, 0),
                     -EALREADY);
    close(w.sock);
    test_router_stop(&w.t);
}
END_TEST

START_TEST(test_random_messages)
{
    struct raw w;
    uint64_t seed = 0xfeedface;
    char buf[IOREQ_MSG_MAX];

    raw_open(&w);
    /* Valid headers with random types, lengths and bodies, and pure noise. */
    for (unsigned i = 0; i < 3000; i++) {
        uint64_t x = rng_next(&seed);
        size_t n = (x >> 8) % 200;
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)rng_next(&seed);
        if (x & 1) {
            struct ioreq_msg_hdr *h = (void *)buf;
            if (n < sizeof(*h))
                n = sizeof(*h);
            h->magic = IOREQ_PROTO_MAGIC;
            h->version = (x & 2) ? IOREQ_PROTO_VERSION : (uint16_t)x;
            h->type = (uint16_t)((x >> 16) % 16);
            h->len = (x & 4) ? (uint32_t)(n - sizeof(*h)) : (uint32_t)(x >> 32);
        }
        int fds[2] = { dup(0), dup(0) };
        unsigned nfds = (x >> 40) % 3;
        ssize_t sent = send(w.sock, buf, n, MSG_DONTWAIT);
        if (nfds) {
            /* Some with fds attached. */
            ioreq_msg_send(w.sock, (uint16_t)((x >> 44) % 16), 1, buf, n % 64, fds, nfds);
        }
        close(fds[0]);
        close(fds[1]);
        (void)sent;
        /* Drain replies as they come. */
        int rf[IOREQ_MSG_MAX_FDS];
        unsigned rn;
        struct pollfd pf = { .fd = w.sock, .events = POLLIN };
        while (poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN)) {
            if (ioreq_msg_recv(w.sock, buf, rf, &rn) <= 0)
                break;
            for (unsigned k = 0; k < rn; k++)
                close(rf[k]);
        }
        if (pf.revents & POLLHUP)
            break;      /* a DESTROY got through: fine, the router dropped us */
    }
    /* The router survived and still serves the real server. */
    ck_assert_uint_eq(read_hash(&w.t, 0), 0);
    close(w.sock);
    test_router_stop(&w.t);
}
END_TEST

TCase *ioreq_transport_tcase(void)
{
    TCase *tc = tcase_create("transport");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_unclaimed);
    tcase_add_test(tc, test_msi);
    tcase_add_test(tc, test_accept_out_of_fds);
    tcase_add_test(tc, test_buffered_wraparound);
    tcase_add_test(tc, test_buffered_backpressure);
    tcase_add_test(tc, test_unbuffered_claim_is_synchronous);
    tcase_add_test(tc, test_posted_then_read);
    tcase_add_test(tc, test_posted_burst_masked);
    tcase_add_test(tc, test_string_io);
    tcase_add_test(tc, test_server_death);
    tcase_add_test(tc, test_server_timeout);
    tcase_add_test(tc, test_registration_errors);
    tcase_add_test(tc, test_failed_hello_retried);
    tcase_add_test(tc, test_shutdown_flood);
    tcase_add_test(tc, test_sleep_message);
    tcase_add_test(tc, test_random_messages);
    tcase_add_test(tc, test_million_round_trips);
    tcase_add_test(tc, test_edge_doorbells);
    return tc;
}
