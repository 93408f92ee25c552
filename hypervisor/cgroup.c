// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Scheduling weight and cap per guest (the Credit2 idea, as a KVM host does
 * it): ferry-hv, whose threads are the guest's vCPUs and its control loop,
 * moves into a cgroup of its own, BASE/ferry-PID-vcpus, with the weight and
 * cap, and its device model into a sibling, BASE/ferry-PID-dm, with the
 * default weight, so the device model's work is not charged to the guest.
 * BASE is ferry-hv's own cgroup in the hierarchy that has the cpu
 * controller: the unified (v2) one when its cpu controller is available
 * (cpu.weight 1..10000, cpu.max "QUOTA PERIOD"), otherwise a v1 cpu
 * hierarchy (cpu.shares = weight * 1024 / 100, cpu.cfs_quota_us with a
 * 100 ms cpu.cfs_period_us).  At exit ferry-hv moves back to BASE and
 * removes both groups.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hypervisor/hv.h"

#define CG_PERIOD_US    100000u

/* One word of a comma-separated list, whole. */
static bool cg_list_has(const char *list, size_t len, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list, *end = list + len;

    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);

        if (n == wl && !memcmp(p, word, wl))
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

/* The path of the process's cgroup in the hierarchy whose /proc/PID/cgroup
 * line has controller list ctl ("" for v2): "/..." into out. */
