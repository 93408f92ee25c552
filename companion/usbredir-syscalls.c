// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syscalls of ferry-dm's USB redirection (dm-usb.c) beyond the base list,
 * loaded when USB is wanted (companion_usb_wanted).  The broker (the
 * `ferry` CLI, root) opens /dev/bus/usb/BBB/DDD and hands the fd over;
 * libusb is initialised with LIBUSB_OPTION_NO_DEVICE_DISCOVERY before
 * confinement and wraps each handed-over fd with libusb_wrap_sys_device,
 * so it never scans sysfs or opens a node.  The usbredir channel to QEMU
 * is a socketpair(AF_UNIX) (in the base list: it reaches nothing outside
 * the process) whose other end goes to QEMU with getfd over the QMP
 * connection opened before confinement (companion/dm-usb.c), or a socket
 * already connected: no new AF_INET socket is ever created.
 *
 * The usbfs ioctls are the ones libusb 1.0.26's Linux backend
 * (os/linux_usbfs.c) issues for libusbredirhost 0.13, each by number, each
 * with the libusb path that needs it.  It never issues REAPURB (blocking),
 * BULK or RESETEP, so they are not allowed.  Nor are GETDRIVER and
 * CLAIMINTERFACE: usbredirhost claims with libusb's auto-detach, which is
 * one DISCONNECT_CLAIM (Linux >= 3.15); libusb falls back to them only on
 * older kernels, or for libusb_kernel_driver_active/_detach_kernel_driver,
 * which usbredirhost 0.13 does not call.  USBDEVFS_IOCTL carries the
 * kernel-driver CONNECT/DISCONNECT requests in memory the filter cannot see;
 * usbfs itself lets only the fd's owner use them.
 *
 * libusb_wrap_sys_device first tries readlink("/proc/self/fd/N") for the
 * bus number; it gets ENOENT here (the root is empty anyway) and falls back
 * to USBDEVFS_CONNECTINFO.
 *
 * Checked on a real usbfs (tests/usb/gadget-usb.sh, test usb-gadget-confined:
 * dummy_hcd + a configfs gadget in a Linux guest, kill mode): wrapping,
 * detaching and reattaching usbhid, SET_CONFIGURATION, SET_INTERFACE,
 * CLEAR_FEATURE(HALT), control, bulk and interrupt transfers, the reset,
 * unplug and replug with the broker's new fd need nothing beyond this list,
 * and removing any ioctl below but the two streams ones makes that test
 * fail with the SIGSYS line naming it.  Isochronous transfers and streams
 * are not covered there (dummy_hcd fails every iso transfer).
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "companion/dm-usb.h"
#include "sandbox/sandbox.h"

FERRY_SYSCALL_LIST(companion_syscalls_usbredir, "usbredir",
    "USB redirection: libusb on broker-handed usbfs fds, usbredir on open sockets",
    /* libusb_wrap_sys_device: the device's capabilities, bus and address
     * (no sysfs path here), speed */
    FERRY_IOCTL(USBDEVFS_GET_CAPABILITIES), FERRY_IOCTL(USBDEVFS_CONNECTINFO),
    FERRY_IOCTL(USBDEVFS_GET_SPEED),
    FERRY_SC_ERRNO("readlink", ENOENT), FERRY_SC_ERRNO("readlinkat", ENOENT),
    /* access() runs nothing and finds nothing in the empty root: ENOENT.
     * umockdev's preload (the tests' simulated devices) asks it before each
     * path call it traps, such as that readlink; with every signal blocked
     * around it, a kill there would leave no line (docs/confinement.md) */
    FERRY_SC_ERRNO("access", ENOENT), FERRY_SC_ERRNO("faccessat", ENOENT),
    FERRY_SC_ERRNO("faccessat2", ENOENT),
    /* usbredirhost_set_device: libusb_release_interface first, then
     * libusb_claim_interface with auto-detach (DISCONNECT_CLAIM: the host's
     * driver goes, usbfs claims); libusb_reset_device (RESET) when set and at
     * close; libusb_attach_kernel_driver at close (USBDEVFS_IOCTL CONNECT:
     * the host's driver comes back) */
    FERRY_IOCTL(USBDEVFS_RELEASEINTERFACE), FERRY_IOCTL(USBDEVFS_DISCONNECT_CLAIM),
    FERRY_IOCTL(USBDEVFS_RESET), FERRY_IOCTL(USBDEVFS_IOCTL),
    /* the guest's standard requests: SET_INTERFACE (libusb_set_interface_alt_setting),
     * SET_CONFIGURATION (libusb_set_configuration), CLEAR_FEATURE(ENDPOINT_HALT)
     * (libusb_clear_halt); USB 3 bulk streams (libusb_alloc_streams/_free_streams,
     * e.g. UAS; not exercised by the tests: dummy_hcd gadgets have none) */
    FERRY_IOCTL(USBDEVFS_SETINTERFACE), FERRY_IOCTL(USBDEVFS_SETCONFIGURATION),
    FERRY_IOCTL(USBDEVFS_CLEAR_HALT),
    FERRY_IOCTL(USBDEVFS_ALLOC_STREAMS), FERRY_IOCTL(USBDEVFS_FREE_STREAMS),
    /* every transfer (control, bulk, interrupt, iso) is an async URB: submit,
     * reap without blocking, discard when cancelled (interrupt receiving
     * stopped, device closed); CONTROL: libusb's synchronous read of the
     * active configuration of a wrapped device */
    FERRY_IOCTL(USBDEVFS_SUBMITURB), FERRY_IOCTL(USBDEVFS_DISCARDURB),
    FERRY_IOCTL(USBDEVFS_REAPURBNDELAY), FERRY_IOCTL(USBDEVFS_CONTROL),
    /* usbredir over TCP from thin clients: latency matters (RIGS.md) */
    { .syscall = "setsockopt", .match = {
        { .arg = 1, .op = FERRY_ARG_EQ, .value = IPPROTO_TCP, .name = "IPPROTO_TCP" },
        { .arg = 2, .op = FERRY_ARG_EQ, .value = TCP_NODELAY, .name = "TCP_NODELAY" } } });
