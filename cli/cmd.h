/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ferry CLI: one file per subcommand (cli/cmd-<name>.c), listed in ferry.c. */
#ifndef FERRY_CLI_CMD_H
#define FERRY_CLI_CMD_H

/* argv[0] is the subcommand name; returns the process exit status. */
typedef int (*ferry_cmd_fn)(int argc, char **argv);

int ferry_cmd_run(int argc, char **argv);
int cmd_selfcheck(int argc, char **argv);
int cmd_acpi(int argc, char **argv);         /* cli/cmd-acpi.c: ferry acpi dump */
/* cli/cmd-pci.c: ferry pci list|check|prepare|release|attach|detach */
int cmd_pci(int argc, char **argv);
int cmd_dm(int argc, char **argv);
int ferry_cmd_usb(int argc, char **argv);      /* cli/cmd-usb.c: ferry usb ... */
/* cli/usb-libvirt.c: ferry libvirt-hook DOMAIN OP SUB-OP EXTRA < XML */
int cmd_libvirt_hook(int argc, char **argv);


/* Exit statuses shared by subcommands. */
#define FERRY_EXIT_OK       0
#define FERRY_EXIT_FAILURE  1
#define FERRY_EXIT_USAGE    2

#endif
