/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What cli/usb-libvirt.c (ferry usb attach|detach|list DOMAIN) and
 * cli/libvirt-hook.c (ferry libvirt-hook, and the domain-side helpers both
 * use) share.  Compiled only with libvirt (FERRY_HAVE_LIBVIRT).
 */
#ifndef FERRY_CLI_LIBVIRT_INTERNAL_H
#define FERRY_CLI_LIBVIRT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <glib.h>

#include "cli/usb-ctl.h"
#include "usb/ferry-usb.h"

/* QEMU's chardev retries every this many seconds while ferry-dm does not answer */
#define FERRY_LIBVIRT_RECONNECT_S 1
/* a ferry-dm started here: its control socket answers within */
#define FERRY_LIBVIRT_DM_START_MS 10000

/* A name Ferry can make a run folder for (no '/', at most 63 characters). */
bool usb_libvirt_domain_name_ok(const char *name);
/* The domain's run folder, ${FERRY_RUN_DIR:-/run/ferry}/libvirt/NAME; g_free it. */
char *usb_libvirt_domain_dir(const char *name);
/* Who the domain's QEMU runs as (from its XML's DAC seclabel, qemu.conf, the
 * default), and why, into why. */
void usb_libvirt_qemu_owner(const char *xml, uid_t *uid, gid_t *gid, char *why, size_t len);
/* The domain's ferry-dm, started if dir/dm.sock does not answer; connected to. */
int usb_libvirt_dm_ensure(const char *name, const char *dir, const char *who);
int usb_libvirt_dm_connect(const char *dir, struct ctl *c);
/* "ua-ferry-" and the identity in libvirt's alias alphabet. */
void usb_libvirt_alias_of(const char *ident, char *buf, size_t len);
/* Serve device on dir/ALIAS.sock for QEMU (owner uid:gid) through ferry-dm. */
int usb_libvirt_serve_device(struct ctl *c, const char *dir, const char *alias,
                             const char *device, const struct ferry_usb_devinfo *d, uid_t uid,
                             gid_t gid, bool pass_fd, const char *who);
/* The <redirdev> that connects to dir/ALIAS.sock; g_free it. */
char *usb_libvirt_redirdev_xml(const char *dir, const char *alias);
bool usb_libvirt_xml_has_alias(const char *xml, const char *alias);
/* alias -> spec of Ferry's <device alias=.. spec=../> entries in text. */
GHashTable *usb_libvirt_meta_parse(const char *text);
/* The host's device for a spec: 0 with *d, or -errno after printing why. */
/* The device-access policy's verdict for domain: 0, or -errno after printing
 * the refusal (the rule and its file:line). */
int usb_libvirt_policy_check(const char *domain, const char *device,
                             const struct ferry_usb_devinfo *d, const char *who);
/* cli/libvirt-follow.c: the broker that passes a replugged device's new fd
 * to a confined ferry-dm (`ferry libvirt-follow`), started for alias in
 * dir (replacing an earlier one), and stopped. */
int usb_libvirt_follow_start(const char *domain, const char *dir, const char *alias,
                             const char *ident, const char *who);
void usb_libvirt_follow_stop(const char *dir, const char *alias);
int usb_libvirt_find_host_device(const char *device, struct ferry_usb_devinfo *d,
                                 const char *who);

#endif
