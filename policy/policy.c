// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The policy file (GKeyFile with our own line index, so that every rule and
 * every error names its file:line), rule matching and verdicts.  Rules
 * apply in file order, first match wins; the host protection (host.c) is
 * only given away by a matching allow rule with force=true.  The structs
 * are in policy-internal.h; what `ferry policy show` prints, and a verdict
 * as JSON, in show.c.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "policy/policy-internal.h"
#include "policy/policy.h"
#include "usb/ferry-usb.h"

#define PLOG(p, lvl, ...) ferry_logf((p)->ops.log, (p)->ops.log_opaque, (lvl), __VA_ARGS__)

static void rule_free(gpointer data)
{
    struct policy_rule *r = data;

    g_free(r->name);
    g_strfreev(r->guests);
    usb_policy_free(r->usb);
    g_free(r->usb_text);
    g_strfreev(r->pci);
    g_strfreev(r->pci_id);
    g_strfreev(r->pci_class);
    g_free(r->groups);
    g_free(r);
}

void policy_free(struct ferry_policy *p)
{
    if (!p)
        return;
    if (p->rules)
        g_ptr_array_free(p->rules, TRUE);
    if (p->groups)
        g_hash_table_destroy(p->groups);
    policy_host_clear(&p->host);
    g_free(p->file);
    g_free(p->sysfs);
    g_free(p->proc);
    g_free(p);
}

const char *policy_file(const struct ferry_policy *p)
{
    return p->file;
}

/* ---- the line index ------------------------------------------------------ */

struct lines {
    GHashTable *group;          /* group -> line */
    GHashTable *key;            /* "group\nkey" -> line */
};

static int line_of(const struct lines *li, const char *group, const char *key)
{
    gpointer v;

    if (key) {
        char *k = g_strdup_printf("%s\n%s", group, key);
        v = g_hash_table_lookup(li->key, k);
        g_free(k);
        if (v)
            return GPOINTER_TO_INT(v);
    }
    v = g_hash_table_lookup(li->group, group);
    return v ? GPOINTER_TO_INT(v) : 0;
}

/* What GKeyFile would accept, checked line by line first so that an error
 * names its line; duplicate groups and keys (GKeyFile merges them silently)
 * are errors. */
static int index_lines(const char *file, const char *text, struct lines *li, char *err,
                       size_t errlen)
{
    char **lines = g_strsplit(text, "\n", -1);
    char *group = NULL;
    int r = 0, n = 0;

    for (char **l = lines; *l && r == 0; l++) {
        char *s = g_strstrip(g_strdup(*l));

        n++;
        if (!*s || *s == '#') {
            g_free(s);
            continue;
        }
        if (*s == '[') {
            size_t len = strlen(s);
            if (len < 3 || s[len - 1] != ']' || strpbrk(s + 1, "[") ||
                memchr(s + 1, ']', len - 2)) {
                snprintf(err, errlen, "%s:%d: '%s' is not a group header ([name])", file, n, s);
                r = -EINVAL;
            } else {
                g_free(group);
                group = g_strndup(s + 1, len - 2);
                if (g_hash_table_contains(li->group, group)) {
                    snprintf(err, errlen, "%s:%d: [%s] again (first at line %d): one group per "
                             "rule name", file, n, group,
                             GPOINTER_TO_INT(g_hash_table_lookup(li->group, group)));
                    r = -EINVAL;
                } else {
                    g_hash_table_insert(li->group, g_strdup(group), GINT_TO_POINTER(n));
                }
            }
        } else {
            char *eq = strchr(s, '=');
            if (!eq) {
                snprintf(err, errlen, "%s:%d: '%s' is not 'key = value', a [group] or a "
                         "# comment", file, n, s);
                r = -EINVAL;
            } else if (!group) {
                snprintf(err, errlen, "%s:%d: key before the first [group]", file, n);
                r = -EINVAL;
            } else {
                char *key = g_strstrip(g_strndup(s, (gsize)(eq - s)));
                char *k = g_strdup_printf("%s\n%s", group, key);
                if (!*key) {
                    snprintf(err, errlen, "%s:%d: a value without a key", file, n);
                    r = -EINVAL;
                } else if (g_hash_table_contains(li->key, k)) {
                    snprintf(err, errlen, "%s:%d: '%s' again in [%s] (first at line %d)", file,
                             n, key, group, GPOINTER_TO_INT(g_hash_table_lookup(li->key, k)));
                    r = -EINVAL;
                } else {
                    g_hash_table_insert(li->key, k, GINT_TO_POINTER(n));
                    k = NULL;
                }
                g_free(k);
                g_free(key);
            }
        }
        g_free(s);
    }
    g_free(group);
    g_strfreev(lines);
    return r;
}

