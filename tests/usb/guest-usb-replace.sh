#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the qemu-usb-replace test (busybox initramfs): the simulated
# keyboard is read while KEYS keys are pressed one by one (the host replaces
# ferry-dm around every other press): each arrives once, in order; the simulated disk is written once, then read back and compared ITERS times, each read
# announced on the console (the host replaces ferry-dm meanwhile).  At the
# end, the kernel log since both devices appeared must hold no USB disconnect,
# reset or new enumeration, and no I/O error; then the host detaches it.
ITERS=14
KEYS=8
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
rc=0
# keys: type 1, value 1 (press) or 0 (release); auto-repeats (2) left out
keys() { od -A n -t u2 -v -w24 /tmp/ev 2>/dev/null | awk '$9 == 1 && $11 < 2 { printf "%s:%s ", $10, $11 }'; }
got_key() { [ "$(keys | tr ' ' '\n' | grep -c ':0$')" -ge "$1" ]; }
# first a keyboard in use (its interrupt IN endpoint streams): keys pressed
# while ferry-dm is replaced each reach the guest once, in order
wait_for 120 kbd_event >/dev/null || { echo "guest: no Ferry keyboard"; exit 1; }
wait_for 120 have_disk || { echo "guest: no Ferry disk"; exit 1; }
disk=$(for d in /sys/block/sd*; do grep -q Ferry $d/device/vendor && basename $d; done | head -n 1)
sleep 1
dmesg > /tmp/dmesg-before
cat /dev/input/$(kbd_event) > /tmp/ev &
reader=$!
sleep 2
want=""
codes="30 48 46 32 18 33 34 35"    # KEY_A..KEY_H: HID usages 0x04..0x0b
j=1
while [ $j -le $KEYS ]; do
    echo "FERRY-KEY $j"
    c=$(echo $codes | cut -d' ' -f$(( (j - 1) % 8 + 1 )))
    want="$want$c:1 $c:0 "
    wait_for 60 got_key $j || { echo "guest: key $j did not arrive"; rc=1; break; }
    j=$((j + 1))
done
sleep 1
kill $reader 2>/dev/null
if [ "$(keys)" = "$want" ]; then
    echo "FERRY-KEYS-OK $KEYS keys, each pressed and released once, in order"
else
    echo "guest: key events differ: want '$want', got '$(keys)'"; rc=1
fi
yes FERRY-PATTERN-0123456789 | head -c 4194304 > /tmp/pattern
dd if=/tmp/pattern of=/dev/$disk bs=64k seek=16 conv=fsync 2>/dev/null || { echo "guest: write failed"; dmesg | tail -n 15; rc=1; }
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
