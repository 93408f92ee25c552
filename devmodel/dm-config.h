/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-dm's options: the command line and the config file it names
 * (--config: a [dm] group with the long options as keys, [qemu] and
 * [qemu:ID] groups for QEMU-hosted devices), the devices they give and
 * the seccomp lists those devices need.  Errors are said on stderr, each
 * naming the option, file, group or key at fault.
 */
#ifndef FERRY_DM_CONFIG_H
#define FERRY_DM_CONFIG_H

#include <glib.h>

#include "devmodel/dm.h"

#define DM_EXIT_OK          0
#define DM_EXIT_FAILURE     1
#define DM_EXIT_USAGE       2

struct dm_args {
    int ioreq_fd;
    char *connect, *name, *control, *serial, *serial_in, *config;
    char **devices;
    gboolean no_defaults, list;
    int verbose;
    char *seccomp, *user;
    char *cpus;                     /* --cpus / [dm] cpus: where ferry-dm runs */
    char *qmp;                      /* companion of this QEMU (USB) */
    char *libvirt;                  /* USB for this libvirt domain (no QMP) */
    char **usb;                     /* --usb: host USB devices for the guest's xhci */
    char *usb_policy;               /* --usb-policy: rules, instead of [usb] policy= */
    gboolean no_namespaces, print_policy;
    GPtrArray *qemu;                /* struct ferry_dm_opts * from [qemu] groups */
    int take_over;                  /* --take-over=FD: a successor (dm-replace.h); -1 */
    char *successor;                /* --successor PATH: the binary x-replace starts */
};

/*
 * Fills a (zeroed first) from the command line, then from the config
 * file.  Returns the exit status when ferry-dm is to stop now
 * (DM_EXIT_USAGE on bad options, DM_EXIT_OK after --list-devices), -1 to
 * go on.  dm_args_clear() in every case.
 */
int dm_args_parse(int argc, char **argv, struct dm_args *a);
void dm_args_clear(struct dm_args *a);
/*
 * The parts of dm_args_parse on their own (tests/fuzz's config target):
 * the config file a->config read into a (a->qemu must exist); one
 * "TYPE[,id=ID][,k=v...]" split (g_free type and id and
 * dm_opts_free opts whatever it returns).
 */
int dm_args_read_config(struct dm_args *a);
int dm_device_spec_split(const char *spec, char **type, char **id, struct ferry_dm_opts **opts);

/* Defaults first (the PCI bus before its functions), then the user's devices. */
int dm_args_add_devices(const struct dm_args *a, struct ferry_dm *dm);

#define DM_LISTS_MAX (FERRY_DM_TYPES_MAX + 2)
/* The seccomp lists for these devices (at most DM_LISTS_MAX); returns how many. */
size_t dm_args_syscall_lists(const struct dm_args *a, const struct ferry_syscall_list **lists);
/* --user, or the default user (said once when not root: then nobody to switch to). */
const char *dm_args_sandbox_user(const struct dm_args *a);

#endif
