// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syscalls of USB redirection beyond the base list.  The broker (the
 * `ferry` CLI, root) opens /dev/bus/usb/BBB/DDD and hands the fd over;
 * libusb is initialised with LIBUSB_OPTION_NO_DEVICE_DISCOVERY before
 * confinement and wraps each handed-over fd with libusb_wrap_sys_device,
 * so it never scans sysfs or opens a node.  The usbredir channel to QEMU
 * is a socketpair(AF_UNIX) (in the base list: it reaches nothing outside
 * the process) whose other end goes to QEMU with getfd over the QMP
 * connection opened before confinement (devmodel/dm-usb.c), or a socket
 * already connected: no new AF_INET socket is ever created.
 *
 * The usbfs ioctls are exactly the ones libusb 1.0.26's Linux backend
 * (os/linux_usbfs.c) issues for wrapping, claiming, configuring and
 * transfers (control, bulk, interrupt, isochronous: all SUBMITURB and
 * REAPURBNDELAY; streams), each by number.  It never issues REAPURB
 * (blocking), BULK or RESETEP, so they are not allowed.  USBDEVFS_IOCTL
 * carries the kernel-driver DISCONNECT/CONNECT requests in memory the
 * filter cannot see; usbfs itself lets only the fd's owner use them.
 *
 * libusb_wrap_sys_device first tries readlink("/proc/self/fd/N") for the
 * bus number; it gets ENOENT here (the root is empty anyway) and falls back
 * to USBDEVFS_CONNECTINFO.
 *
 * Checked on a real usbfs (tests/usb/gadget-usb.sh, test usb-gadget-confined:
 * dummy_hcd + a configfs gadget in a Linux guest, kill mode): wrapping,
 * detaching and reattaching usbhid, control, bulk and interrupt transfers,
 * the reset at close, unplug and replug with the broker's new fd need
 * nothing beyond this list.  Isochronous transfers are not covered there
 * (dummy_hcd fails them all).
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "devmodel/sandbox.h"

FERRY_SYSCALL_LIST(ferry_syscalls_usbredir, "usbredir",
    "USB redirection: libusb on broker-handed usbfs fds, usbredir on open sockets",
    /* wrapping a handed-over fd (libusb_wrap_sys_device) */
    FERRY_IOCTL(USBDEVFS_GET_CAPABILITIES), FERRY_IOCTL(USBDEVFS_CONNECTINFO),
    FERRY_IOCTL(USBDEVFS_GET_SPEED), FERRY_IOCTL(USBDEVFS_GETDRIVER),
    FERRY_SC_ERRNO("readlink", ENOENT), FERRY_SC_ERRNO("readlinkat", ENOENT),
    /* claiming and configuring */
    FERRY_IOCTL(USBDEVFS_CLAIMINTERFACE), FERRY_IOCTL(USBDEVFS_RELEASEINTERFACE),
    FERRY_IOCTL(USBDEVFS_DISCONNECT_CLAIM), FERRY_IOCTL(USBDEVFS_IOCTL),
    FERRY_IOCTL(USBDEVFS_SETINTERFACE), FERRY_IOCTL(USBDEVFS_SETCONFIGURATION),
    FERRY_IOCTL(USBDEVFS_RESET), FERRY_IOCTL(USBDEVFS_CLEAR_HALT),
    FERRY_IOCTL(USBDEVFS_ALLOC_STREAMS), FERRY_IOCTL(USBDEVFS_FREE_STREAMS),
    /* transfers (CONTROL: libusb's synchronous read of the active configuration) */
    FERRY_IOCTL(USBDEVFS_SUBMITURB), FERRY_IOCTL(USBDEVFS_DISCARDURB),
    FERRY_IOCTL(USBDEVFS_REAPURBNDELAY), FERRY_IOCTL(USBDEVFS_CONTROL),
    /* usbredir over TCP from thin clients: latency matters (RIGS.md) */
    { .syscall = "setsockopt", .match = {
        { .arg = 1, .op = FERRY_ARG_EQ, .value = IPPROTO_TCP, .name = "IPPROTO_TCP" },
        { .arg = 2, .op = FERRY_ARG_EQ, .value = TCP_NODELAY, .name = "TCP_NODELAY" } } });
