/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multiboot (v1): check EAX = 0x2badb002, then print the info block: its
 * flags, mem_lower/mem_upper, the memory map ("memmap ADDR SIZE TYPE", as
 * pvh-info prints it), the command line, each module (start, size, whether
 * page-aligned, its string, its first line of text) and the loader's name.
 * Exit 0 if the magic is right, 1 otherwise.  Built as an ELF32 linked at
 * 4 MiB (as kvm-unit-tests' images are), or with MB_AOUT as a flat image
 * that the header's address fields (flag 16) describe.
 */
#include "guest.h"

#define MB_MAGIC 0x1badb002
#ifdef MB_AOUT
#define MB_FLAGS 0x00010003     /* page-align modules, memory info, address fields */
#else
#define MB_FLAGS 0x00000003
#endif

    .code32
    .text
    .globl _start
    .p2align 2
mb_header:
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT
    .long mb_header         /* header_addr */
    .long mb_header         /* load_addr: the header starts the image */
    .long _edata            /* load_end_addr */
    .long _end              /* bss_end_addr */
    .long _start            /* entry_addr */
#endif

_start:
    cli
    mov $stack_top, %esp
    cmp $0x2badb002, %eax
    jne bad
    mov %ebx, %ebp
    mov $s_magic, %esi
    call puts
    mov $s_flags, %esi
    mov 0(%ebp), %eax
    call put_field
    mov $s_lower, %esi
    mov 4(%ebp), %eax
    call put_field
    mov $s_upper, %esi
    mov 8(%ebp), %eax
    call put_field
    /* memory map: mmap_length at +44, mmap_addr at +48; entries: size, addr, len, type */
    mov 48(%ebp), %edi
    mov 44(%ebp), %ecx
    add %edi, %ecx
1:  cmp %ecx, %edi
    jae 3f
    mov $s_memmap, %esi
    call puts
    mov 8(%edi), %eax
    call puthex32
    mov 4(%edi), %eax
    call puthex32
    mov $' ', %al
    call putc
    mov 16(%edi), %eax
    call puthex32
    mov 12(%edi), %eax
    call puthex32
    mov $' ', %al
    call putc
    mov 20(%edi), %eax
    add $'0', %al
    call putc
    mov $'\n', %al
    call putc
    add (%edi), %edi
    add $4, %edi
    jmp 1b
3:  mov $s_cmdline, %esi
    call puts
    mov 16(%ebp), %esi
    call puts
    mov $'\n', %al
    call putc
    /* modules: mods_count at +20, mods_addr at +24; 16 bytes each */
    mov $s_modules, %esi
    mov 20(%ebp), %eax
    call put_field
    mov 20(%ebp), %ecx
    mov 24(%ebp), %edi
    test %ecx, %ecx
    jz 5f
4:  mov $s_module, %esi
    call puts
    mov 0(%edi), %eax
    call puthex32
    mov $' ', %al
    call putc
    mov 4(%edi), %eax
    sub 0(%edi), %eax
    call puthex32
    mov $s_aligned, %esi
    testl $0xfff, 0(%edi)
    jz 6f
    mov $s_unaligned, %esi
6:  call puts
    mov 8(%edi), %esi
    call puts
    mov $s_text, %esi
    call puts
    mov 0(%edi), %esi
    call putline
    add $16, %edi
    loop 4b
5:  mov $s_loader, %esi
    call puts
    mov 64(%ebp), %esi
    call puts
    mov $'\n', %al
    call putc
    xor %al, %al
    jmp exit32
bad:
    mov $s_bad, %esi
    call puts
    call puthex32
    mov $'\n', %al
    call putc
    mov $1, %al
    jmp exit32

/* put_field: label at %esi, value %eax, newline */
put_field:
    call puts
    call puthex32
    push %eax
    mov $'\n', %al
    call putc
    pop %eax
    ret

/* putline: the text at %esi up to its first newline (at most 80 bytes), then a newline */
putline:
    push %eax
    push %ecx
    mov $80, %ecx
1:  lodsb
    cmp $'\n', %al
    je 2f
    test %al, %al
    je 2f
    call putc
    loop 1b
2:  mov $'\n', %al
    call putc
    pop %ecx
    pop %eax
    ret

#include "lib32.inc"
s_magic:    .asciz "multiboot magic ok\n"
s_flags:    .asciz "flags "
s_lower:    .asciz "mem_lower "
s_upper:    .asciz "mem_upper "
s_memmap:   .asciz "memmap "
s_cmdline:  .asciz "cmdline: "
s_modules:  .asciz "modules "
s_module:   .asciz "module "
s_aligned:  .asciz " aligned string: "
s_unaligned: .asciz " UNALIGNED string: "
s_text:     .asciz "\n  text: "
s_loader:   .asciz "loader: "
s_bad:      .asciz "FAIL eax is "
    .data
    .long 0x600dda7a
    .bss
    .p2align 4
    .skip 4096
stack_top:
