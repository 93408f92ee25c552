// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small synchronous QMP client (json-glib): enough to hot-add a usbredir
 * channel to a running QEMU (chardev-add + device_add usb-redir) and remove
 * it again (device_del, DEVICE_DELETED, chardev-remove).  Every wait is
 * bounded by the timeout given to ferry_usb_qmp_open.  QEMU's replies are
 * input like any other: lines are capped at QMP_LINE_MAX.
 */
#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "usb/ferry-usb.h"

#define QMP_LINE_MAX (1u << 20)
#define QMP_DELETED_MAX 64      /* DEVICE_DELETED ids kept for a later wait */

struct ferry_usb_qmp {
    int fd;
    int timeout_ms;
    char path[108];
    GString *in;
    GPtrArray *deleted;     /* ids from DEVICE_DELETED events */
};

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* Read one line (without the newline) into *out; -ETIMEDOUT, -EPIPE. */
static int qmp_line(struct ferry_usb_qmp *q, char **out, int64_t deadline)
{
    for (;;) {
        char *nl = memchr(q->in->str, '\n', q->in->len);
        char buf[4096];
        struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
        ssize_t n;
        int64_t left;

        if (nl) {
            size_t len = (size_t)(nl - q->in->str);
            *out = g_strndup(q->in->str, len);
            g_string_erase(q->in, 0, (gssize)len + 1);
            return 0;
        }
        if (q->in->len > QMP_LINE_MAX)
            return -EMSGSIZE;
        left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = read(q->fd, buf, sizeof(buf));
        if (n == 0)
            return -EPIPE;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        g_string_append_len(q->in, buf, n);
    }
}

/* Parse a line; returns the object or NULL (not JSON / not an object). */
static JsonNode *qmp_parse(const char *line)
{
    JsonParser *p = json_parser_new();
    JsonNode *n = NULL;

    if (json_parser_load_from_data(p, line, -1, NULL) && json_parser_get_root(p) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
        n = json_node_copy(json_parser_get_root(p));
    g_object_unref(p);
    return n;
}

/* o's member `name` if it is a string, else NULL (QEMU's JSON is input). */
static const char *qmp_str(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

/* o's member `name` if it is an object, else NULL. */
static JsonObject *qmp_obj(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static void qmp_note_event(struct ferry_usb_qmp *q, JsonObject *o)
{
    const char *ev = qmp_str(o, "event");
    const char *dev = qmp_str(qmp_obj(o, "data"), "device");

    if (!ev || strcmp(ev, "DEVICE_DELETED") || !dev)
        return;
    g_ptr_array_add(q->deleted, g_strdup(dev));
    /* a DEVICE_DELETED nobody waits for must not pile up */
    while (q->deleted->len > QMP_DELETED_MAX)
        g_ptr_array_remove_index(q->deleted, 0);
}

/* Wait for the reply to the command just sent (events are noted). */
static int qmp_reply(struct ferry_usb_qmp *q, const char *cmd, char **reply_json,
                     char *err, size_t errlen)
{
    int64_t deadline = now_ms() + q->timeout_ms;

    for (;;) {
        char *line = NULL;
        JsonNode *n;
        JsonObject *o;
        int r = qmp_line(q, &line, deadline);

        if (r < 0) {
            snprintf(err, errlen, "qmp %s: %s: %s", q->path, cmd,
                     r == -ETIMEDOUT ? "no reply" : r == -EPIPE ? "QEMU closed the connection"
                                                              : g_strerror(-r));
            return r;
        }
        n = qmp_parse(line);
        g_free(line);
        if (!n)
            continue;
        o = json_node_get_object(n);
        if (json_object_has_member(o, "event")) {
            qmp_note_event(q, o);
        } else if (json_object_has_member(o, "return")) {
            if (reply_json)
                *reply_json = json_to_string(json_object_get_member(o, "return"), FALSE);
            json_node_unref(n);
            return 0;
        } else if (json_object_has_member(o, "error")) {
            const char *desc = qmp_str(qmp_obj(o, "error"), "desc");

            snprintf(err, errlen, "qmp %s: %s: %s", q->path, cmd, desc ? desc : "error");
            json_node_unref(n);
            return -EIO;
        }
        json_node_unref(n);
    }
}

/* Send one command; with fd >= 0 the first bytes carry it (SCM_RIGHTS), as
 * QEMU's getfd expects. */
static int qmp_execute_fd(struct ferry_usb_qmp *q, const char *cmd, const char *args_json,
                          int fd, char **reply_json, char *err, size_t errlen)
{
    GString *msg = g_string_new(NULL);
    ssize_t n;
    size_t off = 0;

    if (reply_json)
        *reply_json = NULL;
    /* cmd is ours; args_json is built by us with json-glib */
    g_string_append_printf(msg, "{\"execute\":\"%s\"", cmd);
    if (args_json)
        g_string_append_printf(msg, ",\"arguments\":%s", args_json);
    g_string_append(msg, "}\n");
    if (fd >= 0) {
        n = ferry_usb_fd_send(q->fd, fd, msg->str, msg->len);
        if (n < 0) {
            snprintf(err, errlen, "qmp %s: %s: cannot pass the fd: %s", q->path, cmd,
                     g_strerror((int)-n));
            g_string_free(msg, TRUE);
            return -EPIPE;
        }
        off = msg->len;
    }
    while (off < msg->len) {
        n = send(q->fd, msg->str + off, msg->len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "qmp %s: %s: cannot send: %s", q->path, cmd, g_strerror(errno));
            g_string_free(msg, TRUE);
            return -EPIPE;
        }
        off += (size_t)n;
    }
    g_string_free(msg, TRUE);
    return qmp_reply(q, cmd, reply_json, err, errlen);
}

int ferry_usb_qmp_execute(struct ferry_usb_qmp *q, const char *cmd, const char *args_json,
                          char **reply_json, char *err, size_t errlen)
{
    return qmp_execute_fd(q, cmd, args_json, -1, reply_json, err, errlen);
}

int ferry_usb_qmp_fd(const struct ferry_usb_qmp *q)
{
    return q->fd;
}

int ferry_usb_qmp_drain(struct ferry_usb_qmp *q)
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(q->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == 0)
            return -EPIPE;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        g_string_append_len(q->in, buf, n);
        if (q->in->len > QMP_LINE_MAX)
            return -EMSGSIZE;
    }
    /* complete lines: keep the events we wait for, drop the rest */
    for (;;) {
        char *nl = memchr(q->in->str, '\n', q->in->len);
        JsonNode *n;

        if (!nl)
            return 0;
        *nl = 0;
        n = qmp_parse(q->in->str);
        g_string_erase(q->in, 0, nl - q->in->str + 1);
        if (n) {
            JsonObject *o = json_node_get_object(n);
            if (json_object_has_member(o, "event"))
                qmp_note_event(q, o);
            json_node_unref(n);
        }
    }
}

int ferry_usb_qmp_open(const char *path, int timeout_ms, struct ferry_usb_qmp **out,
                       char *err, size_t errlen)
{
    struct ferry_usb_qmp *q = g_new0(struct ferry_usb_qmp, 1);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *line = NULL;
    int r;

    q->fd = -1;
    q->timeout_ms = timeout_ms;
    q->in = g_string_new(NULL);
    q->deleted = g_ptr_array_new_with_free_func(g_free);
    g_strlcpy(q->path, path, sizeof(q->path));
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "qmp %s: path too long", path);
        ferry_usb_qmp_close(q);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        snprintf(err, errlen, "qmp %s: cannot connect: %s", path, g_strerror(-r));
        ferry_usb_qmp_close(q);
        return r;
    }
    /* the greeting */
    r = qmp_line(q, &line, now_ms() + timeout_ms);
    if (r < 0 || !strstr(line, "\"QMP\"")) {
        snprintf(err, errlen, "qmp %s: no QMP greeting", path);
        g_free(line);
        ferry_usb_qmp_close(q);
        return r < 0 ? r : -EPROTO;
    }
    g_free(line);
    r = ferry_usb_qmp_execute(q, "qmp_capabilities", NULL, NULL, err, errlen);
    if (r < 0) {
        ferry_usb_qmp_close(q);
        return r;
    }
    *out = q;
    return 0;
}

void ferry_usb_qmp_close(struct ferry_usb_qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    g_string_free(q->in, TRUE);
    g_ptr_array_unref(q->deleted);
    g_free(q);
}

static bool qmp_seen_deleted(struct ferry_usb_qmp *q, const char *id)
{
    for (guint i = 0; i < q->deleted->len; i++)
        if (!strcmp(g_ptr_array_index(q->deleted, i), id)) {
            g_ptr_array_remove_index(q->deleted, i);
            return true;
        }
    return false;
}

int ferry_usb_qmp_wait_deleted(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    int64_t deadline = now_ms() + q->timeout_ms;

    while (!qmp_seen_deleted(q, id)) {
        char *line = NULL;
        JsonNode *n;
        int r = qmp_line(q, &line, deadline);

        if (r < 0) {
            snprintf(err, errlen, "qmp %s: device %s: no DEVICE_DELETED: %s", q->path, id,
                     r == -ETIMEDOUT ? "timed out" : g_strerror(-r));
            return r;
        }
        n = qmp_parse(line);
        g_free(line);
        if (n) {
            JsonObject *o = json_node_get_object(n);
            if (json_object_has_member(o, "event"))
                qmp_note_event(q, o);
            json_node_unref(n);
        }
    }
    return 0;
}

