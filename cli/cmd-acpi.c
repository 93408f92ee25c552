// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry acpi dump: write a guest's ACPI tables, one file per table named as
 * acpidump/acpixtract do (rsdp.dat, xsdt.dat, facp.dat, dsdt.dat, ...), or
 * the whole set as one blob laid out for a guest-physical address.
 *
 *   ferry acpi dump [--vcpus N] [--memory SIZE] [--numa N] [--table FILE]... [CONFIG]
 *                   --out DIR
 *   ferry acpi dump [...] --blob [--base ADDR] --out FILE
 *
 * CONFIG is a key file; README.md ("ACPI tables") lists its keys.  Extra
 * tables ([acpi] tables = FILE;FILE, then each --table) are added after
 * libacpi's own, in that order.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "cli/acpi-config.h"
#include "cli/cmd.h"
#include "common/log-glib.h"
#include "common/text.h"
#include "hypervisor/hv.h"

static int write_file(const char *path, const void *data, size_t len)
{
    GError *err = NULL;

    if (!g_file_set_contents(path, data, (gssize)len, &err)) {
        fprintf(stderr, "ferry acpi: cannot write %s: %s\n", path, err->message);
        g_error_free(err);
        return -EIO;
    }
    return 0;
}

struct host_bump {
    uint8_t *buf;
    size_t cap, used;
    uint64_t base;
};

static void *host_alloc(void *opaque, size_t size, size_t align)
{
    struct host_bump *hb = opaque;
    size_t off = (hb->used + align - 1) & ~(align - 1);

    if (off > hb->cap || size > hb->cap - off)
        return NULL;
    hb->used = off + size;
    return hb->buf + off;
}

static uint64_t host_v2p(void *opaque, const void *p)
{
    struct host_bump *hb = opaque;

    return hb->base + (uint64_t)((const uint8_t *)p - hb->buf);
}

static int dump_tables(const struct acpi_config *cfg, uint64_t base, const char *dir)
{
    g_autofree uint8_t *mem = g_malloc0(ACPI_TABLES_SIZE_MAX);
    g_autofree uint8_t *scratch = g_malloc(ACPI_SCRATCH_SIZE);
    struct host_bump hb = { mem, ACPI_TABLES_SIZE_MAX, 0, base };
    struct acpi_ctx ctx = {
        .alloc = host_alloc, .v2p = host_v2p, .opaque = &hb,
        .scratch = scratch, .scratch_len = ACPI_SCRATCH_SIZE,
        .log = ferry_log_glib,
    };
    struct acpi_tables t;
    int nssdt = 0, ssdt_no = 0;

    if (acpi_build_tables(cfg, &ctx, &t))
        return -EINVAL;
    if (g_mkdir_with_parents(dir, 0755)) {
        fprintf(stderr, "ferry acpi: cannot create %s: %s\n", dir, g_strerror(errno));
        return -EIO;
    }
    for (uint32_t i = 0; i < t.nr; i++)
        nssdt += !strcmp(t.tables[i].sig, "SSDT");
    for (uint32_t i = 0; i < t.nr; i++) {
        g_autofree char *low = g_ascii_strdown(t.tables[i].sig, -1);
        g_autofree char *name = NULL, *path = NULL;

        /* acpixtract: ssdt.dat when there is one, ssdt1.dat, ssdt2.dat... otherwise. */
        if (!strcmp(low, "ssdt") && nssdt > 1)
            name = g_strdup_printf("ssdt%d.dat", ++ssdt_no);
        else
            name = g_strdup_printf("%s.dat", low);
        path = g_build_filename(dir, name, NULL);
        if (write_file(path, t.tables[i].ptr, t.tables[i].len))
            return -EIO;
        printf("%-4s 0x%08llx %5u %s\n", t.tables[i].sig,
               (unsigned long long)t.tables[i].gpa, t.tables[i].len, path);
    }
    return 0;
}

