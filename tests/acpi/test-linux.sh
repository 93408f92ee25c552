#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Proof against Linux: boot Debian's kernel under QEMU (TCG) on Ferry's
# tables instead of QEMU's.  The blob from `ferry acpi dump --blob` is
# loaded with -device loader and the kernel told acpi_rsdp=ADDR
# memmap=64K#ADDR.  The guest's dmesg must list Ferry's RSDP/XSDT and have
# no ACPI error/warning/exception or "can't evaluate"; it must see the
# configured CPUs and, with two NUMA nodes, the configured distances.
# Mode extra (its own meson test, acpi-linux-extra: SKIPs without iasl) boots
# with a caller's SSDT (extra.asl, compiled with iasl and given as [acpi]
# tables): Linux must load it and enumerate its device.
#
# QEMU's PIIX4 has its PM block at 0x600, not at Xen's 0xb000 where ferry-dm
# puts it, so the config moves PM1a_EVT/PM1a_CNT/PM_TMR there (GPE0 0xafe0
# and SCI 9 match already): the guest then talks to real PM hardware.
#   test-linux.sh FERRY LINUX_KERNEL_RIG MKINITRAMFS_RIG GUEST_SCRIPT base|extra
set -eu
ferry=$1; rig_kernel=$2; rig_initramfs=$3; guest_script=$4; mode=$5
case "$mode" in base|extra) ;; *) echo "usage: $0 FERRY KERNEL_RIG INITRAMFS_RIG SCRIPT base|extra"; exit 2 ;; esac
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
if [ "$mode" = extra ] && ! command -v iasl >/dev/null; then
    echo "SKIP: iasl (acpica-tools) is not installed: cannot compile the caller's SSDT"; exit 77
fi
rc=0; kdir=$(sh "$rig_kernel") || rc=$?
[ "$rc" = 0 ] || exit "$rc"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
addr=0x0ff00000                 # in RAM, clear of the kernel (nokaslr) and the initrd
rc=0; sh "$rig_initramfs" "$tmp/initrd.gz" "$kdir" "$guest_script" || rc=$?
[ "$rc" = 0 ] || exit "$rc"

run_guest() {   # NAME VCPUS BLOB: boot, leave the CR-less serial log in $tmp/NAME.log
    timeout 600 qemu-system-x86_64 -accel tcg -m 512 -smp "$2,sockets=$2" \
        -display none -nodefaults -serial stdio -no-reboot \
        -kernel "$kdir/vmlinuz" -initrd "$tmp/initrd.gz" \
        -append "console=ttyS0 quiet panic=-1 nokaslr acpi_rsdp=$addr memmap=64K#$addr" \
        -device loader,file="$3",addr=$addr,force-raw=on \
        > "$tmp/$1.raw" 2>&1 </dev/null || true
    tr -d '\r' < "$tmp/$1.raw" > "$tmp/$1.log"     # the serial console ends lines with CR LF
}

complaints='ACPI BIOS (Error|Warning)|ACPI (Error|Warning|Exception)|can.t evaluate'

boot() {   # NAME VCPUS NUMA DISTANCES [MADT-FORM] [EXTRA-TABLE]
    name=$1; vcpus=$2; numa=$3; dist=$4; madt=${5:-}; extra=${6:-}
    conf=$tmp/$name.conf
    {
        printf '[guest]\nvcpus = %s\nmemory = 512M\nnuma = %s\n' "$vcpus" "$numa"
        printf '[acpi]\npm1a-evt = 0x600\npm1a-cnt = 0x604\npm-tmr = 0x608\n'
        [ -n "$dist" ] && printf 'numa-distances = %s\n' "$dist"
        [ -n "$madt" ] && printf 'madt = %s\n' "$madt"
        [ -n "$extra" ] && printf 'tables = %s\n' "$extra"
        true
    } > "$conf"
    "$ferry" acpi dump "$conf" --blob --base $addr --out "$tmp/$name.blob" ||
        fail "$name: ferry acpi dump --blob"
    run_guest "$name" "$vcpus" "$tmp/$name.blob"
    out=$tmp/$name.log
    grep -q "FERRY-GUEST-DONE rc=0" "$out" || { tail -40 "$out"; fail "$name: the guest did not finish"; }
    grep -q "ACPI: RSDP 0x000000000FF00000 000024 (v02 FERRY )" "$out" ||
        { grep "ACPI: RSDP" "$out"; fail "$name: the guest did not use Ferry's RSDP at $addr"; }
    grep -qE "ACPI: XSDT 0x[0-9A-F]+ [0-9A-F]+ \(v01 FERRY  FERRYVM " "$out" ||
        fail "$name: the guest did not use Ferry's XSDT"
    for t in FACP DSDT APIC HPET MCFG WAET SSDT; do
        grep -qE "ACPI: $t 0x[0-9A-F]+ [0-9A-F]+ \(v0[0-9] FERRY " "$out" ||
            fail "$name: the guest did not list Ferry's $t"
    done
    if grep -E "$complaints" "$out"; then
        fail "$name: ACPI complaints in the guest's dmesg"
    fi
    grep -q "ACPI: PCI Root Bridge \[PCI0\]" "$out" || fail "$name: no PCI root bridge from the DSDT"
    grep -q "_OSC: OS now controls \[PCIeHotplug SHPCHotplug PME AER PCIeCapability\]" "$out" ||
        { grep "_OSC" "$out"; fail "$name: the root bridge's _OSC did not grant PCIe control"; }
    naml=2; [ -n "$extra" ] && naml=3
    grep -q "ACPI: $naml ACPI AML tables successfully acquired and loaded" "$out" ||
        fail "$name: not all $naml AML tables (DSDT, SSDTs) were loaded"
    grep -q "FERRY-CPUS=$vcpus\$" "$out" || { grep FERRY-CPUS "$out"; fail "$name: the guest does not see $vcpus CPUs"; }
    echo "ok $name: Linux booted on Ferry's tables, $vcpus CPUs, no ACPI complaints"
}

