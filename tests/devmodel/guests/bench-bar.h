/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest of bench/qemu-bar-rtt (bench-bar.S) and the bench itself share
 * these (cpp only, so both C and the assembler include it).  The ports
 * 0x5f0-0x5ff are handled in-process by the bench, which plays ferry-hv;
 * everything else goes to the real ferry-dm.
 */
#ifndef FERRY_BENCH_BAR_H
#define FERRY_BENCH_BAR_H

#define BB_PORT_READS   0x5f0       /* read: reads per block */
#define BB_PORT_ROUNDS  0x5f4       /* read: rounds */
#define BB_PORT_FLOOR   0x5f8       /* read: BB_FLOOR_VALUE, answered in ferry-hv */
#define BB_PORT_MARK    0x5fc       /* write K: block K starts now (0: no block) */

/* The kinds of read, 1..BB_KINDS, as the guest's table orders them. */
#define BB_KIND_FLOOR       1       /* in-process port of ferry-hv */
#define BB_KIND_DM_IO       2       /* ferry-dm's pci-test, BAR0 +8 (magic) */
#define BB_KIND_DM_MEM      3       /* ferry-dm's pci-test, BAR1 +0 (scratch) */
#define BB_KIND_QEMU_IO     4       /* RTL8139 in QEMU, BAR0 +0 (IDR0) */
#define BB_KIND_QEMU_MEM    5       /* RTL8139 in QEMU, BAR1 +0 (IDR0) */
#define BB_KINDS            5

#define BB_DM_IO        0xc000      /* where the guest puts the BARs */
#define BB_DM_MEM       0xd0000000
#define BB_QEMU_IO      0xc100
#define BB_QEMU_MEM     0xd0001000
#define BB_QEMU_SLOT    6           /* ferry-dm's addr= for the devices */
#define BB_DM_SLOT      5

#define BB_FLOOR_VALUE  0x59525246  /* "FRRY", as pci-test's magic */
#define BB_MAC_LO       0x12005452  /* 52:54:00:12, RTL8139's IDR0 in QEMU;
                                       also written to pci-test's scratch */

#endif
