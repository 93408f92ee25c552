// SPDX-License-Identifier: GPL-2.0-or-later
/* The QMP-style control socket: commands, errors, the socket itself. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devmodel/control.h"
#include "tests/devmodel/test-devmodel.h"

/* Execute cmd and parse the reply; the caller unrefs the returned node. */
static json_t *run(struct tb *t, const char *cmd, bool *quit)
{
    bool q;
    char *r = dm_control_execute(t->dm, cmd, strlen(cmd), quit ? quit : &q);
    json_t *n = json_loads(r, JSON_DECODE_ANY, NULL);

    ck_assert_msg(json_is_object(n), "reply is not an object: %s", r);
    g_free(r);
    return n;
}

static const char *error_class(json_t *n)
{
    json_t *o = n;

    if (!json_object_get(o, "error"))
        return NULL;
    return json_string_value(json_object_get(json_object_get(o, "error"), "class"));
}

static const char *error_desc(json_t *n)
{
    json_t *o = n;

    if (!json_object_get(o, "error"))
        return "";
    return json_string_value(json_object_get(json_object_get(o, "error"), "desc"));
}

START_TEST(test_control_commands)
{
    struct tb t;
    json_t *n;
    bool quit;

    tb_init(&t, false);
    tb_add(&t, "uart", "com1", "out=null");
    tb_add(&t, "acpi-pm", "pm", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);

    n = run(&t, "{\"execute\": \"qmp_capabilities\", \"id\": 7}", NULL);
    ck_assert_ptr_null(error_class(n));
    ck_assert_int_eq(json_integer_value(json_object_get(n, "id")), 7);
    json_decref(n);

    n = run(&t, "{\"execute\": \"query-status\"}", NULL);
    json_t *st = json_object_get(n, "return");
    ck_assert_str_eq(json_string_value(json_object_get(st, "status")), "running");
    ck_assert(json_is_true(json_object_get(st, "running")));
    ck_assert_int_eq(json_integer_value(json_object_get(st, "devices")), 2);
    json_decref(n);

    n = run(&t, "{\"execute\": \"query-devices\"}", NULL);
    json_t *devs = json_object_get(n, "return");
    ck_assert_uint_eq(json_array_size(devs), 2);
    json_t *com1 = json_array_get(devs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(com1, "id")), "com1");
    ck_assert_str_eq(json_string_value(json_object_get(com1, "type")), "uart");
    json_t *reg = json_array_get(json_object_get(com1, "regions"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(reg, "base")), 0x3f8);
    ck_assert_int_eq(json_integer_value(json_object_get(reg, "size")), 8);
    json_decref(n);

    n = run(&t, "{\"execute\": \"query-device-types\"}", NULL);
    ck_assert_uint_ge(json_array_size(json_object_get(n, "return")), 8);
    json_decref(n);

    /* Hotplug: post can come and go, the UART cannot. */
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": "
                "{\"driver\": \"post\", \"id\": \"p2\", \"port\": \"0x81\"}}", NULL);
    ck_assert_ptr_null(error_class(n));
    json_decref(n);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x81, 0x81));
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": "
                "{\"driver\": \"post\", \"id\": \"p3\", \"port\": 130}}", NULL);
    ck_assert_ptr_null(error_class(n));
    json_decref(n);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x82, 0x82));
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"uart\", "
                "\"id\": \"com2\", \"port\": \"0x2f8\", \"irq\": 3}}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"post\", "
                "\"id\": \"p4\", \"port\": [1]}}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"id\": \"x\"}}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    json_decref(n);
    /* A device that refuses its options says why in the reply, not only in the log. */
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"pci-test\", "
                "\"id\": \"t9\", \"addr\": \"zz\"}}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    ck_assert_msg(strstr(error_desc(n), "addr=DEV[.FN]"), "desc: %s", error_desc(n));
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"post\", "
                "\"id\": \"p5\", \"colour\": \"blue\"}}", NULL);
    ck_assert_msg(strstr(error_desc(n), "unknown option colour"), "desc: %s", error_desc(n));
    json_decref(n);
    /* ... and a later failure carries no stale reason */
    n = run(&t, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"nonesuch\"}}",
            NULL);
    ck_assert_msg(strstr(error_desc(n), "no such device type") &&
                  !strstr(error_desc(n), "addr=DEV"), "desc: %s", error_desc(n));
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"p2\"}}", NULL);
    ck_assert_ptr_null(error_class(n));
    json_decref(n);
    ck_assert(!tb_claimed(&t, IOREQ_RANGE_PORT, 0x81, 0x81));
    n = run(&t, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"p2\"}}", NULL);
    ck_assert_str_eq(error_class(n), "DeviceNotFound");
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"com1\"}}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    json_decref(n);

    /* The power button reaches the PM block. */
    n = run(&t, "{\"execute\": \"system_powerdown\"}", NULL);
    ck_assert_ptr_null(error_class(n));
    json_decref(n);
    ck_assert_uint_eq(tb_in(&t, 0xb000, 2), 0x0100);

    /* S3: system_wakeup only while suspended; query-status says so. */
    n = run(&t, "{\"execute\": \"system_wakeup\"}", NULL);
    ck_assert_str_eq(error_class(n), "GenericError");
    ck_assert_ptr_nonnull(strstr(error_desc(n), "not in suspended state"));
    json_decref(n);
    t.sleep_ok = true;
    tb_out(&t, 0xb004, 2, (1 << 10) | (1 << 13) | 1);
    n = run(&t, "{\"execute\": \"query-status\"}", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(n, "return"), "status")),
                     "suspended");
    ck_assert(!json_is_true(json_object_get(json_object_get(n, "return"), "running")));
    json_decref(n);
    n = run(&t, "{\"execute\": \"system_wakeup\"}", NULL);
    ck_assert_ptr_null(error_class(n));
    json_decref(n);
    ck_assert_uint_eq(t.wakes, 1);
    ck_assert_int_eq(dm_get_status(t.dm), FERRY_DM_RUNNING);
    ck_assert_uint_eq(tb_in(&t, 0xb000, 2), 0x8100);

    /* Malformed input: QMP errors, never a crash. */
    static const char *const bad[] = {
        "not json", "[1, 2]", "{}", "{\"execute\": 5}", "{\"execute\": \"quit\", \"arguments\": 3}",
        "{\"execute\": \"device_del\"}", "{\"execute\": \"device_del\", \"arguments\": {\"id\": 1}}",
        "\"str\"", "{\"execute\": \"device_add\", \"arguments\": {\"driver\": 1}}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        n = run(&t, bad[i], NULL);
        ck_assert_msg(error_class(n) != NULL, "no error for %s", bad[i]);
        json_decref(n);
    }
    n = run(&t, "{\"execute\": \"frobnicate\"}", NULL);
    ck_assert_str_eq(error_class(n), "CommandNotFound");
    json_decref(n);
    /* A NUL inside a string would cut it short: "query-status\0x" is not
     * query-status, and an id with a NUL is not the id before it. */
    n = run(&t, "{\"execute\": \"query-status\\u0000x\"}", NULL);
    ck_assert_msg(error_class(n) != NULL, "query-status\\u0000x ran");
    json_decref(n);
    n = run(&t, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"p3\\u0000x\"}}", NULL);
    ck_assert_msg(error_class(n) != NULL, "device_del p3\\u0000x deleted p3");
    json_decref(n);
    ck_assert(tb_claimed(&t, IOREQ_RANGE_PORT, 0x82, 0x82));
    n = run(&t, "{\"execute\": \"query-status\", \"id\": \"\\\\u0000\"}", NULL);
    ck_assert_ptr_null(error_class(n));     /* an escaped backslash, then "u0000" */
    json_decref(n);

    n = run(&t, "{\"execute\": \"quit\"}", &quit);
    ck_assert(quit);
    json_decref(n);
    tb_fini(&t);
}
END_TEST

