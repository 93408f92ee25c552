/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The demo guest (`ferry run` with no arguments): a PVH guest whose every
 * device is in ferry-dm, a separate process.  It greets through COM1,
 * lists the PCI functions it finds by scanning config space (CF8/CFC),
 * reads the RTC, and powers off through the ACPI PM block (S5).  If the
 * power-off does not happen it says so and exits 1 through the debug port.
 */
#include "guest.h"
#include "pvh.inc"
#include "dm-guest.h"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    call com1_init
    mov $s_banner, %esi
    call com1_puts

    /* PCI: every device of bus 0, functions 1-7 only on multi-function devices */
    mov $s_pci, %esi
    call com1_puts
    xor %ebx, %ebx                  /* dev << 11 | fn << 8 */
scan:
    mov %ebx, %eax
    call pci_read
    cmp $0xffff, %ax
    je next_fn
    mov %eax, %edi                  /* vendor | device << 16 */
    mov $s_indent, %esi
    call com1_puts
    mov %ebx, %eax
    shr $11, %eax
    mov $2, %ecx
    call com1_hex
    mov $'.', %al
    call com1_putc
    mov %ebx, %eax
    shr $8, %eax
    and $7, %eax
    mov $1, %ecx
    call com1_hex
    mov $s_gap, %esi
    call com1_puts
    mov %edi, %eax
    mov $4, %ecx
    call com1_hex                   /* vendor */
    mov $':', %al
    call com1_putc
    mov %edi, %eax
    shr $16, %eax
    call com1_hex                   /* device */
    mov $s_gap, %esi
    call com1_puts
    mov %ebx, %eax
    or $0x08, %eax
    call pci_read
    shr $8, %eax                    /* class << 16 | subclass << 8 | prog-if */
    mov %eax, %edi
    mov $6, %ecx
    call com1_hex
    mov $s_gap, %esi
    call com1_puts
    mov %edi, %eax
    shr $8, %eax
    mov $classes, %esi
1:  cmpw $0xffff, (%esi)
    je 2f
    cmp %ax, (%esi)
    je 2f
    add $4, %esi
    jmp 1b
2:  mov 2(%esi), %si
    movzwl %si, %esi
    add $names, %esi
    call com1_puts
    mov $'\n', %al
    call com1_putc
    /* a single-function device: skip functions 1-7 */
    test $0x700, %ebx
    jnz next_fn
    mov %ebx, %eax
    or $0x0c, %eax
    call pci_read
    test $0x800000, %eax            /* header type bit 7 */
    jnz next_fn
    or $0x700, %ebx
next_fn:
    add $0x100, %ebx
    cmp $(32 << 11), %ebx
    jb scan

    /* RTC: wait for no update in progress, then read the BCD fields */
    mov $s_rtc, %esi
    call com1_puts
1:  mov $0x0a, %al
    out %al, $RTC_INDEX
    in $RTC_DATA, %al
    test $0x80, %al
    jnz 1b
    mov $0x32, %ah
    call rtc_put
    mov $0x09, %ah
    call rtc_put
    mov $'-', %al
    call com1_putc
    mov $0x08, %ah
    call rtc_put
    mov $'-', %al
    call com1_putc
    mov $0x07, %ah
    call rtc_put
    mov $' ', %al
    call com1_putc
    mov $0x04, %ah
    call rtc_put
    mov $':', %al
    call com1_putc
    mov $0x02, %ah
    call rtc_put
    mov $':', %al
    call com1_putc
    mov $0x00, %ah
    call rtc_put
    mov $s_utc, %esi
    call com1_puts

    /* ACPI S5 */
    mov $s_off, %esi
    call com1_puts
    mov $PM1A_CNT, %dx
    mov $SLP_S5, %ax
    out %ax, %dx
    mov $100000, %ecx
1:  pause
    loop 1b
    mov $s_still, %esi
    call com1_puts
    mov $1, %al
    jmp dm_exit

/* rtc_put: CMOS register %ah, printed as two BCD digits */
rtc_put:
    push %eax
    push %ecx
    mov %ah, %al
    out %al, $RTC_INDEX
    in $RTC_DATA, %al
    movzbl %al, %eax
    mov $2, %ecx
    call com1_hex
    pop %ecx
    pop %eax
    ret

#include "dm32.inc"
    .section .rodata
s_banner:
    .ascii "\n"
    .ascii "  ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
    .ascii "   Ferry demo guest\n"
    .ascii "   This line crossed a 16550A UART emulated by ferry-dm, a\n"
    .ascii "   separate process: each byte was a trapped OUT instruction\n"
    .ascii "   that ferry-hv handed over as a Xen-style ioreq.\n"
    .ascii "  ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n\n"
    .asciz ""
s_pci:    .asciz "PCI bus 0 (config space through CF8/CFC):\n"
s_indent: .asciz "  00:"
s_gap:    .asciz "  "
s_rtc:    .asciz "\nRTC says it is "
s_utc:    .asciz " UTC\n"
s_off:    .asciz "\nPowering off through ACPI S5 (SLP_TYP 5 in PM1a_CNT at 0xb004). Bye!\n"
s_still:  .asciz "FAIL still running after S5\n"
    .p2align 1
/* class << 8 | subclass, offset of the name in names[]; 0xffff ends */
classes:
    .word 0x0600, n_host - names
    .word 0x0601, n_isa - names
    .word 0x0604, n_p2p - names
    .word 0x0300, n_vga - names
    .word 0x0200, n_eth - names
    .word 0x0c03, n_usb - names
    .word 0xff00, n_test - names
    .word 0xffff, n_other - names
names:
n_host:  .asciz "host bridge"
n_isa:   .asciz "ISA bridge"
n_p2p:   .asciz "PCI-to-PCI bridge"
n_vga:   .asciz "VGA controller"
n_eth:   .asciz "Ethernet controller"
n_usb:   .asciz "USB controller"
n_test:  .asciz "ferry-dm test function"
n_other: .asciz "device"
    .bss
    .p2align 4
    .skip 4096
stack_top:
