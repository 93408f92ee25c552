// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small xHCI driver in a Ferry guest: QEMU's qemu-xhci hosted by
 * ferry-dm's qemu device (a stock QEMU with -machine x-remote), its USB
 * devices usb-redir channels served by ferry-dm's USB service.
 *
 * The guest finds 1b36:000d by a config scan of bus 0, puts its 64-bit
 * BAR0 outside guest RAM, routes its INTx (IOAPIC pin 16 + (slot + pin) % 4,
 * level, active low), resets the controller, sets up the DCBAA, the
 * command ring and one event ring (interrupter 0, interrupts on: every
 * wait sleeps in hlt until the INTx handler, which clears IMAN.IP, or a
 * LAPIC timer tick wakes it), runs it, waits for
 * a device on any root port, resets that port, enables a slot, addresses
 * the device and reads its device, configuration and product string
 * descriptors; prints "device VID:PID "PRODUCT" on port N".
 *
 * With the simulator's vendor loopback device (1d50:6103) it sets the
 * configuration, configures bulk OUT 0x01 and bulk IN 0x82, and moves
 * LOOP_TOTAL bytes through them in LOOP_CHUNK pieces, comparing each piece.
 *
 * Then the steps the test harness (tests/devmodel/xhci-e2e.c) answers, as
 * the kernel command line asks:
 *   kbd     "attach the keyboard now": a second device (the simulator's HID
 *           keyboard, 1d50:6101) appears on another port; the guest
 *           enumerates it, configures its interrupt IN endpoint (Configure
 *           Endpoint), sets the configuration, queues a Normal TRB and
 *           prints "press a key now"; the Transfer Event brings the report
 *           ("key report 00 00 04 ..."), then the release report; "detach
 *           the keyboard now": its port disconnects.
 *   replug  "unplug the device now": the port's connect status drops (a
 *           Port Status Change event); "plug it in again now": the device
 *           comes back by itself (ferry-dm follows hotplug) and loops again;
 *           "detach the device now" (ferry usb detach): it drops again;
 *           "attach it again now" (ferry usb attach): back, loops again.
 *   replace "replace ferry-dm now", REPLACE_ROUNDS times, each followed by a
 *           loopback while the harness replaces ferry-dm (`ferry dm replace`):
 *           every byte compared, and the port's status never changes (no
 *           change bit in PORTSC, no Port Status Change event); then "detach
 *           the device now" and "attach it again now" as with replug, through
 *           the last successor.
 *   always  "kill the remote now": its registers read all ones while the
 *           remote QEMU is down, and once ferry-dm has restarted it (a new
 *           controller, just reset) the guest starts over and finds the
 *           device, re-attached by ferry-dm, on a port again.
 *   linger  after "xhci guest done" the guest waits instead of exiting
 *           (the harness ends ferry-dm with SIGTERM).
 *   bench   only the loopback, timed (bench/usb-ferry-guest).
 *
 * Output goes to COM1 (ferry-dm's 16550); every wait is bounded by the ACPI
 * PM timer; a failure prints a FAIL line and exits 1 through ferry-dm's
 * debug exit (0xf4), success exits 0.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COM1            0x3f8
#define PM_TMR          0xb008
#define PM_HZ           3579545u
#define DM_EXIT_PORT    0xf4
#define PCI_CF8         0xcf8
#define PCI_CFC         0xcfc
#define XHCI_BAR        0xd0000000u
#define XHCI_ID         0x000d1b36u     /* Red Hat qemu-xhci */
#define SIM_VID         0x1d50
#define SIM_PID_VENDOR  0x6103
#define SIM_PID_KEYBOARD 0x6101

#define LOOP_CHUNK      (32u * 1024u)
#define LOOP_TOTAL      (1024u * 1024u)
#define REPLACE_ROUNDS  5u
#define WAIT_S          20u             /* one wait: a minute */

/* ---- port I/O, console, timer ------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }

static void putc_(char c)
{
    for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        ;
    outb(COM1, (uint8_t)c);
}

static void puts_(const char *s) { while (*s) putc_(*s++); }

static void puthex(uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--)
        putc_("0123456789abcdef"[(v >> (i * 4)) & 0xf]);
}

static void putdec(uint64_t v)
{
    char b[24];
    int n = 0;
    do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n)
        putc_(b[--n]);
}

static __attribute__((noreturn)) void guest_exit(unsigned status)
{
    outb(DM_EXIT_PORT, (uint8_t)status);
    for (;;)
        __asm__ volatile("hlt");
}

static __attribute__((noreturn)) void fail(const char *what, uint64_t v)
{
    puts_("FAIL ");
    puts_(what);
    puts_(" 0x");
    puthex(v, 8);
    puts_("\n");
    guest_exit(1);
}

/* A deadline in PM timer ticks (32 bits, wraps every 20 minutes). */
struct deadline { uint32_t start, ticks; };

static struct deadline deadline_s(unsigned s) { return (struct deadline){ inl(PM_TMR), s * PM_HZ }; }
static bool expired(const struct deadline *d) { return inl(PM_TMR) - d->start > d->ticks; }

/* ---- PCI ---------------------------------------------------------------- */

static uint32_t cfg_read(uint32_t addr) { outl(PCI_CF8, addr); return inl(PCI_CFC); }
static void cfg_write(uint32_t addr, uint32_t v) { outl(PCI_CF8, addr); outl(PCI_CFC, v); }

/* ---- interrupts: IOAPIC -> LAPIC -> an IDT gate ------------------------------ */

#define IOAPIC_BASE     0xfec00000u
#define LAPIC_BASE      0xfee00000u
#define XHCI_VECTOR     0x43
#define TICK_VECTOR     0x44

void xhci_isr(void);
void tick_isr(void);
void spurious_isr(void);
void xhci_irq(void);
/* The stubs: caller-saved registers around the C handler (the entry left
 * the stack 8 mod 16; nine pushes align it for the call), then iretq. */
__asm__(".text\n"
        ".globl xhci_isr\n"
        "xhci_isr:\n"
        "  push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
        "  push %r8; push %r9; push %r10; push %r11\n"
        "  cld\n"
        "  call xhci_irq\n"
        "  pop %r11; pop %r10; pop %r9; pop %r8\n"
        "  pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
        "  iretq\n"
        ".globl tick_isr\n"
        "tick_isr:\n"
        "  push %rax\n"
        "  mov $0xfee000b0, %eax\n"
        "  movl $0, (%rax)\n"
        "  pop %rax\n"
        "  iretq\n"
        ".globl spurious_isr\n"
        "spurious_isr:\n"
        "  iretq\n");

static void set_gate(unsigned vector, void (*handler)(void))
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;
    uint64_t h = (uint64_t)(uintptr_t)handler;
    uint32_t *g;

    __asm__ volatile("sidt %0" : "=m"(idtr));
    g = (uint32_t *)(uintptr_t)(idtr.base + 16 * vector);
    g[0] = (uint32_t)(h & 0xffff) | 0x08u << 16;          /* CS 0x08 */
    g[1] = (uint32_t)(h & 0xffff0000u) | 0x8e00u;          /* present, interrupt gate */
    g[2] = (uint32_t)(h >> 32);
    g[3] = 0;
}

