// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry pci prepare|release|attach|detach: assigning host PCI devices.
 *
 * prepare/release bind a device (or its IOMMU group) to vfio-pci and back,
 * after the device-access policy and the owner claims (policy/); release
 * --config FILE gives back every device of a ferry-dm config's [pci] group.
 * attach/detach hand a prepared device to a running QEMU (device_add
 * vfio-pci / device_del): through the ferry-dm that holds that QEMU's QMP
 * socket (GUEST is ferry-dm's control socket: ferry, root, prepares and
 * releases, ferry-dm plugs and unplugs), or over a QMP socket nobody else
 * holds.  The command itself, list and check are cmd-pci.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "cli/cmd.h"
#include "cli/pci-assign.h"
#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "companion/vfio-qmp.h"
#include "pci/host/pci-config.h"
#include "policy/owner.h"
#include "policy/policy.h"
#include "pci/host/pcihost.h"

#define DETACH_TIMEOUT_MS 15000
/* ferry-dm answers pci-detach after its own bounded wait for the guest
 * (DM_QMP_TIMEOUT_MS, 10 s) plus QEMU's replies: wait longer than that. */
#define DM_REPLY_TIMEOUT_MS 30000

/* The device-access policy (policy/policy.h) for guest and the device (and,
 * with group, every function of its IOMMU group), and nobody else's guest
 * owning it (policy/owner.h).  0, or -errno after saying why. */
static int pci_grant(const struct cmd_pci_opts *o, const char *what, const char *guest,
                     const struct ferry_pci_addr *a, bool group)
{
    struct ferry_policy *p = NULL;
    struct ferry_policy_verdict v;
    char name[FERRY_PCI_ADDR_STRLEN];
    GPtrArray *devs = g_ptr_array_new_with_free_func(g_free);
    int r;

    pcihost_addr_format(a, name);
    g_ptr_array_add(devs, g_strdup(name));
    if (group) {
        char *dir = g_strdup_printf("%s/bus/pci/devices/%s/iommu_group/devices",
                                    o->sysfs_root ? o->sysfs_root : "/sys", name);
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *e;

        while (d && (e = g_dir_read_name(d)))
            if (strcmp(e, name))
                g_ptr_array_add(devs, g_strdup(e));
        if (d)
            g_dir_close(d);
        g_free(dir);
    }
    r = cli_policy_load_roots(NULL, o->sysfs_root, o->proc_root, &p);
    for (guint i = 0; r == 0 && i < devs->len; i++) {
        const char *bdf = devs->pdata[i];

        r = policy_check_pci(p, guest, bdf, &v);
        if (r < 0)
            fprintf(stderr, "%s: %s for %s%s: %s\n", what, bdf,
                    *guest ? "guest " : "any guest (no --guest)", guest, v.reason);
        else
            r = cli_owner_check(what, "pci", bdf, guest);
    }
    policy_free(p);
    g_ptr_array_free(devs, TRUE);
    return r;
}

/* The guest a ferry-dm config is for: its [dm] name=, else the file's name
 * without .conf (/etc/ferry/vm1.conf, as ferry-dm@vm1.service has it). */
static char *config_guest(const char *file)
{
    GKeyFile *kf = g_key_file_new();
    char *name = NULL;

    if (g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL))
        name = g_key_file_get_string(kf, "dm", "name", NULL);
    g_key_file_free(kf);
    if (name && *name)
        return name;
    g_free(name);
    name = g_path_get_basename(file);
    if (g_str_has_suffix(name, ".conf"))
        name[strlen(name) - 5] = '\0';
    return name;
}

/* prepare/release --config FILE: every [pci] device of a ferry-dm config,
 * before that ferry-dm starts (when it does not run as root) and after it
 * (and its QEMU) stopped.  Idempotent.  A failed prepare undoes the devices
 * prepared before it. */
