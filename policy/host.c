// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the host stands on, found by discovery over sysfs and proc (both
 * roots configurable, so the tests use recorded trees):
 *  - every mounted filesystem (proc/self/mountinfo) -> its block device
 *    (sys/dev/block/MAJ:MIN, or the /dev/NAME source of a filesystem on an
 *    anonymous device such as btrfs) and the devices under a device-mapper
 *    or md one (slaves/) -> the PCI functions and the USB device on the
 *    sysfs path of each;
 *  - every network interface with the default route (IPv4 or IPv6), a route
 *    of the main table or a global IPv6 address (proc/net/route,
 *    ipv6_route, if_inet6; on the live system also every interface with an
 *    address, getifaddrs) -> the same;
 *  - the boot VGA device (boot_vga);
 *  - every PCI function sharing an IOMMU group with one of those.
 * A device's bridges are on its path and protected with it.
 */
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-internal.h"

#define HOST_SLAVES_DEPTH 8     /* dm on md on dm ...: bounded */

void policy_host_init(struct policy_host *h)
{
    h->pci = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    h->usb = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    h->notes = g_ptr_array_new_with_free_func(g_free);
}

void policy_host_clear(struct policy_host *h)
{
    if (h->pci)
        g_hash_table_destroy(h->pci);
    if (h->usb)
        g_hash_table_destroy(h->usb);
    if (h->notes)
        g_ptr_array_free(h->notes, TRUE);
    memset(h, 0, sizeof(*h));
}

char *policy_sysfs_read(const char *sysfs, const char *fmt, ...)
{
    char *rel, *path, *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    rel = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    path = g_build_filename(sysfs, rel, NULL);
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        char *nl = strchr(text, '\n');
        if (nl)
            *nl = '\0';
        g_strstrip(text);
    }
    g_free(path);
    g_free(rel);
    return text;
}

int policy_pci_group(const char *sysfs, const char *bdf)
{
    char *path = g_strdup_printf("%s/bus/pci/devices/%s/iommu_group", sysfs, bdf);
    char *target = g_file_read_link(path, NULL);
    int group = -1;

    if (target) {
        const char *base = strrchr(target, '/');
        char *end;
        long v = strtol(base ? base + 1 : target, &end, 10);
        if (*end == '\0' && v >= 0 && v < INT_MAX)
            group = (int)v;
    }
    g_free(target);
    g_free(path);
    return group;
}

static bool is_bdf(const char *s)
{
    unsigned d, b, dv, f;
    char tail;

    return strlen(s) == 12 && sscanf(s, "%4x:%2x:%2x.%1x%c", &d, &b, &dv, &f, &tail) == 4 &&
           s[4] == ':' && s[7] == ':' && s[10] == '.' && f < 8;
}

/* A USB device's sysfs name: "1-2" or "1-2.3.4" (not "usb1", not an
 * interface "1-2:1.0"). */
static bool is_usb_port(const char *s)
{
    const char *p = s;

    if (!g_ascii_isdigit(*p))
        return false;
    while (g_ascii_isdigit(*p))
        p++;
    if (*p++ != '-' || !g_ascii_isdigit(*p))
        return false;
    for (; *p; p++)
        if (!g_ascii_isdigit(*p) && *p != '.')
            return false;
    return p[-1] != '.';
}

static void protect(GHashTable *t, const char *id, const char *why)
{
    char *old = g_hash_table_lookup(t, id);

    /* the root filesystem is the reason worth reading first */
    if (old && !strstr(why, "mounted on / "))
        return;
    g_hash_table_replace(t, g_strdup(id), g_strdup(why));
}

/* Protect the PCI functions and USB devices on the resolved sysfs path of
 * link (relative to sysfs).  false if the link does not resolve. */
static bool protect_path(struct policy_host *h, const char *sysfs, const char *link,
                         const char *why)
{
    char *path = g_build_filename(sysfs, link, NULL);
    char *real = realpath(path, NULL);
    char **parts;

    g_free(path);
    if (!real)
        return false;
    parts = g_strsplit(real, "/", -1);
    for (char **p = parts; *p; p++) {
        if (is_bdf(*p))
            protect(h->pci, *p, why);
        else if (is_usb_port(*p))
            protect(h->usb, *p, why);
    }
    g_strfreev(parts);
    free(real);
    return true;
}

