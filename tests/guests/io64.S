/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * 64-bit: every access width through the test server: port I/O 1/2/4,
 * string I/O (rep outs/ins, several widths), MMIO 1/2/4/8 to a claimed
 * range, an unclaimed port and MMIO range (all ones, writes dropped),
 * posted writes to a buffered range, PCI config through CF8/CFC and ECAM.
 * Each check prints "ok NAME"; the first failure prints "FAIL ..." and
 * exits 1.  At the end the guest asks the test server for a power-off with
 * code 42, so ferry-hv's status 42 also proves the server's shutdown path.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
    .code64
main64:
    /* Port I/O, widths 1, 2, 4 */
    mov $TS_REGS, %dx
    mov $0x11, %al
    out %al, %dx
    add $2, %dx
    mov $0x2233, %ax
    out %ax, %dx
    add $2, %dx
    mov $0x44556677, %eax
    out %eax, %dx
    mov $TS_REGS, %dx
    xor %eax, %eax
    in %dx, %eax
    CHECK pio-dword-0, $0x22330011
    mov $TS_REGS + 4, %dx
    in %dx, %eax
    CHECK pio-dword-4, $0x44556677
    mov $TS_REGS + 5, %dx
    xor %eax, %eax
    in %dx, %ax
    CHECK pio-word-5, $0x5566
    mov $TS_REGS + 7, %dx
    xor %eax, %eax
    in %dx, %al
    CHECK pio-byte-7, $0x44

    /* Unclaimed port: all ones, writes dropped */
    mov $TS_UNCLAIMED_PORT, %dx
    mov $0x12, %al
    out %al, %dx
    xor %eax, %eax
    in %dx, %al
    CHECK pio-unclaimed-byte, $0xff
    xor %eax, %eax
    in %dx, %ax
    CHECK pio-unclaimed-word, $0xffff
    in %dx, %eax
    CHECK pio-unclaimed-dword, $0xffffffff

    /* String I/O through the server's FIFO: bytes, words, dwords */
    cld
    mov $TS_FIFO, %dx
    lea pattern(%rip), %rsi
    mov $16, %ecx
    rep outsb
    lea buf(%rip), %rdi
    mov $16, %ecx
    rep insb
    lea pattern(%rip), %rsi
    lea buf(%rip), %rdi
    mov $16, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-outsb-insb, $0
    lea pattern(%rip), %rsi
    mov $8, %ecx
    rep outsw
    lea buf(%rip), %rdi
    mov $4, %ecx
    rep insl
    lea pattern(%rip), %rsi
    lea buf(%rip), %rdi
    mov $16, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-outsw-insl, $0
    lea pattern(%rip), %rsi
    mov $4, %ecx
    rep outsl
    lea buf(%rip), %rdi
    mov $8, %ecx
    rep insw
    lea pattern(%rip), %rsi
    lea buf(%rip), %rdi
    mov $16, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-outsl-insw, $0

    /* Direction flag set: ins fills memory downwards, outs reads it so */
    lea pattern(%rip), %rsi
    mov $16, %ecx
    rep outsb
    std
    lea buf+15(%rip), %rdi
    mov $16, %ecx
    rep insb
    cld
    lea rpattern(%rip), %rsi
    lea buf(%rip), %rdi
    mov $16, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-insb-df, $0
    std
    lea pattern+14(%rip), %rsi
    mov $8, %ecx
    rep outsw                   /* words "ef", "cd", ... "01" */
    cld
    lea buf(%rip), %rdi
    mov $8, %ecx
    rep insw
    lea wpattern(%rip), %rsi
    lea buf(%rip), %rdi
    mov $16, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-outsw-df, $0

    /* 100 words into memory across a page boundary, and back out of it */
    lea pagebuf(%rip), %rdi
    xor %ecx, %ecx
1:  lea 0x21(%rcx), %eax
    mov %al, (%rdi,%rcx)
    inc %ecx
    cmp $200, %ecx
    jb 1b
    lea pagebuf(%rip), %rsi
    mov $100, %ecx
    rep outsw
    lea pagebuf+4096-100(%rip), %rdi
    mov $100, %ecx
    rep insw
    lea pagebuf(%rip), %rsi
    lea pagebuf+4096-100(%rip), %rdi
    mov $200, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-insw-page-cross, $0
    lea pagebuf+4096-100(%rip), %rsi
    mov $100, %ecx
    rep outsw
    lea pagebuf+8192-64(%rip), %rdi
    mov $50, %ecx
    rep insl
    lea pagebuf(%rip), %rsi
    lea pagebuf+8192-64(%rip), %rdi
    mov $200, %ecx
    repe cmpsb
    mov %ecx, %eax
    CHECK string-outsw-page-cross, $0

    /* MMIO to a claimed range: widths 1, 2, 4, 8 */
    mov $TS_MMIO, %ebx
    movb $0xa1, 0(%rbx)
    movw $0xb2c3, 2(%rbx)
    movl $0xd4e5f607, 4(%rbx)
    movabs $0x1122334455667788, %rax
    mov %rax, 8(%rbx)
    mov 0(%rbx), %rax
    CHECK mmio-qword-0, $0xd4e5f607b2c300a1
    mov 8(%rbx), %rax
    movabs $0x1122334455667788, %rcx
    CHECK mmio-qword-8, %rcx
    movzbl 0(%rbx), %eax
    CHECK mmio-byte-0, $0xa1
    movzwl 2(%rbx), %eax
    CHECK mmio-word-2, $0xb2c3
    mov 4(%rbx), %eax
    CHECK mmio-dword-4, $0xd4e5f607
    mov 12(%rbx), %eax
    CHECK mmio-dword-12, $0x11223344

    /* An unaligned qword across the end of the claimed page: KVM cuts it
     * into 3 + 5 bytes; the claimed 3 read back, the unclaimed 5 all ones. */
    movabs $0x8877665544332211, %rax
    mov %rax, 0xff8(%rbx)
    mov 0xffd(%rbx), %rax
    movabs $0xffffffffff887766, %rcx
    CHECK mmio-unaligned-page-cross, %rcx

    /* MMIO to nobody: all ones, writes dropped */
    mov $TS_MMIO_UNCLAIMED, %ebx
    movq $0, (%rbx)
    movzbl (%rbx), %eax
    CHECK mmio-unclaimed-byte, $0xff
    movzwl (%rbx), %eax
    CHECK mmio-unclaimed-word, $0xffff
    mov (%rbx), %eax
    CHECK mmio-unclaimed-dword, $0xffffffff
    mov (%rbx), %rax
    CHECK mmio-unclaimed-qword, $-1

    /* Posted writes to a buffered range, read back in order */
    mov $TS_BUF_MMIO, %ebx
    xor %ecx, %ecx
