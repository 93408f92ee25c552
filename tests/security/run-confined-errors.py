#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every control command and its error paths against a confined ferry-dm
(seccomp kill mode, the default), in every way ferry-dm is started.

    run-confined-errors.py hv         `ferry run --dm-arg=--control=PATH`: ferry-hv starts
                                      it with --ioreq-fd=N --control=PATH
    run-confined-errors.py connect    ferry-dm --connect PATH --control=PATH to a
                                      ferry-hv listening on --ioreq-socket
    run-confined-errors.py unit       the command line of contrib/ferry-dm@.service
                                      (its ExecStart, run without systemd) with a
                                      config whose [dm] has connect= and control=
    run-confined-errors.py companion  ferry-dm --qmp PATH --control=PATH, the companion
                                      of a real QEMU (TCG, q35, qemu-xhci): also usb-*
                                      and pci-* and their error paths
    run-confined-errors.py qmp-peer   companion mode whose QMP peer sends a line
                                      longer than FERRY_QMP_LINE_MAX

Each command (COMMANDS: the table of devmodel/control-commands.c, dm-usb.c
and dm-vfio.c, with malformed input, bad arguments and refusals) must get its
reply, the confined ferry-dm must answer every later one, nothing may trip
the filter ("forbidden syscall" in the log, or death by SIGSYS), and the
last command must end it with status 0: `quit` (hv, companion) or
`system_reset` (connect, unit: ferry-hv ends the VM with 71 to reboot it;
a companion answers it and carries on).  Confinement is checked in /proc
(Seccomp 2, the 'ferry' uid).  This is issue 22's first defect: the first
error string after confinement made glib load its charset table (and glibc
its iconv configuration), so a device_add with a bad addr killed ferry-dm.

Needs root (ferry-dm switches to 'ferry' only then), the 'ferry' user,
/dev/kvm (hv, connect, unit) and qemu-system-x86_64 (companion): SKIP
otherwise.
"""
import array
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
import ferrytest  # noqa: E402
from ferrytest import BUILD, TIMEOUT, fail, skip  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
HV = os.path.join(BUILD, "hypervisor", "ferry-hv")
DM = os.path.join(BUILD, "devmodel", "ferry-dm")
CLI = os.path.join(BUILD, "cli", "ferry")
GUEST = os.path.join(BUILD, "tests", "devmodel", "dm-killed.elf")
UNIT = os.path.join(SRC, "contrib", "ferry-dm@.service")
QMP_LINE_MAX = 4 << 20          # common/qmp.h FERRY_QMP_LINE_MAX
CONTROL_LINE_MAX = 65536        # devmodel/control.h FERRY_DM_CONTROL_LINE_MAX

ANY = None      # a well-formed reply, return or error

# (name, command: dict or raw bytes, expected: "return", ANY or a substring of
# the error's desc; a dict {mode: expectation} when the modes differ.)
# Modes with ferry-hv ("guest") have the default devices; a companion has none.
COMMANDS = [
    ("not-json", b"not json", "JSON parse error"),
    ("bad-utf8", b'{"execute": "\xff\xfe"}', "JSON parse error"),
    ("nul-in-name", b'{"execute": "query-status\\u0000x"}', ANY),
    ("not-object", b"[1, 2]", "expected a JSON object"),
    ("no-execute", {"arguments": {}}, "'execute' (a string) is required"),
    ("execute-number", {"execute": 5}, "'execute' (a string) is required"),
    ("arguments-array", {"execute": "query-status", "arguments": [1]},
     "'arguments' must be an object"),
    ("deep-nesting", b"[" * 20000 + b"]" * 20000, ANY),
    ("qmp_capabilities", {"execute": "qmp_capabilities"}, "return"),
    ("query-status", {"execute": "query-status"}, "return"),
    ("query-devices", {"execute": "query-devices"}, "return"),
    ("query-device-types", {"execute": "query-device-types"}, "return"),
    ("unknown-command", {"execute": "frobnicate"}, "has not been found"),
    ("device_add-no-driver", {"execute": "device_add", "arguments": {"id": "x"}}, ANY),
    ("device_add-no-args", {"execute": "device_add"}, ANY),
    ("device_add-no-such-type", {"execute": "device_add",
                                 "arguments": {"driver": "nosuch", "id": "n1"}},
     "no such device type"),
    # the defect: EINVAL from pci-test's addr parser, put into words after confinement
    ("device_add-pci-test-bad-addr", {"execute": "device_add",
                                      "arguments": {"driver": "pci-test", "id": "t1",
                                                    "addr": "zz"}},
     "device_add pci-test: Invalid argument"),
    ("device_add-pci-test-addr-range", {"execute": "device_add",
                                        "arguments": {"driver": "pci-test", "id": "t2",
                                                      "addr": "0x20.9"}}, ANY),
    ("device_add-unknown-option", {"execute": "device_add",
                                   "arguments": {"driver": "post", "id": "p9",
                                                 "colour": "blue"}}, ANY),
    ("device_add-object-value", {"execute": "device_add",
                                 "arguments": {"driver": "post", "id": "p9", "port": {}}},
     "must be a string, number or boolean"),
    ("device_add-id-number", {"execute": "device_add",
                              "arguments": {"driver": "post", "id": 7}}, "'id' must be a string"),
    ("device_add-long-option", {"execute": "device_add",
                                "arguments": {"driver": "post", "id": "p9", "port": "9" * 5000}},
     ANY),
    ("device_add-not-hotplug", {"execute": "device_add",
                                "arguments": {"driver": "uart", "id": "com9"}},
     "cannot be hot-plugged"),
    ("device_add-qemu-confined", {"execute": "device_add",
                                  "arguments": {"driver": "qemu", "id": "q1",
                                                "device": "rtl8139"}},
     "not possible in a confined ferry-dm"),
    ("device_add-post", {"execute": "device_add",
                         "arguments": {"driver": "post", "id": "p1", "port": "0x90"}},
     "return"),
    ("device_add-post-again", {"execute": "device_add",
                               "arguments": {"driver": "post", "id": "p1", "port": "0x91"}},
     "already in use"),
    ("device_add-port-taken", {"execute": "device_add",
                               "arguments": {"driver": "post", "id": "p2", "port": "0x90"}},
     ANY),
    ("device_add-pci-test", {"execute": "device_add",
                             "arguments": {"driver": "pci-test", "id": "t3"}},
     {"guest": "return", "companion": ANY}),
    ("device_del-no-id", {"execute": "device_del"}, "'id' (a string) is required"),
    ("device_del-no-such", {"execute": "device_del", "arguments": {"id": "nosuch"}},
     "no device 'nosuch'"),
    ("device_del-not-hotplug", {"execute": "device_del", "arguments": {"id": "com1"}},
     {"guest": "cannot be hot-unplugged", "companion": "no device 'com1'"}),
    ("device_del-pci-test", {"execute": "device_del", "arguments": {"id": "t3"}}, ANY),
    ("device_del-post", {"execute": "device_del", "arguments": {"id": "p1"}}, "return"),
    ("system_powerdown", {"execute": "system_powerdown"},
     {"guest": "return", "companion": "no power button"}),
    # companion-mode commands (CommandNotFound where there is no USB or PCI service)
    ("usb-attach-no-args", {"execute": "usb-attach"}, ANY),
    ("usb-attach-device", {"execute": "usb-attach", "arguments": {"device": "1-2"}},
     {"guest": ANY, "companion": "holds no fd for it"}),
    ("usb-attach-fd-missing", {"execute": "usb-attach", "arguments": {"fd": True}},
     {"guest": ANY, "companion": "no fd came with the command"}),
    ("usb-attach-fd-not-usb", {"execute": "usb-attach", "arguments": {"fd": True}},
     ANY, "devnull"),
    ("usb-attach-fd-socket", {"execute": "usb-attach", "arguments": {"fd": True}},
     ANY, "socket"),
    ("usb-detach-no-args", {"execute": "usb-detach"}, ANY),
    ("usb-detach-not-attached", {"execute": "usb-detach", "arguments": {"device": "1-9"}}, ANY),
    ("usb-unplugged-no-args", {"execute": "usb-unplugged"}, ANY),
    ("usb-unplugged-unknown", {"execute": "usb-unplugged", "arguments": {"device": "1-9"}}, ANY),
    ("query-usb", {"execute": "query-usb"}, {"guest": ANY, "companion": "return"}),
    ("pci-attach-no-args", {"execute": "pci-attach"}, ANY),
    ("pci-attach-bad-host", {"execute": "pci-attach", "arguments": {"host": "zz"}},
     {"guest": ANY, "companion": "is not a PCI address"}),
    ("pci-attach-bad-id", {"execute": "pci-attach",
                           "arguments": {"host": "0000:00:1f.7", "id": "9-bad id"}},
     {"guest": ANY, "companion": "is not valid"}),
    ("pci-attach-absent", {"execute": "pci-attach", "arguments": {"host": "0000:7f:1f.7"}},
     {"guest": ANY, "companion": "QEMU refused device_add vfio-pci"}),
    ("pci-detach-no-args", {"execute": "pci-detach"}, ANY),
    ("pci-detach-bad-host", {"execute": "pci-detach", "arguments": {"host": "zz"}}, ANY),
    ("pci-detach-not-assigned", {"execute": "pci-detach",
                                 "arguments": {"host": "0000:7f:1f.7"}},
     {"guest": ANY, "companion": "not assigned to this guest"}),
    ("query-pci-assigned", {"execute": "query-pci-assigned"}, ANY),
    ("query-status-after", {"execute": "query-status"}, "return"),
]


def preflight(mode):
    for f in (HV, DM, CLI, GUEST):
        if not os.path.exists(f):
            skip(f + " is not built")
    if os.geteuid() != 0:
        skip("needs root: ferry-dm switches to the 'ferry' user only when started as root")
    try:
        user = pwd.getpwnam("ferry")
    except KeyError:
        skip("no 'ferry' user: run scripts/setup")
    if mode in ("hv", "connect", "unit"):
        ferrytest.kvm_check()
    if mode == "companion":
        ferrytest.qemu_check()
    return user


class Log:
    """A process's stderr, read as it comes (so a full pipe never stalls it)."""

    def __init__(self, f):
        self.lines = []
        self.t = threading.Thread(target=self._read, args=(f,), daemon=True)
        self.t.start()

    def _read(self, f):
        for ln in f:
            self.lines.append(ln)

    def text(self):
        return "".join(self.lines)


