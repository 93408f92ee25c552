// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's device framework: the ferry_dm object (create/destroy,
 * status, clocks, statistics, shutdown/reset/powerdown, the PCI bus hooks)
 * and its logging.  The rest is split by idea: dm-region.c (address
 * decoding and ioreq dispatch), dm-irq.c (interrupt lines and GSI sharing),
 * dm-device.c (device types and lifecycle, start, save/restore, query),
 * dm-memory.c (guest memory for DMA), dm-pci.c (PCI functions).
 * See dm.h for the contract, dm-internal.h for what the pieces share.
 */
#include "devmodel/dm-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>


/* ------------------------------------------------------------------ */
/* Logging                                                             */

void dm_log(struct ferry_dm *dm, enum ferry_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (dm->adding && level == FERRY_LOG_ERROR && !dm->add_error[0]) {
        va_list aq;

        /* The first error while a device is added is also device_add's reply. */
        va_copy(aq, ap);
        vsnprintf(dm->add_error, sizeof(dm->add_error), fmt, aq);
        va_end(aq);
    }
    ferry_vlogf(dm->log, dm->log_opaque, level, fmt, ap);
    va_end(ap);
}

/* Guest-triggered framework messages at level, rate-limited. */
void dm_guest_log_at(struct ferry_dm *dm, enum ferry_log_level level, const char *fmt, ...)
{
    char buf[400];
    uint32_t dropped = 0;
    va_list ap;

    if (!ferry_ratelimit_ok(&dm->rl, &dropped))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (dropped)
        dm_log(dm, level, "%s (%" PRIu32 " similar suppressed)", buf, dropped);
    else
        dm_log(dm, level, "%s", buf);
}

void dm_dev_log(struct ferry_dm_device *dev, enum ferry_log_level level,
                      const char *fmt, ...)
{
    char buf[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    dm_log(dev->dm, level, "%s[%s]: %s", dev->type->name, dev->id, buf);
}

static FERRY_PRINTF(3, 0) void dev_guest_vlog(struct ferry_dm_device *dev,
                                              enum ferry_log_level level, const char *fmt,
                                              va_list ap)
{
    char buf[400];
    uint32_t dropped = 0;

    if (!ferry_ratelimit_ok(&dev->rl, &dropped))
        return;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (dropped)
        dm_dev_log(dev, level, "%s (%" PRIu32 " similar suppressed)", buf, dropped);
    else
        dm_dev_log(dev, level, "%s", buf);
}

void dm_dev_guest_log(struct ferry_dm_device *dev, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dev_guest_vlog(dev, FERRY_LOG_WARNING, fmt, ap);
    va_end(ap);
}

void dm_dev_guest_log_at(struct ferry_dm_device *dev, enum ferry_log_level level,
                               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dev_guest_vlog(dev, level, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Context                                                             */

int dm_create(const struct ferry_dm_config *cfg, struct ferry_dm **out)
{
    struct ferry_dm *dm;

    if (!cfg || !out)
        return -EINVAL;
    dm = calloc(1, sizeof(*dm));
    if (!dm)
        return -ENOMEM;
    dm->usb_host.fd = -1;
    snprintf(dm->name, sizeof(dm->name), "%s", cfg->name ? cfg->name : "guest");
    dm->base = cfg->base;
    dm->ops = cfg->ops;
    dm->opaque = cfg->opaque;
    dm->log = cfg->log;
    dm->log_opaque = cfg->log_opaque;
    dm->rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(5000, 10);
    dm->memfd = -1;
    for (unsigned i = 0; i < FERRY_DM_SPACE_NR; i++)
        dm->ranges[i] = ioreq_rangeset_new();
    dm->devices = g_ptr_array_new();
    dm->gsis = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, dm_gsi_free);
    if (!dm->ranges[0] || !dm->ranges[1] || !dm->ranges[2]) {
        dm_destroy(dm);
        return -ENOMEM;
    }
    *out = dm;
    return 0;
}

void dm_destroy(struct ferry_dm *dm)
{
    if (!dm)
        return;
    while (dm->devices->len) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, dm->devices->len - 1);

        g_ptr_array_remove_index(dm->devices, dm->devices->len - 1);
        dm_device_free(dev);
    }
    g_ptr_array_free(dm->devices, TRUE);
    g_hash_table_destroy(dm->gsis);
    for (unsigned i = 0; i < FERRY_DM_MSI_FDS; i++)
        if (dm->msi_fds[i].used)
            close(dm->msi_fds[i].efd);
    for (unsigned i = 0; i < dm->nr_mem; i++)
        munmap(dm->mem[i].hva, dm->mem[i].size);
    if (dm->memfd >= 0)
        close(dm->memfd);
    if (dm->usb_host.fd >= 0)
        close(dm->usb_host.fd);
    for (unsigned i = 0; i < FERRY_DM_SPACE_NR; i++)
        ioreq_rangeset_free(dm->ranges[i]);
    free(dm);
}

