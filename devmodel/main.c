// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm: the device model of one guest, an ioreq server on a libevent
 * loop.
 *
 *   ferry-dm --ioreq-fd=N [options]      started by ferry-hv (N: a connected
 *                                        SOCK_SEQPACKET socket to its router)
 *   ferry-dm --connect PATH [options]    started on its own (a toolstack,
 *                                        systemd's ferry-dm@.service)
 *
 * It adds its devices, registers with the router, claims their ranges,
 * enables, and then only reacts: ioreq doorbells, the control socket,
 * device timers and fds.  Idle, it sleeps in epoll.  When the router goes
 * away (the guest ended, ferry-hv exited) it exits 0.
 *
 * Confined by default (sandbox/sandbox.h): everything it needs is opened
 * first (ioreq registration, guest RAM, devices with their ptys, files and
 * QEMU launchers, the control socket), then it drops to the 'ferry' user
 * with no capabilities, no_new_privs, fresh namespaces and a seccomp
 * allow-list made of the base list and the lists of the device types it
 * has, and only then claims its ranges and serves the first ioreq.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log-glib.h"
#include "common/text.h"
#include "devmodel/control.h"
#include "companion/dm-qmp.h"
#include "companion/dm-usb.h"
#include "companion/dm-vfio.h"
#include "devmodel/dm.h"
#include "devmodel/prewarm.h"
#include "sandbox/sandbox.h"

#define DM_EXIT_OK          0
#define DM_EXIT_FAILURE     1
#define DM_EXIT_USAGE       2

struct dm_main {
    struct event_base *base;
    struct ferry_dm *dm;
    struct ioreq_server *srv;
    struct ferry_dm_control *control;
    struct dm_usb *usb;
    struct dm_qmp *qmp;             /* the one QMP connection to QEMU (USB and PCI) */
    struct dm_vfio *vfio;
    struct event *ctl_ev, *buf_ev, *sig_ev[2];
    struct event **vcpu_ev;
    unsigned nr_vcpus;
    int status;
};

/* ------------------------------------------------------------------ */
/* The backend: the framework's needs, met by the ioreq server          */

static int be_claim(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end,
                    uint32_t flags)
{
    struct dm_main *m = opaque;

    if (!m->srv)
        return 0;
    return ioreq_server_claim_range(m->srv, type, start, end, flags);
}

static int be_release(void *opaque, enum ioreq_range_type type, uint64_t start, uint64_t end)
{
    struct dm_main *m = opaque;

    return m->srv ? ioreq_server_release_range(m->srv, type, start, end) : 0;
}

static int be_irqfd(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    struct dm_main *m = opaque;

    return m->srv ? ioreq_server_set_irqfd(m->srv, gsi, fd, resample_fd, assign) : -ENOTCONN;
}

static int be_irq_line(void *opaque, uint32_t gsi, bool level)
{
    struct dm_main *m = opaque;

    return m->srv ? ioreq_server_set_irq_line(m->srv, gsi, level) : -ENOTCONN;
}

static int be_msi(void *opaque, uint64_t address, uint32_t data)
{
    struct dm_main *m = opaque;

    return m->srv ? ioreq_server_signal_msi(m->srv, address, data) : -ENOTCONN;
}

static int be_shutdown(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    struct dm_main *m = opaque;
    int rc;

    if (!m->srv)
        return -ENOTCONN;
    rc = ioreq_server_shutdown(m->srv, reason, code);
    /* The hypervisor may end the guest (and hang up) before it answers. */
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

static const struct ferry_dm_backend_ops backend_ops = {
    .claim = be_claim,
    .release = be_release,
    .irqfd = be_irqfd,
    .irq_line = be_irq_line,
    .msi = be_msi,
    .shutdown = be_shutdown,
};

static void srv_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_glib(NULL, level, msg);
}

static void srv_handle(void *opaque, unsigned vcpu, ioreq_t *req)
{
    struct dm_main *m = opaque;

    ferry_dm_handle_ioreq(m->dm, vcpu, req);
}

static const struct ioreq_server_ops srv_ops = {
    .log = srv_log,
    .handle = srv_handle,
};

/* ------------------------------------------------------------------ */
/* Event callbacks                                                     */

struct vcpu_arg {
    struct dm_main *m;
    unsigned vcpu;
};

static void vcpu_doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
    struct vcpu_arg *va = arg;

    ioreq_server_dispatch_vcpu(va->m->srv, va->vcpu);
}

