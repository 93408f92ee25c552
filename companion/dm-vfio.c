// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry-dm's PCI passthrough side; see dm-vfio.h. */
#include "companion/dm-vfio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "common/log-glib.h"
#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "devmodel/control.h"
#include "companion/dm-qmp.h"
#include "companion/vfio-qmp.h"
#include "pci/host/pci-config.h"
#include "policy/owner.h"
#include "policy/policy-log.h"
#include "policy/policy.h"

#define DM_VFIO_ASSIGNED_MAX 64
#define DM_VFIO_ERR_MAX      768
#define DM_VFIO_QERR_MAX     512

struct assigned {
    struct ferry_pci_config_dev d;
    bool from_config;
    bool detaching;             /* device_del sent, waiting for the guest */
    int claim_fd;               /* the broker's ownership claim's lock (policy/owner.h), or -1:
                                 * held while the device is assigned, closed at its detach */
};

/* A pci-detach waiting for DEVICE_DELETED; its reply is deferred. */
struct detach {
    struct companion_vfio *v;
    struct ferry_dm_control_pending *p;
    struct ferry_qmp_waiter *w;
    char id[sizeof(((struct ferry_pci_config_dev *)0)->id)];
    char name[FERRY_PCI_ADDR_STRLEN];
    int wait_ms;
};

struct companion_vfio {
    char *file;
    struct ferry_pci_config cfg;
    size_t prepared;            /* config devices prepared by us, in order */
    struct companion_qmp *d;           /* the caller's */
    struct ferry_qmp *q;        /* its client */
    char *qmp_path;
    GArray *assigned;           /* struct assigned */
    GList *detaches;            /* struct detach *, waiting */
    GPtrArray *owners;          /* struct ferry_policy_owner *: the [pci] devices' claims */
};

/* The device-access policy for the [pci] devices (policy/policy.h), before
 * anything is bound, and their claims for this guest held as long as we run
 * (policy/owner.h; the lock fds stay open through the confinement). */
static int grant_config(struct companion_vfio *v, const char *guest)
{
    struct ferry_policy_ops pops = { .log = ferry_log_glib, .decided = policy_log_verdict };
    struct ferry_policy *p = NULL;
    char err[FERRY_POLICY_TEXT_MAX];
    int r = policy_load(NULL, &pops, &p, err, sizeof(err));

    if (r < 0) {
        fprintf(stderr, "ferry-dm: pci: %s (a broken policy allows nothing)\n", err);
        return r;
    }
    if (!v->owners)
        /* at exit only closed (confined: no unlink); the description left
         * names a process that has gone, which the next claim takes over and
         * 'ferry pci release --config' (ExecStopPost=) drops */
        v->owners = g_ptr_array_new_with_free_func((GDestroyNotify)policy_owner_detach);
    for (size_t i = 0; i < v->cfg.n && r == 0; i++) {
        const struct ferry_pci_config_dev *d = &v->cfg.dev[i];
        struct ferry_policy_verdict verdict;
        struct ferry_policy_owner_info held;
        struct ferry_policy_owner *o = NULL;
        char oerr[512];

        if (policy_check_pci(p, guest, d->name, &verdict) < 0) {
            fprintf(stderr, "ferry-dm: config %s [pci] device %s for guest %s: %s\n", v->file,
                    d->name, guest, verdict.reason);
            r = -EPERM;
            break;
        }
        r = policy_owner_claim(NULL, "pci", d->name, guest, "ferry-dm", getpid(), &o, &held,
                               oerr, sizeof(oerr));
        if (r == -EBUSY) {
            fprintf(stderr, "ferry-dm: config %s [pci]: %s\n", v->file, oerr);
        } else if (r == -EALREADY) {
            r = 0;
        } else if (r < 0) {
            /* not root: the broker (ExecStartPre=) checked, and claims at attach */
            ferry_log(FERRY_LOG_WARNING, NULL, "pci: %s: ownership not recorded: %s", d->name,
                      oerr);
            r = 0;
        } else {
            if (held.stale)
                ferry_log(FERRY_LOG_WARNING, NULL, "pci: %s: owner guest %s (pid %ld) has gone "
                          "without releasing it: taken over", d->name, held.guest, held.pid);
            g_ptr_array_add(v->owners, o);
        }
    }
    policy_free(p);
    return r;
}