const char *dm_name(const struct ferry_dm *dm)
{
    return dm->name;
}

struct event_base *dm_event_base(struct ferry_dm *dm)
{
    return dm->base;
}

enum ferry_dm_status dm_get_status(const struct ferry_dm *dm)
{
    return dm->status;
}

const char *dm_status_name(enum ferry_dm_status st)
{
    switch (st) {
    case FERRY_DM_CREATED: return "prelaunch";
    case FERRY_DM_RUNNING: return "running";
    case FERRY_DM_SHUTDOWN: return "shutdown";
    case FERRY_DM_SUSPENDED: return "suspended";
    }
    return "unknown";
}

uint64_t dm_clock_ns(struct ferry_dm *dm)
{
    struct timespec ts;

    if (dm->ops && dm->ops->clock_ns)
        return dm->ops->clock_ns(dm->opaque);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t dm_wall_ns(struct ferry_dm *dm)
{
    struct timespec ts;

    if (dm->ops && dm->ops->wall_ns)
        return dm->ops->wall_ns(dm->opaque);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void dm_get_stats(const struct ferry_dm *dm, struct ferry_dm_stats *st)
{
    *st = dm->stats;
}

void dm_set_pci_config(struct ferry_dm *dm, ferry_dm_pci_config_fn fn, void *opaque)
{
    dm->pci_config = fn;
    dm->pci_opaque = opaque;
}

void dm_set_nr_vcpus(struct ferry_dm *dm, unsigned n)
{
    dm->nr_vcpus = n;
}

unsigned dm_nr_vcpus(const struct ferry_dm *dm)
{
    return dm->nr_vcpus;
}

/* The irqfd of (address, data), routed now if it has none; NULL when the backend cannot. */
static struct dm_msi_fd *msi_fd_get(struct ferry_dm *dm, uint64_t address, uint32_t data)
{
    struct dm_msi_fd *e = NULL, *lru = &dm->msi_fds[0];

    if (dm->msi_route_off || !dm->ops || !dm->ops->msi_route)
        return NULL;
    for (unsigned i = 0; i < FERRY_DM_MSI_FDS; i++) {
        struct dm_msi_fd *m = &dm->msi_fds[i];
        if (m->used && m->address == address && m->data == data) {
            m->last_use = ++dm->msi_clock;
            return m;
        }
        if (!m->used && !e)
            e = m;
        if (m->last_use < lru->last_use)
            lru = m;
    }
    if (!e) {       /* the least recently used message gives its route up */
        e = lru;
        (void)dm->ops->msi_route(dm->opaque, 0, 0, -1, e->cookie, false);
        close(e->efd);
        e->used = false;
    }
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return NULL;
    uint32_t cookie = ++dm->msi_cookie;
    int rc = dm->ops->msi_route(dm->opaque, address, data, efd, cookie, true);
    if (rc < 0) {
        close(efd);
        if (rc == -ENOSYS || rc == -EOPNOTSUPP || rc == -EINVAL) {
            dm->msi_route_off = true;
            dm_log(dm, FERRY_LOG_INFO, "msi through irqfds unavailable (%s): MSIs are sent "
                   "one by one", strerror(-rc));
        }
        return NULL;
    }
    *e = (struct dm_msi_fd){ .used = true, .address = address, .data = data, .efd = efd,
                             .cookie = cookie, .last_use = ++dm->msi_clock };
    return e;
}

int dm_signal_msi(struct ferry_dm *dm, uint64_t address, uint32_t data)
{
    struct dm_msi_fd *e = (address >> 20) == 0xfee ? msi_fd_get(dm, address, data) : NULL;

    if (e && eventfd_write(e->efd, 1) == 0)
        return 0;
    int rc = dm->ops && dm->ops->msi ? dm->ops->msi(dm->opaque, address, data) : -ENOSYS;

    if (rc < 0)         /* devices send MSIs when the guest asks: rate-limited */
        dm_guest_log(dm, "msi 0x%" PRIx64 "/0x%" PRIx32 " not delivered: %s", address, data,
                     strerror(-rc));
    return rc;
}

void dm_request_shutdown(struct ferry_dm *dm, enum ioreq_shutdown_reason reason,
                               uint32_t code)
{
    static const char *const names[] = { "poweroff", "reboot", "crash" };
    int rc = 0;

    /* Guests can ask again and again (a loop on 0xcf9): rate-limited. */
    dm_guest_log_at(dm, FERRY_LOG_INFO, "guest requests %s code=%" PRIu32,
                    reason <= IOREQ_SHUTDOWN_CRASH ? names[reason] : "?", code);
    if (dm->ops && dm->ops->shutdown)
        rc = dm->ops->shutdown(dm->opaque, reason, code);
    if (rc < 0)
        dm_guest_log_at(dm, FERRY_LOG_ERROR, "cannot ask the hypervisor for %s: %s",
                        reason <= IOREQ_SHUTDOWN_CRASH ? names[reason] : "?", strerror(-rc));
    if (reason == IOREQ_SHUTDOWN_REBOOT)
        dm_reset(dm);
    else
        dm->status = FERRY_DM_SHUTDOWN;
}

void dm_reset(struct ferry_dm *dm)
{
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->reset)
            dev->type->reset(dev->state);
    }
}

