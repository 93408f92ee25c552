// SPDX-License-Identifier: GPL-2.0-or-later
/* Character back ends for serial devices; see chardev.h. */
#include "devmodel/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#define CHARDEV_READ_MAX 256

enum cd_kind { CD_NONE, CD_FD, CD_PTY, CD_SOCKET };

struct ferry_chardev {
    struct event_base *base;
    const struct ferry_chardev_ops *ops;
    void *opaque;
    enum cd_kind out_kind, in_kind;
    int out_fd;                 /* CD_FD: stdout/stderr/file (owned if out_owned) */
    bool out_owned;
    int in_fd;                  /* stdin */
    int pty_master, pty_slave;
    char pty_name[64];
    int listen_fd, client_fd;
    int inh;                    /* index into the inherited fds, -1: none */
    char sock_path[108];
    struct event *in_ev;        /* reading from the current input fd */
    struct event *listen_ev;
    bool in_paused;
    uint64_t dropped;
    char out_name[FERRY_CHARDEV_SPEC_MAX + 8];
    char in_name[FERRY_CHARDEV_SPEC_MAX + 8];
};

/*
 * For a handover (dm_chardev_export / dm_chardev_inherit): the open
 * chardevs in the order they were opened, and the fds a predecessor
 * handed over, by chardev index and slot.  The successor opens the same
 * config in the same order, so index i is the same device's back end.
 */
#define CD_REG_MAX 256
static struct ferry_chardev *cd_reg[CD_REG_MAX];
static int inh_fd[CD_REG_MAX][DM_CHARDEV_SLOTS];
static bool inh_set;
static unsigned inh_next;

static void reg_add(struct ferry_chardev *cd)
{
    for (unsigned i = 0; i < CD_REG_MAX; i++)
        if (!cd_reg[i]) {
            cd_reg[i] = cd;
            return;
        }
}

static void reg_del(struct ferry_chardev *cd)
{
    for (unsigned i = 0; i < CD_REG_MAX; i++)
        if (cd_reg[i] == cd)
            cd_reg[i] = NULL;
}

/* The inherited fd of this chardev's slot (now ours), or -1. */
static int inh_take(unsigned idx, unsigned slot)
{
    int fd;

    if (!inh_set || idx >= CD_REG_MAX)
        return -1;
    fd = inh_fd[idx][slot];
    inh_fd[idx][slot] = -1;
    return fd;
}

int dm_chardev_export(int *fds, uint32_t *tags, unsigned max)
{
    unsigned n = 0, idx = 0;

    for (unsigned i = 0; i < CD_REG_MAX; i++) {
        struct ferry_chardev *cd = cd_reg[i];
        if (!cd)
            continue;
        int slot_fd[DM_CHARDEV_SLOTS] = {
            [DM_CHARDEV_SLOT_OUT] = cd->out_kind == CD_FD ? cd->out_fd : -1,
            [DM_CHARDEV_SLOT_IN] = cd->in_kind == CD_FD ? cd->in_fd : -1,
            [DM_CHARDEV_SLOT_PTY_MASTER] = cd->pty_master,
            [DM_CHARDEV_SLOT_PTY_SLAVE] = cd->pty_slave,
            [DM_CHARDEV_SLOT_LISTEN] = cd->listen_fd,
            [DM_CHARDEV_SLOT_CLIENT] = cd->client_fd,
        };
        for (unsigned k = 0; k < DM_CHARDEV_SLOTS; k++) {
            if (slot_fd[k] < 0)
                continue;
            if (n == max)
                return -E2BIG;
            fds[n] = slot_fd[k];
            tags[n++] = idx << 8 | k;
        }
        idx++;
    }
    return (int)n;
}

int dm_chardev_inherit(const int *fds, const uint32_t *tags, unsigned n)
{
    for (unsigned i = 0; i < CD_REG_MAX; i++)
        for (unsigned k = 0; k < DM_CHARDEV_SLOTS; k++)
            inh_fd[i][k] = -1;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = tags[i] >> 8, slot = tags[i] & 0xff;
        if (idx >= CD_REG_MAX || slot >= DM_CHARDEV_SLOTS || inh_fd[idx][slot] >= 0)
            return -EINVAL;
        inh_fd[idx][slot] = fds[i];
    }
    inh_set = true;
    inh_next = 0;
    return 0;
}

