#!/usr/bin/env python3
"""gctrace-procs.py LOG: the collections of each process of an upgrade series.

    scripts/gctrace-procs.py LOG

LOG is the servers' JSON log (-log.format=json) with GODEBUG=gctrace=1 set: every
process of the series (the old and new of each upgrade) writes its gctrace lines
to it, none naming its pid. A gc line's wall time is taken as the last JSON
line's before it; less its @ (seconds since its process started) that is the
process's start, given to the pid whose first log line is nearest. Prints one
line per process, in the order they started: its collections, when (@, seconds
since its start), their heap goals, the longest stop-the-world phase and their
sum (wall), and the CPU the collections took (gctrace's "ms cpu", all parts).
"""
import re, sys, json, datetime
pat = re.compile(r'^gc (\d+) @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock, ([\d.]+)\+([\d.]+)/([\d.]+)/([\d.]+)\+([\d.]+) ms cpu, (\d+)->(\d+)->(\d+) MB, (\d+) MB goal')
first = {}; gcs = []; last_ts = None
for line in open(sys.argv[1], errors='replace'):
    if line.startswith('{'):
        try: j = json.loads(line)
        except ValueError: continue
        ts = datetime.datetime.fromisoformat(j['ts'].replace('Z', '+00:00')).timestamp()
        last_ts = ts
        first.setdefault(j.get('pid'), ts)
        continue
    m = pat.match(line)
    if m and last_ts is not None:
        gcs.append((last_ts - float(m.group(2)), line.strip(), m))
order = sorted(first, key=first.get)
per = {p: [] for p in order}
for start, line, m in gcs:
    cands = [p for p in order if first[p] >= start - 0.5]
    p = min(cands or order, key=lambda p: abs(first[p] - start))
    per[p].append(m)
for i, p in enumerate(order):
    s = per[p]
    stw = [max(float(m.group(3)), float(m.group(5))) for m in s]
    cpu = sum(float(m.group(k)) for m in s for k in range(6, 11))
    print(f"gen {i+1} pid {p}: {len(s)} collections" + (f", at @{' '.join(m.group(2) for m in s)} s, goals {' '.join(m.group(14) for m in s)} MB, "
          f"stop-the-world max {max(stw):.2f} ms sum {sum(float(m.group(3)) + float(m.group(5)) for m in s):.1f} ms, GC CPU {cpu:.1f} ms" if s else ""))
