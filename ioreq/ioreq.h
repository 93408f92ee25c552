/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libferry-ioreq: the I/O-request model shared by the hypervisor core
 * (the router, ferry-hv) and the device models (the servers, ferry-dm).
 *
 *   ioreq-abi.h   the Xen-compatible ioreq_t, shared page and buffered ring
 *   range sets    who owns which ports, MMIO ranges and PCI functions
 *   router        hypervisor side: registration socket, send-and-wait,
 *                 posted writes, server failure handling
 *   server        device-model side: fds for an external event loop and a
 *                 dispatch call per fd
 *
 * Every call returns 0 or a negative errno unless it says otherwise; calls
 * that return a pointer return NULL and set errno.  Nothing here prints:
 * messages go to the log callback in the ops struct.
 */
#ifndef FERRY_IOREQ_H
#define FERRY_IOREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ferry-log.h"
#include "ioreq/ioreq-abi.h"

/* ------------------------------------------------------------------ */
/* Range sets                                                          */

enum ioreq_range_type {
    IOREQ_RANGE_PORT = 0,   /* 0 .. 0xffff */
    IOREQ_RANGE_MMIO = 1,   /* guest-physical addresses */
    IOREQ_RANGE_PCI = 2,    /* SBDF values (IOREQ_PCI_SBDF) */
    IOREQ_RANGE_NR
};

struct ioreq_rangeset;

/*
 * A sorted set of disjoint inclusive ranges [start, end], each with an
 * owner pointer.  Lookup is a binary search and allocates nothing; add and
 * remove are O(n) and may allocate.  Not thread-safe: the router guards its
 * sets with a read-write lock.
 */
struct ioreq_rangeset *ioreq_rangeset_new(void);
void ioreq_rangeset_free(struct ioreq_rangeset *set);
/* -EEXIST if any part of [start, end] is taken (*conflict_owner says by whom). */
FERRY_MUST_CHECK int ioreq_rangeset_add(struct ioreq_rangeset *set, uint64_t start,
                                        uint64_t end, void *owner,
                                        void **conflict_owner);
/* Removes exactly [start, end] owned by owner; -ENOENT if there is no such range. */
int ioreq_rangeset_remove(struct ioreq_rangeset *set, uint64_t start, uint64_t end,
                          void *owner);
/* Removes every range of owner; returns how many. */
size_t ioreq_rangeset_remove_owner(struct ioreq_rangeset *set, void *owner);
/* The owner of addr, or NULL; start and end (may be NULL) get its range. */
void *ioreq_rangeset_lookup(const struct ioreq_rangeset *set, uint64_t addr,
                            uint64_t *start, uint64_t *end);
size_t ioreq_rangeset_count(const struct ioreq_rangeset *set);
/* Calls fn for each range in order; stops early when fn returns non-zero. */
int ioreq_rangeset_foreach(const struct ioreq_rangeset *set,
                           int (*fn)(void *arg, uint64_t start, uint64_t end, void *owner),
                           void *arg);

/* ------------------------------------------------------------------ */
/* Registration protocol (unix SOCK_SEQPACKET, fds by SCM_RIGHTS)      */

#define IOREQ_PROTO_MAGIC       0x51494f46u   /* "FIOQ" little-endian */
#define IOREQ_PROTO_VERSION     2           /* 2: wait page and bounce pages */
#define IOREQ_MSG_MAX           4096          /* header + payload */
#define IOREQ_MSG_MAX_FDS       16
#define IOREQ_NAME_MAX          32
#define IOREQ_MAX_VCPUS         1024