static void pcihost_log_cb(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_glib(opaque, level, msg);
}

static unsigned flags_of(const struct companion_vfio *v)
{
    return (v->cfg.group ? FERRY_PCIHOST_PREPARE_GROUP : 0) |
           (v->cfg.force ? FERRY_PCIHOST_PREPARE_FORCE : 0);
}

int companion_vfio_load(const char *config, struct companion_vfio **out)
{
    struct companion_vfio *v = g_new0(struct companion_vfio, 1);
    char err[FERRY_PCI_CONFIG_ERR_MAX];
    int r;

    *out = NULL;
    v->assigned = g_array_new(FALSE, TRUE, sizeof(struct assigned));
    if (config) {
        v->file = g_strdup(config);
        r = pcihost_config_load(config, &v->cfg, err, sizeof(err));
        if (r < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "%s", err);
            companion_vfio_free(v);
            return r;
        }
    }
    *out = v;
    return 0;
}

const char *companion_vfio_config_qmp(const struct companion_vfio *v)
{
    return v && v->cfg.qmp[0] ? v->cfg.qmp : NULL;
}

unsigned companion_vfio_assigned(const struct companion_vfio *v)
{
    return v && v->assigned ? v->assigned->len : 0;
}

bool companion_vfio_has_devices(const struct companion_vfio *v)
{
    return v && v->cfg.n > 0;
}

static struct ferry_pcihost *host_open(void)
{
    const struct ferry_pcihost_ops ops = { .log = pcihost_log_cb };
    struct ferry_pcihost *h = pcihost_open(&ops, NULL);

    if (!h) {
        ferry_log(FERRY_LOG_ERROR, NULL, "pci: cannot open libpci: %s", strerror(errno));
        return NULL;
    }
    if (pcihost_scan(h) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "pci: cannot list the host's PCI devices: %s",
                pcihost_last_error(h));
        pcihost_close(h);
        return NULL;
    }
    return h;
}

/* Give config devices [from, to) back to their drivers (still root). */
static void release_range(struct companion_vfio *v, size_t from, size_t to)
{
    struct ferry_pcihost *h;

    if (from >= to || !(h = host_open()))
        return;
    for (size_t i = from; i < to; i++) {
        if (pcihost_release(h, &v->cfg.dev[i].host, flags_of(v)) < 0)
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s [pci] device %s: and releasing it again "
                    "failed: %s", v->file, v->cfg.dev[i].name, pcihost_last_error(h));
        else
            ferry_log(FERRY_LOG_INFO, NULL, "pci: %s released", v->cfg.dev[i].name);
    }
    pcihost_close(h);
}

/* Not root (contrib/ferry-dm@.service runs it as ferry): binding is not
 * ours to do, 'ferry pci prepare --config' (ExecStartPre=) did it or the
 * device is not ready. */
static int check_prepared(struct companion_vfio *v, struct ferry_pcihost *h)
{
    for (size_t i = 0; i < v->cfg.n; i++) {
        const struct ferry_pci_config_dev *d = &v->cfg.dev[i];
        char drv[64] = "";
        int r = pcihost_driver_get(h, &d->host, drv, sizeof(drv));

        if (r < 0 || strcmp(drv, "vfio-pci")) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s [pci] device %s: not on vfio-pci (%s%s), "
                    "and ferry-dm is not root to bind it: run 'ferry pci prepare --config %s' "
                    "as root first", v->file, d->name, r < 0 ? "no such device" : "driver ",
                    r < 0 ? "" : drv[0] ? drv : "none", v->file);
            return r < 0 ? r : -EPERM;
        }
        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s is on vfio-pci (prepared by root)", d->name);
    }
    return 0;
}

int companion_vfio_prepare(struct companion_vfio *v, const char *guest)
{
    struct ferry_pcihost *h;
    int r = 0;

    if (!companion_vfio_has_devices(v))
        return 0;
    if ((r = grant_config(v, guest)) < 0)
        return r;
    h = host_open();
    if (!h)
        return -EIO;
    if (geteuid() != 0) {
        v->prepared = 0;        /* nothing of ours to give back */
        r = check_prepared(v, h);
        pcihost_close(h);
        return r;
    }
    for (v->prepared = 0; v->prepared < v->cfg.n; v->prepared++) {
        const struct ferry_pci_config_dev *d = &v->cfg.dev[v->prepared];

        r = pcihost_prepare(h, &d->host, flags_of(v));
        if (r < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s [pci] device %s: not usable for "
                    "passthrough: %s", v->file, d->name, pcihost_last_error(h));
            break;
        }
        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s prepared for VFIO", d->name);
    }
    pcihost_close(h);
    if (r < 0) {
        release_range(v, 0, v->prepared);
        v->prepared = 0;
    }
    return r;
}

