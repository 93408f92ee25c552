#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The `pci` suite: ferry pci on real kernels.

  pci-guest.py guest iommu|noiommu|attach FERRY KERNEL_RIG MKINITRAMFS GUEST_SCRIPT
               FERRY_DM FERRY_FAULT
      Boot Debian's kernel under stock QEMU (TCG, q35, intel-iommu) with a
      busybox initramfs holding ferry and its libraries; run guest-pci.sh.
      iommu, noiommu: compare `ferry pci list --json` device for device with
      QMP query-pci of that guest, and check the verdicts and prepare/release
      results (with the IOMMU on, also prepare/release killed at each step:
      FERRY_FAULT is ferry built with fault injection).  attach (IOMMU on): a
      QEMU inside the guest gets e1000e: from ferry directly, and from a
      confined ferry-dm (its [pci] config and its control socket).
  pci-guest.py smoke FERRY
      `ferry pci list` on this host (no IOMMU, few devices) against sysfs.
  pci-guest.py smoke-nonroot FERRY
      The same as an unprivileged user (65534): every device listed, what is
      hidden said.
  pci-guest.py json-golden FERRY DATA_DIR
      `ferry pci list --json` over the recorded dump against its golden file.
  pci-guest.py qmp-refusal FERRY FERRY_DM
      attach/detach against a real QEMU that refuses the device (no IOMMU
      here): the refusal comes back verbatim and the device is released;
      directly over QMP and through a ferry-dm that holds QEMU's QMP socket.

Exit 0 pass, 1 fail, 77 skip (with "SKIP: reason").
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
from ferrytest import finish, ok, program_check, qemu_check, skip  # noqa: E402

GUEST_MODULES = ["e1000e", "irqbypass", "vfio", "vfio_virqfd", "vfio_iommu_type1",
                 "vfio-pci-core", "vfio-pci"]
# attach mode also gives the guest a disk it mounts (virtio-blk, ext2 through
# ext4) and brings up the virtio-net NIC with a default route: the
# device-access policy must refuse both by discovery.
POLICY_MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                  "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net",
                  "crc32c_generic", "crc16", "mbcache", "jbd2", "ext4"]


class Qmp:
    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.s.settimeout(timeout)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            return r

    def close(self):
        self.f.close()
        self.s.close()


def flatten_query_pci(buses):
    out = {}

    def walk(devs):
        for d in devs:
            bdf = "0000:%02x:%02x.%x" % (d["bus"], d["slot"], d["function"])
            out[bdf] = d
            br = d.get("pci_bridge")
            if br and br.get("devices"):
                walk(br["devices"])
    for b in buses:
        walk(b["devices"])
    return out


def compare_with_qemu(listing, qpci):
    ferry = {d["address"]: d for d in listing["devices"]}
    ok(set(ferry) == set(qpci), "same devices in ferry list and QMP query-pci",
       "ferry %s qemu %s" % (sorted(ferry), sorted(qpci)))
    for bdf in sorted(set(ferry) & set(qpci)):
        f, q = ferry[bdf], qpci[bdf]
        ok(f["vendor_id"] == q["id"]["vendor"] and f["device_id"] == q["id"]["device"],
           "%s vendor:device %04x:%04x" % (bdf, q["id"]["vendor"], q["id"]["device"]),
           "ferry %04x:%04x" % (f["vendor_id"], f["device_id"]))
        ok(f["class"] == q["class_info"]["class"], "%s class %04x" % (bdf, q["class_info"]["class"]),
           "ferry %04x" % f["class"])
        qpin = q.get("irq_pin", 0)
        ok((f["irq_pin"] or 0) == qpin, "%s irq pin %d" % (bdf, qpin), "ferry %s" % f["irq_pin"])
        qbars = {r["bar"]: r for r in q.get("regions", []) if r["bar"] < 6}
        fbars = {b["index"]: b for b in f["bars"]}
        ok(set(qbars) == set(fbars), "%s BAR indexes %s" % (bdf, sorted(qbars)),
           "ferry %s" % sorted(fbars))
        for i in sorted(set(qbars) & set(fbars)):
            qb, fb = qbars[i], fbars[i]
            same = (qb["type"] == fb["type"] and qb["size"] == fb["size"] and
                    qb.get("prefetch", False) == fb["prefetchable"] and
                    qb.get("mem_type_64", False) == fb["64bit"])
            # QEMU reports -1 for a BAR whose decoding is off; otherwise the
            # address must match what the guest programmed.
            if qb["address"] != -1:
                same = same and qb["address"] == fb["address"]
            ok(same, "%s BAR %d %s size %#x at %#x" % (bdf, i, qb["type"], qb["size"],
                                                      qb["address"] & (2**64 - 1)),
               "ferry %s" % fb)
        qrom = [r for r in q.get("regions", []) if r["bar"] == 6]
        # The kernel shows the boot VGA's ROM as its 128 KiB shadow copy at
        # 0xc0000, not the device's own ROM BAR size.
        if qrom and f["class"] >> 8 != 0x03:
            ok(f["rom"] is not None and f["rom"]["size"] == qrom[0]["size"],
               "%s expansion ROM size %#x" % (bdf, qrom[0]["size"]), "ferry %s" % f["rom"])


QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_TCG = "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"   # Debian builds TCG as a module
SEABIOS = "/usr/share/seabios/bios-256k.bin"


def libs_of(binary):
    pairs = []
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if not m:
            continue
        path = m.group(m.lastindex)
        pairs.append((os.path.realpath(path), path))
    return pairs


