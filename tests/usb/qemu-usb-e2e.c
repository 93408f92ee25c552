// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of the qemu-usb test (see qemu-usb.sh and guest-usb.sh): the
 * USB simulator and Ferry's USB service in one process (under
 * umockdev-wrapper), QEMU booting Debian's kernel with a busybox initramfs.
 * Attaches a simulated keyboard and disk over QMP, then follows the guest's
 * markers on the serial console: taps a key, checks the RAM disk holds the
 * pattern the guest wrote, unplugs and replugs the disk.
 *   qemu-usb-e2e VMLINUZ INITRD WORKDIR
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

#include "usb/ferry-usb.h"
#include "usbsim.h"

#define BOOT_TIMEOUT_S 600

struct e2e {
    struct event_base *b;
    struct ferry_usb_service *svc;
    struct usbsim *sim;
    struct usbsim_dev *kbd, *disk;
    GString *line;
    bool key_ok, disk_ok, ramdisk_ok, gone, back, done;
    int guest_rc;
    gint64 replug_at;      /* monotonic us; 0 = nothing pending */
};

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_INFO || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "qemu-usb: %s\n", msg);
}

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
        usbsim_replug(e->sim, e->disk);
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

int main(int argc, char **argv)
{
    struct e2e e = { .guest_rc = -1 };
    struct ferry_usb_service_ops ops = { .log = tlog };
    struct event_config *cfg;
    struct event *ev;
    char qmp[256], err[FERRY_USB_ERR_MAX];
    char **envp;
    GError *gerr = NULL;
    GPid pid;
    int out_fd, ok;
    gint64 end;

    if (argc != 4) {
        fprintf(stderr, "usage: qemu-usb-e2e VMLINUZ INITRD WORKDIR\n");
        return 2;
    }
    snprintf(qmp, sizeof(qmp), "%s/qmp.sock", argv[3]);
    {
        const char *qargv[] = {
            "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
            "-nodefaults", "-serial", "stdio", "-kernel", argv[1], "-initrd", argv[2],
            "-append", "console=ttyS0 quiet panic=-1", "-device", "qemu-xhci,id=xhci",
            "-qmp", NULL, NULL,
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
        printf("SKIP: not running under umockdev-wrapper\n");
        return 77;
    }
    e.kbd = usbsim_add(e.sim, USBSIM_KEYBOARD, "1-1", "KBD-E2E");
    e.disk = usbsim_add(e.sim, USBSIM_STORAGE, "1-2", "DISK-E2E");
    e.line = g_string_new(NULL);
    cfg = event_config_new();
    event_config_avoid_method(cfg, "epoll");   /* umockdev nodes are regular files */
    e.b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (ferry_usb_service_new(e.b, argv[3], &ops, NULL, &e.svc) < 0)
        goto fail;
    for (int i = 0; i < 200 && access(qmp, F_OK) < 0; i++)
        g_usleep(50000);
    if (ferry_usb_service_set_policy(e.svc, qmp, "0x03,0x1d50,-1,-1,1", err, sizeof(err)) < 0 ||
        ferry_usb_service_attach(e.svc, qmp, "1d50:6101", err, sizeof(err)) < 0 ||
        ferry_usb_service_attach(e.svc, qmp, "1d50:6102:DISK-E2E", err, sizeof(err)) < 0) {
        fprintf(stderr, "qemu-usb: %s\n", err);
        goto fail;
    }
    ev = event_new(e.b, out_fd, EV_READ | EV_PERSIST, on_serial, &e);
    event_add(ev, NULL);
    end = g_get_monotonic_time() + (gint64)BOOT_TIMEOUT_S * 1000000;
    while (!e.done && g_get_monotonic_time() < end) {
        event_base_loop(e.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        /* umockdev's nodes always poll ready: do not spin the CPU QEMU needs */
        g_usleep(300);
    }
    event_free(ev);
    if (!e.done)
        fprintf(stderr, "qemu-usb: guest did not finish within %d s\n", BOOT_TIMEOUT_S);
    fprintf(stderr, "qemu-usb: key=%d disk=%d ramdisk=%d gone=%d back=%d guest_rc=%d\n",
            e.key_ok, e.disk_ok, e.ramdisk_ok, e.gone, e.back, e.guest_rc);
    ok = e.key_ok && e.disk_ok && e.ramdisk_ok && e.gone && e.back && e.guest_rc == 0;
    goto done;
fail:
    ok = 0;
done:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    ferry_usb_service_free(e.svc);
    if (e.b)
        event_base_free(e.b);
    usbsim_free(e.sim);
    g_string_free(e.line, TRUE);
    unlink(qmp);
    return ok ? 0 : 1;
}
