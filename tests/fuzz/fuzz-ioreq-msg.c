// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz the router's registration path: the input is a sequence of records
 * {u8 nfds; u16 len; len bytes}, each sent as one seqpacket message (with
 * nfds copies of /dev/null attached) on a fresh server connection; the
 * router dispatches everything, replies are drained, the connection is
 * closed and the router must have cleaned up after it.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioreq/ioreq-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ioreq_router *router;

static void drain(int sock)
{
    char buf[IOREQ_MSG_MAX];
    int fds[IOREQ_MSG_MAX_FDS];
    unsigned nfds;

    for (;;) {
        ioreq_router_dispatch(router);
        if (recv(sock, buf, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            return;
        if (ioreq_msg_recv(sock, buf, fds, &nfds) <= 0)
            return;
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];

    if (!router) {
        struct ioreq_router_config cfg = { .nr_vcpus = 2, .timeout_ms = 100 };
        if (ioreq_router_create(&cfg, &router))
            abort();
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return 0;
    if (ioreq_router_add_connection(router, sv[0])) {
        close(sv[1]);
        return 0;
    }
    while (size >= 3) {
        unsigned nfds = data[0] % 4;
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        int fds[3];
        for (unsigned i = 0; i < nfds; i++)
            fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        struct iovec iov = { (void *)data, len };
        union {
            char b[CMSG_SPACE(sizeof(fds))];
            struct cmsghdr align;
        } cm;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (nfds) {
            msg.msg_control = cm.b;
            msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        (void)sendmsg(sv[1], &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        for (unsigned i = 0; i < nfds; i++)
            close(fds[i]);
        data += len;
        size -= len;
        drain(sv[1]);
    }
    close(sv[1]);
    drain(-1);
    ioreq_router_dispatch(router);
    struct ioreq_router_stats st;
    ioreq_router_get_stats(router, &st);
    if (st.servers != 0)
        abort();    /* a closed connection must not leave a live server */
    return 0;
}
