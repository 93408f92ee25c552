// SPDX-License-Identifier: GPL-2.0-or-later
/* `ferry acpi`'s config reader (cli/acpi-config.h). */
#include "cli/acpi-config.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "common/text.h"
#include "hypervisor/hv.h"

int cmd_acpi_parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!g_ascii_isdigit(*s))
        return -EINVAL;     /* strtoull would take " 5" and wrap "-5" */
    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    return errno || end == s || *end ? -EINVAL : 0;
}



/* One [acpi] key holding an unsigned number within max. */
static int key_u64(GKeyFile *kf, const char *file, const char *group, const char *key,
                   uint64_t max, uint64_t *out)
{
    g_autofree char *v = g_key_file_get_string(kf, group, key, NULL);

    if (!v)
        return 0;
    g_strstrip(v);
    if (cmd_acpi_parse_u64(v, out) || *out > max) {
        fprintf(stderr, "ferry acpi: %s: [%s] %s=%s: not a number up to 0x%llx\n", file, group,
                key, v, (unsigned long long)max);
        return -EINVAL;
    }
    return 1;
}

static int key_flag(GKeyFile *kf, const char *file, const char *key, uint32_t flag,
                    uint32_t *flags)
{
    GError *err = NULL;
    gboolean on;

    if (!g_key_file_has_key(kf, "acpi", key, NULL))
        return 0;
    on = g_key_file_get_boolean(kf, "acpi", key, &err);
    if (err) {
        g_autofree char *q = ferry_text_quote(err->message, 300);

        fprintf(stderr, "ferry acpi: %s: [acpi] %s: %s\n", file, key, q);
        g_error_free(err);
        return -EINVAL;
    }
    *flags = on ? (*flags | flag) : (*flags & ~flag);
    return 0;
}

