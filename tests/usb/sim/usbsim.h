/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A USB device simulator on umockdev: answers usbfs ioctls (descriptors,
 * control transfers, URB submit/reap) for simulated devices, so that
 * unmodified libusb (and so Ferry) talks to them as to real hardware.
 *
 * The program using it must run under umockdev-wrapper (LD_PRELOAD of
 * libumockdev-preload) so that /sys, /dev and uevents are redirected into
 * the testbed.  ioctls are answered on umockdev's worker thread; the calls
 * below are safe from any thread.
 */
#ifndef FERRY_USBSIM_H
#define FERRY_USBSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum usbsim_kind {
    USBSIM_KEYBOARD,   /* HID boot keyboard, interrupt IN 0x81 */
    USBSIM_STORAGE,    /* bulk-only mass storage over a RAM disk */
    USBSIM_VENDOR,     /* bulk loopback 0x01 -> 0x82, isochronous IN 0x83 */
    USBSIM_DISGUISED,  /* a vendor interface whose altsetting 1 is a HID keyboard
                          (a policy must see it); otherwise answers like VENDOR */
};

#define USBSIM_VID          0x1d50   /* used by the simulator's devices */
#define USBSIM_PID_KEYBOARD 0x6101
#define USBSIM_PID_STORAGE  0x6102
#define USBSIM_PID_VENDOR   0x6103
#define USBSIM_PID_DISGUISED 0x6104
#define USBSIM_DISK_SECTORS 16384u   /* 8 MiB RAM disk, 512-byte sectors */

struct usbsim;
struct usbsim_dev;

/* NULL (and a message on stderr) when not running under umockdev-wrapper. */
struct usbsim *usbsim_new(void);
void usbsim_free(struct usbsim *sim);
/* The testbed's root directory (UMOCKDEV_DIR). */
const char *usbsim_root(struct usbsim *sim);

/* Plug a device in at `port` ("1-2", "1-3.1"; the hub ports need not exist),
 * serial may be NULL (no serial string).  Sends an "add" uevent. */
struct usbsim_dev *usbsim_add(struct usbsim *sim, enum usbsim_kind kind,
                              const char *port, const char *serial);
/* Unplug (a "remove" uevent; outstanding URBs fail with ENODEV) and plug
 * the same device in again at the same port with a new address. */
void usbsim_unplug(struct usbsim *sim, struct usbsim_dev *dev);
int usbsim_replug(struct usbsim *sim, struct usbsim_dev *dev);
bool usbsim_present(struct usbsim_dev *dev);
int usbsim_busnum(struct usbsim_dev *dev);
int usbsim_devnum(struct usbsim_dev *dev);
const char *usbsim_devnode(struct usbsim_dev *dev);

/* Keyboard: press and release a key (HID usage id, e.g. 0x04 = 'a'). */
void usbsim_key_tap(struct usbsim_dev *dev, uint8_t usage);
/* Storage: copy out of / into the RAM disk. */
void usbsim_disk_read(struct usbsim_dev *dev, uint64_t off, void *buf, size_t len);
void usbsim_disk_write(struct usbsim_dev *dev, uint64_t off, const void *buf, size_t len);
/* Vendor, the isochronous IN endpoint 0x83: each packet carries its frame
 * number (bytes counting up from it, and the number itself, little-endian,
 * in its last 4 bytes).  By default a URB is filled as it is submitted;
 * with a manual clock, frames pass only by usbsim_iso_tick, each filling
 * the next packet of the oldest URB waiting (none waiting: that frame's
 * packet is lost, as on a bus), a URB completing once all its packets are
 * filled; one discarded keeps the packets filled so far (the others
 * "not transferred", -EXDEV, as the kernel reports them). */
struct usbsim_iso_stats {
    uint64_t frames;            /* frames passed (manual clock) */
    uint64_t filled;            /* packets filled into URBs */
    uint64_t lost;              /* frames with no URB waiting */
    uint64_t completed_packets; /* filled packets of URBs given back (completed or discarded) */
    uint64_t partial_discards;  /* URBs discarded with some, not all, packets filled */
};
void usbsim_iso_manual(struct usbsim_dev *dev, bool manual);
void usbsim_iso_tick(struct usbsim_dev *dev, unsigned frames);
void usbsim_iso_stats(struct usbsim_dev *dev, struct usbsim_iso_stats *st);
/* Bulk streams (USB 3): USBDEVFS_ALLOC_STREAMS and FREE_STREAMS calls, and
 * the streams allocated now (any endpoint; the simulator grants what is asked). */
void usbsim_streams(struct usbsim_dev *dev, unsigned *allocs, unsigned *frees, unsigned *now);
/* Kernel driver bound to interface 0 on the host ("" when none). */
void usbsim_driver(struct usbsim_dev *dev, char *buf, size_t len);
/* Number of URBs this device completed. */
uint64_t usbsim_urbs_done(struct usbsim_dev *dev);
/* URBs submitted and waiting for the device (e.g. bulk IN with no data). */
unsigned usbsim_urbs_pending(struct usbsim_dev *dev);

#endif
