// SPDX-License-Identifier: GPL-2.0-or-later
/* ferry-dm's USB side; see dm-usb.h. */
#include "companion/dm-usb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "common/log-glib.h"
#include "common/qmp-wait.h"
#include "devmodel/control.h"
#include "companion/dm-qmp.h"
#include "policy/owner.h"
#include "policy/policy-log.h"
#include "policy/policy.h"
#include "usb/ferry-usb.h"

#define DM_USB_CONFIG_DEVICES_MAX 32

struct companion_usb {
    struct ferry_usb_service *svc;
    struct companion_qmp *d;           /* ferry-dm's QMP connection, or NULL */
    char *qmp;
    bool confined;
    void (*on_gone)(void *opaque);
    void *opaque;
    char *name;                        /* the guest's name for the policy */
    struct ferry_policy *policy;       /* the device-access policy (policy/policy.h) */
    GHashTable *owned;                 /* identity -> struct ferry_policy_owner * */
    char granted[160];                 /* identity of the device usb_grant saw last */
    /* libvirt mode (companion_usb_start_libvirt): no QMP; each device on a
     * listening socket the CLI made and passed (usb-listen), by alias */
    char *domain;
    GHashTable *listeners;             /* alias -> fd + 1, passed, not yet used */
    GHashTable *served;                /* alias -> device spec as attached */
};

/* The device-access policy and exclusive ownership, again here (defence in
 * depth: the broker asked first).  A confined ferry-dm opens no files: its
 * broker claimed ownership for it. */
static int usb_grant(void *opaque, const char *guest, const struct ferry_usb_devinfo *d,
                     char *err, size_t errlen)
{
    struct companion_usb *u = opaque;
    struct ferry_policy_verdict v;
    struct ferry_policy_owner_info held;
    struct ferry_policy_owner *o = NULL;
    char ident[160], oerr[400];
    int r;

    if (policy_check_usb(u->policy, u->name, d, &v) < 0) {
        snprintf(err, errlen, "usb %04x:%04x%s%s: guest %s: %s", d->vid, d->pid,
                 d->port[0] ? " at " : "", d->port, u->name, v.reason);
        return -EPERM;
    }
    usb_identity(d, ident, sizeof(ident));
    g_strlcpy(u->granted, ident, sizeof(u->granted));
    if (u->confined)
        return 0;
    if (g_hash_table_contains(u->owned, ident))
        return 0;
    r = policy_owner_claim(NULL, "usb", ident, u->name, "ferry-dm", getpid(), &o, &held, oerr,
                           sizeof(oerr));
    if (r == -EALREADY)
        return 0;
    if (r < 0) {
        snprintf(err, errlen, "usb %s: %s", ident, oerr);
        return r == -EBUSY ? -EBUSY : r;
    }
    if (held.stale)
        ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s: owner guest %s (pid %ld) has gone without "
                  "releasing it: taken over", ident, held.guest, held.pid);
    g_hash_table_insert(u->owned, g_strdup(ident), o);
    return 0;
}

static void usb_released(void *opaque, const char *guest, const struct ferry_usb_devinfo *d)
{
    struct companion_usb *u = opaque;
    char ident[160];

    usb_identity(d, ident, sizeof(ident));
    g_hash_table_remove(u->owned, ident);
}

static void owner_release(gpointer p)
{
    policy_owner_release(p);
}

/* A confined ferry-dm keeps its claims' lock fds until exit (no unlink under seccomp). */
static void owner_close(gpointer p)
{
    policy_owner_detach(p);
}

/* The guest's name: --name, else the folder of the control socket
 * (/run/ferry/NAME/dm.sock, as the CLI names guests), else the QMP path. */
char *companion_guest_name(const char *name, const char *control, const char *qmp)
{
    if (name && *name)
        return g_strdup(name);
    if (control && strchr(control, '/')) {
        char *dir = g_path_get_dirname(control);
        char *base = g_path_get_basename(dir);

        g_free(dir);
        if (strcmp(base, ".") && strcmp(base, "/"))
            return base;
        g_free(base);
    }
    return g_strdup(qmp);
}

bool companion_usb_wanted(const char *qmp, const char *config)
{
    struct ferry_usb_config c;
    bool present;

    if (qmp && *qmp)
        return true;
    (void)usb_config_load(config, &c);
    present = c.present;
    usb_config_clear(&c);
    return present;
}

static void usb_gone(void *opaque, const char *guest)
{
    struct companion_usb *u = opaque;

    ferry_log(FERRY_LOG_INFO, NULL, "usb: QEMU at %s has gone", guest);
    if (u->on_gone)
        u->on_gone(u->opaque);
}

