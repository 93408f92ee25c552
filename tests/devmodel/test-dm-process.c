// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm as a process behind a real ioreq router (no KVM needed): the
 * test plays the hypervisor.  It starts build/devmodel/ferry-dm with
 * --ioreq-fd=N exactly as ferry-hv does, sends it port and PCI config
 * ioreqs through ioreq_router_send(), and checks what comes
 * back: serial output, interrupts (irq-line fallback, since this router
 * has no irqchip), guest RAM handed over for DMA, shutdown requests, the control socket through the
 * `ferry dm` CLI, and that killing ferry-dm leaves the router running and
 * reporting the detach.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "ioreq/ioreq.h"
#include "tests/check-main.h"

/* devmodel/dm.h's, which this test (a separate process) does not link */
#define FERRY_DM_OPTS_MAX       32
#define FERRY_DM_OPT_LEN_MAX    1024

struct hv {
    struct ioreq_router *r;
    pthread_t thread;
    atomic_bool stop;
    pid_t dm;
    char *dir, *out, *ctl;
    int memfd;
    atomic_uint shutdowns, gone, raises4;
    atomic_uint reason, code;
};

static void *control_thread(void *arg)
{
    struct hv *h = arg;
    struct pollfd p = { .fd = ioreq_router_get_fd(h->r), .events = POLLIN };

    while (!atomic_load(&h->stop))
        if (poll(&p, 1, 20) > 0)
            ioreq_router_dispatch(h->r);
    return NULL;
}

static void r_log(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_WARNING || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-hv: %s\n", msg);
}

/*
 * An irqchip of sorts, for test_process_replace_irqs and
 * test_process_crash_irqfds only: irqfds and MSI routes are accepted and
 * counted, and a copy of GSI 4's latest eventfd and of the first routed
 * MSI's is kept to read what ferry-dm signals.  keep_ms: the router keeps a
 * dead server's registration for a restart (server_lost), as ferry-hv does.
 */
static struct {
    bool on;
    unsigned gsi4_assigns, msi_routes;
    atomic_uint gsi4_deassigns;
    int gsi4_fd, msi_fd;
    unsigned keep_ms;
} chip = { .gsi4_fd = -1, .msi_fd = -1 };

static int r_irqfd(void *opaque, uint32_t gsi, int fd, int resample_fd, bool assign)
{
    if (!chip.on)
        return -ENOSYS;     /* no irqchip here: ferry-dm falls back to irq line calls */
    if (assign && gsi == 4) {
        chip.gsi4_assigns++;
        if (chip.gsi4_fd >= 0)
            close(chip.gsi4_fd);
        chip.gsi4_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    } else if (!assign && gsi == 4) {
        atomic_fetch_add(&chip.gsi4_deassigns, 1);
    }
    return 0;
}

static unsigned r_server_lost(void *opaque, uint32_t id, const char *name)
{
    return chip.keep_ms;
}

static int r_msi_route(void *opaque, uint64_t address, uint32_t data, int fd, bool assign,
                       uint32_t *gsi)
{
    if (!chip.on)
        return -ENOSYS;
    if (assign) {
        chip.msi_routes++;
        if (chip.msi_fd < 0)
            chip.msi_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        *gsi = 100 + chip.msi_routes;
    }
    return 0;
}

static int r_irq_line(void *opaque, uint32_t gsi, bool level)
{
    struct hv *h = opaque;

    if (gsi == 4 && level)
        atomic_fetch_add(&h->raises4, 1);
    return 0;
}

static int r_memory(void *opaque, struct ioreq_msg_memory_reply *m)
{
    struct hv *h = opaque;

    memset(m, 0, sizeof(*m));
    m->nr_regions = 1;
    m->region[0].gpa = 0;
    m->region[0].size = 1 << 20;
    m->region[0].offset = 0;
    return h->memfd;
}

static void r_shutdown(void *opaque, enum ioreq_shutdown_reason reason, uint32_t code)
{
    struct hv *h = opaque;

    atomic_store(&h->reason, reason);
    atomic_store(&h->code, code);
    atomic_fetch_add(&h->shutdowns, 1);
}

static void r_gone(void *opaque, const char *name, const char *why)
{
    struct hv *h = opaque;

    atomic_fetch_add(&h->gone, 1);
}

static const struct ioreq_router_ops r_ops = {
    .log = r_log,
    .irqfd = r_irqfd,
    .msi_route = r_msi_route,
    .irq_line = r_irq_line,
    .memory = r_memory,
    .shutdown = r_shutdown,
    .server_gone = r_gone,
    .server_lost = r_server_lost,
};

static const char *build_root(void)
{
    const char *b = getenv("FERRY_BUILD_ROOT");

    return b ? b : ".";
}

static uint64_t pio(struct hv *h, uint16_t port, unsigned size, bool write, uint64_t val,
                    int *result)
{
    ioreq_t req = { .type = IOREQ_TYPE_PIO, .addr = port, .size = size, .count = 1,
                    .dir = write ? IOREQ_WRITE : IOREQ_READ, .data = val };
    int rc = ioreq_router_send(h->r, 0, &req);

    if (result)
        *result = rc;
    return req.data;
}

static uint32_t cfg_read(struct hv *h, unsigned dev, unsigned reg)
{
    ioreq_t req = { .type = IOREQ_TYPE_PCI_CONFIG, .size = 4, .count = 1, .dir = IOREQ_READ,
                    .addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, dev, 0), reg) };

    ck_assert_int_eq(ioreq_router_send(h->r, 0, &req), IOREQ_SENT);
    return (uint32_t)req.data;
}

static void cfg_write(struct hv *h, unsigned dev, unsigned reg, uint32_t val)
{
    ioreq_t req = { .type = IOREQ_TYPE_PCI_CONFIG, .size = 4, .count = 1, .dir = IOREQ_WRITE,
                    .addr = IOREQ_PCI_ADDR(IOREQ_PCI_SBDF(0, 0, dev, 0), reg), .data = val };

    ck_assert_int_eq(ioreq_router_send(h->r, 0, &req), IOREQ_SENT);
}

