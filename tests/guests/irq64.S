/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * 64-bit: interrupts injected through an irqfd.  The test server holds an
 * irqfd for GSI TS_IRQ_GSI; each write to TS_IRQ makes it signal that
 * eventfd.  The guest routes IOAPIC pin TS_IRQ_GSI to vector TS_IRQ_VECTOR
 * on its LAPIC, asks for an interrupt, sleeps in hlt until the handler has
 * run, five times over.  Then twice the same with a line the server raises
 * and lowers through the router (IRQ_LINE, GSI TS_IRQ_LINE_GSI): the
 * handler lowers it before its EOI.  Exits 0, or 1 if an interrupt comes
 * unasked.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#define ROUNDS 5
    .code64
main64:
    call irq_setup64            /* PIC masked: the line reaches us through the IOAPIC */
    lea irq_handler(%rip), %rax
    mov $TS_IRQ_VECTOR, %edi
    call set_gate
    /* IOAPIC pins -> vectors, fixed, edge, unmasked, to APIC 0 */
    mov $TS_IRQ_GSI, %edi
    mov $TS_IRQ_VECTOR, %esi
    call ioapic_route64
    mov $TS_IRQ_LINE_GSI, %edi
    mov $TS_IRQ_LINE_VECTOR, %esi
    call ioapic_route64
    lea line_handler(%rip), %rax
    mov $TS_IRQ_LINE_VECTOR, %edi
    call set_gate

    xor %r12d, %r12d            /* rounds asked */
1:  cmp $ROUNDS, %r12d
    je done
    inc %r12d
    mov $TS_IRQ, %dx
    out %al, %dx
2:  cli
    cmp %r12d, irq_count(%rip)
    je 3f
    sti
    hlt
    jmp 2b
3:  lea s_irq(%rip), %rsi
    call puts64
    mov %r12, %rax
    call puthex64
    mov $'\n', %al
    call putc64
    jmp 1b
done:
    mov irq_count(%rip), %eax
    CHECK irq-count, $ROUNDS

    xor %r12d, %r12d
1:  cmp $2, %r12d
    je 4f
    inc %r12d
    mov $TS_IRQ_LINE, %dx
    mov $1, %al
    out %al, %dx
2:  cli
    cmp %r12d, line_count(%rip)
    je 3f
    sti
    hlt
    jmp 2b
3:  lea s_line(%rip), %rsi
    call puts64
    mov %r12, %rax
    call puthex64
    mov $'\n', %al
    call putc64
    jmp 1b
4:  mov line_count(%rip), %eax
    CHECK irq-line-count, $2
    xor %al, %al
    jmp exit64

line_handler:
    push %rax
    push %rdx
    incl line_count(%rip)
    mov $TS_IRQ_LINE, %dx
    xor %al, %al
    out %al, %dx                /* lower the line before the EOI */
    call lapic_eoi64
    pop %rdx
    pop %rax
    iretq

irq_handler:
    push %rax
    incl irq_count(%rip)
    mov irq_count(%rip), %eax
    cmp %r12d, %eax
    jbe 1f
    lea s_unasked(%rip), %rsi
    call puts64
    mov $1, %al
    jmp exit64
1:  call lapic_eoi64
    pop %rax
    iretq

#include "lib64.inc"
    .section .rodata
s_irq:     .asciz "interrupt "
s_line:    .asciz "line interrupt "
s_unasked: .asciz "FAIL an interrupt nobody asked for\n"
    .data
    .p2align 2
irq_count: .long 0
line_count: .long 0
