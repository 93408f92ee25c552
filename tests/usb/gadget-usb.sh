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
# udevd (tests/rigs/udevd), as a real host would.
#   gadget-usb.sh GADGET_E2E FERRY_DM FERRY RIG_LINUX_KERNEL RIG_MKINITRAMFS RIG_UDEVD
#                 GUEST_SCRIPT GADGET_SCRIPT
set -eu
e2e=$1; dm=$2; ferry=$3; rig_kernel=$4; rig_initramfs=$5; rig_udevd=$6; script=$7; gadget=$8
qemu=$(command -v qemu-system-x86_64) ||
    { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
command -v ldd >/dev/null || { echo "SKIP: ldd is not installed"; exit 77; }
kdir=$(sh "$rig_kernel") || exit $?
udevd=$(sh "$rig_udevd") || exit $?
# Debian's kernel has them all: a kernel without one is not the rig's kernel.
for m in dummy_hcd usb_f_ss_lb usb_f_hid usbhid; do
    find "$kdir/modules" -name "$m.ko*" | grep -q . ||
        { echo "FAIL: the kernel in $kdir has no $m module"; exit 1; }
done
work=$(mktemp -d /tmp/ferry-gadget-usb.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the programs, every library ldd names (the loader too), at the same paths
files="$(readlink -f "$e2e")=/usr/bin/gadget-e2e $(readlink -f "$dm")=/usr/bin/ferry-dm"
files="$files $(readlink -f "$ferry")=/usr/bin/ferry $gadget=/usr/libexec/ferry/gadget.sh"
files="$files $udevd=/lib/systemd/systemd-udevd"
libs=$(ldd "$e2e" "$dm" "$ferry" "$udevd" |
       awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
for lib in $libs; do
    files="$files $(readlink -f "$lib")=$lib"
done
sh "$rig_initramfs" "$work/initrd.gz" "$kdir" "$script" \
    usb-common usbcore udc-core dummy_hcd libcomposite usb_f_ss_lb usb_f_hid \
    hid usbhid hid-generic -- $files || exit $?

timeout 480 "$qemu" -accel tcg -smp ${FERRY_GADGET_SMP:-1} -m 1024 -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1" > "$work/console.log" 2>&1 || true
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