def eject_bios(path):
    """A 64 KiB firmware for the QEMU inside the guest that plays the guest
    OS's part in an ACPI PCI hot-unplug (what _EJ0 does on i440fx): select
    bus 0 (PCI_SEL 0xae10), poll the slots QEMU wants gone (PCI_DOWN
    0xae04) and eject them (PCI_EJ 0xae08).  With it a device_del completes
    (DEVICE_DELETED) without booting an OS under nested TCG."""
    code = bytes.fromhex("6631c0" "ba10ae" "66ef"          # xor eax,eax; out 0xae10
                         "f390"                            # loop: pause
                         "ba04ae" "66ed" "6685c0" "74f4"   # in 0xae04; jz loop
                         "ba08ae" "66ef" "ebed")           # out 0xae08; jmp loop
    img = bytearray(b"\xf4" * 65536)
    img[0xff00:0xff00 + len(code)] = code
    img[0xfff0:0xfff5] = bytes.fromhex("ea00ff00f0")       # reset: jmp f000:ff00
    with open(path, "wb") as f:
        f.write(img)


def guest_files(ferry, ferry_fault, with_qemu, ferry_dm=None, bios=None):
    """host=guest pairs: ferry, ferry-fault, every library ldd names, the
    loader, pci.ids; with_qemu: also QEMU, its libraries, its TCG module and
    SeaBIOS, and ferry-dm with its libraries and the eject firmware."""
    pairs = [(os.path.realpath(ferry), "/usr/bin/ferry")] + libs_of(ferry)
    pairs += [(os.path.realpath(ferry_fault), "/usr/bin/ferry-fault")] + libs_of(ferry_fault)
    if with_qemu:
        pairs += [(QEMU, QEMU), (QEMU_TCG, QEMU_TCG), (SEABIOS, SEABIOS)]
        pairs += libs_of(QEMU) + libs_of(QEMU_TCG)
        if ferry_dm:
            pairs += [(os.path.realpath(ferry_dm), "/usr/bin/ferry-dm")] + libs_of(ferry_dm)
        if bios:
            pairs.append((bios, "/ferry-eject.bin"))
    for ids in ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"):
        if os.path.exists(ids):
            pairs.append((ids, "/usr/share/misc/pci.ids"))
            break
    seen, out = set(), []
    for p in pairs:
        if p[1] not in seen:
            seen.add(p[1])
            out.append("%s=%s" % p)
    return out


def parse_console(text):
    blocks, facts = {}, {}
    for m in re.finditer(r"FERRY-BEGIN (.+?)\r?\n(.*?)FERRY-END \1 rc=(\d+)", text, re.S):
        blocks[m.group(1)] = (int(m.group(3)), m.group(2).replace("\r", ""))
    for m in re.finditer(r"FERRY-FACT (.*?)\r?$", text, re.M):
        for kv in m.group(1).split(" "):
            if "=" in kv:
                k, v = kv.split("=", 1)
                facts[k] = v
    return blocks, facts


def json_of(block):
    text = block[1]
    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else None


def verdicts(report):
    return {c["check"]: c["verdict"] for c in report["checks"]}


def run_guest(mode, ferry, rig_kernel, mkinitramfs, script, ferry_dm, ferry_fault):
    if mode not in ("iommu", "noiommu", "attach"):
        print(__doc__)
        sys.exit(2)
    qemu_check()
    # Attach end to end needs a QEMU inside the guest: this host's, at Debian's paths.
    nested = mode == "attach"
    lacking = [f for f in (QEMU, QEMU_TCG, SEABIOS) if nested and not os.path.exists(f)]
    if lacking:
        skip("the QEMU copied into the guest needs %s (Debian's qemu-system-x86 and "
             "seabios)" % " and ".join(lacking))
    r = subprocess.run(["sh", rig_kernel], capture_output=True, text=True)
    if r.returncode == 77:
        skip(r.stderr.strip().replace("SKIP: ", "") or "no kernel")
    if r.returncode != 0:
        print(r.stderr)
        sys.exit(1)
    kdir = r.stdout.strip()
    tmp = tempfile.mkdtemp(prefix="ferry-pci-")
    try:
        initrd = os.path.join(tmp, "initrd.gz")
        # The guest script loads these itself, in this order (the shared rig's
        # dependency walk loses modules whose dependencies have dependencies).
        mods = []
        for name in GUEST_MODULES + (POLICY_MODULES if nested else []):
            found = None
            for root, _, names in os.walk(os.path.join(kdir, "modules")):
                if name + ".ko" in names:
                    found = os.path.join(root, name + ".ko")
                    break
            if not found:   # Debian's kernel has them: another kernel is the rig's failure
                ok(False, "module %s is in %s" % (name, kdir))
                finish()
            mods.append("%s=/ferry-modules/%02d-%s.ko" % (found, len(mods), name))
        bios = os.path.join(tmp, "eject.bin")
        eject_bios(bios)
        r = subprocess.run(["sh", mkinitramfs, initrd, kdir, script, "--"] +
                           guest_files(ferry, ferry_fault, nested, ferry_dm, bios) + mods,
                           capture_output=True, text=True)
        if r.returncode == 77:      # busybox-static, cpio or kmod missing
            skip(r.stderr.strip().replace("SKIP: ", "") or "cannot build the initramfs")
        if r.returncode != 0:
            print(r.stderr)
            sys.exit(1)
        qmp_path = os.path.join(tmp, "qmp.sock")
        sync_path = os.path.join(tmp, "sync.sock")
        disk = []
        if nested:
            img = os.path.join(tmp, "disk.img")
            mkfs = shutil.which("mkfs.ext2") or "/sbin/mkfs.ext2"
            if not os.path.exists(mkfs):
                skip("mkfs.ext2 (e2fsprogs) is not installed: the guest's disk needs it")
            r = subprocess.run([mkfs, "-q", "-F", img, "4096"], capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr)
                sys.exit(1)
            disk = ["-drive", "if=none,id=d0,format=raw,file=%s" % img,
                    "-device", "virtio-blk-pci,drive=d0,addr=05.0"]
        append = "console=ttyS0 quiet panic=-1 no_timer_check ferry_mode=%s %s" % (
            mode, "intel_iommu=off" if mode == "noiommu" else "intel_iommu=on")
        # A guard against a hung QEMU, not a time limit on the guest: meson's
        # timeout (600 s, times 3 in the ASan run) is the limit.  300 s was
        # too short for the ASan build on a loaded machine.
        cmd = ["timeout", "1700", "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35",
               "-m", "768", "-nographic", "-no-reboot",
               "-device", "intel-iommu",
               "-device", "e1000e,netdev=n0,addr=02.0", "-netdev", "user,id=n0",
               "-device", "pcie-root-port,id=rp1,chassis=1,slot=1,addr=03.0",
               "-device", "virtio-net-pci,bus=rp1,netdev=n1", "-netdev", "user,id=n1",
               "-device", "pci-testdev,addr=04.0,multifunction=on",
               "-device", "pci-testdev,addr=04.1",
               "-chardev", "socket,id=sync,path=%s,server=on,wait=off" % sync_path,
               "-serial", "mon:stdio", "-serial", "chardev:sync",
               "-qmp", "unix:%s,server=on,wait=off" % qmp_path,
               "-kernel", os.path.join(kdir, "vmlinuz"), "-initrd", initrd,
               "-append", append] + disk
        t0 = time.monotonic()
        q = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        console = b""
        live = None
        if os.environ.get("FERRY_BUILD_ROOT"):
            log = os.path.join(os.environ["FERRY_BUILD_ROOT"], "meson-logs",
                               "pci-guest-%s.console.log" % mode)
            live = open(log, "wb")
            print("guest console: " + log)
        synced = False
        qpci = None
        sync = None
        while True:
            if sync is not None and b"FERRY-BEGIN list-text" not in console:
                # Keep poking the guest's ttyS1 until it moves on.
                ready, _, _ = select.select([q.stdout], [], [], 0.5)
                if not ready:
                    sync.sendall(b"go\n")
                    continue
            chunk = q.stdout.read1(65536)
            if not chunk:
                break
            console += chunk
            if live:
                live.write(chunk)
                live.flush()
            if not synced and b"FERRY-SYNC" in console:
                synced = True
                qm = Qmp(qmp_path)
                qpci = flatten_query_pci(qm.cmd("query-pci")["return"])
                qm.close()
                sync = socket.socket(socket.AF_UNIX)
                sync.connect(sync_path)
                sync.sendall(b"go\n")
        if sync is not None:
            sync.close()
        q.wait()
        print("qemu exited with status %d" % q.returncode)
        text = console.decode("utf-8", "replace")
        if live:
            live.close()
        print("guest (%s) ran %.1f s" % (mode, time.monotonic() - t0))
        done = re.search(r"FERRY-GUEST-DONE rc=(\d+)", text)
        if not ok(done is not None, "guest finished (FERRY-GUEST-DONE)"):
            print(text[-4000:])
            print(" ".join(cmd))
            finish()
        blocks, facts = parse_console(text)
        for name, (rc, out) in sorted(blocks.items()):
            print("---- %s (rc=%d)\n%s" % (name, rc, out.rstrip()[-3000:]))
        print("---- facts:", facts)
        if nested:
            check_attach(blocks, facts)
            check_dm(blocks, facts)
        else:
            check_guest(mode, blocks, facts, qpci)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


