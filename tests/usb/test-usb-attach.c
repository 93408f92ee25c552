// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * usb suite: attach, detach, unplug/replug and persistent assignments
 * against a real QEMU (TCG, no guest OS: the firmware idles; QEMU's own
 * view of its USB devices, their QOM "attached" property, is the truth).
 * Not -S: usb-redir attaches on a virtual-clock timer.  Simulated devices
 * (umockdev), so run under umockdev-wrapper.  Skips without QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <glib.h>
#include "common/json.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usb/ferry-usb.h"
#include "usbsim.h"

#define WAIT_MS 60000

static int failures;

#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, "\n"); \
            failures++; \
            goto out; \
        } \
    } while (0)

struct ctx {
    struct event_base *b;
    struct ferry_usb_service *svc;
    char qmp[128], qmp2[128];
    int want;
};

static void tlog(void *opaque, enum ferry_log_level level, const char *msg)
{
    if (level <= FERRY_LOG_INFO || getenv("FERRY_TEST_VERBOSE"))
        fprintf(stderr, "test-usb-attach: %s\n", msg);
}

static bool loop_until(struct ctx *c, bool (*pred)(struct ctx *), int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (!pred(c)) {
        if (g_get_monotonic_time() > end)
            return false;
        event_base_loop(c->b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        g_usleep(2000);
    }
    return true;
}

/* usb-redir devices QEMU has attached to its USB bus (QOM property
 * "attached" of /machine/peripheral/ferryusb*), -1 on error. */
static int qemu_usb_devices(struct ctx *c, char **text)
{
    struct ferry_usb_qmp *q;
    char err[FERRY_USB_ERR_MAX], *list = NULL;
    GString *t = g_string_new(NULL);
    json_t *root;
    int n = 0;

    if (usb_qmp_open(c->qmp, 10000, &q, err, sizeof(err)) < 0) {
        g_string_free(t, TRUE);
        return -1;
    }
    if (usb_qmp_execute(q, "qom-list", "{\"path\":\"/machine/peripheral\"}", &list, err,
                              sizeof(err)) < 0 || !(root = json_loads(list, 0, NULL))) {
        g_free(list);
        usb_qmp_close(q);
        g_string_free(t, TRUE);
        return -1;
    }
    for (guint i = 0; json_is_array(root) &&
                      i < json_array_size(root); i++) {
        json_t *o = json_array_get(root, i);
        const char *name = o ? ferry_json_string(o, "name", "") : "";
        char args[160], *reply = NULL;

        if (!g_str_has_prefix(name, "ferryusb"))
            continue;
        snprintf(args, sizeof(args),
                 "{\"path\":\"/machine/peripheral/%.64s\",\"property\":\"attached\"}", name);
        if (usb_qmp_execute(q, "qom-get", args, &reply, err, sizeof(err)) == 0) {
            g_string_append_printf(t, "%s attached=%s\n", name, reply);
            n += !strcmp(reply, "true");
        }
        g_free(reply);
    }
    json_decref(root);
    g_free(list);
    usb_qmp_close(q);
    if (text)
        *text = g_string_free(t, FALSE);
    else
        g_string_free(t, TRUE);
    return n;
}

static bool qemu_has_want(struct ctx *c)
{
    static gint64 last;
    gint64 now = g_get_monotonic_time();

    /* ask QEMU at most every 100 ms; keep serving in between */
    if (now - last < 100000)
        return false;
    last = now;
    return qemu_usb_devices(c, NULL) == c->want;
}

static bool connected_want(struct ctx *c)
{
    return usb_service_connected(c->svc) == (unsigned)c->want;
}

static bool both_want(struct ctx *c)
{
    return connected_want(c) && qemu_has_want(c);
}

static bool driver_is(struct usbsim_dev *d, const char *want)
{
    char drv[32];

    usbsim_driver(d, drv, sizeof(drv));
    return !strcmp(drv, want);
}

/* Two QMP sockets: a QMP socket serves one client at a time, and the
 * service keeps the second one (usb_service_add_guest). */
static GPid spawn_qemu(const char *qmp, const char *qmp2)
{
    const char *argv[] = {
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-nodefaults",
        "-display", "none", "-m", "64", "-device", "qemu-xhci,id=xhci",
        "-qmp", NULL, "-qmp", NULL, NULL,
    };
    char *qmparg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
    char *qmparg2 = g_strdup_printf("unix:%s,server=on,wait=off", qmp2);
    char **envp = g_get_environ();
    GError *err = NULL;
    GPid pid = 0;

    argv[13] = qmparg;
    argv[15] = qmparg2;
    /* QEMU must see the real system, not the testbed */
    envp = g_environ_unsetenv(envp, "LD_PRELOAD");
    envp = g_environ_unsetenv(envp, "UMOCKDEV_DIR");
    if (!g_spawn_async(NULL, (char **)argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                       NULL, NULL, &pid, &err)) {
        fprintf(stderr, "qemu: %s\n", err->message);
        g_clear_error(&err);
        pid = 0;
    }
    g_strfreev(envp);
    g_free(qmparg);
    g_free(qmparg2);
    return pid;
}

int main(void)
{
    struct ctx c = { 0 };
    struct ferry_usb_service_ops ops = { .log = tlog };
    struct usbsim *sim = NULL;
    struct usbsim_dev *kbd, *disk, *v1, *v2;
    struct event_config *cfg;
    char dir[] = "/tmp/ferry-usb-attach-XXXXXX";
    char err[FERRY_USB_ERR_MAX];
    char *qemu = g_find_program_in_path("qemu-system-x86_64");
    GPid pid = 0;
    int r;

    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    g_free(qemu);
    if (!g_mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(c.qmp, sizeof(c.qmp), "%s/qmp.sock", dir);
    snprintf(c.qmp2, sizeof(c.qmp2), "%s/qmp2.sock", dir);
    /* start QEMU before the testbed exists */
    pid = spawn_qemu(c.qmp, c.qmp2);
    if (!pid)
        return 1;
    sim = usbsim_new();
    if (!sim) {
        printf("FAIL: no umockdev testbed: run under umockdev-wrapper, as meson test does\n");
        kill(pid, SIGKILL);
        return 1;
    }
    kbd = usbsim_add(sim, USBSIM_KEYBOARD, "1-2", "KBD1");
    disk = usbsim_add(sim, USBSIM_STORAGE, "1-3", "DISK1");
    v1 = usbsim_add(sim, USBSIM_VENDOR, "1-4", NULL);
    v2 = usbsim_add(sim, USBSIM_VENDOR, "1-5.2", "V2");
    cfg = event_config_new();
    event_config_avoid_method(cfg, "epoll");   /* umockdev nodes are regular files */
    c.b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    CHECK(usb_service_new(c.b, dir, &ops, NULL, &c.svc) == 0, "service");
    for (int i = 0; i < 100 && access(c.qmp, F_OK) < 0; i++)
        g_usleep(100000);
    c.want = 0;
    CHECK(qemu_usb_devices(&c, NULL) == 0, "QEMU's USB bus is not empty or QMP failed");

    /* policy: the keyboard needs a rule that names it */
    r = usb_service_attach(c.svc, c.qmp, "1d50:6101", err, sizeof(err));
    CHECK(r == -EPERM && strstr(err, "built-in rule: HID keyboards"), "%d %s", r, err);
    /* ambiguity lists the candidates */
    r = usb_service_attach(c.svc, c.qmp, "1d50:6103", err, sizeof(err));
    CHECK(r == -EEXIST && strstr(err, "1-4") && strstr(err, "1-5.2"), "%d %s", r, err);
    r = usb_service_attach(c.svc, c.qmp, "1-9", err, sizeof(err));
    CHECK(r == -ENOENT, "%d %s", r, err);

    CHECK(usb_service_set_policy(c.svc, c.qmp, "0x03,-1,-1,-1,1|-1,-1,-1,-1,1",
                                       err, sizeof(err)) == 0, "%s", err);
    r = usb_service_attach(c.svc, c.qmp, "1d50:6101", err, sizeof(err));
    CHECK(r == 0, "attach keyboard: %s", err);
    {
        char bus_addr[16];
        snprintf(bus_addr, sizeof(bus_addr), "%d.%d", usbsim_busnum(disk), usbsim_devnum(disk));
        r = usb_service_attach(c.svc, c.qmp, bus_addr, err, sizeof(err));
        CHECK(r == 0, "attach disk by bus.addr: %s", err);
    }
    r = usb_service_attach(c.svc, c.qmp, "1-3", err, sizeof(err));
    CHECK(r == -EBUSY, "second attach: %d %s", r, err);
    c.want = 2;
    CHECK(loop_until(&c, both_want, WAIT_MS), "QEMU does not show 2 devices");
    CHECK(driver_is(disk, ""), "host driver still bound to the disk");
    {
        char *json = usb_service_list_json(c.svc);
        CHECK(strstr(json, "\"attached\" : \"") != NULL, "%s", json);
        g_free(json);
    }

    /* unplug: gone from QEMU; replug: back, without any command */
    usbsim_unplug(sim, disk);
    c.want = 1;
    CHECK(loop_until(&c, both_want, WAIT_MS), "unplugged disk still in QEMU");
    CHECK(usbsim_replug(sim, disk) == 0, "replug");
    c.want = 2;
    CHECK(loop_until(&c, both_want, WAIT_MS), "replugged disk not back in QEMU");

    /* detach: gone from QEMU, back to the host's driver */
    r = usb_service_detach(c.svc, c.qmp, "1d50:6102:DISK1", err, sizeof(err));
    CHECK(r == 0, "detach: %s", err);
    c.want = 1;
    CHECK(loop_until(&c, both_want, WAIT_MS), "detached disk still in QEMU");
    CHECK(driver_is(disk, "usb-storage"), "disk not given back to usb-storage");
    r = usb_service_detach(c.svc, c.qmp, "1d50:6102:DISK1", err, sizeof(err));
    CHECK(r == -ENOENT, "second detach: %d", r);

    /* persistent assignment from a guest config, device not yet present */
    usbsim_unplug(sim, v2);
    {
        GKeyFile *kf = g_key_file_new();
        char *conf = g_strdup_printf("[usb]\nqmp=%s\ndevices=1d50:6103:V2;1-4\n", c.qmp);
        CHECK(g_key_file_load_from_data(kf, conf, (gsize)-1, 0, NULL), "keyfile");
        r = usb_service_load_config(c.svc, kf, err, sizeof(err));
        g_free(conf);
        g_key_file_unref(kf);
        CHECK(r == 0, "config: %s", err);
    }
    c.want = 2;     /* keyboard + 1-4 */
    CHECK(loop_until(&c, both_want, WAIT_MS), "1-4 from the config not attached");
    CHECK(usbsim_replug(sim, v2) == 0, "replug v2");
    c.want = 3;
    CHECK(loop_until(&c, both_want, WAIT_MS), "V2 not attached when it appeared");

    /* a device a broker opened and handed over as an fd */
    {
        struct usbsim_dev *w = usbsim_add(sim, USBSIM_VENDOR, "1-6", "WRAPPED");
        int fd = open(usbsim_devnode(w), O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0, "open %s", usbsim_devnode(w));
        r = usb_service_attach_fd(c.svc, c.qmp, fd, err, sizeof(err));
        CHECK(r == 0, "attach fd: %s", err);
        c.want = 4;
        CHECK(loop_until(&c, both_want, WAIT_MS), "device from the fd not attached");
        r = usb_service_detach(c.svc, c.qmp, "1d50:6103:WRAPPED", err, sizeof(err));
        CHECK(r == 0, "detach fd device: %s", err);     /* and the fd is closed */
    }
    (void)v1;
    (void)kbd;
    printf("ok: attach, policy, ambiguity, unplug/replug, detach, config\n");

    /* ferry-dm's way: QMP kept open, channels are socketpairs handed over
     * with getfd; a broker's fd, its unplug, and the new fd after a replug */
    usb_service_free(c.svc);
    c.svc = NULL;
    CHECK(usb_service_new(c.b, dir, &ops, NULL, &c.svc) == 0, "service 2");
    CHECK(usb_service_add_guest(c.svc, c.qmp2, err, sizeof(err)) == 0, "add guest: %s",
          err);
    c.want = 0;
    CHECK(loop_until(&c, both_want, WAIT_MS), "devices of the first service still attached");
    {
        struct usbsim_dev *w = usbsim_add(sim, USBSIM_VENDOR, "1-7", "REBIND");
        int fd = open(usbsim_devnode(w), O_RDWR | O_CLOEXEC);

        CHECK(fd >= 0, "open %s", usbsim_devnode(w));
        r = usb_service_attach_fd(c.svc, c.qmp2, fd, err, sizeof(err));
        CHECK(r == 0, "attach fd over getfd: %s", err);
        c.want = 1;
        CHECK(loop_until(&c, both_want, WAIT_MS), "socketpair channel not attached in QEMU");
        /* the broker says it went (a confined ferry-dm has no hotplug) */
        r = usb_service_device_left(c.svc, c.qmp2, "1d50:6103:REBIND", err, sizeof(err));
        CHECK(r == 0, "device_left: %s", err);
        c.want = 0;
        CHECK(loop_until(&c, both_want, WAIT_MS), "device still in QEMU after usb-unplugged");
        usbsim_unplug(sim, w);
        CHECK(usbsim_replug(sim, w) == 0, "replug");
        /* the broker's new fd goes to the same assignment, over a new channel */
        fd = open(usbsim_devnode(w), O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0, "open %s again", usbsim_devnode(w));
        r = usb_service_attach_fd(c.svc, c.qmp2, fd, err, sizeof(err));
        CHECK(r == 0, "new fd after the replug: %s", err);
        c.want = 1;
        CHECK(loop_until(&c, both_want, WAIT_MS), "replugged device not back in QEMU");
        r = usb_service_detach(c.svc, c.qmp2, "1d50:6103:REBIND", err, sizeof(err));
        CHECK(r == 0, "detach: %s", err);
        c.want = 0;
        CHECK(loop_until(&c, both_want, WAIT_MS), "detached device still in QEMU");
    }
    printf("ok: channels over getfd, broker fd, unplug notice, new fd after replug\n");
out:
    if (getenv("FERRY_TEST_VERBOSE") && c.b) {
        char *t = NULL;
        if (qemu_usb_devices(&c, &t) >= 0)
            fprintf(stderr, "info usb:\n%s\n", t);
        g_free(t);
    }
    usb_service_free(c.svc);
    if (c.b)
        event_base_free(c.b);
    usbsim_free(sim);
    if (pid) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    unlink(c.qmp);
    unlink(c.qmp2);
    rmdir(dir);
    return failures ? 1 : 0;
}
