"""Streams reports through a server upgrade, for test/e2e/python_client_test.go.

Usage: HAWK_ADDR=host:port python3 upgrade_driver.py

Over TLS with HAWK_TLS_CA (the server's CA), and mutual TLS with HAWK_TLS_CERT and
HAWK_TLS_KEY; HAWK_CLIENT_ID then names the id the certificate carries. HAWK_RATE
caps the reports per second (default: as fast as ACKs come).

Protocol with the driving test, one line each way:

1. this program connects, streams reports (pipelined) and, after 200 ACKs, prints
   "streaming" on stdout;
2. the test upgrades the server (SIGHUP) while the stream goes on, waits for the old
   process to exit, and writes "stop" on this program's stdin;
3. this program stops submitting, waits for every report to be ACKed, and prints one
   JSON line: {"client_id", "acked": [seqs], "failed", "events", "server_versions",
   "conn_ids", "local_ports", "tls_version"}.

It exits 0 when every report it submitted was ACKed, 1 otherwise.
"""

import json
import os
import sys
import threading
import time
import uuid

import hawk_client


def main():
    addr = os.environ["HAWK_ADDR"]
    client_id = os.environ.get("HAWK_CLIENT_ID") or "py-upgrade-" + uuid.uuid4().hex[:8]
    tls = None
    if os.environ.get("HAWK_TLS_CA"):
        tls = hawk_client.tls_context(cafile=os.environ["HAWK_TLS_CA"], certfile=os.environ.get("HAWK_TLS_CERT"),
                                      keyfile=os.environ.get("HAWK_TLS_KEY"))
    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()  # "stop" or end of stdin

    threading.Thread(target=read_stdin, daemon=True).start()
    receipts = []
    announced = False
    with hawk_client.Client(addr, client_id, window=16, tls=tls) as c:
        tls_version = c._current.conn.sock.ssl_object.version() if tls else ""
        rate = float(os.environ.get("HAWK_RATE") or 0)
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            receipts.append(c.submit({"i": i, "agent": "python"}, timeout=30))
            i += 1
            if rate and i % 50 == 0:
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    stop.wait(ahead)
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
            "local_ports": [a[1] for a in c.local_addrs],
            "tls_version": tls_version,
            "errors": [repr(e) for e in c.errors],
        }
    print(json.dumps(summary), flush=True)
    return 0 if not failed and announced else 1


if __name__ == "__main__":
    sys.exit(main())
