#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the test guest (busybox) as /test.sh; driven by pci-guest.py on
# the host, which parses the FERRY-* markers on the console.  The guest kernel
# command line carries ferry_mode=iommu|noiommu.
# Device layout (see pci-guest.py): 00:01.0 VGA (boot VGA), 00:02.0 e1000e,
# 00:03.0 PCIe root port with 01:00.0 virtio-net behind it, 00:04.0/00:04.1 a
# two-function pci-testdev, 00:1f.x ICH9.
export FERRY_PCI_STATE_DIR=/run/ferry/pci
mode=$(sed -n 's/.*ferry_mode=\([a-z]*\).*/\1/p' /proc/cmdline)
E1000E=0000:00:02.0
SYS=/sys/bus/pci/devices

drv() { d=$(readlink "$SYS/$1/driver" 2>/dev/null); echo "${d##*/}"; }
fact() { echo "FERRY-FACT $*"; }
run() {  # run NAME CMD...: output between markers, rc at the end
    name=$1; shift
    echo "FERRY-BEGIN $name"
    "$@" 2>&1
    echo "FERRY-END $name rc=$?"
}

for m in /ferry-modules/*.ko; do
    insmod "$m" || echo "FERRY-INSMOD-FAILED $m"
done
echo "FERRY-MODE $mode"
echo "FERRY-MODULES $(cut -d' ' -f1 /proc/modules | tr '\n' ' ') drivers: $(ls /sys/bus/pci/drivers | tr '\n' ' ')"
run list ferry pci list --json
# Wait until the host has compared with QMP query-pci (it writes a line).
if [ -e /dev/ttyS1 ]; then
    stty -F /dev/ttyS1 -echo 2>/dev/null
    echo "FERRY-SYNC"
    head -n 1 /dev/ttyS1 >/dev/null
fi
run list-text ferry pci list --tree --all

for d in 00:02.0 01:00.0 00:04.0 00:01.0 00:03.0; do
    run "check $d" ferry pci check --json $d
done
run "check-text 00:02.0" ferry pci check 00:02.0
run "check bad-bdf" ferry pci check 00:2.0
run "check missing" ferry pci check 00:1e.0

if [ "$mode" = noiommu ]; then
    run "prepare e1000e" ferry pci prepare $E1000E
    fact "driver-after-refusal=$(drv $E1000E)"
    exit 0
fi

fact "net-before=$(ls $SYS/$E1000E/net 2>/dev/null)"
run "prepare e1000e" ferry pci prepare $E1000E
group=$(readlink $SYS/$E1000E/iommu_group); group=${group##*/}
fact "driver-prepared=$(drv $E1000E) group=$group override=$(cat $SYS/$E1000E/driver_override)"
if [ -c /dev/vfio/$group ] && exec 3<>/dev/vfio/$group; then
    fact "vfio-open=ok"; exec 3>&-
else
    fact "vfio-open=failed"
fi
run "prepare again" ferry pci prepare $E1000E
run "release e1000e" ferry pci release $E1000E
fact "driver-released=$(drv $E1000E) net-after=$(ls $SYS/$E1000E/net 2>/dev/null) override=$(cat $SYS/$E1000E/driver_override)"
run "release again" ferry pci release $E1000E

# Interrupted prepare: killed (SIGKILL) right before the probe step, i.e.
# after the unbind: the device has no driver.  A rerun must finish the job.
run "prepare killed" env FERRY_PCI_KILL_AT=probe ferry pci prepare $E1000E
fact "driver-killed=$(drv $E1000E) override=$(cat $SYS/$E1000E/driver_override)"
run "prepare rerun" ferry pci prepare $E1000E
fact "driver-rerun=$(drv $E1000E)"
# Killed in the middle of a release: the rerun gives it back.
run "release killed" env FERRY_PCI_KILL_AT=rebind ferry pci release $E1000E
fact "driver-release-killed=$(drv $E1000E)"
run "release rerun" ferry pci release $E1000E
fact "driver-final=$(drv $E1000E) net-final=$(ls $SYS/$E1000E/net 2>/dev/null)"

