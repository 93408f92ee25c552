#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the test guest (busybox) as /test.sh; driven by pci-guest.py on
# the host, which parses the FERRY-* markers on the console.  The guest kernel
# command line carries ferry_mode=iommu|noiommu|attach: iommu runs prepare and
# release, attach (IOMMU on too) the parts with a QEMU inside this guest.
# Device layout (see pci-guest.py): 00:01.0 VGA (boot VGA), 00:02.0 e1000e,
# 00:03.0 PCIe root port with 01:00.0 virtio-net behind it, 00:04.0/00:04.1 a
# two-function pci-testdev, 00:1f.x ICH9.
export FERRY_PCI_STATE_DIR=/run/ferry/pci
mode=$(sed -n 's/.*ferry_mode=\([a-z]*\).*/\1/p' /proc/cmdline)
E1000E=0000:00:02.0
SYS=/sys/bus/pci/devices

drv() { d=$(readlink "$SYS/$1/driver" 2>/dev/null); echo "${d##*/}"; }
fact() { echo "FERRY-FACT $*"; }
# dm_up SOCK PID: "yes" once the ferry-dm there answers (it serves its
# control socket after confining itself), "no" if PID ends or 60 s pass
dm_up() {
    for i in $(seq 1 120); do
        if [ -S "$1" ] && ferry dm -s "$1" status >/dev/null 2>&1; then
            echo yes; return
        fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.5
    done
    echo no
}
# dm_replace SOCK TAG: replace the ferry-dm on SOCK twice (x-replace) while
# QEMU holds its vfio-pci device; facts TAG-replace-N=PID|failed, the last
# successor's pid in $dmpid, and the output of each as a block.  A successor
# slower than ferry-dm's step timeout (10 s: an ASan build under TCG on a
# loaded host) is refused and the old one serves on: that attempt is
# repeated, at most twice, and counted (TAG-replace-N-timeouts).
dm_replace() {
    for n in 1 2; do
        t=0
        while :; do
            out=$(ferry dm -s "$1" replace 2>&1)
            rrc=$?
            [ $rrc -ne 0 ] && [ $t -lt 2 ] && echo "$out" | grep -q "did not answer in time\|did not start in time" || break
            t=$((t + 1))
        done
        echo "FERRY-BEGIN $2 replace $n"
        echo "$out"
        echo "FERRY-END $2 replace $n rc=$rrc"
        pid=$(echo "$out" | sed -n 's/.*"pid" *: *\([0-9]*\).*/\1/p')
        [ $rrc -eq 0 ] && [ -n "$pid" ] && dmpid=$pid
        fact "$2-replace-$n=${pid:-failed} $2-replace-$n-timeouts=$t"
    done
}
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
if [ "$mode" = iommu ]; then
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

    # ferry-fault is ferry built with fault injection (a test program).
    # Interrupted prepare: killed (SIGKILL) right before the probe step, i.e.
    # after the unbind: the device has no driver.  A rerun must finish the job.
    run "prepare killed" env FERRY_PCI_KILL_AT=probe ferry-fault pci prepare $E1000E
    fact "driver-killed=$(drv $E1000E) override=$(cat $SYS/$E1000E/driver_override)"
    run "prepare rerun" ferry pci prepare $E1000E
    fact "driver-rerun=$(drv $E1000E)"
    # Killed in the middle of a release: the rerun gives it back.
    run "release killed" env FERRY_PCI_KILL_AT=rebind ferry-fault pci release $E1000E
    fact "driver-release-killed=$(drv $E1000E)"
    run "release rerun" ferry pci release $E1000E
    fact "driver-final=$(drv $E1000E) net-final=$(ls $SYS/$E1000E/net 2>/dev/null)"

    # Killed before every other step too: each rerun finishes the job.
    for step in record override unbind; do
        env FERRY_PCI_KILL_AT=$step ferry-fault pci prepare $E1000E >/dev/null 2>&1
        at=$(drv $E1000E)
        ferry pci prepare $E1000E >/dev/null 2>&1
        fact "kill-prepare-$step=$at,$(drv $E1000E)"
        ferry pci release $E1000E >/dev/null 2>&1
    done
    ferry pci prepare $E1000E >/dev/null 2>&1
    for step in clear-override unbind; do
        env FERRY_PCI_KILL_AT=$step ferry-fault pci release $E1000E >/dev/null 2>&1
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
    run "prepare vanish" env FERRY_PCI_REMOVE_AT=probe ferry-fault pci prepare 00:04.1
    echo 1 > /sys/bus/pci/rescan
    fact "vanish-back=$(ls -d $SYS/0000:00:04.1 2>/dev/null) driver=$(drv 0000:00:04.1)"
    exit 0
