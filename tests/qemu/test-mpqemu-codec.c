/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mpqemu codec: wire layout byte by byte (QEMU 7.2 mpqemu-link.h on
 * x86-64), the validator, and socket transfer with fds.  The same
 * messages are exercised against a real QEMU in test-qemu-remote.c.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpqemu/mpqemu.h"
#include "tests/check-main.h"

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

START_TEST(test_layouts)
{
    uint8_t buf[MPQEMU_MSG_MAX];
    struct mpqemu_msg m, d;
    long n;

    mpqemu_msg_cfgread(&m, 0x3c, 2);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 16 + 12);
    ck_assert_uint_eq(le32(buf), 3);
    ck_assert_uint_eq(le32(buf + 4), 0);
    ck_assert_uint_eq(le64(buf + 8), 12);
    ck_assert_uint_eq(le32(buf + 16), 0x3c);
    ck_assert_uint_eq(le32(buf + 20), 0);
    ck_assert_uint_eq(le32(buf + 24), 2);

    mpqemu_msg_cfgwrite(&m, 0x04, 0x0107, 2);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 28);
    ck_assert_uint_eq(le32(buf), 2);
    ck_assert_uint_eq(le32(buf + 20), 0x0107);

    mpqemu_msg_bar_write(&m, true, 0xfebf0010, 0x1122334455667788ull, 8);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 16 + 24);
    ck_assert_uint_eq(le32(buf), 4);
    ck_assert_uint_eq(le64(buf + 8), 24);
    ck_assert_uint_eq(le64(buf + 16), 0xfebf0010);
    ck_assert_uint_eq(le64(buf + 24), 0x1122334455667788ull);
    ck_assert_uint_eq(le32(buf + 32), 8);
    ck_assert_uint_eq(buf[36], 1);
    ck_assert_uint_eq(buf[37] | buf[38] | buf[39], 0);
    ck_assert_int_eq(mpqemu_msg_decode(buf, (size_t)n, 0, &d), 0);
    ck_assert_int_eq(d.cmd, MPQEMU_CMD_BAR_WRITE);
    ck_assert_uint_eq(d.u.bar.addr, 0xfebf0010);
    ck_assert_uint_eq(d.u.bar.val, 0x1122334455667788ull);
    ck_assert_uint_eq(d.u.bar.size, 8);
    ck_assert(d.u.bar.memory);

    mpqemu_msg_bar_read(&m, false, 0xc000, 1);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_uint_eq(le32(buf), 5);
    ck_assert_uint_eq(buf[36], 0);

    mpqemu_msg_device_reset(&m);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 16);
    ck_assert_uint_eq(le32(buf), 7);
    ck_assert_uint_eq(le64(buf + 8), 0);

    mpqemu_msg_set_irqfd(&m, 5, 6);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 16);
    ck_assert_uint_eq(le32(buf), 6);

    mpqemu_msg_ret(&m, 0xdeadbeefcafef00dull);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 24);
    ck_assert_uint_eq(le32(buf), 1);
    ck_assert_uint_eq(le64(buf + 16), 0xdeadbeefcafef00dull);
}
END_TEST

START_TEST(test_sysmem_layout)
{
    uint8_t buf[MPQEMU_MSG_MAX];
    struct mpqemu_msg m, d;
    int fds[2] = { 10, 11 };
    uint64_t gpa[2] = { 0, 0x100000000ull }, size[2] = { 0x1000000, 0x2000 },
             off[2] = { 0, 0x1000000 };
    long n;

    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 2, fds, gpa, size, off), 0);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    ck_assert_int_eq(n, 16 + 192);
    ck_assert_uint_eq(le32(buf), 0);
    ck_assert_uint_eq(le64(buf + 8), 192);
    ck_assert_uint_eq(le64(buf + 16 + 8), 0x100000000ull);      /* gpas[1] */
    ck_assert_uint_eq(le64(buf + 16 + 64), 0x1000000);          /* sizes[0] */
    ck_assert_uint_eq(le64(buf + 16 + 128 + 8), 0x1000000);     /* offsets[1] */
    ck_assert_int_eq(mpqemu_msg_decode(buf, (size_t)n, 2, &d), 0);
    ck_assert_uint_eq(d.u.sysmem.sizes[1], 0x2000);
    /* Without fds QEMU refuses it, so do we. */
    ck_assert_int_eq(mpqemu_msg_decode(buf, (size_t)n, 0, &d), -EBADMSG);
    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 0, fds, gpa, size, off), -EINVAL);
    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 8, fds, gpa, size, off), -EINVAL);
    gpa[0] = 0x1000;
    size[0] = UINT64_MAX;
    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 1, fds, gpa, size, off), -EINVAL);
}
END_TEST

