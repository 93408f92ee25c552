// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm replaced under a busy 64-bit guest (tests/devmodel/run-dm-guest.py
 * replace-all): in a loop, until a byte arrives on COM1's input, the guest
 *   - streams 'a'..'z' through COM1 (ferry-dm's UART, output to a file),
 *     writing the scratch register and reading it back before every byte;
 *   - reads the RTC (seconds of the day) and the ACPI PM timer: neither may
 *     go backwards;
 *   - sends a frame through a QEMU-hosted RTL8139 at 00:06 in transmit
 *     loopback (QEMU reads it from guest RAM and writes it back into the
 *     receive ring by DMA), checks it byte for byte and waits for both
 *     interrupts (TOK and ROK) on its INTx, level through the IOAPIC;
 *   - asks ferry-dm's pci-test function at 00:05 for MSI vector 0 and waits
 *     for exactly that one message.
 * Any read of all ones, a lost scratch value, time going backwards, a frame
 * or interrupt that does not come (within a minute of PM timer), an MSI too
 * many or more INTx interrupts for a frame than it can raise is a FAIL on ferry-hv's debug console and exit 1.  At
 * the end it prints "sent 0x<bytes> frames <n> msis <n> irqs <n>", then
 * "kill the remote now"; once the test has had the last ferry-dm restart
 * the remote QEMU and sends another byte, it loops one more frame through
 * the new QEMU and exits 0.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest.h"

#define COM1            0x3f8
#define PM_TMR          0xb008
#define PM_HZ           3579545u
#define PCI_CF8         0xcf8
#define PCI_CFC         0xcfc
#define PCI_TEST_ID     0xfe011234u
#define RTL_ID          0x813910ecu
#define TEST_DEV        5
#define RTL_DEV         6
#define TEST_IO         0xc000
#define RTL_IO          0xc100
#define MSI_VECTOR      0x51
#define RTL_VECTOR      0x42
#define WAIT_TICKS      (60u * PM_HZ)

#define RTL_TSD0        0x10
#define RTL_TSAD0       0x20
#define RTL_RBSTART     0x30
#define RTL_CR          0x37
#define RTL_IMR         0x3c
#define RTL_ISR         0x3e
#define RTL_TCR         0x40
#define RTL_RCR         0x44
#define CR_RST          0x10
#define CR_RE           0x08
#define CR_TE           0x04
#define ISR_ROK         0x0001
#define ISR_TOK         0x0004
#define TCR_LOOP        0x00060000u
#define FRAME_LEN       200u

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void dputs(const char *s) { while (*s) outb(DEBUGCON_PORT, (uint8_t)*s++); }

static void dhex(uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--)
        outb(DEBUGCON_PORT, (uint8_t)"0123456789abcdef"[(v >> (i * 4)) & 0xf]);
}

static uint32_t sent, frames, msis_sent;
static volatile uint32_t msis, rtl_irqs, isr_seen;

