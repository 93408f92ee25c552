/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The project's JSON, on jansson (one JSON library in the tree): values are
 * json_t (json_decref them), built with jansson's json_object_set_new and
 * friends.  This adds what every user needs the same way:
 *
 *  - ferry_json_parse: one document, strictly (RFC 8259: no comments, no
 *    trailing garbage, no duplicate member names, no \u0000 in strings,
 *    integers within int64), with an error that says what and where;
 *  - ferry_json_dumps: the text Ferry has always put on the wire and on
 *    stdout, byte for byte: compact `{"a":1,"b":[]}` or pretty with two
 *    spaces and `"key" : value` (the format docs/json.md shows and golden
 *    files hold); members in insertion order, '/' and non-ASCII as they
 *    are, control characters and DEL as \u00XX;
 *  - ferry_json_str: a string value from C text that may be NULL (-> null)
 *    or not UTF-8 (USB descriptors, sysfs: invalid bytes become U+FFFD).
 *
 * Integers are json_int_t (long long): a uint64 above INT64_MAX (an
 * address) is written as its two's complement, negative, as before.
 */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Parse buf[0..len): any JSON value at the top.  NULL on error, with the
 * reason and its column (and line, for multi-line text) in err. */
json_t *ferry_json_parse(const char *buf, size_t len, char *err, size_t errlen);
/* The same with more of jansson's decoding flags (JSON_ALLOW_NUL: a line
 * whose \u0000 the caller refuses in words of its own). */
json_t *ferry_json_parse_flags(const char *buf, size_t len, size_t flags, char *err,
                               size_t errlen);
/* The same, refusing anything but an object ("not a JSON object"). */
json_t *ferry_json_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/* v as text (malloc'ed: free or g_free it); NULL only on ENOMEM. */
char *ferry_json_dumps(const json_t *v, bool pretty);

/* A string value for s: json_null() for NULL, invalid UTF-8 bytes replaced
 * by U+FFFD.  NULL only on ENOMEM (json_object_set_new then sets nothing). */
json_t *ferry_json_str(const char *s);

/* Typed lookups for peer input: NULL (or def) when o is not an object, the
 * member is absent or of another type. */
json_t *ferry_json_object(const json_t *o, const char *key);
json_t *ferry_json_array(const json_t *o, const char *key);
const char *ferry_json_string(const json_t *o, const char *key, const char *def);
json_int_t ferry_json_int(const json_t *o, const char *key, json_int_t def);

/* Seed jansson's hash function now (it reads getrandom or /dev/urandom on
 * first use otherwise): confined processes call it before seccomp. */
void ferry_json_seed(void);

#endif
