// SPDX-License-Identifier: GPL-2.0-or-later
/* The [pci] group of a ferry-dm config file; see pci-config.h. */
#include "pci/host/pci-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

static const char *const pci_keys[] = { "devices", "group", "force", "qmp", NULL };

bool pcihost_config_id_valid(const char *s)
{
    size_t n = strlen(s);

    if (!n || n >= FERRY_PCI_CONFIG_ID_MAX || !g_ascii_isalpha(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

bool pcihost_config_addr_valid(const char *s)
{
    unsigned long slot, fn = 0;
    char *end;

    if (!g_ascii_isxdigit(s[0]) || strlen(s) >= 8)
        return false;
    slot = strtoul(s, &end, 16);
    if (*end == '.') {
        if (!g_ascii_isdigit(end[1]) || end[2])
            return false;
        fn = (unsigned long)(end[1] - '0');
    } else if (*end) {
        return false;
    }
    return slot < 0x20 && fn < 8;
}

void pcihost_config_default_id(const struct ferry_pci_addr *a, char *buf, size_t len)
{
    if (a->domain)
        snprintf(buf, len, "ferry-pci-%04x-%02x-%02x-%x", a->domain, a->bus, a->dev, a->fn);
    else
        snprintf(buf, len, "ferry-pci-%02x-%02x-%x", a->bus, a->dev, a->fn);
}

int pcihost_config_parse_dev(const char *entry, struct ferry_pci_config_dev *d, char *err,
                               size_t errlen)
{
    g_auto(GStrv) parts = g_strsplit(entry, ",", -1);
    bool have_id = false;

    memset(d, 0, sizeof(*d));
    if (!parts[0] || pcihost_addr_parse(g_strstrip(parts[0]), &d->host) < 0) {
        snprintf(err, errlen, "'%s': not a PCI address (expected [DDDD:]BB:DD.F)",
                 parts[0] ? parts[0] : "");
        return -EINVAL;
    }
    pcihost_addr_format(&d->host, d->name);
    for (size_t i = 1; parts[i]; i++) {
        char *opt = g_strstrip(parts[i]);
        char *eq = strchr(opt, '=');
        const char *val = eq ? eq + 1 : "";

        if (eq)
            *eq = '\0';
        if (!strcmp(opt, "bus")) {
            if (!pcihost_config_id_valid(val)) {
                snprintf(err, errlen, "%s: bus='%s': not a QEMU bus id (a letter, then "
                         "letters, digits, '.', '_', '-')", d->name, val);
                return -EINVAL;
            }
            snprintf(d->bus, sizeof(d->bus), "%s", val);
        } else if (!strcmp(opt, "addr")) {
            if (!pcihost_config_addr_valid(val)) {
                snprintf(err, errlen, "%s: addr='%s': not a slot address (SLOT[.FN] in hex, "
                         "slot below 0x20, function below 8)", d->name, val);
                return -EINVAL;
            }
            snprintf(d->addr, sizeof(d->addr), "%s", val);
        } else if (!strcmp(opt, "id")) {
            if (!pcihost_config_id_valid(val)) {
                snprintf(err, errlen, "%s: id='%s': not a QEMU device id (a letter, then "
                         "letters, digits, '.', '_', '-', at most %d)", d->name, val,
                         FERRY_PCI_CONFIG_ID_MAX - 1);
                return -EINVAL;
            }
            snprintf(d->id, sizeof(d->id), "%s", val);
            have_id = true;
        } else {
            snprintf(err, errlen, "%s: unknown option '%s' (bus, addr, id)", d->name, opt);
            return -EINVAL;
        }
    }
    if (!have_id)
        pcihost_config_default_id(&d->host, d->id, sizeof(d->id));
    return 0;
}

/* GKeyFile lets a repeated key win silently; a config that says devices=
 * twice is a mistake worth naming. */
static int duplicate_key(const char *file, const char *text, char *err, size_t errlen)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    bool in_pci = false;

    for (size_t i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        char *eq;

        if (l[0] == '[') {
            in_pci = !strcmp(l, "[pci]");
            continue;
        }
        if (!in_pci || l[0] == '#' || !(eq = strchr(l, '=')))
            continue;
        *eq = '\0';
        g_strchomp(l);
        if (g_hash_table_contains(seen, l)) {
            snprintf(err, errlen, "%s: [pci] %s: given twice (line %zu)", file, l, i + 1);
            return -EINVAL;
        }
        g_hash_table_add(seen, g_strdup(l));
    }
    return 0;
}

static int get_bool(GKeyFile *kf, const char *file, const char *key, bool *out, char *err,
                    size_t errlen)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *raw = NULL;
    gboolean v;

    if (!g_key_file_has_key(kf, "pci", key, NULL))
        return 0;
    v = g_key_file_get_boolean(kf, "pci", key, &e);
    if (e) {
        raw = g_key_file_get_value(kf, "pci", key, NULL);
        snprintf(err, errlen, "%s: [pci] %s='%s': not a boolean (true or false)", file, key,
                 raw ? raw : "");
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int pcihost_config_load(const char *file, struct ferry_pci_config *c, char *err,
                          size_t errlen)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) e = NULL;
    g_autofree char *text = NULL, *qmp = NULL;
    g_auto(GStrv) keys = NULL, devices = NULL;
    gsize len = 0;
    int r;

    memset(c, 0, sizeof(*c));
    if (!g_file_get_contents(file, &text, &len, &e) ||
        !g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        snprintf(err, errlen, "%s: %s", file, e->message);
        return -EINVAL;
    }
    if (!g_key_file_has_group(kf, "pci"))
        return 0;
    r = duplicate_key(file, text, err, errlen);
    if (r < 0)
        return r;
    keys = g_key_file_get_keys(kf, "pci", NULL, NULL);
    for (size_t i = 0; keys && keys[i]; i++)
        if (!g_strv_contains(pci_keys, keys[i])) {
            snprintf(err, errlen, "%s: [pci] has no key '%s' (devices, group, force, qmp)",
                     file, keys[i]);
            return -EINVAL;
        }
    if ((r = get_bool(kf, file, "group", &c->group, err, errlen)) < 0 ||
        (r = get_bool(kf, file, "force", &c->force, err, errlen)) < 0)
        return r;
    qmp = g_key_file_get_string(kf, "pci", "qmp", NULL);
    if (qmp && strlen(qmp) >= sizeof(c->qmp)) {
        snprintf(err, errlen, "%s: [pci] qmp='%s': path too long for a unix socket", file, qmp);
        return -EINVAL;
    }
    if (qmp)
        snprintf(c->qmp, sizeof(c->qmp), "%s", qmp);
    devices = g_key_file_get_string_list(kf, "pci", "devices", NULL, NULL);
    for (size_t i = 0; devices && devices[i]; i++) {
        struct ferry_pci_config_dev d;
        char why[FERRY_PCI_CONFIG_ERR_MAX];
        const char *entry = g_strstrip(devices[i]);

        if (!*entry)
            continue;
        if (pcihost_config_parse_dev(entry, &d, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: [pci] devices: %s", file, why);
            return -EINVAL;
        }
        for (size_t j = 0; j < c->n; j++) {
            if (pcihost_addr_equal(&c->dev[j].host, &d.host)) {
                snprintf(err, errlen, "%s: [pci] devices: %s is listed twice", file, d.name);
                return -EINVAL;
            }
            if (!strcmp(c->dev[j].id, d.id)) {
                snprintf(err, errlen, "%s: [pci] devices: id '%s' is used by both %s and %s",
                         file, d.id, c->dev[j].name, d.name);
                return -EINVAL;
            }
        }
        if (c->n >= FERRY_PCI_CONFIG_DEVICES_MAX) {
            snprintf(err, errlen, "%s: [pci] devices: more than %d devices", file,
                     FERRY_PCI_CONFIG_DEVICES_MAX);
            return -E2BIG;
        }
        c->dev[c->n++] = d;
    }
    return 0;
}