def check_guest(mode, b, facts, qpci):
    listing = json_of(b["list"]) if "list" in b else None
    ok(listing is not None and b["list"][0] == 0, "ferry pci list --json in the guest")
    if listing and qpci:
        compare_with_qemu(listing, qpci)
        ferry = {d["address"]: d for d in listing["devices"]}
        e = ferry.get("0000:00:02.0", {})
        ok([c["name"] for c in e.get("extended_capabilities", [])] == ["aer", "dsn"],
           "e1000e extended capabilities aer, dsn", e.get("extended_capabilities"))
        ok(ferry.get("0000:01:00.0", {}).get("parent") == "0000:00:03.0",
           "virtio-net's parent is the root port")
        ok(ferry.get("0000:01:00.0", {}).get("physical_slot") is not None,
           "virtio-net sits in a physical slot")
        ok(e.get("driver") == "e1000e", "e1000e bound to e1000e")
        if mode == "iommu":
            ok(isinstance(e.get("iommu_group"), int), "e1000e has an IOMMU group")
        else:
            ok(e.get("iommu_group") is None, "no IOMMU group with the IOMMU off")
    ok(b.get("list-text", (1,))[0] == 0 and "0000:01:00.0" in b["list-text"][1] and
       "  0000:01:00.0" in b["list-text"][1], "ferry pci list --tree --all")
    ok(b.get("check bad-bdf", (0,))[0] == 2 and "not a PCI address" in b["check bad-bdf"][1],
       "malformed BDF is a usage error")
    ok(b.get("check missing", (0,))[0] == 1 and "no such device" in b["check missing"][1],
       "missing device is named")

    rep = {d: json_of(b["check " + d]) for d in ("00:02.0", "01:00.0", "00:04.0", "00:01.0",
                                                 "00:03.0") if "check " + d in b}
    e1000e, virtio, testdev, vga, port = (verdicts(rep[d]) if rep.get(d) else {} for d in
                                          ("00:02.0", "01:00.0", "00:04.0", "00:01.0", "00:03.0"))
    if mode == "noiommu":
        ok(e1000e.get("iommu") == "fail" and e1000e.get("group") == "fail" and
           rep["00:02.0"]["ready"] is False, "IOMMU off: iommu and group fail, not ready")
        ok("intel_iommu=on" in [c for c in rep["00:02.0"]["checks"] if c["check"] == "iommu"][0]["reason"],
           "IOMMU off: the report says how to turn it on")
        ok(b["prepare e1000e"][0] == 1 and "refusing" in b["prepare e1000e"][1],
           "IOMMU off: prepare refuses", b["prepare e1000e"])
        ok(facts.get("driver-after-refusal") == "e1000e", "IOMMU off: e1000e keeps its driver")
        return

    ok(e1000e.get("iommu") == "pass" and e1000e.get("interrupt-remapping") == "pass",
       "IOMMU and interrupt remapping pass")
    ok(e1000e.get("group") == "pass" and rep["00:02.0"]["ready"] is True,
       "e1000e: group of one, ready", rep.get("00:02.0"))
    # e1000e in QEMU has no FLR, only PM reset (NoSoftRst-): the kernel agrees.
    ok(e1000e.get("reset") == "warn" and rep["00:02.0"]["reset_methods"] == ["pm"] and
       rep["00:02.0"]["kernel_reset_method"] == "pm", "e1000e: no FLR, PM reset only",
       rep["00:02.0"]["reset_methods"])
    ok(virtio.get("reset") == "pass" and "flr" in rep["01:00.0"]["reset_methods"] and
       "bus" in rep["01:00.0"]["reset_methods"] and
       rep["01:00.0"]["kernel_reset_method"] == "flr pm bus",
       "virtio-net behind the root port: FLR, PM and bus reset", rep["01:00.0"]["reset_methods"])
    ok(virtio.get("acs") == "pass", "virtio-net: ACS enabled on the root port")
    ok(testdev.get("group") == "warn" and len(rep["00:04.0"]["group_members"]) == 2,
       "pci-testdev: group of several", rep.get("00:04.0", {}).get("group_members"))
    ok(vga.get("vga") == "fail", "boot VGA flagged")
    ok(port.get("device") == "fail", "bridge flagged")
    ok("[pass] iommu" in b.get("check-text 00:02.0", (0, ""))[1], "text readiness report")

    group = facts.get("group", "")
    ok(b["prepare e1000e"][0] == 0, "prepare e1000e", b["prepare e1000e"])
    ok(facts.get("driver-prepared") == "vfio-pci" and facts.get("override") is not None,
       "e1000e bound to vfio-pci", facts)
    ok(facts.get("vfio-open") == "ok", "/dev/vfio/%s opens" % group)
    ok(b["prepare again"][0] == 0, "prepare is idempotent")
    ok(b["release e1000e"][0] == 0 and facts.get("driver-released") == "e1000e",
       "release gives e1000e back", b["release e1000e"])
    ok(facts.get("net-after") and facts.get("net-after") == facts.get("net-before"),
       "network interface returns (%s)" % facts.get("net-before"))
    ok(b["release again"][0] == 0, "release is idempotent")
    ok(b["prepare killed"][0] != 0 and facts.get("driver-killed") == "",
       "prepare killed after unbind leaves no driver", facts.get("driver-killed"))
    ok(b["prepare rerun"][0] == 0 and facts.get("driver-rerun") == "vfio-pci",
       "rerun finishes the interrupted prepare")
    ok(b["release killed"][0] != 0 and facts.get("driver-release-killed") == "",
       "release killed before rebind")
    ok(b["release rerun"][0] == 0 and facts.get("driver-final") == "e1000e" and
       facts.get("net-final") == facts.get("net-before"),
       "rerun finishes the interrupted release, interface back")
    for step in ("record", "override", "unbind"):
        # killed before record or override: still on e1000e; before unbind: e1000e too
        ok(facts.get("kill-prepare-" + step) == "e1000e,vfio-pci",
           "prepare killed before %s, rerun binds vfio-pci" % step, facts.get("kill-prepare-" + step))
    for step in ("clear-override", "unbind"):
        ok(facts.get("kill-release-" + step) == "vfio-pci,e1000e",
           "release killed before %s, rerun gives e1000e back" % step,
           facts.get("kill-release-" + step))
    ok(facts.get("after-kills") == "e1000e" and facts.get("state") == "",
       "no state left behind after the kill runs", (facts.get("after-kills"), facts.get("state")))
    nv = b.get("prepare without vfio-pci", (0, ""))
    ok(nv[0] == 1 and "vfio-pci is not loaded" in nv[1] and "given back to e1000e" in nv[1] and
       facts.get("no-vfio-driver") == "e1000e" and facts.get("no-vfio-override") == "(null)",
       "kernel has no vfio-pci: clear error, e1000e back, override cleared", (nv, facts.get("no-vfio-override")))
    ok(b["prepare group"][0] == 0 and facts.get("group-prepared") == "vfio-pci,vfio-pci",
       "prepare --group binds both functions", b["prepare group"])
    ok(b["release group"][0] == 0 and facts.get("group-released") == ",",
       "release --group gives both back (no driver)", facts.get("group-released"))
    ok(b["prepare bridge"][0] == 1 and "bridge" in b["prepare bridge"][1], "bridge refused")
    ok(b["prepare vga"][0] == 1 and "boot VGA" in b["prepare vga"][1] and
       facts.get("vga-driver") == "", "boot VGA refused")
    ok(b["prepare vanish"][0] == 1 and "vanished" in b["prepare vanish"][1],
       "device removed mid-prepare: clear error", b["prepare vanish"])
    ok(facts.get("vanish-back", "").endswith("0000:00:04.1"), "device back after rescan")


def check_attach(b, facts):
    ok(facts.get("inner-qemu") == "0", "QEMU starts inside the guest")
    a = b.get("attach", (1, ""))
    ok(a[0] == 0 and re.search(r"attached to the guest as ferry-pci-00-02-0 at guest address "
                               r"00:[0-9a-f]{2}\.0", a[1]) is not None,
       "attach: device_add vfio-pci, and the inner QEMU's query-pci shows it", a)
    ok(facts.get("attach-driver") == "vfio-pci" and int(facts.get("inner-vfio-fds", "0")) >= 1,
       "the inner QEMU holds /dev/vfio open", facts.get("inner-vfio-fds"))
    rb = b.get("release busy", (0, ""))
    ok(rb[0] == 1 and "in use: pid" in rb[1] and "qemu" in rb[1],
       "release refused while QEMU holds the device", rb)
    ok(b.get("release after attach", (1,))[0] == 0 and facts.get("driver-after-attach") == "e1000e"
       and facts.get("net-after-attach") == facts.get("net-before"),
       "released after the inner QEMU quit, interface back")
    # The device-access policy (docs/policy.md), as root in this guest.
    ok(facts.get("disk-mounted") == "0" and facts.get("route") == "1",
       "the guest mounts its disk and routes through its virtio-net NIC",
       (facts.get("disk-mounted"), facts.get("nic"), facts.get("route")))
    for name, what, why in (("policy disk", "00:05.0", "backs the filesystem mounted on /mnt/disk"),
                            ("policy nic", "01:00.0", "which carries the default route")):
        r = b.get(name, (0, ""))
        ok(r[0] == 1 and why in r[1] and "has no force=true" in r[1],
           "policy: %s refused by discovery (%s) although a rule allows its class" % (what, why),
           r)
    r = b.get("policy show", (1, ""))
    ok(r[0] == 0 and "pci:0000:00:05.0 backs the filesystem mounted on /mnt/disk" in r[1] and
       "pci:0000:01:00.0 is the network interface" in r[1] and
       "pci:0000:00:03.0 is the network interface" in r[1],
       "policy show lists the disk, the NIC and the NIC's root port", r)
    r = b.get("policy attach a", (1, ""))
    ok(r[0] == 0 and "attached to the guest" in r[1], "policy: e1000e attached to guest a", r)
    r = b.get("policy attach b", (0, ""))
    ok(r[0] == 1 and "is assigned to guest a (qemu pid" in r[1],
       "policy: e1000e refused to guest b while a holds it, naming a", r)
    r = b.get("policy check b", (0, ""))
    ok(r[0] == 1 and "assigned to guest a" in r[1], "policy check says the same", r)
    r = b.get("policy detach a", (1, ""))
    ok(r[0] == 0, "policy: e1000e detached from a", r)
    r = b.get("policy attach b again", (1, ""))
    ok(r[0] == 0 and "attached to the guest" in r[1],
       "policy: e1000e attached to b after a detached", r)
    r = b.get("policy detach b", (1, ""))
    ok(r[0] == 0 and facts.get("policy-driver-final") == "e1000e",
       "policy: detached from b, e1000e back", (r, facts.get("policy-driver-final")))


def check_dm(b, facts):
    """ferry-dm with a [pci] config, confined, as the companion of a QEMU
    inside the guest (guest-pci.sh, "ferry-dm" part)."""
    def blk(name):
        return b.get(name, (-1, "(not run)"))

    ok(facts.get("dm-started") == "yes", "ferry-dm starts with [pci] devices=e1000e",
       blk("dm log")[1][-1500:])
    ok(facts.get("dm-seccomp") == "2" and facts.get("dm-uid") not in (None, "", "0"),
       "ferry-dm is confined (seccomp filter mode, not root)",
       "seccomp %s uid %s" % (facts.get("dm-seccomp"), facts.get("dm-uid")))
    ok(facts.get("dm-driver") == "vfio-pci", "ferry-dm prepared e1000e (vfio-pci)",
       facts.get("dm-driver"))
    qp = blk("dm inner query-pci")
    devs = {}
    try:
        devs = flatten_query_pci(json.loads(qp[1][qp[1].find("["):]))
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    hostnic = [(bdf, d) for bdf, d in devs.items() if d.get("qdev_id") == "hostnic"]
    ok(len(hostnic) == 1 and hostnic[0][0] == "0000:00:05.0" and
       hostnic[0][1]["id"]["vendor"] == 0x8086 and hostnic[0][1]["id"]["device"] == 0x10d3,
       "the inner QEMU's query-pci (its second QMP socket) has e1000e as hostnic at 00:05.0",
       qp[1][-1500:])
    q = blk("dm query")
    ok(q[0] == 0 and re.search(r'"host"\s*:\s*"0000:00:02.0"', q[1]) and
       re.search(r'"id"\s*:\s*"hostnic"', q[1]) and re.search(r'"config"\s*:\s*true', q[1]) and
       re.search(r'"guest-address"\s*:\s*"00:05.0"', q[1]),
       "query-pci-assigned shows the config device and where the guest sees it", q)
    check_dm_replaced(b, facts, blk, "cfg", "hostnic", "true", "0000:00:05.0")
    d = blk("dm detach paused")
    ok(d[0] == 1 and "the guest did not release" in d[1] and "stays assigned" in d[1],
       "detach while the inner guest is paused: bounded wait, clear error", d)
    ok(facts.get("dm-driver-paused") == "vfio-pci", "the device stays on vfio-pci after that")
    st = blk("dm paused status")
    ok(facts.get("dm-paused-waiting") == "yes" and facts.get("dm-paused-status-rc") == "0" and
       '"running"' in st[1] and facts.get("dm-paused-order") == "status-first",
       "while pci-detach waits for the guest, ferry-dm answers another control client "
       "(query-status) before the detach's reply",
       (facts.get("dm-paused-waiting"), facts.get("dm-paused-status-rc"),
        facts.get("dm-paused-order"), st))
    d = blk("dm detach after eject")
    ok(d[0] == 0 and "released" in d[1] and facts.get("dm-driver-detached") == "e1000e",
       "once the guest ejected it, detach completes and the device is released", d)
    a = blk("dm attach")
    ok(a[0] == 0 and "attached to the guest as ferry-pci-00-02-0 at guest address 00:06.0" in a[1],
       "ferry pci attach through ferry-dm's control socket (pci-attach, --addr 6)", a)
    ok(facts.get("dm-driver-attached") == "vfio-pci", "prepared by ferry before pci-attach")
    check_dm_replaced(b, facts, blk, "hot", "ferry-pci-00-02-0", "false", "0000:00:06.0")
    d = blk("dm detach")
    ok(d[0] == 0 and facts.get("dm-driver-detached2") == "e1000e",
       "detach through ferry-dm (the last successor of two replaces): device_del completes "
       "(DEVICE_DELETED), then released", d)
    ok(facts.get("dm-exited") == "yes", "ferry-dm exits when its QEMU does")
    ok(facts.get("dm-driver-stopped") == "vfio-pci", "the device stays on vfio-pci after that")
    r = blk("release config")
    ok(r[0] == 0 and "0000:00:02.0: released (driver e1000e)" in r[1] and
       facts.get("dm-driver-final") == "e1000e" and facts.get("dm-net-final") == facts.get("net-before"),
       "ferry pci release --config gives e1000e back, interface back", r)
    r = blk("release config again")
    ok(r[0] == 0, "release --config again: nothing to do, success", r)
    r = blk("dm bad key")
    ok(r[0] == 2 and "/tmp/bad1.conf: [pci] has no key 'device'" in r[1],
       "ferry-dm refuses an unknown [pci] key, naming file and key", r)
    r = blk("dm bad bdf")
    ok(r[0] == 2 and "/tmp/bad2.conf: [pci] devices: '00:2.0': not a PCI address" in r[1],
       "ferry-dm refuses a malformed BDF, naming file, key and value", r)
    r = blk("dm not viable")
    # the device-access policy refuses the boot VGA device before pcihost is asked
    ok(r[0] != 0 and "[pci] device 0000:00:01.0 for guest" in r[1] and
       "boot VGA" in r[1], "ferry-dm refuses to start when a [pci] device is not viable", r)
    # the systemd unit's way: root prepares and releases around a ferry-dm run as ferry
    r = blk("dm nonroot unprepared")
    ok(r[0] != 0 and "[pci] device 0000:00:02.0: not on vfio-pci (driver e1000e)" in r[1] and
       "ferry pci prepare --config /tmp/vm.conf" in r[1],
       "ferry-dm as a user refuses a [pci] device root has not prepared, saying what to run", r)
    r = blk("prepare config")
    ok(r[0] == 0 and "0000:00:02.0: prepared for VFIO (driver vfio-pci)" in r[1],
       "ferry pci prepare --config (ExecStartPre=)", r)
    q = blk("dm2 query")
    ok(facts.get("dm2-started") == "yes" and facts.get("dm2-uid") == "970" and q[0] == 0 and
       re.search(r'"guest-address"\s*:\s*"00:05.0"', q[1]),
       "ferry-dm as user ferry plugs the device root prepared", (facts.get("dm2-uid"), q,
                                                                 blk("dm2 log")[1][-1500:]))
    r = blk("release config 2")
    ok(r[0] == 0 and facts.get("dm2-driver-final") == "e1000e",
       "ferry pci release --config after it stopped (ExecStopPost=)", r)


