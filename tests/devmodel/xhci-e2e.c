// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of dm-guest-xhci (run under umockdev-wrapper): the USB
 * simulator's vendor loopback device (1d50:6103) in this process, a Ferry
 * guest (tests/devmodel/guests/dm-xhci.c) started by `ferry run --usb
 * 1d50:6103`: ferry-dm adds its xhci device (QEMU's qemu-xhci in a remote
 * QEMU) and attaches the device to it.  Follows the guest's markers on COM1:
 *   "unplug the device now"   the simulator unplugs it; once the guest says
 *                             the port disconnected, `ferry usb detach`, the
 *                             device is plugged in again and `ferry usb
 *                             attach` brings it back to the guest;
 *   "kill the remote now"     the remote QEMU (its pid from query-devices)
 *                             is killed; ferry-dm restarts it and attaches
 *                             the device again, and the guest finds it.
 * Also: `ferry usb list GUEST` shows the device attached, and a device the
 * policy refuses (the simulator's keyboard, by the built-in HID rule) is
 * refused by `ferry usb attach` with the rule named, and never reaches the
 * remote QEMU: the guest never enumerates a 1d50:6101.
 * ferry-dm runs unconfined here (--seccomp=off --no-namespaces, as root):
 * umockdev's preload does not follow a passed fd into a confined process
 * (see tests/usb/qemu-usb-e2e.c).
 *
 *   xhci-e2e FERRY_DM FERRY GUEST_ELF
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm or QEMU).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usbsim.h"

#define TIMEOUT_S 600

static const char *ferry_cli;
static const char *ctl;
static GString *out_log;

static G_GNUC_NORETURN void die(const char *why, GPid hv)
{
    fprintf(stderr, "xhci-e2e: FAIL: %s\n--- guest output ---\n%s", why, out_log->str);
    if (hv > 0)
        kill(hv, SIGKILL);
    exit(1);
}