int cmd_pci_config(const struct cmd_pci_opts *o, bool release)
{
    const char *what = release ? "release" : "prepare";
    struct ferry_pci_config *c = g_new0(struct ferry_pci_config, 1);
    char err[FERRY_PCI_CONFIG_ERR_MAX];
    struct ferry_pcihost *h = NULL;
    int rc = FERRY_EXIT_OK;

    if (pcihost_config_load(o->config, c, err, sizeof(err)) < 0) {
        fprintf(stderr, "ferry pci %s: %s\n", what, err);
        g_free(c);
        return FERRY_EXIT_USAGE;
    }
    if (c->n && !(h = cmd_pci_open_host(o))) {
        g_free(c);
        return FERRY_EXIT_FAILURE;
    }
    if (!release) {
        char *guest = o->guest ? g_strdup(o->guest) : config_guest(o->config);

        for (size_t i = 0; i < c->n && rc == FERRY_EXIT_OK; i++)
            if (pci_grant(o, "ferry pci prepare", guest, &c->dev[i].host, c->group) < 0)
                rc = FERRY_EXIT_FAILURE;
        g_free(guest);
        if (rc != FERRY_EXIT_OK) {
            pcihost_close(h);
            g_free(c);
            return rc;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        char drv[64] = "";
        unsigned flags = (c->group ? FERRY_PCIHOST_PREPARE_GROUP : 0) |
                         (c->force ? FERRY_PCIHOST_PREPARE_FORCE : 0);
        int r = release ? pcihost_release(h, &c->dev[i].host, flags)
                        : pcihost_prepare(h, &c->dev[i].host, flags);

        if (r < 0) {
            fprintf(stderr, "ferry pci %s: %s [pci] %s: %s\n", what, o->config,
                    c->dev[i].name, pcihost_last_error(h));
            rc = FERRY_EXIT_FAILURE;
            if (release)
                continue;
            for (size_t j = 0; j < i; j++)
                if (pcihost_release(h, &c->dev[j].host, flags) < 0)
                    fprintf(stderr, "ferry pci prepare: and releasing %s again failed: %s\n",
                            c->dev[j].name, pcihost_last_error(h));
            break;
        }
        if (release) {
            /* the guest's claim, left by its ferry-dm (policy/owner.h) */
            char *guest = o->guest ? g_strdup(o->guest) : config_guest(o->config);
            (void)policy_owner_drop(NULL, "pci", c->dev[i].name, guest);
            g_free(guest);
        }
        if (pcihost_driver_get(h, &c->dev[i].host, drv, sizeof(drv)) < 0)
            drv[0] = '\0';
        printf("%s: %s (driver %s)\n", c->dev[i].name,
               release ? "released" : "prepared for VFIO", drv[0] ? drv : "none");
    }
    if (!c->n)
        printf("%s: no [pci] devices\n", o->config);
    pcihost_close(h);
    g_free(c);
    return rc;
}

int cmd_pci_prepare(const struct cmd_pci_opts *o, const char *bdf, bool release)
{
    struct ferry_pci_addr a;
    struct ferry_pcihost *h;
    unsigned flags = (o->group ? FERRY_PCIHOST_PREPARE_GROUP : 0) |
                     (o->force ? FERRY_PCIHOST_PREPARE_FORCE : 0);
    char name[FERRY_PCI_ADDR_STRLEN], drv[64] = "";
    int r;

    if (cmd_pci_parse_bdf(bdf, &a) < 0)
        return FERRY_EXIT_USAGE;
    if (!release && pci_grant(o, "ferry pci prepare", o->guest ? o->guest : "", &a,
                              o->group) < 0)
        return FERRY_EXIT_FAILURE;
    h = cmd_pci_open_host(o);
    if (!h)
        return FERRY_EXIT_FAILURE;
    pcihost_addr_format(&a, name);
    r = release ? pcihost_release(h, &a, flags) : pcihost_prepare(h, &a, flags);
    if (r < 0) {
        fprintf(stderr, "ferry pci %s: %s\n", release ? "release" : "prepare",
                pcihost_last_error(h));
        pcihost_close(h);
        return FERRY_EXIT_FAILURE;
    }
    if (pcihost_driver_get(h, &a, drv, sizeof(drv)) < 0)
        drv[0] = '\0';
    printf("%s: %s (driver %s)\n", name, release ? "released" : "prepared for VFIO",
           drv[0] ? drv : "none");
    pcihost_close(h);
    return FERRY_EXIT_OK;
}

static void release_after_failure(struct ferry_pcihost *h, const struct ferry_pci_addr *a,
                                  unsigned flags, const char *name)
{
    char drv[64] = "";

    if (pcihost_release(h, a, flags) < 0) {
        fprintf(stderr, "ferry pci attach: and releasing it failed: %s\n", pcihost_last_error(h));
        return;
    }
    if (pcihost_driver_get(h, a, drv, sizeof(drv)) < 0)
        drv[0] = '\0';
    fprintf(stderr, "ferry pci attach: %s released (driver now %s)\n", name,
            drv[0] ? drv : "none");
}

/* ferry-dm's refusals come as GenericError: its message is the whole story. */
static const char *dm_error(const struct ferry_qmp *q)
{
    const char *e = ferry_qmp_error(q);

    return g_str_has_prefix(e, "GenericError: ") ? e + strlen("GenericError: ") : e;
}

/* GUEST is a ferry-dm's control socket: that ferry-dm holds the QEMU's QMP
 * socket and plugs (pci-attach) or unplugs (pci-detach, which waits for the
 * guest to let go); we, as root, prepare before and release after. */
static int attach_via_dm(const struct cmd_pci_opts *o, struct ferry_qmp *q, struct ferry_pcihost *h,
                         const struct ferry_pci_config_dev *dev, bool detach)
{
    unsigned flags = (o->group ? FERRY_PCIHOST_PREPARE_GROUP : 0) |
                     (o->force ? FERRY_PCIHOST_PREPARE_FORCE : 0);
    const struct ferry_pci_addr *a = &dev->host;
    const char *name = dev->name, *id = dev->id;
    json_t *args = NULL, *ret = NULL;
    int r;

    if (detach) {
        args = json_pack("{s:s}", "host", name);      /* a BDF: never empty */
        r = ferry_qmp_execute(q, "pci-detach", args, NULL);
        json_decref(args);
        if (r < 0) {
            fprintf(stderr, "ferry pci detach: ferry-dm: %s\n", dm_error(q));
            return FERRY_EXIT_FAILURE;
        }
        if (pcihost_release(h, a, flags) < 0) {
            fprintf(stderr, "ferry pci detach: %s\n", pcihost_last_error(h));
            return FERRY_EXIT_FAILURE;
        }
        printf("%s: detached from the guest and released\n", name);
        return FERRY_EXIT_OK;
    }
    if (pcihost_prepare(h, a, flags) < 0) {
        fprintf(stderr, "ferry pci attach: %s\n", pcihost_last_error(h));
        return FERRY_EXIT_FAILURE;
    }
    /* pci-attach takes device_add's arguments without the driver */
    args = companion_vfio_qmp_add_args(dev);
    json_object_del(args, "driver");
    r = ferry_qmp_execute(q, "pci-attach", args, &ret);
    json_decref(args);
    if (r < 0) {
        fprintf(stderr, "ferry pci attach: ferry-dm: %s\n", dm_error(q));
        release_after_failure(h, a, flags, name);
        return FERRY_EXIT_FAILURE;
    }
    {
        const char *where = ferry_json_string(ret, "guest-address", NULL);

        if (where)
            printf("%s: attached to the guest as %s at guest address %s\n", name, id, where);
        else
            printf("%s: attached to the guest as %s (not yet in query-pci)\n", name, id);
    }
    json_decref(ret);
    return FERRY_EXIT_OK;
}

/* GUEST: a socket path (containing '/', or an existing file), or a guest
 * name for ${FERRY_RUN_DIR:-/run/ferry}/NAME/dm.sock, as `ferry usb`. */
static char *guest_socket(const char *guest)
{
    const char *dir = getenv("FERRY_RUN_DIR");

    if (strchr(guest, '/') || access(guest, F_OK) == 0)
        return g_strdup(guest);
    return g_build_filename(dir && *dir ? dir : "/run/ferry", guest, "dm.sock", NULL);
}

int cmd_pci_attach(const struct cmd_pci_opts *o, const char *guest, const char *bdf, bool detach)
{
    g_autofree char *sock = guest ? guest_socket(guest) : NULL;
    struct ferry_pci_addr a;
    char name[FERRY_PCI_ADDR_STRLEN], id[48];
    struct ferry_pcihost *h = NULL;
    struct ferry_pci_config_dev dev = { 0 };
    struct ferry_qmp *q;
    unsigned flags = (o->group ? FERRY_PCIHOST_PREPARE_GROUP : 0) |
                     (o->force ? FERRY_PCIHOST_PREPARE_FORCE : 0);
    int r, rc = FERRY_EXIT_FAILURE;
    char *gname = NULL;
    bool claimed = false;

    if (!sock) {
        fprintf(stderr, "ferry pci: missing GUEST (ferry-dm's control socket or QEMU's QMP "
                "socket)\n");
        return FERRY_EXIT_USAGE;
    }
    if (cmd_pci_parse_bdf(bdf, &a) < 0)
        return FERRY_EXIT_USAGE;
    pcihost_addr_format(&a, name);
    if (o->id)
        snprintf(id, sizeof(id), "%s", o->id);
    else
        pcihost_config_default_id(&a, id, sizeof(id));
    if (o->bus && strlen(o->bus) >= sizeof(dev.bus)) {
        fprintf(stderr, "ferry pci: --bus '%.64s': longer than %zu characters\n", o->bus,
                sizeof(dev.bus) - 1);
        return FERRY_EXIT_USAGE;
    }
    if (o->addr && strlen(o->addr) >= sizeof(dev.addr)) {
        fprintf(stderr, "ferry pci: --addr '%.64s': longer than %zu characters\n", o->addr,
                sizeof(dev.addr) - 1);
        return FERRY_EXIT_USAGE;
    }
    /* what device_add vfio-pci gets (companion/vfio-qmp.h) */
    dev.host = a;
    snprintf(dev.name, sizeof(dev.name), "%s", name);
    snprintf(dev.id, sizeof(dev.id), "%s", id);
    snprintf(dev.bus, sizeof(dev.bus), "%s", o->bus ? o->bus : "");
    snprintf(dev.addr, sizeof(dev.addr), "%s", o->addr ? o->addr : "");

    q = ferry_qmp_new(DM_REPLY_TIMEOUT_MS);
    if (!q || ferry_qmp_connect(q, sock) < 0) {
        fprintf(stderr, "ferry pci %s: %s\n", detach ? "detach" : "attach",
                q ? ferry_qmp_error(q) : "out of memory");
        ferry_qmp_close(q);
        return FERRY_EXIT_FAILURE;
    }
    gname = cli_guest_name(guest);
    if (!detach) {
        struct ferry_policy_owner_info before;

        if (pci_grant(o, "ferry pci attach", gname, &a, o->group) < 0)
            goto out;
        claimed = policy_owner_query(NULL, "pci", name, &before) != 1;
        /* owned by the process that holds the device: QEMU, or the ferry-dm serving it */
        if (cli_owner_claim("ferry pci attach", "pci", name, gname,
                            ferry_qmp_peer_is_ferry_dm(q) ? "ferry-dm" : "qemu",
                            cli_peer_pid(ferry_qmp_fd(q)), NULL) < 0)
            goto out;
    }
    h = cmd_pci_open_host(o);
    if (!h)
        goto out;
    if (ferry_qmp_peer_is_ferry_dm(q)) {
        rc = attach_via_dm(o, q, h, &dev, detach);
        goto out;
    }

    if (detach) {
        /* 1: QEMU does not have it; nothing to wait for */
        r = ferry_qmp_device_del(q, id);
        if (r < 0) {
            fprintf(stderr, "ferry pci detach: QEMU refused device_del %s: %s\n", id,
                    ferry_qmp_error(q));
            goto out;
        }
        /* The guest must let go before vfio-pci can be unbound. */
        if (r == 0 && ferry_qmp_wait_deleted(q, id, DETACH_TIMEOUT_MS) < 0) {
            fprintf(stderr, "ferry pci detach: %s: guest did not release %s: %s; "
                    "device stays on vfio-pci\n", name, id, ferry_qmp_error(q));
            goto out;
        }
        if (pcihost_release(h, &a, flags) < 0) {
            fprintf(stderr, "ferry pci detach: %s\n", pcihost_last_error(h));
            goto out;
        }
        printf("%s: detached from the guest (%s) and released\n", name, id);
        rc = FERRY_EXIT_OK;
        goto out;
    }

    if (pcihost_prepare(h, &a, flags) < 0) {
        fprintf(stderr, "ferry pci attach: %s\n", pcihost_last_error(h));
        goto out;
    }
    r = companion_vfio_qmp_plug(q, &dev);
    if (r < 0) {
        fprintf(stderr, "ferry pci attach: QEMU refused device_add vfio-pci,host=%s: %s\n",
                name, ferry_qmp_error(q));
        release_after_failure(h, &a, flags, name);
        goto out;
    }
    /* Say where the guest sees it, from QEMU's own view of its bus. */
    {
        char where[32];

        companion_vfio_qmp_guest_address(q, id, where, sizeof(where));
        if (where[0])
            printf("%s: attached to the guest as %s at guest address %s\n", name, id, where);
        else
            printf("%s: attached to the guest as %s (not yet in query-pci)\n", name, id);
    }
    rc = FERRY_EXIT_OK;
out:
    if (gname && ((detach && rc == FERRY_EXIT_OK) || (!detach && rc != FERRY_EXIT_OK && claimed)))
        (void)policy_owner_drop(NULL, "pci", name, gname);
    g_free(gname);
    pcihost_close(h);
    ferry_qmp_close(q);
    return rc;
}
