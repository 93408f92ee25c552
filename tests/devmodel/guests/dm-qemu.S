/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A QEMU-emulated RTL8139 in a Ferry guest: ferry-dm's qemu device runs
 * the NIC in a stock QEMU process.  The guest finds 10ec:8139 by scanning
 * bus 0, programs its I/O BAR, enables decoding and prints the MAC from
 * the IDR registers.  Exits 0 through ferry-dm's debug port, 1 on a FAIL.
 */
#include "guest.h"
#include "pvh.inc"
#include "dm-guest.h"
#define RTL_ID      0x813910ec
#define RTL_IO_BAR  0xc400
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    call com1_init
    mov $(1 << 11), %ebx
1:  mov %ebx, %eax
    call pci_read
    cmp $RTL_ID, %eax
    je found
    add $(1 << 11), %ebx
    cmp $(32 << 11), %ebx
    jb 1b
    mov $s_none, %esi
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
    lea 0x10(%ebx), %eax
    mov $RTL_IO_BAR, %ecx
    call pci_write
    lea 0x04(%ebx), %eax
    mov $0x0001, %ecx
    call pci_write
    mov $s_mac, %esi
    call com1_puts
    mov $RTL_IO_BAR, %dx
    xor %edi, %edi
2:  in %dx, %al
    movzbl %al, %eax
    mov $2, %ecx
    call com1_hex
    inc %dx
    inc %edi
    cmp $6, %edi
    je 3f
    mov $':', %al
    call com1_putc
    jmp 2b
3:  mov $'\n', %al
    call com1_putc
    xor %al, %al
    jmp dm_exit
#include "dm32.inc"
    .section .rodata
s_found: .asciz "rtl8139 (in its own QEMU) at 00:"
s_mac:   .asciz "mac "
s_none:  .asciz "FAIL no 10ec:8139 on bus 0\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
