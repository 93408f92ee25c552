// SPDX-License-Identifier: GPL-2.0-or-later
// Test-only SSDT: reads the DSDT's _PRT indirectly (acpiexec cannot print a
// package larger than its 16 KiB output buffer).
DefinitionBlock ("", "SSDT", 2, "FERRY", "PROBE", 1)
{
    External (\_SB.PCI0._PRT, PkgObj)
    Method (PRTC, 0) { Return (SizeOf (\_SB.PCI0._PRT)) }
    Method (PRT5, 0) { Return (DerefOf (Index (DerefOf (Index (\_SB.PCI0._PRT, 5)), 3))) }
}
