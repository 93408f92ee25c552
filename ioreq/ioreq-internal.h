/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to libferry-ioreq: socket helpers shared by router and server. */
#ifndef FERRY_IOREQ_INTERNAL_H
#define FERRY_IOREQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ioreq/ioreq.h"

#define IOREQ_EXPORT __attribute__((visibility("default")))

/* Send header+payload with fds; returns 0 or -errno. */
int ioreq_msg_send(int sock, uint16_t type, uint32_t seq, const void *payload,
                   size_t len, const int *fds, unsigned nfds);
/*
 * Receive one message into buf (IOREQ_MSG_MAX bytes) and up to
 * IOREQ_MSG_MAX_FDS fds.  Returns bytes received, 0 on hang-up, or -errno.
 * Truncated messages or fd arrays are refused (-EMSGSIZE), their fds closed.
 */
ssize_t ioreq_msg_recv(int sock, void *buf, int *fds, unsigned *nfds);
/* The same; *pid gets the sender's pid when the socket has SO_PASSCRED (else 0). */
ssize_t ioreq_msg_recv_cred(int sock, void *buf, int *fds, unsigned *nfds, int32_t *pid);

/*
 * Layout of the shared memfd for nr_vcpus: Xen's synchronous slots (page
 * rounded), Xen's buffered page, Ferry's wait page, one bounce page per vCPU.
 */
struct ioreq_layout {
    size_t sync, buffered, wait, bounce, total;     /* offsets; total = size */
};
void ioreq_layout_get(unsigned nr_vcpus, struct ioreq_layout *l);
size_t ioreq_shared_size(unsigned nr_vcpus);

#endif