class Journal:
    """journald's part for a process run as under a unit: a datagram socket
    of ours (FERRY_LOG_JOURNAL_SOCKET) and a stderr pipe that JOURNAL_STREAM
    names, so the process logs every field natively, as to the journal."""

    def __init__(self, d):
        self.path = os.path.join(d, "journal")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.entries = []
        self.rfd, self.wfd = os.pipe()
        st = os.fstat(self.wfd)         # both ends of a pipe share its inode
        self.env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino),
                        FERRY_LOG_JOURNAL_SOCKET=self.path)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.entries.append(self.parse(data))

    @staticmethod
    def parse(data):
        fields = {}
        while data:
            nl = data.index(b"\n")
            line = data[:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                data = data[nl + 1:]
            else:                       # KEY\n, 64-bit LE length, value, \n
                k = line
                n = int.from_bytes(data[nl + 1:nl + 9], "little")
                v = data[nl + 9:nl + 9 + n]
                data = data[nl + 10 + n:]
            fields[k.decode()] = v.decode(errors="replace")
        return fields

    def text(self):
        return "".join(e.get("MESSAGE", "") + "\n" for e in self.entries)

    def close(self):
        self.sock.close()


def wait_for(pred, what, log=None):
    for _ in range(TIMEOUT * 100):
        if pred():
            return
        time.sleep(0.01)
    fail("timed out waiting for " + what, "", log.text() if log else "")


class Control:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(TIMEOUT)
        self.s.connect(path)
        self.buf = b""
        greeting = self.line()
        if b'"QMP"' not in greeting:
            raise OSError("no greeting: %r" % greeting)

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("ferry-dm closed the control connection")
            self.buf += d
        ln, _, self.buf = self.buf.partition(b"\n")
        return ln

    def send(self, cmd, fd=None):
        data = cmd if isinstance(cmd, bytes) else json.dumps(cmd).encode()
        data += b"\n"
        if fd is None:
            self.s.sendall(data)
        else:
            self.s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [fd]))])
        return json.loads(self.line())

    def close(self):
        self.s.close()


