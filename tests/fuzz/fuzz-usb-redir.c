// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: bytes from a usbredir peer into Ferry's usbredir
 * endpoint (ferry_usb_redir on libusbredirhost, no device behind it).
 * Whatever arrives, the endpoint must end cleanly or keep going; never
 * crash, leak or read out of bounds.
 */
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usb/ferry-usb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ended(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    *(int *)opaque = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { 0 };
    struct ferry_usb_redir_ops rops = { .ended = ended };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_redir *r = NULL;
    int sv[2], done = 0;
    size_t off = 0;

    if (!b)
        return 0;
    if (usb_host_new(b, false, &hops, NULL, &h) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        usb_host_free(h);
        event_base_free(b);
        return 0;
    }
    if (usb_redir_new(h, NULL, sv[0], "fuzz", &rops, &done, &r) < 0) {
        close(sv[1]);
        usb_host_free(h);
        event_base_free(b);
        return 0;
    }
    /* feed the input in pieces so that packets straddle reads */
    while (off < size && !done) {
        size_t n = size - off < 4093 ? size - off : 4093;
        ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        char sink[8192];
        if (w > 0)
            off += (size_t)w;
        for (int i = 0; i < 4; i++)
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
    /* and then the peer goes away mid-stream */
    close(sv[1]);
    for (int i = 0; i < 8 && !done; i++)
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usb_redir_free(r);
    usb_host_free(h);
    event_base_free(b);
    return 0;
}
