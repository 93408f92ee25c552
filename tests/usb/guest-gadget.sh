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
sh /usr/libexec/ferry/gadget.sh start || exit $?
mkdir -p /tmp/work
/usr/bin/gadget-e2e /usr/bin/ferry-dm /usr/bin/ferry /tmp/work /usr/libexec/ferry/gadget.sh \
    0525:a4a0 200
