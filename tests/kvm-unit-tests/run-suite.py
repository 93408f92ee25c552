#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""kvm-unit-tests' own x86 runner (run_tests.sh, unmodified) driving
`ferry run` through ferry-qemu, on the tests QEMU+KVM passes on the CI
machines (README.md here lists them and why the others fail under both).

    FERRY_KVM_UNIT_TESTS=/path/to/built/kvm-unit-tests run-suite.py

FERRY_KUT_TESTS (names separated by spaces) replaces the list.  Exits 77
when FERRY_KVM_UNIT_TESTS is not set (the suite is not part of Ferry) or
/dev/kvm is not usable; 1 when a listed test does not PASS.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
import ferrytest  # noqa: E402
from ferrytest import BUILD, fail, ok, skip  # noqa: E402

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ferry-qemu")

# Every test QEMU 7.2 + KVM passes on the CI machines' KVM, and the ones it
# cannot start there that Ferry passes (README.md, "Results").
EXPECTED = """
smptest smptest3 idt_test setjmp rmap_chain realmode
vmexit_cpuid vmexit_mov_from_cr8 vmexit_mov_to_cr8 vmexit_inl_pmtimer vmexit_ipi
vmexit_ipi_halt vmexit_ple_round_robin vmexit_tscdeadline vmexit_tscdeadline_immed
vmexit_cr0_wp vmexit_cr4_pge s3 lam
""".split()


def main():
    tree = os.environ.get("FERRY_KVM_UNIT_TESTS")
    if not tree:
        skip("FERRY_KVM_UNIT_TESTS is not set: point it at a built kvm-unit-tests tree "
             "(tests/kvm-unit-tests/README.md)")
    for need in ("run_tests.sh", "config.mak", "x86/unittests.cfg", "x86/smptest.flat"):
        if not os.path.exists(os.path.join(tree, need)):
            fail("FERRY_KVM_UNIT_TESTS=%s: no %s there (a kvm-unit-tests tree after "
                 "./configure && make)" % (tree, need))
    ferrytest.kvm_check()
    tests = os.environ.get("FERRY_KUT_TESTS", "").split() or EXPECTED
    env = dict(os.environ, QEMU=WRAPPER, FERRY=os.path.join(BUILD, "cli", "ferry"))
    env.pop("ACCEL", None)
    p = subprocess.run(["./run_tests.sh", "-v"] + tests, cwd=tree, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace", timeout=120 * len(tests))
    out = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)
    print(out)
    results = {}
    for line in out.splitlines():
        m = re.match(r"(PASS|FAIL|SKIP) (\S+)", line)
        if m:
            results[m.group(2)] = line
    for t in tests:
        line = results.get(t, "not run")
        ok(line.startswith("PASS"), t, line)
    ferrytest.finish()


if __name__ == "__main__":
    main()
