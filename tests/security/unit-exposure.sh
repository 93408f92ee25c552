#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# systemd's exposure score of the shipped ferry-dm@.service (systemd is not
# PID 1 here: --offline=yes reads the file alone).  Fails if the unit is
# invalid (systemd-analyze rejects or warns about it) or if the score is
# above BOUND, the figure the README claims.
#   unit-exposure.sh UNIT BOUND
unit="$1"; bound="$2"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze is not installed (Debian package systemd; scripts/setup)"
    exit 77
fi
if [ ! -f "$unit" ]; then
    echo "FAIL: $unit does not exist"
    exit 1
fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>"$err")
rc=$?
if [ $rc -ne 0 ] && ! grep -q "Overall exposure level" <<EOF2
$out
EOF2
then
    echo "FAIL: systemd-analyze security exited $rc on $unit:"
    cat "$err"
    exit 1
fi
if grep -Ei "unknown|ignoring|failed to|invalid|bad " "$err"; then
    echo "FAIL: systemd-analyze warns about $unit (above)"
    exit 1
fi
printf '%s\n' "$out" | grep -v '^✓'
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
    echo "FAIL: no exposure score in systemd-analyze's output"
    exit 1
fi
echo "exposure score of $(basename "$unit"): $score (0 = fully locked down, 10 = exposed), bound $bound"
if ! awk -v s="$score" -v b="$bound" 'BEGIN { exit !(s + 0 <= b + 0) }'; then
    echo "FAIL: exposure score $score is above the bound $bound (README: security model)"
    exit 1
fi
