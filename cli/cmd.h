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
/* ferry usb share (cmd-usb-share.c): argv from DEVICE on. */
int ferry_cmd_usb_share(int argc, char **argv);
int cmd_policy(int argc, char **argv);         /* cli/cmd-policy.c: ferry policy ... */

/* The device-access policy for every command that grants a device
 * (cli/cmd-policy.c; policy/policy.h, policy/owner.h). */
struct ferry_policy;
struct ferry_policy_owner;
/* file NULL: $FERRY_POLICY or /etc/ferry/policy.conf; prints why not. */
int cli_policy_load(const char *file, struct ferry_policy **out);
/* The same with sysfs and proc roots (NULL: the environment's or the host's). */
int cli_policy_load_roots(const char *file, const char *sysfs, const char *proc,
                          struct ferry_policy **out);
/* GUEST as the policy names it: a name, or the folder of a socket path
 * (/run/ferry/vm1/dm.sock -> vm1); g_free. */
char *cli_guest_name(const char *guest);
/* The process at the other end of a unix socket, 0 if unknown. */
long cli_peer_pid(int fd);
/* Claim kind/id for guest on behalf of process pid (0: this one), which
 * the owner's description names; prints why not.  0 or -errno.  keep NULL:
 * the lock is let go at once (the description stays); else *keep gets the
 * claim, to pass its lock fd to that process (policy_owner_fd), or NULL when
 * the guest held it already (-EALREADY: nothing new to pass). */
int cli_owner_claim(const char *what, const char *kind, const char *id, const char *guest,
                    const char *program, long pid, struct ferry_policy_owner **keep);
/* -EBUSY (printed) when another guest owns kind/id. */
int cli_owner_check(const char *what, const char *kind, const char *id, const char *guest);
/* cli/libvirt-hook.c: ferry libvirt-hook DOMAIN OP SUB-OP EXTRA < XML */
/* A Ferry program: $ENV, or beside this one in the build tree (../SUBDIR/NAME) or
 * installed (NAME beside it), in the libexec folder, or in PATH; NULL if none
 * (cli/cmd-run.c). */
char *cmd_find_program(const char *env, const char *subdir, const char *name);

int cmd_libvirt_hook(int argc, char **argv);
/* cli/libvirt-follow.c: ferry libvirt-follow DOMAIN ALIAS IDENTITY (started by ferry) */
int cmd_libvirt_follow(int argc, char **argv);


/* Exit statuses shared by subcommands. */
#define FERRY_EXIT_OK       0
#define FERRY_EXIT_FAILURE  1
#define FERRY_EXIT_USAGE    2

#endif
