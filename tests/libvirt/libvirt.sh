#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# libvirt suite: a simulated USB disk into a libvirt TCG domain with
# `ferry usb attach DOMAIN` (see libvirt-e2e.c for what is checked).
#   libvirt.sh DRIVER RIG_LINUX_KERNEL RIG_MKINITRAMFS GUEST_SCRIPT FERRY FERRY_DM HOOK SHIM
set -eu
driver=$1; rig_kernel=$2; rig_initramfs=$3; script=$4; shift 4
command -v virsh >/dev/null || { echo "SKIP: virsh is not installed (libvirt-clients; scripts/setup installs libvirt)"; exit 77; }
[ -x /usr/sbin/libvirtd ] || command -v libvirtd >/dev/null || { echo "SKIP: libvirtd is not installed (libvirt-daemon-system; scripts/setup installs it)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
command -v umockdev-wrapper >/dev/null || { echo "SKIP: umockdev is not installed"; exit 77; }
kdir=$(sh "$rig_kernel") || exit $?
# QEMU runs as libvirt-qemu: the folder and what it reads must be reachable
work=$(mktemp -d /tmp/ferry-libvirt.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
cp "$kdir/vmlinuz" "$work/vmlinuz"
sh "$rig_initramfs" "$work/initrd.gz" "$kdir" "$script" \
    usb-common usbcore xhci-hcd xhci-pci scsi_mod sd_mod usb-storage || exit $?
chmod 0644 "$work/vmlinuz" "$work/initrd.gz"
umockdev-wrapper "$driver" "$work" "$@"
