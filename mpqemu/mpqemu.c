/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mpqemu message codec: see mpqemu.h for the wire format. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mpqemu/mpqemu.h"

/* The library is built with hidden symbols; its API is exported. */
#define MPQEMU_EXPORT __attribute__((visibility("default")))

static const char *const cmd_names[MPQEMU_CMD_NR] = {
    [MPQEMU_CMD_SYNC_SYSMEM] = "sync_sysmem",
    [MPQEMU_CMD_RET] = "ret",
    [MPQEMU_CMD_PCI_CFGWRITE] = "pci_cfgwrite",
    [MPQEMU_CMD_PCI_CFGREAD] = "pci_cfgread",
    [MPQEMU_CMD_BAR_WRITE] = "bar_write",
    [MPQEMU_CMD_BAR_READ] = "bar_read",
    [MPQEMU_CMD_SET_IRQFD] = "set_irqfd",
    [MPQEMU_CMD_DEVICE_RESET] = "device_reset",
};

MPQEMU_EXPORT const char *mpqemu_cmd_name(uint32_t cmd)
{
    return cmd < MPQEMU_CMD_NR ? cmd_names[cmd] : "unknown";
}

MPQEMU_EXPORT int mpqemu_msg_check(uint32_t cmd, uint64_t size, unsigned nfds)
{
    if (nfds > MPQEMU_FDS_MAX)
        return -EBADMSG;
    switch (cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM:
        if (size != MPQEMU_SYSMEM_SIZE)
            return -EMSGSIZE;
        return nfds >= 1 ? 0 : -EBADMSG;
    case MPQEMU_CMD_RET:
        if (size != MPQEMU_RET_SIZE && size != 0)
            return -EMSGSIZE;
        return nfds == 0 ? 0 : -EBADMSG;
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD:
        if (size != MPQEMU_PCI_CONF_SIZE)
            return -EMSGSIZE;
        return nfds == 0 ? 0 : -EBADMSG;
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ:
        if (size != MPQEMU_BAR_ACCESS_SIZE)
            return -EMSGSIZE;
        return nfds == 0 ? 0 : -EBADMSG;
    case MPQEMU_CMD_SET_IRQFD:
        if (size != 0)
            return -EMSGSIZE;
        return nfds == 2 ? 0 : -EBADMSG;
    case MPQEMU_CMD_DEVICE_RESET:
        if (size != 0)
            return -EMSGSIZE;
        return nfds == 0 ? 0 : -EBADMSG;
    default:
        return -EINVAL;
    }
}

static void msg_init(struct mpqemu_msg *m, enum mpqemu_cmd cmd, uint32_t size)
{
    memset(m, 0, sizeof(*m));
    m->cmd = cmd;
    m->size = size;
    for (unsigned i = 0; i < MPQEMU_FDS_MAX; i++)
        m->fds[i] = -1;
}

MPQEMU_EXPORT void mpqemu_msg_cfgread(struct mpqemu_msg *m, uint32_t addr, int len)
{
    msg_init(m, MPQEMU_CMD_PCI_CFGREAD, MPQEMU_PCI_CONF_SIZE);
    m->u.conf.addr = addr;
    m->u.conf.len = len;
}

MPQEMU_EXPORT void mpqemu_msg_cfgwrite(struct mpqemu_msg *m, uint32_t addr, uint32_t val,
                                      int len)
{
    msg_init(m, MPQEMU_CMD_PCI_CFGWRITE, MPQEMU_PCI_CONF_SIZE);
    m->u.conf.addr = addr;
    m->u.conf.val = val;
    m->u.conf.len = len;
}

MPQEMU_EXPORT void mpqemu_msg_bar_read(struct mpqemu_msg *m, bool memory, uint64_t addr,
                                      uint32_t size)
{
    msg_init(m, MPQEMU_CMD_BAR_READ, MPQEMU_BAR_ACCESS_SIZE);
    m->u.bar.addr = addr;
    m->u.bar.size = size;
    m->u.bar.memory = memory;
}

MPQEMU_EXPORT void mpqemu_msg_bar_write(struct mpqemu_msg *m, bool memory, uint64_t addr,
                                       uint64_t val, uint32_t size)
{
    msg_init(m, MPQEMU_CMD_BAR_WRITE, MPQEMU_BAR_ACCESS_SIZE);
    m->u.bar.addr = addr;
    m->u.bar.val = val;
    m->u.bar.size = size;
    m->u.bar.memory = memory;
}

MPQEMU_EXPORT void mpqemu_msg_set_irqfd(struct mpqemu_msg *m, int irqfd, int resamplefd)
{
    msg_init(m, MPQEMU_CMD_SET_IRQFD, 0);
    m->fds[0] = irqfd;
    m->fds[1] = resamplefd;
    m->nfds = 2;
}

