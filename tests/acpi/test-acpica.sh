#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Proof against ACPICA (acpica-tools): for several configs, `ferry acpi dump`
# writes every table; each must disassemble with `iasl -d` without a
# checksum/length/"Invalid" complaint, the disassembly must compile again
# with no error or warning, and acpiexec must load the DSDT and SSDTs, pass
# "Test Predefined" and "Integrity", and evaluate _CRS/_STA/_HID, \_S5, \_S3 and
# (through probe.asl) the _PRT entry count, with no ACPI Error/Warning/
# Exception.  With extra.asl compiled and added as a caller's SSDT
# ([acpi] tables), acpiexec loads the whole set and \_SB.FRYX.FRYV must
# return its constant.  iasl and acpiexec exit 0 even on such faults: we grep.
#   test-acpica.sh FERRY SRCDIR
set -eu
ferry=$1; srcdir=$2
for t in iasl acpiexec; do
    command -v $t >/dev/null || { echo "SKIP: $t (acpica-tools) is not installed"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/big.conf" <<'CONF'
# 300 vCPUs need the x2APIC MADT form; two NUMA nodes with custom distances.
[guest]
vcpus = 300
memory = 8G
numa = 2
[acpi]
madt = x2apic
oem-id = TESTOE
oem-table-id = TESTTBL
numa-distances = 10,31;31,10
CONF
cat > "$tmp/min.conf" <<'CONF'
# No PCI, no HPET, no COM2, no SSDT: the smallest set.
[guest]
vcpus = 1
memory = 64M
[acpi]
pci = false
mcfg = false
hpet = false
com2 = false
cpu-ssdt = false
CONF

iasl -p "$tmp/probe" "$srcdir/probe.asl" > "$tmp/probe.log" 2>&1 ||
    { cat "$tmp/probe.log"; fail "cannot compile probe.asl"; }
iasl -p "$tmp/extra" "$srcdir/extra.asl" > "$tmp/extra.log" 2>&1 ||
    { cat "$tmp/extra.log"; fail "cannot compile extra.asl"; }
cat > "$tmp/extra.conf" <<'CONF'
# A caller's own SSDT (extra.asl) added to the default set, relative path.
[guest]
vcpus = 4
memory = 1G
[acpi]
tables = extra.aml
CONF

run() {   # NAME EXPECT_PRT ARGS...
    name=$1; prt=$2; shift 2
    d=$tmp/$name
    "$ferry" acpi dump "$@" --out "$d" > "$tmp/$name.dump" 2>&1 ||
        { cat "$tmp/$name.dump"; fail "$name: ferry acpi dump $*"; }
    n=0
    for f in "$d"/*.dat; do
        b=$(basename "$f" .dat)
        [ "$b" = rsdp ] && continue      # iasl -d cannot take a bare RSDP
        ( cd "$d" && iasl -d "$b.dat" ) > "$d/$b.dis.log" 2>&1
        if grep -iE "incorrect|invalid|should be|error|warning|unknown|too (long|short)" \
                "$d/$b.dis.log" "$d/$b.dsl" | grep -v "Error: 0" ; then
            fail "$name: iasl -d $b.dat complains"
        fi
        grep -q "Signature" "$d/$b.dsl" || fail "$name: $b.dsl has no header"
        ( cd "$d" && iasl -p "$d/re-$b" "$b.dsl" ) > "$d/$b.re.log" 2>&1 || true
        grep -qE "Compilation successful\. +0 Errors, 0 Warnings" "$d/$b.re.log" ||
            { cat "$d/$b.re.log"; fail "$name: recompiling $b.dsl"; }
        n=$((n + 1))
    done
    [ "$n" -ge 6 ] || fail "$name: only $n tables"

    aml="$d/dsdt.dat"
    for s in "$d"/ssdt*.dat; do [ -f "$s" ] && aml="$aml $s"; done
    cmds="Test Predefined; Integrity; Evaluate \\_S5; Evaluate \\_S3"
    if [ "$prt" != none ]; then
        aml="$aml $tmp/probe.aml"
        cmds="$cmds; Evaluate \\PRTC; Evaluate \\PRT5; Evaluate \\_SB.PCI0._CRS; Evaluate \\_SB.PCI0._HID; Evaluate \\OSCQ"
    fi
    cmds="$cmds; Evaluate \\_SB.COM1._CRS; Evaluate \\_SB.COM1._STA; Evaluate \\_SB.COM1._HID"
    extra=no
    if grep -qs FRYXTRA "$d"/ssdt*.dat; then
        extra=yes
        cmds="$cmds; Evaluate \\_SB.FRYX.FRYV; Evaluate \\_SB.FRYX._STA"
    fi
    # shellcheck disable=SC2086
    acpiexec -dr -b "$cmds" $aml > "$d/exec.log" 2>&1 || true
    if grep -E "ACPI (Error|Warning|Exception)|AE_[A-Z_]+" "$d/exec.log" | grep -vE "AE_OK" ; then
        fail "$name: acpiexec reports errors"
    fi
    grep -q "Evaluated [1-9][0-9]* predefined names" "$d/exec.log" || fail "$name: no predefined names tested"
    grep -q "Verified [1-9][0-9]* namespace nodes" "$d/exec.log" || fail "$name: integrity test did not run"
    grep -A1 "Evaluation of \\\\_SB.COM1._STA" "$d/exec.log" | grep -q "= 000000000000000F" ||
        fail "$name: COM1._STA is not 0x0F"
    grep -A1 "Evaluation of \\\\_SB.COM1._HID" "$d/exec.log" | grep -q "= 000000000105D041" ||
        fail "$name: COM1._HID is not PNP0501"
    grep -A1 "Evaluation of \\\\_S5" "$d/exec.log" | grep -q "Contains 4 Elements" ||
        fail "$name: _S5 is not a 4-element package"
    # \_S3: SLP_TYPa and SLP_TYPb 1, what ferry-dm's acpi-pm takes as S3.
    grep -A3 "Evaluation of \\\\_S3" "$d/exec.log" | grep -c "\[Integer\] = 0000000000000001" |
        grep -qx 2 || fail "$name: _S3 is not Package {1, 1, 0, 0}"
    if [ "$extra" = yes ]; then
        grep -A1 "Evaluation of \\\\_SB.FRYX.FRYV" "$d/exec.log" | grep -q "= 0000000058595246" ||
            { grep -A2 "FRYX" "$d/exec.log"; fail "$name: the extra SSDT's \\_SB.FRYX.FRYV is not 0x58595246"; }
        grep -A1 "Evaluation of \\\\_SB.FRYX._STA" "$d/exec.log" | grep -q "= 000000000000000F" ||
            fail "$name: the extra SSDT's FRYX._STA is not 0x0F"
    fi
    if [ "$prt" != none ]; then
        grep -A1 "Evaluation of \\\\PRTC" "$d/exec.log" | grep -q "= $prt" ||
            fail "$name: _PRT does not have the expected entry count"
        # Device 1, INTB#: GSI 16 + (1 + 1) % 4 = 18.
        grep -A1 "Evaluation of \\\\PRT5" "$d/exec.log" | grep -q "= 0000000000000012" ||
            fail "$name: _PRT entry 5 does not route to GSI 18"
        grep -A2 "Evaluation of \\\\OSCQ" "$d/exec.log" | grep -q "0000: 11 00 00 00 1F 00 00 00 1F 00 00 00" ||
            { grep -A3 "Evaluation of \\\\OSCQ" "$d/exec.log"; fail "$name: _OSC does not grant 0x1f"; }
        grep -A1 "Evaluation of \\\\_SB.PCI0._CRS" "$d/exec.log" | grep -q "\[Buffer\]" ||
            fail "$name: PCI0._CRS is not a buffer"
    fi
    echo "ok $name: $n tables disassembled and recompiled cleanly; acpiexec clean"
}

run default 0000000000000080 --vcpus 4 --memory 1G
# The grep above must see a fault when there is one: corrupt a copy.
mkdir "$tmp/corrupt" && cp "$tmp/default/apic.dat" "$tmp/corrupt/"
printf '\167' | dd of="$tmp/corrupt/apic.dat" bs=1 seek=50 conv=notrunc 2>/dev/null
( cd "$tmp/corrupt" && iasl -d apic.dat ) > "$tmp/corrupt/log" 2>&1
grep -qi "incorrect checksum" "$tmp/corrupt/apic.dsl" ||
    fail "iasl no longer reports a corrupted checksum the way this test expects"
run numa2 0000000000000080 --vcpus 4 --memory 6G --numa 2
run big 0000000000000080 "$tmp/big.conf"
grep -q "TESTOE" "$tmp/big/dsdt.dsl" || fail "big: oem-id from the config file is not used"
[ "$(grep -c "Processor x2Apic ID" "$tmp/big/apic.dsl")" = 300 ] || fail "big: MADT lacks 300 x2APIC entries"
grep -q "Locality   0 : 0A 1F" "$tmp/big/slit.dsl" || fail "big: SLIT lacks the configured distance 31"
run extra 0000000000000080 "$tmp/extra.conf"
[ -f "$tmp/extra/ssdt2.dat" ] && cmp -s "$tmp/extra/ssdt2.dat" "$tmp/extra.aml" ||
    fail "extra: the caller's SSDT is not ssdt2.dat as compiled"
grep -q 'OEM Table ID     "FRYXTRA"' "$tmp/extra/ssdt2.dsl" || fail "extra: ssdt2.dsl is not extra.asl's"
run minimal none "$tmp/min.conf"
[ ! -f "$tmp/minimal/mcfg.dat" ] && [ ! -f "$tmp/minimal/hpet.dat" ] || fail "minimal: unwanted tables"
echo "acpica: all configs clean"