void companion_vfio_release_prepared(struct companion_vfio *v)
{
    if (!v)
        return;
    release_range(v, 0, v->prepared);
    v->prepared = 0;
}

/* The device's address in the guest, from QEMU's query-pci ("" if none). */
static void guest_address(struct companion_vfio *v, const char *id, char *where, size_t len)
{
    companion_vfio_qmp_guest_address(v->q, id, where, len);
}

/* QEMU's refusal (or the transport's trouble) as "qmp PATH: CMD: why". */
static void qmp_why(struct companion_vfio *v, const char *cmd, int r, char *err, size_t errlen)
{
    snprintf(err, errlen, "qmp %s: %s: %s", v->qmp_path, cmd, ferry_qmp_reason(v->q, r));
}

static int plug(struct companion_vfio *v, const struct ferry_pci_config_dev *d, char *err,
                size_t errlen)
{
    int r = companion_vfio_qmp_plug(v->q, d);

    if (r < 0) {
        qmp_why(v, "device_add", r, err, errlen);
        /* QEMU said no: -EIO, as before; the transport's errors stay */
        return r == -EREMOTEIO ? -EIO : r == -ECONNRESET ? -EPIPE : r;
    }
    return 0;
}

void companion_vfio_use_qmp(struct companion_vfio *v, struct companion_qmp *d,
                            const char *qmp_path)
{
    v->d = d;
    v->q = d ? companion_qmp_conn(d) : NULL;
    g_free(v->qmp_path);
    v->qmp_path = g_strdup(qmp_path);
}

int companion_vfio_start(struct companion_vfio *v, struct companion_qmp *d, const char *qmp_path)
{
    companion_vfio_use_qmp(v, d, qmp_path);
    for (size_t i = 0; i < v->cfg.n; i++) {
        struct assigned a = { .d = v->cfg.dev[i], .from_config = true, .claim_fd = -1 };
        char err[DM_VFIO_QERR_MAX], where[32];
        int r = plug(v, &a.d, err, sizeof(err));

        if (r < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config %s [pci] device %s: QEMU refused device_add "
                    "vfio-pci: %s", v->file, a.d.name, err);
            /* the ones QEMU has stay with it until it stops */
            release_range(v, i, v->prepared);
            if (i)
                ferry_log(FERRY_LOG_ERROR, NULL, "the [pci] devices plugged before stay with that "
                        "QEMU; 'ferry pci release --config %s' after it stops", v->file);
            return r;
        }
        g_array_append_val(v->assigned, a);
        guest_address(v, a.d.id, where, sizeof(where));
        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s plugged into the QEMU at %s as %s%s%s",
                  a.d.name, qmp_path, a.d.id, where[0] ? " at guest address " : "", where);
    }
    return 0;
}

static const char *str_arg(json_t *args, const char *name)
{
    return ferry_json_string(args, name, NULL);
}

static struct assigned *find(struct companion_vfio *v, const struct ferry_pci_addr *host,
                             const char *id, guint *index)
{
    for (guint i = 0; i < v->assigned->len; i++) {
        struct assigned *a = &g_array_index(v->assigned, struct assigned, i);
        if ((host && pcihost_addr_equal(&a->d.host, host)) || (id && !strcmp(a->d.id, id))) {
            if (index)
                *index = i;
            return a;
        }
    }
    return NULL;
}

static json_t *assigned_node(struct companion_vfio *v, const struct assigned *a)
{
    json_t *o = json_object();
    char where[32];

    json_object_set_new(o, "host", ferry_json_str(a->d.name));
    json_object_set_new(o, "id", ferry_json_str(a->d.id));
    if (a->d.bus[0])
        json_object_set_new(o, "bus", ferry_json_str(a->d.bus));
    if (a->d.addr[0])
        json_object_set_new(o, "addr", ferry_json_str(a->d.addr));
    json_object_set_new(o, "config", json_boolean(a->from_config));
    guest_address(v, a->d.id, where, sizeof(where));
    if (where[0])
        json_object_set_new(o, "guest-address", ferry_json_str(where));
    return o;
}