def check_dm_replaced(b, facts, blk, tag, qid, config, where):
    """ferry-dm replaced twice with e1000e assigned as qid (guest-pci.sh,
    dm_replace): QEMU keeps the device where it was, the last successor lists
    it and the ownership claim is held throughout."""
    what = "from the config" if config == "true" else "attached at run time"
    pids = [facts.get("%s-replace-%d" % (tag, n), "") for n in (1, 2)]
    slow = [facts.get("%s-replace-%d-timeouts" % (tag, n), "0") for n in (1, 2)]
    if slow != ["0", "0"]:
        print("note: %s: a successor was slower than ferry-dm's step timeout and refused "
              "(the old one served on), the replace repeated: %s times" % (tag, "+".join(slow)))
    ok(all(p.isdigit() for p in pids) and pids[0] != pids[1],
       "%s: ferry-dm replaced twice with e1000e (%s) assigned" % (tag, what),
       [blk("%s replace %d" % (tag, n)) for n in (1, 2)] + [blk("dm log")[1][-2500:]])
    if tag == "cfg":
        ok(facts.get("cfg-replaced-old-gone") == "yes" and facts.get("cfg-driver") == "vfio-pci",
           "cfg: the first ferry-dm has exited, e1000e is still on vfio-pci",
           (facts.get("cfg-replaced-old-gone"), facts.get("cfg-driver")))
    q = blk("%s query replaced" % tag)
    ok(q[0] == 0 and re.search(r'"host"\s*:\s*"0000:00:02.0"', q[1]) and
       re.search(r'"id"\s*:\s*"%s"' % qid, q[1]) and
       re.search(r'"config"\s*:\s*%s' % config, q[1]) and
       re.search(r'"guest-address"\s*:\s*"%s"' % where[5:], q[1]),
       "%s: the successor's query-pci-assigned lists e1000e as %s (%s) at %s" %
       (tag, qid, what, where[5:]), q)
    qp = blk("%s inner query-pci replaced" % tag)
    devs = {}
    try:
        devs = flatten_query_pci(json.loads(qp[1][qp[1].find("["):]))
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    got = [bdf for bdf, d in devs.items() if d.get("qdev_id") == qid]
    ok(got == [where], "%s: the inner QEMU's query-pci still has %s at %s after the replaces" %
       (tag, qid, where[5:]), qp[1][-1500:])
    r = blk("%s owner replaced" % tag)
    ok(r[0] == 1 and "refused: assigned to guest" in r[1] and "owner: guest" in r[1],
       "%s: the claim is held across the replaces (another guest is refused e1000e)" % tag, r)


