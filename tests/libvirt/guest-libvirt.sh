#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the libvirt test (busybox initramfs, Debian's kernel under a
# libvirt TCG domain).  Round after round: wait for the Ferry disk, write the
# round's pattern at 1 MiB and read it back, say so on the serial console,
# then wait until the disk goes.  The host (libvirt-e2e) decides what makes
# it come and go, and checks the pattern in its RAM disk.
have_disk() { grep -q 'Ferry' /sys/block/sd*/device/vendor 2>/dev/null; }
round=0
while :; do
    while ! have_disk; do sleep 0.2; done
    round=$((round + 1))
    disk=$(for d in /sys/block/sd*; do grep -q Ferry $d/device/vendor 2>/dev/null && basename $d; done | head -n 1)
    # the disk's block device appears a moment after its sysfs entry
    n=0; while [ ! -b /dev/$disk ] && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
    yes "FERRY-LIBVIRT-ROUND-$round" | head -c 65536 > /tmp/pattern
    if dd if=/tmp/pattern of=/dev/$disk bs=512 seek=2048 conv=fsync 2>/dev/null &&
       echo 3 > /proc/sys/vm/drop_caches &&
       dd if=/dev/$disk of=/tmp/back bs=512 skip=2048 count=128 2>/dev/null &&
       cmp -s /tmp/pattern /tmp/back; then
        echo "FERRY-DISK-OK $round"
    else
        echo "FERRY-DISK-BAD $round"
    fi
    while have_disk; do sleep 0.2; done
    echo "FERRY-GONE $round"
done
