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

#include <glib.h>

#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "tests/check-main.h"

#define GREETING "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n"

enum script {
    S_NORMAL, S_ERROR, S_BAD_SHAPES, S_GARBAGE, S_NO_BANNER, S_HANGUP, S_ENDLESS, S_SILENT,
    S_EVENT_WITH_REPLY, S_DEVICE_DEL,
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
    /* the command's own id comes last (after "arguments", which may have one) */
    p = g_strrstr(line, "\"id\":\"");
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
    case S_EVENT_WITH_REPLY: {
        /* the reply and the event that follows it in one write: read together */
        char buf[512];

        snprintf(buf, sizeof(buf), "{\"return\": {}, \"id\": \"%s\"}\r\n"
                 "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d2\"}}\r\n", id);
        put(fd, buf);
        pause();
        break;
    }
    case S_DEVICE_DEL:
        /* device_del's answers: asked, already unplugging, no such device, no */
        reply(fd, id, "\"return\": {}");
        id = get_id(fd);
        reply(fd, id, "\"error\": {\"class\": \"GenericError\", \"desc\": \"Device d0 is "
              "already in the process of unplug\"}");
        id = get_id(fd);
        reply(fd, id, "\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'd9' "
              "not found\"}");
        id = get_id(fd);
        reply(fd, id, "\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}");
        put(fd, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d0\"}}\r\n");
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
    json_t *ret = NULL, *data = NULL;

    /* the event and a reply to another id arrive first: kept and skipped */
    ck_assert_int_eq(ferry_qmp_execute(q, "query-x", NULL, &ret), 0);
    ck_assert(json_is_array(ret));
    ck_assert_uint_eq(json_array_size(ret), 2);
    json_decref(ret);
    ck_assert_int_eq(ferry_qmp_wait_event(q, "DEVICE_DELETED", "d0", 1000, &data), 0);
    ck_assert_str_eq(json_string_value(json_object_get(data, "device")), "d0");
    json_decref(data);
    /* an event that comes after the reply is read while waiting */
    ck_assert_int_eq(ferry_qmp_execute(q, "device_del", NULL, NULL), 0);
    ck_assert_int_eq(ferry_qmp_wait_event(q, "DEVICE_DELETED", "d1", 5000, NULL), 0);
    ferry_qmp_close(q);
    stop();
}
END_TEST

static void count_cb(void *opaque)
{
    (*(unsigned *)opaque)++;
}

/*
 * An event read together with a command's reply is kept when the command
 * returns (a loop watching the socket would never be woken for it), the
 * event hook runs, and take_event finds it without reading.
 */
START_TEST(test_event_with_reply)
{
    struct ferry_qmp *q = connected(S_EVENT_WITH_REPLY, 5000);
    unsigned kept = 0;

    ferry_qmp_set_event_cb(q, count_cb, &kept);
    ck_assert_int_eq(ferry_qmp_execute(q, "device_del", NULL, NULL), 0);
    ck_assert_uint_eq(kept, 1);
    ck_assert_int_eq(ferry_qmp_take_event(q, "DEVICE_DELETED", "other", NULL), -ENOENT);
    ck_assert_int_eq(ferry_qmp_take_event(q, "DEVICE_DELETED", "d2", NULL), 0);
    ck_assert_int_eq(ferry_qmp_take_event(q, "DEVICE_DELETED", "d2", NULL), -ENOENT);
    ck_assert_int_eq(ferry_qmp_drain(q), 0);
    ferry_qmp_close(q);
    stop();
}
END_TEST

START_TEST(test_error_reply)
{
    struct ferry_qmp *q = connected(S_ERROR, 5000);
    json_t *ret = NULL;

    ck_assert_int_eq(ferry_qmp_execute(q, "device_add", NULL, &ret), -EREMOTEIO);
    ck_assert_ptr_null(ret);
    ck_assert_str_eq(ferry_qmp_error(q), "GenericError: nope");
    ferry_qmp_close(q);
    stop();
}
END_TEST

/* common/qmp-wait.h: device_del's answers sorted, the blocking wait. */
START_TEST(test_device_del)
{
    struct ferry_qmp *q = connected(S_DEVICE_DEL, 5000);

    ck_assert_int_eq(ferry_qmp_device_del(q, "d0"), 0);
    ck_assert_int_eq(ferry_qmp_device_del(q, "d0"), 0);        /* unplugging: wait again */
    ck_assert_int_eq(ferry_qmp_device_del(q, "d9"), 1);        /* nothing to wait for */
    ck_assert_int_eq(ferry_qmp_device_del(q, "d1"), -EREMOTEIO);
    ck_assert_str_eq(ferry_qmp_error(q), "GenericError: nope");
    ck_assert_str_eq(ferry_qmp_reason(q, -EREMOTEIO), "nope");
    ck_assert_int_eq(ferry_qmp_wait_deleted(q, "d0", 5000), 0);
    ck_assert_int_eq(ferry_qmp_wait_deleted(q, "d1", 100), -ETIMEDOUT);
    ck_assert_str_eq(ferry_qmp_reason(q, -ETIMEDOUT), "no DEVICE_DELETED event within 100 ms");
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
    json_t *args;

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
    args = json_array();
    ck_assert_int_eq(ferry_qmp_execute(q, "x", args, NULL), -EINVAL);
    json_decref(args);
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

/* A monitor another client holds (libvirt): the kernel accepts, QEMU never
 * greets.  Said within FERRY_QMP_GREETING_MS, not the command timeout. */
START_TEST(test_no_greeting)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ferry_qmp *q;
    int lfd;

    snprintf(sock_path, sizeof(sock_path), "/tmp/test-qmp.%d.sock", (int)getpid());
    unlink(sock_path);
    strcpy(sa.sun_path, sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);     /* and never accept */
    q = ferry_qmp_new(60000);
    ck_assert_int_eq(ferry_qmp_connect(q, sock_path), -ETIMEDOUT);
    ck_assert_msg(strstr(ferry_qmp_error(q), "libvirt") &&
                  strstr(ferry_qmp_error(q), "holds this monitor"), "%s", ferry_qmp_error(q));
    ferry_qmp_close(q);
    close(lfd);
    unlink(sock_path);
}
END_TEST

