// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's options (dm-config.h): the command line, the config file
 * ([dm], [qemu], [qemu:ID]; [usb] and [pci] are read by dm-usb.c and
 * dm-vfio.c), the devices they give (the default machine first) and the
 * confinement policy those devices need.
 */
#include "devmodel/dm-config.h"

#include <errno.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cpus.h"
#include "common/log-glib.h"
#include "common/text.h"
#include "companion/dm-usb.h"
#include "usb/ferry-usb.h"

/* ------------------------------------------------------------------ */
/* Devices from the command line                                       */

/* The default machine: COM1, RTC, ACPI PM, 0xcf9 reset, POST, debug exit, PCI. */
static const struct {
    const char *type, *id;
} default_devices[] = {
    { "pci-host", "pci" },
    { "uart", "com1" },
    { "rtc", "rtc" },
    { "acpi-pm", "pm" },
    { "reset", "reset" },
    { "post", "post" },
    { "debug-exit", "debug-exit" },
};

/* "TYPE[,k=v...]" -> type, id (may be NULL) and the other options. */
int dm_device_spec_split(const char *spec, char **type, char **id, struct ferry_dm_opts **opts)
{
    const char *comma = strchr(spec, ',');
    struct ferry_dm_opts *all = NULL;
    int rc;

    *id = NULL;
    *opts = NULL;
    rc = dm_opts_parse(comma ? comma + 1 : "", &all);
    if (rc < 0) {
        *type = NULL;
        return rc;
    }
    *type = comma ? g_strndup(spec, (gsize)(comma - spec)) : g_strdup(spec);
    *opts = dm_opts_new();
    for (size_t i = 0; i < dm_opts_count(all); i++) {
        const char *k = dm_opts_key(all, i);

        if (strcmp(k, "id") == 0)
            *id = g_strdup(dm_opts_get(all, k));
        else if (dm_opts_set(*opts, k, dm_opts_get(all, k)) < 0)
            rc = -E2BIG;
    }
    dm_opts_free(all);
    return rc;
}

/* What is wrong with a TYPE[,k=v...] spec's syntax (g_free it), or NULL. */
static char *device_spec_error(const char *spec)
{
    char *type = NULL, *id = NULL;
    struct ferry_dm_opts *opts = NULL;
    int rc = dm_device_spec_split(spec, &type, &id, &opts);

    g_free(type);
    g_free(id);
    dm_opts_free(opts);
    if (rc == -E2BIG)
        return g_strdup_printf("more than %d options", FERRY_DM_OPTS_MAX);
    if (rc < 0)
        return g_strdup_printf("an option with an empty name or longer than %d bytes",
                               FERRY_DM_OPT_LEN_MAX);
    return NULL;
}

/* The command line's --device specs, before anything starts. */
static int check_device_specs(const struct dm_args *a)
{
    for (unsigned i = 0; a->devices && a->devices[i]; i++) {
        g_autofree char *why = device_spec_error(a->devices[i]);

        if (why) {
            g_autofree char *q = ferry_text_quote(a->devices[i], 80);

            fprintf(stderr, "ferry-dm: --device %s: %s\n", q, why);
            return -EINVAL;
        }
    }
    return 0;
}

static int add_user_device(struct ferry_dm *dm, const char *spec)
{
    char *type = NULL, *id = NULL;
    struct ferry_dm_opts *opts = NULL;
    int rc = dm_device_spec_split(spec, &type, &id, &opts);
    g_autofree char *q = ferry_text_quote(spec, 80);

    if (rc < 0) {
        fprintf(stderr, "ferry-dm: device %s: bad options\n", q);
        g_free(type);
        g_free(id);
        dm_opts_free(opts);
        return rc;
    }
    rc = dm_device_add(dm, type, id, opts, NULL);
    if (rc < 0)
        fprintf(stderr, "ferry-dm: device %s: %s\n", q, strerror(-rc));
    g_free(type);
    g_free(id);
    dm_opts_free(opts);
    return rc;
}

static bool id_given(const struct dm_args *a, const char *id)
{
    bool found = false;

    for (unsigned i = 0; a->devices && a->devices[i] && !found; i++) {
        char *type = NULL, *uid = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (dm_device_spec_split(a->devices[i], &type, &uid, &opts) == 0)
            found = uid && strcmp(uid, id) == 0;
        g_free(type);
        g_free(uid);
        dm_opts_free(opts);
    }
    return found;
}

