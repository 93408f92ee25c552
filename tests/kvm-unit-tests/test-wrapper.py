#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ferry-qemu without kvm-unit-tests: its probes answered the way
kvm-unit-tests' scripts read them, its refusals, and a guest of Ferry's own
shaped like a kvm-unit-tests test (tests/guests/kut-probe.S) run with the
exact command line kvm-unit-tests' x86/run builds.  Exits 77 without a
usable /dev/kvm.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
import ferrytest  # noqa: E402
from ferrytest import BUILD, TIMEOUT, ok  # noqa: E402

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ferry-qemu")
FERRY = os.path.join(BUILD, "cli", "ferry")
PROBE = os.path.join(BUILD, "tests", "guests", "kut-probe.elf")

# What kvm-unit-tests' x86/run puts before the test's own options.
X86_RUN = ["--no-reboot", "-nodefaults", "-global", "kvm-pit.lost_tick_policy=discard",
           "-device", "pc-testdev", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
           "-display", "none", "-serial", "stdio", "-device", "pci-testdev",
           "-machine", "accel=kvm", "-kernel"]


def wrapper(args, timeout=TIMEOUT, prefix=()):
    env = dict(os.environ, FERRY=FERRY)
    p = subprocess.run(list(prefix) + [WRAPPER] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def show(rc, out, err):
    return "status %d, stdout %r, stderr %r" % (rc, out[-600:], err[-600:])


def main():
    ferrytest.kvm_check()
    tmp = tempfile.mkdtemp(prefix="ferry-kut-")
    try:
        run_checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ferrytest.finish()


def run_checks(tmp):
    # run_tests.sh: `$QEMU --help | grep -q QEMU`, the version from -h's first line
    rc, out, err = wrapper(["--help"])
    ok(rc == 0 and "QEMU" in out, "--help mentions QEMU", show(rc, out, err))
    rc, out, err = wrapper(["-h"])
    fields = re.split(r"[ .]", out.splitlines()[0]) if out else []
    ok(rc == 0 and len(fields) > 5 and all(f.isdigit() for f in fields[3:6]),
       "-h's first line reads as QEMU_MAJOR/MINOR/MICRO", show(rc, out, err))

    # x86/run: `$QEMU -device '?' | grep -F '"pc-testdev"'` and pci-testdev
    rc, out, err = wrapper(["-device", "?"])
    ok('"pc-testdev"' in out and '"pci-testdev"' in out, "-device ? lists the test devices",
       show(rc, out, err))

    # runtime.bash's probe run: the kernel _NO_FILE_4Uhere_ must fail to load, as QEMU says it
    rc, out, err = wrapper(X86_RUN + ["_NO_FILE_4Uhere_", "-smp", "2", "-cpu", "max"])
    ok(rc == 1 and re.search(r"[Cc]ould not (load|open) kernel", err) and
       "_NO_FILE_4Uhere_" in err, "probe run: could not load kernel", show(rc, out, err))

    # What Ferry cannot do is refused at the probe run, with the reason (run_tests.sh's SKIP)
    for opts, why in [
            (["-cpu", "Opteron_G1,vendor=AuthenticAMD"], "no named CPU models"),
            (["-cpu", "host,hv_passthrough"], "Hyper-V"),
            (["-cpu", "max,+no_such_feature"], "no_such_feature"),
            (["-machine", "vmport=on"], "vmport=on"),
            (["-M", "q35,kernel-irqchip=split"], "q35"),
            (["-device", "hyperv-testdev"], "hyperv-testdev"),
            (["-accel", "tcg"], "KVM only"),
            (["-smp", "2,sockets=2"], "sockets=2"),
            (["-m", "2048,maxmem=4G"], "maxmem"),
            (["-global", "kvm-pit.lost_tick_policy=delay"], "lost_tick_policy=delay"),
            (["-device", "isa-debug-exit,iobase=0xf4,iosize=1"], "iosize=4"),
            (["-qmp", "unix:/nonexistent,server=on"], "-qmp")]:
        rc, out, err = wrapper(X86_RUN + ["_NO_FILE_4Uhere_"] + opts)
        ok(rc == 1 and why in err and "could not load kernel" not in err,
           "refused: %s" % " ".join(opts), show(rc, out, err))

    # A run exactly as x86/run starts a test: debug-exit 5 becomes (5 << 1) | 1
    env = os.path.join(tmp, "env")
    with open(env, "w") as f:
        f.write("NR_CPUS=2\nTESTNAME=probe\n")
    rc, out, err = wrapper(X86_RUN + [PROBE, "-smp", "2", "-append", "exit 5",
                                      "-cpu", "max,-x2apic", "-m", "256", "-initrd", env])
    ok(rc == 11, "debug exit 5 -> status 11", show(rc, out, err))
    ok("cmdline: %s exit 5\n" % PROBE in out, "-append after the image's name", out)
    ok("module: NR_CPUS=2\n" in out, "-initrd is module 0", out)
    ok("nb_cpus 00000002\n" in out, "-smp 2: fw_cfg NB_CPUS 2", out)
    ok("ram_size 10000000\n" in out, "-m 256: fw_cfg RAM_SIZE 256 MiB", out)
    ok("x2apic 00000000\n" in out, "-cpu max,-x2apic: no x2APIC in CPUID", out)
    ok("scratch 5a5a1234\n" in out, "-device pc-testdev: scratch register", out)
    ok("pci-testdev 00:" in out, "-device pci-testdev: 1b36:0005 on bus 0", out)
    # what SeaBIOS leaves under QEMU: 8259 masks (slave ff, master fa: timer and cascade
    # open), IVT entry 8 at F000:0010 (an EOI and an IRET), the 8254 counting
    ok("pic_imr 0000fffa\n" in out, "multiboot: the 8259s as a BIOS leaves them", out)
    ok("ivt8 f0000010\n" in out, "multiboot: IVT entry 8 leads to the BIOS area", out)
    ok("pit_counting 00000001\n" in out, "multiboot: the 8254 counts", out)
    ok(err == "", "nothing on stderr (kvm-unit-tests reads stderr as QEMU failing)", err)

    # QEMU's defaults: 128 MiB, one vCPU; exit 0 -> 1 (kvm-unit-tests' PASS);
    # -m with a suffix, modules with arguments
    rc, out, err = wrapper(X86_RUN + [PROBE, "-append", "x 0", "-initrd", env + " a b"])
    ok(rc == 1, "debug exit 0 -> status 1", show(rc, out, err))
    ok("nb_cpus 00000001\n" in out and "ram_size 08000000\n" in out,
       "defaults: one vCPU, 128 MiB", out)
    rc, out, err = wrapper(X86_RUN + [PROBE, "-append", "x 0", "-machine", "pit=off"])
    ok(rc == 1 and "pit_counting 00000000\n" in out, "-machine pit=off: no 8254",
       show(rc, out, err))
    rc, out, err = wrapper(X86_RUN + [PROBE, "-append", "x 0", "-m", "1g",
                                      "-cpu", "qemu64,+x2apic"])
    ok(rc == 1 and "ram_size 40000000\n" in out, "-m 1g", show(rc, out, err))
    ok("warning" in err and all("warning" in line for line in err.splitlines()),
       "qemu64: a warning line only (kvm-unit-tests ignores those)", err)

    # Without pci-testdev there is none; without isa-debug-exit the write to
    # 0xf4 goes nowhere and the guest halts: timeout(1) as run_tests.sh uses
    # it (--foreground signals the wrapper only) must end the guest too.
    image = os.path.join(tmp, "kut-probe-hangs.elf")
    shutil.copy(PROBE, image)
    args = ["-nodefaults", "-serial", "stdio", "-device", "pc-testdev", "-kernel", image,
            "-append", "x 0"]
    rc, out, err = wrapper(args, prefix=["timeout", "-k", "5s", "--foreground", "3s"])
    ok(rc == 124 and "scratch 5a5a1234" in out and "pci-testdev" not in out,
       "no isa-debug-exit: the guest runs until timeout(1) ends it", show(rc, out, err))
    left = subprocess.run(["pgrep", "-f", image], stdout=subprocess.PIPE, text=True).stdout
    ok(left.strip() == "", "no ferry process left after timeout(1)", left)


if __name__ == "__main__":
    main()
