#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# `ferry acpi dump`: its outputs and its refusals (exit status and a message
# naming what is wrong).
#   test-cli.sh FERRY
set -eu
ferry=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

refuses() {   # EXPECTED-MESSAGE ARGS...
    want=$1; shift
    if "$ferry" acpi dump "$@" > "$tmp/out" 2>&1; then fail "accepted: $*"; fi
    grep -q -- "$want" "$tmp/out" || { cat "$tmp/out"; fail "'$*': message lacks '$want'"; }
}

"$ferry" acpi dump --vcpus 2 --out "$tmp/d" > /dev/null || fail "plain dump"
for t in rsdp xsdt rsdt facp facs dsdt apic hpet mcfg waet ssdt; do
    [ -s "$tmp/d/$t.dat" ] || fail "no $t.dat"
done
[ ! -e "$tmp/d/srat.dat" ] || fail "srat.dat without NUMA"
"$ferry" acpi dump --vcpus 2 --numa 2 --out "$tmp/n" > /dev/null || fail "numa dump"
[ -s "$tmp/n/srat.dat" ] && [ -s "$tmp/n/slit.dat" ] || fail "no SRAT/SLIT with --numa 2"

"$ferry" acpi dump --vcpus 2 --blob --base 0x100000 --out "$tmp/b" > "$tmp/out" || fail "blob"
[ "$(head -c 8 "$tmp/b")" = "RSD PTR " ] || fail "the blob does not start with the RSDP"
grep -q "rsdp 0x100000" "$tmp/out" || fail "blob: rsdp address not reported"
[ "$(stat -c %s "$tmp/b")" -le 65536 ] || fail "blob larger than 64 KiB"

printf '[guest]\nvcpus = 3\n[acpi]\napic-ids = 0, 2, 4\n' > "$tmp/ids"
"$ferry" acpi dump "$tmp/ids" --out "$tmp/i" > /dev/null || fail "apic-ids"
# MADT: 44-byte header, then 8-byte Local APIC entries; the APIC id is byte 3.
[ "$(od -An -tu1 -j 47 -N1 "$tmp/i/apic.dat" | tr -d ' ')" = 0 ] &&
[ "$(od -An -tu1 -j 55 -N1 "$tmp/i/apic.dat" | tr -d ' ')" = 2 ] &&
[ "$(od -An -tu1 -j 63 -N1 "$tmp/i/apic.dat" | tr -d ' ')" = 4 ] || fail "apic-ids not in the MADT"
printf '[guest]\nvcpus = 2\n[acpi]\napic-ids = 1,1\n' > "$tmp/dup"
refuses "vcpus\[1\].apic_id: 1 already used" "$tmp/dup" --out "$tmp/x"
printf '[guest]\nvcpus = 2\n[acpi]\napic-ids = 1\n' > "$tmp/few"
refuses "1 ids for 2 vcpus" "$tmp/few" --out "$tmp/x"

# \_S3: on by default (SLP_TYP 1), s3 = false leaves it out, s3-slp-typ moves it, and it
# may not be S5's value.  ("_S3_" is the name segment in the AML.)
grep -q "_S3_" "$tmp/d/dsdt.dat" || fail "no \\_S3 in the default DSDT"
printf '[guest]\nvcpus = 2\n[acpi]\ns3 = false\n' > "$tmp/nos3"
"$ferry" acpi dump "$tmp/nos3" --out "$tmp/s" > /dev/null || fail "s3 = false"
! grep -q "_S3_" "$tmp/s/dsdt.dat" || fail "\\_S3 with s3 = false"
printf '[guest]\nvcpus = 2\n[acpi]\ns3-slp-typ = 0\n' > "$tmp/s3s5"
refuses "pm.s3_slp_typ: 0 is pm.s5_slp_typ too" "$tmp/s3s5" --out "$tmp/x"

# Extra tables: ferry's own SSDT is a valid table to add (SSDTs may repeat);
# [acpi] tables (relative to the config) come first, then each --table.
cp "$tmp/d/ssdt.dat" "$tmp/extra.dat"
mkdir "$tmp/cfgdir"
cp "$tmp/d/ssdt.dat" "$tmp/cfgdir/rel.dat"
printf '[guest]\nvcpus = 2\n[acpi]\ntables = rel.dat\n' > "$tmp/cfgdir/t.conf"
"$ferry" acpi dump "$tmp/cfgdir/t.conf" --table "$tmp/extra.dat" --out "$tmp/t" > "$tmp/out" ||
    { cat "$tmp/out"; fail "dump with [acpi] tables and --table"; }
cmp -s "$tmp/t/ssdt2.dat" "$tmp/cfgdir/rel.dat" && cmp -s "$tmp/t/ssdt3.dat" "$tmp/extra.dat" ||
    fail "the extra tables are not copied as given, in order"
