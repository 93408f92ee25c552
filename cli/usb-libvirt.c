// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry usb attach|detach|list DOMAIN, DOMAIN a libvirt domain, and
 * `ferry libvirt-hook` (libvirt's qemu hook, in libvirt-hook.c); see
 * docs/libvirt.md.
 *
 * libvirt owns the domain's QEMU monitor, so the device goes in as libvirt
 * sees it: a <redirdev bus='usb' type='unix'> added with
 * virDomainAttachDeviceFlags, whose chardev connects (and reconnects) to a
 * unix socket that the domain's ferry-dm (ferry-dm --libvirt DOMAIN, one per
 * domain, started here or by the hook) serves the device on.  This process,
 * root, makes that listening socket with the owner the domain's QEMU runs as
 * (the live XML's DAC seclabel) and passes it to ferry-dm (usb-listen); a
 * confined ferry-dm also gets the device's usbfs fd from here.
 *
 * The run folder of a domain: ${FERRY_RUN_DIR:-/run/ferry}/libvirt/DOMAIN/
 * with dm.sock (ferry-dm's control socket), dm.pid, dm.log and ALIAS.sock,
 * one per device.  Persistent devices are also listed in the domain's
 * metadata (FERRY_LIBVIRT_NS), which the hook reads when the domain starts.
 *
 * This file: the libvirt connection, attach, detach, list.  The hook and the
 * domain side both use (run folder, QEMU's user, the domain's ferry-dm,
 * sockets for QEMU, metadata parsing) are in cli/libvirt-hook.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cli/cmd.h"
#include "cli/libvirt-internal.h"
#include "cli/usb-ctl.h"
#include "usb/ferry-usb.h"

#define FERRY_LIBVIRT_NS      "https://ferry.invalid/libvirt/usb/1"
#define FERRY_LIBVIRT_NS_KEY  "ferry"
#define FERRY_LIBVIRT_URI     "qemu:///system"
/* libvirt's DEVICE_REMOVED after a detach: the guest must let go first */
#define FERRY_LIBVIRT_REMOVE_WAIT_MS 15000

struct lv {
    virConnectPtr conn;
    virDomainPtr dom;
    const char *name;
    char *dir;              /* the domain's run folder */
};

static void lv_quiet(void *opaque, virErrorPtr err)
{
    /* errors are reported by the caller, once, with context */
}

static const char *lv_err(void)
{
    const char *m = virGetLastErrorMessage();

    return m && *m ? m : "unknown libvirt error";
}

bool usb_libvirt_wanted(const char *guest, const char *uri)
{
    g_autofree char *sock = NULL;

    if (uri)
        return true;
    if (strchr(guest, '/'))
        return false;
    sock = g_build_filename(usb_run_dir(), guest, "dm.sock", NULL);
    return access(sock, F_OK) < 0;
}

static int lv_open(struct lv *l, const char *name, const char *uri, const char *verb)
{
    memset(l, 0, sizeof(*l));
    l->name = name;
    if (!usb_libvirt_domain_name_ok(name)) {
        fprintf(stderr, "ferry usb %s: '%s': not a libvirt domain name Ferry can serve "
                "(no '/', at most 63 characters)\n", verb, name);
        return -EINVAL;
    }
    virSetErrorFunc(NULL, lv_quiet);
    if (virEventRegisterDefaultImpl() < 0) {
        fprintf(stderr, "ferry usb %s: libvirt's event loop: %s\n", verb, lv_err());
        return -EIO;
    }
    l->conn = virConnectOpen(uri ? uri : FERRY_LIBVIRT_URI);
    if (!l->conn) {
        fprintf(stderr, "ferry usb %s: cannot connect to libvirt at %s: %s (is libvirtd "
                "running? a ferry-dm socket is a path or a name under %s)\n", verb,
                uri ? uri : FERRY_LIBVIRT_URI, lv_err(), usb_run_dir());
        return -ECONNREFUSED;
    }
    l->dom = virDomainLookupByName(l->conn, name);
    if (!l->dom) {
        fprintf(stderr, "ferry usb %s: no libvirt domain '%s' at %s (and no ferry-dm socket "
                "%s/%s/dm.sock): %s\n", verb, name, uri ? uri : FERRY_LIBVIRT_URI,
                usb_run_dir(), name, lv_err());
        return -ENOENT;
    }
    l->dir = usb_libvirt_domain_dir(name);
    return 0;
}

static void lv_close(struct lv *l)
{
    if (l->dom)
        virDomainFree(l->dom);
    if (l->conn)
        virConnectClose(l->conn);
    g_free(l->dir);
}

/* ---- persistent devices: the domain's metadata ----------------------------- */

/* The metadata (persistent config) with alias set to spec, or removed (spec NULL). */
static int meta_update(struct lv *l, const char *alias, const char *spec, const char *who)
{
    char *cur = virDomainGetMetadata(l->dom, VIR_DOMAIN_METADATA_ELEMENT, FERRY_LIBVIRT_NS,
                                     VIR_DOMAIN_AFFECT_CONFIG);
    GHashTable *t = usb_libvirt_meta_parse(cur);
    GString *x = g_string_new("<usb>");
    GHashTableIter it;
    gpointer k, v;
    int r;

    free(cur);
    if (spec)
        g_hash_table_insert(t, g_strdup(alias), g_strdup(spec));
    else
        g_hash_table_remove(t, alias);
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_string_append_printf(x, "<device alias='%s' spec='%s'/>", (char *)k, (char *)v);
    g_string_append(x, "</usb>");
    r = virDomainSetMetadata(l->dom, VIR_DOMAIN_METADATA_ELEMENT,
                             g_hash_table_size(t) ? x->str : NULL, FERRY_LIBVIRT_NS_KEY,
                             FERRY_LIBVIRT_NS, VIR_DOMAIN_AFFECT_CONFIG);
    if (r < 0)
        fprintf(stderr, "%s: cannot record %s in domain %s's metadata: %s\n", who, alias,
                l->name, lv_err());
    g_hash_table_destroy(t);
    g_string_free(x, TRUE);
    return r < 0 ? -EIO : 0;
}

/* ---- attach, detach, list ----------------------------------------------------- */

int usb_libvirt_attach(const char *domain, const char *uri, const char *device,
                       bool persistent, bool pass_fd)
{
    const char *who = "ferry usb attach";
    struct ferry_usb_devinfo d;
    struct ctl c = { .fd = -1 };
    struct lv l;
    char ident[200], alias[80], owner[200];
    g_autofree char *xml = NULL, *dev_xml = NULL;
    unsigned flags = VIR_DOMAIN_AFFECT_LIVE;
    uid_t uid;
    gid_t gid;
    int rc = FERRY_EXIT_FAILURE;

    memset(&l, 0, sizeof(l));
    /* the device and the policy's verdict first: a refused device is refused
     * before libvirt is asked anything */
    if (usb_libvirt_domain_name_ok(domain) &&
        (usb_libvirt_find_host_device(device, &d, who) < 0 ||
         usb_libvirt_policy_check(domain, device, &d, who) < 0))
        goto out;
    if (lv_open(&l, domain, uri, "attach") < 0)
        goto out;
    if (virDomainIsActive(l.dom) != 1) {
        fprintf(stderr, "%s: libvirt domain %s is not running (start it first)\n", who, domain);
        goto out;
    }
    usb_identity(&d, ident, sizeof(ident));
    usb_libvirt_alias_of(ident, alias, sizeof(alias));
    xml = virDomainGetXMLDesc(l.dom, 0);
    if (usb_libvirt_xml_has_alias(xml, alias)) {
        fprintf(stderr, "%s: %s is attached to domain %s already (as %s)\n", who, ident, domain,
                alias);
        goto out;
    }
    usb_libvirt_qemu_owner(xml, &uid, &gid, owner, sizeof(owner));
    if (usb_libvirt_dm_ensure(domain, l.dir, who) < 0 || usb_libvirt_dm_connect(l.dir, &c) < 0)
        goto out;
    if (usb_libvirt_serve_device(&c, l.dir, alias, ident, &d, uid, gid, pass_fd, who) < 0)
        goto out;
    dev_xml = usb_libvirt_redirdev_xml(l.dir, alias);
    if (persistent)
        flags |= VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainAttachDeviceFlags(l.dom, dev_xml, flags) < 0) {
        g_autofree char *a = ctl_json_args("alias", alias, NULL, NULL, false);
        g_autofree char *path = g_strdup_printf("%s/%s.sock", l.dir, alias);

        fprintf(stderr, "%s: libvirt refused the redirdev for %s in domain %s: %s\n", who, ident,
                domain, lv_err());
        (void)ctl_cmd(&c, "usb-detach", a, -1, NULL);
        usb_libvirt_follow_stop(l.dir, alias);
        unlink(path);
        goto out;
    }
    if (persistent && meta_update(&l, alias, ident, who) < 0)
        goto out;
    printf("%s attached to libvirt domain %s as %s (socket owner: %s)%s\n", ident, domain, alias,
           owner, persistent ? ", persistent" : "");
    rc = FERRY_EXIT_OK;
out:
    ctl_close(&c);
    lv_close(&l);
    return rc;
}

struct removed_wait {
    const char *alias;
    bool done;
};

static void on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias,
                              void *opaque)
{
    struct removed_wait *w = opaque;

    if (!strcmp(alias, w->alias))
        w->done = true;
}