static void hv_start(struct hv *h, const char *extra, const char *extra2)
{
    struct ioreq_router_config cfg = { .nr_vcpus = 1, .timeout_ms = 5000, .ops = &r_ops,
                                       .opaque = h };
    char *dm = g_build_filename(build_root(), "devmodel", "ferry-dm", NULL);
    int sv[2];

    memset(h, 0, sizeof(*h));
    /* meson builds ferry-dm before this test (depends:): missing is a failure */
    ck_assert_msg(access(dm, X_OK) == 0, "%s is not built (meson test builds it first)", dm);
    h->dir = g_dir_make_tmp("ferry-dm-proc-XXXXXX", NULL);
    h->out = g_build_filename(h->dir, "com1.out", NULL);
    h->ctl = g_build_filename(h->dir, "dm.sock", NULL);
    h->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    ck_assert_int_ge(h->memfd, 0);
    ck_assert_int_eq(ftruncate(h->memfd, 1 << 20), 0);
    ck_assert_int_eq(ioreq_router_create(&cfg, &h->r), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(h->r, sv[0]), 0);
    ck_assert_int_eq(pthread_create(&h->thread, NULL, control_thread, h), 0);

    char fdarg[32], serial[512], control[512];
    snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
    snprintf(serial, sizeof(serial), "--serial=file:%s", h->out);
    snprintf(control, sizeof(control), "--control=%s", h->ctl);
    h->dm = fork();
    ck_assert_int_ge(h->dm, 0);
    if (h->dm == 0) {
        int fl = fcntl(sv[1], F_GETFD);

        fcntl(sv[1], F_SETFD, fl & ~FD_CLOEXEC);
        execl(dm, dm, fdarg, serial, control, "--name=proc-test", extra, extra2, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    g_free(dm);
    /* Enabled once the POST port (present in every set-up here) answers; however long a
     * loaded machine takes (the test's own timeout bounds it), unless ferry-dm died. */
    for (;;) {
        int rc, status;

        pio(h, 0x80, 1, false, 0, &rc);
        if (rc == IOREQ_SENT)
            return;
        if (waitpid(h->dm, &status, WNOHANG) == h->dm) {
            h->dm = -1;
            ck_abort_msg("ferry-dm did not come up: it ended, status 0x%x", status);
        }
        usleep(1000);
    }
}

static void hv_stop(struct hv *h)
{
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    ioreq_router_destroy(h->r);
    if (h->dm > 0) {
        kill(h->dm, SIGKILL);
        waitpid(h->dm, NULL, 0);
    }
    close(h->memfd);
    unlink(h->out);
    unlink(h->ctl);
    rmdir(h->dir);
    g_free(h->out);
    g_free(h->ctl);
    g_free(h->dir);
}

static char *slurp(const char *path)
{
    char *s = NULL;

    g_file_get_contents(path, &s, NULL, NULL);
    return s ? s : g_strdup("");
}

/* Run `ferry dm -s SOCK args...`; returns its stdout, *status its exit status. */
static char *dm_cli(struct hv *h, int *status, const char *a1, const char *a2,
                          const char *a3)
{
    char *cli = g_build_filename(build_root(), "cli", "ferry", NULL);
    const char *argv[] = { cli, "dm", "-s", h->ctl, a1, a2, a3, NULL };
    char *out = NULL;
    GError *err = NULL;

    ck_assert_msg(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               NULL, status, &err),
                  "cannot run %s: %s", cli, err ? err->message : "?");
    g_free(cli);
    return out;
}

START_TEST(test_process_devices)
{
    struct hv h;
    int rc;

    hv_start(&h, "-v", NULL);
    /* Serial output through the ioreq path. */
    for (const char *p = "hello from the guest\n"; *p; p++)
        pio(&h, 0x3f8, 1, true, (uint8_t)*p, NULL);
    char *out = slurp(h.out);
    ck_assert_str_eq(out, "hello from the guest\n");
    g_free(out);
    /* THRE interrupt: no irqfd here, so it arrives as irq-line calls. */
    pio(&h, 0x3fc, 1, true, 0x08, NULL);
    pio(&h, 0x3f9, 1, true, 0x02, NULL);
    ck_assert_uint_ge(atomic_load(&h.raises4), 1);
    ck_assert_uint_eq(pio(&h, 0x3fa, 1, false, 0, NULL), 0x02);
    ck_assert_uint_eq(pio(&h, 0x3fd, 1, false, 0, NULL), 0x60);
    /* PCI enumeration and the RTC. */
    ck_assert_uint_eq(cfg_read(&h, 0, 0), 0x12378086);
    ck_assert_uint_eq(cfg_read(&h, 5, 0), 0xffffffff);
    pio(&h, 0x70, 1, true, 0x0b, NULL);
    ck_assert_uint_eq(pio(&h, 0x71, 1, false, 0, NULL), 0x02);
    /* Unclaimed ports stay the router's business. */
    pio(&h, 0x3100, 1, false, 0, &rc);
    ck_assert_int_eq(rc, IOREQ_UNCLAIMED);
    /* The control socket through the CLI. */
    int st;
    char *s = dm_cli(&h, &st, "status", NULL, NULL);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(strstr(s, "\"running\"") != NULL, "status: %s", s);
    g_free(s);
    s = dm_cli(&h, &st, "add", "pci-test", "id=pt");
    ck_assert_int_eq(st, 0);
    g_free(s);
    ck_assert_uint_eq(cfg_read(&h, 1, 0), 0xfe011234);
    s = dm_cli(&h, &st, "devices", NULL, NULL);
    ck_assert_msg(strstr(s, "\"com1\"") && strstr(s, "\"pt\""), "devices: %s", s);
    g_free(s);
    s = dm_cli(&h, &st, "del", "com1", NULL);
    ck_assert_int_ne(st, 0);                    /* the UART is not hot-pluggable */
    g_free(s);
    /* All interactive slots taken: the CLI says why it got no answer. */
    {
        enum { SLOTS = 8 };     /* FERRY_DM_CONTROL_CLIENTS_MAX */
        int fds[SLOTS];
        char *cli = g_build_filename(build_root(), "cli", "ferry", NULL);
        const char *argv[] = { cli, "dm", "-s", h.ctl, "status", NULL };
        char *err = NULL;

        for (int i = 0; i < SLOTS; i++) {
            struct sockaddr_un sa = { .sun_family = AF_UNIX };
            char buf[512];

            fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.ctl);
            ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
            ck_assert_int_gt(recv(fds[i], buf, sizeof(buf), 0), 0);    /* greeted: a slot */
        }
        ck_assert(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, &err, &st, NULL));
        ck_assert_msg(st != 0 && strstr(err, "refused the connection: too many control "
                                             "clients"), "status %d, stderr: %s", st, err);
        g_free(err);
        g_free(cli);
        for (int i = 0; i < SLOTS; i++)
            close(fds[i]);
    }
    /* The debug exit port and S5 ask the hypervisor to end the guest. */
    pio(&h, 0xf4, 1, true, 42, NULL);
    ck_assert_uint_eq(atomic_load(&h.shutdowns), 1);
    ck_assert_uint_eq(atomic_load(&h.reason), IOREQ_SHUTDOWN_POWEROFF);
    ck_assert_uint_eq(atomic_load(&h.code), 42);
    pio(&h, 0xb004, 2, true, (0 << 10) | (1 << 13), NULL);    /* S5: libacpi's SLP_TYP 0 */
    ck_assert_uint_eq(atomic_load(&h.shutdowns), 2);
    ck_assert_uint_eq(atomic_load(&h.code), 0);
    pio(&h, 0xcf9, 1, true, 0x06, NULL);
    ck_assert_uint_eq(atomic_load(&h.shutdowns), 3);
    ck_assert_uint_eq(atomic_load(&h.reason), IOREQ_SHUTDOWN_REBOOT);
    hv_stop(&h);
}
END_TEST

