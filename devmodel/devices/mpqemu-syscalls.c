// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syscalls of the QEMU-hosted device (mpqemu) beyond the base list.
 *
 * ferry-dm never executes anything itself.  Restarting the remote QEMU
 * goes through a launcher: a helper forked before confinement (so it
 * keeps no filter of ferry-dm's, but it does drop to the same user and
 * sets no_new_privs) that holds the one fixed qemu-system-x86_64 command
 * line of this device.  ferry-dm asks it over a socketpair ("start
 * instance"), the launcher creates the mpqemu socket pair, forks and execs
 * QEMU with one end and sends the other end back with SCM_RIGHTS; the
 * request carries no argv, so a compromised ferry-dm can at worst restart
 * that same QEMU.  The mpqemu messages themselves (SYNC_SYSMEM with the
 * guest RAM memfd, SET_IRQFD with eventfds) are sendmsg/recvmsg, eventfd2
 * and mmap without PROT_EXEC: all in the base list.  What is left is
 * reaping the launcher when it goes away.
 */
#include <sys/wait.h>

#include "devmodel/sandbox.h"

FERRY_SYSCALL_LIST(ferry_syscalls_mpqemu, "mpqemu",
    "QEMU-hosted device over mpqemu; QEMU restarts through the pre-forked launcher",
    FERRY_SC("wait4"), FERRY_SC("waitid"));
