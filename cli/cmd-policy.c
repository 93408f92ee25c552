// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry policy check GUEST DEVICE [--json] | show [--json]: the
 * device-access policy (policy/policy.h) as every granting command applies
 * it; and the helpers those commands share (cmd.h): load the policy, judge a
 * device for a guest, claim it for the guest's process (policy/owner.h).
 *
 * Options (and environment): --policy FILE ($FERRY_POLICY), --sysfs-root
 * DIR ($FERRY_SYSFS_ROOT), --proc-root DIR ($FERRY_PROC_ROOT); ownership
 * lives in ${FERRY_RUN_DIR:-/run/ferry}/owners.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "cli/cmd.h"
#include "common/json.h"
#include "common/log-glib.h"
#include "pci/host/pcihost.h"
#include "policy/owner.h"
#include "policy/policy-log.h"
#include "policy/policy.h"
#include "usb/ferry-usb.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: ferry policy [OPTIONS] check GUEST DEVICE [--json]\n"
        "       ferry policy [OPTIONS] show [--json]\n"
        "\n"
        "Which guest may get which host device (docs/policy.md).  DEVICE: a PCI address\n"
        "(0000:03:00.0, 03:00.0, or pci:...) or a USB device (VID:PID, VID:PID:SERIAL, a\n"
        "port path 1-2.3, or usb:...).  check exits 0 when the guest may have it, 1 when\n"
        "not (the policy refuses it, or another guest owns it), naming the rule and its\n"
        "file:line.  show prints the rules and the host's own devices found by discovery.\n"
        "\n"
        "options:\n"
        "  --policy FILE      the policy file (default $FERRY_POLICY, else %s)\n"
        "  --sysfs-root DIR   read sysfs there (tests; default $FERRY_SYSFS_ROOT or /sys)\n"
        "  --proc-root DIR    read proc there (tests; default $FERRY_PROC_ROOT or /proc)\n",
        FERRY_POLICY_FILE_DEFAULT);
}

int cli_policy_load(const char *file, struct ferry_policy **out)
{
    return cli_policy_load_roots(file, NULL, NULL, out);
}

int cli_policy_load_roots(const char *file, const char *sysfs, const char *proc,
                          struct ferry_policy **out)
{
    struct ferry_policy_config cfg = { .file = file, .sysfs_root = sysfs, .proc_root = proc };
    /* the command prints the verdict; the journal gets it with its fields */
    struct ferry_policy_ops ops = { .log = ferry_log_glib,
                                    .decided = policy_log_verdict_journal };
    char err[FERRY_POLICY_TEXT_MAX];
    int r = policy_load(&cfg, &ops, out, err, sizeof(err));

    if (r < 0)
        fprintf(stderr, "ferry: %s (a policy that does not load allows nothing)\n", err);
    return r;
}

char *cli_guest_name(const char *guest)
{
    if (strchr(guest, '/')) {
        char *dir = g_path_get_dirname(guest);
        char *base = g_path_get_basename(dir);

        g_free(dir);
        return base;
    }
    return g_strdup(guest);
}

long cli_peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    return cred.pid;
}

int cli_owner_claim(const char *what, const char *kind, const char *id, const char *guest,
                    const char *program, long pid, struct ferry_policy_owner **keep)
{
    struct ferry_policy_owner *o = NULL;
    struct ferry_policy_owner_info held;
    char err[512];
    int r;

    if (pid <= 0)
        pid = getpid();
    if (keep)
        *keep = NULL;
    r = policy_owner_claim(NULL, kind, id, guest, program, (pid_t)pid, &o, &held, err,
                           sizeof(err));
    if (r == -EALREADY)
        return 0;
    if (r < 0) {
        fprintf(stderr, "%s: %s\n", what, err);
        return r;
    }
    if (held.stale) {
        char who[400];

        policy_owner_describe(&held, who, sizeof(who));
        ferry_log(FERRY_LOG_WARNING, NULL, "%s %s: its owner %s has gone without releasing it: "
                  "taken over", kind, id, who);
    }
    /* the description stays, naming the process that serves the device */
    if (keep)
        *keep = o;
    else
        policy_owner_detach(o);
    return 0;
}

int cli_owner_check(const char *what, const char *kind, const char *id, const char *guest)
{
    struct ferry_policy_owner_info i;
    char who[400];

    if (policy_owner_query(NULL, kind, id, &i) != 1 || !strcmp(i.guest, guest))
        return 0;
    policy_owner_describe(&i, who, sizeof(who));
    fprintf(stderr, "%s: %s device %s is assigned to %s: detach it there first\n", what, kind,
            id, who);
    return -EBUSY;
}

/* DEVICE as a PCI address: 1 with bdf filled, 0 if it is not one. */
static int as_pci(const char *dev, char bdf[FERRY_PCI_ADDR_STRLEN])
{
    struct ferry_pci_addr a;

    if (g_str_has_prefix(dev, "pci:"))
        dev += 4;
    else if (g_str_has_prefix(dev, "usb:"))
        return 0;
    if (pcihost_addr_parse(dev, &a) < 0)
        return 0;
    pcihost_addr_format(&a, bdf);
    return 1;
}

