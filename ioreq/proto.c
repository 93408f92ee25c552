// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The registration protocol's framing: one message per SOCK_SEQPACKET
 * datagram, a fixed header, a typed payload and up to IOREQ_MSG_MAX_FDS fds.
 * One table says what each type may carry; ioreq_msg_validate() is the only
 * gate between the socket and the handlers, on both sides.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioreq/ioreq-internal.h"

struct msg_rule {
    bool known;
    uint32_t min_len, max_len;
    uint8_t min_fds, max_fds;
};

static const struct msg_rule rules[] = {
    [IOREQ_MSG_HELLO] = { true, sizeof(struct ioreq_msg_hello), sizeof(struct ioreq_msg_hello), 0, 0 },
    [IOREQ_MSG_VCPU_FDS] = { true, sizeof(struct ioreq_msg_vcpu_fds), sizeof(struct ioreq_msg_vcpu_fds),
                             2, IOREQ_MSG_MAX_FDS },
    [IOREQ_MSG_CLAIM] = { true, sizeof(struct ioreq_msg_range), sizeof(struct ioreq_msg_range), 0, 0 },
    [IOREQ_MSG_RELEASE] = { true, sizeof(struct ioreq_msg_range), sizeof(struct ioreq_msg_range), 0, 0 },
    [IOREQ_MSG_ENABLE] = { true, 0, 0, 0, 0 },
    [IOREQ_MSG_DISABLE] = { true, 0, 0, 0, 0 },
    [IOREQ_MSG_IRQFD] = { true, sizeof(struct ioreq_msg_irqfd), sizeof(struct ioreq_msg_irqfd), 0, 2 },
    [IOREQ_MSG_IRQ_LINE] = { true, sizeof(struct ioreq_msg_irq_line), sizeof(struct ioreq_msg_irq_line), 0, 0 },
    [IOREQ_MSG_GET_MEMORY] = { true, 0, 0, 0, 0 },
    [IOREQ_MSG_SHUTDOWN] = { true, sizeof(struct ioreq_msg_shutdown), sizeof(struct ioreq_msg_shutdown), 0, 0 },
    [IOREQ_MSG_DESTROY] = { true, 0, 0, 0, 0 },
    [IOREQ_MSG_MSI] = { true, sizeof(struct ioreq_msg_msi), sizeof(struct ioreq_msg_msi), 0, 0 },
    [IOREQ_MSG_SLEEP] = { true, sizeof(struct ioreq_msg_sleep), sizeof(struct ioreq_msg_sleep), 0, 0 },
    [IOREQ_MSG_MSI_ROUTE] = { true, sizeof(struct ioreq_msg_msi_route),
                              sizeof(struct ioreq_msg_msi_route), 0, 1 },
    [IOREQ_MSG_HANDOVER] = { true, sizeof(struct ioreq_msg_handover),
                             sizeof(struct ioreq_msg_handover), 0, 0 },
};

/* Replies: the reply payload depends on the request; accept any size that
 * fits the largest reply, and up to two fds (memfd + buffered eventfd). */
static const struct msg_rule reply_rule = {
    true, sizeof(int32_t), sizeof(struct ioreq_msg_memory_reply), 0, 2
};

int ioreq_msg_validate(const void *buf, size_t n, unsigned nfds, char *why, size_t why_len)
{
    const struct ioreq_msg_hdr *h = buf;
    const struct msg_rule *rule;

    if (n < sizeof(*h)) {
        snprintf(why, why_len, "message of %zu bytes is shorter than its header", n);
        return -EBADMSG;
    }
    if (h->magic != IOREQ_PROTO_MAGIC) {
        snprintf(why, why_len, "bad magic 0x%08x", h->magic);
        return -EBADMSG;
    }
    if (h->version != IOREQ_PROTO_VERSION) {
        snprintf(why, why_len, "protocol version %u, expected %u", h->version,
                 IOREQ_PROTO_VERSION);
        return -EPROTO;
    }
    if (h->len != n - sizeof(*h)) {
        snprintf(why, why_len, "header says %u payload bytes, %zu received", h->len,
                 n - sizeof(*h));
        return -EBADMSG;
    }
    if (h->type == IOREQ_MSG_REPLY)
        rule = &reply_rule;
    else if (h->type < sizeof(rules) / sizeof(rules[0]) && rules[h->type].known)
        rule = &rules[h->type];
    else {
        snprintf(why, why_len, "unknown message type %u", h->type);
        return -EBADMSG;
    }
    if (h->len < rule->min_len || h->len > rule->max_len) {
        snprintf(why, why_len, "message type %u: payload of %u bytes, expected %u..%u",
                 h->type, h->len, rule->min_len, rule->max_len);
        return -EBADMSG;
    }
    if (nfds < rule->min_fds || nfds > rule->max_fds) {
        snprintf(why, why_len, "message type %u: %u fds, expected %u..%u", h->type, nfds,
                 rule->min_fds, rule->max_fds);
        return -EBADMSG;
    }
    return 0;
}

int ioreq_msg_send(int sock, uint16_t type, uint32_t seq, const void *payload, size_t len,
                   const int *fds, unsigned nfds)
{
    struct ioreq_msg_hdr h = {
        .magic = IOREQ_PROTO_MAGIC, .version = IOREQ_PROTO_VERSION,
        .type = type, .len = (uint32_t)len, .seq = seq,
    };
    struct iovec iov[2] = {
        { &h, sizeof(h) },
        { (void *)payload, len },
    };
    union {
        char buf[CMSG_SPACE(sizeof(int) * IOREQ_MSG_MAX_FDS)];
        struct cmsghdr align;
    } cm;
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

    if (len > IOREQ_MSG_MAX - sizeof(h) || nfds > IOREQ_MSG_MAX_FDS)
        return -EMSGSIZE;
    if (nfds) {
        memset(&cm, 0, sizeof(cm));
        msg.msg_control = cm.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == sizeof(h) + len ? 0 : -EMSGSIZE;
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t ioreq_msg_recv(int sock, void *buf, int *fds, unsigned *nfds)
{
    return ioreq_msg_recv_cred(sock, buf, fds, nfds, NULL);
}

ssize_t ioreq_msg_recv_cred(int sock, void *buf, int *fds, unsigned *nfds, int32_t *pid)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * IOREQ_MSG_MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = { buf, IOREQ_MSG_MAX };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
    };
    ssize_t n;

    *nfds = 0;
    if (pid)
        *pid = 0;
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof(uc));
            if (pid)
                *pid = uc.pid;
            continue;
        }
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        unsigned k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (unsigned i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < IOREQ_MSG_MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (unsigned i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return -EMSGSIZE;
    }
    return n;
}

void ioreq_layout_get(unsigned nr_vcpus, struct ioreq_layout *l)
{
    l->sync = 0;
    l->buffered = ((size_t)nr_vcpus * sizeof(ioreq_t) + 4095) & ~(size_t)4095;
    l->wait = l->buffered + sizeof(buffered_iopage_t);
    l->bounce = l->wait + ((sizeof(struct ioreq_wait_page) + 4095) & ~(size_t)4095);
    l->total = l->bounce + (size_t)nr_vcpus * IOREQ_BOUNCE_SIZE;
}

size_t ioreq_shared_size(unsigned nr_vcpus)
{
    struct ioreq_layout l;

    ioreq_layout_get(nr_vcpus, &l);
    return l.total;
}
