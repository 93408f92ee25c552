// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * 16550A UART (COM1 at 0x3f8, IRQ 4 by default).
 *
 * Registers (offset from the base; DLAB = LCR bit 7):
 *   0  RBR (read) / THR (write) / DLL (DLAB)     4  MCR
 *   1  IER / DLM (DLAB)                          5  LSR (reads clear OE/PE/FE/BI)
 *   2  IIR (read) / FCR (write)                  6  MSR (reads clear the delta bits)
 *   3  LCR                                       7  SCR
 * Transmission is instant (THRE is set again at once), reception goes
 * through a 16-byte FIFO with the FCR trigger level and a character
 * time-out interrupt; loopback (MCR bit 4) is supported.  As on a PC, the
 * interrupt reaches the line only while MCR OUT2 is set.
 *
 * Options: port=0x3f8 irq=4 out=stdout|stderr|file:PATH|pty|socket:PATH|null
 *          in=none|stdin|pty|socket:PATH
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "devmodel/chardev.h"
#include "devmodel/dm.h"

#define UART_FIFO_SIZE 16

#define IER_RDI     0x01
#define IER_THRI    0x02
#define IER_RLSI    0x04
#define IER_MSI     0x08

#define IIR_NO_INT  0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_CTI     0x0c
#define IIR_FIFO    0xc0

#define FCR_ENABLE  0x01
#define FCR_CLR_RX  0x02
#define FCR_CLR_TX  0x04

#define LCR_DLAB    0x80

#define MCR_DTR     0x01
#define MCR_RTS     0x02
#define MCR_OUT1    0x04
#define MCR_OUT2    0x08
#define MCR_LOOP    0x10

#define LSR_DR      0x01
#define LSR_OE      0x02
#define LSR_BI      0x10
#define LSR_THRE    0x20
#define LSR_TEMT    0x40
#define LSR_ERR     0x80

#define MSR_DCTS    0x01
#define MSR_DDSR    0x02
#define MSR_TERI    0x04
#define MSR_DDCD    0x08
#define MSR_CTS     0x10
#define MSR_DSR     0x20
#define MSR_RI      0x40
#define MSR_DCD     0x80

#define UART_SAVE_VERSION 1

/* The guest-visible state, saved and restored as it is. */
struct uart_regs {
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    uint8_t thr_ipending;       /* THRE interrupt pending (cleared by IIR read / THR write) */
    uint8_t timeout_ipending;   /* character time-out pending */
    uint8_t rx_head, rx_count;
    uint8_t rx[UART_FIFO_SIZE];
};

struct uart {
    struct ferry_dm_device *dev;
    struct ferry_dm_irq *irq;
    struct ferry_chardev *cd;
    struct uart_regs r;
    uint64_t tx_bytes, rx_bytes;
};

static bool fifo_on(const struct uart *u)
{
    return u->r.fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart *u)
{
    return fifo_on(u) ? UART_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart *u)
{
    static const uint8_t levels[4] = { 1, 4, 8, 14 };

    return fifo_on(u) ? levels[u->r.fcr >> 6] : 1;
}

/* The pending interrupt of highest priority, as IIR reports it. */
static uint8_t uart_iir(const struct uart *u)
{
    uint8_t fifo = fifo_on(u) ? IIR_FIFO : 0;

    if ((u->r.ier & IER_RLSI) && (u->r.lsr & (LSR_OE | LSR_BI)))
        return IIR_RLSI | fifo;
    if ((u->r.ier & IER_RDI) && u->r.rx_count >= rx_trigger(u))
        return IIR_RDI | fifo;
    if ((u->r.ier & IER_RDI) && u->r.timeout_ipending && u->r.rx_count)
        return IIR_CTI | fifo;
    if ((u->r.ier & IER_THRI) && u->r.thr_ipending)
        return IIR_THRI | fifo;
    if ((u->r.ier & IER_MSI) && (u->r.msr & (MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD)))
        return IIR_MSI | fifo;
    return IIR_NO_INT | fifo;
}

