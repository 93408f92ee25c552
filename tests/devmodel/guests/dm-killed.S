/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm dies under a running guest: the guest polls COM1's LSR (served
 * by ferry-dm) until it reads all ones (nobody decodes the port any more),
 * then reports on ferry-hv's own debug console and exits 0 through
 * ferry-hv's debug exit port.  The test kills ferry-dm once it has read
 * "waiting".
 */
#include "guest.h"
#include "pvh.inc"
#include "dm-guest.h"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    mov $(COM1 + 5), %dx
    in %dx, %al
    cmp $0x60, %al                  /* ferry-dm's UART first */
    jne bad
    mov $s_wait, %esi
    call puts
1:  mov $(COM1 + 5), %dx
    in %dx, %al
    cmp $0xff, %al
    jne 1b
    mov $s_gone, %esi
    call puts
    xor %al, %al
    jmp exit32
bad:
    mov $s_bad, %esi
    call puts
    mov $1, %al
    jmp exit32
#include "lib32.inc"
    .section .rodata
s_wait: .asciz "waiting for ferry-dm to go away\n"
s_gone: .asciz "COM1 floats (LSR 0xff): the device model is gone, the guest runs on\n"
s_bad:  .asciz "FAIL COM1 is not ferry-dm's UART\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