static char *cmd_attach(struct companion_vfio *v, json_t *args, json_t *id, int *fd)
{
    const char *host = str_arg(args, "host"), *qid = str_arg(args, "id"),
               *bus = str_arg(args, "bus"), *addr = str_arg(args, "addr");
    char err[DM_VFIO_ERR_MAX], qerr[DM_VFIO_QERR_MAX];
    struct assigned a = { .claim_fd = -1 };

    if (!host || pcihost_addr_parse(host, &a.d.host) < 0) {
        snprintf(err, sizeof(err), "pci-attach: \"host\": '%.32s' is not a PCI address "
                 "([DDDD:]BB:DD.F)", host ? host : "");
        return dm_control_reply_error(id, err);
    }
    pcihost_addr_format(&a.d.host, a.d.name);
    {
        const struct { const char *name, *val; bool ok; } f[] = {
            { "id", qid, !qid || pcihost_config_id_valid(qid) },
            { "bus", bus, !bus || pcihost_config_id_valid(bus) },
            { "addr", addr, !addr || pcihost_config_addr_valid(addr) },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(f); i++)
            if (!f[i].ok) {
                snprintf(err, sizeof(err), "pci-attach %s: \"%s\": '%.64s' is not valid (%s)",
                         a.d.name, f[i].name, f[i].val,
                         i < 2 ? "a letter, then letters, digits, '.', '_', '-'"
                               : "SLOT[.FN] in hex");
                return dm_control_reply_error(id, err);
            }
    }
    if (qid)
        snprintf(a.d.id, sizeof(a.d.id), "%s", qid);
    else
        pcihost_config_default_id(&a.d.host, a.d.id, sizeof(a.d.id));
    snprintf(a.d.bus, sizeof(a.d.bus), "%s", bus ? bus : "");
    snprintf(a.d.addr, sizeof(a.d.addr), "%s", addr ? addr : "");
    if (find(v, &a.d.host, a.d.id, NULL)) {
        snprintf(err, sizeof(err), "pci-attach %s: already assigned to this guest (or id %s "
                 "is taken)", a.d.name, a.d.id);
        return dm_control_reply_error(id, err);
    }
    if (v->assigned->len >= DM_VFIO_ASSIGNED_MAX) {
        snprintf(err, sizeof(err), "pci-attach %s: this guest has %d devices already",
                 a.d.name, DM_VFIO_ASSIGNED_MAX);
        return dm_control_reply_error(id, err);
    }
    if (!v->q) {
        snprintf(err, sizeof(err), "pci-attach %s: ferry-dm has no QMP connection to a QEMU "
                 "(start it with --qmp)", a.d.name);
        return dm_control_reply_error(id, err);
    }
    if (plug(v, &a.d, qerr, sizeof(qerr)) < 0) {
        snprintf(err, sizeof(err), "pci-attach %s: QEMU refused device_add vfio-pci: %s",
                 a.d.name, qerr);
        return dm_control_reply_error(id, err);
    }
    /* the broker's claim (its lock fd, passed along): ours while the device is */
    a.claim_fd = *fd;
    *fd = -1;
    g_array_append_val(v->assigned, a);
    ferry_log(FERRY_LOG_INFO, NULL, "pci: %s plugged into the QEMU at %s as %s%s", a.d.name,
              v->qmp_path, a.d.id, a.claim_fd >= 0 ? " (its ownership claim held)" : "");
    return dm_control_reply(id, assigned_node(v, &a));
}

/* "within 10 s", "within 1500 ms" */
static void wait_text(int ms, char *buf, size_t len)
{
    if (ms % 1000)
        snprintf(buf, len, "%d ms", ms);
    else
        snprintf(buf, len, "%d s", ms / 1000);
}

/* The device has left the guest: its claim's lock goes (the broker drops the record). */
static void assigned_remove(struct companion_vfio *v, guint index)
{
    struct assigned *a = &g_array_index(v->assigned, struct assigned, index);

    if (a->claim_fd >= 0)
        close(a->claim_fd);
    g_array_remove_index(v->assigned, index);
}

