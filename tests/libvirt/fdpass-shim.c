// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test-only LD_PRELOAD library, loaded before umockdev's preload: lets a
 * simulated usbfs fd (umockdev, tests/usb/sim) follow SCM_RIGHTS into
 * another process, as a real usbfs fd does.  Without it the broker's fd
 * reaches ferry-dm as what it is underneath, a regular file of the testbed,
 * and every usbfs ioctl on it fails (ENOTTY): umockdev's preload emulates a
 * device only for fds that its own process opened, by fd number, each with
 * a connection to the testbed's per-device ioctl socket
 * ($UMOCKDEV_DIR/ioctl/dev/...; libumockdev-preload.c, ioctl_emulate_open).
 *
 * Sender (the root broker, a process named `ferry`: ferry usb attach, ferry
 * libvirt-hook, ferry libvirt-follow): for each fd in an SCM_RIGHTS message that is a testbed
 * /dev node, a new connection to that node's ioctl socket is made (exactly
 * what umockdev does for an open()) and sent right after it in the same
 * message.  Receiver (ferry-dm, confined or not): a message with two fds
 * where Ferry sends one is a node and its connection; the connection is
 * taken out of the message (the program sees the one fd it expects), and
 * ioctl() and read() on the node speak umockdev's client protocol on it
 * (remote_emulate in libumockdev-preload.c, umockdev 0.17: requests of
 * three unsigned longs; answers DONE, RUN, READ_MEM, WRITE_MEM, ABORT),
 * with raw read/write syscalls: no socket() or connect() in the receiver,
 * so a confined ferry-dm's seccomp filter is not involved beyond read and
 * write.  Ferry's code is unchanged; only the simulator's fd gains the
 * property a real usbfs fd has.
 */
#include <stdbool.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SHIM_FDS_MAX 64
#define SHIM_CMSG_FDS 16

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

static struct {
    int fd, sock;
} shim_map[SHIM_FDS_MAX];
static int shim_n;
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;

