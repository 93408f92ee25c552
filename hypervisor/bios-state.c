// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a PC BIOS leaves behind when it hands over to a multiboot loader,
 * for guests that count on it as they do under QEMU (SeaBIOS runs first
 * there): the 8259 pair initialised with vectors 0x08 and 0x70 and every
 * line masked but the timer (IRQ 0) and the cascade (IRQ 2), the 8254's
 * channel 0 in mode 2 with a count of 65536 (18.2 Hz), and a real-mode
 * interrupt vector table whose entries lead to tiny handlers in the BIOS
 * area: an EOI and an IRET for the hardware interrupts, an IRET for the
 * rest.  kvm-unit-tests' realmode test halts with interrupts on and is
 * woken by that timer tick.  SeaBIOS's layout (pic_setup, pit_setup) was
 * the reference; nothing of it is copied.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hypervisor/hv.h"
#include "hypervisor/memmap.h"

#define BIOS_STUB_SEG       0xf000u     /* the handlers sit at F000:0000 */
#define BIOS_STUB_BASE      0xf0000ull
#define STUB_IRET           0x00        /* iret */
#define STUB_EOI_MASTER     0x10        /* push ax; mov al,0x20; out 0x20,al; pop ax; iret */
#define STUB_EOI_SLAVE      0x20        /* the same, to 0xa0 and then 0x20 */
#define PIC_MASTER_VECTOR   0x08
#define PIC_SLAVE_VECTOR    0x70

static const uint8_t stub_iret[] = { 0xcf };
static const uint8_t stub_eoi_master[] = { 0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf };
static const uint8_t stub_eoi_slave[] = { 0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf };

static int bios_pic_set(struct ferry_vm *vm, unsigned chip, uint8_t vector, uint8_t imr)
{
    struct kvm_irqchip ic = { .chip_id = chip };

    if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
        return -errno;
    ic.chip.pic.irq_base = vector;
    ic.chip.pic.imr = imr;
    ic.chip.pic.init_state = 0;     /* ICW1-ICW4 done */
    ic.chip.pic.init4 = 1;          /* 8086 mode */
    ic.chip.pic.auto_eoi = 0;
    ic.chip.pic.irr = 0;
    ic.chip.pic.isr = 0;
    if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
        return -errno;
    return 0;
}

static int bios_pit_set(struct ferry_vm *vm)
{
    struct kvm_pit_state2 ps;

    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &ps) < 0)
        return -errno;
    ps.channels[0].mode = 2;            /* rate generator */
    ps.channels[0].rw_mode = 3;         /* low byte, then high byte */
    ps.channels[0].read_state = 3;
    ps.channels[0].write_state = 3;
    ps.channels[0].bcd = 0;
    ps.channels[0].gate = 1;
    ps.channels[0].count = 0;           /* 65536: 1193182 / 65536 = 18.2 Hz */
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &ps) < 0)
        return -errno;
    return 0;
}

int hv_bios_ivt_write(struct ferry_vm *vm, char *why, size_t why_len)
{
    uint8_t *stubs = hv_vm_gpa_ptr(vm, BIOS_STUB_BASE, 0x100);
    uint8_t *ivt = hv_vm_gpa_ptr(vm, 0, 0x400);

    if (!stubs || !ivt) {
        snprintf(why, why_len, "no RAM for the interrupt vector table and its handlers");
        return -ENOMEM;
    }
    memcpy(stubs + STUB_IRET, stub_iret, sizeof(stub_iret));
    memcpy(stubs + STUB_EOI_MASTER, stub_eoi_master, sizeof(stub_eoi_master));
    memcpy(stubs + STUB_EOI_SLAVE, stub_eoi_slave, sizeof(stub_eoi_slave));
    for (unsigned v = 0; v < 256; v++) {
        uint16_t off = STUB_IRET;

        if (v >= PIC_MASTER_VECTOR && v < PIC_MASTER_VECTOR + 8)
            off = STUB_EOI_MASTER;
        else if (v >= PIC_SLAVE_VECTOR && v < PIC_SLAVE_VECTOR + 8)
            off = STUB_EOI_SLAVE;
        ivt[v * 4 + 0] = (uint8_t)off;
        ivt[v * 4 + 1] = (uint8_t)(off >> 8);
        ivt[v * 4 + 2] = (uint8_t)BIOS_STUB_SEG;
        ivt[v * 4 + 3] = (uint8_t)(BIOS_STUB_SEG >> 8);
    }
    return 0;
}

int hv_bios_chips_set(struct ferry_vm *vm, char *why, size_t why_len)
{
    int rc = bios_pic_set(vm, KVM_IRQCHIP_PIC_MASTER, PIC_MASTER_VECTOR, 0xfa);
    if (!rc)
        rc = bios_pic_set(vm, KVM_IRQCHIP_PIC_SLAVE, PIC_SLAVE_VECTOR, 0xff);
    if (rc) {
        snprintf(why, why_len, "setting up the 8259s as a BIOS leaves them: %s", strerror(-rc));
        return rc;
    }
    if (vm->have_pit) {
        rc = bios_pit_set(vm);
        if (rc) {
            snprintf(why, why_len, "starting the 8254's timer as a BIOS does: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}