static int dump_blob(const struct acpi_config *cfg, uint64_t base, const char *file)
{
    g_autofree uint8_t *buf = g_malloc(ACPI_BLOB_BUF_SIZE);
    size_t used = 0;
    uint64_t rsdp = 0;

    if (acpi_build_blob(cfg, base, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp, ferry_log_glib, NULL))
        return -EINVAL;
    if (write_file(file, buf, used))
        return -EIO;
    printf("blob %s: %zu bytes for guest-physical 0x%llx, rsdp 0x%llx\n", file, used,
           (unsigned long long)base, (unsigned long long)rsdp);
    return 0;
}

static int acpi_dump(int argc, char **argv)
{
    struct cmd_acpi_opts o = { .vcpus = FERRY_ACPI_OPT_UNSET, .numa = FERRY_ACPI_OPT_UNSET };
    GOptionEntry entries[] = {
        { "vcpus", 0, 0, G_OPTION_ARG_INT, &o.vcpus, "number of vCPUs (default 1)", "N" },
        { "memory", 0, 0, G_OPTION_ARG_STRING, &o.memory, "RAM size (default 512M)", "SIZE" },
        { "numa", 0, 0, G_OPTION_ARG_INT, &o.numa, "split into N NUMA nodes", "N" },
        { "blob", 0, 0, G_OPTION_ARG_NONE, &o.blob, "write one blob laid out at --base", NULL },
        { "base", 0, 0, G_OPTION_ARG_STRING, &o.base,
          "guest-physical address of the tables (default 0xe0000)", "ADDR" },
        { "out", 'o', 0, G_OPTION_ARG_FILENAME, &o.out, "output folder (or file with --blob)",
          "PATH" },
        { "table", 't', 0, G_OPTION_ARG_FILENAME_ARRAY, &o.tables,
          "add a complete ACPI table of your own (SSDT, SLIC, ...; repeatable)", "FILE" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "more messages", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) oc = g_option_context_new("[CONFIG] - write a guest's ACPI tables");
    struct acpi_config *cfg = NULL;
    g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func(g_free);
    struct hv_acpi_files files = { .nr = 0 };
    char why[512];
    uint64_t base = ACPI_BLOB_BASE_DEFAULT;
    GError *err = NULL;
    int rc = FERRY_EXIT_USAGE;

    g_option_context_add_main_entries(oc, entries, NULL);
    if (!g_option_context_parse(oc, &argc, &argv, &err)) {
        fprintf(stderr, "ferry acpi dump: %s\n", err->message);
        g_error_free(err);
        goto out;
    }
    ferry_log_init("ferry", o.verbose ? 2 : 0);
    if (!o.out || argc > 2) {
        fprintf(stderr, "ferry acpi dump: %s\n", !o.out ? "--out is required" :
                "at most one CONFIG");
        goto out;
    }
    if (o.base && (cmd_acpi_parse_u64(o.base, &base))) {
        fprintf(stderr, "ferry acpi dump: --base %s: not an address\n", o.base);
        goto out;
    }
    cfg = g_new0(struct acpi_config, 1);
    rc = FERRY_EXIT_FAILURE;
    if (cmd_acpi_config_build(&o, argc == 2 ? argv[1] : NULL, cfg, tables))
        goto out;
    g_ptr_array_add(tables, NULL);
    if (hv_acpi_files_load(&files, cfg, (const char *const *)tables->pdata, why,
                           sizeof(why))) {
        fprintf(stderr, "ferry acpi: extra table %s\n", why);
        goto out;
    }
    if (o.blob ? dump_blob(cfg, base, o.out) : dump_tables(cfg, base, o.out))
        goto out;
    rc = FERRY_EXIT_OK;
out:
    hv_acpi_files_free(&files);
    g_strfreev(o.tables);
    g_free(cfg);
    g_free(o.memory);
    g_free(o.base);
    g_free(o.out);
    return rc;
}

int cmd_acpi(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "dump"))
        return acpi_dump(argc - 1, argv + 1);
    fprintf(stderr, "usage: ferry acpi dump [--vcpus N] [--memory SIZE] [--numa N] "
            "[--table FILE]... [CONFIG] --out DIR\n"
            "       ferry acpi dump [...] --blob [--base ADDR] --out FILE\n"
            "'ferry acpi dump --help' lists the options.\n");
    return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
           ? FERRY_EXIT_OK : FERRY_EXIT_USAGE;
}