static int cg_self_path(const char *proc_cgroup, const char *ctl, char *out, size_t out_len)
{
    const char *line = proc_cgroup;

    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;

        if (c2) {
            size_t cl = (size_t)(c2 - c1 - 1);
            bool match = *ctl ? cg_list_has(c1 + 1, cl, ctl) : cl == 0;
            size_t pl = len - (size_t)(c2 + 1 - line);

            if (match && pl > 0 && pl < out_len) {
                memcpy(out, c2 + 1, pl);
                out[pl] = '\0';
                return 0;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

/* mountinfo: the mount point of the hierarchy (fstype cgroup2, or cgroup
 * with ctl among its super options), with its root in root. */
static int cg_mount_find(const char *mountinfo, bool v2, const char *ctl, char *mnt,
                         size_t mnt_len, char *root, size_t root_len)
{
    const char *line = mountinfo;

    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[4096];

        if (len < sizeof(buf)) {
            char *f[6], *save = NULL, *sep, *fstype, *opts;
            unsigned n = 0;

            memcpy(buf, line, len);
            buf[len] = '\0';
            sep = strstr(buf, " - ");
            if (sep) {
                *sep = '\0';
                for (char *t = strtok_r(buf, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
                    f[n++] = t;
                save = NULL;
                fstype = strtok_r(sep + 3, " ", &save);
                (void)strtok_r(NULL, " ", &save);           /* source */
                opts = strtok_r(NULL, " ", &save);
                if (n >= 5 && fstype &&
                    (v2 ? !strcmp(fstype, "cgroup2")
                        : !strcmp(fstype, "cgroup") && opts && cg_list_has(opts, strlen(opts), ctl)) &&
                    strlen(f[4]) < mnt_len && strlen(f[3]) < root_len) {
                    strcpy(mnt, f[4]);
                    strcpy(root, f[3]);
                    return 0;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

int hv_cgroup_base_find(const char *mountinfo, const char *proc_cgroup, bool v2, char *out,
                        size_t out_len)
{
    char mnt[PATH_MAX], root[PATH_MAX], self[PATH_MAX];
    const char *rest;

    if (cg_mount_find(mountinfo, v2, "cpu", mnt, sizeof(mnt), root, sizeof(root)) < 0 ||
        cg_self_path(proc_cgroup, v2 ? "" : "cpu", self, sizeof(self)) < 0)
        return -ENOENT;
    /* the path below the mount's root (a container sees its own root as "/") */
    rest = self;
    if (strcmp(root, "/") != 0) {
        size_t rl = strlen(root);
        if (strncmp(self, root, rl) != 0 || (self[rl] != '/' && self[rl] != '\0'))
            return -ENOENT;
        rest = self + rl;
    }
    if (!strcmp(rest, "/"))
        rest = "";
    if ((size_t)snprintf(out, out_len, "%s%s", mnt, rest) >= out_len)
        return -ENAMETOOLONG;
    return 0;
}

static char *cg_read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0, len = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = len + 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Write text to DIR/FILE; -errno. */
static int cg_write(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    int fd, rc = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (write(fd, text, strlen(text)) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static bool cg_word_in_file(const char *dir, const char *file, const char *word)
{
    char path[PATH_MAX];
    char *text;
    bool found = false;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return false;
    text = cg_read_text(path);
    if (!text)
        return false;
    for (char *save = NULL, *t = strtok_r(text, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        if (!strcmp(t, word))
            found = true;
    free(text);
    return found;
}

static int cg_mkdir(const char *path, bool *made, char *why, size_t why_len)
{
    if (mkdir(path, 0755) < 0) {
        int rc = -errno;
        snprintf(why, why_len, "cannot create the cgroup %s: %s", path, strerror(errno));
        return rc;
    }
    *made = true;
    return 0;
}

int hv_cgroup_setup(struct hv_cgroup *cg, unsigned weight, unsigned cap, char *why,
                    size_t why_len)
{
    char *mountinfo = cg_read_text("/proc/self/mountinfo");
    char *self = cg_read_text("/proc/self/cgroup");
    char text[64];
    int rc;

    memset(cg, 0, sizeof(*cg));
    if (!mountinfo || !self) {
        snprintf(why, why_len, "cannot read /proc/self/mountinfo and /proc/self/cgroup");
        free(mountinfo);
        free(self);
        return -ENOENT;
    }
    /* v2 when the unified hierarchy offers the cpu controller to our cgroup */
    if (hv_cgroup_base_find(mountinfo, self, true, cg->base, sizeof(cg->base)) == 0 &&
        cg_word_in_file(cg->base, "cgroup.controllers", "cpu"))
        cg->version = 2;
    else if (hv_cgroup_base_find(mountinfo, self, false, cg->base, sizeof(cg->base)) == 0)
        cg->version = 1;
    free(mountinfo);
    free(self);
    if (!cg->version) {
        snprintf(why, why_len, "no cgroup hierarchy with the cpu controller: neither cgroup v2 "
                 "with cpu in cgroup.controllers nor a v1 cpu hierarchy is mounted");
        return -ENOENT;
    }
    if (cg->version == 2 && !cg_word_in_file(cg->base, "cgroup.subtree_control", "cpu")) {
        rc = cg_write(cg->base, "cgroup.subtree_control", "+cpu");
        if (rc < 0) {
            snprintf(why, why_len, "cannot enable the cpu controller for the children of %s "
                     "(cgroup.subtree_control): %s%s", cg->base, strerror(-rc),
                     rc == -EBUSY ? " (processes live in that cgroup: start ferry-hv in a "
                                    "cgroup of its own with cpu delegated)" : "");
            return rc;
        }
    }
    if (strlen(cg->base) > sizeof(cg->base) - 64) {
        snprintf(why, why_len, "the cgroup path %s is too long", cg->base);
        return -ENAMETOOLONG;
    }
    if (snprintf(cg->guest, sizeof(cg->guest), "%.*s/ferry-%d-vcpus", PATH_MAX - 64, cg->base,
                 (int)getpid()) < 0 ||
        snprintf(cg->dm, sizeof(cg->dm), "%.*s/ferry-%d-dm", PATH_MAX - 64, cg->base,
                 (int)getpid()) < 0)
        return -EINVAL;
    rc = cg_mkdir(cg->guest, &cg->guest_made, why, why_len);
    if (!rc)
        rc = cg_mkdir(cg->dm, &cg->dm_made, why, why_len);
    if (rc)
        goto fail;
    if (weight) {
        const char *file = cg->version == 2 ? "cpu.weight" : "cpu.shares";
        unsigned long v = cg->version == 2 ? weight : (unsigned long)weight * 1024 / 100;

        if (cg->version == 1 && v < 2)
            v = 2;
        snprintf(text, sizeof(text), "%lu", v);
        rc = cg_write(cg->guest, file, text);
        if (rc) {
            snprintf(why, why_len, "%s/%s = %s: %s", cg->guest, file, text, strerror(-rc));
            goto fail;
        }
    }
    if (cap) {
        unsigned long quota = (unsigned long)cap * (CG_PERIOD_US / 100);

        if (cg->version == 2) {
            snprintf(text, sizeof(text), "%lu %u", quota, CG_PERIOD_US);
            rc = cg_write(cg->guest, "cpu.max", text);
        } else {
            snprintf(text, sizeof(text), "%u", CG_PERIOD_US);
            rc = cg_write(cg->guest, "cpu.cfs_period_us", text);
            if (!rc) {
                snprintf(text, sizeof(text), "%lu", quota);
                rc = cg_write(cg->guest, "cpu.cfs_quota_us", text);
            }
        }
        if (rc) {
            snprintf(why, why_len, "%s: cap %u%% (%s): %s", cg->guest, cap, text, strerror(-rc));
            goto fail;
        }
    }
    snprintf(text, sizeof(text), "%d", (int)getpid());
    rc = cg_write(cg->guest, "cgroup.procs", text);
    if (rc) {
        snprintf(why, why_len, "cannot move ferry-hv into %s: %s", cg->guest, strerror(-rc));
        goto fail;
    }
    cg->moved = true;
    return 0;
fail:
    hv_cgroup_cleanup(cg);
    return rc;
}

int hv_cgroup_attach_dm(struct hv_cgroup *cg, pid_t pid, char *why, size_t why_len)
{
    char text[32];
    int rc;

    if (!cg->dm_made)
        return 0;
    snprintf(text, sizeof(text), "%d", (int)pid);
    rc = cg_write(cg->dm, "cgroup.procs", text);
    if (rc)
        snprintf(why, why_len, "cannot move the device model (pid %d) into %s: %s", (int)pid,
                 cg->dm, strerror(-rc));
    return rc;
}

int hv_cgroup_cleanup(struct hv_cgroup *cg)
{
    char text[32];
    int rc = 0;

    if (cg->moved) {
        snprintf(text, sizeof(text), "%d", (int)getpid());
        if (cg_write(cg->base, "cgroup.procs", text) == 0)
            cg->moved = false;
        else
            rc = -EBUSY;
    }
    if (cg->dm_made && rmdir(cg->dm) == 0)
        cg->dm_made = false;
    if (cg->guest_made && !cg->moved && rmdir(cg->guest) == 0)
        cg->guest_made = false;
    if (cg->dm_made || cg->guest_made)
        rc = -EBUSY;
    return rc;
}