1:  lea 0x1000(%rcx), %eax
    mov %eax, (%rbx,%rcx,4)
    inc %ecx
    cmp $64, %ecx
    jb 1b
    movb $0x5e, 0x200(%rbx)
    movw $0x7e6f, 0x202(%rbx)
    movabs $0x0102030405060708, %rax
    mov %rax, 0x208(%rbx)
    mov 0xfc(%rbx), %eax
    CHECK buffered-dword-63, $0x103f
    mov (%rbx), %eax
    CHECK buffered-dword-0, $0x1000
    mov 0x200(%rbx), %eax
    CHECK buffered-byte-word, $0x7e6f005e
    mov 0x208(%rbx), %rax
    movabs $0x0102030405060708, %rcx
    CHECK buffered-qword, %rcx

    /* PCI config through CF8/CFC */
    mov $0xcf8, %dx
    mov $(0x80000000 | (TS_PCI_DEV << 11)), %eax
    out %eax, %dx
    in %dx, %eax
    CHECK cf8-readback, $(0x80000000 | (TS_PCI_DEV << 11))
    mov $0xcfc, %dx
    in %dx, %eax
    CHECK pci-cf8-id, $TS_PCI_ID
    mov $0xcfe, %dx
    xor %eax, %eax
    in %dx, %ax
    CHECK pci-cf8-device-word, $(TS_PCI_ID >> 16)
    mov $0xcf8, %dx
    mov $(0x80000000 | (TS_PCI_DEV << 11) | 0x40), %eax
    out %eax, %dx
    mov $0xcfc, %dx
    mov $0xcafe0123, %eax
    out %eax, %dx
    mov $0xcfd, %dx
    mov $0x99, %al
    out %al, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    CHECK pci-cf8-write-readback, $0xcafe9923
    mov $0xcf8, %dx
    mov $(0x80000000 | (TS_PCI_NODEV << 11)), %eax
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    CHECK pci-cf8-nodev, $0xffffffff
    mov $0xcf8, %dx
    mov $(TS_PCI_DEV << 11), %eax       /* enable bit clear */
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    CHECK pci-cf8-disabled, $0xffffffff

    /* PCI config through ECAM (same device, same registers) */
    mov $(ECAM_BASE + (TS_PCI_DEV << 15)), %ebx
    mov (%rbx), %eax
    CHECK pci-ecam-id, $TS_PCI_ID
    mov 0x40(%rbx), %eax
    CHECK pci-ecam-sees-cf8-write, $0xcafe9923
    movw $0xbeef, 0x44(%rbx)
    mov $0xcf8, %dx
    mov $(0x80000000 | (TS_PCI_DEV << 11) | 0x44), %eax
    out %eax, %dx
    mov $0xcfc, %dx
    xor %eax, %eax
    in %dx, %ax
    CHECK pci-cf8-sees-ecam-write, $0xbeef
    movl $0x600dcafe, 0x100(%rbx)
    mov 0x100(%rbx), %eax
    CHECK pci-ecam-extended, $0x600dcafe
    mov $(ECAM_BASE + (TS_PCI_NODEV << 15)), %ebx
    mov (%rbx), %eax
    CHECK pci-ecam-nodev, $0xffffffff

    lea s_done(%rip), %rsi
    call puts64
    mov $TS_SHUTDOWN, %dx
    mov $42, %al
    out %al, %dx
    /* The server's power-off request ends the guest; do not get here. */
    lea s_late(%rip), %rsi
    call puts64
1:  hlt
    jmp 1b

#include "lib64.inc"
    .section .rodata
pattern: .ascii "0123456789abcdef"
rpattern: .ascii "fedcba9876543210"
wpattern: .ascii "efcdab8967452301"
s_done:  .asciz "io64: all checks passed\n"
s_late:  .asciz "io64: still running after the shutdown request\n"
    .bss
buf: .skip 64
    .balign 4096
pagebuf: .skip 3 * 4096
