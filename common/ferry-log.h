/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging conventions shared by every Ferry library.
 *
 * Libraries never print: they call a log callback the caller supplied in the
 * library's ops struct.  Programs route that callback to glib's structured
 * logging (common/log-glib.c).  A log line reads
 *     <component>[<instance>] <level>: <event> key=value ...
 * in lower case with hex addresses, and anything a guest or a peer can
 * trigger repeatedly goes through a struct ferry_ratelimit.
 *
 * Header only, so that a library using it links nothing extra.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum ferry_log_level {
    FERRY_LOG_ERROR = 0,
    FERRY_LOG_WARNING,
    FERRY_LOG_INFO,
    FERRY_LOG_DEBUG,
};

/* msg is one complete line without a trailing newline. */
typedef void (*ferry_log_fn)(void *opaque, enum ferry_log_level level,
                             const char *msg);

#define FERRY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define FERRY_MUST_CHECK __attribute__((warn_unused_result))

static inline FERRY_PRINTF(4, 0) void
ferry_vlogf(ferry_log_fn fn, void *opaque, enum ferry_log_level level,
            const char *fmt, va_list ap)
{
    char buf[512];

    if (!fn)
        return;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    fn(opaque, level, buf);
}

static inline FERRY_PRINTF(4, 5) void
ferry_logf(ferry_log_fn fn, void *opaque, enum ferry_log_level level,
           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ferry_vlogf(fn, opaque, level, fmt, ap);
    va_end(ap);
}

/*
 * At most `burst` messages per `interval_ms`; the first message after a
 * suppressed stretch reports how many were dropped through *suppressed.
 * Not thread-safe: keep one per thread or guard it.
 */
struct ferry_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;
    uint64_t window_start_ms;
    uint32_t printed;
    uint32_t suppressed;
};

#define FERRY_RATELIMIT_INIT(ms, n) { .interval_ms = (ms), .burst = (n) }

static inline uint64_t ferry_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline bool ferry_ratelimit_ok(struct ferry_ratelimit *rl,
                                      uint32_t *suppressed)
{
    uint64_t now = ferry_monotonic_ms();

    if (now - rl->window_start_ms >= rl->interval_ms) {
        rl->window_start_ms = now;
        rl->printed = 0;
    }
    if (rl->printed >= rl->burst) {
        rl->suppressed++;
        return false;
    }
    rl->printed++;
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}

#endif /* FERRY_LOG_H */