/* The service's wait for DEVICE_DELETED, on ferry-dm's loop (common/qmp-wait.h). */
static int usb_wait_deleted(void *opaque, const char *guest, const char *id,
                            void (*done)(void *done_opaque, int result), void *done_opaque)
{
    struct companion_usb *u = opaque;

    if (!u->d || strcmp(guest, u->qmp))
        return -ENOTSUP;
    return ferry_qmp_watch_deleted(companion_qmp_watch(u->d), id, companion_qmp_wait_timeout_ms(), done,
                                   done_opaque, NULL);
}

/* usb-detach's deferred reply: QEMU's side of the detach has ended. */
static void usb_detach_done(void *opaque, int result, const char *err)
{
    struct ferry_dm_control_pending *p = opaque;
    json_t *id = dm_control_pending_id(p);

    dm_control_complete(p, result < 0 ? dm_control_reply_error(id, err)
                                            : dm_control_reply(id, NULL));
}

static char *cmd_detach(struct companion_usb *u, struct ferry_dm_control_req *req, json_t *args,
                        json_t *id)
{
    const char *dev = ferry_json_string(args, "device", NULL);
    struct ferry_dm_control_pending *p;
    char err[FERRY_USB_ERR_MAX];
    int r;

    if (!dev)
        return dm_control_reply_error(id, "usb-detach: \"device\" is required");
    p = dm_control_defer(req);
    if (!p && errno == EBUSY) {
        snprintf(err, sizeof(err), "usb-detach %s: ferry-dm has %d commands waiting for their "
                 "guest already; retry later", dev, FERRY_DM_CONTROL_PENDING_MAX);
        return dm_control_reply_error(id, err);
    }
    if (!p) {
        /* no client to answer later: QEMU's side ends on its own */
        if (usb_service_detach(u->svc, u->qmp, dev, err, sizeof(err)) < 0)
            return dm_control_reply_error(id, err);
        return dm_control_reply(id, NULL);
    }
    r = usb_service_detach_async(u->svc, u->qmp, dev, usb_detach_done, p, err,
                                       sizeof(err));
    if (r < 0)
        dm_control_complete(p, dm_control_reply_error(id, err));
    else if (r == 0)
        dm_control_complete(p, dm_control_reply(id, NULL));
    return FERRY_DM_CONTROL_DEFERRED;     /* r == 1: usb_detach_done answers */
}

/* The service logs with its opaque (u): ferry-dm's glib log. */
static void usb_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_glib(NULL, level, msg);
}

/*
 * The broker's claim on the device it passed (policy/owner.h): its lock fd
 * is kept with the assignment, released with it (usb_released) and handed
 * to a successor on replace, so that the guest holds the device as long as
 * some ferry-dm of it serves it.  Only for the device just attached: the
 * identity ferry-dm saw (usb_grant) must be the claim's.
 */
static void keep_claim(struct companion_usb *u, const char *cid, const char *path, int lockfd)
{
    struct ferry_policy_owner *o = NULL;
    struct stat st;

    if (strcmp(cid, u->granted)) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb-attach: the claim passed is for %s, the device "
                  "passed is %s: claim not kept", cid, u->granted[0] ? u->granted : "unknown");
        close(lockfd);
        return;
    }
    if (g_hash_table_contains(u->owned, cid)) {
        close(lockfd);          /* held already (our own claim, or an earlier broker's) */
        return;
    }
    if (fstat(lockfd, &st) < 0 || !S_ISREG(st.st_mode) || policy_owner_adopt(lockfd, path, &o) < 0) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb-attach %s: the claim's fd is not an owner "
                  "record (%s): claim not kept", cid, path);
        close(lockfd);
        return;
    }
    g_hash_table_replace(u->owned, g_strdup(cid), o);
    ferry_log(FERRY_LOG_INFO, NULL, "usb: %s: the broker's ownership claim is held here now "
              "(%s)", cid, path);
}

