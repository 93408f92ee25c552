// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: ferry-hv's whole loader (hv_load) on a hostile guest
 * image: ELF parsing, PVH note, segment placement against guest RAM, the
 * reserved areas and each other, the entry point, the module (initrd)
 * placed after the image, the command line, the hvm_start_info and memory
 * map, the ACPI tables with an extra table file; and the real-mode flat
 * image.  The VM is a RAM layout without KVM (as tests/guest/test-hv.c's),
 * of 2, 16 or 64 MiB.  Every input must load or be refused with a reason;
 * nothing may be written outside guest RAM.
 *
 * Input: flags u8 (bit 0 real-mode entry, bit 1 a module, bit 2 a command
 * line, bit 3 no ACPI, bit 4 an extra ACPI table, bits 5-6 RAM size),
 * vcpus u8, then three blobs each with a u16 length (command line, module,
 * ACPI table), then the image.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hypervisor/hv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

static char dir[] = "/tmp/ferry-fuzz-elf-load-XXXXXX";
static char image_path[128], module_path[128], table_path[128];
static uint8_t *ram[3];
static const uint64_t ram_sizes[3] = { 2ull << 20, 16ull << 20, 64ull << 20 };

static void cleanup(void)
{
    unlink(image_path);
    unlink(module_path);
    unlink(table_path);
    rmdir(dir);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    FUZZ_CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
    close(fd);
}

/* A u16-length blob at *pos, or NULL when the input ends. */
static const uint8_t *blob(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
    const uint8_t *p;

    if (size - *pos < 2)
        return NULL;
    *len = (size_t)data[*pos] | (size_t)data[*pos + 1] << 8;
    *pos += 2;
    if (*len > size - *pos)
        *len = size - *pos;
    p = data + *pos;
    *pos += *len;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_vm *vm;
    struct hv_load_config lc = { 0 };
    struct hv_boot boot;
    const char *tables[2] = { table_path, NULL };
    const uint8_t *cmd, *mod, *tab;
    size_t pos = 2, cmd_len, mod_len, tab_len;
    uint64_t needed_end = 0, mem;
    char why[300], *cmdline = NULL;
    unsigned r;
    int rc;

    if (!image_path[0]) {
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(image_path, sizeof(image_path), "%s/image", dir);
        snprintf(module_path, sizeof(module_path), "%s/module", dir);
        snprintf(table_path, sizeof(table_path), "%s/table.aml", dir);
        for (int i = 0; i < 3; i++) {
            ram[i] = mmap(NULL, ram_sizes[i], PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            FUZZ_CHECK(ram[i] != MAP_FAILED);
        }
        atexit(cleanup);
    }
    if (size < 2 || size > (1 << 20))
        return 0;
    if (!(cmd = blob(data, size, &pos, &cmd_len)) || !(mod = blob(data, size, &pos, &mod_len)) ||
        !(tab = blob(data, size, &pos, &tab_len)))
        return 0;
    write_file(image_path, data + pos, size - pos);
    write_file(module_path, mod, mod_len);
    write_file(table_path, tab, tab_len);

    r = (data[0] >> 5) % 3;
    mem = ram_sizes[r];
    vm = calloc(1, sizeof(*vm));
    FUZZ_CHECK(vm);
    vm->cfg.memory = mem;
    vm->cfg.nr_vcpus = vm->nr_vcpus = 1 + data[1] % 4;
    vm->ram = ram[r];
    vm->ram_size = mem;
    vm->low_end = mem < HV_LOW_RAM_END_MAX ? mem : HV_LOW_RAM_END_MAX;
    vm->regions[vm->nr_regions++] = (struct hv_ram_region){ 0, HV_VGA_HOLE_START, 0 };
    vm->regions[vm->nr_regions++] = (struct hv_ram_region){
        HV_VGA_HOLE_END, vm->low_end - HV_VGA_HOLE_END, HV_VGA_HOLE_END };
    hv_e820_build(vm);

    lc.image = image_path;
    lc.entry = data[0] & 1 ? HV_ENTRY_REAL : HV_ENTRY_PVH;
    /* one module, or two, the second with arguments */
    struct hv_module mods[2] = { { module_path, NULL }, { module_path, "root=/dev/x" } };
    if (data[0] & 2) {
        lc.modules = mods;
        lc.nr_modules = data[0] & 64 ? 2 : 1;
    }
    if (data[0] & 4) {
        cmdline = strndup((const char *)cmd, cmd_len);
        lc.cmdline = cmdline;
    }
    lc.no_acpi = data[0] & 8;
    if (data[0] & 16)
        lc.acpi_tables = tables;
    why[0] = 0;
    rc = hv_load(vm, &lc, &boot, &needed_end, why, sizeof(why));
    if (rc)
        FUZZ_CHECK(why[0]);         /* every refusal names its reason */
    else
        FUZZ_CHECK(boot.entry == lc.entry);
    free(cmdline);
    free(vm);
    return 0;
}
