// SPDX-License-Identifier: GPL-2.0-or-later
/* The [guest] group of `ferry run`'s config file (cli/run-config.h). */
#include "cli/run-config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "common/cpus.h"
#include "common/text.h"
#include "hypervisor/hv.h"

/* "ferry run: FILE: [guest] key 'KEY': WHY" (why quotes any text of the config). */
static int run_config_refuse(const char *path, const char *key, const char *why)
{
    g_autofree char *qk = ferry_text_quote(key, 64);

    fprintf(stderr, "ferry run: %s: [guest] key '%s': %s\n", path, qk, why);
    return -EINVAL;
}

/* Why GKeyFile would not give a value, without echoing the value. */
static const char *run_value_error(const GError *e)
{
    if (e && e->domain == G_KEY_FILE_ERROR && e->code == G_KEY_FILE_ERROR_UNKNOWN_ENCODING)
        return "value is not valid UTF-8";
    if (e && e->domain == G_KEY_FILE_ERROR && e->code == G_KEY_FILE_ERROR_INVALID_VALUE)
        return "value has an invalid escape sequence";
    return "value cannot be read";
}

/* [usb]: devices = SPEC;SPEC (host USB devices on the guest's xHCI), policy = RULES. */
static int run_read_usb(const char *path, GKeyFile *kf, struct cmd_run_opts *o)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "usb", NULL, NULL);
    g_autoptr(GError) err = NULL;

    for (unsigned i = 0; keys && keys[i]; i++) {
        if (strcmp(keys[i], "devices") != 0 && strcmp(keys[i], "policy") != 0) {
            g_autofree char *q = ferry_text_quote(keys[i], 64);

            fprintf(stderr, "ferry run: %s: unknown key '%s' in [usb] (devices, policy)\n",
                    path, q);
            return -EINVAL;
        }
    }
    if (g_key_file_has_key(kf, "usb", "devices", NULL)) {
        g_auto(GStrv) list = g_key_file_get_string_list(kf, "usb", "devices", NULL, &err);

        if (!list) {
            fprintf(stderr, "ferry run: %s: [usb] key 'devices': %s\n", path,
                    run_value_error(err));
            return -EINVAL;
        }
        if (!o->config_usb)
            o->config_usb = g_ptr_array_new_with_free_func(g_free);
        for (unsigned i = 0; list[i]; i++) {
            char *t = g_strstrip(list[i]);

            if (*t)
                g_ptr_array_add(o->config_usb, g_strdup(t));
        }
    }
    if (!o->usb_policy && g_key_file_has_key(kf, "usb", "policy", NULL)) {
        g_autoptr(GError) verr = NULL;

        o->usb_policy = g_key_file_get_string(kf, "usb", "policy", &verr);
        if (!o->usb_policy) {
            fprintf(stderr, "ferry run: %s: [usb] key 'policy': %s\n", path,
                    run_value_error(verr));
            return -EINVAL;
        }
    }
    return 0;
}

int cmd_run_config_read(const char *path, struct cmd_run_opts *o)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_path_get_dirname(path);
    static const char *const known[] = { "image", "entry", "memory", "vcpus", "cmdline", "module",
                                         "dm", "ioreq-socket", "eager-memory", "acpi", "acpi-tables",
                                         "cpu", "pit", "cpu-weight", "cpu-cap", "cpus",
                                         "dm-cpus", NULL };

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        g_autofree char *q = ferry_text_quote(err->message, 300);

        fprintf(stderr, "ferry run: %s: %s\n", path, q);
        return -EINVAL;
    }
    if (!g_key_file_has_group(kf, "guest")) {
        fprintf(stderr, "ferry run: %s: no [guest] group\n", path);
        return -EINVAL;
    }
    /* a misspelt group would be ignored whole, as a misspelt key would not */
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (unsigned i = 0; groups && groups[i]; i++) {
        if (strcmp(groups[i], "guest") != 0 && strcmp(groups[i], "usb") != 0) {
            g_autofree char *q = ferry_text_quote(groups[i], 64);

            fprintf(stderr, "ferry run: %s: unknown group [%s] (only [guest] and [usb])\n",
                    path, q);
            return -EINVAL;
        }
    }
    if (g_key_file_has_group(kf, "usb") && run_read_usb(path, kf, o) < 0)
        return -EINVAL;
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "guest", NULL, NULL);
    for (unsigned i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(known, keys[i])) {
            g_autofree char *q = ferry_text_quote(keys[i], 64);

            fprintf(stderr, "ferry run: %s: unknown key '%s' in [guest]\n", path, q);
            return -EINVAL;
        }
    }
