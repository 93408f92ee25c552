/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the QEMU remote engine (qemu-remote.h): the state both of its
 * halves share and the calls between them.
 *   qemu-remote-process.c  process supervision: QEMU spawned through the
 *                          sandbox launcher, its stderr, the link's round
 *                          trips, liveness, restart with RAM and irqfds
 *                          given again, reaping; the engine's lifecycle.
 *   qemu-remote-handover.c a replace of ferry-dm: the running QEMU handed
 *                          over, the engine resumed from a snapshot.
 *   qemu-remote-pci.c      the PCI function proxy: learning the function,
 *                          virtual BARs and their placement, config read and
 *                          write filtering, the capability view, config
 *                          replay after reset or restart, BAR forwarding.
 */
#ifndef FERRY_QEMU_REMOTE_INTERNAL_H
#define FERRY_QEMU_REMOTE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ferry-log.h"
#include "mpqemu/mpqemu.h"
#include "mpqemu/qemu-remote.h"

struct event;
struct event_base;
struct ferry_launcher;

#define QR_ID_MAX           64
#define QR_ERRLINE_MAX      512

struct mpqemu_remote_bar {
    bool present, io, is64, hi;     /* hi: upper half of the previous 64-bit BAR */
    uint64_t size;
    uint32_t flags;                 /* low type bits of the BAR */
    uint64_t guest;                 /* guest-programmed address bits */
    uint64_t remote;
    bool mapped;
    uint64_t mapped_addr;
};

struct mpqemu_remote_ram {
    int fd;
    uint64_t gpa, size, offset;
};

struct ferry_qemu_remote {
    struct event_base *base;
    const struct ferry_qemu_remote_ops *ops;
    void *opaque;
    char qemu[4096];
    char device[QEMU_REMOTE_DEVICE_MAX];
    char id[QR_ID_MAX];
    char *extra[QEMU_REMOTE_EXTRA_ARGS_MAX + 1];
    unsigned reply_timeout_ms, start_timeout_ms, heartbeat_ms;
    unsigned max_restarts, restart_delay_ms, access_min;
    bool sandbox;
    bool monitor;                   /* a QMP monitor on the launcher's second socket */
    /*
     * Every QEMU, the first and each restart, comes from this pre-forked
     * helper (sandbox/launcher.h): a confined ferry-dm never forks or
     * execs, and the command line is fixed when the engine is made.
     */
    struct ferry_launcher *launcher;

    enum mpqemu_remote_state state;
    bool identified;
    bool stopping;                  /* mpqemu_remote_free: its end is expected */
    pid_t pid;
    int sock, errfd;
    int monitor_fd;                 /* this instance's QMP channel until taken, or -1 */
    struct event *ev_err, *ev_sock, *ev_restart, *ev_heartbeat;
    char errbuf[QR_ERRLINE_MAX];
    size_t errlen;
    char lasterr[QR_ERRLINE_MAX];

    struct mpqemu_remote_ram ram[QEMU_REMOTE_RAM_MAX];
    unsigned nram;
    int irq_fd, resample_fd;
    bool own_irq_fds;
    bool adopted;                   /* took a running QEMU over from a predecessor */

    uint32_t ids;                   /* device << 16 | vendor */
    unsigned cfg_size;
    struct mpqemu_remote_capview view;
    struct mpqemu_remote_bar bars[QEMU_REMOTE_BARS];
    uint16_t command;               /* as the guest wrote it */
    uint8_t wval[4096];
    uint8_t wset[4096];             /* 1: guest wrote this byte (replayed on restart) */

    struct ferry_ratelimit rl;          /* refused guest accesses */
    struct ferry_ratelimit err_rl;      /* the remote's stderr */
    struct mpqemu_remote_stats st;
};

#define qlog(r, lvl, fmt, ...) \
    ferry_logf((r)->ops ? (r)->ops->log : NULL, (r)->opaque, (lvl), \
               "qemu-remote[%s] %s: " fmt, (r)->id, mpqemu_remote_level_name(lvl), ##__VA_ARGS__)

static inline const char *mpqemu_remote_level_name(enum ferry_log_level l)
{
    switch (l) {
    case FERRY_LOG_ERROR: return "error";
    case FERRY_LOG_WARNING: return "warning";
    case FERRY_LOG_INFO: return "info";
    default: return "debug";
    }
}

static inline bool mpqemu_remote_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* qemu-remote-process.c: the link to the running QEMU. */

/*
 * One message to the remote and, if want_ret, its RET (empty after
 * DEVICE_RESET when empty_ret) within timeout_ms.  Does not change state.
 */
int mpqemu_remote_call(struct ferry_qemu_remote *r, struct mpqemu_msg *m, bool want_ret, bool empty_ret,
            uint64_t *ret, unsigned timeout_ms);
/* A round trip while running; any failure takes the device down. */
int mpqemu_remote_rpc(struct ferry_qemu_remote *r, struct mpqemu_msg *m, uint64_t *ret);
/* The running remote died or hung: reap it, then restart or give up. */
void mpqemu_remote_down(struct ferry_qemu_remote *r, const char *why);
/* Watch the link, stderr (made non-blocking) and liveness of a running remote. */
int mpqemu_remote_watch(struct ferry_qemu_remote *r);
void mpqemu_remote_drain_stderr(struct ferry_qemu_remote *r);


/* qemu-remote-pci.c: the function, at bring-up (first start and each restart). */

/* Read the function's header and BARs; on a restart check that it is the same one. */
int mpqemu_remote_learn_function(struct ferry_qemu_remote *r, unsigned timeout_ms);
/* After reset or restart: the remote's BARs, the guest's config writes, command last. */
int mpqemu_remote_replay_config(struct ferry_qemu_remote *r, unsigned timeout_ms);

#endif /* FERRY_QEMU_REMOTE_INTERNAL_H */
