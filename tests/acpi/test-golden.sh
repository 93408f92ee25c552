#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Golden tables, as QEMU's bios-tables-test keeps them: `ferry acpi dump`
# of a few fixed configs must match tests/acpi/data/<config>/*.dat byte for
# byte, so that any change to what a guest sees is a reviewed change.  On a
# mismatch both sides are disassembled (iasl -d) and the difference shown.
#
# After an intended change, regenerate and review the diff of the .dsl:
#   tests/acpi/test-golden.sh build/cli/ferry tests/acpi/data --update
#
#   test-golden.sh FERRY DATADIR [--update]
set -eu
ferry=$1; data=$2; update=${3:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# name | arguments of ferry acpi dump
configs='default|--vcpus 2 --memory 1G
numa2|--vcpus 4 --memory 6G --numa 2'

status=0
echo "$configs" | while IFS='|' read -r name args; do
    # shellcheck disable=SC2086
    "$ferry" acpi dump $args --out "$tmp/$name" > /dev/null
    if [ "$update" = --update ]; then
        rm -rf "${data:?}/$name"
        mkdir -p "$data/$name"
        cp "$tmp/$name"/*.dat "$data/$name/"
        echo "updated $data/$name ($(ls "$data/$name" | wc -l) tables)"
        continue
    fi
    [ -d "$data/$name" ] || { echo "FAIL: no golden tables in $data/$name (run with --update)"; exit 1; }
    bad=""
    for b in $( (ls "$data/$name"; ls "$tmp/$name") | grep '\.dat$' | sort -u); do
        [ -f "$data/$name/$b" ] && [ -f "$tmp/$name/$b" ] || { bad="$bad $b(missing)"; continue; }
        cmp -s "$data/$name/$b" "$tmp/$name/$b" || bad="$bad $b"
    done
    if [ -n "$bad" ]; then
        echo "FAIL: $name: tables differ from the golden ones:$bad"
        if command -v iasl >/dev/null; then
            for b in $bad; do
                case "$b" in *missing*|rsdp.dat) continue ;; esac
                mkdir -p "$tmp/old" "$tmp/new"
                cp "$data/$name/$b" "$tmp/old/"; cp "$tmp/$name/$b" "$tmp/new/"
                ( cd "$tmp/old" && iasl -d "$b" >/dev/null 2>&1 )
                ( cd "$tmp/new" && iasl -d "$b" >/dev/null 2>&1 )
                diff -u "$tmp/old/${b%.dat}.dsl" "$tmp/new/${b%.dat}.dsl" |
                    grep -vE "^[-+] \* (Disassembly of|Intel ACPI)" | head -60 || true
            done
        fi
        echo "If the change is intended: $0 $ferry $data --update"
        exit 1
    fi
    echo "ok $name: $(ls "$data/$name" | wc -l) tables match"
done || status=1
exit $status