struct sock_state {
    GString *got;
    int fd;
};

static bool got_lines(struct tb *t, void *arg)
{
    struct sock_state *s = arg;
    char buf[4096];
    ssize_t n;

    while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(s->got, buf, n);
    unsigned lines = 0;
    for (gsize i = 0; i < s->got->len; i++)
        lines += s->got->str[i] == '\n';
    return lines >= 3 || n == 0;
}

static void on_quit(void *opaque)
{
    *(bool *)opaque = true;
}

START_TEST(test_control_socket)
{
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const struct ferry_dm_control_ops ops = { .quit = on_quit };
    bool quitted = false;
    struct sock_state s = { .got = g_string_new(NULL) };

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_control_open(t.dm, path, &ops, &quitted, &c), 0);
    s.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char cmds[] = "{\"execute\": \"qmp_capabilities\"}\r\n"
                               "{\"execute\": \"query-status\", \"id\": \"a\"}\n"
                               "{\"execute\": \"quit\"}\n";
    ck_assert_int_eq(send(s.fd, cmds, sizeof(cmds) - 1, 0), (ssize_t)sizeof(cmds) - 1);
    tb_loop_until(&t, got_lines, &s, 10000);
    gchar **lines = g_strsplit(s.got->str, "\n", -1);
    ck_assert_uint_ge(g_strv_length(lines), 4);
    ck_assert_msg(g_str_has_prefix(lines[0], "{\"QMP\""), "greeting: %s", lines[0]);
    ck_assert_str_eq(lines[1], "{\"return\":{}}");
    ck_assert_ptr_nonnull(strstr(lines[2], "\"running\""));
    g_strfreev(lines);
    /* quit answers, then stops the loop's owner once the reply is out. */
    tb_loop_until(&t, got_lines, &s, 200);
    struct timeval tv = { 0, 50000 };
    event_base_loopexit(t.base, &tv);
    event_base_dispatch(t.base);
    ck_assert(quitted);
    close(s.fd);
    /* A line longer than the limit ends that client with an error. */
    s.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    g_string_truncate(s.got, 0);
    char *big = g_malloc(FERRY_DM_CONTROL_LINE_MAX + 100);
    memset(big, 'x', FERRY_DM_CONTROL_LINE_MAX + 100);
    ck_assert_int_gt(send(s.fd, big, FERRY_DM_CONTROL_LINE_MAX + 100, MSG_NOSIGNAL), 0);
    g_free(big);
    tb_loop_until(&t, got_lines, &s, 5000);
    ck_assert_ptr_nonnull(strstr(s.got->str, "longer than"));
    close(s.fd);
    dm_control_close(c);
    ck_assert_int_ne(access(path, F_OK), 0);
    g_string_free(s.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

/*
 * The socket's name appears only once it listens, with mode 0600 (it is
 * made under a temporary name and renamed); a stale socket of an earlier
 * ferry-dm is replaced, any other kind of file at the path is refused.
 */
START_TEST(test_control_socket_path)
{
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    GDir *d;
    int fd;

    tb_init(&t, false);
    ck_assert_int_eq(dm_start(t.dm), 0);
    /* a regular file where the socket should go stays untouched */
    ck_assert(g_file_set_contents(path, "keep", -1, NULL));
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), -EEXIST);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    unlink(path);
    /* a stale socket (nobody listens) is replaced */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    /* no temporary name left beside it */
    d = g_dir_open(dir, 0, NULL);
    ck_assert_str_eq(g_dir_read_name(d), "dm.sock");
    ck_assert_ptr_null(g_dir_read_name(d));
    g_dir_close(d);
    dm_control_close(c);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

