// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: what a client sends to `ferry usb share` before it is
 * served: usb/share.c's hello check (usb_share_hello_check) on the raw
 * bytes, with its promises checked, and then the same bytes through a real
 * share (plain, on an abstract unix socket) whose device cannot be used
 * (/dev/null): a hello ends in "cannot be used", anything else in a
 * refusal or the handshake timeout; never a crash, leak or hang.
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "usb/ferry-usb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_hello(const uint8_t *data, size_t size)
{
    char what[160];
    size_t need = 0;
    int r = usb_share_hello_check(data, size, &need, what, sizeof(what));

    if (r == 1 && (need > size || need < 12 + 64 || need > FERRY_USB_SHARE_HELLO_MAX))
        abort();
    if (r == 0 && (need <= size || need > FERRY_USB_SHARE_HELLO_MAX))
        abort();
    if (r < 0 && (size < 12 || !what[0]))
        abort();
    /* a hello is a hello whatever follows it */
    if (r == 1 && size > need &&
        usb_share_hello_check(data, need, &need, what, sizeof(what)) != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct event_base *b;
    struct ferry_usb_host_ops hops = { 0 };
    struct ferry_usb_share_ops sops = { 0 };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_share *s = NULL;
    struct ferry_usb_share_config cfg = { .name = "fuzz", .handshake_ms = 5 };
    char err[FERRY_USB_ERR_MAX], sink[256];
    int lfd, cfd = -1;
    size_t off = 0;

    check_hello(data, size);
    b = event_base_new();
    if (!b)
        return 0;
    snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "ferry-fuzz-share-%d", (int)getpid());
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
        usb_host_new(b, false, &hops, NULL, &h) < 0)
        goto out;
    cfg.listen_fd = lfd;
    cfg.usbfs_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (usb_share_new(h, &cfg, &sops, NULL, &s, err, sizeof(err)) < 0) {
        close(cfg.usbfs_fd);
        goto out;
    }
    lfd = -1;       /* the share's now */
    cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto out;
    /* in pieces, so that the hello straddles reads */
    while (off < size) {
        size_t n = size - off < 37 ? size - off : 37;
        ssize_t w = send(cfd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (w <= 0)
            break;
        off += (size_t)w;
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    /* until the share has closed our end (the handshake timeout bounds it) */
    for (int i = 0; i < 2000; i++) {
        ssize_t n = recv(cfd, sink, sizeof(sink), MSG_DONTWAIT);

        if (n == 0 || (n < 0 && errno != EAGAIN))
            break;
        event_base_loop(b, EVLOOP_ONCE);
    }
out:
    if (cfd >= 0)
        close(cfd);
    usb_share_free(s);
    if (lfd >= 0)
        close(lfd);
    usb_host_free(h);
    event_base_free(b);
    return 0;
}
