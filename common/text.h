/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Untrusted text (config values, peer strings) made safe to print. */
#ifndef FERRY_TEXT_H
#define FERRY_TEXT_H

#include <stddef.h>

/*
 * A copy of s for an error message or a log line: printable characters of
 * valid UTF-8 as they are, everything else (control bytes, invalid UTF-8,
 * the backslash) as \n, \t, \\ or \xNN; cut after max bytes of s with
 * "..." appended.  g_free it.
 */
char *ferry_text_quote(const char *s, size_t max);

/* As ferry_text_quote for len bytes that may hold NULs. */
char *ferry_text_quote_len(const char *s, size_t len, size_t max);

#endif
