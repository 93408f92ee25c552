#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# qemu suite: simulated USB devices into a real Linux guest (QEMU TCG) through
# Ferry's usbredir path.  One boot checks: key press arrives as an input event;
# dd to the usb-storage disk reads back and lands in the RAM disk; unplug
# removes and replug returns the disk without any command.
#   qemu-usb.sh DRIVER RIG_LINUX_KERNEL RIG_MKINITRAMFS GUEST_SCRIPT
set -eu
driver=$1; rig_kernel=$2; rig_initramfs=$3; script=$4
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
command -v umockdev-wrapper >/dev/null || { echo "SKIP: umockdev is not installed"; exit 77; }
kdir=$(sh "$rig_kernel") || exit $?
work=$(mktemp -d /tmp/ferry-qemu-usb.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$rig_initramfs" "$work/initrd.gz" "$kdir" "$script" \
    usb-common usbcore xhci-hcd xhci-pci hid usbhid hid-generic evdev \
    scsi_mod sd_mod usb-storage || exit $?
exec umockdev-wrapper "$driver" "$kdir/vmlinuz" "$work/initrd.gz" "$work"