/* ---- parsing ----------------------------------------------------------- */

struct parse {
    struct ferry_policy *p;
    GKeyFile *kf;
    struct lines li;
    const char *file;
    char *err;
    size_t errlen;
};

static FERRY_PRINTF(4, 5) int perr(struct parse *ps, const char *group, const char *key,
                                   const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s:%d: [%s]%s%s: %s", ps->file,
             line_of(&ps->li, group, key), group, key ? " " : "", key ? key : "", msg);
    return -EINVAL;
}

/* A list value, items stripped, blank ones dropped; NULL if the key is absent. */
static char **get_list(struct parse *ps, const char *group, const char *key)
{
    char *v = g_key_file_get_value(ps->kf, group, key, NULL);
    char **items, **out;
    GPtrArray *a;

    if (!v)
        return NULL;
    items = g_strsplit_set(v, ";,", -1);
    a = g_ptr_array_new();
    for (char **i = items; *i; i++) {
        char *s = g_strstrip(g_strdup(*i));
        if (*s)
            g_ptr_array_add(a, s);
        else
            g_free(s);
    }
    g_ptr_array_add(a, NULL);
    out = (char **)g_ptr_array_free(a, FALSE);
    g_strfreev(items);
    g_free(v);
    return out;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) >= FERRY_POLICY_GUEST_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!g_ascii_isalnum(*c) && !strchr("-_.*?[]!@:", *c))
            return false;
    return true;
}

static int parse_policy_group(struct parse *ps)
{
    gchar **keys = g_key_file_get_keys(ps->kf, "policy", NULL, NULL);
    int r = 0;

    for (gchar **k = keys; k && *k && r == 0; k++) {
        if (!strcmp(*k, "default")) {
            char *v = g_strstrip(g_key_file_get_value(ps->kf, "policy", "default", NULL));
            if (!strcmp(v, "allow") || !strcmp(v, "deny")) {
                ps->p->default_allow = !strcmp(v, "allow");
                ps->p->default_line = line_of(&ps->li, "policy", "default");
            } else {
                r = perr(ps, "policy", "default", "'%s': expected allow or deny", v);
            }
            g_free(v);
        } else {
            r = perr(ps, "policy", *k, "unknown key (known: default)");
        }
    }
    g_strfreev(keys);
    return r;
}

static int parse_groups(struct parse *ps)
{
    gchar **keys = g_key_file_get_keys(ps->kf, "groups", NULL, NULL);
    int r = 0;

    for (gchar **k = keys; k && *k && r == 0; k++) {
        char **members = get_list(ps, "groups", *k);

        if (!name_ok(*k) || strpbrk(*k, "*?[]!@"))
            r = perr(ps, "groups", *k, "a group name is letters, digits, '-', '_' and '.'");
        for (char **m = members; r == 0 && m && *m; m++)
            if (!name_ok(*m) || **m == '@')
                r = perr(ps, "groups", *k, "'%s' is not a guest name or wildcard (groups do "
                         "not nest)", *m);
        if (r == 0 && (!members || !members[0]))
            r = perr(ps, "groups", *k, "an empty group");
        if (r == 0)
            g_hash_table_insert(ps->p->groups, g_strdup(*k), members);
        else
            g_strfreev(members);
    }
    g_strfreev(keys);
    return r;
}