static char *json_of(JsonBuilder *b)
{
    JsonNode *root = json_builder_get_root(b);
    char *s = json_to_string(root, FALSE);

    json_node_unref(root);
    g_object_unref(b);
    return s;
}

/* device_add usb-redir on chardev id (removing the chardev on failure). */
static int redir_device_add(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    JsonBuilder *b = json_builder_new();
    char *args;
    int r;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, "usb-redir");
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, id);
    json_builder_set_member_name(b, "chardev");
    json_builder_add_string_value(b, id);
    json_builder_end_object(b);
    args = json_of(b);
    r = ferry_usb_qmp_execute(q, "device_add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0) {
        char e2[FERRY_USB_ERR_MAX];
        char *a2 = g_strdup_printf("{\"id\":\"%s\"}", id);
        if (ferry_usb_qmp_execute(q, "chardev-remove", a2, NULL, e2, sizeof(e2)) < 0)
            { /* the first error is the one to report */ }
        g_free(a2);
    }
    return r;
}

/* chardev-add's arguments for a socket chardev id on address type atype
 * ("unix" or "fd") whose data member key is value:
 * {"id":ID,"backend":{"type":"socket","data":{"addr":{"type":ATYPE,
 *  "data":{KEY:VALUE}},"server":false[,"reconnect":1]}}} */
static char *chardev_socket_args(const char *id, const char *atype, const char *key,
                                 const char *value, bool reconnect)
{
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, id);
    json_builder_set_member_name(b, "backend");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "socket");
    json_builder_set_member_name(b, "data");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "addr");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, atype);
    json_builder_set_member_name(b, "data");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, value);
    json_builder_end_object(b);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "server");
    json_builder_add_boolean_value(b, FALSE);
    if (reconnect) {
        json_builder_set_member_name(b, "reconnect");
        json_builder_add_int_value(b, 1);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    json_builder_end_object(b);
    return json_of(b);
}

int ferry_usb_qmp_redir_add(struct ferry_usb_qmp *q, const char *id, const char *sock_path,
                            char *err, size_t errlen)
{
    /* QEMU reconnects by itself after the device was unplugged */
    char *args = chardev_socket_args(id, "unix", "path", sock_path, true);
    int r;

    r = ferry_usb_qmp_execute(q, "chardev-add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0)
        return r;
    return redir_device_add(q, id, err, errlen);
}

int ferry_usb_qmp_redir_add_fd(struct ferry_usb_qmp *q, const char *id, int fd,
                               char *err, size_t errlen)
{
    char *args = g_strdup_printf("{\"fdname\":\"%s\"}", id);
    int r;

    /* the fd becomes QEMU's under the name id ... */
    r = qmp_execute_fd(q, "getfd", args, fd, NULL, err, errlen);
    g_free(args);
    if (r < 0)
        return r;
    /* ... and a socket chardev's connected fd */
    args = chardev_socket_args(id, "fd", "str", id, false);
    r = ferry_usb_qmp_execute(q, "chardev-add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0) {
        char e2[FERRY_USB_ERR_MAX];
        char *a2 = g_strdup_printf("{\"fdname\":\"%s\"}", id);
        if (ferry_usb_qmp_execute(q, "closefd", a2, NULL, e2, sizeof(e2)) < 0)
            { /* consumed by a failed chardev-add, or not: the first error counts */ }
        g_free(a2);
        return r;
    }
    return redir_device_add(q, id, err, errlen);
}

int ferry_usb_qmp_redir_del(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    JsonBuilder *b = json_builder_new();
    char *args;
    int r;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, id);
    json_builder_end_object(b);
    args = json_of(b);
    r = ferry_usb_qmp_execute(q, "device_del", args, NULL, err, errlen);
    if (r == 0)
        r = ferry_usb_qmp_wait_deleted(q, id, err, errlen);
    if (r == 0) {
        /* QEMU 7.2 drops a usb-redir's chardev with the device itself */
        char e2[FERRY_USB_ERR_MAX];
        r = ferry_usb_qmp_execute(q, "chardev-remove", args, NULL, e2, sizeof(e2));
        if (r < 0 && strstr(e2, "not found"))
            r = 0;
        else if (r < 0)
            snprintf(err, errlen, "%s", e2);
    }
    g_free(args);
    return r;
}
