// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: QMP replies and events from a hostile QEMU into the
 * project's QMP client (common/qmp.c) and its users: libferry-usb's
 * ferry_usb_qmp (usb-redir hot-add and removal, DEVICE_DELETED waits) and
 * ferry-dm's shared connection (companion/dm-qmp.c, with common/qmp-wait.c's
 * waiters on an event loop).
 *
 * Input: byte 0 picks the client (% 3: raw ferry_qmp with query-pci and
 * events, ferry_usb_qmp's hot-add/remove, companion_qmp on a loop); the rest is
 * what "QEMU" sends, all of it at once, then it shuts its side for writing
 * (so no call waits for a timeout) while it keeps reading what the client
 * sends, SCM_RIGHTS fds included.  Whatever arrives, every call must end
 * with a result or an error message, never crash, leak or hang.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include <glib.h>

#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "companion/dm-qmp.h"
#include "usb/ferry-usb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FUZZ_TIMEOUT_MS 5000

static char sock_path[108];
static int listen_fd = -1;

struct peer {
    const uint8_t *data;
    size_t size;
};

static void cleanup(void)
{
    char *slash;

    unlink(sock_path);
    slash = strrchr(sock_path, '/');
    if (slash) {
        *slash = 0;
        rmdir(sock_path);
    }
}

static void setup(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/ferry-fuzz-qmp-XXXXXX";

    FUZZ_CHECK(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/qmp", dir);
    strcpy(sa.sun_path, sock_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(listen_fd >= 0);
    FUZZ_CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    FUZZ_CHECK(listen(listen_fd, 4) == 0);
    atexit(cleanup);
}

/* "QEMU": send everything, shut for writing, read (and drop) until EOF. */
static void *peer_main(void *arg)
{
    struct peer *p = arg;
    size_t off = 0;
    bool shut = false;
    struct pollfd lp = { .fd = listen_fd, .events = POLLIN };
    int s;

    if (poll(&lp, 1, FUZZ_TIMEOUT_MS) != 1)
        return NULL;
    s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0)
        return NULL;
    for (;;) {
        struct pollfd pfd = { .fd = s, .events = POLLIN | (shut ? 0 : POLLOUT) };

        if (!shut && off == p->size) {
            shutdown(s, SHUT_WR);
            shut = true;
            continue;
        }
        if (poll(&pfd, 1, FUZZ_TIMEOUT_MS) != 1)
            break;
        if (pfd.revents & POLLOUT) {
            ssize_t w = send(s, p->data + off, p->size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = p->size;      /* the client has gone */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            char cbuf[CMSG_SPACE(sizeof(int) * 4)];
            struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                                 .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
            ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm;
                 cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                    continue;
                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                    close(fd);
                }
            }
            if (n == 0 || (n < 0 && errno != EAGAIN))
                break;
        }
    }
    close(s);
    return NULL;
}

static void raw_client(void)
{
    struct ferry_qmp *q = ferry_qmp_new(FUZZ_TIMEOUT_MS);
    json_t *ret = NULL, *ev = NULL;
    char where[16];

    FUZZ_CHECK(q);
    if (ferry_qmp_connect(q, sock_path) < 0) {
        FUZZ_CHECK(ferry_qmp_error(q)[0]);
        ferry_qmp_close(q);
        return;
    }
    (void)ferry_qmp_peer_is_ferry_dm(q);
    if (ferry_qmp_execute(q, "query-pci", NULL, &ret) == 0) {
        if (ret) {
            (void)ferry_qmp_pci_find(ret, "hostdev0", where, sizeof(where));
            (void)ferry_qmp_pci_find(ret, "", where, sizeof(where));
            json_decref(ret);
        }
    } else {
        FUZZ_CHECK(ferry_qmp_error(q)[0]);     /* every failure says why */
    }
    if (ferry_qmp_take_event(q, "DEVICE_DELETED", "hostdev0", &ev) == 0 && ev)
        json_decref(ev);
    ev = NULL;
    (void)ferry_qmp_drain(q);
    if (ferry_qmp_wait_event(q, "DEVICE_DELETED", NULL, 50, &ev) == 0 && ev)
        json_decref(ev);
    ev = NULL;
    if (ferry_qmp_take_event(q, "RESET", NULL, &ev) == 0 && ev)
        json_decref(ev);
    ferry_qmp_close(q);
}

/* The result does not matter here, only that the call returns (GCC's
 * warn_unused_result is not silenced by a cast to void). */
static void ignore(int r)
{
    (void)r;
}

static void usb_client(void)
{
    struct ferry_usb_qmp *q = NULL;
    char err[256], *reply = NULL;
    int sv[2];

    if (usb_qmp_open(sock_path, FUZZ_TIMEOUT_MS, &q, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0]);
        return;
    }
    err[0] = 0;
    if (usb_qmp_execute(q, "query-status", NULL, &reply, err, sizeof(err)) == 0)
        g_free(reply);
    else
        FUZZ_CHECK(err[0]);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    ignore(usb_qmp_redir_add_fd(q, "usbredir-1", sv[0], err, sizeof(err)));
    close(sv[0]);
    close(sv[1]);
    ignore(usb_qmp_redir_add(q, "usbredir-2", "/nonexistent/sock", err, sizeof(err)));
    ignore(ferry_qmp_take_event(usb_qmp_base(q), "DEVICE_DELETED", "usbredir-1",
                                NULL));
    ignore(usb_qmp_redir_del(q, "usbredir-1", err, sizeof(err)));
    if (usb_qmp_redir_del_start(q, "usbredir-2", err, sizeof(err)) == 0)
        ignore(usb_qmp_redir_del_finish(q, "usbredir-2", err, sizeof(err)));
    ignore(usb_qmp_drain(q));
    usb_qmp_close(q);
}

static void gone(void *opaque)
{
    *(int *)opaque = 1;
}

static void waited(void *opaque, int result)
{
    (*(int *)opaque)++;
}

static void dm_client(void)
{
    struct event_base *base = event_base_new();
    struct companion_qmp *d = NULL;
    int lost = 0, done = 0;

    FUZZ_CHECK(base);
    if (companion_qmp_open(base, sock_path, gone, &lost, &d) == 0) {
        (void)ferry_qmp_watch_deleted(companion_qmp_watch(d), "usbredir-1", 20, waited, &done, NULL);
        (void)ferry_qmp_watch_deleted(companion_qmp_watch(d), "hostdev0", 20, waited, &done, NULL);
        for (int i = 0; i < 16 && !lost; i++)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        companion_qmp_free(d);
    }
    event_base_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct peer p;
    pthread_t t;

    if (listen_fd < 0)
        setup();
    if (size < 1)
        return 0;
    p = (struct peer){ data + 1, size - 1 };
    FUZZ_CHECK(pthread_create(&t, NULL, peer_main, &p) == 0);
    switch (data[0] % 3) {
    case 0: raw_client(); break;
    case 1: usb_client(); break;
    default: dm_client(); break;
    }
    pthread_join(t, NULL);
    return 0;
}