static void mmio_wr(uint32_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }

static void ioapic_route(unsigned pin, uint32_t low)
{
    mmio_wr(IOAPIC_BASE, 0x11 + 2 * pin);       /* destination APIC 0 first */
    mmio_wr(IOAPIC_BASE + 0x10, 0);
    mmio_wr(IOAPIC_BASE, 0x10 + 2 * pin);
    mmio_wr(IOAPIC_BASE + 0x10, low);
}

/*
 * PICs masked, LAPIC on (spurious vector 0xff), the xHCI's INTx pin routed
 * level-triggered and active low (as Linux programs a PCI line), and a
 * periodic LAPIC timer tick that only ends a hlt, so that the waits, which
 * sleep until an interrupt, still see their deadlines.
 */
static void irq_setup(unsigned gsi)
{
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    set_gate(0xff, spurious_isr);
    set_gate(XHCI_VECTOR, xhci_isr);
    set_gate(TICK_VECTOR, tick_isr);
    mmio_wr(LAPIC_BASE + 0xf0, 0x1ff);
    mmio_wr(LAPIC_BASE + 0x80, 0);
    mmio_wr(LAPIC_BASE + 0x3e0, 0xb);                       /* divide by 1 */
    mmio_wr(LAPIC_BASE + 0x320, TICK_VECTOR | 1u << 17);    /* periodic */
    mmio_wr(LAPIC_BASE + 0x380, 10000000);
    ioapic_route(gsi, XHCI_VECTOR | 1u << 13 | 1u << 15);
    __asm__ volatile("sti");
}

/* Sleep until the next interrupt (sti; hlt cannot miss one that comes between). */
static void wait_irq(void)
{
    __asm__ volatile("cli; sti; hlt" ::: "memory");
}

/* ---- xHCI registers ------------------------------------------------------- */

#define CAP_HCSPARAMS1  0x04
#define CAP_HCSPARAMS2  0x08
#define CAP_DBOFF       0x14
#define CAP_RTSOFF      0x18
#define OP_USBCMD       0x00
#define OP_USBSTS       0x04
#define OP_CRCR         0x18
#define OP_DCBAAP       0x30
#define OP_CONFIG       0x38
#define OP_PORTSC(n)    (0x400 + 0x10 * ((n) - 1))
#define IR0_IMAN        0x20
#define IR0_ERSTSZ      0x28
#define IR0_ERSTBA      0x30
#define IR0_ERDP        0x38

#define CMD_RS          (1u << 0)
#define CMD_HCRST       (1u << 1)
#define CMD_INTE        (1u << 2)
#define STS_HCH         (1u << 0)
#define STS_CNR         (1u << 11)

#define PORT_CCS        (1u << 0)
#define PORT_PED        (1u << 1)
#define PORT_PR         (1u << 4)
#define PORT_PP         (1u << 9)
#define PORT_CHANGES    (0x7fu << 17)   /* CSC PEC WRC OCC PRC PLC CEC (write 1 to clear) */
#define PORT_CSC        (1u << 17)
#define PORT_PRC        (1u << 21)

#define TRB_NORMAL      1
#define TRB_SETUP       2
#define TRB_DATA        3
#define TRB_STATUS      4
#define TRB_LINK        6
#define TRB_ENABLE_SLOT 9
#define TRB_DISABLE_SLOT 10
#define TRB_ADDRESS_DEV 11
#define TRB_CONFIG_EP   12
#define TRB_EV_TRANSFER 32
#define TRB_EV_CMD      33
#define TRB_EV_PORT     34
#define TRB_CYCLE       (1u << 0)
#define TRB_TC          (1u << 1)
#define TRB_ISP         (1u << 2)
#define TRB_IOC         (1u << 5)
#define TRB_IDT         (1u << 6)
#define CC_SUCCESS      1
#define CC_SHORT        13

struct trb { uint64_t param; uint32_t status, control; };

#define RING_TRBS 64
struct ring {
    struct trb *trb;
    unsigned idx;
    uint32_t cycle;
};

static volatile uint8_t *mmio;
static volatile uint8_t *op, *rt, *db;
static unsigned nports, maxslots;

