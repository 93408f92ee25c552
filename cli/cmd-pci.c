// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry pci list|check|prepare|release|attach|detach
 *
 * Host PCI devices through libferry-pcihost.  This file holds the command
 * (options, usage, dispatch), opening the host (with ferry-fault's step
 * hook) and the inspection: list and check, in text and JSON.  Assignment
 * (prepare, release, attach, detach, the policy and the QMP/ferry-dm paths)
 * is pci-assign.c's; pci-assign.h is what the two share.
 * The JSON forms (--json) are documented in README.md, "PCI passthrough".
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/pci-assign.h"
#include "common/json.h"
#include "common/log-glib.h"
#include "pci/host/pcihost.h"

#define PCI_JSON_VERSION 1

static void usage(FILE *f)
{
    fprintf(f,
        "usage: ferry pci [OPTIONS] list [--json] [--all] [--tree]\n"
        "       ferry pci [OPTIONS] check BDF [--json]\n"
        "       ferry pci [OPTIONS] prepare BDF [--group] [--force]\n"
        "       ferry pci [OPTIONS] release BDF [--group]\n"
        "       ferry pci [OPTIONS] prepare|release --config FILE\n"
        "       ferry pci [OPTIONS] attach GUEST BDF [--id ID] [--bus BUS] [--addr A] [--group] [--force]\n"
        "       ferry pci [OPTIONS] detach GUEST BDF [--id ID] [--group]\n"
        "\n"
        "BDF is dddd:bb:dd.f or bb:dd.f (hex).  GUEST is the control socket of the\n"
        "ferry-dm serving the QEMU (ferry-dm --qmp QMP --control SOCK; a NAME means\n"
        "${FERRY_RUN_DIR:-/run/ferry}/NAME/dm.sock), or the QMP socket of a QEMU\n"
        "nobody else holds (-qmp unix:PATH,server=on,wait=off).\n"
        "\n"
        "options:\n"
        "  --json             machine-readable output (list, check)\n"
        "  --all              list: every detail (BARs, capabilities, IRQ, NUMA, slot)\n"
        "  --tree             list: devices under their bridges, like lspci -tv\n"
        "  --group            prepare/release the device's whole IOMMU group\n"
        "  --force            prepare even if a host driver holds mounted disks or the console\n"
        "  --id ID            QEMU device id for attach/detach (default ferry-pci-BB-DD-F)\n"
        "  --bus BUS          QEMU bus to plug into (a hotplug-capable port, e.g. a\n"
        "                     pcie-root-port id; default: QEMU's choice)\n"
        "  --addr SLOT[.FN]   slot on that bus (default: QEMU's choice)\n"
        "  --guest NAME       prepare for guest NAME: the device-access policy\n"
        "                     (docs/policy.md) judges the device for it; without it\n"
        "                     only rules for every guest (guests=*) apply\n"
        "  --config FILE      prepare/release every device of FILE's [pci] group (a\n"
        "                     ferry-dm config), with its group=/force=; idempotent\n"
        "  --sysfs-root DIR   sysfs to use (env FERRY_SYSFS_ROOT; default /sys)\n"
        "  --proc-root DIR    procfs to use (env FERRY_PROC_ROOT; default /proc)\n"
        "  --state-dir DIR    where prepare remembers original drivers\n"
        "                     (env FERRY_PCI_STATE_DIR; default /run/ferry/pci)\n"
        "  --dump FILE        read config space from an `lspci -xxxx` dump\n"
        "                     (env FERRY_PCI_DUMP) instead of the live system\n"
        "  --ids FILE         pci.ids to name devices with\n"
        "  -v, --verbose      more log output (repeat for debug)\n");
}

#ifdef FERRY_FAULT_INJECTION
/*
 * Fault injection, compiled only into the test program ferry-fault
 * (tests/pcihost/meson.build), never into the installed ferry:
 * FERRY_PCI_KILL_AT=STEP kills the process right before that step of
 * prepare/release, to test that a rerun repairs the job;
 * FERRY_PCI_REMOVE_AT=STEP has the kernel remove the device from the bus
 * (sysfs "remove") right before that step, as if it were unplugged.
 */