static int parse_bool(struct parse *ps, const char *group, const char *key, bool *out)
{
    char *v = g_key_file_get_value(ps->kf, group, key, NULL);
    int r = 0;

    if (!v)
        return 0;
    g_strstrip(v);
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        *out = false;
    else
        r = perr(ps, group, key, "'%s': expected true or false", v);
    g_free(v);
    return r;
}

static bool hex_ok(const char *s, size_t min, size_t max, bool glob)
{
    size_t n = strlen(s);

    if (glob && !strcmp(s, "*"))
        return true;
    if (n < min || n > max)
        return false;
    for (const char *c = s; *c; c++)
        if (!g_ascii_isxdigit(*c))
            return false;
    return true;
}

static int parse_pci_keys(struct parse *ps, const char *g, struct policy_rule *r)
{
    char **v;

    if ((v = get_list(ps, g, "pci"))) {
        for (char **i = v; *i; i++) {
            char *s = g_ascii_strdown(*i, -1);
            unsigned d, b, dv;
            char fn[4];

            /* bb:dd.f means domain 0; '*' in the function for every function */
            if (strlen(s) == 7) {
                char *full = g_strconcat("0000:", s, NULL);
                g_free(s);
                s = full;
            }
            if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' ||
                sscanf(s, "%4x:%2x:%2x.%1s", &d, &b, &dv, fn) != 4 ||
                !(g_ascii_isdigit(fn[0]) && fn[0] < '8') == !(fn[0] == '*')) {
                int e = perr(ps, g, "pci", "'%s': expected a PCI address DDDD:BB:DD.F (or "
                             "BB:DD.F; F may be *)", *i);
                g_free(s);
                g_strfreev(v);
                return e;
            }
            g_free(*i);
            *i = s;
        }
        r->pci = v;
    }
    if ((v = get_list(ps, g, "pci-id"))) {
        for (char **i = v; *i; i++) {
            char **half = g_strsplit(*i, ":", -1);
            bool ok = g_strv_length(half) == 2 && hex_ok(half[0], 4, 4, true) &&
                      hex_ok(half[1], 4, 4, true);
            g_strfreev(half);
            if (!ok) {
                int e = perr(ps, g, "pci-id", "'%s': expected VENDOR:DEVICE in hex (8086:10d3; "
                             "either may be *)", *i);
                g_strfreev(v);
                return e;
            }
            char *lower = g_ascii_strdown(*i, -1);
            g_free(*i);
            *i = lower;
        }
        r->pci_id = v;
    }
    if ((v = get_list(ps, g, "pci-class"))) {
        for (char **i = v; *i; i++) {
            const char *h = g_str_has_prefix(*i, "0x") || g_str_has_prefix(*i, "0X") ? *i + 2
                                                                                      : *i;
            size_t n = strlen(h);
            if (!hex_ok(h, 2, 6, false) || n % 2) {
                int e = perr(ps, g, "pci-class", "'%s': expected a class 0xCC, 0xCCSS or "
                             "0xCCSSPP (0x0200: Ethernet)", *i);
                g_strfreev(v);
                return e;
            }
            char *lower = g_ascii_strdown(h, -1);
            g_free(*i);
            *i = lower;
        }
        r->pci_class = v;
    }
    if ((v = get_list(ps, g, "iommu-group"))) {
        r->n_groups = g_strv_length(v);
        r->groups = g_new0(int, r->n_groups ? r->n_groups : 1);
        for (gsize i = 0; i < r->n_groups; i++) {
            char *end;
            long n = strtol(v[i], &end, 10);
            if (*end || end == v[i] || n < 0 || n > 1000000) {
                int e = perr(ps, g, "iommu-group", "'%s': expected a group number", v[i]);
                g_strfreev(v);
                return e;
            }
            r->groups[i] = (int)n;
        }
        g_strfreev(v);
    }
    return 0;
}