/* Register accesses are compiler barriers: DMA structures are written before them. */
static uint32_t rd(volatile uint8_t *base, unsigned off)
{
    uint32_t v;

    __asm__ volatile("" ::: "memory");
    v = *(volatile uint32_t *)(base + off);
    __asm__ volatile("" ::: "memory");
    return v;
}

static void wr(volatile uint8_t *base, unsigned off, uint32_t v)
{
    __asm__ volatile("" ::: "memory");
    *(volatile uint32_t *)(base + off) = v;
    __asm__ volatile("" ::: "memory");
}
static void wr64(volatile uint8_t *base, unsigned off, uint64_t v)
{
    wr(base, off, (uint32_t)v);
    wr(base, off + 4, (uint32_t)(v >> 32));
}

/* DMA memory: guest-physical = virtual (identity map). */
static uint64_t dcbaa[256] __attribute__((aligned(64)));
static struct trb cmd_trbs[RING_TRBS] __attribute__((aligned(64)));
static struct trb ev_trbs[RING_TRBS] __attribute__((aligned(64)));
/* per slot (slot % DEVS): the loopback and the keyboard are enumerated at once */
#define DEVS 4
static struct trb ep0_trbs[DEVS][RING_TRBS] __attribute__((aligned(64)));
static struct trb out_trbs[RING_TRBS] __attribute__((aligned(64)));
static struct trb in_trbs[RING_TRBS] __attribute__((aligned(64)));
static struct trb int_trbs[RING_TRBS] __attribute__((aligned(64)));
static struct { uint64_t base; uint32_t size, rsvd; } erst[1] __attribute__((aligned(64)));
static uint32_t in_ctx[33 * 8] __attribute__((aligned(64)));   /* 32-byte contexts */
static uint32_t dev_ctx[DEVS][32 * 8] __attribute__((aligned(64)));
static uint64_t scratch_array[32] __attribute__((aligned(64)));
static uint8_t scratch_pages[8][4096] __attribute__((aligned(4096)));
static uint8_t ctl_buf[4096] __attribute__((aligned(4096)));
static uint8_t report[64] __attribute__((aligned(64)));
static uint64_t out_words[LOOP_CHUNK / 8] __attribute__((aligned(4096)));
#define out_buf ((uint8_t *)out_words)
static uint64_t in_words[LOOP_CHUNK / 8] __attribute__((aligned(4096)));
#define in_buf ((uint8_t *)in_words)

static struct ring cmd_ring, ep0_rings[DEVS], out_ring, in_ring, int_ring;
static unsigned ev_idx;
static uint32_t ev_cycle;

static void ring_init(struct ring *r, struct trb *t)
{
    memset(t, 0, sizeof(struct trb) * RING_TRBS);
    r->trb = t;
    r->idx = 0;
    r->cycle = 1;
    t[RING_TRBS - 1].param = (uint64_t)(uintptr_t)t;
    t[RING_TRBS - 1].control = (TRB_LINK << 10) | TRB_TC;
}

/* Queue one TRB (cycle bit set last); returns its address. */
static uint64_t ring_put(struct ring *r, uint64_t param, uint32_t status, uint32_t control)
{
    struct trb *t = &r->trb[r->idx];
    uint64_t at = (uint64_t)(uintptr_t)t;

    t->param = param;
    t->status = status;
    __asm__ volatile("" ::: "memory");
    t->control = (control & ~TRB_CYCLE) | r->cycle;
    if (++r->idx == RING_TRBS - 1) {
        struct trb *link = &r->trb[RING_TRBS - 1];
        link->control = (TRB_LINK << 10) | TRB_TC | r->cycle;
        r->idx = 0;
        r->cycle ^= 1;
    }
    return at;
}

/* ---- events ---------------------------------------------------------------- */

static unsigned port_changes;     /* port status change events seen */
static volatile unsigned irqs, irqs_empty;   /* interrupts taken; with IP already clear */

/*
 * Interrupter 0's interrupt: clear IMAN.IP (which drops QEMU's INTx) and
 * USBSTS.EINT, then EOI (the resample lets QEMU raise it again if more
 * came).  The events themselves are taken by event_wait.  While the
 * controller is down (all ones) there is nothing to clear.
 */
void xhci_irq(void)
{
    if (rt) {
        uint32_t iman = rd(rt, IR0_IMAN);

        if (iman != 0xffffffffu) {
            if (iman & 1) {
                wr(rt, IR0_IMAN, iman | 1);
                wr(op, OP_USBSTS, 1u << 3);
            } else {
                irqs_empty++;
            }
        }
    }
    irqs++;
    mmio_wr(LAPIC_BASE + 0xb0, 0);
}

/* The next event of type want (others noted and dropped); false on timeout. */
static bool event_wait(unsigned want, struct trb *out, unsigned seconds)
{
    struct deadline d = deadline_s(seconds);

    for (;;) {
        volatile struct trb *e = &ev_trbs[ev_idx];
        if ((e->control & TRB_CYCLE) == ev_cycle) {
            struct trb t = { e->param, e->status, e->control };
            if (++ev_idx == RING_TRBS) {
                ev_idx = 0;
                ev_cycle ^= 1;
            }
            wr64(rt, IR0_ERDP, (uint64_t)(uintptr_t)&ev_trbs[ev_idx] | 8);   /* EHB */
            unsigned type = (t.control >> 10) & 0x3f;
            if (type == TRB_EV_PORT)
                port_changes++;
            if (type == want) {
                *out = t;
                return true;
            }
            continue;
        }
        if (expired(&d))
            return false;
        if (rd(op, OP_USBSTS) == 0xffffffffu)
            return false;       /* the controller has gone */
        if ((e->control & TRB_CYCLE) != ev_cycle)
            wait_irq();
    }
}

