// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: serial input from a socket: chardev into ferry-dm's
 * 16550A (devmodel/chardev.c, devices/uart.c), interleaved with what the
 * guest does to the UART (FIFO control, loopback, interrupt enables, reads
 * of RBR/LSR/IIR/MSR, THR writes whose output goes back to the socket).
 * The client connects, sends, reads, hangs up and comes back; a second
 * client is turned away while the first is there.
 *
 * Records: op (1 byte), then by op & 3:
 *   0  the client sends: length u8, bytes
 *   1  a guest access to port 0x3f8 + (op >> 2) % 8: dir u8 (bit 0 write),
 *      data u8
 *   2  run the loop; the client reads what is waiting
 *   3  (op >> 2) & 1: hang up and reconnect; else a second client knocks
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "devmodel/dm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static char dir[] = "/tmp/ferry-fuzz-serial-XXXXXX";
static char sock_path[108];

static void cleanup(void)
{
    unlink(sock_path);
    rmdir(dir);
}

static int client_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    FUZZ_CHECK(s >= 0);
    strcpy(sa.sun_path, sock_path);
    FUZZ_CHECK(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return s;
}

static void pump(struct event_base *base, int cl)
{
    char buf[4096];

    for (int i = 0; i < 3; i++) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        while (cl >= 0 && recv(cl, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event_base *base = event_base_new();
    struct ferry_dm_config cfg = { .name = "fuzz", .base = base };
    struct ferry_dm_opts *o = NULL;
    struct ferry_dm *dm;
    char opts[300];
    size_t pos = 0;
    int cl;

    if (!sock_path[0]) {
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(sock_path, sizeof(sock_path), "%s/serial", dir);
        signal(SIGPIPE, SIG_IGN);       /* as ferry-dm's main() */
        atexit(cleanup);
    }
    FUZZ_CHECK(base && dm_create(&cfg, &dm) == 0);
    snprintf(opts, sizeof(opts), "out=socket:%s,in=socket:%s", sock_path, sock_path);
    FUZZ_CHECK(dm_opts_parse(opts, &o) == 0);
    FUZZ_CHECK(dm_device_add(dm, "uart", "com1", o, NULL) == 0);
    dm_opts_free(o);
    FUZZ_CHECK(dm_start(dm) == 0);
    cl = client_connect();
    pump(base, cl);

    while (pos < size) {
        uint8_t op = data[pos++];

        switch (op & 3) {
        case 0: {
            if (pos >= size)
                goto out;
            size_t len = data[pos++];

            if (len > size - pos)
                len = size - pos;
            (void)send(cl, data + pos, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            pos += len;
            break;
        }
        case 1: {
            if (size - pos < 2)
                goto out;
            ioreq_t req = { .addr = 0x3f8 + (op >> 2) % 8, .size = 1, .count = 1,
                            .type = IOREQ_TYPE_PIO, .dir = data[pos] & 1 ? IOREQ_WRITE
                                                                        : IOREQ_READ,
                            .data = data[pos + 1] };
            pos += 2;
            dm_handle_ioreq(dm, 0, &req);
            if (req.dir == IOREQ_READ)
                FUZZ_CHECK(req.data <= 0xff);   /* one byte asked, one answered */
            break;
        }
        case 2:
            pump(base, cl);
            break;
        default:
            if ((op >> 2) & 1) {
                close(cl);
                pump(base, -1);
                cl = client_connect();
            } else {
                int other = client_connect();

                pump(base, cl);
                close(other);
            }
            pump(base, cl);
            break;
        }
    }
out:
    close(cl);
    pump(base, -1);
    dm_destroy(dm);
    event_base_free(base);
    return 0;
}