# Killed before every other step too: each rerun finishes the job.
for step in record override unbind; do
    env FERRY_PCI_KILL_AT=$step ferry pci prepare $E1000E >/dev/null 2>&1
    at=$(drv $E1000E)
    ferry pci prepare $E1000E >/dev/null 2>&1
    fact "kill-prepare-$step=$at,$(drv $E1000E)"
    ferry pci release $E1000E >/dev/null 2>&1
done
ferry pci prepare $E1000E >/dev/null 2>&1
for step in clear-override unbind; do
    env FERRY_PCI_KILL_AT=$step ferry pci release $E1000E >/dev/null 2>&1
    at=$(drv $E1000E)
    ferry pci release $E1000E >/dev/null 2>&1
    fact "kill-release-$step=$at,$(drv $E1000E)"
    ferry pci prepare $E1000E >/dev/null 2>&1
done
ferry pci release $E1000E >/dev/null 2>&1
fact "after-kills=$(drv $E1000E) state=$(ls /run/ferry/pci 2>/dev/null | tr '\n' ' ')"

# The kernel has no vfio-pci to offer: prepare gets e1000e back.
rmmod vfio_pci
run "prepare without vfio-pci" ferry pci prepare $E1000E
fact "no-vfio-driver=$(drv $E1000E) no-vfio-override=$(cat $SYS/$E1000E/driver_override)"
insmod /ferry-modules/*-vfio-pci.ko

# A group of several: both pci-testdev functions go to vfio-pci and back.
run "prepare group" ferry pci prepare --group 00:04.0
fact "group-prepared=$(drv 0000:00:04.0),$(drv 0000:00:04.1)"
run "release group" ferry pci release --group 00:04.0
fact "group-released=$(drv 0000:00:04.0),$(drv 0000:00:04.1)"

# Refusals.
run "prepare bridge" ferry pci prepare 00:03.0
run "prepare vga" ferry pci prepare 00:01.0
fact "vga-driver=$(drv 0000:00:01.0)"
# The device vanishes (really removed from the kernel) in the middle.
run "prepare vanish" env FERRY_PCI_REMOVE_AT=probe ferry pci prepare 00:04.1
echo 1 > /sys/bus/pci/rescan
fact "vanish-back=$(ls -d $SYS/0000:00:04.1 2>/dev/null) driver=$(drv 0000:00:04.1)"

# Attach end to end: a second QEMU inside this guest (TCG, i440fx so that its
# bus takes hotplug while paused) gets e1000e as vfio-pci over QMP; ferry
# reports where that QEMU's query-pci shows it.  The inner guest never runs
# an OS, so it cannot answer device_del: it is shut down, then released.
if [ -x /usr/bin/qemu-system-x86_64 ]; then
    qemu-system-x86_64 -accel tcg -machine pc -S -nodefaults -display none -m 32 \
        -qmp unix:/tmp/inner.sock,server=on,wait=off -daemonize -pidfile /tmp/inner.pid \
        >/tmp/inner.log 2>&1
    fact "inner-qemu=$?"
    run "attach" ferry pci attach /tmp/inner.sock 00:02.0
    pid=$(cat /tmp/inner.pid)
    fact "attach-driver=$(drv $E1000E) inner-vfio-fds=$(ls -l /proc/$pid/fd | grep -c /dev/vfio/)"
    run "release busy" ferry pci release $E1000E
    kill $pid
    while kill -0 $pid 2>/dev/null; do sleep 0.1; done
    run "release after attach" ferry pci release $E1000E
    fact "driver-after-attach=$(drv $E1000E) net-after-attach=$(ls $SYS/$E1000E/net 2>/dev/null)"
fi