static uint32_t command(uint64_t param, uint32_t control, const char *what)
{
    struct trb ev;

    ring_put(&cmd_ring, param, 0, control);
    wr(db, 0, 0);
    if (!event_wait(TRB_EV_CMD, &ev, WAIT_S)) {
        puts_("no command completion: usbsts 0x");
        puthex(rd(op, OP_USBSTS), 8);
        puts_(" crcr 0x");
        puthex(rd(op, OP_CRCR), 8);
        puts_(" event[0] 0x");
        puthex(ev_trbs[0].control, 8);
        puts_("\n");
        fail(what, 0);
    }
    if (ev.status >> 24 != CC_SUCCESS)
        fail(what, ev.status >> 24);
    return ev.control;
}

/* ---- the controller -------------------------------------------------------- */

static bool wait_reg(volatile uint8_t *base, unsigned off, uint32_t mask, uint32_t val)
{
    struct deadline d = deadline_s(WAIT_S);

    while ((rd(base, off) & mask) != val)
        if (expired(&d))
            return false;
    return true;
}

static void hc_init(void)
{
    uint32_t caplen = rd(mmio, 0) & 0xff, hcs1, hcs2;
    unsigned nscratch;

    op = mmio + caplen;
    rt = mmio + (rd(mmio, CAP_RTSOFF) & ~0x1fu);
    db = mmio + (rd(mmio, CAP_DBOFF) & ~0x3u);
    hcs1 = rd(mmio, CAP_HCSPARAMS1);
    hcs2 = rd(mmio, CAP_HCSPARAMS2);
    maxslots = hcs1 & 0xff;
    nports = hcs1 >> 24;
    nscratch = ((hcs2 >> 21) & 0x1f) << 5 | (hcs2 >> 27);
    if (nscratch > 8)
        fail("scratchpad buffers", nscratch);

    wr(op, OP_USBCMD, rd(op, OP_USBCMD) & ~CMD_RS);
    if (!wait_reg(op, OP_USBSTS, STS_HCH, STS_HCH))
        fail("halt", rd(op, OP_USBSTS));
    wr(op, OP_USBCMD, CMD_HCRST);
    if (!wait_reg(op, OP_USBCMD, CMD_HCRST, 0) || !wait_reg(op, OP_USBSTS, STS_CNR, 0))
        fail("reset", rd(op, OP_USBSTS));

    memset(dcbaa, 0, sizeof(dcbaa));
    for (unsigned i = 0; i < nscratch; i++)
        scratch_array[i] = (uint64_t)(uintptr_t)scratch_pages[i];
    if (nscratch)
        dcbaa[0] = (uint64_t)(uintptr_t)scratch_array;
    if (maxslots > 255)
        maxslots = 255;
    wr(op, OP_CONFIG, maxslots);
    wr64(op, OP_DCBAAP, (uint64_t)(uintptr_t)dcbaa);
    ring_init(&cmd_ring, cmd_trbs);
    wr64(op, OP_CRCR, (uint64_t)(uintptr_t)cmd_trbs | 1);

    memset(ev_trbs, 0, sizeof(ev_trbs));
    ev_idx = 0;
    ev_cycle = 1;
    erst[0].base = (uint64_t)(uintptr_t)ev_trbs;
    erst[0].size = RING_TRBS;
    wr(rt, IR0_ERSTSZ, 1);
    wr64(rt, IR0_ERDP, (uint64_t)(uintptr_t)ev_trbs);
    wr64(rt, IR0_ERSTBA, (uint64_t)(uintptr_t)erst);
    wr(rt, IR0_IMAN, 3);        /* IP (write 1 to clear), IE */
    wr(op, OP_USBCMD, CMD_RS | CMD_INTE);
    if (!wait_reg(op, OP_USBSTS, STS_HCH, 0))
        fail("run", rd(op, OP_USBSTS));
}

/* ---- a device ---------------------------------------------------------------- */

struct usbdev {
    unsigned port, slot, speed, mps0;
    uint16_t vid, pid;
    uint8_t cfg_value, ep_out, ep_in, ep_int, int_interval;
    uint16_t mps_out, mps_in, mps_int;
};

/* A control transfer on EP0; returns the bytes moved. */
static unsigned control(struct usbdev *u, uint8_t rt_, uint8_t req, uint16_t value, uint16_t index,
                        uint16_t len, const char *what)
{
    uint64_t setup = rt_ | (uint64_t)req << 8 | (uint64_t)value << 16 | (uint64_t)index << 32 |
                     (uint64_t)len << 48;
    bool in = rt_ & 0x80;
    unsigned trt = len == 0 ? 0 : in ? 3 : 2;
    struct ring *ep0_ring = &ep0_rings[u->slot % DEVS];
    struct trb ev;

    ring_put(ep0_ring, setup, 8, (TRB_SETUP << 10) | TRB_IDT | trt << 16);
    if (len)
        ring_put(ep0_ring, (uint64_t)(uintptr_t)ctl_buf, len,
                 (TRB_DATA << 10) | (in ? 1u << 16 : 0) | TRB_ISP);
    ring_put(ep0_ring, 0, 0, (TRB_STATUS << 10) | TRB_IOC | ((len && in) ? 0 : 1u << 16));
    wr(db, 4 * u->slot, 1);
    for (;;) {
        if (!event_wait(TRB_EV_TRANSFER, &ev, WAIT_S))
            fail(what, 0);
        unsigned cc = ev.status >> 24;
        if (cc != CC_SUCCESS && cc != CC_SHORT)
            fail(what, cc);
        /* a short data stage reports itself (ISP), then the status stage does */
        if ((((struct trb *)(uintptr_t)ev.param)->control >> 10 & 0x3f) == TRB_STATUS)
            break;
        if (cc == CC_SHORT)
            len = (uint16_t)(len - (ev.status & 0xffffff));
    }
    return len;
}

