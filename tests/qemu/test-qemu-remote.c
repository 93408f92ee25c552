/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QEMU remote device engine against a real, stock QEMU
 * (qemu-system-x86_64 -machine x-remote).  This program plays the guest:
 * "guest RAM" is a memfd it maps itself, and it finds, programs and drives
 * the devices through the engine's config and BAR entry points, the way
 * ferry-dm will on behalf of a guest running on ferry-hv.
 *
 *   messages      every mpqemu message, raw from the codec, against QEMU
 *   rtl8139       find 10ec:8139, BARs, MAC, TX loopback into an RX ring in
 *                 guest RAM, ISR ROK|TOK, the irqfd and its resample fd
 *   e1000, pci-testdev   enumerated: ids, class, BAR sizes, interrupt pin
 *   hostile       accesses outside BARs, bad sizes, odd config offsets
 *   supervision   exit while idle, kill, hang (SIGSTOP): all ones, restart
 *                 with reset and replayed config, then the restart limit
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mpqemu/qemu-remote.h"
#include "mpqemu/mpqemu.h"
#include "tests/check-main.h"

#define RAM_SIZE        (16u << 20)
#define RX_RING_GPA     0x100000u
#define TX_BUF_GPA      0x200000u
#define GUEST_IO_BAR    0xc000u
#define GUEST_MMIO_BAR  0xfebf0000u

static const char *qemu_bin;

/* ---- log capture ---- */
#define LOG_LINES 512
static char log_lines[LOG_LINES][256];
static unsigned log_n;

static void test_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
    snprintf(log_lines[log_n % LOG_LINES], sizeof(log_lines[0]), "%s", msg);
    log_n++;
}

static bool logged(const char *needle)
{
    unsigned first = log_n > LOG_LINES ? log_n - LOG_LINES : 0;

    for (unsigned i = first; i < log_n; i++) {
        if (strstr(log_lines[i % LOG_LINES], needle))
            return true;
    }
    return false;
}

/* ---- a guest: RAM, event loop, the engine ---- */
struct mapping {
    bool mapped, io;
    uint64_t addr, size;
};

struct guest {
    struct event_base *base;
    int memfd;
    uint8_t *ram;
    struct ferry_qemu_remote *dev;
    struct mapping maps[QEMU_REMOTE_BARS];
    enum mpqemu_remote_state wait_for;
};

static void on_bar_map(void *opaque, unsigned bar, bool io, uint64_t addr, uint64_t size,
                       bool mapped)
{
    struct guest *g = opaque;

    ck_assert_uint_lt(bar, QEMU_REMOTE_BARS);
    g->maps[bar] = (struct mapping){ mapped, io, addr, size };
}

static void on_state(void *opaque, enum mpqemu_remote_state st)
{
    struct guest *g = opaque;

    if (st == g->wait_for)
        event_base_loopbreak(g->base);
}

static const struct ferry_qemu_remote_ops ops = {
    .log = test_log,
    .bar_map = on_bar_map,
    .state_changed = on_state,
};

static void guest_init(struct guest *g, const char *device,
                       struct ferry_qemu_remote_config *extra)
{
    struct ferry_qemu_remote_config cfg = {
        .device = device, .id = "dev0", .irq_fd = -1, .resample_fd = -1,
        .reply_timeout_ms = 10000, .start_timeout_ms = 30000,
    };

    if (extra) {
        cfg = *extra;
        cfg.device = device;
    }
    cfg.qemu = qemu_bin;
    memset(g, 0, sizeof(*g));
    g->base = event_base_new();
    ck_assert_ptr_nonnull(g->base);
    g->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    ck_assert_int_ge(g->memfd, 0);
    ck_assert_int_eq(ftruncate(g->memfd, RAM_SIZE), 0);
    g->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
    ck_assert_ptr_ne(g->ram, MAP_FAILED);
    ck_assert_int_eq(mpqemu_remote_new(g->base, &cfg, &ops, g, &g->dev), 0);
    /* Regions the remote could not map are refused before they can end it. */
    ck_assert_int_eq(mpqemu_remote_add_ram(g->dev, g->memfd, 0, RAM_SIZE, 0x1000), -EINVAL);
    ck_assert_int_eq(mpqemu_remote_add_ram(g->dev, g->memfd, 0, 2 * RAM_SIZE, 0), -EINVAL);
    ck_assert_int_eq(mpqemu_remote_add_ram(g->dev, g->memfd, 0x800, 0x1000, 0), -EINVAL);
    ck_assert_int_eq(mpqemu_remote_add_ram(g->dev, g->memfd, 0, RAM_SIZE, 0), 0);
    ck_assert_int_eq(mpqemu_remote_add_ram(g->dev, g->memfd, 0x1000, 0x1000, 0), -EEXIST);
    ck_assert_int_eq(mpqemu_remote_start(g->dev), 0);
    ck_assert_int_eq(mpqemu_remote_state(g->dev), QEMU_REMOTE_RUNNING);
    ck_assert_int_gt(mpqemu_remote_pid(g->dev), 0);
}

static void guest_fini(struct guest *g)
{
    pid_t pid = mpqemu_remote_pid(g->dev);

    mpqemu_remote_free(g->dev);
    if (pid > 0)
        ck_assert_int_eq(kill(pid, 0), -1);     /* gone and reaped */
    munmap(g->ram, RAM_SIZE);
    close(g->memfd);
    event_base_free(g->base);
}

/* Run the loop until the device reaches state (bounded generously). */
static void guest_wait_state(struct guest *g, enum mpqemu_remote_state st)
{
    struct timeval tv = { 60, 0 };

    if (mpqemu_remote_state(g->dev) == st)
        return;
    g->wait_for = st;
    event_base_loopexit(g->base, &tv);
    event_base_dispatch(g->base);
    ck_assert_str_eq(mpqemu_remote_state_name(mpqemu_remote_state(g->dev)),
                     mpqemu_remote_state_name(st));
}

