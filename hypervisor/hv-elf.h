/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ELF images for ferry-hv's loaders (PVH in loader.c, multiboot in
 * multiboot.c): the header and program headers of a 32- or 64-bit x86 ELF,
 * checked against the file once, in one place.
 */
#ifndef FERRY_HV_HV_ELF_H
#define FERRY_HV_HV_ELF_H

#include <stddef.h>
#include <stdint.h>

#define HV_ELF_PHDRS_MAX        64

struct hv_elf_seg {
    uint32_t type;                      /* p_type */
    uint64_t offset, paddr, vaddr, filesz, memsz;
};

struct hv_elf {
    unsigned nr;                        /* every program header, in file order */
    struct hv_elf_seg seg[HV_ELF_PHDRS_MAX];
    uint64_t entry;                     /* e_entry (a virtual address) */
};

/*
 * Reads img's ELF header and program headers into elf.  Refused (-ENOEXEC,
 * the reason in why): no ELF magic, a class other than 32/64, big-endian,
 * not x86, a truncated header, program header entries too small, 0 or more
 * than HV_ELF_PHDRS_MAX of them, program headers or a PT_LOAD/PT_NOTE
 * segment's file bytes past the file's end, a PT_LOAD with more file than
 * memory bytes.
 */
int hv_elf_parse(const uint8_t *img, size_t size, struct hv_elf *elf, char *why,
                 size_t why_len);

#endif
