/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Real mode at 0000:7c00: print a line on the debug console, exit with 7. */
#include "guest.h"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $msg, %si
    mov $DEBUGCON_PORT, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $DEBUG_EXIT_PORT, %dx
    mov $7, %al
    out %al, %dx
3:  hlt
    jmp 3b
msg: .asciz "hello from real mode\n"
