// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of ferry-hv's pieces that need no /dev/kvm: sizes, the ELF
 * parser against hostile images, the E820 map, guest-physical lookups, and
 * the exit decoding of CF8/CFC and ECAM into PCI_CONFIG ioreqs.
 */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <linux/kvm.h>
#include <string.h>

#include "hypervisor/hv.h"
#include "tests/check-main.h"

/* ------------------------------------------------------------------ */

START_TEST(test_parse_size)
{
    static const struct { const char *s; int rc; uint64_t v; } c[] = {
        { "64M", 0, 64ull << 20 }, { "4G", 0, 4ull << 30 }, { "1T", 0, 1ull << 40 },
        { "2K", 0, 2048 }, { "4096", 0, 4096 }, { "1GiB", 0, 1ull << 30 }, { "16m", 0, 16ull << 20 },
        { "0x1000", 0, 0x1000 }, { "", -EINVAL, 0 }, { "-1G", -EINVAL, 0 }, { "12Q", -EINVAL, 0 },
        { "G", -EINVAL, 0 }, { "1GG", -EINVAL, 0 }, { "99999999999T", -ERANGE, 0 },
        { "18446744073709551616", -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        uint64_t v = 0;
        int rc = hv_parse_size(c[i].s, &v);
        ck_assert_msg(rc == c[i].rc, "'%s': rc %d, want %d", c[i].s, rc, c[i].rc);
        if (!rc)
            ck_assert_msg(v == c[i].v, "'%s': %llu", c[i].s, (unsigned long long)v);
    }
}
END_TEST

/* One range for --memory, whatever the spelling, with the range in the reason. */
START_TEST(test_memory_check)
{
    static const struct { uint64_t v; bool ok; } c[] = {
        { 0, false }, { 4096, false }, { HV_MEMORY_MIN - 4096, false }, { HV_MEMORY_MIN, true },
        { 64ull << 20, true }, { (64ull << 20) + 1, false }, { 1ull << 40, true },
        { HV_MEMORY_MAX, true }, { HV_MEMORY_MAX + 4096, false }, { 1ull << 63, false },
        { UINT64_MAX, false },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char why[160] = "";
        int rc = hv_memory_check(c[i].v, why, sizeof(why));

        ck_assert_msg((rc == 0) == c[i].ok, "0x%llx: rc %d", (unsigned long long)c[i].v, rc);
        if (!c[i].ok)
            ck_assert_msg(rc == -ERANGE && strstr(why, "from 2M to "), "0x%llx: %s",
                          (unsigned long long)c[i].v, why);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* A minimal ELF64 with one PT_LOAD and one PT_NOTE holding the PVH note. */

struct elf64_img {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    uint8_t note[12 + 4 + 8];
    uint8_t code[16];
};

static void make_elf64(struct elf64_img *e, uint32_t descsz, uint64_t entry)
{
    memset(e, 0, sizeof(*e));
    memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
    e->eh.e_ident[EI_CLASS] = ELFCLASS64;
    e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    e->eh.e_type = ET_EXEC;
    e->eh.e_machine = EM_X86_64;
    e->eh.e_phoff = offsetof(struct elf64_img, ph);
    e->eh.e_phnum = 2;
    e->eh.e_phentsize = sizeof(Elf64_Phdr);
    e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct elf64_img, code),
                             .p_paddr = 0x100000, .p_filesz = 16, .p_memsz = 4096 };
    e->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = offsetof(struct elf64_img, note),
                             .p_filesz = 12 + 4 + ((descsz + 3) & ~3u) };
    uint32_t hdr[3] = { 4, descsz, 18 };
    memcpy(e->note, hdr, 12);
    memcpy(e->note + 12, "Xen", 4);
    memcpy(e->note + 16, &entry, descsz <= 8 ? descsz : 8);
}

