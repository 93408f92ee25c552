// SPDX-License-Identifier: GPL-2.0-or-later
/* Replacing ferry-dm under a running guest: both ends of the exchange (dm-replace.h). */
#include "devmodel/dm-replace.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log-glib.h"
#include "devmodel/chardev.h"
#include "devmodel/dm-handover.h"
#include "devmodel/dm-state.h"
#include "sandbox/launcher.h"

#define REPLACE_MAGIC       0x50524446u     /* "FDRP" */
#define REPLACE_CHUNK       32768
#define REPLACE_FDS_MAX     250             /* under the kernel's SCM_MAX_FD (253) */
#define REPLACE_MSG_MAX     (REPLACE_CHUNK + 64)

enum replace_type {
    REPLACE_MSG_FDS = 1,
    REPLACE_MSG_READY = 2,
    REPLACE_MSG_STATE = 3,
    REPLACE_MSG_RESULT = 4,
    REPLACE_MSG_STARTED = 5,    /* succ -> pred: exec'd and set up, ready for the fds */
};

struct replace_hdr {
    uint32_t magic;
    uint16_t version;           /* DM_STATE_VERSION of the writer */
    uint16_t type;
    uint32_t len;               /* payload bytes */
};

struct replace_fds {
    struct ioreq_server_handover ioreq;
    uint32_t nr_ioreq_fds;
    uint32_t state_len;
    uint32_t nr_fds;
    uint32_t roles[REPLACE_FDS_MAX];
};

