/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PVH (ELF32): print the CPUID leaves the CPU model decides, one line each
 * in the format of `ferry-hv --print-cpuid` ("cpuid LEAF SUBLEAF EAX EBX
 * ECX EDX"), then try to switch the local APIC to x2APIC mode (IA32_APIC_BASE
 * EXTD): "x2apic mode on" if the write is taken, "x2apic mode refused: #GP"
 * if it faults (the CPUID has no x2apic).  Exit 0 either way.
 */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    lgdt gdt_desc
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* IDT gate 13 (#GP) -> gp_handler */
    mov $gp_handler, %eax
    mov %ax, idt + 13 * 8
    movw $0x08, idt + 13 * 8 + 2
    movw $0x8e00, idt + 13 * 8 + 4
    shr $16, %eax
    mov %ax, idt + 13 * 8 + 6
    lidt idt_desc
    mov $leaves, %ebx
2:  mov (%ebx), %eax
    cmp $0xffffffff, %eax
    je 3f
    mov 4(%ebx), %ecx
    call show_leaf
    add $8, %ebx
    jmp 2b
3:  mov $0x1b, %ecx         /* IA32_APIC_BASE: set EN and EXTD */
    rdmsr
    or $0xc00, %eax
    wrmsr
    mov $s_x2apic_on, %esi
    call puts
    xor %al, %al
    jmp exit32

gp_handler:
    mov $stack_top, %esp
    mov $s_x2apic_gp, %esi
    call puts
    xor %al, %al
    jmp exit32

/* show_leaf: cpuid(%eax, %ecx) as a line */
show_leaf:
    push %ebx
    mov $s_cpuid, %esi
    call puts
    call puthex32
    call space
    xchg %eax, %ecx
    call puthex32
    xchg %eax, %ecx
    cpuid
    call space
    call puthex32
    mov %ebx, %eax
    call space
    call puthex32
    mov %ecx, %eax
    call space
    call puthex32
    mov %edx, %eax
    call space
    call puthex32
    mov $'\n', %al
    call putc
    pop %ebx
    ret
space:
    push %eax
    mov $' ', %al
    call putc
    pop %eax
    ret

#include "lib32.inc"
s_cpuid:    .asciz "cpuid "
s_x2apic_on: .asciz "x2apic mode on\n"
s_x2apic_gp: .asciz "x2apic mode refused: #GP\n"
    .p2align 2
leaves:
    .long 1, 0, 6, 0, 7, 0, 7, 1, 0xd, 0, 0xd, 1, 0xd, 2, 0xd, 5, 0xd, 6, 0xd, 7
    .long 0x80000001, 0, 0x80000007, 0, 0x80000008, 0
    .long 0xffffffff, 0
    .p2align 3
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff    /* 0x08: code, flat 32-bit */
    .quad 0x00cf93000000ffff    /* 0x10: data, flat */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 32 * 8 - 1
    .long idt
    .bss
    .p2align 3
idt:
    .skip 32 * 8
    .p2align 4
    .skip 4096
stack_top:
