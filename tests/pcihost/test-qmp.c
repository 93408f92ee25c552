// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of common/qmp.c against a scripted peer: a forked process on a
 * unix socket that plays QEMU, including a hostile one (garbage, no banner,
 * stale ids, an endless line, hang-ups, silence).  The real QEMU exchange is
 * tested in the pci suite (pci-qmp-refusal, pci-guest-iommu).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n"

enum script {
    S_NORMAL, S_ERROR, S_BAD_SHAPES, S_GARBAGE, S_NO_BANNER, S_HANGUP, S_ENDLESS, S_SILENT,
};

static char sock_path[108];
static pid_t server;

static void put(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            _exit(3);
        s += w;
        n -= (size_t)w;
    }
}

/* Read one request line and return its "id" (static buffer). */
static const char *get_id(int fd)
{
    static char line[4096], id[64];
    size_t n = 0;
    char *p, *q;

    while (n < sizeof(line) - 1) {
        if (read(fd, line + n, 1) != 1)
            _exit(0);
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    p = strstr(line, "\"id\":\"");
    if (!p)
        return "none";
    p += 6;
    q = strchr(p, '"');
    snprintf(id, sizeof(id), "%.*s", q ? (int)(q - p) : 0, p);
    return id;
}

static void reply(int fd, const char *id, const char *body)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "{%s, \"id\": \"%s\"}\r\n", body, id);
    put(fd, buf);
}

static void serve(enum script s, int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    const char *id;

    if (fd < 0)
        _exit(2);
    if (s == S_NO_BANNER) {
        put(fd, "{\"hello\": 1}\r\n");
        pause();
    }
    put(fd, GREETING);
    id = get_id(fd);                       /* qmp_capabilities */
    reply(fd, id, "\"return\": {}");
    id = get_id(fd);
    switch (s) {
    case S_NORMAL:
        put(fd, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d0\"}}\r\n");
        reply(fd, "someone-else", "\"return\": 42");
        reply(fd, id, "\"return\": [1, 2]");
        id = get_id(fd);
        reply(fd, id, "\"return\": {}");
        put(fd, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d1\"}}\r\n");
        pause();
        break;
    case S_ERROR:
        reply(fd, id, "\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}");
        pause();
        break;
    case S_BAD_SHAPES:
        /* Valid JSON with members of the wrong types. */
        put(fd, "{\"event\": \"DEVICE_DELETED\", \"data\": [\"d0\"]}\r\n");
        put(fd, "{\"event\": 5, \"data\": {\"device\": 7}}\r\n");
        put(fd, "{\"return\": {}, \"id\": 7}\r\n");
        reply(fd, id, "\"error\": \"oops\"");
        id = get_id(fd);
        reply(fd, id, "\"error\": {\"class\": [], \"desc\": 5}");
        pause();
        break;
    case S_GARBAGE:
        put(fd, "this is not json\r\n");
        pause();
        break;
    case S_HANGUP:
        close(fd);
        pause();
        break;
    case S_ENDLESS: {
        static char chunk[65536];
        memset(chunk, ' ', sizeof(chunk));
        put(fd, "{\"return\": \"");
        for (;;) {
            if (write(fd, chunk, sizeof(chunk)) < 0)
                _exit(0);
        }
    }
    case S_SILENT:
    default:
        pause();
    }
    _exit(0);
}

static void start(enum script s)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd;

    snprintf(sock_path, sizeof(sock_path), "/tmp/test-qmp.%d.sock", (int)getpid());
    unlink(sock_path);
    strcpy(sa.sun_path, sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0)
        serve(s, lfd);
    close(lfd);
}

static void stop(void)
{
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    unlink(sock_path);
}

static struct ferry_qmp *connected(enum script s, int timeout_ms)
{
    struct ferry_qmp *q;

    start(s);
    q = ferry_qmp_new(timeout_ms);
    ck_assert_ptr_nonnull(q);
    ck_assert_msg(ferry_qmp_connect(q, sock_path) == 0, "connect: %s", ferry_qmp_error(q));
    return q;
}