static void detach_free(struct detach *op)
{
    op->v->detaches = g_list_remove(op->v->detaches, op);
    g_free(op);
}

/* The waiter's verdict (common/qmp-wait.h), from the loop: the deferred reply. */
static void detach_done(void *opaque, int result)
{
    struct detach *op = opaque;
    struct companion_vfio *v = op->v;
    json_t *id = dm_control_pending_id(op->p);
    char err[DM_VFIO_ERR_MAX], within[32];
    guint index = 0;
    struct assigned *a = find(v, NULL, op->id, &index);

    op->w = NULL;
    if (result == 0) {
        if (a)
            assigned_remove(v, index);
        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s unplugged from the QEMU at %s", op->name,
                  v->qmp_path);
        dm_control_complete(op->p, dm_control_reply(id, NULL));
        detach_free(op);
        return;
    }
    if (a)
        a->detaching = false;
    switch (result) {
    case -ETIMEDOUT:
        wait_text(op->wait_ms, within, sizeof(within));
        snprintf(err, sizeof(err), "pci-detach %s: the guest did not release %s within %s "
                 "(no DEVICE_DELETED from QEMU): it stays assigned and on vfio-pci; retry "
                 "once the guest has let go", op->name, op->id, within);
        break;
    case -EPIPE:
        snprintf(err, sizeof(err), "pci-detach %s: the QMP connection to %s ended before "
                 "DEVICE_DELETED for %s: QEMU has gone", op->name, v->qmp_path, op->id);
        break;
    default:
        snprintf(err, sizeof(err), "pci-detach %s: ferry-dm is stopping; no DEVICE_DELETED "
                 "for %s yet", op->name, op->id);
        break;
    }
    ferry_log(FERRY_LOG_WARNING, NULL, "%s", err);
    dm_control_complete(op->p, dm_control_reply_error(id, err));
    detach_free(op);
}

static char *cmd_detach(struct companion_vfio *v, struct ferry_dm_control_req *req, json_t *args,
                        json_t *id)
{
    const char *host = str_arg(args, "host"), *qid = str_arg(args, "id");
    struct ferry_pci_addr ha;
    char err[DM_VFIO_ERR_MAX], qerr[DM_VFIO_QERR_MAX], name[FERRY_PCI_ADDR_STRLEN];
    struct ferry_dm_control_pending *p;
    struct detach *op;
    struct assigned *a;
    guint index = 0;
    int r;

    if (host && pcihost_addr_parse(host, &ha) < 0) {
        snprintf(err, sizeof(err), "pci-detach: \"host\": '%.32s' is not a PCI address "
                 "([DDDD:]BB:DD.F)", host);
        return dm_control_reply_error(id, err);
    }
    if (!host && !qid)
        return dm_control_reply_error(id, "pci-detach: \"host\" (BDF) or \"id\" is "
                                            "required");
    a = find(v, host ? &ha : NULL, host ? NULL : qid, &index);
    if (!a) {
        snprintf(err, sizeof(err), "pci-detach %.32s: not assigned to this guest",
                 host ? host : qid);
        return dm_control_reply_error(id, err);
    }
    snprintf(name, sizeof(name), "%s", a->d.name);
    if (a->detaching) {
        snprintf(err, sizeof(err), "pci-detach %s: a detach of %s is already waiting for the "
                 "guest to let go; retry once it has ended", name, a->d.id);
        return dm_control_reply_error(id, err);
    }
    /* The reply may come later: room for it first, before QEMU is asked. */
    p = dm_control_defer(req);
    if (!p) {
        if (errno == EBUSY)
            snprintf(err, sizeof(err), "pci-detach %s: ferry-dm has %d commands waiting for "
                     "their guest already; retry later", name, FERRY_DM_CONTROL_PENDING_MAX);
        else
            snprintf(err, sizeof(err), "pci-detach %s: this caller cannot wait for the "
                     "guest (no control client)", name);
        return dm_control_reply_error(id, err);
    }
    /* A device_del asked before whose guest has not answered yet: wait again. */
    r = ferry_qmp_device_del(v->q, a->d.id);
    if (r < 0) {
        qmp_why(v, "device_del", r, qerr, sizeof(qerr));
        snprintf(err, sizeof(err), "pci-detach %s: QEMU refused device_del %s: %s", name,
                 a->d.id, qerr);
        dm_control_complete(p, dm_control_reply_error(id, err));
        return FERRY_DM_CONTROL_DEFERRED;
    }
    if (r == 1) {
        /* QEMU does not have it (any more) */
        assigned_remove(v, index);
        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s unplugged from the QEMU at %s (it had "
                  "gone already)", name, v->qmp_path);
        dm_control_complete(p, dm_control_reply(id, NULL));
        return FERRY_DM_CONTROL_DEFERRED;
    }
    op = g_new0(struct detach, 1);
    op->v = v;
    op->p = p;
    op->wait_ms = companion_qmp_wait_timeout_ms();
    snprintf(op->id, sizeof(op->id), "%s", a->d.id);
    snprintf(op->name, sizeof(op->name), "%s", name);
    r = ferry_qmp_watch_deleted(companion_qmp_watch(v->d), op->id, op->wait_ms, detach_done, op,
                                &op->w);
    if (r < 0) {
        snprintf(err, sizeof(err), "pci-detach %s: device_del %s sent, but ferry-dm cannot "
                 "wait for DEVICE_DELETED: %s; retry later", name, a->d.id,
                 r == -EBUSY ? "too many waits" : g_strerror(-r));
        dm_control_complete(p, dm_control_reply_error(id, err));
        g_free(op);
        return FERRY_DM_CONTROL_DEFERRED;
    }
    a->detaching = true;
    v->detaches = g_list_prepend(v->detaches, op);
    ferry_log(FERRY_LOG_INFO, NULL, "pci: %s: device_del %s sent, waiting for the guest to "
              "let go (DEVICE_DELETED)", name, op->id);
    return FERRY_DM_CONTROL_DEFERRED;
}

