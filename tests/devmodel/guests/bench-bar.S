/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest of bench/qemu-bar-rtt: BAR register reads of a device hosted
 * by ferry-dm itself (pci-test) and of one hosted by a stock QEMU behind
 * ferry-dm (RTL8139, ferry-dm's qemu device), timed by the bench.
 *
 * It asks the bench (in-process ports of ferry-hv, bench-bar.h) for N
 * reads per block and R rounds, finds 1234:fe01 and 10ec:8139 by a config
 * scan of bus 0 and programs their BARs (BB_DM_*, BB_QEMU_*) with I/O and
 * memory decoding on, writes BB_MAC_LO into pci-test's memory scratch, and
 * then runs R rounds of one block per kind (bench-bar.h): a marker write
 * (the kind) to BB_PORT_MARK, N reads of that kind's register, each
 * checked against its value.  The order of the kinds rotates from round to
 * round; a marker of 0 ends each round.  The bench takes the time at each
 * marker, so nothing but the reads (and one in-process exit per block) is
 * timed.  Success exits 0 through ferry-hv's debug exit; a failure prints
 * a FAIL line on the debug console and exits 1.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#include "bench-bar.h"
#define RTL_ID      0x813910ec
    .code64
main64:
    mov $BB_PORT_READS, %dx
    in %dx, %eax
    mov %eax, %r13d             /* N */
    mov $BB_PORT_ROUNDS, %dx
    in %dx, %eax
    mov %eax, %r14d             /* R */
    lea s_params(%rip), %rsi
    test %r13d, %r13d
    jz fail
    test %r14d, %r14d
    jz fail

    /* Bus 0: program pci-test and the RTL8139; %ebp collects what was found */
    xor %ebp, %ebp
    mov $(0x80000000 | (1 << 11)), %r12d
1:  mov %r12d, %edi
    call cfg_read
    cmp $PCI_TEST_ID, %eax
    jne 2f
    mov $BB_DM_IO, %eax
    mov $BB_DM_MEM, %ebx
    call program
    or $1, %ebp
2:  cmp $RTL_ID, %eax
    jne 3f
    mov $BB_QEMU_IO, %eax
    mov $BB_QEMU_MEM, %ebx
    call program
    or $2, %ebp
3:  add $(1 << 11), %r12d
    cmp $(0x80000000 | (32 << 11)), %r12d
    jb 1b
    lea s_no_dm(%rip), %rsi
    test $1, %ebp
    jz fail
    lea s_no_qemu(%rip), %rsi
    test $2, %ebp
    jz fail
    mov $BB_DM_MEM, %ebx
    movl $BB_MAC_LO, (%rbx)

    /* R rounds; block j of round r is kind (j + r) % BB_KINDS + 1 */
    xor %r15d, %r15d            /* r */
4:  xor %r12d, %r12d            /* j */
5:  mov %r12d, %eax
    add %r15d, %eax
    xor %edx, %edx
    mov $BB_KINDS, %ecx
    div %ecx
    lea 1(%rdx), %edi           /* kind */
    call block
    inc %r12d
    cmp $BB_KINDS, %r12d
    jb 5b
    xor %eax, %eax
    mov $BB_PORT_MARK, %dx
    out %eax, %dx
    inc %r15d
    cmp %r14d, %r15d
    jb 4b
    xor %al, %al
    jmp exit64

/* program: BAR0 = %eax (I/O), BAR1 = %ebx (memory), I/O + memory on, for CF8 %r12d */
program:
    push %rax
    lea 0x10(%r12), %edi
    mov %eax, %esi
    call cfg_write
    lea 0x14(%r12), %edi
    mov %ebx, %esi
    call cfg_write
    lea 0x04(%r12), %edi
    mov $0x0003, %esi
    call cfg_write
    pop %rax
    ret

/* block: the marker, then N reads of kind %edi (1..BB_KINDS), each checked */
block:
    mov %edi, %eax
    mov $BB_PORT_MARK, %dx
    out %eax, %dx
    lea -1(%rdi), %eax
    shl $4, %eax
    lea kinds(%rip), %rsi
    add %rax, %rsi
    mov (%rsi), %rbx            /* port or address */
    mov 12(%rsi), %r8d          /* the value */
    mov %r13d, %ecx
    cmpl $0, 8(%rsi)
    jne 2f
    mov %ebx, %edx
1:  in %dx, %eax
    cmp %r8d, %eax
    jne bad_read
    dec %ecx
    jnz 1b
    ret
2:  mov (%rbx), %eax
    cmp %r8d, %eax
    jne bad_read
    dec %ecx
    jnz 2b
    ret

/* bad_read: kind %edi read %eax */
bad_read:
    push %rax
    lea s_bad1(%rip), %rsi
    call puts64
    mov %edi, %eax
    call puthex64
    lea s_bad2(%rip), %rsi
    call puts64
    pop %rax
    call puthex64
    mov $'\n', %al
    call putc64
    mov $1, %al
    jmp exit64

/* fail: print the FAIL line at %rsi, exit 1 */
fail:
    call puts64
    mov $1, %al
    jmp exit64

#include "pci64.inc"
#include "lib64.inc"
    .section .rodata
    .p2align 4
/* per kind: .quad port or address; .long 0 port / 1 memory; .long value */
kinds:
    .quad BB_PORT_FLOOR
    .long 0, BB_FLOOR_VALUE
    .quad BB_DM_IO + 8
    .long 0, PCI_TEST_MAGIC
    .quad BB_DM_MEM
    .long 1, BB_MAC_LO
    .quad BB_QEMU_IO
    .long 0, BB_MAC_LO
    .quad BB_QEMU_MEM
    .long 1, BB_MAC_LO
s_params:  .asciz "FAIL bench-bar: the bench gave 0 reads or 0 rounds\n"
s_no_dm:   .asciz "FAIL bench-bar: no 1234:fe01 (ferry-dm's pci-test) on bus 0\n"
s_no_qemu: .asciz "FAIL bench-bar: no 10ec:8139 (ferry-dm's qemu device) on bus 0\n"
s_bad1:    .asciz "FAIL bench-bar: a read of kind "
s_bad2:    .asciz " gave "