START_TEST(test_elf_pvh_entry)
{
    struct elf64_img e;
    uint32_t entry = 0;
    char why[200];

    make_elf64(&e, 4, 0x100000);
    ck_assert_int_eq(hv_elf_pvh_entry((uint8_t *)&e, sizeof(e), &entry, why, sizeof(why)), 0);
    ck_assert_uint_eq(entry, 0x100000);
    /* Linux puts a 64-bit value (_ASM_PTR) in the note */
    make_elf64(&e, 8, 0x1000000);
    ck_assert_int_eq(hv_elf_pvh_entry((uint8_t *)&e, sizeof(e), &entry, why, sizeof(why)), 0);
    ck_assert_uint_eq(entry, 0x1000000);
    make_elf64(&e, 8, 0x100000000ull);
    ck_assert_int_eq(hv_elf_pvh_entry((uint8_t *)&e, sizeof(e), &entry, why, sizeof(why)),
                     -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(why, "above 4 GiB"));
}
END_TEST

START_TEST(test_elf_hostile)
{
    struct elf64_img e;
    uint32_t entry;
    char why[200];
    const uint8_t *p = (const uint8_t *)&e;

    /* every truncation fails cleanly */
    make_elf64(&e, 4, 0x100000);
    for (size_t n = 0; n < offsetof(struct elf64_img, code) + 16; n++) {
        why[0] = 0;
        ck_assert_int_eq(hv_elf_pvh_entry(p, n, &entry, why, sizeof(why)), -ENOEXEC);
        ck_assert_msg(why[0], "no reason for %zu bytes", n);
    }
    /* program header table offset that overflows */
    make_elf64(&e, 4, 0x100000);
    e.eh.e_phoff = UINT64_MAX - 8;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(why, "truncated"));
    /* segment offset + size that overflows */
    make_elf64(&e, 4, 0x100000);
    e.ph[0].p_offset = UINT64_MAX - 4;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    /* a note whose name size runs past the segment */
    make_elf64(&e, 4, 0x100000);
    uint32_t huge = 0xfffffff0;
    memcpy(e.note, &huge, 4);
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(why, "runs past"));
    /* ... or its descriptor size */
    make_elf64(&e, 4, 0x100000);
    memcpy(e.note + 4, &huge, 4);
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    /* no note */
    make_elf64(&e, 4, 0x100000);
    e.note[8] = 17;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(why, "not a PVH kernel"));
    /* too many program headers */
    make_elf64(&e, 4, 0x100000);
    e.eh.e_phnum = 65535;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    /* file size larger than memory size */
    make_elf64(&e, 4, 0x100000);
    e.ph[0].p_memsz = 1;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    /* wrong machine, wrong class, big-endian */
    make_elf64(&e, 4, 0x100000);
    e.eh.e_machine = EM_AARCH64;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    make_elf64(&e, 4, 0x100000);
    e.eh.e_ident[EI_CLASS] = 7;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
    make_elf64(&e, 4, 0x100000);
    e.eh.e_ident[EI_DATA] = ELFDATA2MSB;
    ck_assert_int_eq(hv_elf_pvh_entry(p, sizeof(e), &entry, why, sizeof(why)), -ENOEXEC);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A VM without KVM: enough for the memory map and the exit decoder. */

static struct ferry_vm *fake_vm(uint64_t memory)
{
    struct ferry_vm *vm = calloc(1, sizeof(*vm));

    ck_assert_ptr_nonnull(vm);
    pthread_mutex_init(&vm->unclaimed_lock, NULL);
    vm->ram_size = memory;
    vm->low_end = memory < HV_LOW_RAM_END_MAX ? memory : HV_LOW_RAM_END_MAX;
    vm->ram = (uint8_t *)0x10000000;    /* never dereferenced */
    vm->regions[0] = (struct hv_ram_region){ 0, HV_VGA_HOLE_START, 0 };
    vm->regions[1] = (struct hv_ram_region){ HV_VGA_HOLE_END, vm->low_end - HV_VGA_HOLE_END,
                                             HV_VGA_HOLE_END };
    vm->nr_regions = 2;
    if (memory > vm->low_end)
        vm->regions[vm->nr_regions++] = (struct hv_ram_region){
            HV_HIGH_RAM_BASE, memory - vm->low_end, vm->low_end };
    ck_assert_int_eq(hv_io_init(vm), 0);
    return vm;
}

