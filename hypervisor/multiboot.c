// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The multiboot (version 1) loader, as GRUB legacy and QEMU's -kernel give
 * it, and the choice between PVH and multiboot for `--entry auto`.
 *
 *   header   magic 0x1badb002, flags, checksum (magic + flags + checksum
 *            == 0), 4-byte aligned in the first 8192 bytes of the image.
 *            Flags 0 (page-align modules) and 1 (memory information) are
 *            honoured, 16 (the a.out kludge: load by the header's address
 *            fields) too; 2 (a video mode) and the undefined bits 3-15 are
 *            refused, as the specification asks of a loader that cannot
 *            honour them.  Bits 17-31 are optional and ignored.
 *   image    an ELF (32- or 64-bit) loaded by its program headers at their
 *            physical addresses, or (flag 16) the file bytes the address
 *            fields name; everything below 4 GiB, in RAM, clear of the info
 *            block and the BIOS area.
 *   entry    flat 32-bit protected mode, paging off, EAX = 0x2badb002,
 *            EBX = the info block: mem_lower/mem_upper, the command line
 *            (the image's file name first, as QEMU's loader does), the
 *            modules (--module FILE[,ARGS]: page-aligned after the image,
 *            each with the string "FILE ARGS"), the memory map (ferry-hv's
 *            E820, the same the PVH guests get) and the loader's name.
 *
 * The image is hostile input: every offset and size is checked against
 * the file, every address against guest RAM and the other pieces.
 */
#include "hypervisor/hv.h"
#include "hypervisor/hv-elf.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_HEADER_MAGIC         0x1badb002u
#define MB_BOOT_MAGIC           0x2badb002u
#define MB_SEARCH_BYTES         8192
#define MB_HDR_PAGE_ALIGN       (1u << 0)
#define MB_HDR_MEMORY_INFO      (1u << 1)
#define MB_HDR_VIDEO_MODE       (1u << 2)
#define MB_HDR_AOUT_KLUDGE      (1u << 16)
#define MB_HDR_REQUIRED_MASK    0x0000ffffu

#define MBI_MEMORY              (1u << 0)
#define MBI_CMDLINE             (1u << 2)
#define MBI_MODS                (1u << 3)
#define MBI_MMAP                (1u << 6)
#define MBI_LOADER_NAME         (1u << 9)

#define MB_LOADER_NAME          "ferry"
#define MB_CMDLINE_MAX          4095    /* the caller's part, as for PVH */
#define MB_PHDRS_MAX            HV_ELF_PHDRS_MAX
#define MB_IMAGE_MAX            (1ull << 30)
#define MB_4G                   0x100000000ull

/* The info block and what it points to, in the boot info area. */
#define MBI_ADDR                (HV_BOOTINFO_BASE + 0x000)
#define MBI_MMAP_ADDR           (HV_BOOTINFO_BASE + 0x080)
#define MBI_MODS_ADDR           (HV_BOOTINFO_BASE + 0x200)
#define MBI_STRINGS_ADDR        (HV_BOOTINFO_BASE + 0x400)
#define MBI_STRINGS_END         (HV_BOOTINFO_BASE + HV_BOOTINFO_SIZE)

struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
    uint32_t boot_loader_name, apm_table;
    uint32_t vbe_control_info, vbe_mode_info;
    uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
};

struct mb_mmap_entry {
    uint32_t size;              /* of the rest: 20 */
    uint64_t addr, len;
    uint32_t type;
} __attribute__((packed));

struct mb_module {
    uint32_t mod_start, mod_end, string, reserved;
};

static_assert(offsetof(struct mb_info, mmap_length) == 44, "multiboot info layout");
static_assert(offsetof(struct mb_info, boot_loader_name) == 64, "multiboot info layout");
static_assert(sizeof(struct mb_info) == 88, "multiboot info layout");
static_assert(sizeof(struct mb_mmap_entry) == 24, "multiboot mmap entry layout");
static_assert(MBI_ADDR + sizeof(struct mb_info) <= MBI_MMAP_ADDR, "info fits");
static_assert(MBI_MMAP_ADDR + HV_E820_MAX * sizeof(struct mb_mmap_entry) <= MBI_MODS_ADDR,
              "memory map fits");
