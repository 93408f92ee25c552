// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of the libvirt test (libvirt.sh, guest-libvirt.sh): a real
 * libvirtd (started here, with virtlogd, when none runs: no systemd here or
 * in CI), a TCG domain booting Debian's kernel directly, and the simulated
 * USB disk of this process (umockdev testbed) given to it with
 * `ferry usb attach DOMAIN`.  The guest writes a pattern per round; the RAM
 * disk here must hold it.  Checked, in order:
 *   0. a policy file that denies the disk to the domain: `ferry usb attach`
 *      refused naming the rule and its file:line, before libvirt is asked
 *      (the domain's XML unchanged, no ferry-dm started, and with an
 *      unreachable --connect URI the same refusal);
 *   1. attach (an unconfined ferry-dm started by ferry): the data, `virsh
 *      dumpxml` shows the redirdev with its ua-ferry- alias, the host driver
 *      is detached while the guest has it;
 *   2. `virsh detach-device-alias`: the guest loses it, the host driver has
 *      it back; `ferry usb detach` then ends Ferry's side;
 *   3. attach again, `ferry usb detach` (libvirt's DEVICE_REMOVED awaited):
 *      gone from the guest and from dumpxml, host driver back;
 *   4. attach --persistent, `ferry usb list DOMAIN` (plugged, in the domain,
 *      persistent, QEMU connected), unplug on the host (list: unplugged,
 *      still in the domain), replug: back in the guest with no command;
 *   5. `virsh destroy`: the hook stops the domain's ferry-dm; `virsh start`:
 *      the hook starts a ferry-dm by itself, confined as by default (user
 *      ferry, seccomp, no_new_privs), passes it the device's fd and serves
 *      the persistent device from the domain's metadata: the guest gets it;
 *   6. `ferry dm replace` of that ferry-dm is refused, naming what a handover
 *      does not pass (docs/libvirt.md); unplug and replug again: the
 *      confined ferry-dm gets the new fd from
 *      the broker that follows the device (ferry libvirt-follow) and the
 *      guest has it back with no command; detach --persistent.
 * The hook runs in the testbed (UMOCKDEV_DIR, umockdev's preload and
 * fdpass-shim.so, which lets a simulated usbfs fd follow SCM_RIGHTS into
 * ferry-dm as a real one does): the only place the simulated disk exists.
 *   libvirt-e2e WORKDIR FERRY FERRY_DM HOOK_SCRIPT FDPASS_SHIM
 * WORKDIR (world-readable: QEMU runs as libvirt-qemu) holds vmlinuz and initrd.gz.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usbsim.h"

#define URI "qemu:///system"
#define BOOT_TIMEOUT_S 240
#define STEP_TIMEOUT_S 120
#define HOOK_DIR "/etc/libvirt/hooks/qemu.d"
#define DEV_SPEC "1d50:6102:LIBVIRT-E2E"

struct e2e {
    char **clean_env;       /* without umockdev's preload: libvirtd, virsh */
    char **ferry_env;       /* the testbed's, for ferry and ferry-dm */
    const char *ferry, *ferry_dm, *work, *shim;
    char name[64];
    char serial[512];
    char rundir[512];
    off_t serial_off;
    GString *line;
    int last_ok, last_bad, last_gone;   /* the guest's rounds */
    struct usbsim *sim;
    struct usbsim_dev *disk;
    bool started_libvirtd, hook_installed;
    char hook_path[256];
};

static int failures;

static void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    fflush(stdout);
    if (!ok)
        failures++;
}

/* Run argv (env), its output in *out and *errout (may be NULL); true when it exits 0. */
static bool run2(char **env, char **out, char **errout, const char *const *argv)
{
    g_autofree char *o = NULL, *e = NULL;
    g_autoptr(GError) err = NULL;
    int status = -1;
    bool ok;

    ok = g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e,
                      &status, &err) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("  $");
    for (const char *const *a = argv; *a; a++)
        printf(" %s", *a);
    printf(" -> %s\n", ok ? "ok" : "FAILED");
    if (o && *o && (!ok || !out))
        printf("%s", o);
    if (e && *e)
        printf("%s", e);
    if (err)
        printf("  %s\n", err->message);
    fflush(stdout);
    if (out)
        *out = g_steal_pointer(&o);
    if (errout)
        *errout = g_steal_pointer(&e);
    return ok;
}

static bool run(char **env, char **out, const char *const *argv)
{
    return run2(env, out, NULL, argv);
}

static bool virsh(struct e2e *e, char **out, const char *a1, const char *a2, const char *a3)
{
    const char *argv[] = { "virsh", "-c", URI, a1, a2, a3, NULL };

    return run(e->clean_env, out, argv);
}

static bool ferry_usb(struct e2e *e, const char *verb, const char *opt)
{
    const char *argv[] = { e->ferry, "usb", verb, e->name, DEV_SPEC, opt, NULL };

    return run(e->ferry_env, NULL, argv);
}

/* New serial output: the guest's markers. */
static void poll_serial(struct e2e *e)
{
    char buf[4096];
    ssize_t n;
    int fd = open(e->serial, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    while ((n = pread(fd, buf, sizeof(buf), e->serial_off)) > 0) {
        e->serial_off += n;
        fwrite(buf, 1, (size_t)n, stdout);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (e->line->len < 4096 && buf[i] != '\r')
                    g_string_append_c(e->line, buf[i]);
                continue;
            }
            if (g_str_has_prefix(e->line->str, "FERRY-DISK-OK "))
                e->last_ok = atoi(e->line->str + 14);
            else if (g_str_has_prefix(e->line->str, "FERRY-DISK-BAD "))
                e->last_bad = atoi(e->line->str + 15);
            else if (g_str_has_prefix(e->line->str, "FERRY-GONE "))
                e->last_gone = atoi(e->line->str + 11);
            g_string_truncate(e->line, 0);
        }
    }
    fflush(stdout);
    close(fd);
}

/* Wait until *what reaches round (or a bad round shows). */
static bool wait_round(struct e2e *e, int *what, int round, int timeout_s)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < end) {
        poll_serial(e);
        if (*what >= round)
            return true;
        if (e->last_bad)
            return false;
        g_usleep(100000);
    }
    printf("  (waited %d s for round %d)\n", timeout_s, round);
    return false;
}

static bool ramdisk_holds(struct e2e *e, int round)
{
    g_autofree char *unit = g_strdup_printf("FERRY-LIBVIRT-ROUND-%d\n", round);
    size_t ul = strlen(unit);
    uint8_t *got = g_malloc(65536);
    bool ok = true;

    usbsim_disk_read(e->disk, 2048 * 512, got, 65536);
    for (size_t i = 0; i < 65536 && ok; i++)
        ok = got[i] == (uint8_t)unit[i % ul];
    g_free(got);
    return ok;
}

static bool host_driver_is(struct e2e *e, const char *want)
{
    char drv[64];

    /* the driver goes back once QEMU's connection has closed: a moment */
    for (int i = 0; i < 100; i++) {
        usbsim_driver(e->disk, drv, sizeof(drv));
        if (!strcmp(drv, want))
            return true;
        g_usleep(100000);
    }
    printf("  host driver is '%s', expected '%s'\n", drv, want);
    return false;
}

static bool dumpxml_has_redirdev(struct e2e *e, bool inactive)
{
    g_autofree char *xml = NULL;
    bool ok;

    if (!virsh(e, &xml, "dumpxml", e->name, inactive ? "--inactive" : NULL))
        return false;
    ok = xml && strstr(xml, "<redirdev bus='usb' type='unix'>") &&
         strstr(xml, "<alias name='ua-ferry-1d50-6102-LIBVIRT-E2E'/>");
    return ok;
}

/* ---- libvirtd ------------------------------------------------------------- */

static bool libvirt_answers(struct e2e *e)
{
    const char *argv[] = { "virsh", "-c", URI, "version", NULL };
    g_autofree char *o = NULL, *er = NULL;
    int status = -1;

    return g_spawn_sync(NULL, (char **)argv, e->clean_env, G_SPAWN_SEARCH_PATH, NULL, NULL, &o,
                        &er, &status, NULL) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void stop_pidfile(const char *pidfile)
{
    g_autofree char *s = NULL;
    int pid;

    if (!g_file_get_contents(pidfile, &s, NULL, NULL) || (pid = atoi(s)) <= 1)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
        g_usleep(100000);
}

/* 0, 77 (no libvirt here: SKIP), or 1. */
static int libvirt_up(struct e2e *e, const char *hook_src)
{
    g_autofree char *libvirtd = g_find_program_in_path("libvirtd");
    g_autofree char *virtlogd = g_find_program_in_path("virtlogd");
    g_autofree char *virsh_bin = g_find_program_in_path("virsh");

    if (!libvirtd && access("/usr/sbin/libvirtd", X_OK) == 0)
        libvirtd = g_strdup("/usr/sbin/libvirtd");
    if (!virtlogd && access("/usr/sbin/virtlogd", X_OK) == 0)
        virtlogd = g_strdup("/usr/sbin/virtlogd");
    if (!virsh_bin || (!libvirtd && !libvirt_answers(e))) {
        printf("SKIP: libvirt is not installed (libvirt-daemon-system, libvirt-clients: "
               "scripts/setup installs them)\n");
        return 77;
    }
    if (libvirt_answers(e)) {
        printf("libvirtd runs already: using it (its hooks were read when it started)\n");
        return 0;
    }
    if (getuid() != 0) {
        printf("SKIP: no libvirtd runs and only root can start the system one\n");
        return 77;
    }
    /* the hook is read when libvirtd starts: this build's ferry, for this test */
    if (g_mkdir_with_parents(HOOK_DIR, 0755) == 0) {
        g_autofree char *text = NULL;
        g_autofree char *script = NULL;

        snprintf(e->hook_path, sizeof(e->hook_path), "%s/ferry-test-%d", HOOK_DIR, (int)getpid());
        if (g_file_get_contents(hook_src, &text, NULL, NULL)) {
            /* the installed hook runs `ferry` from PATH; here this build's */
            /* libvirtd runs hooks from / : an absolute path */
            g_autofree char *abs = g_canonicalize_filename(e->ferry, NULL);

            g_autofree char *shim = g_canonicalize_filename(e->shim, NULL);
            const char *pre = getenv("LD_PRELOAD");

            /* ... in this testbed: umockdev's environment, and the shim that
             * lets the broker's simulated fds reach ferry-dm; EVENT_NOEPOLL:
             * umockdev's nodes are regular files, which epoll refuses */
            const char *asan = getenv("ASAN_OPTIONS"), *ubsan = getenv("UBSAN_OPTIONS");

            /* ... and a sanitizer build's options (the preloads come before its
             * runtime: verify_asan_link_order=0 in the suite's ASAN_OPTIONS) */
            script = g_strdup_printf("#!/bin/sh\nFERRY=%s\nUMOCKDEV_DIR='%s'\n"
                                     "LD_PRELOAD='%s %s'\nEVENT_NOEPOLL=1\n"
                                     "ASAN_OPTIONS='%s'\nUBSAN_OPTIONS='%s'\n"
                                     "export FERRY UMOCKDEV_DIR LD_PRELOAD EVENT_NOEPOLL "
                                     "ASAN_OPTIONS UBSAN_OPTIONS\n%s",
                                     abs, getenv("UMOCKDEV_DIR"), shim, pre ? pre : "",
                                     asan ? asan : "", ubsan ? ubsan : "", text);
            if (g_file_set_contents(e->hook_path, script, -1, NULL) &&
                chmod(e->hook_path, 0755) == 0)
                e->hook_installed = true;
        }
    }
    check(e->hook_installed, "the test's libvirt hook is in " HOOK_DIR);
    {
        const char *a1[] = { virtlogd, "-d", NULL };
        const char *a2[] = { libvirtd, "-d", NULL };

        run(e->clean_env, NULL, a1);
        run(e->clean_env, NULL, a2);
    }
    e->started_libvirtd = true;
    for (int i = 0; i < 100 && !libvirt_answers(e); i++)
        g_usleep(100000);
    if (!libvirt_answers(e)) {
        printf("FAIL: libvirtd started here does not answer on " URI "\n");
        return 1;
    }
    return 0;
}

static void libvirt_down(struct e2e *e)
{
    if (e->hook_installed)
        unlink(e->hook_path);
    if (!e->started_libvirtd)
        return;
    stop_pidfile("/run/libvirtd.pid");
    stop_pidfile("/run/virtlogd.pid");
}

/* ---- the domain ------------------------------------------------------------- */

static bool define_domain(struct e2e *e)
{
    g_autofree char *k = g_build_filename(e->work, "vmlinuz", NULL);
    g_autofree char *i = g_build_filename(e->work, "initrd.gz", NULL);
    g_autofree char *x = g_build_filename(e->work, "domain.xml", NULL);
    g_autofree char *xml = NULL;
    bool ok;

    xml = g_strdup_printf(
        "<domain type='qemu'>\n"
        "  <name>%s</name>\n"
        "  <memory unit='MiB'>512</memory>\n"
        "  <vcpu>1</vcpu>\n"
        "  <os><type arch='x86_64' machine='pc'>hvm</type>\n"
        "    <kernel>%s</kernel><initrd>%s</initrd>\n"
        "    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>\n"
        "  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
        "<on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <controller type='usb' model='qemu-xhci'/>\n"
        "    <serial type='file'><source path='%s'/><target port='0'/></serial>\n"
        "    <memballoon model='none'/>\n"
        "  </devices>\n"
        "</domain>\n", e->name, k, i, e->serial);
    if (!g_file_set_contents(x, xml, -1, NULL))
        return false;
    ok = virsh(e, NULL, "define", x, NULL);
    return ok;
}

static bool start_domain(struct e2e *e)
{
    e->serial_off = 0;
    e->last_ok = e->last_bad = e->last_gone = 0;
    g_string_truncate(e->line, 0);
    unlink(e->serial);
    return virsh(e, NULL, "start", e->name, NULL);
}

#define ALIAS "ua-ferry-1d50-6102-LIBVIRT-E2E"

static char *domain_xml(struct e2e *e, bool inactive)
{
    char *xml = NULL;

    if (!virsh(e, &xml, "dumpxml", e->name, inactive ? "--inactive" : NULL)) {
        g_free(xml);
        return NULL;
    }
    return xml;
}

/* `ferry usb list DOMAIN`: the fields of the device's row (ALIAS DEVICE HOST
 * IN-DOMAIN PERSISTENT QEMU), or NULL. */
static char **list_row(struct e2e *e)
{
    const char *argv[] = { e->ferry, "usb", "list", e->name, NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    char **row = NULL;

    if (!run(e->ferry_env, &out, argv) || !out)
        return NULL;
    printf("%s", out);
    lines = g_strsplit(out, "\n", -1);
    if (!lines[0] || !g_str_has_prefix(lines[0], "ALIAS") || !strstr(lines[0], "HOST") ||
        !strstr(lines[0], "PERSISTENT"))
        return NULL;
    for (char **l = lines; *l && !row; l++)
        if (g_str_has_prefix(*l, ALIAS " "))
            row = g_regex_split_simple("\\s+", *l, 0, 0);
    return row;
}

static bool list_says(struct e2e *e, const char *host, const char *in_domain,
                      const char *persistent, const char *qemu)
{
    g_auto(GStrv) row = NULL;

    /* QEMU's reconnect and the replug take a moment */
    for (int i = 0; i < 50; i++) {
        g_strfreev(row);
        row = list_row(e);
        if (row && g_strv_length(row) >= 6 && !strcmp(row[1], DEV_SPEC) &&
            !strcmp(row[2], host) && !strcmp(row[3], in_domain) && !strcmp(row[4], persistent) &&
            !strcmp(row[5], qemu))
            return true;
        g_usleep(200000);
    }
    printf("  expected %s %s %s %s %s %s\n", ALIAS, DEV_SPEC, host, in_domain, persistent, qemu);
    return false;
}

static int dm_pid(struct e2e *e)
{
    g_autofree char *pidf = g_build_filename(e->rundir, "dm.pid", NULL);
    g_autofree char *s = NULL;

    return g_file_get_contents(pidf, &s, NULL, NULL) ? atoi(s) : -1;
}

/* /proc/PID/status: every uid the ferry user's, Seccomp 2, NoNewPrivs 1. */
static bool dm_confined(int pid)
{
    g_autofree char *f = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL, *want = NULL;
    struct passwd *pw = getpwnam("ferry");
    bool ok;

    if (!pw || !g_file_get_contents(f, &text, NULL, NULL))
        return false;
    want = g_strdup_printf("\nUid:\t%u\t%u\t%u\t%u\n", pw->pw_uid, pw->pw_uid, pw->pw_uid,
                           pw->pw_uid);
    ok = strstr(text, want) && strstr(text, "\nSeccomp:\t2\n") &&
         strstr(text, "\nNoNewPrivs:\t1\n");
    if (!ok)
        printf("  /proc/%d/status:\n%s", pid, text);
    return ok;
}

/* 0. The policy denies the disk to the domain: refused before libvirt is asked. */
static void policy_refusal(struct e2e *e)
{
    g_autofree char *pol = g_build_filename(e->work, "policy.conf", NULL);
    g_autofree char *x1 = domain_xml(e, false), *c1 = domain_xml(e, true);
    g_autofree char *x2 = NULL, *c2 = NULL, *err = NULL, *err2 = NULL;
    g_autofree char *dmsock = g_build_filename(e->rundir, "dm.sock", NULL);
    g_autofree char *want = g_strdup_printf("rule 'no-sim-disk-for-tests' (%s:", pol);
    char **env = g_environ_setenv(g_strdupv(e->ferry_env), "FERRY_POLICY", pol, TRUE);
    const char *argv[] = { e->ferry, "usb", "attach", e->name, DEV_SPEC, NULL };
    const char *argv2[] = { e->ferry, "usb", "attach", e->name, DEV_SPEC, "--connect",
                            "qemu+unix:///system?socket=/nonexistent/ferry-test.sock", NULL };
    bool ok;

    g_file_set_contents(pol, "# the simulated disk is not for test domains\n"
                             "[rule no-sim-disk-for-tests]\n"
                             "usb = -1,0x1d50,0x6102,-1,0\n"
                             "guests = ferry-test-*\n", -1, NULL);
    ok = run2(env, NULL, &err, argv);
    check(!ok, "policy: ferry usb attach of a denied device fails");
    check(err && strstr(err, "no-sim-disk-for-tests") && strstr(err, want),
          "policy: the refusal names the rule and its file:line");
    x2 = domain_xml(e, false);
    c2 = domain_xml(e, true);
    check(x1 && x2 && !strcmp(x1, x2) && c1 && c2 && !strcmp(c1, c2),
          "policy: the domain's live and inactive XML are unchanged");
    check(access(dmsock, F_OK) < 0, "policy: no ferry-dm was started for the domain");
    ok = run2(env, NULL, &err2, argv2);
    check(!ok && err2 && strstr(err2, "no-sim-disk-for-tests") &&
          !strstr(err2, "cannot connect to libvirt"),
          "policy: refused before any libvirt call (an unreachable --connect URI is never used)");
    g_strfreev(env);
}

static bool dm_running(struct e2e *e)
{
    g_autofree char *pidf = g_build_filename(e->rundir, "dm.pid", NULL);
    g_autofree char *s = NULL;
    int pid;

    if (!g_file_get_contents(pidf, &s, NULL, NULL) || (pid = atoi(s)) <= 1)
        return false;
    (void)waitpid(pid, NULL, WNOHANG);     /* ours when the test started it */
    if (kill(pid, 0) < 0)
        return false;
    {
        /* an orphan whose reaper is slow: a zombie has ended */
        g_autofree char *statf = g_strdup_printf("/proc/%d/stat", pid);
        g_autofree char *st = NULL;
        const char *p;

        if (g_file_get_contents(statf, &st, NULL, NULL) && (p = strrchr(st, ')')) &&
            p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct e2e e = { 0 };
    int rc, r, pid;

    if (argc != 6) {
        fprintf(stderr, "usage: libvirt-e2e WORKDIR FERRY FERRY_DM HOOK FDPASS_SHIM\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    e.work = argv[1];
    e.ferry = argv[2];
    e.ferry_dm = argv[3];
    e.shim = argv[5];
    e.line = g_string_new(NULL);
    snprintf(e.name, sizeof(e.name), "ferry-test-%d", (int)getpid());
    snprintf(e.serial, sizeof(e.serial), "%s/serial.log", e.work);
    snprintf(e.rundir, sizeof(e.rundir), "%s/libvirt/%s",
             getenv("FERRY_RUN_DIR") && *getenv("FERRY_RUN_DIR") ? getenv("FERRY_RUN_DIR")
                                                                 : "/run/ferry", e.name);
    e.clean_env = g_get_environ();
    e.clean_env = g_environ_unsetenv(e.clean_env, "LD_PRELOAD");
    e.clean_env = g_environ_unsetenv(e.clean_env, "UMOCKDEV_DIR");
    if (!getpwnam("ferry")) {
        printf("SKIP: no user 'ferry' (scripts/setup creates it): the hook's ferry-dm confines "
               "itself to it\n");
        return 77;
    }
    /* one libvirt test at a time on this machine (another build tree's too): they
     * share the system libvirtd, which the first one starts and stops */
    {
        int lk = open("/run/lock/ferry-libvirt-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        if (lk >= 0 && flock(lk, LOCK_EX | LOCK_NB) < 0) {
            printf("another libvirt test runs on this machine: waiting for it\n");
            (void)flock(lk, LOCK_EX);
        }
    }
    /* the testbed first: the hook installed by libvirt_up runs in it */
    e.sim = usbsim_new();
    if (!e.sim) {
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        return 1;
    }
    e.disk = usbsim_add(e.sim, USBSIM_STORAGE, "1-2", "LIBVIRT-E2E");
    r = libvirt_up(&e, argv[4]);
    if (r) {
        libvirt_down(&e);
        usbsim_free(e.sim);
        return r;
    }
    /* the testbed's environment (UMOCKDEV_DIR is set by usbsim_new) for ferry and the
     * ferry-dm it starts: unconfined here (the hook's, later, is confined), no epoll
     * (umockdev's nodes are regular files), the shim that lets a simulated usbfs fd
     * follow SCM_RIGHTS */
    e.ferry_env = g_get_environ();
    e.ferry_env = g_environ_setenv(e.ferry_env, "FERRY_DM_EXTRA_ARGS",
                                   "--user=root --seccomp=off --no-namespaces -v", TRUE);
    e.ferry_env = g_environ_setenv(e.ferry_env, "FERRY_DM", e.ferry_dm, TRUE);
    e.ferry_env = g_environ_setenv(e.ferry_env, "EVENT_NOEPOLL", "1", TRUE);
    {
        g_autofree char *shim = g_canonicalize_filename(e.shim, NULL);
        g_autofree char *pre = g_strdup_printf("%s %s", shim,
                                               g_environ_getenv(e.ferry_env, "LD_PRELOAD") ?
                                               g_environ_getenv(e.ferry_env, "LD_PRELOAD") : "");
        e.ferry_env = g_environ_setenv(e.ferry_env, "LD_PRELOAD", pre, TRUE);
    }
    if (!define_domain(&e) || !start_domain(&e)) {
        printf("FAIL: cannot define and start the test domain\n");
        failures++;
        goto out;
    }

    /* 0. the policy */
    policy_refusal(&e);
    /* 1. attach */
    check(ferry_usb(&e, "attach", NULL), "ferry usb attach DOMAIN " DEV_SPEC);
    if (failures)
        goto out;
    check(wait_round(&e, &e.last_ok, 1, BOOT_TIMEOUT_S), "round 1: the guest wrote and read "
          "back its pattern");
    if (failures)
        goto out;
    check(ramdisk_holds(&e, 1), "round 1: the host's RAM disk holds the guest's pattern");
    check(dumpxml_has_redirdev(&e, false), "virsh dumpxml shows the redirdev and its alias");
    check(host_driver_is(&e, ""), "the host driver let go while the guest has it");
    /* 2. virsh's own detach */
    check(virsh(&e, NULL, "detach-device-alias", e.name, ALIAS), "virsh detach-device-alias");
    check(wait_round(&e, &e.last_gone, 1, STEP_TIMEOUT_S), "round 1: gone from the guest");
    check(host_driver_is(&e, "usb-storage"), "the host driver has it back");
    check(!dumpxml_has_redirdev(&e, false), "dumpxml no longer shows it");
    check(ferry_usb(&e, "detach", NULL), "ferry usb detach after virsh's detach");
    /* 3. attach again, ferry's detach */
    if (failures)
        goto out;
    check(ferry_usb(&e, "attach", NULL), "ferry usb attach again");
    check(wait_round(&e, &e.last_ok, 2, STEP_TIMEOUT_S) && ramdisk_holds(&e, 2),
          "round 2: the pattern through the guest");
    check(ferry_usb(&e, "detach", NULL), "ferry usb detach (waits for DEVICE_REMOVED)");
    check(wait_round(&e, &e.last_gone, 2, STEP_TIMEOUT_S), "round 2: gone from the guest");
    check(!dumpxml_has_redirdev(&e, false), "dumpxml no longer shows it");
    check(host_driver_is(&e, "usb-storage"), "the host driver has it back");
    /* 4. persistent, list, replug on the host (unconfined ferry-dm: its own hotplug) */
    if (failures)
        goto out;
    check(ferry_usb(&e, "attach", "--persistent"), "ferry usb attach --persistent");
    check(wait_round(&e, &e.last_ok, 3, STEP_TIMEOUT_S) && ramdisk_holds(&e, 3),
          "round 3: the pattern through the guest");
    check(dumpxml_has_redirdev(&e, true), "the domain's config (dumpxml --inactive) has it");
    check(list_says(&e, "plugged", "yes", "yes", "connected"),
          "ferry usb list DOMAIN: plugged, in the domain, persistent, QEMU connected");
    usbsim_unplug(e.sim, e.disk);
    check(wait_round(&e, &e.last_gone, 3, STEP_TIMEOUT_S), "unplugged on the host: gone from "
          "the guest");
    check(list_says(&e, "unplugged", "yes", "yes", "connected"),
          "ferry usb list DOMAIN: unplugged on the host, still in the domain (QEMU's "
          "connection kept)");
    check(usbsim_replug(e.sim, e.disk) == 0, "replugged in the simulator");
    check(wait_round(&e, &e.last_ok, 4, STEP_TIMEOUT_S) && ramdisk_holds(&e, 4),
          "round 4: back in the guest by itself, the pattern through it");
    if (failures)
        goto out;
    if (!e.hook_installed) {
        printf("note: libvirtd ran before the test, without this build's hook: the restart "
               "and confined parts were not checked\n");
        goto out;
    }
    /* 5. restart: the hook stops ferry-dm, and starts a confined one by itself */
    check(virsh(&e, NULL, "destroy", e.name, NULL), "virsh destroy");
    for (int i = 0; i < 50 && dm_running(&e); i++)
        g_usleep(100000);
    check(!dm_running(&e), "the hook stopped the domain's ferry-dm");
    check(host_driver_is(&e, "usb-storage"), "the host driver has it back");
    check(start_domain(&e), "virsh start (the hook starts the domain's ferry-dm)");
    check(dm_running(&e) && (pid = dm_pid(&e)) > 1 && dm_confined(pid),
          "the hook's ferry-dm runs confined: user ferry, Seccomp 2, NoNewPrivs 1");
    check(dumpxml_has_redirdev(&e, false), "the restarted domain has the redirdev");
    check(wait_round(&e, &e.last_ok, 1, BOOT_TIMEOUT_S) && ramdisk_holds(&e, 1),
          "after the restart the hook served it again through a confined ferry-dm (the "
          "broker's fd): the pattern through the guest");
    check(list_says(&e, "plugged", "yes", "yes", "connected"),
          "ferry usb list DOMAIN (confined ferry-dm): plugged, in the domain, persistent, "
          "connected");
    /* a libvirt domain's ferry-dm is not replaced: refused naming what stands in the way,
     * and it serves on (the replug below goes through it and its follower) */
    {
        g_autofree char *dmsock = g_build_filename(e.rundir, "dm.sock", NULL);
        g_autofree char *rerr = NULL;
        const char *argv_r[] = { e.ferry, "dm", "-s", dmsock, "replace", NULL };

        check(!run2(e.ferry_env, NULL, &rerr, argv_r) && rerr &&
              strstr(rerr, "ferry-dm --libvirt") && strstr(rerr, ALIAS) &&
              strstr(rerr, "ferry libvirt-follow") && strstr(rerr, "dm.pid") &&
              strstr(rerr, "nothing was changed"),
              "ferry dm replace of the domain's ferry-dm: refused, naming the alias served "
              "through a listening socket, the follower and dm.pid");
        if (rerr && !strstr(rerr, ALIAS))
            printf("  replace said: %s\n", rerr);
    }
    /* 6. replug with the confined ferry-dm: the follower passes the new fd */
    usbsim_unplug(e.sim, e.disk);
    check(wait_round(&e, &e.last_gone, 1, STEP_TIMEOUT_S), "confined: unplugged on the host, "
          "gone from the guest");
    check(list_says(&e, "unplugged", "yes", "yes", "connected"),
          "ferry usb list DOMAIN (confined): unplugged, still in the domain");
    check(usbsim_replug(e.sim, e.disk) == 0, "replugged in the simulator");
    check(wait_round(&e, &e.last_ok, 2, STEP_TIMEOUT_S) && ramdisk_holds(&e, 2),
          "confined: back in the guest with no command (the follower's fd), the pattern "
          "through it");
    check(dm_running(&e) && dm_confined(dm_pid(&e)), "the same ferry-dm, still confined");
    check(ferry_usb(&e, "detach", "--persistent"), "ferry usb detach --persistent");
    check(wait_round(&e, &e.last_gone, 2, STEP_TIMEOUT_S), "gone from the guest");
    check(host_driver_is(&e, "usb-storage"), "the host driver has it back");
    check(!dumpxml_has_redirdev(&e, true), "gone from the domain's config");
    {
        g_autofree char *fol = g_build_filename(e.rundir, ALIAS ".follow", NULL);
        check(access(fol, F_OK) < 0, "the follower was stopped with the detach");
    }
out:
    rc = failures ? 1 : 0;
    if (failures) {
        /* what the domain's ferry-dm and QEMU said */
        g_autofree char *dml = g_build_filename(e.rundir, "dm.log", NULL);
        g_autofree char *qml = g_strdup_printf("/var/log/libvirt/qemu/%s.log", e.name);
        g_autofree char *t1 = NULL, *t2 = NULL;

        if (g_file_get_contents(dml, &t1, NULL, NULL))
            printf("---- %s\n%s", dml, t1);
        if (g_file_get_contents(qml, &t2, NULL, NULL))
            printf("---- %s\n%s", qml, t2);
    }
    {
        const char *argv_d[] = { "virsh", "-c", URI, "destroy", e.name, NULL };
        const char *argv_u[] = { "virsh", "-c", URI, "undefine", e.name, "--nvram", NULL };
        g_autofree char *o1 = NULL, *o2 = NULL;

        g_spawn_sync(NULL, (char **)argv_d, e.clean_env, G_SPAWN_SEARCH_PATH |
                     G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &o1, NULL, NULL, NULL);
        argv_u[5] = NULL;
        g_spawn_sync(NULL, (char **)argv_u, e.clean_env, G_SPAWN_SEARCH_PATH |
                     G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &o2, NULL, NULL, NULL);
    }
    /* the domain's ferry-dm, if the hook did not stop it */
    {
        g_autofree char *pidf = g_build_filename(e.rundir, "dm.pid", NULL);
        stop_pidfile(pidf);
        unlink(pidf);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", e.rundir);
        if (system(cmd) != 0)
            printf("note: could not remove %s\n", e.rundir);
    }
    libvirt_down(&e);
    usbsim_free(e.sim);
    g_strfreev(e.clean_env);
    g_strfreev(e.ferry_env);
    g_string_free(e.line, TRUE);
    printf("%s: %d failed checks\n", rc == 0 ? "PASS" : "FAIL", failures);
    return rc;
}