static void free_fake_vm(struct ferry_vm *vm)
{
    hv_io_fini(vm);
    pthread_mutex_destroy(&vm->unclaimed_lock);
    free(vm);
}

START_TEST(test_e820)
{
    struct ferry_vm *vm = fake_vm(8ull << 30);
    uint64_t ram = 0, prev_end = 0;

    hv_e820_build(vm);
    for (unsigned i = 0; i < vm->nr_e820; i++) {
        ck_assert_msg(vm->e820[i].addr >= prev_end, "entry %u overlaps or is out of order", i);
        prev_end = vm->e820[i].addr + vm->e820[i].size;
        if (vm->e820[i].type == 1)
            ram += vm->e820[i].size;
        if (vm->e820[i].type == 3) {
            ck_assert_uint_eq(vm->e820[i].addr, HV_ACPI_BASE);
            ck_assert_uint_eq(vm->e820[i].size, HV_ACPI_SIZE);
        }
    }
    /* All RAM but the 384 KiB between 640 KiB and 1 MiB */
    ck_assert_uint_eq(ram, (8ull << 30) - (HV_BIOS_END - HV_VGA_HOLE_START));
    ck_assert_uint_eq(vm->e820[vm->nr_e820 - 1].addr, HV_HIGH_RAM_BASE);
    ck_assert_uint_eq(vm->e820[vm->nr_e820 - 1].size, 5ull << 30);
    free_fake_vm(vm);
}
END_TEST

START_TEST(test_gpa_ptr)
{
    struct ferry_vm *vm = fake_vm(6ull << 30);

    ck_assert_ptr_nonnull(hv_vm_gpa_ptr(vm, 0, HV_VGA_HOLE_START));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, 0, HV_VGA_HOLE_START + 1));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, HV_VGA_HOLE_START, 1));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, HV_LOW_RAM_END_MAX, 1));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, HV_LOW_RAM_END_MAX - 1, 2));
    ck_assert_ptr_eq(hv_vm_gpa_ptr(vm, HV_HIGH_RAM_BASE, 8), vm->ram + HV_LOW_RAM_END_MAX);
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, HV_HIGH_RAM_BASE + (3ull << 30) - 4, 8));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, UINT64_MAX - 2, 8));
    ck_assert_ptr_null(hv_vm_gpa_ptr(vm, 0x1000, UINT64_MAX));
    free_fake_vm(vm);
}
END_TEST

/* The in-process handler records the last request. */
struct seen {
    ioreq_t req;
    unsigned calls;
};

static void record(struct ferry_vm *vm, unsigned vcpu, ioreq_t *req, void *opaque)
{
    struct seen *s = opaque;

    s->req = *req;
    s->calls++;
    if (req->dir == IOREQ_READ)
        req->data = 0x12345678 & ((1ull << (req->size * 8)) - 1);
}

