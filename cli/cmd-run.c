// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry run [CONFIG] [--image FILE] [--entry auto|real|pvh|multiboot] [--memory SIZE]
 *           [--dm-arg ARG]... [--vcpus N] [--cmdline S] [--module FILE[,ARGS]]...
 *           [--cpu host[,+F|-F]...] [--dm PATH | --no-dm] [--ioreq-socket PATH]
 *           [--eager-memory] [--no-acpi] [--no-pit] [--acpi-table FILE]...
 *           [--cpu-weight N] [--cpu-cap PERCENT] [--cpus LIST [--dm-cpus LIST]]
 *           [--usb DEVICE]... [--usb-policy RULES] [-v]
 * ferry run --print-cpuid [--cpu host[,+F|-F]...] [CONFIG]
 *
 * Runs one guest: starts ferry-hv, which starts the device model (ferry-dm
 * by default, once it is built or installed).  CONFIG is a GKeyFile with
 * the same keys in a [guest] group; options on the command line win.  The
 * exit status is ferry-hv's: how the guest ended (hypervisor/hv-exit.h).
 * With neither CONFIG nor --image it runs the bundled demo guest.
 * --usb DEVICE (and a [usb] group: devices=SPEC;SPEC, policy=RULES) gives
 * the guest host USB devices on its own xHCI controller (ferry-dm --usb,
 * which adds the xhci device; see docs/usb.md).
 */
#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/run-config.h"
#include "common/text.h"
#include "hypervisor/hv-exit.h"
#include "hypervisor/hv.h"

#ifndef FERRY_LIBEXECDIR
#define FERRY_LIBEXECDIR "/usr/local/libexec"
#endif

/*
 * A file ferry needs: $ENV, next to ferry in the build tree (../SUBDIR/NAME)
 * or beside it, or in dir.  Returns a newly allocated path or NULL.
 */
static char *run_find_file(const char *env, const char *subdir, const char *name,
                           const char *dir_installed, int mode)
{
    const char *e = getenv(env);
    char self[PATH_MAX];
    ssize_t n;

    if (e && *e)
        return g_strdup(e);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        g_autofree char *dir = g_path_get_dirname(self);
        char *p = g_build_filename(dir, "..", subdir, name, NULL);
        if (access(p, mode) == 0)
            return p;
        g_free(p);
        p = g_build_filename(dir, name, NULL);
        if (access(p, mode) == 0)
            return p;
        g_free(p);
    }
    char *p = g_build_filename(dir_installed, name, NULL);
    if (access(p, mode) == 0)
        return p;
    g_free(p);
    return NULL;
}

/* A helper program: as run_find_file, in the libexec folder, or in PATH (cli/cmd.h). */
char *cmd_find_program(const char *env, const char *subdir, const char *name)
{
    char *p = run_find_file(env, subdir, name, FERRY_LIBEXECDIR, X_OK);
    return p ? p : g_find_program_in_path(name);
}