void dm_chardev_inherit_done(void)
{
    for (unsigned i = 0; inh_set && i < CD_REG_MAX; i++)
        for (unsigned k = 0; k < DM_CHARDEV_SLOTS; k++)
            if (inh_fd[i][k] >= 0) {
                close(inh_fd[i][k]);
                inh_fd[i][k] = -1;
            }
    inh_set = false;
}

static int current_in_fd(const struct ferry_chardev *cd)
{
    switch (cd->in_kind) {
    case CD_FD: return cd->in_fd;
    case CD_PTY: return cd->pty_master;
    case CD_SOCKET: return cd->client_fd;
    default: return -1;
    }
}

static void in_cb(evutil_socket_t fd, short what, void *arg);

static void watch_input(struct ferry_chardev *cd)
{
    int fd = current_in_fd(cd);

    if (cd->in_ev) {
        event_free(cd->in_ev);
        cd->in_ev = NULL;
    }
    if (fd < 0 || !cd->base)
        return;
    cd->in_ev = event_new(cd->base, fd, EV_READ | EV_PERSIST, in_cb, cd);
    if (cd->in_ev && !cd->in_paused)
        event_add(cd->in_ev, NULL);
}

static void drop_client(struct ferry_chardev *cd)
{
    if (cd->client_fd < 0)
        return;
    if (cd->in_kind == CD_SOCKET && cd->in_ev) {
        event_free(cd->in_ev);
        cd->in_ev = NULL;
    }
    close(cd->client_fd);
    cd->client_fd = -1;
}

static void in_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_chardev *cd = arg;
    uint8_t buf[CHARDEV_READ_MAX];
    size_t room = cd->ops->room(cd->opaque);
    ssize_t n;

    if (room == 0) {
        cd->in_paused = true;
        event_del(cd->in_ev);
        return;
    }
    n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (n > 0) {
        cd->ops->receive(cd->opaque, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* End of input (or a pty with nobody on the other side: EIO). */
    if (cd->in_kind == CD_SOCKET) {
        drop_client(cd);
        return;
    }
    if (cd->in_kind == CD_PTY && n < 0 && errno == EIO)
        return;
    event_del(cd->in_ev);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_chardev *cd = arg;
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (c < 0)
        return;
    if (cd->client_fd >= 0) {
        static const char busy[] = "ferry-dm: this serial port already has a client\r\n";

        if (write(c, busy, sizeof(busy) - 1) < 0) {
            /* nothing to do: the client is turned away either way */
        }
        close(c);
        return;
    }
    cd->client_fd = c;
    if (cd->in_kind == CD_SOCKET)
        watch_input(cd);
}

static int open_pty(struct ferry_chardev *cd, char *err, size_t err_len)
{
    struct termios t;

    if (cd->pty_master >= 0)
        return 0;
    if (cd->inh >= 0) {
        cd->pty_master = inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_PTY_MASTER);
        cd->pty_slave = inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_PTY_SLAVE);
        if (cd->pty_master < 0 || ptsname_r(cd->pty_master, cd->pty_name,
                                            sizeof(cd->pty_name)) != 0) {
            snprintf(err, err_len, "the predecessor handed over no pty");
            return -EBADF;
        }
        return 0;
    }
    cd->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (cd->pty_master < 0 || grantpt(cd->pty_master) < 0 || unlockpt(cd->pty_master) < 0 ||
        ptsname_r(cd->pty_master, cd->pty_name, sizeof(cd->pty_name)) != 0)
        goto fail;
    /* Keep the slave open so the master never sees a hang-up; make it raw. */
    cd->pty_slave = open(cd->pty_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (cd->pty_slave < 0 || tcgetattr(cd->pty_slave, &t) < 0)
        goto fail;
    cfmakeraw(&t);
    if (tcsetattr(cd->pty_slave, TCSANOW, &t) < 0)
        goto fail;
    return 0;
fail:
    snprintf(err, err_len, "cannot create a pty: %s", strerror(errno));
    return -errno;
}