/* "ferry-dm: FILE: [GROUP] key 'KEY': WHY", with the config's text quoted. */
static int config_refuse(const char *file, const char *grp, const char *key, const char *why)
{
    g_autofree char *qg = ferry_text_quote(grp, 64), *qk = ferry_text_quote(key, 64);

    if (key)
        fprintf(stderr, "ferry-dm: %s: [%s] key '%s': %s\n", file, qg, qk, why);
    else
        fprintf(stderr, "ferry-dm: %s: [%s]: %s\n", file, qg, why);
    return -EINVAL;
}

/* Why GKeyFile would not give a value, without echoing the value. */
static const char *value_error(const GError *e)
{
    if (e->domain == G_KEY_FILE_ERROR && e->code == G_KEY_FILE_ERROR_UNKNOWN_ENCODING)
        return "value is not valid UTF-8";
    if (e->domain == G_KEY_FILE_ERROR && e->code == G_KEY_FILE_ERROR_INVALID_VALUE)
        return "value has an invalid escape sequence";
    return "value cannot be read";
}

/* The keys a group may have. */
static int check_keys(const char *file, const char *grp, const char *const *keys,
                      const char *const *known)
{
    for (gsize k = 0; keys && keys[k]; k++) {
        if (!g_strv_contains(known, keys[k])) {
            g_autofree char *qk = ferry_text_quote(keys[k], 64);
            g_autofree char *list = g_strjoinv(", ", (char **)known);

            fprintf(stderr, "ferry-dm: %s: [%s] has no key '%s' (%s)\n", file, grp, qk, list);
            return -EINVAL;
        }
    }
    return 0;
}

/* One key of a [qemu] group, refused by name when it does not fit. */
static int qemu_opt_set(const char *file, const char *grp, struct ferry_dm_opts *o,
                        const char *key, const char *v)
{
    g_autofree char *why = NULL;
    bool is_id = v == grp + 5;      /* the ID of [qemu:ID] */
    int rc;

    if (strlen(key) > FERRY_DM_OPT_LEN_MAX)
        why = g_strdup_printf("name of %zu bytes is longer than %d", strlen(key),
                              FERRY_DM_OPT_LEN_MAX);
    else if (strlen(v) > FERRY_DM_OPT_LEN_MAX)
        why = g_strdup_printf("%s of %zu bytes is longer than %d", is_id ? "id" : "value",
                              strlen(v), FERRY_DM_OPT_LEN_MAX);
    else if ((rc = dm_opts_set(o, key, v)) == -E2BIG)
        why = g_strdup_printf("more than %d keys", FERRY_DM_OPTS_MAX);
    else if (rc < 0)
        why = g_strdup(strerror(-rc));
    if (!why)
        return 0;
    if (is_id)
        return config_refuse(file, grp, NULL, why);
    return config_refuse(file, grp, key, why);
}

/*
 * The config file: a [dm] group with the command line's long options as
 * keys (command-line values win; devices= is a ';' list added before the
 * command line's), and one [qemu] or [qemu:ID] group per QEMU-hosted
 * device with the qemu device's options as keys.  [usb] and [pci] are read
 * by companion/dm-usb.c (usb/service-config.c) and companion/dm-vfio.c
 * (pci/host/pci-config.c).
 */