int ferry_cmd_run(int argc, char **argv)
{
    struct cmd_run_opts o = { .vcpus = FERRY_RUN_VCPUS_UNSET,
                              .cpu_weight = FERRY_RUN_VCPUS_UNSET, .cpu_cap = FERRY_RUN_VCPUS_UNSET,
                          .config_tables = g_ptr_array_new_with_free_func(g_free),
                          .config_usb = g_ptr_array_new_with_free_func(g_free),
                          .config_modules = g_ptr_array_new_with_free_func(g_free) };
    GOptionEntry entries[] = {
        { "image", 'i', 0, G_OPTION_ARG_FILENAME, &o.image, "guest image", "FILE" },
        { "entry", 'e', 0, G_OPTION_ARG_STRING, &o.entry,
          "auto (default: pvh for an ELF with a PVH note, else multiboot for an image with a "
          "multiboot header), real, pvh or multiboot", "KIND" },
        { "memory", 'm', 0, G_OPTION_ARG_STRING, &o.memory, "guest RAM, K/M/G/T (default 64M)", "SIZE" },
        { "vcpus", 'c', 0, G_OPTION_ARG_INT, &o.vcpus, "vCPUs (default 1)", "N" },
        { "cmdline", 0, 0, G_OPTION_ARG_STRING, &o.cmdline, "kernel command line", "S" },
        { "module", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.modules,
          "a module (initrd) and its arguments (repeatable, in order)",
          "FILE[,ARGS]" },
        { "cpu-weight", 0, 0, G_OPTION_ARG_INT, &o.cpu_weight,
          "scheduling weight against other guests (1..10000; a cgroup of its own)", "N" },
        { "cpu-cap", 0, 0, G_OPTION_ARG_INT, &o.cpu_cap,
          "at most this much host CPU, in percent of one CPU (1..6400)", "PERCENT" },
        { "cpu", 0, 0, G_OPTION_ARG_STRING, &o.cpu,
          "CPU model: host (KVM's supported CPUID), then ,-FEATURE or ,+FEATURE by "
          "/proc/cpuinfo names", "host[,+F|-F]..." },
        { "print-cpuid", 0, 0, G_OPTION_ARG_NONE, &o.print_cpuid,
          "list the CPUID the guest gets (with --cpu or the config's cpu=) and exit", NULL },
        { "dm", 0, 0, G_OPTION_ARG_FILENAME, &o.dm, "device model (default: ferry-dm)", "PATH" },
        { "no-dm", 0, 0, G_OPTION_ARG_NONE, &o.no_dm, "run without a device model", NULL },
        { "dm-arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.dm_args,
          "one more argument for the device model (repeatable), e.g. --dm-arg=--seccomp=log", "ARG" },
        { "ioreq-socket", 's', 0, G_OPTION_ARG_FILENAME, &o.socket,
          "also accept ioreq servers on this socket", "PATH" },
        { "cpus", 0, 0, G_OPTION_ARG_STRING, &o.cpus,
          "pin vCPU i to the i-th CPU of LIST; the device model follows the vCPU that drives it "
          "most", "LIST" },
        { "dm-cpus", 0, 0, G_OPTION_ARG_STRING, &o.dm_cpus,
          "pin the device model to these CPUs instead", "LIST" },
        { "eager-memory", 0, 0, G_OPTION_ARG_NONE, &o.eager,
          "register all guest RAM with KVM up front", NULL },
        { "no-acpi", 0, 0, G_OPTION_ARG_NONE, &o.no_acpi, "no ACPI tables for the guest", NULL },
        { "no-pit", 0, 0, G_OPTION_ARG_NONE, &o.no_pit, "no PIT (8254 timer) for the guest", NULL },
        { "acpi-table", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.acpi_tables,
          "one more ACPI table for the guest (SSDT, SLIC, ...; repeatable)", "FILE" },
        { "usb", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.usb,
          "a host USB device for the guest, on its own xHCI (repeatable; after the config's "
          "[usb] devices=)", "VID:PID[:SERIAL]|PORT" },
        { "usb-policy", 0, 0, G_OPTION_ARG_STRING, &o.usb_policy,
          "USB policy rules (usbredir filter syntax), instead of [usb] policy=", "RULES" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "more log", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[CONFIG] - run a guest under ferry-hv");
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *hv = NULL;
    uint64_t size;
    char why[128];
    int status = FERRY_EXIT_USAGE;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx,
        "CONFIG is a key file with a [guest] group: image, entry, memory, vcpus, cmdline,\n"
        "module (FILE[,ARGS];...), cpu, cpu-weight, cpu-cap, dm, ioreq-socket, eager-memory,\n"
        "acpi, pit, acpi-tables (FILE;FILE, added before --acpi-table's), cpus, dm-cpus\n"
        "(CPU lists: 0,2-3), and optionally a [usb] group: devices (SPEC;SPEC), policy.\n"
        "Options given here win over it.\n"
        "Exit status: the guest's debug exit code (0..63), 70 crash, 71 reboot, 72 stopped,\n"
        "73 no /dev/kvm, 74 /dev/kvm not accessible, 75 KVM lacks a capability, 76 bad image.");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "ferry run: %s\n", err->message);
        goto out;
    }
    if (argc > 2) {
        fprintf(stderr, "ferry run: one config file at most\n");
        goto out;
    }
    if (argc == 2 && cmd_run_config_read(argv[1], &o) < 0)
        goto out;
    if (o.print_cpuid) {
        /* Only the CPU model matters: no image, no device model. */
        hv = cmd_find_program("FERRY_HV", "hypervisor", "ferry-hv");
        if (!hv) {
            fprintf(stderr, "ferry run: ferry-hv not found (next to ferry, in %s, or in PATH; "
                    "FERRY_HV overrides)\n", FERRY_LIBEXECDIR);
            status = FERRY_EXIT_FAILURE;
            goto out;
        }
        g_ptr_array_add(args, g_strdup(hv));
        g_ptr_array_add(args, g_strdup("--print-cpuid"));
        if (o.cpu)
            g_ptr_array_add(args, g_strdup_printf("--cpu=%s", o.cpu));
        g_ptr_array_add(args, NULL);
        execv(hv, (char **)args->pdata);
        fprintf(stderr, "ferry run: cannot run %s: %s\n", hv, strerror(errno));
        status = FERRY_EXIT_FAILURE;
        goto out;
    }
    if (!o.image && argc == 1) {
        /* No guest named at all: the bundled demo guest (tests/devmodel/guests/demo.S). */
        o.image = run_find_file("FERRY_DEMO_IMAGE", "tests/devmodel", "demo.elf",
                                FERRY_LIBEXECDIR, R_OK);
        if (o.image && !o.entry)
            o.entry = g_strdup("pvh");
    }
    if (!o.image) {
        fprintf(stderr, "ferry run: no image: give --image FILE or a config with image=\n");
        goto out;
    }
    if (o.memory && hv_parse_size(o.memory, &size) < 0) {
        g_autofree char *q = ferry_text_quote(o.memory, 64);

        fprintf(stderr, "ferry run: memory '%s': not a size; give " HV_MEMORY_RANGE_TEXT
                " (e.g. 64M, 4G, 1T)\n", q);
        goto out;
    }
    if (o.memory && hv_memory_check(size, why, sizeof(why)) < 0) {
        g_autofree char *q = ferry_text_quote(o.memory, 64);

        fprintf(stderr, "ferry run: memory '%s': %s\n", q, why);
        goto out;
    }
    if (o.vcpus != FERRY_RUN_VCPUS_UNSET && o.vcpus < 1) {
        fprintf(stderr, "ferry run: vcpus %d: must be at least 1\n", o.vcpus);
        goto out;
    }
    hv = cmd_find_program("FERRY_HV", "hypervisor", "ferry-hv");
    if (!hv) {
        fprintf(stderr, "ferry run: ferry-hv not found (next to ferry, in %s, or in PATH; "
                "FERRY_HV overrides)\n", FERRY_LIBEXECDIR);
        status = FERRY_EXIT_FAILURE;
        goto out;
    }
    if (!o.dm && !o.no_dm) {
        o.dm = cmd_find_program("FERRY_DM", "devmodel", "ferry-dm");
        if (!o.dm && o.verbose)
            fprintf(stderr, "ferry run: no ferry-dm found; running without a device model\n");
    }

    g_ptr_array_add(args, g_strdup(hv));
    g_ptr_array_add(args, g_strdup("--image"));
    g_ptr_array_add(args, g_strdup(o.image));