static char *cmd_attach(struct companion_usb *u, struct ferry_dm_control_req *req, json_t *args,
                        json_t *id, int *fd)
{
    const char *dev = ferry_json_string(args, "device", NULL);
    bool with_fd = json_is_true(json_object_get(args, "fd"));
    json_t *claim = json_object_get(args, "claim");
    const char *cid = ferry_json_string(claim, "id", NULL);
    const char *cpath = ferry_json_string(claim, "path", NULL);
    char err[FERRY_USB_ERR_MAX];
    int lockfd = -1;
    int r;

    if (claim) {
        /* {"claim": {"id": IDENTITY, "path": OWNER-FILE}}: its lock is the second fd */
        lockfd = with_fd && *fd >= 0 ? dm_control_take_fd(req) : -1;
        if (!json_is_object(claim) || !cid || !cpath || lockfd < 0) {
            if (lockfd >= 0)
                close(lockfd);
            return dm_control_reply_error(id, "usb-attach: \"claim\" ({\"id\": IDENTITY, "
                                              "\"path\": FILE}) comes with \"fd\": true and two "
                                              "fds (SCM_RIGHTS): the device's, then the claim's "
                                              "lock");
        }
    }
    if (with_fd) {
        if (*fd < 0)
            return dm_control_reply_error(id, "usb-attach: \"fd\": true but no fd came "
                                                "with the command (SCM_RIGHTS)");
        u->granted[0] = '\0';
        r = usb_service_attach_fd(u->svc, u->qmp, *fd, err, sizeof(err));
        if (r == 0) {
            *fd = -1;       /* the service's now */
            if (lockfd >= 0)
                keep_claim(u, cid, cpath, lockfd);
            lockfd = -1;
        }
    } else if (!dev) {
        return dm_control_reply_error(id, "usb-attach: \"device\" (VID:PID, "
                                            "VID:PID:SERIAL, port path or BUS.ADDR) is required");
    } else if (u->confined) {
        snprintf(err, sizeof(err), "usb-attach %s: ferry-dm is confined and holds no fd for it: "
                 "the broker must open the device and pass the fd (run 'ferry usb attach' as "
                 "root)", dev);
        r = -EPERM;
    } else {
        r = usb_service_attach(u->svc, u->qmp, dev, err, sizeof(err));
    }
    if (lockfd >= 0)
        close(lockfd);
    return r < 0 ? dm_control_reply_error(id, err) : dm_control_reply(id, NULL);
}

/* The USB service's device list (usb_service_list_json) as a value. */
static json_t *service_list(struct companion_usb *u)
{
    char *list = usb_service_list_json(u->svc);
    json_t *devs = list ? ferry_json_parse(list, strlen(list), NULL, 0) : NULL;

    g_free(list);
    return devs ? devs : json_array();
}

static char *cmd_query(struct companion_usb *u, json_t *id)
{
    json_t *o = json_object();

    json_object_set_new(o, "guest", ferry_json_str(u->qmp));
    json_object_set_new(o, "confined", json_boolean(u->confined));
    json_object_set_new(o, "connected", json_integer(usb_service_connected(u->svc)));
    json_object_set_new(o, "devices", service_list(u));
    return dm_control_reply(id, o);
}

/* ---- libvirt mode ---------------------------------------------------------- */

static char *libvirt_where(struct companion_usb *u, const char *alias)
{
    return g_strdup_printf("libvirt:%s/%s", u->domain, alias);
}