static uint32_t cfg_rd(struct guest *g, unsigned off, unsigned len)
{
    return mpqemu_remote_config_read(g->dev, off, len);
}

static void cfg_wr(struct guest *g, unsigned off, unsigned len, uint32_t v)
{
    mpqemu_remote_config_write(g->dev, off, len, v);
}

static uint64_t io_rd(struct guest *g, uint64_t addr, unsigned size)
{
    uint64_t v;

    ck_assert_int_eq(mpqemu_remote_bar_read(g->dev, true, addr, size, &v), 0);
    return v;
}

static void io_wr(struct guest *g, uint64_t addr, unsigned size, uint64_t v)
{
    ck_assert_int_eq(mpqemu_remote_bar_write(g->dev, true, addr, size, v), 0);
}

static uint64_t mm_rd(struct guest *g, uint64_t addr, unsigned size)
{
    uint64_t v;

    ck_assert_int_eq(mpqemu_remote_bar_read(g->dev, false, addr, size, &v), 0);
    return v;
}

static void mm_wr(struct guest *g, uint64_t addr, unsigned size, uint64_t v)
{
    ck_assert_int_eq(mpqemu_remote_bar_write(g->dev, false, addr, size, v), 0);
}

/* Size a BAR the way firmware does: all ones, read back, restore. */
static uint64_t size_bar(struct guest *g, unsigned bar, bool *io)
{
    unsigned off = 0x10 + 4 * bar;
    uint32_t orig = cfg_rd(g, off, 4), mask;

    cfg_wr(g, off, 4, 0xffffffff);
    mask = cfg_rd(g, off, 4);
    cfg_wr(g, off, 4, orig);
    if (!mask)
        return 0;
    *io = mask & 1;
    if (*io)
        return (uint32_t)(~(mask & ~3u) + 1) & 0xffff;
    return (uint32_t)(~(mask & ~0xfu) + 1);
}

