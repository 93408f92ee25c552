/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the router's files (router.c: connections and registration;
 * router-vcpu.c: the vCPU path; router-ctl.c: interrupts, power, handover,
 * placement): its server and claim records and the helpers they share.
 */
#ifndef FERRY_IOREQ_ROUTER_INTERNAL_H
#define FERRY_IOREQ_ROUTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ioreq/ioreq-internal.h"

#define IOREQ_CLAIMS_MAX        4096    /* per server */
#define IOREQ_SERVERS_MAX       64
#define IOREQ_VCPU_FDS_PER_MSG  (IOREQ_MSG_MAX_FDS / 2)
#define IOREQ_HANDOVER_MS       15000   /* longest a handover may hold vCPUs */
#define IOREQ_IRQFDS_MAX        128     /* irqfds (KVM_IRQFD) assigned per server */

struct ioreq_srv;

struct ioreq_claim {
    struct ioreq_srv *srv;
    uint32_t flags;
    enum ioreq_range_type type;
    uint64_t start, end;
    struct ioreq_claim *next;             /* the server's list */
};

struct ioreq_srv {
    atomic_int refs;
    struct ioreq_router *r;
    uint32_t id;
    char name[IOREQ_NAME_MAX + 1];
    int sock;
    bool registered;
    atomic_bool enabled;
    atomic_bool dead;
    _Atomic uint64_t handover_until;    /* CLOCK_MONOTONIC ns; 0: no handover under way */
    unsigned nr_claims;
    struct ioreq_claim *claims;           /* guarded by the router's lock */
    struct ferry_ratelimit refusals; /* a hostile server must not flood the log */
    struct ferry_ratelimit shutdowns;   /* nor by asking for shutdown again and again */
    void *map;
    size_t map_size;
    int memfd;
    ioreq_t *slots;
    buffered_iopage_t *buf;         /* NULL unless the server asked for it */
    struct ioreq_wait_page *wait;   /* who sleeps: shared with the server */
    uint8_t *bounce;                /* nr_vcpus pages for string I/O */
    int buf_fd;
    pthread_mutex_t buf_lock;
    int32_t pid;                    /* the kernel's word (else its HELLO's); 0: unknown */
    int32_t msg_pid;                /* the sender of the message being handled (SCM_CREDENTIALS) */
    bool orphan;                    /* its process died; kept for a restart until handover_until */
    bool restarted;                 /* a restarted server took it over; not enabled again yet */
    bool pinned;                    /* HELLO said: it chose its CPUs */
    atomic_uint_fast64_t *load;     /* requests per vCPU (sync and posted) */
    uint64_t *load_seen;            /* load at the previous ioreq_router_take_load */
    struct ioreq_msi_route {
        bool used;
        uint32_t cookie, gsi;
        int fd;
    } msi_routes[IOREQ_MSI_ROUTES_MAX];     /* control thread only */
    /*
     * The irqfds assigned for it (their eventfds kept open here, as the MSI
     * routes'): undone when it goes, crashed or not, whoever else still
     * holds an eventfd; a replace keeps them (the registration stays).
     */
    struct ioreq_irqfd {
        bool used;
        uint32_t gsi;
        int fd, resample_fd;
    } irqfds[IOREQ_IRQFDS_MAX];             /* control thread only */
    int *req_fd;                    /* router -> server, per vCPU */
    int *resp_fd;                   /* server -> router, per vCPU */
};

struct ioreq_router {
    unsigned nr_vcpus;
    unsigned timeout_ms;
    unsigned spin_us;
    const struct ioreq_router_ops *ops;
    void *opaque;
    int epfd;
    int listen_fd;
    int spare_fd;                   /* given up to accept (and drop) a peer when out of fds */
    struct ferry_ratelimit accept_rl;
    char *listen_path;
    pthread_rwlock_t lock;          /* guards sets */
    struct ioreq_rangeset *sets[IOREQ_RANGE_NR];
    struct ioreq_srv *servers[IOREQ_SERVERS_MAX];     /* control thread only */
    uint32_t next_id;
    atomic_uint_fast64_t sent, posted, unclaimed_reads, unclaimed_writes, failed;
    atomic_uint_fast64_t rep_sent, rep_elements, doorbells, posted_quiet;
    atomic_uint live_servers;
};

#define rlog(r, level, ...) ferry_logf((r)->ops->log, (r)->opaque, level, __VA_ARGS__)

/* router.c */
void ioreq_router_srv_unref(struct ioreq_srv *s);
void ioreq_router_srv_kill(struct ioreq_srv *s, enum ferry_log_level level, const char *why);
int ioreq_router_reply(struct ioreq_srv *s, uint32_t seq, int status, const char *fmt, ...)
    FERRY_PRINTF(4, 5);
void ioreq_router_close_fds(int *fds, unsigned n);

/* router-vcpu.c */
uint64_t ioreq_router_now_ns(void);

/* router-ctl.c */
void ioreq_router_unroute_all(struct ioreq_srv *s);
void ioreq_router_unirqfd_all(struct ioreq_srv *s);
int ioreq_router_handle_ctl(struct ioreq_srv *s, const struct ioreq_msg_hdr *h, const void *p,
                            int *fds, unsigned nfds);

#endif