START_TEST(test_pci_decode)
{
    struct ferry_vm *vm = fake_vm(64ull << 20);
    struct seen s = { 0 };
    struct hv_io_handler h = { "pci-test", record, &s };
    uint32_t sbdf = IOREQ_PCI_SBDF(0, 1, 3, 2);
    uint8_t data[8];
    uint32_t v;

    ck_assert_int_eq(hv_io_register(vm, IOREQ_RANGE_PCI, sbdf, sbdf, &h), 0);
    v = 0x80000000u | 1u << 16 | 3u << 11 | 2u << 8 | 0x44;
    memcpy(data, &v, 4);
    hv_io_port(vm, 0, 0xcf8, 4, true, data);
    memset(data, 0, sizeof(data));
    hv_io_port(vm, 0, 0xcf8, 4, false, data);
    ck_assert_mem_eq(data, &v, 4);
    ck_assert_uint_eq(s.calls, 0);

    hv_io_port(vm, 0, 0xcfe, 2, false, data);
    ck_assert_uint_eq(s.calls, 1);
    ck_assert_uint_eq(s.req.type, IOREQ_TYPE_PCI_CONFIG);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x46));
    ck_assert_uint_eq(s.req.size, 2);
    ck_assert_uint_eq(data[0] | data[1] << 8, 0x5678);

    data[0] = 0xab;
    hv_io_port(vm, 0, 0xcfd, 1, true, data);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x45));
    ck_assert_uint_eq(s.req.dir, IOREQ_WRITE);
    ck_assert_uint_eq(s.req.data, 0xab);

    /* extended register bits 27:24 */
    v = 0x80000000u | 0x3u << 24 | 1u << 16 | 3u << 11 | 2u << 8 | 0x10;
    memcpy(data, &v, 4);
    hv_io_port(vm, 0, 0xcf8, 4, true, data);
    hv_io_port(vm, 0, 0xcfc, 4, false, data);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x310));

    /* enable bit clear: all ones, nobody asked */
    unsigned calls = s.calls;
    v = 1u << 16 | 3u << 11 | 2u << 8;
    memcpy(data, &v, 4);
    hv_io_port(vm, 0, 0xcf8, 4, true, data);
    hv_io_port(vm, 0, 0xcfc, 4, false, data);
    ck_assert_uint_eq(s.calls, calls);
    ck_assert_uint_eq(data[0] & data[1] & data[2] & data[3], 0xff);

    /* a byte write to 0xcf8 is port I/O (e.g. 0xcf9, reset control), not a latch */
    data[0] = 0x06;
    hv_io_port(vm, 0, 0xcf9, 1, true, data);
    ck_assert_uint_eq(vm->nr_unclaimed, 1);
    ck_assert_uint_eq(vm->unclaimed[0].type, IOREQ_RANGE_PORT);
    ck_assert_uint_eq(vm->unclaimed[0].key, 0xcf9);
    ck_assert_uint_eq(vm->unclaimed[0].writes, 1);

    /* ECAM: bus 1, device 3, function 2, register 0x104 */
    uint64_t gpa = HV_ECAM_BASE + (1u << 20) + (3u << 15) + (2u << 12) + 0x104;
    hv_io_mmio(vm, 0, gpa, 4, false, data);
    ck_assert_uint_eq(s.req.type, IOREQ_TYPE_PCI_CONFIG);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x104));
    ck_assert_uint_eq(s.req.size, 4);
    /* an access across the function's 4 KiB: all ones, not forwarded */
    calls = s.calls;
    hv_io_mmio(vm, 0, HV_ECAM_BASE + (1u << 20) + (3u << 15) + (2u << 12) + 0xffe, 4, false,
               data);
    ck_assert_uint_eq(s.calls, calls);
    ck_assert_uint_eq(data[0] & data[1] & data[2] & data[3], 0xff);

    /* an unclaimed function through ECAM: all ones, counted by SBDF */
    hv_io_mmio(vm, 0, HV_ECAM_BASE + (5u << 15), 4, false, data);
    ck_assert_uint_eq(data[0] & data[1] & data[2] & data[3], 0xff);
    ck_assert_uint_eq(vm->unclaimed[1].type, IOREQ_RANGE_PCI);
    ck_assert_uint_eq(vm->unclaimed[1].key, IOREQ_PCI_SBDF(0, 0, 5, 0));

    /* 4 bytes at 0xcfd: three config bytes, then port 0xd00 (unclaimed) */
    v = 0x80000000u | 1u << 16 | 3u << 11 | 2u << 8 | 0x44;
    memcpy(data, &v, 4);
    hv_io_port(vm, 0, 0xcf8, 4, true, data);
    calls = s.calls;
    hv_io_port(vm, 0, 0xcfd, 4, false, data);
    ck_assert_uint_eq(s.calls, calls + 3);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x47));
    ck_assert_uint_eq(s.req.size, 1);
    ck_assert_uint_eq(data[0], 0x78);
    ck_assert_uint_eq(data[2], 0x78);
    ck_assert_uint_eq(data[3], 0xff);
    ck_assert_uint_eq(vm->unclaimed[2].type, IOREQ_RANGE_PORT);
    ck_assert_uint_eq(vm->unclaimed[2].key, 0xd00);
    /* a misaligned word inside the window is split too */
    calls = s.calls;
    hv_io_port(vm, 0, 0xcfd, 2, false, data);
    ck_assert_uint_eq(s.calls, calls + 2);
    ck_assert_uint_eq(s.req.addr, IOREQ_PCI_ADDR(sbdf, 0x46));
    free_fake_vm(vm);
}
END_TEST