static uint64_t eventfd_wait(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint64_t v = 0;

    if (poll(&p, 1, timeout_ms) == 1 && read(fd, &v, 8) == 8)
        return v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Raw messages against QEMU, without the engine                       */

struct raw {
    pid_t pid;
    int sock;
};

static void raw_spawn(struct raw *r, const char *device)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        char dev[128];

        dup2(sv[1], 3);
        snprintf(dev, sizeof(dev), "%s,id=d0", device);
        execlp(qemu_bin, qemu_bin, "-machine", "x-remote", "-device", dev, "-object",
               "x-remote-object,id=robj0,devid=d0,fd=3", "-nodefaults", "-nographic",
               (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    r->sock = sv[0];
}

static uint64_t raw_call(struct raw *r, struct mpqemu_msg *m, uint32_t want_size)
{
    struct mpqemu_msg reply;

    ck_assert_int_eq(mpqemu_msg_send(r->sock, m), 0);
    ck_assert_int_eq(mpqemu_msg_recv(r->sock, &reply, 30000), 0);
    ck_assert_int_eq(reply.cmd, MPQEMU_CMD_RET);
    ck_assert_uint_eq(reply.size, want_size);
    ck_assert_uint_eq(reply.nfds, 0);
    return reply.u.u64;
}

static int raw_end(struct raw *r, bool expect_exit)
{
    int status = 0;

    if (!expect_exit)
        kill(r->pid, SIGKILL);
    ck_assert_int_eq(waitpid(r->pid, &status, 0), r->pid);
    close(r->sock);
    return status;
}

START_TEST(test_messages)
{
    struct raw r;
    struct mpqemu_msg m;
    int memfd = memfd_create("ram", MFD_CLOEXEC);
    int irq = eventfd(0, EFD_CLOEXEC), rs = eventfd(0, EFD_CLOEXEC);
    uint64_t gpa = 0, size = RAM_SIZE, off = 0;
    uint8_t *ram;

    ck_assert_int_ge(memfd, 0);
    ck_assert_int_eq(ftruncate(memfd, RAM_SIZE), 0);
    ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    ck_assert_ptr_ne(ram, MAP_FAILED);
    raw_spawn(&r, "rtl8139");

    /* SYNC_SYSMEM and SET_IRQFD: no reply. */
    ck_assert_int_eq(mpqemu_msg_sysmem(&m, 1, &memfd, &gpa, &size, &off), 0);
    ck_assert_int_eq(mpqemu_msg_send(r.sock, &m), 0);
    mpqemu_msg_set_irqfd(&m, irq, rs);
    ck_assert_int_eq(mpqemu_msg_send(r.sock, &m), 0);
    /* DEVICE_RESET: an empty RET. */
    mpqemu_msg_device_reset(&m);
    raw_call(&r, &m, 0);
    /* PCI_CFGREAD / PCI_CFGWRITE: RET with 8 bytes. */
    mpqemu_msg_cfgread(&m, 0, 4);
    ck_assert_uint_eq(raw_call(&r, &m, 8), 0x813910ec);
    mpqemu_msg_cfgread(&m, 0x3d, 1);
    ck_assert_uint_eq(raw_call(&r, &m, 8), 1);
    mpqemu_msg_cfgwrite(&m, 0x10, 0x1000, 4);
    raw_call(&r, &m, 8);
    mpqemu_msg_cfgwrite(&m, 0x04, 0x0005, 2);   /* io + bus master */
    raw_call(&r, &m, 8);
    mpqemu_msg_cfgread(&m, 0x10, 4);
    ck_assert_uint_eq(raw_call(&r, &m, 8), 0x1001);
    /* BAR_READ / BAR_WRITE in the remote's I/O space: MAC, then a MAR byte. */
    mpqemu_msg_bar_read(&m, false, 0x1000, 4);
    ck_assert_uint_eq(raw_call(&r, &m, 8), 0x12005452);
    mpqemu_msg_bar_write(&m, false, 0x1008, 0x5a, 1);
    raw_call(&r, &m, 8);
    mpqemu_msg_bar_read(&m, false, 0x1008, 1);
    ck_assert_uint_eq(raw_call(&r, &m, 8), 0x5a);
    /* Still alive after all of them. */
    ck_assert_int_eq(kill(r.pid, 0), 0);
    /*
     * What the engine exists to prevent: a BAR read where nothing is mapped
     * is answered with all ones, and then the remote ends itself, with exit
     * status 0.
     */
    mpqemu_msg_bar_read(&m, true, 0x80000000u, 4);
    ck_assert_uint_eq(raw_call(&r, &m, 8), UINT64_MAX);
    {
        struct mpqemu_msg reply;

        ck_assert_int_eq(mpqemu_msg_recv(r.sock, &reply, 30000), -ECONNRESET);
    }
    {
        int st = raw_end(&r, true);

        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
    }
    munmap(ram, RAM_SIZE);
    close(memfd);
    close(irq);
    close(rs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RTL8139: the loopback test                                          */

/* RTL8139 registers */
#define RTL_IDR0    0x00
#define RTL_MAR0    0x08
#define RTL_TSD0    0x10
#define RTL_TSAD0   0x20
#define RTL_RBSTART 0x30
#define RTL_CR      0x37
#define RTL_CAPR    0x38
#define RTL_IMR     0x3c
#define RTL_ISR     0x3e
#define RTL_TCR     0x40
#define RTL_RCR     0x44
#define CR_RST      0x10
#define CR_RE       0x08
#define CR_TE       0x04
#define ISR_ROK     0x0001
#define ISR_TOK     0x0004
#define TSD_TOK     (1u << 15)

/* Guest-side enumeration; returns the I/O base. */
static void rtl_enumerate(struct guest *g)
{
    bool io = false;

    ck_assert_uint_eq(cfg_rd(g, 0x00, 2), 0x10ec);
    ck_assert_uint_eq(cfg_rd(g, 0x02, 2), 0x8139);
    ck_assert_uint_eq(cfg_rd(g, 0x0b, 1), 0x02);            /* network */
    ck_assert_uint_eq(cfg_rd(g, 0x3d, 1), 1);               /* INTA */
    ck_assert_uint_eq(size_bar(g, 0, &io), 256);
    ck_assert(io);
    ck_assert_uint_eq(size_bar(g, 1, &io), 256);
    ck_assert(!io);
    ck_assert_uint_eq(cfg_rd(g, 0x30, 4), 0);               /* no ROM shown */
    cfg_wr(g, 0x10, 4, GUEST_IO_BAR);
    cfg_wr(g, 0x14, 4, GUEST_MMIO_BAR);
    ck_assert(!g->maps[0].mapped && !g->maps[1].mapped);
    cfg_wr(g, 0x3c, 1, 11);
    cfg_wr(g, 0x04, 2, 0x0007);                             /* io, mem, bus master */
    ck_assert_uint_eq(cfg_rd(g, 0x10, 4), GUEST_IO_BAR | 1);
    ck_assert_uint_eq(cfg_rd(g, 0x14, 4), GUEST_MMIO_BAR);
    ck_assert(g->maps[0].mapped && g->maps[0].io);
    ck_assert_uint_eq(g->maps[0].addr, GUEST_IO_BAR);
    ck_assert_uint_eq(g->maps[0].size, 256);
    ck_assert(g->maps[1].mapped && !g->maps[1].io);
    ck_assert_uint_eq(g->maps[1].addr, GUEST_MMIO_BAR);
}

static void rtl_check_mac(struct guest *g)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

    for (unsigned i = 0; i < 6; i++) {
        ck_assert_uint_eq(io_rd(g, GUEST_IO_BAR + RTL_IDR0 + i, 1), mac[i]);
        ck_assert_uint_eq(mm_rd(g, GUEST_MMIO_BAR + RTL_IDR0 + i, 1), mac[i]);
    }
    ck_assert_uint_eq(io_rd(g, GUEST_IO_BAR + RTL_IDR0, 4), 0x12005452);
    ck_assert_uint_eq(mm_rd(g, GUEST_MMIO_BAR + RTL_IDR0 + 4, 2), 0x5634);
}

static void rtl_loopback(struct guest *g, unsigned frame_len, uint8_t seed)
{
    const uint64_t io = GUEST_IO_BAR;
    uint8_t *tx = g->ram + TX_BUF_GPA, *rx = g->ram + RX_RING_GPA;
    int irq = mpqemu_remote_irq_fd(g->dev);
    unsigned spins = 0;

    /* Reset the chip and wait for RST to clear. */
    io_wr(g, io + RTL_CR, 1, CR_RST);
    while (io_rd(g, io + RTL_CR, 1) & CR_RST)
        ck_assert_uint_lt(++spins, 1000);
    eventfd_wait(irq, 0);

    memset(rx, 0xee, 0x3000);
    mm_wr(g, GUEST_MMIO_BAR + RTL_RBSTART, 4, RX_RING_GPA);
    io_wr(g, io + RTL_IMR, 2, ISR_ROK | ISR_TOK);
    io_wr(g, io + RTL_RCR, 4, 0x0000008f);      /* AAP|APM|AM|AB, WRAP, 8K ring */
    io_wr(g, io + RTL_CR, 1, CR_RE | CR_TE);    /* transmitter on before TCR */
    io_wr(g, io + RTL_TCR, 4, 0x00060000);      /* loopback */
    ck_assert_uint_eq(io_rd(g, io + RTL_TCR, 4) & 0x00060000, 0x00060000);

    /* The frame, in guest RAM: to our own MAC. */
    memcpy(tx, "\x52\x54\x00\x12\x34\x56\x02\x00\x00\x00\x00\x01\x88\xb5", 14);
    for (unsigned i = 14; i < frame_len; i++)
        tx[i] = (uint8_t)(seed + i * 13);
    io_wr(g, io + RTL_TSAD0, 4, TX_BUF_GPA);
    io_wr(g, io + RTL_TSD0, 4, frame_len);      /* OWN clear: send */

    /* The remote signals the irqfd before it answers the access. */
    ck_assert_uint_ne(eventfd_wait(irq, 10000), 0);
    ck_assert_uint_eq(io_rd(g, io + RTL_ISR, 2) & (ISR_ROK | ISR_TOK), ISR_ROK | ISR_TOK);
    ck_assert_uint_ne(io_rd(g, io + RTL_TSD0, 4) & TSD_TOK, 0);

    /* rx ring: u16 status (ROK), u16 length including the CRC, the frame. */
    {
        uint16_t status = (uint16_t)(rx[0] | rx[1] << 8);
        uint16_t len = (uint16_t)(rx[2] | rx[3] << 8);

        ck_assert_uint_eq(status & 1, 1);
        ck_assert_uint_eq(len, frame_len + 4);
        ck_assert_mem_eq(rx + 4, tx, frame_len);
    }
    /* Acknowledge: clear ISR, then resample: INTx is down, no new edge. */
    io_wr(g, io + RTL_ISR, 2, 0xffff);
    ck_assert_uint_eq(io_rd(g, io + RTL_ISR, 2), 0);
    {
        uint64_t one = 1;

        ck_assert_int_eq(write(mpqemu_remote_resample_fd(g->dev), &one, 8), 8);
    }
}

START_TEST(test_rtl8139_loopback)
{
    struct guest g;
    struct mpqemu_remote_stats st;

    guest_init(&g, "rtl8139", NULL);
    /* The remote runs under QEMU's seccomp filter (mode 2) by default. */
    {
        char path[64], line[256];
        FILE *f;
        bool seccomp = false;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)mpqemu_remote_pid(g.dev));
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
            seccomp |= strncmp(line, "Seccomp:\t2", 10) == 0;
        fclose(f);
        ck_assert(seccomp);
        ck_assert(logged("sandbox=on"));
    }
    rtl_enumerate(&g);
    rtl_check_mac(&g);
    rtl_loopback(&g, 64, 1);
    mpqemu_remote_get_stats(g.dev, &st);
    ck_assert_uint_gt(st.bar_reads, 10);
    ck_assert_uint_gt(st.bar_writes, 5);
    ck_assert_uint_eq(st.refused, 0);
    ck_assert_uint_eq(st.restarts, 0);
    ck_assert(logged("sync_sysmem regions=1"));
    guest_fini(&g);
}
END_TEST

/*
 * Regression: a starting remote resets its machine the first time the link
 * runs dry, which used to wipe the BARs the engine had just programmed now
 * and then (the guest then read all ones from its BAR).  Start several
 * times and use the device at once.
 */
START_TEST(test_startup_settles)
{
    for (unsigned i = 0; i < 6; i++) {
        struct guest g;

        guest_init(&g, "rtl8139", NULL);
        rtl_enumerate(&g);
        rtl_check_mac(&g);
        guest_fini(&g);
    }
}
END_TEST

/* Guest-requested function reset: DEVICE_RESET, then the guest starts over. */
START_TEST(test_device_reset)
{
    struct guest g;

    guest_init(&g, "rtl8139", NULL);
    rtl_enumerate(&g);
    io_wr(&g, GUEST_IO_BAR + RTL_IMR, 2, ISR_ROK | ISR_TOK);
    ck_assert_uint_eq(io_rd(&g, GUEST_IO_BAR + RTL_IMR, 2), ISR_ROK | ISR_TOK);
    ck_assert_int_eq(mpqemu_remote_reset(g.dev), 0);
    ck_assert_uint_eq(cfg_rd(&g, 0x04, 2) & 7, 0);
    ck_assert_uint_eq(cfg_rd(&g, 0x10, 4), 1);
    ck_assert(!g.maps[0].mapped && !g.maps[1].mapped);
    rtl_enumerate(&g);
    ck_assert_uint_eq(io_rd(&g, GUEST_IO_BAR + RTL_IMR, 2), 0);    /* the chip was reset */
    rtl_check_mac(&g);
    guest_fini(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Second devices: enumeration                                         */

START_TEST(test_e1000_enumerate)
{
    struct guest g;
    bool io = false;
    struct mpqemu_remote_bar_info bi;

    guest_init(&g, "e1000", NULL);
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0x100e8086);
    ck_assert_uint_eq(cfg_rd(&g, 0x08, 4) >> 8, 0x020000);
    ck_assert_uint_eq(cfg_rd(&g, 0x3d, 1), 1);
    ck_assert_uint_eq(size_bar(&g, 0, &io), 0x20000);
    ck_assert(!io);
    ck_assert_uint_eq(size_bar(&g, 1, &io), 0x40);
    ck_assert(io);
    for (unsigned b = 2; b < 6; b++)
        ck_assert_uint_eq(cfg_rd(&g, 0x10 + 4 * b, 4), 0);
    ck_assert_int_eq(mpqemu_remote_bar_info(g.dev, 0, &bi), 0);
    ck_assert(bi.present && !bi.io && bi.size == 0x20000);
    /* Program and read the STATUS register (offset 8) through BAR0. */
    cfg_wr(&g, 0x10, 4, 0xfeb00000);
    cfg_wr(&g, 0x14, 4, 0xd000);
    cfg_wr(&g, 0x04, 2, 0x0007);
    ck_assert(g.maps[0].mapped && g.maps[1].mapped);
    ck_assert_uint_ne(mm_rd(&g, 0xfeb00000 + 0x8, 4), 0xffffffff);
    /* QEMU's e1000 does not implement the IOADDR/IODATA window: reads 0. */
    io_wr(&g, 0xd000, 4, 0x8);
    ck_assert_uint_eq(io_rd(&g, 0xd004, 4), 0);
    guest_fini(&g);
}
END_TEST

/* Backend options: a NIC with a network backend has a peer. */
START_TEST(test_extra_args)
{
    struct guest g;
    static const char *const extra[] = { "-netdev", "user,id=n0,restrict=on", NULL };
    struct ferry_qemu_remote_config cfg = {
        .id = "nic1", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 10000,
        .start_timeout_ms = 30000, .extra_args = extra,
    };

    log_n = 0;
    guest_init(&g, "e1000,netdev=n0,mac=52:54:00:ab:cd:ef", &cfg);
    ck_assert(logged("spawned pid="));
    ck_assert(!logged("has no peer"));
    cfg_wr(&g, 0x10, 4, 0xfeb00000);
    cfg_wr(&g, 0x04, 2, 0x0002);
    /* Receive Address Low (0x5400) holds the MAC from the -device string. */
    ck_assert_uint_eq(mm_rd(&g, 0xfeb00000 + 0x5400, 4), 0xab005452);
    guest_fini(&g);
}
END_TEST

START_TEST(test_pci_testdev_enumerate)
{
    struct guest g;
    bool io = false;

    guest_init(&g, "pci-testdev", NULL);
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 2), 0x1b36);
    ck_assert_uint_eq(cfg_rd(&g, 0x02, 2), 0x0005);
    ck_assert_uint_eq(cfg_rd(&g, 0x3d, 1), 0);      /* no interrupt pin */
    ck_assert_uint_eq(size_bar(&g, 0, &io), 0x1000);
    ck_assert(!io);
    ck_assert_uint_eq(size_bar(&g, 1, &io), 0x100);
    ck_assert(io);
    guest_fini(&g);
}
END_TEST

