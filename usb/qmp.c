// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QMP for USB: hot-add a usbredir channel to a running QEMU (chardev-add +
 * device_add usb-redir, or getfd first for a socketpair end) and remove it
 * again (device_del, DEVICE_DELETED, chardev-remove).  The client itself is
 * common/qmp.c: every wait is bounded by the timeout given to
 * usb_qmp_open, and QEMU's messages are capped and type-checked there.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/qmp.h"
#include "common/qmp-wait.h"
#include "usb/ferry-usb.h"

/* The protocol is common/qmp.c's (the project's one QMP client); this layer
 * keeps libferry-usb's API: JSON text in and out, errors as "qmp PATH: CMD:
 * why" in the caller's buffer. */
struct ferry_usb_qmp {
    struct ferry_qmp *q;
    char path[108];
};

/* common/qmp.c's message without its "qmp: " prefix (the path says it),
 * and QEMU's refusals without their error class. */
static const char *why(const struct ferry_usb_qmp *q, int r)
{
    return ferry_qmp_reason(q->q, r);
}

static int qmp_execute_fd(struct ferry_usb_qmp *q, const char *cmd, const char *args_json,
                          int fd, char **reply_json, char *err, size_t errlen)
{
    json_t *args = NULL, *ret = NULL;
    char bad[160];
    int r;

    if (reply_json)
        *reply_json = NULL;
    if (args_json && !(args = ferry_json_parse(args_json, strlen(args_json), bad, sizeof(bad)))) {
        snprintf(err, errlen, "qmp %s: %s: arguments are not JSON: %s", q->path, cmd, bad);
        return -EINVAL;
    }
    r = ferry_qmp_execute_fd(q->q, cmd, args, fd, reply_json ? &ret : NULL);
    json_decref(args);
    if (r < 0) {
        snprintf(err, errlen, "qmp %s: %s: %s", q->path, cmd, why(q, r));
        /* QEMU said no: -EIO, as before; the transport's errors stay */
        return r == -EREMOTEIO ? -EIO : r == -ECONNRESET ? -EPIPE : r;
    }
    if (reply_json)
        *reply_json = ret ? ferry_json_dumps(ret, false) : g_strdup("{}");
    json_decref(ret);
    return 0;
}

int usb_qmp_execute(struct ferry_usb_qmp *q, const char *cmd, const char *args_json,
                          char **reply_json, char *err, size_t errlen)
{
    return qmp_execute_fd(q, cmd, args_json, -1, reply_json, err, errlen);
}

int usb_qmp_fd(const struct ferry_usb_qmp *q)
{
    return ferry_qmp_fd(q->q);
}

int usb_qmp_drain(struct ferry_usb_qmp *q)
{
    return ferry_qmp_drain(q->q);
}

int usb_qmp_open(const char *path, int timeout_ms, struct ferry_usb_qmp **out,
                       char *err, size_t errlen)
{
    return usb_qmp_open_fd(-1, path, timeout_ms, out, err, errlen);
}

int usb_qmp_open_fd(int fd, const char *path, int timeout_ms, struct ferry_usb_qmp **out,
                    char *err, size_t errlen)
{
    struct ferry_usb_qmp *q = g_new0(struct ferry_usb_qmp, 1);
    int r;

    *out = NULL;
    g_strlcpy(q->path, path, sizeof(q->path));
    q->q = ferry_qmp_new(timeout_ms);
    if (!q->q) {
        snprintf(err, errlen, "qmp %s: out of memory", path);
        if (fd >= 0)
            close(fd);
        g_free(q);
        return -ENOMEM;
    }
    r = fd >= 0 ? ferry_qmp_connect_fd(q->q, fd, path) : ferry_qmp_connect(q->q, path);
    fd = -1;
    if (r < 0) {
        snprintf(err, errlen, "qmp %s: %s", path, why(q, r));
        usb_qmp_close(q);
        return r;
    }
    *out = q;
    return 0;
}

int usb_qmp_adopt(const char *path, int fd, const void *unread, size_t len, int timeout_ms,
                  struct ferry_usb_qmp **out)
{
    struct ferry_usb_qmp *q = g_new0(struct ferry_usb_qmp, 1);
    int r;

    *out = NULL;
    g_strlcpy(q->path, path, sizeof(q->path));
    q->q = ferry_qmp_new(timeout_ms);
    if (!q->q) {
        g_free(q);
        return -ENOMEM;
    }
    r = ferry_qmp_adopt(q->q, fd, unread, len);
    if (r < 0) {
        usb_qmp_close(q);
        return r;
    }
    *out = q;
    return 0;
}

