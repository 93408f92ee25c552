/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The entry of the test guests written in freestanding C (kind pvh64c of
 * build-guest): PVH entry, long mode with the first 4 GiB identity-mapped
 * and exception stubs (lm.inc), then guest_main(start_info).  What it
 * returns is the exit status through ferry-hv's debug exit (0x501).
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
    .code64
main64:
    mov %r15, %rdi
    call guest_main
    jmp exit64
#include "lib64.inc"
