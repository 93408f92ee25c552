/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ferry pci`, what its two files share: cmd-pci.c (the command, list,
 * check) and pci-assign.c (prepare, release, attach, detach).
 */
#ifndef FERRY_CLI_PCI_ASSIGN_H
#define FERRY_CLI_PCI_ASSIGN_H

#include <stdbool.h>

#include "pci/host/pcihost.h"

struct cmd_pci_opts {
    bool json, all, tree, group, force;
    int verbose;
    const char *sysfs_root, *proc_root, *state_dir, *dump, *ids, *id, *bus, *addr, *config;
    const char *guest;      /* --guest: whom prepare prepares for (the policy) */
};

/* cmd-pci.c: libferry-pcihost opened as the options say and scanned; NULL
 * after saying why.  In ferry-fault, with the fault-injection step hook. */
struct ferry_pcihost *cmd_pci_open_host(const struct cmd_pci_opts *o);
/* A BDF (dddd:bb:dd.f or bb:dd.f); -EINVAL after saying why. */
int cmd_pci_parse_bdf(const char *s, struct ferry_pci_addr *a);

/* pci-assign.c: the actions, each returning an exit status (FERRY_EXIT_*). */
/* prepare|release --config FILE */
int cmd_pci_config(const struct cmd_pci_opts *o, bool release);
/* prepare|release BDF */
int cmd_pci_prepare(const struct cmd_pci_opts *o, const char *bdf, bool release);
/* attach|detach GUEST BDF */
int cmd_pci_attach(const struct cmd_pci_opts *o, const char *guest, const char *bdf,
                   bool detach);

#endif