static void print_string(struct usbdev *u, uint8_t idx)
{
    unsigned n;

    if (!idx)
        return;
    n = control(u, 0x80, 6, 0x0300 | idx, 0x0409, 255, "string descriptor");
    for (unsigned i = 2; i + 1 < n && i < ctl_buf[0]; i += 2)
        putc_(ctl_buf[i + 1] ? '?' : (char)ctl_buf[i]);
}

static bool port_reset(unsigned port, unsigned *speed)
{
    struct deadline d = deadline_s(WAIT_S);

    wr(op, OP_PORTSC(port), PORT_PP | PORT_PR);
    while (!(rd(op, OP_PORTSC(port)) & PORT_PRC))
        if (expired(&d))
            return false;
    uint32_t sc = rd(op, OP_PORTSC(port));
    wr(op, OP_PORTSC(port), PORT_PP | (sc & PORT_CHANGES));
    *speed = (sc >> 10) & 0xf;
    return (sc & (PORT_CCS | PORT_PED)) == (PORT_CCS | PORT_PED);
}

/* A port with a device on it, other than skip (0: any). */
static unsigned find_port_except(unsigned seconds, unsigned skip)
{
    struct deadline d = deadline_s(seconds);

    for (;;) {
        for (unsigned p = 1; p <= nports; p++)
            if (p != skip &&
                (rd(op, OP_PORTSC(p)) & (PORT_CCS | PORT_PP)) == (PORT_CCS | PORT_PP))
                return p;
        if (expired(&d))
            return 0;
    }
}

static unsigned find_port(unsigned seconds) { return find_port_except(seconds, 0); }

static void enumerate(struct usbdev *u, unsigned port)
{
    uint32_t *slot_ctx = &in_ctx[8], *ep0 = &in_ctx[16];
    unsigned n, total;

    memset(u, 0, sizeof(*u));
    u->port = port;
    if (!port_reset(port, &u->speed))
        fail("port reset", rd(op, OP_PORTSC(port)));
    u->mps0 = u->speed == 4 ? 512 : u->speed == 3 ? 64 : 8;
    u->slot = command(0, TRB_ENABLE_SLOT << 10, "enable slot") >> 24;
    if (!u->slot || u->slot > maxslots)
        fail("slot id", u->slot);

    memset(dev_ctx[u->slot % DEVS], 0, sizeof(dev_ctx[0]));
    dcbaa[u->slot] = (uint64_t)(uintptr_t)dev_ctx[u->slot % DEVS];
    memset(in_ctx, 0, sizeof(in_ctx));
    in_ctx[1] = 3;                                  /* add slot, EP0 */
    slot_ctx[0] = u->speed << 20 | 1u << 27;        /* context entries 1 */
    slot_ctx[1] = port << 16;
    ring_init(&ep0_rings[u->slot % DEVS], ep0_trbs[u->slot % DEVS]);
    ep0[1] = 3u << 1 | 4u << 3 | u->mps0 << 16;     /* CErr 3, control */
    ep0[2] = (uint32_t)(uintptr_t)ep0_trbs[u->slot % DEVS] | 1;     /* DCS */
    ep0[3] = 0;
    ep0[4] = 8;
    command((uint64_t)(uintptr_t)in_ctx, TRB_ADDRESS_DEV << 10 | u->slot << 24, "address device");

    n = control(u, 0x80, 6, 0x0100, 0, 18, "device descriptor");
    if (n < 18 || ctl_buf[1] != 1)
        fail("device descriptor length", n);
    u->vid = (uint16_t)(ctl_buf[8] | ctl_buf[9] << 8);
    u->pid = (uint16_t)(ctl_buf[10] | ctl_buf[11] << 8);
    uint8_t iproduct = ctl_buf[15];

    puts_("device ");
    puthex(u->vid, 4);
    putc_(':');
    puthex(u->pid, 4);
    puts_(" \"");
    print_string(u, iproduct);
    puts_("\" on port ");
    putdec(port);
    puts_(" speed ");
    putdec(u->speed);
    puts_(" slot ");
    putdec(u->slot);
    puts_("\n");

    n = control(u, 0x80, 6, 0x0200, 0, 9, "config descriptor");
    total = ctl_buf[2] | ctl_buf[3] << 8;
    if (n < 9 || total < 9 || total > sizeof(ctl_buf))
        fail("config descriptor length", total);
    n = control(u, 0x80, 6, 0x0200, 0, (uint16_t)total, "config descriptor");
    u->cfg_value = ctl_buf[5];
    /* the bulk endpoints of interface 0, altsetting 0 */
    bool if0 = false;
    for (unsigned i = 0; i + 2 <= n && ctl_buf[i] >= 2; i += ctl_buf[i]) {
        uint8_t *dsc = &ctl_buf[i];
        if (dsc[1] == 4)
            if0 = dsc[2] == 0 && dsc[3] == 0;
        if (dsc[1] == 5 && if0 && (dsc[3] & 3) == 3 && (dsc[2] & 0x80) && !u->ep_int) {
            u->ep_int = dsc[2];
            u->mps_int = (uint16_t)((dsc[4] | dsc[5] << 8) & 0x7ff);
            u->int_interval = dsc[6];
        }
        if (dsc[1] == 5 && if0 && (dsc[3] & 3) == 2) {
            if (dsc[2] & 0x80) {
                u->ep_in = dsc[2];
                u->mps_in = (uint16_t)(dsc[4] | dsc[5] << 8);
            } else {
                u->ep_out = dsc[2];
                u->mps_out = (uint16_t)(dsc[4] | dsc[5] << 8);
            }
        }
    }
    puts_("configuration ");
    putdec(u->cfg_value);
    puts_(" total ");
    putdec(total);
    puts_(" bytes\n");
}