/* A PCI Express function with a 64-bit BAR, placed above 4 GiB by the guest. */
START_TEST(test_xhci_64bit_bar)
{
    struct guest g;
    struct mpqemu_remote_bar_info bi;
    const uint64_t bar = 0x2000000000ull;
    uint32_t lo;

    guest_init(&g, "qemu-xhci", NULL);
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0x000d1b36);
    ck_assert_uint_eq(cfg_rd(&g, 0x08, 4) >> 8, 0x0c0330);   /* USB xHCI */
    ck_assert_uint_eq(cfg_rd(&g, 0x3d, 1), 1);
    ck_assert_int_eq(mpqemu_remote_bar_info(g.dev, 0, &bi), 0);
    ck_assert(bi.present && bi.is64 && !bi.io);
    /* Size both halves. */
    cfg_wr(&g, 0x10, 4, 0xffffffff);
    cfg_wr(&g, 0x14, 4, 0xffffffff);
    lo = cfg_rd(&g, 0x10, 4);
    ck_assert_uint_eq(lo & 0x6, 0x4);                        /* 64-bit type */
    ck_assert_uint_eq(cfg_rd(&g, 0x14, 4), 0xffffffff);
    ck_assert_uint_eq(((uint64_t)0xffffffff << 32 | (lo & ~0xfu)) ^ ~(bi.size - 1), 0);
    cfg_wr(&g, 0x10, 4, (uint32_t)bar);
    cfg_wr(&g, 0x14, 4, (uint32_t)(bar >> 32));
    cfg_wr(&g, 0x04, 2, 0x0006);
    ck_assert(g.maps[0].mapped);
    ck_assert_uint_eq(g.maps[0].addr, bar);
    ck_assert_uint_eq(g.maps[0].size, bi.size);
    /* CAPLENGTH and HCIVERSION, then HCSPARAMS1 (max ports) read both ways. */
    ck_assert_uint_eq(mm_rd(&g, bar, 1), 0x40);
    ck_assert_uint_eq(mm_rd(&g, bar, 4), 0x01000040);
    ck_assert_uint_eq(mm_rd(&g, bar, 8), mm_rd(&g, bar + 4, 4) << 32 | 0x01000040);
    /* 4 KiB of config space: the PCIe capability is there, MSI/MSI-X are not. */
    {
        unsigned p = cfg_rd(&g, 0x34, 1), n = 0;
        bool pcie = false;

        while (p && n++ < 48) {
            uint8_t id = (uint8_t)cfg_rd(&g, p, 1);

            ck_assert_uint_ne(id, 0x05);
            ck_assert_uint_ne(id, 0x11);
            pcie |= id == 0x10;
            p = cfg_rd(&g, p + 1, 1);
        }
        ck_assert(pcie);
    }
    ck_assert_uint_ne(cfg_rd(&g, 0x100, 4), 0xffffffff);
    guest_fini(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile guest accesses never reach (and never kill) the remote      */

START_TEST(test_hostile)
{
    struct guest g;
    pid_t pid;
    uint64_t v;
    struct mpqemu_remote_stats st;
    static const struct { bool io; uint64_t addr; unsigned size; } bad[] = {
        { true, GUEST_IO_BAR + 0x100, 1 },          /* just past the I/O BAR */
        { true, GUEST_IO_BAR + 0xfe, 4 },           /* straddles its end (unaligned) */
        { true, GUEST_IO_BAR + 0xfc, 8 },           /* straddles its end */
        { true, GUEST_IO_BAR - 1, 1 },
        { true, GUEST_IO_BAR + 1, 2 },              /* misaligned */
        { true, GUEST_IO_BAR, 3 },                  /* no such size */
        { true, GUEST_IO_BAR, 16 },
        { true, GUEST_IO_BAR, 0 },
        { false, GUEST_IO_BAR, 1 },                 /* wrong space */
        { false, GUEST_MMIO_BAR + 0x100, 4 },
        { false, GUEST_MMIO_BAR - 4, 4 },
        { false, 0x80000000u, 4 },                  /* nothing there (kills a bare remote) */
        { false, UINT64_MAX - 1, 2 },               /* wraps */
        { false, GUEST_MMIO_BAR + 2, 4 },
    };

    guest_init(&g, "rtl8139", NULL);
    pid = mpqemu_remote_pid(g.dev);
    /* Before the BARs are enabled, nothing is forwarded. */
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, true, GUEST_IO_BAR, 1, &v), -ENXIO);
    ck_assert_uint_eq(v, 0xff);
    rtl_enumerate(&g);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, bad[i].io, bad[i].addr, bad[i].size, &v),
                         -ENXIO);
        ck_assert_int_eq(mpqemu_remote_bar_write(g.dev, bad[i].io, bad[i].addr, bad[i].size,
                                               0x1234), -ENXIO);
    }
    /* Config space: offsets QEMU would refuse (addr + 4 > 256), bad lengths. */
    ck_assert_uint_eq(cfg_rd(&g, 0xff, 1), 0);
    ck_assert_uint_eq(cfg_rd(&g, 0xfe, 2), 0);
    ck_assert_uint_eq(cfg_rd(&g, 0xfd, 1), 0);
    cfg_wr(&g, 0xff, 1, 0xff);
    cfg_wr(&g, 0xfe, 2, 0xffff);
    ck_assert_uint_eq(cfg_rd(&g, 0x100, 4), 0xffffffff);    /* no extended space */
    cfg_wr(&g, 0x100, 4, 0);
    ck_assert_uint_eq(cfg_rd(&g, 0xfff, 1), 0xff);
    ck_assert_uint_eq(cfg_rd(&g, 0x1000, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_rd(&g, 0x02, 4), 0xffffffff);     /* misaligned */
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 3), 0xffffffff);
    cfg_wr(&g, 0x01, 2, 0);
    cfg_wr(&g, 0x00, 8, 0);
    cfg_wr(&g, 0x30, 4, 0xffffffff);                         /* ROM BAR */
    ck_assert_uint_eq(cfg_rd(&g, 0x30, 4), 0);
    /* BARs at silly addresses: wrapping, or a 16-bit I/O BAR beyond 64K. */
    cfg_wr(&g, 0x14, 4, 0xffffff00);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, false, 0xffffff00, 4, &v), 0);
    cfg_wr(&g, 0x14, 4, GUEST_MMIO_BAR);
    /* An 8-byte access inside a BAR is split into two 4-byte ones. */
    ck_assert_uint_eq(io_rd(&g, GUEST_IO_BAR, 8) & 0xffffffffffffull, 0x563412005452ull);

    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert_int_eq(mpqemu_remote_pid(g.dev), pid);
    ck_assert_int_eq(mpqemu_remote_state(g.dev), QEMU_REMOTE_RUNNING);
    rtl_check_mac(&g);
    rtl_loopback(&g, 100, 7);
    mpqemu_remote_get_stats(g.dev, &st);
    ck_assert_uint_ge(st.refused, 2 * sizeof(bad) / sizeof(bad[0]));
    ck_assert_uint_eq(st.restarts, 0);
    ck_assert(!logged("down pid="));
    guest_fini(&g);
}
END_TEST