static_assert(MBI_MODS_ADDR + HV_MODULES_MAX * sizeof(struct mb_module) <= MBI_STRINGS_ADDR,
              "module list fits");

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

const char *hv_entry_name(enum hv_entry entry)
{
    switch (entry) {
    case HV_ENTRY_REAL: return "real";
    case HV_ENTRY_PVH: return "pvh";
    case HV_ENTRY_MULTIBOOT: return "multiboot";
    case HV_ENTRY_AUTO: return "auto";
    }
    return "?";
}

int hv_module_parse(char *s, struct hv_module *m)
{
    char *comma = strchr(s, ',');

    m->path = s;
    m->args = NULL;
    if (comma) {
        *comma = '\0';
        m->args = comma + 1;
    }
    return *m->path ? 0 : -EINVAL;
}

int hv_mb_header_find(const uint8_t *img, size_t size, struct hv_mb_header *h, char *why,
                      size_t why_len)
{
    size_t limit = size < MB_SEARCH_BYTES ? size : MB_SEARCH_BYTES;

    for (size_t off = 0; off + 12 <= limit; off += 4) {
        if (get32(img + off) != MB_HEADER_MAGIC)
            continue;
        uint32_t flags = get32(img + off + 4), sum = get32(img + off + 8);
        memset(h, 0, sizeof(*h));
        h->offset = (uint32_t)off;
        h->flags = flags;
        if ((uint32_t)(MB_HEADER_MAGIC + flags + sum) != 0) {
            snprintf(why, why_len, "multiboot header at offset 0x%zx: checksum 0x%08x is wrong "
                     "(magic + flags + checksum must be 0; want 0x%08x)", off, sum,
                     (uint32_t)-(MB_HEADER_MAGIC + flags));
            return -ENOEXEC;
        }
        if (flags & MB_HDR_VIDEO_MODE) {
            snprintf(why, why_len, "multiboot header flags 0x%08x: flag 2 asks for a video mode, "
                     "and ferry-hv has no display", flags);
            return -ENOEXEC;
        }
        uint32_t unknown = flags & MB_HDR_REQUIRED_MASK &
                           ~(MB_HDR_PAGE_ALIGN | MB_HDR_MEMORY_INFO);
        if (unknown) {
            snprintf(why, why_len, "multiboot header flags 0x%08x: required bits 0x%04x are not "
                     "defined by multiboot 1 (ferry-hv honours 0, 1 and 16)", flags, unknown);
            return -ENOEXEC;
        }
        if (flags & MB_HDR_AOUT_KLUDGE) {
            if (off + 32 > size) {
                snprintf(why, why_len, "multiboot header at offset 0x%zx: flag 16 set, but the "
                         "file ends before its address fields", off);
                return -ENOEXEC;
            }
            h->header_addr = get32(img + off + 12);
            h->load_addr = get32(img + off + 16);
            h->load_end_addr = get32(img + off + 20);
            h->bss_end_addr = get32(img + off + 24);
            h->entry_addr = get32(img + off + 28);
        }
        return 0;
    }
    snprintf(why, why_len, "no multiboot header (magic 0x%08x) in the first %d bytes",
             MB_HEADER_MAGIC, MB_SEARCH_BYTES);
    return -ENOENT;
}

/* ------------------------------------------------------------------ */

struct mb_seg {
    uint64_t offset, paddr, vaddr, filesz, memsz;
    unsigned index;         /* program header; -1u: the a.out kludge's one piece */
};

struct mb_image {
    unsigned nr;
    struct mb_seg seg[MB_PHDRS_MAX];
    uint64_t entry;         /* physical */
};

