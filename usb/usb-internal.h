/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the files of libferry-usb; not installed. */
#ifndef FERRY_USB_INTERNAL_H
#define FERRY_USB_INTERNAL_H

#include "usb/ferry-usb.h"

/* Handle pending libusb events now (zero timeout) and re-arm the timer. */
void usb_host_pump(struct ferry_usb_host *h);
struct event_base *usb_host_base(struct ferry_usb_host *h);

#define FERRY_USB_VERSION "0.1"

#endif
