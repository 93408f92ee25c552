/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Real mode: a burst of 1000 POST codes (0x00, 0x01, ... 0xe7) then 0xab to
 * port 0x80, all posted writes, then halt with interrupts off: no
 * synchronous request follows to push them, so the harness sees them
 * arrive (query-devices) only through the doorbell or the server's timer.
 */
#include "guest.h"
#include "dm-guest.h"
    .code16
    .globl _start
_start:
    cli
    mov $1000, %cx
    xor %al, %al
1:  out %al, $0x80
    inc %al
    loop 1b
    mov $0xab, %al
    out %al, $0x80
2:  hlt
    jmp 2b