static int parse_rule(struct parse *ps, const char *g)
{
    static const char *const known[] = { "guests", "usb", "pci", "pci-id", "pci-class",
                                         "iommu-group", "action", "force", "comment", NULL };
    struct policy_rule *r = g_new0(struct policy_rule, 1);
    gchar **keys = g_key_file_get_keys(ps->kf, g, NULL, NULL);
    char *action = NULL;
    bool has_pci;
    int e = 0;

    r->name = g_strdup(g + strlen("rule "));
    g_strstrip(r->name);
    r->line = line_of(&ps->li, g, NULL);
    for (gchar **k = keys; k && *k && e == 0; k++)
        if (!g_strv_contains(known, *k))
            e = perr(ps, g, *k, "unknown key (known: guests, usb, pci, pci-id, pci-class, "
                     "iommu-group, action, force, comment)");
    g_strfreev(keys);
    if (e)
        goto fail;
    if (!*r->name) {
        e = perr(ps, g, NULL, "a rule needs a name: [rule NAME]");
        goto fail;
    }
    r->guests = get_list(ps, g, "guests");
    if (!r->guests || !r->guests[0]) {
        e = perr(ps, g, NULL, "no guests= (which guests the rule is for: names, wildcards, "
                 "@group, * for all)");
        goto fail;
    }
    for (char **x = r->guests; *x; x++) {
        if (!name_ok(*x) || (**x == '@' && !g_hash_table_contains(ps->p->groups, *x + 1))) {
            e = perr(ps, g, "guests", **x == '@' ? "'%s': no such group in [groups]" :
                     "'%s' is not a guest name, wildcard or @group", *x);
            goto fail;
        }
    }
    if ((e = parse_pci_keys(ps, g, r)) < 0 || (e = parse_bool(ps, g, "force", &r->force)) < 0)
        goto fail;
    has_pci = r->pci || r->pci_id || r->pci_class || r->groups;
    r->usb_text = g_key_file_get_value(ps->kf, g, "usb", NULL);
    if (r->usb_text) {
        char uerr[FERRY_USB_ERR_MAX];

        g_strstrip(r->usb_text);
        if (has_pci) {
            e = perr(ps, g, "usb", "a rule is for USB or for PCI devices, not both");
            goto fail;
        }
        if (!*r->usb_text || usb_policy_new(r->usb_text, &r->usb, uerr, sizeof(uerr)) < 0) {
            e = perr(ps, g, "usb", "%s", *r->usb_text ? uerr : "empty filter");
            goto fail;
        }
        r->kind = POLICY_RULE_USB;
    } else if (has_pci) {
        r->kind = POLICY_RULE_PCI;
    } else {
        e = perr(ps, g, NULL, "matches no device: give usb= (usbredir filter) or pci=, pci-id=, "
                 "pci-class=, iommu-group=");
        goto fail;
    }
    action = g_key_file_get_value(ps->kf, g, "action", NULL);
    if (action) {
        g_strstrip(action);
        if (r->kind == POLICY_RULE_USB) {
            e = perr(ps, g, "action", "a usb= filter carries allow or deny in its last field "
                     "(class,vendor,product,version,1 allows; 0 denies)");
            goto fail;
        }
        if (strcmp(action, "allow") && strcmp(action, "deny")) {
            e = perr(ps, g, "action", "'%s': expected allow or deny", action);
            goto fail;
        }
        r->has_action = true;
        r->allow = !strcmp(action, "allow");
    } else if (r->kind == POLICY_RULE_PCI) {
        e = perr(ps, g, NULL, "no action= (allow or deny)");
        goto fail;
    }
    if (r->force && r->kind == POLICY_RULE_PCI && !r->allow) {
        e = perr(ps, g, "force", "force=true only makes sense on an allow rule");
        goto fail;
    }
    if (ps->p->rules->len >= FERRY_POLICY_RULES_MAX) {
        e = perr(ps, g, NULL, "more than %d rules", FERRY_POLICY_RULES_MAX);
        goto fail;
    }
    g_free(action);
    g_ptr_array_add(ps->p->rules, r);
    return 0;
fail:
    g_free(action);
    rule_free(r);
    return e;
}