static void step_hook(void *opaque, const char *dev, const char *step)
{
    const char *at = getenv("FERRY_PCI_KILL_AT");
    const char *rm = getenv("FERRY_PCI_REMOVE_AT");

    if (at && !strcmp(at, step)) {
        ferry_log(FERRY_LOG_WARNING, dev, "FERRY_PCI_KILL_AT=%s: killing myself", step);
        raise(SIGKILL);
    }
    if (rm && !strcmp(rm, step)) {
        const char *root = getenv("FERRY_SYSFS_ROOT");
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/remove", root ? root : "/sys", dev);
        ferry_log(FERRY_LOG_WARNING, dev, "FERRY_PCI_REMOVE_AT=%s: removing the device", step);
        f = fopen(path, "we");
        if (f) {
            fputs("1\n", f);
            fclose(f);
        }
    }
}
#define STEP_HOOK step_hook
#else
#define STEP_HOOK NULL
#endif

struct ferry_pcihost *cmd_pci_open_host(const struct cmd_pci_opts *o)
{
    static const struct ferry_pcihost_ops ops = {
        .log = ferry_log_glib,
        .step = STEP_HOOK,
    };
    struct ferry_pcihost_config cfg = {
        .sysfs_root = o->sysfs_root,
        .proc_root = o->proc_root,
        .state_dir = o->state_dir,
        .dump_file = o->dump,
        .ids_file = o->ids,
    };
    struct ferry_pcihost *h = pcihost_open(&ops, &cfg);
    int r;

    if (!h) {
        fprintf(stderr, "ferry pci: %s\n", strerror(errno));
        return NULL;
    }
    r = pcihost_scan(h);
    if (r < 0) {
        fprintf(stderr, "ferry pci: cannot list PCI devices: %s\n", pcihost_last_error(h));
        pcihost_close(h);
        return NULL;
    }
    return h;
}

static void print_json(json_t *o)
{
    char *text = ferry_json_dumps(o, true);

    printf("%s\n", text ? text : "null");
    free(text);
    json_decref(o);
}

static void j_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v && *v ? ferry_json_str(v) : json_null());
}

static void j_int(json_t *o, const char *k, int64_t v)
{
    json_object_set_new(o, k, json_integer(v));
}

static void j_bool(json_t *o, const char *k, bool v)
{
    json_object_set_new(o, k, json_boolean(v));
}

static void j_opt_int(json_t *o, const char *k, int64_t v, bool present)
{
    json_object_set_new(o, k, present ? json_integer(v) : json_null());
}

static void j_hidden(json_t *o, unsigned hidden)
{
    json_t *a = json_array();

    if (hidden & FERRY_PCIHOST_HIDDEN_CAPS)
        json_array_append_new(a, json_string("capabilities"));
    if (hidden & FERRY_PCIHOST_HIDDEN_EXT)
        json_array_append_new(a, json_string("extended_capabilities"));
    if (hidden & FERRY_PCIHOST_HIDDEN_SIZES)
        json_array_append_new(a, json_string("bar_sizes"));
    if (hidden & FERRY_PCIHOST_HIDDEN_SYSFS)
        json_array_append_new(a, json_string("sysfs"));
    json_object_set_new(o, "hidden", a);
}

static json_t *json_dev(const struct ferry_pcihost *h, const struct ferry_pcihost_dev *d)
{
    json_t *b = json_object(), *bars = json_array();

    j_str(b, "address", d->name);
    j_int(b, "domain", d->addr.domain);
    j_int(b, "bus", d->addr.bus);
    j_int(b, "slot", d->addr.dev);
    j_int(b, "function", d->addr.fn);
    j_int(b, "vendor_id", d->vendor_id);
    j_int(b, "device_id", d->device_id);
    j_int(b, "subsystem_vendor_id", d->subsys_vendor_id);
    j_int(b, "subsystem_id", d->subsys_id);
    j_int(b, "class", d->class_id);
    j_int(b, "prog_if", d->prog_if);
    j_int(b, "revision", d->revision);
    j_str(b, "vendor", d->vendor_name);
    j_str(b, "device", d->device_name);
    j_str(b, "class_name", d->class_name);
    j_int(b, "header_type", d->header_type);
    j_bool(b, "multifunction", d->multifunction);
    j_opt_int(b, "irq_pin", d->irq_pin, d->irq_pin != 0);
    j_opt_int(b, "irq", d->irq, d->irq_pin != 0 && d->irq > 0);
    for (int i = 0; i < FERRY_PCIHOST_BARS; i++) {
        const struct ferry_pcihost_bar *bar = &d->bars[i];
        json_t *o;

        if (!bar->present)
            continue;
        o = json_object();
        j_int(o, "index", i);
        j_str(o, "type", bar->io ? "io" : "memory");
        j_int(o, "address", (int64_t)bar->addr);
        j_opt_int(o, "size", (int64_t)bar->size, bar->size != 0);
        j_bool(o, "prefetchable", bar->prefetch);
        j_bool(o, "64bit", bar->mem64);
        json_array_append_new(bars, o);
    }
    json_object_set_new(b, "bars", bars);
    if (d->rom.present) {
        json_t *o = json_object();

        j_int(o, "address", (int64_t)d->rom.addr);
        j_opt_int(o, "size", (int64_t)d->rom.size, d->rom.size != 0);
        json_object_set_new(b, "rom", o);
    } else {
        json_object_set_new(b, "rom", json_null());
    }
    for (int ext = 0; ext < 2; ext++) {
        json_t *caps = json_array();

        for (size_t i = 0; i < d->ncaps; i++) {
            const struct ferry_pcihost_cap *c = &d->caps[i];
            json_t *o;

            if (c->ext != ext)
                continue;
            o = json_object();
            j_int(o, "id", c->id);
            j_str(o, "name", pcihost_cap_name(c));
            j_int(o, "offset", c->offset);
            if (ext)
                j_int(o, "version", c->version);
            json_array_append_new(caps, o);
        }
        json_object_set_new(b, ext ? "extended_capabilities" : "capabilities", caps);
    }
    j_opt_int(b, "iommu_group", d->iommu_group, d->iommu_group >= 0);
    j_opt_int(b, "numa_node", d->numa_node, d->numa_node >= 0);
    j_str(b, "physical_slot", d->phys_slot);
    j_str(b, "driver", d->driver);
    j_str(b, "parent", d->parent >= 0 ? pcihost_dev_get(h, (size_t)d->parent)->name : NULL);
    if (d->header_type == 1) {
        j_int(b, "secondary_bus", d->secondary_bus);
        j_int(b, "subordinate_bus", d->subordinate_bus);
    }
    j_hidden(b, d->hidden);
    return b;
}

static void text_dev_line(const struct ferry_pcihost_dev *d, int depth)
{
    char vendor[FERRY_PCIHOST_NAME_MAX], device[FERRY_PCIHOST_NAME_MAX];

    snprintf(vendor, sizeof(vendor), "%s", d->vendor_name);
    if (!vendor[0])
        snprintf(vendor, sizeof(vendor), "Vendor %04x", d->vendor_id);
    snprintf(device, sizeof(device), "%s", d->device_name);
    if (!device[0])
        snprintf(device, sizeof(device), "Device %04x", d->device_id);
    printf("%*s%s [%04x] %s: %s %s (%04x:%04x)", depth * 2, "", d->name, d->class_id,
           d->class_name[0] ? d->class_name : "Class", vendor, device, d->vendor_id,
           d->device_id);
    if (d->iommu_group >= 0)
        printf(" group %d", d->iommu_group);
    if (d->driver[0])
        printf(" driver %s", d->driver);
    printf("\n");
}