enum ioreq_msg_type {
    IOREQ_MSG_HELLO = 1,        /* s->r: name, flags; reply: layout + memfd + buf fd */
    IOREQ_MSG_VCPU_FDS,         /* r->s after HELLO: first, count; 2*count eventfds */
    IOREQ_MSG_CLAIM,            /* s->r: type, flags, start, end */
    IOREQ_MSG_RELEASE,          /* s->r: type, start, end */
    IOREQ_MSG_ENABLE,           /* s->r: start receiving ioreqs */
    IOREQ_MSG_DISABLE,          /* s->r: stop receiving ioreqs */
    IOREQ_MSG_IRQFD,            /* s->r: gsi, flags; fds: irq eventfd [, resample] */
    IOREQ_MSG_IRQ_LINE,         /* s->r: gsi, level (for servers without irqfds) */
    IOREQ_MSG_GET_MEMORY,       /* s->r; reply: guest RAM regions + memfd */
    IOREQ_MSG_SHUTDOWN,         /* s->r: reason (poweroff, reboot, crash) */
    IOREQ_MSG_DESTROY,          /* s->r: unregister */
    IOREQ_MSG_MSI,              /* s->r: deliver one MSI (address, data) */
    IOREQ_MSG_SLEEP,            /* s->r: suspend the vCPUs (S3) or wake them (S0) */
    IOREQ_MSG_MSI_ROUTE,        /* s->r: an eventfd that delivers one MSI (KVM irqfd) */
    IOREQ_MSG_HANDOVER,         /* s->r: the registration moves to another process */
    IOREQ_MSG_REPLY = 0x100,    /* r->s: status, message */
    IOREQ_MSG_TYPE_MAX
};

struct ioreq_msg_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t len;           /* payload bytes after this header */
    uint32_t seq;           /* echoed in the reply */
};

#define IOREQ_HELLO_F_BUFFERED  (1u << 0)   /* server wants the buffered ring */
#define IOREQ_HELLO_F_PINNED    (1u << 1)   /* server chose its CPUs: leave them alone */

struct ioreq_msg_hello {
    uint32_t flags;
    int32_t pid;                            /* the server's, for placement; 0: not said */
    char name[IOREQ_NAME_MAX];              /* NUL-padded */
};

struct ioreq_msg_hello_reply {
    int32_t status;
    uint32_t server_id;
    uint32_t nr_vcpus;
    uint32_t shared_offset;     /* shared_iopage in the memfd */
    uint32_t buffered_offset;   /* buffered_iopage in the memfd, if asked */
    uint32_t map_size;
    uint32_t wait_offset;       /* struct ioreq_wait_page in the memfd */
    uint32_t bounce_offset;     /* nr_vcpus bounce pages of IOREQ_BOUNCE_SIZE */
};

/*
 * Ferry's own page beside Xen's two (Xen signals through event channels
 * and needs none): who may be asleep, so that nobody writes an eventfd to
 * a peer that is awake.
 *
 * server_idle: the server sets it (then looks at the slots and the ring
 * once more) when it has nothing left to do and may go to sleep; a vCPU
 * thread that published work clears it and rings only if it was set.  So
 * doorbells coalesce: while the server is busy, or after one ring, nobody
 * rings, and the server's last look before sleeping finds what arrived.
 * router_waiting[v]: vCPU v's thread is about to sleep on its reply
 * eventfd; the server rings it only then (a spinning vCPU needs no ring).
 * server_cpu: the CPU the server last ran on (sched_getcpu), for the
 * router's spin-or-sleep choice.
 * ring_masked: the server drains the buffered ring on a timer of its own
 * for now (posted writes keep coming), so a vCPU that posts a write does
 * not ring, unless the ring is half full; Xen's QEMU masks its buffered
 * event channel the same way.  The server clears it (then looks at the
 * ring once more) before it relies on doorbells again.  A router that
 * ignores it only rings more; a server that never sets it leaves it 0.
 */
struct ioreq_wait_page {
    uint32_t server_idle;
    int32_t server_cpu;
    uint32_t ring_masked;
    uint32_t reserved[13];
    uint8_t router_waiting[IOREQ_MAX_VCPUS];
};

/*
 * String I/O (rep ins/outs): one request for all the repetitions of one
 * exit.  data_is_ptr means, as in Xen, that data holds the address of the
 * first element and element i lives at data + i*size (data - i*size when
 * df is set).  Xen's addresses are guest-physical; Ferry's router puts
 * the elements in the vCPU's bounce page in the shared memfd instead and
 * marks the address with IOREQ_BOUNCE_ADDR (above any physical address):
 * data = IOREQ_BOUNCE_ADDR + offset in that page.
 */