fi

# The device-access policy (docs/policy.md): this guest's own disk (00:05.0,
# mounted) and its NIC with the default route (01:00.0 behind the root port
# 00:03.0) are refused by discovery, although a rule allows their classes;
# e1000e goes to guest a (a QEMU here, its QMP socket in /run/ferry/a), is
# refused to guest b naming a, and goes to b once a has detached it.  The
# inner QEMUs run the eject firmware, so that device_del completes.
if [ "$mode" = attach ] && [ -x /usr/bin/qemu-system-x86_64 ]; then
    mkdir -p /mnt/disk /run/ferry/a /run/ferry/b
    mount -t ext4 /dev/vda /mnt/disk
    fact "disk-mounted=$?"
    nic=$(ls /sys/bus/pci/devices/0000:01:00.0/virtio*/net 2>/dev/null | head -n 1)
    ip link set "$nic" up && ip addr add 10.0.3.15/24 dev "$nic" &&
        ip route add default via 10.0.3.2
    fact "nic=$nic route=$(ip route | grep -c '^default')"
    printf '[policy]\ndefault = deny\n\n[rule lab]\nguests = a;b\npci-class = 0x01;0x02\naction = allow\n' \
        > /tmp/policy.conf
    export FERRY_POLICY=/tmp/policy.conf
    run "policy show" ferry policy show
    run "policy disk" ferry pci prepare --guest a 00:05.0
    run "policy nic" ferry pci prepare --guest a 01:00.0
    for g in a b; do
        qemu-system-x86_64 -accel tcg -machine pc -S -nodefaults -display none -m 32 \
            -bios /ferry-eject.bin -qmp unix:/run/ferry/$g/qmp.sock,server=on,wait=off \
            -daemonize -pidfile /run/ferry/$g/qemu.pid >/tmp/inner-$g.log 2>&1
    done
    run "policy attach a" ferry pci attach /run/ferry/a/qmp.sock 00:02.0
    run "policy attach b" ferry pci attach /run/ferry/b/qmp.sock 00:02.0
    run "policy check b" ferry policy check b 00:02.0
    ferry dm -s /run/ferry/a/qmp.sock cont >/dev/null 2>&1
    run "policy detach a" ferry pci detach /run/ferry/a/qmp.sock 00:02.0
    run "policy attach b again" ferry pci attach /run/ferry/b/qmp.sock 00:02.0
    ferry dm -s /run/ferry/b/qmp.sock cont >/dev/null 2>&1
    run "policy detach b" ferry pci detach /run/ferry/b/qmp.sock 00:02.0
    fact "policy-driver-final=$(drv $E1000E)"
    for g in a b; do
        pid=$(cat /run/ferry/$g/qemu.pid)
        kill $pid
        while kill -0 $pid 2>/dev/null; do sleep 0.1; done
    done
    unset FERRY_POLICY
    # the rest of this script runs as before: no disk, no route, no owners
    ip route del default; ip addr flush dev "$nic"; ip link set "$nic" down
    umount /mnt/disk
    rm -rf /run/ferry/owners /run/ferry/a /run/ferry/b
fi

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