int dm_powerdown(struct ferry_dm *dm)
{
    int rc = -ENODEV;

    if (dm->status == FERRY_DM_SUSPENDED)
        return dm_wakeup(dm, FERRY_DM_WAKE_PWRBTN);

    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->powerdown) {
            dev->type->powerdown(dev->state);
            rc = 0;
        }
    }
    return rc;
}

const char *dm_wake_reason_name(enum ferry_dm_wake_reason reason)
{
    static const char *const names[] = { "rtc", "power-button", "system_wakeup" };

    return reason < FERRY_DM_WAKE_NR ? names[reason] : "?";
}

void dm_set_wakeup_enabled(struct ferry_dm *dm, enum ferry_dm_wake_reason reason, bool on)
{
    if (reason >= FERRY_DM_WAKE_NR)
        return;
    if (on)
        dm->wake_enabled |= 1u << reason;
    else
        dm->wake_enabled &= ~(1u << reason);
}

int dm_request_suspend(struct ferry_dm *dm)
{
    int rc;

    if (dm->status == FERRY_DM_SUSPENDED)
        return -EBUSY;
    if (!dm->ops || !dm->ops->sleep)
        return -ENOSYS;
    rc = dm->ops->sleep(dm->opaque, IOREQ_SLEEP_S3);
    if (rc < 0) {
        dm_guest_log_at(dm, FERRY_LOG_WARNING, "S3: the hypervisor cannot suspend the guest: "
                        "%s; it runs on", strerror(-rc));
        return rc;
    }
    dm->status = FERRY_DM_SUSPENDED;
    dm_log(dm, FERRY_LOG_INFO, "S3: guest %s suspended to RAM", dm->name);
    return 0;
}