static int parse_file(struct ferry_policy *p, const char *file, const char *text, char *err,
                      size_t errlen)
{
    struct parse ps = { .p = p, .file = file, .err = err, .errlen = errlen };
    GError *ge = NULL;
    gchar **groups = NULL;
    int r;

    ps.li.group = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ps.li.key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ps.kf = g_key_file_new();
    r = index_lines(file, text, &ps.li, err, errlen);
    if (r == 0 && !g_key_file_load_from_data(ps.kf, text, (gsize)-1, G_KEY_FILE_NONE, &ge)) {
        snprintf(err, errlen, "%s: %s", file, ge->message);
        g_error_free(ge);
        r = -EINVAL;
    }
    if (r == 0 && g_key_file_has_group(ps.kf, "policy"))
        r = parse_policy_group(&ps);
    if (r == 0 && g_key_file_has_group(ps.kf, "groups"))
        r = parse_groups(&ps);
    if (r == 0)
        groups = g_key_file_get_groups(ps.kf, NULL);
    for (gchar **g = groups; r == 0 && g && *g; g++) {
        if (!strcmp(*g, "policy") || !strcmp(*g, "groups"))
            continue;
        if (g_str_has_prefix(*g, "rule ") || !strcmp(*g, "rule"))
            r = parse_rule(&ps, *g);
        else {
            snprintf(err, errlen, "%s:%d: [%s]: unknown group (known: [policy], [groups], "
                     "[rule NAME])", file, line_of(&ps.li, *g, NULL), *g);
            r = -EINVAL;
        }
    }
    g_strfreev(groups);
    g_key_file_free(ps.kf);
    g_hash_table_destroy(ps.li.group);
    g_hash_table_destroy(ps.li.key);
    return r;
}

static const char *root_of(const char *given, const char *env, const char *def)
{
    const char *e = getenv(env);

    if (given && *given)
        return given;
    return e && *e ? e : def;
}

int policy_load(const struct ferry_policy_config *cfg, const struct ferry_policy_ops *ops,
                struct ferry_policy **out, char *err, size_t errlen)
{
    static const struct ferry_policy_config none;
    struct ferry_policy *p = g_new0(struct ferry_policy, 1);
    const char *file;
    char *text = NULL;
    GError *ge = NULL;
    int r = 0;

    *out = NULL;
    cfg = cfg ? cfg : &none;
    if (ops)
        p->ops = *ops;
    p->default_allow = true;
    p->rules = g_ptr_array_new_with_free_func(rule_free);
    p->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_strfreev);
    p->sysfs = g_strdup(root_of(cfg->sysfs_root, "FERRY_SYSFS_ROOT", "/sys"));
    p->proc = g_strdup(root_of(cfg->proc_root, "FERRY_PROC_ROOT", "/proc"));
    policy_host_init(&p->host);
    file = root_of(cfg->file, "FERRY_POLICY", FERRY_POLICY_FILE_DEFAULT);
    if (!g_file_get_contents(file, &text, NULL, &ge)) {
        bool missing = g_error_matches(ge, G_FILE_ERROR, G_FILE_ERROR_NOENT);

        if (!missing) {
            snprintf(err, errlen, "policy %s: %s", file, ge->message);
            r = -EIO;
        }
        g_error_free(ge);
        if (r < 0)
            goto fail;
        /* the built-in default: every guest, every unprotected device */
    } else {
        p->file = g_strdup(file);
        r = parse_file(p, file, text, err, errlen);
        g_free(text);
        if (r < 0)
            goto fail;
    }
    if (!cfg->no_discovery) {
        policy_host_discover(&p->host, p->sysfs, p->proc);
        p->discovered = true;
        for (guint i = 0; i < p->host.notes->len; i++)
            PLOG(p, FERRY_LOG_WARNING, "policy: %s", (char *)p->host.notes->pdata[i]);
    }
    *out = p;
    return 0;
fail:
    policy_free(p);
    return r;
}

/* ---- matching ------------------------------------------------------------ */