struct replace_result {
    int32_t status;
    int32_t pid;
    char why[200];
};

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static int msg_send(int sock, uint16_t type, uint16_t version, const void *payload, size_t len,
                    const int *fds, unsigned nfds)
{
    struct replace_hdr h = { REPLACE_MAGIC, version, type, (uint32_t)len };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    char *cbuf = NULL;

    if (nfds) {
        size_t space = CMSG_SPACE(nfds * sizeof(int));
        cbuf = calloc(1, space);
        if (!cbuf)
            return -ENOMEM;
        mh.msg_control = cbuf;
        mh.msg_controllen = space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    int rc = n == (ssize_t)(sizeof(h) + len) ? 0 : n < 0 ? -errno : -EMSGSIZE;
    free(cbuf);
    return rc;
}

/*
 * One message of type want into buf (REPLACE_MSG_MAX bytes); its fds (up
 * to max_fds) into fds.  Returns the payload length or -errno:
 * -ETIMEDOUT, -EPIPE (the peer is gone), -EPROTO (not what was due),
 * -EPROTONOSUPPORT (another version; *version says which).
 */
static ssize_t msg_recv(int sock, uint16_t want, void *buf, int *fds, unsigned max_fds,
                        unsigned *nfds, uint16_t *version)
{
    struct pollfd p = { .fd = sock, .events = POLLIN };
    struct replace_hdr *h = buf;
    size_t space = CMSG_SPACE(REPLACE_FDS_MAX * sizeof(int));
    g_autofree char *cbuf = g_malloc0(space);
    struct iovec iov = { buf, REPLACE_MSG_MAX };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = space };
    unsigned got = 0;
    int k;

    if (nfds)
        *nfds = 0;
    while ((k = poll(&p, 1, DM_REPLACE_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (k == 0)
        return -ETIMEDOUT;
    if (k < 0)
        return -errno;
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EPIPE;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < m; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (got < max_fds && fds)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    int rc = 0;
    if ((size_t)n < sizeof(*h) || h->magic != REPLACE_MAGIC || (mh.msg_flags & (MSG_TRUNC |
                                                                              MSG_CTRUNC)) ||
        h->len != (size_t)n - sizeof(*h))
        rc = -EPROTO;
    else if (h->version != DM_STATE_VERSION)
        rc = -EPROTONOSUPPORT;
    else if (h->type == REPLACE_MSG_RESULT && want != REPLACE_MSG_RESULT)
        rc = -ECANCELED;    /* an early refusal: the result is in buf */
    else if (h->type != want)
        rc = -EPROTO;
    if (version && (size_t)n >= sizeof(*h))
        *version = h->version;
    if (rc) {
        for (unsigned i = 0; i < got; i++)
            close(fds[i]);
        return rc;
    }
    if (nfds)
        *nfds = got;
    else
        for (unsigned i = 0; i < got; i++)
            close(fds[i]);
    return (ssize_t)h->len;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

FERRY_PRINTF(3, 4) static void say(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The predecessor                                                     */

struct dm_replace {
    struct ferry_launcher *launcher;
    char *binary;
    struct ferry_launcher_instance inst;    /* a successor started by dm_replace_begin */
    bool begun;
};

int dm_replace_prepare(const char *const *argv, const struct ferry_sandbox_config *sbx,
                       struct dm_replace **out)
{
    struct dm_replace *r = g_new0(struct dm_replace, 1);
    struct ferry_launcher_config cfg = {
        .argv = argv,
        .sock_type = SOCK_SEQPACKET,
        .max_live = 1,
        .sandbox = sbx,
        .outlive = true,
        .log = ferry_log_glib,
    };
    int rc = sandbox_launcher_create(&cfg, &r->launcher);

    if (rc < 0) {
        g_free(r);
        return rc;
    }
    r->binary = g_strdup(argv[0]);
    *out = r;
    return 0;
}

const char *dm_replace_binary(const struct dm_replace *r)
{
    return r->binary;
}

int dm_replace_begin(struct dm_replace *r, int *sock, char *why, size_t why_len)
{
    struct ferry_launcher_instance inst = { .sock = -1, .errfd = -1 };
    int rc;

    if (r->begun) {
        say(why, why_len, "a replace is under way already");
        return -EBUSY;
    }
    rc = sandbox_launcher_start(r->launcher, &inst);
    if (rc < 0) {
        say(why, why_len, "cannot start the successor %s: %s", r->binary, strerror(-rc));
        return rc;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "replace: successor %s is pid %d", r->binary,
              (int)inst.pid);
    r->inst = inst;
    r->begun = true;
    *sock = inst.sock;
    return 0;
}

void dm_replace_cancel(struct dm_replace *r)
{
    if (!r || !r->begun)
        return;
    sandbox_launcher_stop(r->launcher, r->inst.pid, NULL);
    close(r->inst.sock);
    close(r->inst.errfd);
    r->begun = false;
}

void dm_replace_free(struct dm_replace *r)
{
    if (!r)
        return;
    dm_replace_cancel(r);
    if (sandbox_active())
        sandbox_launcher_abandon(r->launcher);      /* no wait4 in the base list */
    else
        sandbox_launcher_destroy(r->launcher);
    g_free(r->binary);
    g_free(r);
}

/* What the successor said on stdout/stderr, for the reason (its last line). */
static void successor_words(int errfd, char *buf, size_t n)
{
    char all[4096];
    size_t have = 0;
    ssize_t k;

    buf[0] = '\0';
    while (have < sizeof(all) - 1 && (k = read(errfd, all + have, sizeof(all) - 1 - have)) > 0)
        have += (size_t)k;
    all[have] = '\0';
    while (have && (all[have - 1] == '\n' || all[have - 1] == '\r'))
        all[--have] = '\0';
    char *last = strrchr(all, '\n');
    g_strlcpy(buf, last ? last + 1 : all, n);
}

int dm_replace_run(struct dm_replace *r, const struct dm_replace_parts *p, const char *fault,
                   pid_t *pid, char *why, size_t why_len)
{
    struct ferry_launcher_instance inst = { .sock = -1, .errfd = -1 };
    struct replace_fds *f = g_new0(struct replace_fds, 1);
    g_autoptr(GByteArray) state = g_byte_array_new();
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    int fds[REPLACE_FDS_MAX];
    unsigned nfds = 0;
    bool begun = false, exported = false;
    bool serving = dm_server_connected(p->server);     /* not in companion mode */
    bool companion_saved = false;
    g_autoptr(GByteArray) cstate = NULL;
    g_autoptr(GByteArray) pstate = NULL;
    int rc;

    why[0] = '\0';
    if (!r->begun) {
        int sock;
        rc = dm_replace_begin(r, &sock, why, why_len);
        if (rc < 0) {
            g_free(f);
            return rc;
        }
    }
    inst = r->inst;             /* ours from here on */
    r->begun = false;
    *pid = inst.pid;

    /* It execs, parses its options and warms up while we still serve (dm_replace_begin, the
     * caller's loop): the guest's pause is only what comes after STARTED. */
    ssize_t n = msg_recv(inst.sock, REPLACE_MSG_STARTED, buf, NULL, 0, NULL, NULL);
    if (n == -ECANCELED)
        goto refused;
    if (n < 0) {
        rc = (int)n;
        goto no_answer;
    }

    /* From here on this ferry-dm serves nothing until the exchange ends. */
    uint64_t t_freeze = now_ns(), t_sent = 0, t_ready = 0, t_state = 0;
    rc = serving ? dm_server_export(p->server, &f->ioreq, fds, REPLACE_FDS_MAX - 1) : 0;
    if (rc < 0) {
        say(why, why_len, "cannot hand over the ioreq registration: %s", strerror(-rc));
        goto fail;
    }
    f->nr_ioreq_fds = (uint32_t)rc;
    nfds = (unsigned)rc;
    for (unsigned i = 0; i < nfds; i++) {
        uint32_t role = i == 0 ? DM_STATE_FD_IOREQ_SOCK : i == 1 ? DM_STATE_FD_IOREQ_MAP
                        : (f->ioreq.buffered_offset && i == 2) ? DM_STATE_FD_IOREQ_BUF
                        : ((i - 2 - (f->ioreq.buffered_offset != 0)) % 2 == 0)
                            ? DM_STATE_FD_IOREQ_REQ : DM_STATE_FD_IOREQ_RESP;
        f->roles[i] = role;
    }
    if (p->control && nfds < REPLACE_FDS_MAX) {
        fds[nfds] = dm_control_listen_fd(p->control);
        f->roles[nfds++] = DM_STATE_FD_CONTROL;
    }
    if (nfds < REPLACE_FDS_MAX) {
        fds[nfds] = STDERR_FILENO;
        f->roles[nfds++] = DM_STATE_FD_LOG;
    }
    uint32_t tags[REPLACE_FDS_MAX];
    unsigned nc = dm_chardev_export(fds + nfds, tags, REPLACE_FDS_MAX - nfds);
    for (unsigned i = 0; i < nc; i++)
        f->roles[nfds + i] = DM_STATE_FD_CHARDEV | tags[i] << 8;
    nfds += nc;
    /* QEMU-hosted devices' processes and links, the GSIs' irqfds, MSI routes (dm-handover.h). */
    rc = nfds < DM_STATE_FDS_MAX
             ? dm_handover_export(p->dm, fds + nfds, f->roles + nfds, DM_STATE_FDS_MAX - nfds,
                                  why, why_len)
             : 0;
    if (rc < 0)
        goto fail;
    exported = true;
    nfds += (unsigned)rc;
    if (p->companion) {
        unsigned nco = 0;

        cstate = g_byte_array_new();
        companion_saved = true;
        rc = p->companion->save(p->companion->opaque, cstate, fds + nfds, f->roles + nfds,
                                nfds < DM_STATE_FDS_MAX ? DM_STATE_FDS_MAX - nfds : 0, &nco,
                                why, why_len);
        if (rc < 0)
            goto fail;
        nfds += nco;
        if (p->companion->save_pci) {
            pstate = g_byte_array_new();
            nco = 0;
            rc = p->companion->save_pci(p->companion->opaque, pstate, fds + nfds,
                                        f->roles + nfds,
                                        nfds < DM_STATE_FDS_MAX ? DM_STATE_FDS_MAX - nfds : 0,
                                        &nco, why, why_len);
            if (rc < 0)
                goto fail;
            nfds += nco;
        }
    }
    f->nr_fds = nfds;

    rc = dm_state_save_full(p->dm, p->guest, f->roles, nfds, cstate, pstate, state);
    if (rc < 0) {
        say(why, why_len, "cannot save the devices' state: %s", strerror(-rc));
        goto fail;
    }
    if (fault && !strcmp(fault, "checksum"))
        state->data[state->len / 2] ^= 0x20;
    else if (fault && !strcmp(fault, "truncate"))
        g_byte_array_set_size(state, state->len - 7);
    f->state_len = state->len;

    rc = serving ? dm_server_handover(p->server, IOREQ_HANDOVER_BEGIN, (uint32_t)inst.pid) : 0;
    if (rc < 0) {
        say(why, why_len, "the hypervisor refused the handover: %s", strerror(-rc));
        goto fail;
    }
    begun = serving;
    uint16_t version = fault && !strcmp(fault, "version") ? DM_STATE_VERSION + 1
                                                          : DM_STATE_VERSION;
    rc = msg_send(inst.sock, REPLACE_MSG_FDS, version, f,
                  offsetof(struct replace_fds, roles) + nfds * sizeof(uint32_t), fds, nfds);
    if (rc < 0)
        goto no_answer;     /* most likely it exited already: say what it said */
    t_sent = now_ns();
    /* The state right behind the fds: it waits in the socket until the successor, confined,
     * reads it, and the guest's pause holds one wake-up less. */
    for (size_t off = 0; off < state->len; off += REPLACE_CHUNK) {
        size_t m = state->len - off < REPLACE_CHUNK ? state->len - off : REPLACE_CHUNK;
        rc = msg_send(inst.sock, REPLACE_MSG_STATE, DM_STATE_VERSION, state->data + off, m,
                      NULL, 0);
        if (rc < 0)
            break;      /* gone: maybe with its reason (RESULT) waiting to be read */
    }
    t_state = now_ns();
    n = msg_recv(inst.sock, REPLACE_MSG_READY, buf, NULL, 0, NULL, NULL);
    t_ready = now_ns();
    if (n == -ECANCELED)
        goto refused;
    if (n < 0 || rc < 0) {
        rc = rc < 0 ? rc : (int)n;
        goto no_answer;
    }
    n = msg_recv(inst.sock, REPLACE_MSG_RESULT, buf, NULL, 0, NULL, NULL);
    if (n < 0) {
        rc = (int)n;
        goto no_answer;
    }
    {
        uint64_t t_end = now_ns();
        ferry_log(FERRY_LOG_INFO, NULL, "replace: served nothing for %.2f ms: state saved and "
                  "fds sent %.2f, state sent %.2f, the successor adopted them %.2f, restored "
                  "and serving %.2f", (t_end - t_freeze) / 1e6, (t_sent - t_freeze) / 1e6,
                  (t_state - t_sent) / 1e6, (t_ready - t_state) / 1e6, (t_end - t_ready) / 1e6);
    }
refused:;
    struct replace_result res = { 0 };
    size_t plen = ((struct replace_hdr *)buf)->len;
    memcpy(&res, buf + sizeof(struct replace_hdr), plen < sizeof(res) ? plen : sizeof(res));
    res.why[sizeof(res.why) - 1] = '\0';
    if (res.status != 0) {
        rc = res.status < 0 ? res.status : -EPROTO;
        say(why, why_len, "the successor refused: %s", res.why);
        goto fail;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "replace: pid %d serves guest %s now; exiting",
              (int)inst.pid, p->guest);
    close(inst.sock);
    close(inst.errfd);
    g_free(f);
    return 0;

no_answer:
    {
        char words[256];
        /* Its reason, if it said one before going. */
        sandbox_launcher_stop(r->launcher, inst.pid, NULL);
        inst.pid = 0;
        successor_words(inst.errfd, words, sizeof(words));
        say(why, why_len, "the successor %s: %s%s%s",
            rc == -ETIMEDOUT ? "did not answer in time" :
            rc == -EPIPE || rc == -ECONNRESET ? "exited" :
            "broke the exchange", strerror(-rc), words[0] ? ": " : "", words);
    }
fail:
    if (inst.pid)
        sandbox_launcher_stop(r->launcher, inst.pid, NULL);
    if (exported)
        dm_handover_abort(p->dm);
    if (begun)
        (void)dm_server_handover(p->server, IOREQ_HANDOVER_ABORT, (uint32_t)getpid());
    /* Whatever came in meanwhile is answered by us, still in charge. */
    if (serving)
        dm_server_resume(p->server);
    if (companion_saved && p->companion->resume)
        p->companion->resume(p->companion->opaque);
    close(inst.sock);
    close(inst.errfd);
    g_free(f);
    ferry_log(FERRY_LOG_WARNING, NULL, "replace refused, this ferry-dm goes on serving: %s",
              why);
    return rc < 0 ? rc : -EPROTO;
}

/* ------------------------------------------------------------------ */
/* The successor                                                       */

struct dm_takeover {
    int sock;
    struct replace_fds f;
    int fds[REPLACE_FDS_MAX];
    unsigned nfds;
    bool used[REPLACE_FDS_MAX];
};

int dm_takeover_started(int fd)
{
    return msg_send(fd, REPLACE_MSG_STARTED, DM_STATE_VERSION, NULL, 0, NULL, 0);
}

int dm_takeover_receive(int fd, struct dm_takeover **out, char *why, size_t why_len)
{
    struct dm_takeover *t = g_new0(struct dm_takeover, 1);
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    uint16_t version = 0;

    t->sock = fd;
    ssize_t n = msg_recv(fd, REPLACE_MSG_FDS, buf, t->fds, REPLACE_FDS_MAX, &t->nfds, &version);
    if (n == -EPROTONOSUPPORT) {
        say(why, why_len, "incompatible state version %u: this ferry-dm reads version %u",
            version, DM_STATE_VERSION);
        goto refuse;
    }
    if (n < 0) {
        say(why, why_len, "no handover from the predecessor: %s", strerror((int)-n));
        goto refuse;
    }
    memcpy(&t->f, buf + sizeof(struct replace_hdr),
           (size_t)n < sizeof(t->f) ? (size_t)n : sizeof(t->f));
    if ((size_t)n < offsetof(struct replace_fds, roles) || t->f.nr_fds > REPLACE_FDS_MAX ||
        (size_t)n != offsetof(struct replace_fds, roles) + t->f.nr_fds * sizeof(uint32_t) ||
        t->f.nr_fds != t->nfds || t->f.nr_ioreq_fds > t->nfds || t->f.state_len > DM_STATE_MAX) {
        say(why, why_len, "malformed handover: %zd bytes, %u fds announced, %u came",
            n, t->f.nr_fds, t->nfds);
        n = -EBADMSG;
        goto refuse;
    }
    t->f.ioreq.name[IOREQ_NAME_MAX] = '\0';
    *out = t;
    return 0;
refuse:
    *out = t;               /* for dm_takeover_refuse */
    return (int)n;
}

int dm_takeover_adopt(struct dm_takeover *t, struct ferry_dm_server *server, char *why,
                      size_t why_len)
{
    int cfds[REPLACE_FDS_MAX];
    uint32_t tags[REPLACE_FDS_MAX];
    unsigned nc = 0;

    for (unsigned i = 0; i < t->nfds; i++) {
        uint32_t role = t->f.roles[i];
        if (i < t->f.nr_ioreq_fds)
            continue;
        if (role == DM_STATE_FD_LOG) {
            /* Our stdout and stderr are the launcher's pipe, closed once we serve. */
            dup2(t->fds[i], STDOUT_FILENO);
            dup2(t->fds[i], STDERR_FILENO);
            continue;
        }
        if (DM_STATE_FD_KIND(role) == DM_STATE_FD_CHARDEV) {
            cfds[nc] = t->fds[i];
            tags[nc++] = DM_STATE_FD_TAG(role);
            t->used[i] = true;
        }
    }
    int rc = dm_chardev_inherit(cfds, tags, nc);
    if (rc < 0) {
        for (unsigned i = 0; i < t->nfds; i++)
            t->used[i] = false;     /* closed with t */
        say(why, why_len, "malformed chardev fds in the handover");
        return rc;
    }
    int hfds[REPLACE_FDS_MAX];
    uint32_t hroles[REPLACE_FDS_MAX];
    unsigned nh = 0;
    for (unsigned i = t->f.nr_ioreq_fds; i < t->nfds; i++) {
        uint32_t kind = DM_STATE_FD_KIND(t->f.roles[i]);
        if (kind == DM_STATE_FD_DEVICE || kind == DM_STATE_FD_IRQFD ||
            kind == DM_STATE_FD_RESAMPLE || kind == DM_STATE_FD_MSI) {
            hfds[nh] = t->fds[i];
            hroles[nh++] = t->f.roles[i];
            t->used[i] = true;
        }
    }
    rc = dm_handover_inherit(hfds, hroles, nh);
    if (rc < 0) {
        for (unsigned i = t->f.nr_ioreq_fds; i < t->nfds; i++)
            if (DM_STATE_FD_KIND(t->f.roles[i]) >= DM_STATE_FD_DEVICE)
                t->used[i] = false;     /* closed with t */
        say(why, why_len, "malformed device or irqfd fds in the handover");
        return rc;
    }
    for (unsigned i = 0; i < t->f.nr_ioreq_fds; i++)
        t->used[i] = true;
    if (t->f.nr_ioreq_fds == 0)
        return 0;       /* companion mode: no ioreq server */
    rc = dm_server_adopt(server, &t->f.ioreq, t->fds, t->f.nr_ioreq_fds);
    if (rc < 0)
        say(why, why_len, "cannot take over the ioreq registration: %s", strerror(-rc));
    return rc;
}

int dm_takeover_fd(struct dm_takeover *t, uint32_t role)
{
    for (unsigned i = 0; i < t->nfds; i++)
        if (!t->used[i] && t->f.roles[i] == role) {
            t->used[i] = true;
            return t->fds[i];
        }
    return -1;
}

int dm_takeover_control_fd(struct dm_takeover *t)
{
    for (unsigned i = 0; i < t->nfds; i++)
        if (!t->used[i] && t->f.roles[i] == DM_STATE_FD_CONTROL) {
            t->used[i] = true;
            return t->fds[i];
        }
    return -1;
}

static void send_result(struct dm_takeover *t, int status, const char *why)
{
    struct replace_result res = { .status = status, .pid = (int32_t)getpid() };

    snprintf(res.why, sizeof(res.why), "%s", why ? why : "");
    (void)msg_send(t->sock, REPLACE_MSG_RESULT, DM_STATE_VERSION, &res, sizeof(res), NULL, 0);
}

void dm_takeover_refuse(struct dm_takeover *t, int status, const char *why)
{
    if (t && t->sock >= 0)
        send_result(t, status < 0 ? status : -EPROTO, why);
}

int dm_takeover_finish(struct dm_takeover *t, const struct dm_replace_parts *p, char *why,
                       size_t why_len)
{
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    g_autoptr(GByteArray) state = g_byte_array_new();
    struct dm_state_view v;
    int rc;

    rc = msg_send(t->sock, REPLACE_MSG_READY, DM_STATE_VERSION, NULL, 0, NULL, 0);
    if (rc < 0) {
        say(why, why_len, "the predecessor went away: %s", strerror(-rc));
        return rc;
    }
    while (state->len < t->f.state_len) {
        ssize_t n = msg_recv(t->sock, REPLACE_MSG_STATE, buf, NULL, 0, NULL, NULL);
        if (n <= 0 || (size_t)n > t->f.state_len - state->len) {
            say(why, why_len, "the state did not arrive whole: %s",
                n < 0 ? strerror((int)-n) : "a chunk beyond its announced length");
            return n < 0 ? (int)n : -EBADMSG;
        }
        g_byte_array_append(state, buf + sizeof(struct replace_hdr), (guint)n);
    }
    /* Checked whole before any device or the router is touched. */
    rc = dm_state_parse(state->data, state->len, &v, why, why_len);
    if (rc < 0)
        return rc;
    if (v.nr_fds != t->nfds || memcmp(v.fd_roles, t->f.roles, t->nfds * sizeof(uint32_t))) {
        say(why, why_len, "the state's fd table does not match the fds passed");
        return -EBADMSG;
    }
    /* Claims repeat the predecessor's (no-ops for the router), irqfds are ours.  The claims go
     * in one batch: the guest's pause holds one wake-up of ferry-hv for them, not one each. */
    bool serving = t->f.nr_ioreq_fds != 0;      /* not in companion mode */
    if (serving)
        (void)dm_server_batch(p->server, true);
    rc = dm_start(p->dm);
    int brc = serving ? dm_server_batch(p->server, false) : 0;
    if (rc >= 0)
        rc = brc;
    if (rc < 0) {
        say(why, why_len, "cannot start the devices: %s: %s", strerror(-rc),
            dm_server_last_error(p->server));
        return rc;
    }
    rc = dm_state_load(p->dm, p->guest, state->data, state->len, &v, why, why_len);
    if (rc < 0)
        return rc;
    if (!p->companion != !v.companion) {
        say(why, why_len, "%s", p->companion ? "the state has no companion-mode section, and "
            "this ferry-dm is a companion (--qmp)" : "the state is a companion's (--qmp), "
            "this ferry-dm is not");
        return -EINVAL;
    }
    if (p->companion) {
        int cfds[REPLACE_FDS_MAX];
        unsigned nc = 0;

        for (unsigned i = 0; i < t->nfds; i++)
            if (!t->used[i] && DM_STATE_FD_KIND(t->f.roles[i]) == DM_STATE_FD_COMPANION) {
                if (DM_STATE_FD_TAG(t->f.roles[i]) != nc) {
                    say(why, why_len, "companion fds out of order in the handover");
                    return -EBADMSG;
                }
                cfds[nc++] = t->fds[i];
                t->used[i] = true;
            }
        rc = p->companion->restore(p->companion->opaque, v.companion, v.companion_len, cfds, nc,
                                   why, why_len);
        if (rc < 0)
            return rc;
        nc = 0;
        for (unsigned i = 0; i < t->nfds; i++)
            if (!t->used[i] && DM_STATE_FD_KIND(t->f.roles[i]) == DM_STATE_FD_PCI) {
                if (DM_STATE_FD_TAG(t->f.roles[i]) != nc) {
                    say(why, why_len, "PCI claim fds out of order in the handover");
                    return -EBADMSG;
                }
                cfds[nc++] = t->fds[i];
                t->used[i] = true;
            }
        if (!p->companion->restore_pci && (v.pci || nc)) {
            say(why, why_len, "the predecessor had PCI devices assigned, this ferry-dm cannot "
                "take them over");
            return -EOPNOTSUPP;
        }
        rc = p->companion->restore_pci
                 ? p->companion->restore_pci(p->companion->opaque, v.pci, v.pci_len, cfds, nc,
                                             why, why_len)
                 : 0;
        if (rc < 0)
            return rc;
    } else if (v.pci) {
        say(why, why_len, "the state has PCI assignments, a companion's (--qmp); this "
            "ferry-dm is not a companion");
        return -EINVAL;
    }
    rc = serving ? dm_server_enable(p->server) : 0;
    if (rc < 0) {
        say(why, why_len, "cannot enable the ioreq server: %s", strerror(-rc));
        return rc;
    }
    /* The predecessor serves nothing more (it waits for RESULT, then exits): what waited in
     * the slots is ours, answered first, the guest's pause ends here. */
    if (serving)
        dm_server_resume(p->server);
    send_result(t, 0, NULL);
    if (serving)
        (void)dm_server_handover(p->server, IOREQ_HANDOVER_DONE, (uint32_t)getpid());
    ferry_log(FERRY_LOG_INFO, NULL, "took over guest %s from %s (state %u bytes)", p->guest,
              v.source[0] ? v.source : "an unnamed ferry-dm", t->f.state_len);
    return 0;
}

void dm_takeover_free(struct dm_takeover *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->nfds; i++)
        if (!t->used[i])
            close(t->fds[i]);
    if (t->sock >= 0)
        close(t->sock);
    dm_chardev_inherit_done();
    dm_handover_inherit_done();
    g_free(t);
}
