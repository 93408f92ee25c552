#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot the real-usbfs rig: a Linux guest (QEMU TCG, Debian's kernel, one vCPU
# unless FERRY_GADGET_SMP says otherwise: with two, TCG's cross-vCPU wake-ups
# cost milliseconds) with dummy_hcd, the configfs gadget functions of
# tests/usb/gadget.sh (installed as /usr/libexec/ferry/gadget.sh; its `start`
# brings the gadget up) and Debian's udevd (tests/rigs/udevd, for libusb's
# hotplug).  FERRY_GADGET_ICOUNT=N runs the guest under QEMU's -icount
# shift=N,sleep=off: its clock then counts instructions (2^N ns each) and skips
# idle time, so its figures do not depend on the host's load (for benchmarks;
# much slower in real time at small N).  GUEST_SCRIPT runs as /test.sh; each PROGRAM is copied to its
# GUESTPATH with every library ldd names, at the same paths.  Used by
# gadget-usb.sh (the usb suite) and bench/usb-bulk-gadget.
#   gadget-boot.sh WORKDIR TIMEOUT_S RIG_LINUX_KERNEL RIG_MKINITRAMFS RIG_UDEVD
#                  GADGET_SCRIPT GUEST_SCRIPT [PROGRAM=GUESTPATH...]
# The guest's serial console ends up in WORKDIR/console.log.  Exit 77 (SKIP)
# with a line saying why when the machine lacks something; a rig that fails
# (the guest, its kernel, its gadget) is the test's own failure: exit 1.
set -eu
work=$1; tmo=$2; rig_kernel=$3; rig_initramfs=$4; rig_udevd=$5; gadget=$6; script=$7
shift 7
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

# the programs, every library ldd names (the loader too), at the same paths
files="$gadget=/usr/libexec/ferry/gadget.sh $udevd=/lib/systemd/systemd-udevd"
progs="$udevd"
for p in "$@"; do
    files="$files $(readlink -f "${p%%=*}")=${p#*=}"
    progs="$progs ${p%%=*}"
done
libs=$(ldd $progs |
       awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
for lib in $libs; do
    files="$files $(readlink -f "$lib")=$lib"
done
sh "$rig_initramfs" "$work/initrd.gz" "$kdir" "$script" \
    usb-common usbcore udc-core dummy_hcd libcomposite usb_f_ss_lb usb_f_hid \
    hid usbhid hid-generic -- $files || exit $?

icount=
if [ -n "${FERRY_GADGET_ICOUNT:-}" ]; then
    case $FERRY_GADGET_ICOUNT in
    [0-9] | 10) icount="-icount shift=$FERRY_GADGET_ICOUNT,sleep=off" ;;
    *) echo "FAIL: FERRY_GADGET_ICOUNT=$FERRY_GADGET_ICOUNT: expected a shift 0..10"; exit 1 ;;
    esac
fi
# no_timer_check: under a loaded host the kernel's IO-APIC timer check can
# miss ticks and panic ("IO-APIC + timer doesn't work")
timeout "$tmo" "$qemu" -accel tcg -smp "${FERRY_GADGET_SMP:-1}" $icount -m 1024 -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 no_timer_check" > "$work/console.log" 2>&1 || true
