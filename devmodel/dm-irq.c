// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The framework's interrupt lines: GSIs shared by the dm_irqs on
 * them, delivered through an irqfd (with a resample fd for level lines)
 * or the backend's irq_line.
 */
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>


/* ------------------------------------------------------------------ */
/* Interrupts                                                          */

void dm_gsi_free(gpointer p)
{
    struct dm_gsi *g = p;
    struct ferry_dm *dm = g->dm;

    if (g->irqfd && dm->ops && dm->ops->irqfd)
        dm->ops->irqfd(dm->opaque, g->gsi, g->efd, g->resample_fd, false);
    if (g->line_high && dm->ops && dm->ops->irq_line)
        dm->ops->irq_line(dm->opaque, g->gsi, false);
    if (g->resample_ev)
        event_free(g->resample_ev);
    if (g->efd >= 0)
        close(g->efd);
    if (g->resample_fd >= 0)
        close(g->resample_fd);
    free(g);
}

static void kick(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void gsi_resample_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dm_gsi *g = arg;
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0)
        return;
    /* The guest acknowledged the interrupt: still asserted means again. */
    if (g->asserted) {
        g->count++;
        kick(g->efd);
    }
}

/* Try to deliver through an irqfd; on failure the line uses irq_line. */
static void gsi_connect(struct dm_gsi *g)
{
    struct ferry_dm *dm = g->dm;
    bool level = g->kind == FERRY_DM_IRQ_LEVEL;
    int rc;

    if (g->irqfd || dm->status != FERRY_DM_RUNNING || !dm->ops || !dm->ops->irqfd)
        return;
    int efd, rfd;
    if (g->efd < 0 && g->resample_fd < 0 && dm_gsi_inherited(g->gsi, &efd, &rfd)) {
        /* A replace: the predecessor's irqfd stays registered; it is ours now. */
        g->efd = efd;
        g->resample_fd = rfd;
        if (!level || rfd >= 0) {
            rc = 0;
            goto wired;
        }
        /* Not a level line there: register it ours, as below. */
        close(efd);
        if (rfd >= 0)
            close(rfd);
        g->efd = g->resample_fd = -1;
    }
    if (g->efd < 0)
        g->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (level && g->resample_fd < 0)
        g->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->efd < 0 || (level && g->resample_fd < 0)) {
        dm_log(dm, FERRY_LOG_WARNING, "gsi %" PRIu32 ": eventfd: %s; using irq line calls",
               g->gsi, strerror(errno));
        return;
    }
    rc = dm->ops->irqfd(dm->opaque, g->gsi, g->efd, level ? g->resample_fd : -1, true);
    if (rc < 0) {
        dm_log(dm, FERRY_LOG_INFO, "gsi %" PRIu32 ": irqfd refused (%s); using irq line calls",
               g->gsi, strerror(-rc));
        return;
    }
wired:
    if (level && dm->base) {
        g->resample_ev = event_new(dm->base, g->resample_fd, EV_READ | EV_PERSIST,
                                   gsi_resample_cb, g);
        if (g->resample_ev)
            event_add(g->resample_ev, NULL);
    }
    g->irqfd = true;
    if (level && g->asserted)
        kick(g->efd);
}

static void gsi_deliver(struct dm_gsi *g, bool rising, bool line)
{
    struct ferry_dm *dm = g->dm;

    if (dm->status != FERRY_DM_RUNNING)
        return;
    if (dm->taking_over) {
        /* The predecessor delivered this already: the level is ours to know, not to send. */
        g->line_high = line;
        return;
    }
    if (g->irqfd) {
        if (rising) {
            g->count++;
            kick(g->efd);
        }
        return;
    }
    if (!dm->ops || !dm->ops->irq_line) {
        dm_guest_log(dm, "gsi %" PRIu32 ": no way to deliver interrupts", g->gsi);
        return;
    }
    if (g->kind == FERRY_DM_IRQ_EDGE) {
        if (rising) {
            g->count++;
            dm->ops->irq_line(dm->opaque, g->gsi, true);
            dm->ops->irq_line(dm->opaque, g->gsi, false);
        }
        return;
    }
    if (line != g->line_high) {
        g->line_high = line;
        if (line)
            g->count++;
        dm->ops->irq_line(dm->opaque, g->gsi, line);
    }
}