/* A block device (its name under class/block) and what it is built on. */
static void protect_block(struct policy_host *h, const char *sysfs, const char *link,
                          const char *why, int depth)
{
    char *slaves, *path;
    GDir *d;
    const char *e;

    if (depth > HOST_SLAVES_DEPTH || !protect_path(h, sysfs, link, why))
        return;
    path = g_build_filename(sysfs, link, NULL);
    slaves = g_build_filename(path, "slaves", NULL);
    d = g_dir_open(slaves, 0, NULL);
    if (!d) {
        /* a partition: its disk's slaves, if any */
        char *parent = g_build_filename(path, "..", "slaves", NULL);
        d = g_dir_open(parent, 0, NULL);
        g_free(parent);
    }
    while (d && (e = g_dir_read_name(d))) {
        char *sub = g_build_filename("class/block", e, NULL);
        protect_block(h, sysfs, sub, why, depth + 1);
        g_free(sub);
    }
    if (d)
        g_dir_close(d);
    g_free(slaves);
    g_free(path);
}

/* mountinfo's escapes (\040 for a space) undone, in place. */
static void unescape_octal(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static void discover_mounts(struct policy_host *h, const char *sysfs, const char *proc)
{
    char *file = g_build_filename(proc, "self", "mountinfo", NULL), *text = NULL;
    char **lines;

    if (!g_file_get_contents(file, &text, NULL, NULL)) {
        g_ptr_array_add(h->notes, g_strdup_printf("cannot read %s: mounted filesystems not "
                                                  "protected by discovery", file));
        g_free(file);
        return;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char **f = g_strsplit(*l, " ", -1);
        guint n = g_strv_length(f), dash = 0;
        unsigned maj, min;

        for (guint i = 6; i < n; i++)
            if (!strcmp(f[i], "-")) {
                dash = i;
                break;
            }
        if (n >= 5 && dash && dash + 2 < n && sscanf(f[2], "%u:%u", &maj, &min) == 2) {
            const char *src = f[dash + 2];
            char why[400], link[64];

            unescape_octal(f[4]);
            snprintf(why, sizeof(why), "backs the filesystem mounted on %s (%s, %u:%u)", f[4],
                     src, maj, min);
            if (maj != 0) {
                snprintf(link, sizeof(link), "dev/block/%u:%u", maj, min);
                protect_block(h, sysfs, link, why, 0);
            } else if (g_str_has_prefix(src, "/dev/") && !strchr(src + 5, '/')) {
                /* btrfs and others: an anonymous device; the source names it */
                char *cls = g_build_filename("class/block", src + 5, NULL);
                protect_block(h, sysfs, cls, why, 0);
                g_free(cls);
            }
        }
        g_strfreev(f);
    }
    g_strfreev(lines);
    g_free(text);
    g_free(file);
}

/* An interface and the ones under it (a bridge's ports, a bond's slaves,
 * a VLAN's parent: lower_* links), bounded. */
static void protect_iface_depth(struct policy_host *h, const char *sysfs, const char *iface,
                                const char *why, int depth)
{
    char *link, *dir;
    GDir *d;
    const char *e;

    if (depth > HOST_SLAVES_DEPTH || !strcmp(iface, "lo") || strchr(iface, '/') ||
        iface[0] == '.')
        return;
    link = g_build_filename("class/net", iface, NULL);
    protect_path(h, sysfs, link, why);
    dir = g_build_filename(sysfs, link, NULL);
    d = g_dir_open(dir, 0, NULL);
    while (d && (e = g_dir_read_name(d)))
        if (g_str_has_prefix(e, "lower_"))
            protect_iface_depth(h, sysfs, e + 6, why, depth + 1);
    if (d)
        g_dir_close(d);
    g_free(dir);
    g_free(link);
}

static void protect_iface(struct policy_host *h, const char *sysfs, const char *iface,
                          const char *what)
{
    char why[300];

    snprintf(why, sizeof(why), "is the network interface %s, %s", iface, what);
    protect_iface_depth(h, sysfs, iface, why, 0);
}

static void discover_net(struct policy_host *h, const char *sysfs, const char *proc,
                         bool live)
{
    char *file, *text = NULL;

    file = g_build_filename(proc, "net", "route", NULL);
    if (g_file_get_contents(file, &text, NULL, NULL)) {
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l && l != lines + 100000; l++) {
            char iface[IFNAMSIZ + 1];
            unsigned long dest, gw, flags, refcnt, use, metric, mask;

            if (l == lines ||
                sscanf(*l, "%16s %lx %lx %lx %lu %lu %lu %lx", iface, &dest, &gw, &flags,
                       &refcnt, &use, &metric, &mask) != 8)
                continue;
            protect_iface(h, sysfs, iface, dest == 0 && mask == 0 ?
                          "which carries the default route" :
                          "which carries a route of the host (an address it is reached on)");
        }
        g_strfreev(lines);
        g_free(text);
    } else {
        g_ptr_array_add(h->notes, g_strdup_printf("cannot read %s", file));
    }
    g_free(file);
    file = g_build_filename(proc, "net", "ipv6_route", NULL);
    if (g_file_get_contents(file, &text, NULL, NULL)) {
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
            char dest[33], iface[IFNAMSIZ + 1];
            unsigned plen;

            if (sscanf(*l, "%32s %x %*s %*s %*s %*s %*s %*s %*s %16s", dest, &plen, iface) != 3)
                continue;
            if (plen == 0 && strspn(dest, "0") == 32)
                protect_iface(h, sysfs, iface, "which carries the default IPv6 route");
        }
        g_strfreev(lines);
        g_free(text);
    }
    g_free(file);
    file = g_build_filename(proc, "net", "if_inet6", NULL);
    if (g_file_get_contents(file, &text, NULL, NULL)) {
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
            char addr[33], iface[IFNAMSIZ + 1];
            unsigned idx, plen, scope, fl;

            if (sscanf(*l, "%32s %x %x %x %x %16s", addr, &idx, &plen, &scope, &fl, iface) == 6 &&
                scope == 0)
                protect_iface(h, sysfs, iface, "which has a global IPv6 address of the host");
        }
        g_strfreev(lines);
        g_free(text);
    }
    g_free(file);
    if (live) {
        struct ifaddrs *ifa = NULL;

        if (getifaddrs(&ifa) == 0) {
            for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_name && !(i->ifa_flags & IFF_LOOPBACK) &&
                    (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
                    protect_iface(h, sysfs, i->ifa_name, "which has an address of the host");
            freeifaddrs(ifa);
        }
    }
}

