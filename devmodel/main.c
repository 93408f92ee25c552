// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm: the device model of one guest, an ioreq server on a libevent
 * loop.
 *
 *   ferry-dm --ioreq-fd=N [options]      started by ferry-hv (N: a connected
 *                                        SOCK_SEQPACKET socket to its router)
 *   ferry-dm --connect PATH [options]    started on its own (a toolstack,
 *                                        systemd's ferry-dm@.service)
 *
 * It adds its devices, registers with the router, claims their ranges,
 * enables, and then only reacts: ioreq doorbells, the control socket,
 * device timers and fds.  Idle, it sleeps in epoll.  When the router goes
 * away (the guest ended, ferry-hv exited) it exits 0.
 *
 * Confined by default (sandbox/sandbox.h): everything it needs is opened
 * first (ioreq registration, guest RAM, devices with their ptys, files and
 * QEMU launchers, the control socket), then it drops to the 'ferry' user
 * with no capabilities, no_new_privs, fresh namespaces and a seccomp
 * allow-list made of the base list and the lists of the device types it
 * has, and only then claims its ranges and serves the first ioreq.
 *
 * The program is in modules: dm-config.c (options and the config file),
 * dm-server.c (the ioreq-server side), dm-main.c (the wiring).
 */
#include "devmodel/dm-main.h"

int main(int argc, char **argv)
{
    return dm_main(argc, argv);
}
