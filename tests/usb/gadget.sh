#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A configfs USB gadget on dummy_hcd, inside the guest of gadget-usb.sh:
# Loopback (interface 0, 64 KiB buffers) and SourceSink (interface 1, pattern i % 63) of
# usb_f_ss_lb, and a vendor-page HID (interface 2, usb_f_hid: interrupt IN and
# OUT, 8-byte reports, /dev/hidg0 on this side; the guest's usbhid binds to
# it, so redirection must detach a kernel driver), as 0525:a4a0 (the ids of
# Linux's Gadget Zero) with a serial, so that Ferry recognises it after a
# replug.
#   gadget.sh start|setup|gadget-up|gadget-down|hcd-up|hcd-down
# start: what a guest of tests/usb/gadget-boot.sh does first: Debian's udevd
# (libusb's hotplug hears of devices from it), setup, gadget-up; exits 1
# with a FERRY-GADGET-FAIL line when the rig's guest has no UDC or udevd fails.
# gadget-*: the gadget is bound to / unbound from the UDC (a disconnect, as
# rmmod/modprobe of a legacy gadget driver); hcd-*: dummy_hcd itself is
# unloaded and loaded again (the whole bus goes), the gadget unbound first.
set -eu
g=/sys/kernel/config/usb_gadget/ferry
present() { grep -qs a4a0 /sys/bus/usb/devices/*/idProduct; }
where() {
    for d in /sys/bus/usb/devices/*; do
        grep -qs a4a0 "$d/idProduct" && echo "bus $(cat "$d/busnum") address $(cat "$d/devnum")"
    done
}
wait_for() {   # wait_for SECONDS COMMAND...
    n=$(( $1 * 5 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
    return 1
}
case "$1" in
start)
    if [ ! -d /sys/class/udc ] || [ -z "$(ls /sys/class/udc)" ]; then
        echo "FERRY-GADGET-FAIL no UDC (dummy_hcd did not load)"; exit 1
    fi
    mkdir -p /run/udev
    /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/tmp/udevd.err ||
        { echo "FERRY-GADGET-FAIL udevd does not start: $(cat /tmp/udevd.err)"; exit 1; }
    sh "$0" setup || { echo "FERRY-GADGET-FAIL configfs gadget setup failed"; exit 1; }
    sh "$0" gadget-up
    ;;
setup)
    grep -qs ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config
    mkdir "$g"
    echo 0x0525 > "$g/idVendor"
    echo 0xa4a0 > "$g/idProduct"
    mkdir "$g/strings/0x409"
    echo Ferry > "$g/strings/0x409/manufacturer"
    echo "Ferry gadget zero" > "$g/strings/0x409/product"
    echo FERRY-GADGET-0001 > "$g/strings/0x409/serialnumber"
    mkdir -p "$g/configs/c.1/strings/0x409"
    echo "loopback and source/sink" > "$g/configs/c.1/strings/0x409/configuration"
    mkdir "$g/functions/Loopback.0" "$g/functions/SourceSink.0"
    echo 1 > "$g/functions/SourceSink.0/pattern"
    echo 65536 > "$g/functions/Loopback.0/bulk_buflen"
    mkdir "$g/functions/hid.usb0"
    echo 0 > "$g/functions/hid.usb0/subclass"
    echo 0 > "$g/functions/hid.usb0/protocol"
    echo 8 > "$g/functions/hid.usb0/report_length"
    # Usage Page 0xff00, Usage 1, Collection (Application), 0..255, 8 x 8 bits,
    # Input (Data,Var,Abs), Output (Data,Var,Abs), End Collection
    printf '\006\000\377\011\001\241\001\025\000\046\377\000\165\010\225\010\011\001\201\002\011\001\221\002\300' \
        > "$g/functions/hid.usb0/report_desc"
    ln -s "$g/functions/Loopback.0" "$g/configs/c.1/"
    ln -s "$g/functions/SourceSink.0" "$g/configs/c.1/"
    ln -s "$g/functions/hid.usb0" "$g/configs/c.1/"
    ;;
gadget-up)
    ls /sys/class/udc | head -n 1 > "$g/UDC"
    wait_for 30 present || { echo "gadget.sh: the gadget did not enumerate"; exit 1; }
    echo "gadget.sh: gadget at $(where)"
    ;;
gadget-down)
    echo "" > "$g/UDC"
    wait_for 30 sh -c '! grep -qs a4a0 /sys/bus/usb/devices/*/idProduct' ||
        { echo "gadget.sh: the gadget did not leave the bus"; exit 1; }
    ;;
hcd-down)
    sh "$0" gadget-down
    rmmod dummy_hcd
    ;;
hcd-up)
    insmod /modules/dummy_hcd.ko
    wait_for 30 sh -c '[ -n "$(ls /sys/class/udc)" ]' || { echo "gadget.sh: no UDC"; exit 1; }
    sh "$0" gadget-up
    ;;
esac
