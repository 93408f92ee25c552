#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the qemu-usb test: runs in the busybox initramfs.  Talks to
# the host driver through markers on the serial console.
wait_for() {   # wait_for SECONDS COMMAND...
    n=$(( $1 * 5 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
    return 1
}
kbd_event() {
    for e in /sys/class/input/event*; do
        grep -q Ferry "$e/device/name" 2>/dev/null && { basename "$e"; return 0; }
    done
    return 1
}
have_disk() { grep -q 'Ferry' /sys/block/sd*/device/vendor 2>/dev/null; }
no_disk() { ! have_disk; }

rc=0
wait_for 120 kbd_event >/dev/null || { echo "guest: no Ferry keyboard among input devices"; ls /sys/class/input; rc=1; }
ev=$(kbd_event)
if [ -n "$ev" ]; then
    # six events for a tap: msc, key down, syn, msc, key up, syn
    ( timeout 60 dd if=/dev/input/$ev of=/tmp/ev bs=24 count=6 2>/dev/null ) &
    reader=$!
    sleep 1
    echo "FERRY-READY-KBD"
    wait $reader
    if od -A n -t u2 -v -w24 /tmp/ev | awk '$9 == 1 && $10 == 30 && $11 == 1 { ok = 1 } END { exit !ok }'; then
        echo "FERRY-KEY-OK"
    else
        echo "guest: no KEY_A press from the keyboard"; od -A n -t u2 -v -w24 /tmp/ev; rc=1
    fi
fi

wait_for 120 have_disk || { echo "guest: no Ferry disk"; rc=1; }
disk=$(for d in /sys/block/sd*; do grep -q Ferry $d/device/vendor && basename $d; done | head -n 1)
if [ -n "$disk" ]; then
    yes FERRY-PATTERN-0123456789 | head -c 65536 > /tmp/pattern
    dd if=/tmp/pattern of=/dev/$disk bs=512 seek=2048 conv=fsync 2>/dev/null
    echo 3 > /proc/sys/vm/drop_caches
    dd if=/dev/$disk of=/tmp/back bs=512 skip=2048 count=128 2>/dev/null
    if cmp /tmp/pattern /tmp/back; then echo "FERRY-DISK-OK"; else echo "guest: read back differs"; rc=1; fi
    echo "FERRY-READY-UNPLUG"
    if wait_for 60 no_disk; then echo "FERRY-GONE"; else echo "guest: disk still there"; rc=1; fi
    if wait_for 60 have_disk; then echo "FERRY-BACK"; else echo "guest: disk did not come back"; rc=1; fi
fi
exit $rc