static int config_apply_acpi(GKeyFile *kf, const char *file, struct acpi_config *cfg)
{
    static const struct { const char *key; uint32_t flag; } flags[] = {
        { "com1", ACPI_HAS_COM1 }, { "com2", ACPI_HAS_COM2 }, { "rtc", ACPI_HAS_RTC },
        { "hpet", ACPI_HAS_HPET }, { "pci", ACPI_HAS_PCI }, { "mcfg", ACPI_HAS_MCFG },
        { "waet", ACPI_HAS_WAET }, { "power-button", ACPI_HAS_PWRB },
        { "cpu-ssdt", ACPI_HAS_CPU_SSDT }, { "s3", ACPI_HAS_S3 },
    };
    struct acpi_pm pm = cfg->pm;
    g_autofree char *s = NULL;
    uint64_t v;
    int rc, pm_changed = 0;

    if ((s = g_key_file_get_string(kf, "acpi", "oem-id", NULL))) {
        if (strlen(s) > 6) {
            fprintf(stderr, "ferry acpi: %s: [acpi] oem-id=%s: at most 6 characters\n", file, s);
            return -EINVAL;
        }
        g_strlcpy(cfg->oem_id, s, sizeof(cfg->oem_id));
        g_clear_pointer(&s, g_free);
    }
    if ((s = g_key_file_get_string(kf, "acpi", "oem-table-id", NULL))) {
        if (strlen(s) > 8) {
            fprintf(stderr, "ferry acpi: %s: [acpi] oem-table-id=%s: at most 8 characters\n",
                    file, s);
            return -EINVAL;
        }
        g_strlcpy(cfg->oem_table_id, s, sizeof(cfg->oem_table_id));
        g_clear_pointer(&s, g_free);
    }
    if ((rc = key_u64(kf, file, "acpi", "oem-revision", UINT32_MAX, &v)) < 0)
        return rc;
    if (rc)
        cfg->oem_revision = (uint32_t)v;
    if ((s = g_key_file_get_string(kf, "acpi", "madt", NULL))) {
        g_strstrip(s);
        if (!strcmp(s, "xapic"))
            cfg->madt_form = ACPI_MADT_XAPIC;
        else if (!strcmp(s, "x2apic"))
            cfg->madt_form = ACPI_MADT_X2APIC;
        else {
            fprintf(stderr, "ferry acpi: %s: [acpi] madt=%s: xapic or x2apic\n", file, s);
            return -EINVAL;
        }
        g_clear_pointer(&s, g_free);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++)
        if (key_flag(kf, file, flags[i].key, flags[i].flag, &cfg->flags))
            return -EINVAL;

#define PM_KEY(key, field, max) \
    do { if ((rc = key_u64(kf, file, "acpi", key, max, &v)) < 0) return rc; \
         if (rc) { pm.field = (__typeof__(pm.field))v; pm_changed = 1; } } while (0)
    PM_KEY("pm1a-evt", pm1a_evt, 0xffff);
    PM_KEY("pm1a-cnt", pm1a_cnt, 0xffff);
    PM_KEY("pm-tmr", pm_tmr, 0xffff);
    PM_KEY("gpe0", gpe0, 0xffff);
    PM_KEY("gpe0-len", gpe0_len, 0xff);
    PM_KEY("sci", sci_irq, 0xff);
    PM_KEY("s5-slp-typ", s5_slp_typ, 0xff);
    PM_KEY("s3-slp-typ", s3_slp_typ, 0xff);
#undef PM_KEY
    if (pm_changed && acpi_config_set_pm(cfg, &pm))
        return -EINVAL;
    if ((rc = key_u64(kf, file, "acpi", "ecam", UINT64_MAX, &v)) < 0)
        return rc;
    if (rc)
        cfg->pci.ecam_base = v;

    /* apic-ids = 0,2,4,6: one per vCPU, in vCPU order. */
    if ((s = g_key_file_get_string(kf, "acpi", "apic-ids", NULL))) {
        g_auto(GStrv) ids = g_strsplit(s, ",", -1);

        if (g_strv_length(ids) != cfg->nr_vcpus) {
            fprintf(stderr, "ferry acpi: %s: [acpi] apic-ids: %u ids for %u vcpus\n", file,
                    g_strv_length(ids), cfg->nr_vcpus);
            return -EINVAL;
        }
        for (guint i = 0; ids[i]; i++) {
            if (cmd_acpi_parse_u64(g_strstrip(ids[i]), &v) || v >= UINT32_MAX) {
                g_autofree char *q = ferry_text_quote(ids[i], 64);

                fprintf(stderr, "ferry acpi: %s: [acpi] apic-ids: '%s' is not an APIC id\n",
                        file, q);
                return -EINVAL;
            }
            cfg->vcpus[i].apic_id = (uint32_t)v;
        }
        g_clear_pointer(&s, g_free);
    }

    /* numa-distances = 10,20;20,10 (row by row). */
    if ((s = g_key_file_get_string(kf, "acpi", "numa-distances", NULL))) {
        g_auto(GStrv) rows = g_strsplit(s, ";", -1);
        guint nrows = g_strv_length(rows);

        if (nrows != cfg->nr_nodes) {
            fprintf(stderr, "ferry acpi: %s: [acpi] numa-distances: %u rows for %u nodes\n",
                    file, nrows, cfg->nr_nodes);
            return -EINVAL;
        }
        for (guint r = 0; r < nrows; r++) {
            g_auto(GStrv) cols = g_strsplit(rows[r], ",", -1);

            if (g_strv_length(cols) != nrows) {
                fprintf(stderr, "ferry acpi: %s: [acpi] numa-distances: row %u has %u "
                        "entries, expected %u\n", file, r, g_strv_length(cols), nrows);
                return -EINVAL;
            }
            for (guint c = 0; c < nrows; c++) {
                if (cmd_acpi_parse_u64(g_strstrip(cols[c]), &v) || v > 255) {
                    g_autofree char *q = ferry_text_quote(cols[c], 64);

                    fprintf(stderr, "ferry acpi: %s: [acpi] numa-distances: '%s' is not "
                            "0-255\n", file, q);
                    return -EINVAL;
                }
                cfg->distance[r][c] = (uint8_t)v;
            }
        }
    }
    return 0;
}

/*
 * The extra tables' files: [acpi] tables (relative to the config's folder),
 * then --table.  Appended to *paths (a NULL-terminated GPtrArray).
 */
