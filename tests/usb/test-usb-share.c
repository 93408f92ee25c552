// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb suite: `ferry usb share`, confined as by default, against a simulated
 * disk (this process owns the umockdev testbed; ferry inherits it) and
 * hostile peers on loopback: random bytes, a hello then garbage, a 4 GiB
 * length, a second client, a client that never says hello, an idle client,
 * a client that vanishes mid-transfer.  After each: the share is alive, its
 * log names the peer's address and what happened, and the disk is back with
 * its host driver (usb-storage) -- or never left it, for the peers that
 * never said a valid hello.  Then the refusals at start (plain TCP on a
 * non-loopback address, a path that is not a socket, a socket in use) and
 * the unix socket's removal at the end.
 *   test-usb-share FERRY
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redir-client.h"
#include "usbsim.h"

static int failures;
static const char *ferry;
static struct usbsim_dev *disk;
static char logpath[256];

#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, "\n"); \
            failures++; \
            goto out; \
        } \
    } while (0)

static char *log_text(void)
{
    char *t = NULL;

    g_file_get_contents(logpath, &t, NULL, NULL);
    return t ? t : g_strdup("");
}

/* The share's log has a line with both a and b (b may be NULL), within 30 s. */
static bool wait_log(const char *a, const char *b)
{
    for (int i = 0; i < 300; i++) {
        char *t = log_text(), **lines = g_strsplit(t, "\n", -1);
        bool found = false;

        for (int j = 0; lines[j] && !found; j++)
            found = strstr(lines[j], a) && (!b || strstr(lines[j], b));
        g_strfreev(lines);
        g_free(t);
        if (found)
            return true;
        g_usleep(100000);
    }
    return false;
}

static bool driver_is(const char *want)
{
    for (int i = 0; i < 300; i++) {
        char drv[64];

        usbsim_driver(disk, drv, sizeof(drv));
        if (!strcmp(drv, want))
            return true;
        g_usleep(100000);
    }
    return false;
}

static bool driver_now(const char *want)
{
    char drv[64];

    usbsim_driver(disk, drv, sizeof(drv));
    return !strcmp(drv, want);
}

static GPid start_share(const char **extra, int *port)
{
    const char *argv[32];
    char la[64];
    int n = 0, fd;
    GPid pid = 0;
    GError *err = NULL;
    int logfd;

    /* a free port: bind 0, read it, close (the machine is shared) */
    {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);

        fd = socket(AF_INET, SOCK_STREAM, 0);
        bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        *port = ntohs(sa.sin_port);
        close(fd);
    }
    snprintf(la, sizeof(la), "127.0.0.1:%d", *port);
    argv[n++] = ferry;
    argv[n++] = "usb";
    argv[n++] = "share";
    argv[n++] = "1d50:6102:SHARE1";
    argv[n++] = "--listen";
    argv[n++] = la;
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!g_spawn_async_with_fds(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, -1, logfd, logfd, &err)) {
        fprintf(stderr, "spawn %s: %s\n", ferry, err->message);
        g_clear_error(&err);
        pid = 0;
    }
    close(logfd);
    if (pid && !wait_log("one client at a time", NULL)) {
        char *t = log_text();
        fprintf(stderr, "share did not start:\n%s\n", t);
        g_free(t);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = 0;
    }
    /* the confined server listens once its sandbox line is out */
    if (pid && !wait_log("sandbox: confined", NULL)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = 0;
    }
    return pid;
}

static bool alive(GPid pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

/* Connected to the share; *peer gets our address as the share logs it. */
static int dial(int port, char *peer, size_t len)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    snprintf(peer, len, "peer=127.0.0.1:%u:", ntohs(sa.sin_port));
    return fd;
}

/* A usbredir client until the device is connected to it (served). */
static struct redirc *served_client(int port, char *peer, size_t len)
{
    int fd = dial(port, peer, len);
    struct redirc *c;

    if (fd < 0)
        return NULL;
    c = redirc_new(fd);
    for (int i = 0; i < 300 && !redirc_connected(c); i++)
        if (redirc_step(c, 100) < 0)
            break;
    if (!redirc_connected(c)) {
        redirc_free(c);
        return NULL;
    }
    return c;
}

/* The peer's end: the share closed it (read returns 0) within 30 s. */
static bool closed_by_share(int fd)
{
    char buf[4096];

    for (int i = 0; i < 300; i++) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

static int run_share(char **out, const char *la, const char *a1, const char *a2);

static void hostile(void)
{
    const char *extra[] = { "--handshake-timeout", "2", "--idle-timeout", "3", "--verbose", NULL };
    char peer[64], peer2[64];
    struct redirc *c = NULL, *c2 = NULL;
    int port, fd = -1;
    GPid pid = start_share(extra, &port);

    CHECK(pid, "share did not start");
    CHECK(driver_is("usb-storage"), "disk not with usb-storage at start");

    /* random bytes: never a hello; the disk stays with its driver */
    fd = dial(port, peer, sizeof(peer));
    CHECK(fd >= 0, "connect");
    {
        uint8_t junk[64];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)g_random_int();
        junk[0] = 0x55;     /* not type 0 */
        CHECK(write(fd, junk, sizeof(junk)) == sizeof(junk), "write");
    }
    CHECK(closed_by_share(fd), "random bytes: not disconnected");
    CHECK(wait_log(peer, "not a usbredir hello"), "random bytes: no log line naming %s", peer);
    CHECK(driver_now("usb-storage"), "random bytes: the disk left its driver");
    close(fd);
    fd = -1;

    /* a hello, then garbage: served, then dropped; the disk comes back */
    c = served_client(port, peer, sizeof(peer));
    CHECK(c, "hello: not served");
    CHECK(wait_log(peer, "taken from its host driver"), "hello: no log line");
    CHECK(driver_is(""), "served: the disk is still with its driver");
    {
        static const uint8_t garbage[] = { 0xff, 0xff, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0,
                                           0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4 };
        CHECK(write(redirc_fd(c), garbage, sizeof(garbage)) == sizeof(garbage), "write");
    }
    CHECK(closed_by_share(redirc_fd(c)), "garbage: not disconnected");
    CHECK(wait_log(peer, "connection ended"), "garbage: no end line");
    CHECK(driver_is("usb-storage"), "garbage: the disk did not come back");
    redirc_free(c);
    c = NULL;

    /* a 4 GiB length after the hello */
    c = served_client(port, peer, sizeof(peer));
    CHECK(c, "4 GiB: not served");
    {
        /* bulk_packet (type 103) announcing 0xffffffff bytes; 64-bit ids agreed */
        uint8_t h[16] = { 103, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
        CHECK(write(redirc_fd(c), h, sizeof(h)) == sizeof(h), "write");
    }
    CHECK(closed_by_share(redirc_fd(c)), "4 GiB: not disconnected");
    CHECK(wait_log(peer, "connection ended"), "4 GiB: no end line");
    CHECK(driver_is("usb-storage"), "4 GiB: the disk did not come back");
    redirc_free(c);
    c = NULL;

    /* a second client while one is served: refused at once */
    c = served_client(port, peer, sizeof(peer));
    CHECK(c, "first: not served");
    fd = dial(port, peer2, sizeof(peer2));
    CHECK(fd >= 0, "second: connect");
    CHECK(closed_by_share(fd), "second: not refused");
    CHECK(wait_log(peer2, "refused: one client at a time"), "second: no refusal line");
    close(fd);
    fd = -1;
    CHECK(redirc_step(c, 10) >= 0 && driver_now(""), "first: lost the device");
    /* the first vanishes mid-transfer: bulk reads in flight, then the socket closes */
    for (uint64_t id = 1; id <= 8; id++)
        redirc_bulk(c, id, 0x81, NULL, 512);
    redirc_push(c);
    redirc_free(c);
    c = NULL;
    CHECK(wait_log(peer, "peer closed"), "vanished: no end line");
    CHECK(driver_is("usb-storage"), "vanished: the disk did not come back");

    /* no hello within --handshake-timeout */
    fd = dial(port, peer, sizeof(peer));
    CHECK(fd >= 0, "silent: connect");
    CHECK(closed_by_share(fd), "silent: not dropped");
    CHECK(wait_log(peer, "no usbredir hello within"), "silent: no log line");
    CHECK(driver_now("usb-storage"), "silent: the disk left its driver");
    close(fd);
    fd = -1;

    /* an idle client, past --idle-timeout */
    c = served_client(port, peer, sizeof(peer));
    CHECK(c, "idle: not served");
    CHECK(closed_by_share(redirc_fd(c)), "idle: not dropped");
    CHECK(wait_log(peer, "idle for"), "idle: no log line");
    CHECK(driver_is("usb-storage"), "idle: the disk did not come back");
    redirc_free(c);
    c = NULL;

    /* still serving after all that */
    c = served_client(port, peer, sizeof(peer));
    CHECK(c, "after the hostile peers: not served");
    c2 = NULL;
    CHECK(alive(pid), "the share died");
    /* one owner per device: another share refuses it, naming this one,
     * and `ferry usb list` shows who holds it */
    {
        char *out = NULL, holder[64];
        const char *largv[] = { ferry, "usb", "list", NULL };
        int r;

        snprintf(holder, sizeof(holder), "share 127.0.0.1:%d", port);
        r = run_share(&out, "127.0.0.1:0", NULL, NULL);
        CHECK(r == 1 && strstr(out, holder), "second share: %d %s", r, out);
        g_free(out);
        out = NULL;
        if (!g_spawn_sync(NULL, (char **)largv, NULL, 0, NULL, NULL, &out, NULL, NULL, NULL))
            out = NULL;
        CHECK(out && strstr(out, holder), "list: no holder: %s", out ? out : "");
        g_free(out);
    }
    kill(pid, SIGTERM);
    {
        int st = 0;
        waitpid(pid, &st, 0);
        pid = 0;
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "share exit status %d", st);
    }
    CHECK(wait_log("share ended", NULL), "no end line");
    CHECK(driver_is("usb-storage"), "end: the disk did not come back");
out:
    if (c)
        redirc_free(c);
    if (c2)
        redirc_free(c2);
    if (fd >= 0)
        close(fd);
    if (pid) {
        kill(pid, SIGTERM);
        g_usleep(500000);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (failures) {
        char *t = log_text();
        fprintf(stderr, "--- share log ---\n%s--- end ---\n", t);
        g_free(t);
    }
}

/* Run ferry usb share with args; its exit status and output. */
static int run_share(char **out, const char *la, const char *a1, const char *a2)
{
    const char *argv[] = { ferry, "usb", "share", "1d50:6102:SHARE1", "--listen", la, a1, a2,
                           NULL };
    char *o = NULL, *e = NULL;
    int st = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &o, &e, &st, NULL))
        st = -1;
    *out = g_strconcat(o ? o : "", e ? e : "", NULL);
    g_free(o);
    g_free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void refusals(const char *dir)
{
    char *out = NULL, *path = g_build_filename(dir, "not-a-socket", NULL);
    char *upath = g_build_filename(dir, "share.sock", NULL), *la;
    int r, lfd = -1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    /* plain TCP on every interface without --insecure */
    r = run_share(&out, "0.0.0.0:1", NULL, NULL);
    CHECK(r == 1 && strstr(out, "without TLS") && strstr(out, "--insecure"), "%d %s", r, out);
    g_free(out);
    out = NULL;
    /* IPv6: [::]:P parses and binds, and is refused in the clear like 0.0.0.0 */
    r = run_share(&out, "[::]:0", NULL, NULL);
    CHECK(r == 1 && strstr(out, "without TLS"), "%d %s", r, out);
    g_free(out);
    out = NULL;
    /* the device-access policy judges the device for the guest 'share' */
    {
        char *pol = g_build_filename(dir, "policy.conf", NULL);

        g_file_set_contents(pol, "[policy]\ndefault = deny\n", -1, NULL);
        r = run_share(&out, "127.0.0.1:0", "--policy", pol);
        CHECK(r == 1 && strstr(out, "for guest share") && strstr(out, "policy.conf"),
              "policy: %d %s", r, out);
        CHECK(driver_now("usb-storage"), "policy: the disk left its driver");
        g_free(out);
        out = NULL;
        g_free(pol);
    }
    /* a file that is not a socket is never removed */
    g_file_set_contents(path, "keep me", -1, NULL);
    la = g_strconcat("unix:", path, NULL);
    r = run_share(&out, la, NULL, NULL);
    g_free(la);
    CHECK(r == 1 && strstr(out, "not a socket"), "%d %s", r, out);
    CHECK(access(path, F_OK) == 0, "the file was removed");
    g_free(out);
    out = NULL;
    /* a socket somebody listens on is left alone */
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", upath);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0, "bind");
    la = g_strconcat("unix:", upath, NULL);
    r = run_share(&out, la, NULL, NULL);
    g_free(la);
    CHECK(r == 1 && strstr(out, "another process listens"), "%d %s", r, out);
    close(lfd);
    lfd = -1;
    g_free(out);
    out = NULL;
    /* a stale one is replaced, and the share's own removed at the end */
    {
        const char *argv[] = { ferry, "usb", "share", "1d50:6102:SHARE1", "--listen", NULL,
                               "--socket-mode", "0660", NULL };
        struct stat st;
        GPid pid = 0;
        int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        la = g_strconcat("unix:", upath, NULL);
        argv[5] = la;
        CHECK(g_spawn_async_with_fds(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                     NULL, &pid, -1, logfd, logfd, NULL), "spawn");
        close(logfd);
        CHECK(wait_log("sandbox: confined", NULL), "unix: did not start");
        CHECK(stat(upath, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0660,
              "unix: mode %o", st.st_mode);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        CHECK(access(upath, F_OK) < 0, "unix: the socket stayed");
        g_free(la);
    }
out:
    if (lfd >= 0)
        close(lfd);
    g_free(out);
    g_free(path);
    g_free(upath);
}

/* ---- TLS against QEMU's own tls-creds ------------------------------------------ */

static const char *certs;       /* mkcerts.sh's folder */

/* Lines of the share's log holding `what`. */
static int log_count(const char *what)
{
    char *t = log_text(), *p = t;
    int n = 0;

    while ((p = strstr(p, what))) {
        n++;
        p += strlen(what);
    }
    g_free(t);
    return n;
}

/* QEMU as the share's client: usb-redir on a socket chardev to port, with
 * tls_object ("" for none); no guest (firmware only) unless kernel. */
static GPid start_qemu(int port, const char *tls_object, const char *kernel, const char *initrd,
                       const char *serial_log)
{
    char chardev[256];
    const char *argv[40];
    int n = 0, logfd = -1;
    char **envp = g_get_environ();
    GPid pid = 0;
    GError *err = NULL;

    /* QEMU runs outside the testbed */
    envp = g_environ_unsetenv(envp, "LD_PRELOAD");
    envp = g_environ_unsetenv(envp, "UMOCKDEV_DIR");
    snprintf(chardev, sizeof(chardev), "socket,id=ur0,host=127.0.0.1,port=%d,nodelay=on%s", port,
             *tls_object ? ",tls-creds=tls0" : "");
    argv[n++] = "qemu-system-x86_64";
    argv[n++] = "-accel";
    argv[n++] = "tcg";
    argv[n++] = "-m";
    argv[n++] = "512";
    argv[n++] = "-nodefaults";
    argv[n++] = "-display";
    argv[n++] = "none";
    argv[n++] = "-no-reboot";
    if (*tls_object) {
        argv[n++] = "-object";
        argv[n++] = tls_object;
    }
    argv[n++] = "-device";
    argv[n++] = "qemu-xhci";
    argv[n++] = "-chardev";
    argv[n++] = chardev;
    argv[n++] = "-device";
    argv[n++] = "usb-redir,chardev=ur0";
    if (kernel) {
        argv[n++] = "-serial";
        argv[n++] = "stdio";
        argv[n++] = "-kernel";
        argv[n++] = kernel;
        argv[n++] = "-initrd";
        argv[n++] = initrd;
        argv[n++] = "-append";
        argv[n++] = "console=ttyS0 quiet panic=-1";
    }
    argv[n] = NULL;
    if (serial_log)
        logfd = open(serial_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!g_spawn_async_with_fds(NULL, (char **)argv, envp,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                -1, logfd, logfd, &err)) {
        fprintf(stderr, "spawn qemu: %s\n", err->message);
        g_clear_error(&err);
        pid = 0;
    }
    if (logfd >= 0)
        close(logfd);
    g_strfreev(envp);
    return pid;
}

static void stop_pid(GPid *pid)
{
    if (*pid) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

/* A QEMU whose client credentials the share must refuse: one more refusal
 * line, and the disk never left usb-storage. */
static bool refused(int port, const char *tls_object, const char *what)
{
    int before = log_count("never left its host driver"), taken = log_count("taken from");
    GPid q = start_qemu(port, tls_object, NULL, NULL, NULL);
    bool ok = false;

    for (int i = 0; q && i < 300 && !ok; i++) {
        ok = log_count("never left its host driver") > before;
        if (!ok)
            g_usleep(100000);
    }
    stop_pid(&q);
    if (!ok)
        fprintf(stderr, "FAIL: %s: no refusal logged\n", what);
    else if (log_count("taken from") != taken || !driver_now("usb-storage"))
        fprintf(stderr, "FAIL: %s: the disk left its host driver\n", what), ok = false;
    else
        printf("usb-share-tls: %s: refused\n", what);
    return ok;
}

static void tls_qemu(const char *kernel, const char *initrd, const char *work)
{
    char *srv = g_build_filename(certs, "server", NULL), *psk = NULL;
    char *obj = NULL, *serial = g_build_filename(work, "serial.log", NULL);
    const char *extra[] = { "--tls-creds", srv, NULL, NULL };
    GPid pid, q = 0;
    int port;
    bool done = false;

    pid = start_share(extra, &port);
    CHECK(pid, "share --tls-creds did not start");
    CHECK(driver_is("usb-storage"), "disk not with usb-storage at start");
    obj = g_strdup_printf("tls-creds-x509,id=tls0,endpoint=client,dir=%s/nocert", certs);
    CHECK(refused(port, obj, "a client without a certificate"), "nocert");
    g_free(obj);
    obj = g_strdup_printf("tls-creds-x509,id=tls0,endpoint=client,dir=%s/rogue", certs);
    CHECK(refused(port, obj, "a client certificate from another CA"), "rogue");
    CHECK(wait_log("certificate", "refused"), "rogue: the line does not say why");
    CHECK(refused(port, "", "a plain-TCP client"), "plain");
    CHECK(log_count("peer=127.0.0.1:") >= 6, "refusals without the peer's address");

    /* the real thing: a Linux guest gets the disk over TLS */
    g_free(obj);
    obj = g_strdup_printf("tls-creds-x509,id=tls0,endpoint=client,dir=%s/client", certs);
    q = start_qemu(port, obj, kernel, initrd, serial);
    CHECK(q, "qemu did not start");
    for (int i = 0; i < 6000 && !done; i++) {
        char *t = NULL;

        g_file_get_contents(serial, &t, NULL, NULL);
        done = t && (strstr(t, "FERRY-GUEST-DONE") || strstr(t, "Kernel panic"));
        if (done && !strstr(t, "FERRY-DISK-OK"))
            fprintf(stderr, "--- guest ---\n%s\n--- end ---\n", t);
        CHECK(!done || strstr(t, "FERRY-DISK-OK"), "the guest did not read the disk back");
        g_free(t);
        if (!done && waitpid(q, NULL, WNOHANG) == q) {
            q = 0;
            break;
        }
        if (!done)
            g_usleep(100000);
    }
    CHECK(done, "the guest did not finish");
    CHECK(wait_log("tls x509", "dn="), "no tls line with the client's DN");
    {
        static const char unit[] = "FERRY-PATTERN-0123456789\n";
        uint8_t *got = g_malloc(65536);
        bool ok = true;

        usbsim_disk_read(disk, 2048 * 512, got, 65536);
        for (size_t i = 0; i < 65536 && ok; i++)
            ok = got[i] == (uint8_t)unit[i % (sizeof(unit) - 1)];
        g_free(got);
        CHECK(ok, "the simulated disk does not hold the guest's pattern");
        printf("usb-share-tls: a TCG guest wrote and read 64 KiB over TLS (QEMU tls-creds-x509)\n");
    }
    stop_pid(&q);
    CHECK(wait_log("peer closed", NULL), "no end line");
    CHECK(driver_is("usb-storage"), "the disk did not come back after the guest");
    stop_pid(&pid);

    /* PSK: a wrong key is refused, the right one served */
    psk = g_build_filename(certs, "psk", "keys.psk", NULL);
    extra[0] = "--tls-psk";
    extra[1] = psk;
    pid = start_share(extra, &port);
    CHECK(pid, "share --tls-psk did not start");
    g_free(obj);
    obj = g_strdup_printf("tls-creds-psk,id=tls0,endpoint=client,dir=%s/badpsk,username=qemu",
                          certs);
    CHECK(refused(port, obj, "a PSK client with the wrong key"), "badpsk");
    g_free(obj);
    obj = g_strdup_printf("tls-creds-psk,id=tls0,endpoint=client,dir=%s/psk,username=qemu",
                          certs);
    q = start_qemu(port, obj, NULL, NULL, NULL);
    CHECK(wait_log("tls psk", "psk-identity=qemu"), "psk: no handshake");
    CHECK(wait_log("taken from its host driver", NULL), "psk: not served");
    printf("usb-share-tls: a QEMU tls-creds-psk client is served\n");
    stop_pid(&q);
    CHECK(driver_is("usb-storage"), "psk: the disk did not come back");
    stop_pid(&pid);

    /* --no-client-cert: TLS without client authentication serves a client
     * that has only the CA */
    {
        const char *nocert[] = { "--tls-creds", srv, "--no-client-cert", NULL };

        pid = start_share(nocert, &port);
        CHECK(pid, "share --no-client-cert did not start");
        g_free(obj);
        obj = g_strdup_printf("tls-creds-x509,id=tls0,endpoint=client,dir=%s/nocert", certs);
        q = start_qemu(port, obj, NULL, NULL, NULL);
        CHECK(wait_log("taken from its host driver", NULL), "--no-client-cert: not served");
        printf("usb-share-tls: --no-client-cert serves a client without a certificate\n");
        stop_pid(&q);
        CHECK(driver_is("usb-storage"), "--no-client-cert: the disk did not come back");
    }
out:
    stop_pid(&q);
    if (failures) {
        char *t = log_text();
        fprintf(stderr, "--- share log ---\n%s--- end ---\n", t);
        g_free(t);
    }
    stop_pid(&pid);
    g_free(obj);
    g_free(srv);
    g_free(psk);
    g_free(serial);
}

int main(int argc, char **argv)
{
    struct usbsim *sim;
    char dir[] = "/tmp/ferry-usb-share-XXXXXX";
    bool tls = argc == 7 && !strcmp(argv[6], "tls");

    /* hostile: test-usb-share FERRY
     * tls (through qemu-usb.sh): test-usb-share VMLINUZ INITRD WORKDIR FERRY MKCERTS tls */
    if (argc != 2 && !tls) {
        fprintf(stderr, "usage: test-usb-share FERRY | VMLINUZ INITRD WORKDIR FERRY MKCERTS tls\n");
        return 2;
    }
    ferry = tls ? argv[4] : argv[1];
    signal(SIGPIPE, SIG_IGN);
    /* umockdev's device nodes are files, which epoll refuses: libevent's
     * poll backend then has libusb poll them (as qemu-usb-e2e does) */
    g_setenv("EVENT_NOEPOLL", "1", TRUE);
    if (!g_mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(logpath, sizeof(logpath), "%s/share.log", dir);
    /* the owners' records (policy/owner.h) of this test only */
    g_setenv("FERRY_RUN_DIR", dir, TRUE);
    if (tls) {
        char *c = g_build_filename(dir, "certs", NULL);
        const char *mk[] = { "sh", argv[5], c, NULL };
        int st = -1;

        certs = c;
        if (!g_spawn_sync(NULL, (char **)mk, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                          &st, NULL) || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "usb-share-tls: mkcerts.sh failed (status %d)\n", st);
            return WIFEXITED(st) && WEXITSTATUS(st) == 77 ? 77 : 1;
        }
    }
    sim = usbsim_new();
    if (!sim)
        return 1;
    disk = usbsim_add(sim, USBSIM_STORAGE, "1-2", "SHARE1");
    if (tls) {
        tls_qemu(argv[1], argv[2], argv[3]);
    } else {
        hostile();
        refusals(dir);
    }
    usbsim_free(sim);
    {
        char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        (void)!system(cmd);
        g_free(cmd);
    }
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("usb-share: %s: ok\n", tls ? "TLS with QEMU's tls-creds" :
               "hostile peers and start-up refusals");
    return failures ? 1 : 0;
}
