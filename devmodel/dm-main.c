// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's wiring (dm-main.h): the options (dm-config.h) made into a
 * running device model.  In this order: the framework, registered with
 * the router and guest RAM mapped (dm-server.h), its devices, the control
 * socket, companion mode's QMP connection, USB and PCI, then
 * confinement (sandbox/sandbox.h: the filter of the base list plus the
 * lists of the device types present), and only then the devices' ranges
 * claimed and the first ioreq served.  main.c calls this and nothing else;
 * tests link the same code (tests/security's ferry-dm-poke).
 */
#include "devmodel/dm-main.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/cpus.h"
#include "common/log-glib.h"
#include "devmodel/control.h"
#include "devmodel/dm-config.h"
#include "companion/dm-qmp.h"
#include "devmodel/dm-replace.h"
#include "devmodel/dm-state.h"
#include "common/qmp.h"
#include "devmodel/dm-server.h"
#include "companion/dm-usb.h"
#include "companion/dm-vfio.h"
#include "devmodel/dm.h"
#include "devmodel/prewarm.h"
#include "sandbox/sandbox.h"

struct dm_program {
    struct event_base *base;
    struct ferry_dm *dm;
    struct ferry_dm_server *server;     /* the ioreq server side (unconnected: companion) */
    struct ferry_dm_control *control;
    struct companion_usb *usb;
    struct companion_qmp *qmp;             /* the one QMP connection to QEMU (USB and PCI) */
    struct companion_vfio *vfio;
    struct event *sig_ev[2];
    struct dm_replace *replace;         /* the launcher of a successor (x-replace) */
    struct dm_replace_companion companion;      /* companion mode's part of a replace */
    struct ferry_dm_control_pending *replace_pending;   /* x-replace waiting for the successor */
    struct event *replace_ev;
    bool replace_offered;               /* FDS sent: waiting for PREPARED */
    char *replace_fault;
    const char *guest;
    bool replaced;                      /* a successor serves: exit, touch nothing */
    int status;
};

/* The command line, for a successor's (dm_main keeps it). */
static int dm_argc;
static char **dm_argv;

static char *replace_reply(struct dm_program *m, json_t *id, pid_t pid)
{
    json_t *ret = json_object();
    uint64_t at, len;

    dm_replace_last_freeze(m->replace, &at, &len);
    json_object_set_new(ret, "pid", json_integer(pid));
    /* Where the guest's wait for ferry-dm was (bench/dm-replace places its reads with it). */
    json_object_set_new(ret, "freeze-monotonic-ns", json_integer((json_int_t)at));
    json_object_set_new(ret, "frozen-ns", json_integer((json_int_t)len));
    return dm_control_reply(id, ret);
}

/* x-replace's end, either way: the client's answer; on success leave the loop for good. */
static void replace_done(struct dm_program *m, struct ferry_dm_control_pending *p, int rc,
                         pid_t pid, const char *why)
{
    if (rc < 0) {
        g_autofree char *msg = g_strdup_printf("x-replace: %s", why);
        dm_control_complete(p, dm_control_reply_error(dm_control_pending_id(p), msg));
        return;
    }
    /* dm_run exits without a teardown: every fd is the successor's now. */
    (void)dm_control_complete_now(p, replace_reply(m, dm_control_pending_id(p), pid));
    m->replaced = true;
    event_base_loopbreak(m->base);
}

/*
 * The successor spoke (or went, or the time is up).  After STARTED: offer
 * it what holds still (dm_replace_offer) and serve on.  After PREPARED: stop
 * serving and hand it the rest (dm_replace_commit).
 */
static void replace_step(evutil_socket_t fd, short what, void *arg)
{
    struct dm_program *m = arg;
    struct ferry_dm_control_pending *p = m->replace_pending;
    char why[512];
    pid_t pid = 0;
    int rc;

    if (what & EV_TIMEOUT) {
        event_free(m->replace_ev);
        m->replace_ev = NULL;
        m->replace_pending = NULL;
        g_clear_pointer(&m->replace_fault, g_free);
        dm_replace_cancel(m->replace);
        snprintf(why, sizeof(why), "the successor did not %s within %d ms",
                 m->replace_offered ? "get ready" : "start", DM_REPLACE_TIMEOUT_MS);
        ferry_log(FERRY_LOG_WARNING, NULL, "replace refused, this ferry-dm goes on serving: %s",
                  why);
        m->replace_offered = false;
        replace_done(m, p, -ETIMEDOUT, 0, why);
        return;
    }
    if (!m->replace_offered) {
        struct dm_replace_parts parts = { m->dm, m->server, m->control, m->guest,
                                          m->qmp ? &m->companion : NULL };
        struct timeval tv = { DM_REPLACE_TIMEOUT_MS / 1000, 0 };

        rc = dm_replace_offer(m->replace, &parts, m->replace_fault, why, sizeof(why));
        if (rc == 0 && event_add(m->replace_ev, &tv) == 0) {
            m->replace_offered = true;
            return;     /* serving on until PREPARED */
        }
        if (rc == 0) {
            dm_replace_cancel(m->replace);
            snprintf(why, sizeof(why), "cannot wait for the successor: out of memory");
        }
    } else {
        rc = dm_replace_commit(m->replace, m->replace_fault, &pid, why, sizeof(why));
    }
    event_free(m->replace_ev);
    m->replace_ev = NULL;
    m->replace_pending = NULL;
    m->replace_offered = false;
    g_clear_pointer(&m->replace_fault, g_free);
    replace_done(m, p, rc < 0 ? rc : 0, pid, why);
}

/*
 * x-replace (docs/control.md): start a successor; the rest when it has
 * started (replace_started), the loop serving meanwhile.
 */
static char *cmd_replace(struct dm_program *m, struct ferry_dm_control_req *req,
                         json_t *args, json_t *id)
{
    const char *binary = ferry_json_string(args, "binary", NULL);
    const char *fault = ferry_json_string(args, "x-fault", NULL);
    char why[512];
    pid_t pid = 0;

    if (!m->replace)
        return dm_control_reply_error(id, "x-replace: this ferry-dm cannot be replaced "
                                      "(--libvirt, or its successor launcher failed)");
    if (binary && strcmp(binary, dm_replace_binary(m->replace)) != 0) {
        snprintf(why, sizeof(why), "x-replace: this ferry-dm starts %s as its successor "
                 "(ferry-dm --successor PATH); its launcher takes no other program",
                 dm_replace_binary(m->replace));
        return dm_control_reply_error(id, why);
    }
    if (m->vfio && companion_vfio_assigned(m->vfio))
        return dm_control_reply_error(id, "x-replace: not yet for a ferry-dm with PCI devices "
                                      "assigned to its guest (vfio-pci): nothing was changed");
    if (m->qmp && dm_server_connected(m->server) &&
        !(dm_usb_host_qmp(m->dm) && !strcmp(companion_qmp_path(m->qmp), dm_usb_host_qmp(m->dm))))
        return dm_control_reply_error(id, "x-replace: not yet for a Ferry guest whose ferry-dm "
                                      "also serves another QEMU's USB or PCI (--qmp, qmp= in "
                                      "[usb] or [pci]): nothing was changed");
    if (fault && strcmp(fault, "checksum") && strcmp(fault, "truncate") &&
        strcmp(fault, "version") && strcmp(fault, "stale") && strcmp(fault, "fds"))
        return dm_control_reply_error(id, "x-replace: x-fault is checksum, truncate, version, "
                                      "stale or fds");
    if (m->replace_pending)
        return dm_control_reply_error(id, "x-replace: a replace is under way already");
    int sock;
    int rc = dm_replace_begin(m->replace, &sock, why, sizeof(why));
    if (rc < 0) {
        g_autofree char *msg = g_strdup_printf("x-replace: %s", why);
        return dm_control_reply_error(id, msg);
    }
    /* Serve on while the successor execs and warms up; the rest when it says STARTED. */
    struct ferry_dm_control_pending *p = dm_control_defer(req);
    if (p) {
        struct timeval tv = { DM_REPLACE_TIMEOUT_MS / 1000, 0 };
        m->replace_ev = event_new(m->base, sock, EV_READ, replace_step, m);
        if (m->replace_ev && event_add(m->replace_ev, &tv) == 0) {
            m->replace_pending = p;
            m->replace_fault = g_strdup(fault);
            return FERRY_DM_CONTROL_DEFERRED;
        }
        if (m->replace_ev)
            event_free(m->replace_ev);
        m->replace_ev = NULL;
        dm_replace_cancel(m->replace);
        dm_control_complete(p, dm_control_reply_error(dm_control_pending_id(p),
                                                      "x-replace: out of memory"));
        return FERRY_DM_CONTROL_DEFERRED;
    }
    /* No client to answer later (dm_control_execute): all of it now. */
    struct dm_replace_parts parts = { m->dm, m->server, m->control, m->guest,
                                      m->qmp ? &m->companion : NULL };
    rc = dm_replace_run(m->replace, &parts, fault, &pid, why, sizeof(why));
    if (rc < 0) {
        g_autofree char *msg = g_strdup_printf("x-replace: %s", why);
        return dm_control_reply_error(id, msg);
    }
    m->replaced = true;
    event_base_loopbreak(m->base);
    return replace_reply(m, id, pid);
}

/*
 * Companion mode's part of a replace (dm-replace.h): the QMP connection as
 * it is (QEMU negotiated its capabilities once, a successor must not greet
 * again) and the USB service with every channel (companion/dm-usb.h).
 */
static int companion_save(void *opaque, GByteArray *state, int *fds, uint32_t *roles,
                          unsigned max, unsigned *n, char *why, size_t why_len)
{
    struct dm_program *m = opaque;
    struct ferry_qmp *q = companion_qmp_conn(m->qmp);
    unsigned nu = 0;
    size_t unread;
    int rc;

    *n = 0;
    /* everything QEMU said is read and parsed: a half message cannot be handed over */
    (void)ferry_qmp_drain(q);
    (void)ferry_qmp_unread(q, &unread);
    if (unread) {
        snprintf(why, why_len, "a QMP message from QEMU is half received (%zu bytes): retry",
                 unread);
        return -EAGAIN;
    }
    if (m->usb) {
        rc = companion_usb_handover_save(m->usb, state, fds, max, &nu, why, why_len);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < nu; i++)
        roles[i] = DM_STATE_FD_COMPANION | i << 8;
    *n = nu;
    return 0;
}

/* The QMP connection passes early (FDS): the successor adopts it before it confines itself. */
static int companion_qmp_fd_get(void *opaque)
{
    struct dm_program *m = opaque;

    return m->qmp ? companion_qmp_fd(m->qmp) : -1;
}

static void companion_resume(void *opaque)
{
    struct dm_program *m = opaque;

    companion_usb_handover_resume(m->usb);
}

static int companion_restore(void *opaque, const uint8_t *state, size_t len, const int *fds,
                             unsigned n, char *why, size_t why_len)
{
    struct dm_program *m = opaque;

    if (!len && !n)
        return 0;           /* the predecessor served no USB */
    if (!m->usb) {
        snprintf(why, why_len, "the predecessor served USB channels, this ferry-dm has no USB "
                 "service");
        return -EINVAL;
    }
    return companion_usb_handover_restore(m->usb, state, len, fds, n, why, why_len);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct dm_program *m = arg;

    ferry_log(FERRY_LOG_INFO, NULL, "%s: detaching from the guest", strsignal((int)sig));
    event_base_loopbreak(m->base);
}

/* Companion mode: the QEMU we serve has gone, and so do we. */
static void usb_qemu_gone(void *opaque)
{
    struct dm_program *m = opaque;

    if (!dm_server_connected(m->server))
        event_base_loopbreak(m->base);
}

/* ferry-dm's QMP connection ended: USB is told, and a companion exits. */
static void qmp_gone(void *opaque)
{
    struct dm_program *m = opaque;

    companion_usb_qmp_lost(m->usb);
    usb_qemu_gone(m);
}

/*
 * The xhci device's remote QEMU was restarted: the new QEMU's QMP socket
 * (from the launcher, so a confined ferry-dm gets it too) replaces the old
 * connection, which ended with the old QEMU, and the USB service plugs the
 * devices in again.
 */
static void usb_host_restarted(void *opaque, int fd)
{
    struct dm_program *m = opaque;
    const char *name = dm_usb_host_qmp(m->dm);
    struct companion_qmp *d = NULL;

    if (!m->usb || !name || !m->qmp || strcmp(companion_qmp_path(m->qmp), name) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fd < 0 || companion_qmp_open_fd(m->base, fd, name, qmp_gone, m, &d) < 0) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb: no QMP connection to the restarted xhci "
                  "QEMU (%s): its USB devices stay unplugged", name);
        return;
    }
    if (companion_usb_reconnect(m->usb, d) < 0) {
        companion_qmp_free(d);
        return;
    }
    companion_qmp_free(m->qmp);
    m->qmp = d;
    ferry_log(FERRY_LOG_INFO, NULL, "usb: reconnected to the restarted xhci QEMU (%s)", name);
}