def smoke(ferry):
    r = subprocess.run([ferry, "pci", "list", "--json"], capture_output=True, text=True)
    if not ok(r.returncode == 0, "ferry pci list --json on this host", r.stderr):
        finish()
    listing = json.loads(r.stdout)
    sysdevs = sorted(os.listdir("/sys/bus/pci/devices")) if os.path.isdir("/sys/bus/pci/devices") else []
    ok(sorted(d["address"] for d in listing["devices"]) == sysdevs,
       "every device of /sys/bus/pci/devices (%d)" % len(sysdevs))
    for d in listing["devices"]:
        with open("/sys/bus/pci/devices/%s/vendor" % d["address"]) as f:
            v = int(f.read(), 16)
        with open("/sys/bus/pci/devices/%s/class" % d["address"]) as f:
            c = int(f.read(), 16) >> 8
        ok(d["vendor_id"] == v and d["class"] == c, "%s vendor %04x class %04x" % (d["address"], v, c))
        drv = os.path.join("/sys/bus/pci/devices", d["address"], "driver")
        ok(d["driver"] == (os.path.basename(os.readlink(drv)) if os.path.exists(drv) else None),
           "%s driver %s" % (d["address"], d["driver"]))
    r = subprocess.run([ferry, "pci", "list", "--tree", "--all"], capture_output=True, text=True)
    ok(r.returncode == 0 and len(r.stdout.splitlines()) >= len(sysdevs), "ferry pci list --tree --all")
    if sysdevs:
        r = subprocess.run([ferry, "pci", "check", "--json", sysdevs[-1]], capture_output=True,
                           text=True)
        rep = json.loads(r.stdout) if r.stdout.startswith("{") else {}
        has_iommu = os.path.isdir("/sys/kernel/iommu_groups") and os.listdir("/sys/kernel/iommu_groups")
        ok(r.returncode in (0, 1) and rep.get("device") == sysdevs[-1], "ferry pci check on this host")
        if not has_iommu:
            ok(verdicts(rep).get("iommu") == "fail" and rep.get("ready") is False,
               "no IOMMU here: check says so")
    finish()


def smoke_nonroot(ferry):
    """As a user without privileges: still lists, says what is hidden."""
    if os.geteuid() != 0:
        skip("needs root to run ferry as user 65534 (setpriv)")
    program_check("setpriv", "util-linux")
    sysdevs = sorted(os.listdir("/sys/bus/pci/devices")) if os.path.isdir("/sys/bus/pci/devices") else []
    if not sysdevs:
        skip("this machine has no PCI devices")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # Reaching the build at all is the machine's business (a build in a
    # private home directory); once ferry runs, its failure is a FAIL.
    r = subprocess.run(nobody + [ferry, "--version"], capture_output=True, text=True)
    if r.returncode == 126 or (r.returncode != 0 and "Permission denied" in r.stderr):
        skip("user 65534 cannot execute %s here: %s" % (ferry, r.stderr.strip()))
    r = subprocess.run([ferry, "pci", "list", "--json"], capture_output=True, text=True)
    if not ok(r.returncode == 0, "ferry pci list --json as root", r.stderr):
        finish()
    listing = json.loads(r.stdout)
    r = subprocess.run(nobody + [ferry, "pci", "list", "--json"], capture_output=True, text=True)
    if not ok(r.returncode == 0, "ferry pci list --json as user 65534", r.stderr):
        finish()
    nl = json.loads(r.stdout)
    ok(len(nl["devices"]) == len(sysdevs), "non-root: every device listed (%d)" % len(sysdevs))
    ok("capabilities" in nl["hidden"] or all(not d["capabilities"] for d in listing["devices"]),
       "non-root: hidden capabilities reported", nl["hidden"])
    finish()


def qmp_refusal(ferry, ferry_dm):
    qemu_check()
    tmp = tempfile.mkdtemp(prefix="ferry-pciqmp-")
    q = None
    try:
        # A fake sysfs where 0000:00:02.0 is already on vfio-pci, so prepare
        # has nothing to do and the request reaches QEMU; the real QEMU then
        # looks for the device's IOMMU group on this host, which has none.
        sysfs = os.path.join(tmp, "sys")
        dev = os.path.join(sysfs, "bus/pci/devices/0000:00:02.0")
        os.makedirs(dev)
        os.makedirs(os.path.join(sysfs, "bus/pci/drivers/vfio-pci"))
        os.makedirs(os.path.join(sysfs, "kernel/iommu_groups/7/devices"))
        os.symlink("../../../../bus/pci/devices/0000:00:02.0",
                   os.path.join(sysfs, "kernel/iommu_groups/7/devices/0000:00:02.0"))
        os.symlink("../../../../kernel/iommu_groups/7", os.path.join(dev, "iommu_group"))
        os.symlink("../../../../bus/pci/drivers/vfio-pci", os.path.join(dev, "driver"))
        # what the device-access policy reads of it (the dump's 82574L)
        for f, v in (("driver_override", "vfio-pci\n"), ("numa_node", "-1\n"),
                     ("vendor", "0x8086\n"), ("device", "0x10d3\n"), ("class", "0x020000\n")):
            with open(os.path.join(dev, f), "w") as fh:
                fh.write(v)
        for f in ("unbind", "bind"):
            open(os.path.join(sysfs, "bus/pci/drivers/vfio-pci", f), "w").close()
        open(os.path.join(sysfs, "bus/pci/drivers_probe"), "w").close()
        open(os.path.join(sysfs, "bus/pci/rescan"), "w").close()
        dump = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "q35-iommu.lspci")
        env = dict(os.environ, FERRY_SYSFS_ROOT=sysfs, FERRY_PCI_DUMP=dump,
                   FERRY_PCI_STATE_DIR=os.path.join(tmp, "state"),
                   FERRY_PROC_ROOT=os.path.join(tmp, "proc"))
        os.makedirs(os.path.join(tmp, "proc/self"))
        with open(os.path.join(tmp, "proc/interrupts"), "w") as fh:
            fh.write("  24:  0  IR-PCI-MSI 49152-edge  x\n")
        with open(os.path.join(tmp, "proc/self/mountinfo"), "w") as fh:
            fh.write("1 1 0:2 / / rw - rootfs rootfs rw\n")
        os.makedirs(os.path.join(tmp, "proc/net"))
        with open(os.path.join(tmp, "proc/net/route"), "w") as fh:
            fh.write("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU"
                     "\tWindow\tIRTT\n")
        sock = os.path.join(tmp, "qmp.sock")
        q = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-S",
                              "-nodefaults", "-nographic", "-display", "none",
                              "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
                              "-qmp", "unix:%s,server=on,wait=off" % sock],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        # QEMU's QMP socket serves one client at a time: hand it over to ferry.
        qm = Qmp(sock)
        qm.close()
        r = subprocess.run([ferry, "pci", "attach", "--bus", "rp1", sock, "00:02.0"],
                           capture_output=True, text=True, env=env)
        print(r.stdout + r.stderr)
        ok(r.returncode == 1, "attach fails when QEMU refuses")
        ok("QEMU refused device_add vfio-pci,host=0000:00:02.0" in r.stderr and
           ("vfio" in r.stderr.split("refused", 1)[1]),
           "QEMU's own reason is passed on", r.stderr)
        ok("released (driver now" in r.stderr, "device released after the refusal")
        qm = Qmp(sock)
        devs = qm.cmd("query-pci")["return"]
        qm.close()
        ok(not any(d.get("qdev_id", "").startswith("ferry-pci") for d in
                   flatten_query_pci(devs).values()), "QEMU has no half-added device")
        r = subprocess.run([ferry, "pci", "attach", "--bus", "rp1", sock, "00:2.0"],
                           capture_output=True, text=True, env=env)
        ok(r.returncode == 2, "attach with a malformed BDF is a usage error")
        r = subprocess.run([ferry, "pci", "attach", os.path.join(tmp, "nope.sock"), "00:02.0"],
                           capture_output=True, text=True, env=env)
        ok(r.returncode == 1 and "cannot connect" in r.stderr, "attach to a missing QMP socket",
           r.stderr)
        r = subprocess.run([ferry, "pci", "detach", sock, "00:02.0"], capture_output=True,
                           text=True, env=env)
        print(r.stdout + r.stderr)
        ok(r.returncode == 0 and "released" in r.stdout,
           "detach of a device QEMU does not have: device_del says not found, released")
        dm_refusal(ferry, ferry_dm, sock, tmp, env)
        qm = Qmp(sock)
        qm.cmd("quit")
        qm.close()
        q.wait(timeout=30)
    finally:
        if q and q.poll() is None:
            q.send_signal(signal.SIGTERM)
            q.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


