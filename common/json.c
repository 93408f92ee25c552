// SPDX-License-Identifier: GPL-2.0-or-later
/* The project's JSON helpers on jansson; see json.h. */
#include "common/json.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *ferry_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    return ferry_json_parse_flags(buf, len, 0, err, errlen);
}

json_t *ferry_json_parse_flags(const char *buf, size_t len, size_t flags, char *err,
                               size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | flags, &e);

    if (!v && err && errlen) {
        if (memchr(buf, '\n', len) && len && memchr(buf, '\n', len) != buf + len - 1)
            snprintf(err, errlen, "%s (line %d, column %d)", e.text, e.line, e.column);
        else
            snprintf(err, errlen, "%s (column %d)", e.text, e.column);
    }
    return v;
}

json_t *ferry_json_parse_object(const char *buf, size_t len, char *err, size_t errlen)
{
    json_t *v = ferry_json_parse(buf, len, err, errlen);

    if (v && !json_is_object(v)) {
        json_decref(v);
        if (err && errlen)
            snprintf(err, errlen, "not a JSON object");
        return NULL;
    }
    return v;
}

/* ---- text ---- */

struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->cap - o->len < n + 1) {
        size_t ncap = o->cap ? o->cap : 256;
        char *np;

        while (ncap - o->len < n + 1)
            ncap *= 2;
        np = realloc(o->p, ncap);
        if (!np) {
            o->oom = true;
            return;
        }
        o->p = np;
        o->cap = ncap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void spaces(struct out *o, unsigned n)
{
    static const char sp[] = "                                ";

    while (n) {
        unsigned k = n < sizeof(sp) - 1 ? n : (unsigned)sizeof(sp) - 1;
        put(o, sp, k);
        n -= k;
    }
}

static void put_string(struct out *o, const char *s, size_t n)
{
    size_t run = 0;

    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];

        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(u, sizeof(u), "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc)
            continue;
        put(o, s + run, i - run);
        puts_(o, esc);
        run = i + 1;
    }
    put(o, s + run, n - run);
    put(o, "\"", 1);
}

static void put_value(struct out *o, const json_t *v, bool pretty, unsigned level)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        bool first = true;

        put(o, "{", 1);
        json_object_foreach((json_t *)v, k, m) {
            if (!first)
                put(o, ",", 1);
            first = false;
            if (pretty) {
                put(o, "\n", 1);
                spaces(o, 2 * (level + 1));
            }
            put_string(o, k, strlen(k));
            puts_(o, pretty ? " : " : ":");
            put_value(o, m, pretty, level + 1);
        }
        if (pretty) {
            if (first) {
                /* an empty object is "{", the indent of its level, "}" */
                spaces(o, 2 * level);
            } else {
                put(o, "\n", 1);
                spaces(o, 2 * level);
            }
        }
        put(o, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);

        put(o, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                put(o, ",", 1);
            if (pretty) {
                put(o, "\n", 1);
                spaces(o, 2 * (level + 1));
            }
            put_value(o, json_array_get(v, i), pretty, level + 1);
        }
        if (pretty && n) {
            put(o, "\n", 1);
            spaces(o, 2 * level);
        }
        put(o, "]", 1);
        break;
    }
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        puts_(o, num);
        break;
    case JSON_REAL: {
        double d = json_real_value(v);

        snprintf(num, sizeof(num), "%.17g", d);
        if (!strpbrk(num, ".eEn"))      /* 2 -> 2.0: stays a real */
            strcat(num, ".0");
        puts_(o, num);
        break;
    }
    case JSON_TRUE:
        puts_(o, "true");
        break;
    case JSON_FALSE:
        puts_(o, "false");
        break;
    case JSON_NULL:
    default:
        puts_(o, "null");
        break;
    }
}

char *ferry_json_dumps(const json_t *v, bool pretty)
{
    struct out o = { 0 };

    if (!v)
        puts_(&o, "null");
    else
        put_value(&o, v, pretty, 0);
    if (o.oom || !o.p) {
        free(o.p);
        return NULL;
    }
    return o.p;
}

/* ---- values ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

json_t *ferry_json_str(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n, i;
    char *fixed, *w;
    json_t *v;

    if (!s)
        return json_null();
    n = strlen(s);
    for (i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            break;
        i += k;
    }
    if (i == n)
        return json_stringn(s, n);
    fixed = malloc(n * 3 + 1);
    if (!fixed)
        return NULL;
    w = fixed;
    for (i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(w, s + i, k);
            w += k;
            i += k;
        } else {
            memcpy(w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        }
    }
    v = json_stringn(fixed, (size_t)(w - fixed));
    free(fixed);
    return v;
}

json_t *ferry_json_object(const json_t *o, const char *key)
{
    json_t *m = json_object_get(o, key);

    return json_is_object(m) ? m : NULL;
}

json_t *ferry_json_array(const json_t *o, const char *key)
{
    json_t *m = json_object_get(o, key);

    return json_is_array(m) ? m : NULL;
}

const char *ferry_json_string(const json_t *o, const char *key, const char *def)
{
    json_t *m = json_object_get(o, key);

    return json_is_string(m) ? json_string_value(m) : def;
}

json_int_t ferry_json_int(const json_t *o, const char *key, json_int_t def)
{
    json_t *m = json_object_get(o, key);

    return json_is_integer(m) ? json_integer_value(m) : def;
}

void ferry_json_seed(void)
{
    json_object_seed(0);
}