/* Control commands beyond the framework's: USB's, then PCI passthrough's. */
static char *control_command(void *opaque, struct ferry_dm_control_req *req, const char *cmd,
                             json_t *args, json_t *id, int *fd)
{
    struct dm_program *m = opaque;
    if (strcmp(cmd, "x-replace") == 0)
        return cmd_replace(m, req, args, id);
    char *r = m->usb ? companion_usb_command(m->usb, req, cmd, args, id, fd) : NULL;

    return r ? r : companion_vfio_command(m->vfio, req, cmd, args, id);
}

static void control_quit(void *opaque)
{
    struct dm_program *m = opaque;

    ferry_log(FERRY_LOG_INFO, NULL, "quit from the control socket: detaching from the guest");
    event_base_loopbreak(m->base);
}

static const struct ferry_dm_control_ops control_ops = { .quit = control_quit };

/* Tell the user where pty back ends are: they are useless unnamed. */
static void announce_ptys(struct ferry_dm *dm)
{
    json_t *devs = dm_query_devices(dm), *o;
    size_t i;

    json_array_foreach(devs, i, o) {
        const char *out = ferry_json_string(o, "out", "");
        const char *in = ferry_json_string(o, "in", "");
        const char *pty = g_str_has_prefix(out, "pty:") ? out : g_str_has_prefix(in, "pty:")
                                                                  ? in : NULL;

        if (pty)
            fprintf(stderr, "ferry-dm: %s (%s) is on %s\n",
                    ferry_json_string(o, "id", "?"), ferry_json_string(o, "type", "?"), pty + 4);
    }
    json_decref(devs);
}