#define IOREQ_BOUNCE_SIZE       4096u
#define IOREQ_BOUNCE_ADDR       (1ull << 63)
#define IOREQ_REP_MAX           IOREQ_BOUNCE_SIZE   /* repetitions in one request */

struct ioreq_msg_vcpu_fds {
    uint32_t first;             /* fds: req0, resp0, req1, resp1, ... */
    uint32_t count;             /* at most IOREQ_MSG_MAX_FDS / 2 */
};

#define IOREQ_CLAIM_F_BUFFERED  (1u << 0)   /* posted writes may use the ring */

struct ioreq_msg_range {
    uint32_t type;              /* enum ioreq_range_type */
    uint32_t flags;
    uint64_t start;
    uint64_t end;               /* inclusive */
};

#define IOREQ_IRQFD_F_DEASSIGN  (1u << 0)
#define IOREQ_IRQFD_F_RESAMPLE  (1u << 1)   /* level: second fd is the resample fd */

struct ioreq_msg_irqfd {
    uint32_t gsi;
    uint32_t flags;
};

struct ioreq_msg_irq_line {
    uint32_t gsi;
    uint32_t level;
};

#define IOREQ_MEMORY_MAX_REGIONS 8

struct ioreq_msg_memory_reply {
    int32_t status;
    uint32_t nr_regions;        /* all in the single memfd passed along */
    struct {
        uint64_t gpa;
        uint64_t size;
        uint64_t offset;        /* in the memfd */
    } region[IOREQ_MEMORY_MAX_REGIONS];
};

struct ioreq_msg_msi {
    uint64_t address;           /* as the guest programmed it (0xfeeXXXXX) */
    uint32_t data;
    uint32_t reserved;
};

/*
 * MSI through an irqfd: the router routes a GSI of its own to the message
 * and wires the eventfd to it, so that the server signals the MSI with one
 * eventfd write instead of a round trip.  cookie is the server's name for
 * the route (deassign by it); at most IOREQ_MSI_ROUTES_MAX per server.
 * A cookie routed again replaces its route (a successor after a handover
 * numbers its routes from the start).
 */
#define IOREQ_MSI_ROUTES_MAX    64
#define IOREQ_MSI_ROUTE_F_DEASSIGN (1u << 0)

struct ioreq_msg_msi_route {
    uint64_t address;
    uint32_t data;
    uint32_t flags;
    uint32_t cookie;
    uint32_t reserved;
};

enum ioreq_shutdown_reason {
    IOREQ_SHUTDOWN_POWEROFF = 0,
    IOREQ_SHUTDOWN_REBOOT = 1,
    IOREQ_SHUTDOWN_CRASH = 2,
};

struct ioreq_msg_shutdown {
    uint32_t reason;
    uint32_t code;              /* exit status for a debug exit */
};

/*
 * ACPI sleep states a server (the PM device) asks the router for.  SUSPEND
 * (S3, suspend to RAM): every vCPU stops where it is; memory is kept.  WAKE:
 * the platform comes back through its firmware's resume path: the router
 * resets the vCPUs and the interrupt controllers and starts the boot vCPU
 * at the FACS waking vector (ferry-hv: docs/ferry-hv.md).  A WAKE while
 * not suspended is refused with -EALREADY, a SUSPEND while suspended with
 * -EBUSY.  flags must be 0.  An older router answers -EBADMSG (unknown
 * message type): S3 is then not available.
 */
enum ioreq_sleep_state {
    IOREQ_SLEEP_WAKE = 0,       /* back to S0 (working) */
    IOREQ_SLEEP_S3 = 3,         /* suspend to RAM */
};

struct ioreq_msg_sleep {
    uint32_t state;             /* enum ioreq_sleep_state */
    uint32_t flags;             /* 0 */
};

/*
 * A server hands its registration to a successor process (ferry-dm's
 * replace): BEGIN before it stops answering (the router then waits for
 * the successor instead of timing out), DONE from the successor once it
 * serves, ABORT from the old server when the successor failed and it goes
 * on serving.  The connection itself (socket, shared pages, doorbells)
 * moves by SCM_RIGHTS, so nothing changes for the vCPUs: a request left
 * READY is answered by whoever serves next.
 */