START_TEST(test_unclaimed)
{
    struct ferry_vm *vm = fake_vm(64ull << 20);
    uint8_t data[8];

    for (unsigned i = 0; i < HV_UNCLAIMED_MAX + 10; i++) {
        hv_io_mmio(vm, 0, 0xd0000000ull + i * 0x1000, 8, false, data);
        for (int k = 0; k < 8; k++)
            ck_assert_uint_eq(data[k], 0xff);
    }
    hv_io_mmio(vm, 0, 0xd0000008ull, 2, true, data);
    ck_assert_uint_eq(vm->nr_unclaimed, HV_UNCLAIMED_MAX);
    ck_assert_uint_eq(vm->unclaimed[0].reads, 1);
    ck_assert_uint_eq(vm->unclaimed[0].writes, 1);
    ck_assert_uint_eq(vm->unclaimed_other, 10);
    free_fake_vm(vm);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Multiboot headers and module specs. */

static void put_mb(uint8_t *img, size_t off, uint32_t magic, uint32_t flags, uint32_t sum)
{
    memcpy(img + off, &magic, 4);
    memcpy(img + off + 4, &flags, 4);
    memcpy(img + off + 8, &sum, 4);
}

START_TEST(test_mb_header)
{
    static uint8_t img[16384];
    struct hv_mb_header h;
    char why[256];

    memset(img, 0, sizeof(img));
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOENT);
    /* Found 4-byte aligned only, within the first 8192 bytes. */
    put_mb(img, 0x102, 0x1badb002, 0, -0x1badb002u);
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOENT);
    memset(img, 0, sizeof(img));
    put_mb(img, 8192, 0x1badb002, 0, -0x1badb002u);
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOENT);
    put_mb(img, 8180, 0x1badb002, 3, -(0x1badb002u + 3));
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), 0);
    ck_assert_uint_eq(h.offset, 8180);
    ck_assert_uint_eq(h.flags, 3);
    /* Bits 17-31 are optional; 2 and 3-15 are refused; a bad checksum too. */
    put_mb(img, 8180, 0x1badb002, 0x80000003u, -(0x1badb002u + 0x80000003u));
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), 0);
    put_mb(img, 8180, 0x1badb002, 4, -(0x1badb002u + 4));
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOEXEC);
    ck_assert_msg(strstr(why, "video mode"), "%s", why);
    put_mb(img, 8180, 0x1badb002, 0x8000, -(0x1badb002u + 0x8000));
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOEXEC);
    ck_assert_msg(strstr(why, "0x8000"), "%s", why);
    put_mb(img, 8180, 0x1badb002, 0, 0);
    ck_assert_int_eq(hv_mb_header_find(img, sizeof(img), &h, why, sizeof(why)), -ENOEXEC);
    ck_assert_msg(strstr(why, "checksum"), "%s", why);
    /* Flag 16 with the address fields past the end of the file. */
    memset(img, 0, sizeof(img));
    put_mb(img, 0, 0x1badb002, 0x10000, -(0x1badb002u + 0x10000));
    ck_assert_int_eq(hv_mb_header_find(img, 20, &h, why, sizeof(why)), -ENOEXEC);
    ck_assert_msg(strstr(why, "address fields"), "%s", why);
    uint32_t f[5] = { 0x100000, 0x100000, 0x100020, 0x101000, 0x10000c };
    memcpy(img + 12, f, sizeof(f));
    ck_assert_int_eq(hv_mb_header_find(img, 32, &h, why, sizeof(why)), 0);
    ck_assert_uint_eq(h.load_end_addr, 0x100020);
    ck_assert_uint_eq(h.entry_addr, 0x10000c);
}
END_TEST

