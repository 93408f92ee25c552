#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the usb-share-tls test: the simulated disk, shared by
# `ferry usb share` over TLS, arrives through QEMU's usb-redir; write a
# pattern, read it back.  Markers on the serial console.
wait_for() {   # wait_for SECONDS COMMAND...
    n=$(( $1 * 5 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
    return 1
}
have_disk() { grep -q 'Ferry' /sys/block/sd*/device/vendor 2>/dev/null; }

wait_for 180 have_disk || { echo "guest: no Ferry disk"; exit 1; }
disk=$(for d in /sys/block/sd*; do grep -q Ferry $d/device/vendor && basename $d; done | head -n 1)
yes FERRY-PATTERN-0123456789 | head -c 65536 > /tmp/pattern
dd if=/tmp/pattern of=/dev/$disk bs=512 seek=2048 conv=fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/$disk of=/tmp/back bs=512 skip=2048 count=128 2>/dev/null
if cmp /tmp/pattern /tmp/back; then echo "FERRY-DISK-OK"; else echo "guest: read back differs"; exit 1; fi