enum ioreq_handover_phase {
    IOREQ_HANDOVER_BEGIN = 1,
    IOREQ_HANDOVER_DONE = 2,
    IOREQ_HANDOVER_ABORT = 3,
};

struct ioreq_msg_handover {
    uint32_t phase;
    uint32_t pid;               /* the successor (log only) */
};

#define IOREQ_REPLY_MSG_MAX 200

struct ioreq_msg_reply {
    int32_t status;             /* 0 or -errno */
    char message[IOREQ_REPLY_MSG_MAX];  /* NUL-terminated reason on error */
};

/*
 * Checks one received message: header magic/version/type, that len equals
 * the bytes received after the header, that the payload size and the
 * number of fds fit the type.  Returns 0 or -EBADMSG / -EPROTO / -E2BIG and
 * a reason in why.
 */
int ioreq_msg_validate(const void *buf, size_t n, unsigned nfds,
                       char *why, size_t why_len);

/* ------------------------------------------------------------------ */
/* Router (hypervisor side)                                            */

struct ioreq_router;

/*
 * Threads: irqfd, irq_line, msi, memory, shutdown and sleep run on the thread
 * that calls ioreq_router_dispatch.  log and server_gone run there too,
 * except when a vCPU thread detaches a server that timed out: then they
 * run on that vCPU thread, so they must be thread-safe.
 */
struct ioreq_router_ops {
    ferry_log_fn log;
    /*
     * Optional: wire an eventfd to a GSI (KVM_IRQFD), or undo that.  The
     * router keeps fd (and resample_fd) open while assigned and undoes each
     * server's when it goes (crashed or detached; not on a handover).
     */
    int (*irqfd)(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign);
    /* Optional: raise or lower a GSI (KVM_IRQ_LINE). */
    int (*irq_line)(void *opaque, uint32_t gsi, bool level);
    /* Optional: deliver an MSI message (KVM_SIGNAL_MSI). */
    int (*msi)(void *opaque, uint64_t address, uint32_t data);
    /*
     * Optional: route a new GSI to the MSI (address, data) and wire fd to it
     * (assign: *gsi gets it; the router keeps fd open while assigned), or
     * undo that for *gsi.
     */
    int (*msi_route)(void *opaque, uint64_t address, uint32_t data, int fd, bool assign,
                     uint32_t *gsi);
    /* Optional: guest RAM for DMA: fills regions, returns the memfd (not dup'ed). */
    int (*memory)(void *opaque, struct ioreq_msg_memory_reply *regions);
    /* Optional: a server asked for power-off, reboot or crash. */
    void (*shutdown)(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code);
    /*
     * Optional: S3 suspend or wake (enum ioreq_sleep_state, checked):
     * 0 or -errno with a reason in why (sent back to the server).
     */
    int (*sleep)(void *opaque, enum ioreq_sleep_state state, char *why, size_t why_len);
    /* Optional: a server went away (name, why). */
    void (*server_gone)(void *opaque, const char *name, const char *why);
    /*
     * Optional: the connection of registered server id hung up (its process
     * died).  Return how many ms to keep its registration for a restarted
     * server to take over (0: detach it now, as without this op).  Kept, its
     * ranges stay claimed and vCPUs that reach them wait, as Xen's wait on
     * an ioreq server whose emulator is gone; a server that registers with
     * the same name in that time takes the registration over (the same
     * shared pages, doorbells, ring and claims; requests left in the slots
     * go to it), else it is detached when the time is up.
     */
    unsigned (*server_lost)(void *opaque, uint32_t id, const char *name);
    /*
     * Optional: server id is served by process pid from now on (a handover
     * that is done, or a restarted server that took over).  pid is the
     * sender's as the kernel says (SCM_CREDENTIALS), not as it claims.
     */
    void (*server_moved)(void *opaque, uint32_t id, const char *name, int32_t pid);
};

