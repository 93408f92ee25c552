// SPDX-License-Identifier: GPL-2.0-or-later
#include "common/log-glib.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_component = "ferry";
static int log_verbosity;

static const char *level_name(enum ferry_log_level level)
{
    switch (level) {
    case FERRY_LOG_ERROR: return "error";
    case FERRY_LOG_WARNING: return "warning";
    case FERRY_LOG_INFO: return "info";
    default: return "debug";
    }
}

static GLogWriterOutput writer(GLogLevelFlags flags, const GLogField *fields,
                               gsize n_fields, gpointer user_data)
{
    const char *msg = NULL;

    for (gsize i = 0; i < n_fields; i++)
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            msg = fields[i].value;
    if (!msg)
        return G_LOG_WRITER_UNHANDLED;
    /* Under systemd, stderr is the journal's stream: speak its native
     * protocol instead, which keeps every field (FERRY_GUEST=, ...). */
    if (g_log_writer_is_journald(STDERR_FILENO) &&
        g_log_writer_journald(flags, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    /* One write per line so that lines from several processes do not mix. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    if (n > (int)sizeof(line) - 1)
        n = sizeof(line) - 1;
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return G_LOG_WRITER_UNHANDLED;
    return G_LOG_WRITER_HANDLED;
}

void ferry_log_init(const char *component, int verbosity)
{
    log_component = component;
    log_verbosity = verbosity;
    g_log_set_writer_func(writer, NULL, NULL);
}

void ferry_log_glib(void *opaque, enum ferry_log_level level, const char *msg)
{
    static const GLogLevelFlags map[] = {
        [FERRY_LOG_ERROR] = G_LOG_LEVEL_CRITICAL,
        [FERRY_LOG_WARNING] = G_LOG_LEVEL_WARNING,
        [FERRY_LOG_INFO] = G_LOG_LEVEL_INFO,
        [FERRY_LOG_DEBUG] = G_LOG_LEVEL_DEBUG,
    };
    const char *instance = opaque;

    if ((int)level > log_verbosity + 1)
        return;
    if (level > FERRY_LOG_DEBUG)
        level = FERRY_LOG_DEBUG;
    if (instance)
        g_log_structured(log_component, map[level], "MESSAGE", "%s[%s] %s: %s",
                         log_component, instance, level_name(level), msg);
    else
        g_log_structured(log_component, map[level], "MESSAGE", "%s %s: %s",
                         log_component, level_name(level), msg);
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

void ferry_log_fields(enum ferry_log_level level, const char *instance,
                      const char *const *kv, const char *fmt, ...)
{
    static const GLogLevelFlags map[] = {
        [FERRY_LOG_ERROR] = G_LOG_LEVEL_CRITICAL,
        [FERRY_LOG_WARNING] = G_LOG_LEVEL_WARNING,
        [FERRY_LOG_INFO] = G_LOG_LEVEL_INFO,
        [FERRY_LOG_DEBUG] = G_LOG_LEVEL_DEBUG,
    };
    GLogField fields[2 + FERRY_LOG_FIELDS_MAX];
    char buf[512], line[700];
    gsize n = 0;
    va_list ap;

    if ((int)level > log_verbosity + 1)
        return;
    if (level > FERRY_LOG_DEBUG)
        level = FERRY_LOG_DEBUG;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (instance)
        snprintf(line, sizeof(line), "%s[%s] %s: %s", log_component, instance, level_name(level),
                 buf);
    else
        snprintf(line, sizeof(line), "%s %s: %s", log_component, level_name(level), buf);
    fields[n++] = (GLogField){ "MESSAGE", line, -1 };
    fields[n++] = (GLogField){ "FERRY_COMPONENT", log_component, -1 };
    for (size_t i = 0; kv && kv[i] && kv[i + 1] && n < G_N_ELEMENTS(fields); i += 2)
        fields[n++] = (GLogField){ kv[i], kv[i + 1], -1 };
    g_log_structured_array(map[level], fields, n);
}
