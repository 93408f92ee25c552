/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Ports and addresses of ferry-dm's default devices, for the test guests (cpp only). */
#ifndef FERRY_DM_GUEST_H
#define FERRY_DM_GUEST_H

#define COM1            0x3f8
#define COM1_IRQ        4
#define RTC_INDEX       0x70
#define RTC_DATA        0x71
#define PM1A_CNT        0xb004
#define PM_TMR          0xb008
#define SLP_S5          ((0 << 10) | (1 << 13) | 1)    /* SLP_TYP 0 (libacpi's \_S5), SLP_EN, SCI_EN */
#define RESET_CF9       0xcf9
#define DM_EXIT_PORT    0xf4        /* ferry-dm's debug exit */
#define PCI_CF8         0xcf8
#define PCI_CFC         0xcfc
#define PCI_TEST_ID     0xfe011234  /* ferry-dm's pci-test function */
#define PCI_TEST_MAGIC  0x59525246  /* "FRRY" at BAR0 + 8 */
#define GUEST_IO_BAR    0xc000
#define GUEST_IO_BAR2   0xc100
#define GUEST_MEM_BAR   0xd0000000

#endif