struct ioreq_router_config {
    unsigned nr_vcpus;
    unsigned timeout_ms;        /* a server silent this long is detached; 0 = 5000 */
    /*
     * Spin this long for a reply before sleeping, only while the server last
     * ran on another CPU than the vCPU thread (sharing a CPU, spinning only
     * delays the server): 0 = 20, -1u = never.
     */
    unsigned spin_us;
    const struct ioreq_router_ops *ops;
    void *opaque;
};

FERRY_MUST_CHECK int ioreq_router_create(const struct ioreq_router_config *cfg,
                                         struct ioreq_router **out);
void ioreq_router_destroy(struct ioreq_router *r);
/* Listen for servers on a unix socket path (created, mode 0600). */
FERRY_MUST_CHECK int ioreq_router_listen(struct ioreq_router *r, const char *path);
/* Take a connected SOCK_SEQPACKET socket (e.g. one end of a socketpair). */
FERRY_MUST_CHECK int ioreq_router_add_connection(struct ioreq_router *r, int fd);
/* The same; *id gets the id of the server on it (as in its HELLO's reply). */
FERRY_MUST_CHECK int ioreq_router_add_connection_id(struct ioreq_router *r, int fd, uint32_t *id);
/* One fd for the caller's event loop; call dispatch when it is readable. */
int ioreq_router_get_fd(const struct ioreq_router *r);
int ioreq_router_dispatch(struct ioreq_router *r);

enum ioreq_send_result {
    IOREQ_SENT = 0,             /* a server answered; req->data holds read data */
    IOREQ_UNCLAIMED = 1,        /* nobody owns it: reads all ones, write dropped */
    IOREQ_SERVER_FAILED = 2,    /* owner died or timed out: same as unclaimed */
    IOREQ_POSTED = 3,           /* buffered write queued */
};

/*
 * Send one request from vCPU `vcpu` (thread-safe across vCPUs, one call at
 * a time per vCPU) and wait for the answer.  req->type, addr, size, dir,
 * data (writes) and count must be set; count > 1 goes through
 * ioreq_router_send_rep.  Posted writes go through the buffered ring when
 * the owning claim allows it and the ring has room; otherwise they are sent
 * synchronously (back-pressure).
 */
int ioreq_router_send(struct ioreq_router *r, unsigned vcpu, ioreq_t *req);

/*
 * String I/O: req->count (1..IOREQ_REP_MAX, count * size at most
 * IOREQ_BOUNCE_SIZE) elements of req->size bytes in buf, in the order the
 * instruction handles them (KVM's data page); req->df as the guest's
 * direction flag (MMIO addresses step down when set).  One request to the
 * owner of req->addr, through the vCPU's bounce page; reads fill buf.
 * Unclaimed or failed: reads fill buf with all ones.  -EINVAL for a bad
 * request, -E2BIG for one that does not fit the page or (MMIO) runs out of
 * the owner's claim: the caller splits it.
 */
int ioreq_router_send_rep(struct ioreq_router *r, unsigned vcpu, ioreq_t *req, void *buf);

struct ioreq_router_stats {
    uint64_t sent, posted, unclaimed_reads, unclaimed_writes, failed;
    uint64_t rep_sent;          /* of sent: string requests (count > 1) */
    uint64_t rep_elements;      /* elements they carried */
    uint64_t doorbells;         /* eventfd writes to servers (coalesced ones not counted) */
    uint64_t posted_quiet;      /* of posted: no doorbell, the server's ring was masked */
    uint64_t posted_pending;    /* posted writes in the rings now, not applied yet
                                   (control thread only) */
    unsigned servers;
    unsigned enabled;           /* servers that sent ENABLE (control thread only) */
};
void ioreq_router_get_stats(struct ioreq_router *r, struct ioreq_router_stats *st);

/* Who drives each server, for placement (ferry-hv moves a device model next to it). */
struct ioreq_router_load {
    uint32_t server_id;
    int32_t pid;                /* its process as the kernel says (else its HELLO); 0: unknown */
    bool pinned;                /* it chose its CPUs itself */
    char name[IOREQ_NAME_MAX + 1];
    uint64_t requests;          /* from every vCPU since the previous call */
    unsigned busiest_vcpu;      /* the vCPU that sent the most of them */
    uint64_t busiest_requests;
};
/* Control thread: each live registered server's load since the previous call; returns how many. */
unsigned ioreq_router_take_load(struct ioreq_router *r, struct ioreq_router_load *out,
                                unsigned max);