static bool guest_matches(const struct ferry_policy *p, char **patterns, const char *guest)
{
    for (char **x = patterns; *x; x++) {
        if (**x == '@') {
            char **members = g_hash_table_lookup(p->groups, *x + 1);
            for (char **m = members; m && *m; m++)
                if (fnmatch(*m, guest, 0) == 0)
                    return true;
        } else if (fnmatch(*x, guest, 0) == 0) {
            return true;
        }
    }
    return false;
}

void policy_rule_where(const struct ferry_policy *p, const struct policy_rule *r, char *buf,
                       size_t len)
{
    snprintf(buf, len, "rule '%s' (%s:%d)", r->name, p->file, r->line);
}

void policy_default_where(const struct ferry_policy *p, char *buf, size_t len)
{
    if (p->default_line)
        snprintf(buf, len, "default %s (%s:%d)", p->default_allow ? "allow" : "deny", p->file,
                 p->default_line);
    else if (p->file)
        snprintf(buf, len, "default allow (%s: no rule matched, no [policy] default)", p->file);
    else
        snprintf(buf, len, "built-in default: allow (no policy file %s)",
                 FERRY_POLICY_FILE_DEFAULT);
}

const char *policy_protection(const struct ferry_policy *p, const char *kind, const char *id)
{
    const char *why = NULL;

    if (!strcmp(kind, "pci"))
        why = g_hash_table_lookup(p->host.pci, id);
    else if (!strcmp(kind, "usb") && id && *id)
        why = g_hash_table_lookup(p->host.usb, id);
    return why ? why : "";
}

/* snprintf whose truncation is fine (messages, bounded fields). */
static FERRY_PRINTF(3, 4) void fmt_into(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

/* The verdict from a matched rule (or none: r NULL) and the protection. */
static int decide(struct ferry_policy *p, const struct policy_rule *r, int matched_allow,
                  struct ferry_policy_verdict *v)
{
    char where[200];

    if (r)
        policy_rule_where(p, r, where, sizeof(where));
    else
        policy_default_where(p, where, sizeof(where));
    if (r && matched_allow && v->protection[0] && r->force) {
        v->allowed = true;
        v->forced = true;
        fmt_into(v->rule, sizeof(v->rule), "%s", where);
        fmt_into(v->reason, sizeof(v->reason), "allowed by %s, forced past the host "
                 "protection: %s", where, v->protection);
    } else if (v->protection[0] && (!r || matched_allow)) {
        v->allowed = false;
        if (r) {
            fmt_into(v->rule, sizeof(v->rule), "host protection (%s allows it without "
                     "force=true)", where);
            fmt_into(v->reason, sizeof(v->reason), "refused: host protection: %s; %s would "
                     "allow it but has no force=true", v->protection, where);
        } else {
            fmt_into(v->rule, sizeof(v->rule), "host protection");
            fmt_into(v->reason, sizeof(v->reason), "refused: host protection: %s; only an "
                     "allow rule with force=true gives it away", v->protection);
        }
    } else {
        v->allowed = r ? matched_allow : p->default_allow;
        fmt_into(v->rule, sizeof(v->rule), "%s", where);
        fmt_into(v->reason, sizeof(v->reason), "%s by %s", v->allowed ? "allowed" : "refused",
                 where);
    }
    if (p->ops.decided)
        p->ops.decided(p->ops.decided_opaque, v);
    return v->allowed ? 0 : -EPERM;
}

static void verdict_init(struct ferry_policy_verdict *v, const char *guest)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->guest, sizeof(v->guest), "%s", guest ? guest : "");
}

