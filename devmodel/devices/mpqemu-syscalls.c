// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syscalls of the QEMU-hosted device (mpqemu) beyond the base list.
 *
 * ferry-dm never forks or executes anything itself.  The remote QEMU is
 * (re)started through the launcher (devmodel/launcher.h): a helper forked
 * before confinement that holds the one fixed qemu-system-x86_64 command
 * line, drops to the same user with no_new_privs, and hands back the
 * mpqemu socket and QEMU's stderr pipe by SCM_RIGHTS; stopping an instance
 * (kill + reap) is a request to the helper too, since a confined ferry-dm
 * may signal only itself.  The mpqemu messages (SYNC_SYSMEM with the guest
 * RAM memfd, SET_IRQFD with eventfds) are sendmsg/recvmsg, eventfd2 and
 * mmap without PROT_EXEC: all in the base list.  What is left is reaping
 * the helper itself at the end.
 */
#include <sys/wait.h>

#include "devmodel/sandbox.h"

FERRY_SYSCALL_LIST(ferry_syscalls_mpqemu, "mpqemu",
    "QEMU-hosted device over mpqemu; QEMU (re)starts and stops through the pre-forked launcher",
    FERRY_SC("wait4"), FERRY_SC("waitid"));
