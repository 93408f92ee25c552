// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm's QMP-style control socket (see control.h), the transport side:
 * the listening socket, its clients and their line reading, SCM_RIGHTS fd
 * passing, deferred replies, the idle bound and client-follow, and the
 * parsing of each command line.  The built-in commands, the reply lines and
 * a line's NUL check are control-commands.c's; control-internal.h is what
 * the two share.
 */
#include "devmodel/control-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

struct control_client {
    struct ferry_dm_control *c;
    struct bufferevent *bev;        /* output only: input comes through recvmsg */
    struct event *rev;
    struct evbuffer *in;
    int fds[FERRY_DM_CONTROL_FDS_MAX];  /* passed with SCM_RIGHTS, oldest first */
    unsigned nr_fds;
    bool closing;           /* close once the output is flushed */
    bool quit;              /* and stop the device model */
    bool eof;               /* the client sent all it will send */
    bool throttled;         /* input paused until the client reads its replies */
    bool reading;           /* rev is added */
    bool follower;          /* said client-follow: no idle bound, not an interactive slot */
    struct event *idle_ev;  /* FERRY_DM_CONTROL_IDLE_MS without a command: closed */
    struct ferry_dm_control_pending *pending;   /* its reply comes later */
    struct event *resume_ev;    /* after that reply: its next commands */
};

/* A deferred reply (control.h).  It outlives its client and the socket. */
struct ferry_dm_control_pending {
    struct ferry_dm_control *c;     /* NULL once the control socket closed */
    struct control_client *cl;      /* NULL once the client has gone */
    json_t *id;                     /* a reference, or NULL */
};

struct ferry_dm_control_req {
    struct ferry_dm_control *c;
    struct control_client *cl;      /* NULL: dm_control_execute */
    json_t *id;
    struct ferry_dm_control_pending *p;
};

const char dm_control_deferred_mark[1];

struct ferry_dm_control {
    struct ferry_dm *dm;
    const struct ferry_dm_control_ops *ops;
    void *opaque;
    int listen_fd;
    char path[108];
    struct event *listen_ev;
    struct event *rearm_ev;         /* out of fds: listen again from this timer */
    struct ferry_ratelimit accept_rl;
    GPtrArray *clients;
    unsigned nr_followers;          /* of clients */
    unsigned idle_ms;
    GPtrArray *pendings;            /* not yet completed, all clients */
    ferry_dm_control_handler_fn handler;
    void *handler_opaque;
};


static char *control_execute(struct ferry_dm *dm, struct ferry_dm_control *c,
                             struct control_client *cl, const char *line, size_t len, bool *quit);

char *dm_control_execute(struct ferry_dm *dm, const char *line, size_t len, bool *quit)
{
    return control_execute(dm, NULL, NULL, line, len, quit);
}

/* The oldest fd the client passed, now the caller's; -1 if none. */
static int client_take_fd(struct control_client *cl)
{
    int fd;

    if (!cl || !cl->nr_fds)
        return -1;
    fd = cl->fds[0];
    memmove(cl->fds, cl->fds + 1, --cl->nr_fds * sizeof(int));
    return fd;
}

static void client_idle_update(struct control_client *cl, bool active);

int dm_control_take_fd(struct ferry_dm_control_req *req)
{
    return req ? client_take_fd(req->cl) : -1;
}

/* This connection stays for long (a hotplug broker): see control.h. */
static char *cmd_client_follow(struct ferry_dm_control *c, struct control_client *cl,
                               json_t *id)
{
    if (!c || !cl)
        return dm_control_error(id, "GenericError", "client-follow: only for a connection to "
                                "the control socket");
    if (!cl->follower) {
        if (c->nr_followers >= FERRY_DM_CONTROL_FOLLOWERS_MAX)
            return dm_control_error(id, "GenericError", "client-follow: too many following "
                                    "clients (at most %d)", FERRY_DM_CONTROL_FOLLOWERS_MAX);
        cl->follower = true;
        c->nr_followers++;
        client_idle_update(cl, false);
    }
    return dm_control_reply_empty(id);
}

static char *control_execute(struct ferry_dm *dm, struct ferry_dm_control *c,
                             struct control_client *cl, const char *line, size_t len, bool *quit)
{
    json_t *root, *args = NULL, *id = NULL;
    const char *cmd;
    char why[160];
    char *r;

    *quit = false;
    if (len > FERRY_DM_CONTROL_LINE_MAX)
        return dm_control_error(NULL, "GenericError", "JSON parse error: line too long");
    /* \u0000 is parsed, to be refused below with the command's id */
    root = ferry_json_parse_flags(line, len, JSON_ALLOW_NUL, why, sizeof(why));
    if (!root)
        return dm_control_error(NULL, "GenericError", "JSON parse error: %s", why);
    if (!json_is_object(root)) {
        json_decref(root);
        return dm_control_error(NULL, "GenericError", "expected a JSON object");
    }
    id = json_object_get(root, "id");
    if (dm_control_line_has_nul(line, len)) {
        r = dm_control_error(id, "GenericError", "a string holds a NUL character (\\u0000): "
                             "not accepted");
        json_decref(root);
        return r;
    }
    cmd = ferry_json_string(root, "execute", NULL);
    if (!cmd) {
        r = dm_control_error(id, "GenericError", "'execute' (a string) is required");
        json_decref(root);
        return r;
    }
    if ((args = json_object_get(root, "arguments")) && !json_is_object(args)) {
        r = dm_control_error(id, "GenericError", "'arguments' must be an object");
        json_decref(root);
        return r;
    }

    r = strcmp(cmd, "client-follow") == 0 ? cmd_client_follow(c, cl, id)
                                          : dm_control_builtin(dm, cmd, args, id, quit);
    if (r) {
        /* answered */
    } else if (c && c->handler) {
        struct ferry_dm_control_req req = { .c = c, .cl = cl, .id = id };
        int fd = client_take_fd(cl);

        r = c->handler(c->handler_opaque, &req, cmd, args, id, &fd);
        if (fd >= 0)
            close(fd);      /* not taken: passed fds never pile up */
        /* deferred, and only then: a programmer's bug otherwise */
        g_assert((r == FERRY_DM_CONTROL_DEFERRED) == (req.p != NULL));
        if (!r)
            r = dm_control_error(id, "CommandNotFound", "The command %.64s has not been found",
                                 cmd);
    } else {
        r = dm_control_error(id, "CommandNotFound", "The command %.64s has not been found", cmd);
    }
    json_decref(root);
    return r;
}

struct ferry_dm_control_pending *dm_control_defer(struct ferry_dm_control_req *req)
{
    struct ferry_dm_control_pending *p;

    if (!req || !req->cl) {
        errno = ENOTSUP;
        return NULL;
    }
    if (req->p || req->cl->pending ||
        FERRY_DM_CONTROL_PENDING_CLIENT_MAX < 1 ||
        req->c->pendings->len >= FERRY_DM_CONTROL_PENDING_MAX) {
        errno = EBUSY;
        return NULL;
    }
    p = g_new0(struct ferry_dm_control_pending, 1);
    p->c = req->c;
    p->cl = req->cl;
    p->id = json_incref(req->id);
    g_ptr_array_add(p->c->pendings, p);
    req->cl->pending = p;
    req->p = p;
    return p;
}

json_t *dm_control_pending_id(const struct ferry_dm_control_pending *p)
{
    return p->id;
}

unsigned dm_control_pending_count(const struct ferry_dm_control *c)
{
    return c ? c->pendings->len : 0;
}

static void client_send(struct control_client *cl, char *line);

void dm_control_complete(struct ferry_dm_control_pending *p, char *reply_line)
{
    struct control_client *cl = p->cl;

    if (p->c)
        g_ptr_array_remove(p->c->pendings, p);
    if (cl) {
        cl->pending = NULL;
        client_send(cl, reply_line ? reply_line
                                   : dm_control_error(p->id, "GenericError", "internal error: "
                                                      "the command ended without a reply"));
        /* its next commands, from the loop (this may run inside anything) */
        event_active(cl->resume_ev, EV_TIMEOUT, 0);
    } else {
        g_free(reply_line);     /* the client has gone: dropped */
    }
    json_decref(p->id);
    g_free(p);
}

int dm_control_complete_now(struct ferry_dm_control_pending *p, char *reply_line)
{
    struct ferry_dm_control_req req = { .c = p->c, .cl = p->cl };
    int rc = p->cl ? dm_control_reply_now(&req, reply_line) : -ENOTCONN;

    if (p->c)
        g_ptr_array_remove(p->c->pendings, p);
    if (p->cl)
        p->cl->pending = NULL;
    g_free(reply_line);
    json_decref(p->id);
    g_free(p);
    return rc;
}

char *dm_control_greeting(void)
{
    return g_strdup("{\"QMP\": {\"version\": {\"ferry\": \"" FERRY_VERSION "\"}, "
                    "\"capabilities\": []}}");
}

/* ------------------------------------------------------------------ */
/* Socket                                                              */

static void client_free(struct control_client *cl)
{
    g_ptr_array_remove(cl->c->clients, cl);
    if (cl->follower)
        cl->c->nr_followers--;
    if (cl->idle_ev)
        event_free(cl->idle_ev);
    if (cl->pending)
        cl->pending->cl = NULL;     /* its completion will be dropped */
    if (cl->resume_ev)
        event_free(cl->resume_ev);
    for (unsigned i = 0; i < cl->nr_fds; i++)
        close(cl->fds[i]);
    if (cl->rev)
        event_free(cl->rev);
    if (cl->in)
        evbuffer_free(cl->in);
    bufferevent_free(cl->bev);
    g_free(cl);
}

static void client_send(struct control_client *cl, char *line)
{
    bufferevent_write(cl->bev, line, strlen(line));
    bufferevent_write(cl->bev, "\n", 1);
    g_free(line);
}

/* Bytes and SCM_RIGHTS fds (a broker's device fds) from the client. */
static int client_recv(struct control_client *cl)
{
    char buf[4096];
    char cbuf[CMSG_SPACE(sizeof(int) * FERRY_DM_CONTROL_FDS_MAX)];
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    ssize_t n = recvmsg(event_get_fd(cl->rev), &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        size_t nfd;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
            cm->cmsg_len < CMSG_LEN(0))
            continue;
        nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (cl->nr_fds < FERRY_DM_CONTROL_FDS_MAX)
                cl->fds[cl->nr_fds++] = fd;
            else
                close(fd);
        }
    }
    if (n == 0)
        return -EPIPE;
    evbuffer_add(cl->in, buf, (size_t)n);
    return 1;
}

/*
 * The idle bound: armed while an interactive client owes us a command,
 * restarted by each command it sends (active), off while its reply is
 * deferred (it waits for us) and for followers.  Bytes without a newline
 * do not count: a client trickling a line never completes one.
 */
static void client_idle_update(struct control_client *cl, bool active)
{
    struct timeval tv = { cl->c->idle_ms / 1000, (cl->c->idle_ms % 1000) * 1000 };

    if (cl->follower || cl->closing || cl->pending) {
        event_del(cl->idle_ev);
        return;
    }
    if (active || !evtimer_pending(cl->idle_ev, NULL))
        evtimer_add(cl->idle_ev, &tv);
}

static void client_watch(struct control_client *cl);

/* The idle bound for messages: "30 s" (tests: "300 ms"). */
static const char *idle_text(const struct ferry_dm_control *c, char *buf, size_t len)
{
    if (c->idle_ms % 1000)
        snprintf(buf, len, "%u ms", c->idle_ms);
    else
        snprintf(buf, len, "%u s", c->idle_ms / 1000);
    return buf;
}

static void client_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control_client *cl = arg;
    struct evbuffer *out = bufferevent_get_output(cl->bev);
    char buf[32];

    (void)fd;
    (void)what;
    dm_log(cl->c->dm, FERRY_LOG_DEBUG, "control socket %s: closing a client idle for "
                 "%u ms", cl->c->path, cl->c->idle_ms);
    if (evbuffer_get_length(out)) {
        client_free(cl);        /* it does not even read its replies */
        return;
    }
    client_send(cl, dm_control_error(NULL, "GenericError", "idle for %s without a command: "
                                     "closing the connection (a client that waits for long "
                                     "says client-follow)", idle_text(cl->c, buf, sizeof(buf))));
    cl->closing = true;
    client_watch(cl);
}

/* Free a client whose last reply is out; stop the device model if it asked to. */
static void client_done(struct control_client *cl)
{
    struct ferry_dm_control *c = cl->c;
    bool quit = cl->quit;

    client_free(cl);
    if (quit && c->ops && c->ops->quit)
        c->ops->quit(c->opaque);
}

/*
 * Read the client or not.  Not when it has sent all it will, is being
 * closed, or leaves its replies unread; while a reply is deferred its later
 * commands wait, but its input is still read (to see it go) up to one
 * command's worth.
 */
static void client_watch(struct control_client *cl)
{
    bool want = !cl->eof && !cl->closing && !cl->throttled &&
                !(cl->pending && evbuffer_get_length(cl->in) > FERRY_DM_CONTROL_LINE_MAX);

    if (want == cl->reading)
        return;
    if (want)
        event_add(cl->rev, NULL);
    else
        event_del(cl->rev);
    cl->reading = want;
}

/*
 * Answer the complete lines received.  A client that leaves its replies
 * unread gets no more answers, and is no longer read, until it catches up:
 * its queued replies stay under FERRY_DM_CONTROL_OUT_MAX (plus one read's).
 * A deferred reply holds the client's next commands until it is sent.
 */
static void client_process(struct control_client *cl)
{
    struct evbuffer *in = cl->in, *out = bufferevent_get_output(cl->bev);
    bool active = false;
    size_t len;
    char *line;

    while (!cl->closing && !cl->pending) {
        if (evbuffer_get_length(out) > FERRY_DM_CONTROL_OUT_MAX) {
            cl->throttled = true;
            break;
        }
        line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line)
            break;
        bool quit = false;

        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (len) {
            char *r = control_execute(cl->c->dm, cl->c, cl, line, len, &quit);

            active = true;
            if (r != FERRY_DM_CONTROL_DEFERRED)
                client_send(cl, r);
            if (quit)
                cl->closing = cl->quit = true;
        }
        free(line);
    }
    if (!cl->closing && !cl->pending && !cl->throttled &&
        evbuffer_get_length(in) > FERRY_DM_CONTROL_LINE_MAX) {
        client_send(cl, dm_control_error(NULL, "GenericError", "command longer than %d bytes",
                                         FERRY_DM_CONTROL_LINE_MAX));
        cl->closing = true;
    }
    if (cl->eof && !cl->pending && !cl->throttled)
        cl->closing = true;     /* answered all it sent: close once that is out */
    client_watch(cl);
    client_idle_update(cl, active);
}

/* Both directions shut (the client closed its socket), not a half-close. */
static bool client_hung_up(struct control_client *cl)
{
    struct pollfd pfd = { .fd = event_get_fd(cl->rev), .events = POLLOUT };

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control_client *cl = arg;
    int rc = client_recv(cl);

    if (rc == -EPIPE) {
        /* Half-closed (echo ... | socat): its replies still go out.  Gone
         * altogether while a reply is deferred: that reply is dropped. */
        if (cl->pending && client_hung_up(cl)) {
            client_free(cl);
            return;
        }
        cl->eof = true;
    } else if (rc < 0) {
        client_free(cl);
        return;
    }
    client_process(cl);
    if (cl->closing && !evbuffer_get_length(bufferevent_get_output(cl->bev)))
        client_done(cl);
}

/* A deferred reply went out: the commands that waited for it. */
static void client_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control_client *cl = arg;

    (void)fd;
    (void)what;
    client_idle_update(cl, true);   /* answered: its time starts again */
    client_process(cl);
    if (cl->closing && !evbuffer_get_length(bufferevent_get_output(cl->bev)))
        client_done(cl);
}

/* The output drained: resume a paused client, or close one that is done. */
static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct control_client *cl = arg;

    if (cl->throttled) {
        cl->throttled = false;
        client_process(cl);
    }
    if (cl->closing && !evbuffer_get_length(bufferevent_get_output(bev)))
        client_done(cl);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        client_free(arg);
}

static void rearm_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_dm_control *c = arg;

    (void)fd;
    (void)what;
    event_add(c->listen_ev, NULL);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_dm_control *c = arg;
    struct control_client *cl;
    int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (s < 0) {
        static const struct timeval backoff = { 0, 100 * 1000 };
        uint32_t dropped = 0;
        int err = errno;

        if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
            return;         /* EAGAIN, or a client that gave up (ECONNABORTED) */
        /* The connection stays queued and the socket readable: watching it
         * now would spin the loop.  (A confined ferry-dm cannot open a spare
         * fd to accept-and-close with, so it backs off instead.) */
        event_del(c->listen_ev);
        event_add(c->rearm_ev, &backoff);
        if (ferry_ratelimit_ok(&c->accept_rl, &dropped))
            dm_log(c->dm, FERRY_LOG_WARNING, "control socket %s: accept: %s; "
                         "not taking connections for 100 ms (%" PRIu32 " similar suppressed)",
                         c->path, strerror(err), dropped);
        return;
    }
    if (c->clients->len - c->nr_followers >= FERRY_DM_CONTROL_CLIENTS_MAX) {
        char idle[32];
        char *busy = dm_control_error(NULL, "GenericError", "too many control clients (%d at once; "
                                      "one idle for %s is closed): try again later",
                                      FERRY_DM_CONTROL_CLIENTS_MAX,
                                      idle_text(c, idle, sizeof(idle)));
        size_t n = strlen(busy);

        busy[n] = '\n';        /* over its NUL: sent as one line */
        if (send(s, busy, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* turned away either way */
        }
        g_free(busy);
        close(s);
        return;
    }
    cl = g_new0(struct control_client, 1);
    cl->c = c;
    cl->bev = bufferevent_socket_new(dm_event_base(c->dm), s, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        close(s);
        g_free(cl);
        return;
    }
    cl->in = evbuffer_new();
    cl->rev = event_new(dm_event_base(c->dm), s, EV_READ | EV_PERSIST, client_read_cb, cl);
    cl->resume_ev = event_new(dm_event_base(c->dm), -1, 0, client_resume_cb, cl);
    cl->idle_ev = evtimer_new(dm_event_base(c->dm), client_idle_cb, cl);
    if (!cl->in || !cl->rev || !cl->resume_ev || !cl->idle_ev || event_add(cl->rev, NULL) < 0) {
        if (cl->idle_ev)
            event_free(cl->idle_ev);
        if (cl->resume_ev)
            event_free(cl->resume_ev);
        if (cl->rev)
            event_free(cl->rev);
        if (cl->in)
            evbuffer_free(cl->in);
        bufferevent_free(cl->bev);
        g_free(cl);
        return;
    }
    cl->reading = true;
    g_ptr_array_add(c->clients, cl);
    bufferevent_setcb(cl->bev, NULL, client_write_cb, client_event_cb, cl);
    bufferevent_enable(cl->bev, EV_WRITE);
    client_send(cl, dm_control_greeting());
    client_idle_update(cl, true);
}

static int control_open(struct ferry_dm *dm, const char *path, int listen_fd,
                        const struct ferry_dm_control_ops *ops, void *opaque,
                        struct ferry_dm_control **out);

int dm_control_open(struct ferry_dm *dm, const char *path,
                          const struct ferry_dm_control_ops *ops, void *opaque,
                          struct ferry_dm_control **out)
{
    return control_open(dm, path, -1, ops, opaque, out);
}

int dm_control_adopt(struct ferry_dm *dm, const char *path, int listen_fd,
                     const struct ferry_dm_control_ops *ops, void *opaque,
                     struct ferry_dm_control **out)
{
    if (listen_fd < 0)
        return -EBADF;
    return control_open(dm, path, listen_fd, ops, opaque, out);
}

int dm_control_listen_fd(const struct ferry_dm_control *c)
{
    return c ? c->listen_fd : -1;
}