/* ---- bulk loopback ------------------------------------------------------------ */

static unsigned dci(uint8_t ep) { return (ep & 0xf) * 2 + (ep & 0x80 ? 1 : 0); }

static void configure_bulk(struct usbdev *u)
{
    unsigned dout = dci(u->ep_out), din = dci(u->ep_in), last = dout > din ? dout : din;
    uint32_t *slot_ctx = &in_ctx[8];

    memset(in_ctx, 0, sizeof(in_ctx));
    in_ctx[1] = 1u | 1u << dout | 1u << din;
    slot_ctx[0] = u->speed << 20 | last << 27;
    slot_ctx[1] = u->port << 16;
    ring_init(&out_ring, out_trbs);
    ring_init(&in_ring, in_trbs);
    uint32_t *eo = &in_ctx[8 * (dout + 1)], *ei = &in_ctx[8 * (din + 1)];
    eo[1] = 3u << 1 | 2u << 3 | (uint32_t)u->mps_out << 16;    /* bulk OUT */
    eo[2] = (uint32_t)(uintptr_t)out_trbs | 1;
    eo[4] = LOOP_CHUNK;
    ei[1] = 3u << 1 | 6u << 3 | (uint32_t)u->mps_in << 16;     /* bulk IN */
    ei[2] = (uint32_t)(uintptr_t)in_trbs | 1;
    ei[4] = LOOP_CHUNK;
    command((uint64_t)(uintptr_t)in_ctx, TRB_CONFIG_EP << 10 | u->slot << 24,
            "configure endpoint");
    control(u, 0x00, 9, u->cfg_value, 0, 0, "set configuration");
}

static unsigned bulk(struct usbdev *u, struct ring *r, uint8_t ep, void *buf, unsigned len,
                     const char *what)
{
    struct trb ev;

    ring_put(r, (uint64_t)(uintptr_t)buf, len, (TRB_NORMAL << 10) | TRB_IOC | TRB_ISP);
    wr(db, 4 * u->slot, dci(ep));
    if (!event_wait(TRB_EV_TRANSFER, &ev, WAIT_S))
        fail(what, 0);
    unsigned cc = ev.status >> 24;
    if (cc != CC_SUCCESS && cc != CC_SHORT)
        fail(what, cc);
    return len - (ev.status & 0xffffff);
}

/*
 * total bytes through bulk OUT and back through bulk IN in LOOP_CHUNK
 * pieces, each compared.  The pattern is made and compared a qword at a
 * time: guest loops are slow on a software-assisted KVM under load (about
 * 5 us an iteration measured), and the transfers are what counts.  Returns
 * the PM timer ticks spent in the transfers alone.
 */
static uint32_t loopback(struct usbdev *u, unsigned total, uint64_t seed)
{
    uint64_t *o = out_words, *in = in_words, x = seed;
    uint32_t ticks = 0;

    if (!u->ep_out || !u->ep_in)
        fail("no bulk endpoints", u->ep_out << 8 | u->ep_in);
    for (unsigned done = 0; done < total; done += LOOP_CHUNK) {
        for (unsigned i = 0; i < LOOP_CHUNK / 8; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            o[i] = x;
            in[i] = 0;
        }
        uint32_t t0 = inl(PM_TMR);
        if (bulk(u, &out_ring, u->ep_out, out_buf, LOOP_CHUNK, "bulk out") != LOOP_CHUNK)
            fail("bulk out short at", done);
        unsigned got = 0;
        while (got < LOOP_CHUNK)
            got += bulk(u, &in_ring, u->ep_in, in_buf + got, LOOP_CHUNK - got, "bulk in");
        ticks += inl(PM_TMR) - t0;
        for (unsigned i = 0; i < LOOP_CHUNK / 8; i++)
            if (in[i] != o[i])
                fail("loopback data differs at", done + i * 8);
    }
    puts_("bulk loopback ");
    putdec(total / 1024);
    puts_(" KiB compared\n");
    return ticks;
}

/* ---- interrupt IN: the keyboard ------------------------------------------------- */

/*
 * The interrupt IN endpoint of interface 0 configured with a Configure
 * Endpoint command (type 7, its interval in 125 us units: a full- or
 * low-speed bInterval in ms is 8 * bInterval microframes, 2^Interval of
 * them), then SET_CONFIGURATION.
 */
static void configure_interrupt(struct usbdev *u)
{
    unsigned d = dci(u->ep_int), interval;
    uint32_t *slot_ctx = &in_ctx[8], *ep;

    if (!u->ep_int)
        fail("no interrupt IN endpoint", 0);
    if (u->speed >= 3) {            /* high/super speed: 2^(bInterval-1) microframes */
        interval = u->int_interval ? u->int_interval - 1u : 0;
    } else {
        unsigned frames = 8u * (u->int_interval ? u->int_interval : 1);
        for (interval = 0; (2u << interval) <= frames && interval < 10; interval++)
            ;
    }
    memset(in_ctx, 0, sizeof(in_ctx));
    in_ctx[1] = 1u | 1u << d;
    slot_ctx[0] = u->speed << 20 | d << 27;
    slot_ctx[1] = u->port << 16;
    ring_init(&int_ring, int_trbs);
    ep = &in_ctx[8 * (d + 1)];
    ep[0] = interval << 16;
    ep[1] = 3u << 1 | 7u << 3 | (uint32_t)u->mps_int << 16;   /* interrupt IN */
    ep[2] = (uint32_t)(uintptr_t)int_trbs | 1;
    ep[4] = u->mps_int | (uint32_t)u->mps_int << 16;         /* average TRB, max ESIT */
    command((uint64_t)(uintptr_t)in_ctx, TRB_CONFIG_EP << 10 | u->slot << 24,
            "configure endpoint (interrupt)");
    control(u, 0x00, 9, u->cfg_value, 0, 0, "set configuration");
    puts_("interrupt IN 0x");
    puthex(u->ep_int, 2);
    puts_(" max packet ");
    putdec(u->mps_int);
    puts_(" interval ");
    putdec(interval);
    puts_("\n");
}

