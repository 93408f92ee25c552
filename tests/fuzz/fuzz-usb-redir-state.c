// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the state a successor ferry-dm's usbredir endpoint is
 * built from (usb_redir_adopt: the peer's hello replayed to a new parser,
 * bytes read ahead, bytes queued for the peer, the streams to start again
 * with their parameters, the alternate settings, the bulk streams), no
 * device behind it.  A state that does not parse is refused with an error
 * (printed with FERRY_FUZZ_VERBOSE set); one that does serves what it
 * carries and then sees the peer go.  Never a crash, a leak or a read out
 * of bounds.
 */
#include <event2/event.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { 0 };
    struct ferry_usb_redir_ops rops = { .ended = ended };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_redir *r = NULL;
    char why[256], sink[8192];
    int sv[2], done = 0;

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
