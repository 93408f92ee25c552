/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * 64-bit: memory at the top of a big guest, every way a guest or device
 * model can first touch a GiB that ferry-hv registers on demand:
 *   G1 (top GiB)  first touch a load (reads zero), then stores, last qword
 *   G2            first touch rep stosq, then rep movsb out and compare
 *   G3            a page directory written there maps a virtual window
 *                 onto G1; loads and stores through it
 *   G4            first written by the test server (DMA through the memfd),
 *                 then read by the guest
 *   G5            written by the guest, summed by the test server
 *   GiB 2         code copied there by the test server, first touched by
 *                 the guest's instruction fetch when it calls it
 * Needs at least 5 GiB of RAM above 4 GiB.  Exits 0, or 1 on a mismatch.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#define GIB (1 << 30)
#define WINDOW_GIB 300
    .code64
main64:
    /* top of RAM = end of the highest RAM entry of the memmap */
    mov 0x28(%r15), %rsi
    mov 0x30(%r15), %ecx
    xor %r14, %r14
1:  cmpl $1, 16(%rsi)
    jne 2f
    mov (%rsi), %rax
    add 8(%rsi), %rax
    cmp %r14, %rax
    jbe 2f
    mov %rax, %r14
2:  add $24, %rsi
    loop 1b
    lea s_top(%rip), %rsi
    call puts64
    mov %r14, %rax
    call puthex64
    mov $'\n', %al
    call putc64
    shr $30, %r14
    lea -1(%r14), %r13          /* %r13 = G1 */
    cmp $8, %r13                /* G5 = G1 - 4 must be >= 4 GiB */
    jae 1f
    lea s_small(%rip), %rsi
    call puts64
    mov $1, %al
    jmp exit64
1:
    /* G1: loads and stores */
    mov %r13, %rdi
    call map_gib
    mov %r13, %rbx
    shl $30, %rbx
    mov 0x123450(%rbx), %rax
    CHECK g1-first-load-zero, $0
    movabs $0x0123456789abcdef, %rax
    mov %rax, 0x123450(%rbx)
    mov %rax, GIB - 8(%rbx)
    movl $0x5a5aa5a5, (%rbx)
    mov 0x123450(%rbx), %rax
    movabs $0x0123456789abcdef, %rcx
    CHECK g1-store-load, %rcx
    mov GIB - 8(%rbx), %rax
    CHECK g1-last-qword, %rcx

    /* G2: string instructions */
    lea -1(%r13), %rdi
    call map_gib
    shl $30, %rdi
    mov %rdi, %rbx
    add $0x1000, %rdi
    mov $512, %ecx
    movabs $0xfeedfacecafebeef, %rax
    cld
    rep stosq
    lea 0x1000(%rbx), %rsi
    lea lowbuf(%rip), %rdi
    mov $4096, %ecx
    rep movsb
    lea lowbuf(%rip), %rdi
    mov $512, %ecx
    movabs $0xfeedfacecafebeef, %rax
    repe scasq
    mov %ecx, %eax
    CHECK g2-rep-stosq-movsb, $0
    /* and back: low -> a fresh page of G2 with rep movsq */
    lea lowbuf(%rip), %rsi
    lea 0x200000(%rbx), %rdi
    mov $512, %ecx
    rep movsq
    mov 0x200ff8(%rbx), %rax
    movabs $0xfeedfacecafebeef, %rcx
    CHECK g2-rep-movsq, %rcx

    /* G3: a page directory in late memory */
    lea -2(%r13), %rdi
    call map_gib
    shl $30, %rdi
    mov %rdi, %rbx              /* PD at the start of G3 */
    mov %r13, %rax
    shl $30, %rax
    or $0x83, %rax
    xor %ecx, %ecx
1:  mov %rax, (%rbx,%rcx,8)
    add $0x200000, %rax
    inc %ecx
    cmp $512, %ecx
    jb 1b
    lea pdpt(%rip), %rax
    mov %rbx, %rcx
    or $3, %rcx
    mov %rcx, WINDOW_GIB * 8(%rax)
    mov %cr3, %rax
    mov %rax, %cr3
    movabs $(WINDOW_GIB * GIB), %rdx
    mov 0x123450(%rdx), %rax
    movabs $0x0123456789abcdef, %rcx
    CHECK g3-window-load, %rcx
    movabs $0x7777666655554444, %rax
    mov %rax, 0x300000(%rdx)
    mov %r13, %rbx
    shl $30, %rbx
    mov 0x300000(%rbx), %rax
    movabs $0x7777666655554444, %rcx
    CHECK g3-window-store, %rcx

    /* G4: DMA by the device model, then guest loads */
    lea -3(%r13), %rdi
    call map_gib
    shl $30, %rdi
    lea 0x2000(%rdi), %rbx
    mov %ebx, %eax
    mov $TS_DMA_LO, %dx
    out %eax, %dx
    mov %rbx, %rax
    shr $32, %rax
    mov $TS_DMA_HI, %dx
    out %eax, %dx
    mov $TS_DMA_CMD, %dx
    mov $3, %eax
    out %eax, %dx               /* qword i = 3 * (i + 1) */
    mov 40(%rbx), %rax
    CHECK g4-dma-qword-5, $18
    xor %eax, %eax
    xor %ecx, %ecx
1:  add (%rbx,%rcx,8), %rax
    inc %ecx
    cmp $512, %ecx
    jb 1b
    CHECK g4-dma-sum, $(3 * 512 * 513 / 2)

    /* G5: guest writes, the device model reads */
    lea -4(%r13), %rdi
    call map_gib
    shl $30, %rdi
    lea 0x5000(%rdi), %rbx
    xor %ecx, %ecx
1:  lea 1(%rcx), %rax
    imul $5, %rax
    mov %rax, (%rbx,%rcx,8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    mov %ebx, %eax
    mov $TS_DMA_LO, %dx
    out %eax, %dx
    mov %rbx, %rax
    shr $32, %rax
    mov $TS_DMA_HI, %dx
    out %eax, %dx
    mov $TS_DMA_CMD, %dx
    in %dx, %eax
    CHECK g5-dma-read-sum, $(5 * 512 * 513 / 2)

    /* GiB 2: code placed by the device model, first touch a fetch */
    lea fetch_code(%rip), %rax
    mov $TS_DMA_SRC_LO, %dx
    out %eax, %dx
    shr $32, %rax
    mov $TS_DMA_SRC_HI, %dx
    out %eax, %dx
    mov $(2 * GIB + 0x7000), %eax
    mov $TS_DMA_LO, %dx
    out %eax, %dx
    xor %eax, %eax
    mov $TS_DMA_HI, %dx
    out %eax, %dx
    mov $TS_DMA_COPY, %dx
    out %eax, %dx
    mov $(2 * GIB + 0x7000), %eax
    call *%rax
    CHECK gib2-fetch-first-touch, $0x5eed

    lea s_done(%rip), %rsi
    call puts64
    xor %al, %al
    jmp exit64

#include "lib64.inc"
    .section .rodata
s_top:   .asciz "top of ram "
s_small: .asciz "FAIL need 5 GiB of RAM above 4 GiB\n"
s_done:  .asciz "himem64: all checks passed\n"
    .data
    .p2align 12
fetch_code:
    mov $0x5eed, %eax
    ret
    .p2align 12
    .bss
    .p2align 12
lowbuf: .skip 4096
