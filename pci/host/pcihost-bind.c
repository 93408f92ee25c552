// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libferry-pcihost: prepare (bind to vfio-pci) and release (give back).
 *
 * The way driverctl and libvirt's managed mode do it: write "vfio-pci" to the
 * device's driver_override, unbind it from its driver, ask the PCI core to
 * probe it again (drivers_probe), which now picks vfio-pci.  Release clears
 * driver_override, unbinds from vfio-pci and binds the original driver again.
 *
 * Crash safety: before touching anything, prepare records the original
 * driver in STATE_DIR/<dddd:bb:dd.f> (written to a temporary file and
 * renamed).  Every step checks the current state first, so rerunning prepare
 * after an interruption finishes the job, and release undoes it from any
 * intermediate state.  On a failure the device is rebound to its original
 * driver (or probed), never left without one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pci/host/pcihost-priv.h"

#define VFIO_DRIVER "vfio-pci"
#define STATE_MAX   256

static void step(struct ferry_pcihost *h, const char *dev, const char *what)
{
    pcihost_log(h, FERRY_LOG_INFO, "pcihost[%s] info: step %s", dev, what);
    if (h->ops.step)
        h->ops.step(h->ops.step_opaque, dev, what);
}

static int mkdir_p(const char *path)
{
    char tmp[PCIHOST_PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* State file: "driver=NAME\n" (NAME empty: the device had no driver). */
static int state_read(struct ferry_pcihost *h, const char *dev, char *drv, size_t len)
{
    char path[PCIHOST_PATH_MAX], buf[STATE_MAX];
    int r;

    r = pcihost_path(h, path, sizeof(path), h->state_dir, "%s", dev);
    if (r < 0)
        return r;
    r = pcihost_read_file(path, buf, sizeof(buf));
    if (r < 0)
        return r;
    if (strncmp(buf, "driver=", 7))
        return -EBADMSG;
    buf[strcspn(buf, "\n")] = '\0';
    /* The name goes into a sysfs path: no slashes, no dots-only names. */
    if (strlen(buf + 7) >= len || strchr(buf + 7, '/') || !strcmp(buf + 7, ".") ||
        !strcmp(buf + 7, ".."))
        return -EBADMSG;
    strcpy(drv, buf + 7);
    return 0;
}

static int state_write(struct ferry_pcihost *h, const char *dev, const char *drv)
{
    char path[PCIHOST_PATH_MAX], tmp[PCIHOST_PATH_MAX + 8], buf[STATE_MAX];
    int fd, r, n;

    r = mkdir_p(h->state_dir);
    if (r < 0)
        return r;
    if (pcihost_path(h, path, sizeof(path), h->state_dir, "%s", dev) < 0)
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    n = snprintf(buf, sizeof(buf), "driver=%s\n", drv);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
        r = errno ? -errno : -EIO;
        close(fd);
        unlink(tmp);
        return r;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        r = -errno;
        unlink(tmp);
        return r;
    }
    return 0;
}

static void state_remove(struct ferry_pcihost *h, const char *dev)
{
    char path[PCIHOST_PATH_MAX];

    if (pcihost_path(h, path, sizeof(path), h->state_dir, "%s", dev) == 0)
        unlink(path);
}

static int cur_driver(struct ferry_pcihost *h, const char *dev, char *buf, size_t len)
{
    int r;

    if (!pcihost_sys_exists(h, "bus/pci/devices/%s", dev))
        return -ENODEV;
    r = pcihost_sys_link_base(h, buf, len, "bus/pci/devices/%s/driver", dev);
    if (r == -ENOENT) {
        buf[0] = '\0';
        r = 0;
    }
    return r;
}

/* cur_driver() before bind or unbind changes anything: a failure is reported. */
static int driver_at_start(struct ferry_pcihost *h, const char *dev, char *buf, size_t len)
{
    int r = cur_driver(h, dev, buf, len);

    if (r == -ENODEV)
        return pcihost_fail(h, r, "pci %s: no such device in sysfs (removed?)", dev);
    if (r < 0)
        return pcihost_fail(h, r, "pci %s: cannot read its driver link: %s", dev, strerror(-r));
    return 0;
}

static int cur_override(struct ferry_pcihost *h, const char *dev, char *buf, size_t len)
{
    int r = pcihost_sys_read(h, buf, len, "bus/pci/devices/%s/driver_override", dev);

    if (r == 0 && !strcmp(buf, "(null)"))
        buf[0] = '\0';
    return r;
}

/* Best effort: get the device back to a driver after a failed prepare. */
static void rebind_original(struct ferry_pcihost *h, const char *dev, const char *orig)
{
    char now[64];

    (void)pcihost_sys_write(h, "\n", "bus/pci/devices/%s/driver_override", dev);
    if (cur_driver(h, dev, now, sizeof(now)) == 0 && now[0])
        return;
    if (orig[0] && pcihost_sys_write(h, dev, "bus/pci/drivers/%s/bind", orig) == 0)
        return;
    (void)pcihost_sys_write(h, dev, "bus/pci/drivers_probe");
}

/* After a failed prepare: rebind, then drop the record of the original
 * driver only if the device really is back where it came from.  Otherwise
 * the record stays, so that a rerun of release (or prepare) can finish the
 * repair instead of finding a device without driver and nothing to say
 * which one it had.  The driver it has now goes to now. */
static bool give_back(struct ferry_pcihost *h, const char *dev, const char *orig, char *now,
                      size_t len)
{
    char ovr[64];

    rebind_original(h, dev, orig);
    if (cur_driver(h, dev, now, len) < 0) {
        snprintf(now, len, "%s", "");
        return false;
    }
    if (cur_override(h, dev, ovr, sizeof(ovr)) < 0 || !strcmp(ovr, VFIO_DRIVER))
        return false;
    if (orig[0] ? strcmp(now, orig) != 0 : !strcmp(now, VFIO_DRIVER))
        return false;
    state_remove(h, dev);
    return true;
}

static int bind_one(struct ferry_pcihost *h, const char *dev)
{
    char drv[64], orig[64], ovr[64];
    bool recorded_now;
    int r;

    r = driver_at_start(h, dev, drv, sizeof(drv));
    if (r < 0)
        return r;
    r = cur_override(h, dev, ovr, sizeof(ovr));
    if (r < 0)
        return pcihost_fail(h, r, "pci %s: cannot read driver_override: %s (kernel too old?)",
                            dev, strerror(-r));

    if (!strcmp(drv, VFIO_DRIVER) && !strcmp(ovr, VFIO_DRIVER)) {
        pcihost_log(h, FERRY_LOG_INFO, "pcihost[%s] info: already bound to vfio-pci", dev);
        return 0;
    }

    /* 1. Remember where it came from, unless an earlier run already did. */
    r = state_read(h, dev, orig, sizeof(orig));
    recorded_now = r == -ENOENT;
    if (r == -ENOENT) {
        snprintf(orig, sizeof(orig), "%s", strcmp(drv, VFIO_DRIVER) ? drv : "");
        step(h, dev, "record");
        r = state_write(h, dev, orig);
        if (r < 0)
            return pcihost_fail(h, r, "pci %s: cannot record its driver in %s: %s", dev,
                                h->state_dir, strerror(-r));
    } else if (r < 0) {
        return pcihost_fail(h, r, "pci %s: unreadable state file in %s: %s", dev,
                            h->state_dir, strerror(-r));
    }

    /* 2. driver_override, so that no other driver can grab it. */
    if (strcmp(ovr, VFIO_DRIVER)) {
        step(h, dev, "override");
        r = pcihost_sys_write(h, VFIO_DRIVER, "bus/pci/devices/%s/driver_override", dev);
        if (r < 0 && recorded_now) {
            /* Nothing was changed on the device: the record goes again. */
            state_remove(h, dev);
            return pcihost_fail(h, r, "pci %s: kernel refused driver_override=vfio-pci: %s",
                                dev, strerror(-r));
        }
        if (r < 0)
            /* The record is from an interrupted earlier run, which may have
             * unbound the device already: it is the only trace of the
             * driver to give it back to. */
            return pcihost_fail(h, r, "pci %s: kernel refused driver_override=vfio-pci: %s; "
                                "the record of its driver (%s) from an earlier run stays in "
                                "%s: run 'ferry pci release %s' to give it back", dev,
                                strerror(-r), orig[0] ? orig : "none", h->state_dir, dev);
    }

    /* 3. Unbind from the host driver. */
    if (drv[0] && strcmp(drv, VFIO_DRIVER)) {
        step(h, dev, "unbind");
        r = pcihost_sys_write(h, dev, "bus/pci/drivers/%s/unbind", drv);
        if (r < 0) {
            int e = r;
            char now[64];
            if (give_back(h, dev, orig, now, sizeof(now)))
                return pcihost_fail(h, e, "pci %s: %s refused to unbind it: %s; left with %s",
                                    dev, drv, strerror(-e), now[0] ? now : "no driver");
            return pcihost_fail(h, e, "pci %s: %s refused to unbind it: %s; and it did not go "
                                "back to %s (now %s): the record stays in %s, run 'ferry pci "
                                "release %s' to retry", dev, drv, strerror(-e),
                                orig[0] ? orig : "no driver", now[0] ? now : "no driver",
                                h->state_dir, dev);
        }
    }

    /* 4. Probe: the PCI core now offers it only to vfio-pci. */
    if (cur_driver(h, dev, drv, sizeof(drv)) == 0 && !drv[0]) {
        step(h, dev, "probe");
        r = pcihost_sys_write(h, dev, "bus/pci/drivers_probe");
        if (r < 0 && pcihost_sys_exists(h, "bus/pci/drivers/%s", VFIO_DRIVER))
            r = pcihost_sys_write(h, dev, "bus/pci/drivers/%s/bind", VFIO_DRIVER);
    }
    r = cur_driver(h, dev, drv, sizeof(drv));
    if (r == -ENODEV) {
        state_remove(h, dev);
        return pcihost_fail(h, r, "pci %s: device vanished while being prepared", dev);
    }
    if (r < 0 || strcmp(drv, VFIO_DRIVER)) {
        bool loaded = pcihost_sys_exists(h, "bus/pci/drivers/%s", VFIO_DRIVER);
        const char *why = loaded ? "see the kernel log"
                                 : "driver vfio-pci is not loaded: modprobe vfio-pci";
        if (give_back(h, dev, orig, drv, sizeof(drv)))
            return pcihost_fail(h, -EIO, "pci %s: vfio-pci did not take the device (%s); "
                                "given back to %s", dev, why, drv[0] ? drv : "no driver");
        return pcihost_fail(h, -EIO, "pci %s: vfio-pci did not take the device (%s), and "
                            "the rebind to %s failed too (now %s): the record of its driver "
                            "stays in %s, run 'ferry pci release %s' to retry", dev, why,
                            orig[0] ? orig : "no driver", drv[0] ? drv : "no driver",
                            h->state_dir, dev);
    }
    pcihost_log(h, FERRY_LOG_INFO, "pcihost[%s] info: bound to vfio-pci (was %s)", dev,
                orig[0] ? orig : "no driver");
    return 0;
}

/* A process holding /dev/vfio/GROUP open (a VMM using the device): its pid
 * and name, or 0.  Unbinding vfio-pci then would block in the kernel until
 * that process lets go, so release refuses instead. */
static pid_t vfio_group_user(struct ferry_pcihost *h, const char *dev, char *comm, size_t len)
{
    char grp[32], want[64], path[PCIHOST_PATH_MAX], target[128];
    struct dirent *p;
    DIR *procs;
    pid_t self = getpid();

    if (pcihost_sys_link_base(h, grp, sizeof(grp), "bus/pci/devices/%s/iommu_group", dev) < 0)
        return 0;
    snprintf(want, sizeof(want), "/dev/vfio/%s", grp);
    procs = opendir(h->proc_root);
    if (!procs)
        return 0;
    while ((p = readdir(procs))) {
        struct dirent *f;
        DIR *fds;
        pid_t pid = (pid_t)atoi(p->d_name);

        if (pid <= 0 || pid == self ||
            pcihost_path(h, path, sizeof(path), h->proc_root, "%d/fd", pid) < 0 ||
            !(fds = opendir(path)))
            continue;
        while ((f = readdir(fds))) {
            char fdpath[PCIHOST_PATH_MAX];
            ssize_t n;
            if (f->d_name[0] == '.' ||
                pcihost_path(h, fdpath, sizeof(fdpath), h->proc_root, "%d/fd/%s", pid,
                             f->d_name) < 0)
                continue;
            n = readlink(fdpath, target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (!strcmp(target, want)) {
                FILE *c;
                closedir(fds);
                closedir(procs);
                snprintf(comm, len, "?");
                if (pcihost_path(h, path, sizeof(path), h->proc_root, "%d/comm", pid) == 0 &&
                    (c = fopen(path, "re"))) {
                    if (fgets(comm, (int)len, c))
                        comm[strcspn(comm, "\n")] = '\0';
                    fclose(c);
                }
                return pid;
            }
        }
        closedir(fds);
    }
    closedir(procs);
    return 0;
}

static int unbind_one(struct ferry_pcihost *h, const char *dev)
{
    char drv[64], orig[64] = "", ovr[64];
    bool have_state;
    int r;

    r = driver_at_start(h, dev, drv, sizeof(drv));
    if (r < 0)
        return r;
    if (cur_override(h, dev, ovr, sizeof(ovr)) < 0)
        ovr[0] = '\0';
    r = state_read(h, dev, orig, sizeof(orig));
    if (r < 0 && r != -ENOENT)
        return pcihost_fail(h, r, "pci %s: unreadable state file in %s: %s", dev,
                            h->state_dir, strerror(-r));
    have_state = r == 0;
    if (!have_state && strcmp(drv, VFIO_DRIVER) && strcmp(ovr, VFIO_DRIVER)) {
        pcihost_log(h, FERRY_LOG_INFO, "pcihost[%s] info: not prepared, nothing to release", dev);
        return 0;
    }

    if (!strcmp(drv, VFIO_DRIVER)) {
        char comm[64];
        pid_t user = vfio_group_user(h, dev, comm, sizeof(comm));
        if (user)
            return pcihost_fail(h, -EBUSY, "pci %s: in use: pid %d (%s) has its VFIO group "
                                "open; detach it from that VMM first", dev, (int)user, comm);
    }
    if (ovr[0]) {
        step(h, dev, "clear-override");
        r = pcihost_sys_write(h, "\n", "bus/pci/devices/%s/driver_override", dev);
        if (r < 0)
            return pcihost_fail(h, r, "pci %s: kernel refused to clear driver_override: %s",
                                dev, strerror(-r));
    }
    if (!strcmp(drv, VFIO_DRIVER)) {
        step(h, dev, "unbind");
        r = pcihost_sys_write(h, dev, "bus/pci/drivers/%s/unbind", VFIO_DRIVER);
        if (r < 0)
            return pcihost_fail(h, r, "pci %s: vfio-pci refused to let go of it: %s "
                                "(still open by a VMM?)", dev, strerror(-r));
        drv[0] = '\0';
    }
    if (!drv[0]) {
        step(h, dev, "rebind");
        r = -ENOENT;
        if (orig[0])
            r = pcihost_sys_write(h, dev, "bus/pci/drivers/%s/bind", orig);
        if (r < 0)
            (void)pcihost_sys_write(h, dev, "bus/pci/drivers_probe");
    }
    r = cur_driver(h, dev, drv, sizeof(drv));
    if (r < 0) {
        state_remove(h, dev);
        return pcihost_fail(h, r, "pci %s: device vanished while being released", dev);
    }
    /* Keep the record until the original driver has it back, so that
     * another release can retry instead of calling it "not prepared". */
    if (orig[0] && strcmp(drv, orig))
        return pcihost_fail(h, -EIO, "pci %s: released, but %s did not take it back (now %s); "
                            "its record stays in %s for another release", dev, orig,
                            drv[0] ? drv : "no driver", h->state_dir);
    state_remove(h, dev);
    pcihost_log(h, FERRY_LOG_INFO, "pcihost[%s] info: released to %s", dev,
                drv[0] ? drv : "no driver");
    return 0;
}

/* The non-bridge members of a device's IOMMU group, the device first. */
static int group_members(struct ferry_pcihost *h, const char *dev, int group,
                         char (*out)[FERRY_PCI_ADDR_STRLEN], size_t max, size_t *n)
{
    char path[PCIHOST_PATH_MAX];
    struct dirent *e;
    DIR *dir;
    int r;

    *n = 0;
    snprintf(out[(*n)++], FERRY_PCI_ADDR_STRLEN, "%s", dev);
    r = pcihost_path(h, path, sizeof(path), h->sysfs_root, "kernel/iommu_groups/%d/devices",
                     group);
    if (r < 0)
        return r;
    dir = opendir(path);
    if (!dir)
        return -errno;
    while ((e = readdir(dir))) {
        struct ferry_pci_addr a;
        const struct ferry_pcihost_dev *d;
        if (pcihost_addr_parse(e->d_name, &a) < 0 || !strcmp(e->d_name, dev))
            continue;
        d = pcihost_dev_find(h, &a);
        if (d && (d->header_type == 1 || d->header_type == 2))
            continue;
        if (*n >= max) {
            closedir(dir);
            return -E2BIG;
        }
        pcihost_addr_format(&a, out[(*n)++]);
    }
    closedir(dir);
    return 0;
}

static int refuse_if_in_use(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                            unsigned flags)
{
    struct ferry_pcihost_report *rep = calloc(1, sizeof(*rep));
    int r;

    if (!rep)
        return -ENOMEM;
    r = pcihost_check(h, a, rep);
    if (r < 0)
        goto out;
    if (rep->holds_rootfs) {
        /* never, not even with --force */
        r = pcihost_fail(h, -EBUSY, "pci %s: refusing to prepare: its driver serves the "
                         "root filesystem", rep->dev);
        for (size_t i = 0; i < rep->n; i++)
            if (!strcmp(rep->f[i].check, "driver"))
                r = pcihost_fail(h, -EBUSY, "pci %s: refusing to prepare: %s", rep->dev,
                                 rep->f[i].reason);
        goto out;
    }
    for (size_t i = 0; i < rep->n; i++) {
        const struct ferry_pcihost_finding *f = &rep->f[i];
        if (f->verdict != FERRY_PCIHOST_FAIL)
            continue;
        if (!strcmp(f->check, "device") || !strcmp(f->check, "iommu") ||
            !strcmp(f->check, "group") ||
            (!strcmp(f->check, "driver") && !(flags & FERRY_PCIHOST_PREPARE_FORCE)) ||
            (!strcmp(f->check, "vga") && !(flags & FERRY_PCIHOST_PREPARE_FORCE))) {
            r = pcihost_fail(h, !strcmp(f->check, "driver") ? -EBUSY : -EPERM,
                             "pci %s: refusing to prepare: %s", rep->dev, f->reason);
            goto out;
        }
    }
out:
    free(rep);
    return r;
}

int pcihost_prepare(struct ferry_pcihost *h, const struct ferry_pci_addr *a, unsigned flags)
{
    char name[FERRY_PCI_ADDR_STRLEN];
    char members[FERRY_PCIHOST_GROUP_MAX][FERRY_PCI_ADDR_STRLEN];
    const struct ferry_pcihost_dev *d;
    size_t n = 0;
    int r;

    pcihost_addr_format(a, name);
    d = pcihost_dev_find(h, a);
    if (!d)
        return pcihost_fail(h, -ENODEV, "pci %s: no such device", name);
    r = refuse_if_in_use(h, a, flags);
    if (r < 0)
        return r;
    r = group_members(h, name, d->iommu_group, members, FERRY_PCIHOST_GROUP_MAX, &n);
    if (r < 0)
        return pcihost_fail(h, r, "pci %s: cannot list IOMMU group %d: %s", name,
                            d->iommu_group, strerror(-r));
    /* A group is viable for VFIO only if every member is on vfio-pci,
     * pci-stub or no driver. */
    if (!(flags & FERRY_PCIHOST_PREPARE_GROUP)) {
        for (size_t i = 1; i < n; i++) {
            char drv[64];
            if (cur_driver(h, members[i], drv, sizeof(drv)) < 0)
                continue;
            if (drv[0] && strcmp(drv, VFIO_DRIVER) && strcmp(drv, "pci-stub"))
                return pcihost_fail(h, -EBUSY, "pci %s: IOMMU group %d is not viable: %s is "
                                    "bound to %s (prepare the whole group with --group, or "
                                    "unbind it)", name, d->iommu_group, members[i], drv);
        }
        n = 1;
    } else {
        for (size_t i = 1; i < n; i++) {
            struct ferry_pci_addr ma;
            if (pcihost_addr_parse(members[i], &ma) == 0 && pcihost_dev_find(h, &ma)) {
                r = refuse_if_in_use(h, &ma, flags);
                if (r < 0)
                    return r;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        r = bind_one(h, members[i]);
        if (r < 0) {
            char msg[sizeof(h->err)];
            snprintf(msg, sizeof(msg), "%s", h->err);
            /* Undo the members done so far so the group is not left half way. */
            for (size_t j = 0; j < i; j++)
                (void)unbind_one(h, members[j]);
            return pcihost_fail(h, r, "%s", msg);
        }
    }
    return 0;
}

int pcihost_release(struct ferry_pcihost *h, const struct ferry_pci_addr *a, unsigned flags)
{
    char name[FERRY_PCI_ADDR_STRLEN];
    char members[FERRY_PCIHOST_GROUP_MAX][FERRY_PCI_ADDR_STRLEN];
    const struct ferry_pcihost_dev *d;
    size_t n = 1;
    int r, first = 0;

    pcihost_addr_format(a, name);
    d = pcihost_dev_find(h, a);
    snprintf(members[0], sizeof(members[0]), "%s", name);
    if (d && d->iommu_group >= 0 && (flags & FERRY_PCIHOST_PREPARE_GROUP)) {
        r = group_members(h, name, d->iommu_group, members, FERRY_PCIHOST_GROUP_MAX, &n);
        if (r < 0)
            n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        char orig[64];
        /* Other members only if ferry prepared them. */
        if (i > 0 && state_read(h, members[i], orig, sizeof(orig)) < 0)
            continue;
        r = unbind_one(h, members[i]);
        if (r < 0 && !first)
            first = r;
    }
    return first;
}