static char *cmd_query(struct companion_vfio *v, json_t *id)
{
    json_t *o = json_object(), *devs = json_array();

    for (guint i = 0; i < v->assigned->len; i++)
        json_array_append_new(devs, assigned_node(v, &g_array_index(v->assigned,
                                                                   struct assigned, i)));
    json_object_set_new(o, "guest", ferry_json_str(v->qmp_path ? v->qmp_path : ""));
    json_object_set_new(o, "devices", devs);
    return dm_control_reply(id, o);
}

char *companion_vfio_command(struct companion_vfio *v, struct ferry_dm_control_req *req,
                             const char *cmd, json_t *args, json_t *id, int *fd)
{
    if (!v)
        return NULL;
    if (!strcmp(cmd, "pci-attach"))
        return cmd_attach(v, args, id, fd);
    if (!strcmp(cmd, "pci-detach"))
        return cmd_detach(v, req, args, id);
    if (!strcmp(cmd, "query-pci-assigned"))
        return cmd_query(v, id);
    return NULL;
}

void companion_vfio_free(struct companion_vfio *v)
{
    if (!v)
        return;
    while (v->detaches) {
        struct detach *op = v->detaches->data;

        ferry_qmp_waiter_cancel(op->w);
        op->w = NULL;
        detach_done(op, -ECANCELED);
    }
    for (guint i = 0; i < v->assigned->len; i++)
        if (g_array_index(v->assigned, struct assigned, i).claim_fd >= 0)
            close(g_array_index(v->assigned, struct assigned, i).claim_fd);
    g_array_free(v->assigned, TRUE);
    if (v->owners)
        g_ptr_array_free(v->owners, TRUE);
    g_free(v->qmp_path);
    g_free(v->file);
    g_free(v);
}

/* ---- replace (dm-replace.h's PCI hooks) ------------------------------------ */

/*
 * The PCI section (little-endian): magic "FPCI", version u32, count u32,
 * then per assignment the host address, QEMU id, bus and addr (u32 length,
 * bytes each; bus and addr may be empty) and flags u32 (VH_CONFIG: from the
 * config's [pci] group, VH_CLAIM: its claim's lock fd is the next passed fd);
 * then the ferry-dm's own claims of the [pci] devices: count u32, each its
 * record's path (u32 length, bytes), its lock fd the next passed fd.
 */
#define VH_MAGIC        0x49435046u     /* "FPCI" */
#define VH_VERSION      1
#define VH_CONFIG       (1u << 0)
#define VH_CLAIM        (1u << 1)
#define VH_STR_MAX      4096

