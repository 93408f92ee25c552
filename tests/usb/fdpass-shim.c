// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test-only LD_PRELOAD library, loaded before umockdev's preload: lets a
 * simulated usbfs fd (umockdev, tests/usb/sim) follow SCM_RIGHTS into
 * another process, as a real usbfs fd does, however many times it is passed
 * on.  Without it a passed fd reaches the receiver as what it is
 * underneath, a regular file of the testbed, and every usbfs ioctl on it
 * fails (ENOTTY): umockdev's preload emulates a device only for fds that
 * its own process opened, by fd number, each with a connection to the
 * testbed's per-device ioctl socket ($UMOCKDEV_DIR/ioctl/dev/...;
 * libumockdev-preload.c, ioctl_emulate_open, umockdev 0.17).
 *
 * Open: when a process opens a testbed /dev/bus/usb node (umockdev answers
 * its ioctls here), the shim makes one more connection to that node's ioctl
 * socket (what umockdev does for an open) and keeps it with the fd, unused.
 * Send: every fd of an SCM_RIGHTS message that has such a connection (made
 * at open, or received with the fd) gets it sent along in the same message,
 * after the program's fds, and a trailer after the program's bytes names
 * which fds they belong to: u32 index[k], u32 k, u32 SHIM_MAGIC.  Receive: a
 * message that ends with that trailer has it and the k connections taken
 * out (the program sees its own bytes and fds), and ioctl() and read() on
 * each such fd speak umockdev's client protocol on its connection (requests
 * of three unsigned longs; answers DONE, RUN, READ_MEM, WRITE_MEM, ABORT),
 * with raw read/write syscalls.  So the connection is made where the node
 * is opened (the root broker, or ferry-dm before it confines itself), and a
 * confined receiver, which may pass it on again (ferry-dm's replace), needs
 * no socket(), connect() or path of its own: nothing beyond read and write
 * reaches its seccomp filter.  Ferry's code is unchanged; only the
 * simulator's fd gains the property a real usbfs fd has.
 *
 * Limits (a test's shim): the trailer must fit the receiver's buffer (on a
 * stream socket it must read the whole message at once, as Ferry's control
 * socket does); one SCM_RIGHTS control message per sendmsg.
 */
/* open and open64 are both defined here: no redirection of one to the other */
#undef _FILE_OFFSET_BITS
#include <stdbool.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define SHIM_FDS_MAX 64
#define SHIM_SCM_MAX 253                /* the kernel's SCM_MAX_FD */
#define SHIM_MAGIC 0x4d494853u          /* "SHIM" */

/* umockdev 0.17's ioctl socket protocol (libumockdev-preload.c) */
#define REQ_IOCTL 1
#define REQ_RES 2
#define RES_DONE 3
#define RES_RUN 4
#define RES_READ_MEM 5
#define RES_WRITE_MEM 6
#define REQ_READ 7
#define REQ_WRITE 8
#define RES_ABORT 0xff

struct req {
    unsigned long cmd, arg1, arg2;
};

/* fd -> its connection to the simulator; remote: this process's ioctls go
 * through it (a received fd), else umockdev answers them (opened here) */
static struct {
    int fd, sock;
    bool remote;
} shim_map[SHIM_FDS_MAX];
static int shim_n;
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;

static void *next_fn(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

/* fd's connection, or -1; *remote whether ioctls go through it */
static int map_sock(int fd, bool *remote)
{
    int s = -1;

    pthread_mutex_lock(&shim_lock);
    for (int i = 0; i < shim_n; i++)
        if (shim_map[i].fd == fd) {
            s = shim_map[i].sock;
            if (remote)
                *remote = shim_map[i].remote;
        }
    pthread_mutex_unlock(&shim_lock);
    return s;
}

static int map_del(int fd)
{
    int s = -1;

    pthread_mutex_lock(&shim_lock);
    for (int i = 0; i < shim_n; i++)
        if (shim_map[i].fd == fd) {
            s = shim_map[i].sock;
            shim_map[i] = shim_map[--shim_n];
            break;
        }
    pthread_mutex_unlock(&shim_lock);
    return s;
}

static void map_add(int fd, int sock, bool remote)
{
    int old = map_del(fd);      /* a stale entry: its fd was closed behind our back */

    if (old >= 0)
        syscall(SYS_close, old);
    pthread_mutex_lock(&shim_lock);
    if (shim_n < SHIM_FDS_MAX) {
        shim_map[shim_n].fd = fd;
        shim_map[shim_n].sock = sock;
        shim_map[shim_n].remote = remote;
        shim_n++;
    } else {
        fprintf(stderr, "fdpass-shim: more than %d simulated fds\n", SHIM_FDS_MAX);
        abort();
    }
    pthread_mutex_unlock(&shim_lock);
}

static bool xfer(int sock, void *buf, size_t len, bool out)
{
    size_t done = 0;

    while (done < len) {
        long n = syscall(out ? SYS_write : SYS_read, sock, (char *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* One request on the node's connection, answered as umockdev's preload does. */
static long remote(int fd, int sock, unsigned long cmd, unsigned long a1, unsigned long a2)
{
    static pthread_mutex_t io = PTHREAD_MUTEX_INITIALIZER;
    struct req r = { cmd, a1, a2 };
    long res;

    pthread_mutex_lock(&io);
    if (!xfer(sock, &r, sizeof(r), true))
        goto broken;
    for (;;) {
        if (!xfer(sock, &r, sizeof(r), false))
            goto broken;
        switch (r.cmd) {
        case RES_DONE:
            pthread_mutex_unlock(&io);
            errno = (int)r.arg2;
            return (long)r.arg1;
        case RES_RUN:
            res = cmd == REQ_IOCTL ? syscall(SYS_ioctl, fd, a1, a2) :
                  cmd == REQ_READ ? syscall(SYS_read, fd, a1, a2) :
                  syscall(SYS_write, fd, a1, a2);
            r.cmd = REQ_RES;
            r.arg1 = (unsigned long)res;
            r.arg2 = (unsigned long)errno;
            if (!xfer(sock, &r, sizeof(r), true))
                goto broken;
            break;
        case RES_READ_MEM:
            if (!xfer(sock, (void *)r.arg1, r.arg2, true))
                goto broken;
            break;
        case RES_WRITE_MEM:
            if (!xfer(sock, (void *)r.arg1, r.arg2, false))
                goto broken;
            break;
        default:
            fprintf(stderr, "fdpass-shim: the simulator aborted fd %d's request\n", fd);
            abort();
        }
    }
broken:
    pthread_mutex_unlock(&io);
    fprintf(stderr, "fdpass-shim: the simulator's connection for fd %d broke: %s\n", fd,
            strerror(errno));
    abort();
}

int ioctl(int fd, unsigned long request, ...)
{
    static int (*next)(int, unsigned long, ...);
    va_list ap;
    void *arg;
    bool rem = false;
    int s = map_sock(fd, &rem);

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (s >= 0 && rem)
        return (int)remote(fd, s, REQ_IOCTL, request, (unsigned long)arg);
    if (!next)
        next = (int (*)(int, unsigned long, ...))next_fn("ioctl");
    return next(fd, request, arg);
}

ssize_t read(int fd, void *buf, size_t count)
{
    static ssize_t (*next)(int, void *, size_t);
    bool rem = false;
    int s = map_sock(fd, &rem);

    if (s >= 0 && rem)
        return remote(fd, s, REQ_READ, (unsigned long)buf, count);
    if (!next)
        next = (ssize_t (*)(int, void *, size_t))next_fn("read");
    return next(fd, buf, count);
}

int close(int fd)
{
    static int (*next)(int);
    int s = map_del(fd);

    if (s >= 0)
        syscall(SYS_close, s);
    if (!next)
        next = (int (*)(int))next_fn("close");
    return next(fd);
}

/* ---- open: a spare connection for each testbed USB node opened here ---- */

static void opened(const char *path, int fd)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *dir = getenv("UMOCKDEV_DIR");
    int s;

    if (fd < 0 || !dir || !path || strncmp(path, "/dev/bus/usb/", 13))
        return;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ioctl%s", dir, path) >=
        sizeof(sa.sun_path))
        return;
    s = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    if (syscall(SYS_connect, s, &sa, sizeof(sa)) < 0) {
        syscall(SYS_close, s);      /* not a simulated node */
        return;
    }
    map_add(fd, s, false);
}

#define SHIM_OPEN(name, ...)                                                            \
    static int (*next)(__VA_ARGS__);                                                    \
    mode_t mode = 0;                                                                    \
    int fd;                                                                             \
                                                                                        \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                              \
        va_list ap;                                                                     \
        va_start(ap, flags);                                                            \
        mode = va_arg(ap, mode_t);                                                      \
        va_end(ap);                                                                     \
    }                                                                                   \
    if (!next)                                                                          \
        next = (int (*)(__VA_ARGS__))next_fn(name)

int open(const char *path, int flags, ...)
{
    SHIM_OPEN("open", const char *, int, ...);
    fd = next(path, flags, mode);
    opened(path, fd);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    SHIM_OPEN("open64", const char *, int, ...);
    fd = next(path, flags, mode);
    opened(path, fd);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    SHIM_OPEN("openat", int, const char *, int, ...);
    fd = next(dirfd, path, flags, mode);
    opened(path, fd);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    SHIM_OPEN("openat64", int, const char *, int, ...);
    fd = next(dirfd, path, flags, mode);
    opened(path, fd);
    return fd;
}

/* _FORTIFY_SOURCE's open (no mode argument) */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);

int __open_2(const char *path, int flags)
{
    static int (*next)(const char *, int);
    int fd;

    if (!next)
        next = (int (*)(const char *, int))next_fn("__open_2");
    fd = next(path, flags);
    opened(path, fd);
    return fd;
}

int __open64_2(const char *path, int flags)
{
    static int (*next)(const char *, int);
    int fd;

    if (!next)
        next = (int (*)(const char *, int))next_fn("__open64_2");
    fd = next(path, flags);
    opened(path, fd);
    return fd;
}

/* ---- SCM_RIGHTS: the connections go along ------------------------------- */

ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags)
{
    static ssize_t (*next)(int, const struct msghdr *, int);
    struct cmsghdr *c = msg->msg_control ? CMSG_FIRSTHDR((struct msghdr *)msg) : NULL;
    union {
        char buf[CMSG_SPACE(sizeof(int) * SHIM_SCM_MAX)];
        struct cmsghdr align;
    } u;
    int fds[SHIM_SCM_MAX];
    uint32_t trailer[SHIM_SCM_MAX + 2];
    struct iovec iov[64];
    size_t nfds, k = 0, len = 0;
    struct msghdr m = *msg;
    ssize_t r;

    if (!next)
        next = (ssize_t (*)(int, const struct msghdr *, int))next_fn("sendmsg");
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        CMSG_NXTHDR((struct msghdr *)msg, c) || msg->msg_iovlen >= 64)
        return next(sockfd, msg, flags);
    nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (nfds > SHIM_SCM_MAX)
        return next(sockfd, msg, flags);
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    for (size_t i = 0, n = nfds; i < n; i++) {
        int s = map_sock(fds[i], NULL);

        if (s < 0)
            continue;
        if (nfds == SHIM_SCM_MAX) {
            errno = ETOOMANYREFS;
            return -1;
        }
        fds[nfds++] = s;
        trailer[k++] = (uint32_t)i;
    }
    if (!k)
        return next(sockfd, msg, flags);
    trailer[k] = (uint32_t)k;
    trailer[k + 1] = SHIM_MAGIC;
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        iov[i] = msg->msg_iov[i];
        len += iov[i].iov_len;
    }
    iov[msg->msg_iovlen].iov_base = trailer;
    iov[msg->msg_iovlen].iov_len = (k + 2) * sizeof(uint32_t);
    m.msg_iov = iov;
    m.msg_iovlen = msg->msg_iovlen + 1;
    memset(&u, 0, sizeof(u));
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    c = (struct cmsghdr *)u.buf;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    r = next(sockfd, &m, flags);
    return r > (ssize_t)len ? (ssize_t)len : r;
}

