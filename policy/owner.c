// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Exclusive device ownership across Ferry processes: one description file
 * per device under RUNDIR/owners/KIND/, write-locked (OFD lock) by its
 * holder.  See owner.h for the rules.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/owner.h"

#define OWNER_FILE_MAX 1024     /* a description is a few short lines */
#define OWNER_RETRIES  8        /* files unlinked under us by a releaser */

struct ferry_policy_owner {
    int fd;
    char path[512];
};

static const char *run_dir(const char *rundir)
{
    const char *e = getenv("FERRY_RUN_DIR");

    if (rundir && *rundir)
        return rundir;
    return e && *e ? e : "/run/ferry";
}

static bool kind_ok(const char *kind)
{
    if (!kind || !*kind || strlen(kind) > 15)
        return false;
    for (const char *p = kind; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
            return false;
    return true;
}

/* RUNDIR/owners/KIND[/escaped ID]; -ENAMETOOLONG or -EINVAL. */
static int owner_path(const char *rundir, const char *kind, const char *id, char *out,
                      size_t len)
{
    size_t n;
    int w;

    if (!kind_ok(kind))
        return -EINVAL;
    w = snprintf(out, len, "%s/owners/%s", run_dir(rundir), kind);
    if (w < 0 || (size_t)w >= len)
        return -ENAMETOOLONG;
    if (!id)
        return 0;
    if (!*id || strlen(id) > 159)
        return -EINVAL;
    n = (size_t)w;
    if (n + 2 >= len)
        return -ENAMETOOLONG;
    out[n++] = '/';
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (n + 4 >= len)
            return -ENAMETOOLONG;
        if (isalnum(c) || c == ':' || c == '_' || c == '-' || (c == '.' && p != id))
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, len - n, "%%%02X", c);
    }
    out[n] = '\0';
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[512];

    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

unsigned long long policy_owner_pid_start(const char *proc_root, long pid)
{
    char path[256], buf[1024], *p;
    unsigned long long start = 0;
    ssize_t n;
    int fd;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "%s/%ld/stat", proc_root ? proc_root : "/proc", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields start after the last ')' */
    p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    /* field 3 (state) is the first after comm; starttime is field 22 */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p)
        start = strtoull(p + 1, NULL, 10);
    return start;
}

bool policy_owner_pid_alive(const char *proc_root, long pid, unsigned long long start)
{
    unsigned long long now;

    if (pid <= 0)
        return false;
    now = policy_owner_pid_start(proc_root, pid);
    if (now == 0)
        return false;       /* no such process (or a zombie without stat: gone too) */
    return start == 0 || now == start;
}

static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void parse_desc(const char *text, struct ferry_policy_owner_info *i)
{
    const char *p = text;

    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = memchr(p, '=', len);

        if (eq) {
            size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
            char val[256];

            if (vlen >= sizeof(val))
                vlen = sizeof(val) - 1;
            memcpy(val, eq + 1, vlen);
            val[vlen] = '\0';
            if (klen == 5 && !memcmp(p, "guest", 5))
                copy_str(i->guest, sizeof(i->guest), val);
            else if (klen == 7 && !memcmp(p, "program", 7))
                copy_str(i->program, sizeof(i->program), val);
            else if (klen == 3 && !memcmp(p, "pid", 3))
                i->pid = strtol(val, NULL, 10);
            else if (klen == 5 && !memcmp(p, "start", 5))
                i->start = strtoull(val, NULL, 10);
            else if (klen == 5 && !memcmp(p, "since", 5))
                copy_str(i->since, sizeof(i->since), val);
        }
        p = nl ? nl + 1 : NULL;
    }
}

/* Read fd's description into i (guest "" when the file is empty). */
static void read_desc(int fd, struct ferry_policy_owner_info *i)
{
    char buf[OWNER_FILE_MAX + 1];
    ssize_t n = pread(fd, buf, OWNER_FILE_MAX, 0);

    buf[n > 0 ? n : 0] = '\0';
    i->guest[0] = i->program[0] = i->since[0] = '\0';
    i->pid = 0;
    i->start = 0;
    parse_desc(buf, i);
}

/* Is a write lock held on fd's file by another open file description? */
static int lock_held(int fd, bool *held)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    *held = fl.l_type != F_UNLCK;
    return 0;
}

static int lock_take(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

    if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return errno == EACCES || errno == EAGAIN ? -EWOULDBLOCK : -errno;
    return 0;
}

static void fill_state(struct ferry_policy_owner_info *i, bool locked)
{
    i->locked = locked;
    i->alive = policy_owner_pid_alive(NULL, i->pid, i->start);
    i->stale = i->guest[0] && !locked && !i->alive;
}

void policy_owner_describe(const struct ferry_policy_owner_info *i, char *buf, size_t len)
{
    if (i->pid > 0)
        snprintf(buf, len, "guest %s (%s pid %ld%s%s)", i->guest[0] ? i->guest : "?",
                 i->program[0] ? i->program : "process", i->pid, i->since[0] ? ", since " : "",
                 i->since);
    else
        snprintf(buf, len, "guest %s", i->guest[0] ? i->guest : "?");
}