/* A socket to a fresh control socket of t (in dir); the caller closes both. */
static int control_connect(struct tb *t, const char *dir, struct ferry_dm_control **c)
{
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    ck_assert_int_eq(dm_control_open(t->dm, path, NULL, NULL, c), 0);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    g_free(path);
    return fd;
}

static bool got_eof(struct tb *t, void *arg)
{
    struct sock_state *s = arg;
    char buf[4096];
    ssize_t n;

    while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(s->got, buf, n);
    return n == 0;
}

static bool got_greeting(struct tb *t, void *arg)
{
    struct sock_state *s = arg;
    char buf[4096];
    ssize_t n;

    while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(s->got, buf, n);
    return strchr(s->got->str, '\n') != NULL;
}

/*
 * Out of fds, accept() fails and the connection stays queued: the loop must
 * not spin on the readable socket, and the client is served once fds free.
 */
START_TEST(test_control_out_of_fds)
{
    enum { FILL_MAX = 4096 };
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    struct sock_state s = { .got = g_string_new(NULL) };
    struct rlimit old, low;
    int *fill = g_new(int, FILL_MAX), nfill = 0;
    unsigned rounds = 0;
    gint64 end;

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    s.fd = control_connect(&t, dir, &c);    /* queued, not yet accepted */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 1024 < old.rlim_cur ? 1024 : old.rlim_cur;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < FILL_MAX && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    ck_assert_int_eq(errno, EMFILE);
    /* Half a second of loop: a spinning loop turns thousands of times. */
    end = g_get_monotonic_time() + 500 * 1000;
    while (g_get_monotonic_time() < end) {
        struct timeval tv = { 0, 200 * 1000 };

        event_base_loopexit(t.base, &tv);
        event_base_loop(t.base, EVLOOP_ONCE);
        rounds++;
    }
    ck_assert_msg(rounds < 100, "the loop turned %u times in 0.5 s with a connection it "
                  "cannot accept", rounds);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    tb_loop_until(&t, got_greeting, &s, 10000);
    ck_assert_msg(g_str_has_prefix(s.got->str, "{\"QMP\""), "greeting: %s", s.got->str);
    close(s.fd);
    dm_control_close(c);
    g_string_free(s.got, TRUE);
    g_free(fill);
    tb_fini(&t);
    rmdir(dir);
    g_free(dir);
}
END_TEST

