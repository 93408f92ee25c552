/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Ports and addresses shared by the test guests (GNU assembler, through
 * cpp) and the test ioreq server (tests/guest/test-server.c).  Only
 * #defines here, so both languages can include it.
 */
#ifndef FERRY_TEST_GUEST_H
#define FERRY_TEST_GUEST_H

#define DEBUGCON_PORT       0xe9        /* ferry-hv's debug console */
#define DEBUG_EXIT_PORT     0x501       /* ferry-hv's debug exit: status = value */

/* The test server (tests/guest/test-server.c). */
#define TS_REGS             0x600       /* 64 bytes of byte-addressed registers */
#define TS_REGS_SIZE        0x40
#define TS_FIFO             0x640       /* read: 1, 2, 3, ... (per access) */
#define TS_IRQ              0x650       /* write: pulse the irqfd of TS_IRQ_GSI */
#define TS_DIE              0x651       /* write: the server exits at once */
#define TS_IRQ_LINE         0x653       /* write L: set GSI TS_IRQ_LINE_GSI to level L
                                           (IRQ_LINE message, no irqfd) */
#define TS_SHUTDOWN         0x652       /* write N: server asks for poweroff, code N */
#define TS_DMA_LO           0x654       /* DMA address, low 32 bits */
#define TS_DMA_HI           0x658       /* DMA address, high 32 bits */
#define TS_DMA_CMD          0x65c       /* write S: fill 4 KiB at the DMA address with
                                           qword i = S * (i + 1); read: the sum of the
                                           4 KiB as qwords, low 32 bits */
#define TS_DMA_SRC_LO       0x660       /* copy source address, low 32 bits */
#define TS_DMA_SRC_HI       0x664       /* copy source address, high 32 bits */
#define TS_DMA_COPY         0x668       /* write: copy 4 KiB from the source to the
                                           DMA address */
#define TS_PORT_END         0x66f
#define TS_UNCLAIMED_PORT   0x700
#define TS_UART             0x3f8       /* a write-only 16550 stub: THR to stdout */
#define TS_MMIO             0xd0000000  /* 4 KiB of byte-addressed registers */
#define TS_MMIO_SIZE        0x1000
#define TS_MMIO_UNCLAIMED   0xd1000000
#define TS_BUF_MMIO         0xa0000     /* 4 KiB, claimed buffered (posted writes) */
#define TS_BUF_MMIO_SIZE    0x1000
#define TS_PCI_DEV          3           /* 00:03.0 */
#define TS_PCI_ID           0x4a11fe7e  /* device 0x4a11, vendor 0xfe7e */
#define TS_PCI_NODEV        4           /* 00:04.0: nobody */
#define TS_IRQ_GSI          5
#define TS_IRQ_VECTOR       0x30
#define TS_IRQ_LINE_GSI     6
#define TS_IRQ_LINE_VECTOR  0x31

#define ECAM_BASE           0xe0000000
#define LAPIC_BASE          0xfee00000
#define IOAPIC_BASE         0xfec00000

#endif
