/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest-physical memory map of a ferry-hv guest (a standard PC):
 *
 *   0x0000_0000 .. 0x0009_ffff   RAM (boot info at 0x1000, real-mode image at 0x7c00)
 *   0x000a_0000 .. 0x000b_ffff   hole (VGA), routed as MMIO
 *   0x000c_0000 .. 0x000d_ffff   reserved (backed)
 *   0x000e_0000 .. 0x000e_ffff   ACPI tables (backed, E820 type ACPI)
 *   0x000f_0000 .. 0x000f_ffff   reserved (backed)
 *   0x0010_0000 .. low_end       RAM, low_end = min(RAM, 3 GiB)
 *   0xc000_0000 .. 0xffff_ffff   PCI hole: MMIO BARs, ECAM at 0xe000_0000,
 *                                IOAPIC, LAPIC, KVM's TSS/identity map pages
 *   0x1_0000_0000 ..             the rest of RAM
 */
#ifndef FERRY_HV_MEMMAP_H
#define FERRY_HV_MEMMAP_H

#define HV_VGA_HOLE_START       0x000a0000ull
#define HV_VGA_HOLE_END         0x000c0000ull   /* exclusive */
#define HV_ACPI_BASE            0x000e0000ull
#define HV_ACPI_SIZE            0x00010000ull
#define HV_BIOS_END             0x00100000ull
#define HV_BOOTINFO_BASE        0x00001000ull   /* hvm_start_info, memmap, cmdline */
#define HV_BOOTINFO_SIZE        0x00005000ull
#define HV_REAL_LOAD_ADDR       0x00007c00ull
#define HV_LOW_RAM_END_MAX      0xc0000000ull
#define HV_PCI_HOLE_START       HV_LOW_RAM_END_MAX
#define HV_ECAM_BASE            0xe0000000ull
#define HV_ECAM_SIZE            0x10000000ull   /* buses 0..255 */
#define HV_IOAPIC_BASE          0xfec00000ull
#define HV_LAPIC_BASE           0xfee00000ull
#define HV_IDENTITY_MAP_ADDR    0xfeffc000ull   /* one page */
#define HV_TSS_ADDR             0xfeffd000ull   /* three pages */
#define HV_HIGH_RAM_BASE        0x100000000ull
#define HV_MEMORY_MIN           (2ull << 20)
/* The guest-physical top (RAM plus the 1 GiB PCI hole) must fit the host's
 * physical address width: 16 TiB fits the 46 bits of common x86 servers
 * with room (a host with fewer bits refuses less at KVM_SET_USER_MEMORY_REGION). */
#define HV_MEMORY_MAX           (16ull << 40)
#define HV_MEMORY_RANGE_TEXT    "a multiple of 4K from 2M to 16T"

#endif