int policy_check_usb(struct ferry_policy *p, const char *guest,
                     const struct ferry_usb_devinfo *d, struct ferry_policy_verdict *v)
{
    const char *builtin = usb_policy_builtin(d);

    verdict_init(v, guest);
    snprintf(v->device, sizeof(v->device), "usb:%04x:%04x%s%s", d->vid, d->pid,
             d->port[0] ? " " : "", d->port);
    if (builtin)
        snprintf(v->protection, sizeof(v->protection), "%s", builtin);
    else if (d->port[0] && g_hash_table_lookup(p->host.usb, d->port))
        snprintf(v->protection, sizeof(v->protection), "%s",
                 (const char *)g_hash_table_lookup(p->host.usb, d->port));
    for (guint i = 0; i < p->rules->len; i++) {
        const struct policy_rule *r = p->rules->pdata[i];
        int m;

        if (r->kind != POLICY_RULE_USB || !guest_matches(p, r->guests, guest))
            continue;
        m = usb_policy_match(r->usb, d);
        if (m == -ENOENT)
            continue;
        return decide(p, r, m == 0, v);
    }
    return decide(p, NULL, 0, v);
}

static bool pci_rule_matches(const struct policy_rule *r, const char *bdf, const char *id,
                             const char *cls, int group)
{
    bool any;

    if (r->pci) {
        any = false;
        for (char **x = r->pci; *x && !any; x++)
            any = fnmatch(*x, bdf, 0) == 0;
        if (!any)
            return false;
    }
    if (r->pci_id) {
        any = false;
        for (char **x = r->pci_id; *x && !any; x++)
            any = fnmatch(*x, id, 0) == 0;
        if (!any)
            return false;
    }
    if (r->pci_class) {
        any = false;
        for (char **x = r->pci_class; *x && !any; x++)
            any = cls[0] && g_str_has_prefix(cls, *x);
        if (!any)
            return false;
    }
    if (r->groups) {
        any = false;
        for (gsize i = 0; i < r->n_groups && !any; i++)
            any = r->groups[i] == group;
        if (!any)
            return false;
    }
    return true;
}

/* "0x8086" -> "8086" (lower case) into buf. */
static void hex_field(char *v, size_t digits, char *buf, size_t len)
{
    const char *h = v && (g_str_has_prefix(v, "0x") || g_str_has_prefix(v, "0X")) ? v + 2 : v;

    if (h && strlen(h) == digits && hex_ok(h, digits, digits, false))
        snprintf(buf, len, "%s", h);
    else
        buf[0] = '\0';
    for (char *c = buf; *c; c++)
        *c = g_ascii_tolower(*c);
}

int policy_check_pci(struct ferry_policy *p, const char *guest, const char *bdf,
                     struct ferry_policy_verdict *v)
{
    char *ven = policy_sysfs_read(p->sysfs, "bus/pci/devices/%s/vendor", bdf);
    char *dev = policy_sysfs_read(p->sysfs, "bus/pci/devices/%s/device", bdf);
    char *clsv = policy_sysfs_read(p->sysfs, "bus/pci/devices/%s/class", bdf);
    char vh[8], dh[8], cls[8], id[16];
    int group = policy_pci_group(p->sysfs, bdf);
    const char *why = g_hash_table_lookup(p->host.pci, bdf);

    verdict_init(v, guest);
    snprintf(v->device, sizeof(v->device), "pci:%s", bdf);
    hex_field(ven, 4, vh, sizeof(vh));
    hex_field(dev, 4, dh, sizeof(dh));
    hex_field(clsv, 6, cls, sizeof(cls));
    g_free(ven);
    g_free(dev);
    g_free(clsv);
    if (!vh[0]) {
        v->allowed = false;
        snprintf(v->rule, sizeof(v->rule), "no such device");
        snprintf(v->reason, sizeof(v->reason), "refused: no PCI device %s under %s/bus/pci",
                 bdf, p->sysfs);
        if (p->ops.decided)
            p->ops.decided(p->ops.decided_opaque, v);
        return -ENODEV;
    }
    snprintf(id, sizeof(id), "%s:%s", vh, dh);
    if (why)
        snprintf(v->protection, sizeof(v->protection), "%s", why);
    for (guint i = 0; i < p->rules->len; i++) {
        const struct policy_rule *r = p->rules->pdata[i];

        if (r->kind != POLICY_RULE_PCI || !guest_matches(p, r->guests, guest) ||
            !pci_rule_matches(r, bdf, id, cls, group))
            continue;
        return decide(p, r, r->allow, v);
    }
    return decide(p, NULL, 0, v);
}
