#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest side of the usb-gadget test (runs as /test.sh in the busybox
# initramfs of gadget-usb.sh): the ferry user, a configfs gadget on
# dummy_hcd, then gadget-e2e with the confined ferry-dm.
#
# The initramfs root cannot be pivot_root'ed away (EINVAL), so ferry-dm
# could not enter its empty root there: everything runs chrooted in a copy
# of the initramfs on a tmpfs, as on a real root filesystem.
if [ "${1:-}" != inner ]; then
    mkdir -p /newroot
    mount -t tmpfs -o size=400m tmpfs /newroot
    for d in bin sbin usr lib lib64 etc modules; do
        [ -e /$d ] && cp -a /$d /newroot/
    done
    cp /test.sh /newroot/test.sh
    for d in proc sys dev tmp; do
        mkdir -p /newroot/$d
        mount --bind /$d /newroot/$d
    done
    chroot /newroot /bin/sh /test.sh inner
    exit $?
fi
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo 'ferry:x:990:990:Ferry device model:/nonexistent:/bin/false' >> /etc/passwd
printf 'root:x:0:\nferry:x:990:\n' > /etc/group
if [ ! -d /sys/class/udc ] || [ -z "$(ls /sys/class/udc)" ]; then
    echo "FERRY-GADGET-FAIL no UDC (dummy_hcd did not load)"; exit 1
fi
# the broker's libusb hears of hotplug from udevd (no rules needed)
mkdir -p /run/udev
/lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/tmp/udevd.err ||
    { echo "FERRY-GADGET-FAIL udevd does not start: $(cat /tmp/udevd.err)"; exit 1; }
sh /usr/libexec/ferry/gadget.sh setup || { echo "FERRY-GADGET-FAIL configfs gadget setup failed"; exit 1; }
sh /usr/libexec/ferry/gadget.sh gadget-up || exit 1
mkdir -p /tmp/work
/usr/bin/gadget-e2e /usr/bin/ferry-dm /usr/bin/ferry /tmp/work /usr/libexec/ferry/gadget.sh \
    0525:a4a0 200
