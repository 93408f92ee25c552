/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Real mode: exit with status 42 through ferry-dm's debug exit port (0xf4). */
#include "guest.h"
#include "dm-guest.h"
    .code16
    .globl _start
_start:
    cli
    mov $42, %al
    out %al, $DM_EXIT_PORT
1:  hlt
    jmp 1b