static void teardown(struct dm_program *m)
{
    if (m->replace_ev)
        event_free(m->replace_ev);
    if (m->replace_pending)
        dm_control_complete(m->replace_pending, NULL);
    g_free(m->replace_fault);
    dm_replace_free(m->replace);
    dm_control_close(m->control);
    companion_usb_free(m->usb);
    companion_vfio_free(m->vfio);
    companion_qmp_free(m->qmp);
    for (unsigned i = 0; i < 2; i++)
        if (m->sig_ev[i])
            event_free(m->sig_ev[i]);
    /* Devices first (their irqfds and claims go back over the socket), then the server. */
    dm_destroy(m->dm);
    dm_server_free(m->server);
    if (m->base)
        event_base_free(m->base);
}

/* A successor that cannot take over: say why to its predecessor and go, touching nothing. */
static _Noreturn void takeover_failed(struct dm_takeover *t, int rc, const char *why)
{
    ferry_log(FERRY_LOG_ERROR, NULL, "cannot take over: %s", why);
    dm_takeover_refuse(t, rc, why);
    fflush(stderr);
    if (sandbox_active())
        sandbox_exit(DM_EXIT_FAILURE);
    _exit(DM_EXIT_FAILURE);
}

/* The successor's command line: ours with --take-over=3 (and no earlier one). */
static char **successor_argv(const char *binary)
{
    GPtrArray *v = g_ptr_array_new();

    g_ptr_array_add(v, g_strdup(binary));
    for (int i = 1; i < dm_argc; i++) {
        if (g_str_has_prefix(dm_argv[i], "--take-over"))
            continue;
        g_ptr_array_add(v, g_strdup(dm_argv[i]));
    }
    g_ptr_array_add(v, g_strdup_printf("--take-over=%d", DM_REPLACE_FD));
    g_ptr_array_add(v, NULL);
    return (char **)g_ptr_array_free(v, FALSE);
}

