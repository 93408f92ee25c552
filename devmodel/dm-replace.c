// SPDX-License-Identifier: GPL-2.0-or-later
/* Replacing ferry-dm under a running guest: both ends of the exchange (dm-replace.h). */
#include "devmodel/dm-replace.h"

#include <errno.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
/* fds per SCM_RIGHTS message: the kernel takes at most SCM_MAX_FD (253) in one; a message
 * with more (DM_STATE_FDS_MAX in all) has the rest follow in FDS_MORE messages */
#define REPLACE_FDS_PER_MSG 200
#define REPLACE_SCM_MAX_FD  253
#define REPLACE_MSG_MAX     (REPLACE_CHUNK + 64)

/*
 * The exchange (docs/ferry-dm.md, "Replacing ferry-dm"):
 *   succ STARTED    it exec'd and warmed up            the predecessor serves
 *   pred FDS        everything that holds still        the predecessor serves
 *   succ PREPARED   devices added, confined, waiting   the predecessor serves
 *   pred FREEZE     the late fds, the sequence number  the guest waits from here
 *   pred STATE...   the state stream
 *   succ RESULT     serving (or why not)               ... to the successor's first answer
 * A RESULT may come instead of any successor message: a refusal.
 */
enum replace_type {
    REPLACE_MSG_FDS = 1,
    REPLACE_MSG_PREPARED = 2,
    REPLACE_MSG_STATE = 3,
    REPLACE_MSG_RESULT = 4,
    REPLACE_MSG_STARTED = 5,
    REPLACE_MSG_FREEZE = 6,
    REPLACE_MSG_FDS_MORE = 7,   /* the next fds of an FDS or FREEZE (struct replace_fds_more) */
};

/* The router's deadline for vCPUs (15 s from FDS) is renewed at the freeze past this. */
#define REPLACE_RENEW_NS    (4000ull * 1000000)

struct replace_hdr {
    uint32_t magic;
    uint16_t version;           /* DM_STATE_VERSION of the writer */
    uint16_t type;
    uint32_t len;               /* payload bytes */
};

struct replace_fds {
    struct ioreq_server_handover ioreq;
    struct ioreq_msg_memory_reply mem;      /* guest RAM's regions, with a DM_STATE_FD_RAM */
    uint32_t nr_ioreq_fds;
    uint32_t nr_fds;
    uint32_t roles[DM_STATE_FDS_MAX];
};

#define REPLACE_CLAIMS_MAX  1024  /* more are asked of the router again (no-ops there) */