/* The FACS of a blob libacpi built, found as ferry-hv finds it for an S3 resume. */
START_TEST(test_acpi_find_facs)
{
    struct acpi_config *cfg = calloc(1, sizeof(*cfg));
    uint8_t *buf = malloc(ACPI_BLOB_BUF_SIZE);
    size_t used = 0;
    uint64_t rsdp, facs;

    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(acpi_config_init_default(cfg, 2, 256ull << 20), 0);
    ck_assert_int_eq(acpi_build_blob(cfg, HV_ACPI_BASE, buf, ACPI_BLOB_BUF_SIZE, &used, &rsdp,
                                     NULL, NULL), 0);
    facs = hv_acpi_find_facs(buf, used, HV_ACPI_BASE);
    ck_assert_uint_ne(facs, 0);
    ck_assert_uint_eq(facs & 63, 0);
    ck_assert_uint_lt(facs - HV_ACPI_BASE, used);
    ck_assert_mem_eq(buf + (facs - HV_ACPI_BASE), "FACS", 4);
    /* The same through the RSDT (an RSDP of revision 0 has no XSDT). */
    buf[15] = 0;
    ck_assert_uint_eq(hv_acpi_find_facs(buf, used, HV_ACPI_BASE), facs);
    buf[15] = 2;
    /* Anything cut short or elsewhere: no FACS, never a read outside the blob. */
    ck_assert_uint_eq(hv_acpi_find_facs(buf, 35, HV_ACPI_BASE), 0);
    ck_assert_uint_eq(hv_acpi_find_facs(buf, 200, HV_ACPI_BASE), 0);
    ck_assert_uint_eq(hv_acpi_find_facs(buf, used, HV_ACPI_BASE + 0x1000), 0);
    memcpy(buf, "RSD PTX ", 8);
    ck_assert_uint_eq(hv_acpi_find_facs(buf, used, HV_ACPI_BASE), 0);
    free(buf);
    free(cfg);
}
END_TEST