/* query-pci replies, parsed; glib's criticals are fatal (main). */
static bool find_in(const char *json, const char *id, char *where, size_t len)
{
    json_t *n = json_loads(json, JSON_DECODE_ANY, NULL);
    bool found;

    ck_assert_ptr_nonnull(n);
    found = ferry_qmp_pci_find(n, id, where, len);
    json_decref(n);
    return found;
}

START_TEST(test_pci_find)
{
    char where[32] = "";

    /* QEMU's shape: a device behind a root port */
    ck_assert(find_in("[{\"bus\":0,\"devices\":[{\"bus\":0,\"slot\":1,\"function\":0,"
                      "\"qdev_id\":\"rp0\",\"pci_bridge\":{\"bus\":{\"number\":1},"
                      "\"devices\":[{\"bus\":1,\"slot\":0,\"function\":0,"
                      "\"qdev_id\":\"hostdev0\"}]}}]}]", "hostdev0", where, sizeof(where)));
    ck_assert_str_eq(where, "01:00.0");
    ck_assert(!find_in("[{\"devices\":[]}]", "hostdev0", where, sizeof(where)));
}
END_TEST

/* Wrong types anywhere count as absent: no GLib critical, no crash. */
START_TEST(test_pci_find_hostile)
{
    static const char *const replies[] = {
        "{\"devices\":[]}",                                  /* not an array */
        "[\"bus\", 1, null, [], true]",                      /* buses not objects */
        "[{\"devices\":\"all of them\"}]",                  /* devices not an array */
        "[{\"devices\":{\"qdev_id\":\"hostdev0\"}}]",
        "[{\"devices\":[1, \"x\", null, [], 2.5]}]",       /* devices not objects */
        "[{\"devices\":[{\"qdev_id\":7}]}]",                /* qdev_id not a string */
        "[{\"devices\":[{\"qdev_id\":[\"hostdev0\"]}]}]",
        "[{\"devices\":[{\"pci_bridge\":[1,2]}]}]",         /* bridge not an object */
        "[{\"devices\":[{\"pci_bridge\":{\"devices\":\"x\"}}]}]",
        "[{\"devices\":[{\"pci_bridge\":{\"devices\":{\"qdev_id\":\"hostdev0\"}}}]}]",
        "[{\"devices\":[{\"pci_bridge\":{\"devices\":[null, 3]}}]}]",
    };
    char where[32];

    for (size_t i = 0; i < G_N_ELEMENTS(replies); i++) {
        where[0] = '\0';
        ck_assert_msg(!find_in(replies[i], "hostdev0", where, sizeof(where)), "%s", replies[i]);
        ck_assert_str_eq(where, "");
    }
    /* found, but bus/slot/function of the wrong type: counted as 0 */
    ck_assert(find_in("[{\"devices\":[{\"qdev_id\":\"hostdev0\",\"bus\":\"1\","
                      "\"slot\":[],\"function\":{}}]}]", "hostdev0", where, sizeof(where)));
    ck_assert_str_eq(where, "00:00.0");
    ck_assert(!ferry_qmp_pci_find(NULL, "hostdev0", where, sizeof(where)));
}
END_TEST

/* Bridges nested deeper than any PCI hierarchy (256 buses) are not
 * followed further: a bounded walk, not unbounded recursion. */
static char *nested(unsigned depth)
{
    GString *s = g_string_new("[{\"devices\":[");

    for (unsigned i = 1; i < depth; i++)
        g_string_append(s, "{\"pci_bridge\":{\"devices\":[");
    g_string_append(s, "{\"qdev_id\":\"deep\",\"slot\":3}");
    for (unsigned i = 1; i < depth; i++)
        g_string_append(s, "]}}");
    g_string_append(s, "]}]");
    return g_string_free(s, FALSE);
}

START_TEST(test_pci_find_deep)
{
    char where[32] = "", *json;

    json = nested(FERRY_QMP_PCI_DEPTH_MAX);
    ck_assert(find_in(json, "deep", where, sizeof(where)));
    ck_assert_str_eq(where, "00:03.0");
    g_free(json);
    json = nested(FERRY_QMP_PCI_DEPTH_MAX + 1);
    ck_assert(!find_in(json, "deep", where, sizeof(where)));
    g_free(json);
    /* far deeper than the bound (jansson itself caps nesting; either way
     * the answer is "not found" and nothing recurses without bound) */
    json = nested(5000);
    {
        json_t *n = json_loads(json, JSON_DECODE_ANY, NULL);
        if (n) {
            ck_assert(!ferry_qmp_pci_find(n, "deep", where, sizeof(where)));
            json_decref(n);
        }
    }
    g_free(json);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qmp");

    signal(SIGPIPE, SIG_IGN);
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    suite_add_tcase(s, FERRY_CHECK_TCASE("client", 120, test_normal, test_error_reply,
                                         test_device_del,
                                         test_event_with_reply, test_bad_shapes, test_hostile,
                                         test_pci_find, test_pci_find_hostile, test_pci_find_deep,
                                         test_no_greeting));
    return ferry_check_run(s, CK_FORK_GETENV);
}