struct replace_freeze {
    uint32_t seq;               /* the registration's last sequence number */
    uint32_t state_len;
    uint32_t nr_fds;            /* the late fds, after the FDS ones in the state's fd table */
    uint32_t enabled;           /* the registration is enabled */
    uint32_t nr_claims;
    uint32_t roles[DM_STATE_FDS_MAX];
    struct dm_server_claim claims[REPLACE_CLAIMS_MAX];  /* the router's for the registration */
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
    size_t space = CMSG_SPACE(REPLACE_SCM_MAX_FD * sizeof(int));
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

FERRY_PRINTF(3, 4) static void say(char *why, size_t n, const char *fmt, ...);

/* The fds from first on, count of them: the rest of an FDS's or a FREEZE's fds. */
struct replace_fds_more {
    uint32_t first;
    uint32_t count;
};

/*
 * A message with nfds fds, in as many SCM_RIGHTS messages as they need: the
 * first REPLACE_FDS_PER_MSG with it, the rest in FDS_MORE messages, each
 * naming its first fd and count.  short_by: the last carries that many fds
 * less than it says (x-fault=fds).
 */
static int msg_send_fds(int sock, uint16_t type, uint16_t version, const void *payload,
                        size_t len, const int *fds, unsigned nfds, unsigned short_by)
{
    unsigned n1 = MIN(nfds, REPLACE_FDS_PER_MSG);
    int rc = msg_send(sock, type, version, payload, len, fds,
                      n1 - (n1 == nfds ? MIN(short_by, n1) : 0));

    for (unsigned first = n1; rc == 0 && first < nfds; first += REPLACE_FDS_PER_MSG) {
        struct replace_fds_more m = { first, MIN(nfds - first, REPLACE_FDS_PER_MSG) };
        bool last = first + m.count == nfds;

        rc = msg_send(sock, REPLACE_MSG_FDS_MORE, DM_STATE_VERSION, &m, sizeof(m), fds + first,
                      m.count - (last ? MIN(short_by, m.count) : 0));
    }
    return rc;
}

/*
 * The rest of a message's fds, from *have up to total (fds has room for
 * total), each batch checked against what it says it is: 0, or -errno with
 * why (the fds received so far stay in fds, counted in *have, the caller's).
 */
static int msg_recv_more(int sock, uint8_t *buf, int *fds, unsigned *have, unsigned total,
                         char *why, size_t why_len)
{
    while (*have < total) {
        struct replace_fds_more m = { 0 };
        unsigned want = MIN(total - *have, REPLACE_FDS_PER_MSG), got = 0;
        ssize_t n = msg_recv(sock, REPLACE_MSG_FDS_MORE, buf, fds + *have, want, &got, NULL);

        if (n < 0) {
            say(why, why_len, "the handover's fds stopped at %u of %u: %s", *have, total,
                strerror((int)-n));
            return (int)n;
        }
        memcpy(&m, buf + sizeof(struct replace_hdr), MIN((size_t)n, sizeof(m)));
        *have += got;
        if ((size_t)n != sizeof(m) || m.first != *have - got || m.count != got ||
            got != want) {
            say(why, why_len, "malformed handover: fds %u-%u announced, %u came at %u of %u",
                m.first, m.first + m.count, got, *have - got, total);
            return -EBADMSG;
        }
    }
    return 0;
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

/* An fd passed early, as it was then: the same file at the freeze, or the offer is stale. */
struct fd_id {
    dev_t dev;
    ino_t ino;
};

struct dm_replace {
    struct ferry_launcher *launcher;
    char *binary;
    struct ferry_launcher_instance inst;    /* a successor started by dm_replace_begin */
    bool begun;
    /* The offer (dm_replace_offer): the fds passed while this ferry-dm still serves. */
    bool offered, devices_exported, announced, serving;
    struct dm_replace_parts parts;
    uint64_t t_announced;
    uint64_t generation;                    /* dm_handover_generation then */
    struct replace_fds f;                   /* as sent */
    int fds[DM_STATE_FDS_MAX];
    struct fd_id ids[DM_STATE_FDS_MAX];
    uint64_t freeze_at, frozen;             /* the last commit's (dm_replace_last_freeze) */
};

int dm_replace_prepare(const char *const *argv, const struct ferry_sandbox_config *sbx,
                       struct dm_replace **out)
{
    struct dm_replace *r = g_new0(struct dm_replace, 1);
    /*
     * The launcher drops to the sandbox's user like QEMU's, but keeps what its successor
     * needs to confine itself as this ferry-dm did: CAP_SYS_ADMIN for the namespaces
     * (a user namespace instead cannot map uid 0 for a root ferry-dm, and is weaker),
     * CAP_SETPCAP to empty the bounding set.  Only those this ferry-dm holds now.
     */
    struct ferry_sandbox_config lsbx = sbx ? *sbx : (struct ferry_sandbox_config){ 0 };
    lsbx.keep_caps = 1ull << CAP_SETPCAP | (lsbx.namespaces ? 1ull << CAP_SYS_ADMIN : 0);
    struct ferry_launcher_config cfg = {
        .argv = argv,
        .sock_type = SOCK_SEQPACKET,
        .max_live = 1,
        .sandbox = sbx ? &lsbx : NULL,
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

int dm_replace_log_to(struct dm_replace *r, int fd)
{
    return sandbox_launcher_log_to(r->launcher, fd);
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
    if (rc < 0 && sandbox_launcher_gone(r->launcher)) {
        /* Nothing was frozen: this ferry-dm serves on, but no replace can work any more. */
        say(why, why_len, "cannot start the successor %s: its launcher (pid %d) has exited, "
            "so this ferry-dm cannot be replaced (it goes on serving; its log says why the "
            "launcher went)", r->binary, (int)sandbox_launcher_pid(r->launcher));
        return rc;
    }
    if (rc < 0) {
        say(why, why_len, "cannot start the successor %s: %s", r->binary, strerror(-rc));
        return rc;
    }
    ferry_log(FERRY_LOG_INFO, NULL, "replace: successor %s is pid %d", r->binary,
              (int)inst.pid);
    r->inst = inst;
    r->begun = true;
    r->offered = false;
    *sock = inst.sock;
    return 0;
}

/* What the offer changed, undone: the devices keep their fds, the router its deadline. */
static void offer_undo(struct dm_replace *r)
{
    if (r->devices_exported)
        dm_handover_abort(r->parts.dm);
    if (r->announced)
        (void)dm_server_handover(r->parts.server, IOREQ_HANDOVER_ABORT, (uint32_t)getpid());
    r->devices_exported = r->announced = r->offered = false;
}

void dm_replace_cancel(struct dm_replace *r)
{
    if (!r || !r->begun)
        return;
    if (r->inst.pid)
        sandbox_launcher_stop(r->launcher, r->inst.pid, NULL);
    offer_undo(r);
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

/* A successor that stopped answering (rc): stopped for good, and why said with
 * its own last words, if it left any. */
static void successor_lost(struct dm_replace *r, pid_t pid, int errfd, int rc, char *why,
                           size_t why_len)
{
    char words[256];

    sandbox_launcher_stop(r->launcher, pid, NULL);
    r->inst.pid = 0;
    successor_words(errfd, words, sizeof(words));
    say(why, why_len, "the successor %s: %s%s%s",
        rc == -ETIMEDOUT ? "did not answer in time" :
        rc == -EPIPE || rc == -ECONNRESET ? "exited" :
        "broke the exchange", strerror(-rc), words[0] ? ": " : "", words);
}

/*
 * The fds that hold still while the guest runs, in the offer's order: the
 * registration's, guest RAM, the control socket, the log, the chardevs'
 * and companion mode's QMP connection (not the devices': they come last,
 * from dm_handover_export_devices, and are checked by identity and the
 * devices' generation).  The count.
 */
static unsigned still_fds(struct dm_replace *r, struct replace_fds *f, int *fds, char *why,
                          size_t why_len, int *rc)
{
    const struct dm_replace_parts *p = &r->parts;
    unsigned n = 0;

    *rc = 0;
    memset(f, 0, offsetof(struct replace_fds, roles));
    if (r->serving) {
        *rc = dm_server_export(p->server, &f->ioreq, fds, DM_STATE_FDS_MAX - 4);
        if (*rc < 0) {
            say(why, why_len, "cannot hand over the ioreq registration: %s", strerror(-*rc));
            return 0;
        }
        n = (unsigned)*rc;
        *rc = 0;
        for (unsigned i = 0; i < n; i++)
            f->roles[i] = i == 0 ? DM_STATE_FD_IOREQ_SOCK : i == 1 ? DM_STATE_FD_IOREQ_MAP
                          : (f->ioreq.buffered_offset && i == 2) ? DM_STATE_FD_IOREQ_BUF
                          : ((i - 2 - (f->ioreq.buffered_offset != 0)) % 2 == 0)
                              ? DM_STATE_FD_IOREQ_REQ : DM_STATE_FD_IOREQ_RESP;
        f->nr_ioreq_fds = n;
        /* Guest RAM as this ferry-dm has it: the successor asks the router nothing while
         * the connection is still ours. */
        int memfd = dm_guest_memory_fd(p->dm, &f->mem);
        if (memfd >= 0) {
            fds[n] = memfd;
            f->roles[n++] = DM_STATE_FD_RAM;
        }
    }
    if (p->control) {
        fds[n] = dm_control_listen_fd(p->control);
        f->roles[n++] = DM_STATE_FD_CONTROL;
    }
    fds[n] = STDERR_FILENO;
    f->roles[n++] = DM_STATE_FD_LOG;
    int qfd = p->companion && p->companion->qmp_fd ? p->companion->qmp_fd(p->companion->opaque)
                                                   : -1;
    if (qfd >= 0) {
        fds[n] = qfd;
        f->roles[n++] = DM_STATE_FD_QMP;
    }
    g_autofree uint32_t *tags = g_new(uint32_t, DM_STATE_FDS_MAX);
    int nc = dm_chardev_export(fds + n, tags, DM_STATE_FDS_MAX - n);
    if (nc < 0) {
        *rc = nc;
        say(why, why_len, "the chardevs' fds do not fit in a handover (at most %u fds in all)",
            DM_STATE_FDS_MAX);
        return 0;
    }
    for (int i = 0; i < nc; i++)
        f->roles[n + i] = DM_STATE_FD_CHARDEV | tags[i] << 8;
    return n + (unsigned)nc;
}

static int fd_identity(int fd, struct fd_id *id)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    *id = (struct fd_id){ st.st_dev, st.st_ino };
    return 0;
}

int dm_replace_offer(struct dm_replace *r, const struct dm_replace_parts *p, const char *fault,
                     char *why, size_t why_len)
{
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    struct replace_fds *f = &r->f;
    unsigned n;
    int rc;

    why[0] = '\0';
    r->parts = *p;
    r->serving = dm_server_connected(p->server);       /* not in companion mode */
    /* It has exec'd, parsed its options and warmed up, this ferry-dm serving meanwhile. */
    ssize_t k = msg_recv(r->inst.sock, REPLACE_MSG_STARTED, buf, NULL, 0, NULL, NULL);
    if (k == -ECANCELED) {
        struct replace_result res = { 0 };
        size_t plen = ((struct replace_hdr *)buf)->len;
        memcpy(&res, buf + sizeof(struct replace_hdr), plen < sizeof(res) ? plen : sizeof(res));
        res.why[sizeof(res.why) - 1] = '\0';
        say(why, why_len, "the successor refused: %s", res.why);
        rc = res.status < 0 ? res.status : -EPROTO;
        goto fail;
    }
    if (k < 0) {
        rc = (int)k;
        goto no_answer;
    }
    n = still_fds(r, f, r->fds, why, why_len, &rc);
    if (rc < 0)
        goto fail;
    rc = dm_handover_export_devices(p->dm, r->fds + n, f->roles + n, DM_STATE_FDS_MAX - n,
                                    why, why_len);
    if (rc < 0)
        goto fail;
    r->devices_exported = true;
    n += (unsigned)rc;
    f->nr_fds = n;
    for (unsigned i = 0; i < n; i++)
        if ((rc = fd_identity(r->fds[i], &r->ids[i])) < 0) {
            say(why, why_len, "cannot look at fd %d (role 0x%x): %s", r->fds[i], f->roles[i],
                strerror(-rc));
            goto fail;
        }
    /* For the tests: as if a back end changed before the freeze. */
    if (fault && !strcmp(fault, "stale") && n)
        r->ids[n - 1].ino ^= 1;
    r->generation = dm_handover_generation(p->dm);
    /* vCPUs wait past the router's timeout from now on (the successor answers them). */
    rc = r->serving ? dm_server_handover(p->server, IOREQ_HANDOVER_BEGIN, (uint32_t)r->inst.pid)
                    : 0;
    if (rc < 0) {
        say(why, why_len, "the hypervisor refused the handover: %s", strerror(-rc));
        goto fail;
    }
    r->announced = r->serving;
    r->t_announced = now_ns();
    uint16_t version = fault && !strcmp(fault, "version") ? DM_STATE_VERSION + 1
                                                          : DM_STATE_VERSION;
    /* x-fault=fds: the last message carries one fd less than it says */
    rc = msg_send_fds(r->inst.sock, REPLACE_MSG_FDS, version, f,
                      offsetof(struct replace_fds, roles) + n * sizeof(uint32_t), r->fds, n,
                      fault && !strcmp(fault, "fds") ? 1 : 0);
    if (rc == 0)
        ferry_log(FERRY_LOG_INFO, NULL, "replace: %u fds offered in %u messages", n,
                  n ? (n + REPLACE_FDS_PER_MSG - 1) / REPLACE_FDS_PER_MSG : 1);
    if (rc < 0)
        goto no_answer;     /* most likely it exited already: say what it said */
    r->offered = true;
    return 0;

no_answer:
    successor_lost(r, r->inst.pid, r->inst.errfd, rc, why, why_len);
fail:
    dm_replace_cancel(r);
    ferry_log(FERRY_LOG_WARNING, NULL, "replace refused, this ferry-dm goes on serving: %s",
              why);
    return rc < 0 ? rc : -EPROTO;
}

/*
 * At the freeze: the fds passed early are still what this ferry-dm uses
 * (no chardev client came or went, no QEMU restarted, no device was added
 * or removed in between)?  0, or -EAGAIN with what changed in why.
 */
static int offer_still_holds(struct dm_replace *r, struct replace_fds *now, char *why,
                             size_t why_len)
{
    int fds[DM_STATE_FDS_MAX];
    int rc;
    unsigned n = still_fds(r, now, fds, why, why_len, &rc);
    unsigned ndev = 0;

    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < r->f.nr_fds; i++)
        ndev += DM_STATE_FD_KIND(r->f.roles[i]) == DM_STATE_FD_DEVICE;
    if (n + ndev != r->f.nr_fds || dm_handover_generation(r->parts.dm) != r->generation) {
        say(why, why_len, "the devices or their back ends changed while the successor started "
            "(%u fds then, %u now): nothing was changed, try again", r->f.nr_fds, n + ndev);
        return -EAGAIN;
    }
    for (unsigned i = 0; i < r->f.nr_fds; i++) {
        struct fd_id id = { 0 };
        bool dev = DM_STATE_FD_KIND(r->f.roles[i]) == DM_STATE_FD_DEVICE;

        if ((!dev && (fds[i] != r->fds[i] || now->roles[i] != r->f.roles[i])) ||
            fd_identity(r->fds[i], &id) < 0 || id.dev != r->ids[i].dev ||
            id.ino != r->ids[i].ino) {
            say(why, why_len, "a back end changed while the successor started (fd %d, role "
                "0x%x): nothing was changed, try again", r->fds[i], r->f.roles[i]);
            return -EAGAIN;
        }
    }
    return 0;
}

int dm_replace_commit(struct dm_replace *r, const char *fault, pid_t *pid, char *why,
                      size_t why_len)
{
    const struct dm_replace_parts *p = &r->parts;
    struct ferry_launcher_instance inst = r->inst;
    struct replace_freeze *z = g_new0(struct replace_freeze, 1);
    struct replace_fds *now = g_new0(struct replace_fds, 1);
    g_autoptr(GByteArray) state = g_byte_array_new();
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    uint32_t roles[DM_STATE_FDS_MAX];
    int fds[DM_STATE_FDS_MAX];
    unsigned nl = 0, n1 = r->f.nr_fds;
    bool companion_saved = false, frozen = false;
    g_autoptr(GByteArray) cstate = NULL;
    g_autoptr(GByteArray) pstate = NULL;
    int rc;

    why[0] = '\0';
    *pid = inst.pid;
    /* It is set up and confined, waiting: from here on this ferry-dm serves nothing. */
    ssize_t k = msg_recv(inst.sock, REPLACE_MSG_PREPARED, buf, NULL, 0, NULL, NULL);
    if (k == -ECANCELED)
        goto refused;
    if (k < 0) {
        rc = (int)k;
        goto no_answer;
    }
    uint64_t t_freeze = now_ns(), t_sent = 0, t_state = 0;
    frozen = true;
    rc = offer_still_holds(r, now, why, why_len);
    if (rc < 0)
        goto fail;
    z->seq = now->ioreq.seq;
    /* The router's deadline, renewed if the successor took long to get ready. */
    if (r->announced && t_freeze - r->t_announced > REPLACE_RENEW_NS &&
        (rc = dm_server_handover(p->server, IOREQ_HANDOVER_BEGIN, (uint32_t)inst.pid)) < 0) {
        say(why, why_len, "the hypervisor refused the handover: %s", strerror(-rc));
        goto fail;
    }
    /* What may change any time: the interrupt lines' fds (the GSIs' irqfds, MSI routes)
     * and companion mode's USB channels, with the state. */
    rc = dm_handover_export_irqs(p->dm, fds, z->roles, DM_STATE_FDS_MAX - n1, why, why_len);
    if (rc < 0)
        goto fail;
    nl = (unsigned)rc;
    if (p->companion) {
        unsigned nco = 0;

        cstate = g_byte_array_new();
        companion_saved = true;
        rc = p->companion->save(p->companion->opaque, cstate, fds + nl, z->roles + nl,
                                DM_STATE_FDS_MAX - n1 - nl, &nco, why, why_len);
        if (rc < 0)
            goto fail;
        nl += nco;
        if (p->companion->save_pci) {
            /* the PCI assignments and their claims' locks (a pci-attach may have come
             * after FDS) */
            pstate = g_byte_array_new();
            nco = 0;
            rc = p->companion->save_pci(p->companion->opaque, pstate, fds + nl, z->roles + nl,
                                        DM_STATE_FDS_MAX - n1 - nl, &nco, why, why_len);
            if (rc < 0)
                goto fail;
            nl += nco;
        }
    }
    z->nr_fds = nl;
    memcpy(roles, r->f.roles, n1 * sizeof(uint32_t));
    memcpy(roles + n1, z->roles, nl * sizeof(uint32_t));
    rc = dm_state_save_full(p->dm, p->guest, roles, n1 + nl, cstate, pstate, state);
    if (rc < 0) {
        say(why, why_len, "cannot save the devices' state: %s", strerror(-rc));
        goto fail;
    }
    if (fault && !strcmp(fault, "checksum"))
        state->data[state->len / 2] ^= 0x20;
    else if (fault && !strcmp(fault, "truncate"))
        g_byte_array_set_size(state, state->len - 7);
    z->state_len = state->len;
    if (r->serving) {
        bool enabled = false;
        z->nr_claims = dm_server_claims(p->server, z->claims, REPLACE_CLAIMS_MAX, &enabled);
        z->enabled = enabled;
    }
    rc = msg_send_fds(inst.sock, REPLACE_MSG_FREEZE, DM_STATE_VERSION, z,
                      offsetof(struct replace_freeze, claims) +
                      z->nr_claims * sizeof(struct dm_server_claim), fds, nl, 0);
    if (rc < 0)
        goto no_answer;
    t_sent = now_ns();
    /* The state right behind: one message the successor wakes for, if it fits one chunk. */
    for (size_t off = 0; off < state->len; off += REPLACE_CHUNK) {
        size_t m = state->len - off < REPLACE_CHUNK ? state->len - off : REPLACE_CHUNK;
        rc = msg_send(inst.sock, REPLACE_MSG_STATE, DM_STATE_VERSION, state->data + off, m,
                      NULL, 0);
        if (rc < 0)
            break;      /* gone: maybe with its reason (RESULT) waiting to be read */
    }
    t_state = now_ns();
    k = msg_recv(inst.sock, REPLACE_MSG_RESULT, buf, NULL, 0, NULL, NULL);
    if (k < 0) {
        rc = rc < 0 ? rc : (int)k;
        goto no_answer;
    }
    {
        uint64_t t_end = now_ns();
        r->freeze_at = t_freeze;
        r->frozen = t_end - t_freeze;
        ferry_log(FERRY_LOG_INFO, NULL, "replace: served nothing for %.2f ms: state saved and "
                  "fds sent %.2f, state sent %.2f, the successor restored it and serves %.2f",
                  (t_end - t_freeze) / 1e6, (t_sent - t_freeze) / 1e6,
                  (t_state - t_sent) / 1e6, (t_end - t_state) / 1e6);
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
    r->begun = r->offered = false;
    g_free(z);
    g_free(now);
    return 0;

no_answer:
    successor_lost(r, inst.pid, inst.errfd, rc, why, why_len);
fail:
    dm_replace_cancel(r);
    /* Whatever came in meanwhile is answered by us, still in charge. */
    if (frozen && r->serving)
        dm_server_resume(p->server);
    if (companion_saved && p->companion->resume)
        p->companion->resume(p->companion->opaque);
    g_free(z);
    g_free(now);
    ferry_log(FERRY_LOG_WARNING, NULL, "replace refused, this ferry-dm goes on serving: %s",
              why);
    return rc < 0 ? rc : -EPROTO;
}

void dm_replace_last_freeze(const struct dm_replace *r, uint64_t *at_ns, uint64_t *len_ns)
{
    *at_ns = r->freeze_at;
    *len_ns = r->frozen;
}

int dm_replace_run(struct dm_replace *r, const struct dm_replace_parts *p, const char *fault,
                   pid_t *pid, char *why, size_t why_len)
{
    int rc;

    if (!r->begun) {
        int sock;
        rc = dm_replace_begin(r, &sock, why, why_len);
        if (rc < 0)
            return rc;
    }
    *pid = r->inst.pid;
    rc = dm_replace_offer(r, p, fault, why, why_len);
    return rc < 0 ? rc : dm_replace_commit(r, fault, pid, why, why_len);
}

/* ------------------------------------------------------------------ */
/* The successor                                                       */

struct dm_takeover {
    int sock;
    struct replace_fds f;       /* FDS's, then FREEZE's roles appended */
    int fds[DM_STATE_FDS_MAX];
    unsigned nfds;
    bool used[DM_STATE_FDS_MAX];
    uint32_t state_len;
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
    ssize_t n = msg_recv(fd, REPLACE_MSG_FDS, buf, t->fds, REPLACE_FDS_PER_MSG, &t->nfds,
                         &version);
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
    if ((size_t)n < offsetof(struct replace_fds, roles) || t->f.nr_fds > DM_STATE_FDS_MAX ||
        (size_t)n != offsetof(struct replace_fds, roles) + t->f.nr_fds * sizeof(uint32_t) ||
        t->nfds != MIN(t->f.nr_fds, REPLACE_FDS_PER_MSG) || t->f.nr_ioreq_fds > t->f.nr_fds ||
        t->f.mem.nr_regions > IOREQ_MEMORY_MAX_REGIONS) {
        say(why, why_len, "malformed handover: %zd bytes, %u fds announced, %u came",
            n, t->f.nr_fds, t->nfds);
        n = -EBADMSG;
        goto refuse;
    }
    /* the rest of the fds: all of them, or a refusal */
    n = msg_recv_more(fd, buf, t->fds, &t->nfds, t->f.nr_fds, why, why_len);
    if (n < 0)
        goto refuse;
    t->f.ioreq.name[IOREQ_NAME_MAX] = '\0';
    *out = t;
    return 0;
refuse:
    *out = t;               /* for dm_takeover_refuse */
    return (int)n;
}

/* The interrupt lines' fds (FDS's none, FREEZE's all), stashed for the devices' start. */
static int inherit_lines(struct dm_takeover *t, unsigned from, char *why, size_t why_len)
{
    int hfds[DM_STATE_FDS_MAX];
    uint32_t hroles[DM_STATE_FDS_MAX];
    unsigned nh = 0;

    for (unsigned i = from; i < t->nfds; i++) {
        uint32_t kind = DM_STATE_FD_KIND(t->f.roles[i]);
        if (kind == DM_STATE_FD_IRQFD || kind == DM_STATE_FD_RESAMPLE ||
            kind == DM_STATE_FD_MSI) {
            hfds[nh] = t->fds[i];
            hroles[nh++] = t->f.roles[i];
            t->used[i] = true;
        }
    }
    int rc = dm_handover_inherit(hfds, hroles, nh);
    if (rc < 0) {
        for (unsigned i = from; i < t->nfds; i++) {
            uint32_t kind = DM_STATE_FD_KIND(t->f.roles[i]);
            if (kind == DM_STATE_FD_IRQFD || kind == DM_STATE_FD_RESAMPLE ||
                kind == DM_STATE_FD_MSI)
                t->used[i] = false;     /* closed with t */
        }
        say(why, why_len, "malformed irqfd or MSI fds in the handover");
    }
    return rc;
}

int dm_takeover_adopt(struct dm_takeover *t, struct ferry_dm_server *server, char *why,
                      size_t why_len)
{
    int cfds[DM_STATE_FDS_MAX];
    uint32_t tags[DM_STATE_FDS_MAX];
    unsigned nc = 0;
    int memfd = -1;

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
        if (role == DM_STATE_FD_RAM && memfd < 0) {
            memfd = t->fds[i];      /* mapped by dm_server_adopt, closed with t */
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
    int hfds[DM_STATE_FDS_MAX];
    uint32_t hroles[DM_STATE_FDS_MAX];
    unsigned nh = 0;
    for (unsigned i = t->f.nr_ioreq_fds; i < t->nfds; i++)
        if (DM_STATE_FD_KIND(t->f.roles[i]) == DM_STATE_FD_DEVICE) {
            hfds[nh] = t->fds[i];
            hroles[nh++] = t->f.roles[i];
            t->used[i] = true;
        }
    rc = dm_handover_inherit(hfds, hroles, nh);
    if (rc < 0) {
        for (unsigned i = t->f.nr_ioreq_fds; i < t->nfds; i++)
            if (DM_STATE_FD_KIND(t->f.roles[i]) == DM_STATE_FD_DEVICE)
                t->used[i] = false;     /* closed with t */
        say(why, why_len, "malformed device fds in the handover");
        return rc;
    }
    for (unsigned i = 0; i < t->f.nr_ioreq_fds; i++)
        t->used[i] = true;
    if (t->f.nr_ioreq_fds == 0)
        return 0;       /* companion mode: no ioreq server */
    rc = dm_server_adopt(server, &t->f.ioreq, t->fds, t->f.nr_ioreq_fds, memfd, &t->f.mem);
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
    return dm_takeover_fd(t, DM_STATE_FD_CONTROL);
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

/* PREPARED, then FREEZE: the late fds join the table, the registration is ours. */
static int await_freeze(struct dm_takeover *t, struct ferry_dm_server *server, uint8_t *buf,
                        char *why, size_t why_len)
{
    g_autofree struct replace_freeze *z = g_new0(struct replace_freeze, 1);
    int late[DM_STATE_FDS_MAX];
    unsigned nl = 0;
    int rc = msg_send(t->sock, REPLACE_MSG_PREPARED, DM_STATE_VERSION, NULL, 0, NULL, 0);

    if (rc < 0) {
        say(why, why_len, "the predecessor went away: %s", strerror(-rc));
        return rc;
    }
    ssize_t n = msg_recv(t->sock, REPLACE_MSG_FREEZE, buf, late, REPLACE_FDS_PER_MSG, &nl,
                         NULL);
    if (n < 0) {
        say(why, why_len, "the predecessor did not stop: %s", strerror((int)-n));
        return (int)n;
    }
    memcpy(z, buf + sizeof(struct replace_hdr), (size_t)n < sizeof(*z) ? (size_t)n : sizeof(*z));
    if ((size_t)n < offsetof(struct replace_freeze, claims) ||
        z->nr_fds > DM_STATE_FDS_MAX - t->nfds || z->nr_claims > REPLACE_CLAIMS_MAX ||
        (size_t)n != offsetof(struct replace_freeze, claims) +
                     z->nr_claims * sizeof(struct dm_server_claim) ||
        nl != MIN(z->nr_fds, REPLACE_FDS_PER_MSG) || z->state_len > DM_STATE_MAX) {
        for (unsigned i = 0; i < nl; i++)
            close(late[i]);
        say(why, why_len, "malformed freeze: %zd bytes, %u fds announced, %u came", n,
            z->nr_fds, nl);
        return -EBADMSG;
    }
    /* the rest of the late fds: all of them, or a refusal */
    rc = msg_recv_more(t->sock, buf, late, &nl, z->nr_fds, why, why_len);
    if (rc < 0) {
        for (unsigned i = 0; i < nl; i++)
            close(late[i]);
        return rc;
    }
    unsigned from = t->nfds;
    for (unsigned i = 0; i < nl; i++) {
        t->fds[t->nfds] = late[i];
        t->f.roles[t->nfds++] = z->roles[i];
    }
    t->state_len = z->state_len;
    rc = inherit_lines(t, from, why, why_len);
    if (rc < 0)
        return rc;
    if (t->f.nr_ioreq_fds) {
        dm_server_take_over(server, z->seq);
        dm_server_inherit_claims(server, z->claims, z->nr_claims, z->enabled != 0);
    }
    return 0;
}

/* The unused fds of one kind, in their tags' order (0, 1, ...), into out; how
 * many, or -EBADMSG (said as "WHAT fds out of order") if a tag is missing. */
static int take_kind(struct dm_takeover *t, uint32_t kind, int *out, const char *what,
                     char *why, size_t why_len)
{
    int n = 0;

    for (unsigned i = 0; i < t->nfds; i++)
        if (!t->used[i] && DM_STATE_FD_KIND(t->f.roles[i]) == kind) {
            if (DM_STATE_FD_TAG(t->f.roles[i]) != (uint32_t)n) {
                say(why, why_len, "%s fds out of order in the handover", what);
                return -EBADMSG;
            }
            out[n++] = t->fds[i];
            t->used[i] = true;
        }
    return n;
}

int dm_takeover_finish(struct dm_takeover *t, const struct dm_replace_parts *p, char *why,
                       size_t why_len)
{
    g_autofree uint8_t *buf = g_malloc(REPLACE_MSG_MAX);
    g_autoptr(GByteArray) state = g_byte_array_new();
    struct dm_state_view v;
    int rc;

    rc = await_freeze(t, p->server, buf, why, why_len);
    if (rc < 0)
        return rc;
    /* The guest waits from here to dm_server_resume: no log line, no file, one batch. */
    uint64_t t_freeze = now_ns(), t_state, t_started;
    while (state->len < t->state_len) {
        ssize_t n = msg_recv(t->sock, REPLACE_MSG_STATE, buf, NULL, 0, NULL, NULL);
        if (n <= 0 || (size_t)n > t->state_len - state->len) {
            say(why, why_len, "the state did not arrive whole: %s",
                n < 0 ? strerror((int)-n) : "a chunk beyond its announced length");
            return n < 0 ? (int)n : -EBADMSG;
        }
        g_byte_array_append(state, buf + sizeof(struct replace_hdr), (guint)n);
    }
    t_state = now_ns();
    /* Checked whole before any device or the router is touched. */
    rc = dm_state_parse(state->data, state->len, &v, why, why_len);
    if (rc < 0)
        return rc;
    if (v.nr_fds != t->nfds || memcmp(v.fd_roles, t->f.roles, t->nfds * sizeof(uint32_t))) {
        say(why, why_len, "the state's fd table does not match the fds passed");
        return -EBADMSG;
    }
    if (!p->companion != !v.companion) {
        say(why, why_len, "%s", p->companion ? "the state has no companion-mode section, and "
            "this ferry-dm is a companion (--qmp)" : "the state is a companion's (--qmp), "
            "this ferry-dm is not");
        return -EINVAL;
    }
    /* The predecessor's claims and ENABLE are the router's already (not asked again), irqfds
     * and MSI routes are ours: in the usual case not one request to the router while the
     * guest waits.  Whatever else (a claim the predecessor did not have, a line's level) goes
     * in one batch: one wake-up of ferry-hv, not one each. */
    bool serving = t->f.nr_ioreq_fds != 0;      /* not in companion mode */
    if (serving)
        (void)dm_server_batch(p->server, true);
    rc = dm_start(p->dm);
    if (rc >= 0)
        rc = dm_state_load(p->dm, p->guest, state->data, state->len, &v, why, why_len);
    else
        say(why, why_len, "cannot start the devices: %s", strerror(-rc));
    if (rc >= 0 && serving)
        rc = dm_server_enable(p->server);
    int brc = serving ? dm_server_batch(p->server, false) : 0;
    if (serving)
        dm_server_inherit_done(p->server);
    if (rc >= 0 && brc < 0) {
        rc = brc;
        say(why, why_len, "the hypervisor refused a claim or the enable: %s: %s",
            strerror(-rc), dm_server_last_error(p->server));
    }
    if (rc < 0)
        return rc;
    t_started = now_ns();
    if (p->companion) {
        int cfds[DM_STATE_FDS_MAX];
        int nc = take_kind(t, DM_STATE_FD_COMPANION, cfds, "companion", why, why_len);

        if (nc < 0)
            return nc;
        rc = p->companion->restore(p->companion->opaque, v.companion, v.companion_len, cfds, nc,
                                   why, why_len);
        if (rc < 0)
            return rc;
        nc = take_kind(t, DM_STATE_FD_PCI, cfds, "PCI claim", why, why_len);
        if (nc < 0)
            return nc;
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
    /* The predecessor serves nothing more (it waits for RESULT, then exits): what waited in
     * the slots is ours, answered first, the guest's pause ends here. */
    if (serving)
        dm_server_resume(p->server);
    uint64_t t_end = now_ns();
    send_result(t, 0, NULL);
    if (serving)
        (void)dm_server_handover(p->server, IOREQ_HANDOVER_DONE, (uint32_t)getpid());
    ferry_log(FERRY_LOG_INFO, NULL, "took over guest %s from %s (state %u bytes) %.2f ms after "
              "the freeze came: state read %.2f, devices started, restored and the router "
              "told %.2f, companion and first answers %.2f", p->guest,
              v.source[0] ? v.source : "an unnamed ferry-dm", t->state_len,
              (t_end - t_freeze) / 1e6, (t_state - t_freeze) / 1e6,
              (t_started - t_state) / 1e6, (t_end - t_started) / 1e6);
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