static bool alias_ok(const char *alias)
{
    if (!alias || !g_str_has_prefix(alias, "ua-ferry-") || strlen(alias) > 64)
        return false;
    for (const char *p = alias; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

static char *libvirt_listen(struct companion_usb *u, json_t *args, json_t *id, int *fd)
{
    const char *alias = ferry_json_string(args, "alias", NULL);
    gpointer old;

    if (!alias_ok(alias))
        return dm_control_reply_error(id, "usb-listen: \"alias\" must be ua-ferry-[A-Za-z0-9_-]"
                                          " (at most 64 characters)");
    if (*fd < 0)
        return dm_control_reply_error(id, "usb-listen: no listening socket came with the "
                                          "command (SCM_RIGHTS)");
    if (g_hash_table_contains(u->served, alias))
        return dm_control_reply_error(id, "usb-listen: that alias is served already "
                                          "(usb-detach it first)");
    if ((old = g_hash_table_lookup(u->listeners, alias)))
        close(GPOINTER_TO_INT(old) - 1);
    g_hash_table_insert(u->listeners, g_strdup(alias), GINT_TO_POINTER(*fd + 1));
    *fd = -1;
    return dm_control_reply(id, NULL);
}

static char *libvirt_attach(struct companion_usb *u, json_t *args, json_t *id, int *fd)
{
    const char *alias = ferry_json_string(args, "alias", NULL);
    const char *dev = ferry_json_string(args, "device", NULL);
    bool with_fd = json_is_true(json_object_get(args, "fd"));
    char err[FERRY_USB_ERR_MAX];
    g_autofree char *where = NULL;
    gpointer lfd;
    int r;

    if (!dev || !alias_ok(alias))
        return dm_control_reply_error(id, "usb-attach: \"device\" and \"alias\" (ua-ferry-...) "
                                          "are required for a libvirt domain");
    lfd = g_hash_table_lookup(u->listeners, alias);
    if (!lfd && with_fd && *fd >= 0 && g_hash_table_contains(u->served, alias)) {
        /* the broker's new fd for a device that was replugged (confined: no hotplug here) */
        where = libvirt_where(u, alias);
        if (usb_service_serve_listener_fd(u->svc, where, *fd, err, sizeof(err)) < 0)
            return dm_control_reply_error(id, err);
        *fd = -1;
        return dm_control_reply(id, NULL);
    }
    if (!lfd) {
        snprintf(err, sizeof(err), "usb-attach %s: no listening socket for %s (usb-listen "
                 "first)", dev, alias);
        return dm_control_reply_error(id, err);
    }
    if (with_fd && *fd < 0)
        return dm_control_reply_error(id, "usb-attach: \"fd\": true but no fd came with the "
                                          "command (SCM_RIGHTS)");
    if (!with_fd && u->confined) {
        snprintf(err, sizeof(err), "usb-attach %s: ferry-dm is confined and holds no fd for it: "
                 "the broker must open the device and pass the fd (run 'ferry usb attach' as "
                 "root)", dev);
        return dm_control_reply_error(id, err);
    }
    where = libvirt_where(u, alias);
    r = usb_service_serve_listener(u->svc, where, GPOINTER_TO_INT(lfd) - 1, dev,
                                   with_fd ? *fd : -1, err, sizeof(err));
    if (r < 0)
        return dm_control_reply_error(id, err);
    if (with_fd)
        *fd = -1;
    g_hash_table_steal(u->listeners, alias);    /* the fd is the service's now */
    g_hash_table_insert(u->served, g_strdup(alias), g_strdup(dev));
    return dm_control_reply(id, NULL);
}

/* The alias serving `device`, or NULL. */
static const char *libvirt_alias_of(struct companion_usb *u, const char *dev)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, u->served);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_autofree char *where = libvirt_where(u, k);

        if (!strcmp(v, dev) || usb_service_assigned(u->svc, where, dev))
            return k;
    }
    return NULL;
}

static char *libvirt_which(struct companion_usb *u, json_t *args, json_t *id)
{
    const char *dev = ferry_json_string(args, "device", NULL);
    const char *alias = dev ? libvirt_alias_of(u, dev) : NULL;
    json_t *o;
    char err[FERRY_USB_ERR_MAX];

    if (!alias) {
        snprintf(err, sizeof(err), "usb device %s: not attached to libvirt domain %s",
                 dev ? dev : "(none given)", u->domain);
        return dm_control_reply_error(id, err);
    }
    o = json_object();
    json_object_set_new(o, "alias", ferry_json_str(alias));
    json_object_set_new(o, "device", ferry_json_str(g_hash_table_lookup(u->served, alias)));
    return dm_control_reply(id, o);
}

static char *libvirt_detach(struct companion_usb *u, json_t *args, json_t *id)
{
    const char *alias = ferry_json_string(args, "alias", NULL);
    const char *dev = alias ? g_hash_table_lookup(u->served, alias) : NULL;
    char err[FERRY_USB_ERR_MAX];
    g_autofree char *where = NULL;
    gpointer lfd;

    if (alias && (lfd = g_hash_table_lookup(u->listeners, alias))) {
        /* listening only (an attach that failed before libvirt had it) */
        close(GPOINTER_TO_INT(lfd) - 1);
        g_hash_table_remove(u->listeners, alias);
        return dm_control_reply(id, NULL);
    }
    if (!dev) {
        snprintf(err, sizeof(err), "usb-detach: alias %s: nothing served under it in "
                 "domain %s", alias ? alias : "(none given)", u->domain);
        return dm_control_reply_error(id, err);
    }
    where = libvirt_where(u, alias);
    if (usb_service_detach(u->svc, where, dev, err, sizeof(err)) < 0)
        return dm_control_reply_error(id, err);
    g_hash_table_remove(u->served, alias);
    return dm_control_reply(id, NULL);
}

/* The broker saw the device go (a confined ferry-dm sees no hotplug). */
static char *libvirt_unplugged(struct companion_usb *u, json_t *args, json_t *id)
{
    const char *alias = ferry_json_string(args, "alias", NULL);
    const char *dev = alias ? g_hash_table_lookup(u->served, alias) : NULL;
    char err[FERRY_USB_ERR_MAX];
    g_autofree char *where = NULL;

    if (!dev) {
        snprintf(err, sizeof(err), "usb-unplugged: alias %s: nothing served under it in "
                 "domain %s", alias ? alias : "(none given)", u->domain);
        return dm_control_reply_error(id, err);
    }
    where = libvirt_where(u, alias);
    if (usb_service_device_left(u->svc, where, dev, err, sizeof(err)) < 0)
        return dm_control_reply_error(id, err);
    return dm_control_reply(id, NULL);
}

