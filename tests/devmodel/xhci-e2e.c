// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of dm-guest-xhci and dm-guest-xhci-confined (run under
 * umockdev-wrapper): the USB simulator's vendor loopback device (1d50:6103),
 * its HID keyboard (1d50:6101) and its disguised keyboard (1d50:6104) in
 * this process, a Ferry guest (tests/devmodel/guests/dm-xhci.c) started by
 * `ferry run --usb 1d50:6103`: ferry-dm adds its xhci device (QEMU's
 * qemu-xhci in a remote QEMU) and attaches the device to it.  Follows the
 * guest's markers on COM1:
 *   "attach the keyboard now"  `ferry usb attach` of the disguised keyboard
 *                              is refused by the built-in HID rule (it never
 *                              reaches the guest), the keyboard's is allowed
 *                              by the policy file's rule naming it for this
 *                              guest (force = true: FERRY_POLICY);
 *   "press a key now"          the simulator presses 'a' (usage 0x04): the
 *                              guest's report must carry it;
 *   "detach the keyboard now"  `ferry usb detach` of the keyboard;
 *   "unplug the device now"    the simulator unplugs the loopback device;
 *   "plug it in again now"     ... and plugs it in again, no command: ferry-dm
 *                              follows hotplug and attaches it again;
 *   "detach the device now"    `ferry usb detach`;
 *   "attach it again now"      `ferry usb attach`;
 *   "kill the remote now"      the remote QEMU (its pid from query-devices) is
 *                              killed; ferry-dm restarts it and attaches the
 *                              device again, and the guest finds it.
 * Also: `ferry usb list GUEST` shows the device attached.
 *   unconfined (dm-guest-xhci): ferry-dm --seccomp=off --no-namespaces, all
 *     of the above; the guest exits by itself.  umockdev's preload does not
 *     follow a passed fd into another process (see tests/usb/qemu-usb-e2e.c),
 *     so the broker's fds are not used here.
 *   confined (dm-guest-xhci-confined): ferry-dm confined as by default
 *     (seccomp, namespaces, --user=root: no 'ferry' user needed) with an
 *     xhci and no device; once the guest's controller runs, `ferry usb
 *     attach` (the broker: it opens the node and passes the fd) gives it the
 *     device; the remote QEMU is killed and the confined ferry-dm takes the
 *     new QEMU's QMP monitor from the launcher and plugs the device in again
 *     from the same passed fd; the disguised keyboard is refused by the
 *     broker; then ferry-dm is ended with SIGTERM.  FDPASS_SHIM
 *     (tests/usb/fdpass-shim.c), preloaded into ferry-dm and ferry, lets the
 *     simulated fd follow SCM_RIGHTS as a real usbfs fd does.
 *   replace (dm-guest-xhci-replace): unconfined; on each "replace ferry-dm
 *     now" (the guest loops 1 MiB through the device right after it) the
 *     harness replaces ferry-dm (`ferry dm CTL replace`): the replace must
 *     succeed, the remote QEMU keep its pid, the old ferry-dm end; the guest
 *     checks every byte and that its port's status never changed.  Then
 *     `ferry usb detach|attach` through the last successor, and the remote
 *     QEMU killed: the last successor restarts it (its launcher was handed
 *     over) and plugs the device in again.  The successors serve the usbfs
 *     fd passed to them: FDPASS_SHIM as above.
 * All check that ferry-dm leaves nothing in its TMPDIR (the remote QEMU's
 * monitor is a socket pair: no folder, on a normal exit, on SIGTERM, across
 * the restart) and that the remote QEMU ends with it.  ferry-hv runs outside
 * the preload, which would answer /dev/kvm's ioctls too.
 *
 *   xhci-e2e FERRY_DM FERRY GUEST_ELF [confined|replace FDPASS_SHIM]
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm or QEMU).
 */
#include <dirent.h>
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

/* A process that is gone or a zombie. */
static bool gone(int pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *stat = NULL;
    const char *p;

    if (kill(pid, 0) < 0 || !g_file_get_contents(path, &stat, NULL, NULL))
        return true;
    p = strrchr(stat, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static bool wait_gone(int pid, int seconds)
{
    for (int i = 0; i < seconds * 10; i++) {
        if (gone(pid))
            return true;
        g_usleep(100000);
    }
    return false;
}

/* The first line of /proc/PID/status starting with key, or "". */
static char *proc_status(int pid, const char *key)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL;
    char *l;

    if (!g_file_get_contents(path, &text, NULL, NULL) || !(l = strstr(text, key)))
        return g_strdup("");
    return g_strndup(l, strcspn(l, "\n"));
}

/* What is left in folder (names joined), "" for nothing. */
static char *leftovers(const char *folder)
{
    GString *s = g_string_new(NULL);
    DIR *d = opendir(folder);
    struct dirent *e;

    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            g_string_append_printf(s, "%s%s", s->len ? " " : "", e->d_name);
    if (d)
        closedir(d);
    return g_string_free(s, FALSE);
}

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 6 && (!strcmp(argv[4], "confined") ||
                                     !strcmp(argv[4], "replace")))) {
        fprintf(stderr, "usage: xhci-e2e FERRY_DM FERRY GUEST_ELF [confined|replace FDPASS_SHIM]\n");
        return 2;
    }
    bool confined = argc == 6 && !strcmp(argv[4], "confined");
    bool replacing = argc == 6 && !strcmp(argv[4], "replace");
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
    struct usbsim_dev *kbd = usbsim_add(sim, USBSIM_KEYBOARD, "1-3", "XKBD0001");
    struct usbsim_dev *disguised = usbsim_add(sim, USBSIM_DISGUISED, "1-4", NULL);
    if (!dev || !kbd || !disguised) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot add the simulated devices\n");
        return 1;
    }
    /* The guest is "xhci-guest" (the folder of its control socket). */
    g_autofree char *dir = g_dir_make_tmp("ferry-xhci-XXXXXX", NULL);
    g_autofree char *gdir = g_build_filename(dir, "xhci-guest", NULL);
    g_autofree char *tmp = g_build_filename(dir, "tmp", NULL);
    g_autofree char *ctlp = g_build_filename(gdir, "dm.sock", NULL);
    g_autofree char *pidfile = g_build_filename(dir, "dm.pid", NULL);
    g_autofree char *policy = g_build_filename(dir, "policy.conf", NULL);
    ctl = ctlp;
    if (mkdir(gdir, 0700) < 0 || mkdir(tmp, 0777) < 0 || chmod(tmp, 01777) < 0) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot make %s and %s\n", gdir, tmp);
        return 1;
    }
    /*
     * HID keyboards are refused unless a rule names them with force = true
     * (docs/policy.md): this one names the simulated keyboard for this
     * guest only, so the disguised keyboard (another product) stays refused.
     */
    if (!g_file_set_contents(policy, "[rule xhci-test-keyboard]\nguests = xhci-guest\n"
                                     "usb = 0x03,0x1d50,0x6101,-1,1\nforce = true\n", -1, NULL)) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot write %s\n", policy);
        return 1;
    }
    g_setenv("FERRY_POLICY", policy, TRUE);
    /* owner records of our own (policy/owner.h): runs in parallel do not see each other's
     * claims on the same simulated devices */
    g_autofree char *run = g_build_filename(dir, "run", NULL);
    if (mkdir(run, 0755) < 0) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot make %s\n", run);
        return 1;
    }
    g_setenv("FERRY_RUN_DIR", run, TRUE);
    /*
     * ferry-hv must not run under umockdev's preload (it answers /dev/kvm's
     * ioctls too); ferry-dm must, to see the simulated devices: ferry-hv
     * gets the environment without it and starts ferry-dm through a
     * wrapper that puts it back.  libevent's epoll cannot watch umockdev's
     * emulated usbfs nodes (regular files): ferry-dm polls, as in the
     * other umockdev tests.  Its TMPDIR is a folder of its own, checked
     * empty at the end.
     */
    g_autofree char *shim = argc == 6 ? g_canonicalize_filename(argv[5], NULL) : NULL;
    g_autofree char *preload = g_strdup_printf("%s%s%s", shim ? shim : "", shim ? " " : "",
                                               g_getenv("LD_PRELOAD") ? g_getenv("LD_PRELOAD")
                                                                      : "");
    g_autofree char *wrapper = g_build_filename(dir, "ferry-dm", NULL);
    g_autofree char *wrapper_text = g_strdup_printf(
        "#!/bin/sh\necho $$ > '%s'\nLD_PRELOAD='%s' EVENT_NOEPOLL=1 TMPDIR='%s' exec '%s' \"$@\"\n",
        pidfile, preload ? preload : "", tmp, argv[1]);
    if (!g_file_set_contents(wrapper, wrapper_text, -1, NULL) || chmod(wrapper, 0755) < 0) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot write %s\n", wrapper);
        return 1;
    }
    g_auto(GStrv) envp = g_environ_unsetenv(g_get_environ(), "LD_PRELOAD");
    g_autofree char *dm_ctl = g_strconcat("--dm-arg=--control=", ctl, NULL);
    /* ferry run --usb: ferry-dm adds the xhci and attaches the device */
    const char *hv_argv[] = {
        ferry_cli, "run", "--image", argv[3], "--entry", "pvh", "--memory", "64M",
        "--cmdline", confined ? "linger" : replacing ? "replace" : "kbd replug",
        "--dm", wrapper, dm_ctl, "--dm-arg=--user=root", "--dm-arg=-v", "--usb", "1d50:6103",
        "--dm-arg=--seccomp=off", "--dm-arg=--no-namespaces", NULL,
    };
    if (confined) {
        /* no --usb: the device comes from the broker once the guest runs */
        hv_argv[15] = "--dm-arg=--device=xhci,id=usb0";
        hv_argv[16] = NULL;
    }
    g_autoptr(GError) err = NULL;
    GPid hv;
    int out_fd;
    if (!g_spawn_async_with_pipes(NULL, (char **)hv_argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                  NULL, &hv, NULL, &out_fd, NULL, &err)) {
        fprintf(stderr, "xhci-e2e: FAIL: cannot start %s: %s\n", ferry_cli, err->message);
        return 1;
    }

    if (confined)
        g_setenv("LD_PRELOAD", preload, TRUE);     /* the broker (ferry) too */
    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + (gint64)TIMEOUT_S * G_USEC_PER_SEC;
    bool done = false, listed = false, refused = false, kbd_attached = false, key_ok = false;
    bool seccomp_seen = false;
    int pid_before = -1, pid_after = -1, dm_pid = -1, devices_seen = 0, loops = 0;
    int replaces = 0;
    char buf[4096];

    while (!done) {
        struct pollfd pfd = { out_fd, POLLIN, 0 };
        int left = (int)((deadline - g_get_monotonic_time()) / 1000);
        if (left <= 0)
            die("timed out", hv);
        if (poll(&pfd, 1, left < 1000 ? left : 1000) <= 0) {
            /* a ferry-dm killed by its filter leaves the guest waiting */
            if (dm_pid > 0 && gone(dm_pid))
                die("ferry-dm has died (see its log above)", hv);
            continue;
        }
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
            if (strstr(l, "device ") && strstr(l, "1d50:6104"))
                die("the policy-refused disguised keyboard reached the guest", hv);
            if (strstr(l, "bulk loopback 1024 KiB compared"))
                loops++;
            if (strstr(l, "attach the keyboard now")) {
                g_autofree char *o = NULL;
                /* a device the policy refuses never reaches the remote QEMU */
                refused = ferry(&o, "usb", "attach", ctl, "1d50:6104", NULL) != 0 &&
                          strstr(o, "HID") != NULL;
                /* the keyboard: the policy file's rule allows it, forced */
                kbd_attached = ferry(NULL, "usb", "attach", ctl, "1d50:6101", NULL) == 0;
                if (!kbd_attached)
                    die("ferry usb attach of the keyboard (allowed by the policy file) failed",
                        hv);
            }
            if (confined && strstr(l, "controller running") &&
                ferry(NULL, "usb", "attach", ctl, "1d50:6103", NULL) != 0)
                die("ferry usb attach (the broker's fd) failed", hv);
            if (strstr(l, "press a key now"))
                usbsim_key_tap(kbd, 0x04);      /* 'a' */
            if (g_str_has_prefix(l, "key report ") && !key_ok) {
                unsigned b[8] = { 0 };
                if (sscanf(l, "key report %x %x %x", &b[0], &b[1], &b[2]) != 3 || b[2] != 0x04)
                    die("the keyboard's report does not carry usage 0x04 ('a')", hv);
                key_ok = true;
            }
            if (strstr(l, "detach the keyboard now") &&
                ferry(NULL, "usb", "detach", ctl, "1d50:6101", NULL) != 0)
                die("ferry usb detach of the keyboard failed", hv);
            if (strstr(l, "unplug the device now")) {
                g_autofree char *o = NULL;
                /* the list shows it attached to this guest's controller */
                listed = ferry(&o, "usb", "list", ctl, NULL, NULL) == 0 &&
                         strstr(o, "1d50:6103") != NULL;
                usbsim_unplug(sim, dev);
            }
            if (strstr(l, "plug it in again now") && usbsim_replug(sim, dev) < 0)
                die("cannot replug the simulated device", hv);
            if (strstr(l, "replace ferry-dm now")) {
                g_autofree char *o = NULL;
                int before = remote_pid(), old_dm = dm_pid;
                const char *p;

                if (before <= 0 || old_dm <= 0)
                    die("no qemu-pid in query-devices, or no ferry-dm pid, before a replace", hv);
                if (ferry(&o, "dm", "-s", ctl, "replace", NULL) != 0 ||
                    !(p = strstr(o, "\"pid\"")) || !strchr(p, ':'))
                    die("ferry dm replace failed", hv);
                dm_pid = atoi(strchr(p, ':') + 1);
                if (dm_pid <= 0 || dm_pid == old_dm)
                    die("the replace named no new ferry-dm", hv);
                if (!wait_gone(old_dm, 30))
                    die("the replaced ferry-dm did not end", hv);
                int after = remote_pid();
                if (after != before) {
                    g_autofree char *why = g_strdup_printf("the remote QEMU changed across a "
                                                           "replace: pid %d -> %d", before, after);
                    die(why, hv);
                }
                replaces++;
                fprintf(stderr, "xhci-e2e: replace %d: ferry-dm %d -> %d, remote QEMU %d kept\n",
                        replaces, old_dm, dm_pid, after);
            }
            if (strstr(l, "detach the device now") &&
                ferry(NULL, "usb", "detach", ctl, "1d50:6103", NULL) != 0)
                die("ferry usb detach failed", hv);
            if (strstr(l, "attach it again now") &&
                ferry(NULL, "usb", "attach", ctl, "1d50:6103", NULL) != 0)
                die("ferry usb attach failed", hv);
            if (dm_pid <= 0) {
                g_autofree char *pid_text = NULL;
                if (g_file_get_contents(pidfile, &pid_text, NULL, NULL))
                    dm_pid = atoi(pid_text);
            }
            if (strstr(l, "kill the remote now")) {
                if (confined) {
                    /* it really is confined: seccomp filter mode 2 */
                    g_autofree char *sc = proc_status(dm_pid, "Seccomp:");
                    g_autofree char *o = NULL;
                    fprintf(stderr, "xhci-e2e: ferry-dm pid %d %s\n", dm_pid, sc);
                    seccomp_seen = g_str_has_suffix(sc, "2");
                    /* the broker of a confined ferry-dm refuses before it opens anything */
                    refused = ferry(&o, "usb", "attach", ctl, "1d50:6104", NULL) != 0 &&
                              strstr(o, "HID") != NULL;
                }
                pid_before = remote_pid();
                if (pid_before <= 0)
                    die("no qemu-pid in query-devices", hv);
                fprintf(stderr, "xhci-e2e: killing the remote QEMU, pid %d\n", pid_before);
                kill(pid_before, SIGKILL);
            }
            if (strstr(l, "controller back"))
                pid_after = remote_pid();
            if (strstr(l, "xhci guest done"))
                done = true;
            g_string_truncate(line, 0);
        }
    }
    g_string_free(line, TRUE);
    if (!done)
        die("the guest ended before it was done", hv);
    int status = 0;
    if (confined) {
        /* SIGTERM: ferry-dm detaches from the guest and ends; the guest lingers */
        if (dm_pid <= 0 || kill(dm_pid, SIGTERM) < 0)
            die("no ferry-dm to end", hv);
        if (!wait_gone(dm_pid, 60))
            die("ferry-dm did not end on SIGTERM", hv);
        kill(hv, SIGTERM);
        if (waitpid(hv, &status, 0) != hv)
            die("cannot reap ferry run", 0);
    } else {
        for (int i = 0; i < 600 && waitpid(hv, &status, WNOHANG) == 0; i++)
            g_usleep(100000);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            die("ferry-hv did not exit 0", hv);
    }
    int want = confined ? 2 : 4, want_loops = replacing ? 8 : want;

    if (replacing)
        want = 3;
    if (replacing && replaces != 5) {
        g_autofree char *why = g_strdup_printf("%d replaces, not 5", replaces);
        die(why, 0);
    }
    if (devices_seen != want || loops != want_loops) {
        g_autofree char *why = g_strdup_printf("the guest enumerated the device %d times and "
                                               "looped 1 MiB %d times, not %d and %d",
                                               devices_seen, loops, want, want_loops);
        die(why, 0);
    }
    if (pid_after <= 0 || pid_after == pid_before)
        die("no new remote QEMU after the kill", 0);
    if (!wait_gone(pid_after, 30))
        die("the remote QEMU outlived ferry-dm", 0);
    if (!confined && !replacing && (!listed || !refused || !kbd_attached || !key_ok))
        die(!listed ? "ferry usb list did not show the device"
            : !refused ? "ferry usb attach of the disguised keyboard was not refused by the HID rule"
            : "the keyboard's key press did not reach the guest", 0);
    if (confined && !seccomp_seen)
        die("ferry-dm was not confined (Seccomp: 2 in /proc/PID/status)", 0);
    if (confined && !refused)
        die("ferry usb attach of the disguised keyboard was not refused by the HID rule", 0);
    g_autofree char *left = leftovers(tmp);
    if (*left) {
        g_autofree char *why = g_strdup_printf("ferry-dm left %s in its TMPDIR %s", left, tmp);
        die(why, 0);
    }
    unlink(wrapper);
    unlink(pidfile);
    unlink(policy);
    rmdir(tmp);
    rmdir(gdir);
    rmdir(dir);
    if (replacing)
        printf("ok: 5 replaces of ferry-dm under 1 MiB loops (remote QEMU kept, every byte "
               "compared, no port status change), detach/attach through the last successor, "
               "remote restart (pid %d -> %d) re-attached it, nothing left in TMPDIR\n",
               pid_before, pid_after);
    else if (confined)
        printf("ok: confined ferry-dm: enumerated, 1 MiB looped, remote restart (pid %d -> %d) "
               "re-attached the device (QMP from the launcher), SIGTERM, nothing left in "
               "TMPDIR\n", pid_before, pid_after);
    else
        printf("ok: enumerated, key 'a' read from the keyboard (policy file), disguised keyboard "
               "refused, 4 x 1 MiB looped, replug came back by itself, detach/attach, remote "
               "restart (pid %d -> %d) re-attached it, nothing left in TMPDIR\n", pid_before,
               pid_after);
    usbsim_free(sim);
    return 0;
}
