/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PVH (ELF32): check hvm_start_info (magic, version), then print the memory
 * map ("memmap ADDR SIZE TYPE"), the command line, the module count and
 * each module's text and command line, rsdp_paddr and the RSDP's signature and OEM id.  Exit 0
 * if the magic and version are right, 1 otherwise.
 */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    cmpl $0x336ec578, (%ebx)
    jne bad
    cmpl $1, 4(%ebx)
    jb bad
    mov $s_magic, %esi
    call puts
    /* memmap: paddr at +0x28, entries at +0x30, 24 bytes each */
    mov 0x28(%ebx), %edi
    mov 0x30(%ebx), %ecx
    test %ecx, %ecx
    jz 3f
1:  mov $s_memmap, %esi
    call puts
    mov 4(%edi), %eax
    call puthex32
    mov 0(%edi), %eax
    call puthex32
    mov $' ', %al
    call putc
    mov 12(%edi), %eax
    call puthex32
    mov 8(%edi), %eax
    call puthex32
    mov $' ', %al
    call putc
    mov 16(%edi), %eax
    add $'0', %al
    call putc
    mov $'\n', %al
    call putc
    add $24, %edi
    loop 1b
3:  mov $s_cmdline, %esi
    call puts
    mov 0x18(%ebx), %esi    /* cmdline_paddr (low half) */
    test %esi, %esi
    jz 4f
    call puts
4:  mov $'\n', %al
    call putc
    /* modules: count at +0x0c, list at +0x10; each one's text and cmdline */
    mov $s_modules, %esi
    call puts
    mov 0x0c(%ebx), %eax
    call puthex32
    mov $'\n', %al
    call putc
    mov 0x0c(%ebx), %ecx
    test %ecx, %ecx
    jz 5f
    mov 0x10(%ebx), %edi        /* hvm_modlist_entry: paddr, size, cmdline, 32 bytes */
8:  mov $s_module, %esi
    call puts
    mov (%edi), %esi
    call puts                   /* the test's modules are NUL-terminated lines */
    mov 16(%edi), %esi
    test %esi, %esi
    jz 9f
    push %esi
    mov $s_modcmd, %esi
    call puts
    pop %esi
    call puts
    mov $'\n', %al
    call putc
9:  add $32, %edi
    loop 8b
5:  mov $s_rsdp, %esi
    call puts
    mov 0x20(%ebx), %eax
    call puthex32
    mov $'\n', %al
    call putc
    /* the RSDP's signature and OEM id: 14 characters */
    mov 0x20(%ebx), %edi
    test %edi, %edi
    jz 7f
    mov $s_rsdp_sig, %esi
    call puts
    mov $14, %ecx
6:  mov (%edi), %al
    call putc
    inc %edi
    loop 6b
    mov $'\n', %al
    call putc
7:
    xor %al, %al
    jmp exit32
bad:
    mov $s_bad, %esi
    call puts
    mov $1, %al
    jmp exit32

#include "lib32.inc"
s_magic:   .asciz "start info magic ok\n"
s_memmap:  .asciz "memmap "
s_cmdline: .asciz "cmdline: "
s_rsdp:    .asciz "rsdp "
s_modules: .asciz "modules "
s_rsdp_sig: .asciz "rsdp sig: "
s_module:  .asciz "module: "
s_modcmd:  .asciz "module cmdline: "
s_bad:     .asciz "FAIL bad hvm_start_info\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