static bool text_ok(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) >= max)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || (unsigned char)*p < 0x20)
            return false;
    return true;
}

static int write_desc(int fd, const char *guest, const char *program, pid_t pid)
{
    char buf[OWNER_FILE_MAX], since[32];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&now, &tm);
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(buf, sizeof(buf), "guest=%s\nprogram=%s\npid=%ld\nstart=%llu\nsince=%s\n",
                 guest, program, (long)pid, policy_owner_pid_start(NULL, pid), since);
    if (n < 0 || n >= (int)sizeof(buf))
        return -E2BIG;
    if (ftruncate(fd, 0) < 0)
        return -errno;
    if (pwrite(fd, buf, (size_t)n, 0) != n)
        return errno ? -errno : -EIO;
    return 0;
}

/* A device another claimant holds: -EALREADY if that is this guest, else -EBUSY, said in err. */
static int held_verdict(const struct ferry_policy_owner_info *info, const char *kind,
                        const char *id, const char *guest, char *err, size_t errlen)
{
    char who[400];

    policy_owner_describe(info, who, sizeof(who));
    if (!strcmp(info->guest, guest)) {
        snprintf(err, errlen, "%s device %s: already held by %s", kind, id, who);
        return -EALREADY;
    }
    snprintf(err, errlen, "%s device %s is assigned to %s: detach it there first", kind,
             id, who);
    return -EBUSY;
}

int policy_owner_claim(const char *rundir, const char *kind, const char *id, const char *guest,
                       const char *program, pid_t pid, struct ferry_policy_owner **out,
                       struct ferry_policy_owner_info *held, char *err, size_t errlen)
{
    struct ferry_policy_owner_info info_local, *info = held ? held : &info_local;
    char dir[512], path[512];
    int r;

