/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's pc-testdev, 64-bit, as kvm-unit-tests' ioapic tests use it:
 * the scratch register at 0xe0 (dword and byte), the iomem window at
 * 0xff000000, a flush-page write, then GSI levels through ports
 * 0x2000 + n into the in-kernel IOAPIC:
 *   edge   GSI 14 -> vector 0x60, edge: each 0->1 toggle is one interrupt;
 *          setting an already high line high again is no new edge
 *   level  GSI 15 -> vector 0x61, level: the line is raised; the handler
 *          sees remote IRR set, EOIs with the line still high the first
 *          time (the IOAPIC delivers it again), lowers it before its EOI
 *          the second time: exactly two deliveries, remote IRR clear after
 *   masked the level entry masked, the line raised: nothing arrives; on
 *          unmask the pending level interrupt does
 * A "delivery" is an interrupt whose handler finds remote IRR set.  This
 * machine's KVM also hands the vCPU one extra interrupt after the first
 * level delivery, with remote IRR clear (QEMU+KVM with QEMU's pc-testdev
 * does exactly the same here): such strays are counted and
 * printed, not failed, and only EOId.
 * Exit 0 through ferry-dm's debug exit, 1 on FAIL.
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define EDGE_GSI    14
#define EDGE_VEC    0x60
#define LEVEL_GSI   15
#define LEVEL_VEC   0x61
#define TESTDEV_IRQ 0x2000
#define RTE_LO(g)   (0x10 + 2 * (g))
#define RTE_LEVEL   (1 << 15)
#define RTE_MASK    (1 << 16)
#define RTE_RIRR    (1 << 14)

/* WAIT var, n: spin (interrupts on) until the counter var reaches n, else FAIL */
    .macro WAIT var:req, n:req
    mov $\n, %edi
    lea \var(%rip), %rsi
    call wait_var
    .endm
/* LINE gsi, level: one byte to pc-testdev's port for the GSI */
    .macro LINE gsi:req, level:req
    mov $(TESTDEV_IRQ + \gsi), %dx
    mov $\level, %al
    out %al, %dx
    .endm

    .code64
main64:
    call irq_setup64            /* PIC masked: only the IOAPIC delivers */
    lea edge_irq(%rip), %rax
    mov $EDGE_VEC, %edi
    call set_gate
    lea level_irq(%rip), %rax
    mov $LEVEL_VEC, %edi
    call set_gate
    sti

    /* The scratch register and the iomem window, through ferry-dm. */
    mov $0xe0, %dx
    mov $0xa5b4c3d2, %eax
    out %eax, %dx
    xor %eax, %eax
    in %dx, %eax
    CHECK scratch-dword, $0xa5b4c3d2
    mov $0xe1, %dx
    xor %eax, %eax
    in %dx, %al
    CHECK scratch-byte, $0xc3
    mov $0xff000000, %ebx
    mov $0x1122334455667788, %rax
    mov %rax, 0x100(%rbx)
    movzwl 0x102(%rbx), %eax
    CHECK iomem, $0x5566
    mov $0x00100000, %eax       /* flush page: a no-op in Ferry, must not hurt */
    mov $0xe4, %dx
    out %eax, %dx

    /* Edge: GSI 14 -> vector 0x60, edge, unmasked. */
    LINE EDGE_GSI, 0
    mov $EDGE_GSI, %edi
    mov $EDGE_VEC, %esi
    call ioapic_route64
    LINE EDGE_GSI, 1
    WAIT edge_count, 1
    LINE EDGE_GSI, 0
    LINE EDGE_GSI, 1
    WAIT edge_count, 2
    LINE EDGE_GSI, 1            /* already high: no edge */
    call delay
    mov edge_count(%rip), %eax
    CHECK edge-toggles, $2
    LINE EDGE_GSI, 0

    /* Level: GSI 15 -> vector 0x61, level, unmasked. */
    LINE LEVEL_GSI, 0
    mov $LEVEL_GSI, %edi
    mov $(LEVEL_VEC | RTE_LEVEL), %esi
    call ioapic_route64
    LINE LEVEL_GSI, 1
    WAIT level_count, 2
    call delay
    mov level_count(%rip), %eax
    CHECK level-eoi-redelivers-once, $2
    mov $RTE_LO(LEVEL_GSI), %edi
    call ioapic_read64
    and $RTE_RIRR, %eax
    CHECK level-remote-irr-after-eoi, $0

    /* Masked: nothing while masked, the pending level interrupt on unmask. */
    mov $RTE_LO(LEVEL_GSI), %edi
    mov $(LEVEL_VEC | RTE_LEVEL | RTE_MASK), %esi
    call ioapic_write64
    mov level_count(%rip), %r12d
    add stray_count(%rip), %r12d
    LINE LEVEL_GSI, 1
    call delay
    mov level_count(%rip), %eax
    add stray_count(%rip), %eax
    CHECK masked-level-held, %r12
    mov $RTE_LO(LEVEL_GSI), %edi
    mov $(LEVEL_VEC | RTE_LEVEL), %esi
    call ioapic_write64
    WAIT level_count, 3
    call delay
    mov level_count(%rip), %eax
    CHECK unmasked-level-delivered, $3
    mov edge_count(%rip), %eax
    CHECK no-stray-edges, $2

    lea s_stray(%rip), %rsi
    call puts64
    mov stray_count(%rip), %eax
    call puthex64
    mov $'\n', %al
    call putc64
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

wait_var:
    mov $200000000, %ecx
1:  cmp (%rsi), %edi
    jbe 2f
    pause
    dec %ecx
    jnz 1b
    jmp fail
2:  ret

/* a while with interrupts on, for what must not come */
delay:
    mov $2000000, %ecx
1:  pause
    loop 1b
    ret

edge_irq:
    incl edge_count(%rip)
    call lapic_eoi64
    iretq

/*
 * Remote IRR clear: a stray, only EOId.  Else a delivery: the 1st is EOId
 * with the line still high, the others lower the line before the EOI.
 */
level_irq:
    push %rax
    push %rdx
    push %rdi
    mov $RTE_LO(LEVEL_GSI), %edi
    call ioapic_read64
    test $RTE_RIRR, %eax
    jnz 1f
    incl stray_count(%rip)
    jmp 2f
1:  incl level_count(%rip)
    cmpl $1, level_count(%rip)
    je 2f
    LINE LEVEL_GSI, 0
2:  call lapic_eoi64
    pop %rdi
    pop %rdx
    pop %rax
    iretq

#include "lib64.inc"
    .section .rodata
s_done: .asciz "dm-ioapic: edge, level, remote IRR and masking through pc-testdev\n"
s_fail: .asciz "FAIL dm-ioapic: an interrupt never came\n"
s_stray: .asciz "dm-ioapic: interrupts with remote IRR clear (KVM's duplicates): "
    .data
    .p2align 2
edge_count:  .long 0
level_count: .long 0
stray_count: .long 0