START_TEST(test_process_killed)
{
    struct hv h;
    int rc;

    hv_start(&h, "--no-defaults", "--device=post");
    /* --no-defaults: nothing claimed but what --device adds. */
    pio(&h, 0x3f8, 1, false, 0, &rc);
    ck_assert_int_eq(rc, IOREQ_UNCLAIMED);
    hv_stop(&h);

    hv_start(&h, "-v", NULL);
    kill(h.dm, SIGKILL);
    waitpid(h.dm, NULL, 0);
    h.dm = -1;
    /* The router notices, reports the detach and keeps serving (all ones); however long a
     * loaded machine makes it take (the test's timeout bounds the wait). */
    while (!atomic_load(&h.gone)) {
        pio(&h, 0x3fd, 1, false, 0, NULL);
        usleep(1000);
    }
    ck_assert_uint_eq(atomic_load(&h.gone), 1);
    uint64_t v = pio(&h, 0x3fd, 1, false, 0, &rc);
    ck_assert(rc == IOREQ_UNCLAIMED || rc == IOREQ_SERVER_FAILED);
    ck_assert_uint_eq(v & 0xff, 0xff);
    hv_stop(&h);
}
END_TEST

START_TEST(test_process_config_file)
{
    struct hv h;
    int rc;
    char *dir = g_dir_make_tmp("ferry-dm-conf-XXXXXX", NULL);
    char *conf = g_build_filename(dir, "guest.conf", NULL);
    char *arg = g_strdup_printf("--config=%s", conf);

    ck_assert(g_file_set_contents(conf,
        "[dm]\n"
        "name=from-config\n"
        "no-defaults=true\n"
        "devices=post;debug-exit,port=0x600\n", -1, NULL));
    hv_start(&h, arg, NULL);
    pio(&h, 0x3f8, 1, false, 0, &rc);
    ck_assert_int_eq(rc, IOREQ_UNCLAIMED);          /* no-defaults from the file */
    pio(&h, 0x600, 1, true, 9, NULL);
    ck_assert_uint_eq(atomic_load(&h.code), 9);
    hv_stop(&h);

    /* A bad file is a usage error (status 2), before anything is claimed. */
    ck_assert(g_file_set_contents(conf, "[dm]\nfrobnicate=1\n", -1, NULL));
    char *dm = g_build_filename(build_root(), "devmodel", "ferry-dm", NULL);
    const char *argv[] = { dm, "--connect=/nonexistent", arg, NULL };
    int status;
    ck_assert(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                           NULL, NULL, &status, NULL));
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    g_free(dm);

    /* Every refusal names the file, the group, the key and what is wrong. */
    GString *many = g_string_new("[qemu]\n");
    for (int i = 0; i <= FERRY_DM_OPTS_MAX; i++)
        g_string_append_printf(many, "k%d=v\n", i);
    char *longval = g_strdup_printf("[qemu:nic]\ndevice=%0*d\n", FERRY_DM_OPT_LEN_MAX + 1, 0);
    char *longkey = g_strdup_printf("[qemu]\nk%0*d=1\n", FERRY_DM_OPT_LEN_MAX + 1, 0);
    char *longid = g_strdup_printf("[qemu:%0*d]\ndevice=e1000\n", FERRY_DM_OPT_LEN_MAX + 1, 0);
    char *devopt = g_strdup_printf("[dm]\ndevices=uart;post,%0*d=1\n", FERRY_DM_OPT_LEN_MAX + 1, 0);
    const struct { const char *text, *want; } bad[] = {
        { many->str, "[qemu] key 'k32': more than 32 keys" },
        { longval, "[qemu:nic] key 'device': value of 1025 bytes is longer than 1024" },
        { longkey, "[qemu] key 'k000" },
        { longid, "[qemu:000" },
        { "[usb]\nqmp=/x\ndevics=1-2\n", "[usb] has no key 'devics' (qmp, policy, devices)" },
        { "[qemu]\ndevice=e1000\xff\n", "[qemu] key 'device': value is not valid UTF-8" },
        { devopt, "[dm] key 'devices': entry 2 (post,0000" },
        { "[dm]\nno-defaults=perhaps\n", "[dm] key 'no-defaults': 'perhaps' is not a boolean "
                                          "(true or false)" },
        { "[dm]\ncpus=1-0\n", "[dm] key 'cpus': '1-0': range 1-0 ends before it starts" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *argv2[] = { dm, "--connect=/nonexistent", arg, NULL };
        char *errout = NULL;

        dm = g_build_filename(build_root(), "devmodel", "ferry-dm", NULL);
        argv2[0] = dm;
        ck_assert(g_file_set_contents(conf, bad[i].text, -1, NULL));
        ck_assert(g_spawn_sync(NULL, (char **)argv2, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, &errout, &status, NULL));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
                      strstr(errout, conf) && strstr(errout, bad[i].want) &&
                      strlen(errout) < 600,
                      "config %zu: status 0x%x, want 2 and '%s' on stderr: %s", i, status,
                      bad[i].want, errout);
        if (i == 2 || i == 3 || i == 6)
            ck_assert_msg(strstr(errout, "longer than 1024"), "config %zu: %s", i, errout);
        g_free(errout);
        g_free(dm);
    }
    /* --usb is for a Ferry guest's own xhci: a QEMU's companion refuses it. */
    {
        char *dm2 = g_build_filename(build_root(), "devmodel", "ferry-dm", NULL);
        const char *argv3[] = { dm2, "--qmp=/nonexistent", "--usb=1d50:6103", NULL };
        char *errout = NULL;

        ck_assert(g_spawn_sync(NULL, (char **)argv3, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, &errout, &status, NULL));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2 &&
                      strstr(errout, "--usb is for a Ferry guest's own xhci"),
                      "ferry-dm --qmp --usb: status 0x%x: %s", status, errout);
        g_free(errout);
        g_free(dm2);
    }
    g_string_free(many, TRUE);
    g_free(longval);
    g_free(longkey);
    g_free(longid);
    g_free(devopt);
    unlink(conf);
    rmdir(dir);
    g_free(arg);
    g_free(conf);
    g_free(dir);
}
END_TEST

