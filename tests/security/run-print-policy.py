#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`ferry-dm --print-policy` prints, for each device configuration below,
exactly the policy in tests/security/policy/NAME.txt: which lists the
devices bring in (the collection in ferry-dm's start-up, from each device
type's list) and every rule of every list.  A change to a syscall list, or
to which configurations load it, shows up here as a diff to review.

    run-print-policy.py            check every configuration
    run-print-policy.py --update   rewrite the expected files from this build

What varies between runs and machines is normalised on both sides: the
libseccomp version in the first line and ferry-dm's own pid.  A sanitizer
build adds its runtime's list (sandbox_syscalls_sanitizer), which is dropped
from the output (and from the totals) before comparing.  The syscall numbers
are x86_64's: SKIP elsewhere.
"""
import difflib
import os
import platform
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
from ferrytest import BUILD, TIMEOUT, fail, skip  # noqa: E402

DM = os.path.join(BUILD, "devmodel", "ferry-dm")
EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policy")

MIXED = """[dm]
no-defaults=true
devices=rtc;uart,id=com2
[qemu:net0]
device=rtl8139
[usb]
qmp=/nonexistent/qmp.sock
"""

# name: (ferry-dm arguments, --config file contents or None)
CASES = {
    "default": ([], None),
    "no-defaults": (["--no-defaults"], None),
    "uart-only": (["--no-defaults", "--device", "uart"], None),
    "com1-replaced": (["--device", "rtc,id=com1"], None),
    "qemu-device": (["--device", "qemu,device=lsi53c895a"], None),
    "qemu-only": (["--no-defaults", "--device", "qemu,device=rtl8139"], None),
    "qemu-config": ([], "[qemu]\ndevice=lsi53c895a\n"),
    "usb-config": ([], "[usb]\nqmp=/nonexistent/qmp.sock\n"),
    "qmp": (["--qmp", "/nonexistent/qmp.sock"], None),
    "mixed-config": ([], MIXED),
    "test-devices": (["--device", "pci-test", "--device", "pci-testdev", "--device",
                      "pc-testdev", "--device", "fw-cfg"], None),
    "everything": (["--device", "qemu,device=rtl8139", "--device", "pci-test",
                    "--qmp", "/nonexistent/qmp.sock"], None),
    "seccomp-log": (["--seccomp=log", "--device", "qemu,device=rtl8139"], None),
    "seccomp-off": (["--seccomp=off"], None),
    "user": (["--user", "nobody", "--no-namespaces"], None),
}


def normalise(text):
    text = re.sub(r"libseccomp [0-9.]+\)", "libseccomp N)", text)
    return re.sub(r"own pid \(0x[0-9a-f]+\)", "own pid (PID)", text)


def drop_list(text, name):
    """text without the block of list `name`, its rules and list taken off the totals."""
    out, dropped, skipping = [], 0, False
    for ln in text.split("\n"):
        if ln.startswith("# list "):
            skipping = ln.startswith("# list %s:" % name)
            if skipping:
                out.pop()       # the blank line before the block
                continue
        elif skipping:
            if ln == "":
                skipping = False
            else:
                dropped += 1
                continue
        out.append(ln)
    text = "\n".join(out)
    if not dropped:
        return text

    def fix(m):
        return "# %d rules in %d lists" % (int(m.group(1)) - dropped, int(m.group(2)) - 1)
    return re.sub(r"# (\d+) rules in (\d+) lists", fix, text)


def policy(name, args, config, tmp):
    argv = [DM, "--print-policy"] + args
    if config is not None:
        path = os.path.join(tmp, name + ".conf")
        with open(path, "w") as f:
            f.write(config)
        argv += ["--config", path]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        fail("%s: exit status %d" % (" ".join(argv), p.returncode), p.stdout, p.stderr)
    return drop_list(normalise(p.stdout), "sanitizer")


def main():
    update = sys.argv[1:] == ["--update"]
    if not os.path.exists(DM):
        fail(DM + " is not built")
    if platform.machine() != "x86_64":
        skip("the expected policies hold x86_64's syscall numbers, this is " +
             platform.machine())
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (args, config) in CASES.items():
            got = policy(name, args, config, tmp)
            path = os.path.join(EXPECTED, name + ".txt")
            if update:
                with open(path, "w") as f:
                    f.write(got)
                continue
            try:
                with open(path) as f:
                    want = f.read()
            except OSError as e:
                fail("%s: %s" % (path, e.strerror))
            if got != want:
                diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                    path, "ferry-dm --print-policy " +
                                                    " ".join(args)))
                print("policy %s differs:\n%s" % (name, diff))
                bad.append(name)
            else:
                print("ok: %s" % name)
    if bad:
        fail("--print-policy differs from the expected policy for: " + ", ".join(bad) +
             " (a deliberate change: rerun with --update and review the diff)")


if __name__ == "__main__":
    main()