static void *next_fn(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static int map_sock(int fd)
{
    int s = -1;

    pthread_mutex_lock(&shim_lock);
    for (int i = 0; i < shim_n; i++)
        if (shim_map[i].fd == fd)
            s = shim_map[i].sock;
    pthread_mutex_unlock(&shim_lock);
    return s;
}

static void map_add(int fd, int sock)
{
    pthread_mutex_lock(&shim_lock);
    if (shim_n < SHIM_FDS_MAX) {
        shim_map[shim_n].fd = fd;
        shim_map[shim_n].sock = sock;
        shim_n++;
    } else {
        syscall(SYS_close, sock);
    }
    pthread_mutex_unlock(&shim_lock);
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
    int s = map_sock(fd);

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (s >= 0)
        return (int)remote(fd, s, REQ_IOCTL, request, (unsigned long)arg);
    if (!next)
        next = (int (*)(int, unsigned long, ...))next_fn("ioctl");
    return next(fd, request, arg);
}

ssize_t read(int fd, void *buf, size_t count)
{
    static ssize_t (*next)(int, void *, size_t);
    int s = map_sock(fd);

    if (s >= 0)
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

/* The testbed's device path of fd ("/dev/bus/usb/001/002"), or false. */
static bool testbed_node(int fd, char *dev, size_t len)
{
    const char *dir = getenv("UMOCKDEV_DIR");
    char link[64], target[PATH_MAX], root[PATH_MAX];
    ssize_t n;
    size_t rl;

    if (!dir || !realpath(dir, root))
        return false;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = (ssize_t)syscall(SYS_readlink, link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = 0;
    rl = strlen(root);
    if (strncmp(target, root, rl) || strncmp(target + rl, "/dev/", 5))
        return false;
    snprintf(dev, len, "%s", target + rl);
    return true;
}

static int ioctl_connect(const char *dev)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    const char *dir = getenv("UMOCKDEV_DIR");

    if (strlen(dir) + strlen("/ioctl") + strlen(dev) >= sizeof(sa.sun_path)) {
        if (s >= 0)
            syscall(SYS_close, s);
        return -1;
    }
    memcpy(sa.sun_path, dir, strlen(dir));
    memcpy(sa.sun_path + strlen(dir), "/ioctl", 6);
    memcpy(sa.sun_path + strlen(dir) + 6, dev, strlen(dev) + 1);
    if (s >= 0 && syscall(SYS_connect, s, &sa, sizeof(sa)) < 0) {
        syscall(SYS_close, s);
        s = -1;
    }
    return s;
}

ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags)
{
    static ssize_t (*next)(int, const struct msghdr *, int);
    struct cmsghdr *c = msg->msg_control ? CMSG_FIRSTHDR((struct msghdr *)msg) : NULL;
    union {
        char buf[CMSG_SPACE(sizeof(int) * SHIM_CMSG_FDS)];
        struct cmsghdr align;
    } u;
    int fds[SHIM_CMSG_FDS], socks[SHIM_CMSG_FDS], nfds = 0, nsocks = 0;
    struct msghdr m = *msg;
    ssize_t r;

    if (!next)
        next = (ssize_t (*)(int, const struct msghdr *, int))next_fn("sendmsg");
    /* only the broker (the `ferry` CLI) sends device fds; a confined ferry-dm
     * must not look at paths here */
    if (strcmp(program_invocation_short_name, "ferry") || !c || c->cmsg_level != SOL_SOCKET ||
        c->cmsg_type != SCM_RIGHTS || CMSG_NXTHDR((struct msghdr *)msg, c))
        return next(sockfd, msg, flags);
    for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < SHIM_CMSG_FDS;
         i++) {
        char dev[PATH_MAX];
        int fd;

        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds[nfds++] = fd;
        if (testbed_node(fd, dev, sizeof(dev)) && nfds < SHIM_CMSG_FDS) {
            int s = ioctl_connect(dev);
            if (s >= 0)
                fds[nfds++] = socks[nsocks++] = s;
        }
    }
    if (!nsocks)
        return next(sockfd, msg, flags);
    memset(&u, 0, sizeof(u));
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    r = next(sockfd, &m, flags);
    for (int i = 0; i < nsocks; i++)
        syscall(SYS_close, socks[i]);
    return r;
}

ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags)
{
    static ssize_t (*next)(int, struct msghdr *, int);
    union {
        char buf[CMSG_SPACE(sizeof(int) * SHIM_CMSG_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr m = *msg;
    struct cmsghdr *c;
    int fds[SHIM_CMSG_FDS];
    size_t n;
    ssize_t r;

    if (!next)
        next = (ssize_t (*)(int, struct msghdr *, int))next_fn("recvmsg");
    /* Ferry passes one fd per message: only then is there something to do */
    if (!msg->msg_control || msg->msg_controllen < CMSG_SPACE(sizeof(int)) ||
        msg->msg_controllen >= sizeof(u.buf))
        return next(sockfd, msg, flags);
    memset(&u, 0, sizeof(u));
    m.msg_control = u.buf;
    m.msg_controllen = sizeof(u.buf);
    r = next(sockfd, &m, flags);
    msg->msg_flags = m.msg_flags;
    msg->msg_namelen = m.msg_namelen;
    c = r >= 0 && m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL;
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
        /* nothing with fds: the caller's buffer as it would have been */
        if (c && m.msg_controllen <= msg->msg_controllen) {
            memcpy(msg->msg_control, u.buf, m.msg_controllen);
            msg->msg_controllen = m.msg_controllen;
        } else {
            msg->msg_controllen = 0;
        }
        return r;
    }
    n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    memcpy(fds, CMSG_DATA(c), n * sizeof(int));
    if (n == 2) {
        /* a simulated node and its connection to the simulator */
        map_add(fds[0], fds[1]);
        n = 1;
    }
    if (CMSG_SPACE(n * sizeof(int)) > msg->msg_controllen) {
        for (size_t i = 0; i < n; i++)
            syscall(SYS_close, fds[i]);
        msg->msg_flags |= MSG_CTRUNC;
        msg->msg_controllen = 0;
        return r;
    }
    memset(msg->msg_control, 0, CMSG_SPACE(n * sizeof(int)));
    c = (struct cmsghdr *)msg->msg_control;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    msg->msg_controllen = CMSG_SPACE(n * sizeof(int));
    return r;
}