#define STR_KEY(field, key, relative)                                                 \
    if (!o->field && g_key_file_has_key(kf, "guest", key, NULL)) {                    \
        g_autoptr(GError) verr = NULL;                                                \
        char *v = g_key_file_get_string(kf, "guest", key, &verr);                     \
        if (!v)                                                                       \
            return run_config_refuse(path, key, run_value_error(verr));               \
        if ((relative) && !g_path_is_absolute(v)) {                                   \
            char *abs = g_build_filename(dir, v, NULL);                               \
            g_free(v);                                                                \
            v = abs;                                                                  \
        }                                                                             \
        o->field = v;                                                                 \
    }
    STR_KEY(image, "image", true)
    STR_KEY(entry, "entry", false)
    STR_KEY(memory, "memory", false)
    STR_KEY(cmdline, "cmdline", false)
    STR_KEY(cpu, "cpu", false)
    STR_KEY(dm, "dm", true)
    STR_KEY(socket, "ioreq-socket", false)
    bool cli_cpus = o->cpus != NULL, cli_dm_cpus = o->dm_cpus != NULL;
    STR_KEY(cpus, "cpus", false)
    STR_KEY(dm_cpus, "dm-cpus", false)
#undef STR_KEY
    for (int k = 0; k < 2; k++) {
        const char *v = k ? o->dm_cpus : o->cpus;
        cpu_set_t set;
        char cwhy[200];

        if (v && !(k ? cli_dm_cpus : cli_cpus) && ferry_cpus_parse(v, &set, cwhy, sizeof(cwhy)) < 0)
            return run_config_refuse(path, k ? "dm-cpus" : "cpus", cwhy);
    }
    if (o->memory && g_key_file_has_key(kf, "guest", "memory", NULL)) {
        g_autofree char *v = g_key_file_get_string(kf, "guest", "memory", NULL);
        uint64_t size;
        char why[128];

        if (v && !strcmp(v, o->memory)) {       /* this one is the config's */
            if (hv_parse_size(v, &size) < 0) {
                g_autofree char *q = ferry_text_quote(v, 64);
                g_autofree char *w = g_strdup_printf("'%s' is not a size; give "
                                                     HV_MEMORY_RANGE_TEXT
                                                     " (e.g. 64M, 4G, 1T)", q);

                return run_config_refuse(path, "memory", w);
            }
            if (hv_memory_check(size, why, sizeof(why)) < 0)
                return run_config_refuse(path, "memory", why);
        }
    }
    if (o->vcpus == FERRY_RUN_VCPUS_UNSET && g_key_file_has_key(kf, "guest", "vcpus", NULL)) {
        o->vcpus = g_key_file_get_integer(kf, "guest", "vcpus", &err);
        if (err) {
            return run_config_refuse(path, "vcpus", "not a whole number");
        }
    }
    if (!o->eager && g_key_file_has_key(kf, "guest", "eager-memory", NULL)) {
        o->eager = g_key_file_get_boolean(kf, "guest", "eager-memory", &err);
        if (err) {
            return run_config_refuse(path, "eager-memory", "not a boolean (true or false)");
        }
    }
    /* module = a.bin,ARGS;b.bin (files relative to the config's folder). */
    if (g_key_file_has_key(kf, "guest", "module", NULL)) {
        g_auto(GStrv) list = g_key_file_get_string_list(kf, "guest", "module", NULL, &err);

        if (!list) {
            fprintf(stderr, "ferry run: %s: module: %s\n", path, err->message);
            return -EINVAL;
        }
        for (unsigned i = 0; list[i]; i++) {
            char *t = g_strstrip(list[i]);

            if (!*t || *t == ',') {
                fprintf(stderr, "ferry run: %s: module: entry %u has no file name\n", path,
                        i + 1);
                return -EINVAL;
            }
            g_ptr_array_add(o->config_modules, g_path_is_absolute(t) ? g_strdup(t)
                                                                     : g_build_filename(dir, t, NULL));
        }
    }
    /* acpi-tables = a.aml;b.aml (relative to the config's folder). */
    if (g_key_file_has_key(kf, "guest", "acpi-tables", NULL)) {
        g_auto(GStrv) list = g_key_file_get_string_list(kf, "guest", "acpi-tables", NULL, &err);

        if (!list) {
            return run_config_refuse(path, "acpi-tables", run_value_error(err));
        }
        for (unsigned i = 0; list[i]; i++) {
            char *t = g_strstrip(list[i]);

            if (!*t) {
                fprintf(stderr, "ferry run: %s: acpi-tables: entry %u is empty\n", path, i + 1);
                return -EINVAL;
            }
            g_ptr_array_add(o->config_tables, g_path_is_absolute(t) ? g_strdup(t)
                                                                    : g_build_filename(dir, t, NULL));
        }
    }
    if (!o->no_pit && g_key_file_has_key(kf, "guest", "pit", NULL)) {
        o->no_pit = !g_key_file_get_boolean(kf, "guest", "pit", &err);
        if (err) {
            return run_config_refuse(path, "pit", "not a boolean (true or false)");
        }
    }
    if (o->cpu_weight == FERRY_RUN_VCPUS_UNSET &&
        g_key_file_has_key(kf, "guest", "cpu-weight", NULL)) {
        o->cpu_weight = g_key_file_get_integer(kf, "guest", "cpu-weight", &err);
        if (err)
            return run_config_refuse(path, "cpu-weight", "not a whole number");
        if (o->cpu_weight < 1 || o->cpu_weight > HV_CPU_WEIGHT_MAX)
            return run_config_refuse(path, "cpu-weight", "must be 1..10000");
    }
    if (o->cpu_cap == FERRY_RUN_VCPUS_UNSET && g_key_file_has_key(kf, "guest", "cpu-cap", NULL)) {
        o->cpu_cap = g_key_file_get_integer(kf, "guest", "cpu-cap", &err);
        if (err)
            return run_config_refuse(path, "cpu-cap", "not a whole number");
        if (o->cpu_cap < 1 || o->cpu_cap > HV_CPU_CAP_MAX)
            return run_config_refuse(path, "cpu-cap", "must be 1..6400 (percent of one host CPU)");
    }
    if (!o->no_acpi && g_key_file_has_key(kf, "guest", "acpi", NULL)) {
        o->no_acpi = !g_key_file_get_boolean(kf, "guest", "acpi", &err);
        if (err) {
            return run_config_refuse(path, "acpi", "not a boolean (true or false)");
        }
    }
    return 0;
}

void cmd_run_opts_free(struct cmd_run_opts *o)
{
    g_free(o->image);
    g_free(o->entry);
    g_free(o->memory);
    g_free(o->cmdline);
    g_free(o->cpu);
    g_strfreev(o->modules);
    g_ptr_array_unref(o->config_modules);
    g_free(o->dm);
    g_free(o->socket);
    g_free(o->cpus);
    g_free(o->dm_cpus);
    g_strfreev(o->dm_args);
    g_strfreev(o->acpi_tables);
    g_ptr_array_unref(o->config_tables);
    g_strfreev(o->usb);
    g_free(o->usb_policy);
    if (o->config_usb)
        g_ptr_array_unref(o->config_usb);
}