static char *libvirt_command(struct companion_usb *u, const char *cmd, json_t *args,
                             json_t *id, int *fd)
{
    if (!strcmp(cmd, "usb-unplugged"))
        return libvirt_unplugged(u, args, id);
    if (!strcmp(cmd, "usb-listen"))
        return libvirt_listen(u, args, id, fd);
    if (!strcmp(cmd, "usb-attach"))
        return libvirt_attach(u, args, id, fd);
    if (!strcmp(cmd, "usb-which"))
        return libvirt_which(u, args, id);
    if (!strcmp(cmd, "usb-detach"))
        return libvirt_detach(u, args, id);
    if (!strcmp(cmd, "query-usb")) {
        json_t *o = json_object(), *served = json_array();
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, u->served);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            json_t *e = json_object();
            g_autofree char *where = libvirt_where(u, k);
            bool present = false, connected = false;

            (void)usb_service_listener_state(u->svc, where, &present, &connected);
            json_object_set_new(e, "alias", ferry_json_str(k));
            json_object_set_new(e, "device", ferry_json_str(v));
            json_object_set_new(e, "present", json_boolean(present));
            json_object_set_new(e, "connected", json_boolean(connected));
            json_array_append_new(served, e);
        }
        json_object_set_new(o, "guest", ferry_json_str(u->qmp));
        json_object_set_new(o, "domain", ferry_json_str(u->domain));
        json_object_set_new(o, "confined", json_boolean(u->confined));
        json_object_set_new(o, "connected", json_integer(usb_service_connected(u->svc)));
        json_object_set_new(o, "devices", service_list(u));
        json_object_set_new(o, "served", served);
        return dm_control_reply(id, o);
    }
    return NULL;
}

static void close_listener(gpointer p)
{
    close(GPOINTER_TO_INT(p) - 1);
}

int companion_usb_start_libvirt(struct event_base *base, const char *domain, const char *config,
                                bool confined, struct companion_usb **out)
{
    struct ferry_usb_config c = { 0 };
    struct ferry_usb_service_ops ops = { .log = usb_log, .no_discovery = confined,
                                        .grant = usb_grant, .released = usb_released };
    struct ferry_policy_ops pops = { .log = usb_log, .decided = policy_log_verdict };
    char err[FERRY_USB_ERR_MAX];
    struct companion_usb *u;
    int r;

    *out = NULL;
    (void)usb_config_load(config, &c);
    u = g_new0(struct companion_usb, 1);
    u->domain = g_strdup(domain);
    u->qmp = g_strdup_printf("libvirt:%s", domain);
    u->confined = confined;
    /* the device-access policy and ownership as in companion mode, the
     * domain's name being the guest's */
    u->name = g_strdup(domain);
    u->owned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     confined ? owner_close : owner_release);
    r = policy_load(NULL, &pops, &u->policy, err, sizeof(err));
    if (r < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb: %s (a broken policy allows nothing)", err);
        goto fail;
    }
    u->listeners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_listener);
    u->served = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    r = usb_service_new(base, NULL, &ops, u, &u->svc);
    if (r < 0) {
        fprintf(stderr, "ferry-dm: usb: cannot start the USB service (libusb): %s\n",
                strerror(-r));
        goto fail;
    }
    if (c.policy && (r = usb_service_set_policy(u->svc, NULL, c.policy, err,
                                                sizeof(err))) < 0) {
        fprintf(stderr, "ferry-dm: config [usb] policy: %s\n", err);
        goto fail;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "usb: serving host devices to libvirt domain %s%s", domain,
              confined ? " (confined: devices only from fds)" : "");
    usb_config_clear(&c);
    *out = u;
    return 0;
fail:
    usb_config_clear(&c);
    companion_usb_free(u);
    return r;
}

char *companion_usb_command(struct companion_usb *u, struct ferry_dm_control_req *req, const char *cmd,
                     json_t *args, json_t *id, int *fd)
{
    char err[FERRY_USB_ERR_MAX];

    if (u->domain)
        return libvirt_command(u, cmd, args, id, fd);
    if (!strcmp(cmd, "usb-attach"))
        return cmd_attach(u, req, args, id, fd);
    if (!strcmp(cmd, "usb-detach"))
        return cmd_detach(u, req, args, id);
    if (!strcmp(cmd, "usb-unplugged")) {
        const char *dev = ferry_json_string(args, "device", NULL);
        if (!dev)
            return dm_control_reply_error(id, "usb-unplugged: \"device\" is required");
        if (usb_service_device_left(u->svc, u->qmp, dev, err, sizeof(err)) < 0)
            return dm_control_reply_error(id, err);
        return dm_control_reply(id, NULL);
    }
    if (!strcmp(cmd, "query-usb"))
        return cmd_query(u, id);
    return NULL;
}

