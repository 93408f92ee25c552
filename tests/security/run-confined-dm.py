#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A real ferry-dm, confined by default, under a real ferry-hv running a guest.

    run-confined-dm.py status      /proc/PID/status of ferry-dm (started by ferry-hv
                                   as root) shows the 'ferry' uid/gid, no capabilities,
                                   NoNewPrivs 1, Seccomp 2; --print-policy works
    run-confined-dm.py no-user     ferry-dm --user=nosuchuser refuses to start, naming the
                                   user and the fix; ferry-hv says its device model failed
    run-confined-dm.py qemu-restart a QEMU-hosted device (rtl8139) of a confined ferry-dm
                                   runs as 'ferry' under the launcher; killed, it is
                                   restarted through the launcher (ferry-dm never execs)
    run-confined-dm.py TRY         the test-only poke device (ferry-dm-poke) tries TRY
                                   (open-shadow, execve, socket-inet, ptrace) while
                                   handling a guest read: the filter ends ferry-dm by
                                   SIGSYS, the log names the syscall, and ferry-hv keeps
                                   the guest running with the port floating (all ones)

The guest is tests/devmodel's dm-killed: it polls COM1's LSR until it reads
all ones, then says so and exits 0.  Needs root (to switch users), the
'ferry' user (scripts/setup) and /dev/kvm: SKIP otherwise.
"""
import os
import pwd
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
import ferrytest  # noqa: E402
from ferrytest import BUILD, TIMEOUT, children, fail, skip  # noqa: E402

HV = os.path.join(BUILD, "hypervisor", "ferry-hv")
DM = os.path.join(BUILD, "devmodel", "ferry-dm")
CLI = os.path.join(BUILD, "cli", "ferry")
DM_POKE = os.path.join(BUILD, "tests", "security", "ferry-dm-poke")
GUEST = os.path.join(BUILD, "tests", "devmodel", "dm-killed.elf")
SYSCALL = {"open-shadow": "openat", "execve": "execve", "socket-inet": "socket",
           "ptrace": "ptrace"}


def preflight():
    for f in (HV, DM, DM_POKE, GUEST):
        if not os.path.exists(f):          # meson builds it first (depends:)
            fail(f + " is not built")
    if os.geteuid() != 0:
        skip("needs root: ferry-dm switches to the 'ferry' user only when started as root")
    try:
        user = pwd.getpwnam("ferry")
    except KeyError:
        skip("no 'ferry' user: run scripts/setup")
    ferrytest.kvm_check()
    return user


def start(dm, dm_args, hv_args=()):
    args = [HV, "--image", GUEST, "--entry", "pvh", "--memory", "64M", "--dm", dm] + list(hv_args)
    for a in dm_args:
        args += ["--dm-arg", a]
    return ferrytest.start_waiting_guest(args)


def status_of(pid):
    st = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            st[k] = " ".join(v.split())
    return st


def finish(p, line):
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        fail("ferry-hv did not carry on", line + out, err)
    return line + out, err


def scenario_status(user):
    pol = subprocess.run([DM, "--print-policy"], stdout=subprocess.PIPE, text=True)
    if pol.returncode != 0 or "user: ferry" not in pol.stdout or "# list serial" not in pol.stdout:
        fail("ferry-dm --print-policy: status %d" % pol.returncode, pol.stdout)
    # The default machine; its UART is COM1, so the guest waits until ferry-dm is gone.
    d = tempfile.mkdtemp(prefix="ferry-sec-")
    ctl = os.path.join(d, "dm.sock")
    p, line, pid = start(DM, ["-v", "--control=" + ctl])
    st = status_of(pid)
    # Hot-add: a type the filter covers works; a new QEMU is refused with the reason.
    ok = subprocess.run([CLI, "dm", "-s", ctl, "add", "post", "id=p2", "port=0x90"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = subprocess.run([CLI, "dm", "-s", ctl, "add", "qemu", "id=q2", "device=rtl8139"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    p.kill()            # ferry-hv: the guest would wait forever on a live ferry-dm
    out, err = finish(p, line)
    ids = "%d %d %d %d" % ((user.pw_uid,) * 4)
    gids = "%d %d %d %d" % ((user.pw_gid,) * 4)
    want = {"Uid": ids, "Gid": gids, "Groups": "", "CapInh": "0000000000000000",
            "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
            "CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
            "NoNewPrivs": "1", "Seccomp": "2"}
    for k, v in want.items():
        if st.get(k) != v:
            fail("ferry-dm pid %d: %s is %r, expected %r" % (pid, k, st.get(k), v), out, err)
        print("ok: %s: %s" % (k, v or "(none)"))
    if "sandbox: confined user=ferry" not in err:
        fail("no confinement line in the log", out, err)
    if ok.returncode != 0:
        fail("hot-adding a post device to a confined ferry-dm: %s" % ok.stdout, out, err)
    print("ok: hot-added a post device")
    if bad.returncode == 0 or "confined" not in bad.stdout:
        fail("hot-adding a qemu device to a confined ferry-dm was not refused plainly: %s" %
             bad.stdout, out, err)
    print("ok: refused: %s" % bad.stdout.strip())
    if "qemu: cannot add to a confined ferry-dm: its seccomp filter has no 'mpqemu' list" \
            not in err:
        fail("the log does not say why the qemu device was refused", out, err)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def find_qemu(dm_pid, old=None):
    """QEMU is a child of the launcher, itself a child of ferry-dm."""
    for _ in range(3000):
        for helper in children(dm_pid):
            for q in children(helper):
                if q != old:
                    return helper, q
        time.sleep(0.01)
    return None, None


def scenario_qemu_restart(user):
    ferrytest.qemu_check()
    p, line, pid = start(DM, ["-v", "--device=qemu,id=nic0,device=rtl8139,addr=6"])
    helper, q = find_qemu(pid)
    if not q:
        p.kill()
        out, err = finish(p, line)
        fail("no QEMU under ferry-dm's launcher", out, err)
    st = status_of(q)
    if st.get("Uid", "").split()[:1] != [str(user.pw_uid)] or st.get("NoNewPrivs") != "1":
        p.kill()
        out, err = finish(p, line)
        fail("QEMU pid %d runs with Uid %r NoNewPrivs %r" % (q, st.get("Uid"),
                                                             st.get("NoNewPrivs")), out, err)
    print("ok: QEMU pid %d under launcher pid %d runs as uid %d, NoNewPrivs 1" %
          (q, helper, user.pw_uid))
    os.kill(q, 9)
    helper2, q2 = find_qemu(pid, old=q)
    p.kill()
    out, err = finish(p, line)
    if not q2 or helper2 != helper:
        fail("QEMU was not restarted by the same launcher", out, err)
    if "restarted pid=%d" % q2 not in err or "ready pid=%d" % q2 not in err:
        fail("the log does not show the restart", out, err)
    if "forbidden syscall" in err:
        fail("the confined ferry-dm tripped its filter", out, err)
    print("ok: restarted as pid %d by launcher pid %d" % (q2, helper))


def scenario_no_user(user):
    p = subprocess.run([HV, "--image", GUEST, "--entry", "pvh", "--memory", "64M", "--dm", DM,
                        "--dm-arg=--user=nosuchuser"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace", timeout=TIMEOUT)
    for want in ("sandbox: cannot find user nosuchuser", "create it with scripts/setup",
                 "--user NAME picks another user", "exited before its ioreq server was enabled"):
        if want not in p.stderr:
            fail("log lacks %r" % want, p.stdout, p.stderr)
    print("ok: %s" % [ln for ln in p.stderr.splitlines() if "nosuchuser" in ln][0])


def scenario_try(what, user):
    with tempfile.TemporaryDirectory(prefix="ferry-sec-") as d:
        fifo = os.path.join(d, "arm")
        os.mkfifo(fifo, 0o600)
        # --dm-restarts 0: the killed ferry-dm stays dead and its port floats (a fresh
        # one would die on the same read: crash restart has tests of its own).
        p, line, pid = start(DM_POKE, ["--no-defaults", "--device=poke,arm=%s,try=%s" %
                                       (fifo, what)], ["--dm-restarts", "0"])
        st = status_of(pid)
        if st.get("Seccomp") != "2" or not st.get("Uid", "").startswith(str(user.pw_uid)):
            p.kill()
            out, err = finish(p, line)
            fail("ferry-dm-poke is not confined: %r" % st, out, err)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"!")
        os.close(fd)
        out, err = finish(p, line)
    if p.returncode != 0:
        fail("ferry-hv exit status %d, expected 0 (the guest runs on)" % p.returncode, out, err)
    if "the guest runs on" not in out:
        fail("the guest did not see the port float", out, err)
    want = "seccomp: forbidden syscall %s " % SYSCALL[what]
    if want not in err:
        fail("log does not name %s" % SYSCALL[what], out, err)
    if "still alive" in err:
        fail("the forbidden call returned", out, err)
    print("ok: %s killed ferry-dm: %s" %
          (what, [ln for ln in err.splitlines() if "forbidden syscall" in ln][0]))
    print("ok: ferry-hv kept the guest running; its log: %s" %
          "; ".join(ln for ln in err.splitlines() if "ferry-hv" in ln and "dm" in ln)[:300])


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ["status", "no-user", "qemu-restart"] + list(SYSCALL):
        print(__doc__)
        sys.exit(2)
    user = preflight()
    if sys.argv[1] == "status":
        scenario_status(user)
    elif sys.argv[1] == "qemu-restart":
        scenario_qemu_restart(user)
    elif sys.argv[1] == "no-user":
        scenario_no_user(user)
    else:
        scenario_try(sys.argv[1], user)


if __name__ == "__main__":
    main()
