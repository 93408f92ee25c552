// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `ferry libvirt-hook` (libvirt's qemu hook, docs/libvirt.md) and the
 * domain side it shares with ferry usb attach DOMAIN (cli/usb-libvirt.c):
 * the domain's run folder, the user its QEMU runs as (the DAC seclabel of
 * its XML), the domain's ferry-dm (started, found, stopped), the listening
 * sockets handed to QEMU and the <redirdev> XML that points at them, and
 * Ferry's entries in the domain's metadata.  Nothing here calls libvirt:
 * the hook must not, and gets everything from the domain XML on stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>

#include "cli/cmd.h"
#include "cli/libvirt-internal.h"
#include "cli/usb-ctl.h"
#include "common/log-glib.h"
#include "policy/policy.h"
#include "usb/ferry-usb.h"

/* ---- the domain's run folder ------------------------------------------------ */

bool usb_libvirt_domain_name_ok(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
           strlen(name) < 64;
}

char *usb_libvirt_domain_dir(const char *name)
{
    return g_build_filename(usb_run_dir(), "libvirt", name, NULL);
}

/* ---- the user QEMU runs as ----------------------------------------------- */

/* "+64055:+64055", "libvirt-qemu:kvm" -> uid, gid.  0 or -EINVAL. */
static int parse_label(const char *label, uid_t *uid, gid_t *gid)
{
    g_auto(GStrv) ug = g_strsplit(label, ":", 2);
    guint64 n;

    if (!ug[0] || !ug[1])
        return -EINVAL;
    if (ug[0][0] == '+' && g_ascii_string_to_unsigned(ug[0] + 1, 10, 0, G_MAXUINT32, &n, NULL)) {
        *uid = (uid_t)n;
    } else {
        struct passwd *pw = getpwnam(ug[0]);
        if (!pw)
            return -EINVAL;
        *uid = pw->pw_uid;
    }
    if (ug[1][0] == '+' && g_ascii_string_to_unsigned(ug[1] + 1, 10, 0, G_MAXUINT32, &n, NULL)) {
        *gid = (gid_t)n;
    } else {
        struct group *gr = getgrnam(ug[1]);
        if (!gr)
            return -EINVAL;
        *gid = gr->gr_gid;
    }
    return 0;
}

/* The "user = " / "group = " of qemu.conf, or NULL. */
static char *qemu_conf_value(const char *key)
{
    g_autofree char *text = NULL;
    g_autofree char *pat = g_strdup_printf("^\\s*%s\\s*=\\s*\"([^\"]*)\"", key);
    g_autoptr(GRegex) re = g_regex_new(pat, G_REGEX_MULTILINE, 0, NULL);
    g_autoptr(GMatchInfo) m = NULL;

    if (!g_file_get_contents("/etc/libvirt/qemu.conf", &text, NULL, NULL))
        return NULL;
    if (re && g_regex_match(re, text, 0, &m))
        return g_match_info_fetch(m, 1);
    return NULL;
}

/*
 * Who the domain's QEMU runs as: the DAC label of its live XML
 * (<seclabel type='dynamic' model='dac'><label>+UID:+GID</label>), else
 * qemu.conf's user and group, else Debian's default (libvirt-qemu).
 */
void usb_libvirt_qemu_owner(const char *xml, uid_t *uid, gid_t *gid, char *why, size_t len)
{
    g_autoptr(GRegex) re = g_regex_new("<seclabel[^>]*model=['\"]dac['\"][^>]*>(.*?)</seclabel>",
                                       G_REGEX_DOTALL, 0, NULL);
    g_autoptr(GRegex) lre = g_regex_new("<label>([^<]*)</label>", 0, 0, NULL);
    g_autoptr(GMatchInfo) m = NULL;
    g_autofree char *user = NULL, *group = NULL, *ug = NULL;

    if (xml && g_regex_match(re, xml, 0, &m)) {
        g_autofree char *body = g_match_info_fetch(m, 1);
        g_autoptr(GMatchInfo) lm = NULL;

        if (g_regex_match(lre, body, 0, &lm)) {
            g_autofree char *label = g_match_info_fetch(lm, 1);

            if (parse_label(label, uid, gid) == 0) {
                snprintf(why, len, "the domain's DAC label %s", label);
                return;
            }
        }
    }
    user = qemu_conf_value("user");
    group = qemu_conf_value("group");
    ug = g_strdup_printf("%s:%s", user ? user : "libvirt-qemu",
                         group ? group : "libvirt-qemu");
    if (parse_label(ug, uid, gid) == 0) {
        snprintf(why, len, "%s %s", user || group ? "qemu.conf's" : "the default", ug);
        return;
    }
    *uid = 0;
    *gid = 0;
    snprintf(why, len, "root (no DAC label, no user %s)", ug);
}

/* ---- the domain's ferry-dm ------------------------------------------------ */

/* The run folder, mode 0711 up from the base: QEMU (another user) must reach
 * the sockets in it, and may list nothing. */
static int make_dirs(const char *dir)
{
    g_autofree char *lv = g_build_filename(usb_run_dir(), "libvirt", NULL);
    const char *dirs[] = { usb_run_dir(), lv, dir };

    for (unsigned i = 0; i < G_N_ELEMENTS(dirs); i++) {
        struct stat st;

        if (mkdir(dirs[i], 0711) < 0 && errno != EEXIST)
            return -errno;
        if (lstat(dirs[i], &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if ((st.st_mode & 0711) != 0711 && chmod(dirs[i], st.st_mode | 0711) < 0)
            return -errno;
    }
    return 0;
}

static bool dm_answers(const char *sock)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/*
 * The domain's ferry-dm, started now if it does not answer on dir/dm.sock:
 * ferry-dm --libvirt NAME, in its own session, output to dir/dm.log, pid in
 * dir/dm.pid.  $FERRY_DM_EXTRA_ARGS (space-separated) are added to its
 * arguments (--seccomp=off --no-namespaces for debugging).
 */
int usb_libvirt_dm_ensure(const char *name, const char *dir, const char *who)
{
    g_autofree char *sock = g_build_filename(dir, "dm.sock", NULL);
    g_autofree char *log = g_build_filename(dir, "dm.log", NULL);
    g_autofree char *pidf = g_build_filename(dir, "dm.pid", NULL);
    g_autofree char *dm = NULL, *pids = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_auto(GStrv) extra = NULL;
    const char *e = getenv("FERRY_DM_EXTRA_ARGS");
    gint64 end;
    pid_t pid;
    int r;

    if (dm_answers(sock))
        return 0;
    if ((r = make_dirs(dir)) < 0) {
        fprintf(stderr, "%s: cannot make the run folder %s: %s\n", who, dir, g_strerror(-r));
        return r;
    }
    dm = cmd_find_program("FERRY_DM", "devmodel", "ferry-dm");
    if (!dm) {
        fprintf(stderr, "%s: ferry-dm not found (beside ferry, in PATH, or $FERRY_DM)\n", who);
        return -ENOENT;
    }
    g_ptr_array_add(args, dm);
    g_ptr_array_add(args, "--libvirt");
    g_ptr_array_add(args, (char *)name);
    g_ptr_array_add(args, "--name");
    g_ptr_array_add(args, (char *)name);
    g_ptr_array_add(args, "--control");
    g_ptr_array_add(args, sock);
    if (e && *e) {
        extra = g_strsplit_set(e, " \t", -1);
        for (char **x = extra; *x; x++)
            if (**x)
                g_ptr_array_add(args, *x);
    }
    g_ptr_array_add(args, NULL);
    /* a stale socket of a ferry-dm that has gone */
    {
        struct stat st;
        if (lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(sock);
    }
    pid = fork();
    if (pid < 0) {
        r = -errno;
        fprintf(stderr, "%s: cannot start ferry-dm: %s\n", who, g_strerror(-r));
        return r;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        setsid();
        /* libvirt waits for its hook's output to end: ferry-dm keeps none of it */
        if (nul < 0 || out < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        execv(dm, (char **)args->pdata);
        fprintf(stderr, "cannot run %s: %s\n", dm, g_strerror(errno));
        _exit(127);
    }
    pids = g_strdup_printf("%d\n", (int)pid);
    (void)g_file_set_contents(pidf, pids, -1, NULL);
    end = g_get_monotonic_time() + FERRY_LIBVIRT_DM_START_MS * 1000;
    while (!dm_answers(sock)) {
        int status;

        if (waitpid(pid, &status, WNOHANG) == pid) {
            g_autofree char *tail = NULL;

            g_file_get_contents(log, &tail, NULL, NULL);
            fprintf(stderr, "%s: ferry-dm for domain %s exited (status %d) before it "
                    "answered; its log %s:\n%s\n", who, name,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), log,
                    tail ? tail : "");
            unlink(pidf);
            return -ECHILD;
        }
        if (g_get_monotonic_time() > end) {
            fprintf(stderr, "%s: ferry-dm for domain %s did not answer on %s within %d ms "
                    "(log: %s)\n", who, name, sock, FERRY_LIBVIRT_DM_START_MS, log);
            kill(pid, SIGTERM);
            return -ETIMEDOUT;
        }
        g_usleep(20000);
    }
    return 0;
}

/* Running, not a zombie (an orphan whose reaper is slow still counts as gone). */
static bool pid_alive(pid_t pid)
{
    g_autofree char *statf = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *st = NULL;
    const char *p;

    if (kill(pid, 0) < 0)
        return false;
    if (!g_file_get_contents(statf, &st, NULL, NULL) || !(p = strrchr(st, ')')))
        return true;
    return p[1] != ' ' || (p[2] != 'Z' && p[2] != 'X');
}

/* Stop the domain's ferry-dm (its pid file says which) and remove its sockets. */
static void dm_stop(const char *name, const char *dir)
{
    g_autofree char *pidf = g_build_filename(dir, "dm.pid", NULL);
    g_autofree char *pids = NULL;
    GDir *d;
    gint64 pid;

    if (g_file_get_contents(pidf, &pids, NULL, NULL) &&
        (pid = g_ascii_strtoll(pids, NULL, 10)) > 1) {
        g_autofree char *cmdf = g_strdup_printf("/proc/%d/cmdline", (int)pid);
        g_autofree char *cmd = NULL;
        gsize len = 0;
        bool ours = false;

        /* only the ferry-dm --libvirt NAME it names, not a recycled pid */
        if (g_file_get_contents(cmdf, &cmd, &len, NULL))
            for (gsize i = 0; i + 1 < len; i += strlen(cmd + i) + 1)
                if (!strcmp(cmd + i, "--libvirt") && i + 10 < len && !strcmp(cmd + i + 10, name))
                    ours = true;
        if (ours) {
            kill((pid_t)pid, SIGTERM);
            for (int i = 0; i < 250 && pid_alive((pid_t)pid); i++) {
                (void)waitpid((pid_t)pid, NULL, WNOHANG);
                g_usleep(20000);
            }
            if (pid_alive((pid_t)pid))
                kill((pid_t)pid, SIGKILL);
        }
    }
    unlink(pidf);
    d = g_dir_open(dir, 0, NULL);
    for (const char *f; d && (f = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(dir, f, NULL);
        struct stat st;

        if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(p);
        else if (g_str_has_suffix(f, ".follow") && g_str_has_prefix(f, "ua-ferry-")) {
            g_autofree char *alias = g_strndup(f, strlen(f) - strlen(".follow"));
            usb_libvirt_follow_stop(dir, alias);
        }
    }
    if (d)
        g_dir_close(d);
}

/* ---- sockets for QEMU ------------------------------------------------------ */

/* "ua-ferry-" and the identity in libvirt's alias alphabet. */
void usb_libvirt_alias_of(const char *ident, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "ua-ferry-");

    for (const char *p = ident; *p && n + 1 < len && n < 64; p++)
        buf[n++] = g_ascii_isalnum(*p) || *p == '_' ? *p : '-';
    buf[n] = 0;
}

/*
 * Listen on path for the domain's QEMU: a stale socket (nothing answers) is
 * replaced, anything else refused; owner uid:gid, mode 0660.  The fd, or
 * -errno after printing why.
 */
static int listen_for_qemu(const char *path, uid_t uid, gid_t gid, const char *who)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, r;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "%s: socket path %s is too long for a unix socket\n", who, path);
        return -ENAMETOOLONG;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "%s: %s exists and is not a socket: not replacing it\n", who, path);
            return -EEXIST;
        }
        if (dm_answers(path)) {
            fprintf(stderr, "%s: %s is in use (someone listens on it)\n", who, path);
            return -EBUSY;
        }
        unlink(path);
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
        chown(path, uid, gid) < 0 || chmod(path, 0660) < 0) {
        r = -errno;
        fprintf(stderr, "%s: cannot listen on %s for QEMU: %s\n", who, path, g_strerror(-r));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return r;
    }
    return fd;
}

/*
 * Serve device (a spec) on dir/ALIAS.sock through the domain's ferry-dm
 * (connected as c): listening socket made here, then usb-listen and
 * usb-attach (with the usbfs fd when ferry-dm is confined, or pass_fd).
 */
int usb_libvirt_serve_device(struct ctl *c, const char *dir, const char *alias,
                             const char *device, const struct ferry_usb_devinfo *d, uid_t uid,
                             gid_t gid, bool pass_fd, const char *who)
{
    g_autofree char *path = g_strdup_printf("%s/%s.sock", dir, alias);
    g_autofree char *a1 = NULL, *a2 = NULL;
    json_t *q = NULL;
    int lfd, dfd = -1, r;

    if (!pass_fd) {
        if (ctl_cmd(c, "query-usb", NULL, -1, &q) < 0)
            return -EIO;
        pass_fd = json_is_true(json_object_get(q, "confined"));
        json_decref(q);
    }
    if (pass_fd) {
        char node[64];

        if (!d) {
            fprintf(stderr, "%s: %s is not plugged in: a confined ferry-dm needs its fd\n", who,
                    device);
            return -ENODEV;
        }
        snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d->bus, d->addr);
        dfd = open(node, O_RDWR | O_CLOEXEC);
        if (dfd < 0) {
            r = -errno;
            fprintf(stderr, "%s: cannot open %s: %s (the broker needs root)\n", who, node,
                    g_strerror(-r));
            return r;
        }
    }
    lfd = listen_for_qemu(path, uid, gid, who);
    if (lfd < 0) {
        if (dfd >= 0)
            close(dfd);
        return lfd;
    }
    a1 = ctl_json_args("alias", alias, NULL, NULL, false);
    r = ctl_cmd(c, "usb-listen", a1, lfd, NULL);
    close(lfd);
    if (r == 0) {
        a2 = ctl_json_args("device", device, "alias", alias, dfd >= 0);
        r = ctl_cmd(c, "usb-attach", a2, dfd, NULL);
        if (r < 0) {
            g_autofree char *a3 = ctl_json_args("alias", alias, NULL, NULL, false);
            (void)ctl_cmd(c, "usb-detach", a3, -1, NULL);
        }
    }
    if (dfd >= 0)
        close(dfd);
    if (r < 0) {
        unlink(path);
        return -EIO;
    }
    if (dfd >= 0) {
        /* a confined ferry-dm sees no hotplug: a broker follows the device for it */
        g_autofree char *domain = g_path_get_basename(dir);
        char ident[200];

        usb_identity(d, ident, sizeof(ident));
        (void)usb_libvirt_follow_start(domain, dir, alias, ident, who);
    }
    return 0;
}

char *usb_libvirt_redirdev_xml(const char *dir, const char *alias)
{
    g_autofree char *path = g_strdup_printf("%s/%s.sock", dir, alias);
    g_autofree char *p = g_markup_escape_text(path, -1);

    return g_strdup_printf("<redirdev bus='usb' type='unix'>"
                           "<source mode='connect' path='%s'>"
                           "<reconnect enabled='yes' timeout='%d'/>"
                           "</source>"
                           "<alias name='%s'/>"
                           "</redirdev>", p, FERRY_LIBVIRT_RECONNECT_S, alias);
}

bool usb_libvirt_xml_has_alias(const char *xml, const char *alias)
{
    g_autofree char *a = g_strdup_printf("<alias name='%s'/>", alias);
    g_autofree char *b = g_strdup_printf("<alias name=\"%s\"/>", alias);

    return xml && (strstr(xml, a) || strstr(xml, b));
}

/* ---- persistent devices: the domain's metadata ----------------------------- */

/* alias -> spec of the <device alias=.. spec=../> entries in text (metadata or a
 * whole domain XML, where they carry a namespace prefix). */
GHashTable *usb_libvirt_meta_parse(const char *text)
{
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GRegex) re = g_regex_new("<(?:[A-Za-z0-9_]+:)?device\\s+alias=['\"](ua-ferry-"
                                       "[A-Za-z0-9_-]+)['\"]\\s+spec=['\"]([^'\"<>&]+)['\"]",
                                       0, 0, NULL);
    g_autoptr(GMatchInfo) m = NULL;

    if (!text || !re)
        return t;
    g_regex_match(re, text, 0, &m);
    while (g_match_info_matches(m)) {
        g_hash_table_insert(t, g_match_info_fetch(m, 1), g_match_info_fetch(m, 2));
        g_match_info_next(m, NULL);
    }
    return t;
}

/* ---- the host's device, the domain's ferry-dm ----------------------------- */

/* The host's device for spec: 0 with *d, or -errno after printing why. */
int usb_libvirt_find_host_device(const char *device, struct ferry_usb_devinfo *d, const char *who)
{
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_spec spec;
    char err[FERRY_USB_ERR_MAX];
    int r;

    if (usb_spec_parse(device, &spec) < 0) {
        fprintf(stderr, "%s: '%s': expected VID:PID, VID:PID:SERIAL, a port path (1-2.3) or "
                "BUS.ADDR\n", who, device);
        r = -EINVAL;
    } else if (!b || (r = usb_host_new(b, true, &hops, NULL, &h)) < 0) {
        fprintf(stderr, "%s: cannot start libusb\n", who);
        r = -EIO;
    } else if ((r = usb_host_find(h, &spec, d, err, sizeof(err))) < 0) {
        fprintf(stderr, "%s: %s\n", who, err);
    }
    usb_host_free(h);
    if (b)
        event_base_free(b);
    return r;
}

/* The device-access policy (policy/policy.h) for domain and d, asked by the
 * root broker before anything else happens (ferry-dm asks again). */
int usb_libvirt_policy_check(const char *domain, const char *device,
                             const struct ferry_usb_devinfo *d, const char *who)
{
    struct ferry_policy *p = NULL;
    struct ferry_policy_verdict v;
    int r;

    if ((r = cli_policy_load(NULL, &p)) < 0)
        return r;
    r = policy_check_usb(p, domain, d, &v);
    if (r < 0)
        fprintf(stderr, "%s: %s (%04x:%04x at %s) for libvirt domain %s: %s\n", who, device,
                d->vid, d->pid, d->port[0] ? d->port : "?", domain, v.reason);
    policy_free(p);
    return r;
}

int usb_libvirt_dm_connect(const char *dir, struct ctl *c)
{
    g_autofree char *sock = g_build_filename(dir, "dm.sock", NULL);

    c->fd = -1;
    return ctl_open(sock, c);
}

/* ---- the hook ----------------------------------------------------------------- */

/*
 * ferry libvirt-hook DOMAIN OPERATION SUB-OPERATION EXTRA, the domain XML on
 * stdin: libvirt's qemu hook (/etc/libvirt/hooks/qemu.d/ferry runs it).
 *   prepare: (before QEMU starts) the persistent devices of the domain's
 *            metadata whose redirdev the domain has are served again
 *            (ferry-dm started if needed): QEMU 7.2 gives up at start-up on a
 *            unix chardev nobody listens on, reconnect or not.
 *   stopped, release: the domain's ferry-dm is stopped, its sockets removed.
 * Anything else: nothing.  A hook must not call libvirt back: everything
 * comes from the XML.  Exit 0 unless the domain should not start.
 */
int cmd_libvirt_hook(int argc, char **argv)
{
    const char *who = "ferry libvirt-hook";
    const char *name, *op;
    g_autofree char *dir = NULL;
    GString *xml = g_string_new(NULL);
    char buf[4096];
    size_t n;

    if (argc < 3) {
        fprintf(stderr, "usage: ferry libvirt-hook DOMAIN OPERATION [SUB-OP EXTRA] < DOMAIN-XML "
                "(libvirt's qemu hook)\n");
        g_string_free(xml, TRUE);
        return FERRY_EXIT_USAGE;
    }
    name = argv[1];
    op = argv[2];
    if (!usb_libvirt_domain_name_ok(name)) {
        g_string_free(xml, TRUE);
        return FERRY_EXIT_OK;       /* not one Ferry can serve: none of ours */
    }
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 && xml->len < (16u << 20))
        g_string_append_len(xml, buf, n);
    dir = usb_libvirt_domain_dir(name);
    if (!strcmp(op, "stopped") || !strcmp(op, "release")) {
        dm_stop(name, dir);
    } else if (!strcmp(op, "prepare")) {
        GHashTable *t = usb_libvirt_meta_parse(xml->str);
        GHashTableIter it;
        gpointer k, v;
        struct ctl c = { .fd = -1 };
        char owner[200];
        uid_t uid;
        gid_t gid;
        bool connected = false;

        usb_libvirt_qemu_owner(xml->str, &uid, &gid, owner, sizeof(owner));
        g_hash_table_iter_init(&it, t);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            struct ferry_usb_devinfo d, *dp = NULL;

            if (!usb_libvirt_xml_has_alias(xml->str, k))
                continue;       /* taken out of the domain some other way */
            if (!connected && (usb_libvirt_dm_ensure(name, dir, who) < 0 ||
                               usb_libvirt_dm_connect(dir, &c) < 0))
                break;
            connected = true;
            /* a confined ferry-dm needs the fd: the device, if it is here */
            if (usb_libvirt_find_host_device(v, &d, who) == 0) {
                if (usb_libvirt_policy_check(name, v, &d, who) < 0)
                    continue;
                dp = &d;
            }
            if (usb_libvirt_serve_device(&c, dir, k, v, dp, uid, gid, false, who) < 0)
                fprintf(stderr, "%s: domain %s: %s (%s) not served\n", who, name,
                        (char *)v, (char *)k);
        }
        ctl_close(&c);
        g_hash_table_destroy(t);
    }
    g_string_free(xml, TRUE);
    return FERRY_EXIT_OK;
}