static char *own_binary(const struct dm_args *a)
{
    if (a->successor)
        return g_strdup(a->successor);
    if (dm_argv && dm_argv[0] && dm_argv[0][0] == '/')
        return g_strdup(dm_argv[0]);
    return g_file_read_link("/proc/self/exe", NULL);
}

/* The launcher of this ferry-dm's own successor (x-replace), forked before confinement. */
static void prepare_successor(const struct dm_args *a, const struct ferry_sandbox_config *sbx,
                              struct dm_program *m)
{
    g_autofree char *bin = own_binary(a);
    g_auto(GStrv) sargv = bin ? successor_argv(bin) : NULL;
    int rc = sargv ? dm_replace_prepare((const char *const *)sargv, sbx, &m->replace) : -ENOENT;

    if (rc < 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "x-replace unavailable: cannot start the "
                  "successor launcher for %s: %s", bin ? bin : "this binary", strerror(-rc));
}

static int dm_run(const struct dm_args *a)
{
    struct dm_program m = { .status = DM_EXIT_FAILURE };
    struct dm_takeover *takeover = NULL;
    gint64 tt[8] = { 0 };               /* a successor's steps after the fds, for the log */
    char why[512];
    int rc;
    enum ferry_seccomp_mode mode = FERRY_SECCOMP_KILL;

    if (a->seccomp && sandbox_parse_mode(a->seccomp, &mode) < 0) {
        fprintf(stderr, "ferry-dm: --seccomp=%s: use kill, log or off\n", a->seccomp);
        return DM_EXIT_USAGE;
    }
    const struct ferry_syscall_list *lists[DM_LISTS_MAX];
    size_t nr_lists = dm_args_syscall_lists(a, lists);
    struct ferry_sandbox_config sbx = {
        .user = a->user ? a->user : FERRY_SANDBOX_DEFAULT_USER,
        .mode = mode,
        .namespaces = !a->no_namespaces,
        .lists = lists,
        .nr_lists = nr_lists,
        .log = ferry_log_glib,
        .opaque = NULL,
    };
    if (a->print_policy)
        return sandbox_print_policy(&sbx, stdout) ? DM_EXIT_FAILURE : DM_EXIT_OK;
    /* --qmp alone: the companion of a QEMU, USB and PCI only (no ferry-hv, no devices) */
    bool companion = (a->qmp || a->libvirt) && a->ioreq_fd < 0 && !a->connect;
    if ((a->ioreq_fd < 0) == !a->connect && !companion) {
        fprintf(stderr, "ferry-dm: give exactly one of --ioreq-fd=N and --connect PATH "
                "(or --qmp PATH or --libvirt DOMAIN alone)\n");
        return DM_EXIT_USAGE;
    }
    if (a->libvirt && (a->qmp || !companion)) {
        fprintf(stderr, "ferry-dm: --libvirt DOMAIN stands alone: libvirt owns that QEMU's "
                "monitor (no --qmp, --connect or --ioreq-fd with it)\n");
        return DM_EXIT_USAGE;
    }
    ferry_log_init("ferry-dm", a->verbose);
    if (a->cpus) {
        cpu_set_t set;

        if (ferry_cpus_parse(a->cpus, &set, why, sizeof(why)) < 0) {
            fprintf(stderr, "ferry-dm: --cpus: %s\n", why);
            m.status = DM_EXIT_USAGE;
            goto out;
        }
        /* Before any thread or child: they all inherit it. */
        if (sched_setaffinity(0, sizeof(set), &set) < 0) {
            fprintf(stderr, "ferry-dm: --cpus %s: %s\n", a->cpus, strerror(errno));
            goto out;
        }
        ferry_log(FERRY_LOG_INFO, NULL, "placement: ferry-dm on CPUs %s", a->cpus);
    }
    signal(SIGPIPE, SIG_IGN);
    /* Libraries' lazy set-up (charset, iconv, jansson's hash seed) now, while files can
     * be opened: before the QEMU launchers fork and before confinement. */
    dm_prewarm();
    sbx.user = dm_args_sandbox_user(a);

    m.base = event_base_new();
    if (!m.base) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot create the event loop");
        goto out;
    }
    if (dm_server_new(m.base, &m.server) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot create the ioreq server: out of memory");
        goto out;
    }
    struct ferry_dm_config cfg = {
        .name = a->name ? a->name : "guest",
        .base = m.base,
        .ops = dm_server_backend(),
        .opaque = m.server,
        .log = ferry_log_glib,
        .log_opaque = NULL,
    };
    rc = dm_create(&cfg, &m.dm);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot create the device model: %s", strerror(-rc));
        goto out;
    }
    dm_server_set_dm(m.server, m.dm);
    dm_server_set_pinned(m.server, a->cpus != NULL);
    /* QEMU launchers (forked while adding qemu devices, before any thread) confine the same way. */
    dm_set_sandbox(m.dm, &sbx);
    m.guest = cfg.name;
    if (a->take_over >= 0) {
        /* What needs nothing of the predecessor's, while it still serves. */
        if (a->control && !companion && !a->qmp && !a->libvirt)
            prepare_successor(a, &sbx, &m);
        if (dm_takeover_started(a->take_over) < 0)
            takeover_failed(NULL, -EPIPE, "the predecessor went away");
        /* A successor: everything comes from the predecessor, and any failure is its news. */
        if (a->libvirt)
            takeover_failed(NULL, -EOPNOTSUPP, "ferry-dm --libvirt cannot be replaced yet");
        rc = dm_takeover_receive(a->take_over, &takeover, why, sizeof(why));
        if (rc < 0)
            takeover_failed(takeover, rc, why);
        tt[0] = g_get_monotonic_time();
        rc = dm_takeover_adopt(takeover, m.server, why, sizeof(why));
        if (rc < 0)
            takeover_failed(takeover, rc, why);
        tt[1] = g_get_monotonic_time();
    } else if (!companion && dm_server_connect(m.server, a->name, a->connect, a->ioreq_fd) < 0) {
        /* Registered and guest RAM mapped first: devices may need RAM to start (qemu). */
        goto out;
    }
    if (!companion && dm_args_add_devices(a, m.dm) < 0) {
        if (takeover)
            takeover_failed(takeover, -EINVAL, "cannot add the devices of the config");
        m.status = DM_EXIT_USAGE;
        goto out;
    }
    tt[2] = g_get_monotonic_time();
    if (!takeover)
        announce_ptys(m.dm);
    if (takeover && a->control) {
        rc = dm_control_adopt(m.dm, a->control, dm_takeover_control_fd(takeover), &control_ops,
                              &m, &m.control);
        if (rc < 0) {
            snprintf(why, sizeof(why), "cannot take over control socket %s: %s", a->control,
                     strerror(-rc));
            takeover_failed(takeover, rc, why);
        }
    } else if (a->control) {
        rc = dm_control_open(m.dm, a->control, &control_ops, &m, &m.control);
        if (rc < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "cannot create control socket %s: %s", a->control,
                    strerror(-rc));
            goto out;
        }
    }
    /* One QMP connection to the QEMU (dm-qmp.h), shared by USB and PCI:
     * --qmp, or qmp= in [usb] or [pci]. */
    rc = companion_vfio_load(a->config, &m.vfio);
    if (rc < 0) {
        m.status = DM_EXIT_USAGE;
        goto out;
    }
    {
        g_autofree char *usb_qmp = NULL;
        const char *qmp = a->qmp && *a->qmp ? a->qmp : NULL;

        (void)companion_usb_config_qmp(a->config, &usb_qmp);
        if (!qmp)
            qmp = usb_qmp && *usb_qmp ? usb_qmp : companion_vfio_config_qmp(m.vfio);
        /* a Ferry guest's own USB controller (the xhci device): its QEMU's QMP */
        if (!qmp && !companion)
            qmp = dm_usb_host_qmp(m.dm);
        if (!qmp && companion_vfio_has_devices(m.vfio)) {
            ferry_log(FERRY_LOG_ERROR, NULL, "%s: [pci] devices need the QMP socket of the guest's "
                    "QEMU (--qmp PATH, or qmp= in [pci] or [usb])", a->config);
            m.status = DM_EXIT_USAGE;
            goto out;
        }
        /* PCI (dm-vfio.h): the [pci] devices bound to vfio-pci while still
         * root (sysfs), first: a device that is not viable stops us before
         * QEMU is touched. */
        {
            /* no --name, no control socket: the config's name (vm1.conf: vm1) */
            char *base = a->config ? g_path_get_basename(a->config) : NULL;
            char *guest;

            if (base && g_str_has_suffix(base, ".conf"))
                base[strlen(base) - 5] = '\0';
            guest = companion_guest_name(a->name, a->control, base);
            g_free(base);
            int pr = companion_vfio_prepare(m.vfio, guest ? guest : "");

            g_free(guest);
            if (pr < 0)
                goto out;
        }
        /* the xhci's QEMU: its monitor is already connected (an inherited socketpair) */
        int qmp_fd = qmp && !companion && qmp == dm_usb_host_qmp(m.dm)
                     ? dm_usb_host_take_fd(m.dm) : -1;
        if (qmp && takeover) {
            /* the predecessor's connection (a companion's, or the xhci's monitor): QEMU
             * greeted and negotiated it once */
            int qfd = dm_takeover_fd(takeover, DM_STATE_FD_QMP);

            if (qfd < 0)
                takeover_failed(takeover, -EINVAL, "the predecessor passed no QMP connection");
            if (companion_qmp_adopt(m.base, qmp, qfd, NULL, 0, qmp_gone, &m, &m.qmp) < 0)
                takeover_failed(takeover, -ENOMEM, "cannot take over the QMP connection");
        } else if (qmp && companion_qmp_open_fd(m.base, qmp_fd, qmp, qmp_gone, &m, &m.qmp) < 0) {
            companion_vfio_release_prepared(m.vfio);
            goto out;
        }
        /* USB (dm-usb.h): devices opened now, before the sandbox.  Confined
         * for USB: no open() (seccomp) or no /dev (the new mount namespace). */
        if (a->libvirt)
            rc = companion_usb_start_libvirt(m.base, a->libvirt, a->config,
                                             mode != FERRY_SECCOMP_OFF || sbx.namespaces,
                                             &m.usb);
        else
            rc = companion_usb_start(m.base, m.qmp, qmp ? qmp : a->qmp, a->config,
                                     (const char *const *)a->usb, a->usb_policy, a->name,
                                     a->control, mode != FERRY_SECCOMP_OFF || sbx.namespaces,
                                     takeover != NULL, usb_qemu_gone, &m, &m.usb);
        if (rc < 0) {
            companion_vfio_release_prepared(m.vfio);
            goto out;
        }
        /* ... then plugged into QEMU */
        if (m.qmp && !takeover && companion_vfio_start(m.vfio, m.qmp, qmp) < 0)
            goto out;
    }
    if (m.usb && dm_usb_host_qmp(m.dm))
        dm_usb_host_set_handler(m.dm, usb_host_restarted, &m);
    if (m.control)
        dm_control_set_handler(m.control, control_command, &m);
    tt[4] = g_get_monotonic_time();
    /* The launcher of a successor (x-replace): forked now, before confinement (a successor
     * forked it before it said STARTED). */
    m.companion = (struct dm_replace_companion){ companion_qmp_fd_get, companion_save,
                                                 companion_resume, companion_restore, &m };
    if (m.control && !a->libvirt && !m.replace)
        prepare_successor(a, &sbx, &m);
    m.sig_ev[0] = evsignal_new(m.base, SIGINT, signal_cb, &m);
    m.sig_ev[1] = evsignal_new(m.base, SIGTERM, signal_cb, &m);
    for (unsigned i = 0; i < 2; i++)
        if (m.sig_ev[i])
            event_add(m.sig_ev[i], NULL);
    tt[7] = g_get_monotonic_time();
    /* Everything is open: confine, then claim and serve. */
    rc = sandbox_enter(&sbx);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot confine itself: %s (see the log line above; "
                "--user NAME picks another user, --seccomp=off --no-namespaces for "
                "debugging)", strerror(-rc));
        /* a successor touches nothing of what it was given (the teardown would unlink
         * the control socket its predecessor still serves, release devices) */
        if (takeover)
            takeover_failed(takeover, rc, "cannot confine itself (see its log)");
        goto out;
    }
    if (mode != FERRY_SECCOMP_OFF)
        dm_set_confined(m.dm, lists, nr_lists);
    if (takeover) {
        struct dm_replace_parts parts = { m.dm, m.server, m.control, m.guest,
                                          m.qmp ? &m.companion : NULL };
        tt[5] = g_get_monotonic_time();
        /* Said before the predecessor stops: no log line while the guest waits. */
        ferry_log(FERRY_LOG_INFO, NULL, "ready to take over %.2f ms after the fds came, the "
                  "predecessor serving: adopted %.2f, devices %.2f, control socket and "
                  "companion %.2f, successor launcher %.2f, confined %.2f",
                  (tt[5] - tt[0]) / 1e3, (tt[1] - tt[0]) / 1e3, (tt[2] - tt[1]) / 1e3,
                  (tt[4] - tt[2]) / 1e3, (tt[7] - tt[4]) / 1e3, (tt[5] - tt[7]) / 1e3);
        rc = dm_takeover_finish(takeover, &parts, why, sizeof(why));
        if (rc < 0)
            takeover_failed(takeover, rc, why);
        dm_takeover_free(takeover);
        takeover = NULL;
        /* Our launcher logged to the pipe our predecessor read (and closed when it went):
         * ours now, after the guest's pause. */
        if (m.replace && (rc = dm_replace_log_to(m.replace, STDERR_FILENO)) < 0)
            ferry_log(FERRY_LOG_WARNING, NULL, "the successor launcher keeps its old log (a "
                      "closed pipe): %s", strerror(-rc));
        goto serve;
    }
    rc = dm_start(m.dm);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot claim the devices' ranges: %s%s%s", strerror(-rc),
                dm_server_last_error(m.server)[0] ? ": " : "",
                dm_server_last_error(m.server));
        goto out;
    }
    rc = companion ? 0 : dm_server_enable(m.server);
    if (rc < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "cannot enable the ioreq server: %s", strerror(-rc));
        goto out;
    }
