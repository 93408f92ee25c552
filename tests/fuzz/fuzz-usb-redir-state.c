// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the state a successor ferry-dm's usbredir endpoint is
 * built from (usb_redir_adopt: the peer's hello replayed to a new parser,
 * bytes read ahead, bytes queued for the peer, the streams to start again
 * with their parameters, the alternate settings, the bulk streams), no
 * device behind it.  An input that starts with "FUSV" is the whole USB
 * service's state instead (usb_service_adopt: assignments, guests, shares,
 * listening sockets, channels) followed by one byte, the number of fds to
 * pass with it (mod 7; sockets, the first one listening).  A state that
 * does not parse is refused with an error (printed with FERRY_FUZZ_VERBOSE
 * set); one that does serves what it carries and then sees the peer go.
 * Never a crash, a leak or a read out of bounds.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usb/ferry-usb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ended(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    *(int *)opaque = 1;
}

#define SVC_FDS 6

/* The service's state, its fds: sockets (a listening one first), none a usbfs node. */
static int fuzz_service(const uint8_t *data, size_t size)
{
    unsigned nfds = data[size - 1] % (SVC_FDS + 1);
    struct event_base *b = event_base_new();
    struct ferry_usb_service_ops ops = { 0 };
    struct ferry_usb_service *svc = NULL;
    int fds[SVC_FDS], sv[2];
    char why[256];

    if (!b)
        return 0;
    for (int i = 0; i < SVC_FDS; i += 2) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            sv[0] = sv[1] = -1;
        fds[i] = sv[0];
        fds[i + 1] = sv[1];
    }
    if (fds[0] >= 0)
        listen(fds[0], 1);      /* (fails on a connected socket: accept then fails too) */
    if (usb_service_new(b, NULL, &ops, NULL, &svc) == 0) {
        if (usb_service_adopt(svc, data, size - 1, fds, nfds, why, sizeof(why)) < 0 &&
            getenv("FERRY_FUZZ_VERBOSE"))
            fprintf(stderr, "refused: %s\n", why);
        for (int i = 0; i < 4; i++)
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usb_service_free(svc);
    }
    /* the fds the service did not take (it closed those it took) */
    for (int i = 0; i < SVC_FDS; i++)
        if (fds[i] >= 0 && fcntl(fds[i], F_GETFD) >= 0)
            close(fds[i]);
    event_base_free(b);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { 0 };
    struct ferry_usb_redir_ops rops = { .ended = ended };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_redir *r = NULL;
    char why[256], sink[8192];
    int sv[2], done = 0;

    if (size >= 5 && !memcmp(data, "FUSV", 4)) {
        if (b)
            event_base_free(b);
        return fuzz_service(data, size);
    }
    if (!b)
        return 0;
    if (usb_host_new(b, false, &hops, NULL, &h) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        usb_host_free(h);
        event_base_free(b);
        return 0;
    }
    if (usb_redir_adopt(h, NULL, sv[0], data, size, "fuzz", &rops, &done, &r, why,
                        sizeof(why)) == 0) {
        for (int i = 0; i < 4 && !done; i++) {
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
                ;
        }
        close(sv[1]);
        for (int i = 0; i < 8 && !done; i++)
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usb_redir_free(r);
    } else {
        if (getenv("FERRY_FUZZ_VERBOSE"))
            fprintf(stderr, "refused: %s\n", why);
        close(sv[1]);
    }
    usb_host_free(h);
    event_base_free(b);
    return 0;
}