static void on_tick(int timer, void *opaque)
{
}

/* Take alias out of the live domain and wait for libvirt's DEVICE_REMOVED. */
static int detach_live(struct lv *l, const char *alias, bool persistent, const char *who)
{
    struct removed_wait w = { .alias = alias };
    unsigned flags = VIR_DOMAIN_AFFECT_LIVE | (persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0);
    gint64 end = g_get_monotonic_time() + FERRY_LIBVIRT_REMOVE_WAIT_MS * 1000;
    int cb, timer, r = 0;

    cb = virConnectDomainEventRegisterAny(l->conn, l->dom, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_device_removed), &w, NULL);
    if (cb < 0) {
        fprintf(stderr, "%s: cannot watch domain %s's device events: %s\n", who, l->name,
                lv_err());
        return -EIO;
    }
    timer = virEventAddTimeout(100, on_tick, NULL, NULL);
    if (virDomainDetachDeviceAlias(l->dom, alias, flags) < 0) {
        fprintf(stderr, "%s: libvirt cannot detach %s from domain %s: %s\n", who, alias, l->name,
                lv_err());
        r = -EIO;
    }
    while (r == 0 && !w.done) {
        g_autofree char *xml = NULL;

        if (g_get_monotonic_time() > end) {
            fprintf(stderr, "%s: domain %s did not let go of %s within %d ms (no "
                    "DEVICE_REMOVED from libvirt; is the guest paused or ignoring the unplug?)"
                    "; the device stays with it\n", who, l->name, alias,
                    FERRY_LIBVIRT_REMOVE_WAIT_MS);
            r = -ETIMEDOUT;
            break;
        }
        if (virEventRunDefaultImpl() < 0)
            break;
        /* an event lost while the connection was busy: the XML tells */
        xml = virDomainGetXMLDesc(l->dom, 0);
        if (xml && !usb_libvirt_xml_has_alias(xml, alias))
            w.done = true;
    }
    if (timer >= 0)
        virEventRemoveTimeout(timer);
    virConnectDomainEventDeregisterAny(l->conn, cb);
    return r;
}

