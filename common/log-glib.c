// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Programs' logging: library callbacks and ferry_log() become GLib structured
 * log calls; one writer sends them on.
 *
 * When stderr is the journal (systemd's JOURNAL_STREAM names stderr's device
 * and inode, as under a unit), every field goes to journald over its native
 * socket, so a caller's fields (FERRY_COMPONENT, FERRY_INSTANCE, a policy
 * verdict's FERRY_GUEST ...) are kept: `journalctl FERRY_GUEST=a`.  The socket
 * is opened by ferry_log_init(), before a program confines itself; afterwards
 * logging needs only write().  Otherwise, and whenever the journal refuses a
 * message, the MESSAGE line goes to stderr in one write.
 */
#include "common/log-glib.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define FERRY_LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"
#define FERRY_LOG_DATAGRAM_MAX (16 * 1024)

static const char *log_component = "ferry";
static int log_verbosity;
static int journal_fd = -1;

static const char *level_name(enum ferry_log_level level)
{
    switch (level) {
    case FERRY_LOG_ERROR: return "error";
    case FERRY_LOG_WARNING: return "warning";
    case FERRY_LOG_INFO: return "info";
    default: return "debug";
    }
}

/* systemd's rule: stderr is the journal iff JOURNAL_STREAM is its "dev:ino". */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int journal_open(void)
{
    const char *path = getenv("FERRY_LOG_JOURNAL_SOCKET");   /* tests */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (!path || !*path)
        path = FERRY_LOG_JOURNAL_SOCKET;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * journald's native protocol: "KEY=value\n" per field, or for a value with a
 * newline "KEY\n", its length as 64-bit little endian, the bytes, "\n".
 */
static bool journal_append(GByteArray *b, const GLogField *f)
{
    gsize len = f->length < 0 ? strlen(f->value) : (gsize)f->length;
    size_t klen = strlen(f->key);

    if (!klen || klen > 64 || f->key[0] == '_')
        return true;                    /* journald would drop it; so do we */
    if (b->len + klen + len + 10 > FERRY_LOG_DATAGRAM_MAX)
        return false;
    g_byte_array_append(b, (const guint8 *)f->key, (guint)klen);
    if (memchr(f->value, '\n', len)) {
        uint8_t le[8];

        g_byte_array_append(b, (const guint8 *)"\n", 1);
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)((uint64_t)len >> (8 * i));
        g_byte_array_append(b, le, 8);
    } else {
        g_byte_array_append(b, (const guint8 *)"=", 1);
    }
    g_byte_array_append(b, f->value, (guint)len);
    g_byte_array_append(b, (const guint8 *)"\n", 1);
    return true;
}

static bool journal_send(const GLogField *fields, gsize n_fields)
{
    GByteArray *b = g_byte_array_sized_new(512);
    bool ok = true;
    char ident[80];
    GLogField idf = { "SYSLOG_IDENTIFIER", ident, -1 };

    snprintf(ident, sizeof(ident), "%s", log_component);
    ok = journal_append(b, &idf);
    for (gsize i = 0; ok && i < n_fields; i++)
        ok = journal_append(b, &fields[i]);
    if (ok)
        ok = write(journal_fd, b->data, b->len) == (ssize_t)b->len;
    g_byte_array_unref(b);
    return ok;
}

static GLogWriterOutput writer(GLogLevelFlags flags, const GLogField *fields,
                               gsize n_fields, gpointer user_data)
{
    const char *msg = NULL;

    (void)flags;
    (void)user_data;
    for (gsize i = 0; i < n_fields; i++)
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            msg = fields[i].value;
    if (!msg)
        return G_LOG_WRITER_UNHANDLED;
    if (journal_fd >= 0 && journal_send(fields, n_fields))
        return G_LOG_WRITER_HANDLED;
    /* One write per line so that lines from several processes do not mix. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    if (n > (int)sizeof(line) - 1) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return G_LOG_WRITER_UNHANDLED;
    return G_LOG_WRITER_HANDLED;
}

void ferry_log_init(const char *component, int verbosity)
{
    log_component = component;
    log_verbosity = verbosity;
    if (journal_fd < 0 && stderr_is_journal())
        journal_fd = journal_open();
    g_log_set_writer_func(writer, NULL, NULL);
}

int ferry_log_journal_fd(void)
{
    return journal_fd;
}

static const GLogLevelFlags level_map[] = {
    [FERRY_LOG_ERROR] = G_LOG_LEVEL_CRITICAL,
    [FERRY_LOG_WARNING] = G_LOG_LEVEL_WARNING,
    [FERRY_LOG_INFO] = G_LOG_LEVEL_INFO,
    [FERRY_LOG_DEBUG] = G_LOG_LEVEL_DEBUG,
};

void ferry_log_fields(enum ferry_log_level level, const char *instance,
                      const GLogField *extra, size_t n_extra, const char *msg)
{
    GLogField f[FERRY_LOG_FIELDS_MAX + 4];
    g_autofree char *line = NULL;
    size_t n = 0;

    if ((int)level > log_verbosity + 1)
        return;
    if (level > FERRY_LOG_DEBUG)
        level = FERRY_LOG_DEBUG;
    if (instance)
        line = g_strdup_printf("%s[%s] %s: %s", log_component, instance, level_name(level), msg);
    else
        line = g_strdup_printf("%s %s: %s", log_component, level_name(level), msg);
    static const char *const prio[] = { "3", "4", "6", "7" };   /* syslog levels */

    f[n++] = (GLogField){ "MESSAGE", line, -1 };
    f[n++] = (GLogField){ "PRIORITY", prio[level], -1 };
    f[n++] = (GLogField){ "GLIB_DOMAIN", log_component, -1 };
    f[n++] = (GLogField){ "FERRY_COMPONENT", log_component, -1 };
    if (instance)
        f[n++] = (GLogField){ "FERRY_INSTANCE", instance, -1 };
    for (size_t i = 0; i < n_extra && i < FERRY_LOG_FIELDS_MAX; i++)
        f[n++] = extra[i];
    g_log_structured_array(level_map[level], f, n);
}

void ferry_log_glib(void *opaque, enum ferry_log_level level, const char *msg)
{
    ferry_log_fields(level, opaque, NULL, 0, msg);
}

void ferry_log(enum ferry_log_level level, const char *instance,
               const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ferry_log_glib((void *)instance, level, buf);
}
