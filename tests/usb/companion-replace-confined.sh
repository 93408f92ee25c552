#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# qemu suite: a confined ferry-dm --qmp (seccomp, namespaces, user ferry, as
# by default) replaced three times under a running QEMU (stopped, no guest
# needed): each successor takes the QMP connection as it is (no second
# greeting or qmp_capabilities), confines itself, answers on the control
# socket, and exits when QEMU does (its watch on the adopted connection).
# A successor of another binary is refused, and the old one serves on; so is
# a replace of a libvirt domain's ferry-dm (--libvirt).
# (USB channels under a guest: qemu-usb-replace.)
#   companion-replace-confined.sh FERRY_DM FERRY
set -u
dm=$1; ferry=$2
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
id ferry >/dev/null 2>&1 || { echo "SKIP: no user 'ferry' (scripts/setup makes it)"; exit 77; }
work=$(mktemp -d /tmp/ferry-crc.XXXXXX)
# the successors run as user ferry and read the config again
chmod 755 "$work"
qpid=; lvpid=
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; [ -n "$lvpid" ] && kill "$lvpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- ferry-dm's log"; cat "$work/dm.log"; exit 1; }

qemu-system-x86_64 -accel tcg -S -nodefaults -nographic -display none -device qemu-xhci \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qpid=$!
n=0; while [ ! -S "$work/qmp.sock" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
printf '[usb]\n' >"$work/g.conf"
"$dm" --qmp "$work/qmp.sock" --control "$work/dm.sock" --config "$work/g.conf" -v \
    >"$work/dm.log" 2>&1 &
n=0; while [ ! -S "$work/dm.sock" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done

for i in 1 2 3; do
    out=$("$ferry" dm -s "$work/dm.sock" replace 2>&1) || fail "replace $i: $out"
    pid=$(echo "$out" | sed -n 's/.*"pid" *: *\([0-9]*\).*/\1/p')
    [ -n "$pid" ] || fail "replace $i named no successor: $out"
    grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || fail "successor $pid is not under seccomp"
    grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "successor $pid: no NoNewPrivs"
    q=$("$ferry" dm -s "$work/dm.sock" query-usb 2>&1) || fail "successor $pid does not answer: $q"
    echo "$q" | grep -q '"confined" *: *true' || fail "query-usb after replace $i: $q"
    echo "replace $i: pid $pid serves, confined"
done
out=$("$ferry" dm -s "$work/dm.sock" replace --binary /bin/false 2>&1) && fail "another binary was accepted: $out"
echo "$out" | grep -q "its launcher takes no other program" || fail "refusal says: $out"
"$ferry" dm -s "$work/dm.sock" query-usb >/dev/null 2>&1 || fail "no answer after the refusal"
grep -q "qmp_capabilities\|CommandNotFound" "$work/dm.log" && fail "a successor negotiated QMP again"
kill "$qpid"; wait "$qpid" 2>/dev/null; qpid=
n=0; while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -0 "$pid" 2>/dev/null && fail "the last successor ($pid) did not notice QEMU going"
grep -q "connection to $work/qmp.sock ended" "$work/dm.log" || fail "no end of QMP in the log"
# A libvirt domain's ferry-dm (no libvirtd needed: ferry-dm never calls it) is
# not replaced: refused naming what a handover does not pass; it serves on.
"$dm" --libvirt ferry-crc-dom --control "$work/lv.sock" -v >"$work/lv.log" 2>&1 &
lvpid=$!
n=0; while ! "$ferry" dm -s "$work/lv.sock" query-status >/dev/null 2>&1 && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
out=$("$ferry" dm -s "$work/lv.sock" replace 2>&1) && fail "ferry-dm --libvirt was replaced: $out"
echo "$out" | grep -q "ferry-dm --libvirt ferry-crc-dom cannot be replaced: .*none now.*listening sockets.*ferry libvirt-follow.*dm.pid; nothing was changed" ||
    fail "libvirt refusal says: $out"
"$ferry" dm -s "$work/lv.sock" query-status >/dev/null 2>&1 || fail "ferry-dm --libvirt does not serve on after the refusal"
kill "$lvpid"; wait "$lvpid" 2>/dev/null; lvpid=
echo "PASS: three confined replaces, QMP kept, refusals named (another binary, --libvirt)"