static void vh_put32(GByteArray *b, uint32_t x)
{
    uint8_t y[4] = { (uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24) };

    g_byte_array_append(b, y, 4);
}

static void vh_put_str(GByteArray *b, const char *s)
{
    vh_put32(b, (uint32_t)strlen(s));
    g_byte_array_append(b, (const uint8_t *)s, (guint)strlen(s));
}

static bool vh_get32(const uint8_t **p, size_t *left, uint32_t *x)
{
    if (*left < 4)
        return false;
    *x = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
         (uint32_t)(*p)[3] << 24;
    *p += 4;
    *left -= 4;
    return true;
}

/* A string shorter than size into buf (no NUL inside); false when malformed. */
static bool vh_get_str(const uint8_t **p, size_t *left, char *buf, size_t size)
{
    uint32_t n;

    if (!vh_get32(p, left, &n) || n > *left || n >= size || memchr(*p, 0, n))
        return false;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p += n;
    *left -= n;
    return true;
}

int companion_vfio_handover_save(struct companion_vfio *v, GByteArray *out, int *fds,
                                 unsigned max, unsigned *n, char *why, size_t len)
{
    unsigned need = 0, nown = v && v->owners ? v->owners->len : 0;

    *n = 0;
    if (!v || (!v->assigned->len && !nown))
        return 0;           /* nothing assigned: no section */
    for (guint i = 0; i < v->assigned->len; i++) {
        const struct assigned *a = &g_array_index(v->assigned, struct assigned, i);

        if (a->detaching) {
            snprintf(why, len, "pci %s: a pci-detach of %s waits for the guest to let go "
                     "(device_del sent, DEVICE_DELETED not seen yet): retry once it has ended",
                     a->d.name, a->d.id);
            return -EAGAIN;
        }
        need += a->claim_fd >= 0;
    }
    if (need + nown > max) {
        snprintf(why, len, "more PCI ownership claims (%u) than a handover passes (%u left)",
                 need + nown, max);
        return -E2BIG;
    }
    vh_put32(out, VH_MAGIC);
    vh_put32(out, VH_VERSION);
    vh_put32(out, v->assigned->len);
    for (guint i = 0; i < v->assigned->len; i++) {
        const struct assigned *a = &g_array_index(v->assigned, struct assigned, i);

        vh_put_str(out, a->d.name);
        vh_put_str(out, a->d.id);
        vh_put_str(out, a->d.bus);
        vh_put_str(out, a->d.addr);
        vh_put32(out, (a->from_config ? VH_CONFIG : 0) | (a->claim_fd >= 0 ? VH_CLAIM : 0));
        if (a->claim_fd >= 0)
            fds[(*n)++] = a->claim_fd;
    }
    vh_put32(out, nown);
    for (unsigned i = 0; i < nown; i++) {
        struct ferry_policy_owner *o = g_ptr_array_index(v->owners, i);

        vh_put_str(out, policy_owner_path(o));
        fds[(*n)++] = policy_owner_fd(o);
    }
    return 0;
}

int companion_vfio_handover_restore(struct companion_vfio *v, const uint8_t *state, size_t len,
                                    const int *fds, unsigned n, char *why, size_t whylen)
{
    const uint8_t *p = state;
    size_t left = len;
    uint32_t magic = 0, version = 0, count = 0, nown = 0;
    unsigned used = 0;
    g_autoptr(GArray) got = g_array_new(FALSE, TRUE, sizeof(struct assigned));
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);

    if (!state) {
        if (n) {
            snprintf(why, whylen, "pci: %u claim fds passed without a PCI section", n);
            return -EBADMSG;
        }
        return 0;
    }
    if (!vh_get32(&p, &left, &magic) || !vh_get32(&p, &left, &version) || magic != VH_MAGIC) {
        snprintf(why, whylen, "pci: malformed PCI section (%zu bytes)", len);
        return -EBADMSG;
    }
    if (version != VH_VERSION) {
        snprintf(why, whylen, "pci: PCI section version %u, this ferry-dm reads %u", version,
                 VH_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (!vh_get32(&p, &left, &count)) {
        snprintf(why, whylen, "pci: malformed PCI section (%zu bytes)", len);
        return -EBADMSG;
    }
    if (count > DM_VFIO_ASSIGNED_MAX) {
        snprintf(why, whylen, "pci: %u assignments, at most %d", count, DM_VFIO_ASSIGNED_MAX);
        return -EBADMSG;
    }
    /* All of it checked before anything changes. */
    for (uint32_t i = 0; i < count; i++) {
        struct assigned a = { .claim_fd = -1 };
        char host[FERRY_PCI_ADDR_STRLEN];
        uint32_t flags = 0;

        if (!vh_get_str(&p, &left, host, sizeof(host)) ||
            !vh_get_str(&p, &left, a.d.id, sizeof(a.d.id)) ||
            !vh_get_str(&p, &left, a.d.bus, sizeof(a.d.bus)) ||
            !vh_get_str(&p, &left, a.d.addr, sizeof(a.d.addr)) ||
            !vh_get32(&p, &left, &flags) || (flags & ~(VH_CONFIG | VH_CLAIM)) ||
            pcihost_addr_parse(host, &a.d.host) < 0 || !pcihost_config_id_valid(a.d.id) ||
            (a.d.bus[0] && !pcihost_config_id_valid(a.d.bus)) ||
            (a.d.addr[0] && !pcihost_config_addr_valid(a.d.addr))) {
            snprintf(why, whylen, "pci: assignment %u of the PCI section is malformed", i);
            return -EBADMSG;
        }
        pcihost_addr_format(&a.d.host, a.d.name);
        if (strcmp(a.d.name, host) != 0) {
            /* a predecessor writes the canonical form: anything else is not its state */
            snprintf(why, whylen, "pci: assignment %u names host device %s, not as "
                     "ferry-dm writes it (%s)", i, host, a.d.name);
            return -EBADMSG;
        }
        for (guint k = 0; k < got->len; k++) {
            const struct assigned *b = &g_array_index(got, struct assigned, k);

            if (pcihost_addr_equal(&b->d.host, &a.d.host) || !strcmp(b->d.id, a.d.id)) {
                snprintf(why, whylen, "pci: %s (%s) is in the PCI section twice", a.d.name,
                         a.d.id);
                return -EBADMSG;
            }
        }
        a.from_config = flags & VH_CONFIG;
        if (flags & VH_CLAIM) {
            if (used == n) {
                snprintf(why, whylen, "pci: %s's claim fd was not passed", a.d.name);
                return -EBADMSG;
            }
            a.claim_fd = fds[used++];
        }
        g_array_append_val(got, a);
    }
    if (!vh_get32(&p, &left, &nown) || nown > n - used) {
        snprintf(why, whylen, "pci: the PCI section names more claims than fds were passed");
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < nown; i++) {
        char path[VH_STR_MAX];

        if (!vh_get_str(&p, &left, path, sizeof(path)) || !path[0]) {
            snprintf(why, whylen, "pci: ownership claim %u of the PCI section is malformed", i);
            return -EBADMSG;
        }
        g_ptr_array_add(paths, g_strdup(path));
    }
    if (left || used + nown != n) {
        snprintf(why, whylen, "pci: %zu bytes left over in the PCI section, %u fds passed for "
                 "%u claims", left, n, used + nown);
        return -EBADMSG;
    }
    if (v->assigned->len) {
        snprintf(why, whylen, "pci: this ferry-dm has PCI devices assigned already");
        return -EBUSY;
    }
    if (!v->owners)
        v->owners = g_ptr_array_new_with_free_func((GDestroyNotify)policy_owner_detach);
    for (uint32_t i = 0; i < nown; i++) {
        struct ferry_policy_owner *o = NULL;
        int r = policy_owner_adopt(fds[used + i], g_ptr_array_index(paths, i), &o);

        if (r < 0) {
            snprintf(why, whylen, "pci: cannot take over ownership claim %s: %s",
                     (const char *)g_ptr_array_index(paths, i), g_strerror(-r));
            return r;
        }
        g_ptr_array_add(v->owners, o);
    }
    g_array_append_vals(v->assigned, got->data, got->len);
    for (guint i = 0; i < got->len; i++) {
        const struct assigned *a = &g_array_index(got, struct assigned, i);

        ferry_log(FERRY_LOG_INFO, NULL, "pci: %s took over as %s (%s%s)", a->d.name, a->d.id,
                  a->from_config ? "from the config" : "attached at run time",
                  a->claim_fd >= 0 ? ", its ownership claim held" : "");
    }
    return 0;
}