/* ------------------------------------------------------------------ */
/* Server (device-model side)                                          */

struct ioreq_server;

struct ioreq_server_ops {
    ferry_log_fn log;
    /*
     * Emulate one access.  For reads store the result in req->data (the
     * low req->size bytes count).  Called for synchronous requests and for
     * posted writes from the buffered ring (vcpu = -1u then).  A string
     * request through the bounce page reaches it as count single accesses
     * (count 1, data the value); one with a guest-physical data pointer
     * (Xen's kind) comes whole, data_is_ptr set, for the handler to copy.
     */
    void (*handle)(void *opaque, unsigned vcpu, ioreq_t *req);
};

/*
 * Posted writes in a burst: when the ring's doorbell rings twice within
 * this delay, the server stops taking doorbells for the ring (ring_masked)
 * and drains it every delay instead, until a drain finds it empty.  A
 * posted write then takes effect at most about this late, or before the
 * next synchronous request, whichever comes first (Xen's QEMU: 100 ms,
 * BUFFER_IO_MAX_DELAY); a lone write still takes effect at once.
 */
#define IOREQ_POSTED_DELAY_US   1000u
#define IOREQ_POSTED_IMMEDIATE  (~0u)  /* posted_delay_us: every doorbell, never a timer */

struct ioreq_server_config {
    const char *name;
    bool buffered;              /* ask for the buffered ring */
    unsigned posted_delay_us;   /* 0: IOREQ_POSTED_DELAY_US; or IOREQ_POSTED_IMMEDIATE */
    bool pinned;                /* tell the router our CPUs are chosen (no placement) */
    /*
     * The caller watches the vCPU doorbells edge-triggered (EPOLLET,
     * libevent's EV_ET): every ring is an event of its own, so dispatching
     * leaves the doorbell's counter alone, one read syscall less per
     * request.  Never with a level-triggered watch (poll, select): the
     * doorbell would stay readable.
     */
    bool edge_doorbells;
    const struct ioreq_server_ops *ops;
    void *opaque;
};

/* Register over a connected socket (takes ownership of fd) or a path. */
FERRY_MUST_CHECK int ioreq_server_create(int fd, const struct ioreq_server_config *cfg,
                                         struct ioreq_server **out);
FERRY_MUST_CHECK int ioreq_server_connect(const char *path,
                                          const struct ioreq_server_config *cfg,
                                          struct ioreq_server **out);
void ioreq_server_destroy(struct ioreq_server *s);

unsigned ioreq_server_nr_vcpus(const struct ioreq_server *s);
uint32_t ioreq_server_id(const struct ioreq_server *s);

/*
 * The fds to watch for reading: control socket (router gone when it hangs
 * up), one doorbell per vCPU, and the buffered ring's (-1 when not asked
 * for; its doorbell and the server's drain timer together, behind one fd).
 */
int ioreq_server_control_fd(const struct ioreq_server *s);
int ioreq_server_vcpu_fd(const struct ioreq_server *s, unsigned vcpu);
int ioreq_server_buffered_fd(const struct ioreq_server *s);

/* Handle what is pending on a vCPU's doorbell (drains the ring first). */
int ioreq_server_dispatch_vcpu(struct ioreq_server *s, unsigned vcpu);
/* Handle every posted write in the ring. */
int ioreq_server_dispatch_buffered(struct ioreq_server *s);
/* Check every vCPU slot for READY work (for a server polling without fds). */
int ioreq_server_dispatch_all(struct ioreq_server *s);
/* Returns -EPIPE once the router has gone; 0 while it is there. */
int ioreq_server_check_control(struct ioreq_server *s);

/* Requests to the router; each waits for its reply.  why gets the router's reason. */
FERRY_MUST_CHECK int ioreq_server_claim_range(struct ioreq_server *s,
                                              enum ioreq_range_type type,
                                              uint64_t start, uint64_t end,
                                              uint32_t flags);