static void buffered_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dm_main *m = arg;

    ioreq_server_dispatch_buffered(m->srv);
}

static void control_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dm_main *m = arg;

    if (ioreq_server_check_control(m->srv) == -EPIPE) {
        ferry_log(FERRY_LOG_INFO, NULL, "the hypervisor closed the ioreq connection "
                  "(guest %s); exiting", ferry_dm_status_name(ferry_dm_get_status(m->dm)));
        event_base_loopbreak(m->base);
    }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct dm_main *m = arg;

    ferry_log(FERRY_LOG_INFO, NULL, "%s: detaching from the guest", strsignal((int)sig));
    event_base_loopbreak(m->base);
}

/* Companion mode: the QEMU we serve has gone, and so do we. */
static void usb_qemu_gone(void *opaque)
{
    struct dm_main *m = opaque;

    if (!m->srv)
        event_base_loopbreak(m->base);
}

/* ferry-dm's QMP connection ended: USB is told, and a companion exits. */
static void qmp_gone(void *opaque)
{
    struct dm_main *m = opaque;

    dm_usb_qmp_lost(m->usb);
    usb_qemu_gone(m);
}

/* Control commands beyond the framework's: USB's, then PCI passthrough's. */
static char *control_command(void *opaque, struct ferry_dm_control_req *req, const char *cmd,
                             JsonObject *args, JsonNode *id, int *fd)
{
    struct dm_main *m = opaque;
    char *r = m->usb ? dm_usb_command(m->usb, req, cmd, args, id, fd) : NULL;

    return r ? r : dm_vfio_command(m->vfio, req, cmd, args, id);
}

static void control_quit(void *opaque)
{
    struct dm_main *m = opaque;

    ferry_log(FERRY_LOG_INFO, NULL, "quit from the control socket: detaching from the guest");
    event_base_loopbreak(m->base);
}

static const struct ferry_dm_control_ops control_ops = { .quit = control_quit };

/* ------------------------------------------------------------------ */
/* Devices from the command line                                       */

struct dm_args {
    int ioreq_fd;
    char *connect, *name, *control, *serial, *serial_in, *config;
    char **devices;
    gboolean no_defaults, list;
    int verbose;
    char *seccomp, *user;
    char *qmp;                      /* companion of this QEMU (USB) */
    gboolean no_namespaces, print_policy;
    GPtrArray *qemu;                /* struct ferry_dm_opts * from [qemu] groups */
};

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
static int split_device(const char *spec, char **type, char **id, struct ferry_dm_opts **opts)
{
    const char *comma = strchr(spec, ',');
    struct ferry_dm_opts *all = NULL;
    int rc;

    *id = NULL;
    *opts = NULL;
    rc = ferry_dm_opts_parse(comma ? comma + 1 : "", &all);
    if (rc < 0) {
        *type = NULL;
        return rc;
    }
    *type = comma ? g_strndup(spec, (gsize)(comma - spec)) : g_strdup(spec);
    *opts = ferry_dm_opts_new();
    for (size_t i = 0; i < ferry_dm_opts_count(all); i++) {
        const char *k = ferry_dm_opts_key(all, i);

        if (strcmp(k, "id") == 0)
            *id = g_strdup(ferry_dm_opts_get(all, k));
        else if (ferry_dm_opts_set(*opts, k, ferry_dm_opts_get(all, k)) < 0)
            rc = -E2BIG;
    }
    ferry_dm_opts_free(all);
    return rc;
}

