/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Route library log callbacks into glib's structured logging (programs only). */
#ifndef FERRY_LOG_GLIB_H
#define FERRY_LOG_GLIB_H

#include "common/ferry-log.h"

/*
 * Set up logging for a program: `component` becomes the log domain and the
 * line prefix ("ferry-dm"); verbosity 0 shows warnings and errors, 1 adds
 * info, 2 and more add debug.  Lines go to stderr.
 */
void ferry_log_init(const char *component, int verbosity);

/* A ferry_log_fn; opaque is a const char * instance name or NULL. */
void ferry_log_glib(void *opaque, enum ferry_log_level level, const char *msg);

/* printf-style logging from program code. */
FERRY_PRINTF(3, 4)
void ferry_log(enum ferry_log_level level, const char *instance,
               const char *fmt, ...);

/* One line with journal fields besides MESSAGE: kv holds key, value,
 * key, value, ..., NULL (keys in upper case: "FERRY_GUEST"), at most
 * FERRY_LOG_FIELDS_MAX pairs.  On stderr only the message shows; under
 * systemd the journal keeps the fields (journalctl FERRY_GUEST=vm1). */
#define FERRY_LOG_FIELDS_MAX 12
FERRY_PRINTF(4, 5)
void ferry_log_fields(enum ferry_log_level level, const char *instance,
                      const char *const *kv, const char *fmt, ...);

#endif