/* Access-size floor for devices whose registers refuse small accesses. */
START_TEST(test_access_min)
{
    struct guest g;
    struct ferry_qemu_remote_config cfg = {
        .id = "dev0", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 10000,
        .start_timeout_ms = 30000, .bar_access_min = 4,
    };
    uint64_t v;

    guest_init(&g, "rtl8139", &cfg);
    rtl_enumerate(&g);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, true, GUEST_IO_BAR, 1, &v), -ENXIO);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, true, GUEST_IO_BAR, 4, &v), 0);
    ck_assert_uint_eq(v, 0x12005452);
    guest_fini(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Supervision                                                         */

START_TEST(test_supervision)
{
    struct guest g;
    struct ferry_qemu_remote_config cfg = {
        .id = "dev0", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 2000,
        .start_timeout_ms = 30000, .max_restarts = 2, .restart_delay_ms = 200,
    };
    pid_t pid1, pid2, pid3;
    uint64_t v;
    struct mpqemu_remote_stats st;

    guest_init(&g, "rtl8139", &cfg);
    rtl_enumerate(&g);
    rtl_check_mac(&g);
    io_wr(&g, GUEST_IO_BAR + RTL_MAR0, 1, 0x77);

    /* 1. It dies while idle: noticed by the event loop alone. */
    pid1 = mpqemu_remote_pid(g.dev);
    ck_assert_int_eq(kill(pid1, SIGKILL), 0);
    guest_wait_state(&g, QEMU_REMOTE_DOWN);
    ck_assert(logged("killed pid="));
    ck_assert_int_eq(mpqemu_remote_pid(g.dev), 0);
    /* Meanwhile: all ones, writes dropped. */
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0xffffffff);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, true, GUEST_IO_BAR, 4, &v), -ENODEV);
    ck_assert_uint_eq(v, 0xffffffff);
    ck_assert_int_eq(mpqemu_remote_bar_write(g.dev, true, GUEST_IO_BAR, 1, 0), -ENODEV);
    cfg_wr(&g, 0x04, 2, 0);
    /* Restarted, reset, RAM/irqfd/BARs/command replayed: the guest goes on. */
    guest_wait_state(&g, QEMU_REMOTE_RUNNING);
    pid2 = mpqemu_remote_pid(g.dev);
    ck_assert_int_gt(pid2, 0);
    ck_assert_int_ne(pid2, pid1);
    ck_assert(logged("restart 1/2"));
    ck_assert(logged("restarted pid="));
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0x813910ec);
    ck_assert_uint_eq(cfg_rd(&g, 0x04, 2) & 7, 7);
    ck_assert_uint_eq(cfg_rd(&g, 0x3c, 1), 11);
    ck_assert(g.maps[0].mapped && g.maps[1].mapped);
    rtl_check_mac(&g);
    ck_assert_uint_eq(io_rd(&g, GUEST_IO_BAR + RTL_MAR0, 1), 0);  /* device state is new */
    rtl_loopback(&g, 64, 3);                 /* DMA and the irqfd work again */

    /* 2. It hangs (SIGSTOP): the reply does not come, so it is down. */
    ck_assert_int_eq(kill(pid2, SIGSTOP), 0);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, true, GUEST_IO_BAR, 4, &v), -ENODEV);
    ck_assert_uint_eq(v, 0xffffffff);
    ck_assert(logged("hung: no reply to bar_read"));
    ck_assert_int_eq(mpqemu_remote_state(g.dev), QEMU_REMOTE_DOWN);
    ck_assert_uint_eq(cfg_rd(&g, 0x02, 2), 0xffff);
    guest_wait_state(&g, QEMU_REMOTE_RUNNING);
    pid3 = mpqemu_remote_pid(g.dev);
    ck_assert_int_gt(pid3, 0);
    ck_assert_int_ne(pid3, pid2);
    ck_assert_int_eq(kill(pid2, 0), -1);    /* the hung one was killed and reaped */
    rtl_check_mac(&g);

    /* 3. Past the restart limit it stays down, reading all ones. */
    ck_assert_int_eq(kill(pid3, SIGKILL), 0);
    guest_wait_state(&g, QEMU_REMOTE_FAILED);
    ck_assert(logged("giving up after 2 restarts"));
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0xffffffff);
    ck_assert_int_eq(mpqemu_remote_bar_read(g.dev, false, GUEST_MMIO_BAR, 1, &v), -ENODEV);
    ck_assert_uint_eq(v, 0xff);
    mpqemu_remote_get_stats(g.dev, &st);
    ck_assert_uint_eq(st.restarts, 2);
    ck_assert_uint_gt(st.while_down, 5);
    guest_fini(&g);
}
END_TEST

