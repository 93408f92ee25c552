/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm is killed under a running guest and started afresh (by ferry-hv,
 * docs/ferry-dm.md "Crash restart"): the guest streams 'a'..'z' through
 * COM1 (output to a file).  It put 0x5a in the scratch register at start;
 * before each byte it reads the scratch register and LSR.  A read of all
 * ones is a FAIL (vCPUs wait for the restarted ferry-dm); a scratch register
 * that no longer holds 0x5a is a device reset, counted, and the guest puts
 * 0x5a back.  One byte on COM1's input ends it: it reports the bytes sent
 * and the resets seen on ferry-hv's debug console and exits 0.
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
    mov $(COM1 + 7), %dx
    mov $0x5a, %al
    out %al, %dx
    mov $s_wait, %esi
    call puts
    xor %ebx, %ebx                  /* bytes sent */
    xor %edi, %edi                  /* resets seen */
    mov $'a', %cl
1:  mov $(COM1 + 7), %dx
    in %dx, %al
    cmp $0x5a, %al
    je 2f
    cmp $0xff, %al
    je bad_ones
    inc %edi                        /* a UART that forgot: ferry-dm started afresh */
    mov $0x5a, %al
    out %al, %dx
2:  mov $(COM1 + 5), %dx
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
    mov $s_resets, %esi
    call puts
    mov %edi, %eax
    call puthex32
    mov $s_nl, %esi
    call puts
    xor %al, %al
    jmp exit32
bad_ones:
    mov $s_ones, %esi
    jmp 3f
bad:
    mov $s_bad, %esi
3:  call puts
    mov %ebx, %eax
    call puthex32
    mov $s_nl, %esi
    call puts
    mov $1, %al
    jmp exit32
#include "lib32.inc"
    .section .rodata
s_wait:   .asciz "waiting: streaming through COM1\n"
s_sent:   .asciz "sent 0x"
s_resets: .asciz " resets 0x"
s_nl:     .asciz "\n"
s_ones:   .asciz "FAIL COM1 read all ones after byte 0x"
s_bad:    .asciz "FAIL COM1 is not ferry-dm's UART 0x"
    .bss
    .p2align 4
    .skip 4096
stack_top:
