// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of the qemu-usb tests (see qemu-usb.sh and guest-usb.sh): the
 * USB simulator in this process (under umockdev-wrapper), QEMU booting
 * Debian's kernel with a busybox initramfs, and ferry-dm as QEMU's USB
 * companion (ferry-dm --qmp), a separate process that sees the simulated
 * devices through umockdev.  Follows the guest's markers on the serial
 * console: taps a key, checks the RAM disk holds the pattern the guest
 * wrote, unplugs and replugs the disk.
 *   unconfined: ferry-dm --seccomp=off --no-namespaces; the keyboard and the
 *     disk are attached with `ferry usb attach`; the replugged disk comes
 *     back by itself (ferry-dm's libusb hotplug).
 *   confined: ferry-dm as by default (seccomp, namespaces); the devices are
 *     the [usb] devices of its config, opened before confinement.  A
 *     confined ferry-dm sees no hotplug and cannot open the new node: its
 *     broker, `ferry usb attach --follow` (here in the testbed), tells it
 *     about the unplug and would pass the replugged device's fd, which
 *     cannot be shown under umockdev (its preload does not follow an fd
 *     into another process, and answers ioctls on such an fd with an
 *     access() the filter forbids), so here the guest checks the unplug only.
 *   qemu-usb-e2e VMLINUZ INITRD WORKDIR FERRY_DM FERRY confined|unconfined
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usbsim.h"

#define BOOT_TIMEOUT_S 600

struct e2e {
    struct event_base *b;
    bool confined;
    GPid follower;          /* confined: the broker following the disk */
    struct usbsim *sim;
    struct usbsim_dev *kbd, *disk;
    GString *line;
    bool key_ok, disk_ok, ramdisk_ok, gone, back, done;
    int guest_rc;
    gint64 replug_at;      /* monotonic us; 0 = nothing pending */
};

static void check_ramdisk(struct e2e *e)
{
    static const char unit[] = "FERRY-PATTERN-0123456789\n";
    uint8_t *got = g_malloc(65536);
    bool ok = true;

    usbsim_disk_read(e->disk, 2048 * 512, got, 65536);
    for (size_t i = 0; i < 65536 && ok; i++)
        ok = got[i] == (uint8_t)unit[i % (sizeof(unit) - 1)];
    e->ramdisk_ok = ok;
    fprintf(stderr, "qemu-usb: RAM disk at 1 MiB %s the guest's 64 KiB pattern\n",
            ok ? "holds exactly" : "does NOT hold");
    g_free(got);
}

static void on_line(struct e2e *e, const char *l)
{
    if (strstr(l, "FERRY-READY-KBD")) {
        usbsim_key_tap(e->kbd, 0x04);   /* 'a' */
    } else if (strstr(l, "FERRY-KEY-OK")) {
        e->key_ok = true;
    } else if (strstr(l, "FERRY-DISK-OK")) {
        e->disk_ok = true;
        check_ramdisk(e);
    } else if (strstr(l, "FERRY-READY-UNPLUG")) {
        usbsim_unplug(e->sim, e->disk);
    } else if (strstr(l, "FERRY-GONE")) {
        e->gone = true;
        if (e->follower) {
            /* it would pass the replugged disk's fd, which under umockdev is
             * no usbfs node in ferry-dm (see the top of this file) */
            kill(e->follower, SIGTERM);
            waitpid(e->follower, NULL, 0);
            e->follower = 0;
        }
        if (usbsim_replug(e->sim, e->disk) < 0)
            fprintf(stderr, "qemu-usb: cannot replug the disk in the simulator\n");
    } else if (strstr(l, "FERRY-BACK")) {
        e->back = true;
    } else if (strstr(l, "FERRY-GUEST-DONE rc=")) {
        e->guest_rc = atoi(strstr(l, "rc=") + 3);
        e->done = true;
    }
}

static void on_serial(evutil_socket_t fd, short what, void *arg)
{
    struct e2e *e = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n <= 0) {
        e->done = true;
        return;
    }
    fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            on_line(e, e->line->str);
            g_string_truncate(e->line, 0);
        } else if (e->line->len < 4096) {
            g_string_append_c(e->line, buf[i]);
        }
    }
}

/* Run `ferry usb ARGS...` (in this testbed: it sees the simulated devices). */
static bool ferry_usb(const char *ferry, const char *verb, const char *guest, const char *dev)
{
    const char *argv[] = { ferry, "usb", verb, guest, dev, NULL };
    char *out = NULL, *err = NULL;
    GError *gerr = NULL;
    int status = -1;
    bool ok;

    ok = g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, &err, &status, &gerr) &&
         WIFEXITED(status) && WEXITSTATUS(status) == 0;
    fprintf(stderr, "qemu-usb: ferry usb %s %s: %s%s%s\n", verb, dev, ok ? "ok" : "FAILED ",
            err ? err : "", gerr ? gerr->message : "");
    g_clear_error(&gerr);
    g_free(out);
    g_free(err);
    return ok;
}

int main(int argc, char **argv)
{
    struct e2e e = { .guest_rc = -1 };
    struct event_config *cfg;
    struct event *ev;
    char qmp[256], ctl[256], conf[256];
    char **envp;
    GError *gerr = NULL;
    GPid pid, dpid = 0;
    int out_fd, ok;
    gint64 end;

    if (argc != 7 || (strcmp(argv[6], "confined") && strcmp(argv[6], "unconfined"))) {
        fprintf(stderr, "usage: qemu-usb-e2e VMLINUZ INITRD WORKDIR FERRY_DM FERRY "
                "confined|unconfined\n");
        return 2;
    }
    e.confined = !strcmp(argv[6], "confined");
    snprintf(qmp, sizeof(qmp), "%s/qmp.sock", argv[3]);
    snprintf(ctl, sizeof(ctl), "%s/dm.sock", argv[3]);
    snprintf(conf, sizeof(conf), "%s/guest.conf", argv[3]);
    {
        /* owner records of our own (policy/owner.h): other runs do not see or hold ours */
        g_autofree char *run = g_build_filename(argv[3], "run", NULL);

        if (g_mkdir_with_parents(run, 0755) < 0) {
            fprintf(stderr, "qemu-usb: cannot make %s\n", run);
            return 1;
        }
        g_setenv("FERRY_RUN_DIR", run, TRUE);
    }
    {
        const char *qargv[] = {
            "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
            "-nodefaults", "-serial", "stdio", "-kernel", argv[1], "-initrd", argv[2],
            "-append", e.confined ? "console=ttyS0 quiet panic=-1 ferry_replug=0"
                                  : "console=ttyS0 quiet panic=-1",
            "-device", "qemu-xhci,id=xhci", "-qmp", NULL, NULL,
        };
        char *qmparg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
        qargv[19] = qmparg;
        envp = g_get_environ();
        envp = g_environ_unsetenv(envp, "LD_PRELOAD");   /* QEMU sees the real system */
        envp = g_environ_unsetenv(envp, "UMOCKDEV_DIR");
        ok = g_spawn_async_with_pipes(NULL, (char **)qargv, envp,
                                      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                      &pid, NULL, &out_fd, NULL, &gerr);
        g_strfreev(envp);
        g_free(qmparg);
        if (!ok) {
            fprintf(stderr, "qemu-usb: cannot start QEMU: %s\n", gerr->message);
            return 1;
        }
    }
    e.sim = usbsim_new();
    if (!e.sim) {
        kill(pid, SIGKILL);
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        return 1;
    }
    e.kbd = usbsim_add(e.sim, USBSIM_KEYBOARD, "1-1", "KBD-E2E");
    e.disk = usbsim_add(e.sim, USBSIM_STORAGE, "1-2", "DISK-E2E");
    e.line = g_string_new(NULL);
    cfg = event_config_new();
    event_config_avoid_method(cfg, "epoll");   /* umockdev nodes are regular files */
    e.b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    for (int i = 0; i < 200 && access(qmp, F_OK) < 0; i++)
        g_usleep(50000);
    {
        /* the simulated keyboard is ours: a rule names it (HID is refused by default) */
        FILE *f = fopen(conf, "w");

        if (!f)
            goto fail;
        fprintf(f, "[usb]\npolicy=0x03,0x1d50,-1,-1,1\n");
        if (e.confined)
            fprintf(f, "devices=1d50:6101;1d50:6102:DISK-E2E\n");
        fclose(f);
    }
    {
        /* ... and the host's device-access policy forces past its protection
         * of HID keyboards (docs/policy.md) */
        char *pol = g_strconcat(conf, ".policy", NULL);

        if (!g_file_set_contents(pol, "[rule test-keyboard]\nguests = *\n"
                                      "usb = 0x03,0x1d50,-1,-1,1\nforce = true\n", -1, NULL)) {
            g_free(pol);
            goto fail;
        }
        g_setenv("FERRY_POLICY", pol, TRUE);
        g_free(pol);
    }
    {
        /* confined: as by default (root keeps its uid: no 'ferry' user needed) */
        const char *dargv[] = { argv[4], "--qmp", qmp, "--control", ctl, "--config", conf,
                                "--user=root", "--seccomp=off", "--no-namespaces", NULL };

        if (e.confined)
            dargv[8] = NULL;

        g_setenv("EVENT_NOEPOLL", "1", TRUE);
        if (!g_spawn_async(NULL, (char **)dargv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                           &dpid, &gerr)) {
            fprintf(stderr, "qemu-usb: cannot start ferry-dm: %s\n", gerr->message);
            g_clear_error(&gerr);
            goto fail;
        }
        for (int i = 0; i < 200 && access(ctl, F_OK) < 0; i++)
            g_usleep(50000);
    }
    if (e.confined) {
        const char *fargv[] = { argv[5], "usb", "attach", ctl, "1d50:6102:DISK-E2E", "--follow",
                                NULL };

        if (!g_spawn_async(NULL, (char **)fargv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                           &e.follower, &gerr)) {
            fprintf(stderr, "qemu-usb: cannot start the broker: %s\n", gerr->message);
            g_clear_error(&gerr);
            goto fail;
        }
    }
    if (!e.confined && (!ferry_usb(argv[5], "attach", ctl, "1d50:6101") ||
                        !ferry_usb(argv[5], "attach", ctl, "1d50:6102:DISK-E2E")))
        goto fail;
    ev = event_new(e.b, out_fd, EV_READ | EV_PERSIST, on_serial, &e);
    event_add(ev, NULL);
    end = g_get_monotonic_time() + (gint64)BOOT_TIMEOUT_S * 1000000;
    while (!e.done && g_get_monotonic_time() < end) {
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        /* do not spin the CPU QEMU needs */
        g_usleep(300);
    }
    event_free(ev);
    if (!e.done)
        fprintf(stderr, "qemu-usb: guest did not finish within %d s\n", BOOT_TIMEOUT_S);
    fprintf(stderr, "qemu-usb: %s ferry-dm: key=%d disk=%d ramdisk=%d gone=%d back=%d "
            "guest_rc=%d\n", argv[6], e.key_ok, e.disk_ok, e.ramdisk_ok, e.gone, e.back,
            e.guest_rc);
    ok = e.key_ok && e.disk_ok && e.ramdisk_ok && e.gone && (e.back || e.confined) &&
         e.guest_rc == 0;
    if (dpid && waitpid(dpid, NULL, WNOHANG) != 0) {
        fprintf(stderr, "qemu-usb: ferry-dm died during the test\n");
        ok = 0;
        dpid = 0;
    }
    goto done;
fail:
    ok = 0;
done:
    if (e.follower) {
        kill(e.follower, SIGTERM);
        waitpid(e.follower, NULL, 0);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (dpid) {
        /* QEMU has gone: ferry-dm follows by itself (companion mode) */
        for (int i = 0; i < 100 && waitpid(dpid, NULL, WNOHANG) == 0; i++)
            g_usleep(100000);
        if (kill(dpid, 0) == 0) {
            fprintf(stderr, "qemu-usb: ferry-dm did not exit after QEMU\n");
            kill(dpid, SIGKILL);
            waitpid(dpid, NULL, 0);
            ok = 0;
        }
    }
    if (e.b)
        event_base_free(e.b);
    usbsim_free(e.sim);
    g_string_free(e.line, TRUE);
    unlink(qmp);
    unlink(ctl);
    unlink(conf);
    if (getenv("FERRY_POLICY"))
        unlink(getenv("FERRY_POLICY"));
    return ok ? 0 : 1;
}