# ferry-dm as the companion of a QEMU inside this guest, confined (seccomp
# kill, its own user and namespaces, the defaults), with a [pci] config
# naming e1000e: it prepares e1000e as root, then plugs it over the QMP
# socket it holds; the test looks through that QEMU's second QMP socket.
# /ferry-eject.bin (pci-guest.py) is that QEMU's firmware: it ejects what
# device_del asks for, as a guest OS would, once the QEMU runs (cont).
if [ -x /usr/bin/qemu-system-x86_64 ] && [ -x /usr/bin/ferry-dm ]; then
    grep -q '^ferry:' /etc/passwd 2>/dev/null || echo 'ferry:x:970:970:ferry:/:/bin/false' >> /etc/passwd
    grep -q '^ferry:' /etc/group 2>/dev/null || echo 'ferry:x:970:' >> /etc/group
    # the successors (replace) run as ferry from the start: the initramfs is
    # root's (mkinitramfs keeps its temporary 0700 modes)
    chmod a+rx / ; chmod -R a+rX /bin /sbin /usr /lib /lib64 /etc 2>/dev/null; chmod 1777 /tmp
    printf '[pci]\n# the QEMU gets it at 00:05.0 as hostnic\ndevices=0000:00:02.0,addr=5,id=hostnic\n' \
        > /tmp/vm.conf
    qemu-system-x86_64 -accel tcg -machine pc -S -nodefaults -display none -m 32 \
        -bios /ferry-eject.bin \
        -qmp unix:/tmp/dmq.sock,server=on,wait=off -qmp unix:/tmp/mon.sock,server=on,wait=off \
        -daemonize -pidfile /tmp/dmq.pid >/tmp/dmq.log 2>&1
    qpid=$(cat /tmp/dmq.pid)
    ferry-dm --qmp /tmp/dmq.sock --control /tmp/dm.sock --config /tmp/vm.conf -v \
        >/tmp/dm.log 2>&1 &
    dmpid=$!
    # Up once it answers on its control socket (it serves it after confining itself).
    up=$(dm_up /tmp/dm.sock $dmpid)
    fact "dm-started=$up"
    fact "dm-seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/$dmpid/status) dm-uid=$(awk '/^Uid:/ {print $2}' /proc/$dmpid/status)"
    fact "dm-driver=$(drv $E1000E)"
    run "dm inner query-pci" ferry dm -s /tmp/mon.sock query-pci
    run "dm query" ferry dm -s /tmp/dm.sock query-pci-assigned
    # Replaced twice with the config's device assigned: QEMU's vfio-pci device
    # is not touched, the successor lists it (config: true) and holds the claim.
    dm0=$dmpid
    dm_replace /tmp/dm.sock cfg
    fact "cfg-replaced-old-gone=$(kill -0 $dm0 2>/dev/null && echo no || echo yes) cfg-driver=$(drv $E1000E)"
    run "cfg query replaced" ferry dm -s /tmp/dm.sock query-pci-assigned
    run "cfg inner query-pci replaced" ferry dm -s /tmp/mon.sock query-pci
    run "cfg owner replaced" ferry policy check other 00:02.0
    # The inner guest is paused: nobody ejects, the wait ends with an error.
    # ferry-dm waits without blocking: while it does (its log says device_del
    # went out), a second control client's query-status is answered, and the
    # detach is still waiting when that answer is in.
    ferry pci detach /tmp/dm.sock 00:02.0 >/tmp/detach.out 2>&1 &
    detpid=$!
    waiting=no
    for i in $(seq 1 300); do
        grep -q 'device_del hostnic sent, waiting' /tmp/dm.log && { waiting=yes; break; }
        kill -0 $detpid 2>/dev/null || break
        sleep 0.1
    done
    ferry dm -s /tmp/dm.sock query-status >/tmp/status.out 2>&1
    strc=$?
    if kill -0 $detpid 2>/dev/null; then order=status-first; else order=detach-first; fi
    fact "dm-paused-waiting=$waiting dm-paused-status-rc=$strc dm-paused-order=$order"
    wait $detpid
    detrc=$?
    echo "FERRY-BEGIN dm detach paused"
    cat /tmp/detach.out
    echo "FERRY-END dm detach paused rc=$detrc"
    run "dm paused status" cat /tmp/status.out
    fact "dm-driver-paused=$(drv $E1000E)"
    # Running, its firmware ejects the device that device_del asked for.
    ferry dm -s /tmp/mon.sock cont >/dev/null 2>&1
    run "dm detach after eject" ferry pci detach /tmp/dm.sock 00:02.0
    fact "dm-driver-detached=$(drv $E1000E)"
    # At run time, through ferry-dm's control socket: ferry prepares, ferry-dm plugs.
    run "dm attach" ferry pci attach --addr 6 /tmp/dm.sock 00:02.0
    fact "dm-driver-attached=$(drv $E1000E)"
    run "dm query 2" ferry dm -s /tmp/dm.sock query-pci-assigned
    # Replaced twice with a device attached at run time: the broker's claim
    # (its lock fd, passed with pci-attach) goes along; the last successor
    # lists the device (config: false) and detaches it.
    dm_replace /tmp/dm.sock hot
    run "hot query replaced" ferry dm -s /tmp/dm.sock query-pci-assigned
    run "hot inner query-pci replaced" ferry dm -s /tmp/mon.sock query-pci
    run "hot owner replaced" ferry policy check other 00:02.0
    run "dm detach" ferry pci detach /tmp/dm.sock 00:02.0
    fact "dm-driver-detached2=$(drv $E1000E)"
    # Stop with a device plugged: QEMU goes, ferry-dm follows, and the
    # device stays on vfio-pci until release --config (ExecStopPost=).
    ferry pci attach /tmp/dm.sock 00:02.0 >/dev/null 2>&1
    kill $qpid
    while kill -0 $qpid 2>/dev/null; do sleep 0.1; done
    exited=no
    for i in $(seq 1 100); do
        kill -0 $dmpid 2>/dev/null || { exited=yes; break; }
        sleep 0.1
    done
    fact "dm-exited=$exited"
    run "dm log" cat /tmp/dm.log
    fact "dm-driver-stopped=$(drv $E1000E)"
    run "release config" ferry pci release --config /tmp/vm.conf
    fact "dm-driver-final=$(drv $E1000E) dm-net-final=$(ls $SYS/$E1000E/net 2>/dev/null)"
    run "release config again" ferry pci release --config /tmp/vm.conf
    # Config mistakes and a device that cannot be passed through.
    printf '[pci]\ndevice=0000:00:02.0\n' > /tmp/bad1.conf
    run "dm bad key" ferry-dm --qmp /tmp/none.sock --config /tmp/bad1.conf
    printf '[pci]\ndevices=00:2.0\n' > /tmp/bad2.conf
    run "dm bad bdf" ferry-dm --qmp /tmp/none.sock --config /tmp/bad2.conf
    printf '[pci]\ndevices=00:01.0\n' > /tmp/bad3.conf
    run "dm not viable" ferry-dm --qmp /tmp/none.sock --config /tmp/bad3.conf
    fact "dm-vga-driver=$(drv 0000:00:01.0)"

    # As contrib/ferry-dm@.service runs it: ferry-dm as user ferry, root
    # prepares before (ExecStartPre=) and releases after (ExecStopPost=).
    asferry() { su -s /bin/sh ferry -c "exec $*"; }
    # the initramfs is root's (mkinitramfs keeps its temporary 0700 modes)
    chmod a+rx / ; chmod -R a+rX /bin /sbin /usr /lib /lib64 /etc 2>/dev/null; chmod 1777 /tmp
    run "dm nonroot unprepared" asferry ferry-dm --qmp /tmp/none.sock --config /tmp/vm.conf
    run "prepare config" ferry pci prepare --config /tmp/vm.conf
    qemu-system-x86_64 -accel tcg -machine pc -S -nodefaults -display none -m 32 \
        -bios /ferry-eject.bin \
        -qmp unix:/tmp/dmq2.sock,server=on,wait=off -qmp unix:/tmp/mon2.sock,server=on,wait=off \
        -daemonize -pidfile /tmp/dmq2.pid >/tmp/dmq2.log 2>&1
    qpid=$(cat /tmp/dmq2.pid)
    chmod 666 /tmp/dmq2.sock
    asferry ferry-dm --qmp /tmp/dmq2.sock --control /tmp/dm2.sock --config /tmp/vm.conf -v \
        >/tmp/dm2.log 2>&1 &
    dmpid=$!
    up=$(dm_up /tmp/dm2.sock $dmpid)
    # ($dmpid is the subshell around su; the ferry-dms running are that one and
    # the launcher it forked for its successor, both as the user it was started as)
    dm2pids=$(pidof ferry-dm)
    fact "dm2-started=$up dm2-uid=$(awk '/^Uid:/ {print $2}' /proc/${dm2pids%% *}/status)"
    run "dm2 query" ferry dm -s /tmp/dm2.sock query-pci-assigned
    kill $qpid
    while kill -0 $qpid 2>/dev/null; do sleep 0.1; done
    for i in $(seq 1 100); do kill -0 $dmpid 2>/dev/null || break; sleep 0.1; done
    run "dm2 log" cat /tmp/dm2.log
    run "release config 2" ferry pci release --config /tmp/vm.conf
    fact "dm2-driver-final=$(drv $E1000E)"
fi
