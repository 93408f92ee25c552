/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Route library log callbacks into glib's structured logging (programs only). */
#ifndef FERRY_LOG_GLIB_H
#define FERRY_LOG_GLIB_H

#include "common/ferry-log.h"

#include <glib.h>
#include <stddef.h>

/* At most this many caller fields per ferry_log_fields() line. */
#define FERRY_LOG_FIELDS_MAX 12

/*
 * Set up logging for a program: `component` becomes the log domain and the
 * line prefix ("ferry-dm"); verbosity 0 shows warnings and errors, 1 adds
 * info, 2 and more add debug.  Lines go to stderr, or with every structured
 * field to the journal when stderr is the journal (JOURNAL_STREAM); call it
 * before confining the process: it opens journald's socket.
 */
void ferry_log_init(const char *component, int verbosity);

/* The journal socket ferry_log_init() opened, or -1 (a confined program keeps it). */
int ferry_log_journal_fd(void);

/*
 * One log line with structured fields of the caller's beside MESSAGE,
 * PRIORITY, FERRY_COMPONENT and FERRY_INSTANCE: keys are upper case
 * (journald's rule), e.g. { "FERRY_GUEST", "a", -1 }.  msg is the event text.
 */
void ferry_log_fields(enum ferry_log_level level, const char *instance,
                      const GLogField *extra, size_t n_extra, const char *msg);

/* A ferry_log_fn; opaque is a const char * instance name or NULL. */
void ferry_log_glib(void *opaque, enum ferry_log_level level, const char *msg);

/* printf-style logging from program code. */
FERRY_PRINTF(3, 4)
void ferry_log(enum ferry_log_level level, const char *instance,
               const char *fmt, ...);

#endif