static void text_dev_details(const struct ferry_pcihost_dev *d, int depth)
{
    int ind = depth * 2 + 4;

    if (d->irq_pin)
        printf("%*sinterrupt: pin %c, irq %d\n", ind, "", 'A' + d->irq_pin - 1, d->irq);
    for (int i = 0; i < FERRY_PCIHOST_BARS; i++) {
        const struct ferry_pcihost_bar *b = &d->bars[i];
        if (!b->present)
            continue;
        printf("%*sbar %d: %s at 0x%llx", ind, "", i,
               b->io ? "i/o" : b->mem64 ? "memory 64-bit" : "memory 32-bit",
               (unsigned long long)b->addr);
        if (b->prefetch)
            printf(" prefetchable");
        if (b->size)
            printf(" size 0x%llx", (unsigned long long)b->size);
        printf("\n");
    }
    if (d->rom.present)
    {
        printf("%*srom at 0x%llx", ind, "", (unsigned long long)d->rom.addr);
        if (d->rom.size)
            printf(" size 0x%llx", (unsigned long long)d->rom.size);
        printf("\n");
    }
    if (d->ncaps) {
        printf("%*scapabilities:", ind, "");
        for (size_t i = 0; i < d->ncaps; i++)
            printf(" %s%s@0x%x", d->caps[i].ext ? "+" : "", pcihost_cap_name(&d->caps[i]),
                   d->caps[i].offset);
        printf("\n");
    }
    if (d->numa_node >= 0)
        printf("%*snuma node: %d\n", ind, "", d->numa_node);
    if (d->phys_slot[0])
        printf("%*sphysical slot: %s\n", ind, "", d->phys_slot);
    if (d->hidden & FERRY_PCIHOST_HIDDEN_CAPS)
        printf("%*scapabilities: <hidden: config space past 64 bytes needs root>\n", ind, "");
}

static void text_tree(const struct ferry_pcihost *h, int parent, int depth, bool all)
{
    for (size_t i = 0; i < pcihost_dev_count(h); i++) {
        const struct ferry_pcihost_dev *d = pcihost_dev_get(h, i);
        if (d->parent != parent)
            continue;
        text_dev_line(d, depth);
        if (all)
            text_dev_details(d, depth);
        if (d->header_type == 1 && depth < 32)
            text_tree(h, (int)i, depth + 1, all);
    }
}

static void text_hidden(unsigned hidden)
{
    if (hidden & FERRY_PCIHOST_HIDDEN_CAPS)
        fprintf(stderr, "ferry pci: note: capabilities are hidden from this user "
                "(the kernel shows 64 bytes of config space to non-root)\n");
    if (hidden & FERRY_PCIHOST_HIDDEN_EXT)
        fprintf(stderr, "ferry pci: note: extended config space is not readable "
                "(no ECAM/MMCONFIG or not root)\n");
    if (hidden & FERRY_PCIHOST_HIDDEN_SIZES)
        fprintf(stderr, "ferry pci: note: BAR sizes are unknown (read from a dump)\n");
    if (hidden & FERRY_PCIHOST_HIDDEN_SYSFS)
        fprintf(stderr, "ferry pci: note: some devices have no sysfs entry: "
                "IOMMU group, driver and NUMA node unknown\n");
}

static int do_list(const struct cmd_pci_opts *o)
{
    struct ferry_pcihost *h = cmd_pci_open_host(o);

    if (!h)
        return FERRY_EXIT_FAILURE;
    if (o->json) {
        json_t *b = json_object(), *devs = json_array();

        j_int(b, "version", PCI_JSON_VERSION);
        j_str(b, "source", o->dump ? "dump" : "sysfs");
        j_hidden(b, pcihost_hidden(h));
        for (size_t i = 0; i < pcihost_dev_count(h); i++)
            json_array_append_new(devs, json_dev(h, pcihost_dev_get(h, i)));
        json_object_set_new(b, "devices", devs);
        print_json(b);
    } else if (o->tree) {
        text_tree(h, -1, 0, o->all);
        text_hidden(pcihost_hidden(h));
    } else {
        for (size_t i = 0; i < pcihost_dev_count(h); i++) {
            text_dev_line(pcihost_dev_get(h, i), 0);
            if (o->all)
                text_dev_details(pcihost_dev_get(h, i), 0);
        }
        text_hidden(pcihost_hidden(h));
    }
    pcihost_close(h);
    return FERRY_EXIT_OK;
}

int cmd_pci_parse_bdf(const char *s, struct ferry_pci_addr *a)
{
    if (!s) {
        fprintf(stderr, "ferry pci: missing device address (BDF)\n");
        return -EINVAL;
    }
    if (pcihost_addr_parse(s, a) < 0) {
        fprintf(stderr, "ferry pci: '%s' is not a PCI address: expected dddd:bb:dd.f or "
                "bb:dd.f in hex (device <= 1f, function <= 7)\n", s);
        return -EINVAL;
    }
    return 0;
}

static int do_check(const struct cmd_pci_opts *o, const char *bdf)
{
    struct ferry_pcihost_report *r;
    struct ferry_pci_addr a;
    struct ferry_pcihost *h;
    size_t warns = 0, fails = 0;
    int rc;

    if (cmd_pci_parse_bdf(bdf, &a) < 0)
        return FERRY_EXIT_USAGE;
    h = cmd_pci_open_host(o);
    if (!h)
        return FERRY_EXIT_FAILURE;
    r = g_new0(struct ferry_pcihost_report, 1);
    if (pcihost_check(h, &a, r) < 0) {
        fprintf(stderr, "ferry pci check: %s\n", pcihost_last_error(h));
        g_free(r);
        pcihost_close(h);
        return FERRY_EXIT_FAILURE;
    }
    for (size_t i = 0; i < r->n; i++) {
        warns += r->f[i].verdict == FERRY_PCIHOST_WARN;
        fails += r->f[i].verdict == FERRY_PCIHOST_FAIL;
    }
    if (o->json) {
        json_t *b = json_object(), *members = json_array(), *resets = json_array();
        json_t *checks = json_array();

        j_int(b, "version", PCI_JSON_VERSION);
        j_str(b, "device", r->dev);
        j_bool(b, "ready", r->ready);
        j_opt_int(b, "iommu_group", r->iommu_group, r->iommu_group >= 0);
        for (size_t i = 0; i < r->nmembers; i++) {
            json_t *m = json_object();

            j_str(m, "address", r->members[i].name);
            j_str(m, "driver", r->members[i].driver);
            j_bool(m, "bridge", r->members[i].bridge);
            json_array_append_new(members, m);
        }
        json_object_set_new(b, "group_members", members);
        if (r->resets & FERRY_PCIHOST_RESET_FLR)
            json_array_append_new(resets, json_string("flr"));
        if (r->resets & FERRY_PCIHOST_RESET_AF_FLR)
            json_array_append_new(resets, json_string("af_flr"));
        if (r->resets & FERRY_PCIHOST_RESET_PM)
            json_array_append_new(resets, json_string("pm"));
        if (r->resets & FERRY_PCIHOST_RESET_BUS)
            json_array_append_new(resets, json_string("bus"));
        json_object_set_new(b, "reset_methods", resets);
        j_str(b, "kernel_reset_method", r->kernel_reset_method);
        for (size_t i = 0; i < r->n; i++) {
            json_t *c = json_object();

            j_str(c, "check", r->f[i].check);
            j_str(c, "verdict", pcihost_verdict_name(r->f[i].verdict));
            j_str(c, "reason", r->f[i].reason);
            json_array_append_new(checks, c);
        }
        json_object_set_new(b, "checks", checks);
        print_json(b);
    } else {
        printf("ferry pci check %s: %s", r->dev,
               r->ready ? "ready for passthrough" : "NOT ready for passthrough");
        if (fails || warns)
            printf(" (%zu failed, %zu warning%s)", fails, warns, warns == 1 ? "" : "s");
        printf("\n");
        for (size_t i = 0; i < r->n; i++)
            printf("  [%s] %-19s %s\n", pcihost_verdict_name(r->f[i].verdict), r->f[i].check,
                   r->f[i].reason);
        if (r->nmembers) {
            printf("  IOMMU group %d:", r->iommu_group);
            for (size_t i = 0; i < r->nmembers; i++)
                printf(" %s (%s%s)", r->members[i].name,
                       r->members[i].driver[0] ? r->members[i].driver : "no driver",
                       r->members[i].bridge ? ", bridge" : "");
            printf("\n");
        }
    }
    rc = r->ready ? FERRY_EXIT_OK : FERRY_EXIT_FAILURE;
    g_free(r);
    pcihost_close(h);
    return rc;
}

int cmd_pci(int argc, char **argv)
{
    enum { O_SYSFS = 256, O_PROC, O_STATE, O_DUMP, O_IDS, O_ID, O_BUS, O_ADDR, O_CONFIG,
           O_GUEST };
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "all", no_argument, NULL, 'a' },
        { "tree", no_argument, NULL, 't' },
        { "group", no_argument, NULL, 'g' },
        { "force", no_argument, NULL, 'f' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "sysfs-root", required_argument, NULL, O_SYSFS },
        { "proc-root", required_argument, NULL, O_PROC },
        { "state-dir", required_argument, NULL, O_STATE },
        { "dump", required_argument, NULL, O_DUMP },
        { "ids", required_argument, NULL, O_IDS },
        { "id", required_argument, NULL, O_ID },
        { "bus", required_argument, NULL, O_BUS },
        { "addr", required_argument, NULL, O_ADDR },
        { "config", required_argument, NULL, O_CONFIG },
        { "guest", required_argument, NULL, O_GUEST },
        { 0 }
    };
    struct cmd_pci_opts o = {
        .sysfs_root = getenv("FERRY_SYSFS_ROOT"),
        .proc_root = getenv("FERRY_PROC_ROOT"),
        .state_dir = getenv("FERRY_PCI_STATE_DIR"),
        .dump = getenv("FERRY_PCI_DUMP"),
    };
    const char *action, *arg1, *arg2;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o.json = true; break;
        case 'a': o.all = true; break;
        case 't': o.tree = true; break;
        case 'g': o.group = true; break;
        case 'f': o.force = true; break;
        case 'v': o.verbose++; break;
        case 'h': usage(stdout); return FERRY_EXIT_OK;
        case O_SYSFS: o.sysfs_root = optarg; break;
        case O_PROC: o.proc_root = optarg; break;
        case O_STATE: o.state_dir = optarg; break;
        case O_DUMP: o.dump = optarg; break;
        case O_IDS: o.ids = optarg; break;
        case O_ID: o.id = optarg; break;
        case O_BUS: o.bus = optarg; break;
        case O_ADDR: o.addr = optarg; break;
        case O_CONFIG: o.config = optarg; break;
        case O_GUEST: o.guest = optarg; break;
        default: usage(stderr); return FERRY_EXIT_USAGE;
        }
    }
    ferry_log_init("ferry", o.verbose);
    if (optind >= argc) {
        usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (o.dump && !*o.dump)
        o.dump = NULL;
    action = argv[optind];
    arg1 = optind + 1 < argc ? argv[optind + 1] : NULL;
    arg2 = optind + 2 < argc ? argv[optind + 2] : NULL;
    if (!strcmp(action, "list"))
        return do_list(&o);
    if (!strcmp(action, "check"))
        return do_check(&o, arg1);
    if ((!strcmp(action, "release") || !strcmp(action, "prepare")) && o.config && !arg1)
        return cmd_pci_config(&o, !strcmp(action, "release"));
    if (!strcmp(action, "prepare"))
        return cmd_pci_prepare(&o, arg1, false);
    if (!strcmp(action, "release"))
        return cmd_pci_prepare(&o, arg1, true);
    if (!strcmp(action, "attach"))
        return cmd_pci_attach(&o, arg1, arg2, false);
    if (!strcmp(action, "detach"))
        return cmd_pci_attach(&o, arg1, arg2, true);
    fprintf(stderr, "ferry pci: unknown action '%s'\n", action);
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
