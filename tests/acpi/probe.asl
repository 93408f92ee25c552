// SPDX-License-Identifier: GPL-2.0-or-later
// Test-only SSDT: reads the DSDT's _PRT indirectly (acpiexec cannot print a
// package larger than its 16 KiB output buffer).
DefinitionBlock ("", "SSDT", 2, "FERRY", "PROBE", 1)
{
    External (\_SB.PCI0._PRT, PkgObj)
    External (\_SB.PCI0._OSC, MethodObj)
    Method (PRTC, 0) { Return (SizeOf (\_SB.PCI0._PRT)) }
    // _OSC query (CDW1 bit 0) asking for everything: expect 0x1f granted, 0x10 "masked".
    Method (OSCQ, 0) {
        Local0 = Buffer (12) { 0x01, 0, 0, 0, 0x1f, 0, 0, 0, 0xff, 0, 0, 0 }
        Return (\_SB.PCI0._OSC (ToUUID ("33DB4D5B-1FF7-401C-9657-7441C03DD766"), 1, 3, Local0))
    }
    Method (PRT5, 0) { Return (DerefOf (Index (DerefOf (Index (\_SB.PCI0._PRT, 5)), 3))) }
}