/*
 * Confined: the [usb] devices are opened now, while ferry-dm may still look
 * at the host (a discovering libusb context, freed again before the one
 * without discovery is made), and served from those fds.
 */
/* A confined ferry-dm's [usb] device, claimed for its guest now, before the
 * sandbox (policy/owner.h): the lock fd stays open until exit and is only
 * closed then (no unlink under seccomp).  A claim that cannot be made (not
 * root: the run directory is root's) is only a warning: the broker claims. */
static int preclaim(GHashTable *owned, const char *guest, const struct ferry_usb_devinfo *d)
{
    struct ferry_policy_owner_info held;
    struct ferry_policy_owner *o = NULL;
    char ident[160], err[512];
    int r;

    usb_identity(d, ident, sizeof(ident));
    r = policy_owner_claim(NULL, "usb", ident, guest, "ferry-dm", getpid(), &o, &held, err,
                           sizeof(err));
    if (r == -EBUSY) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s", err);
        return r;
    }
    if (r == -EALREADY)
        return 0;
    if (r < 0) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s: ownership not recorded: %s", ident, err);
        return 0;
    }
    if (held.stale)
        ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s: owner guest %s (pid %ld) has gone without "
                  "releasing it: taken over", ident, held.guest, held.pid);
    g_hash_table_replace(owned, g_strdup(ident), o);
    return 0;
}

static int preopen_devices(struct event_base *base, char *const *devices, int *fds, size_t *n,
                           const char *guest, GHashTable *owned)
{
    struct ferry_usb_host_ops hops = { .log = usb_log };
    struct ferry_usb_host *h = NULL;
    int r = usb_host_new(base, true, &hops, NULL, &h);

    *n = 0;
    if (r < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb: cannot look at the host's devices (libusb): %s",
                strerror(-r));
        return r;
    }
    for (size_t i = 0; devices[i] && *n < DM_USB_CONFIG_DEVICES_MAX; i++) {
        struct ferry_usb_devinfo d;
        struct ferry_usb_spec spec;
        char err[FERRY_USB_ERR_MAX], node[64];
        const char *dev = devices[i];
        int fd;

        if (usb_spec_parse(dev, &spec) < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "config [usb] devices: '%s': expected VID:PID[:SERIAL] "
                    "or a port path", dev);
            r = -EINVAL;
            break;
        }
        if (usb_host_find(h, &spec, &d, err, sizeof(err)) < 0) {
            ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s: %s (confined: only devices present "
                      "at start-up, or passed by the broker later, can be served)", dev, err);
            continue;
        }
        if (preclaim(owned, guest, &d) < 0)
            continue;           /* another guest's: not opened, not served */
        snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d.bus, d.addr);
        fd = open(node, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s: cannot open %s: %s", dev, node,
                      strerror(errno));
            continue;
        }
        fds[(*n)++] = fd;
    }
    usb_host_free(h);
    return r < 0 ? r : 0;
}

int companion_usb_config_qmp(const char *config, char **qmp)
{
    struct ferry_usb_config c;

    (void)usb_config_load(config, &c);
    *qmp = g_steal_pointer(&c.qmp);
    usb_config_clear(&c);
    return 0;
}