START_TEST(test_module_parse)
{
    char a[] = "/x/initrd", b[] = "mod.bin,arg1 arg2=3,x", c[] = ",args";
    struct hv_module m;

    ck_assert_int_eq(hv_module_parse(a, &m), 0);
    ck_assert_str_eq(m.path, "/x/initrd");
    ck_assert_ptr_null(m.args);
    ck_assert_int_eq(hv_module_parse(b, &m), 0);
    ck_assert_str_eq(m.path, "mod.bin");
    ck_assert_str_eq(m.args, "arg1 arg2=3,x");
    ck_assert_int_eq(hv_module_parse(c, &m), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The CPU model against a made-up "supported CPUID". */

struct fake_cpuid {
    struct kvm_cpuid2 c;
    struct kvm_cpuid_entry2 e[8];
};

static void make_cpuid(struct fake_cpuid *f)
{
    memset(f, 0, sizeof(*f));
    f->c.nent = 7;
    /* leaf 1: fpu, apic, fxsr, sse, sse2 in edx; x2apic, xsave, avx in ecx */
    f->e[0] = (struct kvm_cpuid_entry2){ .function = 1, .ecx = (1u << 21) | (1u << 26) | (1u << 28),
                                         .edx = 1u | (1u << 9) | (1u << 24) | (1u << 25) | (1u << 26) };
    /* leaf 7.0: avx2, avx512f, avx512bw, avx512vl; ecx: avx512vbmi, gfni */
    f->e[1] = (struct kvm_cpuid_entry2){ .function = 7, .index = 0,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .ebx = (1u << 5) | (1u << 16) | (1u << 30) | (1u << 31),
                                         .ecx = (1u << 1) | (1u << 8) };
    /* leaf 0xd: XCR0 x87|SSE|YMM|opmask|ZMM_Hi256|Hi16_ZMM and the components */
    f->e[2] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 0,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 0xe7, .ebx = 0xa80, .ecx = 0xa80 };
    f->e[3] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 2,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 0x100, .ebx = 0x240 };
    f->e[4] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 5,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 0x40, .ebx = 0x440 };
    f->e[5] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 6,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 0x200, .ebx = 0x480 };
    f->e[6] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 7,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 0x400, .ebx = 0x680 };
}