/* PT_LOAD segments of an ELF (hypervisor/hv-elf.c reads it); entry translated to physical. */
static int mb_parse_elf(const uint8_t *img, size_t size, struct mb_image *mi, char *why,
                        size_t why_len)
{
    struct hv_elf elf;
    int rc = hv_elf_parse(img, size, &elf, why, why_len);

    if (rc)
        return rc;
    mi->nr = 0;
    for (unsigned i = 0; i < elf.nr && mi->nr < MB_PHDRS_MAX; i++) {
        const struct hv_elf_seg *e = &elf.seg[i];

        if (e->type != PT_LOAD || e->memsz == 0)
            continue;
        mi->seg[mi->nr++] = (struct mb_seg){ e->offset, e->paddr, e->vaddr, e->filesz, e->memsz,
                                             i };
    }
    if (mi->nr == 0) {
        snprintf(why, why_len, "no loadable segment");
        return -ENOEXEC;
    }
    /* The entry is a virtual address; where the segment holding it is loaded. */
    mi->entry = elf.entry;
    for (unsigned i = 0; i < mi->nr; i++) {
        const struct mb_seg *s = &mi->seg[i];
        if (elf.entry >= s->vaddr && elf.entry - s->vaddr < s->memsz) {
            mi->entry = s->paddr + (elf.entry - s->vaddr);
            break;
        }
    }
    return 0;
}

/* Flag 16: the file bytes the address fields name, one segment. */
static int mb_parse_aout(const struct hv_mb_header *h, size_t size, struct mb_image *mi,
                         char *why, size_t why_len)
{
    uint64_t head = (uint64_t)h->header_addr - h->load_addr;
    uint64_t filesz, memsz;

    if (h->header_addr < h->load_addr || head > h->offset) {
        snprintf(why, why_len, "multiboot address fields: header_addr 0x%x and load_addr 0x%x do "
                 "not fit the header's file offset 0x%x", h->header_addr, h->load_addr,
                 h->offset);
        return -ENOEXEC;
    }
    uint64_t off = h->offset - head;
    if (h->load_end_addr) {
        if (h->load_end_addr < h->load_addr) {
            snprintf(why, why_len, "multiboot address fields: load_end_addr 0x%x is below "
                     "load_addr 0x%x", h->load_end_addr, h->load_addr);
            return -ENOEXEC;
        }
        filesz = (uint64_t)h->load_end_addr - h->load_addr;
        if (off + filesz > size) {
            snprintf(why, why_len, "truncated: the multiboot address fields load file bytes "
                     "0x%llx-0x%llx, file has 0x%zx", (unsigned long long)off,
                     (unsigned long long)(off + filesz), size);
            return -ENOEXEC;
        }
    } else {
        filesz = size - off;
    }
    memsz = filesz;
    if (h->bss_end_addr) {
        if ((uint64_t)h->bss_end_addr < h->load_addr + filesz) {
            snprintf(why, why_len, "multiboot address fields: bss_end_addr 0x%x is below the "
                     "end of the loaded bytes 0x%llx", h->bss_end_addr,
                     (unsigned long long)(h->load_addr + filesz));
            return -ENOEXEC;
        }
        memsz = (uint64_t)h->bss_end_addr - h->load_addr;
    }
    if (memsz == 0) {
        snprintf(why, why_len, "multiboot address fields load nothing");
        return -ENOEXEC;
    }
    mi->nr = 1;
    mi->seg[0] = (struct mb_seg){ off, h->load_addr, h->load_addr, filesz, memsz, -1u };
    mi->entry = h->entry_addr;
    return 0;
}

/* Header, then the pieces to load and the entry, all checked against the file. */
static int mb_parse(const uint8_t *img, size_t size, struct mb_image *mi, char *why,
                    size_t why_len)
{
    struct hv_mb_header h;
    int rc = hv_mb_header_find(img, size, &h, why, why_len);

    if (rc)
        return rc == -ENOENT ? -ENOEXEC : rc;
    if (h.flags & MB_HDR_AOUT_KLUDGE)
        rc = mb_parse_aout(&h, size, mi, why, why_len);
    else if (size >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG))
        rc = mb_parse_elf(img, size, mi, why, why_len);
    else {
        snprintf(why, why_len, "not an ELF file, and the multiboot header has no address "
                 "fields (flag 16)");
        rc = -ENOEXEC;
    }
    if (rc)
        return rc;
    for (unsigned i = 0; i < mi->nr; i++)
        if (mi->entry >= mi->seg[i].paddr && mi->entry - mi->seg[i].paddr < mi->seg[i].filesz)
            return 0;
    snprintf(why, why_len, "entry 0x%llx is not in the loaded bytes of a segment",
             (unsigned long long)mi->entry);
    return -ENOEXEC;
}

