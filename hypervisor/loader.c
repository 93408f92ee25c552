// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loaders and the boot-time memory map.
 *
 *   real  a flat image at 0x7c00, entered in 16-bit real mode at 0000:7c00
 *   pvh   an ELF (32- or 64-bit) with Xen's XEN_ELFNOTE_PHYS32_ENTRY note,
 *         entered in flat 32-bit protected mode with EBX pointing at a
 *         struct hvm_start_info (version 1: cmdline, modules, memory map,
 *         rsdp_paddr), as Xen's PVH ABI and Linux's arch/x86/platform/pvh
 *         expect.
 *   multiboot  see multiboot.c
 *
 * The image is hostile input: every offset and size is checked against
 * the file before use, and every load address against guest RAM, the boot
 * info area and the other segments.
 */
#include "hypervisor/hv.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xen/arch-x86/hvm/start_info.h>
#include <xen/elfnote.h>

#include "acpi/acpi.h"
#include "hypervisor/hv-elf.h"

#define HV_IMAGE_MAX            (1ull << 30)    /* bytes read from an image file */
#define HV_CMDLINE_MAX          4095
/* The boot info area (HV_BOOTINFO_BASE): start info, memmap, modlist, the
 * command line, then the modules' command lines. */
#define BI_START_INFO           (HV_BOOTINFO_BASE + 0x000)
#define BI_MEMMAP               (HV_BOOTINFO_BASE + 0x100)
#define BI_MODLIST              (HV_BOOTINFO_BASE + 0x400)
#define BI_CMDLINE              (HV_BOOTINFO_BASE + 0x1000)
#define BI_MOD_STRINGS          (BI_CMDLINE + HV_CMDLINE_MAX + 1)
#define BI_END                  (HV_BOOTINFO_BASE + HV_BOOTINFO_SIZE)

static_assert(BI_START_INFO + sizeof(struct hvm_start_info) <= BI_MEMMAP, "start info fits");
static_assert(BI_MEMMAP + HV_E820_MAX * sizeof(struct hvm_memmap_table_entry) <= BI_MODLIST,
              "memmap fits below the module list");
static_assert(BI_MODLIST + HV_MODULES_MAX * sizeof(struct hvm_modlist_entry) <= BI_CMDLINE,
              "module list fits below the command line");
static_assert(BI_MOD_STRINGS < BI_END, "command line fits in the boot info area");

static void e820_add(struct ferry_vm *vm, uint64_t addr, uint64_t size, uint32_t type)
{
    if (size && vm->nr_e820 < HV_E820_MAX)
        vm->e820[vm->nr_e820++] = (struct hv_e820){ addr, size, type };
}

void hv_e820_build(struct ferry_vm *vm)
{
    vm->nr_e820 = 0;
    e820_add(vm, 0, HV_VGA_HOLE_START, XEN_HVM_MEMMAP_TYPE_RAM);
    e820_add(vm, HV_VGA_HOLE_END, HV_ACPI_BASE - HV_VGA_HOLE_END, XEN_HVM_MEMMAP_TYPE_RESERVED);
    e820_add(vm, HV_ACPI_BASE, HV_ACPI_SIZE, XEN_HVM_MEMMAP_TYPE_ACPI);
    e820_add(vm, HV_ACPI_BASE + HV_ACPI_SIZE, HV_BIOS_END - HV_ACPI_BASE - HV_ACPI_SIZE,
             XEN_HVM_MEMMAP_TYPE_RESERVED);
    e820_add(vm, HV_BIOS_END, vm->low_end - HV_BIOS_END, XEN_HVM_MEMMAP_TYPE_RAM);
    e820_add(vm, HV_ECAM_BASE, HV_ECAM_SIZE, XEN_HVM_MEMMAP_TYPE_RESERVED);
    e820_add(vm, HV_IDENTITY_MAP_ADDR, 0x4000, XEN_HVM_MEMMAP_TYPE_RESERVED);
    if (vm->ram_size > vm->low_end)
        e820_add(vm, HV_HIGH_RAM_BASE, vm->ram_size - vm->low_end, XEN_HVM_MEMMAP_TYPE_RAM);
}

