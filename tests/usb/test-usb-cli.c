// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb suite: the `ferry usb` CLI and ferry-usbd against simulated devices.
 * This process owns the umockdev testbed; the programs it runs inherit it
 * (LD_PRELOAD, UMOCKDEV_DIR) and so see the same devices.  QEMU runs outside
 * the testbed.  Skips without QEMU.
 *   test-usb-cli FERRY FERRY_USBD
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
static const char *ferry, *usbd;

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

int main(int argc, char **argv)
{
    struct usbsim *sim;
    char dir[] = "/tmp/ferry-usb-cli-XXXXXX";
    char *qmp, *ctl, *qmparg, *out = NULL, *qemu;
    GPid qpid = 0, dpid = 0;
    int r;

    if (argc != 3) {
        fprintf(stderr, "usage: test-usb-cli FERRY FERRY_USBD\n");
        return 2;
    }
    ferry = argv[1];
    usbd = argv[2];
    qemu = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    g_free(qemu);
    if (!g_mkdtemp(dir))
        return 1;
    qmp = g_strdup_printf("%s/qmp.sock", dir);
    ctl = g_strdup_printf("%s/usbd.sock", dir);
    qmparg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
    {
        const char *qargv[] = { "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35",
                                "-nodefaults", "-display", "none", "-m", "64", "-device",
                                "qemu-xhci", "-qmp", qmparg, NULL };
        qpid = spawn(qargv, true);
    }
    sim = usbsim_new();
    if (!sim) {
        printf("SKIP: not running under umockdev-wrapper\n");
        kill(qpid, SIGKILL);
        return 77;
    }
    usbsim_add(sim, USBSIM_KEYBOARD, "1-2", "K1");
    usbsim_add(sim, USBSIM_VENDOR, "1-4", NULL);
    usbsim_add(sim, USBSIM_VENDOR, "1-5", "V2");
    /* umockdev's device nodes are regular files, which epoll refuses */
    g_setenv("EVENT_NOEPOLL", "1", TRUE);
    g_setenv("FERRY_USBD_SOCKET", ctl, TRUE);

    /* no daemon: list looks at the host itself */
    r = run(&out, "list", NULL);
    CHECK(r == 0 && strstr(out, "1-4") && strstr(out, "1d50:6101") &&
          strstr(out, "refused: built-in rule: HID keyboards"), "list: %d\n%s", r, out);
    g_free(out);
    r = run(&out, "list", "--json", NULL);
    CHECK(r == 0 && strstr(out, "\"port\" : \"1-5\"") && strstr(out, "\"serial\" : \"V2\""),
          "list --json: %d\n%s", r, out);
    g_free(out);
    r = run(&out, "detach", qmp, "1-4", NULL);
    CHECK(r == 1 && strstr(out, "no ferry-usbd"), "detach without daemon: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", qmp, "nonsense", NULL);
    CHECK(r == 1 && strstr(out, "expected VID:PID"), "bad spec: %d %s", r, out);
    g_free(out);
    r = run(&out, "frobnicate", NULL);
    CHECK(r == 2, "usage: %d", r);
    g_free(out);

    /* with ferry-usbd */
    {
        const char *dargv[] = { usbd, "--control", ctl, NULL };
        dpid = spawn(dargv, false);
    }
    CHECK(dpid && wait_file(ctl) && wait_file(qmp), "ferry-usbd or QEMU did not start");
    r = run(&out, "attach", qmp, "1d50:6103", NULL);
    CHECK(r == 1 && strstr(out, "ambiguous") && strstr(out, "1-4") && strstr(out, "1-5"),
          "ambiguous: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", qmp, "1d50:6101", NULL);
    CHECK(r == 1 && strstr(out, "refused") && strstr(out, "built-in rule: HID keyboards"),
          "keyboard: %d %s", r, out);
    g_free(out);
    r = run(&out, "attach", qmp, "1d50:6103:V2", NULL);
    CHECK(r == 0, "attach: %d %s", r, out);
    g_free(out);
    r = run(&out, "list", "--json", NULL);
    CHECK(r == 0 && strstr(out, qmp), "list shows the attachment: %s", out);
    g_free(out);
    r = run(&out, "detach", qmp, "1-5", NULL);
    CHECK(r == 0, "detach: %d %s", r, out);
    g_free(out);
    r = run(&out, "detach", qmp, "1-5", NULL);
    CHECK(r == 1 && strstr(out, "not attached"), "second detach: %d %s", r, out);
    g_free(out);
    /* --pass-fd: the fd reaches ferry-usbd, but umockdev's preload does not
     * follow an fd into another process, so there it is not a usbfs node:
     * the daemon must say so and go on (the wrapping itself is tested in
     * test-usb and test-usb-attach on the broker's own fd) */
    r = run(&out, "attach", qmp, "1-4", "--pass-fd", NULL);
    CHECK(r == 1 && strstr(out, "cannot wrap"), "pass-fd: %d %s", r, out);
    g_free(out);
    r = run(&out, "list", NULL);
    CHECK(r == 0, "daemon still serves after a bad fd: %d %s", r, out);
    printf("ok: ferry usb list/attach/detach with and without ferry-usbd\n");
out:
    g_free(out);
    if (dpid) {
        kill(dpid, SIGTERM);
        waitpid(dpid, NULL, 0);
    }
    if (qpid) {
        kill(qpid, SIGTERM);
        waitpid(qpid, NULL, 0);
    }
    usbsim_free(sim);
    unlink(qmp);
    unlink(ctl);
    rmdir(dir);
    g_free(qmp);
    g_free(ctl);
    g_free(qmparg);
    return failures ? 1 : 0;
}
