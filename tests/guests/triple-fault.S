/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PVH (ELF32): an empty IDT and an invalid opcode: #UD cannot be
 * delivered, nor the double fault: a triple fault (ferry-hv exits 70).
 */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    cli
    lidt idt0
    ud2
    mov $DEBUG_EXIT_PORT, %dx
    mov $1, %al             /* not reached */
    out %al, %dx
1:  hlt
    jmp 1b
idt0: .word 0
      .long 0
