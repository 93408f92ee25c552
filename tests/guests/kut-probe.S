/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest shaped like a kvm-unit-tests x86 test, for the ferry-qemu
 * wrapper's own test (tests/kvm-unit-tests/test-wrapper.py): a multiboot
 * ELF32 linked at 4 MiB that prints over COM1 (QEMU's -serial stdio) what
 * the wrapper's options gave it (command line, first line of module 0,
 * fw_cfg's NB_CPUS and RAM_SIZE, CPUID.1:ECX's x2APIC bit, pc-testdev's
 * scratch register, where pci-testdev sits, the 8259 masks, IVT entry 8 and
 * whether the 8254 counts: the state a BIOS leaves, which kvm-unit-tests'
 * realmode test counts on) and ends by writing the last
 * character of its command line, as a digit, to the isa-debug-exit port
 * 0xf4 (kvm-unit-tests' exit()).
 */
#include "guest.h"

#define MB_MAGIC        0x1badb002
#define MB_FLAGS        0x00000003
#define COM1            0x3f8
#define FW_CFG_SEL      0x510
#define FW_CFG_DATA     0x511
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS  0x05
#define TESTDEV_SCRATCH 0xe0
#define ISA_DEBUG_EXIT  0xf4

    .code32
    .text
    .globl _start
    .p2align 2
mb_header:
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

_start:
    cli
    mov $stack_top, %esp
    cmp $0x2badb002, %eax
    jne bad
    mov %ebx, %ebp
    mov $s_cmdline, %esi
    call puts
    mov 16(%ebp), %esi
    call puts
    call newline
    /* module 0's first line: kvm-unit-tests' environment file */
    cmpl $0, 20(%ebp)
    je 1f
    mov $s_module, %esi
    call puts
    mov 24(%ebp), %edi
    mov 0(%edi), %esi
    call putline
1:  /* fw_cfg items by port */
    mov $s_nb_cpus, %esi
    call puts
    mov $FW_CFG_NB_CPUS, %eax
    call fw_cfg_read32
    movzwl %ax, %eax
    call puthex32
    call newline
    mov $s_ram_size, %esi
    call puts
    mov $FW_CFG_RAM_SIZE, %eax
    call fw_cfg_read32
    call puthex32
    call newline
    /* CPUID.1:ECX bit 21 */
    mov $s_x2apic, %esi
    call puts
    mov $1, %eax
    cpuid
    mov %ecx, %eax
    shr $21, %eax
    and $1, %eax
    call puthex32
    call newline
    /* pc-testdev's scratch register reads back what was written */
    mov $s_scratch, %esi
    call puts
    mov $0x5a5a1234, %eax
    mov $TESTDEV_SCRATCH, %dx
    out %eax, %dx
    xor %eax, %eax
    in %dx, %eax
    call puthex32
    call newline
    /* what a BIOS leaves: the 8259s' masks, IVT entry 8, the 8254 counting */
    mov $s_pic, %esi
    call puts
    in $0xa1, %al
    mov %al, %ah
    in $0x21, %al
    movzwl %ax, %eax
    call puthex32
    call newline
    mov $s_ivt8, %esi
    call puts
    mov 8 * 4, %eax
    call puthex32
    call newline
    mov $s_pit, %esi
    call puts
    call pit_read
    mov %eax, %ebx
    call pit_read
    cmp %eax, %ebx
    setne %al
    movzbl %al, %eax
    call puthex32
    call newline
    /* pci-testdev (1b36:0005) on bus 0 */
    xor %ebx, %ebx
2:  mov %ebx, %eax
    shl $11, %eax
    or $0x80000000, %eax
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    cmp $0x00051b36, %eax
    jne 3f
    mov $s_pci_testdev, %esi
    call puts
    mov %ebx, %eax
    call puthex32
    call newline
3:  inc %ebx
    cmp $32, %ebx
    jb 2b
    /* exit with the command line's last character as a digit */
    mov 16(%ebp), %esi
4:  lodsb
    test %al, %al
    jnz 4b
    movzbl -2(%esi), %eax
    sub $'0', %eax
    and $0x3f, %eax
    jmp exit_f4
bad:
    mov $s_bad, %esi
    call puts
    mov $9, %eax
exit_f4:
    mov $ISA_DEBUG_EXIT, %dx
    out %eax, %dx
5:  hlt
    jmp 5b

/* fw_cfg_read32: select item %ax, return its first 4 bytes (little endian) in %eax */
fw_cfg_read32:
    push %ecx
    push %edx
    mov $FW_CFG_SEL, %dx
    out %ax, %dx
    mov $FW_CFG_DATA, %dx
    xor %eax, %eax
    mov $4, %ecx
1:  in %dx, %al
    ror $8, %eax
    loop 1b
    pop %edx
    pop %ecx
    ret

/* pit_read: latch the 8254's channel 0 and return its count in %eax */
pit_read:
    xor %eax, %eax
    out %al, $0x43
    in $0x40, %al
    mov %al, %ah
    in $0x40, %al
    xchg %al, %ah
    ret

/* putc: %al to COM1, once its transmit holding register is empty */
putc:
    push %eax
    push %edx
    mov %al, %ah
    mov $COM1 + 5, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov $COM1, %dx
    mov %ah, %al
    out %al, %dx
    pop %edx
    pop %eax
    ret

newline:
    push %eax
    mov $'\n', %al
    call putc
    pop %eax
    ret

/* puts: NUL-terminated string at %esi */
puts:
    push %eax
    push %esi
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  pop %esi
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
2:  call newline
    pop %ecx
    pop %eax
    ret

/* puthex32: %eax as 8 hex digits */
puthex32:
    push %eax
    push %ecx
    push %edx
    mov %eax, %edx
    mov $8, %ecx
1:  rol $4, %edx
    mov %dl, %al
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 2f
    add $('a' - '9' - 1), %al
2:  call putc
    loop 1b
    pop %edx
    pop %ecx
    pop %eax
    ret

s_cmdline:  .asciz "cmdline: "
s_module:   .asciz "module: "
s_nb_cpus:  .asciz "nb_cpus "
s_ram_size: .asciz "ram_size "
s_x2apic:   .asciz "x2apic "
s_scratch:  .asciz "scratch "
s_pci_testdev: .asciz "pci-testdev 00:"
s_pic:      .asciz "pic_imr "
s_ivt8:     .asciz "ivt8 "
s_pit:      .asciz "pit_counting "
s_bad:      .asciz "FAIL bad multiboot magic\n"
    .bss
    .p2align 4
    .skip 4096
stack_top:
