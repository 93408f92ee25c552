// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry usb share DEVICE --listen ADDR [options]: serve one host USB device
 * to one usbredir client at a time (QEMU's usb-redir on a socket chardev),
 * safe by default:
 *   - TLS with X.509 client certificates (--tls-creds DIR, QEMU's
 *     tls-creds-x509 layout) or pre-shared keys (--tls-psk FILE, QEMU's
 *     keys.psk); plain TCP only on loopback or a unix socket, unless
 *     --insecure (a warning says what that means); a wildcard address warns;
 *   - confined like ferry-dm once the device node and the listening socket
 *     are open: user ferry, no capabilities, no filesystem, no network
 *     namespace, a seccomp allow-list (sandbox/); a small unconfined parent
 *     stays to remove a unix socket at the end and to report how the
 *     confined server ended;
 *   - one client at a time, the device taken from its host driver only after
 *     the client's TLS handshake and usbredir hello (usb/share.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <glib.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "common/log-glib.h"
#include "companion/dm-usb.h"
#include "policy/owner.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "usb/ferry-usb.h"

/*
 * What a share needs beyond the base list and USB redirection's.  GnuTLS
 * needs nothing more: the handshakes, records and alerts of usb-share-tls
 * (X.509 and PSK, TLS 1.3, QEMU 7.2 as the client) run in kill mode with
 * these lists; its randomness is getrandom and its clock clock_gettime,
 * both in the base list, and its configuration is read before confinement.
 */
FERRY_SYSCALL_LIST_NONE(share_syscalls, "usb-share",
    "ferry usb share: nothing beyond USB redirection's list (which answers access() "
    "without running it)");

/* The guest name the device-access policy judges a share for. */
#define FERRY_SHARE_POLICY_GUEST "share"

struct share_opts {
    const char *device, *listen, *tls_creds, *tls_psk, *user, *socket_owner, *policy;
    bool insecure, no_client_cert, no_namespaces;
    unsigned handshake_s, idle_s;
    int socket_mode;
    enum ferry_seccomp_mode seccomp;
};

static void share_usage(FILE *f)
{
    fprintf(f,
            "usage: ferry usb share DEVICE --listen ADDR [--tls-creds DIR | --tls-psk FILE |\n"
            "         --insecure] [--no-client-cert] [--handshake-timeout S] [--idle-timeout S]\n"
            "         [--socket-owner USER[:GROUP]] [--socket-mode OCTAL] [--user NAME]\n"
            "         [--seccomp=kill|log|off] [--no-namespaces] [--policy FILE] [--verbose]\n"
            "ADDR: HOST:PORT, [IPV6]:PORT or unix:PATH.  Plain TCP only on loopback unless\n"
            "--insecure; see docs/usb.md for TLS set-up with certtool.  The device-access\n"
            "policy (--policy FILE, else $FERRY_POLICY or /etc/ferry/policy.conf) judges the\n"
            "device for the guest named 'share' (docs/policy.md).\n");
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* 0, -1 after --help, or FERRY_EXIT_USAGE after a message. */
static int share_parse(int argc, char **argv, struct share_opts *o)
{
    o->handshake_s = 10;
    o->socket_mode = 0600;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;

        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            share_usage(stdout);
            return -1;
        } else if (!strcmp(a, "--insecure"))
            o->insecure = true, takes = false;
        else if (!strcmp(a, "--no-client-cert"))
            o->no_client_cert = true, takes = false;
        else if (!strcmp(a, "--no-namespaces"))
            o->no_namespaces = true, takes = false;
        else if (!strncmp(a, "--seccomp=", 10)) {
            takes = false;
            if (sandbox_parse_mode(a + 10, &o->seccomp) < 0) {
                fprintf(stderr, "ferry usb share: --seccomp=%s: expected kill, log or off\n",
                        a + 10);
                return FERRY_EXIT_USAGE;
            }
        } else if (!strncmp(a, "--user=", 7))
            o->user = a + 7, takes = false;
        else if (a[0] != '-' && !o->device)
            o->device = a, takes = false;
        else if (!v) {
            fprintf(stderr, "ferry usb share: %s: unknown option or missing value\n", a);
            share_usage(stderr);
            return FERRY_EXIT_USAGE;
        } else if (!strcmp(a, "--listen"))
            o->listen = v;
        else if (!strcmp(a, "--tls-creds"))
            o->tls_creds = v;
        else if (!strcmp(a, "--tls-psk"))
            o->tls_psk = v;
        else if (!strcmp(a, "--policy"))
            o->policy = v;
        else if (!strcmp(a, "--user"))
            o->user = v;
        else if (!strcmp(a, "--socket-owner"))
            o->socket_owner = v;
        else if (!strcmp(a, "--socket-mode")) {
            char *end;
            long m = strtol(v, &end, 8);

            if (!*v || *end || m < 0 || m > 0777) {
                fprintf(stderr, "ferry usb share: --socket-mode %s: expected octal "
                        "permissions such as 0660\n", v);
                return FERRY_EXIT_USAGE;
            }
            o->socket_mode = (int)m;
        } else if (!strcmp(a, "--handshake-timeout") || !strcmp(a, "--idle-timeout")) {
            unsigned *dst = a[2] == 'h' ? &o->handshake_s : &o->idle_s;

            if (!parse_uint(v, 86400, dst) || (a[2] == 'h' && !*dst)) {
                fprintf(stderr, "ferry usb share: %s %s: expected seconds, %s to 86400\n", a,
                        v, a[2] == 'h' ? "1" : "0 (none)");
                return FERRY_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "ferry usb share: %s: unknown option\n", a);
            share_usage(stderr);
            return FERRY_EXIT_USAGE;
        }
        if (takes)
            i++;
    }
    if (!o->device || !o->listen) {
        share_usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (o->tls_creds && o->tls_psk) {
        fprintf(stderr, "ferry usb share: --tls-creds and --tls-psk: one or the other\n");
        return FERRY_EXIT_USAGE;
    }
    if (o->insecure && (o->tls_creds || o->tls_psk)) {
        fprintf(stderr, "ferry usb share: --insecure with TLS credentials: drop one\n");
        return FERRY_EXIT_USAGE;
    }
    return 0;
}

/* Where the socket is bound: loopback, wildcard, or another address. */
enum bound { BOUND_UNIX, BOUND_LOOPBACK, BOUND_WILDCARD, BOUND_OTHER };

static enum bound bound_kind(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return BOUND_OTHER;
    if (ss.ss_family == AF_UNIX)
        return BOUND_UNIX;
    if (ss.ss_family == AF_INET) {
        uint32_t a = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);

        return a == INADDR_ANY ? BOUND_WILDCARD : (a >> 24) == 127 ? BOUND_LOOPBACK : BOUND_OTHER;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

        if (IN6_IS_ADDR_UNSPECIFIED(a))
            return BOUND_WILDCARD;
        if (IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127))
            return BOUND_LOOPBACK;
    }
    return BOUND_OTHER;
}

/* --socket-owner USER[:GROUP] and --socket-mode on a unix socket. */
static int unix_socket_perms(const char *path, const struct share_opts *o)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;

    if (o->socket_owner) {
        g_autofree char *user = g_strdup(o->socket_owner);
        char *group = strchr(user, ':');
        struct passwd *pw;

        if (group)
            *group++ = 0;
        if (*user) {
            pw = getpwnam(user);
            if (!pw) {
                fprintf(stderr, "ferry usb share: --socket-owner %s: no user %s\n",
                        o->socket_owner, user);
                return -ENOENT;
            }
            uid = pw->pw_uid;
            gid = pw->pw_gid;
        }
        if (group && *group) {
            struct group *gr = getgrnam(group);

            if (!gr) {
                fprintf(stderr, "ferry usb share: --socket-owner %s: no group %s\n",
                        o->socket_owner, group);
                return -ENOENT;
            }
            gid = gr->gr_gid;
        }
        if (chown(path, uid, gid) < 0) {
            fprintf(stderr, "ferry usb share: %s: chown to %s: %s\n", path, o->socket_owner,
                    g_strerror(errno));
            return -errno;
        }
    }
    if (chmod(path, (mode_t)o->socket_mode) < 0) {
        fprintf(stderr, "ferry usb share: %s: chmod %o: %s\n", path, o->socket_mode,
                g_strerror(errno));
        return -errno;
    }
    return 0;
}

/* Find the device and open its usbfs node (root, or a user udev lets). */
static int open_device(const char *device, const char *policy_file, char *ident,
                       size_t identlen, char *err, size_t errlen)
{
    struct ferry_policy *p = NULL;
    struct ferry_policy_verdict v;
    struct event_base *b = event_base_new();
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_policy *pol = NULL;
    struct ferry_usb_spec spec;
    struct ferry_usb_devinfo d;
    char node[64], why[FERRY_USB_ERR_MAX];
    int fd = -EINVAL;

    if (usb_spec_parse(device, &spec) < 0) {
        snprintf(err, errlen, "'%s': expected VID:PID, VID:PID:SERIAL, a port path (1-2.3) "
                 "or BUS.ADDR", device);
        goto out;
    }
    if (!b || usb_host_new(b, true, &hops, NULL, &h) < 0) {
        snprintf(err, errlen, "cannot start libusb");
        fd = -EIO;
        goto out;
    }
    fd = usb_host_find(h, &spec, &d, err, errlen);
    if (fd < 0)
        goto out;
    if (usb_policy_new(NULL, &pol, why, sizeof(why)) == 0 &&
        usb_policy_check(pol, &d, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%.40s is refused by the USB policy: %.150s", device, why);
        fd = -EPERM;
        goto out;
    }
    /* the host's device-access policy, as for any guest (a forced allow is
     * logged by the policy); a broken policy file allows nothing */
    if (cli_policy_load(policy_file, &p) < 0) {
        snprintf(err, errlen, "%.40s: no device-access policy (see the line above)", device);
        fd = -EPERM;
        goto out;
    }
    if (policy_check_usb(p, FERRY_SHARE_POLICY_GUEST, &d, &v) < 0) {
        g_autofree char *m = g_strdup_printf("%.40s (%04x:%04x at %s) for guest %s: %s", device,
                                             d.vid, d.pid, d.port[0] ? d.port : "?",
                                             FERRY_SHARE_POLICY_GUEST, v.reason);

        g_strlcpy(err, m, errlen);   /* the verdict can be long: it names file:line */
        fd = -EPERM;
        goto out;
    }
    usb_identity(&d, ident, identlen);
    snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", d.bus, d.addr);
    fd = open(node, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fd = -errno;
        snprintf(err, errlen, "cannot open %s (%s): %s%s", node, device, g_strerror(-fd),
                 fd == -EACCES || fd == -EPERM ?
                 ": usbfs nodes are root's; run `ferry usb share` as root (it opens the "
                 "device, then drops to the ferry user)" : "");
    }
out:
    policy_free(p);
    usb_policy_free(pol);
    usb_host_free(h);
    if (b)
        event_base_free(b);
    return fd;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

struct served {
    struct event_base *b;
    bool lost;
};

static void on_device_lost(void *opaque)
{
    struct served *sv = opaque;

    ferry_log(FERRY_LOG_ERROR, NULL, "usb share: the device is gone; a confined share cannot "
              "open it again: share ends (start it again once the device is back)");
    sv->lost = true;
    event_base_loopbreak(sv->b);
}

/* The confined server: never returns. */
static _Noreturn void serve(const struct share_opts *o, int lfd, int usbfs_fd,
                            const char *ident, struct ferry_usb_tls *tls)
{
    const struct ferry_syscall_list *lists[4];
    size_t n = 0;
    struct ferry_sandbox_config sbx = { 0 };
    struct served sv = { 0 };
    struct ferry_usb_host_ops hops = { .log = ferry_log_glib };
    struct ferry_usb_share_ops sops = { .log = ferry_log_glib, .device_lost = on_device_lost };
    struct ferry_usb_share_config cfg = {
        .name = ident, .listen_fd = lfd, .usbfs_fd = usbfs_fd, .tls = tls,
        .handshake_ms = o->handshake_s * 1000, .idle_ms = o->idle_s * 1000,
    };
    struct ferry_usb_host *h = NULL;
    struct ferry_usb_share *s = NULL;
    struct event *si = NULL, *st = NULL;
    char err[FERRY_USB_ERR_MAX];
    size_t sink = 0;
    int rc = FERRY_EXIT_FAILURE;

    lists[n++] = &sandbox_syscalls_base;
    if (sandbox_sanitized())
        lists[n++] = &sandbox_syscalls_sanitizer;
    lists[n++] = &companion_syscalls_usbredir;
    lists[n++] = &share_syscalls;
    sbx.user = o->user;
    sbx.mode = o->seccomp;
    sbx.namespaces = !o->no_namespaces;
    sbx.lists = lists;
    sbx.nr_lists = n;
    sbx.log = ferry_log_glib;

    sv.b = event_base_new();
    if (!sv.b || usb_host_new(sv.b, false, &hops, NULL, &h) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb share: cannot start libusb");
        goto out;
    }
    if (usb_share_new(h, &cfg, &sops, &sv, &s, err, sizeof(err)) < 0) {
        ferry_log(FERRY_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    si = evsignal_new(sv.b, SIGINT, on_signal, sv.b);
    st = evsignal_new(sv.b, SIGTERM, on_signal, sv.b);
    event_add(si, NULL);
    event_add(st, NULL);
    /* glib's messages for every errno, converted once (devmodel/prewarm.c
     * says why): after confinement they are only looked up */
    (void)g_get_charset(NULL);
    for (int e = 0; e < 134; e++)
        sink += strlen(g_strerror(e));
    __asm__ __volatile__("" : : "r"(sink));
    if (sandbox_enter(&sbx) < 0)
        _exit(FERRY_EXIT_FAILURE);
    event_base_dispatch(sv.b);
    rc = sv.lost ? FERRY_EXIT_FAILURE : FERRY_EXIT_OK;
out:
    if (si)
        event_free(si);
    if (st)
        event_free(st);
    usb_share_free(s);
    usb_host_free(h);
    usb_tls_free(tls);
    if (sv.b)
        event_base_free(sv.b);
    if (sandbox_active())
        sandbox_exit(rc);
    exit(rc);
}

static volatile sig_atomic_t forward_to;

static void forward_signal(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

/* Who holds a shared device, as policy/owner.h records it: "share ADDR". */
static char *share_guest(const struct share_opts *o)
{
    return g_strdup_printf("share %s", o->listen);
}

/*
 * Everything up to serving, in the child: never returns when serving, or
 * an exit status.  The device is claimed for the share (policy/owner.h):
 * the claim's lock lives as long as this process; the identity goes to the
 * parent through idfd, which removes the description at the end.
 */
static int share_start(const struct share_opts *o, int idfd)
{
    struct ferry_usb_tls *tls = NULL;
    struct ferry_policy_owner *own = NULL;
    struct ferry_policy_owner_info held;
    char err[FERRY_USB_ERR_MAX], ident[200], oerr[512];
    g_autofree char *guest = share_guest(o);
    int lfd = -1, ufd, r = 0;
    enum bound bk = BOUND_OTHER;

    if (o->tls_creds)
        r = usb_tls_new_x509(o->tls_creds, !o->no_client_cert, &tls, err, sizeof(err));
    else if (o->tls_psk)
        r = usb_tls_new_psk(o->tls_psk, &tls, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "ferry usb share: %s\n", err);
        return FERRY_EXIT_FAILURE;
    }
    ufd = open_device(o->device, o->policy, ident, sizeof(ident), err, sizeof(err));
    if (ufd < 0) {
        fprintf(stderr, "ferry usb share: %s\n", err);
        usb_tls_free(tls);
        return FERRY_EXIT_FAILURE;
    }
    /* one owner per device across Ferry processes: a ferry-dm or another
     * share that holds it is named, and this share refuses */
    r = policy_owner_claim(NULL, "usb", ident, guest, "ferry usb share", getpid(), &own, &held,
                           oerr, sizeof(oerr));
    if (r < 0) {
        fprintf(stderr, "ferry usb share: %s\n", oerr);
        close(ufd);
        usb_tls_free(tls);
        return FERRY_EXIT_FAILURE;
    }
    if (held.stale) {
        char who[400];

        policy_owner_describe(&held, who, sizeof(who));
        ferry_log(FERRY_LOG_WARNING, NULL, "usb share: %s: its owner %s has gone without "
                  "releasing it: taken over", ident, who);
    }
    lfd = usb_listen(o->listen, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, "ferry usb share: %s\n", err);
        goto fail;
    }
    bk = bound_kind(lfd);
    if (bk == BOUND_UNIX) {
        if (unix_socket_perms(o->listen + 5, o) < 0)
            goto fail;
    } else if (!tls && bk != BOUND_LOOPBACK && !o->insecure) {
        fprintf(stderr, "ferry usb share: --listen %s without TLS: anyone who reaches this "
                "address could take the device and read or write what it holds.  Give "
                "--tls-creds DIR or --tls-psk FILE (docs/usb.md), listen on loopback or "
                "unix:PATH, or say --insecure to share it in the clear anyway\n", o->listen);
        goto fail;
    } else if (!tls && bk != BOUND_LOOPBACK) {
        ferry_log(FERRY_LOG_WARNING, NULL, "usb share: --insecure: %s is shared on %s without "
                  "TLS: anyone who reaches it can take the device and see its data",
                  ident, o->listen);
    }
    if (bk == BOUND_WILDCARD)
        ferry_log(FERRY_LOG_WARNING, NULL, "usb share: %s listens on every interface; "
                  "name one address to limit who can reach it", o->listen);
    ferry_log(FERRY_LOG_INFO, NULL, "usb share: %s on %s, %s%s, one client at a time", ident,
              o->listen, tls ? "tls " : "no tls", tls ? usb_tls_kind(tls) : "");
    /* the parent learns the device now, and watches from here on */
    (void)!write(idfd, ident, strlen(ident));
    close(idfd);
    serve(o, lfd, ufd, ident, tls);
fail:
    if (lfd >= 0) {
        close(lfd);
        if (bk == BOUND_UNIX)
            unlink(o->listen + 5);
    }
    policy_owner_release(own);
    close(ufd);
    usb_tls_free(tls);
    return FERRY_EXIT_FAILURE;
}

/*
 * The share runs in a child: this parent, which opens nothing, stays
 * unconfined to remove a unix socket the confined child cannot, and to say
 * how the child ended (a seccomp kill while the child had SIGSYS blocked
 * leaves no line of its own).
 */
int ferry_cmd_usb_share(int argc, char **argv)
{
    struct share_opts o = { 0 };
    char ident[200] = "";
    int r, st = 0, idp[2], nr = -1;
    ssize_t n;
    pid_t pid;

    r = share_parse(argc, argv, &o);
    if (r)
        return r < 0 ? FERRY_EXIT_OK : r;
    if (pipe2(idp, O_CLOEXEC) < 0) {
        fprintf(stderr, "ferry usb share: pipe: %s\n", g_strerror(errno));
        return FERRY_EXIT_FAILURE;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ferry usb share: fork: %s\n", g_strerror(errno));
        return FERRY_EXIT_FAILURE;
    }
    if (pid == 0) {
        close(idp[0]);
        _exit(share_start(&o, idp[1]));
    }
    close(idp[1]);
    forward_to = pid;
    signal(SIGINT, forward_signal);
    signal(SIGTERM, forward_signal);
    signal(SIGHUP, forward_signal);
    while ((n = read(idp[0], ident, sizeof(ident) - 1)) < 0 && errno == EINTR)
        ;
    ident[n > 0 ? n : 0] = 0;
    close(idp[0]);
    /* the child confines itself now: watched, a seccomp kill is named here
     * even when the child's own reporter could not run (SIGSYS blocked) */
    if (ident[0] && (r = sandbox_watch_child(pid)) < 0)
        ferry_log(FERRY_LOG_WARNING, NULL, "usb share: cannot watch the confined server: %s "
                  "(a seccomp kill with SIGSYS blocked would go unnamed)", g_strerror(-r));
    if (sandbox_wait_child(pid, &st, &nr) < 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    if (ident[0]) {
        /* the claim's lock went with the child; its description goes now */
        g_autofree char *guest = share_guest(&o);

        (void)policy_owner_drop(NULL, "usb", ident, guest);
    }
    if (!strncmp(o.listen, "unix:", 5)) {
        /* only a socket nobody listens on any more: the child's, or stale */
        char err[FERRY_USB_ERR_MAX];

        if (usb_unix_clear_stale(o.listen + 5, err, sizeof(err)) < 0 && WIFEXITED(st) &&
            WEXITSTATUS(st) == FERRY_EXIT_OK)
            ferry_log(FERRY_LOG_WARNING, NULL, "usb share: %s", err);
    }
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS && nr >= 0) {
        char name[32];

        sandbox_syscall_name(nr, name, sizeof(name));
        ferry_log(FERRY_LOG_ERROR, NULL, "usb share: the confined server (pid %d) was killed by "
                  "its seccomp filter: forbidden syscall %s nr=%d (--seccomp=log lets it run; "
                  "docs/confinement.md)", (int)pid, name, nr);
        return FERRY_EXIT_FAILURE;
    }
    if (WIFSIGNALED(st)) {
        ferry_log(FERRY_LOG_ERROR, NULL, "usb share: the confined server (pid %d) died of "
                  "signal %d (%s)", (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
        return FERRY_EXIT_FAILURE;
    }
    if (WEXITSTATUS(st) == FERRY_EXIT_OK)
        ferry_log(FERRY_LOG_INFO, NULL, "usb share: %s: share ended", o.device);
    return WEXITSTATUS(st);
}
