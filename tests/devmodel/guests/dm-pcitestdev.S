/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's pci-testdev (QEMU's 1b36:0005 layout), 64-bit, driven the way
 * kvm-unit-tests' lib/pci-testdev.c drives it: the function at 00:06 gets
 * its memory BAR0 and I/O BAR1, then for each BAR test n = 0, 1, ... is
 * selected by a byte write at +0, must start with count 0 and width 1, and
 * takes 16 byte writes of its data at its offset, after which count must
 * be 16; the test's name (at +16) is printed.  The fourth selection of a
 * BAR selects nothing (width 0), which ends that BAR's list: 3 + 3 tests.
 * Exit 0 through ferry-dm's debug exit, 1 on FAIL.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define TEST_DEV    6
#define CFG(reg)    (0x80000000 | (TEST_DEV << 11) | (reg))
#define QEMU_TEST_ID 0x00051b36

    .code64
main64:
    mov $CFG(0), %edi
    call cfg_read
    CHECK pci-testdev-id, $QEMU_TEST_ID
    mov $CFG(0x10), %edi
    mov $GUEST_MEM_BAR, %esi
    call cfg_write
    mov $CFG(0x14), %edi
    mov $GUEST_IO_BAR, %esi
    call cfg_write
    mov $CFG(0x04), %edi        /* command: memory and I/O decoding */
    mov $0x0003, %esi
    call cfg_write

    xor %r14d, %r14d            /* tests passed */
    xor %r13d, %r13d            /* 0: BAR0 (memory), 1: BAR1 (I/O) */
bar_loop:
    xor %r12d, %r12d            /* test number */
test_loop:
    xor %edi, %edi              /* select test %r12 */
    mov %r12d, %esi
    call bar_wr8
    mov $12, %edi
    call bar_rd32
    test %eax, %eax
    jnz next_bar
    mov $1, %edi
    call bar_rd32
    movzbl %al, %eax
    cmp $1, %eax                /* width */
    jne next_bar
    mov $8, %edi
    call bar_rd32
    mov %eax, %ebp              /* data */
    mov $4, %edi
    call bar_rd32
    mov %eax, %r15d             /* offset */
    mov $16, %ecx
1:  mov %r15d, %edi
    mov %ebp, %esi
    push %rcx
    call bar_wr8
    pop %rcx
    loop 1b
    mov $12, %edi
    call bar_rd32
    cmp $16, %eax
    jne fail
    lea s_ok(%rip), %rsi
    call puts64
    mov $16, %ebx               /* the name */
2:  mov %ebx, %edi
    call bar_rd32
    test %al, %al
    jz 3f
    call putc64
    inc %ebx
    cmp $64, %ebx
    jb 2b
3:  mov $'\n', %al
    call putc64
    inc %r14d
    inc %r12d
    jmp test_loop
next_bar:
    inc %r13d
    cmp $2, %r13d
    jb bar_loop
    mov %r14, %rax
    CHECK pci-testdev-tests, $6

    lea s_done(%rip), %rsi
    call puts64
    xor %al, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
4:  hlt
    jmp 4b
fail:
    lea s_fail(%rip), %rsi
    call puts64
    mov $1, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
    jmp 4b

/* bar_rd32: the dword at offset %edi of BAR %r13 into %eax */
bar_rd32:
    push %rdx
    test %r13d, %r13d
    jnz 1f
    mov $GUEST_MEM_BAR, %edx
    add %edi, %edx
    mov (%rdx), %eax
    pop %rdx
    ret
1:  mov $GUEST_IO_BAR, %edx
    add %edi, %edx
    in %dx, %eax
    pop %rdx
    ret

/* bar_wr8: the byte %sil to offset %edi of BAR %r13 */
bar_wr8:
    push %rax
    push %rdx
    mov %esi, %eax
    test %r13d, %r13d
    jnz 1f
    mov $GUEST_MEM_BAR, %edx
    add %edi, %edx
    mov %al, (%rdx)
    jmp 2f
1:  mov $GUEST_IO_BAR, %edx
    add %edi, %edx
    out %al, %dx
2:  pop %rdx
    pop %rax
    ret

#include "pci64.inc"
#include "lib64.inc"
    .section .rodata
s_ok:   .asciz "ok pci-testdev "
s_done: .asciz "dm-pcitestdev: QEMU's pci-testdev protocol on both BARs\n"
s_fail: .asciz "FAIL dm-pcitestdev: a test did not count its 16 writes\n"