static void uart_update_irq(struct uart *u)
{
    bool pending = !(uart_iir(u) & IIR_NO_INT);

    /* On a PC the INTR pin is gated by OUT2 (and never in loopback). */
    dm_irq_set(u->irq, pending && (u->r.mcr & MCR_OUT2) && !(u->r.mcr & MCR_LOOP));
}

static void rx_push(struct uart *u, uint8_t byte)
{
    if (u->r.rx_count >= rx_capacity(u)) {
        u->r.lsr |= LSR_OE;     /* overrun: the new byte is lost */
        return;
    }
    u->r.rx[(u->r.rx_head + u->r.rx_count) % UART_FIFO_SIZE] = byte;
    u->r.rx_count++;
    u->r.lsr |= LSR_DR;
    u->rx_bytes++;
}

static uint8_t rx_pop(struct uart *u)
{
    uint8_t b;

    if (!u->r.rx_count)
        return 0;
    b = u->r.rx[u->r.rx_head];
    u->r.rx_head = (u->r.rx_head + 1) % UART_FIFO_SIZE;
    u->r.rx_count--;
    if (!u->r.rx_count) {
        u->r.lsr &= ~LSR_DR;
        u->r.timeout_ipending = 0;
        if (u->cd)
            dm_chardev_accept_input(u->cd);
    }
    return b;
}

static void rx_clear(struct uart *u)
{
    u->r.rx_head = u->r.rx_count = 0;
    u->r.lsr &= ~LSR_DR;
    u->r.timeout_ipending = 0;
    if (u->cd)
        dm_chardev_accept_input(u->cd);
}

/* Modem status inputs: loopback mirrors MCR; otherwise a cable with everything up. */
static void msr_update(struct uart *u)
{
    uint8_t in, old = u->r.msr, delta = 0;

    if (u->r.mcr & MCR_LOOP)
        in = ((u->r.mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->r.mcr & MCR_DTR) ? MSR_DSR : 0) |
             ((u->r.mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->r.mcr & MCR_OUT2) ? MSR_DCD : 0);
    else
        in = MSR_CTS | MSR_DSR | MSR_DCD;
    if ((in ^ old) & MSR_CTS)
        delta |= MSR_DCTS;
    if ((in ^ old) & MSR_DSR)
        delta |= MSR_DDSR;
    if ((in ^ old) & MSR_DCD)
        delta |= MSR_DDCD;
    if ((old & MSR_RI) && !(in & MSR_RI))
        delta |= MSR_TERI;      /* trailing edge of RI */
    u->r.msr = (uint8_t)(in | (old & 0x0f) | delta);
}

static void uart_tx(struct uart *u, uint8_t byte)
{
    u->tx_bytes++;
    if (u->r.mcr & MCR_LOOP) {
        rx_push(u, byte);
        u->r.timeout_ipending = 1;
    } else if (u->cd) {
        dm_chardev_write(u->cd, &byte, 1);
    }
    /* Sent at once: the holding register is empty again. */
    u->r.lsr |= LSR_THRE | LSR_TEMT;
    u->r.thr_ipending = 1;
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
    struct uart *u = opaque;
    uint8_t v = 0xff;

    switch (off) {
    case 0:
        if (u->r.lcr & LCR_DLAB) {
            v = u->r.dll;
            break;
        }
        v = rx_pop(u);
        break;
    case 1:
        v = (u->r.lcr & LCR_DLAB) ? u->r.dlm : u->r.ier;
        break;
    case 2:
        v = uart_iir(u);
        /* Reading IIR while it reports THRE acknowledges that interrupt. */
        if ((v & 0x0f) == IIR_THRI)
            u->r.thr_ipending = 0;
        break;
    case 3:
        v = u->r.lcr;
        break;
    case 4:
        v = u->r.mcr;
        break;
    case 5:
        v = u->r.lsr;
        u->r.lsr &= ~(LSR_OE | LSR_BI | LSR_ERR);
        break;
    case 6:
        v = u->r.msr;
        u->r.msr &= 0xf0;
        break;
    case 7:
        v = u->r.scr;
        break;
    }
    uart_update_irq(u);
    return v;
}