/* What is wrong with a TYPE[,k=v...] spec's syntax (g_free it), or NULL. */
static char *device_spec_error(const char *spec)
{
    char *type = NULL, *id = NULL;
    struct ferry_dm_opts *opts = NULL;
    int rc = split_device(spec, &type, &id, &opts);

    g_free(type);
    g_free(id);
    ferry_dm_opts_free(opts);
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

static int add_user_device(struct dm_main *m, const char *spec)
{
    char *type = NULL, *id = NULL;
    struct ferry_dm_opts *opts = NULL;
    int rc = split_device(spec, &type, &id, &opts);
    g_autofree char *q = ferry_text_quote(spec, 80);

    if (rc < 0) {
        fprintf(stderr, "ferry-dm: device %s: bad options\n", q);
        g_free(type);
        g_free(id);
        ferry_dm_opts_free(opts);
        return rc;
    }
    rc = ferry_dm_device_add(m->dm, type, id, opts, NULL);
    if (rc < 0)
        fprintf(stderr, "ferry-dm: device %s: %s\n", q, strerror(-rc));
    g_free(type);
    g_free(id);
    ferry_dm_opts_free(opts);
    return rc;
}

static bool id_given(const struct dm_args *a, const char *id)
{
    bool found = false;

    for (unsigned i = 0; a->devices && a->devices[i] && !found; i++) {
        char *type = NULL, *uid = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (split_device(a->devices[i], &type, &uid, &opts) == 0)
            found = uid && strcmp(uid, id) == 0;
        g_free(type);
        g_free(uid);
        ferry_dm_opts_free(opts);
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
    else if ((rc = ferry_dm_opts_set(o, key, v)) == -E2BIG)
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
 * by dm-usb.c and dm-vfio.c (pci/host/pci-config.c).
 */
static int read_config(struct dm_args *a)
{
    static const char *const dm_keys[] = { "name", "connect", "control", "serial", "serial-in",
                                           "no-defaults", "devices", NULL };
    /* read by dm-usb.c and usb/service.c */
    static const char *const usb_keys[] = { "qmp", "policy", "devices", NULL };
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
        struct ferry_dm_opts *o = is_qemu ? ferry_dm_opts_new() : NULL;
        int rc = 0;

        if (strcmp(grp, "dm") != 0 && !is_qemu && !is_usb) {
            g_autofree char *qg = ferry_text_quote(grp, 64);

            fprintf(stderr, "ferry-dm: %s: unknown group [%s] (dm, qemu, qemu:ID, usb, pci)\n",
                    a->config, qg);
            rc = -EINVAL;
        }
        if (rc == 0 && !strcmp(grp, "usb"))
            rc = check_keys(a->config, grp, (const char *const *)keys, usb_keys);
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
            if (grp[4] == ':' && !ferry_dm_opts_get(o, "id"))
                rc = qemu_opt_set(a->config, grp, o, "id", grp + 5);
            if (rc == 0) {
                g_ptr_array_add(a->qemu, o);
                o = NULL;
            }
        }
        ferry_dm_opts_free(o);
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

/* Tell the user where pty back ends are: they are useless unnamed. */
static void announce_ptys(struct ferry_dm *dm)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *root;
    JsonArray *devs;

    ferry_dm_query_devices(dm, b);
    root = json_builder_get_root(b);
    devs = json_node_get_array(root);
    for (guint i = 0; i < json_array_get_length(devs); i++) {
        JsonObject *o = json_array_get_object_element(devs, i);
        const char *out = json_object_get_string_member_with_default(o, "out", "");
        const char *in = json_object_get_string_member_with_default(o, "in", "");
        const char *pty = g_str_has_prefix(out, "pty:") ? out : g_str_has_prefix(in, "pty:")
                                                                  ? in : NULL;

        if (pty)
            fprintf(stderr, "ferry-dm: %s (%s) is on %s\n",
                    json_object_get_string_member(o, "id"),
                    json_object_get_string_member(o, "type"), pty + 4);
    }
    json_node_unref(root);
    g_object_unref(b);
}

/* Defaults first (the PCI bus before its functions), then the user's devices. */
static int add_devices(struct dm_main *m, const struct dm_args *a)
{
    int rc = 0;

    for (unsigned i = 0; !a->no_defaults && rc == 0 && i < G_N_ELEMENTS(default_devices); i++) {
        struct ferry_dm_opts *opts;

        if (id_given(a, default_devices[i].id))
            continue;       /* replaced by a --device with the same id */
        opts = ferry_dm_opts_new();
        if (strcmp(default_devices[i].type, "uart") == 0 &&
            (ferry_dm_opts_set(opts, "out", a->serial ? a->serial : "stdout") < 0 ||
             ferry_dm_opts_set(opts, "in", a->serial_in ? a->serial_in : "none") < 0))
            rc = -EINVAL;
        if (rc == 0)
            rc = ferry_dm_device_add(m->dm, default_devices[i].type, default_devices[i].id,
                                     opts, NULL);
        if (rc < 0)
            fprintf(stderr, "ferry-dm: default device %s (%s): %s\n", default_devices[i].id,
                    default_devices[i].type, strerror(-rc));
        ferry_dm_opts_free(opts);
    }
    for (unsigned i = 0; a->devices && a->devices[i] && rc == 0; i++)
        rc = add_user_device(m, a->devices[i]);
    for (guint i = 0; a->qemu && i < a->qemu->len && rc == 0; i++) {
        struct ferry_dm_opts *o = g_ptr_array_index(a->qemu, i), *rest = ferry_dm_opts_new();

        for (size_t k = 0; k < ferry_dm_opts_count(o); k++) {
            const char *key = ferry_dm_opts_key(o, k);

            if (strcmp(key, "id") != 0 && ferry_dm_opts_set(rest, key,
                                                            ferry_dm_opts_get(o, key)) < 0)
                rc = -E2BIG;
        }
        if (rc == 0)
            rc = ferry_dm_device_add(m->dm, "qemu", ferry_dm_opts_get(o, "id"), rest, NULL);
        if (rc < 0)
            fprintf(stderr, "ferry-dm: %s: [qemu] device %s: %s\n", a->config,
                    ferry_dm_opts_get(o, "device") ? ferry_dm_opts_get(o, "device") : "?",
                    strerror(-rc));
        ferry_dm_opts_free(rest);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Confinement                                                         */

#define DM_LISTS_MAX (FERRY_DM_TYPES_MAX + 2)

static void add_type_list(const char *type_name, const struct ferry_syscall_list **lists,
                          size_t *n)
{
    const struct ferry_dm_device_type *t = ferry_dm_device_type_find(type_name);

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
static size_t collect_lists(const struct dm_args *a, const struct ferry_syscall_list **lists)
{
    size_t n = 0;

    lists[n++] = &ferry_syscalls_base;
    if (ferry_sandbox_sanitized())
        lists[n++] = &ferry_syscalls_sanitizer;
    for (unsigned i = 0; !a->no_defaults && i < G_N_ELEMENTS(default_devices); i++)
        if (!id_given(a, default_devices[i].id))
            add_type_list(default_devices[i].type, lists, &n);
    for (unsigned i = 0; a->devices && a->devices[i]; i++) {
        char *type = NULL, *id = NULL;
        struct ferry_dm_opts *opts = NULL;

        if (split_device(a->devices[i], &type, &id, &opts) == 0)
            add_type_list(type, lists, &n);
        g_free(type);
        g_free(id);
        ferry_dm_opts_free(opts);
    }
    if (a->qemu && a->qemu->len)
        add_type_list("qemu", lists, &n);
    /* USB (dm-usb.c): libusb without discovery on fds, usbredir on socketpairs */
    if (dm_usb_wanted(a->qmp, a->config))
        lists[n++] = &ferry_syscalls_usbredir;
    return n;
}

/*
 * --user: default 'ferry'.  Only root can switch users: any other caller
 * keeps its uid (and still loses capabilities, gains no_new_privs and the
 * filter), said once.  An explicit --user that is not the caller fails in
 * ferry_sandbox_enter with a message naming it.
 */
static const char *sandbox_user(const struct dm_args *a)
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
    for (unsigned i = 0; (t = ferry_dm_device_type_nth(i)); i++)
        printf("  %-12s %s%s\n", t->name, t->desc ? t->desc : "",
               t->hotplug ? " [hotplug]" : "");
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */

static int connect_router(struct dm_main *m, const struct dm_args *a)
{
    struct ioreq_server_config cfg = {
        .name = a->name ? a->name : "ferry-dm",
        .ops = &srv_ops,
        .opaque = m,
    };
    int rc;

    if (a->connect)
        rc = ioreq_server_connect(a->connect, &cfg, &m->srv);
    else
        rc = ioreq_server_create(a->ioreq_fd, &cfg, &m->srv);
    if (rc < 0) {
        fprintf(stderr, "ferry-dm: cannot register with the hypervisor at %s: %s\n",
                a->connect ? a->connect : "--ioreq-fd", strerror(-rc));
        return rc;
    }
    return 0;
}

static int watch_server(struct dm_main *m)
{
    struct vcpu_arg *args;

    m->nr_vcpus = ioreq_server_nr_vcpus(m->srv);
    m->vcpu_ev = calloc(m->nr_vcpus, sizeof(*m->vcpu_ev));
    args = calloc(m->nr_vcpus ? m->nr_vcpus : 1, sizeof(*args));
    if (!m->vcpu_ev || !args) {
        free(args);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < m->nr_vcpus; i++) {
        args[i] = (struct vcpu_arg){ .m = m, .vcpu = i };
        m->vcpu_ev[i] = event_new(m->base, ioreq_server_vcpu_fd(m->srv, i), EV_READ | EV_PERSIST,
                                  vcpu_doorbell_cb, &args[i]);
        if (!m->vcpu_ev[i] || event_add(m->vcpu_ev[i], NULL) < 0)
            return -ENOMEM;
    }
    /* args[] lives as long as the events: freed with vcpu_ev[0]'s argument. */
    if (ioreq_server_buffered_fd(m->srv) >= 0) {
        m->buf_ev = event_new(m->base, ioreq_server_buffered_fd(m->srv), EV_READ | EV_PERSIST,
                              buffered_cb, m);
        if (!m->buf_ev || event_add(m->buf_ev, NULL) < 0)
            return -ENOMEM;
    }
    m->ctl_ev = event_new(m->base, ioreq_server_control_fd(m->srv), EV_READ | EV_PERSIST,
                          control_cb, m);
    if (!m->ctl_ev || event_add(m->ctl_ev, NULL) < 0)
        return -ENOMEM;
    if (!m->nr_vcpus)
        free(args);
    return 0;
}

static void map_guest_memory(struct dm_main *m)
{
    struct ioreq_msg_memory_reply regions;
    int memfd = -1;
    int rc = ioreq_server_get_memory(m->srv, &memfd, &regions);

    if (rc == 0) {
        rc = ferry_dm_set_guest_memory(m->dm, memfd, &regions);
        close(memfd);
    }
    if (rc < 0)
        ferry_log(rc == -ENOSYS ? FERRY_LOG_INFO : FERRY_LOG_WARNING, NULL,
                  "no guest memory for DMA: %s%s%s", strerror(-rc),
                  ioreq_server_last_error(m->srv)[0] ? ": " : "",
                  ioreq_server_last_error(m->srv));
}

static void teardown(struct dm_main *m)
{
    ferry_dm_control_close(m->control);
    dm_usb_free(m->usb);
    dm_vfio_free(m->vfio);
    dm_qmp_free(m->qmp);
    if (m->vcpu_ev) {
        void *args = m->nr_vcpus && m->vcpu_ev[0] ? event_get_callback_arg(m->vcpu_ev[0]) : NULL;

        for (unsigned i = 0; i < m->nr_vcpus; i++)
            if (m->vcpu_ev[i])
                event_free(m->vcpu_ev[i]);
        free(args);
        free(m->vcpu_ev);
    }
    if (m->buf_ev)
        event_free(m->buf_ev);
    if (m->ctl_ev)
        event_free(m->ctl_ev);
    for (unsigned i = 0; i < 2; i++)
        if (m->sig_ev[i])
            event_free(m->sig_ev[i]);
    /* Devices first (their irqfds and claims go back over the socket), then the server. */
    ferry_dm_destroy(m->dm);
    ioreq_server_destroy(m->srv);
    if (m->base)
        event_base_free(m->base);
}

int main(int argc, char **argv)
{
    struct dm_args a = { .ioreq_fd = -1 };
    gboolean verbose_seen = FALSE;
    GOptionEntry entries[] = {
        { "ioreq-fd", 0, 0, G_OPTION_ARG_INT, &a.ioreq_fd,
          "registered over this connected socket (ferry-hv starts us so)", "N" },
        { "connect", 'c', 0, G_OPTION_ARG_FILENAME, &a.connect,
          "register with the ferry-hv listening on this ioreq socket", "PATH" },
        { "name", 'n', 0, G_OPTION_ARG_STRING, &a.name, "guest name (logs, server name)", "NAME" },
        { "control", 's', 0, G_OPTION_ARG_FILENAME, &a.control,
          "QMP-style control socket to create", "PATH" },
        { "device", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &a.devices,
          "add a device (replaces the default with the same id)", "TYPE[,id=ID][,k=v...]" },
        { "no-defaults", 0, 0, G_OPTION_ARG_NONE, &a.no_defaults,
          "no default devices, only --device ones", NULL },
        { "serial", 0, 0, G_OPTION_ARG_STRING, &a.serial,
          "COM1 output: stdout, stderr, file:PATH, pty, socket:PATH, null", "OUT" },
        { "serial-in", 0, 0, G_OPTION_ARG_STRING, &a.serial_in,
          "COM1 input: none, stdin, pty, socket:PATH", "IN" },
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME, &a.qmp,
          "companion of the QEMU with this QMP socket: serve it host USB and PCI devices "
          "(without --connect/--ioreq-fd: only that, no ferry-hv)", "PATH" },
        { "config", 'f', 0, G_OPTION_ARG_FILENAME, &a.config,
          "read options and devices from a key file ([dm], [qemu])", "FILE" },
        { "list-devices", 0, 0, G_OPTION_ARG_NONE, &a.list, "list device types and exit", NULL },
        { "seccomp", 0, 0, G_OPTION_ARG_STRING, &a.seccomp,
          "seccomp filter: kill (default: a forbidden syscall is logged by name and ends "
          "ferry-dm), log (it runs and the kernel logs it), off", "kill|log|off" },
        { "user", 'u', 0, G_OPTION_ARG_STRING, &a.user,
          "unprivileged user to switch to (default: ferry; only when started as root)", "NAME" },
        { "no-namespaces", 0, 0, G_OPTION_ARG_NONE, &a.no_namespaces,
          "do not enter new mount/ipc/net/uts namespaces (systemd units provide them)", NULL },
        { "print-policy", 0, 0, G_OPTION_ARG_NONE, &a.print_policy,
          "print the confinement policy for the configured devices and exit", NULL },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose_seen,
          "more log output (-vv for debug)", NULL },
        { NULL },
    };
    struct dm_main m = { .status = DM_EXIT_FAILURE };
    GOptionContext *ctx;
    GError *err = NULL;
    int rc;

    /* -v may repeat (-vv, -v -v): count before GOption folds them into one flag. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--verbose") == 0)
            a.verbose++;
        else if (argv[i][0] == '-' && argv[i][1] == 'v' &&
                 strspn(argv[i] + 1, "v") == strlen(argv[i] + 1))
            a.verbose += (int)strlen(argv[i] + 1);
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
    if (a.list) {
        list_devices();
        return DM_EXIT_OK;
    }
    a.qemu = g_ptr_array_new_with_free_func((GDestroyNotify)ferry_dm_opts_free);
    if ((a.config && read_config(&a) < 0) || check_device_specs(&a) < 0) {
        m.status = DM_EXIT_USAGE;
        goto out_args;
    }
    enum ferry_seccomp_mode mode = FERRY_SECCOMP_KILL;
    if (a.seccomp && ferry_sandbox_parse_mode(a.seccomp, &mode) < 0) {
        fprintf(stderr, "ferry-dm: --seccomp=%s: use kill, log or off\n", a.seccomp);
        m.status = DM_EXIT_USAGE;
        goto out_args;
    }
    const struct ferry_syscall_list *lists[DM_LISTS_MAX];
    size_t nr_lists = collect_lists(&a, lists);
    struct ferry_sandbox_config sbx = {
        .user = a.user ? a.user : FERRY_SANDBOX_DEFAULT_USER,
        .mode = mode,
        .namespaces = !a.no_namespaces,
        .lists = lists,
        .nr_lists = nr_lists,
        .log = ferry_log_glib,
        .opaque = NULL,
    };
    if (a.print_policy) {
        m.status = ferry_sandbox_print_policy(&sbx, stdout) ? DM_EXIT_FAILURE : DM_EXIT_OK;
        goto out_args;
    }
    /* --qmp alone: the companion of a QEMU, USB and PCI only (no ferry-hv, no devices) */
    bool companion = a.qmp && a.ioreq_fd < 0 && !a.connect;
    if ((a.ioreq_fd < 0) == !a.connect && !companion) {
        fprintf(stderr, "ferry-dm: give exactly one of --ioreq-fd=N and --connect PATH "
                "(or --qmp PATH alone)\n");
        m.status = DM_EXIT_USAGE;
        goto out_args;
    }
    ferry_log_init("ferry-dm", a.verbose);
    signal(SIGPIPE, SIG_IGN);
    /* Libraries' lazy set-up (charset, iconv, json-glib) now, while files can
     * be opened: before the QEMU launchers fork and before confinement. */
    ferry_dm_prewarm();
    sbx.user = sandbox_user(&a);

    m.base = event_base_new();
    if (!m.base) {
        fprintf(stderr, "ferry-dm: cannot create the event loop\n");
        goto out;
    }
    struct ferry_dm_config cfg = {
        .name = a.name ? a.name : "guest",
        .base = m.base,
        .ops = &backend_ops,
        .opaque = &m,
        .log = ferry_log_glib,
        .log_opaque = NULL,
    };
    rc = ferry_dm_create(&cfg, &m.dm);
    if (rc < 0) {
        fprintf(stderr, "ferry-dm: cannot create the device model: %s\n", strerror(-rc));
        goto out;
    }
    /* QEMU launchers (forked while adding qemu devices, before any thread) confine the same way. */
    ferry_dm_set_sandbox(m.dm, &sbx);
    /* Registered and guest RAM mapped first: devices may need RAM to start (qemu). */
    if (!companion && connect_router(&m, &a) < 0)
        goto out;
    if (!companion && watch_server(&m) < 0) {
        fprintf(stderr, "ferry-dm: cannot watch the ioreq fds: out of memory\n");
        goto out;
    }
    if (!companion) {
        ferry_dm_set_nr_vcpus(m.dm, m.nr_vcpus);
        map_guest_memory(&m);
    }
    if (!companion && add_devices(&m, &a) < 0) {
        m.status = DM_EXIT_USAGE;
        goto out;
    }
    announce_ptys(m.dm);
    if (a.control) {
        rc = ferry_dm_control_open(m.dm, a.control, &control_ops, &m, &m.control);
        if (rc < 0) {
            fprintf(stderr, "ferry-dm: cannot create control socket %s: %s\n", a.control,
                    strerror(-rc));
            goto out;
        }
    }
    /* One QMP connection to the QEMU (dm-qmp.h), shared by USB and PCI:
     * --qmp, or qmp= in [usb] or [pci]. */
    rc = dm_vfio_load(a.config, &m.vfio);
    if (rc < 0) {
        m.status = DM_EXIT_USAGE;
        goto out;
    }
    {
        g_autofree char *usb_qmp = NULL;
        const char *qmp = a.qmp && *a.qmp ? a.qmp : NULL;

        (void)dm_usb_config_qmp(a.config, &usb_qmp);
        if (!qmp)
            qmp = usb_qmp && *usb_qmp ? usb_qmp : dm_vfio_config_qmp(m.vfio);
        if (!qmp && dm_vfio_has_devices(m.vfio)) {
            fprintf(stderr, "ferry-dm: %s: [pci] devices need the QMP socket of the guest's "
                    "QEMU (--qmp PATH, or qmp= in [pci] or [usb])\n", a.config);
            m.status = DM_EXIT_USAGE;
            goto out;
        }
        /* PCI (dm-vfio.h): the [pci] devices bound to vfio-pci while still
         * root (sysfs), first: a device that is not viable stops us before
         * QEMU is touched. */
        if (dm_vfio_prepare(m.vfio) < 0)
            goto out;
        if (qmp && dm_qmp_open(m.base, qmp, qmp_gone, &m, &m.qmp) < 0) {
            dm_vfio_release_prepared(m.vfio);
            goto out;
        }
        /* USB (dm-usb.h): devices opened now, before the sandbox.  Confined
         * for USB: no open() (seccomp) or no /dev (the new mount namespace). */
        rc = dm_usb_start(m.base, m.qmp, qmp ? qmp : a.qmp, a.config,
                          mode != FERRY_SECCOMP_OFF || sbx.namespaces, usb_qemu_gone, &m,
                          &m.usb);
        if (rc < 0) {
            dm_vfio_release_prepared(m.vfio);
            goto out;
        }
        /* ... then plugged into QEMU */
        if (m.qmp && dm_vfio_start(m.vfio, m.qmp, qmp) < 0)
            goto out;
    }
    if (m.control)
        ferry_dm_control_set_handler(m.control, control_command, &m);
    m.sig_ev[0] = evsignal_new(m.base, SIGINT, signal_cb, &m);
    m.sig_ev[1] = evsignal_new(m.base, SIGTERM, signal_cb, &m);
    for (unsigned i = 0; i < 2; i++)
        if (m.sig_ev[i])
            event_add(m.sig_ev[i], NULL);
    /* Everything is open: confine, then claim and serve. */
    rc = ferry_sandbox_enter(&sbx);
    if (rc < 0) {
        fprintf(stderr, "ferry-dm: cannot confine itself: %s (see the log line above; "
                "--user NAME picks another user, --seccomp=off --no-namespaces for "
                "debugging)\n", strerror(-rc));
        goto out;
    }
    if (mode != FERRY_SECCOMP_OFF)
        ferry_dm_set_confined(m.dm, lists, nr_lists);
    rc = ferry_dm_start(m.dm);
    if (rc < 0) {
        fprintf(stderr, "ferry-dm: cannot claim the devices' ranges: %s%s%s\n", strerror(-rc),
                ioreq_server_last_error(m.srv)[0] ? ": " : "", ioreq_server_last_error(m.srv));
        goto out;
    }
    rc = companion ? 0 : ioreq_server_enable(m.srv, true);
    if (rc < 0) {
        fprintf(stderr, "ferry-dm: cannot enable the ioreq server: %s\n", strerror(-rc));
        goto out;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "serving guest %s: %zu devices, %u vcpus",
              ferry_dm_name(m.dm), ferry_dm_device_count(m.dm), m.nr_vcpus);
    event_base_dispatch(m.base);
    m.status = DM_EXIT_OK;
out:
    teardown(&m);
out_args:
    g_ptr_array_free(a.qemu, TRUE);
    g_free(a.config);
    g_free(a.connect);
    g_free(a.name);
    g_free(a.control);
    g_free(a.serial);
    g_free(a.serial_in);
    g_strfreev(a.devices);
    g_free(a.seccomp);
    g_free(a.user);
    g_free(a.qmp);
    /* Confined: no atexit work (nor LeakSanitizer's ptrace), exit_group at once. */
    if (ferry_sandbox_active())
        ferry_sandbox_exit(m.status);
    return m.status;
}