static int open_socket(struct ferry_chardev *cd, const char *path, char *err, size_t err_len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (cd->listen_fd >= 0) {
        if (strcmp(path, cd->sock_path) == 0)
            return 0;
        snprintf(err, err_len, "out and in name two different sockets");
        return -EINVAL;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, err_len, "socket path %.60s...: too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(cd->sock_path, path, strlen(path) + 1);     /* length checked above */
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (cd->inh >= 0) {
        /* The predecessor's listening socket (the path never disappears) and its client. */
        cd->listen_fd = inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_LISTEN);
        cd->client_fd = inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_CLIENT);
        if (cd->listen_fd < 0) {
            snprintf(err, err_len, "the predecessor handed over no socket for %s", path);
            return -EBADF;
        }
        goto watch;
    }
    cd->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (cd->listen_fd < 0)
        goto fail;
    unlink(path);
    if (bind(cd->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(cd->listen_fd, 1) < 0)
        goto fail;
watch:
    if (cd->base) {
        cd->listen_ev = event_new(cd->base, cd->listen_fd, EV_READ | EV_PERSIST, accept_cb, cd);
        if (cd->listen_ev)
            event_add(cd->listen_ev, NULL);
    }
    return 0;
fail:
    snprintf(err, err_len, "cannot listen on %s: %s", path, strerror(errno));
    return -errno;
}

static int open_out(struct ferry_chardev *cd, const char *spec, char *err, size_t err_len)
{
    snprintf(cd->out_name, sizeof(cd->out_name), "%s", spec);
    if (strcmp(spec, "null") == 0) {
        cd->out_kind = CD_NONE;
    } else if (strcmp(spec, "stdout") == 0 || strcmp(spec, "stderr") == 0) {
        cd->out_kind = CD_FD;
        cd->out_fd = spec[3] == 'o' ? STDOUT_FILENO : STDERR_FILENO;
        int fd = cd->inh >= 0 ? inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_OUT) : -1;
        if (fd >= 0) {
            cd->out_fd = fd;        /* the predecessor's stdout, not ours (the launcher's pipe) */
            cd->out_owned = true;
        }
    } else if (strncmp(spec, "file:", 5) == 0) {
        cd->out_kind = CD_FD;
        /* A successor goes on writing where its predecessor was: never truncate. */
        cd->out_fd = cd->inh >= 0 ? inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_OUT)
                                  : open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                         0644);
        if (cd->out_fd < 0 && cd->inh >= 0) {
            snprintf(err, err_len, "the predecessor handed over no fd for %s", spec + 5);
            return -EBADF;
        }
        if (cd->out_fd < 0) {
            snprintf(err, err_len, "cannot open %s for serial output: %s", spec + 5,
                     strerror(errno));
            return -errno;
        }
        cd->out_owned = true;
    } else if (strcmp(spec, "pty") == 0) {
        cd->out_kind = CD_PTY;
        return open_pty(cd, err, err_len);
    } else if (strncmp(spec, "socket:", 7) == 0) {
        cd->out_kind = CD_SOCKET;
        return open_socket(cd, spec + 7, err, err_len);
    } else {
        snprintf(err, err_len, "unknown output '%s' (stdout, stderr, file:PATH, pty, "
                 "socket:PATH, null)", spec);
        return -EINVAL;
    }
    return 0;
}

static int open_in(struct ferry_chardev *cd, const char *spec, char *err, size_t err_len)
{
    int rc = 0;

    snprintf(cd->in_name, sizeof(cd->in_name), "%s", spec);
    if (strcmp(spec, "none") == 0) {
        cd->in_kind = CD_NONE;
    } else if (strcmp(spec, "stdin") == 0) {
        cd->in_kind = CD_FD;
        cd->in_fd = STDIN_FILENO;
        int fd = cd->inh >= 0 ? inh_take((unsigned)cd->inh, DM_CHARDEV_SLOT_IN) : -1;
        if (fd >= 0)
            cd->in_fd = fd;         /* owned: closed with the chardev */
    } else if (strcmp(spec, "pty") == 0) {
        cd->in_kind = CD_PTY;
        rc = open_pty(cd, err, err_len);
    } else if (strncmp(spec, "socket:", 7) == 0) {
        cd->in_kind = CD_SOCKET;
        rc = open_socket(cd, spec + 7, err, err_len);
    } else {
        snprintf(err, err_len, "unknown input '%s' (none, stdin, pty, socket:PATH)", spec);
        return -EINVAL;
    }
    if (rc == 0)
        watch_input(cd);
    return rc;
}