int hv_mb_image_check(const uint8_t *img, size_t size, uint64_t *entry, char *why,
                      size_t why_len)
{
    struct mb_image mi;
    int rc = mb_parse(img, size, &mi, why, why_len);

    if (!rc)
        *entry = mi.entry;
    return rc;
}

/* Strings in the boot info area. */
struct mb_strings {
    uint8_t *base;
    uint64_t used;
};

static int mb_string(struct mb_strings *st, const char *a, const char *b, uint32_t *gpa,
                     char *why, size_t why_len)
{
    size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0;
    uint64_t room = MBI_STRINGS_END - MBI_STRINGS_ADDR - st->used;

    if ((uint64_t)la + lb + 1 > room) {
        snprintf(why, why_len, "the command line and module strings need more than the %llu "
                 "bytes of the boot info area", MBI_STRINGS_END - MBI_STRINGS_ADDR);
        return -E2BIG;
    }
    char *p = (char *)st->base + st->used;
    memcpy(p, a, la);
    if (b) {
        p[la] = ' ';
        memcpy(p + la + 1, b, lb - 1);
    }
    p[la + lb] = '\0';
    *gpa = (uint32_t)(MBI_STRINGS_ADDR + st->used);
    st->used += la + lb + 1;
    return 0;
}

int hv_load_multiboot(struct ferry_vm *vm, const struct hv_load_config *lc,
                      struct hv_boot *boot, uint64_t *needed_end, char *why, size_t why_len)
{
    struct hv_area taken[MB_PHDRS_MAX + HV_MODULES_MAX + 2];
    unsigned nr_taken = 0;
    struct mb_image mi;
    uint8_t *img = NULL, *mod = NULL;
    size_t size, mod_size;
    uint64_t top = HV_BIOS_END;
    char sub[256];
    int rc;

