// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: bytes from a usbredir peer into Ferry's usbredir
 * endpoint with a device behind it: the umockdev simulator's bulk loopback
 * device (tests/usb/sim: control transfers, bulk OUT 0x01 -> IN 0x82,
 * isochronous IN 0x83, an altsetting), reached through real libusb and
 * usbfs ioctls as a broker's fd would be (usb_host_wrap_fd).  So the
 * peer's control, bulk, interrupt and iso packets, set_configuration,
 * set_alt_setting, stream and filter packets reach the device and its
 * answers go back, and the endpoint must stay sound whatever the peer
 * says.  Runs under umockdev-wrapper only (tests/fuzz/libfuzzer-run.py and
 * meson wrap it); elsewhere every input is a no-op with a message.
 *
 * Each input gets a libusb context of its own, so that nothing libusb
 * caches about the device carries over to the next input; the simulated
 * device stays.
 *
 * Input: the peer's byte stream, fed in pieces of 4093 bytes with the loop
 * run in between; then the peer goes away.
 *
 * corpus/usb-redir-dev/regress-undeclared-altsetting (set_alt_setting of
 * interface 0 to altsetting 3, after any other input): the simulator used
 * to accept any SETINTERFACE, where the kernel refuses an altsetting the
 * configuration does not declare; libusbredirhost then indexed its
 * altsetting array past the end and crashed.  The simulator now answers as
 * the kernel does.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usb/ferry-usb.h"
#include "usbsim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static struct usbsim *sim;
static struct usbsim_dev *dev;
static struct event_base *base;
static int dev_fd = -1;
static bool unavailable;

static void ended(void *opaque, struct ferry_usb_redir *r, enum ferry_usb_redir_end why)
{
    *(int *)opaque = 1;
}

static void quiet(void *opaque, enum ferry_log_level level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
}

static bool setup(void)
{
    struct event_config *cfg;

    sim = usbsim_new();
    if (!sim) {
        fprintf(stderr, "fuzz-usb-redir-dev: not under umockdev-wrapper: nothing runs\n");
        return false;
    }
    dev = usbsim_add(sim, USBSIM_VENDOR, "1-4", "FUZZ1");
    FUZZ_CHECK(dev);
    /* umockdev's preload and epoll do not mix (as tests/usb/test-usb.c) */
    cfg = event_config_new();
    event_config_avoid_method(cfg, "epoll");
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    FUZZ_CHECK(base);
    dev_fd = open(usbsim_devnode(dev), O_RDWR | O_CLOEXEC);
    FUZZ_CHECK(dev_fd >= 0);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_usb_redir_ops rops = { .log = quiet, .ended = ended };
    struct ferry_usb_host_ops hops = { .log = quiet };
    struct ferry_usb_host *host = NULL;
    struct libusb_device_handle *handle = NULL;
    struct ferry_usb_redir *r = NULL;
    struct ferry_usb_devinfo info;
    char err[FERRY_USB_ERR_MAX];
    int sv[2], done = 0;
    size_t off = 0;

    if (unavailable || (!sim && !setup())) {
        unavailable = true;
        return 0;
    }
    /* a libusb context per input: nothing libusb caches about the device
     * (its active configuration, say) carries over to the next input */
    FUZZ_CHECK(usb_host_new(base, false, &hops, NULL, &host) == 0);
    FUZZ_CHECK(usb_host_wrap_fd(host, dev_fd, &handle, &info, err, sizeof(err)) == 0);
    FUZZ_CHECK(info.vid == USBSIM_VID && info.pid == USBSIM_PID_VENDOR);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(usb_redir_new(host, handle, sv[0], "fuzz", &rops, &done, &r) == 0);
    /* feed the input in pieces so that packets straddle reads */
    while (off < size && !done) {
        size_t n = size - off < 4093 ? size - off : 4093;
        ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        char sink[8192];

        if (w > 0)
            off += (size_t)w;
        for (int i = 0; i < 4; i++)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
    /* the device's last answers, then the peer goes away mid-stream */
    for (int i = 0; i < 8 && !done; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    close(sv[1]);
    for (int i = 0; i < 8 && !done; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    usb_redir_free(r);
    usb_host_free(host);
    return 0;
}