static void uart_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct uart *u = opaque;
    uint8_t v = (uint8_t)val;

    switch (off) {
    case 0:
        if (u->r.lcr & LCR_DLAB)
            u->r.dll = v;
        else
            uart_tx(u, v);
        break;
    case 1:
        if (u->r.lcr & LCR_DLAB) {
            u->r.dlm = v;
            break;
        }
        /* Enabling THRE interrupts with THR empty raises one at once (8250 behaviour). */
        if ((v & IER_THRI) && !(u->r.ier & IER_THRI) && (u->r.lsr & LSR_THRE))
            u->r.thr_ipending = 1;
        u->r.ier = v & 0x0f;
        break;
    case 2: {
        bool was_on = fifo_on(u);

        u->r.fcr = v & 0xc9;
        if ((v & FCR_CLR_RX) || was_on != fifo_on(u))
            rx_clear(u);
        if (v & FCR_CLR_TX) {
            u->r.lsr |= LSR_THRE | LSR_TEMT;
            u->r.thr_ipending = 1;
        }
        break;
    }
    case 3:
        u->r.lcr = v;
        break;
    case 4:
        u->r.mcr = v & 0x1f;
        msr_update(u);
        break;
    case 5:
    case 6:
        break;  /* read-only on a 16550A: writes are ignored */
    case 7:
        u->r.scr = v;
        break;
    }
    uart_update_irq(u);
}

static const struct ferry_dm_region_ops uart_ops = {
    .read = uart_read,
    .write = uart_write,
    .max_size = 1,
};

static size_t uart_room(void *opaque)
{
    struct uart *u = opaque;

    if (u->r.mcr & MCR_LOOP)
        return 0;       /* the receiver listens to the transmitter only */
    return rx_capacity(u) - u->r.rx_count;
}

static void uart_receive(void *opaque, const uint8_t *buf, size_t n)
{
    struct uart *u = opaque;

    for (size_t i = 0; i < n; i++)
        rx_push(u, buf[i]);
    u->r.timeout_ipending = 1;
    uart_update_irq(u);
}

/* The guest's output is lost (a full file system, a dead terminal): said,
 * rate-limited, since the guest decides how often this happens. */
static void uart_output_failed(void *opaque, size_t n, int err, uint64_t total)
{
    struct uart *u = opaque;

    dm_dev_guest_log(u->dev, "serial output to %s: %zu bytes dropped: %s (%" PRIu64
                           " dropped in all)", dm_chardev_out_name(u->cd), n, strerror(err),
                           total);
}

static const struct ferry_chardev_ops uart_cd_ops = {
    .room = uart_room,
    .receive = uart_receive,
    .output_failed = uart_output_failed,
};

static void uart_reset(void *state)
{
    struct uart *u = state;

    memset(&u->r, 0, sizeof(u->r));
    u->r.lsr = LSR_THRE | LSR_TEMT;
    u->r.dll = 0x0c;            /* 9600 baud */
    msr_update(u);
    u->r.msr &= 0xf0;
    if (u->cd)
        dm_chardev_accept_input(u->cd);
    uart_update_irq(u);
}