/*
 * The one place ACPI tables enter guest memory.  libacpi (acpi/) lays out
 * the whole set for the E820 ACPI area [HV_ACPI_BASE, +HV_ACPI_SIZE), RSDP
 * first; the guest finds it through hvm_start_info.rsdp_paddr (PVH) or by
 * scanning 0xe0000-0xfffff for "RSD PTR " (anything else).  The tables
 * describe Ferry's PC: this VM's vCPUs and RAM, the in-kernel IOAPIC and
 * LAPIC, ECAM at HV_ECAM_BASE, and the devices ferry-dm provides (COM1/2,
 * RTC, Xen's PM block with SCI 9, the PCI root bridge).  No HPET: KVM has
 * none in the kernel.
 */
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

uint64_t hv_acpi_find_facs(const uint8_t *blob, size_t len, uint64_t base)
{
    uint64_t sdt, fadt = 0, facs;
    size_t entry;

    /* RSDP: RsdtAddress at 16, XsdtAddress at 24 (revision 2). */
    if (len < 36 || memcmp(blob, "RSD PTR ", 8))
        return 0;
    sdt = blob[15] >= 2 && rd64(blob + 24) ? rd64(blob + 24) : rd32(blob + 16);
    entry = blob[15] >= 2 && rd64(blob + 24) ? 8 : 4;
    if (sdt < base || sdt - base > len - 36)
        return 0;
    const uint8_t *t = blob + (sdt - base);
    uint32_t tlen = rd32(t + 4);
    if (tlen < 36 || tlen > len - (sdt - base))
        return 0;
    for (uint32_t off = 36; off + entry <= tlen && !fadt; off += (uint32_t)entry) {
        uint64_t a = entry == 8 ? rd64(t + off) : rd32(t + off);
        if (a >= base && len >= 140 && a - base <= len - 140 &&
            !memcmp(blob + (a - base), "FACP", 4))
            fadt = a;
    }
    if (!fadt)
        return 0;
    const uint8_t *f = blob + (fadt - base);
    facs = rd32(f + 4) >= 140 && rd64(f + 132) ? rd64(f + 132) : rd32(f + 36);
    return facs;
}

int hv_acpi_place(struct ferry_vm *vm, const char *const *tables, uint64_t *rsdp, char *why,
                  size_t why_len)
{
    struct acpi_config *cfg = calloc(1, sizeof(*cfg));
    void *buf = malloc(ACPI_BLOB_BUF_SIZE);
    struct hv_acpi_files files = { .nr = 0 };
    size_t used = 0;
    int rc = -ENOMEM;

    static_assert(ACPI_TABLES_SIZE_MAX <= HV_ACPI_SIZE, "the ACPI area holds the largest set");
    static_assert(ACPI_BLOB_BASE_DEFAULT == HV_ACPI_BASE, "libacpi and ferry-hv agree");
    *rsdp = 0;
    if (!cfg || !buf)
        goto out;
    rc = acpi_config_init_default(cfg, vm->nr_vcpus, vm->ram_size);
    if (rc)
        goto out;
    cfg->flags &= ~ACPI_HAS_HPET;
    cfg->pci.ecam_base = HV_ECAM_BASE;
    cfg->lapic_addr = HV_LAPIC_BASE;
    cfg->ioapic_addr = HV_IOAPIC_BASE;
    rc = hv_acpi_files_load(&files, cfg, tables, why, why_len);
    if (rc) {
        free(cfg);
        free(buf);
        return rc;
    }
    rc = acpi_build_blob(cfg, HV_ACPI_BASE, buf, ACPI_BLOB_BUF_SIZE, &used, rsdp,
                         vm->cfg.log, vm->cfg.log_opaque);
    if (rc)
        goto out;
    uint8_t *dst = hv_vm_gpa_ptr(vm, HV_ACPI_BASE, HV_ACPI_SIZE);
    memcpy(dst, buf, used);
    memset(dst + used, 0, HV_ACPI_SIZE - used);
    vm->facs_gpa = hv_acpi_find_facs(buf, used, HV_ACPI_BASE);
out:
    if (rc) {
        ferry_logf(vm->cfg.log, vm->cfg.log_opaque, FERRY_LOG_ERROR,
                   "acpi tables for %u vcpus, %llu MiB: %s", vm->nr_vcpus,
                   (unsigned long long)(vm->ram_size >> 20), strerror(-rc));
        snprintf(why, why_len, "cannot build the ACPI tables: %s%s", strerror(-rc),
                 files.nr ? " (see the log for the --acpi-table file at fault)" : "");
    }
    hv_acpi_files_free(&files);
    free(cfg);
    free(buf);
    return rc;
}

int hv_file_read(const char *path, uint64_t max, const char *what, uint8_t **buf,
                 size_t *size, char *why, size_t why_len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    *buf = NULL;
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_len, "%s: cannot open: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(why, why_len, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        if (max >= (1u << 20))
            snprintf(why, why_len, "%s: %lld bytes, larger than the %llu MiB %s may have",
                     path, (long long)st.st_size, (unsigned long long)(max >> 20), what);
        else
            snprintf(why, why_len, "%s: %lld bytes, larger than the %llu bytes %s may have",
                     path, (long long)st.st_size, (unsigned long long)max, what);
        goto out;
    }
    *size = (size_t)st.st_size;
    *buf = malloc(*size ? *size : 1);
    if (!*buf) {
        rc = -ENOMEM;
        snprintf(why, why_len, "%s: out of memory", path);
        goto out;
    }
    for (size_t done = 0; done < *size;) {
        ssize_t n = read(fd, *buf + done, *size - done);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(why, why_len, "%s: read: %s", path, n < 0 ? strerror(errno) : "short read");
            goto out;
        }
        done += (size_t)n;
    }
out:
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    close(fd);
    return rc;
}

static int read_image(const char *path, uint8_t **buf, size_t *size, char *why, size_t why_len)
{
    return hv_file_read(path, HV_IMAGE_MAX, "an image", buf, size, why, why_len);
}

/* ------------------------------------------------------------------ */
/* ELF                                                                 */

/* Walks the notes of PT_NOTE segments for XEN_ELFNOTE_PHYS32_ENTRY. */
static int elf_find_entry(const uint8_t *img, const struct hv_elf *elf, uint32_t *entry,
                          char *why, size_t why_len)
{
    for (unsigned i = 0; i < elf->nr; i++) {
        const struct hv_elf_seg *s = &elf->seg[i];
        uint64_t off = 0;
        if (s->type != PT_NOTE)
            continue;
        while (s->filesz - off >= 12) {
            const uint8_t *n = img + s->offset + off;
            uint32_t namesz, descsz, type;
            memcpy(&namesz, n, 4);
            memcpy(&descsz, n + 4, 4);
            memcpy(&type, n + 8, 4);
            uint64_t name_al = ((uint64_t)namesz + 3) & ~3ull;
            uint64_t desc_al = ((uint64_t)descsz + 3) & ~3ull;
            uint64_t left = s->filesz - off - 12;
            if (name_al > left || desc_al > left - name_al) {
                snprintf(why, why_len, "segment %u: note at offset 0x%llx runs past the segment",
                         i, (unsigned long long)off);
                return -ENOEXEC;
            }
            const uint8_t *desc = n + 12 + name_al;
            if (namesz == 4 && !memcmp(n + 12, "Xen", 4) && type == XEN_ELFNOTE_PHYS32_ENTRY) {
                if (descsz == 4) {
                    memcpy(entry, desc, 4);
                    return 0;
                }
                if (descsz == 8) {
                    uint64_t e64;
                    memcpy(&e64, desc, 8);
                    if (e64 >> 32) {
                        snprintf(why, why_len, "PVH entry 0x%llx is above 4 GiB",
                                 (unsigned long long)e64);
                        return -ENOEXEC;
                    }
                    *entry = (uint32_t)e64;
                    return 0;
                }
                snprintf(why, why_len, "XEN_ELFNOTE_PHYS32_ENTRY note has %u bytes, need 4 or 8",
                         descsz);
                return -ENOEXEC;
            }
            off += 12 + name_al + desc_al;
        }
    }
    snprintf(why, why_len, "no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH kernel");
    return -ENOEXEC;
}