static __attribute__((noreturn)) void fail(const char *what, uint64_t v)
{
    dputs("FAIL dm-replace-all: ");
    dputs(what);
    dputs(" 0x");
    dhex(v, 8);
    dputs(" after 0x");
    dhex(sent, 8);
    dputs(" bytes\n");
    outb(DEBUG_EXIT_PORT, 1);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static uint32_t pm_now(void)
{
    uint32_t v = inl(PM_TMR);

    if (v == 0xffffffffu)
        fail("PM timer read all ones", v);
    return v;
}

static uint32_t cfg_read(unsigned dev, unsigned reg)
{
    outl(PCI_CF8, 0x80000000u | dev << 11 | reg);
    return inl(PCI_CFC);
}

static void cfg_write(unsigned dev, unsigned reg, uint32_t v)
{
    outl(PCI_CF8, 0x80000000u | dev << 11 | reg);
    outl(PCI_CFC, v);
}

/* ---- interrupts ----------------------------------------------------------- */

void msi_isr(void);
void rtl_isr(void);
void spurious_isr(void);
void msi_irq(void);
void rtl_irq(void);
__asm__(".text\n"
        ".globl msi_isr\n"
        "msi_isr:\n"
        "  push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
        "  push %r8; push %r9; push %r10; push %r11\n"
        "  cld\n"
        "  call msi_irq\n"
        "  pop %r11; pop %r10; pop %r9; pop %r8\n"
        "  pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
        "  iretq\n"
        ".globl rtl_isr\n"
        "rtl_isr:\n"
        "  push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
        "  push %r8; push %r9; push %r10; push %r11\n"
        "  cld\n"
        "  call rtl_irq\n"
        "  pop %r11; pop %r10; pop %r9; pop %r8\n"
        "  pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
        "  iretq\n"
        ".globl spurious_isr\n"
        "spurious_isr:\n"
        "  iretq\n");

static void mmio_wr(uint32_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }

void msi_irq(void)
{
    msis++;
    mmio_wr(LAPIC_BASE + 0xb0, 0);
}

/* Collect and acknowledge ISR before the EOI, so the resample finds INTx low. */
void rtl_irq(void)
{
    uint16_t isr = inw(RTL_IO + RTL_ISR);

    if (isr == 0xffff)
        fail("RTL8139 ISR read all ones in the handler", isr);
    isr_seen |= isr;
    if (isr)
        outw(RTL_IO + RTL_ISR, isr);
    rtl_irqs++;
    mmio_wr(LAPIC_BASE + 0xb0, 0);
}

static void set_gate(unsigned vector, void (*handler)(void))
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;
    uint64_t h = (uint64_t)(uintptr_t)handler;
    uint32_t *g;

    __asm__ volatile("sidt %0" : "=m"(idtr));
    g = (uint32_t *)(uintptr_t)(idtr.base + 16 * vector);
    g[0] = (uint32_t)(h & 0xffff) | 0x08u << 16;
    g[1] = (uint32_t)(h & 0xffff0000u) | 0x8e00u;
    g[2] = (uint32_t)(h >> 32);
    g[3] = 0;
}

static void irq_setup(unsigned gsi)
{
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    set_gate(0xff, spurious_isr);
    set_gate(MSI_VECTOR, msi_isr);
    set_gate(RTL_VECTOR, rtl_isr);
    mmio_wr(LAPIC_BASE + 0xf0, 0x1ff);
    mmio_wr(LAPIC_BASE + 0x80, 0);
    mmio_wr(IOAPIC_BASE, 0x11 + 2 * gsi);
    mmio_wr(IOAPIC_BASE + 0x10, 0);
    mmio_wr(IOAPIC_BASE, 0x10 + 2 * gsi);
    mmio_wr(IOAPIC_BASE + 0x10, RTL_VECTOR | 1u << 13 | 1u << 15);  /* level, active low */
    __asm__ volatile("sti");
}

/* ---- the checks ----------------------------------------------------------- */

static uint32_t pm_last;
static int32_t rtc_last = -1;

static void check_time(void)
{
    uint32_t now = pm_now();

    if ((int32_t)(now - pm_last) < 0)
        fail("PM timer went backwards from", pm_last);
    pm_last = now;
    /* RTC: BCD hours, minutes, seconds; read until two reads agree (an update between). */
    uint8_t v[3], w[3];
    do {
        for (unsigned i = 0; i < 3; i++) {
            outb(0x70, (uint8_t)(4 - 2 * i));
            v[i] = inb(0x71);
        }
        for (unsigned i = 0; i < 3; i++) {
            outb(0x70, (uint8_t)(4 - 2 * i));
            w[i] = inb(0x71);
        }
    } while (v[0] != w[0] || v[1] != w[1] || v[2] != w[2]);
    for (unsigned i = 0; i < 3; i++)
        if (v[i] == 0xff)
            fail("RTC read all ones", i);
#define BCD(x) (((x) >> 4) * 10 + ((x) & 0xf))
    int32_t sod = (int32_t)(BCD(v[0] & 0x3f) * 3600 + BCD(v[1]) * 60 + BCD(v[2]));
    if (rtc_last >= 0 && sod < rtc_last && !(rtc_last > 86000 && sod < 400))
        fail("RTC went backwards from second", (uint64_t)rtc_last);
    rtc_last = sod;
}