int dm_wakeup(struct ferry_dm *dm, enum ferry_dm_wake_reason reason)
{
    int rc;

    if (reason >= FERRY_DM_WAKE_NR)
        return -EINVAL;
    if (dm->status != FERRY_DM_SUSPENDED)
        return -EALREADY;
    if (reason == FERRY_DM_WAKE_RTC && !(dm->wake_enabled & (1u << reason)))
        return -EPERM;
    /* The platform leaves S3 through its reset: devices lose their context. */
    dm_reset(dm);
    for (guint i = 0; i < dm->devices->len; i++) {
        struct ferry_dm_device *dev = g_ptr_array_index(dm->devices, i);

        if (dev->type->wakeup)
            dev->type->wakeup(dev->state, reason);
    }
    dm->status = FERRY_DM_RUNNING;
    rc = dm->ops && dm->ops->sleep ? dm->ops->sleep(dm->opaque, IOREQ_SLEEP_WAKE) : -ENOSYS;
    if (rc < 0) {
        dm_log(dm, FERRY_LOG_ERROR, "S3: cannot wake guest %s (%s): %s", dm->name,
               dm_wake_reason_name(reason), strerror(-rc));
        dm->status = FERRY_DM_SUSPENDED;    /* the vCPUs are still stopped */
        return rc;
    }
    dm_log(dm, FERRY_LOG_INFO, "S3: guest %s woken by %s", dm->name,
           dm_wake_reason_name(reason));
    return 0;
}

struct ferry_pci_bus *dm_pci_bus(struct ferry_dm *dm)
{
    return dm->pci_bus;
}

void dm_set_pci_bus(struct ferry_dm *dm, struct ferry_pci_bus *bus)
{
    dm->pci_bus = bus;
}

void dm_set_sandbox(struct ferry_dm *dm, const struct ferry_sandbox_config *sbx)
{
    dm->sandbox = sbx;
}

const struct ferry_sandbox_config *dm_sandbox(const struct ferry_dm *dm)
{
    return dm->sandbox;
}

void dm_set_confined(struct ferry_dm *dm, const struct ferry_syscall_list *const *lists,
                           size_t n)
{
    dm->confined = true;
    dm->nr_lists = 0;
    for (size_t i = 0; i < n && dm->nr_lists < G_N_ELEMENTS(dm->lists); i++)
        dm->lists[dm->nr_lists++] = lists[i];
}

bool dm_confined(const struct ferry_dm *dm)
{
    return dm->confined;
}

int dm_usb_host_set(struct ferry_dm *dm, const char *qmp, int fd)
{
    if (dm->usb_host.qmp[0] || strlen(qmp) >= sizeof(dm->usb_host.qmp)) {
        if (fd >= 0)
            close(fd);
        return dm->usb_host.qmp[0] ? -EEXIST : -ENAMETOOLONG;
    }
    snprintf(dm->usb_host.qmp, sizeof(dm->usb_host.qmp), "%s", qmp);
    dm->usb_host.fd = fd;
    return 0;
}

const char *dm_usb_host_qmp(const struct ferry_dm *dm)
{
    return dm->usb_host.qmp[0] ? dm->usb_host.qmp : NULL;
}

int dm_usb_host_take_fd(struct ferry_dm *dm)
{
    int fd = dm->usb_host.fd;

    dm->usb_host.fd = -1;
    return fd;
}

void dm_usb_host_set_handler(struct ferry_dm *dm, void (*restarted)(void *opaque, int fd),
                             void *opaque)
{
    dm->usb_host.restarted = restarted;
    dm->usb_host.opaque = opaque;
}

void dm_usb_host_restarted(struct ferry_dm *dm, int fd)
{
    if (dm->usb_host.restarted)
        dm->usb_host.restarted(dm->usb_host.opaque, fd);
    else if (fd >= 0)
        close(fd);
}
