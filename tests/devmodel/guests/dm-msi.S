/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MSI end to end, 64-bit: the guest programs the MSI capability of
 * ferry-dm's pci-test function at 00:05 (address 0xfee00000, APIC 0, a
 * fixed vector), enables I/O decoding and bus mastering, and asks the
 * device for vector 0 through BAR0 + 4.  ferry-dm sends the message to
 * ferry-hv, which injects it through the LAPIC; the handler counts it.
 * Then the vector is masked (nothing may arrive) and unmasked (the pending
 * message must arrive).  Exit 0 through ferry-dm's debug exit, 1 on FAIL.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define MSI_VECTOR  0x51
#define TEST_DEV    5
#define CFG(reg)    (0x80000000 | (TEST_DEV << 11) | (reg))
    .code64
main64:
    call irq_setup64            /* PIC masked: only the LAPIC delivers */
    lea msi_irq(%rip), %rax
    mov $MSI_VECTOR, %edi
    call set_gate
    sti

    mov $CFG(0), %edi
    call cfg_read
    cmp $PCI_TEST_ID, %eax
    jne fail
    mov $CFG(0x34), %edi        /* capability pointer: the MSI capability */
    call cfg_read
    movzbl %al, %r12d
    lea CFG(0)(%r12), %edi
    call cfg_read
    cmp $0x05, %al
    jne fail
    mov $CFG(0x10), %edi        /* BAR0 */
    mov $GUEST_IO_BAR, %esi
    call cfg_write
    lea CFG(4)(%r12), %edi      /* message address */
    mov $0xfee00000, %esi
    call cfg_write
    lea CFG(8)(%r12), %edi
    xor %esi, %esi
    call cfg_write
    lea CFG(12)(%r12), %edi     /* message data: fixed delivery, edge */
    mov $MSI_VECTOR, %esi
    call cfg_write
    lea CFG(0)(%r12), %edi      /* control (bits 16..31 of the first dword): enable */
    call cfg_read
    or $0x10000, %eax
    mov %eax, %esi
    call cfg_write
    mov $CFG(0x04), %edi        /* command: I/O decoding and bus mastering */
    mov $0x0005, %esi
    call cfg_write

    mov $(GUEST_IO_BAR + 4), %dx   /* signal vector 0 */
    mov $2, %eax
    out %eax, %dx
    mov $1, %edi
    call wait_count
    lea s_one(%rip), %rsi
    call puts64

    lea CFG(16)(%r12), %edi     /* mask bits: vector 0 masked */
    mov $1, %esi
    call cfg_write
    mov $(GUEST_IO_BAR + 4), %dx
    mov $2, %eax
    out %eax, %dx
    mov $2000000, %ecx          /* a while with interrupts on: nothing may come */
1:  pause
    loop 1b
    cmpl $1, msi_count(%rip)
    jne fail
    lea CFG(16)(%r12), %edi     /* unmask: the pending message is sent now */
    xor %esi, %esi
    call cfg_write
    mov $2, %edi
    call wait_count
    lea s_done(%rip), %rsi
    call puts64
    xor %al, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
2:  hlt
    jmp 2b
fail:
    lea s_fail(%rip), %rsi
    call puts64
    mov $1, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
    jmp 2b

/* wait_count: spin (interrupts on) until msi_count reaches %edi, else FAIL */
wait_count:
    mov $200000000, %ecx
1:  cmp msi_count(%rip), %edi
    jbe 2f
    pause
    dec %ecx
    jnz 1b
    jmp fail
2:  ret

#include "pci64.inc"

msi_irq:
    incl msi_count(%rip)
    call lapic_eoi64
    iretq

#include "lib64.inc"
    .section .rodata
s_one:  .asciz "dm-msi: MSI vector 0x51 arrived through the LAPIC\n"
s_done: .asciz "dm-msi: masked message held, delivered on unmask\n"
s_fail: .asciz "FAIL dm-msi\n"
    .data
    .p2align 2
msi_count: .long 0
