#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# `ferry --help`: every command is listed, and every command's help starts
# in the same column (the longest name, libvirt-follow, included).
#   test-cli-help.sh FERRY
set -eu
ferry=$1
fail() { echo "FAIL: $*"; exit 1; }

out=$("$ferry" --help) || fail "ferry --help exited $?"
lines=$(printf '%s\n' "$out" | sed -n '/^commands:$/,/^$/p' | grep '^  [a-z]')
[ -n "$lines" ] || fail "no command lines in: $out"
# The column where each line's help starts: past the name and the spaces after it.
cols=$(printf '%s\n' "$lines" | awk '{ match($0, /^  [a-z-]+ +/); print RLENGTH }' | sort -u)
[ "$(printf '%s\n' "$cols" | wc -l)" -eq 1 ] || {
    printf '%s\n' "$lines"; fail "the helps start in more than one column: $(echo $cols)"; }
for c in run dm usb pci policy libvirt-hook libvirt-follow; do
    printf '%s\n' "$lines" | grep -q "^  $c " || fail "command $c is not listed"
done
echo "ok: $(printf '%s\n' "$lines" | wc -l) commands, help in column $cols"