/*
 * A replace of ferry-dm: a process (the predecessor) runs the device,
 * hands the running QEMU over (mpqemu_remote_handover_begin: launcher,
 * link, stderr, INTx fds; the snapshot) and exits without a teardown; this
 * process adopts it: the same QEMU, not reset (a register the guest wrote
 * keeps its value), BARs where the guest put them, DMA and the irqfd
 * working, and supervision with it (killed, it is restarted through the
 * adopted launcher).  A bad snapshot and a second resume are refused.
 */
START_TEST(test_handover)
{
    int sp[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct ferry_qemu_remote_config cfg = {
            .id = "dev0", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 10000,
            .start_timeout_ms = 30000, .max_restarts = 1, .restart_delay_ms = 200,
        };
        struct guest a;
        int fds[QEMU_REMOTE_HANDOVER_FDS + 1];

        close(sp[0]);
        guest_init(&a, "rtl8139", &cfg);
        rtl_enumerate(&a);
        rtl_check_mac(&a);
        io_wr(&a, GUEST_IO_BAR + RTL_MAR0, 1, 0x77);
        if (mpqemu_remote_handover_begin(a.dev, fds) != QEMU_REMOTE_HANDOVER_FDS)
            _exit(10);
        fds[QEMU_REMOTE_HANDOVER_FDS] = a.memfd;
        size_t n = mpqemu_remote_snapshot_size();
        uint8_t *snap = malloc(n);
        mpqemu_remote_snapshot(a.dev, snap);
        char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
        struct iovec iov = { snap, n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        _exit(sendmsg(sp[1], &mh, 0) == (ssize_t)n ? 0 : 11);   /* no teardown */
    }
    close(sp[1]);
    int st = -1;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "predecessor: status 0x%x", st);

    size_t n = mpqemu_remote_snapshot_size();
    uint8_t *snap = malloc(n + 1);
    int fds[QEMU_REMOTE_HANDOVER_FDS + 1];
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { snap, n + 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ck_assert_int_eq(recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC), (ssize_t)n);
    ck_assert_ptr_nonnull(CMSG_FIRSTHDR(&mh));
    memcpy(fds, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(fds));
    close(sp[0]);

    struct ferry_qemu_remote_config cfg = {
        .qemu = qemu_bin, .device = "rtl8139", .id = "dev0", .reply_timeout_ms = 10000,
        .start_timeout_ms = 30000, .max_restarts = 1, .restart_delay_ms = 200,
        .irq_fd = -1, .resample_fd = -1,
    };
    struct guest b = { 0 };
    b.base = event_base_new();
    b.memfd = fds[QEMU_REMOTE_HANDOVER_FDS];
    b.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b.memfd, 0);
    ck_assert_ptr_ne(b.ram, MAP_FAILED);

    /* A snapshot of another device is refused; the QEMU lives on. */
    {
        int dups[QEMU_REMOTE_HANDOVER_FDS];
        struct ferry_qemu_remote *c;

        for (unsigned i = 0; i < QEMU_REMOTE_HANDOVER_FDS; i++)
            dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        cfg.adopt_fds = dups;
        ck_assert_int_eq(mpqemu_remote_new(b.base, &cfg, &ops, &b, &c), 0);
        ck_assert_int_eq(mpqemu_remote_add_ram(c, b.memfd, 0, RAM_SIZE, 0), 0);
        ck_assert_int_eq(mpqemu_remote_start(c), -EBUSY);      /* adopted: no start */
        uint8_t *bad = malloc(n);
        memcpy(bad, snap, n);
        bad[8] ^= 0x01;                                         /* the device's name */
        ck_assert_int_eq(mpqemu_remote_resume(c, bad, n), -EINVAL);
        ck_assert_int_eq(mpqemu_remote_resume(c, snap, n - 1), -EINVAL);
        free(bad);
        mpqemu_remote_free(c);      /* never resumed: nothing stopped */
    }

    cfg.adopt_fds = fds;
    ck_assert_int_eq(mpqemu_remote_new(b.base, &cfg, &ops, &b, &b.dev), 0);
    ck_assert_int_eq(mpqemu_remote_add_ram(b.dev, b.memfd, 0, RAM_SIZE, 0), 0);
    ck_assert(mpqemu_remote_adopted(b.dev));
    ck_assert_int_eq(mpqemu_remote_resume(b.dev, snap, n), 0);
    ck_assert_int_eq(mpqemu_remote_resume(b.dev, snap, n), -EBUSY);
    free(snap);
    ck_assert_int_eq(mpqemu_remote_state(b.dev), QEMU_REMOTE_RUNNING);
    pid_t pid = mpqemu_remote_pid(b.dev);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert(b.maps[0].mapped && b.maps[0].io && b.maps[0].addr == GUEST_IO_BAR);
    ck_assert(b.maps[1].mapped && !b.maps[1].io && b.maps[1].addr == GUEST_MMIO_BAR);
    ck_assert_uint_eq(cfg_rd(&b, 0x04, 2) & 7, 7);
    ck_assert_uint_eq(cfg_rd(&b, 0x3c, 1), 11);
    ck_assert_uint_eq(io_rd(&b, GUEST_IO_BAR + RTL_MAR0, 1), 0x77);  /* not reset */
    rtl_check_mac(&b);
    rtl_loopback(&b, 64, 5);

    /* Supervision came along: killed, it is restarted through the adopted launcher. */
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    guest_wait_state(&b, QEMU_REMOTE_DOWN);
    guest_wait_state(&b, QEMU_REMOTE_RUNNING);
    ck_assert_int_ne(mpqemu_remote_pid(b.dev), pid);
    rtl_check_mac(&b);
    rtl_loopback(&b, 64, 6);
    guest_fini(&b);
}
END_TEST

/* A restart that fails counts, and is retried up to the limit. */
START_TEST(test_restart_fails)
{
    struct guest g;
    char dir[] = "/tmp/ferry-qemu-wrap-XXXXXX", wrapper[256], counter[256], cmd[1024];
    struct ferry_qemu_remote_config cfg = {
        .id = "dev0", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 10000,
        .start_timeout_ms = 30000, .max_restarts = 2, .restart_delay_ms = 50,
    };
    const char *real = qemu_bin;
    FILE *f;

    /* A QEMU that starts once and then refuses to. */
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(wrapper, sizeof(wrapper), "%s/qemu", dir);
    snprintf(counter, sizeof(counter), "%s/count", dir);
    f = fopen(wrapper, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\nif [ -e '%s' ]; then echo 'wrapper: refusing to start' >&2; "
               "exit 1; fi\n: > '%s'\nexec '%s' \"$@\"\n", counter, counter, real);
    fclose(f);
    ck_assert_int_eq(chmod(wrapper, 0700), 0);
    qemu_bin = wrapper;
    guest_init(&g, "pci-testdev", &cfg);
    qemu_bin = real;
    ck_assert_int_eq(kill(mpqemu_remote_pid(g.dev), SIGKILL), 0);
    guest_wait_state(&g, QEMU_REMOTE_DOWN);
    guest_wait_state(&g, QEMU_REMOTE_FAILED);
    ck_assert(logged("restart 1/2 failed"));
    ck_assert(logged("restart 2/2 failed"));
    ck_assert(logged("wrapper: refusing to start"));
    ck_assert(logged("giving up after 2 restarts"));
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 4), 0xffffffff);
    guest_fini(&g);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A remote that hangs while idle is found by the liveness probe. */
