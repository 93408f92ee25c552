#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# libferry-acpi.so exports exactly what libferry-acpi.map lists, has no
# writable data of its own (no globals, no static state), imports only
# libc string/format functions (no I/O, no syscalls; clang turns memcmp into
# bcmp), and its public headers (acpi.h, aml.h and the ferry-log.h they
# include) compile on their own.
#   test-linkage.sh LIB MAP SRCROOT
set -eu
lib=$1; map=$2; src=$3
command -v nm >/dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

sed -n '/global:/,/local:/p' "$map" | grep -o '[a-z_0-9]*;' | tr -d ';' | sort > "$tmp/want"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sed 's/@.*//' | sort > "$tmp/have"
if ! diff -u "$tmp/want" "$tmp/have"; then
    echo "FAIL: exported symbols differ from $map"; exit 1
fi
echo "exports: $(wc -l < "$tmp/want") symbols, as the map says"

allowed='memcpy memmove memset memcmp bcmp snprintf vsnprintf strcmp strlen strnlen __stack_chk_fail __cxa_finalize __gmon_start__ _ITM_deregisterTMCloneTable _ITM_registerTMCloneTable'
bad=""
for s in $(nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//'); do
    case "$s" in __asan*|__ubsan*|__sanitizer*|__lsan*) continue ;; esac
    case " $allowed " in *" $s "*) ;; *) bad="$bad $s" ;; esac
done
if [ -n "$bad" ]; then
    echo "FAIL: $lib imports more than libc string functions:$bad"; exit 1
fi
echo "imports: only libc string/format functions"

# Writable data (.data/.bss) beyond what the toolchain and sanitizers add.
toolchain='_DYNAMIC _GLOBAL_OFFSET_TABLE_ __TMC_END__ __do_global_dtors_aux_fini_array_entry __dso_handle __frame_dummy_init_array_entry completed.0'
bad=""
for s in $(nm "$lib" | awk '$2 ~ /^[bBdDsS]$/ {print $3}'); do
    case "$s" in __unnamed_*|__asan*|___asan*|__sancov*|__ubsan*|.L*) continue ;; esac
    case " $toolchain " in *" $s "*) ;; *) bad="$bad $s" ;; esac
done
if [ -n "$bad" ]; then
    echo "FAIL: $lib has writable data (globals or static state):$bad"; exit 1
fi
echo "data: no writable data of its own"

# The installed layout: include/ferry/{acpi,common}.
mkdir -p "$tmp/inc/ferry/acpi" "$tmp/inc/ferry/common"
cp "$src/acpi/acpi.h" "$src/acpi/aml.h" "$tmp/inc/ferry/acpi/"
cp "$src/common/ferry-log.h" "$tmp/inc/ferry/common/"
cc=${CC:-cc}
command -v "$cc" >/dev/null || cc=gcc
"$cc" -std=c11 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L \
    -I"$tmp/inc/ferry" -fsyntax-only "$src/tests/acpi/test-linkage.c"
echo "headers: self-contained in the installed layout"