def dm_pid_of_socket(ctl_path):
    """ferry-dm's pid: the peer of a control connection."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl_path)
    cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    s.close()
    return int.from_bytes(cred[:4], sys.byteorder)


def check_confined(pid, user, log, ctl_path):
    # The greeting comes from the event loop, which runs only once confined.
    # (The socket's name exists from bind(), a moment before listen().)
    for _ in range(TIMEOUT * 100):
        try:
            Control(ctl_path).close()
            break
        except ConnectionRefusedError as e:
            why = e
            time.sleep(0.01)
        except (OSError, EOFError) as e:
            fail("no greeting on %s: %s" % (ctl_path, e), "", log.text())
    else:
        fail("no greeting on %s: %s" % (ctl_path, why), "", log.text())
    st = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            st[k] = v.split()
    if st.get("Seccomp") != ["2"] or st.get("Uid", [""])[0] != str(user.pw_uid):
        fail("ferry-dm pid %d is not confined: Seccomp %r Uid %r" %
             (pid, st.get("Seccomp"), st.get("Uid")), "", log.text())
    print("ok: ferry-dm pid %d runs as uid %d with a seccomp filter (kill mode)" %
          (pid, user.pw_uid))


def run_commands(ctl_path, kind, log, alive, last="quit"):
    """Send COMMANDS; kind is 'guest' or 'companion'.  The last command ends
    ferry-dm: quit, or system_reset (ferry-hv ends the VM to reboot it; a
    companion has no ferry-hv and carries on, so quit follows)."""
    c = Control(ctl_path)
    for entry in COMMANDS:
        name, cmd, want = entry[:3]
        fdkind = entry[3] if len(entry) > 3 else None
        if isinstance(want, dict):
            want = want[kind]
        fd = None
        keep = None
        if fdkind == "devnull":
            fd = os.open("/dev/null", os.O_RDWR)
        elif fdkind == "socket":
            keep = socket.socketpair()
            fd = keep[0].fileno()
        try:
            r = c.send(cmd, fd)
        except (OSError, EOFError, ValueError) as e:
            fail("%s: no reply (%s); ferry-dm %s" % (name, e, "alive" if alive() else "is gone"),
                 "", log.text())
        finally:
            if fdkind == "devnull":
                os.close(fd)
            if keep:
                keep[0].close()
                keep[1].close()
        if "return" not in r and "error" not in r:
            fail("%s: neither return nor error: %r" % (name, r), "", log.text())
        if want == "return" and "return" not in r:
            fail("%s: expected success, got %r" % (name, r), "", log.text())
        if want not in (ANY, "return") and want not in r.get("error", {}).get("desc", ""):
            fail("%s: expected an error saying %r, got %r" % (name, want, r), "", log.text())
        print("ok: %s: %s" % (name, json.dumps(r)[:160]))
    c.close()
    # Framing errors close the connection; ferry-dm carries on.
    c = Control(ctl_path)
    c.s.sendall(b"{" + b" " * (CONTROL_LINE_MAX + 16))
    try:
        r = json.loads(c.line())
    except (OSError, EOFError, ValueError) as e:
        fail("over-long control line: no reply (%s)" % e, "", log.text())
    if "longer than" not in r.get("error", {}).get("desc", ""):
        fail("over-long control line: %r" % r, "", log.text())
    print("ok: over-long control line: %s" % json.dumps(r))
    c.close()
    for cmd in ([last] if kind == "guest" else [last, "quit"]):
        c = Control(ctl_path)
        r = c.send({"execute": cmd})
        if "return" not in r:
            fail("%s: %r" % (cmd, r), "", log.text())
        print("ok: %s" % cmd)
        c.close()


def check_log(err):
    if "forbidden syscall" in err:
        fail("the confined ferry-dm tripped its filter: %s" %
             [ln for ln in err.splitlines() if "forbidden syscall" in ln][0], "", err)
    print("ok: no forbidden syscall in the log")


def guest_mode(mode, user):
    d = tempfile.mkdtemp(prefix="ferry-sec-")
    ctl = os.path.join(d, "dm.sock")
    ioreq = os.path.join(d, "ioreq.sock")
    dm = None
    journal = None
    if mode == "hv":
        # ferry run execs ferry-hv (the same process), which starts ferry-dm
        args = [CLI, "run", "--image", GUEST, "--entry", "pvh", "--memory", "64M", "--dm", DM,
                "--dm-arg=--control=" + ctl]
    else:
        args = [HV, "--image", GUEST, "--entry", "pvh", "--memory", "64M",
                "--ioreq-socket", ioreq, "--wait-servers", "1"]
    hv = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace")
    hvlog = Log(hv.stderr)
    dmlog = hvlog
    if mode != "hv":
        wait_for(lambda: os.path.exists(ioreq) or hv.poll() is not None, "ferry-hv's socket",
                 hvlog)
        if mode == "connect":
            dmargs = [DM, "--connect", ioreq, "--control=" + ctl]
            dm = subprocess.Popen(dmargs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace")
            dmlog = Log(dm.stderr)
        else:
            cfg = os.path.join(d, "guest.conf")
            with open(cfg, "w") as f:
                f.write("[dm]\nconnect=%s\ncontrol=%s\n" % (ioreq, ctl))
            dmargs = unit_command(cfg)
            print("ok: the unit's command line: %s" % " ".join(dmargs))
            # As under systemd: stderr is the journal, and fields must reach it
            # after confinement (the socket is opened before).
            journal = Journal(d)
            dm = subprocess.Popen(dmargs, stdout=subprocess.DEVNULL, stderr=journal.wfd,
                                  env=journal.env)
            os.close(journal.wfd)
            dmlog = Log(os.fdopen(journal.rfd, errors="replace"))
    line = hv.stdout.readline()
    if "waiting" not in line:
        hv.kill()
        if dm:
            dm.kill()
        fail("guest did not start waiting", line, hvlog.text() + dmlog.text())
    wait_for(lambda: os.path.exists(ctl), "ferry-dm's control socket", dmlog)
    pid = dm_pid_of_socket(ctl)

    def alive():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False

    check_confined(pid, user, dmlog, ctl)
    confined_at = len(journal.entries) if journal else 0
    with open("/proc/%d/cmdline" % pid) as f:
        print("ok: ferry-dm's command line: %s" % " ".join(f.read().split("\0")).strip())
    # quit: ferry-dm gone, COM1 floats, the guest says so and ferry-hv ends
    # with it; system_reset: ferry-hv ends the VM for a reboot (status 71),
    # ferry-dm sees its router go.
    last = "quit" if mode == "hv" else "system_reset"
    run_commands(ctl, "guest", dmlog, alive, last)
    try:
        out = line + hv.stdout.read()
        hv.wait(timeout=TIMEOUT)
        if dm:
            dm.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        hv.kill()
        if dm:
            dm.kill()
        fail("ferry-hv or ferry-dm did not end after quit", "", hvlog.text() + dmlog.text())
    hvlog.t.join(TIMEOUT)
    if dm:
        dmlog.t.join(TIMEOUT)
    err = dmlog.text() if dm else hvlog.text()
    if journal:
        journal.t.join(1)
        journal.close()
        err += journal.text()
        mine = [e for e in journal.entries if e.get("FERRY_COMPONENT") == "ferry-dm"]
        late = [e for e in journal.entries[confined_at:]
                if e.get("FERRY_COMPONENT") == "ferry-dm"]
        if not mine or not all("PRIORITY" in e and e.get("SYSLOG_IDENTIFIER") == "ferry-dm"
                               for e in mine):
            fail("ferry-dm's journal entries lack their fields", "", err)
        if not late:
            fail("no journal entry from ferry-dm once confined", "", err)
        print("ok: %d journal entries with their fields, %d after confinement, e.g. %s" %
              (len(mine), len(late), sorted(late[-1].items())))
    check_log(err)
    if dm and dm.returncode != 0:
        fail("ferry-dm exit status %d after quit" % dm.returncode, out, err)
    if "killed by signal" in hvlog.text():
        fail("ferry-hv saw its device model killed", out, hvlog.text())
    if last == "quit" and (hv.returncode != 0 or "the guest runs on" not in out):
        fail("ferry-hv exit status %d, expected 0 with the guest running on" % hv.returncode,
             out, hvlog.text())
    if last == "system_reset" and hv.returncode != 71:
        fail("ferry-hv exit status %d after system_reset, expected 71 (reboot)" %
             hv.returncode, out, hvlog.text())
    print("ok: %s ended ferry-dm with status 0; ferry-hv exit status %d" % (last, hv.returncode))
    shutil.rmtree(d, ignore_errors=True)


def unit_command(cfg):
    """The unit's ExecStart with the built ferry-dm and cfg for /etc/ferry/%i.conf."""
    with open(UNIT) as f:
        execs = [ln.split("=", 1)[1] for ln in f if ln.startswith("ExecStart=")]
    if len(execs) != 1:
        fail("%s: expected one ExecStart=, found %d" % (UNIT, len(execs)))
    argv = shlex.split(execs[0])
    if not argv[0].endswith("/ferry-dm"):
        fail("%s: ExecStart does not run ferry-dm: %s" % (UNIT, execs[0]))
    return [DM] + [cfg if a == "/etc/ferry/%i.conf" else a.replace("%i", "unit-test")
                   for a in argv[1:]]


