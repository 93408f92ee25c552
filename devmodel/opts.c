// SPDX-License-Identifier: GPL-2.0-or-later
/* Device options: "key=value,key=value" as on QEMU's -device (",," is a comma). */
#include "devmodel/dm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ferry_dm_opts {
    size_t n;
    char *key[FERRY_DM_OPTS_MAX];
    char *value[FERRY_DM_OPTS_MAX];
};

struct ferry_dm_opts *dm_opts_new(void)
{
    return calloc(1, sizeof(struct ferry_dm_opts));
}

void dm_opts_free(struct ferry_dm_opts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->key[i]);
        free(o->value[i]);
    }
    free(o);
}

int dm_opts_set(struct ferry_dm_opts *o, const char *key, const char *value)
{
    char *k, *v;

    if (!*key || strlen(key) > FERRY_DM_OPT_LEN_MAX || strlen(value) > FERRY_DM_OPT_LEN_MAX)
        return -EINVAL;
    for (size_t i = 0; i < o->n; i++) {
        if (strcmp(o->key[i], key) == 0) {
            v = strdup(value);
            if (!v)
                return -ENOMEM;
            free(o->value[i]);
            o->value[i] = v;
            return 0;
        }
    }
    if (o->n >= FERRY_DM_OPTS_MAX)
        return -E2BIG;
    k = strdup(key);
    v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    o->key[o->n] = k;
    o->value[o->n] = v;
    o->n++;
    return 0;
}

int dm_opts_parse(const char *s, struct ferry_dm_opts **out)
{
    struct ferry_dm_opts *o = dm_opts_new();
    GString *tok = g_string_new(NULL);
    int rc = 0;

    if (!o) {
        g_string_free(tok, TRUE);
        return -ENOMEM;
    }
    for (const char *p = s;; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(tok, ',');
            p++;
            continue;
        }
        if (*p && *p != ',') {
            g_string_append_c(tok, *p);
            continue;
        }
        if (tok->len) {
            char *eq = strchr(tok->str, '=');

            if (eq) {
                *eq = 0;
                rc = dm_opts_set(o, tok->str, eq + 1);
            } else {
                rc = dm_opts_set(o, tok->str, "on");
            }
            if (rc < 0)
                break;
            g_string_truncate(tok, 0);
        }
        if (!*p)
            break;
    }
    g_string_free(tok, TRUE);
    if (rc < 0) {
        dm_opts_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

const char *dm_opts_get(const struct ferry_dm_opts *o, const char *key)
{
    if (!o)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->value[i];
    return NULL;
}

int dm_opts_get_u64(const struct ferry_dm_opts *o, const char *key, uint64_t def,
                          uint64_t max, uint64_t *out)
{
    const char *v = dm_opts_get(o, key);
    guint64 n;

    if (!v) {
        *out = def;
        return 0;
    }
    if (!g_ascii_string_to_unsigned(v, 10, 0, max, &n, NULL)) {
        if (!(v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) ||
            !g_ascii_string_to_unsigned(v + 2, 16, 0, max, &n, NULL))
            return -EINVAL;
    }
    *out = n;
    return 0;
}

size_t dm_opts_count(const struct ferry_dm_opts *o)
{
    return o ? o->n : 0;
}

const char *dm_opts_key(const struct ferry_dm_opts *o, size_t i)
{
    return o && i < o->n ? o->key[i] : NULL;
}

int dm_opts_check(const struct ferry_dm_opts *o, const char *const *known,
                        const char **bad_key)
{
    for (size_t i = 0; o && i < o->n; i++) {
        bool ok = false;

        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, o->key[i]) == 0)
                ok = true;
        if (!ok) {
            if (bad_key)
                *bad_key = o->key[i];
            return -EINVAL;
        }
    }
    return 0;
}
