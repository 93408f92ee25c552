/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A UART round trip with interrupts, 64-bit: COM1 is ferry-dm's 16550A
 * with its input and output on a unix socket the test talks to.  The
 * guest routes IOAPIC pin 4 to a vector, enables the receive interrupt and
 * sleeps in hlt; the handler drains the FIFO.  Once a line has arrived it
 * answers "PONG <line>" one byte per THRE interrupt, then exits 0 through
 * ferry-dm's debug exit port (1 on a FAIL).
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define UART_VECTOR 0x34
#define LINE_MAX    64
    .code64
main64:
    call irq_setup64            /* PIC masked: the IOAPIC delivers */
    lea uart_irq(%rip), %rax
    mov $UART_VECTOR, %edi
    call set_gate
    mov $COM1_IRQ, %edi
    mov $UART_VECTOR, %esi                  /* fixed, edge, active high, unmasked */
    call ioapic_route64
    /* 8N1, FIFO with trigger level 1, DTR|RTS|OUT2, receive interrupt on */
    mov $(COM1 + 3), %dx
    mov $0x03, %al
    out %al, %dx
    mov $(COM1 + 2), %dx
    mov $0x07, %al
    out %al, %dx
    mov $(COM1 + 4), %dx
    mov $0x0b, %al
    out %al, %dx
    mov $(COM1 + 1), %dx
    mov $0x01, %al
    out %al, %dx
    lea s_ready(%rip), %rsi
    call puts64
    /* sleep until a whole line is in */
1:  cli
    cmpb $0, line_done(%rip)
    jne 2f
    sti
    hlt
    jmp 1b
2:  sti
    /* answer with THRE interrupts: one byte per interrupt */
    lea s_pong(%rip), %rsi
    call tx_string
    lea line(%rip), %rsi
    call tx_string
    lea s_nl(%rip), %rsi
    call tx_string
    mov rx_irqs(%rip), %eax
    test %eax, %eax
    jz fail
    mov tx_irqs(%rip), %eax
    cmp $6, %eax
    jb fail
    lea s_done(%rip), %rsi
    call puts64
    xor %al, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
3:  hlt
    jmp 3b
fail:
    lea s_fail(%rip), %rsi
    call puts64
    mov $1, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
    jmp 3b

/* tx_string: send the NUL-terminated string at %rsi, each byte after a THRE interrupt */
tx_string:
    push %rax
    push %rdx
    movb $0, thre(%rip)
    mov $(COM1 + 1), %dx
    mov $0x03, %al              /* RDI | THRI: THR is empty, so a THRE interrupt comes */
    out %al, %dx
1:  cli
    cmpb $0, thre(%rip)
    jne 2f
    sti
    hlt
    jmp 1b
2:  sti
    lodsb
    test %al, %al
    jz 3f
    movb $0, thre(%rip)
    mov $COM1, %dx
    out %al, %dx
    jmp 1b
3:  mov $(COM1 + 1), %dx
    mov $0x01, %al
    out %al, %dx
    pop %rdx
    pop %rax
    ret

uart_irq:
    push %rax
    push %rbx
    push %rdx
1:  mov $(COM1 + 2), %dx
    in %dx, %al                 /* IIR */
    test $1, %al
    jnz 9f
    and $0x0e, %al
    cmp $0x02, %al
    je 5f
    cmp $0x06, %al
    je 6f
    cmp $0x00, %al
    je 7f
    /* data (0x04) or time-out (0x0c): drain */
    incl rx_irqs(%rip)
2:  mov $(COM1 + 5), %dx
    in %dx, %al
    test $1, %al
    jz 1b
    mov $COM1, %dx
    in %dx, %al
    cmp $'\n', %al
    je 3f
    cmp $'\r', %al
    je 2b
    mov line_len(%rip), %ebx
    cmp $(LINE_MAX - 1), %ebx
    jae 2b
    lea line(%rip), %rdx
    mov %al, (%rdx,%rbx)
    incl line_len(%rip)
    jmp 2b
3:  movb $1, line_done(%rip)
    jmp 2b
5:  incl tx_irqs(%rip)           /* THRE, acknowledged by the IIR read */
    movb $1, thre(%rip)
    jmp 1b
6:  mov $(COM1 + 5), %dx         /* line status */
    in %dx, %al
    jmp 1b
7:  mov $(COM1 + 6), %dx         /* modem status */
    in %dx, %al
    jmp 1b
9:  call lapic_eoi64
    pop %rdx
    pop %rbx
    pop %rax
    iretq

#include "lib64.inc"
    .section .rodata
s_ready: .asciz "dm-uart: waiting for a line on COM1\n"
s_pong:  .asciz "PONG "
s_nl:    .asciz "\n"
s_done:  .asciz "dm-uart: answered with THRE interrupts\n"
s_fail:  .asciz "FAIL dm-uart: interrupts missing\n"
    .data
    .p2align 2
rx_irqs:   .long 0
tx_irqs:   .long 0
line_len:  .long 0
thre:      .byte 0
line_done: .byte 0
line:      .skip LINE_MAX
