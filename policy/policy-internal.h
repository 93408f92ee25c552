/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libferry-policy's files share this: the loaded policy and its rules
 * (policy.c), host protection found by discovery (host.c), and what
 * `ferry policy show` renders them with (show.c). */
#ifndef FERRY_POLICY_INTERNAL_H
#define FERRY_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "policy/policy.h"

/* kind "pci" (id a BDF) or "usb" (id a port path) -> why (g_strdup'd). */
struct policy_host {
    GHashTable *pci;
    GHashTable *usb;
    GPtrArray *notes;       /* what discovery could not read (char *) */
};

void policy_host_init(struct policy_host *h);
void policy_host_clear(struct policy_host *h);
/* Everything the host stands on, under sysfs and proc. */
void policy_host_discover(struct policy_host *h, const char *sysfs, const char *proc);
/* A sysfs file's first line (trimmed), or NULL. */
char *policy_sysfs_read(const char *sysfs, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The IOMMU group of a PCI device, -1 if none. */
int policy_pci_group(const char *sysfs, const char *bdf);

enum policy_rule_kind { POLICY_RULE_USB, POLICY_RULE_PCI };

struct policy_rule {
    char *name;
    int line;
    enum policy_rule_kind kind;
    char **guests;              /* globs and @groups */
    struct ferry_usb_policy *usb;
    char *usb_text;
    char **pci;                 /* BDF globs, normalised */
    char **pci_id;              /* "vvvv:dddd" globs, lower case */
    char **pci_class;           /* "0x02", "0x0200", "0x020000" */
    int *groups;
    gsize n_groups;
    bool has_action;
    bool allow;
    bool force;
};

struct ferry_policy {
    struct ferry_policy_ops ops;
    char *file;                 /* NULL: built in */
    char *sysfs, *proc;
    bool default_allow;
    int default_line;           /* 0: not in the file */
    GHashTable *groups;         /* name -> char ** */
    GPtrArray *rules;           /* struct policy_rule * */
    struct policy_host host;
    bool discovered;
};

/* Where a rule is ("rule 'NAME' (FILE:LINE)"), and what decides when none
 * matches (policy.c). */
void policy_rule_where(const struct ferry_policy *p, const struct policy_rule *r, char *buf,
                       size_t len);
void policy_default_where(const struct ferry_policy *p, char *buf, size_t len);

#endif
