#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run one libFuzzer target of the fuzzing build (-Dfuzzing=enabled).

  libfuzzer-run.py counters TARGET MIN
      Run TARGET once (-runs=1 on an empty input) and check libFuzzer's
      "INFO: Loaded N modules (M inline 8-bit counters)" line: M must be at
      least MIN.  Fewer means the code under test was linked without
      coverage instrumentation and libFuzzer sees only the harness.

  libfuzzer-run.py smoke TARGET SECONDS SEED_DIR [WORK_DIR]
      Fuzz TARGET for SECONDS from the seeds in SEED_DIR (copied, so the
      checked-in corpus is never written), in WORK_DIR (default: a temporary
      directory).  Any crash, leak, timeout or out-of-memory fails, and the
      input that did it is left in WORK_DIR/artifacts.  Prints one line:
      "TARGET: N executions in S s, C counters, corpus K inputs, no finding".
      With a WORK_DIR, each run without a finding is added to
      WORK_DIR/history ("UTC-date seconds executions", one line a run) and
      the line also gives the total of all those runs.

  libfuzzer-run.py table DIR
      A markdown table of what scripts/fuzz recorded in DIR (one folder per
      target): runs, seconds and executions without a finding, counters,
      corpus size; for docs/fuzzing.md.

Targets that talk to the umockdev USB simulator (UMOCKDEV_TARGETS) are run
under umockdev-wrapper, with ASan told to accept its preload library first.

Exit status: 0 as said, 1 on a finding or a failed check.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LOADED = re.compile(r"INFO: Loaded (\d+) modules?\s+\((\d+) inline 8-bit counters\)")
EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
TOTAL_TIME = re.compile(r"Done (\d+) runs in (\d+) second")


UMOCKDEV_TARGETS = {"fuzz-usb-redir-dev"}


def command(target):
    if os.path.basename(target) in UMOCKDEV_TARGETS:
        return ["umockdev-wrapper", target]
    return [target]


def env(target):
    e = dict(os.environ)
    if os.path.basename(target) in UMOCKDEV_TARGETS:
        e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"
    # Crashes and leaks are findings; abort so that libFuzzer reports them.
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return e


def counters(target, minimum):
    with tempfile.TemporaryDirectory() as d:
        empty = os.path.join(d, "empty")
        open(empty, "wb").close()
        p = subprocess.run(command(target) + ["-runs=1", empty], env=env(target),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
    m = LOADED.search(p.stdout)
    name = os.path.basename(target)
    if p.returncode != 0 or not m:
        print(p.stdout)
        print(f"{name}: exit {p.returncode}, no 'INFO: Loaded' line")
        return 1
    n = int(m.group(2))
    if n < minimum:
        print(p.stdout)
        print(f"{name}: {n} inline 8-bit counters, fewer than the {minimum} expected: "
              "is the code under test built without -fsanitize=fuzzer-no-link?")
        return 1
    print(f"{name}: {n} inline 8-bit counters (at least {minimum} expected)")
    return 0


def smoke(target, seconds, seeds, work=None):
    name = os.path.basename(target)
    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory()
        work = tmp.name
    corpus = os.path.join(work, "corpus")
    artifacts = os.path.join(work, "artifacts")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    if seeds and os.path.isdir(seeds):
        for f in os.listdir(seeds):
            src = os.path.join(seeds, f)
            if os.path.isfile(src):
                shutil.copy(src, os.path.join(corpus, "seed-" + f))
    cmd = command(target) + [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=1536",
           "-print_final_stats=1", "-artifact_prefix=" + artifacts + "/", corpus]
    p = subprocess.run(cmd, env=env(target), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, errors="replace")
    log = p.stdout
    with open(os.path.join(work, "fuzz.log"), "w") as f:
        f.write(log)
    found = os.listdir(artifacts)
    m = EXECS.search(log)
    c = LOADED.search(log)
    t = TOTAL_TIME.search(log)
    execs = m.group(1) if m else "?"
    ncount = c.group(2) if c else "?"
    secs = t.group(2) if t else str(seconds)
    if p.returncode != 0 or found:
        sys.stdout.write(log[-20000:])
        print(f"{name}: FINDING after {execs} executions (exit {p.returncode}); "
              f"inputs: {' '.join(os.path.join(artifacts, a) for a in found) or 'none'}")
        if tmp:
            # keep the evidence: the temporary directory would take it away
            keep = tempfile.mkdtemp(prefix=f"{name}-finding-")
            for a in found:
                shutil.copy(os.path.join(artifacts, a), keep)
            print(f"{name}: the inputs are kept in {keep}")
            tmp.cleanup()
        return 1
    total = ""
    if not tmp and m:
        import time
        hist = os.path.join(work, "history")
        with open(hist, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {secs} {execs}\n")
        runs = [line.split() for line in open(hist) if line.strip()]
        total = (f"; {sum(int(r[2]) for r in runs)} executions in {sum(int(r[1]) for r in runs)} s "
                 f"over {len(runs)} runs")
    print(f"{name}: {execs} executions in {secs} s, {ncount} counters, "
          f"corpus {len(os.listdir(corpus))} inputs, no finding{total}")
    if tmp:
        tmp.cleanup()
    return 0


def table(d):
    print("| Target | Counters | Covered (last run) | Runs | Seconds | Executions | "
          "Executions/s | Corpus |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in sorted(os.listdir(d)):
        hist = os.path.join(d, name, "history")
        if not os.path.isfile(hist):
            continue
        runs = [line.split() for line in open(hist) if line.strip()]
        secs = sum(int(r[1]) for r in runs)
        execs = sum(int(r[2]) for r in runs)
        c = cov = "?"
        log = os.path.join(d, name, "fuzz.log")
        if os.path.isfile(log):
            text = open(log, errors="replace").read()
            m = LOADED.search(text)
            c = m.group(2) if m else "?"
            covs = re.findall(r"cov: (\d+)", text)
            cov = covs[-1] if covs else "?"
        corpus = len(os.listdir(os.path.join(d, name, "corpus")))
        print(f"| `{name}` | {c} | {cov} | {len(runs)} | {secs} | {execs:,} | "
              f"{execs // secs if secs else 0} | {corpus} |")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "table":
        return table(argv[2])
    if len(argv) == 4 and argv[1] == "counters":
        return counters(argv[2], int(argv[3]))
    if len(argv) in (5, 6) and argv[1] == "smoke":
        return smoke(argv[2], int(argv[3]), argv[4], argv[5] if len(argv) == 6 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