/* `ferry ARGS...`: its output (stdout and stderr) in *out, exit status returned. */
static int ferry(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                 const char *a5)
{
    const char *argv[] = { ferry_cli, a1, a2, a3, a4, a5, NULL };
    g_autofree char *o = NULL, *e = NULL;
    g_autoptr(GError) err = NULL;
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &o, &e, &status, &err)) {
        fprintf(stderr, "xhci-e2e: cannot run %s: %s\n", ferry_cli, err->message);
        return -1;
    }
    fprintf(stderr, "xhci-e2e: ferry %s %s %s %s: status %d\n%s%s", a1, a2, a3 ? a3 : "",
            a4 ? a4 : "", status, o, e);
    if (out)
        *out = g_strconcat(o, e, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int remote_pid(void)
{
    g_autofree char *o = NULL;
    const char *p;

    if (ferry(&o, "dm", "-s", ctl, "devices", NULL) != 0 || !(p = strstr(o, "\"qemu-pid\"")))
        return -1;
    p = strchr(p, ':');
    return p ? atoi(p + 1) : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: xhci-e2e FERRY_DM FERRY GUEST_ELF\n");
        return 2;
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        printf("SKIP: /dev/kvm: %s\n", strerror(errno));
        return 77;
    }
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    ferry_cli = argv[2];
    out_log = g_string_new(NULL);

    struct usbsim *sim = usbsim_new();
    if (!sim) {
        fprintf(stderr, "xhci-e2e: FAIL: no simulator (not under umockdev-wrapper?)\n");
        return 1;
    }
    struct usbsim_dev *dev = usbsim_add(sim, USBSIM_VENDOR, "1-2", "XHCI0001");
    struct usbsim_dev *kbd = usbsim_add(sim, USBSIM_KEYBOARD, "1-3", NULL);
    if (!dev || !kbd) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot add the simulated devices\n");
        return 1;
    }
    g_autofree char *dir = g_dir_make_tmp("ferry-xhci-XXXXXX", NULL);
    g_autofree char *ctlp = g_build_filename(dir, "dm.sock", NULL);
    ctl = ctlp;
    /*
     * ferry-hv must not run under umockdev's preload (it answers /dev/kvm's
     * ioctls too); ferry-dm must, to see the simulated devices: ferry-hv
     * gets the environment without it and starts ferry-dm through a
     * wrapper that puts it back.  libevent's epoll cannot watch umockdev's
     * emulated usbfs nodes (regular files): ferry-dm polls, as in the
     * other umockdev tests.
     */
    const char *preload = g_getenv("LD_PRELOAD");
    g_autofree char *wrapper = g_build_filename(dir, "ferry-dm", NULL);
    g_autofree char *wrapper_text = g_strdup_printf("#!/bin/sh\nLD_PRELOAD='%s' EVENT_NOEPOLL=1 exec '%s' \"$@\"\n",
                                                    preload ? preload : "", argv[1]);
    if (!g_file_set_contents(wrapper, wrapper_text, -1, NULL) || chmod(wrapper, 0755) < 0) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot write %s\n", wrapper);
        return 1;
    }
    g_auto(GStrv) envp = g_environ_unsetenv(g_get_environ(), "LD_PRELOAD");
    g_autofree char *dm_ctl = g_strconcat("--dm-arg=--control=", ctl, NULL);
    /* ferry run --usb: ferry-dm adds the xhci and attaches the device */
    const char *hv_argv[] = {
        ferry_cli, "run", "--image", argv[3], "--entry", "pvh", "--memory", "64M",
        "--dm", wrapper, dm_ctl, "--dm-arg=--user=root", "--dm-arg=--seccomp=off",
        "--dm-arg=--no-namespaces", "--dm-arg=-v", "--usb", "1d50:6103", NULL,
    };
    g_autoptr(GError) err = NULL;
    GPid hv;
    int out_fd;
    if (!g_spawn_async_with_pipes(NULL, (char **)hv_argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                  NULL, &hv, NULL, &out_fd, NULL, &err)) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot start %s: %s\n", ferry_cli, err->message);
        return 1;
    }

    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + (gint64)TIMEOUT_S * G_USEC_PER_SEC;
    bool done = false, listed = false, refused = false;
    int pid_before = -1, devices_seen = 0, loops = 0;
    char buf[4096];

    while (!done) {
        struct pollfd pfd = { out_fd, POLLIN, 0 };
        int left = (int)((deadline - g_get_monotonic_time()) / 1000);
        if (left <= 0)
            die("timed out", hv);
        if (poll(&pfd, 1, left) <= 0)
            continue;
        ssize_t n = read(out_fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                g_string_append_c(line, buf[i]);
                continue;
            }
            const char *l = line->str;
            g_string_append_printf(out_log, "%s\n", l);
            fprintf(stderr, "guest: %s\n", l);
            if (strstr(l, "FAIL"))
                die("the guest failed", hv);
            if (strstr(l, "device 1d50:6103 \"Ferry Sim Loopback\""))
                devices_seen++;
            if (strstr(l, "device ") && strstr(l, "1d50:6101"))
                die("the policy-refused keyboard reached the guest", hv);
            if (strstr(l, "bulk loopback 1024 KiB compared"))
                loops++;
            if (strstr(l, "unplug the device now")) {
                g_autofree char *o = NULL;
                /* the list shows it attached to this guest's controller */
                listed = ferry(&o, "usb", "list", ctl, NULL, NULL) == 0 &&
                         strstr(o, "1d50:6103") != NULL;
                g_free(o);
                o = NULL;
                /* a device the policy refuses never reaches the remote QEMU */
                refused = ferry(&o, "usb", "attach", ctl, "1d50:6101", NULL) != 0 &&
                          strstr(o, "HID") != NULL;
                usbsim_unplug(sim, dev);
            }
            if (strstr(l, "disconnected")) {
                if (ferry(NULL, "usb", "detach", ctl, "1d50:6103", NULL) != 0)
                    die("ferry usb detach failed", hv);
                if (usbsim_replug(sim, dev) < 0)
                    die("cannot replug the simulated device", hv);
            }
            if (strstr(l, "attach it again now") &&
                ferry(NULL, "usb", "attach", ctl, "1d50:6103", NULL) != 0)
                die("ferry usb attach failed", hv);
            if (strstr(l, "kill the remote now")) {
                pid_before = remote_pid();
                if (pid_before <= 0)
                    die("no qemu-pid in query-devices", hv);
                fprintf(stderr, "xhci-e2e: killing the remote QEMU, pid %d\n", pid_before);
                kill(pid_before, SIGKILL);
            }
            if (strstr(l, "xhci guest done"))
                done = true;
            g_string_truncate(line, 0);
        }
    }
    g_string_free(line, TRUE);
    int status = 0;
    for (int i = 0; i < 600 && waitpid(hv, &status, WNOHANG) == 0; i++)
        g_usleep(100000);
    if (!done)
        die("the guest ended before it was done", 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("ferry-hv did not exit 0", 0);
    if (devices_seen != 3 || loops != 3)
        die("the guest did not enumerate and loop the device three times", 0);
    if (!listed)
        die("ferry usb list did not show the device", 0);
    if (!refused)
        die("ferry usb attach of the keyboard was not refused by the HID rule", 0);
    unlink(wrapper);
    rmdir(dir);
    printf("ok: enumerated, 3 x 1 MiB looped, unplug seen, attach brought it back, "
           "remote restart (pid %d) re-attached it\n", pid_before);
    usbsim_free(sim);
    return 0;
}
