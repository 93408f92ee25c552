// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QEMU remote engine, across a replace of ferry-dm (qemu-remote.h,
 * docs/qemu-devices.md): the running QEMU, its link, stderr, INTx fds and
 * launcher handed to the successor, and the engine's state with them.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/launcher.h"
#include "mpqemu/qemu-remote-internal.h"

#define QR_SNAPSHOT_MAGIC   0x51525348u     /* "HSRQ" */

/* What the successor's engine cannot learn without a guest-visible access. */
struct qr_snapshot {
    uint32_t magic, size;
    char device[QEMU_REMOTE_DEVICE_MAX];
    char id[QR_ID_MAX];
    int32_t pid;
    uint32_t ids, cfg_size;
    uint32_t restarts;
    uint16_t command;
    struct mpqemu_remote_capview view;
    struct mpqemu_remote_bar bars[QEMU_REMOTE_BARS];
    uint8_t wval[4096];
    uint8_t wset[4096];
    struct mpqemu_remote_stats st;
    uint32_t nram;
    uint64_t ram_gpa[QEMU_REMOTE_RAM_MAX], ram_size[QEMU_REMOTE_RAM_MAX];
};

int mpqemu_remote_handover_begin(struct ferry_qemu_remote *r, int fds[QEMU_REMOTE_HANDOVER_FDS])
{
    int rc;

    if (r->state != QEMU_REMOTE_RUNNING || r->sock < 0 || r->errfd < 0 || !r->launcher)
        return -EBUSY;
    /* Whatever QEMU said so far is in our log, not the successor's. */
    mpqemu_remote_drain_stderr(r);
    rc = sandbox_launcher_keep(r->launcher, true);
    if (rc < 0) {
        qlog(r, FERRY_LOG_WARNING, "the launcher cannot outlive this ferry-dm: %s",
             strerror(-rc));
        return rc;
    }
    fds[0] = sandbox_launcher_fd(r->launcher);
    fds[1] = r->sock;
    fds[2] = r->errfd;
    fds[3] = r->irq_fd;
    fds[4] = r->resample_fd;
    qlog(r, FERRY_LOG_INFO, "handing qemu pid=%d over to a successor", (int)r->pid);
    return QEMU_REMOTE_HANDOVER_FDS;
}

void mpqemu_remote_handover_abort(struct ferry_qemu_remote *r)
{
    if (r->launcher && sandbox_launcher_keep(r->launcher, false) < 0)
        qlog(r, FERRY_LOG_WARNING, "the launcher may outlive this ferry-dm");
}

size_t mpqemu_remote_snapshot_size(void)
{
    return sizeof(struct qr_snapshot);
}

void mpqemu_remote_snapshot(const struct ferry_qemu_remote *r, void *buf)
{
    struct qr_snapshot *s = buf;

    memset(s, 0, sizeof(*s));
    s->magic = QR_SNAPSHOT_MAGIC;
    s->size = sizeof(*s);
    memcpy(s->device, r->device, sizeof(s->device));
    memcpy(s->id, r->id, sizeof(s->id));
    s->pid = (int32_t)r->pid;
    s->ids = r->ids;
    s->cfg_size = r->cfg_size;
    s->command = r->command;
    s->view = r->view;
    memcpy(s->bars, r->bars, sizeof(s->bars));
    memcpy(s->wval, r->wval, sizeof(s->wval));
    memcpy(s->wset, r->wset, sizeof(s->wset));
    s->st = r->st;
    s->nram = r->nram;
    for (unsigned i = 0; i < r->nram; i++) {
        s->ram_gpa[i] = r->ram[i].gpa;
        s->ram_size[i] = r->ram[i].size;
    }
}

bool mpqemu_remote_adopted(const struct ferry_qemu_remote *r)
{
    return r->adopted;
}

int mpqemu_remote_resume(struct ferry_qemu_remote *r, const void *buf, size_t len)
{
    struct qr_snapshot s;

    if (!r->adopted || r->state != QEMU_REMOTE_STOPPED)
        return -EBUSY;
    if (len != sizeof(s))
        return -EINVAL;
    memcpy(&s, buf, sizeof(s));
    s.device[sizeof(s.device) - 1] = '\0';
    s.id[sizeof(s.id) - 1] = '\0';
    if (s.magic != QR_SNAPSHOT_MAGIC || s.size != sizeof(s) || s.pid <= 0 ||
        strcmp(s.device, r->device) || strcmp(s.id, r->id) || s.cfg_size > 4096 ||
        s.nram > QEMU_REMOTE_RAM_MAX) {
        qlog(r, FERRY_LOG_ERROR, "the predecessor's state is not of this device (%s %s)",
             s.device, s.id);
        return -EINVAL;
    }
    /* The remote mapped the guest's RAM once: ours must be the same regions. */
    if (s.nram != r->nram) {
        qlog(r, FERRY_LOG_ERROR, "guest RAM: %u regions here, the remote has %u", r->nram,
             s.nram);
        return -EINVAL;
    }
    for (unsigned i = 0; i < s.nram; i++)
        if (s.ram_gpa[i] != r->ram[i].gpa || s.ram_size[i] != r->ram[i].size) {
            qlog(r, FERRY_LOG_ERROR, "guest RAM region %u differs from the remote's", i);
            return -EINVAL;
        }
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++)
        if (s.bars[i].present && (s.bars[i].size == 0 || s.bars[i].size & (s.bars[i].size - 1)))
            return -EINVAL;
    r->pid = (pid_t)s.pid;
    r->ids = s.ids;
    r->cfg_size = s.cfg_size;
    r->command = s.command;
    r->view = s.view;
    memcpy(r->bars, s.bars, sizeof(r->bars));
    memcpy(r->wval, s.wval, sizeof(r->wval));
    memcpy(r->wset, s.wset, sizeof(r->wset));
    r->st = s.st;
    r->identified = true;
    int rc = mpqemu_remote_watch(r);
    if (rc < 0)
        return rc;
    /* The guest's BARs decode where they did: the caller's regions (claims repeat). */
    for (unsigned i = 0; i < QEMU_REMOTE_BARS; i++) {
        struct mpqemu_remote_bar *b = &r->bars[i];

        if (b->present && b->mapped && r->ops && r->ops->bar_map)
            r->ops->bar_map(r->opaque, i, b->io, b->mapped_addr, b->size, true);
    }
    r->state = QEMU_REMOTE_RUNNING;
    qlog(r, FERRY_LOG_INFO, "took over qemu pid=%d ids=%04x:%04x (no reset)", (int)r->pid,
         r->ids & 0xffff, r->ids >> 16);
    return 0;
}
