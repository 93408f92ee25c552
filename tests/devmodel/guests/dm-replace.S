/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm is replaced under a running guest: the guest streams 'a'..'z'
 * through COM1 (ferry-dm's UART, output to a file), and before each byte
 * writes the scratch register and reads it back and reads LSR.  A read of
 * all ones, or a scratch register that lost its value, is a FAIL.  The
 * test replaces ferry-dm again and again, then sends one byte on COM1's
 * input socket: the guest stops, reports how many bytes it sent on
 * ferry-hv's debug console and exits 0.
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
    xor %ebx, %ebx                  /* bytes sent */
    mov $'a', %cl
1:  mov $(COM1 + 7), %dx            /* scratch: write, read back */
    mov %bl, %al
    xor %cl, %al
    mov %al, %ch
    out %al, %dx
    in %dx, %al
    cmp %ch, %al
    jne bad_scr
    mov $(COM1 + 5), %dx
    in %dx, %al
    cmp $0xff, %al
    je bad_ones
    test $1, %al                    /* data ready: the test says stop */
    jnz done
    mov $COM1, %dx
    mov %cl, %al
    out %al, %dx
    inc %ebx
    inc %cl
    cmp $('z' + 1), %cl
    jne 1b
    mov $'a', %cl
    jmp 1b
done:
    mov $COM1, %dx
    in %dx, %al
    mov $s_sent, %esi
    call puts
    mov %ebx, %eax
    call puthex32
    mov $s_nl, %esi
    call puts
    xor %al, %al
    jmp exit32
bad_scr:
    mov $s_scr, %esi
    jmp 2f
bad_ones:
    mov $s_ones, %esi
    jmp 2f
bad:
    mov $s_bad, %esi
2:  call puts
    mov %ebx, %eax
    call puthex32
    mov $s_nl, %esi
    call puts
    mov $1, %al
    jmp exit32
#include "lib32.inc"
    .section .rodata
s_wait: .asciz "waiting: streaming through COM1\n"
s_sent: .asciz "sent 0x"
s_nl:   .asciz "\n"
s_scr:  .asciz "FAIL scratch register lost its value after byte 0x"
s_ones: .asciz "FAIL LSR read all ones after byte 0x"
s_bad:  .asciz "FAIL COM1 is not ferry-dm's UART 0x"
    .bss
    .p2align 4
    .skip 4096
stack_top:
