/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's fw-cfg, 64-bit, read as kvm-unit-tests and firmware read it.
 * By port (selector 0x510, data 0x511): SIGNATURE, ID, RAM_SIZE, NB_CPUS,
 * MAX_CPUS (the runner gives 64 MiB and 2 vCPUs), a read past an item's
 * end (0).  By DMA (0x514): the signature "QEMU CFG" read back, FILE_DIR
 * (one file, etc/e820), then etc/e820 itself, compared entry by entry with
 * the memory map ferry-hv gave the guest in hvm_start_info; a transfer to
 * a guest address that is not RAM (the VGA hole) ends with the error bit.
 * Exit 0 through ferry-dm's debug exit, 1 on FAIL.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define FW_SEL      0x510
#define FW_DATA     0x511
#define FW_DMA_HI   0x514
#define FW_DMA_LO   0x518
#define CTL_READ    0x02
#define CTL_SELECT  0x08
#define KEY_SIG     0x00
#define KEY_ID      0x01
#define KEY_RAM     0x03
#define KEY_NB_CPUS 0x05
#define KEY_MAX_CPUS 0x0f
#define KEY_DIR     0x19
#define E820_SIZE   20

/* READ key, bytes: select key, %rax = the next bytes (little-endian) */
    .macro READ key:req, n:req
    mov $\key, %edi
    mov $\n, %esi
    call fw_read
    .endm

    .code64
main64:
    READ KEY_SIG, 4
    CHECK port-signature, $0x554d4551          /* "QEMU" */
    mov $FW_DATA, %dx
    xor %eax, %eax
    in %dx, %al
    CHECK port-past-the-end, $0
    READ KEY_ID, 4
    CHECK port-id-traditional-and-dma, $3
    READ KEY_RAM, 8
    CHECK port-ram-size, $0x4000000
    READ KEY_NB_CPUS, 2
    CHECK port-nb-cpus, $2
    READ KEY_MAX_CPUS, 2
    CHECK port-max-cpus, $2

    /* The DMA register reads "QEMU CFG". */
    mov $FW_DMA_HI, %dx
    in %dx, %eax
    CHECK dma-signature-hi, $0x554d4551
    mov $FW_DMA_LO, %dx
    in %dx, %eax
    CHECK dma-signature-lo, $0x47464320

    /* FILE_DIR by DMA: be32 count, then {be32 size, be16 key, be16, name[56]} */
    mov $(KEY_DIR << 16 | CTL_SELECT | CTL_READ), %edi
    mov $(4 + 64), %esi
    lea buf(%rip), %rdx
    call fw_dma
    CHECK dma-dir-control, $0
    mov buf(%rip), %eax
    bswap %eax
    CHECK dir-one-file, $1
    mov buf+12(%rip), %rax
    mov $0x303238652f637465, %rbx             /* "etc/e820" */
    cmp %rbx, %rax
    jne fail
    movzbl buf+20(%rip), %eax                  /* NUL-terminated */
    CHECK dir-name-etc-e820, $0
    movzwl buf+8(%rip), %eax
    xchg %al, %ah
    CHECK dir-e820-key, $0x20
    mov buf+4(%rip), %eax
    bswap %eax
    mov %eax, %r12d                            /* the item's size */

    /* etc/e820 by DMA, selected by its key from the directory. */
    movzwl buf+8(%rip), %edi
    rol $8, %di                                /* be16 -> key */
    shl $16, %edi
    or $(CTL_SELECT | CTL_READ), %edi
    mov %r12d, %esi
    lea e820(%rip), %rdx
    call fw_dma
    CHECK dma-e820-control, $0

    /* ferry-hv's map in hvm_start_info (memmap at +40, entries at +48; 24 bytes each). */
    mov 48(%r15), %eax
    imul $E820_SIZE, %eax
    cmp %eax, %r12d
    jne fail_map
    mov 48(%r15), %ecx
    mov 40(%r15), %rsi
    lea e820(%rip), %rdi
1:  mov (%rsi), %rax
    cmp (%rdi), %rax
    jne fail_map
    mov 8(%rsi), %rax
    cmp 8(%rdi), %rax
    jne fail_map
    mov 16(%rsi), %eax
    cmp 16(%rdi), %eax
    jne fail_map
    add $24, %rsi
    add $E820_SIZE, %rdi
    loop 1b
    mov 48(%r15), %eax
    CHECK e820-matches-pvh-memmap-entries, $7

    /* A read into the VGA hole (not RAM): the error bit. */
    mov $(KEY_SIG << 16 | CTL_SELECT | CTL_READ), %edi
    mov $4, %esi
    mov $0xa0000, %edx
    call fw_dma
    CHECK dma-bad-address-error, $1

    lea s_done(%rip), %rsi
    call puts64
    xor %al, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
2:  hlt
    jmp 2b
fail_map:
    lea s_map(%rip), %rsi
    call puts64
fail:
    lea s_fail(%rip), %rsi
    call puts64
    mov $1, %al
    mov $DM_EXIT_PORT, %dx
    out %al, %dx
    jmp 2b

/* fw_read: select %di, %rax = the next %esi bytes of it, little-endian */
fw_read:
    push %rcx
    push %rdx
    mov %edi, %eax
    mov $FW_SEL, %dx
    out %ax, %dx
    mov $FW_DATA, %dx
    xor %edi, %edi              /* result */
    xor %ecx, %ecx              /* shift */
1:  test %esi, %esi
    jz 2f
    xor %eax, %eax
    in %dx, %al
    shl %cl, %rax
    or %rax, %rdi
    add $8, %ecx
    dec %esi
    jmp 1b
2:  mov %rdi, %rax
    pop %rdx
    pop %rcx
    ret

/* fw_dma: control %edi, length %esi, address %rdx; %rax = control after (host order) */
fw_dma:
    bswap %edi
    mov %edi, desc(%rip)
    bswap %esi
    mov %esi, desc+4(%rip)
    bswap %rdx
    mov %rdx, desc+8(%rip)
    xor %eax, %eax
    mov $FW_DMA_HI, %dx
    out %eax, %dx               /* the descriptor is below 4 GiB */
    lea desc(%rip), %rax
    bswap %eax
    mov $FW_DMA_LO, %dx
    out %eax, %dx               /* starts the transfer */
    mov desc(%rip), %eax
    bswap %eax
    ret

#include "lib64.inc"
    .section .rodata
s_done: .asciz "dm-fwcfg: items by port and by DMA, etc/e820 is the guest's map\n"
s_map:  .asciz "FAIL etc/e820 differs from the PVH memory map\n"
s_fail: .asciz "FAIL dm-fwcfg\n"
    .bss
    .p2align 4
desc:   .skip 16
buf:    .skip 128
e820:   .skip 640
