# SPDX-License-Identifier: GPL-2.0-or-later
"""What the Python test runners share: where the build is, SKIP/FAIL the
way meson reads them (exit 77 / 1, the reason first), /dev/kvm, QEMU,
running a program whose exit status and output are checked, and a list of
checks that all run before the verdict (ok() ... finish()).

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "rigs"))
    import ferrytest
"""
import os
import shutil
import subprocess
import sys

BUILD = os.environ.get("FERRY_BUILD_ROOT",
                       os.path.join(os.path.dirname(__file__), "..", ".."))
TIMEOUT = 300
LOG_TITLE = "ferry-hv / ferry-dm log (stderr)"
QEMU_PROGRAM = "qemu-system-x86_64"


def build_path(*parts):
    return os.path.join(BUILD, *parts)


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def fail(why, out="", err=""):
    print("FAIL: " + why)
    if out:
        print("--- guest output (stdout) ---\n" + out)
    if err:
        print("--- %s ---\n%s" % (LOG_TITLE, err))
    sys.exit(1)


def kvm_usable():
    """None when /dev/kvm opens read-write, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return "/dev/kvm: " + e.strerror
    os.close(fd)
    return None


def kvm_check():
    why = kvm_usable()
    if why:
        skip(why)


def program_check(name, package=None):
    """The path of program name (the first in PATH); SKIP without one."""
    path = shutil.which(name)
    if not path:
        skip(name + (" (%s)" % package if package else "") + " is not installed")
    return path


def qemu_check():
    """The path of qemu-system-x86_64; SKIP without one."""
    return program_check(QEMU_PROGRAM)


failures = []


def ok(cond, what, detail=""):
    """One check of many: prints "ok    WHAT" or "FAIL  WHAT: DETAIL" and
    goes on; finish() gives the verdict."""
    print(("ok    " if cond else "FAIL  ") + what + ("" if cond or not detail else ": " + str(detail)))
    if not cond:
        failures.append(what)
    return cond


def finish():
    """Exit 1 if an ok() check failed (naming them), else 0."""
    if failures:
        print("%d check(s) failed: %s" % (len(failures), "; ".join(failures)))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def run(args, status, out_has=(), err_has=(), out_lacks=("FAIL",), check=None):
    """Run args, fail unless it exits with status and its output has (and
    lacks) the given strings; check(out, err) looks first.  (out, err)."""
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=TIMEOUT, text=True, errors="replace")
    if check:
        check(p.stdout, p.stderr)
    if p.returncode != status:
        fail("%s: exit status %d, expected %d" % (" ".join(args), p.returncode, status),
             p.stdout, p.stderr)
    for s in out_has:
        if s not in p.stdout:
            fail("output lacks %r" % s, p.stdout, p.stderr)
    for s in err_has:
        if s not in p.stderr:
            fail("log lacks %r" % s, p.stdout, p.stderr)
    for s in out_lacks:
        if s in p.stdout:
            fail("output has %r" % s, p.stdout, p.stderr)
    print("ok: exit status %d" % p.returncode)
    return p.stdout, p.stderr


def children(pid):
    """The pids of pid's children (every thread's)."""
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            kids += [int(x) for x in f.read().split()]
    return kids


def start_waiting_guest(args):
    """Start ferry-hv (args) with a guest that prints a 'waiting' line first
    and a --dm: (process, that line, the one ferry-dm child's pid)."""
    p = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace")
    line = p.stdout.readline()
    if "waiting" not in line:
        p.kill()
        out, err = p.communicate()
        fail("guest did not start waiting", line + out, err)
    kids = children(p.pid)
    if len(kids) != 1:
        p.kill()
        fail("expected one ferry-dm child of ferry-hv, found %r" % kids)
    return p, line, kids[0]
