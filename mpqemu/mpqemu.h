/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Codec for QEMU's multi-process protocol ("mpqemu", QEMU 7.2,
 * include/hw/remote/mpqemu-link.h and hw/remote/mpqemu-link.c), the link
 * between a proxy (here: Ferry) and a QEMU started with -machine x-remote.
 *
 * Wire format, x86-64, little endian, over a unix stream socket:
 *   header  { int32 cmd; uint32 pad; uint64 size; }       16 bytes
 *   payload size bytes, file descriptors by SCM_RIGHTS with the header.
 *
 *   cmd  name          payload                                  fds  reply
 *   0    SYNC_SYSMEM   8 gpas, 8 sizes, 8 offsets (192 bytes)   1..7 none
 *   1    RET           u64 (8 bytes), or empty after DEVICE_RESET  0  -
 *   2    PCI_CFGWRITE  { u32 addr; u32 val; i32 len; } (12)     0    RET 8
 *   3    PCI_CFGREAD   same (12)                                0    RET 8
 *   4    BAR_WRITE     { u64 addr; u64 val; u32 size; u8 memory; pad[3] } (24)
 *                                                               0    RET 8
 *   5    BAR_READ      same (24)                                0    RET 8
 *   6    SET_IRQFD     empty                                    2    none
 *   7    DEVICE_RESET  empty                                    0    RET 0
 *
 * The remote accepts at most REMOTE_MAX_FDS - 1 = 7 fds per message and
 * ends itself on any message it does not accept, so every message is
 * checked here, in both directions, by one validator per command.
 */
#ifndef FERRY_MPQEMU_H
#define FERRY_MPQEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ferry-log.h"

#define MPQEMU_HDR_SIZE             16
#define MPQEMU_PAYLOAD_MAX          192     /* the largest payload (SYNC_SYSMEM) */
#define MPQEMU_MSG_MAX              (MPQEMU_HDR_SIZE + MPQEMU_PAYLOAD_MAX)
#define MPQEMU_FDS_MAX              7       /* QEMU refuses num_fds >= 8 */
#define MPQEMU_SYSMEM_SLOTS         8       /* array length in SYNC_SYSMEM */
#define MPQEMU_SYSMEM_REGIONS_MAX   MPQEMU_FDS_MAX

#define MPQEMU_SYSMEM_SIZE          192
#define MPQEMU_PCI_CONF_SIZE        12
#define MPQEMU_BAR_ACCESS_SIZE      24
#define MPQEMU_RET_SIZE             8

enum mpqemu_cmd {
    MPQEMU_CMD_SYNC_SYSMEM = 0,
    MPQEMU_CMD_RET = 1,
    MPQEMU_CMD_PCI_CFGWRITE = 2,
    MPQEMU_CMD_PCI_CFGREAD = 3,
    MPQEMU_CMD_BAR_WRITE = 4,
    MPQEMU_CMD_BAR_READ = 5,
    MPQEMU_CMD_SET_IRQFD = 6,
    MPQEMU_CMD_DEVICE_RESET = 7,
    MPQEMU_CMD_NR
};

struct mpqemu_pci_conf {
    uint32_t addr;
    uint32_t val;
    int32_t len;            /* 1, 2 or 4: QEMU asserts on anything else */
};

struct mpqemu_bar_access {
    uint64_t addr;          /* address in the remote's memory or I/O space */
    uint64_t val;
    uint32_t size;          /* 1, 2, 4 or 8 */
    bool memory;            /* true: memory space, false: I/O space */
};

struct mpqemu_sysmem {
    uint64_t gpas[MPQEMU_SYSMEM_SLOTS];
    uint64_t sizes[MPQEMU_SYSMEM_SLOTS];
    uint64_t offsets[MPQEMU_SYSMEM_SLOTS];   /* off_t on the wire */
};

/* A decoded message.  fds are owned by whoever holds the message. */
struct mpqemu_msg {
    enum mpqemu_cmd cmd;
    uint32_t size;          /* payload bytes on the wire */
    union {
        uint64_t u64;
        struct mpqemu_pci_conf conf;
        struct mpqemu_bar_access bar;
        struct mpqemu_sysmem sysmem;
    } u;
    int fds[MPQEMU_FDS_MAX];
    unsigned nfds;
};

const char *mpqemu_cmd_name(uint32_t cmd);

/*
 * The one validator: is (cmd, payload size, fd count) a message QEMU 7.2
 * accepts?  RET may carry 8 bytes or nothing (the reply to DEVICE_RESET).
 * Returns 0 or -EINVAL (unknown command), -EMSGSIZE (wrong size),
 * -EBADMSG (wrong fd count).
 */
int mpqemu_msg_check(uint32_t cmd, uint64_t size, unsigned nfds);

/* Constructors: fill *m completely (fds are not duplicated). */
void mpqemu_msg_cfgread(struct mpqemu_msg *m, uint32_t addr, int len);
void mpqemu_msg_cfgwrite(struct mpqemu_msg *m, uint32_t addr, uint32_t val, int len);
void mpqemu_msg_bar_read(struct mpqemu_msg *m, bool memory, uint64_t addr, uint32_t size);
void mpqemu_msg_bar_write(struct mpqemu_msg *m, bool memory, uint64_t addr,
                          uint64_t val, uint32_t size);
void mpqemu_msg_set_irqfd(struct mpqemu_msg *m, int irqfd, int resamplefd);
void mpqemu_msg_device_reset(struct mpqemu_msg *m);
void mpqemu_msg_ret(struct mpqemu_msg *m, uint64_t val);
/* regions: up to MPQEMU_SYSMEM_REGIONS_MAX (fd, gpa, size, offset) tuples. */
FERRY_MUST_CHECK int mpqemu_msg_sysmem(struct mpqemu_msg *m, unsigned n, const int *fds,
                                       const uint64_t *gpas, const uint64_t *sizes,
                                       const uint64_t *offsets);

/*
 * Wire encoding of header and payload (fds travel beside it).  encode
 * checks m with mpqemu_msg_check first; returns bytes written or -errno.
 * decode takes exactly one message's bytes (header + payload, len bytes)
 * and the number of fds that arrived with it, checks them, and fills *m
 * (m->fds is left for the caller).  Returns 0 or -errno.
 */
FERRY_MUST_CHECK long mpqemu_msg_encode(const struct mpqemu_msg *m, uint8_t *buf, size_t len);
FERRY_MUST_CHECK int mpqemu_msg_decode(const uint8_t *buf, size_t len, unsigned nfds,
                                       struct mpqemu_msg *m);
/* Just the header: command and payload size, unchecked. */
FERRY_MUST_CHECK int mpqemu_hdr_decode(const uint8_t *buf, size_t len, uint32_t *cmd,
                                       uint64_t *size);

/*
 * Socket I/O on a unix stream socket (blocking or not).  send writes the
 * whole message with its fds (MSG_NOSIGNAL).  recv waits up to timeout_ms
 * in total (-1: forever) for one whole message, checks it, and takes its
 * fds into m->fds; on any error the fds that arrived are closed.  Returns
 * 0, -ETIMEDOUT, -ECONNRESET on end of stream, or another -errno.
 */
FERRY_MUST_CHECK int mpqemu_msg_send(int sock, const struct mpqemu_msg *m);
FERRY_MUST_CHECK int mpqemu_msg_recv(int sock, struct mpqemu_msg *m, int timeout_ms);

#endif /* FERRY_MPQEMU_H */
