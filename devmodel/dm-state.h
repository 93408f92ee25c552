/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The handover stream: what a running ferry-dm hands its successor when it
 * is replaced (docs/ferry-dm.md, "Replacing ferry-dm").  Little-endian:
 *
 *   header    magic u32 "FDMS", version u16, header size u16 (24),
 *             flags u32 (0), section count u32, payload length u64
 *   sections  type u16, flags u16, length u32, then length bytes;
 *             flags bit 0 (DM_STATE_SEC_OPTIONAL): a reader that does not
 *             know the type may skip it, otherwise it must refuse
 *   trailer   CRC-32 (IEEE) u32 of header and payload
 *
 * Sections of version 1:
 *   GUEST    the guest's name (no NUL): a state is only for the guest it came from
 *   DEVICES  dm_save()'s records (u8 idlen, id, u32 length, bytes)
 *   FDS      the roles of the fds passed along the stream, one u32 each
 *            (enum dm_state_fd_role), in the order of the SCM_RIGHTS array
 *   SOURCE   optional: the writer's version string, for the log
 *   IRQS     the MSI messages that have an irqfd of their own (their
 *            eventfds are passed as DM_STATE_FD_MSI): next cookie u32,
 *            count u32, then per message slot u32, cookie u32, address
 *            u64, data u32 (dm-handover.c); absent: none
 *   COMPANION companion mode (--qmp): the QMP connection and the USB
 *            service with its usbredir channels (dm-replace.h, companion/dm-usb.h)
 *
 * A reader checks everything (magic, version, sizes, checksum, every
 * section's bounds, that each saved device exists here and that every
 * device here with state has a record) before it touches any device, so a
 * refused state leaves the reader's devices as they were.
 */
#ifndef FERRY_DM_STATE_H
#define FERRY_DM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "devmodel/dm.h"

#define DM_STATE_MAGIC          0x534d4446u     /* "FDMS" little-endian */
#define DM_STATE_VERSION        2       /* 2: the exchange in two steps (FDS, FREEZE) */
#define DM_STATE_HEADER_SIZE    24
#define DM_STATE_MAX            (16u << 20)     /* a whole stream, trailer included */
#define DM_STATE_SECTIONS_MAX   64
/* fds a handover passes (each a role in the FDS section); the replace sends
 * them in several SCM_RIGHTS messages (dm-replace.c) */
#define DM_STATE_FDS_MAX        1024

enum dm_state_section {
    DM_STATE_SEC_GUEST = 1,
    DM_STATE_SEC_DEVICES = 2,
    DM_STATE_SEC_FDS = 3,
    DM_STATE_SEC_SOURCE = 4,
    DM_STATE_SEC_IRQS = 5,          /* MSI routes handed over (dm-handover.h) */
    DM_STATE_SEC_COMPANION = 6,     /* companion mode's QMP and USB (dm-replace.h) */
};

#define DM_STATE_SEC_OPTIONAL   (1u << 0)

/* What each passed fd is; a successor refuses a role it does not know. */
enum dm_state_fd_role {
    DM_STATE_FD_IOREQ_SOCK = 1,     /* the registration socket to ferry-hv */
    DM_STATE_FD_IOREQ_MAP = 2,      /* the shared ioreq pages (memfd) */
    DM_STATE_FD_IOREQ_BUF = 3,      /* the buffered ring's doorbell */
    DM_STATE_FD_IOREQ_REQ = 4,      /* a vCPU's request doorbell (in vCPU order) */
    DM_STATE_FD_IOREQ_RESP = 5,     /* a vCPU's reply doorbell (in vCPU order) */
    DM_STATE_FD_CONTROL = 6,        /* the listening control socket */
    DM_STATE_FD_RAM = 7,            /* guest RAM (memfd) */
    DM_STATE_FD_CHARDEV = 8,        /* a chardev's fd: role | tag << 8 (dm_chardev_export) */
    DM_STATE_FD_LOG = 9,            /* the predecessor's stderr: the successor logs there */
    DM_STATE_FD_DEVICE = 10,        /* a device's own: tag (CRC-32 of its id) << 4 | slot */
    DM_STATE_FD_IRQFD = 11,         /* a GSI's irqfd (registered): tag the GSI */
    DM_STATE_FD_RESAMPLE = 12,      /* a level GSI's resample eventfd: tag the GSI */
    DM_STATE_FD_MSI = 13,           /* an MSI message's routed eventfd: tag its slot */
    DM_STATE_FD_QMP = 14,           /* companion mode: the QMP connection to QEMU */
    DM_STATE_FD_COMPANION = 15,     /* companion mode: a USB channel's socket or usbfs fd, or
                                       an ownership claim's lock: tag its index, in the
                                       companion section's order */
    DM_STATE_FD_ROLE_MAX
};
#define DM_STATE_FD_KIND(role)  ((role) & 0xff)
#define DM_STATE_FD_TAG(role)   ((role) >> 8)

struct dm_state_view {
    char guest[FERRY_DM_ID_MAX * 4];
    const uint8_t *devices;         /* into the checked buffer */
    size_t devices_len;
    uint32_t fd_roles[DM_STATE_FDS_MAX];
    unsigned nr_fds;
    char source[64];                /* "" when absent */
    const uint8_t *irqs;            /* the IRQS section, NULL when absent */
    size_t irqs_len;
    const uint8_t *companion;       /* the COMPANION section, NULL when absent */
    size_t companion_len;
};

/* One stream for dm's devices, with the given fd roles; 0 or -errno. */
FERRY_MUST_CHECK int dm_state_save(struct ferry_dm *dm, const char *guest,
                                   const uint32_t *fd_roles, unsigned nr_fds, GByteArray *out);
/* The same with a COMPANION section (companion mode), when companion is not NULL. */
FERRY_MUST_CHECK int dm_state_save_full(struct ferry_dm *dm, const char *guest,
                                        const uint32_t *fd_roles, unsigned nr_fds,
                                        const GByteArray *companion, GByteArray *out);
/*
 * Checks the stream's structure (not the devices): 0 and *v filled in, or
 * -EBADMSG (corrupt, truncated), -EPROTONOSUPPORT (another version),
 * -EINVAL (a value out of range) with a sentence in why.
 */
FERRY_MUST_CHECK int dm_state_parse(const uint8_t *buf, size_t len, struct dm_state_view *v,
                                    char *why, size_t why_len);
/*
 * dm_state_parse, then the guest's name and the device list against dm,
 * then dm_restore.  Same errors, plus -ENOENT/-ESRCH for a device mismatch
 * and what a device's restore returns.
 */
FERRY_MUST_CHECK int dm_state_load(struct ferry_dm *dm, const char *guest, const uint8_t *buf,
                                   size_t len, struct dm_state_view *v, char *why,
                                   size_t why_len);

uint32_t dm_state_crc32(const uint8_t *buf, size_t len);

#endif