static int config_tables(GKeyFile *kf, const char *file, GPtrArray *paths)
{
    g_autofree char *dir = g_path_get_dirname(file);
    g_auto(GStrv) list = NULL;
    GError *err = NULL;
    gsize n = 0;

    if (!g_key_file_has_key(kf, "acpi", "tables", NULL))
        return 0;
    list = g_key_file_get_string_list(kf, "acpi", "tables", &n, &err);
    if (!list) {
        g_autofree char *q = ferry_text_quote(err->message, 300);

        fprintf(stderr, "ferry acpi: %s: [acpi] tables: %s\n", file, q);
        g_error_free(err);
        return -EINVAL;
    }
    for (gsize i = 0; i < n; i++) {
        char *p = g_strstrip(list[i]);

        if (!*p) {
            fprintf(stderr, "ferry acpi: %s: [acpi] tables: entry %zu is empty\n", file,
                    (size_t)i + 1);
            return -EINVAL;
        }
        g_ptr_array_add(paths, g_path_is_absolute(p) ? g_strdup(p)
                                                      : g_build_filename(dir, p, NULL));
    }
    return 0;
}

int cmd_acpi_config_build(const struct cmd_acpi_opts *o, const char *file, struct acpi_config *cfg,
                          GPtrArray *tables)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    uint64_t vcpus = FERRY_ACPI_DEFAULT_VCPUS, memory = FERRY_ACPI_DEFAULT_MEMORY, numa = 0, v;
    GError *err = NULL;
    int rc;

    if (file) {
        if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &err)) {
            g_autofree char *q = ferry_text_quote(err->message, 300);

            fprintf(stderr, "ferry acpi: cannot read config %s: %s\n", file, q);
            g_error_free(err);
            return -EINVAL;
        }
        if ((rc = key_u64(kf, file, "guest", "vcpus", ACPI_VCPUS_MAX, &v)) < 0)
            return rc;
        if (rc)
            vcpus = v;
        if ((rc = key_u64(kf, file, "guest", "numa", ACPI_NODES_MAX, &v)) < 0)
            return rc;
        if (rc)
            numa = v;
        {
            g_autofree char *m = g_key_file_get_string(kf, "guest", "memory", NULL);

            if (m && hv_parse_size(g_strstrip(m), &memory)) {
                fprintf(stderr, "ferry acpi: %s: [guest] memory=%s: not a size\n", file, m);
                return -EINVAL;
            }
        }
    }
    if (o->vcpus != FERRY_ACPI_OPT_UNSET && o->vcpus < 1) {
        fprintf(stderr, "ferry acpi: --vcpus %d: must be at least 1\n", o->vcpus);
        return -EINVAL;
    }
    if (o->numa != FERRY_ACPI_OPT_UNSET && o->numa < 0) {
        fprintf(stderr, "ferry acpi: --numa %d: must not be negative\n", o->numa);
        return -EINVAL;
    }
    if (o->vcpus != FERRY_ACPI_OPT_UNSET)
        vcpus = (uint64_t)o->vcpus;
    if (o->numa != FERRY_ACPI_OPT_UNSET)
        numa = (uint64_t)o->numa;
    if (o->memory && hv_parse_size(o->memory, &memory)) {
        fprintf(stderr, "ferry acpi: --memory %s: not a size (e.g. 512M, 4G)\n", o->memory);
        return -EINVAL;
    }
    if (vcpus == 0 || vcpus > ACPI_VCPUS_MAX) {
        fprintf(stderr, "ferry acpi: vcpus: %llu (must be 1-%u)\n", (unsigned long long)vcpus,
                ACPI_VCPUS_MAX);
        return -EINVAL;
    }
    if (memory == 0) {
        fprintf(stderr, "ferry acpi: memory: must not be 0\n");
        return -EINVAL;
    }
    if (acpi_config_init_default(cfg, (uint32_t)vcpus, memory))
        return -EINVAL;
    if (numa && acpi_config_set_numa(cfg, (uint32_t)numa)) {
        fprintf(stderr, "ferry acpi: numa: cannot split %llu vcpus and %llu bytes into %llu "
                "nodes\n", (unsigned long long)vcpus, (unsigned long long)memory,
                (unsigned long long)numa);
        return -EINVAL;
    }
    if (file && config_apply_acpi(kf, file, cfg))
        return -EINVAL;
    if (file && config_tables(kf, file, tables))
        return -EINVAL;
    for (char **t = o->tables; t && *t; t++)
        g_ptr_array_add(tables, g_strdup(*t));
    return 0;
}
