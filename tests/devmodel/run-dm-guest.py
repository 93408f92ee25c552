#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run one guest of ferry-dm under ferry-hv, ferry-dm in its own process.

    run-dm-guest.py SCENARIO

Scenarios: demo, uart, pci, msi, rtc, s5, reset, exit, killed, cli-run, qemu,
rtl8139, ioapic, fwcfg, pcitestdev, s3-rtc, s3-wakeup, s3-powerbutton,
s3-no-vector, s3-smp, s3-xvector, replace, replace-all, posted, replace-xhci.
The guests are in tests/devmodel/guests/ (built by meson into
tests/devmodel/).  Exits 0 on success, 1 on failure, 77 (SKIP) when
/dev/kvm cannot be used here.
"""
import ctypes
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
import ferrytest  # noqa: E402
from ferrytest import BUILD, TIMEOUT, fail  # noqa: E402

HV = os.path.join(BUILD, "hypervisor", "ferry-hv")
DM = os.path.join(BUILD, "devmodel", "ferry-dm")
CLI = os.path.join(BUILD, "cli", "ferry")
GUESTS = os.path.join(BUILD, "tests", "devmodel")

EXIT_REBOOT = 71


def guest(name):
    return os.path.join(GUESTS, name)


def hv_args(image, entry="pvh", dm_args=()):
    args = [HV, "--image", image, "--entry", entry, "--memory", "64M", "--dm", DM]
    for a in dm_args:
        args += ["--dm-arg", a]
    return args


SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "exited with status",
             "killed by signal")


def check_log(out, err):
    """ferry-dm shares ferry-hv's stderr: a sanitizer report or a bad exit shows there."""
    for s in SANITIZER:
        if s in err:
            fail("ferry-dm log has %r" % s, out, err)


def run(args, status, out_has=(), err_has=(), out_lacks=("FAIL",)):
    return ferrytest.run(args, status, out_has, err_has, out_lacks, check=check_log)


def check_rtc(out, err):
    m = re.search(r"RTC says it is (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) UTC", out)
    if not m:
        fail("no RTC line", out, err)
    rtc = datetime.datetime(*map(int, m.groups()), tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    # The guest read the host's real time a moment ago; allow for a slow machine.
    if abs((now - rtc).total_seconds()) > 600:
        fail("RTC %s is not the host's time %s" % (rtc, now), out, err)
    print("ok: rtc %s (host %s)" % (rtc.isoformat(), now.isoformat(timespec="seconds")))


def scenario_demo():
    out, err = run(hv_args(guest("demo.elf"), dm_args=["--device=pci-test,id=t0"]), 0,
                   out_has=["Ferry demo guest", "PCI bus 0", "00:00.0  8086:1237  060000  host bridge",
                            "1234:fe01  ff0000  ferry-dm test function", "Powering off"])
    check_rtc(out, err)
    print(out)


def scenario_msi():
    # The MSI goes through an irqfd on a GSI routed to it, not a message per interrupt.
    run(hv_args(guest("dm-msi.elf"), dm_args=["--device=pci-test,id=t0,addr=5"]) + ["-v"], 0,
        out_has=["MSI vector 0x51 arrived", "delivered on unmask"],
        err_has=["msi 0xfee00000/0x51 routed to gsi 24 (irqfd)"])


def scenario_ioapic():
    """pc-testdev's GSI ports into the in-kernel IOAPIC: edge, level, remote IRR, masking."""
    run(hv_args(guest("dm-ioapic.elf"), dm_args=["--device=pc-testdev"]), 0,
        out_has=["ok scratch-dword", "ok scratch-byte", "ok iomem", "ok edge-toggles",
                 "ok level-eoi-redelivers-once",
                 "ok level-remote-irr-after-eoi", "ok masked-level-held",
                 "ok unmasked-level-delivered", "ok no-stray-edges",
                 "edge, level, remote IRR and masking"])


def scenario_fwcfg():
    """fw-cfg items by port and by DMA; etc/e820 is the map ferry-hv gave the guest."""
    run(hv_args(guest("dm-fwcfg.elf"), dm_args=["--device=fw-cfg"]) + ["--vcpus", "2"], 0,
        out_has=["ok port-signature", "ok port-ram-size", "ok port-nb-cpus", "ok port-max-cpus",
                 "ok dma-signature-lo", "ok dir-e820-key", "ok dma-e820-control",
                 "ok e820-matches-pvh-memmap-entries", "ok dma-bad-address-error",
                 "etc/e820 is the guest's map"])


def scenario_pcitestdev():
    """QEMU's pci-testdev protocol (kvm-unit-tests' lib/pci-testdev.c) on both BARs."""
    run(hv_args(guest("dm-pcitestdev.elf"), dm_args=["--device=pci-testdev,addr=6"]), 0,
        out_has=["ok pci-testdev-id", "ok pci-testdev mmio-no-eventfd",
                 "ok pci-testdev mmio-datamatch-eventfd", "ok pci-testdev portio-wildcard-eventfd",
                 "ok pci-testdev-tests", "protocol on both BARs"])


def scenario_rtc():
    out, err = run(hv_args(guest("demo.elf")), 0, out_has=["RTC says it is"])
    check_rtc(out, err)


def scenario_s5():
    out, err = run(hv_args(guest("demo.elf"), dm_args=["-v"]), 0, out_has=["Bye!"],
                   err_has=["S5: the guest powers itself off"])


def scenario_pci():
    run(hv_args(guest("dm-pci.elf"), dm_args=["--device=pci-test,id=t0,addr=5"]), 0,
        out_has=["pci-test at 00:05", "ok io-bar-magic", "ok mem-bar-scratch",
                 "ok moved-bar-magic", "ok old-bar-floats", "ok mem-bar-off", "pci done"])


def scenario_reset():
    run(hv_args(guest("dm-reset.elf"), dm_args=["-v"]), EXIT_REBOOT,
        out_has=["resetting through 0xcf9"], err_has=["reset through 0xcf9"])


def scenario_exit():
    run(hv_args(guest("dm-exit.img"), entry="real"), 42)
    # Placement: ferry-dm pins itself with --cpus, and says so.
    cpu = str(min(os.sched_getaffinity(0)))
    run(hv_args(guest("dm-exit.img"), entry="real", dm_args=["-v", "--cpus=" + cpu]), 42,
        err_has=["placement: ferry-dm on CPUs " + cpu])


def scenario_uart():
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "com1.sock")
        args = hv_args(guest("dm-uart.elf"),
                       dm_args=["--serial=socket:" + sock, "--serial-in=socket:" + sock])
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 60
        while True:
            try:
                s.connect(sock)
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    p.kill()
                    out, err = p.communicate()
                    fail("ferry-dm's COM1 socket never appeared", out, err)
                time.sleep(0.02)
        # Send once the guest has set up COM1 (its FIFO reset would drop earlier bytes).
        ready = p.stdout.readline()
        if "waiting for a line" not in ready:
            p.kill()
            out, err = p.communicate()
            fail("the guest did not get ready", ready + out, err)
        s.sendall(b"ping\n")
        s.settimeout(60)
        got = b""
        try:
            while b"\n" not in got.split(b"PONG", 1)[-1] or b"PONG" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        s.close()
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            fail("the guest did not finish", out, err)
        check_log(out, err)
        if b"PONG ping\n" not in got:
            fail("no PONG from the guest over COM1 (got %r)" % got, out, err)
        if p.returncode != 0:
            fail("exit status %d" % p.returncode, out, err)
        print("ok: round trip over COM1 with interrupts: %r" % got)