int dm_chardev_open(struct event_base *base, const char *out_spec, const char *in_spec,
                       const struct ferry_chardev_ops *ops, void *opaque,
                       struct ferry_chardev **out, char *err, size_t err_len)
{
    struct ferry_chardev *cd;
    int rc;

    if (strlen(out_spec) > FERRY_CHARDEV_SPEC_MAX || strlen(in_spec) > FERRY_CHARDEV_SPEC_MAX) {
        snprintf(err, err_len, "serial back-end spec too long");
        return -ENAMETOOLONG;
    }
    cd = calloc(1, sizeof(*cd));
    if (!cd) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    *cd = (struct ferry_chardev){ .base = base, .ops = ops, .opaque = opaque, .out_fd = -1,
                                  .in_fd = -1, .pty_master = -1, .pty_slave = -1,
                                  .listen_fd = -1, .client_fd = -1,
                                  .inh = inh_set ? (int)inh_next++ : -1 };
    rc = open_out(cd, out_spec, err, err_len);
    if (rc == 0)
        rc = open_in(cd, in_spec, err, err_len);
    if (rc < 0) {
        dm_chardev_close(cd);
        return rc;
    }
    reg_add(cd);
    if (cd->client_fd >= 0 && cd->in_kind == CD_SOCKET)
        watch_input(cd);
    if (cd->pty_master >= 0) {
        if (cd->out_kind == CD_PTY)
            snprintf(cd->out_name, sizeof(cd->out_name), "pty:%s", cd->pty_name);
        if (cd->in_kind == CD_PTY)
            snprintf(cd->in_name, sizeof(cd->in_name), "pty:%s", cd->pty_name);
    }
    *out = cd;
    return 0;
}

void dm_chardev_close(struct ferry_chardev *cd)
{
    if (!cd)
        return;
    reg_del(cd);
    if (cd->in_ev)
        event_free(cd->in_ev);
    if (cd->listen_ev)
        event_free(cd->listen_ev);
    if (cd->client_fd >= 0)
        close(cd->client_fd);
    if (cd->listen_fd >= 0) {
        close(cd->listen_fd);
        unlink(cd->sock_path);
    }
    if (cd->pty_master >= 0)
        close(cd->pty_master);
    if (cd->pty_slave >= 0)
        close(cd->pty_slave);
    if (cd->out_owned)
        close(cd->out_fd);
    free(cd);
}

void dm_chardev_write(struct ferry_chardev *cd, const uint8_t *buf, size_t n)
{
    int fd = -1;
    bool may_block = false;

    switch (cd->out_kind) {
    case CD_FD: fd = cd->out_fd; may_block = true; break;
    case CD_PTY: fd = cd->pty_master; break;
    case CD_SOCKET: fd = cd->client_fd; break;
    default: return;
    }
    if (fd < 0) {
        cd->dropped += n;
        return;
    }
    while (n) {
        ssize_t w = cd->out_kind == CD_SOCKET ? send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT)
                                              : write(fd, buf, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!may_block || errno != EAGAIN) {
                int err = w < 0 ? errno : EIO;

                cd->dropped += n;
                if (err != EAGAIN && cd->ops && cd->ops->output_failed)
                    cd->ops->output_failed(cd->opaque, n, err, cd->dropped);
                if (cd->out_kind == CD_SOCKET && err != EAGAIN)
                    drop_client(cd);
                return;
            }
            continue;
        }
        buf += w;
        n -= (size_t)w;
    }
}

void dm_chardev_accept_input(struct ferry_chardev *cd)
{
    if (!cd->in_paused)
        return;
    cd->in_paused = false;
    if (cd->in_ev)
        event_add(cd->in_ev, NULL);
}

const char *dm_chardev_out_name(const struct ferry_chardev *cd)
{
    return cd->out_name;
}

const char *dm_chardev_in_name(const struct ferry_chardev *cd)
{
    return cd->in_name;
}

uint64_t dm_chardev_dropped(const struct ferry_chardev *cd)
{
    return cd->dropped;
}