int companion_usb_start(struct event_base *base, struct companion_qmp *d, const char *qmp,
                 const char *config, const char *const *devices, const char *policy,
                 const char *name, const char *control, bool confined, bool takeover,
                 void (*on_gone)(void *opaque), void *opaque, struct companion_usb **out)
{
    struct ferry_usb_config c = { 0 };
    struct ferry_usb_service_ops ops = { .log = usb_log, .no_discovery = confined,
                                        .guest_gone = usb_gone,
                                        .wait_deleted = d ? usb_wait_deleted : NULL,
                                        .grant = usb_grant, .released = usb_released };
    struct ferry_policy_ops pops = { .log = usb_log, .decided = policy_log_verdict };
    struct ferry_usb_qmp *q = companion_qmp_client(d);
    int fds[DM_USB_CONFIG_DEVICES_MAX];
    size_t nfds = 0;
    char err[FERRY_USB_ERR_MAX];
    struct companion_usb *u;
    GHashTable *owned;
    char *gname;
    int r;

    *out = NULL;
    if (!companion_usb_wanted(qmp, config))
        return 0;
    /* the [usb] group, read once: qmp=, policy=, devices=; then --usb's devices */
    (void)usb_config_load(config, &c);
    if (devices && devices[0]) {
        GPtrArray *all = g_ptr_array_new();

        for (size_t i = 0; c.devices && c.devices[i]; i++)
            g_ptr_array_add(all, c.devices[i]);
        for (size_t i = 0; devices[i]; i++)
            g_ptr_array_add(all, g_strdup(devices[i]));
        g_ptr_array_add(all, NULL);
        g_free(c.devices);      /* its strings are all's now */
        c.devices = (char **)g_ptr_array_free(all, FALSE);
        c.present = true;
    }
    if (policy) {
        g_free(c.policy);
        c.policy = g_strdup(policy);
    }
    if (!qmp || !*qmp)
        qmp = c.qmp;
    if (!qmp || !*qmp) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb: no QMP socket of the guest's QEMU (--qmp PATH or qmp= "
                "in [usb])");
        usb_config_clear(&c);
        return -EINVAL;
    }
    owned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                  confined ? owner_close : owner_release);
    gname = companion_guest_name(name, control, qmp);
    if (confined && c.devices && !takeover &&
        (r = preopen_devices(base, c.devices, fds, &nfds, gname, owned)) < 0) {
        g_hash_table_destroy(owned);
        g_free(gname);
        usb_config_clear(&c);
        return r;
    }
    u = g_new0(struct companion_usb, 1);
    u->qmp = g_strdup(qmp);
    u->name = gname;
    u->owned = owned;
    r = policy_load(NULL, &pops, &u->policy, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "ferry-dm: usb: %s (a broken policy allows nothing)\n", err);
        goto fail;
    }
    u->d = d;
    u->confined = confined;
    u->on_gone = on_gone;
    u->opaque = opaque;
    r = usb_service_new(base, g_get_tmp_dir(), &ops, u, &u->svc);
    if (r < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb: cannot start the USB service (libusb): %s",
                strerror(-r));
        goto fail;
    }
    /* the QMP connection, now and for good: ferry-dm's (dm-qmp.h), or our own */
    r = q ? usb_service_add_guest_qmp(u->svc, u->qmp, q, err, sizeof(err))
          : usb_service_add_guest(u->svc, u->qmp, err, sizeof(err));
    if (r < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb: %s", err);
        goto fail;
    }
    if (c.policy && (r = usb_service_set_policy(u->svc, u->qmp, c.policy, err,
                                                      sizeof(err))) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "config [usb] policy: %s", err);
        goto fail;
    }
    if (confined) {
        for (size_t i = 0; i < nfds; i++) {
            if (usb_service_attach_fd(u->svc, u->qmp, fds[i], err, sizeof(err)) < 0) {
                ferry_log(FERRY_LOG_WARNING, NULL, "usb: %s", err);
                close(fds[i]);
            }
            fds[i] = -1;
        }
    } else if (c.present && !takeover) {
        /* a successor gets its assignments from the predecessor instead */
        r = usb_service_apply_config(u->svc, u->qmp, &c, err, sizeof(err));
        if (r < 0) {
            ferry_log(FERRY_LOG_ERROR, NULL, "%s", err);
            goto fail;
        }
    }
    ferry_log(FERRY_LOG_INFO, NULL, "usb: serving host devices to the QEMU at %s%s", u->qmp,
              confined ? " (confined: devices only from fds)" : "");
    usb_config_clear(&c);
    *out = u;
    return 0;
fail:
    usb_config_clear(&c);
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    companion_usb_free(u);
    return r;
}

int companion_usb_reconnect(struct companion_usb *u, struct companion_qmp *d)
{
    char err[FERRY_USB_ERR_MAX];
    int r;

    if (!u || !d || strcmp(companion_qmp_path(d), u->qmp) != 0)
        return -EINVAL;
    r = usb_service_guest_reconnect(u->svc, u->qmp, companion_qmp_client(d), err,
                                    sizeof(err));
    if (r < 0) {
        ferry_log(FERRY_LOG_WARNING, NULL, "%s", err);
        return r;
    }
    u->d = d;
    return 0;
}

/* ---- replace (dm-replace.h's companion hooks) ------------------------------ */

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

    g_byte_array_append(b, x, 4);
}

#define DM_USB_QUIESCE_MS 5000