int hv_elf_pvh_entry(const uint8_t *img, size_t size, uint32_t *entry, char *why, size_t why_len)
{
    struct hv_elf elf;
    int rc = hv_elf_parse(img, size, &elf, why, why_len);

    return rc ? rc : elf_find_entry(img, &elf, entry, why, why_len);
}

/*
 * The first instruction must be image bytes the loader places: an entry in
 * the PCI hole, on the LAPIC, past RAM or beside every segment would load
 * fine and then fault or run whatever is there.
 */
static int check_entry(struct ferry_vm *vm, const struct hv_elf *elf, uint32_t entry,
                       char *why, size_t why_len)
{
    if (entry >= HV_LAPIC_BASE && entry < HV_LAPIC_BASE + 0x1000) {
        snprintf(why, why_len, "PVH entry 0x%x is at the local APIC (0x%llx)", entry,
                 (unsigned long long)HV_LAPIC_BASE);
        return -ENOEXEC;
    }
    if (entry >= HV_PCI_HOLE_START) {
        snprintf(why, why_len, "PVH entry 0x%x is in the PCI hole [0x%llx, 0x%llx)", entry,
                 (unsigned long long)HV_PCI_HOLE_START, (unsigned long long)HV_HIGH_RAM_BASE);
        return -ENOEXEC;
    }
    if (!hv_vm_gpa_ptr(vm, entry, 1)) {
        snprintf(why, why_len, "PVH entry 0x%x is outside guest RAM (%llu MiB; RAM is "
                 "0-0x%llx and 0x%llx up)", entry, (unsigned long long)(vm->ram_size >> 20),
                 (unsigned long long)HV_VGA_HOLE_START, (unsigned long long)HV_VGA_HOLE_END);
        return -ENOEXEC;
    }
    for (unsigned i = 0; i < elf->nr; i++) {
        const struct hv_elf_seg *s = &elf->seg[i];

        if (s->type == PT_LOAD && entry >= s->paddr && entry - s->paddr < s->memsz)
            return 0;
    }
    snprintf(why, why_len, "PVH entry 0x%x is on no loaded segment", entry);
    return -ENOEXEC;
}

static int load_real(struct ferry_vm *vm, const struct hv_load_config *lc, struct hv_boot *boot,
                     uint64_t *needed_end, char *why, size_t why_len)
{
    uint8_t *img;
    size_t size;
    int rc = read_image(lc->image, &img, &size, why, why_len);

    if (rc)
        return rc;
    if (size == 0) {
        snprintf(why, why_len, "%s: empty image", lc->image);
        rc = -ENOEXEC;
        goto out;
    }
    if (size > HV_VGA_HOLE_START - HV_REAL_LOAD_ADDR) {
        snprintf(why, why_len, "%s: image of %zu bytes is larger than the %llu bytes of RAM "
                 "between 0x7c00 and 0xa0000", lc->image, size,
                 HV_VGA_HOLE_START - HV_REAL_LOAD_ADDR);
        rc = -E2BIG;
        goto out;
    }
    memcpy(hv_vm_gpa_ptr(vm, HV_REAL_LOAD_ADDR, size), img, size);
    boot->entry = HV_ENTRY_REAL;
    boot->rip = HV_REAL_LOAD_ADDR;
    *needed_end = HV_BIOS_END;
out:
    free(img);
    return rc;
}

