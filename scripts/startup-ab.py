#!/usr/bin/env python3
"""startup-ab.py: what starting hawk costs, two or more binaries alternating.

    scripts/startup-ab.py version N BIN...   N runs of each BIN -version
    scripts/startup-ab.py upgrade N BIN...   N idle upgrades (SIGHUP) of each BIN

version: each run is spawned with posix_spawn (vfork: no copy of this process's page
tables is charged to the child) and reaped with wait4, whose rusage gives the child's
CPU (user + system) and minor page faults; wall time is from spawn to reap. The
binaries alternate, the order reversed every other round, so that a change in the
machine's load falls on each of them alike.

upgrade: a fresh server on a fresh spool directory, SIGHUP once it has written its PID
file (and 0.2 s more, past its own after-ready work), then sighup_to_ready from the
old process's log and, from the new process's "listening" line, before_main,
config_load, startup, cpu and page_faults; the old process drains and exits and the
new one is stopped before the next upgrade. Order ABBA as above.

Prints the median and range of each figure per binary, and the load average.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def summary(name, res):
    parts = []
    for f, v in res.items():
        parts.append("%s %.2f (%.2f-%.2f)" % (f, statistics.median(v), min(v), max(v)))
    print("%s: %s" % (os.path.basename(name), "  ".join(parts)))


def rounds(n, bins):
    for i in range(n):
        yield from (bins if i % 2 == 0 else bins[::-1])


def version(n, bins):
    res = {b: {"wall_ms": [], "cpu_ms": [], "faults": []} for b in bins}
    null = os.open(os.devnull, os.O_WRONLY)
    acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    for b in rounds(n, bins):
        t = time.perf_counter()
        pid = os.posix_spawn(b, [b, "-version"], os.environ, file_actions=acts)
        _, status, ru = os.wait4(pid, 0)
        wall = (time.perf_counter() - t) * 1e3
        if status != 0:
            sys.exit("%s -version: status %d" % (b, status))
        r = res[b]
        r["wall_ms"].append(wall)
        r["cpu_ms"].append((ru.ru_utime + ru.ru_stime) * 1e3)
        r["faults"].append(ru.ru_minflt)
    for b in bins:
        summary(b, res[b])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, secs, what):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    sys.exit("timed out waiting for " + what)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


CHILD = ["before_main", "config_load", "startup", "cpu", "page_faults"]


def one_upgrade(b, d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    pidf, logf = os.path.join(d, "pid"), os.path.join(d, "log")
    with open(logf, "w") as log:
        p = subprocess.Popen([b, "-listen=127.0.0.1:%d" % free_port(), "-admin.addr=",
                              "-spool.dir=" + os.path.join(d, "spool"), "-upgrade.pid_file=" + pidf,
                              "-log.format=json"], stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: os.path.exists(pidf) and os.path.getsize(pidf) > 0, 10, "the PID file")
        time.sleep(0.2)
        p.send_signal(signal.SIGHUP)

        def lines():
            with open(logf) as f:
                return [json.loads(l) for l in f if l.startswith("{")]

        wait_for(lambda: any("sighup_to_ready" in l for l in lines()) and
                 any(l.get("inherited") is True for l in lines()), 30, "the upgrade")
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    child = int(open(pidf).read())
    os.kill(child, signal.SIGTERM)
    wait_for(lambda: not alive(child), 30, "the new process to exit")
    out = {}
    for l in lines():
        if "sighup_to_ready" in l:
            out["sighup_to_ready_ms"] = l["sighup_to_ready"] * 1e3
        if l.get("inherited") is True:
            for f in CHILD:
                out[f if f == "page_faults" else f + "_ms"] = l[f] * (1 if f == "page_faults" else 1e3)
    return out


def upgrade(n, bins):
    res = {b: {} for b in bins}
    d = tempfile.mkdtemp(prefix="startup-ab.")
    try:
        for b in rounds(n, bins):
            for f, v in one_upgrade(b, os.path.join(d, "run")).items():
                res[b].setdefault(f, []).append(v)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for b in bins:
        summary(b, res[b])


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("version", "upgrade"):
        sys.exit(__doc__)
    bins = [os.path.abspath(b) for b in sys.argv[3:]]
    {"version": version, "upgrade": upgrade}[sys.argv[1]](int(sys.argv[2]), bins)
    with open("/proc/loadavg") as f:
        print("load average", " ".join(f.read().split()[:3]))


if __name__ == "__main__":
    main()