MPQEMU_EXPORT void mpqemu_msg_device_reset(struct mpqemu_msg *m)
{
    msg_init(m, MPQEMU_CMD_DEVICE_RESET, 0);
}

MPQEMU_EXPORT void mpqemu_msg_ret(struct mpqemu_msg *m, uint64_t val)
{
    msg_init(m, MPQEMU_CMD_RET, MPQEMU_RET_SIZE);
    m->u.u64 = val;
}

MPQEMU_EXPORT int mpqemu_msg_sysmem(struct mpqemu_msg *m, unsigned n, const int *fds,
                                   const uint64_t *gpas, const uint64_t *sizes,
                                   const uint64_t *offsets)
{
    if (n == 0 || n > MPQEMU_SYSMEM_REGIONS_MAX)
        return -EINVAL;
    msg_init(m, MPQEMU_CMD_SYNC_SYSMEM, MPQEMU_SYSMEM_SIZE);
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] < 0 || sizes[i] == 0 || gpas[i] + sizes[i] < gpas[i] ||
            offsets[i] > INT64_MAX || offsets[i] + sizes[i] < offsets[i])
            return -EINVAL;
        m->fds[i] = fds[i];
        m->u.sysmem.gpas[i] = gpas[i];
        m->u.sysmem.sizes[i] = sizes[i];
        m->u.sysmem.offsets[i] = offsets[i];
    }
    m->nfds = n;
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

MPQEMU_EXPORT long mpqemu_msg_encode(const struct mpqemu_msg *m, uint8_t *buf, size_t len)
{
    int rc = mpqemu_msg_check(m->cmd, m->size, m->nfds);
    uint8_t *p = buf + MPQEMU_HDR_SIZE;

    if (rc < 0)
        return rc;
    if (len < MPQEMU_HDR_SIZE + (size_t)m->size)
        return -ENOBUFS;
    memset(buf, 0, MPQEMU_HDR_SIZE + m->size);
    put32(buf, (uint32_t)m->cmd);
    put64(buf + 8, m->size);
    switch (m->cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM:
        for (unsigned i = 0; i < MPQEMU_SYSMEM_SLOTS; i++) {
            put64(p + 8 * i, m->u.sysmem.gpas[i]);
            put64(p + 64 + 8 * i, m->u.sysmem.sizes[i]);
            put64(p + 128 + 8 * i, m->u.sysmem.offsets[i]);
        }
        break;
    case MPQEMU_CMD_RET:
        if (m->size)
            put64(p, m->u.u64);
        break;
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD:
        put32(p, m->u.conf.addr);
        put32(p + 4, m->u.conf.val);
        put32(p + 8, (uint32_t)m->u.conf.len);
        break;
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ:
        put64(p, m->u.bar.addr);
        put64(p + 8, m->u.bar.val);
        put32(p + 16, m->u.bar.size);
        p[20] = m->u.bar.memory ? 1 : 0;
        break;
    default:
        break;
    }
    return MPQEMU_HDR_SIZE + (long)m->size;
}

MPQEMU_EXPORT int mpqemu_hdr_decode(const uint8_t *buf, size_t len, uint32_t *cmd,
                                   uint64_t *size)
{
    if (len < MPQEMU_HDR_SIZE)
        return -EMSGSIZE;
    *cmd = get32(buf);
    *size = get64(buf + 8);
    return 0;
}

MPQEMU_EXPORT int mpqemu_msg_decode(const uint8_t *buf, size_t len, unsigned nfds,
                                   struct mpqemu_msg *m)
{
    uint32_t cmd;
    uint64_t size;
    const uint8_t *p = buf + MPQEMU_HDR_SIZE;
    int rc = mpqemu_hdr_decode(buf, len, &cmd, &size);

