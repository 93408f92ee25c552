// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A PCI function emulated by a stock QEMU in its own process (-machine
 * x-remote), through the QEMU-remote engine (mpqemu/qemu-remote.h).
 *
 * The engine owns the function's config space and supervises QEMU; this
 * file wires it into ferry-dm: config ioreqs for its devfn go to the
 * engine, each BAR the guest enables becomes a region (and a claim) whose
 * accesses are forwarded, guest RAM is shared with QEMU for its DMA, and
 * QEMU's INTx eventfd (with its resample fd) is registered with the
 * hypervisor for GSI pci_intx_gsi(dev, pin) (level, as libacpi's _PRT).
 *
 * Options: device=DEV (a QEMU -device value without id=; write ",," for a
 *          comma), addr=DEV[.FN] (hex; default: first free slot),
 *          args=ARGS (extra QEMU arguments, space-separated, e.g.
 *          "-netdev user,,id=n0"), qemu=PATH, restarts=N (default 3),
 *          sandbox=on|off (QEMU's seccomp, default on)
 *
 * The xhci device is the same with device=qemu-xhci and a QMP monitor on
 * the remote QEMU (on a socket pair the launcher makes with each QEMU,
 * nothing in the file system): ferry-dm's USB service (companion/dm-usb.h)
 * plugs host devices into that QEMU as usb-redir devices whose channels it
 * serves, as for a QEMU guest; when the remote QEMU is restarted, ferry-dm
 * takes the new QEMU's monitor (confined too: no socket() or connect()) and
 * plugs them in again.  Options: addr=, qemu=, restarts=, sandbox= as above.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devmodel/dm.h"
#include "sandbox/sandbox.h"
#include "mpqemu/qemu-remote.h"
#include "pci/pcimodel.h"

struct qemu_bar {
    struct qemu_dev *q;
    unsigned idx;
    bool io;
    uint64_t size;
    struct ferry_dm_region *r;
};

struct qemu_dev {
    struct ferry_dm_device *dev;
    struct ferry_dm *dm;
    struct ferry_qemu_remote *qr;
    int devfn;
    uint32_t gsi;
    bool irqfd;
    struct qemu_bar bar[QEMU_REMOTE_BARS];
    char **argv;
    bool went_down;             /* restarts are announced (xhci: USB reconnects) */
    char *qmp;                  /* xhci: the name of the remote's QMP channel (logs, USB) */
};

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct qemu_bar *b = opaque;
    uint64_t v = UINT64_MAX;

    if (mpqemu_remote_bar_read(b->q->qr, b->io, dm_region_base(b->r) + off, size, &v) < 0)
        return UINT64_MAX;
    return v;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct qemu_bar *b = opaque;

    mpqemu_remote_bar_write(b->q->qr, b->io, dm_region_base(b->r) + off, size, val);
}

static const struct ferry_dm_region_ops bar_ops = {
    .read = bar_read,
    .write = bar_write,
    .max_size = 8,
};

/* The engine says where a BAR decodes now: move the region (and claim) there. */
static void qemu_bar_map(void *opaque, unsigned idx, bool io, uint64_t addr, uint64_t size,
                         bool mapped)
{
    struct qemu_dev *q = opaque;
    struct qemu_bar *b;
    int rc;

    if (idx >= QEMU_REMOTE_BARS)
        return;
    b = &q->bar[idx];
    if (!mapped) {
        if (b->r)
            dm_region_unmap(b->r);
        return;
    }
    if (b->r && (b->io != io || b->size != size)) {
        dm_region_del(b->r);
        b->r = NULL;
    }
    if (!b->r) {
        *b = (struct qemu_bar){ .q = q, .idx = idx, .io = io, .size = size };
        rc = dm_region_add(q->dev, io ? FERRY_DM_SPACE_PORT : FERRY_DM_SPACE_MMIO, addr,
                                 size, &bar_ops, b, 0, &b->r);
    } else {
        rc = dm_region_move(b->r, addr);
    }
    if (rc < 0)
        dm_dev_guest_log(q->dev, "bar %u at %s 0x%llx+0x%llx not decoded: %s", idx,
                               io ? "io" : "mem", (unsigned long long)addr,
                               (unsigned long long)size, strerror(-rc));
}

static void qemu_state(void *opaque, enum mpqemu_remote_state state)
{
    struct qemu_dev *q = opaque;

    dm_dev_log(q->dev, state == QEMU_REMOTE_RUNNING ? FERRY_LOG_INFO : FERRY_LOG_WARNING,
                     "qemu is %s", mpqemu_remote_state_name(state));
    if (state == QEMU_REMOTE_DOWN)
        q->went_down = true;
    if (state == QEMU_REMOTE_RUNNING && q->went_down && q->qmp) {
        q->went_down = false;
        dm_usb_host_restarted(q->dm, mpqemu_remote_take_monitor(q->qr));
    }
}

static void qemu_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    struct qemu_dev *q = opaque;

    dm_dev_log(q->dev, level, "%s", msg);
}

static const struct ferry_qemu_remote_ops qemu_ops = {
    .log = qemu_log,
    .bar_map = qemu_bar_map,
    .state_changed = qemu_state,
};

static uint32_t cfg_read(void *opaque, uint32_t reg, unsigned size)
{
    struct qemu_dev *q = opaque;

    return mpqemu_remote_config_read(q->qr, reg, size);
}

static void cfg_write(void *opaque, uint32_t reg, unsigned size, uint32_t val)
{
    struct qemu_dev *q = opaque;

    mpqemu_remote_config_write(q->qr, reg, size, val);
}

static const struct ferry_dm_pci_ext_ops cfg_ops = { .read = cfg_read, .write = cfg_write };

/* Guest RAM for QEMU's DMA: every region of the hypervisor's table. */
static int share_ram(struct qemu_dev *q)
{
    struct ioreq_msg_memory_reply regions;
    int fd = dm_guest_memory_fd(q->dm, &regions);

    if (fd < 0) {
        dm_dev_log(q->dev, FERRY_LOG_WARNING, "no guest RAM to share: the device "
                         "cannot DMA");
        return 0;
    }
    for (unsigned i = 0; i < regions.nr_regions && i < QEMU_REMOTE_RAM_MAX; i++) {
        int rc = mpqemu_remote_add_ram(q->qr, fd, regions.region[i].gpa, regions.region[i].size,
                                     regions.region[i].offset);

        if (rc < 0)
            return rc;
    }
    return 0;
}

static void qemu_free(struct qemu_dev *q)
{
    mpqemu_remote_free(q->qr);
    g_strfreev(q->argv);
    g_free(q->qmp);
    free(q);
}

static int qemu_setup(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                      const char *device, bool xhci, void **state)
{
    const char *args = dm_opts_get(opts, "args");
    const char *sandbox = dm_opts_get(opts, "sandbox");
    uint64_t restarts;
    struct qemu_dev *q;
    int devfn, rc;

    if (dm_pci_parse_addr(dm_opts_get(opts, "addr"), &devfn) < 0 ||
        dm_opts_get_u64(opts, "restarts", 3, 100, &restarts) < 0 ||
        (sandbox && strcmp(sandbox, "on") != 0 && strcmp(sandbox, "off") != 0)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: %saddr=DEV[.FN], args=ARGS, qemu=PATH, "
                   "restarts=N, sandbox=on|off", xhci ? "" : "device=DEV (required), ");
        return -EINVAL;
    }
    if (dm_confined(dm_device_dm(dev))) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "a confined ferry-dm cannot start another QEMU: "
                         "its launchers were forked at start-up with fixed command lines; put "
                         "the device in the configuration (a [qemu] group) instead");
        return -EPERM;
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->dev = dev;
    q->dm = dm_device_dm(dev);
    if (xhci)
        q->qmp = g_strdup_printf("qemu-xhci:%s", dm_device_id(dev));
    if (args && *args)
        q->argv = g_strsplit_set(args, " ", -1);
    /* A replace: the predecessor's QEMU, its link, INTx fds and launcher are ours (the
     * xhci's QMP monitor comes with the companion part: ferry-dm's one QMP connection). */
    int inh[FERRY_DM_HANDOVER_DEV_FDS];
    int ninh = dm_device_inherited_fds(dev, inh, FERRY_DM_HANDOVER_DEV_FDS);
    bool all = true;
    for (int i = 0; i < ninh; i++)
        all &= inh[i] >= 0;
    if (ninh != 0 && (ninh != QEMU_REMOTE_HANDOVER_FDS || !all)) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "the predecessor handed over %d fds, not %d", ninh,
                   QEMU_REMOTE_HANDOVER_FDS);
        for (int i = 0; i < ninh; i++)
            if (inh[i] >= 0)
                close(inh[i]);
        rc = -EINVAL;
        goto err;
    }
    struct ferry_qemu_remote_config cfg = {
        .qemu = dm_opts_get(opts, "qemu"),
        .device = device,
        .id = dm_device_id(dev),
        .extra_args = (const char *const *)q->argv,
        .max_restarts = (unsigned)restarts,
        .no_sandbox = sandbox && strcmp(sandbox, "off") == 0,
        .monitor = xhci,
        .launcher_sandbox = dm_sandbox(q->dm),
        .irq_fd = -1,
        .resample_fd = -1,
        .adopt_fds = ninh ? inh : NULL,
    };
    rc = dm_pci_ext_add(dev, devfn, &cfg_ops, q);
    if (rc < 0) {
        for (int i = 0; i < ninh; i++)
            close(inh[i]);
        goto err;
    }
    q->devfn = rc;
    rc = mpqemu_remote_new(dm_event_base(q->dm), &cfg, &qemu_ops, q, &q->qr);
    if (rc < 0)
        goto err;
    rc = share_ram(q);
    if (rc == 0 && ninh) {
        /* Resumed from the predecessor's state (qemu_restore): no start, no reset.  The
         * xhci's monitor: the predecessor's connection, taken over by ferry-dm (dm-main.c). */
        if (xhci && (rc = dm_usb_host_set(q->dm, q->qmp, -1)) < 0) {
            dm_dev_log(dev, FERRY_LOG_ERROR, "%s", rc == -EEXIST ? "one xhci per guest: there "
                       "is one already" : strerror(-rc));
            goto err;
        }
        dm_dev_log(dev, FERRY_LOG_INFO, "%s at 00:%02x.%x: taking over its running qemu",
                   device, q->devfn >> 3, q->devfn & 7);
        *state = q;
        return 0;
    }
    if (rc == 0)
        rc = mpqemu_remote_start(q->qr);
    if (rc < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "cannot start qemu for '%s': %s", device,
                         strerror(-rc));
        goto err;
    }
    if (xhci && (rc = dm_usb_host_set(q->dm, q->qmp, mpqemu_remote_take_monitor(q->qr))) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "%s", rc == -EEXIST ? "one xhci per guest: there "
                   "is one already" : strerror(-rc));
        goto err;
    }
    dm_dev_log(dev, FERRY_LOG_INFO, "%s at 00:%02x.%x in qemu pid %d%s%s", device,
                     q->devfn >> 3, q->devfn & 7, (int)mpqemu_remote_pid(q->qr),
                     xhci ? ", usb-redir devices through its QMP " : "", xhci ? q->qmp : "");
    *state = q;
    return 0;
err:
    /* The config claim and any BAR regions go with the device. */
    qemu_free(q);
    return rc;
}

static int qemu_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "device", "addr", "args", "qemu", "restarts",
                                         "sandbox", NULL };
    const char *bad = NULL;

    if (dm_opts_check(opts, known, &bad) < 0 || !dm_opts_get(opts, "device")) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: device=DEV (required), addr=DEV[.FN], "
                         "args=ARGS, qemu=PATH, restarts=N, sandbox=on|off%s%s",
                         bad ? "; unknown: " : "", bad ? bad : "");
        return -EINVAL;
    }
    return qemu_setup(dev, opts, dm_opts_get(opts, "device"), false, state);
}

static int xhci_init(struct ferry_dm_device *dev, const struct ferry_dm_opts *opts,
                     void **state)
{
    static const char *const known[] = { "addr", "args", "qemu", "restarts", "sandbox", NULL };
    const char *bad = NULL;

    if (dm_opts_check(opts, known, &bad) < 0) {
        dm_dev_log(dev, FERRY_LOG_ERROR, "options: addr=DEV[.FN], args=ARGS, qemu=PATH, "
                   "restarts=N, sandbox=on|off; unknown: %s", bad ? bad : "?");
        return -EINVAL;
    }
    return qemu_setup(dev, opts, "qemu-xhci", true, state);
}

/* INTx: QEMU signals its eventfd itself; hand it to the hypervisor. */
static int qemu_start(void *state)
{
    struct qemu_dev *q = state;
    uint32_t pin = mpqemu_remote_config_read(q->qr, FERRY_PCI_INTERRUPT_PIN, 1);
    int rc;

    /* Taken over: the predecessor's irqfd stays registered (its gsi comes with the state). */
    if (mpqemu_remote_adopted(q->qr))
        return 0;
    if (pin < 1 || pin > 4)
        return 0;
    q->gsi = pci_intx_gsi((unsigned)q->devfn >> 3, pin - 1);
    rc = dm_irqfd_assign(q->dm, q->gsi, mpqemu_remote_irq_fd(q->qr),
                               mpqemu_remote_resample_fd(q->qr), true);
    if (rc < 0) {
        dm_dev_log(q->dev, FERRY_LOG_WARNING, "INTx on gsi %u not wired: %s", q->gsi,
                         strerror(-rc));
        return rc;
    }
    q->irqfd = true;
    return 0;
}

static void qemu_exit(void *state)
{
    struct qemu_dev *q = state;

    if (q->irqfd &&
        dm_irqfd_assign(q->dm, q->gsi, mpqemu_remote_irq_fd(q->qr),
                              mpqemu_remote_resample_fd(q->qr), false) < 0)
        dm_dev_log(q->dev, FERRY_LOG_DEBUG, "irqfd for gsi %u already gone", q->gsi);
    qemu_free(q);
}

/*
 * Replacing ferry-dm (docs/ferry-dm.md): the QEMU process keeps running;
 * the successor gets its launcher (which reaps and restarts it), the
 * mpqemu link, its stderr and the INTx eventfd and resample eventfd
 * (still registered with the hypervisor), and the engine's state: where
 * the guest put the BARs, its config writes, the restart count.
 */
static int qemu_handover_fds(void *state, int *fds, unsigned max)
{
    struct qemu_dev *q = state;

    if (max < QEMU_REMOTE_HANDOVER_FDS)
        return -E2BIG;
    return mpqemu_remote_handover_begin(q->qr, fds);
}

static void qemu_handover_abort(void *state)
{
    struct qemu_dev *q = state;

    mpqemu_remote_handover_abort(q->qr);
}

#define QEMU_SAVE_VERSION 1

struct qemu_save_hdr {
    uint32_t version;
    uint32_t gsi;
    uint32_t irqfd;
    uint32_t devfn;
};

static int qemu_save(void *state, GByteArray *out)
{
    struct qemu_dev *q = state;
    struct qemu_save_hdr h = { QEMU_SAVE_VERSION, q->gsi, q->irqfd, (uint32_t)q->devfn };
    size_t n = mpqemu_remote_snapshot_size();
    g_autofree uint8_t *snap = g_malloc(n);

    mpqemu_remote_snapshot(q->qr, snap);
    g_byte_array_append(out, (const guint8 *)&h, sizeof(h));
    g_byte_array_append(out, snap, (guint)n);
    return 0;
}

static int qemu_restore(void *state, const uint8_t *buf, size_t len)
{
    struct qemu_dev *q = state;
    struct qemu_save_hdr h;
    int rc;

    if (len < sizeof(h))
        return -EINVAL;
    memcpy(&h, buf, sizeof(h));
    if (h.version != QEMU_SAVE_VERSION || h.devfn != (uint32_t)q->devfn || h.irqfd > 1)
        return -EINVAL;
    /* Only a QEMU taken over from the predecessor can take its state. */
    if (!mpqemu_remote_adopted(q->qr))
        return -EOPNOTSUPP;
    rc = mpqemu_remote_resume(q->qr, buf + sizeof(h), len - sizeof(h));
    if (rc < 0)
        return rc;
    q->gsi = h.gsi;
    q->irqfd = h.irqfd;
    return 0;
}

static void qemu_reset(void *state)
{
    struct qemu_dev *q = state;

    if (mpqemu_remote_state(q->qr) == QEMU_REMOTE_RUNNING && mpqemu_remote_reset(q->qr) < 0)
        dm_dev_log(q->dev, FERRY_LOG_WARNING, "function reset failed");
}

static void qemu_query(void *state, json_t *b)
{
    struct qemu_dev *q = state;
    struct mpqemu_remote_stats st;
    char bdf[16];

    mpqemu_remote_get_stats(q->qr, &st);
    snprintf(bdf, sizeof(bdf), "00:%02x.%x", q->devfn >> 3, q->devfn & 7);
    json_object_set_new(b, "bdf", ferry_json_str(bdf));
    json_object_set_new(b, "qemu-pid", json_integer(mpqemu_remote_pid(q->qr)));
    json_object_set_new(b, "state",
                        ferry_json_str(mpqemu_remote_state_name(mpqemu_remote_state(q->qr))));
    json_object_set_new(b, "restarts", json_integer(st.restarts));
    json_object_set_new(b, "bar-reads", json_integer((json_int_t)st.bar_reads));
    json_object_set_new(b, "bar-writes", json_integer((json_int_t)st.bar_writes));
    json_object_set_new(b, "refused", json_integer((json_int_t)st.refused));
}

/*
 * Syscalls beyond the base list of a confined ferry-dm.  ferry-dm never
 * forks or executes anything itself.  The remote QEMU is (re)started
 * through the launcher (sandbox/launcher.h): a helper forked before
 * confinement that holds the one fixed qemu-system-x86_64 command line,
 * drops to the same user with no_new_privs, and hands back the mpqemu
 * socket and QEMU's stderr pipe by SCM_RIGHTS; stopping an instance (kill +
 * reap) is a request to the helper too, since a confined ferry-dm may
 * signal only itself.  The mpqemu messages (SYNC_SYSMEM with the guest RAM
 * memfd, SET_IRQFD with eventfds) are sendmsg/recvmsg, eventfd2 and mmap
 * without PROT_EXEC: all in the base list.  What is left is reaping the
 * helper itself at the end.
 */
FERRY_SYSCALL_LIST_STATIC(qemu_syscalls, "mpqemu",
    "QEMU-hosted device over mpqemu; QEMU (re)starts and stops through the pre-forked launcher",
    FERRY_SC("wait4"), FERRY_SC("waitid"));

const struct ferry_dm_device_type qemu_device = {
    .name = "qemu",
    .desc = "a PCI device emulated by QEMU in its own process (device=rtl8139, addr=, args=)",
    .hotplug = true,
    .syscalls = &qemu_syscalls,
    .init = qemu_init,
    .exit = qemu_exit,
    .reset = qemu_reset,
    .start = qemu_start,
    .query = qemu_query,
    .save = qemu_save,
    .restore = qemu_restore,
    .handover_fds = qemu_handover_fds,
    .handover_abort = qemu_handover_abort,
};
FERRY_DM_DEVICE_TYPE(qemu_device)

/*
 * The xhci device's own: the qemu device's.  Its remote QEMU's QMP monitor
 * is a socket pair the launcher makes with each QEMU (sandbox/launcher.h,
 * second_sock), so a restart needs no socket() or connect() here and
 * leaves nothing in the file system.  After a restart the USB devices' fds
 * are wrapped by libusb again (usb_service_guest_reconnect), as a broker's
 * new fd would be: access() runs nothing and finds nothing in the empty
 * root, so it is answered ENOENT (umockdev's preload, under which the
 * simulated devices of the tests run, asks it before libusb's readlink of
 * a wrapped fd; `ferry usb share` does the same).
 */
FERRY_SYSCALL_LIST_STATIC(xhci_syscalls, "mpqemu-xhci",
    "qemu-xhci over mpqemu (as mpqemu); its QMP monitor comes from the launcher; "
    "access() answered without running",
    FERRY_SC("wait4"), FERRY_SC("waitid"), FERRY_SC_ERRNO("access", ENOENT),
    FERRY_SC_ERRNO("faccessat", ENOENT), FERRY_SC_ERRNO("faccessat2", ENOENT));

const struct ferry_dm_device_type xhci_device = {
    .name = "xhci",
    .desc = "an xHCI USB controller (QEMU's qemu-xhci in its own process) for host USB "
            "devices: ferry usb attach, [usb] devices= (addr=)",
    .syscalls = &xhci_syscalls,
    .init = xhci_init,
    .exit = qemu_exit,
    .reset = qemu_reset,
    .start = qemu_start,
    .query = qemu_query,
    /* a replace takes the remote QEMU over as the qemu device's; its monitor and the
     * usbredir channels go with ferry-dm's QMP connection and USB service (dm-main.c) */
    .save = qemu_save,
    .restore = qemu_restore,
    .handover_fds = qemu_handover_fds,
    .handover_abort = qemu_handover_abort,
};
FERRY_DM_DEVICE_TYPE(xhci_device)