/* One interrupt IN report: a Normal TRB queued, its Transfer Event awaited. */
static unsigned read_report(struct usbdev *u, const char *prompt)
{
    struct trb ev;
    unsigned n;

    memset(report, 0, sizeof(report));
    ring_put(&int_ring, (uint64_t)(uintptr_t)report, u->mps_int,
             (TRB_NORMAL << 10) | TRB_IOC | TRB_ISP);
    wr(db, 4 * u->slot, dci(u->ep_int));
    if (prompt) {
        puts_(prompt);
        puts_("\n");
    }
    if (!event_wait(TRB_EV_TRANSFER, &ev, WAIT_S * 2))
        fail("no interrupt IN report", 0);
    unsigned cc = ev.status >> 24;
    if (cc != CC_SUCCESS && cc != CC_SHORT)
        fail("interrupt IN", cc);
    n = u->mps_int - (ev.status & 0xffffff);
    puts_("key report");
    for (unsigned i = 0; i < n; i++) {
        putc_(' ');
        puthex(report[i], 2);
    }
    puts_("\n");
    return n;
}

static void keyboard(struct usbdev *u)
{
    configure_interrupt(u);
    if (read_report(u, "press a key now") < 3 || report[2] == 0)
        fail("the report has no key in it", report[2]);
    if (read_report(u, NULL) < 3 || report[2] != 0)
        fail("the release report still has a key", report[2]);
    puts_("keyboard done\n");
}

/* A device is there: enumerate it, and loop data through the simulator's loopback. */
static void use_device(struct usbdev *u, unsigned port, uint32_t seed)
{
    enumerate(u, port);
    if (u->vid == SIM_VID && u->pid == SIM_PID_VENDOR) {
        configure_bulk(u);
        loopback(u, LOOP_TOTAL, seed);
    }
}

/* Wait for port's connect status to be want (a port status change says so). */
static void wait_connect(unsigned port, bool want, const char *what)
{
    struct deadline d = deadline_s(WAIT_S * 2);
    struct trb ev;

    for (;;) {
        uint32_t sc = rd(op, OP_PORTSC(port));
        if (sc != 0xffffffffu && !!(sc & PORT_CCS) == want && (sc & PORT_CSC)) {
            wr(op, OP_PORTSC(port), PORT_PP | (sc & PORT_CHANGES));
            return;
        }
        if (expired(&d))
            fail(what, sc);
        (void)event_wait(TRB_EV_PORT, &ev, 1);
    }
}

/* The kernel command line of hvm_start_info (cmdline_paddr at offset 24) has word. */
static bool cmdline_has(uint64_t start_info, const char *word)
{
    const char *c = start_info ? (const char *)(uintptr_t)*(uint64_t *)(uintptr_t)(start_info + 24)
                               : NULL;

    for (; c && *c; c++) {
        unsigned i = 0;
        while (word[i] && c[i] == word[i])
            i++;
        if (!word[i])
            return true;
    }
    return false;
}

/*
 * bench/usb-ferry-guest: the loopback's transfers timed by the PM timer,
 * BENCH_REPS times, one line each; the bench compares it with direct libusb.
 */
#define BENCH_REPS 5
static __attribute__((noreturn)) void bench(struct usbdev *u)
{
    for (unsigned r = 0; r < BENCH_REPS; r++) {
        uint32_t t = loopback(u, LOOP_TOTAL, 100 + r);
        puts_("bench-loop bytes ");
        putdec(LOOP_TOTAL);
        puts_(" chunk ");
        putdec(LOOP_CHUNK);
        puts_(" pm-ticks ");
        putdec(t);
        puts_("\n");
    }
    puts_("xhci guest done\n");
    guest_exit(0);
}