/*
 * A client that sends its commands and shuts down its side (echo ... |
 * socat) gets all the replies, even when they take many writes.
 */
START_TEST(test_control_half_close)
{
    enum { CMDS = 1000 };
    static const char cmd[] = "{\"execute\": \"query-device-types\"}\n";
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    struct sock_state s = { .got = g_string_new(NULL) };
    GString *cmds = g_string_new(NULL);
    size_t lines = 0;

    for (unsigned i = 0; i < CMDS; i++)
        g_string_append(cmds, cmd);
    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    s.fd = control_connect(&t, dir, &c);
    ck_assert_int_eq(send(s.fd, cmds->str, cmds->len, 0), (ssize_t)cmds->len);
    ck_assert_int_eq(shutdown(s.fd, SHUT_WR), 0);
    tb_loop_until(&t, got_eof, &s, 30000);
    for (gsize i = 0; i < s.got->len; i++)
        lines += s.got->str[i] == '\n';
    ck_assert_uint_eq(lines, 1 + CMDS);
    close(s.fd);
    dm_control_close(c);
    g_string_free(cmds, TRUE);
    g_string_free(s.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(dir);
}
END_TEST

/*
 * A client that sends commands and never reads the replies: ferry-dm stops
 * reading it (its queued replies stay bounded) and goes on once it reads.
 */
START_TEST(test_control_unread_replies)
{
    enum { SEND_LIMIT = 8 << 20 };
    static const char cmd[] = "{\"execute\": \"qmp_capabilities\"}\n";
    const size_t cmd_len = sizeof(cmd) - 1;
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    struct sock_state s = { .got = g_string_new(NULL) };
    char chunk[sizeof(cmd) * 128];
    size_t sent = 0, lines = 0;
    unsigned idle = 0;

    for (size_t i = 0; i < 128; i++)
        memcpy(chunk + i * cmd_len, cmd, cmd_len);
    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    s.fd = control_connect(&t, dir, &c);
    while (sent < SEND_LIMIT && idle < 500) {
        ssize_t n = send(s.fd, chunk, 128 * cmd_len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n > 0) {
            sent += (size_t)n;
            idle = 0;
        } else {
            ck_assert_int_eq(errno, EAGAIN);
            idle++;
        }
        event_base_loop(t.base, EVLOOP_NONBLOCK);
    }
    ck_assert_msg(sent < SEND_LIMIT, "ferry-dm read %zu bytes of commands whose replies "
                  "were never read", sent);
    /* Now read: every complete command is answered. */
    for (unsigned rounds = 0; lines < 1 + sent / cmd_len && rounds < 1000000; rounds++) {
        char buf[65536];
        ssize_t n;

        event_base_loop(t.base, EVLOOP_NONBLOCK);
        while ((n = recv(s.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
            for (ssize_t i = 0; i < n; i++)
                lines += buf[i] == '\n';
    }
    ck_assert_uint_eq(lines, 1 + sent / cmd_len);
    close(s.fd);
    dm_control_close(c);
    g_string_free(s.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deferred replies                                                    */

/* A handler with "slow" (deferred; the test completes it), "slow2" (tries
 * to defer twice) and "fast" (answered at once). */
struct defer_state {
    struct ferry_dm_control_pending *p[16];
    unsigned n;
    int last_errno;
    bool second_refused;
};

static char *defer_handler(void *opaque, struct ferry_dm_control_req *req, const char *cmd,
                           json_t *args, json_t *id, int *fd)
{
    struct defer_state *d = opaque;
    struct ferry_dm_control_pending *p;

    (void)args;
    (void)fd;
    if (!strcmp(cmd, "fast"))
        return dm_control_reply(id, json_string("fast"));
    if (strcmp(cmd, "slow") && strcmp(cmd, "slow2"))
        return NULL;
    p = dm_control_defer(req);
    if (!p) {
        d->last_errno = errno;
        return dm_control_reply_error(id, "busy: too many commands waiting");
    }
    if (!strcmp(cmd, "slow2"))
        d->second_refused = !dm_control_defer(req) && errno == EBUSY;
    ck_assert_uint_lt(d->n, G_N_ELEMENTS(d->p));
    d->p[d->n++] = p;
    return FERRY_DM_CONTROL_DEFERRED;
}

static void defer_complete(struct defer_state *d, unsigned i, const char *what)
{
    ck_assert_ptr_nonnull(d->p[i]);
    dm_control_complete(d->p[i], dm_control_reply(
        dm_control_pending_id(d->p[i]), json_string(what)));
    d->p[i] = NULL;
}

struct lines_wait {
    struct sock_state *s;
    unsigned want;
};

static unsigned count_lines(struct sock_state *s)
{
    char buf[4096];
    ssize_t n;
    unsigned lines = 0;

    while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(s->got, buf, n);
    for (gsize i = 0; i < s->got->len; i++)
        lines += s->got->str[i] == '\n';
    return lines;
}

static bool got_n_lines(struct tb *t, void *arg)
{
    struct lines_wait *w = arg;

    (void)t;
    return count_lines(w->s) >= w->want;
}

static bool never(struct tb *t, void *arg)
{
    (void)t;
    (void)arg;
    return false;
}

/* Run the loop until the handler has deferred n commands in all. */
static void loop_until_deferred(struct tb *t, struct defer_state *d, unsigned n)
{
    for (unsigned i = 0; i < 1000 && d->n < n; i++)
        tb_loop_until(t, never, NULL, 10);
    ck_assert_uint_eq(d->n, n);
}

/* Line i (0: the greeting) of what s received. */
static char *line_of(struct sock_state *s, unsigned i)
{
    gchar **lines = g_strsplit(s->got->str, "\n", -1);
    char *r = i < g_strv_length(lines) ? g_strdup(lines[i]) : g_strdup("");

    g_strfreev(lines);
    return r;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * A deferred reply holds its client's later commands (replies stay in
 * order) while another client is answered; once completed, the held
 * commands run.
 */
START_TEST(test_control_defer_order)
{
    struct tb t;
    struct ferry_dm_control *c;
    struct defer_state d = { 0 };
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sock_state a = { .got = g_string_new(NULL) }, b = { .got = g_string_new(NULL) };
    struct lines_wait wa = { &a, 3 }, wb = { &b, 2 };
    char *l1, *l2;

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), 0);
    dm_control_set_handler(c, defer_handler, &d);
    a.fd = connect_to(path);
    b.fd = connect_to(path);
    send_str(a.fd, "{\"execute\": \"slow\", \"id\": 1}\n{\"execute\": \"fast\", \"id\": 2}\n");
    loop_until_deferred(&t, &d, 1);
    ck_assert_uint_eq(dm_control_pending_count(c), 1);
    /* the other client is served meanwhile */
    send_str(b.fd, "{\"execute\": \"query-status\", \"id\": \"b\"}\n");
    tb_loop_until(&t, got_n_lines, &wb, 10000);
    l1 = line_of(&b, 1);
    ck_assert_msg(strstr(l1, "\"running\"") && strstr(l1, "\"id\":\"b\""), "b got: %s", l1);
    g_free(l1);
    /* ... and A has nothing but its greeting: "fast" waits behind "slow" */
    ck_assert_uint_eq(count_lines(&a), 1);
    ck_assert_uint_eq(d.n, 1);
    defer_complete(&d, 0, "slow");
    ck_assert_uint_eq(dm_control_pending_count(c), 0);
    tb_loop_until(&t, got_n_lines, &wa, 10000);
    l1 = line_of(&a, 1);
    l2 = line_of(&a, 2);
    ck_assert_str_eq(l1, "{\"return\":\"slow\",\"id\":1}");
    ck_assert_str_eq(l2, "{\"return\":\"fast\",\"id\":2}");
    g_free(l1);
    g_free(l2);
    close(a.fd);
    close(b.fd);
    dm_control_close(c);
    g_string_free(a.got, TRUE);
    g_string_free(b.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

/*
 * The client goes before its reply: completing is safe (dropped).  A client
 * that only half-closed (echo ... | socat) still gets it.  Completing after
 * the control socket closed is safe too.
 */
START_TEST(test_control_defer_client_gone)
{
    struct tb t;
    struct ferry_dm_control *c;
    struct defer_state d = { 0 };
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sock_state a = { .got = g_string_new(NULL) };
    char *l;

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), 0);
    dm_control_set_handler(c, defer_handler, &d);

    /* gone altogether */
    a.fd = connect_to(path);
    send_str(a.fd, "{\"execute\": \"slow\", \"id\": 1}\n");
    loop_until_deferred(&t, &d, 1);
    count_lines(&a);
    close(a.fd);
    tb_loop_until(&t, never, NULL, 200);   /* ferry-dm sees it go */
    defer_complete(&d, 0, "late");         /* no use-after-free (ASan) */
    ck_assert_uint_eq(dm_control_pending_count(c), 0);

    /* half-closed: the reply still goes out, then the connection ends */
    g_string_truncate(a.got, 0);
    a.fd = connect_to(path);
    send_str(a.fd, "{\"execute\": \"slow\", \"id\": 2}\n{\"execute\": \"fast\", \"id\": 3}\n");
    ck_assert_int_eq(shutdown(a.fd, SHUT_WR), 0);
    loop_until_deferred(&t, &d, 2);
    tb_loop_until(&t, never, NULL, 100);
    defer_complete(&d, 1, "half");
    tb_loop_until(&t, got_eof, &a, 10000);
    l = line_of(&a, 1);
    ck_assert_str_eq(l, "{\"return\":\"half\",\"id\":2}");
    g_free(l);
    l = line_of(&a, 2);
    ck_assert_str_eq(l, "{\"return\":\"fast\",\"id\":3}");
    g_free(l);
    close(a.fd);

    /* the control socket closes with a reply outstanding */
    g_string_truncate(a.got, 0);
    a.fd = connect_to(path);
    send_str(a.fd, "{\"execute\": \"slow\", \"id\": 4}\n");
    loop_until_deferred(&t, &d, 3);
    dm_control_close(c);
    defer_complete(&d, 2, "after close");
    close(a.fd);
    g_string_free(a.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

/* At most FERRY_DM_CONTROL_PENDING_MAX deferred replies in all, and
 * FERRY_DM_CONTROL_PENDING_CLIENT_MAX per client; beyond: a clear error. */
START_TEST(test_control_defer_caps)
{
    enum { N = FERRY_DM_CONTROL_PENDING_MAX + 1 };
    struct tb t;
    struct ferry_dm_control *c;
    struct defer_state d = { 0 };
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sock_state s[N];
    char *l;

    G_STATIC_ASSERT(N <= FERRY_DM_CONTROL_CLIENTS_MAX);
    G_STATIC_ASSERT(FERRY_DM_CONTROL_PENDING_CLIENT_MAX == 1);
    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), 0);
    dm_control_set_handler(c, defer_handler, &d);
    /* no client to answer later: refused */
    errno = 0;
    ck_assert_ptr_null(dm_control_defer(NULL));
    ck_assert_int_eq(errno, ENOTSUP);
    for (unsigned i = 0; i < N; i++) {
        struct lines_wait w = { &s[i], 1 };

        s[i].got = g_string_new(NULL);
        s[i].fd = connect_to(path);
        tb_loop_until(&t, got_n_lines, &w, 10000);     /* greeting: accepted */
    }
    /* the first defers twice in one command: the second is refused */
    send_str(s[0].fd, "{\"execute\": \"slow2\", \"id\": 0}\n");
    loop_until_deferred(&t, &d, 1);
    for (unsigned i = 1; i < N; i++) {
        char cmd[64];

        snprintf(cmd, sizeof(cmd), "{\"execute\": \"slow\", \"id\": %u}\n", i);
        send_str(s[i].fd, cmd);
        if (i < FERRY_DM_CONTROL_PENDING_MAX)
            loop_until_deferred(&t, &d, i + 1);
    }
    {
        struct lines_wait w = { &s[N - 1], 2 };

        tb_loop_until(&t, got_n_lines, &w, 10000);
    }
    ck_assert(d.second_refused);
    ck_assert_uint_eq(d.n, FERRY_DM_CONTROL_PENDING_MAX);
    ck_assert_uint_eq(dm_control_pending_count(c), FERRY_DM_CONTROL_PENDING_MAX);
    ck_assert_int_eq(d.last_errno, EBUSY);
    l = line_of(&s[N - 1], 1);
    ck_assert_msg(strstr(l, "\"error\"") && strstr(l, "too many commands waiting") &&
                  strstr(l, "\"id\":4"), "over the cap: %s", l);
    g_free(l);
    /* room again once one is answered */
    defer_complete(&d, 0, "zero");
    send_str(s[N - 1].fd, "{\"execute\": \"slow\", \"id\": 5}\n");
    {
        struct lines_wait w = { &s[0], 2 };

        tb_loop_until(&t, got_n_lines, &w, 10000);
        loop_until_deferred(&t, &d, FERRY_DM_CONTROL_PENDING_MAX + 1);
    }
    ck_assert_uint_eq(dm_control_pending_count(c), FERRY_DM_CONTROL_PENDING_MAX);
    for (unsigned i = 1; i < d.n; i++)
        defer_complete(&d, i, "done");
    ck_assert_uint_eq(dm_control_pending_count(c), 0);
    for (unsigned i = 0; i < N; i++) {
        close(s[i].fd);
        g_string_free(s[i].got, TRUE);
    }
    dm_control_close(c);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Slots: idle clients, followers, refusals                            */

static bool got_eof_or_n(struct tb *t, void *arg)
{
    struct lines_wait *w = arg;
    char buf[4096];
    ssize_t n;

    (void)t;
    while ((n = recv(w->s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_string_append_len(w->s->got, buf, n);
    return n == 0;
}

/* Every client of s[0..n) has seen its connection end. */
struct all_eof {
    struct sock_state *s;
    unsigned n;
};

static bool all_got_eof(struct tb *t, void *arg)
{
    struct all_eof *a = arg;
    bool all = true;

    for (unsigned i = 0; i < a->n; i++) {
        struct lines_wait w = { &a->s[i], 0 };

        all &= got_eof_or_n(t, &w);
    }
    return all;
}

/*
 * FERRY_DM_CONTROL_CLIENTS_MAX silent clients must not lock everyone out
 * for good: each is told and closed after the idle bound.  A client beyond
 * the limit is told why before it is closed.  A follower (client-follow:
 * `ferry usb attach --follow`) stays however long it waits, and does not
 * take an interactive slot; followers have their own limit.
 */
START_TEST(test_control_idle_and_followers)
{
    enum { N = FERRY_DM_CONTROL_CLIENTS_MAX, F = FERRY_DM_CONTROL_FOLLOWERS_MAX };
    struct tb t;
    struct ferry_dm_control *c;
    char *dir = g_dir_make_tmp("ferry-dm-ctl-XXXXXX", NULL);
    char *path = g_build_filename(dir, "dm.sock", NULL);
    struct sock_state s[N], extra = { .got = g_string_new(NULL) }, fol[F + 1];
    char *l;

    tb_init(&t, false);
    tb_add(&t, "post", "post", NULL);
    ck_assert_int_eq(dm_start(t.dm), 0);
    ck_assert_int_eq(dm_control_open(t.dm, path, NULL, NULL, &c), 0);
    ck_assert_uint_eq(dm_control_idle_timeout(c), FERRY_DM_CONTROL_IDLE_MS);
    dm_control_set_idle_timeout(c, 300);

    /* followers first: they do not count against the interactive limit */
    for (unsigned i = 0; i < F + 1; i++) {
        struct lines_wait w = { &fol[i], 2 };

        fol[i].got = g_string_new(NULL);
        fol[i].fd = connect_to(path);
        send_str(fol[i].fd, "{\"execute\": \"client-follow\", \"id\": \"f\"}\n");
        tb_loop_until(&t, got_n_lines, &w, 10000);
        l = line_of(&fol[i], 1);
        if (i < F)
            ck_assert_msg(!strcmp(l, "{\"return\":{},\"id\":\"f\"}"), "follower %u: %s", i, l);
        else
            ck_assert_msg(strstr(l, "\"error\"") && strstr(l, "too many following clients"),
                          "follower beyond the limit: %s", l);
        g_free(l);
    }
    close(fol[F].fd);
    g_string_free(fol[F].got, TRUE);
    for (unsigned i = 0; i < N; i++) {
        struct lines_wait w = { &s[i], 1 };

        s[i].got = g_string_new(NULL);
        s[i].fd = connect_to(path);
        tb_loop_until(&t, got_n_lines, &w, 10000);
        ck_assert_msg(g_str_has_prefix(s[i].got->str, "{\"QMP\""), "client %u: %s", i,
                      s[i].got->str);
    }
    /* bytes that never make a line do not keep a client alive */
    send_str(s[0].fd, "{\"execute\": \"query-");
    /* one more: refused, and told why */
    extra.fd = connect_to(path);
    {
        struct lines_wait w = { &extra, 0 };

        tb_loop_until(&t, got_eof_or_n, &w, 10000);
    }
    ck_assert_msg(strstr(extra.got->str, "\"error\"") &&
                  strstr(extra.got->str, "too many control clients"),
                  "refused client got: '%s'", extra.got->str);
    close(extra.fd);

    /* the silent ones (greeting only, or half a line) are told and closed;
     * the followers stay */
    {
        struct all_eof a = { s, N };

        tb_loop_until(&t, all_got_eof, &a, 30000);
        ck_assert(all_got_eof(&t, &a));
    }
    for (unsigned i = 0; i < N; i++) {
        l = line_of(&s[i], 1);
        ck_assert_msg(strstr(l, "\"error\"") && strstr(l, "idle"), "idle client %u: %s", i, l);
        g_free(l);
        close(s[i].fd);
        g_string_free(s[i].got, TRUE);
    }
    /* room again */
    g_string_truncate(extra.got, 0);
    extra.fd = connect_to(path);
    {
        struct lines_wait w = { &extra, 2 };

        send_str(extra.fd, "{\"execute\": \"query-status\"}\n");
        tb_loop_until(&t, got_n_lines, &w, 10000);
        l = line_of(&extra, 1);
        ck_assert_msg(strstr(l, "\"running\""), "after the idle ones went: %s", l);
        g_free(l);
    }
    close(extra.fd);
    for (unsigned i = 0; i < F; i++) {
        struct lines_wait w = { &fol[i], 3 };

        send_str(fol[i].fd, "{\"execute\": \"query-status\"}\n");
        tb_loop_until(&t, got_n_lines, &w, 10000);
        l = line_of(&fol[i], 2);
        ck_assert_msg(strstr(l, "\"running\""), "follower %u after the idle bound: %s", i, l);
        g_free(l);
        close(fol[i].fd);
        g_string_free(fol[i].got, TRUE);
    }
    /* client-follow needs a connection to keep */
    {
        json_t *n = run(&t, "{\"execute\": \"client-follow\"}", NULL);

        ck_assert_str_eq(error_class(n), "GenericError");
        json_decref(n);
    }
    dm_control_close(c);
    g_string_free(extra.got, TRUE);
    tb_fini(&t);
    rmdir(dir);
    g_free(path);
    g_free(dir);
}
END_TEST

TCase *dm_control_tcase(void)
{
    TCase *tc = tcase_create("control");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_control_commands);
    tcase_add_test(tc, test_control_socket);
    tcase_add_test(tc, test_control_socket_path);
    tcase_add_test(tc, test_control_half_close);
    tcase_add_test(tc, test_control_unread_replies);
    tcase_add_test(tc, test_control_out_of_fds);
    tcase_add_test(tc, test_control_defer_order);
    tcase_add_test(tc, test_control_defer_client_gone);
    tcase_add_test(tc, test_control_defer_caps);
    tcase_add_test(tc, test_control_idle_and_followers);
    return tc;
}