START_TEST(test_cpu_model)
{
    struct hv_cpu_model m;
    struct fake_cpuid f, orig;
    char why[256];

    ck_assert_int_eq(hv_cpu_model_parse("host", &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(m.nr_edits, 0);
    ck_assert_int_eq(hv_cpu_model_parse("host,-x2apic,+avx2,sse", &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(m.nr_edits, 3);
    ck_assert(!m.edits[0].on && m.edits[1].on && m.edits[2].on);
    ck_assert_str_eq(hv_cpu_feature_name(m.edits[0].feature), "x2apic");
    ck_assert_int_eq(hv_cpu_model_parse("host,-bogus", &m, why, sizeof(why)), -EINVAL);
    ck_assert_msg(strstr(why, "'bogus'"), "%s", why);
    ck_assert_int_eq(hv_cpu_model_parse("max", &m, why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(hv_cpu_model_parse("host,", &m, why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(hv_cpu_model_parse("host,,-x2apic", &m, why, sizeof(why)), -EINVAL);

    /* No edits: exactly what KVM supports. */
    make_cpuid(&f);
    orig = f;
    ck_assert_int_eq(hv_cpu_model_parse("host", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), 0);
    ck_assert_int_eq(memcmp(&f, &orig, sizeof(f)), 0);

    /* -x2apic: one bit. */
    ck_assert_int_eq(hv_cpu_model_parse("host,-x2apic", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.e[0].ecx, orig.e[0].ecx & ~(1u << 21));
    ck_assert_uint_eq(f.e[1].ebx, orig.e[1].ebx);

    /* -avx512f: every avx512* and what Linux hangs on avx512vl (gfni), the XCR0 components. */
    make_cpuid(&f);
    ck_assert_int_eq(hv_cpu_model_parse("host,-avx512f", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.e[1].ebx, 1u << 5);                 /* avx2 stays */
    ck_assert_uint_eq(f.e[1].ecx, 0);
    ck_assert_uint_eq(f.e[2].eax, 0x07);
    ck_assert_uint_eq(f.e[2].ecx, 0x340);                   /* up to the YMM component */
    ck_assert_uint_eq(f.e[4].eax | f.e[5].eax | f.e[6].eax | f.e[6].ebx, 0);
    ck_assert_uint_eq(f.e[3].eax, 0x100);

    /* +a feature KVM lacks; +a feature whose prerequisite goes. */
    make_cpuid(&f);
    ck_assert_int_eq(hv_cpu_model_parse("host,+pn", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), -ENOTSUP);
    ck_assert_msg(strstr(why, "'pn'"), "%s", why);
    ck_assert_int_eq(hv_cpu_model_parse("host,-avx512f,+avx512bw", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), -ENOTSUP);
    ck_assert_msg(strstr(why, "'avx512bw' needs 'avx512f'"), "%s", why);
    /* The last edit of a feature wins. */
    make_cpuid(&f);
    ck_assert_int_eq(hv_cpu_model_parse("host,-x2apic,+x2apic", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.e[0].ecx, orig.e[0].ecx);
    /* -xsave: avx and the AVX family, and leaf 0xd, go. */
    ck_assert_int_eq(hv_cpu_model_parse("host,-xsave", &m, why, sizeof(why)), 0);
    ck_assert_int_eq(hv_cpuid_apply(&f.c, &m, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.e[0].ecx, 1u << 21);
    ck_assert_uint_eq(f.e[1].ebx, 0);
    ck_assert_uint_eq(f.e[2].eax | f.e[2].ecx | f.e[3].eax, 0);
    /* Every dependency names known features (a typo would silently never fire). */
    ck_assert_msg(hv_cpu_tables_check(why, sizeof(why)) == 0, "%s", why);
}
END_TEST

/* The cgroup in the cpu hierarchy, from mountinfo and /proc/self/cgroup texts. */
START_TEST(test_cgroup_base)
{
    /* this machine's kind: v1 controllers plus an empty unified mount */
    static const char v1_mounts[] =
        "30 25 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        "31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
    static const char v1_self[] = "2:cpuacct:/\n1:cpu:/machine/g1\n0::/\n";
    /* systemd's: everything unified, cpu,cpuacct together elsewhere */
    static const char v2_mounts[] =
        "22 1 0:21 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    static const char v2_self[] = "0::/system.slice/ferry.service\n";
    static const char joint_mounts[] =
        "40 25 0:30 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    static const char joint_self[] = "3:cpu,cpuacct:/\n";
    /* a container: the mount's root is the container's cgroup */
    static const char ct_mounts[] =
        "50 40 0:30 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    static const char ct_self[] = "0::/lxc/c1/inner\n";
    char out[256];

    ck_assert_int_eq(hv_cgroup_base_find(v1_mounts, v1_self, false, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/sys/fs/cgroup/cpu/machine/g1");
    ck_assert_int_eq(hv_cgroup_base_find(v1_mounts, v1_self, true, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/sys/fs/cgroup/unified");
    ck_assert_int_eq(hv_cgroup_base_find(v2_mounts, v2_self, true, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/sys/fs/cgroup/system.slice/ferry.service");
    ck_assert_int_eq(hv_cgroup_base_find(v2_mounts, v2_self, false, out, sizeof(out)), -ENOENT);
    ck_assert_int_eq(hv_cgroup_base_find(joint_mounts, joint_self, false, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/cg/cpu,cpuacct");
    ck_assert_int_eq(hv_cgroup_base_find(ct_mounts, ct_self, true, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/sys/fs/cgroup/inner");
    /* cpuacct alone is not cpu; a path too long for out */
    ck_assert_int_eq(hv_cgroup_base_find("31 25 0:27 / /c rw - cgroup cgroup rw,cpuacct\n",
                                         "2:cpuacct:/\n", false, out, sizeof(out)), -ENOENT);
    ck_assert_int_eq(hv_cgroup_base_find(v2_mounts, v2_self, true, out, 8), -ENAMETOOLONG);
    ck_assert_int_eq(hv_cgroup_base_find("", "", true, out, sizeof(out)), -ENOENT);
}
END_TEST

static TCase *core_tcase(void)
{
    return FERRY_CHECK_TCASE("core", 0, test_parse_size, test_elf_pvh_entry, test_memory_check,
                             test_elf_hostile, test_e820, test_gpa_ptr, test_pci_decode,
                             test_unclaimed, test_mb_header, test_module_parse, test_cpu_model,
                             test_acpi_find_facs, test_cgroup_base);
}

FERRY_CHECK_MAIN("hv", core_tcase);