int ioreq_server_release_range(struct ioreq_server *s, enum ioreq_range_type type,
                               uint64_t start, uint64_t end);
FERRY_MUST_CHECK int ioreq_server_enable(struct ioreq_server *s, bool enable);
FERRY_MUST_CHECK int ioreq_server_set_irqfd(struct ioreq_server *s, uint32_t gsi,
                                            int fd, int resample_fd, bool assign);
int ioreq_server_set_irq_line(struct ioreq_server *s, uint32_t gsi, bool level);
/* Deliver one MSI/MSI-X message the guest programmed into a device. */
int ioreq_server_signal_msi(struct ioreq_server *s, uint64_t address, uint32_t data);
/* Have fd deliver (address, data) from now on (an irqfd); cookie names it for removal. */
int ioreq_server_msi_route(struct ioreq_server *s, uint64_t address, uint32_t data, int fd,
                           uint32_t cookie);
int ioreq_server_msi_unroute(struct ioreq_server *s, uint32_t cookie);
/* Guest RAM: *memfd (caller closes) and the region table. */
FERRY_MUST_CHECK int ioreq_server_get_memory(struct ioreq_server *s, int *memfd,
                                             struct ioreq_msg_memory_reply *regions);
int ioreq_server_shutdown(struct ioreq_server *s, enum ioreq_shutdown_reason reason,
                          uint32_t code);
/* S3: suspend the guest's vCPUs, or wake them (the router's reason in last_error). */
int ioreq_server_sleep(struct ioreq_server *s, enum ioreq_sleep_state state);
/* The router's reason for the last failed request ("" if none). */
const char *ioreq_server_last_error(const struct ioreq_server *s);

/*
 * Handing the registration to another process.  export fills h and fds
 * (not dup'ed: send them with SCM_RIGHTS) and returns how many fds, at
 * most 3 + 2 * nr_vcpus: socket, shared pages, [ring doorbell], then a
 * request and a reply doorbell per vCPU.  adopt takes them all over (also
 * on error) and maps the pages, touching nothing the old process still
 * uses: it may run while the old process serves.  take_over, once the old
 * process has stopped, takes its place: seq is its last sequence number
 * (export's h->seq then), the buffered ring is ours; from there on it
 * serves, requests already READY are found by ioreq_server_dispatch_all.
 * abandon frees s without a word to the router (the old process after the
 * successor took over).  handover sends IOREQ_MSG_HANDOVER (enum
 * ioreq_handover_phase).
 */
struct ioreq_server_handover {
    uint32_t server_id;
    uint32_t nr_vcpus;
    uint32_t map_size;
    uint32_t buffered_offset;   /* 0: no ring */
    uint32_t seq;
    char name[IOREQ_NAME_MAX + 1];
};
int ioreq_server_export(const struct ioreq_server *s, struct ioreq_server_handover *h,
                        int *fds, unsigned max_fds);
FERRY_MUST_CHECK int ioreq_server_adopt(const struct ioreq_server_handover *h, int *fds,
                                        unsigned nfds, const struct ioreq_server_config *cfg,
                                        struct ioreq_server **out);
void ioreq_server_take_over(struct ioreq_server *s, uint32_t seq);
void ioreq_server_abandon(struct ioreq_server *s);
int ioreq_server_handover(struct ioreq_server *s, uint32_t phase, uint32_t pid);
/*
 * Unregister on purpose (IOREQ_MSG_DESTROY) before ioreq_server_destroy: the
 * router detaches the registration at once.  Without it, a hang-up reads as
 * the process's death, and the hypervisor may keep the registration for a
 * restarted server (server_lost).
 */
int ioreq_server_unregister(struct ioreq_server *s);
/*
 * Batch (on) until off: claims, releases, interrupt lines and ENABLE
 * are sent without waiting for their replies (they return 0); any
 * other request, or off, reads them first.  off returns the first failure
 * among them (its message in ioreq_server_last_error).  One wake-up of the
 * router for many requests: a successor repeating its predecessor's claims
 * while the guest waits.
 */
int ioreq_server_batch(struct ioreq_server *s, bool on);

#endif /* FERRY_IOREQ_H */