void usb_qmp_close(struct ferry_usb_qmp *q)
{
    if (!q)
        return;
    ferry_qmp_close(q->q);
    g_free(q);
}

int usb_qmp_wait_deleted(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    int r = ferry_qmp_wait_deleted(q->q, id, 0);

    if (r < 0)
        snprintf(err, errlen, "qmp %s: device %s: no DEVICE_DELETED: %s", q->path, id,
                 r == -ETIMEDOUT ? "timed out" : why(q, r));
    return r == -ECONNRESET ? -EPIPE : r;
}

struct ferry_qmp *usb_qmp_base(struct ferry_usb_qmp *q)
{
    return q ? q->q : NULL;
}

/* o as compact text (g_free it), o consumed. */
static char *json_of(json_t *o)
{
    char *s = ferry_json_dumps(o, false);

    json_decref(o);
    return s;
}

/* device_add usb-redir on chardev id (removing the chardev on failure). */
static int redir_device_add(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    char *args;
    int r;

    args = json_of(json_pack("{s:s, s:s, s:s}", "driver", "usb-redir", "id", id,
                             "chardev", id));
    r = usb_qmp_execute(q, "device_add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0) {
        char e2[FERRY_USB_ERR_MAX];
        char *a2 = g_strdup_printf("{\"id\":\"%s\"}", id);
        if (usb_qmp_execute(q, "chardev-remove", a2, NULL, e2, sizeof(e2)) < 0)
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
    json_t *sock = json_pack("{s:{s:s, s:{s:s}}, s:b}", "addr", "type", atype, "data", key,
                             value, "server", 0);

    if (sock && reconnect)
        json_object_set_new(sock, "reconnect", json_integer(1));
    return json_of(json_pack("{s:s, s:{s:s, s:o?}}", "id", id, "backend", "type", "socket",
                             "data", sock));
}

int usb_qmp_redir_add(struct ferry_usb_qmp *q, const char *id, const char *sock_path,
                            char *err, size_t errlen)
{
    /* QEMU reconnects by itself after the device was unplugged */
    char *args = chardev_socket_args(id, "unix", "path", sock_path, true);
    int r;

    r = usb_qmp_execute(q, "chardev-add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0)
        return r;
    return redir_device_add(q, id, err, errlen);
}

int usb_qmp_redir_add_fd(struct ferry_usb_qmp *q, const char *id, int fd,
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
    r = usb_qmp_execute(q, "chardev-add", args, NULL, err, errlen);
    g_free(args);
    if (r < 0) {
        char e2[FERRY_USB_ERR_MAX];
        char *a2 = g_strdup_printf("{\"fdname\":\"%s\"}", id);
        if (usb_qmp_execute(q, "closefd", a2, NULL, e2, sizeof(e2)) < 0)
            { /* consumed by a failed chardev-add, or not: the first error counts */ }
        g_free(a2);
        return r;
    }
    return redir_device_add(q, id, err, errlen);
}

static char *id_args(const char *id)
{
    return json_of(json_pack("{s:s}", "id", id));
}

int usb_qmp_redir_del_start(struct ferry_usb_qmp *q, const char *id, char *err,
                                  size_t errlen)
{
    char *args = id_args(id);
    int r = usb_qmp_execute(q, "device_del", args, NULL, err, errlen);

    g_free(args);
    return r;
}

int usb_qmp_redir_del_finish(struct ferry_usb_qmp *q, const char *id, char *err,
                                   size_t errlen)
{
    /* QEMU 7.2 drops a usb-redir's chardev with the device itself */
    char e2[FERRY_USB_ERR_MAX], *args = id_args(id);
    int r = usb_qmp_execute(q, "chardev-remove", args, NULL, e2, sizeof(e2));

    g_free(args);
    if (r < 0 && strstr(e2, "not found"))
        r = 0;
    else if (r < 0)
        snprintf(err, errlen, "%s", e2);
    return r;
}

int usb_qmp_redir_del(struct ferry_usb_qmp *q, const char *id, char *err, size_t errlen)
{
    int r = usb_qmp_redir_del_start(q, id, err, errlen);

    if (r == 0)
        r = usb_qmp_wait_deleted(q, id, err, errlen);
    if (r == 0)
        r = usb_qmp_redir_del_finish(q, id, err, errlen);
    return r;
}
