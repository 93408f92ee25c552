#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# usb + security suites: a confined ferry-dm against a REAL usbfs.  A Linux
# guest (QEMU TCG, Debian's kernel) loads dummy_hcd and a configfs gadget
# (tests/usb/gadget.sh), so /dev/bus/usb/BBB/DDD is a real usbfs node and
# every USBDEVFS ioctl of libusb goes through the seccomp filter.  One boot
# (about 10 s): gadget-e2e checks device_connect, standard requests, control,
# bulk and interrupt transfers, the host's usbhid detached and given back,
# the confinement in /proc, two replugs with the broker's new fd, and prints
# a bulk figure (direct libusb vs through ferry-dm; one vCPU: with two, TCG's
# cross-vCPU wake-ups dominate every round trip).
# The broker (`ferry usb attach --follow`) hears of replugs through libusb's
# hotplug, which Debian's libusb gets from udevd: the guest runs Debian's
# udevd (tests/rigs/udevd), as a real host would.  The boot itself is
# tests/usb/gadget-boot.sh, shared with bench/usb-bulk-gadget.
#   gadget-usb.sh GADGET_E2E FERRY_DM FERRY RIG_LINUX_KERNEL RIG_MKINITRAMFS RIG_UDEVD
#                 GUEST_SCRIPT GADGET_SCRIPT
set -eu
e2e=$1; dm=$2; ferry=$3; rig_kernel=$4; rig_initramfs=$5; rig_udevd=$6; script=$7; gadget=$8
work=$(mktemp -d /tmp/ferry-gadget-usb.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$(dirname "$0")/gadget-boot.sh" "$work" 480 "$rig_kernel" "$rig_initramfs" "$rig_udevd" \
    "$gadget" "$script" "$e2e=/usr/bin/gadget-e2e" "$dm=/usr/bin/ferry-dm" \
    "$ferry=/usr/bin/ferry" || exit $?
tr -d '\r' < "$work/console.log" | grep -v '^\s*$' |
    sed -n '/FERRY\|ferry\|FAIL\|gadget\|----\|sandbox\|usb/p' | head -n 400
# The guest and its gadget rig are the test's own: their failure is a FAIL.
if grep -q "FERRY-GADGET-FAIL" "$work/console.log"; then
    echo "FAIL: $(grep -o 'FERRY-GADGET-FAIL.*' "$work/console.log" | head -n 1 | tr -d '\r')"
    exit 1
fi
if ! grep -q "FERRY-GADGET-PASS" "$work/console.log" ||
   ! grep -q "FERRY-GUEST-DONE rc=0" "$work/console.log"; then
    echo "FAIL: see the guest console above"; tail -n 60 "$work/console.log"; exit 1
fi
echo "ok: confined ferry-dm served a real usbfs gadget before and after replug"
