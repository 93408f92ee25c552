/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reset through ferry-dm's 0xcf9 register: ferry-hv must end with "reboot". */
#include "guest.h"
#include "pvh.inc"
#include "dm-guest.h"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    call com1_init
    mov $s_go, %esi
    call com1_puts
    mov $RESET_CF9, %dx
    mov $0x02, %al
    out %al, %dx
    mov $0x06, %al
    out %al, %dx
    mov $100000, %ecx
1:  pause
    loop 1b
    mov $s_still, %esi
    call com1_puts
    mov $1, %al
    jmp dm_exit
#include "dm32.inc"
    .section .rodata
s_go:    .asciz "resetting through 0xcf9\n"
s_still: .asciz "FAIL still running after the reset\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
