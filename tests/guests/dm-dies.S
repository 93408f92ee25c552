/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Real mode: a register of the test server reads back, then the server is
 * told to die; afterwards its port reads all ones and the guest still runs.
 * Exit 0 if all is as expected, 1 + step otherwise.
 */
#include "guest.h"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov $TS_REGS, %dx
    mov $0x5a, %al
    out %al, %dx
    in %dx, %al
    cmp $0x5a, %al
    mov $1, %bl
    jne fail
    mov $TS_DIE, %dx
    out %al, %dx
    mov $TS_REGS, %dx
    in %dx, %al
    cmp $0xff, %al
    mov $2, %bl
    jne fail
    mov $msg, %si
    mov $DEBUGCON_PORT, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  xor %bl, %bl
fail:
    mov %bl, %al
    mov $DEBUG_EXIT_PORT, %dx
    out %al, %dx
3:  hlt
    jmp 3b
msg: .asciz "still running after the server died\n"