/* Some bytes of the stream; true when the test said stop. */
static bool stream(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t scr = (uint8_t)(sent * 7 + 3);

        outb(COM1 + 7, scr);
        uint8_t back = inb(COM1 + 7);
        if (back != scr)
            fail("scratch register lost its value", back);
        uint8_t lsr = inb(COM1 + 5);
        if (lsr == 0xff)
            fail("LSR read all ones", lsr);
        if (lsr & 1) {
            (void)inb(COM1);
            return true;
        }
        if (!(lsr & 0x20)) {        /* THR full: try again */
            i--;
            continue;
        }
        outb(COM1, (uint8_t)('a' + sent % 26));
        sent++;
    }
    return false;
}

static void wait_for(volatile uint32_t *v, uint32_t want, const char *what)
{
    uint32_t start = pm_now();

    while (*v < want) {
        if (pm_now() - start > WAIT_TICKS)
            fail(what, *v);
        __asm__ volatile("pause");
    }
    if (*v != want)
        fail(what, *v);
}

static void msi_once(void)
{
    msis_sent++;
    outl(TEST_IO + 4, 2);
    wait_for(&msis, msis_sent, "MSI count (lost or extra)");
}

static uint8_t rx_ring[0x3000] __attribute__((aligned(4096)));
static uint8_t tx_buf[2048] __attribute__((aligned(4096)));

/*
 * TOK and ROK come as one or two assertions of INTx, and each may fire
 * once more with ISR already clear (this machine's KVM signals the
 * resample fd before the handler has run: see dm-rtl8139.S), the echo
 * perhaps late: more than four interrupts per frame over the run is a
 * spurious one.
 */
#define IRQS_PER_FRAME_MAX  4u

static void rtl_loop_once(void)
{
    uint32_t start = pm_now();

    outb(RTL_IO + RTL_CR, CR_RST);
    while (inb(RTL_IO + RTL_CR) & CR_RST)
        if (pm_now() - start > WAIT_TICKS)
            fail("RTL8139 reset did not end", inb(RTL_IO + RTL_CR));
    for (unsigned i = 0; i < sizeof(rx_ring); i++)
        rx_ring[i] = 0xee;
    for (unsigned i = 0; i < 6; i++)
        tx_buf[i] = (uint8_t)(0x52 + i);
    for (unsigned i = 6; i < FRAME_LEN; i++)
        tx_buf[i] = (uint8_t)(i * 13 + frames);
    tx_buf[12] = 0x88;
    tx_buf[13] = 0xb5;
    isr_seen = 0;
    outl(RTL_IO + RTL_RBSTART, (uint32_t)(uintptr_t)rx_ring);
    outw(RTL_IO + RTL_IMR, ISR_ROK | ISR_TOK);
    outl(RTL_IO + RTL_RCR, 0x8f);
    outb(RTL_IO + RTL_CR, CR_RE | CR_TE);
    outl(RTL_IO + RTL_TCR, TCR_LOOP);
    if ((inl(RTL_IO + RTL_TCR) & TCR_LOOP) != TCR_LOOP)
        fail("RTL8139 TCR loopback bits", inl(RTL_IO + RTL_TCR));
    outl(RTL_IO + RTL_TSAD0, (uint32_t)(uintptr_t)tx_buf);
    outl(RTL_IO + RTL_TSD0, FRAME_LEN);
    while ((isr_seen & (ISR_ROK | ISR_TOK)) != (ISR_ROK | ISR_TOK))
        if (pm_now() - start > WAIT_TICKS)
            fail("RTL8139 interrupts (TOK, ROK) did not come; ISR seen", isr_seen);
    uint16_t status = (uint16_t)(rx_ring[0] | rx_ring[1] << 8);
    uint16_t len = (uint16_t)(rx_ring[2] | rx_ring[3] << 8);
    if (!(status & 1) || len != FRAME_LEN + 4)
        fail("RTL8139 received status/length", (uint32_t)status << 16 | len);
    for (unsigned i = 0; i < FRAME_LEN; i++)
        if (rx_ring[4 + i] != tx_buf[i])
            fail("RTL8139 frame differs at byte", i);
    frames++;
}

