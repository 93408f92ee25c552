// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb suite: the device-access policy (policy/policy.h) and exclusive
 * ownership (policy/owner.h) with simulated devices (umockdev) and two
 * guests, a and b: two QEMUs (TCG, qemu-xhci), each with its own unconfined
 * ferry-dm --qmp (ferry-dm --name a|b, control sockets RUN/a/dm.sock and
 * RUN/b/dm.sock, FERRY_RUN_DIR=RUN).
 *  - per-guest rules: `ferry policy check` names the deciding rule and its
 *    file:line, for a, b and a guest no rule names;
 *  - one owner: the vendor device attached to a is refused to b, by the CLI
 *    and by ferry-dm b itself (a control command straight to it), naming a;
 *    after a's detach b gets it; b's ferry-dm killed (a crash) leaves a stale
 *    owner that a claim takes over;
 *  - a forced override: the HID keyboard, refused to a, goes to b through a
 *    force=true rule, and ferry-dm b logs verdict=allow-forced;
 *  - a confined ferry-dm c whose [usb] devices= names a's device claims it at
 *    start-up, before its sandbox, and is refused naming a;
 *  - a confined ferry-dm d given a device by the broker (`ferry usb attach`):
 *    the claim's lock goes to d with the device's fd, and on to each
 *    successor when d is replaced (twice, the first ferry-dm gone): a is
 *    refused the device, naming d and the ferry-dm that serves it, throughout; the detach releases it; an
 *    attach again, then d's QEMU ends (ferry-dm with it): released again.
 *    FDPASS_SHIM (fdpass-shim.c) is preloaded for d and the CLI there, so
 *    that a simulated usbfs fd follows SCM_RIGHTS as a real one does.
 *   test-usb-policy FERRY FERRY_DM FDPASS_SHIM
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Run ferry ARGS...; exit status, stdout+stderr in *out. */
static int run(char **out, ...)
{
    GPtrArray *argv = g_ptr_array_new();
    char *o = NULL, *e = NULL;
    GError *err = NULL;
    int status = -1;
    va_list ap;
    const char *a;

    g_ptr_array_add(argv, (char *)ferry);
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

/* Spawn argv; stderr to log_path when given; outside the testbed with real_system. */
static GPid spawn(const char **argv, bool real_system, const char *log_path)
{
    char **envp = g_get_environ();
    GError *err = NULL;
    GPid pid = 0;
    int fd = -1;

    if (real_system) {
        envp = g_environ_unsetenv(envp, "LD_PRELOAD");
        envp = g_environ_unsetenv(envp, "UMOCKDEV_DIR");
    }
    if (log_path)
        fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!g_spawn_async_with_fds(NULL, (char **)argv, envp,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, -1, -1, fd, &err)) {
        fprintf(stderr, "spawn %s: %s\n", argv[0], err->message);
        g_clear_error(&err);
    }
    if (fd >= 0)
        close(fd);
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

static void stop(GPid *pid)
{
    if (*pid) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

struct guest {
    const char *name;
    char *dir, *qmp, *ctl, *qmparg, *log;
    GPid qemu, dm;
};

static bool guest_start(struct guest *g, const char *run_dir)
{
    const char *qargv[] = { "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35",
                            "-nodefaults", "-display", "none", "-m", "64", "-device",
                            "qemu-xhci", "-qmp", NULL, NULL };

    g->dir = g_build_filename(run_dir, g->name, NULL);
    g_mkdir_with_parents(g->dir, 0755);
    g->qmp = g_build_filename(g->dir, "qmp.sock", NULL);
    g->ctl = g_build_filename(g->dir, "dm.sock", NULL);
    g->log = g_build_filename(g->dir, "dm.log", NULL);
    g->qmparg = g_strdup_printf("unix:%s,server=on,wait=off", g->qmp);
    qargv[13] = g->qmparg;
    g->qemu = spawn(qargv, true, NULL);
    return g->qemu && wait_file(g->qmp);
}

static bool dm_start(struct guest *g)
{
    /* unconfined: it opens the devices itself and claims them */
    const char *argv[] = { dm, "--qmp", g->qmp, "--control", g->ctl, "--name", g->name,
                           "--user=root", "--seccomp=off", "--no-namespaces", "-v", NULL };

    unlink(g->ctl);
    g->dm = spawn(argv, false, g->log);
    return g->dm && wait_file(g->ctl);
}

/* a's attempts at a device that d holds: refused, naming guest d (and, if
 * holder > 0, the ferry-dm that holds it by its pid). */
static bool refused_to_a(const char *dev, const char *when, long holder)
{
    char *out = NULL, pid[48];
    int r = run(&out, "policy", "check", "a", dev, NULL);
    bool ok = r == 1 && strstr(out, "refused: assigned to guest d (");

    snprintf(pid, sizeof(pid), "pid %ld,", holder);
    ok = ok && (holder <= 0 || strstr(out, pid));

    if (!ok)
        fprintf(stderr, "FAIL: %s: `ferry policy check a %s` does not name d: %d %s\n", when,
                dev, r, out);
    g_free(out);
    if (!ok)
        return false;
    r = run(&out, "usb", "attach", "a", dev, NULL);
    ok = r == 1 && strstr(out, "is assigned to guest d (");
    if (!ok)
        fprintf(stderr, "FAIL: %s: `ferry usb attach a %s` not refused naming d: %d %s\n",
                when, dev, r, out);
    g_free(out);
    return ok;
}

/* Nobody holds dev (a's check shows no owner), within a few seconds. */
static bool released(const char *dev)
{
    for (int i = 0; i < 100; i++) {
        char *out = NULL;
        int r = run(&out, "policy", "check", "a", dev, NULL);
        bool ok = r == 0 && !strstr(out, "owner:");

        if (ok || i == 99)
            fprintf(stderr, "after the end: %s", out);
        g_free(out);
        if (ok)
            return true;
        g_usleep(100000);
    }
    return false;
}

/* `ferry dm CTL replace`: the successor's pid, 0 on failure. */
static long replace(const char *ctl)
{
    char *out = NULL;
    int r = run(&out, "dm", "-s", ctl, "replace", NULL);
    const char *p = strstr(out, "\"pid\"");
    long pid = r == 0 && p && strchr(p, ':') ? strtol(strchr(p, ':') + 1, NULL, 10) : 0;

    if (!pid)
        fprintf(stderr, "replace of %s failed: %d %s\n", ctl, r, out);
    g_free(out);
    return pid;
}

static bool pid_gone(long pid)
{
    for (int i = 0; i < 200; i++) {
        if (kill((pid_t)pid, 0) < 0)
            return true;
        g_usleep(50000);
    }
    return false;
}

static void guest_stop(struct guest *g)
{
    stop(&g->dm);
    stop(&g->qemu);
    g_free(g->qmp);
    g_free(g->ctl);
    g_free(g->qmparg);
    g_free(g->log);
    g_free(g->dir);
}

static char *slurp(const char *path)
{
    char *s = NULL;

    g_file_get_contents(path, &s, NULL, NULL);
    return s ? s : g_strdup("");
}

/* ferry usb list GUEST --json until its text has (or, gone, lacks) want */
static bool wait_list(const char *guest, const char *want, bool gone)
{
    for (int i = 0; i < 100; i++) {
        char *out = NULL;
        bool ok = run(&out, "usb", "list", guest, "--json", NULL) == 0 &&
                  !strstr(out, want) == gone;

        g_free(out);
        if (ok)
            return true;
        g_usleep(100000);
    }
    return false;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/ferry-usb-policy-XXXXXX";
    struct guest a = { .name = "a" }, b = { .name = "b" }, c = { .name = "c" }, d = { .name = "d" };
    long serving = 0;       /* d's ferry-dm now (a successor: not our child) */
    bool no_ferry_user = false;
    struct usbsim *sim = NULL;
    char *policy = NULL, *out = NULL, *qemu, *want = NULL, *log = NULL;
    int r;

    if (argc != 4) {
        fprintf(stderr, "usage: test-usb-policy FERRY FERRY_DM FDPASS_SHIM\n");
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
    policy = g_build_filename(dir, "policy.conf", NULL);
    g_file_set_contents(policy,
        "# the test's policy\n"
        "[policy]\n"
        "default = deny\n"
        "\n"
        "[groups]\n"
        "office = a;b;d\n"
        "\n"
        "[rule vendor-devices]\n"
        "guests = @office\n"
        "usb = -1,0x1d50,0x6103,-1,1\n"
        "\n"
        "[rule vdi-keyboard]\n"
        "guests = b\n"
        "usb = 0x03,0x1d50,0x6101,-1,1\n"
        "force = true\n", -1, NULL);
    g_setenv("FERRY_POLICY", policy, TRUE);
    g_setenv("FERRY_RUN_DIR", dir, TRUE);
    sim = usbsim_new();
    if (!sim) {
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        return 1;
    }
    usbsim_add(sim, USBSIM_KEYBOARD, "1-2", "K1");
    usbsim_add(sim, USBSIM_VENDOR, "1-5", "V2");
    usbsim_add(sim, USBSIM_VENDOR, "1-6", "V3");
    g_setenv("EVENT_NOEPOLL", "1", TRUE);      /* umockdev's nodes are regular files */

    /* per-guest rules, each verdict naming its rule and file:line */
    r = run(&out, "policy", "check", "a", "1d50:6103:V2", NULL);
    want = g_strdup_printf("rule 'vendor-devices' (%s:8)", policy);
    CHECK(r == 0 && strstr(out, "allow a usb:1d50:6103 1-5") && strstr(out, want),
          "check a: %d %s", r, out);
    g_free(out);
    g_free(want);
    r = run(&out, "policy", "check", "c", "1d50:6103:V2", NULL);
    want = g_strdup_printf("default deny (%s:3)", policy);
    CHECK(r == 1 && strstr(out, "deny c") && strstr(out, want), "check c: %d %s", r, out);
    g_free(out);
    g_free(want);
    want = NULL;
    r = run(&out, "policy", "check", "a", "1d50:6101", "--json", NULL);
    CHECK(r == 1 && strstr(out, "\"verdict\" : \"deny\"") && strstr(out, "HID keyboards"),
          "check a keyboard: %d %s", r, out);
    g_free(out);
    r = run(&out, "policy", "check", "b", "1d50:6101", "--json", NULL);
    CHECK(r == 0 && strstr(out, "\"verdict\" : \"allow\"") && strstr(out, "\"forced\" : true") &&
          strstr(out, "rule 'vdi-keyboard'"), "check b keyboard: %d %s", r, out);
    g_free(out);
    out = NULL;

    CHECK(guest_start(&a, dir) && guest_start(&b, dir), "QEMU did not start");
    CHECK(dm_start(&a) && dm_start(&b), "ferry-dm did not start");

    /* one owner at a time */
    r = run(&out, "usb", "attach", "a", "1d50:6103:V2", NULL);
    CHECK(r == 0, "attach to a: %d %s", r, out);
    g_free(out);
    CHECK(wait_list("a", "\"connected\" : true", false), "a never got the device");
    r = run(&out, "usb", "attach", "b", "1d50:6103:V2", NULL);
    want = g_strdup_printf("is assigned to guest a (ferry-dm pid %d", (int)a.dm);
    CHECK(r == 1 && strstr(out, want), "the CLI gave a's device to b: %d %s", r, out);
    g_free(out);
    /* ferry-dm b on its own (no broker asked): it claims, and is refused */
    {
        const char *dargv[] = { ferry, "dm", "-s", b.ctl, "usb-attach", "device=1d50:6103:V2",
                                NULL };
        char *o = NULL, *e = NULL;
        int st = -1;

        g_spawn_sync(NULL, (char **)dargv, NULL, 0, NULL, NULL, &o, &e, &st, NULL);
        out = g_strconcat(o ? o : "", e ? e : "", NULL);
        g_free(o);
        g_free(e);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0 && strstr(out, want),
              "ferry-dm b took a's device: %s", out);
        g_free(out);
    }
    g_free(want);
    want = NULL;
    r = run(&out, "policy", "show", NULL);
    CHECK(r == 0 && strstr(out, "usb:1d50:6103:V2 guest a (ferry-dm pid"), "show: %d %s", r, out);
    g_free(out);
    r = run(&out, "usb", "detach", "a", "1d50:6103:V2", NULL);
    CHECK(r == 0, "detach from a: %d %s", r, out);
    g_free(out);
    r = run(&out, "usb", "attach", "b", "1d50:6103:V2", NULL);
    CHECK(r == 0, "b after a's detach: %d %s", r, out);
    g_free(out);
    CHECK(wait_list("b", "\"connected\" : true", false), "b never got the device");

    /* a forced override, logged by ferry-dm b */
    r = run(&out, "usb", "attach", "a", "1d50:6101", NULL);
    CHECK(r == 1 && strstr(out, "HID keyboards"), "keyboard to a: %d %s", r, out);
    g_free(out);
    r = run(&out, "usb", "attach", "b", "1d50:6101", NULL);
    CHECK(r == 0, "keyboard to b (forced): %d %s", r, out);
    g_free(out);
    out = NULL;
    log = slurp(b.log);
    CHECK(strstr(log, "policy: guest=b device=usb:1d50:6101") &&
          strstr(log, "verdict=allow-forced") && strstr(log, "rule 'vdi-keyboard'"),
          "ferry-dm b did not log the forced override:\n%s", log);
    g_free(log);
    log = NULL;

    /* a crash: b's ferry-dm killed, its claims are stale and a takes over */
    kill(b.dm, SIGKILL);
    waitpid(b.dm, NULL, 0);
    b.dm = 0;
    r = run(&out, "policy", "check", "a", "1d50:6103:V2", NULL);
    CHECK(r == 0 && !strstr(out, "owner:"), "stale owner still counted: %d %s", r, out);
    g_free(out);
    /* the broker takes the stale claim over (and says so) for ferry-dm a */
    r = run(&out, "usb", "attach", "a", "1d50:6103:V2", NULL);
    CHECK(r == 0 && strstr(out, "guest b (ferry-dm pid") &&
          strstr(out, "has gone without releasing it"), "a after b's crash: %d %s", r, out);
    g_free(out);
    out = NULL;
    CHECK(wait_list("a", "\"connected\" : true", false), "a never got the device back");
    /* a confined ferry-dm claims its [usb] devices at start-up, before its
     * sandbox: one that a holds is not opened, and the log names a */
    {
        char *conf = g_build_filename(dir, "c.conf", NULL);

        g_file_set_contents(conf, "[usb]\ndevices=1d50:6103:V2\n", -1, NULL);
        CHECK(guest_start(&c, dir), "QEMU c did not start");
        {
            const char *cargv[] = { dm, "--qmp", c.qmp, "--control", c.ctl, "--name", "c",
                                    "--user=root", "--config", conf, "-v", NULL };

            unlink(c.ctl);
            c.dm = spawn(cargv, false, c.log);
        }
        g_free(conf);
        CHECK(c.dm && wait_file(c.ctl), "confined ferry-dm c did not start");
        /* its control socket may come before its USB side has started */
        for (int i = 0; i < 300; i++) {
            g_free(log);
            log = slurp(c.log);
            if (strstr(log, "serving host devices") || kill(c.dm, 0) < 0)
                break;
            g_usleep(100000);
        }
        CHECK(strstr(log, "usb device 1d50:6103:V2 is assigned to guest a (ferry-dm pid"),
              "confined ferry-dm c did not refuse a's device at start-up:\n%s", log);
        g_free(log);
        log = NULL;
        CHECK(wait_list("a", "\"connected\" : true", false), "a lost the device to c");
    }
    /* a confined ferry-dm d served by the broker, replaced twice: the claim stays held */
    if (!getpwnam("ferry")) {
        no_ferry_user = true;
        goto done;
    }
    {
        g_autofree char *shim = g_canonicalize_filename(argv[3], NULL);
        g_autofree char *pre = g_strdup_printf("%s %s", shim, g_getenv("LD_PRELOAD") ?
                                               g_getenv("LD_PRELOAD") : "");
        const char *dargv[] = { dm, "--qmp", NULL, "--control", NULL, "--name", "d", "-v",
                                NULL };
        int st;

        /* the successors run as user ferry: the folders on their way must be open to it */
        CHECK(chmod(dir, 0755) == 0, "chmod %s", dir);
        CHECK(guest_start(&d, dir), "QEMU d did not start");
        g_setenv("LD_PRELOAD", pre, TRUE);      /* d and the CLI from here on, not QEMU */
        dargv[2] = d.qmp;
        dargv[4] = d.ctl;
        unlink(d.ctl);
        d.dm = spawn(dargv, false, d.log);
        serving = d.dm;
        CHECK(d.dm && wait_file(d.ctl), "confined ferry-dm d did not start");
        r = run(&out, "usb", "attach", "d", "1d50:6103:V3", NULL);
        CHECK(r == 0, "broker attach to confined d: %d %s", r, out);
        g_free(out);
        out = NULL;
        CHECK(wait_list("d", "\"connected\" : true", false), "d never got the device");
        log = slurp(d.log);
        CHECK(strstr(log, "1d50:6103:V3: the broker's ownership claim is held here now"),
              "ferry-dm d did not keep the broker's claim:\n%s", log);
        g_free(log);
        log = NULL;
        CHECK(refused_to_a("1d50:6103:V3", "before the replaces", (long)d.dm), "owner check");
        for (int i = 1; i <= 2; i++) {
            long prev = serving;
            char when[64];

            serving = replace(d.ctl);
            CHECK(serving > 0, "replace %d of d failed", i);
            if (prev == d.dm) {
                CHECK(waitpid(d.dm, &st, 0) == d.dm, "the first ferry-dm d did not exit");
                d.dm = 0;
            } else {
                CHECK(pid_gone(prev), "ferry-dm %ld did not exit after its replace", prev);
            }
            CHECK(wait_list("d", "\"connected\" : true", false), "d's device after replace %d",
                  i);
            /* the claim is held by the successor (its lock) and names it (its pid) */
            snprintf(when, sizeof(when), "after replace %d", i);
            CHECK(refused_to_a("1d50:6103:V3", when, serving), "owner check %s", when);
        }
        r = run(&out, "usb", "detach", "d", "1d50:6103:V3", NULL);
        CHECK(r == 0, "detach from d: %d %s", r, out);
        g_free(out);
        out = NULL;
        CHECK(released("1d50:6103:V3"), "the claim outlived the detach");
        /* again, and the guest ends: its ferry-dm goes with QEMU, and the claim with it */
        r = run(&out, "usb", "attach", "d", "1d50:6103:V3", NULL);
        CHECK(r == 0, "broker attach to d again: %d %s", r, out);
        g_free(out);
        out = NULL;
        CHECK(wait_list("d", "\"connected\" : true", false), "d never got the device again");
        CHECK(refused_to_a("1d50:6103:V3", "attached again", 0), "owner check");
        stop(&d.qemu);
        CHECK(pid_gone(serving), "ferry-dm d (pid %ld) did not end with its QEMU", serving);
        serving = 0;
        CHECK(released("1d50:6103:V3"), "the claim outlived the guest");
        printf("ok: a confined ferry-dm's broker claim held across 2 replaces, released by "
               "detach and by the guest's end\n");
    }
done:
    printf("ok: per-guest rules, one owner between two ferry-dm, forced override logged\n");
out:
    g_free(out);
    g_free(want);
    g_free(log);
    guest_stop(&a);
    guest_stop(&b);
    guest_stop(&c);
    if (serving > 0 && serving != d.dm)
        kill((pid_t)serving, SIGKILL);
    guest_stop(&d);
    usbsim_free(sim);
    if (failures) {
        fprintf(stderr, "kept %s for a look\n", dir);
    } else {
        char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
        g_free(cmd);
    }
    g_free(policy);
    if (!failures && no_ferry_user) {
        printf("SKIP: no user 'ferry' (scripts/setup makes it): the confined ferry-dm's "
               "claim across replaces was not tested\n");
        return 77;
    }
    return failures ? 1 : 0;
}
