// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syscalls of the 16550 UART's back end beyond the base list: the pty (or
 * stdio) is opened before confinement (posix_openpt, grantpt, unlockpt all
 * happen then); afterwards it only reads, writes (base) and sets line
 * modes.
 */
#include <sys/ioctl.h>

#include "devmodel/sandbox.h"

FERRY_SYSCALL_LIST(ferry_syscalls_serial, "serial",
    "16550 UART on a pty or stdio opened before confinement",
    FERRY_IOCTL(TCGETS), FERRY_IOCTL(TCSETS), FERRY_IOCTL(TCSETSW), FERRY_IOCTL(TCSETSF),
    FERRY_IOCTL(TCFLSH), FERRY_IOCTL(TIOCGWINSZ), FERRY_IOCTL(TIOCOUTQ),
    FERRY_IOCTL(TIOCMGET), FERRY_IOCTL(TIOCMSET));