    if (rc < 0)
        return rc;
    rc = mpqemu_msg_check(cmd, size, nfds);
    if (rc < 0)
        return rc;
    if (len - MPQEMU_HDR_SIZE != size)
        return -EMSGSIZE;
    msg_init(m, (enum mpqemu_cmd)cmd, (uint32_t)size);
    m->nfds = nfds;
    switch (m->cmd) {
    case MPQEMU_CMD_SYNC_SYSMEM:
        for (unsigned i = 0; i < MPQEMU_SYSMEM_SLOTS; i++) {
            m->u.sysmem.gpas[i] = get64(p + 8 * i);
            m->u.sysmem.sizes[i] = get64(p + 64 + 8 * i);
            m->u.sysmem.offsets[i] = get64(p + 128 + 8 * i);
        }
        break;
    case MPQEMU_CMD_RET:
        if (size)
            m->u.u64 = get64(p);
        break;
    case MPQEMU_CMD_PCI_CFGWRITE:
    case MPQEMU_CMD_PCI_CFGREAD:
        m->u.conf.addr = get32(p);
        m->u.conf.val = get32(p + 4);
        m->u.conf.len = (int32_t)get32(p + 8);
        break;
    case MPQEMU_CMD_BAR_WRITE:
    case MPQEMU_CMD_BAR_READ:
        m->u.bar.addr = get64(p);
        m->u.bar.val = get64(p + 8);
        m->u.bar.size = get32(p + 16);
        m->u.bar.memory = p[20] != 0;
        break;
    default:
        break;
    }
    return 0;
}

MPQEMU_EXPORT int mpqemu_msg_send(int sock, const struct mpqemu_msg *m)
{
    uint8_t buf[MPQEMU_MSG_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(int) * MPQEMU_FDS_MAX)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    long len = mpqemu_msg_encode(m, buf, sizeof(buf));
    size_t done = 0;

    if (len < 0)
        return (int)len;
    if (m->nfds) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
        memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
    }
    while (done < (size_t)len) {
        ssize_t n;

        iov.iov_base = buf + done;
        iov.iov_len = (size_t)len - done;
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { .fd = sock, .events = POLLOUT };

                if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
                    return -errno;
                continue;
            }
            return -errno;
        }
        done += (size_t)n;
        /* fds go with the first byte only */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/*
 * Read exactly len bytes, collecting fds that arrive with them into
 * fds[*nfds] (up to MPQEMU_FDS_MAX; surplus fds are closed and make the
 * message invalid through *overflow).
 */
static int read_exact(int sock, uint8_t *buf, size_t len, int *fds, unsigned *nfds,
                      bool *overflow, int64_t deadline)
{
    size_t done = 0;

    while (done < len) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * (MPQEMU_FDS_MAX + 1))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        ssize_t n;

        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            struct pollfd pfd = { .fd = sock, .events = POLLIN };
            int wait_ms = -1;

            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            if (deadline >= 0) {
                int64_t left = deadline - now_ms();

                if (left <= 0)
                    return -ETIMEDOUT;
                wait_ms = left > 60000 ? 60000 : (int)left;
            }
            if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            size_t cnt;
            int got[MPQEMU_FDS_MAX + 1];

            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            if (c->cmsg_len < CMSG_LEN(0))
                continue;
            cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            if (cnt > MPQEMU_FDS_MAX + 1)
                cnt = MPQEMU_FDS_MAX + 1;
            memcpy(got, CMSG_DATA(c), cnt * sizeof(int));
            for (size_t i = 0; i < cnt; i++) {
                if (*nfds < MPQEMU_FDS_MAX) {
                    fds[(*nfds)++] = got[i];
                } else {
                    close(got[i]);
                    *overflow = true;
                }
            }
        }
        if (mh.msg_flags & MSG_CTRUNC)
            *overflow = true;
        if (n == 0)
            return -ECONNRESET;
        done += (size_t)n;
    }
    return 0;
}

MPQEMU_EXPORT int mpqemu_msg_recv(int sock, struct mpqemu_msg *m, int timeout_ms)
{
    uint8_t buf[MPQEMU_MSG_MAX];
    int fds[MPQEMU_FDS_MAX];
    unsigned nfds = 0;
    bool overflow = false;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint32_t cmd;
    uint64_t size;
    int rc;

    rc = read_exact(sock, buf, MPQEMU_HDR_SIZE, fds, &nfds, &overflow, deadline);
    if (rc < 0)
        goto fail;
    rc = mpqemu_hdr_decode(buf, MPQEMU_HDR_SIZE, &cmd, &size);
    if (rc < 0)
        goto fail;
    /* Check the size before reading that many bytes. */
    rc = mpqemu_msg_check(cmd, size, overflow ? MPQEMU_FDS_MAX + 1 : nfds);
    if (rc < 0)
        goto fail;
    rc = read_exact(sock, buf + MPQEMU_HDR_SIZE, (size_t)size, fds, &nfds, &overflow,
                    deadline);
    if (rc < 0)
        goto fail;
    if (overflow) {
        rc = -EBADMSG;
        goto fail;
    }
    rc = mpqemu_msg_decode(buf, MPQEMU_HDR_SIZE + (size_t)size, nfds, m);
    if (rc < 0)
        goto fail;
    memcpy(m->fds, fds, nfds * sizeof(int));
    return 0;
fail:
    close_fds(fds, nfds);
    return rc;
}