int companion_usb_handover_save(struct companion_usb *u, GByteArray *state, int *fds,
                                unsigned max, unsigned *n, char *why, size_t len)
{
    int r;

    *n = 0;
    if (u->domain) {
        snprintf(why, len, "USB of libvirt domain %s (its listeners and redirdevs) is not "
                 "handed over yet", u->domain);
        return -EOPNOTSUPP;
    }
    r = usb_service_quiesce(u->svc, DM_USB_QUIESCE_MS, why, len);
    if (r < 0)
        return r;
    /* [u32 length, the service's state][u32 its fds][u32 claims, each: ident, path
     * (u32 length, bytes)]; fds: the service's, then each claim's lock */
    g_autoptr(GByteArray) svc = g_byte_array_new();
    unsigned ns = 0;
    GHashTableIter it;
    gpointer k, v;

    r = usb_service_export(u->svc, svc, fds, max, &ns, why, len);
    if (r < 0) {
        usb_service_resume(u->svc);
        return r;
    }
    if (ns + g_hash_table_size(u->owned) > max) {
        snprintf(why, len, "more USB fds and ownership claims than a handover passes");
        usb_service_resume(u->svc);
        return -E2BIG;
    }
    put32(state, svc->len);
    g_byte_array_append(state, svc->data, svc->len);
    put32(state, ns);
    put32(state, g_hash_table_size(u->owned));
    *n = ns;
    g_hash_table_iter_init(&it, u->owned);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *path = policy_owner_path(v);

        put32(state, (uint32_t)strlen(k));
        g_byte_array_append(state, k, (guint)strlen(k));
        put32(state, (uint32_t)strlen(path));
        g_byte_array_append(state, (const uint8_t *)path, (guint)strlen(path));
        fds[(*n)++] = policy_owner_fd(v);
    }
    return 0;
}

void companion_usb_handover_resume(struct companion_usb *u)
{
    if (u)
        usb_service_resume(u->svc);
}

static bool get32(const uint8_t **p, size_t *left, uint32_t *v)
{
    if (*left < 4)
        return false;
    *v = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
         (uint32_t)(*p)[3] << 24;
    *p += 4;
    *left -= 4;
    return true;
}

/* A string of at most max bytes (no NUL inside): g_free. */
static char *get_str(const uint8_t **p, size_t *left, size_t max)
{
    uint32_t n;
    char *s;

    if (!get32(p, left, &n) || n > *left || n > max || memchr(*p, 0, n))
        return NULL;
    s = g_strndup((const char *)*p, n);
    *p += n;
    *left -= n;
    return s;
}

int companion_usb_handover_restore(struct companion_usb *u, const uint8_t *state, size_t len,
                                   const int *fds, unsigned n, char *why, size_t whylen)
{
    const uint8_t *p = state;
    size_t left = len;
    uint32_t slen, ns, nc;
    int r;

    if (!get32(&p, &left, &slen) || slen > left || left - slen < 8) {
        snprintf(why, whylen, "usb: malformed companion state (%zu bytes)", len);
        return -EBADMSG;
    }
    const uint8_t *svc = p;

    p += slen;
    left -= slen;
    (void)get32(&p, &left, &ns);
    (void)get32(&p, &left, &nc);
    if (ns > n || nc != n - ns) {
        snprintf(why, whylen, "usb: %u fds passed, the state names %u and %u claims", n, ns,
                 nc);
        return -EBADMSG;
    }
    r = usb_service_adopt(u->svc, svc, slen, fds, ns, why, whylen);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < nc; i++) {
        g_autofree char *ident = get_str(&p, &left, 160);
        g_autofree char *path = get_str(&p, &left, 4096);
        struct ferry_policy_owner *o;

        if (!ident || !path || policy_owner_adopt(fds[ns + i], path, &o) < 0) {
            snprintf(why, whylen, "usb: ownership claim %u malformed", i);
            return -EBADMSG;
        }
        g_hash_table_replace(u->owned, g_steal_pointer(&ident), o);
    }
    if (left) {
        snprintf(why, whylen, "usb: %zu bytes left over in the companion state", left);
        return -EBADMSG;
    }
    return 0;
}

void companion_usb_qmp_lost(struct companion_usb *u)
{
    if (u)
        usb_service_guest_lost(u->svc, u->qmp);
}

void companion_usb_free(struct companion_usb *u)
{
    if (!u)
        return;
    usb_service_free(u->svc);     /* releases (ops.released) what it was granted */
    if (u->owned)
        g_hash_table_destroy(u->owned);
    policy_free(u->policy);
    g_free(u->name);
    if (u->listeners)
        g_hash_table_destroy(u->listeners);
    if (u->served)
        g_hash_table_destroy(u->served);
    g_free(u->domain);
    g_free(u->qmp);
    g_free(u);
}
