#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ferry-dm loads libusb and usbredir only when USB is wanted (usb/libs-dl.c,
usb_libs_load) and libpci only for [pci] devices (pci/host/libs-dl.c,
pcihost_scan): its ELF file must not name them (nor libudev, which comes
with both) as DT_NEEDED (a new call without a stand-in in a libs-dl.c
brings them back at start-up), and it must export usb/redir.c's
interposition of four libusb functions, which libusbredirhost binds to once
loaded.

    dm-needed.py READELF FERRY_DM
"""
import re
import subprocess
import sys

UNWANTED = ("libusb-1.0", "libusbredirhost", "libusbredirparser", "libpci", "libudev")
EXPORTED = ("libusb_reset_device", "libusb_set_auto_detach_kernel_driver",
            "libusb_cancel_transfer", "libusb_set_interface_alt_setting")


def main():
    readelf, dm = sys.argv[1], sys.argv[2]
    dyn = subprocess.run([readelf, "-d", dm], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    if not needed:
        print(f"FAIL: {readelf} -d {dm} lists no NEEDED entry: cannot read its dynamic section")
        return 1
    print("ferry-dm needs: " + " ".join(needed))
    bad = [n for n in needed if n.startswith(UNWANTED)]
    if bad:
        print(f"FAIL: {dm} needs {' '.join(bad)} at start-up: a libusb, usbredir or libpci "
              "function without a stand-in in usb/libs-dl.c or pci/host/libs-dl.c (nm -D "
              "--undefined-only names it)")
        return 1
    syms = subprocess.run([readelf, "--dyn-syms", "-W", dm], capture_output=True, text=True,
                          check=True).stdout
    defined = {f[7] for f in (line.split() for line in syms.splitlines())
               if len(f) >= 8 and f[6] != "UND"}
    missing = [s for s in EXPORTED if s not in defined]
    if missing:
        print(f"FAIL: {dm} does not export {' '.join(missing)} (usb/redir.c's interposition "
              "for libusbredirhost: usb_dl_link_args in usb/meson.build)")
        return 1
    print("ok: no libusb, usbredir or libpci at start-up; the interposition is exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
