#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the test guest (test-linux.sh): what Linux made of Ferry's tables.
echo "FERRY-CPUS=$(grep -c ^processor /proc/cpuinfo)"
echo "FERRY-NODES=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)"
for n in /sys/devices/system/node/node[0-9]*; do
    [ -d "$n" ] && echo "FERRY-DIST $(basename "$n") $(cat "$n/distance") cpus=$(cat "$n/cpulist")"
done
echo "FERRY-ACPIDEV $(ls /sys/bus/acpi/devices 2>/dev/null | tr '\n' ' ')"
echo "FERRY-ACPITABLES $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
echo "FERRY-PNP $(cat /sys/bus/pnp/devices/*/id 2>/dev/null | tr '\n' ' ')"
echo FERRY-DMESG-BEGIN
dmesg
echo FERRY-DMESG-END