uint64_t guest_main(uint64_t start_info);
uint64_t guest_main(uint64_t start_info)
{
    uint32_t addr = 0, bar_lo, size;
    struct usbdev dev;
    unsigned port;

    puts_("xhci guest\n");
    for (unsigned slot = 1; slot < 32 && !addr; slot++)
        if (cfg_read(0x80000000u | slot << 11) == XHCI_ID)
            addr = 0x80000000u | slot << 11;
    if (!addr)
        fail("no qemu-xhci (1b36:000d) on bus 0", 0);
    cfg_write(addr | 0x10, 0xffffffffu);
    size = ~(cfg_read(addr | 0x10) & ~0xfu) + 1;
    if ((cfg_read(addr | 0x10) & 0x6) != 0x4)
        fail("bar0 is not 64-bit memory", cfg_read(addr | 0x10));
    cfg_write(addr | 0x10, XHCI_BAR);
    cfg_write(addr | 0x14, 0);
    bar_lo = cfg_read(addr | 0x10);
    cfg_write(addr | 0x04, 0x0006);                /* memory, bus master */
    puts_("qemu-xhci at 00:");
    puthex((addr >> 11) & 0x1f, 2);
    puts_(".0 bar0 0x");
    puthex(bar_lo & ~0xfu, 8);
    puts_(" size 0x");
    puthex(size, 4);
    puts_(" pin ");
    putdec((cfg_read(addr | 0x3c) >> 8) & 0xff);
    puts_("\n");
    mmio = (volatile uint8_t *)(uintptr_t)XHCI_BAR;
    {
        unsigned pin = (cfg_read(addr | 0x3c) >> 8) & 0xff, slot = (addr >> 11) & 0x1f;

        if (pin < 1 || pin > 4)
            fail("interrupt pin", pin);
        irq_setup(16 + (slot + pin - 1) % 4);
        puts_("INTx on GSI ");
        putdec(16 + (slot + pin - 1) % 4);
        puts_("\n");
    }

    hc_init();
    puts_("controller running: ");
    putdec(nports);
    puts_(" ports, ");
    putdec(maxslots);
    puts_(" slots\n");
    port = find_port(WAIT_S);
    if (!port)
        fail("no device on any port", 0);
    use_device(&dev, port, 1);
    if (cmdline_has(start_info, "bench"))
        bench(&dev);
    /* Completions woke the waits through INTx. */
    if (irqs <= irqs_empty)
        fail("no xhci interrupt with the interrupt pending bit set", irqs);
    puts_("interrupts taken: ");
    putdec(irqs);
    puts_(" (");
    putdec(irqs_empty);
    puts_(" with nothing pending)\n");

    /*
     * ferry-dm replaced under the running transfers: the remote QEMU and the
     * usbredir channel go to the successor as they are, the port never
     * notices.  Then a detach and an attach through the last successor.
     */
    if (cmdline_has(start_info, "replace")) {
        unsigned changes = port_changes;

        for (unsigned r = 0; r < REPLACE_ROUNDS; r++) {
            puts_("replace ferry-dm now\n");
            loopback(&dev, LOOP_TOTAL, 10 + r);
            uint32_t sc = rd(op, OP_PORTSC(port));
            if (!(sc & PORT_CCS) || (sc & PORT_CHANGES))
                fail("the port's status changed across a replace: portsc", sc);
            if (port_changes != changes)
                fail("port status change events across a replace", port_changes - changes);
        }
        puts_("replaces done, port status unchanged\n");
        puts_("detach the device now\n");
        wait_connect(port, false, "no disconnect on the port after the detach");
        command(0, TRB_DISABLE_SLOT << 10 | dev.slot << 24, "disable slot");
        puts_("attach it again now\n");
        port = find_port(WAIT_S * 2);
        if (!port)
            fail("the device did not come back", 0);
        puts_("port ");
        putdec(port);
        puts_(" connected again\n");
        use_device(&dev, port, 30);
    }

    /* The keyboard, attached now (a policy file names it): one key press read. */
    if (cmdline_has(start_info, "kbd")) {
        struct usbdev kbd;
        unsigned kport;

        puts_("attach the keyboard now\n");
        kport = find_port_except(WAIT_S * 2, port);
        if (!kport)
            fail("the keyboard did not come", 0);
        enumerate(&kbd, kport);
        if (kbd.vid != SIM_VID || kbd.pid != SIM_PID_KEYBOARD)
            fail("not the keyboard", (uint64_t)kbd.vid << 16 | kbd.pid);
        keyboard(&kbd);
        puts_("detach the keyboard now\n");
        wait_connect(kport, false, "no disconnect of the keyboard");
        command(0, TRB_DISABLE_SLOT << 10 | kbd.slot << 24, "disable slot");
        puts_("keyboard gone from port ");
        putdec(kport);
        puts_("\n");
    }

    /*
     * Unplugged on the host: the port's connect status drops; plugged in
     * again, ferry-dm (following hotplug) attaches it again by itself.
     */
    if (cmdline_has(start_info, "replug")) {
        puts_("unplug the device now\n");
        wait_connect(port, false, "no disconnect on the port");
        puts_("port ");
        putdec(port);
        puts_(" disconnected\n");
        command(0, TRB_DISABLE_SLOT << 10 | dev.slot << 24, "disable slot");
        puts_("plug it in again now\n");
        port = find_port(WAIT_S * 2);
        if (!port)
            fail("the replugged device did not come back by itself", 0);
        puts_("port ");
        putdec(port);
        puts_(" connected again after the replug\n");
        use_device(&dev, port, 2);

        /* ferry usb detach, then ferry usb attach */
        puts_("detach the device now\n");
        wait_connect(port, false, "no disconnect on the port after the detach");
        puts_("port ");
        putdec(port);
        puts_(" detached\n");
        command(0, TRB_DISABLE_SLOT << 10 | dev.slot << 24, "disable slot");
        puts_("attach it again now\n");
        port = find_port(WAIT_S * 2);
        if (!port)
            fail("the device did not come back", 0);
        puts_("port ");
        putdec(port);
        puts_(" connected again\n");
        use_device(&dev, port, 3);
    }

    /* The remote QEMU killed under us: all ones, then a new controller. */
    puts_("kill the remote now\n");
    {
        struct deadline d = deadline_s(WAIT_S);
        while (rd(mmio, 0) != 0xffffffffu)
            if (expired(&d))
                fail("the controller never went away", rd(mmio, 0));
        puts_("controller gone (all ones)\n");
        d = deadline_s(WAIT_S * 2);
        while (rd(mmio, 0) == 0xffffffffu)
            if (expired(&d))
                fail("the controller never came back", 0);
    }
    puts_("controller back\n");
    hc_init();
    port = find_port(WAIT_S * 2);
    if (!port)
        fail("no device after the restart", 0);
    use_device(&dev, port, 4);
    puts_("interrupts taken: ");
    putdec(irqs);
    puts_(" (");
    putdec(irqs_empty);
    puts_(" with nothing pending)\n");
    puts_("xhci guest done\n");
    if (cmdline_has(start_info, "linger"))      /* the harness ends ferry-dm itself */
        for (;;)
            wait_irq();
    guest_exit(0);
}