[ "$(stat -c %s "$tmp/t/xsdt.dat")" = $(( $(stat -c %s "$tmp/d/xsdt.dat") + 16 )) ] &&
[ "$(stat -c %s "$tmp/t/rsdt.dat")" = $(( $(stat -c %s "$tmp/d/rsdt.dat") + 8 )) ] ||
    fail "XSDT/RSDT do not list two more tables"
"$ferry" acpi dump --vcpus 2 -t "$tmp/extra.dat" --blob --out "$tmp/tb" > /dev/null || fail "blob with --table"
refuses "nope.dat: cannot open" --table "$tmp/nope.dat" --out "$tmp/x"
head -c 70000 /dev/zero > "$tmp/huge.dat"
refuses "huge.dat: 70000 bytes, larger than the 65536 bytes an ACPI table may have" \
    --table "$tmp/huge.dat" --out "$tmp/x"
refuses "extra_tables\[1\]: DSDT is a table libacpi builds itself \[file $tmp/d/dsdt.dat\]" \
    --table "$tmp/extra.dat" --table "$tmp/d/dsdt.dat" --out "$tmp/x"
head -c 20 "$tmp/extra.dat" > "$tmp/short.dat"
refuses "extra_tables\[0\]: 20 bytes, shorter than a table header" --table "$tmp/short.dat" --out "$tmp/x"
head -c 40 "$tmp/extra.dat" > "$tmp/cut.dat"
refuses "extra_tables\[0\] (SSDT): header length .*, but 40 bytes given" --table "$tmp/cut.dat" --out "$tmp/x"
cp "$tmp/extra.dat" "$tmp/sum.dat"
old=$(od -An -tu1 -j 40 -N1 "$tmp/sum.dat" | tr -d ' ')
printf "\\$(printf %o $(( (old + 1) % 256 )))" | dd of="$tmp/sum.dat" bs=1 seek=40 conv=notrunc 2>/dev/null
refuses "extra_tables\[0\] (SSDT): checksum: the bytes sum to 0x01, not 0" --table "$tmp/sum.dat" --out "$tmp/x"
cp "$tmp/extra.dat" "$tmp/sig.dat"
printf 'ss-t' | dd of="$tmp/sig.dat" bs=1 seek=0 conv=notrunc 2>/dev/null
refuses "extra_tables\[0\]: signature 73 73 2d 74 is not four of A-Z 0-9 _" --table "$tmp/sig.dat" --out "$tmp/x"
refuses "more than 8 ACPI tables" $(for i in 1 2 3 4 5 6 7 8 9; do printf -- '--table %s ' "$tmp/extra.dat"; done) --out "$tmp/x"
printf '[acpi]\ntables = ;\n' > "$tmp/empty.conf"
refuses "\[acpi\] tables: entry 1 is empty" "$tmp/empty.conf" --out "$tmp/x"

refuses "--out is required" --vcpus 2
refuses "not a size" --memory 12Q --out "$tmp/x"
refuses "vcpus 0: must be at least 1" --vcpus 0 --out "$tmp/x"
refuses "vcpus -1: must be at least 1" --vcpus -1 --out "$tmp/x"
refuses "numa -2: must not be negative" --vcpus 2 --numa -2 --out "$tmp/x"
refuses "memory -5: not a size" --memory -5 --out "$tmp/x"
printf '[guest]\nvcpus = -1\n' > "$tmp/neg"
refuses "vcpus" "$tmp/neg" --out "$tmp/x"
refuses "numa" --vcpus 2 --numa 3 --out "$tmp/x"
refuses "64-byte aligned" --blob --base 0x1001 --out "$tmp/x"
printf '[acpi]\nmadt = x2\n' > "$tmp/c1"
refuses "madt=x2" "$tmp/c1" --out "$tmp/x"
printf '[guest]\nvcpus = 300\n[acpi]\nmadt = xapic\n' > "$tmp/c2"
refuses "nr_vcpus: 300 too many for the xAPIC MADT form" "$tmp/c2" --out "$tmp/x"
printf '[guest]\nvcpus = 2\nnuma = 2\n[acpi]\nnuma-distances = 10,9;9,10\n' > "$tmp/c3"
refuses "distance\[0\]\[1\]" "$tmp/c3" --out "$tmp/x"
printf '[acpi]\noem-id = TOOLONGID\n' > "$tmp/c4"
refuses "oem-id" "$tmp/c4" --out "$tmp/x"
refuses "cannot read config" "$tmp/nonexistent" --out "$tmp/x"
# The documented example config (docs/acpi.md) must be one the command takes.
doc=${FERRY_SOURCE_ROOT:?FERRY_SOURCE_ROOT is not set (meson sets it)}/docs/acpi.md
[ -f "$doc" ] || fail "$doc is missing"
sed -n '/^```ini$/,/^```$/p' "$doc" | sed '1d;$d' > "$tmp/doc.conf"
[ -s "$tmp/doc.conf" ] || fail "docs/acpi.md has no ini example"
"$ferry" acpi dump "$tmp/doc.conf" --out "$tmp/r" > /dev/null || fail "docs/acpi.md's example config"
echo "cli: ok"