START_TEST(test_process_router_gone)
{
    struct hv h;
    int status = -1;

    hv_start(&h, NULL, NULL);
    /* The hypervisor goes away: ferry-dm exits 0 by itself, however long a loaded machine
     * makes it take (the test's timeout bounds the wait, not a count of naps). */
    atomic_store(&h.stop, true);
    pthread_join(h.thread, NULL);
    ioreq_router_destroy(h.r);
    pid_t w;
    while ((w = waitpid(h.dm, &status, 0)) < 0 && errno == EINTR)
        ;
    ck_assert_msg(w == h.dm, "waitpid: %s", strerror(errno));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ferry-dm status 0x%x%s",
                  status, WIFSIGNALED(status) ? " (killed by a signal: see its log above)" : "");
    /*
     * Nobody listens on the control socket any more.  A confined ferry-dm
     * (the default) cannot remove the name (unlink fails softly under its
     * filter, and its root is empty): the file may stay, refusing
     * connections, until whoever runs ferry-dm cleans up or the next
     * ferry-dm on that path replaces it.
     */
    {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h.ctl);
        ck_assert_int_ne(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        unlink(h.ctl);
    }
    h.dm = -1;
    /* hv_stop without the router (already gone). */
    close(h.memfd);
    unlink(h.out);
    rmdir(h.dir);
    g_free(h.out);
    g_free(h.ctl);
    g_free(h.dir);
}
END_TEST

/*
 * Replacing ferry-dm (x-replace, docs/ferry-dm.md): a "vCPU" thread streams
 * a counter through COM1 and checks the scratch register and LSR after each
 * byte, while ferry-dm is replaced again and again.  Every byte must reach
 * the serial file once, in order; no request may be answered all ones or
 * fail; the router never sees the server go.
 */
struct streamer {
    struct hv *h;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint sent;
    atomic_uint bad;            /* a read that was all ones or a request not SENT */
    uint64_t max_ns, total_ns;  /* the longest request (across a replace), all of them */
    char why[160];
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *stream_thread(void *arg)
{
    struct streamer *st = arg;

    for (unsigned i = 0; !atomic_load(&st->stop); i++) {
        int rc1, rc2, rc3;
        uint8_t c = (uint8_t)('a' + i % 26);

        uint64_t t0 = mono_ns();
        pio(st->h, 0x3f8 + 7, 1, true, i & 0x7f, &rc1);        /* SCR */
        uint64_t t1 = mono_ns();
        uint64_t scr = pio(st->h, 0x3f8 + 7, 1, false, 0, &rc2);
        uint64_t t2 = mono_ns();
        pio(st->h, 0x3f8, 1, true, c, &rc3);                    /* THR */
        uint64_t t3 = mono_ns();
        uint64_t m = MAX(MAX(t1 - t0, t2 - t1), t3 - t2);
        st->max_ns = MAX(st->max_ns, m);
        st->total_ns += t3 - t0;
        if (rc1 != IOREQ_SENT || rc2 != IOREQ_SENT || rc3 != IOREQ_SENT || scr != (i & 0x7f)) {
            if (atomic_fetch_add(&st->bad, 1) == 0)
                snprintf(st->why, sizeof(st->why), "byte %u: results %d/%d/%d, scratch 0x%llx",
                         i, rc1, rc2, rc3, (unsigned long long)scr);
            break;
        }
        atomic_fetch_add(&st->sent, 1);
    }
    return NULL;
}

/* `ferry dm replace [extra]`: the new pid (0 when refused; *err then has the reason). */
static pid_t dm_replace(struct hv *h, const char *extra, char **err)
{
    char *cli = g_build_filename(build_root(), "cli", "ferry", NULL);
    const char *argv[] = { cli, "dm", "-s", h->ctl, "replace", extra, NULL };
    char *out = NULL, *errout = NULL;
    GError *gerr = NULL;
    int status;
    pid_t pid = 0;

    /* No assertion in here: a failure must first stop what runs on the caller's stack. */
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errout,
                      &status, &gerr)) {
        errout = g_strdup_printf("cannot run %s: %s", cli, gerr ? gerr->message : "?");
    } else if (g_spawn_check_wait_status(status, NULL)) {
        const char *p = strstr(out, "\"pid\"");
        if (p && strchr(p, ':'))
            pid = (pid_t)atoi(strchr(p, ':') + 1);
        if (pid <= 0) {
            g_free(errout);
            errout = g_strdup_printf("replace printed no pid: %s", out);
            pid = 0;
        }
    }
    if (err)
        *err = g_strdup(errout ? errout : "");
    g_clear_error(&gerr);
    g_free(cli);
    g_free(out);
    g_free(errout);
    return pid;
}

/*
 * A replace that must work.  Refused: the streaming "vCPU" thread and the
 * router's thread use the caller's stack, and a failed assertion leaves it
 * (CK_NOFORK): both are stopped and ferry-dm killed first, then the test
 * fails saying why the replace was refused.
 */
static pid_t dm_replace_or_fail(struct hv *h, struct streamer *st, int k)
{
    char *err = NULL;
    pid_t next = dm_replace(h, NULL, &err);

    if (next > 0) {
        g_free(err);
        return next;
    }
    if (st) {
        atomic_store(&st->stop, true);
        pthread_join(st->thread, NULL);
    }
    hv_stop(h);
    ck_abort_msg("replace %d refused: %s", k, err);
    return 0;   /* not reached */
}

