/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Several vCPUs (ELF32 PVH).  The boot vCPU wakes the others with
 * INIT-SIPI-SIPI through its LAPIC (vector 8: they start in real mode at
 * 0x8000); each reads its APIC ID and writes ID + 0x40 to the test
 * server's register TS_REGS + ID (an ioreq from its own vCPU), then counts
 * itself in.  The boot vCPU waits for all (the number is the first
 * character of the command line), reads the registers back and exits 0
 * (1 on a wrong value).
 */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    mov 0x18(%ebx), %esi            /* cmdline: "N" */
    movzbl (%esi), %edi
    sub $'0', %edi                  /* %edi = vCPUs */
    mov $LAPIC_BASE, %ebx
    movl $0x1ff, 0xf0(%ebx)
    movl $0, 0x310(%ebx)
    movl $0x000c4500, 0x300(%ebx)   /* INIT, all excluding self */
    call delay
    movl $0x000c4608, 0x300(%ebx)   /* SIPI vector 8 */
    call delay
    movl $0x000c4608, 0x300(%ebx)
    mov %edi, %ecx
    dec %ecx
1:  pause
    cmpw %cx, ap_count
    jb 1b
    /* every AP's register */
    mov $1, %ecx
2:  cmp %edi, %ecx
    jae 3f
    lea TS_REGS(%ecx), %edx
    in %dx, %al
    lea 0x40(%ecx), %ebx
    cmp %bl, %al
    jne bad
    inc %ecx
    jmp 2b
3:  mov $s_up, %esi
    call puts
    mov %edi, %eax
    call puthex32
    mov $'\n', %al
    call putc
    xor %al, %al
    jmp exit32
bad:
    mov $s_bad, %esi
    call puts
    mov $1, %al
    jmp exit32
delay:
    push %ecx
    mov $20000, %ecx
1:  pause
    loop 1b
    pop %ecx
    ret

#include "lib32.inc"
s_up:  .asciz "smp: vcpus up: "
s_bad: .asciz "FAIL smp: an AP register has the wrong value\n"

    .section .realmode, "ax"
    .code16
ap_start:
    cli
    ljmp $0, $1f
1:  xor %ax, %ax
    mov %ax, %ds
    mov $1, %eax
    cpuid
    shr $24, %ebx
    lea TS_REGS(%bx), %dx
    lea 0x40(%bx), %ax
    out %al, %dx
    lock incw ap_count
2:  cli
    hlt
    jmp 2b
    .p2align 2
ap_count: .word 0

    .bss
    .p2align 4
    .skip 4096
stack_top:
