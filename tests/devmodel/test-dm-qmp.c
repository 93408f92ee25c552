// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's asynchronous DEVICE_DELETED waits (common/qmp-wait.h on dm-qmp.h's
 * connection) with deferred
 * control replies (control.h), against a real stock QEMU (i440fx, ACPI PCI
 * hotplug, so an unplug needs the guest): while a detach waits for a guest
 * that does not let go, another control client is answered; the wait ends
 * with a timeout, with the event once a guest (a tiny firmware that ejects
 * what QEMU asks for) lets go, and with an error when QEMU goes.  The
 * handler is the test's own "test-detach", shaped as dm-vfio.c's
 * pci-detach (which needs a VFIO device: tests/pcihost, guest suite).
 * SKIP without qemu-system-x86_64.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "companion/dm-qmp.h"
#include "devmodel/control.h"
#include "tests/check-main.h"
#include "tests/devmodel/test-devmodel.h"
#include "usb/ferry-usb.h"

/* Killed by main if a failed check left it running. */
static GPid qemu_pid;

struct qd_state {
    struct companion_qmp *d;
    unsigned deferred;
    bool gone;
};

struct qd_op {
    struct ferry_dm_control_pending *p;
};

static void qd_done(void *opaque, int result)
{
    struct qd_op *op = opaque;
    json_t *id = dm_control_pending_id(op->p);

    dm_control_complete(op->p, result == 0 ? dm_control_reply(id, NULL)
                                                 : dm_control_reply_error(
                                                       id, g_strerror(-result)));
    g_free(op);
}

/* test-detach {"device": ID, "ms": N}: device_del, then the deferred wait. */
static char *qd_handler(void *opaque, struct ferry_dm_control_req *req, const char *cmd,
                        json_t *args, json_t *id, int *fd)
{
    struct qd_state *st = opaque;
    struct ferry_dm_control_pending *p;
    char err[FERRY_USB_ERR_MAX], *dargs;
    const char *dev;
    struct qd_op *op;
    int r;

    (void)fd;
    if (strcmp(cmd, "test-detach"))
        return NULL;
    dev = json_string_value(json_object_get(args, "device"));
    p = dm_control_defer(req);
    ck_assert_ptr_nonnull(p);
    dargs = g_strdup_printf("{\"id\": \"%s\"}", dev);
    r = usb_qmp_execute(companion_qmp_client(st->d), "device_del", dargs, NULL, err,
                              sizeof(err));
    g_free(dargs);
    if (r < 0 && !strstr(err, "in the process of unplug")) {
        dm_control_complete(p, dm_control_reply_error(id, err));
        return FERRY_DM_CONTROL_DEFERRED;
    }
    op = g_new0(struct qd_op, 1);
    op->p = p;
    r = ferry_qmp_watch_deleted(companion_qmp_watch(st->d), dev,
                                (int)json_integer_value(json_object_get(args, "ms")), qd_done,
                                op, NULL);
    ck_assert_int_eq(r, 0);
    st->deferred++;
    return FERRY_DM_CONTROL_DEFERRED;
}

static void qd_gone(void *opaque)
{
    ((struct qd_state *)opaque)->gone = true;
}

struct client {
    int fd;
    GString *got;
};

static unsigned client_lines(struct client *c)
{
    char buf[4096];
    ssize_t n;
    unsigned lines = 0;

    while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(c->got, buf, n);
    for (gsize i = 0; i < c->got->len; i++)
        lines += c->got->str[i] == '\n';
    return lines;
}

static char *client_line(struct client *c, unsigned i)
{
    gchar **lines = g_strsplit(c->got->str, "\n", -1);
    char *r = i < g_strv_length(lines) ? g_strdup(lines[i]) : g_strdup("");

    g_strfreev(lines);
    return r;
}

static void client_open(struct client *c, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    c->got = g_string_new(NULL);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void client_send(struct client *c, const char *s)
{
    ck_assert_int_eq(send(c->fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static bool never(struct tb *t, void *arg)
{
    (void)t;
    (void)arg;
    return false;
}

/* Run the loop until c has received n lines (greeting included), at most
 * about a minute (a failing test, not a measure). */
static void loop_until_lines(struct tb *t, struct client *c, unsigned n)
{
    for (unsigned i = 0; i < 6000 && client_lines(c) < n; i++)
        tb_loop_until(t, never, NULL, 10);
    ck_assert_uint_ge(client_lines(c), n);
}

static void loop_until_deferred(struct tb *t, struct qd_state *st, unsigned n)
{
    for (unsigned i = 0; i < 6000 && st->deferred < n; i++)
        tb_loop_until(t, never, NULL, 10);
    ck_assert_uint_eq(st->deferred, n);
}

/* The guest's part in an ACPI PCI hot-unplug on i440fx (what _EJ0 does),
 * as the firmware: select bus 0 (0xae10), poll the slots QEMU wants gone
 * (0xae04), eject them (0xae08).  Also tests/pcihost/pci-guest.py's. */
static void write_eject_firmware(const char *path)
{
    static const unsigned char code[] = {
        0x66, 0x31, 0xc0, 0xba, 0x10, 0xae, 0x66, 0xef,     /* xor eax,eax; out 0xae10 */
        0xf3, 0x90,                                         /* loop: pause */
        0xba, 0x04, 0xae, 0x66, 0xed, 0x66, 0x85, 0xc0, 0x74, 0xf4, /* in 0xae04; jz */
        0xba, 0x08, 0xae, 0x66, 0xef, 0xeb, 0xed,           /* out 0xae08; jmp loop */
    };
    static const unsigned char reset[] = { 0xea, 0x00, 0xff, 0x00, 0xf0 }; /* jmp f000:ff00 */
    guint8 *img = g_malloc(65536);

    memset(img, 0xf4, 65536);
    memcpy(img + 0xff00, code, sizeof(code));
    memcpy(img + 0xfff0, reset, sizeof(reset));
    ck_assert(g_file_set_contents(path, (const char *)img, 65536, NULL));
    g_free(img);
}

static void mon_execute(const char *mon, const char *cmd)
{
    struct ferry_qmp *q = ferry_qmp_new(30000);

    ck_assert_ptr_nonnull(q);
    ck_assert_msg(ferry_qmp_connect(q, mon) == 0, "%s: %s", mon, ferry_qmp_error(q));
    ck_assert_msg(ferry_qmp_execute(q, cmd, NULL, NULL) == 0, "%s: %s", cmd,
                  ferry_qmp_error(q));
    ferry_qmp_close(q);
}

static void dm_add(struct companion_qmp *d, const char *args)
{
    char err[FERRY_USB_ERR_MAX];

    ck_assert_msg(usb_qmp_execute(companion_qmp_client(d), "device_add", args, NULL, err,
                                        sizeof(err)) == 0, "device_add %s: %s", args, err);
}

static void raw_cb(void *opaque, int result)
{
    *(int *)opaque = result;
}

static void never_cb(void *opaque, int result)
{
    (void)opaque;
    ck_abort_msg("a cancelled waiter was called (%d)", result);
}

START_TEST(test_dm_qmp_detach_async)
{
    struct tb t;
    struct qd_state st = { 0 };
    struct ferry_dm_control *c;
    struct client a, b;
    char *dir = g_dir_make_tmp("ferry-dm-qmp-XXXXXX", NULL);
    char *ctl = g_build_filename(dir, "dm.sock", NULL);
    char *qmp = g_build_filename(dir, "qmp.sock", NULL);
    char *mon = g_build_filename(dir, "mon.sock", NULL);
    char *fw = g_build_filename(dir, "eject.bin", NULL);
    char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
    char *mon_arg = g_strdup_printf("unix:%s,server=on,wait=off", mon);
    char *argv[] = { "qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-S",
                     "-nodefaults", "-display", "none", "-m", "32", "-bios", fw,
                     "-qmp", qmp_arg, "-qmp", mon_arg, NULL };
    GError *gerr = NULL;
    GPid pid;
    char *l;
    int r1 = 1, r2 = 1, status;
    struct ferry_qmp_waiter *w3;

    write_eject_firmware(fw);
    ck_assert_msg(g_spawn_async(NULL, argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid, &gerr),
                  "qemu: %s", gerr ? gerr->message : "?");
    qemu_pid = pid;
    for (unsigned i = 0; i < 3000 && !(g_file_test(qmp, G_FILE_TEST_EXISTS) &&
                                      g_file_test(mon, G_FILE_TEST_EXISTS)); i++)
        g_usleep(10000);
    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(companion_qmp_open(t.base, qmp, qd_gone, &st, &st.d), 0);
    ck_assert_int_eq(dm_control_open(t.dm, ctl, NULL, NULL, &c), 0);
    dm_control_set_handler(c, qd_handler, &st);
    client_open(&a, ctl);
    client_open(&b, ctl);
    loop_until_lines(&t, &a, 1);
    loop_until_lines(&t, &b, 1);

    /* 1. The guest is paused: nobody lets go.  Meanwhile B is answered,
     *    before A's reply, which is the timeout. */
    dm_add(st.d, "{\"driver\": \"e1000\", \"id\": \"n1\"}");
    client_send(&a, "{\"execute\": \"test-detach\", \"arguments\": {\"device\": \"n1\", "
                    "\"ms\": 3000}, \"id\": \"a1\"}\n");
    loop_until_deferred(&t, &st, 1);
    client_send(&b, "{\"execute\": \"query-status\", \"id\": \"b1\"}\n");
    loop_until_lines(&t, &b, 2);
    ck_assert_uint_eq(client_lines(&a), 1);     /* A's reply has not come yet */
    l = client_line(&b, 1);
    ck_assert_msg(strstr(l, "\"running\"") && strstr(l, "\"b1\""), "b: %s", l);
    g_free(l);
    loop_until_lines(&t, &a, 2);
    l = client_line(&a, 1);
    ck_assert_msg(strstr(l, "\"error\"") && strstr(l, g_strerror(ETIMEDOUT)) &&
                  strstr(l, "\"a1\""), "a: %s", l);
    g_free(l);

    /* 2. Asked again (QEMU: already in the process of unplug), then the
     *    guest runs and ejects: DEVICE_DELETED arrives later, on the loop. */
    client_send(&a, "{\"execute\": \"test-detach\", \"arguments\": {\"device\": \"n1\", "
                    "\"ms\": 60000}, \"id\": \"a2\"}\n");
    loop_until_deferred(&t, &st, 2);
    mon_execute(mon, "cont");
    loop_until_lines(&t, &a, 3);
    l = client_line(&a, 2);
    ck_assert_str_eq(l, "{\"return\":{},\"id\":\"a2\"}");
    g_free(l);

    /* 3. A USB device on a running QEMU: unplugged at once, its event may
     *    come with device_del's own reply (kept, found at registration). */
    dm_add(st.d, "{\"driver\": \"qemu-xhci\", \"id\": \"xhci\"}");
    dm_add(st.d, "{\"driver\": \"usb-tablet\", \"id\": \"t1\"}");
    client_send(&a, "{\"execute\": \"test-detach\", \"arguments\": {\"device\": \"t1\", "
                    "\"ms\": 60000}, \"id\": \"a3\"}\n");
    loop_until_lines(&t, &a, 4);
    l = client_line(&a, 3);
    ck_assert_str_eq(l, "{\"return\":{},\"id\":\"a3\"}");
    g_free(l);

    /* 4. QEMU goes while a detach waits: an error at once, and `gone`. */
    mon_execute(mon, "stop");
    dm_add(st.d, "{\"driver\": \"e1000\", \"id\": \"n2\"}");
    client_send(&a, "{\"execute\": \"test-detach\", \"arguments\": {\"device\": \"n2\", "
                    "\"ms\": 60000}, \"id\": \"a4\"}\n");
    loop_until_deferred(&t, &st, 4);
    w3 = NULL;
    ck_assert_int_eq(ferry_qmp_watch_deleted(companion_qmp_watch(st.d), "n3", 60000, never_cb, NULL, &w3), 0);
    ferry_qmp_waiter_cancel(w3);
    mon_execute(mon, "quit");
    loop_until_lines(&t, &a, 5);
    l = client_line(&a, 4);
    ck_assert_msg(strstr(l, "\"error\"") && strstr(l, g_strerror(EPIPE)) &&
                  strstr(l, "\"a4\""), "a: %s", l);
    g_free(l);
    ck_assert(st.gone);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    qemu_pid = 0;

    /* 5. Registered after QEMU went: -EPIPE from the loop; outstanding
     *    when the connection is freed: -ECANCELED. */
    ck_assert_int_eq(ferry_qmp_watch_deleted(companion_qmp_watch(st.d), "x", 60000, raw_cb, &r1, NULL), 0);
    ck_assert_int_eq(r1, 1);                    /* never from inside the call */
    for (unsigned i = 0; i < 1000 && r1 == 1; i++)
        tb_loop_until(&t, never, NULL, 10);
    ck_assert_int_eq(r1, -EPIPE);
    ck_assert_int_eq(ferry_qmp_watch_deleted(companion_qmp_watch(st.d), "y", 60000, raw_cb, &r2, NULL), 0);
    companion_qmp_free(st.d);
    ck_assert_int_eq(r2, -ECANCELED);

    close(a.fd);
    close(b.fd);
    g_string_free(a.got, TRUE);
    g_string_free(b.got, TRUE);
    dm_control_close(c);
    tb_fini(&t);
    unlink(fw);
    rmdir(dir);
    g_free(qmp_arg);
    g_free(mon_arg);
    g_free(fw);
    g_free(mon);
    g_free(qmp);
    g_free(ctl);
    g_free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dm-qmp");
    int status;
    char *qemu = g_find_program_in_path("qemu-system-x86_64");

    if (!qemu) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        return 77;
    }
    g_free(qemu);
    suite_add_tcase(s, FERRY_CHECK_TCASE("detach", 300, test_dm_qmp_detach_async));
    status = ferry_check_run(s, CK_NOFORK);
    if (qemu_pid > 0) {
        kill(qemu_pid, SIGKILL);
        waitpid(qemu_pid, NULL, 0);
    }
    return status;
}