/* pid's child named ferry-launcher (its successor launcher), or 0. */
static pid_t launcher_of(pid_t pid)
{
    char path[64], *kids = NULL;
    pid_t found = 0;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    if (!g_file_get_contents(path, &kids, NULL, NULL))
        return 0;
    for (char *p = kids, *end; !found && *p; p = end) {
        long k = strtol(p, &end, 10);
        char *comm = NULL;

        if (end == p)
            break;
        snprintf(path, sizeof(path), "/proc/%ld/comm", k);
        if (g_file_get_contents(path, &comm, NULL, NULL) && !strcmp(g_strstrip(comm),
                                                                    "ferry-launcher"))
            found = (pid_t)k;
        g_free(comm);
    }
    g_free(kids);
    return found;
}

/* The target of /proc/PID/ns/NAME ("net:[4026531840]"), g_free it. */
static char *ns_of(pid_t pid, const char *name)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
    return g_file_read_link(path, NULL);
}

/*
 * A ferry-dm started as root (as here) with namespaces confines itself in
 * new mount and network namespaces of its own, in our user namespace (not
 * a nested one, which a successor started without CAP_SYS_ADMIN fell back
 * to, and which cannot map uid 0 at all), as uid: the first one and every
 * successor alike.
 */
static void ck_confined_like_first(pid_t pid, unsigned uid)
{
    static const char *const names[] = { "user", "mnt", "net" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        char *ours = ns_of(getpid(), names[i]), *its = ns_of(pid, names[i]);

        ck_assert_msg(ours && its, "cannot read the %s namespace of %d", names[i], (int)pid);
        ck_assert_msg(i == 0 ? !strcmp(ours, its) : strcmp(ours, its) != 0,
                      "ferry-dm %d: %s namespace %s, the test's %s", (int)pid, names[i], its,
                      ours);
        g_free(ours);
        g_free(its);
    }
    char path[64], *status = NULL;
    unsigned r = ~0u, e = ~0u;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    ck_assert(g_file_get_contents(path, &status, NULL, NULL));
    const char *l = strstr(status, "\nUid:");
    ck_assert_msg(l && sscanf(l, "\nUid: %u %u", &r, &e) == 2 && r == uid && e == uid,
                  "ferry-dm %d: uid %u/%u, not %u", (int)pid, r, e, uid);
    g_free(status);
}

/* The old ferry-dm exits once its successor serves: reap it (it is our child only at first). */
static void reap_if_child(pid_t pid)
{
    int st;

    if (waitpid(pid, &st, 0) == pid)
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "the replaced ferry-dm %d ended with status 0x%x", (int)pid, st);
}

static void kill_dm(struct hv *h)
{
    if (h->dm > 0) {
        kill(h->dm, SIGKILL);
        waitpid(h->dm, NULL, 0);
        h->dm = -1;
    }
}

START_TEST(test_process_replace)
{
    struct hv h;
    struct streamer st = { .h = &h };
    struct ioreq_router_stats rs;
    enum { ROUNDS = 5 };
    pid_t first;

    hv_start(&h, NULL, NULL);
    first = h.dm;
    /* hv_start's probes before ferry-dm served were unclaimed: count from here. */
    struct ioreq_router_stats rs0;
    ioreq_router_get_stats(h.r, &rs0);
    ck_assert_int_eq(pthread_create(&st.thread, NULL, stream_thread, &st), 0);
    for (int k = 0; k < ROUNDS; k++) {
        unsigned before = atomic_load(&st.sent);
        pid_t next = dm_replace_or_fail(&h, &st, k);

        if (h.dm == first)
            reap_if_child(first);
        h.dm = next;
        /* The successor serves: the stream goes on. */
        while (atomic_load(&st.sent) < before + 200 && !atomic_load(&st.bad))
            usleep(1000);
        ck_assert_msg(!atomic_load(&st.bad), "%s", st.why);
        /* The control socket is the same one: a status through it works. */
        int status;
        g_free(dm_cli(&h, &status, "status", NULL, NULL));
        ck_assert_msg(g_spawn_check_wait_status(status, NULL), "status after replace %d", k);
    }
    atomic_store(&st.stop, true);
    pthread_join(st.thread, NULL);
    ck_assert_msg(!atomic_load(&st.bad), "%s", st.why);
    /* The last successor is confined as the first one was (the user "ferry", its own
     * namespaces), not in a user namespace of its own. */
    ck_confined_like_first(h.dm, getpwnam("ferry")->pw_uid);

    /* Every byte once, in order. */
    unsigned n = atomic_load(&st.sent);
    /* A figure, not a check: the longest a "vCPU" waited across the replaces. */
    printf("replace: longest request across %d replaces %.1f ms; mean request %.1f us "
           "(%u bytes)\n", ROUNDS, st.max_ns / 1e6, st.total_ns / 3e3 / (n ? n : 1), n);
    char *out = slurp(h.out);
    size_t len = strlen(out);
    ck_assert_msg(len == n, "%u bytes sent, %zu in the serial file", n, len);
    for (unsigned i = 0; i < n; i++)
        ck_assert_msg(out[i] == (char)('a' + i % 26), "byte %u is '%c', not '%c'", i, out[i],
                      'a' + i % 26);
    g_free(out);
    ioreq_router_get_stats(h.r, &rs);
    ck_assert_uint_eq(rs.failed, rs0.failed);
    ck_assert_uint_eq(rs.unclaimed_reads + rs.unclaimed_writes,
                      rs0.unclaimed_reads + rs0.unclaimed_writes);
    ck_assert_uint_eq(atomic_load(&h.gone), 0);
    kill_dm(&h);
    hv_stop(&h);
}
END_TEST

/*
 * ferry-dm --user=root with namespaces (the confinement a root ferry-dm
 * takes: no capabilities, seccomp, its own namespaces) is replaced like any
 * other: its successor confines itself the same way.  It used to fail with
 * "sandbox: cannot map uid 0 and gid 0 into the new user namespace": the
 * launcher had dropped every capability, so the successor could only try a
 * user namespace, where uid 0 may not be mapped without CAP_SETFCAP.
 */
