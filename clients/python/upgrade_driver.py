"""Streams reports through a server upgrade, for test/e2e/python_client_test.go.

Usage: HAWK_ADDR=host:port python3 upgrade_driver.py

Protocol with the driving test, one line each way:

1. this program connects, streams reports (pipelined) and, after 200 ACKs, prints
   "streaming" on stdout;
2. the test upgrades the server (SIGHUP) while the stream goes on, waits for the old
   process to exit, and writes "stop" on this program's stdin;
3. this program stops submitting, waits for every report to be ACKed, and prints one
   JSON line: {"client_id", "acked": [seqs], "failed", "events", "server_versions", "conn_ids"}.

It exits 0 when every report it submitted was ACKed, 1 otherwise.
"""

import json
import os
import sys
import threading
import uuid

import hawk_client


def main():
    addr = os.environ["HAWK_ADDR"]
    client_id = "py-upgrade-" + uuid.uuid4().hex[:8]
    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()  # "stop" or end of stdin

    threading.Thread(target=read_stdin, daemon=True).start()
    receipts = []
    announced = False
    with hawk_client.Client(addr, client_id, window=16) as c:
        i = 0
        while not stop.is_set():
            receipts.append(c.submit({"i": i, "agent": "python"}, timeout=30))
            i += 1
            if not announced and c.events["acked"] >= 200:
                print("streaming", flush=True)
                announced = True
        acked, failed = [], []
        for r in receipts:
            try:
                acked.append(r.wait(30))
            except Exception as e:  # noqa: BLE001 - reported to the test
                failed.append({"seq": r.seq, "error": repr(e)})
        summary = {
            "client_id": client_id,
            "acked": acked,
            "failed": failed,
            "events": dict(c.events),
            "server_versions": [w["server_version"] for w in c.welcomes],
            "conn_ids": [w["conn_id"] for w in c.welcomes],
            "errors": [repr(e) for e in c.errors],
        }
    print(json.dumps(summary), flush=True)
    return 0 if not failed and announced else 1


if __name__ == "__main__":
    sys.exit(main())