/* Bytes [off, off + n) of the received data, scattered over msg's iovs. */
static void gather(const struct msghdr *msg, size_t off, void *out, size_t n)
{
    char *o = out;

    for (size_t i = 0; i < msg->msg_iovlen && n; i++) {
        size_t l = msg->msg_iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        size_t take = l - off < n ? l - off : n;
        memcpy(o, (char *)msg->msg_iov[i].iov_base + off, take);
        o += take;
        n -= take;
        off = 0;
    }
}

ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags)
{
    static ssize_t (*next)(int, struct msghdr *, int);
    union {
        char buf[CMSG_SPACE(sizeof(int) * SHIM_SCM_MAX) + 256];
        struct cmsghdr align;
    } u;
    struct msghdr m = *msg;
    size_t cap = 0, used = 0;
    ssize_t r;

    if (!next)
        next = (ssize_t (*)(int, struct msghdr *, int))next_fn("recvmsg");
    if (!msg->msg_control || msg->msg_controllen < CMSG_SPACE(sizeof(int)) ||
        (flags & MSG_PEEK))
        return next(sockfd, msg, flags);
    memset(&u, 0, sizeof(u));
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    r = next(sockfd, &m, flags);
    msg->msg_flags = m.msg_flags;
    msg->msg_namelen = m.msg_namelen;
    if (r < 0) {
        msg->msg_controllen = 0;
        return r;
    }
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        cap += msg->msg_iov[i].iov_len;
    for (struct cmsghdr *c = m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL; c;
         c = CMSG_NXTHDR(&m, c)) {
        char *dst = (char *)msg->msg_control + used;
        size_t payload = c->cmsg_len - CMSG_LEN(0);

        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fds[SHIM_SCM_MAX];
            size_t n = payload / sizeof(int);
            uint32_t tail[2], idx[SHIM_SCM_MAX];

            memcpy(fds, CMSG_DATA(c), n * sizeof(int));
            /* the sender's shim's trailer: which fds the last k connections belong to */
            if ((size_t)r <= cap && (size_t)r >= sizeof(tail)) {
                gather(msg, (size_t)r - sizeof(tail), tail, sizeof(tail));
                size_t k = tail[0], tlen = (k + 2) * sizeof(uint32_t);
                if (tail[1] == SHIM_MAGIC && k && k * 2 <= n && tlen <= (size_t)r) {
                    gather(msg, (size_t)r - tlen, idx, k * sizeof(uint32_t));
                    for (size_t j = 0; j < k; j++) {
                        if (idx[j] >= n - k) {
                            fprintf(stderr, "fdpass-shim: a bad trailer\n");
                            abort();
                        }
                        map_add(fds[idx[j]], fds[n - k + j], true);
                    }
                    n -= k;
                    r -= (ssize_t)tlen;
                }
            }
            if (used + CMSG_SPACE(n * sizeof(int)) > msg->msg_controllen) {
                /* as the kernel: the fds that do not fit are closed */
                for (size_t i = 0; i < n; i++)
                    close(fds[i]);
                msg->msg_flags |= MSG_CTRUNC;
                continue;
            }
            memset(dst, 0, CMSG_SPACE(n * sizeof(int)));
            ((struct cmsghdr *)dst)->cmsg_level = SOL_SOCKET;
            ((struct cmsghdr *)dst)->cmsg_type = SCM_RIGHTS;
            ((struct cmsghdr *)dst)->cmsg_len = CMSG_LEN(n * sizeof(int));
            memcpy(CMSG_DATA((struct cmsghdr *)dst), fds, n * sizeof(int));
            used += CMSG_SPACE(n * sizeof(int));
        } else {
            if (used + CMSG_SPACE(payload) > msg->msg_controllen) {
                msg->msg_flags |= MSG_CTRUNC;
                continue;
            }
            memcpy(dst, c, c->cmsg_len);
            used += CMSG_SPACE(payload);
        }
    }
    msg->msg_controllen = used;
    return r;
}