static int find_usb(const char *dev, struct ferry_usb_devinfo *d)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_spec spec;
    char err[FERRY_USB_ERR_MAX];
    int r = -EINVAL;

    if (g_str_has_prefix(dev, "usb:"))
        dev += 4;
    if (usb_spec_parse(dev, &spec) < 0) {
        fprintf(stderr, "ferry policy: '%s': expected a PCI address (0000:03:00.0) or a USB "
                "device (VID:PID, VID:PID:SERIAL, port path 1-2.3, BUS.ADDR)\n", dev);
        goto out;
    }
    if (!b || (r = usb_host_new(b, true, &hops, NULL, &h)) < 0) {
        fprintf(stderr, "ferry policy: cannot look at USB devices (libusb)\n");
        r = -EIO;
        goto out;
    }
    r = usb_host_find(h, &spec, d, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "ferry policy: %s\n", err);
out:
    usb_host_free(h);
    if (b)
        event_base_free(b);
    return r;
}

static int do_check(const char *file, const char *guest, const char *dev, bool json)
{
    struct ferry_policy *p;
    struct ferry_policy_verdict v;
    struct ferry_policy_owner_info own = { 0 };
    char bdf[FERRY_PCI_ADDR_STRLEN], ident[160], who[400] = "";
    int r, owned;

    if (as_pci(dev, bdf)) {
        if (cli_policy_load(file, &p) < 0)
            return FERRY_EXIT_FAILURE;
        r = policy_check_pci(p, guest, bdf, &v);
        owned = policy_owner_query(NULL, "pci", bdf, &own);
    } else {
        struct ferry_usb_devinfo d;

        if (find_usb(dev, &d) < 0)
            return FERRY_EXIT_FAILURE;
        if (cli_policy_load(file, &p) < 0)
            return FERRY_EXIT_FAILURE;
        r = policy_check_usb(p, guest, &d, &v);
        usb_identity(&d, ident, sizeof(ident));
        owned = policy_owner_query(NULL, "usb", ident, &own);
    }
    if (owned == 1)
        policy_owner_describe(&own, who, sizeof(who));
    /* held by another guest: refused whatever the rules say */
    if (r == 0 && owned == 1 && strcmp(own.guest, guest)) {
        r = -EBUSY;
        v.allowed = false;
        char *why = g_strdup_printf("refused: assigned to %s (the rules would allow it: %s)",
                                    who, v.rule);

        g_strlcpy(v.reason, why, sizeof(v.reason));
        g_free(why);
    }
    if (json) {
        char *s = policy_verdict_json(&v);
        json_t *o = ferry_json_parse_object(s, strlen(s), NULL, 0);

        if (o) {
            json_object_set_new(o, "verdict", json_string(v.allowed ? "allow" : "deny"));
            json_object_set_new(o, "reason", ferry_json_str(v.reason));
            json_object_set_new(o, "owner", owned == 1 ? ferry_json_str(who) : json_null());
            g_free(s);
            s = ferry_json_dumps(o, true);
            json_decref(o);
        }
        printf("%s\n", s ? s : "null");
        g_free(s);
    } else {
        printf("%s %s %s: %s\n", v.allowed ? "allow" : "deny", guest, v.device, v.reason);
        if (owned == 1)
            printf("owner: %s\n", who);
    }
    policy_free(p);
    return r == 0 ? FERRY_EXIT_OK : FERRY_EXIT_FAILURE;
}

static void show_owner(void *opaque, const struct ferry_policy_owner_info *i)
{
    char who[400];

    policy_owner_describe(i, who, sizeof(who));
    printf("  %s:%s %s\n", i->kind, i->id, who);
}

static int do_show(const char *file, bool json)
{
    struct ferry_policy *p;
    char *s;

    if (cli_policy_load(file, &p) < 0)
        return FERRY_EXIT_FAILURE;
    s = policy_show(p, json);
    printf("%s%s", s, json ? "\n" : "");
    g_free(s);
    if (!json) {
        printf("owned devices (%s/owners):\n", getenv("FERRY_RUN_DIR") && *getenv("FERRY_RUN_DIR")
                                                  ? getenv("FERRY_RUN_DIR") : "/run/ferry");
        if (policy_owner_list(NULL, "pci", show_owner, NULL) +
            policy_owner_list(NULL, "usb", show_owner, NULL) == 0)
            printf("  none\n");
    }
    policy_free(p);
    return FERRY_EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
    enum { O_POLICY = 256, O_SYSFS, O_PROC };
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "policy", required_argument, NULL, O_POLICY },
        { "sysfs-root", required_argument, NULL, O_SYSFS },
        { "proc-root", required_argument, NULL, O_PROC },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL;
    bool json = false;
    int c;

    ferry_log_init("ferry", getenv("FERRY_VERBOSE") ? 2 : 0);
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case O_POLICY: file = optarg; break;
        case O_SYSFS: g_setenv("FERRY_SYSFS_ROOT", optarg, TRUE); break;
        case O_PROC: g_setenv("FERRY_PROC_ROOT", optarg, TRUE); break;
        case 'h': usage(stdout); return FERRY_EXIT_OK;
        default: usage(stderr); return FERRY_EXIT_USAGE;
        }
    }
    /* --json may also follow the operands */
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(char *));
            argc--;
            i--;
        }
    }
    if (optind < argc && !strcmp(argv[optind], "check") && argc - optind == 3)
        return do_check(file, argv[optind + 1], argv[optind + 2], json);
    if (optind < argc && !strcmp(argv[optind], "show") && argc - optind == 1)
        return do_show(file, json);
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
