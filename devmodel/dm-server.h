/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's ioreq-server side: the framework's backend (dm.h's
 * ferry_dm_backend_ops) met by an ioreq server (ioreq/server.h) registered
 * with the router of ferry-hv, and the server's fds (one doorbell per
 * vcpu, the buffered ring, the control connection) watched on the
 * framework's libevent loop.
 *
 *   dm_server_new()      before dm_create: the backend to give it
 *   dm_server_connect()  register (--ioreq-fd or --connect), watch the
 *                              fds, map guest RAM for DMA
 *   dm_server_enable()   after dm_start: ioreqs flow
 *
 * Unconnected (ferry-dm as the companion of a QEMU), the backend claims
 * nothing and has no interrupts.  When the router hangs up, the loop ends.
 */
#ifndef FERRY_DM_SERVER_H
#define FERRY_DM_SERVER_H

#include <stdbool.h>

#include "devmodel/dm.h"

struct ferry_dm_server;

int dm_server_new(struct event_base *base, struct ferry_dm_server **out);
/* The backend for ferry_dm_config: .ops and .opaque = s. */
const struct ferry_dm_backend_ops *dm_server_backend(void);
/* The device model the server's ioreqs go to; set before connecting. */
void dm_server_set_dm(struct ferry_dm_server *s, struct ferry_dm *dm);
/*
 * Registers with the router over the connected socket ioreq_fd, or at
 * path when it is not NULL; then watches the server's fds on the loop and
 * maps the guest's RAM into dm (a guest without shared RAM is logged, not
 * an error).  Errors are said on stderr.
 */
/* ferry-dm chose its CPUs (--cpus): the hypervisor leaves them alone. Before connect. */
void dm_server_set_pinned(struct ferry_dm_server *s, bool pinned);
int dm_server_connect(struct ferry_dm_server *s, const char *name, const char *path,
                            int ioreq_fd);
bool dm_server_connected(const struct ferry_dm_server *s);
/*
 * Replacing ferry-dm (dm-replace.h): export the registration's fds (not
 * dup'ed; how many, or -errno), adopt a predecessor's while it still
 * serves (taken over also on error; then watched, and guest RAM mapped
 * from memfd and regions, the predecessor's, when memfd >= 0: no request
 * to the router, whose connection is still the predecessor's), take_over
 * once it has stopped (its last sequence number), tell the router
 * (IOREQ_MSG_HANDOVER), and answer the requests left waiting in the slots.
 */
int dm_server_export(struct ferry_dm_server *s, struct ioreq_server_handover *h, int *fds,
                     unsigned max);
int dm_server_adopt(struct ferry_dm_server *s, const struct ioreq_server_handover *h, int *fds,
                    unsigned nfds, int memfd, const struct ioreq_msg_memory_reply *regions);
void dm_server_take_over(struct ferry_dm_server *s, uint32_t seq);
int dm_server_handover(struct ferry_dm_server *s, uint32_t phase, uint32_t pid);
/*
 * The ranges the router gave this registration (at most max; the count)
 * and whether it is enabled: a predecessor passes them at the freeze.  The
 * successor's devices, started, claim the same ranges again: those
 * inherited (until inherit_done) are not asked of the router, nor ENABLE
 * when it was enabled: no round trip while the guest waits.
 */
struct dm_server_claim {
    uint32_t type;      /* enum ioreq_range_type */
    uint32_t flags;
    uint64_t start, end;
};
unsigned dm_server_claims(const struct ferry_dm_server *s, struct dm_server_claim *out,
                          unsigned max, bool *enabled);
void dm_server_inherit_claims(struct ferry_dm_server *s, const struct dm_server_claim *c,
                              unsigned n, bool enabled);
void dm_server_inherit_done(struct ferry_dm_server *s);
void dm_server_resume(struct ferry_dm_server *s);
int dm_server_enable(struct ferry_dm_server *s);
/* Claims and irqfds without waiting for each reply until off (ioreq_server_batch). */
int dm_server_batch(struct ferry_dm_server *s, bool on);
unsigned dm_server_nr_vcpus(const struct ferry_dm_server *s);
/* The router's last error text ("" when none or unconnected). */
const char *dm_server_last_error(const struct ferry_dm_server *s);
/* After dm_destroy (devices give back their claims and irqfds first). */
void dm_server_free(struct ferry_dm_server *s);

#endif
