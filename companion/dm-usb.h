/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's USB side: the USB service (usb/ferry-usb.h) on ferry-dm's
 * event loop, serving host devices to the QEMU guest whose QMP socket is
 * given (--qmp PATH or qmp= in the config's [usb] group).
 *
 * Everything that needs a socket or a device node happens in companion_usb_start,
 * before confinement: the QMP connection is opened and kept; the devices the
 * [usb] group names are opened (confined) or found (not confined).  Later,
 * each usbredir channel is a socketpair whose other end QEMU gets with
 * getfd + chardev-add.
 *
 * Control commands (ferry-dm's control socket):
 *   usb-attach {"device": SPEC}      ferry-dm opens it (not when confined)
 *   usb-attach {"device": SPEC, "fd": true} with the usbfs fd passed by
 *                                    SCM_RIGHTS in the same message (the
 *                                    broker: `ferry usb attach` as root)
 *   usb-detach {"device": SPEC}
 *   usb-unplugged {"device": SPEC}   the broker saw it go (confined ferry-dm
 *                                    sees no hotplug): the guest is told
 *   query-usb  -> {"guest": QMP, "confined": bool, "devices": [...]}
 *
 * Replug: not confined, libusb's hotplug sees the device come back and it
 * is reattached without any command.  Confined, ferry-dm sees no hotplug
 * and cannot open the new node: the broker (`ferry usb attach --follow`,
 * root, which stays) watches the host, says usb-unplugged when the device
 * goes and passes the new fd when it is back; the existing assignment takes
 * it.  (`ferry usb attach GUEST DEVICE` again does the second half by hand.)
 */
#ifndef FERRY_DM_USB_H
#define FERRY_DM_USB_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "common/json.h"

struct event_base;
struct ferry_syscall_list;
struct ferry_usb_qmp;
struct companion_usb;

/* USB is wanted: a QMP socket given, or a [usb] group in the config file. */
bool companion_usb_wanted(const char *qmp, const char *config);
/* The syscalls it needs beyond a confined ferry-dm's base list, loaded when
 * it is wanted (usbredir-syscalls.c). */
extern const struct ferry_syscall_list companion_syscalls_usbredir;

/* qmp= of the config's [usb] group (*qmp NULL if none; caller frees).  The
 * group is read by libferry-usb (usb_config_load), here as in
 * companion_usb_start. */
int companion_usb_config_qmp(const char *config, char **qmp);

/* Start it (nothing when not wanted: *out = NULL).  d: ferry-dm's QMP
 * connection to the QEMU at qmp (dm-qmp.h), used but not owned; the waits
 * for DEVICE_DELETED after a usb-redir's device_del go through its
 * asynchronous waiters (common/qmp-wait.h).  NULL: the service opens and watches its own (and
 * waits blocking).  on_gone runs when QEMU's QMP
 * connection ends (companion mode: ferry-dm then exits).  devices: more
 * devices to attach, as the [usb] group's devices= (ferry-dm --usb), or
 * NULL; policy: rules instead of the group's policy= (--usb-policy), or
 * NULL.  0 or -errno, the reason printed to stderr. */
struct companion_qmp;
struct ferry_dm_control_req;
/* The guest's name for the device-access policy: name (--name), else the
 * folder of the control socket (/run/ferry/NAME/dm.sock), else fallback
 * (may be NULL); g_free. */
char *companion_guest_name(const char *name, const char *control, const char *fallback);
/* name: the guest's name for the device-access policy (policy/policy.h);
 * NULL: the folder of control (/run/ferry/NAME/dm.sock), else qmp.  The
 * policy file is read here ($FERRY_POLICY, /etc/ferry/policy.conf): a
 * broken one is an error. */
int companion_usb_start(struct event_base *base, struct companion_qmp *d, const char *qmp,
                 const char *config, const char *const *devices, const char *policy,
                 const char *name, const char *control, bool confined, bool takeover,
                 void (*on_gone)(void *opaque), void *opaque, struct companion_usb **out);
/* libvirt mode (ferry-dm --libvirt DOMAIN): no QMP, libvirt owns QEMU's
 * monitor.  The `ferry` CLI (root) makes a listening unix socket per device
 * with the owner the domain's QEMU runs as, passes it here and then adds a
 * <redirdev type='unix'> that connects to it through libvirt
 * (docs/libvirt.md).  Control commands in this mode:
 *   usb-listen {"alias": A}  with the listening socket passed (SCM_RIGHTS)
 *   usb-attach {"device": SPEC, "alias": A[, "fd": true]}  serve the device
 *              on A's socket (with "fd": the broker's usbfs fd in the message)
 *   usb-which  {"device": SPEC} -> {"alias": A, "device": SPEC}
 *   usb-detach {"alias": A}  the device back to its host driver
 *   query-usb  -> {"domain": D, "served": [{"alias", "device"}], "devices": [...]}
 * The config's [usb] policy= applies. */
int companion_usb_start_libvirt(struct event_base *base, const char *domain, const char *config,
                                bool confined, struct companion_usb **out);
/* A control command (usb-attach, usb-detach, usb-unplugged, query-usb), or
 * NULL when it is not one of these.  usb-detach's reply is deferred
 * (control.h) until QEMU has let go of the usb-redir (DEVICE_DELETED,
 * chardev-remove); the host has the device back at once. */
char *companion_usb_command(struct companion_usb *u, struct ferry_dm_control_req *req, const char *cmd,
                     json_t *args, json_t *id, int *fd);
/* ferry-dm's QMP connection (the one passed as q) has ended. */
/* A new connection d (used, not owned) to a restarted QEMU at the same QMP
 * socket: the devices are plugged into it again (usb_service_guest_reconnect).
 * 0 or -errno, logged. */
int companion_usb_reconnect(struct companion_usb *u, struct companion_qmp *d);
void companion_usb_qmp_lost(struct companion_usb *u);
/* ferry-dm's replace (dm-replace.h, docs/usb.md): quiesce every channel
 * (at most 5 s) and append the service's state and its channels' fds
 * (socket, usbfs fd each); resume on a failed handover; the successor's
 * side (started with takeover: no [usb] device attached by itself). */
int companion_usb_handover_save(struct companion_usb *u, GByteArray *state, int *fds,
                                unsigned max, unsigned *n, char *why, size_t len);
void companion_usb_handover_resume(struct companion_usb *u);
int companion_usb_handover_restore(struct companion_usb *u, const uint8_t *state, size_t len,
                                   const int *fds, unsigned n, char *why, size_t whylen);
/* libvirt mode: the aliases served or listening, ", "-separated ("" for
 * none; g_free), or NULL when u is not a libvirt domain's. */
char *companion_usb_libvirt_aliases(struct companion_usb *u);
void companion_usb_free(struct companion_usb *u);

#endif