static int control_open(struct ferry_dm *dm, const char *path, int listen_fd,
                        const struct ferry_dm_control_ops *ops, void *opaque,
                        struct ferry_dm_control **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ferry_dm_control *c;
    int err;

    if (!dm_event_base(dm))
        return -EINVAL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    c = g_new0(struct ferry_dm_control, 1);
    c->dm = dm;
    c->ops = ops;
    c->opaque = opaque;
    c->clients = g_ptr_array_new();
    c->pendings = g_ptr_array_new();
    c->idle_ms = FERRY_DM_CONTROL_IDLE_MS;
    snprintf(c->path, sizeof(c->path), "%s", path);
    /*
     * The socket is made under a temporary name beside PATH, given its
     * mode and put to listening, and only then renamed to PATH: a client
     * that sees the name can connect at once (never ECONNREFUSED from the
     * moment between bind and listen), and never finds it with the umask's
     * mode.  rename() replaces a stale socket of an earlier ferry-dm.
     */
    struct stat st;

    if (listen_fd >= 0) {
        /* A predecessor's socket, listening all along: the path never went away. */
        c->listen_fd = listen_fd;
        int fl = fcntl(listen_fd, F_GETFL);
        if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
            goto fail;
        goto listening;
    }
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        errno = EEXIST;     /* replace a stale socket, never another kind of file */
        c->listen_fd = -1;
        goto fail;
    }
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%ld", path, (long)getpid()) >=
        (int)sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        c->listen_fd = -1;
        goto fail;
    }
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0)
        goto fail;
    unlink(sa.sun_path);
    if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    if (chmod(sa.sun_path, 0600) < 0 || listen(c->listen_fd, FERRY_DM_CONTROL_BACKLOG) < 0 ||
        rename(sa.sun_path, path) < 0) {
        err = errno;
        unlink(sa.sun_path);
        errno = err;
        goto fail;
    }
listening:
    c->listen_ev = event_new(dm_event_base(dm), c->listen_fd, EV_READ | EV_PERSIST,
                             accept_cb, c);
    c->rearm_ev = evtimer_new(dm_event_base(dm), rearm_cb, c);
    c->accept_rl = (struct ferry_ratelimit)FERRY_RATELIMIT_INIT(10000, 1);
    if (!c->listen_ev || !c->rearm_ev || event_add(c->listen_ev, NULL) < 0) {
        errno = ENOMEM;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    err = errno;
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    if (c->listen_ev)
        event_free(c->listen_ev);
    if (c->rearm_ev)
        event_free(c->rearm_ev);
    g_ptr_array_free(c->clients, TRUE);
    g_ptr_array_free(c->pendings, TRUE);
    g_free(c);
    return -err;
}

void dm_control_close(struct ferry_dm_control *c)
{
    if (!c)
        return;
    while (c->clients->len)
        client_free(g_ptr_array_index(c->clients, 0));
    g_ptr_array_free(c->clients, TRUE);
    /* deferred replies still out there: completing them drops them */
    for (guint i = 0; i < c->pendings->len; i++) {
        struct ferry_dm_control_pending *p = g_ptr_array_index(c->pendings, i);

        p->c = NULL;
        p->cl = NULL;
    }
    g_ptr_array_free(c->pendings, TRUE);
    event_free(c->listen_ev);
    event_free(c->rearm_ev);
    close(c->listen_fd);
    unlink(c->path);
    g_free(c);
}

int dm_control_reply_now(struct ferry_dm_control_req *req, const char *line)
{
    struct control_client *cl = req->cl;

    if (!cl)
        return -ENOTCONN;
    int fd = (int)bufferevent_getfd(cl->bev);
    /* What was queued before goes first (replies stay in order). */
    struct evbuffer *out = bufferevent_get_output(cl->bev);
    g_autofree char *all = NULL;
    size_t queued = evbuffer_get_length(out);
    size_t n = queued + strlen(line) + 1;

    all = g_malloc(n);
    evbuffer_remove(out, all, queued);
    memcpy(all + queued, line, strlen(line));
    all[n - 1] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, all + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            if (poll(&p, 1, 1000) <= 0)
                return -ETIMEDOUT;
            continue;
        }
        if (w <= 0)
            return -errno;
        off += (size_t)w;
    }
    return 0;
}

void dm_control_set_handler(struct ferry_dm_control *c, ferry_dm_control_handler_fn fn,
                                  void *opaque)
{
    c->handler = fn;
    c->handler_opaque = opaque;
}

unsigned dm_control_idle_timeout(const struct ferry_dm_control *c)
{
    return c->idle_ms;
}

void dm_control_set_idle_timeout(struct ferry_dm_control *c, unsigned ms)
{
    c->idle_ms = ms ? ms : 1;
    for (guint i = 0; i < c->clients->len; i++)
        client_idle_update(g_ptr_array_index(c->clients, i), true);
}