def dm_refusal(ferry, ferry_dm, sock, tmp, env):
    """The same through ferry-dm (confined, the default) holding QEMU's QMP
    socket: ferry prepares and asks ferry-dm (pci-attach); QEMU's refusal
    comes back through ferry-dm and ferry releases the device."""
    ctl = os.path.join(tmp, "dm.sock")
    log = open(os.path.join(tmp, "dm.log"), "w+")
    dm = subprocess.Popen([ferry_dm, "--qmp", sock, "--control", ctl, "-v"],
                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        up = False
        while time.monotonic() < deadline and dm.poll() is None:
            r = subprocess.run([ferry, "dm", "-s", ctl, "query-pci-assigned"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                up = True
                break
            time.sleep(0.2)
        if not ok(up, "ferry-dm --qmp up, answering query-pci-assigned"):
            log.seek(0)
            print(log.read())
            return
        ok('"devices" : [ ]' in r.stdout or '"devices" : []' in r.stdout,
           "nothing assigned yet", r.stdout)
        r = subprocess.run([ferry, "pci", "attach", "--bus", "rp1", ctl, "00:02.0"],
                           capture_output=True, text=True, env=env)
        print(r.stdout + r.stderr)
        ok(r.returncode == 1 and "ferry-dm: pci-attach 0000:00:02.0: QEMU refused device_add "
           "vfio-pci" in r.stderr and "vfio" in r.stderr.split("refused", 1)[1],
           "through ferry-dm: QEMU's refusal comes back", r.stderr)
        ok("released (driver now" in r.stderr, "device released after the refusal")
        r = subprocess.run([ferry, "pci", "attach", "--id", "9bad", ctl, "00:02.0"],
                           capture_output=True, text=True, env=env)
        ok(r.returncode == 1 and '"id": \'9bad\' is not valid' in r.stderr,
           "pci-attach checks the id before QEMU sees it", r.stderr)
        r = subprocess.run([ferry, "pci", "detach", ctl, "00:02.0"], capture_output=True,
                           text=True, env=env)
        ok(r.returncode == 1 and "not assigned to this guest" in r.stderr,
           "pci-detach of a device ferry-dm did not plug", r.stderr)
        r = subprocess.run([ferry, "dm", "-s", ctl, "pci-attach", "host=00:02"],
                           capture_output=True, text=True)
        ok(r.returncode != 0 and "is not a PCI address" in r.stderr,
           "pci-attach with a malformed BDF", r.stderr)
        ok(dm.poll() is None, "ferry-dm still serving")
    finally:
        if dm.poll() is None:
            dm.send_signal(signal.SIGTERM)
            dm.wait(timeout=30)
        log.close()


def json_golden(ferry, data):
    """The JSON form is an interface: the dump's listing must stay byte for
    byte what data/q35-iommu.list.json holds (after a deliberate change:
    regenerate it with the command printed below and bump "version" if a
    member changed meaning)."""
    cmd = [ferry, "pci", "--dump", os.path.join(data, "q35-iommu.lspci"), "--sysfs-root",
           "/nonexistent", "--ids", os.path.join(data, "test.ids"), "list", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    with open(os.path.join(data, "q35-iommu.list.json")) as f:
        golden = f.read()
    if not ok(r.returncode == 0 and r.stdout == golden, "list --json matches the golden file"):
        print("regenerate: " + " ".join(cmd) + " > " + os.path.join(data, "q35-iommu.list.json"))
        import difflib
        print("".join(difflib.unified_diff(golden.splitlines(True), r.stdout.splitlines(True),
                                           "golden", "now")))
    listing = json.loads(r.stdout) if r.returncode == 0 else {"devices": []}
    ok(listing.get("version") == 1 and listing.get("source") == "dump" and
       set(listing.get("hidden", [])) == {"bar_sizes", "sysfs"}, "dump listing says what is hidden")
    finish()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "json-golden":
        json_golden(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "smoke":
        smoke(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "smoke-nonroot":
        smoke_nonroot(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "qmp-refusal":
        qmp_refusal(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 9 and sys.argv[1] == "guest":
        run_guest(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