int usb_libvirt_detach(const char *domain, const char *uri, const char *device,
                       bool persistent)
{
    const char *who = "ferry usb detach";
    struct ctl c = { .fd = -1 };
    struct lv l;
    json_t *q = NULL;
    g_autofree char *a = NULL, *xml = NULL, *alias = NULL, *cfg = NULL;
    int rc = FERRY_EXIT_FAILURE;

    if (lv_open(&l, domain, uri, "detach") < 0)
        goto out;
    if (usb_libvirt_dm_connect(l.dir, &c) < 0) {
        fprintf(stderr, "%s: domain %s has no ferry-dm (%s/dm.sock): nothing of Ferry's to "
                "detach\n", who, domain, l.dir);
        goto out;
    }
    a = ctl_json_args("device", device, NULL, NULL, false);
    if (ctl_cmd(&c, "usb-which", a, -1, &q) < 0)
        goto out;
    alias = g_strdup(ferry_json_string(q, "alias", ""));
    json_decref(q);
    xml = virDomainIsActive(l.dom) == 1 ? virDomainGetXMLDesc(l.dom, 0) : NULL;
    cfg = virDomainGetXMLDesc(l.dom, VIR_DOMAIN_XML_INACTIVE);
    if (usb_libvirt_xml_has_alias(xml, alias)) {
        if (detach_live(&l, alias, persistent && usb_libvirt_xml_has_alias(cfg, alias), who) < 0)
            goto out;
    } else if (persistent && usb_libvirt_xml_has_alias(cfg, alias) &&
               virDomainDetachDeviceAlias(l.dom, alias, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
        fprintf(stderr, "%s: libvirt cannot take %s out of domain %s's config: %s\n", who,
                alias, domain, lv_err());
        goto out;
    }
    g_free(a);
    a = ctl_json_args("alias", alias, NULL, NULL, false);
    usb_libvirt_follow_stop(l.dir, alias);
    if (ctl_cmd(&c, "usb-detach", a, -1, NULL) < 0)
        goto out;
    {
        g_autofree char *path = g_strdup_printf("%s/%s.sock", l.dir, alias);
        unlink(path);
    }
    if (persistent)
        (void)meta_update(&l, alias, NULL, who);
    printf("%s detached from libvirt domain %s (%s), back with the host\n", device, domain,
           alias);
    rc = FERRY_EXIT_OK;
out:
    ctl_close(&c);
    lv_close(&l);
    return rc;
}

int usb_libvirt_list(const char *domain, const char *uri, bool json)
{
    struct ctl c = { .fd = -1 };
    struct lv l;
    json_t *q = NULL;
    g_autofree char *xml = NULL;
    int rc = FERRY_EXIT_FAILURE;

    if (lv_open(&l, domain, uri, "list") < 0)
        goto out;
    if (usb_libvirt_dm_connect(l.dir, &c) < 0 || ctl_cmd(&c, "query-usb", NULL, -1, &q) < 0 ||
        !json_is_object(q))
        goto out;
    if (json) {
        char *s = ferry_json_dumps(q, true);
        printf("%s\n", s ? s : "null");
        free(s);
    } else {
        json_t *served = ferry_json_array(q, "served"), *e;
        g_autofree char *cfg = virDomainGetXMLDesc(l.dom, VIR_DOMAIN_XML_INACTIVE);
        size_t i;

        xml = virDomainIsActive(l.dom) == 1 ? virDomainGetXMLDesc(l.dom, 0) : NULL;
        printf("%-40s %-28s %-9s %-9s %-10s %s\n", "ALIAS", "DEVICE", "HOST", "IN-DOMAIN",
               "PERSISTENT", "QEMU");
        json_array_foreach(served, i, e) {
            const char *alias = ferry_json_string(e, "alias", "?");

            printf("%-40s %-28s %-9s %-9s %-10s %s\n", alias,
                   ferry_json_string(e, "device", "?"),
                   json_is_true(json_object_get(e, "present")) ? "plugged" : "unplugged",
                   usb_libvirt_xml_has_alias(xml, alias) ? "yes" : "no",
                   usb_libvirt_xml_has_alias(cfg, alias) ? "yes" : "no",
                   json_is_true(json_object_get(e, "connected")) ? "connected" : "-");
        }
    }
    rc = FERRY_EXIT_OK;
out:
    json_decref(q);
    ctl_close(&c);
    lv_close(&l);
    return rc;
}

