// SPDX-License-Identifier: GPL-2.0-or-later
/* The project's one QMP client, on jansson (common/json.h); see qmp.h. */
#include "common/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

struct ferry_qmp {
    int fd;
    int timeout_ms;
    char *buf;          /* received bytes not yet split into lines */
    size_t len, cap;
    GQueue events;      /* json_t * of kept events */
    unsigned long next_id;
    bool peer_ferry_dm;
    void (*on_event)(void *opaque);     /* an event was kept */
    void *on_event_opaque;
    char err[512];
};

static __attribute__((format(printf, 3, 4))) int fail(struct ferry_qmp *q, int err,
                                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
    return err;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ferry_qmp *ferry_qmp_new(int timeout_ms)
{
    struct ferry_qmp *q = g_try_new0(struct ferry_qmp, 1);

    if (!q)
        return NULL;
    q->fd = -1;
    q->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    g_queue_init(&q->events);
    return q;
}

void ferry_qmp_close(struct ferry_qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    g_queue_clear_full(&q->events, (GDestroyNotify)json_decref);
    g_free(q->buf);
    g_free(q);
}

const char *ferry_qmp_unread(const struct ferry_qmp *q, size_t *len)
{
    *len = q->len;
    return q->buf;
}

int ferry_qmp_adopt(struct ferry_qmp *q, int fd, const void *unread, size_t len)
{
    if (q->fd >= 0 || len > FERRY_QMP_LINE_MAX)
        return -EINVAL;
    q->fd = fd;
    if (len) {
        q->buf = g_realloc(q->buf, len + 4096);
        q->cap = len + 4096;
        memcpy(q->buf, unread, len);
        q->len = len;
    }
    return 0;
}

bool ferry_qmp_peer_is_ferry_dm(const struct ferry_qmp *q)
{
    return q->peer_ferry_dm;
}

const char *ferry_qmp_error(const struct ferry_qmp *q)
{
    return q->err;
}

const char *ferry_qmp_reason(const struct ferry_qmp *q, int r)
{
    const char *e = q->err;
    const char *colon;

    if (g_str_has_prefix(e, "qmp: "))
        e += 5;
    if (r == -EREMOTEIO && (colon = strstr(e, ": ")))
        e = colon + 2;
    return e;
}

/* Peer input: a reply may put anything anywhere; the typed lookups of
 * common/json.h give NULL (or the default) for a member of another type. */
#define object_member ferry_json_object
#define string_member ferry_json_string
#define array_member ferry_json_array
#define int_member ferry_json_int

static json_t *array_object(json_t *a, size_t i)
{
    json_t *n = json_array_get(a, i);

    return json_is_object(n) ? n : NULL;
}

static bool pci_find_devs(json_t *devs, const char *id, char *where, size_t len,
                          unsigned depth)
{
    if (!devs || depth > FERRY_QMP_PCI_DEPTH_MAX)
        return false;
    for (size_t i = 0; i < json_array_size(devs); i++) {
        json_t *d = array_object(devs, i);

        if (!d)
            continue;
        if (!g_strcmp0(string_member(d, "qdev_id", NULL), id)) {
            snprintf(where, len, "%02x:%02x.%x", (unsigned)int_member(d, "bus", 0) & 0xff,
                     (unsigned)int_member(d, "slot", 0) & 0x1f,
                     (unsigned)int_member(d, "function", 0) & 7);
            return true;
        }
        if (pci_find_devs(array_member(object_member(d, "pci_bridge"), "devices"), id, where,
                          len, depth + 1))
            return true;
    }
    return false;
}

bool ferry_qmp_pci_find(json_t *ret, const char *id, char *where, size_t len)
{
    if (!id || !json_is_array(ret))
        return false;
    for (size_t i = 0; i < json_array_size(ret); i++)
        if (pci_find_devs(array_member(array_object(ret, i), "devices"), id, where, len, 1))
            return true;
    return false;
}

/* Next complete message (one line) as a parsed object node, waiting until
 * `deadline`.  0 or -errno. */
static int read_message(struct ferry_qmp *q, int64_t deadline, json_t **out)
{
    for (;;) {
        char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;

        if (nl) {
            size_t n = (size_t)(nl - q->buf);
            char why[160];
            json_t *root = ferry_json_parse(q->buf, n, why, sizeof(why));

            memmove(q->buf, nl + 1, q->len - n - 1);
            q->len -= n + 1;
            if (!root)
                return fail(q, -EPROTO, "qmp: unparsable message: %s", why);
            if (!json_is_object(root)) {
                json_decref(root);
                return fail(q, -EPROTO, "qmp: message is not a JSON object");
            }
            *out = root;
            return 0;
        }
        if (q->len >= FERRY_QMP_LINE_MAX)
            return fail(q, -EMSGSIZE, "qmp: message longer than %u bytes", FERRY_QMP_LINE_MAX);
        if (q->cap - q->len < 4096) {
            size_t ncap = q->cap ? q->cap * 2 : 16384;
            if (ncap > FERRY_QMP_LINE_MAX + 4096)
                ncap = FERRY_QMP_LINE_MAX + 4096;
            q->buf = g_realloc(q->buf, ncap);
            q->cap = ncap;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return fail(q, -ETIMEDOUT, "qmp: no answer from QEMU within %d ms", q->timeout_ms);
        struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail(q, -errno, "qmp: poll: %s", strerror(errno));
        if (r == 0)
            continue;
        ssize_t got = read(q->fd, q->buf + q->len, q->cap - q->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(q, -errno, "qmp: read: %s", strerror(errno));
        if (got == 0)
            return fail(q, -ECONNRESET, "qmp: QEMU closed the connection");
        q->len += (size_t)got;
    }
}

/* Keep an event, dropping the oldest when FERRY_QMP_EVENTS_MAX are kept
 * (a waiter wants the newest). */
static void keep_event(struct ferry_qmp *q, json_t *ev)
{
    if (g_queue_get_length(&q->events) >= FERRY_QMP_EVENTS_MAX)
        json_decref(g_queue_pop_head(&q->events));
    g_queue_push_tail(&q->events, ev);
    if (q->on_event)
        q->on_event(q->on_event_opaque);
}

void ferry_qmp_set_event_cb(struct ferry_qmp *q, void (*fn)(void *opaque), void *opaque)
{
    q->on_event = fn;
    q->on_event_opaque = opaque;
}

static int send_all(struct ferry_qmp *q, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(q->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return fail(q, -errno, "qmp: send: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* text (one line, with its newline) with fd in the first bytes as
 * SCM_RIGHTS, the way QEMU's getfd expects it. */
static int send_with_fd(struct ferry_qmp *q, const char *text, size_t n, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { .iov_base = (void *)text, .iov_len = n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                         .msg_controllen = sizeof(ctl) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    ssize_t w;

    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    do {
        w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return fail(q, -errno, "qmp: cannot pass the fd: %s", strerror(errno));
    return send_all(q, text + w, n - (size_t)w);
}

int ferry_qmp_execute(struct ferry_qmp *q, const char *cmd, json_t *args, json_t **ret)
{
    return ferry_qmp_execute_fd(q, cmd, args, -1, ret);
}

static int wait_reply(struct ferry_qmp *q, const char *id, int64_t deadline, json_t **ret);

/* The complete lines already read: events kept, anything else (a reply
 * nobody waits for, a line that does not parse) dropped. */
static void drain_buffered(struct ferry_qmp *q)
{
    while (q->len && memchr(q->buf, '\n', q->len)) {
        json_t *msg = NULL;

        if (read_message(q, now_ms(), &msg) < 0)
            continue;
        if (json_object_get(msg, "event"))
            keep_event(q, msg);
        else
            json_decref(msg);
    }
}

/* After a reply: the events already read behind it are kept now (a loop
 * watching the socket would not be woken for them).  Stops at the first
 * line that is not an event, which stays for the next command. */
static void keep_buffered(struct ferry_qmp *q)
{
    char *nl;

    while (q->len && (nl = memchr(q->buf, '\n', q->len))) {
        size_t n = (size_t)(nl - q->buf);
        json_t *root = ferry_json_parse(q->buf, n, NULL, 0);

        if (!json_is_object(root) || !json_object_get(root, "event")) {
            json_decref(root);
            return;
        }
        keep_event(q, root);
        memmove(q->buf, nl + 1, q->len - n - 1);
        q->len -= n + 1;
    }
}

int ferry_qmp_execute_fd(struct ferry_qmp *q, const char *cmd, json_t *args, int fd,
                         json_t **ret)
{
    json_t *req;
    char *text;
    char id[32];
    int64_t deadline = now_ms() + q->timeout_ms;
    int r;

    if (ret)
        *ret = NULL;
    if (q->fd < 0)
        return fail(q, -ENOTCONN, "qmp: not connected");
    if (args && !json_is_object(args))
        return fail(q, -EINVAL, "qmp: %s: arguments must be an object", cmd);
    snprintf(id, sizeof(id), "ferry-%lu", ++q->next_id);
    req = json_object();
    json_object_set_new(req, "execute", ferry_json_str(cmd));
    if (args)
        json_object_set(req, "arguments", args);
    json_object_set_new(req, "id", json_string(id));
    text = ferry_json_dumps(req, false);
    json_decref(req);
    if (!text)
        return fail(q, -ENOMEM, "qmp: %s: out of memory", cmd);
    {
        char *line = g_strconcat(text, "\n", NULL);

        r = fd >= 0 ? send_with_fd(q, line, strlen(line), fd) : send_all(q, line, strlen(line));
        g_free(line);
        free(text);
    }
    if (r < 0)
        return r;
    r = wait_reply(q, id, deadline, ret);
    /* lines read with the reply (events QEMU sent right after it) are
     * kept now: nothing would wake a loop watching the socket for them */
    keep_buffered(q);
    return r;
}

static int wait_reply(struct ferry_qmp *q, const char *id, int64_t deadline, json_t **ret)
{
    int r;

    for (;;) {
        json_t *msg = NULL, *o;

        r = read_message(q, deadline, &msg);
        if (r < 0)
            return r;
        o = msg;
        if (json_object_get(o, "event")) {
            keep_event(q, msg);
            continue;
        }
        /* QEMU echoes our id; a reply with another id answers someone
         * else's command.  One without any id is taken as ours (a peer
         * that does not echo ids can only be answering us). */
        if (json_object_get(o, "id") && g_strcmp0(string_member(o, "id", NULL), id)) {
            json_decref(msg);
            continue;
        }
        if (json_object_get(o, "error")) {
            json_t *e = object_member(o, "error");
            r = fail(q, -EREMOTEIO, "%s: %s", string_member(e, "class", "Error"),
                     string_member(e, "desc", "?"));
            json_decref(msg);
            return r;
        }
        if (ret && json_object_get(o, "return"))
            *ret = json_incref(json_object_get(o, "return"));
        json_decref(msg);
        return 0;
    }
}

static int handshake(struct ferry_qmp *q, const char *path);

int ferry_qmp_connect(struct ferry_qmp *q, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(sa.sun_path))
        return fail(q, -ENAMETOOLONG, "qmp: socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0)
        return fail(q, -errno, "qmp: socket: %s", strerror(errno));
    if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;

        close(q->fd);
        q->fd = -1;
        return fail(q, r, "qmp: cannot connect to %s: %s", path, strerror(-r));
    }
    return handshake(q, path);
}

int ferry_qmp_connect_fd(struct ferry_qmp *q, int fd, const char *name)
{
    q->fd = fd;
    return handshake(q, name);
}

/* The greeting and capabilities on q->fd (closed on failure). */
static int handshake(struct ferry_qmp *q, const char *path)
{
    int64_t deadline = now_ms() + q->timeout_ms;
    json_t *greet = NULL;
    int r;

    /* QEMU greets at once on a monitor nobody else holds; one that another
     * client holds (libvirt keeps its domains' monitors) accepts in the
     * kernel and never greets: say so in seconds, not at the full timeout */
    if (q->timeout_ms > FERRY_QMP_GREETING_MS)
        deadline = now_ms() + FERRY_QMP_GREETING_MS;
    r = read_message(q, deadline, &greet);
    if (r == -ETIMEDOUT) {
        r = fail(q, -ETIMEDOUT, "qmp: no greeting within %d ms: another client (libvirt?) "
                 "probably holds this monitor (QEMU serves one per QMP socket); for a libvirt "
                 "domain use `ferry usb attach DOMAIN`, else give QEMU a -qmp socket for Ferry",
                 q->timeout_ms > FERRY_QMP_GREETING_MS ? FERRY_QMP_GREETING_MS : q->timeout_ms);
        goto out_close;
    }
    if (r < 0)
        goto out_close;
    if (!json_object_get(greet, "QMP")) {
        /* turned away (ferry-dm: too many clients) with the reason */
        const char *desc = string_member(object_member(greet, "error"), "desc", NULL);

        if (desc) {
            char *why = g_strescape(desc, NULL);

            r = fail(q, -EBUSY, "qmp: %s refused the connection: %.200s", path, why);
            g_free(why);
        } else {
            r = fail(q, -EPROTO, "qmp: %s did not greet with a QMP banner", path);
        }
        json_decref(greet);
        goto out_close;
    }
    /* ferry-dm's control socket greets with version {"ferry": ...} */
    q->peer_ferry_dm = string_member(object_member(object_member(greet, "QMP"), "version"),
                                     "ferry", NULL) != NULL;
    json_decref(greet);
    r = ferry_qmp_execute(q, "qmp_capabilities", NULL, NULL);
    if (r < 0)
        goto out_close;
    return 0;
out_close:
    close(q->fd);
    q->fd = -1;
    return r;
}

int ferry_qmp_fd(const struct ferry_qmp *q)
{
    return q->fd;
}

int ferry_qmp_drain(struct ferry_qmp *q)
{
    if (q->fd < 0)
        return fail(q, -ENOTCONN, "qmp: not connected");
    drain_buffered(q);
    for (;;) {
        ssize_t got;

        if (q->cap - q->len < 4096) {
            size_t ncap = q->cap ? q->cap * 2 : 16384;
            if (ncap > FERRY_QMP_LINE_MAX + 4096)
                ncap = FERRY_QMP_LINE_MAX + 4096;
            if (ncap <= q->cap)
                return fail(q, -EMSGSIZE, "qmp: message longer than %u bytes",
                            FERRY_QMP_LINE_MAX);
            q->buf = g_realloc(q->buf, ncap);
            q->cap = ncap;
        }
        got = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got < 0)
            return fail(q, -errno, "qmp: read: %s", strerror(errno));
        if (got == 0)
            return fail(q, -EPIPE, "qmp: QEMU closed the connection");
        q->len += (size_t)got;
        /* complete messages: events are kept, anything else (a reply
         * nobody waits for, a line that does not parse) is dropped */
        drain_buffered(q);
        if (q->len >= FERRY_QMP_LINE_MAX)
            return fail(q, -EMSGSIZE, "qmp: message longer than %u bytes", FERRY_QMP_LINE_MAX);
    }
    return 0;
}

static bool event_matches(json_t *o, const char *name, const char *device)
{
    json_t *data;

    if (g_strcmp0(string_member(o, "event", ""), name))
        return false;
    if (!device)
        return true;
    data = object_member(o, "data");
    if (!data)
        return false;
    return !g_strcmp0(string_member(data, "device", ""), device) ||
           !g_strcmp0(string_member(data, "path", ""), device);
}

static void take_data(json_t *ev, json_t **data)
{
    if (data)
        *data = json_incref(json_object_get(ev, "data"));
    json_decref(ev);
}

int ferry_qmp_take_event(struct ferry_qmp *q, const char *name, const char *device,
                         json_t **data)
{
    if (data)
        *data = NULL;
    for (GList *l = q->events.head; l; l = l->next) {
        if (event_matches(l->data, name, device)) {
            json_t *ev = l->data;
            g_queue_delete_link(&q->events, l);
            take_data(ev, data);
            return 0;
        }
    }
    return -ENOENT;
}

int ferry_qmp_wait_event(struct ferry_qmp *q, const char *name, const char *device,
                         int timeout_ms, json_t **data)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : q->timeout_ms);

    if (ferry_qmp_take_event(q, name, device, data) == 0)
        return 0;
    if (q->fd < 0)
        return fail(q, -ENOTCONN, "qmp: not connected");
    for (;;) {
        json_t *msg = NULL;
        int r = read_message(q, deadline, &msg);

        if (r == -ETIMEDOUT)
            return fail(q, r, "qmp: no %s event within %d ms", name,
                        timeout_ms > 0 ? timeout_ms : q->timeout_ms);
        if (r < 0)
            return r;
        if (event_matches(msg, name, device)) {
            take_data(msg, data);
            keep_buffered(q);
            return 0;
        }
        if (json_object_get(msg, "event"))
            keep_event(q, msg);
        else
            json_decref(msg);
    }
}