int dm_irq_add(struct ferry_dm_device *dev, uint32_t gsi, enum ferry_dm_irq_kind kind,
                     struct ferry_dm_irq **out)
{
    struct ferry_dm *dm = dev->dm;
    struct dm_gsi *g = g_hash_table_lookup(dm->gsis, GUINT_TO_POINTER(gsi));
    struct ferry_dm_irq *irq;

    if (kind != FERRY_DM_IRQ_EDGE && kind != FERRY_DM_IRQ_LEVEL)
        return -EINVAL;
    if (g && (g->kind != kind || kind == FERRY_DM_IRQ_EDGE)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "gsi %" PRIu32 " is already used%s", gsi,
                         kind == FERRY_DM_IRQ_EDGE ? " (edge lines are not shared)"
                                                   : " as an edge line");
        return -EBUSY;
    }
    irq = calloc(1, sizeof(*irq));
    if (!irq)
        return -ENOMEM;
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g) {
            free(irq);
            return -ENOMEM;
        }
        *g = (struct dm_gsi){ .dm = dm, .gsi = gsi, .kind = kind, .efd = -1,
                              .resample_fd = -1 };
        g_hash_table_insert(dm->gsis, GUINT_TO_POINTER(gsi), g);
        gsi_connect(g);
    }
    g->users++;
    irq->dev = dev;
    irq->line = g;
    g_ptr_array_add(dev->irqs, irq);
    *out = irq;
    return 0;
}

void dm_irq_set(struct ferry_dm_irq *irq, bool level)
{
    struct dm_gsi *g = irq->line;
    bool rising = level && !irq->level;

    if (level == irq->level)
        return;
    irq->level = level;
    if (level)
        irq->count++;
    if (g->kind == FERRY_DM_IRQ_EDGE) {
        gsi_deliver(g, rising, level);
        return;
    }
    g->asserted += level ? 1 : -1;
    gsi_deliver(g, level && g->asserted == 1, g->asserted > 0);
}

bool dm_irq_level(const struct ferry_dm_irq *irq)
{
    return irq->level;
}

uint32_t dm_irq_gsi(const struct ferry_dm_irq *irq)
{
    return irq->line->gsi;
}

uint64_t dm_irq_count(const struct ferry_dm_irq *irq)
{
    return irq->count;
}

void dm_irq_free(struct ferry_dm_irq *irq)
{
    struct dm_gsi *g = irq->line;

    dm_irq_set(irq, false);
    if (--g->users == 0)
        g_hash_table_remove(g->dm->gsis, GUINT_TO_POINTER(g->gsi));
    free(irq);
}

/* At start: every GSI tries its irqfd; a level line without one is told its state. */
void dm_gsis_start(struct ferry_dm *dm)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, dm->gsis);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct dm_gsi *g = v;

        gsi_connect(g);
        if (!g->irqfd && g->kind == FERRY_DM_IRQ_LEVEL)
            gsi_deliver(g, false, g->asserted > 0);
    }
}

int dm_gsi_set_level(struct ferry_dm *dm, uint32_t gsi, bool level)
{
    int rc;

    if (dm->status != FERRY_DM_RUNNING)
        return -ENOTCONN;
    if (!dm->ops || !dm->ops->irq_line)
        return -ENOSYS;
    rc = dm->ops->irq_line(dm->opaque, gsi, level);
    if (rc < 0)         /* the guest asked for it: rate-limited */
        dm_guest_log(dm, "gsi %" PRIu32 ": cannot set level %d: %s", gsi, level, strerror(-rc));
    return rc;
}

int dm_irqfd_assign(struct ferry_dm *dm, uint32_t gsi, int fd, int resample_fd,
                          bool assign)
{
    if (dm->status != FERRY_DM_RUNNING)
        return -ENOTCONN;
    if (!dm->ops || !dm->ops->irqfd)
        return -ENOSYS;
    return dm->ops->irqfd(dm->opaque, gsi, fd, resample_fd, assign);
}