def start_qemu(d):
    qmp = os.path.join(d, "qmp.sock")
    q = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35",
                          "-nodefaults", "-display", "none", "-m", "64", "-S",
                          "-device", "qemu-xhci",
                          "-qmp", "unix:%s,server=on,wait=off" % qmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return q, qmp


def companion_mode(user):
    d = tempfile.mkdtemp(prefix="ferry-sec-")
    ctl = os.path.join(d, "dm.sock")
    q, qmp = start_qemu(d)
    try:
        wait_for(lambda: os.path.exists(qmp) or q.poll() is not None, "QEMU's QMP socket")
        if q.poll() is not None:
            fail("QEMU did not start: %s" % q.stderr.read())
        dm = subprocess.Popen([DM, "-v", "--qmp", qmp, "--control=" + ctl],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              errors="replace")
        log = Log(dm.stderr)
        wait_for(lambda: os.path.exists(ctl) or dm.poll() is not None, "ferry-dm's control socket",
                 log)
        if dm.poll() is not None:
            fail("ferry-dm --qmp exited with status %d" % dm.returncode, "", log.text())
        pid = dm.pid
        check_confined(pid, user, log, ctl)
        run_commands(ctl, "companion", log, lambda: dm.poll() is None, "system_reset")
        try:
            dm.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            dm.kill()
            fail("ferry-dm did not end after quit", "", log.text())
        log.t.join(TIMEOUT)
        check_log(log.text())
        if dm.returncode != 0:
            fail("ferry-dm exit status %d after quit" % dm.returncode, "", log.text())
        print("ok: quit ended the companion ferry-dm with status 0")
    finally:
        q.kill()
        q.wait()
        shutil.rmtree(d, ignore_errors=True)


