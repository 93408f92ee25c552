/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PCI through ferry-dm: find the pci-test function by scanning bus 0,
 * size and program its BARs, enable decoding, use both BARs, move the I/O
 * BAR and check the old address stopped decoding.  Prints "ok ..." lines
 * on COM1; exits 0 through ferry-dm's debug port, or 1 with a FAIL line.
 */
#include "guest.h"
#include "pvh.inc"
#include "dm-guest.h"

    .macro EXPECT name:req, want:req
    .pushsection .rodata
9998: .asciz "\name"
    .popsection
    mov $9998b, %esi
    mov \want, %edx
    call expect
    .endm

    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    call com1_init
    xor %eax, %eax
    call pci_read
    EXPECT host-bridge, $0x12378086
    /* find 1234:fe01 */
    mov $(1 << 11), %ebx
1:  mov %ebx, %eax
    call pci_read
    cmp $PCI_TEST_ID, %eax
    je found
    add $(1 << 11), %ebx
    cmp $(32 << 11), %ebx
    jb 1b
    mov $s_notfound, %esi
    call com1_puts
    mov $1, %al
    jmp dm_exit
found:
    mov $s_found, %esi
    call com1_puts
    mov %ebx, %eax
    shr $11, %eax
    mov $2, %ecx
    call com1_hex
    mov $'\n', %al
    call com1_putc
    /* sizing */
    lea 0x10(%ebx), %eax
    mov $0xffffffff, %ecx
    call pci_write
    call pci_read
    EXPECT bar0-size, $0xfffffff1
    lea 0x14(%ebx), %eax
    mov $0xffffffff, %ecx
    call pci_write
    call pci_read
    EXPECT bar1-size, $0xfffff000
    /* program and enable */
    lea 0x10(%ebx), %eax
    mov $GUEST_IO_BAR, %ecx
    call pci_write
    lea 0x14(%ebx), %eax
    mov $GUEST_MEM_BAR, %ecx
    call pci_write
    lea 0x04(%ebx), %eax
    mov $0x0003, %ecx
    call pci_write
    mov $(GUEST_IO_BAR + 8), %dx
    in %dx, %eax
    EXPECT io-bar-magic, $PCI_TEST_MAGIC
    mov $GUEST_IO_BAR, %dx
    mov $0x12345678, %eax
    out %eax, %dx
    in %dx, %eax
    EXPECT io-bar-scratch, $0x12345678
    movl $0xcafebabe, GUEST_MEM_BAR + 0x10
    movl GUEST_MEM_BAR + 0x10, %eax
    EXPECT mem-bar-scratch, $0xcafebabe
    movb $0x5a, GUEST_MEM_BAR + 0xfff
    movzbl GUEST_MEM_BAR + 0xfff, %eax
    EXPECT mem-bar-last-byte, $0x5a
    /* move the I/O BAR */
    lea 0x10(%ebx), %eax
    mov $GUEST_IO_BAR2, %ecx
    call pci_write
    mov $(GUEST_IO_BAR2 + 8), %dx
    in %dx, %eax
    EXPECT moved-bar-magic, $PCI_TEST_MAGIC
    mov $(GUEST_IO_BAR + 8), %dx
    in %dx, %eax
    EXPECT old-bar-floats, $0xffffffff
    /* decoding off: the memory BAR reads all ones */
    lea 0x04(%ebx), %eax
    xor %ecx, %ecx
    call pci_write
    movl GUEST_MEM_BAR + 0x10, %eax
    EXPECT mem-bar-off, $0xffffffff
    /* nobody at 00:1f.7 */
    mov $((31 << 11) | (7 << 8)), %eax
    call pci_read
    EXPECT absent-function, $0xffffffff
    mov $s_done, %esi
    call com1_puts
    xor %al, %al
    jmp dm_exit

/* expect: %eax == %edx, name at %esi: prints ok/FAIL; FAIL exits 1 */
expect:
    push %esi
    cmp %edx, %eax
    jne 1f
    mov %esi, %edi
    mov $s_ok, %esi
    call com1_puts
    mov %edi, %esi
    call com1_puts
    mov $'\n', %al
    call com1_putc
    pop %esi
    ret
1:  mov %eax, %edi
    mov $s_fail, %esi
    call com1_puts
    pop %esi
    call com1_puts
    mov $s_got, %esi
    call com1_puts
    mov %edi, %eax
    mov $8, %ecx
    call com1_hex
    mov $'\n', %al
    call com1_putc
    mov $1, %al
    jmp dm_exit

#include "dm32.inc"
    .section .rodata
s_found:    .asciz "pci-test at 00:"
s_notfound: .asciz "FAIL no pci-test function on bus 0\n"
s_ok:       .asciz "ok "
s_fail:     .asciz "FAIL "
s_got:      .asciz " got "
s_done:     .asciz "pci done\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
