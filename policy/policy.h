/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libferry-policy: which guest may get which host device.
 *
 * One policy file (GKeyFile; path: the caller's, else $FERRY_POLICY, else
 * /etc/ferry/policy.conf; a built-in default when it does not exist), read
 * by every place that grants a device (the broker `ferry usb attach`,
 * `ferry pci prepare|attach`, ferry-dm).  See docs/policy.md.
 *
 *   [policy]
 *   default = allow                 (or deny: when no rule matches)
 *   [groups]
 *   desktops = vm1;vm2;desk-*
 *   [rule webcam]                   (rules apply in file order, first match wins)
 *   guests = @desktops;lab-*
 *   usb = 0x0e,-1,-1,-1,1           (usbredir filter syntax, its allow bit decides)
 *   [rule nic]
 *   guests = a
 *   pci-id = 8086:10d3              (and/or pci=BDF, pci-class=0x0200, iommu-group=7)
 *   action = allow
 *   force = true                    (overrides the host protection, logged)
 *
 * Host protection (built in, found by discovery under configurable sysfs and
 * proc roots): PCI devices under a mounted filesystem's block device, under a
 * network interface with the default route or a host address, the boot VGA
 * device, their bridges, anything in an IOMMU group with those; USB hubs, HID
 * keyboards and mice, the USB device under a mounted filesystem or such an
 * interface.  Only a matching allow rule with force=true gives those away.
 *
 * Every verdict names the rule that made it and its file:line, and goes to
 * ops.decided (programs log it with structured fields, common/log-glib.h).
 */
#ifndef FERRY_POLICY_H
#define FERRY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ferry-log.h"
#include "policy/owner.h"

#define FERRY_POLICY_FILE_DEFAULT "/etc/ferry/policy.conf"
#define FERRY_POLICY_RULES_MAX    1024
#define FERRY_POLICY_TEXT_MAX     512

struct ferry_usb_devinfo;
struct ferry_policy;

struct ferry_policy_verdict {
    bool allowed;
    bool forced;            /* a force rule overrode the host protection */
    char guest[FERRY_POLICY_GUEST_MAX];
    char device[64];        /* "pci:0000:03:00.0", "usb:046d:c52b 1-2" */
    char rule[256];         /* "rule 'nic' (/etc/ferry/policy.conf:12)", "built-in ..." */
    char protection[256];   /* why the host needs the device; "" if it does not */
    char reason[FERRY_POLICY_TEXT_MAX];   /* the whole verdict, one line */
};

struct ferry_policy_ops {
    ferry_log_fn log;
    void *log_opaque;
    /* Called with every verdict (optional). */
    void (*decided)(void *opaque, const struct ferry_policy_verdict *v);
    void *decided_opaque;
};

struct ferry_policy_config {
    const char *file;        /* NULL: $FERRY_POLICY, else FERRY_POLICY_FILE_DEFAULT */
    const char *sysfs_root;  /* NULL: $FERRY_SYSFS_ROOT, else "/sys" */
    const char *proc_root;   /* NULL: $FERRY_PROC_ROOT, else "/proc" */
    bool no_discovery;       /* no host protection by discovery (a confined
                                process: its broker discovered) */
};

/* A missing file gives the built-in default; a file that exists but does
 * not parse is an error (err: "FILE:LINE: what is wrong"), never a default. */
FERRY_POLICY_API FERRY_MUST_CHECK int
policy_load(const struct ferry_policy_config *cfg, const struct ferry_policy_ops *ops,
            struct ferry_policy **out, char *err, size_t errlen);
FERRY_POLICY_API void policy_free(struct ferry_policy *p);
/* The file the policy came from, or NULL for the built-in default. */
FERRY_POLICY_API const char *policy_file(const struct ferry_policy *p);

/* 0 allowed, -EPERM refused; v filled either way and passed to ops.decided. */
FERRY_POLICY_API int policy_check_usb(struct ferry_policy *p, const char *guest,
                                      const struct ferry_usb_devinfo *d,
                                      struct ferry_policy_verdict *v);
/* bdf "dddd:bb:dd.f"; vendor, device, class and IOMMU group read from sysfs.
 * -ENODEV (v.reason says so) when sysfs has no such device. */
FERRY_POLICY_API int policy_check_pci(struct ferry_policy *p, const char *guest,
                                      const char *bdf, struct ferry_policy_verdict *v);

/* What the policy is, as text (rules with file:line, the host protection
 * found); g_free it.  json: the same as a JSON object. */
FERRY_POLICY_API char *policy_show(const struct ferry_policy *p, bool json);
/* The verdict as a JSON object text (g_free). */
FERRY_POLICY_API char *policy_verdict_json(const struct ferry_policy_verdict *v);

/* Why the host needs a device ("" if it does not): kind "pci" with a BDF,
 * "usb" with a port path. */
FERRY_POLICY_API const char *policy_protection(const struct ferry_policy *p, const char *kind,
                                               const char *id);

#endif
