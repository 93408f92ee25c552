/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A PVH image with 64 MiB of bss: too big for a small guest (a bad image). */
#include "guest.h"
#include "pvh.inc"
    .code32
    .globl _start
_start:
    mov $1, %al
    mov $DEBUG_EXIT_PORT, %dx
    out %al, %dx
    .bss
    .skip 64 << 20