static int uart_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "port", "irq", "out", "in", NULL };
    const char *out_spec = dm_opts_get(opts, "out");
    const char *in_spec = dm_opts_get(opts, "in");
    const char *bad = NULL;
    uint64_t port, irq;
    char err[256];
    struct uart *u;
    int rc;

    if (dm_opts_check(opts, known, &bad) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "unknown option '%s' (port, irq, out, in)", bad);
        return -EINVAL;
    }
    if (dm_opts_get_u64(opts, "port", 0x3f8, 0xfff8, &port) < 0 ||
        dm_opts_get_u64(opts, "irq", 4, 1023, &irq) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "port must be <= 0xfff8 and irq <= 1023");
        return -EINVAL;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->dev = dev;
    rc = dm_irq_add(dev, (uint32_t)irq, FERRY_DM_IRQ_EDGE, &u->irq);
    if (rc < 0)
        goto err_free;
    rc = dm_region_add(dev, FERRY_DM_SPACE_PORT, port, 8, &uart_ops, u, 0, NULL);
    if (rc < 0)
        goto err_free;
    rc = dm_chardev_open(dm_event_base(dm_device_dm(dev)),
                            out_spec ? out_spec : "stdout", in_spec ? in_spec : "none",
                            &uart_cd_ops, u, &u->cd, err, sizeof(err));
    if (rc < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "%s", err);
        goto err_free;
    }
    if (strncmp(dm_chardev_out_name(u->cd), "pty:", 4) == 0)
        dm_dev_log(dev, FERRY_LOG_INFO, "serial console on %s",
                         dm_chardev_out_name(u->cd) + 4);
    *state = u;
    return 0;
err_free:
    /* The region and irq, if added, go with the device. */
    free(u);
    return rc;
}

static void uart_exit(void *state)
{
    struct uart *u = state;

    dm_chardev_close(u->cd);
    free(u);
}

static int uart_save(void *state, GByteArray *out)
{
    struct uart *u = state;
    uint8_t version = UART_SAVE_VERSION;

    g_byte_array_append(out, &version, 1);
    g_byte_array_append(out, (const guint8 *)&u->r, sizeof(u->r));
    return 0;
}

static int uart_restore(void *state, const uint8_t *buf, size_t len)
{
    struct uart *u = state;
    struct uart_regs r;

    if (len != 1 + sizeof(r) || buf[0] != UART_SAVE_VERSION)
        return -EINVAL;
    memcpy(&r, buf + 1, sizeof(r));
    /* Never more bytes than the restored FIFO setting can hold. */
    if (r.rx_head >= UART_FIFO_SIZE ||
        r.rx_count > ((r.fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1))
        return -EINVAL;
    u->r = r;
    uart_update_irq(u);
    return 0;
}

static void uart_query(void *state, json_t *b)
{
    struct uart *u = state;

    json_object_set_new(b, "out", ferry_json_str(dm_chardev_out_name(u->cd)));
    json_object_set_new(b, "in", ferry_json_str(dm_chardev_in_name(u->cd)));
    json_object_set_new(b, "tx-bytes", json_integer((json_int_t)u->tx_bytes));
    json_object_set_new(b, "rx-bytes", json_integer((json_int_t)u->rx_bytes));
    json_object_set_new(b, "dropped", json_integer((json_int_t)dm_chardev_dropped(u->cd)));
}

/*
 * Syscalls of the back end beyond the base list of a confined ferry-dm: the
 * pty (or stdio) is opened before confinement (posix_openpt, grantpt,
 * unlockpt all happen then); afterwards it only reads, writes (base) and
 * sets line modes.
 */
FERRY_SYSCALL_LIST_STATIC(uart_syscalls, "serial",
    "16550 UART on a pty or stdio opened before confinement",
    FERRY_IOCTL(TCGETS), FERRY_IOCTL(TCSETS), FERRY_IOCTL(TCSETSW), FERRY_IOCTL(TCSETSF),
    FERRY_IOCTL(TCFLSH), FERRY_IOCTL(TIOCGWINSZ), FERRY_IOCTL(TIOCOUTQ),
    FERRY_IOCTL(TIOCMGET), FERRY_IOCTL(TIOCMSET));

const struct ferry_dm_device_type uart_device = {
    .name = "uart",
    .desc = "16550A UART (COM1: port=0x3f8 irq=4; out=, in=)",
    .syscalls = &uart_syscalls,
    .init = uart_init,
    .exit = uart_exit,
    .reset = uart_reset,
    .save = uart_save,
    .restore = uart_restore,
    .query = uart_query,
};
FERRY_DM_DEVICE_TYPE(uart_device)
