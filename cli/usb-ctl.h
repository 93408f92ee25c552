/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `ferry usb` side of ferry-dm's control socket (cli/cmd-usb.c), also
 * used by the libvirt path (cli/usb-libvirt.c, cli/libvirt-hook.c).
 */
#ifndef FERRY_CLI_USB_CTL_H
#define FERRY_CLI_USB_CTL_H

#include <stdbool.h>

#include <glib.h>
#include "common/json.h"

/* A connection to ferry-dm's control socket: connect, read the greeting. */
struct ctl {
    int fd;
    GString *in;
    char *path;
};

/* guest: a control socket's path, or a name under ${FERRY_RUN_DIR:-/run/ferry}.
 * 0, or -errno after printing why (ctl_close in both cases). */
int ctl_open(const char *guest, struct ctl *c);
void ctl_close(struct ctl *c);
/* Run cmd (args: a JSON object text or NULL), passing fd if >= 0.  0 with
 * *ret (the "return" member; may be NULL), or -1 after printing the error. */
int ctl_cmd(struct ctl *c, const char *cmd, const char *args, int fd, json_t **ret);
/* The same with nfds fds (at most CTL_FDS_MAX), in that order: ferry-dm's
 * handler takes them oldest first (a device's fd, then its claim's lock). */
#define CTL_FDS_MAX 4
int ctl_cmd_fds(struct ctl *c, const char *cmd, const char *args, const int *fds,
                unsigned nfds, json_t **ret);
/* {"k1": v1[, "k2": v2][, "fd": true]} as text for ctl_cmd's args (g_free). */
char *ctl_json_args(const char *k1, const char *v1, const char *k2, const char *v2,
                    bool with_fd);
/* The base of ferry's run folders: ${FERRY_RUN_DIR:-/run/ferry}. */
const char *usb_run_dir(void);

#ifdef FERRY_HAVE_LIBVIRT
/* cli/usb-libvirt.c: DOMAIN names a libvirt domain (see docs/libvirt.md). */
bool usb_libvirt_wanted(const char *guest, const char *uri);
int usb_libvirt_attach(const char *domain, const char *uri, const char *device,
                       bool persistent, bool pass_fd);
int usb_libvirt_detach(const char *domain, const char *uri, const char *device,
                       bool persistent);
int usb_libvirt_list(const char *domain, const char *uri, bool json);
#endif

#endif