START_TEST(test_check)
{
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SYNC_SYSMEM, 192, 1), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SYNC_SYSMEM, 192, 7), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SYNC_SYSMEM, 192, 8), -EBADMSG);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SYNC_SYSMEM, 191, 1), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_RET, 8, 0), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_RET, 0, 0), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_RET, 4, 0), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_RET, 8, 1), -EBADMSG);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_PCI_CFGREAD, 12, 0), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_PCI_CFGWRITE, 16, 0), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_BAR_READ, 24, 0), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_BAR_READ, 21, 0), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_BAR_WRITE, 24, 1), -EBADMSG);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SET_IRQFD, 0, 2), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SET_IRQFD, 0, 1), -EBADMSG);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_SET_IRQFD, 8, 2), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_DEVICE_RESET, 0, 0), 0);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_DEVICE_RESET, 8, 0), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_check(8, 0, 0), -EINVAL);
    ck_assert_int_eq(mpqemu_msg_check(0xffffffffu, 0, 0), -EINVAL);
    ck_assert_int_eq(mpqemu_msg_check(MPQEMU_CMD_RET, 1ull << 40, 0), -EMSGSIZE);
}
END_TEST

START_TEST(test_decode_hostile)
{
    uint8_t buf[MPQEMU_MSG_MAX] = { 0 };
    struct mpqemu_msg m;
    long n;

    ck_assert_int_eq(mpqemu_msg_decode(buf, 15, 0, &m), -EMSGSIZE);
    mpqemu_msg_ret(&m, 1);
    n = mpqemu_msg_encode(&m, buf, sizeof(buf));
    /* Header says 8 bytes, 7 present, or 9. */
    ck_assert_int_eq(mpqemu_msg_decode(buf, (size_t)n - 1, 0, &m), -EMSGSIZE);
    ck_assert_int_eq(mpqemu_msg_decode(buf, (size_t)n + 1, 0, &m), -EMSGSIZE);
    /* Encoding refuses what QEMU would refuse. */
    m.size = 4;
    ck_assert_int_lt(mpqemu_msg_encode(&m, buf, sizeof(buf)), 0);
    mpqemu_msg_ret(&m, 1);
    ck_assert_int_eq(mpqemu_msg_encode(&m, buf, 10), -ENOBUFS);
}
END_TEST

static int count_open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

START_TEST(test_socket_fds)
{
    int sv[2], mfd, efd[2], before;
    struct mpqemu_msg m, r;
    uint64_t gpa = 0x1000, size = 0x1000, off = 0;
    char *p;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mfd = memfd_create("ram", MFD_CLOEXEC);
    ck_assert_int_ge(mfd, 0);
    ck_assert_int_eq(ftruncate(mfd, 0x1000), 0);
    p = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 1, &mfd, &gpa, &size, &off), 0);
    ck_assert_int_eq(mpqemu_msg_send(sv[0], &m), 0);
    ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 1000), 0);
    ck_assert_int_eq(r.cmd, MPQEMU_CMD_SYNC_SYSMEM);
    ck_assert_uint_eq(r.nfds, 1);
    ck_assert_uint_eq(r.u.sysmem.gpas[0], 0x1000);
    {
        char *q = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, r.fds[0], 0);

        ck_assert_ptr_ne(q, MAP_FAILED);
        q[5] = 42;
        ck_assert_int_eq(p[5], 42);
        munmap(q, 0x1000);
    }
    close(r.fds[0]);

    efd[0] = eventfd(0, EFD_CLOEXEC);
    efd[1] = eventfd(0, EFD_CLOEXEC);
    mpqemu_msg_set_irqfd(&m, efd[0], efd[1]);
    ck_assert_int_eq(mpqemu_msg_send(sv[0], &m), 0);
    ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 1000), 0);
    ck_assert_int_eq(r.cmd, MPQEMU_CMD_SET_IRQFD);
    ck_assert_uint_eq(r.nfds, 2);
    close(r.fds[0]);
    close(r.fds[1]);

    /* A RET that carries an fd is refused and the fd closed. */
    before = count_open_fds();
    mpqemu_msg_ret(&m, 7);
    {
        uint8_t buf[MPQEMU_MSG_MAX];
        long n = mpqemu_msg_encode(&m, buf, sizeof(buf));
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
        struct iovec iov = { buf, (size_t)n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &mfd, sizeof(int));
        ck_assert_int_eq(sendmsg(sv[0], &mh, 0), n);
    }
    ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 1000), -EBADMSG);
    ck_assert_int_eq(count_open_fds(), before);

    /* A header announcing 4 GiB is refused before anything is read. */
    {
        uint8_t hdr[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };

        ck_assert_int_eq(write(sv[0], hdr, 16), 16);
        ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 1000), -EMSGSIZE);
    }
    /* Nothing there: time out. */
    ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 50), -ETIMEDOUT);
    /* Half a message, then end of stream. */
    ck_assert_int_eq(write(sv[0], "\x01\0\0\0", 4), 4);
    close(sv[0]);
    ck_assert_int_eq(mpqemu_msg_recv(sv[1], &r, 1000), -ECONNRESET);
    close(sv[1]);
    close(efd[0]);
    close(efd[1]);
    munmap(p, 0x1000);
    close(mfd);
}
END_TEST

static TCase *codec_tcase(void)
{
    return FERRY_CHECK_TCASE("codec", 0, test_layouts, test_sysmem_layout, test_check,
                             test_decode_hostile, test_socket_fds);
}

FERRY_CHECK_MAIN("mpqemu-codec", codec_tcase);
