// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb suite: the `ferry usb` CLI and ferry-dm's USB companion mode
 * (ferry-dm --qmp) against simulated devices and a real QEMU.  This process
 * owns the umockdev testbed; the programs it runs inherit it (LD_PRELOAD,
 * UMOCKDEV_DIR) and so see the same devices.  QEMU runs outside the
 * testbed.  Skips without QEMU.  ferry-dm runs twice: unconfined (it opens
 * devices itself, libusb discovery) and confined (the default: seccomp,
 * no discovery, the [usb] devices opened before confinement).
 *   test-usb-cli FERRY FERRY_DM
 */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usbsim.h"

static int failures;
static const char *ferry, *dm;

#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, "\n"); \
            failures++; \
            goto out; \
        } \
    } while (0)

/* Run ferry with args; returns the exit status, output in *out (stdout+stderr). */
static int run(char **out, ...)
{
    GPtrArray *argv = g_ptr_array_new();
    char *o = NULL, *e = NULL;
    GError *err = NULL;
    int status = -1;
    va_list ap;
    const char *a;

    g_ptr_array_add(argv, (char *)ferry);
    g_ptr_array_add(argv, "usb");
    va_start(ap, out);
    while ((a = va_arg(ap, const char *)))
        g_ptr_array_add(argv, (char *)a);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL, &o, &e, &status, &err)) {
        fprintf(stderr, "spawn %s: %s\n", ferry, err->message);
        g_clear_error(&err);
    }
    g_ptr_array_free(argv, TRUE);
    *out = g_strconcat(o ? o : "", e ? e : "", NULL);
    g_free(o);
    g_free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ferry dm -s SOCK CMD (ferry-dm's control socket or QEMU's QMP socket). */
static int dm_cmd(char **out, const char *sock, const char *cmd)
{
    const char *argv[] = { ferry, "dm", "-s", sock, cmd, NULL };
    char *o = NULL, *e = NULL;
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &o, &e, &status, NULL))
        status = -1;
    *out = g_strconcat(o ? o : "", e ? e : "", NULL);
    g_free(o);
    g_free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* QEMU's own view (HMP `info usb` over its second QMP socket) until its
 * answer has `what` in it: usb-redir joins the USB bus only after the
 * usbredir handshake, and a device_del before that completes at once,
 * paused guest or not. */
static bool wait_qemu_usb(const char *mon, const char *what)
{
    for (int i = 0; i < 300; i++) {
        const char *argv[] = { ferry, "dm", "-s", mon, "human-monitor-command",
                               "command-line=info usb", NULL };
        char *o = NULL;
        bool found;

        if (!g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &o, NULL, NULL, NULL))
            return false;
        found = o && strstr(o, what);
        g_free(o);
        if (found)
            return true;
        g_usleep(100000);
    }
    return false;
}

static GPid spawn(const char **argv, bool real_system)
{
    char **envp = g_get_environ();
    GError *err = NULL;
    GPid pid = 0;

    if (real_system) {
        envp = g_environ_unsetenv(envp, "LD_PRELOAD");
        envp = g_environ_unsetenv(envp, "UMOCKDEV_DIR");
    }
    if (!g_spawn_async(NULL, (char **)argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                       NULL, NULL, &pid, &err)) {
        fprintf(stderr, "spawn %s: %s\n", argv[0], err->message);
        g_clear_error(&err);
    }
    g_strfreev(envp);
    return pid;
}

static bool wait_file(const char *path)
{
    for (int i = 0; i < 300; i++) {
        if (access(path, F_OK) == 0)
            return true;
        g_usleep(100000);
    }
    return false;
}

static GPid start_dm(const char *qmp, const char *ctl, const char *config, bool confined)
{
    const char *argv[16];
    int n = 0;
    GPid pid;

    unlink(ctl);
    argv[n++] = dm;
    argv[n++] = "--qmp";
    argv[n++] = qmp;
    argv[n++] = "--control";
    argv[n++] = ctl;
    /* root in a test: keep root's uid, so the sandbox does not need the 'ferry' user */
    argv[n++] = "--user=root";
    if (!confined) {
        argv[n++] = "--seccomp=off";
        argv[n++] = "--no-namespaces";
    }
    if (config) {
        argv[n++] = "--config";
        argv[n++] = config;
    }
    argv[n] = NULL;
    pid = spawn(argv, false);
    return pid && wait_file(ctl) ? pid : 0;
}

static void stop(GPid *pid)
{
    if (*pid) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

/* ferry usb list GUEST --json until it shows `want` (or, with gone, no
 * longer shows it): ferry-dm serves on its loop */
static bool wait_list_for(const char *ctl, const char *want, bool gone, char **out)
{
    for (int i = 0; i < 100; i++) {
        g_free(*out);
        *out = NULL;
        if (run(out, "list", ctl, "--json", NULL) == 0 && !strstr(*out, want) == gone)
            return true;
        g_usleep(100000);
    }
    return false;
}

static bool wait_list(const char *ctl, const char *want, char **out)
{
    return wait_list_for(ctl, want, false, out);
}

int main(int argc, char **argv)
{
    struct usbsim *sim;
    struct usbsim_dev *v2;
    char dir[] = "/tmp/ferry-usb-cli-XXXXXX";
    char *qmp, *ctl, *qmparg, *cfg, *out = NULL, *qemu, *mon, *monarg;
    GPid qpid = 0, dpid = 0, fpid = 0, detpid = 0;
    int r;

    if (argc != 3) {
        fprintf(stderr, "usage: test-usb-cli FERRY FERRY_DM\n");
        return 2;
    }
    ferry = argv[1];
    dm = argv[2];
    qemu = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    g_free(qemu);
    if (!g_mkdtemp(dir))
        return 1;
    /* owner records of our own (policy/owner.h): other runs do not see or hold ours */
    g_setenv("FERRY_RUN_DIR", dir, TRUE);
    qmp = g_strdup_printf("%s/qmp.sock", dir);
    ctl = g_strdup_printf("%s/dm.sock", dir);
    cfg = g_strdup_printf("%s/guest.conf", dir);
    qmparg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
    mon = g_strdup_printf("%s/mon.sock", dir);
    monarg = g_strdup_printf("unix:%s,server=on,wait=off", mon);
    {
        const char *qargv[] = { "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35",
                                "-nodefaults", "-display", "none", "-m", "64", "-device",
                                "qemu-xhci", "-qmp", qmparg, "-qmp", monarg, NULL };
        qpid = spawn(qargv, true);
    }
    sim = usbsim_new();
    if (!sim) {
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        kill(qpid, SIGKILL);
        return 1;
    }
    usbsim_add(sim, USBSIM_KEYBOARD, "1-2", "K1");
    usbsim_add(sim, USBSIM_VENDOR, "1-4", NULL);
    v2 = usbsim_add(sim, USBSIM_VENDOR, "1-5", "V2");
    /* umockdev's device nodes are regular files, which epoll refuses */
    g_setenv("EVENT_NOEPOLL", "1", TRUE);

    /* no ferry-dm: list looks at the host itself */
    r = run(&out, "list", NULL);
    CHECK(r == 0 && strstr(out, "1-4") && strstr(out, "1d50:6101") &&
          strstr(out, "refused: built-in rule: HID keyboards"), "list: %d\n%s", r, out);
    g_free(out);
    r = run(&out, "list", "--json", NULL);
    CHECK(r == 0 && strstr(out, "\"port\" : \"1-5\"") && strstr(out, "\"serial\" : \"V2\""),
          "list --json: %d\n%s", r, out);
    g_free(out);
    /* an unusable TMPDIR (full, missing) is no reason to fail: list and
     * share need no files of their own */
    g_setenv("TMPDIR", "/nonexistent/ferry-usb-cli-tmp", TRUE);
    r = run(&out, "list", "--json", NULL);
    g_unsetenv("TMPDIR");
    CHECK(r == 0 && strstr(out, "\"port\" : \"1-5\""), "list with TMPDIR missing: %d\n%s",
          r, out);
    g_free(out);
    r = run(&out, "detach", ctl, "1-4", NULL);
    CHECK(r == 1 && strstr(out, "no ferry-dm at"), "detach without ferry-dm: %d %s", r, out);
    g_free(out);
    r = run(&out, "frobnicate", NULL);
    CHECK(r == 2, "usage: %d", r);
    g_free(out);
    CHECK(wait_file(qmp), "QEMU did not start");

    /* ferry-dm --qmp, unconfined: it opens the devices itself (its wait
     * for DEVICE_DELETED long enough for the paused QEMU below) */
    g_setenv("FERRY_DM_DETACH_WAIT_MS", "120000", TRUE);
    dpid = start_dm(qmp, ctl, NULL, false);
    g_unsetenv("FERRY_DM_DETACH_WAIT_MS");
    CHECK(dpid, "ferry-dm --qmp did not start");
    r = run(&out, "attach", ctl, "nonsense", NULL);
    CHECK(r == 1 && strstr(out, "expected VID:PID"), "bad spec: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", ctl, "1d50:6103", NULL);
    CHECK(r == 1 && strstr(out, "ambiguous") && strstr(out, "1-4") && strstr(out, "1-5"),
          "ambiguous: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", ctl, "1d50:6101", NULL);
    CHECK(r == 1 && strstr(out, "refused") && strstr(out, "built-in rule: HID keyboards"),
          "keyboard: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", ctl, "1d50:6103:V2", NULL);
    CHECK(r == 0, "attach: %d %s", r, out);
    g_free(out);
    out = NULL;
    CHECK(wait_list(ctl, "\"connected\" : true", &out) && strstr(out, qmp),
          "list GUEST shows the device attached and its channel connected: %s", out);
    g_free(out);
    /* Detach while QEMU is paused: the usb-redir's DEVICE_DELETED usually
     * waits for `cont`, and ferry-dm waits for it on its loop.  The host has
     * the device back at once (list), another client is answered (status)
     * meanwhile, and the detach succeeds once QEMU runs again. */
    CHECK(wait_file(mon) && wait_qemu_usb(mon, "Device "),     /* the only USB device */
          "QEMU never showed the usb-redir device on its bus (info usb)");
    out = NULL;
    CHECK(dm_cmd(&out, mon, "stop") == 0, "QEMU stop: %s", out);
    g_free(out);
    out = NULL;
    {
        const char *dargv[] = { ferry, "usb", "detach", ctl, "1-5", NULL };
        int st = -1;

        detpid = spawn(dargv, false);
        CHECK(detpid, "ferry usb detach did not start");
        out = NULL;
        CHECK(wait_list_for(ctl, "\"connected\" : true", true, &out),
              "the detach reached ferry-dm (device no longer attached): %s", out);
        g_free(out);
        out = NULL;
        r = dm_cmd(&out, ctl, "status");
        CHECK(r == 0 && strstr(out, "\"running\""), "status while a detach waits: %d %s", r,
              out);
        g_free(out);
        out = NULL;
        /* Usually still waiting here; but the channel closes as the host
         * takes the device back, and once QEMU has taken that in, the
         * usb-redir is off its bus and device_del needs no guest: then the
         * detach may be done already (the ordering itself is proven by
         * dm-qmp-detach and pci-guest-iommu). */
        pid_t done = waitpid(detpid, &st, WNOHANG);

        CHECK(dm_cmd(&out, mon, "cont") == 0, "QEMU cont: %s", out);
        g_free(out);
        out = NULL;
        if (done == 0)
            done = waitpid(detpid, &st, 0);
        CHECK(done == detpid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "detach after QEMU let go: status %d", st);
        detpid = 0;
    }
    r = run(&out, "detach", ctl, "1-5", NULL);
    CHECK(r == 1 && strstr(out, "not attached"), "second detach: %d %s", r, out);
    g_free(out);
    /* --pass-fd: the fd reaches ferry-dm, but umockdev's preload does not
     * follow an fd into another process, so there it is not a usbfs node:
     * ferry-dm must say so and go on (the wrapping itself is tested in
     * test-usb and test-usb-attach, and below on fds ferry-dm opened) */
    r = run(&out, "attach", ctl, "1-4", "--pass-fd", NULL);
    CHECK(r == 1 && strstr(out, "cannot wrap"), "pass-fd: %d %s", r, out);
    g_free(out);
    r = run(&out, "list", ctl, NULL);
    CHECK(r == 0, "ferry-dm still serves after a bad fd: %d %s", r, out);
    g_free(out);
    stop(&dpid);
    printf("ok: ferry usb list/attach/detach through an unconfined ferry-dm --qmp\n");

    /* confined (the default): [usb] devices opened at start-up, before the
     * sandbox; attach of anything else needs the broker's fd */
    {
        FILE *f = fopen(cfg, "w");

        CHECK(f, "cannot write %s", cfg);
        fprintf(f, "[usb]\ndevices=1d50:6103:V2\n");
        fclose(f);
    }
    dpid = start_dm(qmp, ctl, cfg, true);
    CHECK(dpid, "confined ferry-dm --qmp did not start");
    out = NULL;
    CHECK(wait_list(ctl, "\"connected\" : true", &out) && strstr(out, "\"serial\" : \"V2\""),
          "confined: the configured device is served: %s", out);
    g_free(out);
    {
        char status[64];
        char *proc = g_strdup_printf("/proc/%d/status", (int)dpid);
        char *st = NULL;

        g_file_get_contents(proc, &st, NULL, NULL);
        g_free(proc);
        snprintf(status, sizeof(status), "Seccomp:\t2");
        CHECK(st && strstr(st, status) && strstr(st, "NoNewPrivs:\t1"),
              "ferry-dm is not confined: %s", st ? st : "(no status)");
        g_free(st);
    }
    /* Not tested here: the CLI brokering an fd to a confined ferry-dm.
     * umockdev's preload answers ioctls on an fd it did not open itself with
     * access($UMOCKDEV_DIR/disabled), which the filter rightly forbids (and
     * across processes the fd is not a usbfs node anyway, see above). */
    /* the broker following the device tells ferry-dm when it goes (a
     * confined ferry-dm sees no hotplug); it stays assigned */
    {
        const char *fargv[] = { ferry, "usb", "attach", ctl, "1d50:6103:V2", "--follow", NULL };

        fpid = spawn(fargv, false);
        CHECK(fpid, "ferry usb attach --follow did not start");
    }
    g_usleep(1000000);
    CHECK(kill(dpid, 0) == 0, "the broker's follow-up killed ferry-dm");
    usbsim_unplug(sim, v2);
    out = NULL;
    CHECK(wait_list_for(ctl, "\"connected\" : true", true, &out),
          "confined: unplug seen through the broker: %s", out);
    g_free(out);
    CHECK(kill(dpid, 0) == 0, "ferry-dm died after the unplug");
    stop(&fpid);
    r = run(&out, "detach", ctl, "1d50:6103:V2", NULL);
    CHECK(r == 0, "confined detach: %d %s", r, out);
    g_free(out);
    CHECK(kill(dpid, 0) == 0, "confined ferry-dm died");
    stop(&dpid);
    printf("ok: a confined ferry-dm --qmp serves its [usb] devices\n");
    out = NULL;
out:
    g_free(out);
    stop(&detpid);
    stop(&fpid);
    stop(&dpid);
    stop(&qpid);
    usbsim_free(sim);
    unlink(qmp);
    unlink(ctl);
    unlink(cfg);
    unlink(mon);
    rmdir(dir);
    g_free(mon);
    g_free(monarg);
    g_free(qmp);
    g_free(ctl);
    g_free(cfg);
    g_free(qmparg);
    return failures ? 1 : 0;
}