#define ADD_OPT(flag, value) \
    if (value) { g_ptr_array_add(args, g_strdup(flag)); g_ptr_array_add(args, g_strdup(value)); }
    ADD_OPT("--entry", o.entry)
    ADD_OPT("--memory", o.memory)
    ADD_OPT("--cmdline", o.cmdline)
    ADD_OPT("--cpu", o.cpu)
    if (o.modules) {
        for (char **m = o.modules; *m; m++)
            ADD_OPT("--module", *m)
    } else {
        for (guint i = 0; i < o.config_modules->len; i++)
            ADD_OPT("--module", (char *)g_ptr_array_index(o.config_modules, i))
    }
    ADD_OPT("--ioreq-socket", o.socket)
    ADD_OPT("--cpus", o.cpus)
    if (!o.no_dm) {
        ADD_OPT("--dm", o.dm)
        ADD_OPT("--dm-cpus", o.dm_cpus)
        for (char **a = o.dm_args; a && *a; a++)
            ADD_OPT("--dm-arg", *a)
        /* host USB devices: ferry-dm adds the xhci and serves them */
        for (guint i = 0; i < o.config_usb->len; i++)
            g_ptr_array_add(args, g_strdup_printf("--dm-arg=--usb=%s",
                                                  (char *)g_ptr_array_index(o.config_usb, i)));
        for (char **u = o.usb; u && *u; u++)
            g_ptr_array_add(args, g_strdup_printf("--dm-arg=--usb=%s", *u));
        if (o.usb_policy && (o.usb || o.config_usb->len))
            g_ptr_array_add(args, g_strdup_printf("--dm-arg=--usb-policy=%s", o.usb_policy));
    } else if (o.usb || o.config_usb->len) {
        fprintf(stderr, "ferry run: USB devices need the device model (not --no-dm)\n");
        goto out;
    }
#undef ADD_OPT
    if (o.vcpus != FERRY_RUN_VCPUS_UNSET)
        g_ptr_array_add(args, g_strdup_printf("--vcpus=%d", o.vcpus));
    if (o.cpu_weight != FERRY_RUN_VCPUS_UNSET)
        g_ptr_array_add(args, g_strdup_printf("--cpu-weight=%d", o.cpu_weight));
    if (o.cpu_cap != FERRY_RUN_VCPUS_UNSET)
        g_ptr_array_add(args, g_strdup_printf("--cpu-cap=%d", o.cpu_cap));
    if (o.eager)
        g_ptr_array_add(args, g_strdup("--eager-memory"));
    if (o.no_acpi)
        g_ptr_array_add(args, g_strdup("--no-acpi"));
    if (o.no_pit)
        g_ptr_array_add(args, g_strdup("--no-pit"));
    for (guint i = 0; i < o.config_tables->len; i++)
        g_ptr_array_add(args, g_strdup_printf("--acpi-table=%s",
                                              (char *)g_ptr_array_index(o.config_tables, i)));
    for (char **t = o.acpi_tables; t && *t; t++)
        g_ptr_array_add(args, g_strdup_printf("--acpi-table=%s", *t));
    if (o.verbose)
        g_ptr_array_add(args, g_strdup("-v"));
    g_ptr_array_add(args, NULL);

    /* ferry-hv's exit status is the guest's: become it. */
    execv(hv, (char **)args->pdata);
    fprintf(stderr, "ferry run: cannot run %s: %s\n", hv, strerror(errno));
    status = FERRY_EXIT_FAILURE;
out:
    cmd_run_opts_free(&o);
    return status;
}
