"""Uploads one file through server upgrades, for test/e2e/python_upload_test.go.

Usage: HAWK_ADDR=host:port HAWK_UPLOAD_FILE=path HAWK_UPLOAD_ID=id python3 upload_driver.py

It prints "progress N" on stdout when the durable offset first passes 0 and then at
most every 256 KiB, and at the end one JSON line: {"client_id", "result" (what
Client.upload returned), "events", "local_ports"}. It exits 0 once the file is
published, 1 when the upload failed (the JSON line then has "error").
"""

import json
import os
import sys
import uuid

import hawk_client


def main():
    client_id = "py-upload-" + uuid.uuid4().hex[:8]
    last = [-1 << 20]

    def progress(durable, size):
        if durable > 0 and (durable - last[0] >= 256 << 10 or durable == size):
            last[0] = durable
            print("progress %d" % durable, flush=True)

    out = {"client_id": client_id}
    with hawk_client.Client(os.environ["HAWK_ADDR"], client_id) as c:
        try:
            out["result"] = c.upload(os.environ["HAWK_UPLOAD_ID"], os.environ["HAWK_UPLOAD_FILE"],
                                     progress=progress, chunk_size=32 << 10, timeout=120)
        except Exception as e:  # noqa: BLE001 - reported to the test
            out["error"] = repr(e)
        out["events"] = dict(c.events)
        out["local_ports"] = [a[1] for a in c.local_addrs]
        out["errors"] = [repr(e) for e in c.errors]
    print(json.dumps(out), flush=True)
    return 0 if "result" in out else 1


if __name__ == "__main__":
    sys.exit(main())