serve:
    ferry_log(FERRY_LOG_INFO, NULL, "serving guest %s: %zu devices, %u vcpus",
              dm_name(m.dm), dm_device_count(m.dm),
              dm_server_nr_vcpus(m.server));
    /* Set-up (options, prewarm, the seccomp filter's build) freed what it
     * used: give the free pages of the heap back before idling
     * (bench/dm-footprint measures it). */
    malloc_trim(0);
    event_base_dispatch(m.base);
    m.status = DM_EXIT_OK;
    if (m.replaced) {
        /* Every fd we held is the successor's now: no teardown (it would release claims,
         * unlink sockets), just go. */
        fflush(stderr);
        if (sandbox_active())
            sandbox_exit(DM_EXIT_OK);
        _exit(DM_EXIT_OK);
    }
out:
    teardown(&m);
    return m.status;
}

int dm_main(int argc, char **argv)
{
    struct dm_args a;
    /* A copy: option parsing takes the options it knows out of argv. */
    g_auto(GStrv) copy = g_new0(char *, (gsize)argc + 1);
    for (int i = 0; i < argc; i++)
        copy[i] = g_strdup(argv[i]);
    dm_argc = argc;
    dm_argv = copy;
    int status = dm_args_parse(argc, argv, &a);

    if (status < 0)
        status = dm_run(&a);
    dm_args_clear(&a);
    /* Confined: no atexit work (nor LeakSanitizer's ptrace), exit_group at once. */
    if (sandbox_active())
        sandbox_exit(status);
    return status;
}
