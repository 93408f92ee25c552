/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ELF images for ferry-hv's loaders (PVH in loader.c, multiboot in
 * multiboot.c): the header and program headers of a 32- or 64-bit x86 ELF,
 * checked against the file once, in one place.
 */
#ifndef FERRY_HV_HV_ELF_H
#define FERRY_HV_HV_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ferry_vm;

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

/*
 * Placing what a loader copies into the guest (the PVH and multiboot loaders
 * share this): a + b without wrapping, and [gpa, gpa+len) checked to be guest
 * RAM, below limit (0: none), clear of every taken area.  why says which rule
 * failed on what; -E2BIG (outside RAM or limit) or -EADDRINUSE (overlap).
 */
static inline bool hv_add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
    return !__builtin_add_overflow(a, b, sum);
}

struct hv_area {
    uint64_t start, end;
    const char *what;
};

int hv_place_check(struct ferry_vm *vm, const char *what, uint64_t gpa, uint64_t len,
                   uint64_t limit, const struct hv_area *taken, unsigned nr_taken, char *why,
                   size_t why_len);

#endif
