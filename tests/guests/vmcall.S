/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Real mode: say so, then vmcall forever.  On this KVM a vmcall spins in
 * the kernel until a signal: ferry-hv must still stop cleanly (SIGTERM).
 */
#include "guest.h"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov $msg, %si
    mov $DEBUGCON_PORT, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  vmcall
    jmp 2b
msg: .asciz "entering vmcall\n"
