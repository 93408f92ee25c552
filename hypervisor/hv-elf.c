// SPDX-License-Identifier: GPL-2.0-or-later
/* The ELF reader ferry-hv's loaders share (hypervisor/hv-elf.h). */
#include "hypervisor/hv-elf.h"
#include "hypervisor/hv.h"

#include <assert.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int hv_elf_parse(const uint8_t *img, size_t size, struct hv_elf *elf, char *why, size_t why_len)
{
    uint64_t phoff, phend;
    unsigned phnum, phentsize;
    bool is64;

    if (size < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0) {
        snprintf(why, why_len, "not an ELF file (no \\x7fELF magic)");
        return -ENOEXEC;
    }
    if (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64) {
        snprintf(why, why_len, "unknown ELF class %u", img[EI_CLASS]);
        return -ENOEXEC;
    }
    is64 = img[EI_CLASS] == ELFCLASS64;
    if (img[EI_DATA] != ELFDATA2LSB) {
        snprintf(why, why_len, "not a little-endian ELF file");
        return -ENOEXEC;
    }
    if (size < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
        snprintf(why, why_len, "truncated: %zu bytes, shorter than an ELF header", size);
        return -ENOEXEC;
    }
    /* The two classes differ in field widths only. */
    unsigned machine, phdr_size;
    if (is64) {
        Elf64_Ehdr eh;
        memcpy(&eh, img, sizeof(eh));
        machine = eh.e_machine;
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        elf->entry = eh.e_entry;
        phdr_size = sizeof(Elf64_Phdr);
    } else {
        Elf32_Ehdr eh;
        memcpy(&eh, img, sizeof(eh));
        machine = eh.e_machine;
        phoff = eh.e_phoff;
        phnum = eh.e_phnum;
        phentsize = eh.e_phentsize;
        elf->entry = eh.e_entry;
        phdr_size = sizeof(Elf32_Phdr);
    }
    if (machine != EM_X86_64 && machine != EM_386) {
        snprintf(why, why_len, "ELF machine %u is not x86", machine);
        return -ENOEXEC;
    }
    if (phentsize < phdr_size) {
        snprintf(why, why_len, "program header entry size %u too small", phentsize);
        return -ENOEXEC;
    }
    if (phnum == 0 || phnum > HV_ELF_PHDRS_MAX) {
        snprintf(why, why_len, "%u program headers (need 1..%d)", phnum, HV_ELF_PHDRS_MAX);
        return -ENOEXEC;
    }
    if (!hv_add_ok(phoff, (uint64_t)phnum * phentsize, &phend) || phend > size) {
        snprintf(why, why_len, "truncated: program headers end at 0x%llx, file has 0x%zx bytes",
                 (unsigned long long)phend, size);
        return -ENOEXEC;
    }
    elf->nr = phnum;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *p = img + phoff + (uint64_t)i * phentsize;
        struct hv_elf_seg *s = &elf->seg[i];
        uint64_t end;
        if (is64) {
            Elf64_Phdr ph;
            memcpy(&ph, p, sizeof(ph));
            *s = (struct hv_elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_vaddr, ph.p_filesz,
                                      ph.p_memsz };
        } else {
            Elf32_Phdr ph;
            memcpy(&ph, p, sizeof(ph));
            *s = (struct hv_elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_vaddr, ph.p_filesz,
                                      ph.p_memsz };
        }
        if (s->type != PT_LOAD && s->type != PT_NOTE)
            continue;
        if (!hv_add_ok(s->offset, s->filesz, &end) || end > size) {
            snprintf(why, why_len, "truncated: segment %u needs file bytes up to 0x%llx, "
                     "file has 0x%zx", i, (unsigned long long)end, size);
            return -ENOEXEC;
        }
        if (s->type == PT_LOAD && s->filesz > s->memsz) {
            snprintf(why, why_len, "segment %u: file size 0x%llx larger than memory size 0x%llx",
                     i, (unsigned long long)s->filesz, (unsigned long long)s->memsz);
            return -ENOEXEC;
        }
    }
    return 0;
}

int hv_place_check(struct ferry_vm *vm, const char *what, uint64_t gpa, uint64_t len,
                   uint64_t limit, const struct hv_area *taken, unsigned nr_taken, char *why,
                   size_t why_len)
{
    assert(!(limit & ((1ull << 30) - 1)));      /* a limit in whole GiB */
    uint64_t end;

    if (!hv_add_ok(gpa, len, &end) || (limit && end > limit)) {
        snprintf(why, why_len, "%s [0x%llx, +0x%llx) ends above %llu GiB, out of the guest's "
                 "reach at entry", what, (unsigned long long)gpa, (unsigned long long)len,
                 (unsigned long long)(limit >> 30));
        return -E2BIG;
    }
    if (!hv_vm_gpa_ptr(vm, gpa, len)) {
        char high[48] = "";

        if (vm->ram_size > vm->low_end)
            snprintf(high, sizeof(high), " and 0x%llx up", (unsigned long long)HV_HIGH_RAM_BASE);
        snprintf(why, why_len, "%s [0x%llx, 0x%llx) lies outside guest RAM (%llu MiB; RAM is "
                 "0-0x%llx and 0x%llx-0x%llx%s)", what, (unsigned long long)gpa,
                 (unsigned long long)end, (unsigned long long)(vm->ram_size >> 20),
                 (unsigned long long)HV_VGA_HOLE_START, (unsigned long long)HV_VGA_HOLE_END,
                 (unsigned long long)vm->low_end, high);
        return -E2BIG;
    }
    for (unsigned i = 0; i < nr_taken; i++) {
        if (gpa < taken[i].end && taken[i].start < end) {
            snprintf(why, why_len, "%s [0x%llx, 0x%llx) overlaps %s [0x%llx, 0x%llx)", what,
                     (unsigned long long)gpa, (unsigned long long)end, taken[i].what,
                     (unsigned long long)taken[i].start, (unsigned long long)taken[i].end);
            return -EADDRINUSE;
        }
    }
    return 0;
}