START_TEST(test_process_replace_root)
{
    struct hv h;
    int rc;

    hv_start(&h, "--user=root", NULL);
    ck_confined_like_first(h.dm, 0);
    pio(&h, 0x3f8 + 7, 1, true, 0x5a, &rc);
    for (int k = 0; k < 2; k++) {
        pid_t first = h.dm, next = dm_replace_or_fail(&h, NULL, k);

        if (k == 0)
            reap_if_child(first);
        h.dm = next;
        ck_confined_like_first(next, 0);
        ck_assert_uint_eq(pio(&h, 0x3f8 + 7, 1, false, 0, &rc), 0x5a);
        ck_assert_int_eq(rc, IOREQ_SENT);
    }
    kill_dm(&h);
    hv_stop(&h);
}
END_TEST

/*
 * Refusals: a corrupt, truncated or foreign-version state, a back end that
 * changed between the fds' passing and the freeze, and a successor that
 * cannot start each leave the old ferry-dm serving, and the command says
 * why.
 */
START_TEST(test_process_replace_refused)
{
    static const struct { const char *arg, *needle; } cases[] = {
        { "x-fault=checksum", "checksum" },
        { "x-fault=truncate", "truncated" },
        { "x-fault=version", "incompatible state version" },
        { "x-fault=stale", "try again" },
        { "x-fault=fds", "fds announced" },
        { "binary=/bin/true", "takes no other program" },
    };
    struct hv h;
    int rc;

    hv_start(&h, NULL, NULL);
    for (size_t k = 0; k < G_N_ELEMENTS(cases); k++) {
        char *err = NULL;

        pio(&h, 0x3f8 + 7, 1, true, 0x40 + k, &rc);
        ck_assert_int_eq(dm_replace(&h, cases[k].arg, &err), 0);
        ck_assert_msg(strstr(err, cases[k].needle), "%s: '%s' lacks '%s'", cases[k].arg, err,
                      cases[k].needle);
        g_free(err);
        /* The old one serves on, its state intact; it did not exit. */
        ck_assert_uint_eq(pio(&h, 0x3f8 + 7, 1, false, 0, &rc), 0x40 + k);
        ck_assert_int_eq(rc, IOREQ_SENT);
        ck_assert_int_eq(waitpid(h.dm, NULL, WNOHANG), 0);
    }
    /* And it can still be replaced for real afterwards. */
    pid_t first = h.dm, next = dm_replace_or_fail(&h, NULL, -1);
    reap_if_child(first);
    h.dm = next;
    ck_assert_uint_eq(pio(&h, 0x3f8 + 7, 1, false, 0, &rc), 0x40 + G_N_ELEMENTS(cases) - 1);
    kill_dm(&h);
    hv_stop(&h);

    /* Its successor launcher gone (killed here; a launcher that died on its own, the same):
     * the replace says so, and the old ferry-dm serves on. */
    hv_start(&h, NULL, NULL);
    /* The launcher names itself after its fork: a loaded machine may not have run it yet
     * (the test's timeout bounds the wait). */
    pid_t helper;
    while ((helper = launcher_of(h.dm)) == 0 && waitpid(h.dm, NULL, WNOHANG) == 0)
        g_usleep(1000);
    ck_assert_msg(helper > 0, "ferry-dm %d has no ferry-launcher child", (int)h.dm);
    ck_assert_int_eq(kill(helper, SIGKILL), 0);
    pio(&h, 0x3f8 + 7, 1, true, 0x44, &rc);
    for (int k = 0; k < 2; k++) {
        char *err = NULL;

        ck_assert_int_eq(dm_replace(&h, NULL, &err), 0);
        ck_assert_msg(strstr(err, "its launcher") && strstr(err, "has exited") &&
                      strstr(err, "goes on serving"), "'%s' does not say the launcher is gone",
                      err);
        g_free(err);
        ck_assert_uint_eq(pio(&h, 0x3f8 + 7, 1, false, 0, &rc), 0x44);
        ck_assert_int_eq(rc, IOREQ_SENT);
        ck_assert_int_eq(waitpid(h.dm, NULL, WNOHANG), 0);
    }
    kill_dm(&h);
    hv_stop(&h);

    /* A successor that exits at once (--successor names a program that is no ferry-dm). */
    hv_start(&h, "--successor=/bin/true", NULL);
    char *err = NULL;
    pio(&h, 0x3f8 + 7, 1, true, 0x33, &rc);
    ck_assert_int_eq(dm_replace(&h, NULL, &err), 0);
    ck_assert_msg(strstr(err, "exited"), "'%s' lacks 'exited'", err);
    g_free(err);
    ck_assert_uint_eq(pio(&h, 0x3f8 + 7, 1, false, 0, &rc), 0x33);
    ck_assert_int_eq(rc, IOREQ_SENT);
    ck_assert_int_eq(waitpid(h.dm, NULL, WNOHANG), 0);
    kill_dm(&h);
    hv_stop(&h);
}
END_TEST

/* What an eventfd counted within ms (0: nothing). */
static uint64_t efd_count(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint64_t n = 0;

    if (poll(&p, 1, ms) == 1)
        ck_assert_int_eq(read(fd, &n, sizeof(n)), sizeof(n));
    return n;
}

/*
 * Interrupts across a replace: the successor keeps the irqfd of COM1's GSI
 * and the route of pci-test's MSI that its predecessor registered (no
 * second registration: the router sees each once), signals the same
 * eventfds, and does not send again the THRE interrupt the predecessor
 * had already sent (the level it restores is not an edge).
 */
START_TEST(test_process_replace_irqs)
{
    struct hv h;
    int rc;

    chip.on = true;
    hv_start(&h, "--device=pci-test,id=t0,addr=5", NULL);
    unsigned cap = cfg_read(&h, 5, 0x34) & 0xff;
    ck_assert_uint_eq(cfg_read(&h, 5, cap) & 0xff, 0x05);
    cfg_write(&h, 5, 0x10, 0xc000);
    cfg_write(&h, 5, cap + 4, 0xfee00000u);
    cfg_write(&h, 5, cap + 8, 0);
    cfg_write(&h, 5, cap + 12, 0x51);
    cfg_write(&h, 5, cap, cfg_read(&h, 5, cap) | 0x10000);
    cfg_write(&h, 5, 0x04, 0x0005);
    pio(&h, 0xc004, 4, true, 2, &rc);                   /* MSI vector 0 */
    ck_assert_int_eq(rc, IOREQ_SENT);
    ck_assert_uint_eq(chip.msi_routes, 1);
    ck_assert_int_ge(chip.msi_fd, 0);
    ck_assert_uint_eq(efd_count(chip.msi_fd, 5000), 1);
    pio(&h, 0x3f8 + 1, 1, true, 0x02, &rc);             /* IER: THRE */
    pio(&h, 0x3f8 + 4, 1, true, 0x08, &rc);             /* MCR: OUT2 */
    ck_assert_uint_eq(chip.gsi4_assigns, 1);
    ck_assert_int_ge(chip.gsi4_fd, 0);
    ck_assert_uint_ge(efd_count(chip.gsi4_fd, 5000), 1);    /* THR empty: pending */

    for (int k = 0; k < 3; k++) {
        pid_t first = h.dm, next = dm_replace_or_fail(&h, NULL, k);

        if (k == 0)
            reap_if_child(first);
        h.dm = next;
        /* Still pending, but sent already: no second edge. */
        ck_assert_uint_eq(efd_count(chip.gsi4_fd, 200), 0);
        ck_assert_uint_eq((uint32_t)pio(&h, 0x3f8 + 2, 1, false, 0, &rc) & 0x0f, 0x02);
        /* IIR read cleared THRE; a byte sent sets it again: an edge on the same irqfd. */
        pio(&h, 0x3f8, 1, true, 'a' + k, &rc);
        ck_assert_uint_ge(efd_count(chip.gsi4_fd, 5000), 1);
        pio(&h, 0xc004, 4, true, 2, &rc);
        ck_assert_uint_eq(efd_count(chip.msi_fd, 5000), 1);
        ck_assert_uint_eq(chip.msi_routes, 1);
        ck_assert_uint_eq(chip.gsi4_assigns, 1);
    }
    kill_dm(&h);
    hv_stop(&h);
    close(chip.gsi4_fd);
    close(chip.msi_fd);
    chip = (typeof(chip)){ .gsi4_fd = -1, .msi_fd = -1 };
}
END_TEST

/*
 * A handover of more fds than one SCM_RIGHTS message carries (and than the
 * old limit of 64): 70 more UARTs, each with a serial file and an input
 * socket that a client stays connected to (three fds each: over 210 in
 * all, two messages), replaced twice.  Every UART still writes its file where it was and reads what its
 * client sends, through the fds its predecessor passed.
 */
START_TEST(test_process_replace_many_fds)
{
    enum { UARTS = 70, ROUNDS = 3 };
    char *dir = g_dir_make_tmp("ferry-dm-fds-XXXXXX", NULL);
    char *conf = g_build_filename(dir, "many.conf", NULL);
    GString *text = g_string_new("[dm]\ndevices=");
    int clients[UARTS];
    struct hv h;
    int rc;

    ck_assert_ptr_nonnull(dir);
    for (int i = 0; i < UARTS; i++)
        g_string_append_printf(text, "%suart,id=u%d,port=0x%x,irq=%d,out=file:%s/u%d.out,"
                               "in=socket:%s/u%d.in", i ? ";" : "", i, 0x1000 + 8 * i, 100 + i,
                               dir, i, dir, i);
    g_string_append_c(text, '\n');
    ck_assert(g_file_set_contents(conf, text->str, -1, NULL));
    g_string_free(text, TRUE);
    /* the successors (user ferry) read the config again */
    ck_assert_int_eq(chmod(dir, 0755), 0);
    ck_assert_int_eq(chmod(conf, 0644), 0);
    char *arg = g_strdup_printf("--config=%s", conf);
    hv_start(&h, arg, NULL);
    for (int i = 0; i < UARTS; i++) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        clients[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(clients[i], 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/u%d.in", dir, i);
        ck_assert_msg(connect(clients[i], (struct sockaddr *)&sa, sizeof(sa)) == 0,
                      "connect %s: %s", sa.sun_path, strerror(errno));
    }
    for (int k = 0; k < ROUNDS; k++) {
        if (k == 1) {
            /* an fd short in the second message: refused, the old one serves on (below) */
            char *err = NULL;

            ck_assert_int_eq(dm_replace(&h, "x-fault=fds", &err), 0);
            ck_assert_msg(strstr(err, "fds 200-"), "x-fault=fds: '%s' lacks 'fds 200-'", err);
            g_free(err);
            ck_assert_int_eq(waitpid(h.dm, NULL, WNOHANG), 0);
        }
        if (k > 0) {
            char *err = NULL;
            pid_t first = h.dm, next = dm_replace(&h, NULL, &err);

            ck_assert_msg(next > 0, "replace %d with many fds refused: %s", k, err);
            g_free(err);
            if (k == 1)
                reap_if_child(first);
            h.dm = next;
        } else {
            /* the configuration does need more than one message's worth and 64 */
            char *fddir = g_strdup_printf("/proc/%d/fd", (int)h.dm);
            GDir *d;
            unsigned n = 0;

            /* a client counts once ferry-dm has accepted it */
            for (int t = 0; t < 5000 && n < 3 * UARTS; t++) {
                n = 0;
                d = g_dir_open(fddir, 0, NULL);
                ck_assert_ptr_nonnull(d);
                while (g_dir_read_name(d))
                    n++;
                g_dir_close(d);
                if (n < 3 * UARTS)
                    usleep(1000);
            }
            ck_assert_msg(n >= 3 * UARTS, "ferry-dm holds %u fds, expected over %d", n,
                          3 * UARTS);
            g_free(fddir);
        }
        for (int i = 0; i < UARTS; i++) {
            uint16_t port = (uint16_t)(0x1000 + 8 * i);
            char c = (char)('a' + (i + k) % 26);

            pio(&h, port, 1, true, (uint64_t)('A' + k), &rc);
            ck_assert_int_eq(rc, IOREQ_SENT);
            ck_assert_int_eq(write(clients[i], &c, 1), 1);
            uint64_t lsr = 0;
            for (int t = 0; t < 5000 && !(lsr & 1); t++) {
                lsr = pio(&h, port + 5, 1, false, 0, &rc);
                ck_assert_int_eq(rc, IOREQ_SENT);
                if (!(lsr & 1))
                    usleep(1000);
            }
            ck_assert_msg(lsr & 1, "round %d: u%d never received its client's byte", k, i);
            ck_assert_uint_eq(pio(&h, port, 1, false, 0, &rc), (uint8_t)c);
        }
        for (int i = 0; i < UARTS; i++) {
            char *path = g_strdup_printf("%s/u%d.out", dir, i);
            char *out = NULL;

            for (int t = 0; t < 5000; t++) {
                g_free(out);
                out = slurp(path);
                if (strlen(out) >= (size_t)k + 1)
                    break;
                usleep(1000);
            }
            /* one byte per round, in the same file (a successor does not truncate it) */
            char want[ROUNDS + 1] = { 0 };
            for (int j = 0; j <= k; j++)
                want[j] = (char)('A' + j);
            ck_assert_msg(!strcmp(out, want), "round %d: u%d's file has '%s', not '%s'", k, i,
                          out, want);
            g_free(out);
            g_free(path);
        }
    }
    for (int i = 0; i < UARTS; i++) {
        char *path = g_strdup_printf("%s/u%d.out", dir, i);

        close(clients[i]);
        unlink(path);
        g_free(path);
        path = g_strdup_printf("%s/u%d.in", dir, i);
        unlink(path);
        g_free(path);
    }
    kill_dm(&h);
    hv_stop(&h);
    unlink(conf);
    rmdir(dir);
    g_free(conf);
    g_free(arg);
    g_free(dir);
}
END_TEST

/*
 * A crash restart and the dead ferry-dm's irqfds: ferry-dm is killed
 * (SIGKILL) with COM1's THRE interrupt on an irqfd; the router keeps its
 * registration (server_lost, as ferry-hv --dm-restarts) and deassigns that
 * irqfd at once, though its eventfd lives on here (the test's copy, as a
 * remote QEMU's would): KVM would otherwise keep it.  A fresh ferry-dm takes
 * the registration over, and its own irqfd delivers; the old eventfd is
 * signalled no more.  A clean replace deassigns nothing (test_process_replace_irqs).
 */
START_TEST(test_process_crash_irqfds)
{
    struct hv h;
    int rc, old, sv[2];

    chip.on = true;
    chip.keep_ms = 20000;
    hv_start(&h, NULL, NULL);
    pio(&h, 0x3f8 + 1, 1, true, 0x02, &rc);             /* IER: THRE */
    pio(&h, 0x3f8 + 4, 1, true, 0x08, &rc);             /* MCR: OUT2 */
    ck_assert_uint_eq(chip.gsi4_assigns, 1);
    ck_assert_uint_ge(efd_count(chip.gsi4_fd, 5000), 1);
    old = fcntl(chip.gsi4_fd, F_DUPFD_CLOEXEC, 3);
    ck_assert_int_ge(old, 0);
    kill(h.dm, SIGKILL);
    waitpid(h.dm, NULL, 0);
    h.dm = -1;
    for (int i = 0; i < 5000 && atomic_load(&chip.gsi4_deassigns) == 0; i++)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&chip.gsi4_deassigns), 1);
    ck_assert_uint_eq(atomic_load(&h.gone), 0);         /* kept for a restart */

    /* the restart: a fresh ferry-dm with the same name on a new connection */
    atomic_store(&h.stop, true);
    pthread_join(h.thread, NULL);
    atomic_store(&h.stop, false);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ioreq_router_add_connection(h.r, sv[0]), 0);
    ck_assert_int_eq(pthread_create(&h.thread, NULL, control_thread, &h), 0);
    {
        char *dm = g_build_filename(build_root(), "devmodel", "ferry-dm", NULL);
        char fdarg[32], serial[512], control[512];

        snprintf(fdarg, sizeof(fdarg), "--ioreq-fd=%d", sv[1]);
        snprintf(serial, sizeof(serial), "--serial=file:%s", h.out);
        snprintf(control, sizeof(control), "--control=%s", h.ctl);
        h.dm = fork();
        ck_assert_int_ge(h.dm, 0);
        if (h.dm == 0) {
            fcntl(sv[1], F_SETFD, 0);
            execl(dm, dm, fdarg, serial, control, "--name=proc-test", (char *)NULL);
            _exit(127);
        }
        close(sv[1]);
        g_free(dm);
    }
    /* the devices start afresh: the guest programs COM1 again */
    for (int i = 0; i < 10000; i++) {
        pio(&h, 0x80, 1, false, 0, &rc);
        if (rc == IOREQ_SENT)
            break;
        usleep(1000);
    }
    ck_assert_int_eq(rc, IOREQ_SENT);
    pio(&h, 0x3f8 + 1, 1, true, 0x02, &rc);
    pio(&h, 0x3f8 + 4, 1, true, 0x08, &rc);
    ck_assert_uint_eq(chip.gsi4_assigns, 2);            /* its own, one assigned in all */
    ck_assert_uint_eq(atomic_load(&chip.gsi4_deassigns), 1);
    ck_assert_uint_ge(efd_count(chip.gsi4_fd, 5000), 1);
    ck_assert_uint_eq((uint32_t)pio(&h, 0x3f8 + 2, 1, false, 0, &rc) & 0x0f, 0x02);
    pio(&h, 0x3f8, 1, true, 'x', &rc);                  /* THRE again: an edge */
    ck_assert_uint_ge(efd_count(chip.gsi4_fd, 5000), 1);
    ck_assert_uint_eq(efd_count(old, 200), 0);
    close(old);
    chip.keep_ms = 0;       /* its end is an end */
    kill_dm(&h);
    hv_stop(&h);
    ck_assert_uint_eq(atomic_load(&chip.gsi4_deassigns), 2);  /* the fresh one's, at its end */
    close(chip.gsi4_fd);
    close(chip.msi_fd);
    chip = (typeof(chip)){ .gsi4_fd = -1, .msi_fd = -1 };
}
END_TEST

int main(void)
{
    Suite *s = suite_create("devmodel-process");

    suite_add_tcase(s, FERRY_CHECK_TCASE("ferry-dm", 120, test_process_devices, test_process_killed,
                                         test_process_config_file, test_process_router_gone,
                                         test_process_replace, test_process_replace_root,
                                         test_process_replace_refused,
                                         test_process_replace_irqs,
                                         test_process_replace_many_fds,
                                         test_process_crash_irqfds));
    return ferry_check_run(s, CK_NOFORK);
}
