// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry: the command-line front end.  Subcommands live in cli/cmd-*.c. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

#ifndef FERRY_HAVE_LIBVIRT
/* Built without libvirt-dev: a hook left behind must not stop domains starting. */
int cmd_libvirt_hook(int argc, char **argv)
{
    fprintf(stderr, "ferry libvirt-hook: this ferry was built without libvirt (libvirt-dev "
            "missing at configure time): nothing to do\n");
    return FERRY_EXIT_OK;
}

int cmd_libvirt_follow(int argc, char **argv)
{
    fprintf(stderr, "ferry libvirt-follow: this ferry was built without libvirt\n");
    return FERRY_EXIT_FAILURE;
}
#endif

static const struct {
    const char *name;
    ferry_cmd_fn fn;
    const char *help;
} commands[] = {
    { "selfcheck", cmd_selfcheck, "route checked ioreqs to a device model in a second process" },
    { "acpi", cmd_acpi, "dump a guest's ACPI tables (ferry acpi dump)" },
    { "run", ferry_cmd_run, "run a guest under ferry-hv" },
    { "pci", cmd_pci, "host PCI devices: list, check, prepare/release for VFIO, attach" },
    { "dm", cmd_dm, "talk to a running ferry-dm (status, devices, add, del, replace, quit)" },
    { "usb", ferry_cmd_usb, "host USB devices: list, attach, detach, share" },
    { "policy", cmd_policy, "the device-access policy: check GUEST DEVICE, show" },
    { "libvirt-hook", cmd_libvirt_hook, "libvirt's qemu hook (docs/libvirt.md)" },
    { "libvirt-follow", cmd_libvirt_follow,
      "follow a device's replugs for a confined libvirt ferry-dm (started by ferry)" },
};

static void usage(FILE *f)
{
    size_t n = sizeof(commands) / sizeof(commands[0]), width = 0;

    /* One column for the help, past the longest name: every line starts it at the same place. */
    for (size_t i = 0; i < n; i++)
        if (strlen(commands[i].name) > width)
            width = strlen(commands[i].name);
    fprintf(f, "usage: ferry [--version] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-*s  %s\n", (int)width, commands[i].name, commands[i].help);
    fprintf(f, "\n'ferry COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("ferry %s\n", FERRY_VERSION);
        return FERRY_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return FERRY_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].fn && !strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ferry: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
