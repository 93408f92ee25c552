/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ferry run`'s options and the [guest] group of its config file: the
 * reader is a module of its own so that tests (tests/fuzz/config) link the
 * real one.
 */
#ifndef FERRY_CLI_RUN_CONFIG_H
#define FERRY_CLI_RUN_CONFIG_H

#include <glib.h>
#include <limits.h>

#define FERRY_RUN_VCPUS_UNSET INT_MIN      /* neither --vcpus nor vcpus= given */

struct cmd_run_opts {
    char *image, *entry, *memory, *cmdline, *dm, *socket, *cpu;
    char *cpus, *dm_cpus;       /* placement: --cpus / cpus=, --dm-cpus / dm-cpus= */
    char **modules;             /* --module FILE[,ARGS], in order; replace the config's */
    GPtrArray *config_modules;  /* [guest] module = FILE[,ARGS];... */
    int vcpus, cpu_weight, cpu_cap;    /* FERRY_RUN_VCPUS_UNSET: not given */
    gboolean no_dm, eager, verbose, no_acpi, no_pit, print_cpuid;
    char **dm_args;             /* passed to the device model, one argument each */
    char **acpi_tables;         /* --acpi-table, in order */
    GPtrArray *config_tables;   /* [guest] acpi-tables, before --acpi-table */
    char **usb;                 /* --usb DEVICE, after the config's [usb] devices= */
    char *usb_policy;           /* --usb-policy, or the config's [usb] policy= */
    GPtrArray *config_usb;      /* [usb] devices = SPEC;SPEC */
};

/* Fill unset options from the [guest] (and [usb]) group of the config file at path:
 * 0, or -EINVAL after one line on stderr naming the file, key and reason. */
int cmd_run_config_read(const char *path, struct cmd_run_opts *o);
void cmd_run_opts_free(struct cmd_run_opts *o);

#endif