if [ "$mode" = extra ]; then
    iasl -p "$tmp/extra" "$(dirname "$guest_script")/extra.asl" > "$tmp/extra.log" 2>&1 ||
        { cat "$tmp/extra.log"; fail "cannot compile extra.asl"; }
    boot ssdt 2 0 "" "" "$tmp/extra.aml"
    grep -qE "ACPI: SSDT 0x[0-9A-F]+ [0-9A-F]+ \(v02 FERRY  FRYXTRA " "$tmp/ssdt.log" ||
        fail "ssdt: the guest did not list the extra SSDT"
    grep -q "FERRY-ACPIDEV .*FRY0001:00" "$tmp/ssdt.log" ||
        { grep FERRY-ACPIDEV "$tmp/ssdt.log"; fail "ssdt: the extra SSDT's device FRY0001 is not in /sys/bus/acpi/devices"; }
    grep -q "FERRY-ACPITABLES .*SSDT2" "$tmp/ssdt.log" ||
        { grep FERRY-ACPITABLES "$tmp/ssdt.log"; fail "ssdt: no SSDT2 in /sys/firmware/acpi/tables"; }
    echo "ok ssdt: the extra SSDT was loaded and its device FRY0001 enumerated"
    exit 0
fi

boot smp4 4 0 ""
grep -q "FERRY-NODES=1" "$tmp/smp4.log" || fail "smp4: expected one NUMA node"
grep -q "FERRY-PNP .*PNP0501 .*PNP0501" "$tmp/smp4.log" || fail "smp4: COM1/COM2 not enumerated by PnP ACPI"

boot numa2 2 2 "10,21;21,10"
grep -q "FERRY-NODES=2" "$tmp/numa2.log" || { grep FERRY- "$tmp/numa2.log"; fail "numa2: the guest does not see two nodes"; }
grep -q "FERRY-DIST node0 10 21 cpus=0\$" "$tmp/numa2.log" || { grep FERRY-DIST "$tmp/numa2.log"; fail "numa2: node0 distances/cpus"; }
grep -q "FERRY-DIST node1 21 10 cpus=1\$" "$tmp/numa2.log" || { grep FERRY-DIST "$tmp/numa2.log"; fail "numa2: node1 distances/cpus"; }
grep -q "ACPI: SRAT: Node 1 PXM 1 \[mem 0x10000000-0x1fffffff\]" "$tmp/numa2.log" ||
    fail "numa2: SRAT memory of node 1 not as configured"
# The x2APIC MADT form (x2APIC and x2APIC-NMI entries) on the same CPUs.
boot x2apic 2 0 "" x2apic
grep -q "ACPI: X2APIC_NMI (uid\[0xffffffff\]" "$tmp/x2apic.log" || fail "x2apic: no x2APIC NMI entry used"

# Control: the same grep must fire on a broken table.  The DSDT always sits
# at offset 0x80 (RSDP, then the 64-byte aligned FACS); bump its checksum.
cp "$tmp/smp4.blob" "$tmp/control.blob"
old=$(od -An -tu1 -j 137 -N1 "$tmp/control.blob" | tr -d ' ')
printf "\\$(printf %o $(( (old + 1) % 256 )))" |
    dd of="$tmp/control.blob" bs=1 seek=137 conv=notrunc 2>/dev/null
run_guest control 4 "$tmp/control.blob"
grep -qE "$complaints" "$tmp/control.log" && grep -q "Incorrect checksum in table \[DSDT\]" "$tmp/control.log" ||
    fail "control: Linux did not complain about a DSDT with a wrong checksum; the checks above prove nothing"
echo "ok control: a corrupted DSDT checksum is reported by the guest"
echo "linux: all boots clean"