START_TEST(test_normal)
{
    struct ferry_qmp *q = connected(S_NORMAL, 5000);
    JsonNode *ret = NULL, *data = NULL;

    /* the event and a reply to another id arrive first: kept and skipped */
    ck_assert_int_eq(ferry_qmp_execute(q, "query-x", NULL, &ret), 0);
    ck_assert(JSON_NODE_HOLDS_ARRAY(ret));
    ck_assert_uint_eq(json_array_get_length(json_node_get_array(ret)), 2);
    json_node_unref(ret);
    ck_assert_int_eq(ferry_qmp_wait_event(q, "DEVICE_DELETED", "d0", 1000, &data), 0);
    ck_assert_str_eq(json_object_get_string_member(json_node_get_object(data), "device"), "d0");
    json_node_unref(data);
    /* an event that comes after the reply is read while waiting */
    ck_assert_int_eq(ferry_qmp_execute(q, "device_del", NULL, NULL), 0);
    ck_assert_int_eq(ferry_qmp_wait_event(q, "DEVICE_DELETED", "d1", 5000, NULL), 0);
    ferry_qmp_close(q);
    stop();
}
END_TEST

START_TEST(test_error_reply)
{
    struct ferry_qmp *q = connected(S_ERROR, 5000);
    JsonNode *ret = NULL;

    ck_assert_int_eq(ferry_qmp_execute(q, "device_add", NULL, &ret), -EREMOTEIO);
    ck_assert_ptr_null(ret);
    ck_assert_str_eq(ferry_qmp_error(q), "GenericError: nope");
    ferry_qmp_close(q);
    stop();
}
END_TEST

/* Members of the wrong type are treated as absent, without a GLib critical. */
START_TEST(test_bad_shapes)
{
    struct ferry_qmp *q;

    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    q = connected(S_BAD_SHAPES, 5000);
    ck_assert_int_eq(ferry_qmp_execute(q, "device_add", NULL, NULL), -EREMOTEIO);
    ck_assert_str_eq(ferry_qmp_error(q), "Error: ?");
    ck_assert_int_eq(ferry_qmp_execute(q, "device_add", NULL, NULL), -EREMOTEIO);
    ck_assert_str_eq(ferry_qmp_error(q), "Error: ?");
    ck_assert_int_eq(ferry_qmp_wait_event(q, "DEVICE_DELETED", "d0", 100, NULL), -ETIMEDOUT);
    ferry_qmp_close(q);
    stop();
}
END_TEST

START_TEST(test_hostile)
{
    struct ferry_qmp *q;
    JsonBuilder *b;
    JsonNode *args;

    q = connected(S_GARBAGE, 5000);
    ck_assert_int_eq(ferry_qmp_execute(q, "x", NULL, NULL), -EPROTO);
    ferry_qmp_close(q);
    stop();

    q = connected(S_HANGUP, 5000);
    ck_assert_int_eq(ferry_qmp_execute(q, "x", NULL, NULL), -ECONNRESET);
    ferry_qmp_close(q);
    stop();

    q = connected(S_ENDLESS, 20000);
    ck_assert_int_eq(ferry_qmp_execute(q, "x", NULL, NULL), -EMSGSIZE);
    ferry_qmp_close(q);
    stop();

    q = connected(S_SILENT, 200);
    ck_assert_int_eq(ferry_qmp_execute(q, "x", NULL, NULL), -ETIMEDOUT);
    ck_assert_int_eq(ferry_qmp_wait_event(q, "NEVER", NULL, 100, NULL), -ETIMEDOUT);
    /* arguments must be an object */
    b = json_builder_new();
    json_builder_begin_array(b);
    json_builder_end_array(b);
    args = json_builder_get_root(b);
    ck_assert_int_eq(ferry_qmp_execute(q, "x", args, NULL), -EINVAL);
    json_node_unref(args);
    g_object_unref(b);
    ferry_qmp_close(q);
    stop();

    start(S_NO_BANNER);
    q = ferry_qmp_new(5000);
    ck_assert_int_eq(ferry_qmp_connect(q, sock_path), -EPROTO);
    ck_assert_ptr_nonnull(strstr(ferry_qmp_error(q), "QMP banner"));
    ck_assert_int_eq(ferry_qmp_execute(q, "x", NULL, NULL), -ENOTCONN);
    ferry_qmp_close(q);
    stop();

    q = ferry_qmp_new(1000);
    ck_assert_int_eq(ferry_qmp_connect(q, "/nonexistent/qmp.sock"), -ENOENT);
    ck_assert_ptr_nonnull(strstr(ferry_qmp_error(q), "/nonexistent/qmp.sock"));
    ferry_qmp_close(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qmp");
    TCase *tc = tcase_create("client");
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_normal);
    tcase_add_test(tc, test_error_reply);
    tcase_add_test(tc, test_bad_shapes);
    tcase_add_test(tc, test_hostile);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
