// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The loaded policy rendered for `ferry policy show` (text or JSON: the
 * file, the default, the rules in order, what the host protection holds and
 * why), and a verdict as JSON (`ferry policy check --json`).  Read-only over
 * struct ferry_policy (policy-internal.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include "common/json.h"
#include "policy/policy-internal.h"
#include "policy/policy.h"

static void add_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, ferry_json_str(v ? v : ""));
}

static void add_list(json_t *o, const char *k, char **v)
{
    json_t *a = json_array();

    for (char **x = v; x && *x; x++)
        json_array_append_new(a, ferry_json_str(*x));
    json_object_set_new(o, k, a);
}

static char *json_text(json_t *o)
{
    char *s = ferry_json_dumps(o, true);

    json_decref(o);
    return s;
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static GPtrArray *sorted_keys(GHashTable *t)
{
    GPtrArray *a = g_ptr_array_new();
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(a, k);
    g_ptr_array_sort(a, cmp_str);
    return a;
}

static char *rule_match_text(const struct policy_rule *r)
{
    GString *s = g_string_new("");

    if (r->kind == POLICY_RULE_USB)
        g_string_append_printf(s, "usb=%s", r->usb_text);
    if (r->pci) {
        char *j = g_strjoinv(";", r->pci);
        g_string_append_printf(s, "%spci=%s", s->len ? " " : "", j);
        g_free(j);
    }
    if (r->pci_id) {
        char *j = g_strjoinv(";", r->pci_id);
        g_string_append_printf(s, "%spci-id=%s", s->len ? " " : "", j);
        g_free(j);
    }
    if (r->pci_class) {
        char *j = g_strjoinv(";", r->pci_class);
        g_string_append_printf(s, "%spci-class=0x%s", s->len ? " " : "", j);
        g_free(j);
    }
    for (gsize i = 0; i < r->n_groups; i++)
        g_string_append_printf(s, "%s%s%d", i ? ";" : (s->len ? " iommu-group=" : "iommu-group="),
                               "", r->groups[i]);
    return g_string_free(s, FALSE);
}

char *policy_show(const struct ferry_policy *p, bool json)
{
    GPtrArray *pci = sorted_keys(p->host.pci), *usb = sorted_keys(p->host.usb);
    char def[300];
    char *out;

    policy_default_where(p, def, sizeof(def));
    if (json) {
        json_t *b = json_object(), *rules = json_array(), *prot = json_array();

        add_str(b, "file", p->file);
        add_str(b, "default", p->default_allow ? "allow" : "deny");
        add_str(b, "default_rule", def);
        for (guint i = 0; i < p->rules->len; i++) {
            const struct policy_rule *r = p->rules->pdata[i];
            char *m = rule_match_text(r), where[300];
            json_t *o = json_object();

            policy_rule_where(p, r, where, sizeof(where));
            add_str(o, "name", r->name);
            add_str(o, "where", where);
            add_list(o, "guests", r->guests);
            add_str(o, "kind", r->kind == POLICY_RULE_USB ? "usb" : "pci");
            add_str(o, "match", m);
            add_str(o, "action", r->kind == POLICY_RULE_USB ? "filter" : r->allow ? "allow" : "deny");
            json_object_set_new(o, "force", json_boolean(r->force));
            json_array_append_new(rules, o);
            g_free(m);
        }
        json_object_set_new(b, "rules", rules);
        for (guint i = 0; i < pci->len; i++) {
            json_t *o = json_object();
            char dn[200];

            snprintf(dn, sizeof(dn), "pci:%s", (char *)pci->pdata[i]);
            add_str(o, "device", dn);
            add_str(o, "why", g_hash_table_lookup(p->host.pci, pci->pdata[i]));
            json_array_append_new(prot, o);
        }
        for (guint i = 0; i < usb->len; i++) {
            json_t *o = json_object();
            char dn[200];

            snprintf(dn, sizeof(dn), "usb:%s", (char *)usb->pdata[i]);
            add_str(o, "device", dn);
            add_str(o, "why", g_hash_table_lookup(p->host.usb, usb->pdata[i]));
            json_array_append_new(prot, o);
        }
        json_object_set_new(b, "protected", prot);
        out = json_text(b);
    } else {
        GString *s = g_string_new("");

        g_string_append_printf(s, "policy: %s\n", p->file ? p->file : "built-in default (no "
                               "policy file " FERRY_POLICY_FILE_DEFAULT ")");
        g_string_append_printf(s, "when no rule matches: %s\n", def);
        g_string_append_printf(s, "rules, first match wins:%s\n", p->rules->len ? "" : " none");
        for (guint i = 0; i < p->rules->len; i++) {
            const struct policy_rule *r = p->rules->pdata[i];
            char *m = rule_match_text(r), *gl = g_strjoinv(";", r->guests), where[300];

            policy_rule_where(p, r, where, sizeof(where));
            g_string_append_printf(s, "  %s guests=%s %s%s%s%s\n", where, gl, m,
                                   r->kind == POLICY_RULE_PCI ? " action=" : "",
                                   r->kind == POLICY_RULE_PCI ? (r->allow ? "allow" : "deny") : "",
                                   r->force ? " force" : "");
            g_free(m);
            g_free(gl);
        }
        g_string_append_printf(s, "protected (the host's own; only force=true gives them "
                               "away):\n");
        g_string_append(s, "  usb: hubs, HID keyboards and mice (built in)\n");
        for (guint i = 0; i < pci->len; i++)
            g_string_append_printf(s, "  pci:%s %s\n", (char *)pci->pdata[i],
                                   (char *)g_hash_table_lookup(p->host.pci, pci->pdata[i]));
        for (guint i = 0; i < usb->len; i++)
            g_string_append_printf(s, "  usb:%s %s\n", (char *)usb->pdata[i],
                                   (char *)g_hash_table_lookup(p->host.usb, usb->pdata[i]));
        if (!p->discovered)
            g_string_append(s, "  (no discovery in this process)\n");
        for (guint i = 0; i < p->host.notes->len; i++)
            g_string_append_printf(s, "  note: %s\n", (char *)p->host.notes->pdata[i]);
        out = g_string_free(s, FALSE);
    }
    g_ptr_array_free(pci, TRUE);
    g_ptr_array_free(usb, TRUE);
    return out;
}

char *policy_verdict_json(const struct ferry_policy_verdict *v)
{
    json_t *b = json_object();

    add_str(b, "guest", v->guest);
    add_str(b, "device", v->device);
    add_str(b, "verdict", v->allowed ? "allow" : "deny");
    json_object_set_new(b, "forced", json_boolean(v->forced));
    add_str(b, "rule", v->rule);
    add_str(b, "protection", v->protection);
    add_str(b, "reason", v->reason);
    return json_text(b);
}
