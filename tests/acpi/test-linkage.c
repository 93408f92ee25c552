// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Links against libferry-acpi.so and uses nothing but its public headers:
 * every exported function is called once.  test-linkage.sh checks the
 * other half (the .so exports exactly the map, imports only libc string
 * functions, and the headers compile on their own).
 */
#include <acpi/acpi.h>
#include <acpi/aml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "linkage: %s failed\n", #c); return 1; } } while (0)

int main(void)
{
    static struct acpi_config cfg;
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE), mem[16384], out[1024];
    size_t used = 0;
    uint64_t rsdp = 0;
    struct aml_ctx *b;
    struct aml *dev, *m, *rt, *pkg;
    uint8_t pl[4];

    CHECK(buf);
    CHECK(acpi_config_init_default(&cfg, 2, 256u << 20) == 0);
    CHECK(acpi_config_set_numa(&cfg, 2) == 0);
    CHECK(acpi_config_set_pm(&cfg, &cfg.pm) == 0);
    CHECK(acpi_config_check(&cfg, NULL, NULL) == 0);
    CHECK(acpi_pci_intx_gsi(&cfg, 3, 1) == 16);
    CHECK(acpi_build_blob(&cfg, 0x100000, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp, NULL, NULL) == 0);
    CHECK(acpi_blob_validate(buf, used, 0x100000, rsdp, NULL, NULL) == 0);
    {
        struct acpi_tables t = { 0 };

        CHECK(acpi_tables_validate(&t, NULL, NULL) != 0);
        CHECK(acpi_build_tables(&cfg, NULL, &t) != 0);
    }

    b = aml_ctx_init(mem, sizeof(mem));
    CHECK(b);
    dev = aml_device(b, "DEV0");
    aml_append(dev, aml_name_decl(b, "_HID", aml_eisaid(b, "PNP0C02")));
    aml_append(dev, aml_name_decl(b, "_STR", aml_string(b, "x")));
    aml_append(dev, aml_name_decl(b, "BUF0", aml_buffer(b, "ab", 2)));
    pkg = aml_package(b);
    aml_append(pkg, aml_int(b, 1));
    aml_append(pkg, aml_name(b, "\\_SB"));
    aml_append(dev, aml_name_decl(b, "PKG0", pkg));
    m = aml_method(b, "M000", 1, 0);
    aml_append(m, aml_return(b, aml_sizeof(b, aml_arg(b, 0))));
    aml_append(dev, m);
    m = aml_method(b, "M001", 4, 1);
    aml_append(m, aml_create_dword_field(b, aml_arg(b, 3), aml_int(b, 0), "CDW1"));
    {
        struct aml *i = aml_if(b, aml_lnot(b, aml_equal(b, aml_arg(b, 0),
                                                         aml_touuid(b, "33DB4D5B-1FF7-401C-9657-7441C03DD766"))));
        struct aml *e = aml_else(b);

        aml_append(i, aml_or(b, aml_name(b, "CDW1"), aml_int(b, 4), aml_name(b, "CDW1")));
        aml_append(e, aml_and(b, aml_name(b, "CDW1"), aml_int(b, 1), aml_local(b, 0)));
        aml_append(e, aml_store(b, aml_local(b, 0), aml_name(b, "CDW1")));
        aml_append(m, i);
        aml_append(m, e);
    }
    aml_append(dev, m);
    rt = aml_resource_template(b);
    aml_append(rt, aml_io(b, 0x60, 0x60, 1, 1));
    aml_append(rt, aml_fixed_io(b, 0x64, 1));
    aml_append(rt, aml_irq_noflags(b, 1));
    aml_append(rt, aml_interrupt(b, AML_IRQ_EDGE, 20));
    aml_append(rt, aml_memory32_fixed(b, 1, 0x1000, 0x1000));
    aml_append(rt, aml_word_bus_number(b, 0, 1));
    aml_append(rt, aml_dword_io(b, 0x1000, 0x1fff));
    aml_append(rt, aml_dword_memory(b, 1, 0x80000000u, 0x8fffffffu));
    aml_append(rt, aml_qword_memory(b, 0, 1ull << 40, (1ull << 41) - 1));
    aml_append(dev, aml_name_decl(b, "_CRS", rt));
    {
        struct aml *root = aml_list(b), *sc = aml_scope(b, "\\_SB");

        aml_append(sc, dev);
        aml_append(root, sc);
        CHECK(aml_encode(b, root, out, sizeof(out)) == (ssize_t)aml_size(root));
    }
    CHECK(aml_ctx_error(b) == 0);
    CHECK(strcmp(aml_ctx_error_msg(b), "") == 0);
    CHECK(aml_ctx_used(b) > 0);
    CHECK(aml_pkglen_encode(pl, 100) == 2);
    free(buf);
    printf("linkage: ok, blob %zu bytes\n", used);
    return 0;
}
