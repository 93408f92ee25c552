// SPDX-License-Identifier: GPL-2.0-or-later
// A caller-supplied SSDT (ferry acpi dump --table, ferry-hv --acpi-table):
// a device of its own and a method returning a known constant.
DefinitionBlock ("", "SSDT", 2, "FERRY", "FRYXTRA", 1)
{
    Scope (\_SB)
    {
        Device (FRYX)
        {
            Name (_HID, "FRY0001")
            Name (_UID, 0)
            Method (_STA, 0, NotSerialized) { Return (0x0F) }
            // "FRYX" as a number: acpiexec and the tests look for it.
            Method (FRYV, 0, NotSerialized) { Return (0x58595246) }
        }
    }
}