static void discover_vga(struct policy_host *h, const char *sysfs)
{
    char *dir = g_build_filename(sysfs, "bus", "pci", "devices", NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *e;

    while (d && (e = g_dir_read_name(d))) {
        char *v = policy_sysfs_read(sysfs, "bus/pci/devices/%s/boot_vga", e);
        if (v && !strcmp(v, "1")) {
            char *link = g_build_filename("bus/pci/devices", e, NULL);
            if (!protect_path(h, sysfs, link, "is the boot VGA device (the host's console)"))
                protect(h->pci, e, "is the boot VGA device (the host's console)");
            g_free(link);
        }
        g_free(v);
    }
    if (d)
        g_dir_close(d);
    g_free(dir);
}

/* Everything in an IOMMU group with a protected function goes with it. */
static void discover_groups(struct policy_host *h, const char *sysfs)
{
    GHashTableIter it;
    gpointer k, v;
    GPtrArray *add = g_ptr_array_new_with_free_func(g_free);

    g_hash_table_iter_init(&it, h->pci);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        int group = policy_pci_group(sysfs, k);
        char *dir;
        GDir *d;
        const char *e;

        if (group < 0)
            continue;
        dir = g_strdup_printf("%s/kernel/iommu_groups/%d/devices", sysfs, group);
        d = g_dir_open(dir, 0, NULL);
        while (d && (e = g_dir_read_name(d))) {
            if (!is_bdf(e) || g_hash_table_contains(h->pci, e))
                continue;
            g_ptr_array_add(add, g_strdup(e));
            g_ptr_array_add(add, g_strdup_printf("shares IOMMU group %d with %s, which %s", group,
                                                 (const char *)k, (const char *)v));
        }
        if (d)
            g_dir_close(d);
        g_free(dir);
    }
    for (guint i = 0; i + 1 < add->len; i += 2)
        if (!g_hash_table_contains(h->pci, add->pdata[i]))
            g_hash_table_insert(h->pci, g_strdup(add->pdata[i]), g_strdup(add->pdata[i + 1]));
    g_ptr_array_free(add, TRUE);
}

void policy_host_discover(struct policy_host *h, const char *sysfs, const char *proc)
{
    discover_mounts(h, sysfs, proc);
    discover_net(h, sysfs, proc, !strcmp(proc, "/proc") && !strcmp(sysfs, "/sys"));
    discover_vga(h, sysfs);
    discover_groups(h, sysfs);
}