int dm_args_read_config(struct dm_args *a)
{
    static const char *const dm_keys[] = { "name", "connect", "control", "serial", "serial-in",
                                           "no-defaults", "devices", "cpus", NULL };
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    gchar **groups;

    if (!g_key_file_load_from_file(kf, a->config, G_KEY_FILE_NONE, &err)) {
        g_autofree char *why = ferry_text_quote(err->message, 300);

        fprintf(stderr, "ferry-dm: %s: %s\n", a->config, why);
        return -EINVAL;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (gsize g = 0; groups[g]; g++) {
        const char *grp = groups[g];
        gchar **keys = g_key_file_get_keys(kf, grp, NULL, NULL);
        bool is_qemu = !strcmp(grp, "qemu") || g_str_has_prefix(grp, "qemu:");
        /* read by dm-usb.c and dm-vfio.c (pci/host/pci-config.c) */
        bool is_usb = !strcmp(grp, "usb") || !strcmp(grp, "pci");
        struct ferry_dm_opts *o = is_qemu ? dm_opts_new() : NULL;
        int rc = 0;

        if (strcmp(grp, "dm") != 0 && !is_qemu && !is_usb) {
            g_autofree char *qg = ferry_text_quote(grp, 64);

            fprintf(stderr, "ferry-dm: %s: unknown group [%s] (dm, qemu, qemu:ID, usb, pci)\n",
                    a->config, qg);
            rc = -EINVAL;
        }
        if (rc == 0 && !strcmp(grp, "usb"))
            rc = check_keys(a->config, grp, (const char *const *)keys, usb_config_keys);
        if (rc == 0 && !strcmp(grp, "dm"))
            rc = check_keys(a->config, grp, (const char *const *)keys, dm_keys);
        for (gsize k = 0; keys && keys[k] && rc == 0 && is_qemu; k++) {
            g_autoptr(GError) verr = NULL;
            g_autofree char *v = g_key_file_get_string(kf, grp, keys[k], &verr);

            if (!v)
                rc = config_refuse(a->config, grp, keys[k], value_error(verr));
            else
                rc = qemu_opt_set(a->config, grp, o, keys[k], v);
        }
        if (rc == 0 && is_qemu) {
            if (grp[4] == ':' && !dm_opts_get(o, "id"))
                rc = qemu_opt_set(a->config, grp, o, "id", grp + 5);
            if (rc == 0) {
                g_ptr_array_add(a->qemu, o);
                o = NULL;
            }
        }
        dm_opts_free(o);
        g_strfreev(keys);
        if (rc < 0) {
            g_strfreev(groups);
            return rc;
        }
    }
    g_strfreev(groups);
#define CFG_STR(field, key)                                                         \
    if (!a->field && g_key_file_has_key(kf, "dm", key, NULL)) {                     \
        g_autoptr(GError) verr = NULL;                                              \
                                                                                    \
        a->field = g_key_file_get_string(kf, "dm", key, &verr);                     \
        if (!a->field)                                                              \
            return config_refuse(a->config, "dm", key, value_error(verr));          \
    }
    CFG_STR(name, "name")
    CFG_STR(connect, "connect")
    CFG_STR(control, "control")
    CFG_STR(serial, "serial")
    CFG_STR(serial_in, "serial-in")
    bool cli_cpus = a->cpus != NULL;
    CFG_STR(cpus, "cpus")
    if (!cli_cpus && a->cpus) {
        cpu_set_t set;
        char why[200];

        if (ferry_cpus_parse(a->cpus, &set, why, sizeof(why)) < 0)
            return config_refuse(a->config, "dm", "cpus", why);
    }
#undef CFG_STR
    if (g_key_file_has_key(kf, "dm", "no-defaults", NULL)) {
        g_autoptr(GError) berr = NULL;
        bool v = g_key_file_get_boolean(kf, "dm", "no-defaults", &berr);

        if (berr) {
            g_autofree char *raw = g_key_file_get_value(kf, "dm", "no-defaults", NULL);
            g_autofree char *q = ferry_text_quote(raw, 64);
            g_autofree char *why = g_strdup_printf("'%s' is not a boolean (true or false)", q);

            return config_refuse(a->config, "dm", "no-defaults", why);
        }
        if (!a->no_defaults)
            a->no_defaults = v;
    }
    g_autoptr(GError) lerr = NULL;
    gchar **devs = g_key_file_get_string_list(kf, "dm", "devices", NULL, &lerr);

    if (!devs && g_key_file_has_key(kf, "dm", "devices", NULL))
        return config_refuse(a->config, "dm", "devices", value_error(lerr));
    if (devs) {
        GPtrArray *all = g_ptr_array_new_with_free_func(g_free);

        for (gsize i = 0; devs[i]; i++) {
            g_autofree char *why = NULL;

            if (!*g_strstrip(devs[i]))
                continue;
            if ((why = device_spec_error(devs[i]))) {
                g_autofree char *q = ferry_text_quote(devs[i], 80);
                g_autofree char *msg = g_strdup_printf("entry %zu (%s): %s", i + 1, q, why);

                g_ptr_array_free(all, TRUE);
                g_strfreev(devs);
                return config_refuse(a->config, "dm", "devices", msg);
            }
            g_ptr_array_add(all, g_strdup(devs[i]));
        }
        for (gsize i = 0; a->devices && a->devices[i]; i++)
            g_ptr_array_add(all, g_strdup(a->devices[i]));
        g_ptr_array_add(all, NULL);
        g_strfreev(a->devices);
        a->devices = (char **)g_ptr_array_free(all, FALSE);
        g_strfreev(devs);
    }
    return 0;
}

static bool has_device_type(const struct dm_args *a, const char *want)
{
    bool found = false;

    for (unsigned i = 0; a->devices && a->devices[i] && !found; i++) {
        char *type = NULL, *id = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (dm_device_spec_split(a->devices[i], &type, &id, &opts) == 0)
            found = !strcmp(type, want);
        g_free(type);
        g_free(id);
        dm_opts_free(opts);
    }
    return found;
}

/*
 * Host USB devices for a Ferry guest (--usb, or a [usb] group without
 * qmp=) go to its own xHCI: an xhci device usb0 when none is given.  Not
 * for a QEMU's companion (--qmp): its QEMU has the controller.
 */
static void add_implicit_xhci(struct dm_args *a)
{
    g_autofree char *cfg_qmp = NULL;
    bool usb = a->usb && a->usb[0];
    guint n = a->devices ? g_strv_length(a->devices) : 0;

    if (a->qmp)
        return;
    if (!usb && a->config && companion_usb_wanted(NULL, a->config)) {
        (void)companion_usb_config_qmp(a->config, &cfg_qmp);
        usb = !cfg_qmp || !*cfg_qmp;
    }
    if (!usb || has_device_type(a, "xhci"))
        return;
    a->devices = g_renew(char *, a->devices, n + 2);
    a->devices[n] = g_strdup("xhci,id=usb0");
    a->devices[n + 1] = NULL;
}

/* Defaults first (the PCI bus before its functions), then the user's devices. */
int dm_args_add_devices(const struct dm_args *a, struct ferry_dm *dm)
{
    int rc = 0;

    for (unsigned i = 0; !a->no_defaults && rc == 0 && i < G_N_ELEMENTS(default_devices); i++) {
        struct ferry_dm_opts *opts;

        if (id_given(a, default_devices[i].id))
            continue;       /* replaced by a --device with the same id */
        opts = dm_opts_new();
        if (strcmp(default_devices[i].type, "uart") == 0 &&
            (dm_opts_set(opts, "out", a->serial ? a->serial : "stdout") < 0 ||
             dm_opts_set(opts, "in", a->serial_in ? a->serial_in : "none") < 0))
            rc = -EINVAL;
        if (rc == 0)
            rc = dm_device_add(dm, default_devices[i].type, default_devices[i].id,
                                     opts, NULL);
        if (rc < 0)
            fprintf(stderr, "ferry-dm: default device %s (%s): %s\n", default_devices[i].id,
                    default_devices[i].type, strerror(-rc));
        dm_opts_free(opts);
    }
    for (unsigned i = 0; a->devices && a->devices[i] && rc == 0; i++)
        rc = add_user_device(dm, a->devices[i]);
    for (guint i = 0; a->qemu && i < a->qemu->len && rc == 0; i++) {
        struct ferry_dm_opts *o = g_ptr_array_index(a->qemu, i), *rest = dm_opts_new();

        for (size_t k = 0; k < dm_opts_count(o); k++) {
            const char *key = dm_opts_key(o, k);

            if (strcmp(key, "id") != 0 && dm_opts_set(rest, key,
                                                            dm_opts_get(o, key)) < 0)
                rc = -E2BIG;
        }
        if (rc == 0)
            rc = dm_device_add(dm, "qemu", dm_opts_get(o, "id"), rest, NULL);
        if (rc < 0)
            fprintf(stderr, "ferry-dm: %s: [qemu] device %s: %s\n", a->config,
                    dm_opts_get(o, "device") ? dm_opts_get(o, "device") : "?",
                    strerror(-rc));
        dm_opts_free(rest);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Confinement                                                         */

static void add_type_list(const char *type_name, const struct ferry_syscall_list **lists,
                          size_t *n)
{
    const struct ferry_dm_device_type *t = dm_device_type_find(type_name);

    if (!t || !t->syscalls || !t->syscalls->n)    /* nothing beyond the base list */
        return;
    for (size_t i = 0; i < *n; i++)
        if (lists[i] == t->syscalls)
            return;
    if (*n < DM_LISTS_MAX)
        lists[(*n)++] = t->syscalls;
}

/*
 * The filter for the devices the options and the config file give: the
 * base list, the sanitizer runtime's in sanitizer builds, and one list per
 * device type present.  The same answer before the devices exist
 * (--print-policy) and after (the filter ferry-dm loads).
 */
size_t dm_args_syscall_lists(const struct dm_args *a, const struct ferry_syscall_list **lists)
{
    size_t n = 0;

    lists[n++] = &sandbox_syscalls_base;
    if (sandbox_sanitized())
        lists[n++] = &sandbox_syscalls_sanitizer;
    for (unsigned i = 0; !a->no_defaults && i < G_N_ELEMENTS(default_devices); i++)
        if (!id_given(a, default_devices[i].id))
            add_type_list(default_devices[i].type, lists, &n);
    for (unsigned i = 0; a->devices && a->devices[i]; i++) {
        char *type = NULL, *id = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (dm_device_spec_split(a->devices[i], &type, &id, &opts) == 0)
            add_type_list(type, lists, &n);
        g_free(type);
        g_free(id);
        dm_opts_free(opts);
    }
    if (a->qemu && a->qemu->len)
        add_type_list("qemu", lists, &n);
    /* USB (dm-usb.c): libusb without discovery on fds, usbredir on socketpairs */
    if (a->libvirt || companion_usb_wanted(a->qmp, a->config) || (a->usb && a->usb[0]) ||
        has_device_type(a, "xhci"))
        lists[n++] = &companion_syscalls_usbredir;
    return n;
}

/*
 * --user: default 'ferry'.  Only root can switch users: any other caller
 * keeps its uid (and still loses capabilities, gains no_new_privs and the
 * filter), said once.  An explicit --user that is not the caller fails in
 * sandbox_enter with a message naming it.
 */
const char *dm_args_sandbox_user(const struct dm_args *a)
{
    if (a->user)
        return a->user;
    if (geteuid() != 0) {
        struct passwd *pw = getpwuid(geteuid());

        ferry_log(FERRY_LOG_INFO, NULL, "sandbox: not root, so staying user %s (uid %u) "
                  "instead of switching to '%s'", pw ? pw->pw_name : "?", (unsigned)geteuid(),
                  FERRY_SANDBOX_DEFAULT_USER);
        return "";
    }
    return FERRY_SANDBOX_DEFAULT_USER;
}

static void list_devices(void)
{
    const struct ferry_dm_device_type *t;

    printf("device types (--device TYPE[,id=ID][,key=value...]):\n");
    for (unsigned i = 0; (t = dm_device_type_nth(i)); i++)
        printf("  %-12s %s%s\n", t->name, t->desc ? t->desc : "",
               t->hotplug ? " [hotplug]" : "");
}

/* ------------------------------------------------------------------ */
/* The command line                                                    */

int dm_args_parse(int argc, char **argv, struct dm_args *a)
{
    gboolean verbose_seen = FALSE;
    GOptionEntry entries[] = {
        { "ioreq-fd", 0, 0, G_OPTION_ARG_INT, &a->ioreq_fd,
          "registered over this connected socket (ferry-hv starts us so)", "N" },
        { "connect", 'c', 0, G_OPTION_ARG_FILENAME, &a->connect,
          "register with the ferry-hv listening on this ioreq socket", "PATH" },
        { "name", 'n', 0, G_OPTION_ARG_STRING, &a->name, "guest name (logs, server name)", "NAME" },
        { "control", 's', 0, G_OPTION_ARG_FILENAME, &a->control,
          "QMP-style control socket to create", "PATH" },
        { "device", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &a->devices,
          "add a device (replaces the default with the same id)", "TYPE[,id=ID][,k=v...]" },
        { "no-defaults", 0, 0, G_OPTION_ARG_NONE, &a->no_defaults,
          "no default devices, only --device ones", NULL },
        { "serial", 0, 0, G_OPTION_ARG_STRING, &a->serial,
          "COM1 output: stdout, stderr, file:PATH, pty, socket:PATH, null", "OUT" },
        { "serial-in", 0, 0, G_OPTION_ARG_STRING, &a->serial_in,
          "COM1 input: none, stdin, pty, socket:PATH", "IN" },
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME, &a->qmp,
          "companion of the QEMU with this QMP socket: serve it host USB and PCI devices "
          "(without --connect/--ioreq-fd: only that, no ferry-hv)", "PATH" },
        { "libvirt", 0, 0, G_OPTION_ARG_STRING, &a->libvirt,
          "serve host USB devices to this libvirt domain (no QMP: the ferry CLI adds "
          "them through libvirt, docs/libvirt.md)", "DOMAIN" },
        { "usb", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a->usb,
          "a host USB device for the guest (repeatable; as [usb] devices=), on its xhci "
          "(added as usb0 if there is none)", "VID:PID[:SERIAL]|PORT" },
        { "usb-policy", 0, 0, G_OPTION_ARG_STRING, &a->usb_policy,
          "USB policy rules (usbredir filter syntax, as [usb] policy=, which it replaces)",
          "RULES" },
        { "config", 'f', 0, G_OPTION_ARG_FILENAME, &a->config,
          "read options and devices from a key file ([dm], [qemu])", "FILE" },
        { "list-devices", 0, 0, G_OPTION_ARG_NONE, &a->list, "list device types and exit", NULL },
        { "seccomp", 0, 0, G_OPTION_ARG_STRING, &a->seccomp,
          "seccomp filter: kill (default: a forbidden syscall is logged by name and ends "
          "ferry-dm), log (it runs and the kernel logs it), off", "kill|log|off" },
        { "cpus", 0, 0, G_OPTION_ARG_STRING, &a->cpus,
          "run on these CPUs (0,2-3); default: where the hypervisor puts us (next to the vCPU "
          "that drives us most when its vCPUs are pinned)", "LIST" },
        { "user", 'u', 0, G_OPTION_ARG_STRING, &a->user,
          "unprivileged user to switch to (default: ferry; only when started as root)", "NAME" },
        { "no-namespaces", 0, 0, G_OPTION_ARG_NONE, &a->no_namespaces,
          "do not enter new mount/ipc/net/uts namespaces (systemd units provide them)", NULL },
        { "print-policy", 0, 0, G_OPTION_ARG_NONE, &a->print_policy,
          "print the confinement policy for the configured devices and exit", NULL },
        { "successor", 0, 0, G_OPTION_ARG_FILENAME, &a->successor,
          "the ferry-dm binary x-replace starts (default: this one's path)", "PATH" },
        { "take-over", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &a->take_over,
          "internal: be the successor of the ferry-dm on this socket", "FD" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose_seen,
          "more log output (-vv for debug)", NULL },
        { NULL },
    };
    GOptionContext *ctx;
    GError *err = NULL;

    *a = (struct dm_args){ .ioreq_fd = -1, .take_over = -1 };
    /* -v may repeat (-vv, -v -v): count before GOption folds them into one flag. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--verbose") == 0)
            a->verbose++;
        else if (argv[i][0] == '-' && argv[i][1] == 'v' &&
                 strspn(argv[i] + 1, "v") == strlen(argv[i] + 1))
            a->verbose += (int)strlen(argv[i] + 1);
    }
    ctx = g_option_context_new("- Ferry's device model for one guest");
    g_option_context_set_summary(ctx,
        "Registers as an ioreq server with ferry-hv (--ioreq-fd=N when ferry-hv starts it,\n"
        "--connect PATH otherwise), claims its devices' ranges and emulates them.\n"
        "Default devices: pci (pci-host), com1 (uart, 0x3f8 irq 4), rtc (0x70, irq 8),\n"
        "pm (acpi-pm, 0xb000/0xafe0, sci 9), reset (0xcf9), post (0x80),\n"
        "debug-exit (0xf4).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "ferry-dm: %s\n", err->message);
        g_error_free(err);
        g_option_context_free(ctx);
        return DM_EXIT_USAGE;
    }
    g_option_context_free(ctx);
    (void)verbose_seen;
    if (a->list) {
        list_devices();
        return DM_EXIT_OK;
    }
    a->qemu = g_ptr_array_new_with_free_func((GDestroyNotify)dm_opts_free);
    if ((a->config && dm_args_read_config(a) < 0) || check_device_specs(a) < 0)
        return DM_EXIT_USAGE;
    if (a->usb && !a->print_policy && (a->qmp || (a->ioreq_fd < 0 && !a->connect))) {
        fprintf(stderr, "ferry-dm: --usb is for a Ferry guest's own xhci (with --ioreq-fd or "
                "--connect); for a QEMU guest (--qmp) give [usb] devices= or use ferry usb "
                "attach\n");
        return DM_EXIT_USAGE;
    }
    add_implicit_xhci(a);
    return -1;
}

void dm_args_clear(struct dm_args *a)
{
    if (a->qemu)
        g_ptr_array_free(a->qemu, TRUE);
    g_free(a->config);
    g_free(a->connect);
    g_free(a->name);
    g_free(a->control);
    g_free(a->serial);
    g_free(a->serial_in);
    g_free(a->successor);
    g_strfreev(a->devices);
    g_free(a->seccomp);
    g_free(a->cpus);
    g_free(a->user);
    g_free(a->qmp);
    g_free(a->libvirt);
    g_strfreev(a->usb);
    g_free(a->usb_policy);
    *a = (struct dm_args){ .ioreq_fd = -1 };
}
