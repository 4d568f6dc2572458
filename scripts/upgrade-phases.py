#!/usr/bin/env python3
"""upgrade-phases.py: where an upgrade's ack latency tail is, phase by phase.

    scripts/upgrade-phases.py TIMELINE LOG [LOG...] [-q 0.99]

TIMELINE is what `hawkc load -timeline FILE` wrote (ACK latencies by the time of
their ACK, per bucket; with -warmup, only the buckets of its steady window count,
as in hawkc's summary: connection set-up and the warm-up are left out); LOG is the
servers' JSON log (-log.format=json: the old and new processes of every upgrade
write to it). Each bucket is given to the
phase of the upgrade that holds its middle:

  start    SIGHUP (upgrade requested) to the new process listening
  rebuild  listening to the new process's "dedup ready" (the old process's dedup
           windows received, or its spool rebuild when they were not)
  wait     dedup ready to the handoff's start (the old process's "handoff
           finished" less its duration)
  handoff  the handoff (connections stopped, sent in batches, adopted)
  after    the old process's exit to 0.5 s later
  steady   every other bucket

For each phase it prints its time, its ACKs, p50/p99/max (µs, over the merged
histograms) and its share of the run's tail: of the ACKs slower than the run's
quantile -q, the part acked in that phase. Then one line per upgrade, with the
pause of the connections it moved (asked to acknowledged: p50/p99/max) where the
old process's log line says it.
"""
import json, sys, datetime

SUB_BITS, SUB = 6, 64


def bucket_hi(i):
    """The largest value (µs) of histogram bucket i (cmd/client/hist.go)."""
    if i < 2 * SUB:
        return i
    j = i - 2 * SUB
    shift = j // SUB + 1
    m = j % SUB + SUB
    return ((m + 1) << shift) - 1


def quantile(h, q):
    total = sum(h.values())
    if total == 0:
        return 0
    rank = max(1, min(total, int(q * total)))
    seen = 0
    for i in sorted(h):
        seen += h[i]
        if seen >= rank:
            return bucket_hi(i)
    return 0


def ts_ms(s):
    return int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def read_timeline(path):
    """The buckets, (start_ms, {histogram bucket: count}), those of the steady
    window only where the file names one (a bucket in it by its middle), and the step."""
    rows = []
    window = None
    for line in open(path):
        f = line.split()
        if line.startswith("#"):
            if len(f) == 4 and f[1] == "window_unix_ms":
                window = (int(f[2]), int(f[3]))
            continue
        h = {}
        if f[5] != "-":
            for kv in f[5].split(","):
                k, v = kv.split(":")
                h[int(k)] = int(v)
        rows.append((int(f[0]), h))
    step = rows[1][0] - rows[0][0] if len(rows) > 1 else 100
    if window:
        rows = [(t, h) for t, h in rows if window[0] <= t + step // 2 < window[1]]
    return rows, step


def read_upgrades(paths):
    """One dict per upgrade: phase boundaries in Unix ms."""
    ev = []
    for p in paths:
        for line in open(p):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            ev.append((ts_ms(j["ts"]), j.get("pid"), j.get("msg", ""), j))
    ev.sort(key=lambda e: e[0])
    ups = []
    for t, pid, msg, j in ev:
        if msg.startswith("upgrade requested"):
            ups.append({"old": pid, "sighup": t})
        elif not ups:
            continue
        u = ups[-1]
        if msg == "started by an upgrade: inheriting listening sockets from the parent process" and "new" not in u:
            u["new"] = pid
        elif msg == "listening" and pid == u.get("new"):
            u["listening"] = t
        elif msg == "dedup ready" and pid == u.get("new"):
            u["ready"] = t
        elif msg.startswith("handoff finished") and pid == u["old"]:
            u["handoff_end"] = t
            u["handoff_start"] = t - int(float(j.get("duration", 0)) * 1000)
            u["batches"] = j.get("batches")
            # each connection's pause, asked to acknowledged (internal/handoff)
            u["pause"] = "/".join("%.1f" % (float(j[k]) * 1000) for k in ("pause_p50", "pause_p99", "pause_max") if k in j)
        elif msg == "exiting" and pid == u["old"]:
            u["exit"] = t
    for u in ups:
        u.setdefault("listening", u["sighup"])
        u.setdefault("ready", u["listening"])
        u.setdefault("handoff_start", u["ready"])
        u.setdefault("handoff_end", u["handoff_start"])
        u.setdefault("exit", u["handoff_end"])
    return ups


PHASES = ["start", "rebuild", "wait", "handoff", "after"]


def phase_of(ups, t):
    for k, u in enumerate(ups):
        bounds = [u["sighup"], u["listening"], u["ready"], u["handoff_start"], u["handoff_end"]]
        ends = bounds[1:] + [u["exit"] + 500]
        for name, a, b in zip(PHASES, bounds, ends):
            if a <= t < b:
                return name, k
    return "steady", None


def main():
    args = sys.argv[1:]
    q = 0.99
    if "-q" in args:
        i = args.index("-q")
        q = float(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    rows, step = read_timeline(args[0])
    ups = read_upgrades(args[1:])
    every = {}
    for _, h in rows:
        for k, v in h.items():
            every[k] = every.get(k, 0) + v
    cut = quantile(every, q)
    by_phase = {p: ({}, [0]) for p in ["steady"] + PHASES}
    by_up = [{} for _ in ups]
    tail_total = 0
    for start, h in rows:
        name, k = phase_of(ups, start + step // 2)
        ph, n = by_phase[name]
        n[0] += 1
        for b, v in h.items():
            ph[b] = ph.get(b, 0) + v
            if k is not None:
                by_up[k][b] = by_up[k].get(b, 0) + v
            if bucket_hi(b) > cut:
                tail_total += v
    print("run: %d ACKs, p%g %.1f ms; %d upgrades; buckets of %d ms" % (sum(every.values()), q * 100, cut / 1000, len(ups), step))
    print("%-8s %7s %9s %8s %8s %8s %6s" % ("phase", "time_s", "acks", "p50_ms", "p99_ms", "max_ms", "tail%"))
    for name in ["steady"] + PHASES:
        ph, n = by_phase[name]
        tail = sum(v for b, v in ph.items() if bucket_hi(b) > cut)
        print("%-8s %7.2f %9d %8.1f %8.1f %8.1f %6.1f" % (name, n[0] * step / 1000, sum(ph.values()), quantile(ph, 0.5) / 1000,
              quantile(ph, 0.99) / 1000, (max(ph) and bucket_hi(max(ph))) / 1000 if ph else 0, 100 * tail / max(1, tail_total)))
    for k, u in enumerate(ups):
        print("upgrade %d: start %d ms, rebuild %d ms, wait %d ms, handoff %d ms (%s batches%s); its ACKs p99 %.1f ms" % (
            k + 1, u["listening"] - u["sighup"], u["ready"] - u["listening"], u["handoff_start"] - u["ready"],
            u["handoff_end"] - u["handoff_start"], u.get("batches"),
            ", pause p50/p99/max %s ms" % u["pause"] if u.get("pause") else "", quantile(by_up[k], 0.99) / 1000))


if __name__ == "__main__":
    main()
