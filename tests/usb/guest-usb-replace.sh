#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the qemu-usb-replace test (busybox initramfs): the simulated
# keyboard is opened (the host's replace must be refused) until it is
# detached; the simulated disk is written once, then read back and compared ITERS times, each read
# announced on the console (the host replaces ferry-dm meanwhile).  At the
# end, the kernel log since the disk appeared must hold no USB disconnect,
# reset or new enumeration, and no I/O error; then the host detaches it.
ITERS=14
wait_for() {   # wait_for SECONDS COMMAND...
    n=$(( $1 * 5 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
    return 1
}
have_disk() { grep -q 'Ferry' /sys/block/sd*/device/vendor 2>/dev/null; }
no_disk() { ! have_disk; }
kbd_event() {
    for e in /sys/class/input/event*; do
        grep -q Ferry "$e/device/name" 2>/dev/null && { basename "$e"; return 0; }
    done
    return 1
}
no_kbd() { ! kbd_event >/dev/null; }
rc=0
# first a keyboard in use (its interrupt IN endpoint streams): a replace is
# refused, naming it, and the old ferry-dm serves on; then it is detached
wait_for 120 kbd_event >/dev/null || { echo "guest: no Ferry keyboard"; exit 1; }
cat /dev/input/$(kbd_event) > /dev/null &
reader=$!
sleep 2
echo "FERRY-KBD-OPEN"
wait_for 60 no_kbd || { echo "guest: the keyboard was not detached"; rc=1; }
kill $reader 2>/dev/null
wait_for 120 have_disk || { echo "guest: no Ferry disk"; exit 1; }
disk=$(for d in /sys/block/sd*; do grep -q Ferry $d/device/vendor && basename $d; done | head -n 1)
sleep 1
dmesg > /tmp/dmesg-before
yes FERRY-PATTERN-0123456789 | head -c 4194304 > /tmp/pattern
dd if=/tmp/pattern of=/dev/$disk bs=64k seek=16 conv=fsync 2>/dev/null || { echo "guest: write failed"; rc=1; }
i=1
while [ $i -le $ITERS ]; do
    echo "FERRY-READING $i"
    echo 3 > /proc/sys/vm/drop_caches
    if ! dd if=/dev/$disk of=/tmp/back bs=64k skip=16 count=64 2>/dev/null; then
        echo "guest: read $i failed"; rc=1
    elif ! cmp /tmp/pattern /tmp/back; then
        echo "guest: read $i differs"; rc=1
    fi
    i=$((i + 1))
done
[ $rc = 0 ] && echo "FERRY-DATA-OK"
dmesg > /tmp/dmesg-after
# the lines added since the disk was there
tail -n +$(( $(wc -l < /tmp/dmesg-before) + 1 )) /tmp/dmesg-after > /tmp/dmesg-new
if grep -iE 'usb .*(disconnect|reset)|new .*USB device|I/O error|usb-storage|device offline|timing out' /tmp/dmesg-new; then
    echo "guest: the kernel saw the USB device change (lines above)"; rc=1
else
    echo "FERRY-NO-DISCONNECT ($(wc -l < /tmp/dmesg-new) new kernel log lines)"
fi
# the last successor's QMP connection works: `ferry usb detach` takes the disk out
echo "FERRY-READY-DETACH"
if wait_for 60 no_disk; then echo "FERRY-GONE"; else echo "guest: disk still there"; rc=1; fi
exit $rc
