/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ACPI S3 (suspend to RAM) and the firmware's resume path, 64-bit.
 *
 * The guest finds RSDP -> RSDT -> FADT -> FACS as kvm-unit-tests' s3 test
 * does (the FADT's 32-bit FIRMWARE_CTRL, the PM1a blocks), copies a
 * real-mode stub to WAKE_ADDR and writes that address into the FACS
 * Firmware_Waking_Vector, leaves a magic word in RAM, arms the RTC alarm
 * two or three seconds ahead (seconds only; hours and minutes "don't
 * care"), clears PM1_STS and writes SLP_TYP 1 (libacpi's \_S3) | SLP_EN to
 * PM1a_CNT.  The first character of the command line says how it expects
 * to be woken:
 *
 *   r  by the RTC alarm: RTC_EN set in PM1_EN; the stub wants RTC_STS
 *   w  from outside (system_wakeup or the power button): RTC_EN clear, so
 *      the alarm must not wake it; the stub wants PWRBTN_STS
 *   n  by the RTC alarm, with waking vector 0: ferry-hv must reboot
 *   x  by the RTC alarm, with X_Firmware_Waking_Vector set as well (to a
 *      32-bit stub in this image): it wins, in 32-bit protected mode
 *
 * A second character '2' first starts the second vCPU (INIT-SIPI-SIPI to
 * 0x8000), which counts itself in and halts: S3 must stop it too.
 *
 * The stub runs in real mode at CS:IP = WAKE_ADDR >> 4 : 0 and checks
 * that WAK_STS and the expected status bit are set in PM1_STS, that the
 * magic word survived (memory is kept) and that the RTC's alarm interrupt
 * was reset (REG_B AIE clear: devices are reset on S3), then prints
 * "resumed" through ferry-dm's COM1 and exits 0 through ferry-dm's debug
 * exit port (any failure: a FAIL line and status 1..4).
 */
#include "guest.h"
#include "pvh.inc"
#include "lm.inc"
#include "dm-guest.h"
#define WAKE_ADDR       0x7000      /* the stub; its data in the same 64 KiB segment */
#define MAGIC_ADDR      0x7ff0
#define EXPECT_ADDR     0x7ff4      /* PM1_STS bits the stub wants (16 bits) */
#define AP_COUNT        0x7ff8      /* application processors that came up */
#define MAGIC           0x5333524d  /* "MR3S" */
#define PM1_WAK_STS     0x8000
#define PM1_RTC         0x0400
#define PM1_PWRBTN      0x0100
#define SLP_S3          ((1 << 10) | (1 << 13))    /* SLP_TYP 1 (libacpi's \_S3) | SLP_EN */
#define RTC_REG_A       0x0a
#define RTC_REG_B       0x0b
#define RTC_REG_C       0x0c
#define REG_B_AIE       0x20

    .macro RTC_READ reg:req
    mov $\reg, %al
    out %al, $RTC_INDEX
    in $RTC_DATA, %al
    .endm
    .macro RTC_WRITE reg:req
    push %rax
    mov $\reg, %al
    out %al, $RTC_INDEX
    pop %rax
    out %al, $RTC_DATA
    .endm

    .code64
main64:
    mov 0x18(%r15), %rax                    /* cmdline_paddr */
    movzbl (%rax), %eax
    mov %al, mode(%rip)

    /* RSDP (hvm_start_info rsdp_paddr) -> RSDT -> "FACP" */
    mov 0x18(%r15), %rax
    cmpb $'2', 1(%rax)
    jne 9f
    call start_ap
9:  mov 0x20(%r15), %rsi
    mov 16(%rsi), %esi                      /* RsdtAddress */
    cmpl $0x54445352, (%rsi)                /* "RSDT" */
    jne fail_tables
    mov 4(%rsi), %ecx
    lea (%rsi,%rcx), %rdx                   /* end */
    lea 36(%rsi), %rbx
1:  cmp %rdx, %rbx
    jae fail_tables
    mov (%rbx), %edi
    add $4, %rbx
    cmpl $0x50434146, (%rdi)                /* "FACP" */
    jne 1b
    mov 56(%rdi), %eax                      /* PM1a_EVT_BLK */
    mov %eax, pm1_evt(%rip)
    mov 64(%rdi), %eax                      /* PM1a_CNT_BLK */
    mov %eax, pm1_cnt(%rip)
    mov 36(%rdi), %eax                      /* FIRMWARE_CTRL: the FACS below 4 GiB */
    mov %eax, %edi
    test %edi, %edi
    jz fail_tables
    cmpl $0x53434146, (%rdi)                /* "FACS" */
    jne fail_tables
    mov %rdi, facs(%rip)
    lea s_found(%rip), %rsi
    call puts64

    /* the stub to WAKE_ADDR, the vector into the FACS, the magic word */
    lea resume_stub(%rip), %rsi
    mov $WAKE_ADDR, %edi
    mov $(resume_stub_end - resume_stub), %ecx
    rep movsb
    mov facs(%rip), %rdi
    movl $WAKE_ADDR, 12(%rdi)               /* Firmware_Waking_Vector */
    cmpb $'n', mode(%rip)
    jne 2f
    movl $0, 12(%rdi)
2:  cmpb $'x', mode(%rip)
    jne 8f
    movq $resume32, 24(%rdi)                /* X_Firmware_Waking_Vector (FACS version 2) */
8:  movl $MAGIC, MAGIC_ADDR
    movw $(PM1_WAK_STS | PM1_RTC), EXPECT_ADDR
    cmpb $'w', mode(%rip)
    jne 3f
    movw $(PM1_WAK_STS | PM1_PWRBTN), EXPECT_ADDR

    /* RTC alarm: seconds = now + 2 (BCD), minutes and hours "don't care" */
3:  RTC_READ RTC_REG_A
    test $0x80, %al                         /* wait out an update in progress */
    jnz 3b
    xor %eax, %eax
    out %al, $RTC_INDEX
    in $RTC_DATA, %al                       /* seconds, BCD */
    mov %eax, %ecx
    shr $4, %ecx
    imul $10, %ecx, %ecx
    and $0x0f, %eax
    add %ecx, %eax
    add $2, %eax
    xor %edx, %edx
    mov $60, %ecx
    div %ecx                                /* %edx = (seconds + 2) % 60 */
    mov %edx, %eax
    xor %edx, %edx
    mov $10, %ecx
    div %ecx
    shl $4, %eax
    or %edx, %eax                           /* back to BCD */
    mov %al, alarm_sec(%rip)
    RTC_WRITE 0x01                          /* seconds alarm */
    mov $0xc0, %al
    RTC_WRITE 0x03                          /* minutes: don't care */
    mov $0xc0, %al
    RTC_WRITE 0x05                          /* hours: don't care */
    RTC_READ RTC_REG_C                      /* clear pending flags */
    RTC_READ RTC_REG_B
    or $REG_B_AIE, %al
    RTC_WRITE RTC_REG_B

    /* PM1: clear the status bits, RTC_EN unless woken from outside */
    mov pm1_evt(%rip), %edx
    mov $0xffff, %ax
    out %ax, %dx
    add $2, %edx
    mov $PM1_RTC, %ax
    cmpb $'w', mode(%rip)
    jne 4f
    xor %eax, %eax
4:  out %ax, %dx

    lea s_suspend(%rip), %rsi
    call puts64
    movzbl alarm_sec(%rip), %eax
    shr $4, %eax
    add $'0', %al
    call putc64
    movzbl alarm_sec(%rip), %eax
    and $0xf, %eax
    add $'0', %al
    call putc64
    mov $'\n', %al
    call putc64

    mov pm1_cnt(%rip), %edx
    mov $SLP_S3, %ax
    out %ax, %dx
    /* Suspended: nothing below runs unless S3 failed. */
    mov $200000000, %ecx
5:  pause
    loop 5b
    lea s_awake(%rip), %rsi
    call puts64
    mov $1, %al
    out %al, $DM_EXIT_PORT
6:  hlt
    jmp 6b

/* start_ap: INIT-SIPI-SIPI to the others (vector 8: 0x8000), wait for one to count in */
start_ap:
    movw $0, AP_COUNT
    mov $LAPIC_BASE, %ebx
    movl $0x1ff, 0xf0(%rbx)                 /* software-enable the LAPIC */
    movl $0, 0x310(%rbx)
    movl $0x000c4500, 0x300(%rbx)           /* INIT, all excluding self */
    call delay64
    movl $0x000c4608, 0x300(%rbx)           /* SIPI, vector 8 */
    call delay64
    movl $0x000c4608, 0x300(%rbx)
1:  pause
    cmpw $1, AP_COUNT
    jb 1b
    lea s_ap(%rip), %rsi
    call puts64
    ret
delay64:
    push %rcx
    mov $20000, %ecx
1:  pause
    loop 1b
    pop %rcx
    ret

fail_tables:
    lea s_tables(%rip), %rsi
    call puts64
    mov $1, %al
    out %al, $DM_EXIT_PORT
7:  hlt
    jmp 7b

/*
 * The resume stub, copied to WAKE_ADDR: real mode, CS = WAKE_ADDR >> 4,
 * IP = 0.  Data addresses inside it are offsets from resume_stub (S());
 * jumps and calls inside it are relative, so it runs where it is copied.
 */
#define S(x) ((x) - resume_stub)
    .code16
resume_stub:
    cli
    mov %cs, %ax
    mov %ax, %ds
    mov %ax, %ss                            /* a stack of its own, below MAGIC_ADDR */
    mov $0xfe0, %sp
    mov $S(r_hello), %si
    call r_puts
    mov $1, %bl
    xor %ax, %ax
    mov %ax, %es
    cmpl $MAGIC, %es:MAGIC_ADDR             /* memory kept */
    jne r_fail
    mov $2, %bl
    mov $0xb000, %dx                        /* PM1_STS (Ferry's PM1a_EVT_BLK) */
    in %dx, %ax
    mov %es:EXPECT_ADDR, %cx
    and %cx, %ax
    cmp %cx, %ax                            /* WAK_STS and the wake source */
    jne r_fail
    mov $3, %bl
    mov $RTC_REG_B, %al
    out %al, $RTC_INDEX
    in $RTC_DATA, %al
    test $REG_B_AIE, %al                    /* the RTC was reset */
    jnz r_fail
    mov $S(r_ok), %si
    call r_puts
    xor %al, %al
    out %al, $DM_EXIT_PORT
1:  hlt
    jmp 1b
r_fail:
    mov $S(r_bad), %si
    call r_puts
    mov %bl, %al
    out %al, $DM_EXIT_PORT
1:  hlt
    jmp 1b
/* r_puts: NUL-terminated string at %ds:%si to COM1 (ferry-dm's UART, reset on S3) */
r_puts:
    push %ax
    push %dx
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %ah
    mov $(COM1 + 5), %dx
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    mov $COM1, %dx
    mov %ah, %al
    out %al, %dx
    jmp 1b
3:  pop %dx
    pop %ax
    ret
r_hello: .asciz "real mode at the waking vector\n"
r_ok:    .asciz "resumed: WAK_STS and the wake source set, memory kept, devices reset\n"
r_bad:   .asciz "FAIL resume check (exit status: 1 memory, 2 PM1_STS, 3 RTC)\n"
resume_stub_end:

/* The X_Firmware_Waking_Vector stub: 32-bit flat protected mode, paging off, in place. */
    .code32
resume32:
    cli
    mov $0x7fe0, %esp
    mov $s32_hello, %esi
    call r32_puts
    mov $1, %bl
    cmpl $MAGIC, MAGIC_ADDR
    jne r32_fail
    mov $2, %bl
    mov $0xb000, %dx
    in %dx, %ax
    and $(PM1_WAK_STS | PM1_RTC), %ax
    cmp $(PM1_WAK_STS | PM1_RTC), %ax
    jne r32_fail
    mov %cr0, %eax
    mov $4, %bl
    test $0x80000000, %eax                  /* paging off */
    jnz r32_fail
    mov $s32_ok, %esi
    call r32_puts
    xor %al, %al
    out %al, $DM_EXIT_PORT
1:  hlt
    jmp 1b
r32_fail:
    mov $s32_bad, %esi
    call r32_puts
    mov %bl, %al
    out %al, $DM_EXIT_PORT
1:  hlt
    jmp 1b
r32_puts:
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %ah
    mov $(COM1 + 5), %dx
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    mov $COM1, %dx
    mov %ah, %al
    out %al, %dx
    jmp 1b
3:  ret
    .code64

/* The second vCPU: counts itself in, then halts with interrupts off. */
    .section .realmode, "ax"
    .code16
ap_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lock incw AP_COUNT
1:  hlt
    jmp 1b
    .code64
    .text

#include "lib64.inc"
    .section .rodata
s_found:   .asciz "FADT, FACS (through FIRMWARE_CTRL) and PM1a found\n"
s_suspend: .asciz "suspending to RAM (S3), RTC alarm at second "
s_awake:   .asciz "FAIL still running after writing S3 to PM1a_CNT\n"
s32_hello: .asciz "32-bit protected mode at the X waking vector\n"
s32_ok:    .asciz "resumed: WAK_STS and RTC_STS set, memory kept, paging off\n"
s32_bad:   .asciz "FAIL 32-bit resume check (exit status: 1 memory, 2 PM1_STS, 4 paging)\n"
s_ap:      .asciz "the second vCPU is up and halted\n"
s_tables:  .asciz "FAIL no FADT/FACS through RSDP -> RSDT -> FIRMWARE_CTRL\n"
    .data
facs:      .quad 0
pm1_evt:   .long 0
pm1_cnt:   .long 0
mode:      .byte 0
alarm_sec: .byte 0
