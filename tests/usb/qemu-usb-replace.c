// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu suite, companion mode replaced under a busy USB disk (docs/usb.md,
 * "Replacing ferry-dm"): QEMU (TCG) boots Debian's kernel; ferry-dm --qmp
 * serves it a simulated keyboard and storage device (sim/usbsim.h, umockdev,
 * in this process).  While the guest reads the keyboard (its interrupt IN
 * endpoint streams), KEYS keys are pressed one by one, and ferry-dm is
 * replaced right after every odd press (the report on its way) and right
 * before every fourth: each press and release reaches the guest once, in
 * order.  Then the guest (guest-usb-replace.sh) writes a pattern once and reads
 * it back again and again (4 MiB each time), and 150 ms into every other
 * read the host replaces ferry-dm (`ferry dm CTL replace`), REPLACES times
 * in all, while the read is under way (ferry-dm's log says how many
 * transfers each handover waited for).  Passes when every replace
 * succeeded, every key arrived once, every read compared equal, the
 * guest's kernel log shows no USB disconnect, reset, new enumeration or I/O
 * error, another guest is still refused the disk after the replaces
 * (confined: the broker's claim, its lock passed with the device's fd and
 * on to every successor; before the replaces too), and `ferry usb detach`
 * through the last successor's QMP connection (device_del, DEVICE_DELETED,
 * chardev-remove) takes it out and releases the claim.
 *   unconfined: ferry-dm --seccomp=off --no-namespaces --user=root, which
 *     opens the devices itself (`ferry usb attach`).
 *   confined: ferry-dm as by default (user ferry, seccomp, namespaces): the
 *     devices come from `ferry usb attach` as the broker's fds, and each
 *     successor must be confined the same (/proc/PID/status) and serve the
 *     usbfs fd it was passed (it cannot open a node; its log says it took
 *     the channel over).
 * In both, FDPASS_SHIM (fdpass-shim.c) is preloaded into ferry-dm and
 * ferry, so that a simulated usbfs fd follows SCM_RIGHTS as a real one does.
 *   qemu-usb-replace VMLINUZ INITRD WORKDIR FERRY_DM FERRY FDPASS_SHIM confined|unconfined
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usbsim.h"

#define BOOT_TIMEOUT_S 900
#define REPLACES 5
#define KEYS 8              /* as in guest-usb-replace.sh */
#define KEY_REPLACES (KEYS / 2 + KEYS / 4)

struct rpl {
    struct event_base *b;
    const char *ferry, *ctl;
    GString *line;
    unsigned replaced, failed;
    long dm_pid;            /* the ferry-dm serving now (after a replace: not our child) */
    struct usbsim_dev *kbd;
    unsigned disk_replaces;
    bool data_ok, no_disconnect, owned, released, gone, keys_ok, done;
    bool confined;
    unsigned not_confined;  /* successors found without the confinement asked for */
    int guest_rc;
};

/* Is pid confined as by default: the user ferry, seccomp filter, no_new_privs? */
static bool check_confined(long pid)
{
    struct passwd *pw = getpwnam("ferry");
    char path[64], *st = NULL, *uid = NULL;
    bool ok;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (!pw || !g_file_get_contents(path, &st, NULL, NULL)) {
        fprintf(stderr, "qemu-usb-replace: cannot read %s\n", path);
        return false;
    }
    uid = g_strdup_printf("\nUid:\t%u\t%u\t", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
    ok = strstr(st, uid) && strstr(st, "\nSeccomp:\t2\n") && strstr(st, "\nNoNewPrivs:\t1\n");
    fprintf(stderr, "qemu-usb-replace: ferry-dm pid %ld is %s\n", pid,
            ok ? "confined (user ferry, Seccomp 2, NoNewPrivs 1)" : "NOT CONFINED as by default");
    g_free(uid);
    g_free(st);
    return ok;
}

/* `ferry dm CTL replace` while the guest reads: its answer names the successor. */
static void replace(struct rpl *r)
{
    const char *argv[] = { r->ferry, "dm", "-s", r->ctl, "replace", NULL };
    char *out = NULL, *err = NULL;
    GError *gerr = NULL;
    int status = -1;
    gint64 t0 = g_get_monotonic_time();
    bool ok = g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, &err, &status,
                           &gerr) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const char *pid = out ? strstr(out, "\"pid\"") : NULL;

    if (ok && pid && strchr(pid, ':'))
        r->dm_pid = strtol(strchr(pid, ':') + 1, NULL, 10);
    fprintf(stderr, "qemu-usb-replace: replace %u: %s in %lld ms%s%s%s\n", r->replaced + 1,
            ok ? "ok" : "FAILED", (long long)(g_get_monotonic_time() - t0) / 1000,
            ok ? "" : ": ", err ? err : "", gerr ? gerr->message : "");
    if (ok)
        r->replaced++;
    else
        r->failed++;
    if (ok && r->confined && !check_confined(r->dm_pid))
        r->not_confined++;
    g_clear_error(&gerr);
    g_free(out);
    g_free(err);
}

/* Key j (HID usage 0x04 + (j - 1) % 8) pressed and released, with replaces around it. */
static void key(struct rpl *r, int j)
{
    if (j % 4 == 0)
        replace(r);
    usbsim_key_tap(r->kbd, (uint8_t)(0x04 + (j - 1) % 8));
    if (j % 2 == 1)
        replace(r);
}

static void on_replace_time(evutil_socket_t fd, short what, void *arg)
{
    replace(arg);
}

/* After the replaces: the disk is still this guest's (the ownership claim's
 * lock went along), and the last successor's QMP connection takes it out. */
static bool owned(struct rpl *r, const char *when)
{
    const char *pargv[] = { r->ferry, "policy", "check", "intruder", "1d50:6102:DISK-RPL",
                            NULL };
    char *pout = NULL;
    int status = -1;
    bool ok = g_spawn_sync(NULL, (char **)pargv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                           &pout, NULL, &status, NULL) && WIFEXITED(status) &&
              WEXITSTATUS(status) == 1;

    fprintf(stderr, "qemu-usb-replace: %s, another guest %s the disk: %s", when,
            ok ? "is refused" : "MAY HAVE", pout ? pout : "\n");
    g_free(pout);
    return ok;
}

/* After the detach: nobody holds the disk (another guest's check shows no owner). */
static bool released(struct rpl *r)
{
    const char *pargv[] = { r->ferry, "policy", "check", "intruder", "1d50:6102:DISK-RPL",
                            NULL };
    char *pout = NULL;
    int status = -1;
    bool ok = g_spawn_sync(NULL, (char **)pargv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                           &pout, NULL, &status, NULL) && pout && !strstr(pout, "owner:");

    fprintf(stderr, "qemu-usb-replace: after the detach, the disk is %s: %s",
            ok ? "nobody's" : "STILL CLAIMED", pout ? pout : "\n");
    g_free(pout);
    return ok;
}

static void detach(struct rpl *r)
{
    const char *dargv[] = { r->ferry, "usb", "detach", r->ctl, "1d50:6102:DISK-RPL", NULL };
    int status = -1;

    /* confined: the broker's claim, held by the successors (its lock went along) */
    r->owned = owned(r, "after the replaces") && (!r->confined || r->owned);
    if (!g_spawn_sync(NULL, (char **)dargv, NULL, 0, NULL, NULL, NULL, NULL, &status, NULL) ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "qemu-usb-replace: ferry usb detach failed\n");
        return;
    }
    r->released = released(r);
}

static void on_line(struct rpl *r, const char *l)
{
    const char *m;

    if ((m = strstr(l, "FERRY-READING "))) {
        int i = atoi(m + 14);
        /* a moment later, with the read's transfers under way */
        struct timeval later = { 0, 150000 };

        if (i % 2 == 0 && r->disk_replaces++ < REPLACES)
            event_base_once(r->b, -1, EV_TIMEOUT, on_replace_time, r, &later);
    } else if ((m = strstr(l, "FERRY-KEY "))) {
        if (atoi(m + 10) == 1 && r->confined) {
            /* the first ferry-dm, before any replace */
            if (!check_confined(r->dm_pid))
                r->not_confined++;
            r->owned = owned(r, "before the replaces");
        }
        key(r, atoi(m + 10));
    } else if (strstr(l, "FERRY-KEYS-OK")) {
        r->keys_ok = true;
    } else if (strstr(l, "FERRY-READY-DETACH")) {
        detach(r);
    } else if (strstr(l, "FERRY-GONE")) {
        r->gone = true;
    } else if (strstr(l, "FERRY-DATA-OK")) {
        r->data_ok = true;
    } else if (strstr(l, "FERRY-NO-DISCONNECT")) {
        r->no_disconnect = true;
    } else if ((m = strstr(l, "FERRY-GUEST-DONE rc="))) {
        r->guest_rc = atoi(m + 20);
        r->done = true;
    }
}

static void on_serial(evutil_socket_t fd, short what, void *arg)
{
    struct rpl *r = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n <= 0) {
        r->done = true;
        return;
    }
    fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            on_line(r, r->line->str);
            g_string_truncate(r->line, 0);
        } else if (r->line->len < 4096) {
            g_string_append_c(r->line, buf[i]);
        }
    }
}

int main(int argc, char **argv)
{
    struct rpl r = { .guest_rc = -1 };
    struct event_config *cfg;
    struct usbsim *sim;
    struct event *ev;
    char qmp[256], ctl[256], conf[256], dmlog[256];
    int logfd = -1;
    char **envp;
    GError *gerr = NULL;
    GPid pid, dpid = 0;
    int out_fd, ok;
    gint64 end;

    if (argc != 8 || (strcmp(argv[7], "confined") && strcmp(argv[7], "unconfined"))) {
        fprintf(stderr, "usage: qemu-usb-replace VMLINUZ INITRD WORKDIR FERRY_DM FERRY "
                "FDPASS_SHIM confined|unconfined\n");
        return 2;
    }
    r.ferry = argv[5];
    r.confined = !strcmp(argv[7], "confined");
    if (r.confined && !getpwnam("ferry")) {
        printf("SKIP: no user 'ferry' (scripts/setup makes it)\n");
        return 77;
    }
    snprintf(dmlog, sizeof(dmlog), "%s/dm.log", argv[3]);
    r.ctl = ctl;
    snprintf(qmp, sizeof(qmp), "%s/qmp.sock", argv[3]);
    snprintf(ctl, sizeof(ctl), "%s/dm.sock", argv[3]);
    snprintf(conf, sizeof(conf), "%s/guest.conf", argv[3]);
    {
        const char *qargv[] = {
            "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
            "-nodefaults", "-serial", "stdio", "-kernel", argv[1], "-initrd", argv[2],
            "-append", "console=ttyS0 quiet panic=-1",
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
            fprintf(stderr, "qemu-usb-replace: cannot start QEMU: %s\n", gerr->message);
            return 1;
        }
    }
    sim = usbsim_new();
    if (!sim) {
        kill(pid, SIGKILL);
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        return 1;
    }
    if (!(r.kbd = usbsim_add(sim, USBSIM_KEYBOARD, "1-1", "KBD-RPL")) ||
        !usbsim_add(sim, USBSIM_STORAGE, "1-2", "DISK-RPL"))
        goto fail;
    r.line = g_string_new(NULL);
    cfg = event_config_new();
    event_config_avoid_method(cfg, "epoll");   /* umockdev nodes are regular files */
    r.b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    for (int i = 0; i < 200 && access(qmp, F_OK) < 0; i++)
        g_usleep(50000);
    {
        /* the simulated keyboard is ours: a rule names it (HID is refused by default),
         * and the host's device-access policy forces past its protection of keyboards */
        char *pol = g_strconcat(conf, ".policy", NULL);
        bool w = g_file_set_contents(conf, "[usb]\npolicy=0x03,0x1d50,-1,-1,1\n", -1, NULL) &&
                 g_file_set_contents(pol, "[rule test-keyboard]\nguests = *\n"
                                          "usb = 0x03,0x1d50,-1,-1,1\nforce = true\n", -1, NULL);

        g_setenv("FERRY_POLICY", pol, TRUE);
        g_free(pol);
        if (!w)
            goto fail;
    }
    {
        /* umockdev's preload answers the usbfs ioctls of fds it saw opened in that
         * process; the shim carries a connection to the simulator along with each fd
         * passed (the broker's to ferry-dm, a ferry-dm's to its successor) */
        const char *dargv[] = { argv[4], "--qmp", qmp, "--control", ctl, "--config", conf,
                                "-v", "--user=root", "--seccomp=off", "--no-namespaces", NULL };
        g_autofree char *shim = g_canonicalize_filename(argv[6], NULL);
        g_autofree char *pre = g_strdup_printf("%s %s", shim, g_getenv("LD_PRELOAD") ?
                                               g_getenv("LD_PRELOAD") : "");

        if (r.confined) {
            dargv[8] = NULL;
            /* the successors run as ferry and read the config again */
            if (chmod(argv[3], 0755) < 0 || chmod(conf, 0644) < 0)
                goto fail;
        }
        g_autofree char *run = g_build_filename(argv[3], "run", NULL);

        /* owner records of our own: other runs on this host do not see or hold ours */
        if (g_mkdir_with_parents(run, 0755) < 0)
            goto fail;
        g_setenv("FERRY_RUN_DIR", run, TRUE);
        g_setenv("LD_PRELOAD", pre, TRUE);      /* ferry-dm and ferry, not QEMU (started) */
        g_setenv("EVENT_NOEPOLL", "1", TRUE);
        logfd = open(dmlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (logfd < 0)
            goto fail;
        if (!g_spawn_async_with_fds(NULL, (char **)dargv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                    NULL, &dpid, -1, logfd, logfd, &gerr)) {
            fprintf(stderr, "qemu-usb-replace: cannot start ferry-dm: %s\n", gerr->message);
            g_clear_error(&gerr);
            goto fail;
        }
        r.dm_pid = dpid;
        for (int i = 0; i < 200 && access(ctl, F_OK) < 0; i++)
            g_usleep(50000);
    }
    {
        const char *devs[] = { "1d50:6101", "1d50:6102:DISK-RPL" };

        for (int i = 0; i < 2; i++) {
            const char *aargv[] = { argv[5], "usb", "attach", ctl, devs[i], NULL };
            int status = -1;

            if (!g_spawn_sync(NULL, (char **)aargv, NULL, 0, NULL, NULL, NULL, NULL, &status,
                              NULL) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "qemu-usb-replace: ferry usb attach %s failed\n", devs[i]);
                goto fail;
            }
        }
    }
    ev = event_new(r.b, out_fd, EV_READ | EV_PERSIST, on_serial, &r);
    event_add(ev, NULL);
    end = g_get_monotonic_time() + (gint64)BOOT_TIMEOUT_S * 1000000;
    while (!r.done && g_get_monotonic_time() < end) {
        event_base_loop(r.b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (dpid && waitpid(dpid, NULL, WNOHANG) == dpid)
            dpid = 0;           /* the first ferry-dm, replaced */
        g_usleep(300);
    }
    event_free(ev);
    if (!r.done)
        fprintf(stderr, "qemu-usb-replace: guest did not finish within %d s\n", BOOT_TIMEOUT_S);
    fprintf(stderr, "qemu-usb-replace: replaces=%u failed=%u data=%d no_disconnect=%d "
            "owned=%d released=%d detached=%d keys=%d guest_rc=%d\n", r.replaced, r.failed,
            r.data_ok, r.no_disconnect, r.owned, r.released, r.gone, r.keys_ok, r.guest_rc);
    ok = r.replaced == REPLACES + KEY_REPLACES && !r.failed && r.data_ok && r.no_disconnect &&
         r.guest_rc == 0;
    ok = ok && r.owned && r.released && r.gone && r.keys_ok;
    {
        /* every successor took both channels over with the fds it was passed */
        g_autofree char *log = NULL;
        unsigned took = 0;

        if (g_file_get_contents(dmlog, &log, NULL, NULL))
            for (const char *p = log; (p = strstr(p, "taken over: connected to")); p++)
                took++;
        fprintf(stderr, "qemu-usb-replace: %s: %u channels taken over by %u successors, %u "
                "successors not confined\n", argv[7], took, r.replaced, r.not_confined);
        if (took != 2 * r.replaced || r.not_confined) {
            fprintf(stderr, "qemu-usb-replace: expected each successor to take both channels "
                    "(keyboard, disk) over, every successor confined as asked\n");
            ok = 0;
        }
        if (!ok && log)
            fprintf(stderr, "--- ferry-dm's log\n%s--- end of ferry-dm's log\n", log);
    }
    if (kill((pid_t)r.dm_pid, 0) != 0) {
        fprintf(stderr, "qemu-usb-replace: the serving ferry-dm (pid %ld) died\n", r.dm_pid);
        ok = 0;
    }
    goto done;
fail:
    ok = 0;
done:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* QEMU has gone: the serving ferry-dm follows by itself (companion mode) */
    for (int i = 0; i < 100 && r.dm_pid > 0 && kill((pid_t)r.dm_pid, 0) == 0; i++) {
        if (dpid && waitpid(dpid, NULL, WNOHANG) == dpid)
            dpid = 0;
        g_usleep(100000);
    }
    if (r.dm_pid > 0 && kill((pid_t)r.dm_pid, 0) == 0 &&
        !(dpid && waitpid(dpid, NULL, WNOHANG) == dpid)) {
        fprintf(stderr, "qemu-usb-replace: ferry-dm did not exit after QEMU\n");
        kill((pid_t)r.dm_pid, SIGKILL);
        ok = 0;
    }
    if (dpid)
        waitpid(dpid, NULL, 0);
    if (r.b)
        event_base_free(r.b);
    usbsim_free(sim);
    if (r.line)
        g_string_free(r.line, TRUE);
    unlink(qmp);
    unlink(ctl);
    unlink(conf);
    unlink(dmlog);
    if (logfd >= 0)
        close(logfd);
    if (getenv("FERRY_POLICY"))
        unlink(getenv("FERRY_POLICY"));
    return ok ? 0 : 1;
}