static int load_pvh(struct ferry_vm *vm, const struct hv_load_config *lc, struct hv_boot *boot,
                    uint64_t *needed_end, char *why, size_t why_len)
{
    struct hv_area taken[HV_ELF_PHDRS_MAX + 3];
    unsigned nr_taken = 0;
    struct hv_elf elf;
    uint8_t *img = NULL, *mod = NULL;
    size_t size, mod_size = 0;
    uint32_t entry;
    uint64_t top = HV_BIOS_END;
    char seg_why[160];
    int rc;

    taken[nr_taken++] = (struct hv_area){ HV_BOOTINFO_BASE, HV_BOOTINFO_BASE + HV_BOOTINFO_SIZE,
                                         "the boot info area" };
    taken[nr_taken++] = (struct hv_area){ HV_ACPI_BASE, HV_ACPI_BASE + HV_ACPI_SIZE,
                                         "the ACPI area" };
    rc = read_image(lc->image, &img, &size, why, why_len);
    if (rc)
        return rc;
    rc = hv_elf_parse(img, size, &elf, seg_why, sizeof(seg_why));
    if (!rc)
        rc = elf_find_entry(img, &elf, &entry, seg_why, sizeof(seg_why));
    if (rc) {
        snprintf(why, why_len, "%s: %s", lc->image, seg_why);
        goto out;
    }
    for (unsigned i = 0; i < elf.nr; i++) {
        const struct hv_elf_seg *s = &elf.seg[i];
        char what[32];
        if (s->type != PT_LOAD || s->memsz == 0)
            continue;
        snprintf(what, sizeof(what), "segment %u", i);
        rc = hv_place_check(vm, what, s->paddr, s->memsz, 0, taken, nr_taken, seg_why,
                            sizeof(seg_why));
        if (rc) {
            snprintf(why, why_len, "%s: %s", lc->image, seg_why);
            goto out;
        }
        taken[nr_taken++] = (struct hv_area){ s->paddr, s->paddr + s->memsz, "an earlier segment" };
        if (s->paddr + s->memsz > top)
            top = s->paddr + s->memsz;
    }
    rc = check_entry(vm, &elf, entry, seg_why, sizeof(seg_why));
    if (rc) {
        snprintf(why, why_len, "%s: %s", lc->image, seg_why);
        goto out;
    }
    /* All checked: copy, zero the bss parts. */
    for (unsigned i = 0; i < elf.nr; i++) {
        const struct hv_elf_seg *s = &elf.seg[i];
        if (s->type != PT_LOAD || s->memsz == 0)
            continue;
        uint8_t *dst = hv_vm_gpa_ptr(vm, s->paddr, s->memsz);
        memcpy(dst, img + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
    }

    /* hvm_start_info, memory map, command line, modules. */
    struct hvm_start_info *si = hv_vm_gpa_ptr(vm, BI_START_INFO, sizeof(*si));
    memset(si, 0, HV_BOOTINFO_SIZE);
    si->magic = XEN_HVM_START_MAGIC_VALUE;
    si->version = 1;
    if (lc->cmdline) {
        size_t len = strlen(lc->cmdline);
        if (len > HV_CMDLINE_MAX) {
            snprintf(why, why_len, "command line of %zu bytes is longer than %d", len,
                     HV_CMDLINE_MAX);
            rc = -E2BIG;
            goto out;
        }
        memcpy(hv_vm_gpa_ptr(vm, BI_CMDLINE, len + 1), lc->cmdline, len + 1);
        si->cmdline_paddr = BI_CMDLINE;
    }
    /* Modules page-aligned after the image, in order; each one's arguments
     * (FILE,ARGS) become its cmdline_paddr, as Xen's PVH ABI defines it. */
    struct hvm_modlist_entry *ml = hv_vm_gpa_ptr(vm, BI_MODLIST,
                                                 HV_MODULES_MAX * sizeof(*ml));
    uint64_t strings = BI_MOD_STRINGS;

    if (lc->nr_modules > HV_MODULES_MAX) {
        snprintf(why, why_len, "%u modules: at most %d", lc->nr_modules, HV_MODULES_MAX);
        rc = -E2BIG;
        goto out;
    }
    for (unsigned i = 0; i < lc->nr_modules; i++) {
        const struct hv_module *m = &lc->modules[i];

        rc = hv_file_read(m->path, HV_IMAGE_MAX, "a module", &mod, &mod_size, why, why_len);
        if (rc)
            goto out;
        uint64_t at = (top + 0xfff) & ~0xfffull;
        rc = hv_place_check(vm, "module", at, mod_size ? mod_size : 1, 0, taken, nr_taken,
                            seg_why, sizeof(seg_why));
        if (rc) {
            snprintf(why, why_len, "%s: %s", m->path, seg_why);
            goto out;
        }
        memcpy(hv_vm_gpa_ptr(vm, at, mod_size), mod, mod_size);
        ml[i] = (struct hvm_modlist_entry){ .paddr = at, .size = mod_size };
        if (m->args) {
            size_t len = strlen(m->args);

            if (len + 1 > BI_END - strings) {
                snprintf(why, why_len, "%s: the modules' arguments need more than the %llu "
                         "bytes the boot info area has for them", m->path,
                         (unsigned long long)(BI_END - BI_MOD_STRINGS));
                rc = -E2BIG;
                goto out;
            }
            memcpy(hv_vm_gpa_ptr(vm, strings, len + 1), m->args, len + 1);
            ml[i].cmdline_paddr = strings;
            strings += len + 1;
        }
        free(mod);
        mod = NULL;
        top = at + mod_size;
    }
    if (lc->nr_modules) {
        si->nr_modules = lc->nr_modules;
        si->modlist_paddr = BI_MODLIST;
    }
    struct hvm_memmap_table_entry *mm = hv_vm_gpa_ptr(vm, BI_MEMMAP, vm->nr_e820 * sizeof(*mm));
    for (unsigned i = 0; i < vm->nr_e820; i++)
        mm[i] = (struct hvm_memmap_table_entry){ vm->e820[i].addr, vm->e820[i].size,
                                                 vm->e820[i].type, 0 };
    si->memmap_paddr = BI_MEMMAP;
    si->memmap_entries = vm->nr_e820;
    si->rsdp_paddr = lc->rsdp;

    boot->entry = HV_ENTRY_PVH;
    boot->rip = entry;
    boot->rbx = BI_START_INFO;
    *needed_end = top;
out:
    free(img);
    free(mod);
    return rc;
}

int hv_load(struct ferry_vm *vm, const struct hv_load_config *lc_in, struct hv_boot *boot,
            uint64_t *needed_end, char *why, size_t why_len)
{
    struct hv_load_config copy = *lc_in;
    struct hv_load_config *lc = &copy;

    memset(boot, 0, sizeof(*boot));
    lc->rsdp = 0;
    if (!lc->no_acpi) {
        int rc = hv_acpi_place(vm, lc->acpi_tables, &lc->rsdp, why, why_len);
        if (rc)
            return rc;
    }
    if (lc->entry == HV_ENTRY_AUTO) {
        int rc = hv_entry_detect(lc->image, &lc->entry, why, why_len);
        if (rc)
            return rc;
    }
    if (lc->entry == HV_ENTRY_MULTIBOOT)
        return hv_load_multiboot(vm, lc, boot, needed_end, why, why_len);
    if (lc->entry == HV_ENTRY_REAL) {
        if (lc->nr_modules) {
            snprintf(why, why_len, "modules need the pvh or multiboot entry");
            return -EINVAL;
        }
        return load_real(vm, lc, boot, needed_end, why, why_len);
    }
    return load_pvh(vm, lc, boot, needed_end, why, why_len);
}