    *out = NULL;
    memset(info, 0, sizeof(*info));
    if (!text_ok(guest, FERRY_POLICY_GUEST_MAX) || !text_ok(program, FERRY_POLICY_PROGRAM_MAX)) {
        snprintf(err, errlen, "owner: %s device %s: guest or program name empty, too long or "
                 "with control characters", kind ? kind : "?", id ? id : "?");
        return -EINVAL;
    }
    if ((r = owner_path(rundir, kind, NULL, dir, sizeof(dir))) < 0 ||
        (r = owner_path(rundir, kind, id, path, sizeof(path))) < 0) {
        snprintf(err, errlen, "owner: %s device '%s': %s", kind ? kind : "?", id ? id : "?",
                 r == -EINVAL ? "not a valid kind or device id" : strerror(-r));
        return r;
    }
    snprintf(info->kind, sizeof(info->kind), "%s", kind);
    snprintf(info->id, sizeof(info->id), "%s", id);
    if ((r = mkdir_p(dir)) < 0) {
        snprintf(err, errlen, "owner: cannot create %s: %s", dir, strerror(-r));
        return r;
    }
    for (int tries = 0; tries < OWNER_RETRIES; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

        if (fd < 0) {
            r = -errno;
            snprintf(err, errlen, "owner: cannot open %s: %s", path, strerror(-r));
            return r;
        }
        r = lock_take(fd);
        if (r == -EWOULDBLOCK) {
            read_desc(fd, info);
            close(fd);
            fill_state(info, true);
            if (!info->guest[0] && tries + 1 < OWNER_RETRIES) {
                /* a claimant between its lock and its description */
                usleep(10000);
                continue;
            }
            return held_verdict(info, kind, id, guest, err, errlen);
        }
        if (r < 0) {
            snprintf(err, errlen, "owner: cannot lock %s: %s", path, strerror(-r));
            close(fd);
            return r;
        }
        /* a releaser may have unlinked the file between our open and lock */
        if (fstat(fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino ||
            a.st_dev != b.st_dev) {
            close(fd);
            continue;
        }
        read_desc(fd, info);
        fill_state(info, false);
        if (info->guest[0] && info->alive && (long)pid != info->pid) {
            /* described owner still runs without the lock (a broker claimed
             * for it and let go): it owns the device */
            close(fd);
            return held_verdict(info, kind, id, guest, err, errlen);
        }
        r = write_desc(fd, guest, program, pid);
        if (r < 0) {
            snprintf(err, errlen, "owner: cannot write %s: %s", path, strerror(-r));
            close(fd);
            return r;
        }
        *out = calloc(1, sizeof(**out));
        if (!*out) {
            close(fd);
            return -ENOMEM;
        }
        (*out)->fd = fd;
        snprintf((*out)->path, sizeof((*out)->path), "%s", path);
        if (!info->stale)
            memset(info->guest, 0, sizeof(info->guest));
        err[0] = '\0';
        return 0;
    }
    snprintf(err, errlen, "owner: %s keeps changing under us", path);
    return -EAGAIN;
}

void policy_owner_release(struct ferry_policy_owner *o)
{
    if (!o)
        return;
    /* under the lock: a claimant that opened the old file sees the inode
     * change and starts again */
    if (unlink(o->path) < 0 && errno != ENOENT) {
        if (ftruncate(o->fd, 0) < 0) {
            /* nothing more to do: the lock goes with the close */
        }
    }
    close(o->fd);
    free(o);
}

void policy_owner_detach(struct ferry_policy_owner *o)
{
    if (!o)
        return;
    close(o->fd);
    free(o);
}

int policy_owner_fd(const struct ferry_policy_owner *o)
{
    return o ? o->fd : -1;
}

const char *policy_owner_path(const struct ferry_policy_owner *o)
{
    return o ? o->path : NULL;
}

unsigned long long policy_owner_self_start(void)
{
    static pid_t pid;
    static unsigned long long start;

    if (pid != getpid()) {      /* a forked child reads its own */
        pid = getpid();
        start = policy_owner_pid_start(NULL, pid);
    }
    return start;
}

/*
 * The description names this process from now on (pid, start time; guest,
 * program and since kept).  Only pread and pwrite on the fd, which a
 * confined process may: no truncation, so a shorter text is padded with
 * newlines (empty lines, which parse_desc skips) to the old length.
 */
static int name_self(int fd)
{
    char old[OWNER_FILE_MAX + 1], buf[OWNER_FILE_MAX];
    struct ferry_policy_owner_info i;
    ssize_t had = pread(fd, old, OWNER_FILE_MAX, 0);
    int n;

    if (had < 0)
        return -errno;
    old[had] = '\0';
    memset(&i, 0, sizeof(i));
    parse_desc(old, &i);
    if (!i.guest[0])
        return -EINVAL;         /* not a description: leave it alone */
    n = snprintf(buf, sizeof(buf), "guest=%s\nprogram=%s\npid=%ld\nstart=%llu\nsince=%s\n",
                 i.guest, i.program, (long)getpid(), policy_owner_self_start(), i.since);
    if (n < 0 || n >= (int)sizeof(buf))
        return -E2BIG;
    while (n < had && n < (int)sizeof(buf))
        buf[n++] = '\n';
    if (pwrite(fd, buf, (size_t)n, 0) != n)
        return errno ? -errno : -EIO;
    return 0;
}

int policy_owner_adopt(int fd, const char *path, struct ferry_policy_owner **out)
{
    struct ferry_policy_owner *o;

    *out = NULL;
    if (fd < 0 || !path || strlen(path) >= sizeof(o->path))
        return -EINVAL;
    o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->fd = fd;
    snprintf(o->path, sizeof(o->path), "%s", path);
    (void)name_self(fd);        /* the lock holds it either way; the name is for people */
    *out = o;
    return 0;
}

int policy_owner_drop(const char *rundir, const char *kind, const char *id, const char *guest)
{
    struct ferry_policy_owner_info i = { 0 };
    char path[512];
    int fd, r;

    if ((r = owner_path(rundir, kind, id, path, sizeof(path))) < 0)
        return r;
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    read_desc(fd, &i);
    if (guest && strcmp(i.guest, guest)) {
        close(fd);
        return -EPERM;
    }
    /* the holder may still have it locked (ferry-dm that got the lock fd):
     * the description goes; its lock goes with it */
    r = unlink(path) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int policy_owner_query(const char *rundir, const char *kind, const char *id,
                       struct ferry_policy_owner_info *info)
{
    char path[512];
    bool locked = false;
    int fd, r;

    memset(info, 0, sizeof(*info));
    if ((r = owner_path(rundir, kind, id, path, sizeof(path))) < 0)
        return r;
    snprintf(info->kind, sizeof(info->kind), "%s", kind);
    snprintf(info->id, sizeof(info->id), "%s", id);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    read_desc(fd, info);
    r = lock_held(fd, &locked);
    close(fd);
    if (r < 0)
        return r;
    fill_state(info, locked);
    return info->guest[0] && (info->locked || info->alive) ? 1 : 0;
}

static void unescape(const char *name, char *out, size_t len)
{
    size_t n = 0;

    for (const char *p = name; *p && n + 1 < len; p++) {
        if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = { p[1], p[2], 0 };
            out[n++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

int policy_owner_list(const char *rundir, const char *kind,
                      void (*cb)(void *opaque, const struct ferry_policy_owner_info *i),
                      void *opaque)
{
    char dir[512];
    struct dirent *e;
    DIR *d;
    int r, count = 0;

    if ((r = owner_path(rundir, kind, NULL, dir, sizeof(dir))) < 0)
        return r;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d))) {
        struct ferry_policy_owner_info i;
        char id[160];

        if (e->d_name[0] == '.')
            continue;
        unescape(e->d_name, id, sizeof(id));
        if (policy_owner_query(rundir, kind, id, &i) == 1) {
            count++;
            if (cb)
                cb(opaque, &i);
        }
    }
    closedir(d);
    return count;
}
