/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PVH (ELF32): says "spinning" on the debug console and spins for ever
 * without exits, so that all the host CPU it gets is guest time (the
 * cpu-weight and cpu-cap scenarios of tests/guest/run-guest.py).
 */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    mov $s_spinning, %esi
    call puts
1:  jmp 1b

#include "lib32.inc"
s_spinning: .asciz "spinning\n"
    .bss
    .p2align 4
    .skip 256
stack_top:
