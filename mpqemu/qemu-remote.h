/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU remote device: one PCI function emulated by a stock QEMU started
 * with -machine x-remote, driven over QEMU's multi-process protocol
 * (mpqemu/mpqemu.h), bound to a libevent event_base.
 *
 * The engine presents the function's configuration space to the guest and
 * takes the guest's BAR accesses:
 *   - BARs are virtual: the guest programs and sizes them here; the remote
 *     QEMU's BARs sit at addresses the engine chooses (outside guest RAM),
 *     and guest BAR accesses are translated.  Only naturally aligned
 *     accesses of 1, 2 or 4 bytes (8 is split) that lie wholly inside a BAR
 *     the guest enabled are forwarded; everything else reads all ones and
 *     is dropped, so no guest access can end the remote.
 *   - MSI and MSI-X capabilities are hidden (QEMU 7.2 carries only INTx);
 *     the expansion ROM BAR reads 0.
 *   - INTx arrives on an irqfd with a resample eventfd (level semantics):
 *     whoever acknowledges the interrupt writes the resample fd.
 *   - Supervision: exit, end of stream and replies that do not come within
 *     reply_timeout_ms (and, if heartbeat_ms, idle liveness probes) mark the
 *     device down: reads give all ones, writes are dropped, and after
 *     restart_delay_ms a new QEMU is started, reset, and given back guest
 *     RAM, the irqfds, its BARs and the config writes the guest made, up to
 *     max_restarts times.  Each step is logged.
 * Starting QEMU and the handshake block the caller (bounded by
 * start_timeout_ms); every access blocks for one round trip.
 * Single-threaded: call everything from the event_base's thread.
 */
#ifndef FERRY_QEMU_REMOTE_H
#define FERRY_QEMU_REMOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ferry-log.h"

struct ferry_sandbox_config;

struct event_base;
struct ferry_qemu_remote;

#define QEMU_REMOTE_BARS            6
#define QEMU_REMOTE_RAM_MAX         7       /* regions in one SYNC_SYSMEM */
#define QEMU_REMOTE_DEVICE_MAX      1024    /* length of the -device string */
#define QEMU_REMOTE_EXTRA_ARGS_MAX  32      /* backend options (-netdev, -blockdev ...) */

enum mpqemu_remote_state {
    QEMU_REMOTE_STOPPED = 0,    /* not started yet */
    QEMU_REMOTE_RUNNING,
    QEMU_REMOTE_DOWN,           /* died or hung; restart pending */
    QEMU_REMOTE_FAILED,         /* restart limit reached */
};

struct ferry_qemu_remote_config {
    const char *qemu;           /* program path or name in PATH; NULL: qemu-system-x86_64 */
    const char *device;         /* a -device value without id=, e.g. "rtl8139" */
    const char *id;             /* device id and log instance; NULL: "qdev0" */
    /*
     * NULL-terminated extra QEMU arguments for the device's backends, e.g.
     * { "-netdev", "user,id=n0", NULL } with device "e1000,netdev=n0"; copied.
     */
    const char *const *extra_args;
    unsigned reply_timeout_ms;  /* a reply later than this means hung; 0: 2000 */
    unsigned start_timeout_ms;  /* spawn to ready; 0: 10000 */
    unsigned heartbeat_ms;      /* idle liveness probe period; 0: none */
    unsigned max_restarts;      /* 0: never restart */
    unsigned restart_delay_ms;  /* 0: 100 */
    unsigned bar_access_min;    /* smallest access forwarded: 1 (0 means 1), 2 or 4 */
    bool no_sandbox;            /* leave out QEMU's seccomp filter (-sandbox on,...) */
    /*
     * A QMP monitor for each QEMU on a socket pair the launcher makes with
     * it (its second socket): mpqemu_remote_take_monitor() hands over
     * ferry-dm's end, once per (re)start.  Nothing in the file system, and
     * a confined ferry-dm needs no socket() or connect() for it.
     */
    bool monitor;
    /*
     * The launcher's own confinement (user, no capabilities, no_new_privs;
     * see launcher.h), or NULL.  QEMU is always started by a launcher the
     * engine forks in mpqemu_remote_new, so call that before confining.
     */
    const struct ferry_sandbox_config *launcher_sandbox;
    int irq_fd;                 /* INTx eventfd, or -1: the engine makes one */
    int resample_fd;            /* resample eventfd, or -1: the engine makes one */
    /*
     * A successor of a replaced ferry-dm: NULL, or the QEMU_REMOTE_HANDOVER_FDS
     * fds of mpqemu_remote_handover_begin (now the engine's, also on
     * failure); the engine adopts the running QEMU instead of forking a
     * launcher, and mpqemu_remote_resume (not _start) brings it up.
     * irq_fd and resample_fd are ignored then.
     */
    const int *adopt_fds;
};

struct ferry_qemu_remote_ops {
    ferry_log_fn log;
    /* BAR bar now decodes [addr, addr + size) (mapped) or no longer does. */
    void (*bar_map)(void *opaque, unsigned bar, bool io, uint64_t addr, uint64_t size,
                    bool mapped);
    /* The state changed (optional). */
    void (*state_changed)(void *opaque, enum mpqemu_remote_state state);
};

struct mpqemu_remote_stats {
    uint64_t cfg_reads, cfg_writes, bar_reads, bar_writes;  /* forwarded */
    uint64_t refused;           /* guest accesses not forwarded (bad size/place) */
    uint64_t while_down;        /* accesses answered with all ones while down */
    unsigned restarts;
};

struct mpqemu_remote_bar_info {
    bool present, io, is64, mapped;
    uint64_t size;
    uint64_t guest_addr;        /* as the guest programmed it */
    uint64_t remote_addr;       /* where the remote QEMU has it */
};

FERRY_MUST_CHECK int mpqemu_remote_new(struct event_base *base,
                                     const struct ferry_qemu_remote_config *cfg,
                                     const struct ferry_qemu_remote_ops *ops, void *opaque,
                                     struct ferry_qemu_remote **out);
/* Guest RAM at gpa, size bytes of memfd from offset (fd is duplicated). Before start. */
FERRY_MUST_CHECK int mpqemu_remote_add_ram(struct ferry_qemu_remote *r, int memfd, uint64_t gpa,
                                         uint64_t size, uint64_t offset);
/* Spawn QEMU and hand it RAM, irqfds, reset; learn the function. Blocks. */
FERRY_MUST_CHECK int mpqemu_remote_start(struct ferry_qemu_remote *r);
/* Stops QEMU (no restart) and frees everything. */
void mpqemu_remote_free(struct ferry_qemu_remote *r);

/* Guest config cycles: off < 4096, len 1, 2 or 4, naturally aligned. */
uint32_t mpqemu_remote_config_read(struct ferry_qemu_remote *r, unsigned off, unsigned len);
void mpqemu_remote_config_write(struct ferry_qemu_remote *r, unsigned off, unsigned len,
                              uint32_t val);
/*
 * Guest BAR accesses by guest address.  Return 0 when forwarded, -ENXIO
 * when refused (outside an enabled BAR, bad size or alignment) and
 * -ENODEV while the device is down; then reads give all ones.
 */
int mpqemu_remote_bar_read(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                         uint64_t *val);
int mpqemu_remote_bar_write(struct ferry_qemu_remote *r, bool io, uint64_t addr, unsigned size,
                          uint64_t val);
/* Function-level reset (DEVICE_RESET), then BARs and command replayed. */
FERRY_MUST_CHECK int mpqemu_remote_reset(struct ferry_qemu_remote *r);

/*
 * With cfg->monitor: the connected QMP socket of the QEMU started last (call
 * it after mpqemu_remote_start, and from state_changed(RUNNING) after a
 * restart); the caller owns it.  -1 when none or already taken.  One not
 * taken is closed when that QEMU ends.
 */
int mpqemu_remote_take_monitor(struct ferry_qemu_remote *r);
pid_t mpqemu_remote_pid(const struct ferry_qemu_remote *r);      /* 0 if none */
enum mpqemu_remote_state mpqemu_remote_state(const struct ferry_qemu_remote *r);
const char *mpqemu_remote_state_name(enum mpqemu_remote_state state);
int mpqemu_remote_irq_fd(const struct ferry_qemu_remote *r);
int mpqemu_remote_resample_fd(const struct ferry_qemu_remote *r);
void mpqemu_remote_get_stats(const struct ferry_qemu_remote *r, struct mpqemu_remote_stats *st);
FERRY_MUST_CHECK int mpqemu_remote_bar_info(const struct ferry_qemu_remote *r, unsigned bar,
                                          struct mpqemu_remote_bar_info *info);

/*
 * Replacing ferry-dm under a running guest (docs/ferry-dm.md): the QEMU
 * process, its link, stderr pipe, INTx eventfd and resample eventfd, and
 * its launcher (which reaps and restarts it) pass to the successor, which
 * resumes the engine from a snapshot without a reset, a re-sync or any
 * access the guest could see.
 */
#define QEMU_REMOTE_HANDOVER_FDS    5   /* launcher, link, stderr, irq, resample */
/*
 * The fds to pass (still ours), in the order adopt_fds takes them; the
 * launcher is told to outlive us.  -EBUSY unless running (a QEMU being
 * restarted is not handed over).
 */
FERRY_MUST_CHECK int mpqemu_remote_handover_begin(struct ferry_qemu_remote *r,
                                                int fds[QEMU_REMOTE_HANDOVER_FDS]);
/* The replace failed: we keep them; the launcher dies with us again. */
void mpqemu_remote_handover_abort(struct ferry_qemu_remote *r);
/* The engine's state for the successor: at most mpqemu_remote_snapshot_size() bytes. */
size_t mpqemu_remote_snapshot_size(void);
void mpqemu_remote_snapshot(const struct ferry_qemu_remote *r, void *buf);
/*
 * An adopted engine (adopt_fds): take the snapshot (checked: size, magic,
 * the same device), announce the BARs the guest had mapped (bar_map) and
 * serve; RUNNING after.  -EINVAL for a bad snapshot, -EBUSY when not adopted
 * or already resumed.
 */
FERRY_MUST_CHECK int mpqemu_remote_resume(struct ferry_qemu_remote *r, const void *buf,
                                        size_t len);
bool mpqemu_remote_adopted(const struct ferry_qemu_remote *r);

/*
 * The guest's view of a capability list with MSI (05h) and MSI-X (11h)
 * removed, built from the first 256 bytes of config space.  A byte reads
 * as value[i] if >= 0, else as (device byte & mask[i]); writes to bytes
 * with drop[i] set are not forwarded.  Pure, exported for tests.
 */
struct mpqemu_remote_capview {
    uint8_t mask[256];
    int16_t value[256];
    bool drop[256];
    unsigned hidden;            /* capabilities removed */
    bool express;               /* a PCI Express capability: 4 KiB config space */
};
void mpqemu_remote_capview_build(const uint8_t cfg[256], struct mpqemu_remote_capview *v);

#endif /* FERRY_QEMU_REMOTE_H */