def scenario_killed():
    # --dm-restarts 0: ferry-hv does not start a fresh ferry-dm (scenario_crash does).
    p, line, dm_pid = ferrytest.start_waiting_guest(hv_args(guest("dm-killed.elf")) +
                                                    ["--dm-restarts", "0"])
    # ferry-dm is ferry-hv's child: kill it under the running guest.
    os.kill(dm_pid, signal.SIGKILL)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        fail("ferry-hv did not carry on after ferry-dm died", out, err)
    out = line + out
    if p.returncode != 0:
        fail("exit status %d" % p.returncode, out, err)
    if "the device model is gone" not in out:
        fail("guest did not see COM1 float", out, err)
    if "detached" not in err and "gone" not in err:
        fail("ferry-hv did not report the detach", out, err)
    print("ok: ferry-hv reported the detach and the guest ran on")


REPLACES = 10


def xhci_remote(ctl):
    """The xhci device's remote QEMU: (pid, state) from `ferry dm devices`."""
    r = subprocess.run([CLI, "dm", "-s", ctl, "devices"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    pid = re.search(r'"qemu-pid"\s*:\s*(\d+)', r.stdout)
    state = re.search(r'"state"\s*:\s*"(\w+)"', r.stdout)
    return (int(pid.group(1)) if pid else -1, state.group(1) if state else "")


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Every orphan of this test's processes comes to this test (not init): what ferry-hv
    leaves behind shows up as our child, alive or a zombie."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        fail("PR_SET_CHILD_SUBREAPER: %s" % os.strerror(ctypes.get_errno()))


def leftovers(mark):
    """This test's processes still there once ferry-hv has ended: our children (a
    subreaper's: orphans, alive or zombies), and processes whose command line names mark
    (the test's own folder: a ferry-dm launcher's is its ferry-dm's).  Reaped or killed."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == os.getpid() or mark in cmdline:
            found.append("pid %d %s (state %s, parent %s): %s" % (pid, comm, state, ppid,
                                                                 cmdline or "-"))
            try:
                os.kill(pid, signal.SIGKILL)
                if int(ppid) == os.getpid():
                    os.waitpid(pid, 0)
            except OSError:
                pass
    return found


def scenario_replace(xhci=False):
    """ferry-dm replaced REPLACES times under a guest streaming through COM1 (x-replace).

    xhci: a confined ferry-dm (as by default) with an xhci device too: each
    replace must keep its remote QEMU (the same pid); then that QEMU is
    killed and the last successor restarts it through the launcher it was
    handed and connects to the new QEMU's QMP monitor."""
    if xhci:
        ferrytest.qemu_check()
    replaces = 3 if xhci else REPLACES
    become_subreaper()
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        out_path = os.path.join(d, "com1.out")
        in_path = os.path.join(d, "com1.in")
        p, line, dm_pid = ferrytest.start_waiting_guest(
            hv_args(guest("dm-replace.elf"),
                    dm_args=["--control=" + ctl, "--serial=file:" + out_path,
                             "--serial-in=socket:" + in_path] +
                    (["--device=xhci,id=usb0", "-v"] if xhci else [])) + ["-v"])
        pids = [dm_pid]
        qemu_pid = restarted = -1
        try:
            # COM1's input: connected now, so its client is handed over too.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(in_path)
            if xhci:
                qemu_pid = xhci_remote(ctl)[0]
                if qemu_pid <= 0:
                    raise OSError("no qemu-pid for the xhci device in ferry dm devices")
            for k in range(replaces):
                before = os.path.getsize(out_path)
                r = subprocess.run([CLI, "dm", "-s", ctl, "replace"], capture_output=True,
                                   text=True, timeout=TIMEOUT)
                if r.returncode != 0:
                    raise OSError("replace %d: %s" % (k, r.stderr.strip()))
                m = re.search(r'"pid"\s*:\s*(\d+)', r.stdout)
                if not m:
                    raise OSError("replace %d printed no pid: %r" % (k, r.stdout))
                pids.append(int(m.group(1)))
                # The successor serves: the stream goes on (the guest stops only when told).
                while os.path.getsize(out_path) < before + 1000:
                    if p.poll() is not None:
                        raise OSError("the guest ended during replace %d" % k)
                    time.sleep(0.01)
                if xhci and xhci_remote(ctl) != (qemu_pid, "running"):
                    raise OSError("replace %d: the xhci's remote QEMU is %r, not %d running" %
                                  (k, xhci_remote(ctl), qemu_pid))
            if xhci:
                # the last successor supervises the remote QEMU: restarted after a kill
                os.kill(qemu_pid, signal.SIGKILL)
                deadline = time.monotonic() + TIMEOUT
                while True:
                    restarted, state = xhci_remote(ctl)
                    if restarted > 0 and restarted != qemu_pid and state == "running":
                        break
                    if time.monotonic() > deadline or p.poll() is not None:
                        raise OSError("the last successor did not restart the xhci's QEMU: %r"
                                      % ((restarted, state),))
                    time.sleep(0.1)
            s.sendall(b"q")
            out, err = p.communicate(timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            p.kill()
            out, err = p.communicate()
            for pid in pids[1:]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            fail(str(e), line + out, err)
        out = line + out
        check_log(out, err)
        if p.returncode != 0 or "FAIL" in out:
            fail("exit status %d" % p.returncode, out, err)
        m = re.search(r"sent 0x([0-9a-f]{8})", out)
        if not m:
            fail("the guest did not say how much it sent", out, err)
        sent = int(m.group(1), 16)
        with open(out_path, "rb") as f:
            data = f.read()
        if len(data) != sent:
            fail("the guest sent %d bytes, the serial file has %d" % (sent, len(data)), out, err)
        want = bytes(ord("a") + i % 26 for i in range(sent))
        if data != want:
            i = next(i for i in range(sent) if data[i] != want[i])
            fail("serial byte %d is %r, not %r" % (i, data[i:i + 1], want[i:i + 1]), out, err)
        # ferry-hv logs every place an access found no owner: COM1 must never be one.
        if re.search(r"unclaimed port (at )?0x3f[89a-f]\b", err):
            fail("ferry-hv reports unclaimed COM1 accesses", out, err)
        # ferry-hv followed the last successor (not its child) and waited for it at its end.
        if not gone(pids[-1]):
            fail("the last successor %d outlived ferry-hv" % pids[-1], out, err)
        # ... and for everything the replaced ones left: their successor launchers (a
        # ferry-dm's fork, its command line), the xhci's QEMU launcher: no orphan, no zombie.
        left = leftovers(d)
        if left:
            fail("after %d replaces and the guest's end, left behind:\n  %s" %
                 (replaces, "\n  ".join(left)), out, err)
        if "not ferry-hv's child" not in err:
            fail("ferry-hv did not follow the successor", out, err)
        if xhci:
            if "usb: reconnected to the restarted xhci QEMU" not in err:
                fail("the last successor did not take the restarted QEMU's QMP monitor", out,
                     err)
            if err.count("took over qemu pid=%d" % qemu_pid) != replaces:
                fail("not every successor took over the xhci's QEMU pid %d" % qemu_pid, out, err)
            if not gone(restarted):
                fail("the xhci's restarted QEMU %d outlived ferry-dm" % restarted, out, err)
            print("ok: %d replaces of a confined ferry-dm with an xhci device (remote QEMU pid "
                  "%d kept; restarted by the last successor as %d, its QMP taken), %d bytes "
                  "through COM1, none lost or repeated" % (replaces, qemu_pid, restarted, sent))
            return
        print("ok: %d replaces, %d bytes through COM1, none lost or repeated, no read of all "
              "ones" % (REPLACES, sent))


def scenario_posted():
    """A burst of posted POST codes reaches a confined ferry-dm with no request after it."""
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        p = subprocess.Popen(hv_args(guest("dm-posted.img"), entry="real",
                                     dm_args=["--control=" + ctl]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        post = None
        deadline = time.monotonic() + TIMEOUT
        try:
            # The guest halts after its last write: only the doorbell or the
            # server's drain timer can bring the writes to the device.
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(ctl):
                    post = next((x for x in qmp_query_devices(ctl) if x.get("type") == "post"),
                                None)
                    if post and post.get("writes") == 1001:
                        break
                time.sleep(0.05)
        except (OSError, ValueError) as e:
            post = {"error": str(e)}
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        check_log(out, err)
        if not post or post.get("writes") != 1001 or post.get("last") != 0xab:
            fail("the POST device shows %r, not 1001 writes ending in 0xab" % (post,), out, err)
        hist = post.get("history", [])
        if hist[-2:] != [0xe7, 0xab]:
            fail("POST history ends %r, not [0xe7, 0xab]: writes out of order" % hist, out, err)
        print("ok: 1001 posted writes applied in order with the guest halted, no request after "
              "them")


def gone(pid):
    """pid has exited (a zombie waiting for its reaper counts)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return any(l.startswith("State:") and "Z" in l.split()[1] for l in f)
    except OSError:
        return True


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def comm_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def wait_for(what, cond, p, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if p.poll() is not None:
            raise OSError("the guest ended while waiting for " + what)
        if time.monotonic() > deadline:
            raise OSError("timed out waiting for " + what)
        time.sleep(0.01)


def eventfd_ids(pid):
    """The eventfds process pid holds, by their kernel id (fdinfo eventfd-id)."""
    ids = set()
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for l in f:
                    if l.startswith("eventfd-id:"):
                        ids.add(int(l.split()[1]))
        except OSError:
            pass
    return ids


def irqfd_ids(hv_pid, dm_pid):
    """The eventfds ferry-hv keeps for the irqfds it assigned for ferry-dm: those both hold."""
    return eventfd_ids(hv_pid) & eventfd_ids(dm_pid)


def scenario_crash():
    """ferry-dm killed (SIGKILL) under a guest streaming through COM1, twice: first
    ferry-hv's child, then, after a replace, the successor (not ferry-hv's child).
    ferry-hv starts a fresh ferry-dm each time; the guest's vCPU waits meanwhile,
    never reads all ones, and sees exactly two device resets (none for the replace).
    The dead ferry-dm's irqfds are deassigned (ferry-hv closes the eventfds it kept for
    them, so none stays in KVM), the fresh one's assigned; the replace keeps them."""
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        out_path = os.path.join(d, "com1.out")
        in_path = os.path.join(d, "com1.in")
        p, line, dm_pid = ferrytest.start_waiting_guest(
            hv_args(guest("dm-crash.elf"),
                    dm_args=["--control=" + ctl, "--serial=file:" + out_path,
                             "--serial-in=socket:" + in_path]) + ["-v"])
        extra = []
        try:
            def size():
                try:
                    return os.path.getsize(out_path)
                except OSError:
                    return 0
            def fresh_control(ino):
                """A fresh ferry-dm made its control socket anew (after its devices)."""
                try:
                    if os.stat(ctl).st_ino == ino:
                        return False
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                        return c.connect_ex(ctl) == 0
                except OSError:
                    return False
            wait_for("the stream", lambda: size() > 1000, p)
            # The eventfds ferry-hv and ferry-dm share: the ioreq doorbells, and an fd of
            # each eventfd ferry-hv wired into KVM for ferry-dm (irqfds).
            first = irqfd_ids(p.pid, dm_pid)
            held = len(eventfd_ids(p.pid))
            # 1: ferry-hv's child dies; ferry-hv starts a fresh one (a new child).
            ino = os.stat(ctl).st_ino
            os.kill(dm_pid, signal.SIGKILL)
            wait_for("a fresh ferry-dm", lambda: fresh_control(ino), p)
            # Its serial file starts afresh; the stream goes on into it.
            wait_for("the stream after the restart", lambda: size() > 1000, p)
            # The dead one's irqfds are gone from ferry-hv (and so from KVM: nobody holds
            # their eventfds any more), the fresh one's in their place, as many.
            fresh = [k for k in ferrytest.children(p.pid) if comm_of(k) == "ferry-dm"]
            if len(fresh) != 1:
                raise OSError("expected one fresh ferry-dm child, found %r" % fresh)
            # The kernel reuses eventfd ids: counted, not compared.  A dead ferry-dm's
            # irqfds left in ferry-hv (and so in KVM) would add to what it holds.
            again = eventfd_ids(p.pid)
            mine = irqfd_ids(p.pid, fresh[0])
            if len(mine) != len(first) or len(again) != held:
                raise OSError("after the restart ferry-hv holds %d eventfds (%d shared with "
                              "ferry-dm), before %d (%d)" % (len(again), len(mine), held,
                                                             len(first)))
            # 2: a replace; the successor is the old ferry-dm's launcher's child, or, once that
            # launcher died with the old ferry-dm, ferry-hv's (a subreaper), never init's.
            r = subprocess.run([CLI, "dm", "-s", ctl, "replace"], capture_output=True,
                               text=True, timeout=TIMEOUT)
            if r.returncode != 0:
                raise OSError("replace: %s" % r.stderr.strip())
            m = re.search(r'"pid"\s*:\s*(\d+)', r.stdout)
            if not m:
                raise OSError("replace printed no pid: %r" % r.stdout)
            succ = int(m.group(1))
            extra.append(succ)
            parent = parent_of(succ)
            if parent != p.pid and comm_of(parent) != "ferry-launcher":
                raise OSError("the successor %d's parent is %d (%s), neither ferry-hv nor the "
                              "old ferry-dm's launcher" % (succ, parent, comm_of(parent)))
            # A replace keeps the irqfds: the successor serves the same eventfds.
            if irqfd_ids(p.pid, succ) != mine:
                raise OSError("the replace changed the irqfds: %r, before %r"
                              % (sorted(irqfd_ids(p.pid, succ)), sorted(mine)))
            before = size()
            wait_for("the stream after the replace", lambda: size() > before + 1000, p)
            # 3: the successor dies; ferry-hv noticed whom it follows and restarts it too.
            ino = os.stat(ctl).st_ino
            os.kill(succ, signal.SIGKILL)
            wait_for("a fresh ferry-dm after the successor's death",
                     lambda: fresh_control(ino), p)
            wait_for("the stream after the second restart", lambda: size() > 1000, p)
            # Stop the guest: COM1's input socket is the fresh ferry-dm's.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            wait_for("COM1's input socket", lambda: s.connect_ex(in_path) == 0, p)
            s.sendall(b"q")
            out, err = p.communicate(timeout=TIMEOUT)
            s.close()
        except (OSError, subprocess.TimeoutExpired) as e:
            p.kill()
            out, err = p.communicate()
            for pid in extra:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            fail(str(e), line + out, err)
        out = line + out
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if bad in err:
                fail("log has %r" % bad, out, err)
        if p.returncode != 0 or "FAIL" in out:
            fail("exit status %d" % p.returncode, out, err)
        m = re.search(r"sent 0x([0-9a-f]{8}) resets 0x([0-9a-f]{8})", out)
        if not m:
            fail("the guest did not say what it sent and saw", out, err)
        sent, resets = int(m.group(1), 16), int(m.group(2), 16)
        if resets != 2:
            fail("the guest saw %d device resets, not 2 (two crashes, one clean replace)"
                 % resets, out, err)
        if err.count("starting a fresh one") != 2:
            fail("ferry-hv did not restart ferry-dm twice", out, err)
        if "not ferry-hv's child" not in err:
            fail("ferry-hv did not follow the successor", out, err)
        deassigned = re.findall(r"its (\d+) irqfds deassigned", err)
        if len(deassigned) < 2 or "0" in deassigned:
            fail("ferry-hv did not say it deassigned the dead ferry-dm's irqfds (twice)", out,
                 err)
        # The last fresh ferry-dm's serial file: the stream's end, whole.
        with open(out_path, "rb") as f:
            data = f.read()
        want = bytes(ord("a") + i % 26 for i in range(sent))
        if not data or data != want[sent - len(data):]:
            fail("the serial file (%d bytes) is not the end of the %d bytes sent"
                 % (len(data), sent), out, err)
        if re.search(r"unclaimed port (at )?0x3f[89a-f]\b", err):
            fail("ferry-hv reports unclaimed COM1 accesses", out, err)
        print("ok: two crashes (a child, a successor) and a replace under a %d-byte stream; "
              "the guest saw 2 resets and no read of all ones" % sent)


def scenario_crash_unit():
    """As ferry-dm@GUEST runs: ferry-dm connects to ferry-hv's --ioreq-socket, is killed
    (SIGKILL), and is started again by its supervisor (here the test, as systemd's
    Restart= would); ferry-hv --keep-servers kept its registration meanwhile, so the
    guest's vCPU waited and sees one device reset, never a read of all ones."""
    with tempfile.TemporaryDirectory() as d:
        hv_sock = os.path.join(d, "hv.sock")
        out_path = os.path.join(d, "com1.out")
        in_path = os.path.join(d, "com1.in")
        dm_cmd = [DM, "--connect", hv_sock, "--name", "unit-test", "--serial=file:" + out_path,
                  "--serial-in=socket:" + in_path]
        p = subprocess.Popen([HV, "--image", guest("dm-crash.elf"), "--entry", "pvh",
                              "--memory", "64M", "--ioreq-socket", hv_sock, "--wait-servers",
                              "1", "--keep-servers", "20000", "-v"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        dms = []
        try:
            wait_for("ferry-hv's ioreq socket", lambda: os.path.exists(hv_sock), p)
            dms.append(subprocess.Popen(dm_cmd))
            line = p.stdout.readline()
            if "waiting" not in line:
                raise OSError("the guest did not start: %r" % line)

            def size():
                try:
                    return os.path.getsize(out_path)
                except OSError:
                    return 0
            wait_for("the stream", lambda: size() > 1000, p)
            dms[0].kill()
            dms[0].wait()
            # The supervisor starts it again; its serial file starts afresh.
            dms.append(subprocess.Popen(dm_cmd))
            wait_for("the stream after the restart",
                     lambda: size() > 1000 and dms[1].poll() is None, p)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            wait_for("COM1's input socket", lambda: s.connect_ex(in_path) == 0, p)
            # COM1's input socket is made after the devices (the file truncated): from here
            # the file's growth is the restarted ferry-dm's.
            before = size()
            wait_for("more of the stream", lambda: size() > before + 1000, p)
            s.sendall(b"q")
            out, err = p.communicate(timeout=TIMEOUT)
            s.close()
            dms[1].wait(timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            p.kill()
            out, err = p.communicate()
            for dm in dms:
                dm.kill()
            fail(str(e), out, err)
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if bad in err:
                fail("log has %r" % bad, out, err)
        if p.returncode != 0 or "FAIL" in out:
            fail("exit status %d" % p.returncode, out, err)
        m = re.search(r"sent 0x([0-9a-f]{8}) resets 0x([0-9a-f]{8})", out)
        if not m:
            fail("the guest did not say what it sent and saw", out, err)
        sent, resets = int(m.group(1), 16), int(m.group(2), 16)
        if resets != 1:
            fail("the guest saw %d device resets, not 1" % resets, out, err)
        if "took over its registration" not in err:
            fail("ferry-hv did not hand the kept registration to the restarted ferry-dm",
                 out, err)
        with open(out_path, "rb") as f:
            data = f.read()
        want = bytes(ord("a") + i % 26 for i in range(sent))
        if not data or data != want[sent - len(data):]:
            fail("the serial file (%d bytes) is not the end of the %d bytes sent"
                 % (len(data), sent), out, err)
        if re.search(r"unclaimed port (at )?0x3f[89a-f]\b", err):
            fail("ferry-hv reports unclaimed COM1 accesses", out, err)
        print("ok: ferry-dm --connect killed and started again under a %d-byte stream; the "
              "guest saw 1 reset and no read of all ones" % sent)


REPLACES_ALL = 20


def control_command(path, command, arguments):
    """One command with arguments over ferry-dm's control socket: the whole reply."""
    import json
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(path)
        f = s.makefile("rwb")
        json.loads(f.readline())
        f.write(json.dumps({"execute": command, "arguments": arguments, "id": 1}).encode() +
                b"\n")
        f.flush()
        return json.loads(f.readline())


def scenario_replace_all():
    """ferry-dm replaced REPLACES_ALL times under a 64-bit guest that streams through COM1,
    polls the RTC and the PM timer, loops frames through a QEMU-hosted RTL8139 (DMA, INTx)
    and takes pci-test MSIs (dm-replace-all.c); the remote QEMU must be the same process
    throughout."""
    ferrytest.qemu_check()
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        out_path = os.path.join(d, "com1.out")
        in_path = os.path.join(d, "com1.in")
        p, line, dm_pid = ferrytest.start_waiting_guest(
            hv_args(guest("dm-replace-all.elf"),
                    dm_args=["--control=" + ctl, "--serial=file:" + out_path,
                             "--serial-in=socket:" + in_path,
                             "--device=pci-test,id=t0,addr=5",
                             "--device=qemu,id=nic0,device=rtl8139,addr=6"]) + ["-v"])
        pids = [dm_pid]
        qemu_pid = None
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(in_path)
            for k in range(REPLACES_ALL):
                nic = [dev for dev in qmp_query_devices(ctl) if dev.get("id") == "nic0"]
                if not nic or nic[0].get("state") != "running":
                    raise OSError("before replace %d: nic0 is %r" % (k, nic))
                if qemu_pid is None:
                    qemu_pid = nic[0].get("qemu-pid")
                elif nic[0].get("qemu-pid") != qemu_pid or nic[0].get("restarts") != 0:
                    raise OSError("before replace %d: nic0's QEMU is not pid %d any more: %r"
                                  % (k, qemu_pid, nic[0]))
                before = os.path.getsize(out_path)
                if k == REPLACES_ALL // 2:
                    # A refused replace (a corrupt state) hands the QEMU back: the old
                    # ferry-dm serves on, and the next replace takes it over as usual.
                    reply = control_command(ctl, "x-replace", {"x-fault": "checksum"})
                    if "error" not in reply or "checksum" not in reply["error"].get("desc", ""):
                        raise OSError("x-replace with a corrupt state: %r" % reply)
                r = subprocess.run([CLI, "dm", "-s", ctl, "replace"], capture_output=True,
                                   text=True, timeout=TIMEOUT)
                if r.returncode != 0:
                    raise OSError("replace %d: %s" % (k, r.stderr.strip()))
                m = re.search(r'"pid"\s*:\s*(\d+)', r.stdout)
                if not m:
                    raise OSError("replace %d printed no pid: %r" % (k, r.stdout))
                pids.append(int(m.group(1)))
                # The guest goes on: more bytes (and so more frames and MSIs) after the switch.
                deadline = time.monotonic() + TIMEOUT
                while os.path.getsize(out_path) < before + 500:
                    if p.poll() is not None:
                        raise OSError("the guest ended during replace %d" % k)
                    if time.monotonic() > deadline:
                        raise OSError("the guest stalled after replace %d" % k)
                    time.sleep(0.01)
            nic = [dev for dev in qmp_query_devices(ctl) if dev.get("id") == "nic0"]
            if not nic or nic[0].get("qemu-pid") != qemu_pid or nic[0].get("restarts") != 0:
                raise OSError("after the last replace: nic0's QEMU is not pid %d: %r"
                              % (qemu_pid, nic))
            s.sendall(b"q")
            # The last ferry-dm supervises the QEMU it took over: killed, it is restarted
            # through the launcher that came with it.
            deadline = time.monotonic() + TIMEOUT
            while "kill the remote now" not in line:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise OSError("the guest did not stop streaming")
                line += p.stdout.readline()
            os.kill(qemu_pid, signal.SIGKILL)
            while True:
                nic = [dev for dev in qmp_query_devices(ctl) if dev.get("id") == "nic0"]
                if nic and nic[0].get("state") == "running" and nic[0].get("restarts") == 1:
                    break
                if time.monotonic() > deadline:
                    raise OSError("ferry-dm did not restart the QEMU it took over: %r" % nic)
                time.sleep(0.05)
            new_qemu = nic[0].get("qemu-pid")
            s.sendall(b"r")
            out, err = p.communicate(timeout=TIMEOUT)
            # The last ferry-dm stopped it at the end (through the launcher it took).
            deadline = time.monotonic() + TIMEOUT
            while os.path.exists("/proc/%d" % new_qemu) and time.monotonic() < deadline:
                try:
                    with open("/proc/%d/stat" % new_qemu) as f:
                        if f.read().split(")")[-1].split()[0] == "Z":
                            break
                except OSError:
                    break
                time.sleep(0.05)
            else:
                if os.path.exists("/proc/%d" % new_qemu):
                    raise OSError("the remote QEMU pid %d outlived the guest" % new_qemu)
        except (OSError, subprocess.TimeoutExpired) as e:
            p.kill()
            out, err = p.communicate()
            for pid in pids[1:] + ([qemu_pid] if qemu_pid else []):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, TypeError):
                    pass
            fail(str(e), line + out, err)
        out = line + out
        check_log(out, err)
        if p.returncode != 0 or "FAIL" in out:
            fail("exit status %d" % p.returncode, out, err)
        m = re.search(r"sent 0x([0-9a-f]{8}) frames 0x([0-9a-f]{8}) msis 0x([0-9a-f]{8})", out)
        if not m or "restarted: a frame looped again" not in out:
            fail("the guest did not say how much it sent, or did not loop a frame after the "
                 "restart", out, err)
        sent, frames, msis = (int(x, 16) for x in m.groups())
        with open(out_path, "rb") as f:
            data = f.read()
        if len(data) != sent:
            fail("the guest sent %d bytes, the serial file has %d" % (sent, len(data)), out, err)
        want = bytes(ord("a") + i % 26 for i in range(sent))
        if data != want:
            i = next(i for i in range(sent) if data[i] != want[i])
            fail("serial byte %d is %r, not %r" % (i, data[i:i + 1], want[i:i + 1]), out, err)
        # ferry-hv (-v) logs every place an access found no owner and its ioreq totals at
        # the end: no unclaimed and no failed request, across every switch.
        bad = [x for x in err.splitlines() if re.search(r"unclaimed (port|mmio|pci)", x)]
        if bad:
            fail("ferry-hv reports unclaimed accesses: %s" % bad[:5], out, err)
        totals = re.findall(r"ioreqs: sent=(\d+) .*unclaimed_reads=(\d+) unclaimed_writes=(\d+) "
                            r"failed=(\d+)", err)
        if not totals:
            fail("ferry-hv printed no ioreq totals", out, err)
        for t in totals:
            if int(t[0]) == 0 or t[1:] != ("0", "0", "0"):
                fail("ferry-hv's ioreq totals: sent=%s unclaimed reads=%s writes=%s failed=%s"
                     % t, out, err)
        print("ok: %d replaces, %d bytes through COM1, %d frames through the QEMU-hosted "
              "RTL8139 (pid %d throughout), %d MSIs; none lost, repeated or all ones; "
              "then the last ferry-dm restarted that QEMU as pid %d"
              % (REPLACES_ALL, sent, frames, qemu_pid, msis, new_qemu))


def scenario_qemu():
    ferrytest.qemu_check()
    out, err = run(hv_args(guest("dm-qemu.elf"),
                           dm_args=["--device=qemu,id=nic0,device=rtl8139,addr=6"]), 0,
                   out_has=["rtl8139 (in its own QEMU) at 00:06", "mac 52:54:00:12:34:56"])


def qmp_query_devices(path):
    """query-devices over ferry-dm's control socket (one JSON object per line)."""
    import json
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(path)
        f = s.makefile("rwb")
        greeting = json.loads(f.readline())
        if "QMP" not in greeting:
            raise OSError("no QMP greeting from %s: %r" % (path, greeting))
        f.write(b'{"execute": "query-devices", "id": 1}\n')
        f.flush()
        reply = json.loads(f.readline())
        if "return" not in reply:
            raise OSError("query-devices: %r" % reply)
        return reply["return"]


def scenario_rtl8139():
    """The loopback guest on a QEMU-hosted RTL8139, then its QEMU killed and restarted."""
    import queue
    import threading
    ferrytest.qemu_check()
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        p = subprocess.Popen(hv_args(guest("dm-rtl8139.elf"),
                                     dm_args=["--device=qemu,id=nic0,device=rtl8139,addr=6",
                                              "--control=" + ctl, "-v"]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        lines = queue.Queue()
        seen = []
        errs = []

        def pump_out():
            for line in p.stdout:
                lines.put(line)
            lines.put(None)

        def pump_err():
            for line in p.stderr:
                errs.append(line)

        threading.Thread(target=pump_out, daemon=True).start()
        err_thread = threading.Thread(target=pump_err, daemon=True)
        err_thread.start()

        def give_up(why):
            if p.poll() is None:
                p.kill()
            p.wait()
            err_thread.join(10)
            fail(why, "".join(seen), "".join(errs))

        def wait_line(text):
            deadline = time.monotonic() + TIMEOUT
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    give_up("no %r from the guest" % text)
                if line is None:
                    give_up("the guest ended before %r" % text)
                seen.append(line)
                if "FAIL" in line:
                    give_up("the guest failed")
                if text in line:
                    return line

        def nic0():
            try:
                devs = qmp_query_devices(ctl)
            except (OSError, ValueError) as e:
                give_up("query-devices on %s: %s" % (ctl, e))
            for dev in devs:
                if dev.get("id") == "nic0":
                    return dev
            give_up("query-devices has no nic0: %r" % devs)

        wait_line("mac 52:54:00:12:34:56")
        wait_line("receive interrupts taken")
        wait_line("kill the remote now")
        before = nic0()
        pid = before.get("qemu-pid")
        if not isinstance(pid, int) or pid <= 0 or before.get("state") != "running":
            give_up("query-devices: no running QEMU for nic0: %r" % before)
        # The pid must be ferry-dm's QEMU, not just any process.
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError as e:
            give_up("qemu-pid %d: %s" % (pid, e))
        if b"x-remote" not in b" ".join(cmdline):
            give_up("qemu-pid %d is not a remote QEMU: %r" % (pid, cmdline))
        os.kill(pid, signal.SIGKILL)
        print("ok: killed the remote QEMU, pid %d" % pid)
        wait_line("all ones while the remote is down")
        wait_line("restarted, mac 52:54:00:12:34:56")
        after = nic0()
        new_pid = after.get("qemu-pid")
        if not isinstance(new_pid, int) or new_pid <= 0 or new_pid == pid:
            give_up("query-devices after the restart: %r (old pid %d)" % (after, pid))
        if after.get("state") != "running" or after.get("restarts") != 1:
            give_up("query-devices after the restart: %r" % after)
        wait_line("dm-rtl8139: done")
        try:
            p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            give_up("ferry-hv did not exit after the guest was done")
        err_thread.join(60)
        while True:
            try:
                line = lines.get(timeout=10)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
        out, err = "".join(seen), "".join(errs)
        check_log(out, err)
        if p.returncode != 0:
            fail("exit status %d" % p.returncode, out, err)
        if "FAIL" in out:
            fail("output has FAIL", out, err)
        if "restarted pid=%d" % new_pid not in err:
            fail("ferry-dm did not log the restart", out, err)
        print(out, end="")
        print("ok: the guest saw all ones, then the MAC again from QEMU pid %d (was %d)"
              % (new_pid, pid))


def qmp_execute(path, command):
    """One command over ferry-dm's control socket: its "return" value."""
    import json
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(path)
        f = s.makefile("rwb")
        greeting = json.loads(f.readline())
        if "QMP" not in greeting:
            raise OSError("no QMP greeting from %s: %r" % (path, greeting))
        f.write(json.dumps({"execute": command, "id": 1}).encode() + b"\n")
        f.flush()
        reply = json.loads(f.readline())
        if "return" not in reply:
            raise OSError("%s: %r" % (command, reply))
        return reply["return"]


def scenario_s3_rtc():
    """S3, woken by the RTC alarm (RTC_EN): real mode at the FACS waking vector, WAK_STS."""
    run(hv_args(guest("dm-s3.elf"), dm_args=["-v"]) + ["--cmdline", "r", "-v"], 0,
        out_has=["FACS (through FIRMWARE_CTRL)", "suspending to RAM", "real mode at the waking vector",
                 "resumed: WAK_STS and the wake source set"],
        err_has=["S3: the guest suspends to RAM", "woken by rtc",
                 "S3 wake: the guest resumes in real mode at 0x7000"])


def scenario_s3_smp():
    """Two vCPUs, the second started and halted: S3 stops both, the boot vCPU resumes."""
    run(hv_args(guest("dm-s3.elf"), dm_args=["-v"]) + ["--cmdline", "r2", "-v", "--vcpus", "2"],
        0, out_has=["the second vCPU is up and halted", "real mode at the waking vector",
                    "resumed: WAK_STS and the wake source set"],
        err_has=["woken by rtc", "S3 wake: the guest resumes in real mode at 0x7000"])


def scenario_s3_xvector():
    """X_Firmware_Waking_Vector set: it wins over the 32-bit one, in 32-bit protected mode."""
    run(hv_args(guest("dm-s3.elf"), dm_args=["-v"]) + ["--cmdline", "x", "-v"], 0,
        out_has=["32-bit protected mode at the X waking vector",
                 "resumed: WAK_STS and RTC_STS set, memory kept, paging off"],
        out_lacks=("FAIL", "real mode at the waking vector"),
        err_has=["S3 wake: the guest resumes in 32-bit protected mode at 0x1"])


def scenario_s3_no_vector():
    """S3 with Firmware_Waking_Vector 0: nothing to resume, so a reboot (as a BIOS does)."""
    run(hv_args(guest("dm-s3.elf"), dm_args=["-v"]) + ["--cmdline", "n", "-v"], EXIT_REBOOT,
        out_has=["suspending to RAM"], out_lacks=("FAIL", "real mode at the waking vector"),
        err_has=["woken by rtc", "the FACS waking vector is 0", "guest ended: reboot"])


def s3_from_outside(how):
    """S3 without RTC_EN: the alarm passes and the guest sleeps on; then `how` wakes it."""
    import queue
    import threading
    with tempfile.TemporaryDirectory() as d:
        ctl = os.path.join(d, "dm.sock")
        p = subprocess.Popen(hv_args(guest("dm-s3.elf"), dm_args=["--control=" + ctl, "-v"])
                             + ["--cmdline", "w"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        lines = queue.Queue()
        errs = []
        seen = []
        threading.Thread(target=lambda: [lines.put(x) for x in p.stdout] + [lines.put(None)],
                         daemon=True).start()
        err_thread = threading.Thread(target=lambda: errs.extend(p.stderr), daemon=True)
        err_thread.start()

        def give_up(why):
            if p.poll() is None:
                p.kill()
            p.wait()
            err_thread.join(10)
            fail(why, "".join(seen), "".join(errs))

        deadline = time.monotonic() + TIMEOUT
        while not any("suspending to RAM" in x for x in seen):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                give_up("the guest never suspended")
            if line is None or "FAIL" in line:
                give_up("the guest ended or failed before suspending")
            seen.append(line)

        def status():
            try:
                return qmp_execute(ctl, "query-status")
            except (OSError, ValueError) as e:
                give_up("query-status on %s: %s" % (ctl, e))

        def rtc_time():
            try:
                devs = qmp_execute(ctl, "query-devices")
            except (OSError, ValueError) as e:
                give_up("query-devices on %s: %s" % (ctl, e))
            for dev in devs:
                if dev.get("type") == "rtc" or dev.get("driver") == "rtc":
                    return dev["guest-time"]
            give_up("no rtc in query-devices: %r" % devs)

        while status().get("status") != "suspended":
            if time.monotonic() > deadline or p.poll() is not None:
                give_up("query-status never said suspended: %r" % status())
            time.sleep(0.05)
        st = status()
        if st.get("running") is not False:
            give_up("query-status while suspended: %r" % st)
        print("ok: query-status %r" % st)
        # The alarm was at most 3 s ahead: wait on the guest's own clock until it has
        # passed.  Without RTC_EN it must not have woken the guest.
        t0 = rtc_time()
        while rtc_time() < t0 + 4:
            if time.monotonic() > deadline or p.poll() is not None:
                give_up("the guest ended while suspended without a wake event")
            time.sleep(0.1)
        if status().get("status") != "suspended":
            give_up("the RTC alarm woke a guest that had not set RTC_EN: %r" % status())
        print("ok: the RTC alarm passed without RTC_EN and the guest slept on")
        cmd = {"wakeup": "wakeup", "power-button": "powerdown"}[how]
        w = subprocess.run([CLI, "dm", "-s", ctl, cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
        if w.returncode != 0:
            give_up("ferry dm %s: status %d: %s%s" % (cmd, w.returncode, w.stdout, w.stderr))
        try:
            p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            give_up("the guest did not finish after the wake-up")
        err_thread.join(60)
        while True:
            line = lines.get(timeout=10)
            if line is None:
                break
            seen.append(line)
        out, err = "".join(seen), "".join(errs)
        check_log(out, err)
        if p.returncode != 0:
            fail("exit status %d" % p.returncode, out, err)
        for want in ("real mode at the waking vector", "resumed: WAK_STS and the wake source set"):
            if want not in out:
                fail("output lacks %r" % want, out, err)
        reason = {"wakeup": "system_wakeup", "power-button": "power-button"}[how]
        if "woken by %s" % reason not in err:
            fail("log lacks 'woken by %s'" % reason, out, err)
        print(out, end="")
        print("ok: woken by %s through `ferry dm %s`" % (reason, cmd))


def scenario_s3_wakeup():
    s3_from_outside("wakeup")


def scenario_s3_powerbutton():
    s3_from_outside("power-button")


def scenario_cli_run():
    run([CLI, "run", "--image", guest("demo.elf")], 0, out_has=["Ferry demo guest", "Bye!"])
    # The README's demo: `ferry run` with nothing else finds the bundled guest.
    out, err = run([CLI, "run"], 0, out_has=["Ferry demo guest", "PCI bus 0", "Bye!"])
    check_rtc(out, err)
    # Arguments for the device model pass through: here a PCI function the demo lists.
    run([CLI, "run", "--dm-arg=--device=pci-test,id=t0"], 0,
        out_has=["1234:fe01  ff0000  ferry-dm test function", "Bye!"])
    # Bad values are refused by name, never taken as "the default".
    run([CLI, "run", "--vcpus", "0"], 2, err_has=["vcpus 0: must be at least 1"])
    run([CLI, "run", "--memory", "-5"], 2, err_has=["memory '-5': not a size"])


SCENARIOS = {
    "demo": scenario_demo, "rtc": scenario_rtc, "s5": scenario_s5, "pci": scenario_pci,
    "msi": scenario_msi, "reset": scenario_reset, "exit": scenario_exit, "uart": scenario_uart,
    "killed": scenario_killed, "cli-run": scenario_cli_run, "qemu": scenario_qemu,
    "rtl8139": scenario_rtl8139, "ioapic": scenario_ioapic, "fwcfg": scenario_fwcfg,
    "pcitestdev": scenario_pcitestdev, "s3-rtc": scenario_s3_rtc,
    "s3-wakeup": scenario_s3_wakeup, "s3-powerbutton": scenario_s3_powerbutton,
    "s3-no-vector": scenario_s3_no_vector, "s3-smp": scenario_s3_smp,
    "s3-xvector": scenario_s3_xvector, "replace": scenario_replace,
    "crash": scenario_crash, "crash-unit": scenario_crash_unit,
    "replace-all": scenario_replace_all, "posted": scenario_posted,
    "replace-xhci": lambda: scenario_replace(xhci=True),
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: run-dm-guest.py " + "|".join(SCENARIOS))
        sys.exit(2)
    for prog in (HV, DM):
        if not os.access(prog, os.X_OK):   # meson builds it first (depends:)
            fail("%s is not built" % prog)
    ferrytest.kvm_check()
    SCENARIOS[sys.argv[1]]()