def fake_qmp(srv, got_caps, go_hostile):
    """A QMP peer: greets, answers every command with an empty return, then
    (once told) sends one line longer than ferry-dm accepts."""
    conn, _ = srv.accept()
    conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, '
                 b'"package": ""}, "capabilities": []}}\n')
    buf = b""
    conn.settimeout(0.05)
    while not go_hostile.is_set():
        try:
            d = conn.recv(65536)
        except socket.timeout:
            continue
        if not d:
            return
        buf += d
        while b"\n" in buf:
            ln, _, buf = buf.partition(b"\n")
            try:
                cmd = json.loads(ln)
            except ValueError:
                continue
            rep = {"return": {}}
            if cmd.get("execute") == "query-pci":
                rep = {"return": [{"bus": 0, "devices": []}]}
            if "id" in cmd:
                rep["id"] = cmd["id"]
            conn.sendall(json.dumps(rep).encode() + b"\n")
            got_caps.set()
    conn.settimeout(TIMEOUT)
    try:
        conn.sendall(b'{"return": "' + b"x" * (QMP_LINE_MAX + 4096))
        conn.recv(1)
    except OSError:
        pass
    conn.close()


def qmp_peer_mode(user):
    d = tempfile.mkdtemp(prefix="ferry-sec-")
    qmp = os.path.join(d, "qmp.sock")
    ctl = os.path.join(d, "dm.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(qmp)
    srv.listen(1)
    got_caps, go = threading.Event(), threading.Event()
    t = threading.Thread(target=fake_qmp, args=(srv, got_caps, go), daemon=True)
    t.start()
    dm = subprocess.Popen([DM, "-v", "--qmp", qmp, "--control=" + ctl],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          errors="replace")
    log = Log(dm.stderr)
    try:
        wait_for(lambda: os.path.exists(ctl) or dm.poll() is not None, "ferry-dm's control socket",
                 log)
        if dm.poll() is not None:
            fail("ferry-dm --qmp exited with status %d" % dm.returncode, "", log.text())
        check_confined(dm.pid, user, log, ctl)
        c = Control(ctl)
        r = c.send({"execute": "query-status"})    # served: the loop runs, confined
        c.close()
        if "return" not in r:
            fail("query-status: %r" % r, "", log.text())
        go.set()
        try:
            dm.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            dm.kill()
            fail("ferry-dm did not end when its QMP peer misbehaved", "", log.text())
        log.t.join(TIMEOUT)
        err = log.text()
        check_log(err)
        if dm.returncode < 0:
            fail("ferry-dm died of signal %d" % -dm.returncode, "", err)
        if "ended: Message too long" not in err:
            fail("the log does not name the over-long QMP message", "", err)
        print("ok: over-long QMP line: %s; exit status %d" %
              ([ln for ln in err.splitlines() if "Message too long" in ln][0], dm.returncode))
    finally:
        if dm.poll() is None:
            dm.kill()
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    modes = ("hv", "connect", "unit", "companion", "qmp-peer")
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print(__doc__)
        sys.exit(2)
    mode = sys.argv[1]
    user = preflight(mode)
    if mode in ("hv", "connect", "unit"):
        guest_mode(mode, user)
    elif mode == "companion":
        companion_mode(user)
    else:
        qmp_peer_mode(user)


if __name__ == "__main__":
    main()
