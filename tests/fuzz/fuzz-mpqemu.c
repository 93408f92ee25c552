/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the mpqemu codec: what a remote QEMU (the peer) can
 * send.  The first input byte picks how many fds travel with the message
 * (0..8); the rest are the bytes on the stream.  Both the buffer decoder
 * and the socket receiver (partial reads, fds, end of stream) are fed.
 * standalone.c replays the corpus (corpus/mpqemu) through it in the unit
 * suite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpqemu/mpqemu.h"

#define FUZZ_INPUT_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const struct mpqemu_msg *m)
{
    uint8_t buf[MPQEMU_MSG_MAX];
    struct mpqemu_msg again;
    long n;

    n = mpqemu_msg_encode(m, buf, sizeof(buf));
    if (n < 0)
        abort();        /* whatever decodes must encode */
    if (mpqemu_msg_decode(buf, (size_t)n, m->nfds, &again) != 0)
        abort();
    if (again.cmd != m->cmd || again.size != m->size ||
        memcmp(&again.u, &m->u, sizeof(m->u)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mpqemu_msg m;
    unsigned nfds;
    int sv[2], efd;

    if (size < 1 || size > FUZZ_INPUT_MAX)
        return 0;
    nfds = data[0] % 9;
    data++;
    size--;

    if (mpqemu_msg_decode(data, size, nfds > MPQEMU_FDS_MAX ? MPQEMU_FDS_MAX : nfds, &m) == 0)
        check_roundtrip(&m);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    efd = eventfd(0, EFD_CLOEXEC);
    if (efd >= 0 && size > 0) {
        union { char b[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr a; } ctl;
        struct iovec iov = { (void *)data, size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int fds[8];

        if (nfds) {
            struct cmsghdr *c;

            for (unsigned i = 0; i < nfds; i++)
                fds[i] = efd;
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.b;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        if (sendmsg(sv[0], &mh, MSG_NOSIGNAL) == (ssize_t)size) {
            close(sv[0]);
            sv[0] = -1;
            /* Every message in the stream, until an error or its end. */
            while (mpqemu_msg_recv(sv[1], &m, 0) == 0) {
                check_roundtrip(&m);
                for (unsigned i = 0; i < m.nfds; i++)
                    close(m.fds[i]);
            }
        }
    }
    if (efd >= 0)
        close(efd);
    if (sv[0] >= 0)
        close(sv[0]);
    close(sv[1]);
    return 0;
}