START_TEST(test_heartbeat)
{
    struct guest g;
    struct ferry_qemu_remote_config cfg = {
        .id = "dev0", .irq_fd = -1, .resample_fd = -1, .reply_timeout_ms = 1000,
        .start_timeout_ms = 30000, .max_restarts = 1, .restart_delay_ms = 100,
        .heartbeat_ms = 100,
    };
    pid_t pid;

    guest_init(&g, "pci-testdev", &cfg);
    pid = mpqemu_remote_pid(g.dev);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    guest_wait_state(&g, QEMU_REMOTE_DOWN);
    ck_assert(logged("hung: no reply to pci_cfgread"));
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 2), 0xffff);
    guest_wait_state(&g, QEMU_REMOTE_RUNNING);
    ck_assert_int_ne(mpqemu_remote_pid(g.dev), pid);
    ck_assert_uint_eq(cfg_rd(&g, 0x00, 2), 0x1b36);
    guest_fini(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qemu-remote");
    static char path[4096];
    const char *env = getenv("FERRY_QEMU");

    if (env && *env) {
        qemu_bin = env;
    } else {
        FILE *f = popen("command -v qemu-system-x86_64", "r");

        if (f && fgets(path, sizeof(path), f))
            path[strcspn(path, "\n")] = '\0';
        if (f)
            pclose(f);
        qemu_bin = path[0] ? path : NULL;
    }
    if (!qemu_bin || access(qemu_bin, X_OK) != 0) {
        printf("SKIP: qemu-system-x86_64 not found (install qemu-system-x86)\n");
        return 77;
    }
    suite_add_tcase(s, FERRY_CHECK_TCASE("qemu", 300, test_messages, test_rtl8139_loopback,
                                         test_startup_settles, test_device_reset,
                                         test_e1000_enumerate, test_extra_args,
                                         test_pci_testdev_enumerate, test_xhci_64bit_bar,
                                         test_hostile, test_access_min, test_supervision,
                                         test_heartbeat, test_restart_fails, test_handover));
    return ferry_check_run(s, CK_FORK_GETENV);
}