    if (lc->nr_modules > HV_MODULES_MAX) {
        snprintf(why, why_len, "%u modules: at most %d", lc->nr_modules, HV_MODULES_MAX);
        return -E2BIG;
    }
    if (lc->cmdline && strlen(lc->cmdline) > MB_CMDLINE_MAX) {
        snprintf(why, why_len, "command line of %zu bytes is longer than %d",
                 strlen(lc->cmdline), MB_CMDLINE_MAX);
        return -E2BIG;
    }
    taken[nr_taken++] = (struct hv_area){ HV_BOOTINFO_BASE, HV_BOOTINFO_BASE + HV_BOOTINFO_SIZE,
                                           "the multiboot info block" };
    taken[nr_taken++] = (struct hv_area){ HV_VGA_HOLE_END, HV_BIOS_END,
                                           "the BIOS and ACPI area" };
    rc = hv_file_read(lc->image, MB_IMAGE_MAX, "an image", &img, &size, why, why_len);
    if (rc)
        return rc;
    rc = mb_parse(img, size, &mi, sub, sizeof(sub));
    if (rc)
        goto bad;
    for (unsigned i = 0; i < mi.nr; i++) {
        const struct mb_seg *s = &mi.seg[i];
        char what[48];
        if (s->index == -1u)
            snprintf(what, sizeof(what), "the image (multiboot address fields)");
        else
            snprintf(what, sizeof(what), "segment %u", s->index);
        rc = hv_place_check(vm, what, s->paddr, s->memsz, MB_4G, taken, nr_taken, sub, sizeof(sub));
        if (rc)
            goto bad;
        taken[nr_taken++] = (struct hv_area){ s->paddr, s->paddr + s->memsz,
                                               "an earlier segment" };
        if (s->paddr + s->memsz > top)
            top = s->paddr + s->memsz;
    }
    /* first: a segment over the vector table wins */
    rc = hv_bios_ivt_write(vm, why, why_len);
    if (rc)
        goto out;
    for (unsigned i = 0; i < mi.nr; i++) {
        const struct mb_seg *s = &mi.seg[i];
        uint8_t *dst = hv_vm_gpa_ptr(vm, s->paddr, s->memsz);
        memcpy(dst, img + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
    }
    free(img);
    img = NULL;

    /* The info block. */
    uint8_t *area = hv_vm_gpa_ptr(vm, HV_BOOTINFO_BASE, HV_BOOTINFO_SIZE);
    memset(area, 0, HV_BOOTINFO_SIZE);
    struct mb_info mbi = { .flags = MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MMAP |
                                    MBI_LOADER_NAME };
    struct mb_strings st = { hv_vm_gpa_ptr(vm, MBI_STRINGS_ADDR, 1), 0 };
    mbi.mem_lower = (uint32_t)(HV_VGA_HOLE_START >> 10);
    mbi.mem_upper = (uint32_t)((vm->low_end - HV_BIOS_END) >> 10);
    rc = mb_string(&st, MB_LOADER_NAME, NULL, &mbi.boot_loader_name, why, why_len);
    if (!rc)
        rc = mb_string(&st, lc->image, lc->cmdline && *lc->cmdline ? lc->cmdline : NULL,
                       &mbi.cmdline, why, why_len);
    if (rc)
        goto out;
    struct mb_mmap_entry *mm = hv_vm_gpa_ptr(vm, MBI_MMAP_ADDR, HV_E820_MAX * sizeof(*mm));
    for (unsigned i = 0; i < vm->nr_e820; i++)
        mm[i] = (struct mb_mmap_entry){ 20, vm->e820[i].addr, vm->e820[i].size,
                                        vm->e820[i].type };
    mbi.mmap_addr = MBI_MMAP_ADDR;
    mbi.mmap_length = vm->nr_e820 * (uint32_t)sizeof(*mm);

    /* Modules: page-aligned, one after the other above the image. */
    struct mb_module *ml = hv_vm_gpa_ptr(vm, MBI_MODS_ADDR, HV_MODULES_MAX * sizeof(*ml));
    for (unsigned i = 0; i < lc->nr_modules; i++) {
        const struct hv_module *m = &lc->modules[i];
        rc = hv_file_read(m->path, MB_IMAGE_MAX, "a module", &mod, &mod_size, why, why_len);
        if (rc)
            goto out;
        uint64_t at = (top + 0xfff) & ~0xfffull;
        rc = hv_place_check(vm, "module", at, mod_size ? mod_size : 1, MB_4G, taken, nr_taken, sub,
                      sizeof(sub));
        if (rc) {
            snprintf(why, why_len, "%s: %s", m->path, sub);
            goto out;
        }
        memcpy(hv_vm_gpa_ptr(vm, at, mod_size), mod, mod_size);
        free(mod);
        mod = NULL;
        ml[i].mod_start = (uint32_t)at;
        ml[i].mod_end = (uint32_t)(at + mod_size);
        rc = mb_string(&st, m->path, m->args, &ml[i].string, why, why_len);
        if (rc)
            goto out;
        taken[nr_taken++] = (struct hv_area){ at, at + (mod_size ? mod_size : 1),
                                               "an earlier module" };
        top = at + mod_size;
    }
    mbi.mods_count = lc->nr_modules;
    mbi.mods_addr = MBI_MODS_ADDR;
    memcpy(area + (MBI_ADDR - HV_BOOTINFO_BASE), &mbi, sizeof(mbi));

    boot->entry = HV_ENTRY_MULTIBOOT;
    boot->rip = mi.entry;
    boot->rax = MB_BOOT_MAGIC;
    boot->rbx = MBI_ADDR;
    *needed_end = top;
    rc = 0;
    goto out;
bad:
    snprintf(why, why_len, "%s: %s", lc->image, sub);
out:
    free(img);
    free(mod);
    return rc;
}

int hv_entry_detect(const char *image, enum hv_entry *entry, char *why, size_t why_len)
{
    struct hv_mb_header h;
    uint8_t *img;
    size_t size;
    uint32_t pvh;
    char sub[256];
    int rc = hv_file_read(image, MB_IMAGE_MAX, "an image", &img, &size, why, why_len);

    if (rc)
        return rc;
    /* A PVH note wins (Linux has both); a multiboot header, good or bad, says multiboot. */
    if (hv_elf_pvh_entry(img, size, &pvh, sub, sizeof(sub)) == 0)
        *entry = HV_ENTRY_PVH;
    else if (hv_mb_header_find(img, size, &h, sub, sizeof(sub)) != -ENOENT)
        *entry = HV_ENTRY_MULTIBOOT;
    else
        *entry = HV_ENTRY_PVH;      /* and its loader says what is missing */
    free(img);
    return 0;
}