static void find(unsigned dev, uint32_t id)
{
    uint32_t v = cfg_read(dev, 0);

    if (v != id)
        fail("PCI ids", v);
}

int guest_main(void *start_info)
{
    (void)start_info;
    find(TEST_DEV, PCI_TEST_ID);
    find(RTL_DEV, RTL_ID);
    if (inb(COM1 + 5) != 0x60)
        fail("COM1 is not ferry-dm's UART", inb(COM1 + 5));

    /* pci-test: I/O BAR, MSI to APIC 0 vector MSI_VECTOR. */
    unsigned cap = cfg_read(TEST_DEV, 0x34) & 0xff;
    if ((cfg_read(TEST_DEV, cap) & 0xff) != 0x05)
        fail("pci-test has no MSI capability first", cap);
    cfg_write(TEST_DEV, 0x10, TEST_IO);
    cfg_write(TEST_DEV, cap + 4, 0xfee00000u);
    cfg_write(TEST_DEV, cap + 8, 0);
    cfg_write(TEST_DEV, cap + 12, MSI_VECTOR);
    cfg_write(TEST_DEV, cap, cfg_read(TEST_DEV, cap) | 0x10000);
    cfg_write(TEST_DEV, 0x04, 0x0005);

    /* RTL8139: I/O BAR only, bus mastering; INTA on IOAPIC pin 16 + (dev + 0) % 4. */
    cfg_write(RTL_DEV, 0x10, RTL_IO);
    cfg_write(RTL_DEV, 0x04, 0x0005);
    if (inl(RTL_IO) != 0x12005452u)
        fail("RTL8139 MAC", inl(RTL_IO));
    irq_setup(16 + RTL_DEV % 4);

    pm_last = pm_now();
    dputs("waiting: streaming, polling, looping frames, taking MSIs\n");
    for (;;) {
        check_time();
        if (stream(64))
            break;
        rtl_loop_once();
        msi_once();
        check_time();
    }
    /* A while with interrupts on: nothing more may come. */
    uint32_t start = pm_now(), irqs = rtl_irqs;
    while (pm_now() - start < PM_HZ / 10)
        __asm__ volatile("pause");
    if (msis != msis_sent)
        fail("an MSI too many", msis);
    if (rtl_irqs > IRQS_PER_FRAME_MAX * frames)
        fail("RTL8139 interrupts, more than its frames can raise", rtl_irqs);
    dputs("sent 0x");
    dhex(sent, 8);
    dputs(" frames 0x");
    dhex(frames, 8);
    dputs(" msis 0x");
    dhex(msis, 8);
    dputs(" irqs 0x");
    dhex(irqs, 8);
    dputs("\n");
    /*
     * The last ferry-dm supervises the QEMU it took over: the test kills
     * that QEMU, waits until ferry-dm has restarted it, and sends another
     * byte; the NIC (reset, its config replayed) must loop a frame again.
     */
    dputs("kill the remote now\n");
    while (!(inb(COM1 + 5) & 1))
        __asm__ volatile("pause");
    (void)inb(COM1);
    if (inl(RTL_IO) != 0x12005452u)
        fail("RTL8139 MAC after the restart", inl(RTL_IO));
    rtl_loop_once();
    msi_once();
    dputs("restarted: a frame looped again\n");
    return 0;
}
