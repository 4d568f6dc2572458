"""Tests of Client.upload (PROTOCOL.md 4.3) against a real server with uploads on
($HAWK_ADDR, $HAWK_SPOOL_DIR, uploads in <spool>/uploads; test/e2e/python_client_test.go
TestPythonClient starts one and runs these), and of its resync against a fake server.
"""

import hashlib
import io
import json
import os
import tempfile
import unittest

import hawk_client as hk
from test_hawk_client import FakeServer, ServerTestCase, spool_records

SPOOL = os.environ.get("HAWK_SPOOL_DIR", "")


def published(client_id, upload_id):
    """The bytes and the record of a published upload on the server."""
    d = os.path.join(SPOOL, "uploads", "files", hashlib.sha256(client_id.encode()).hexdigest())
    with open(os.path.join(d, upload_id), "rb") as f:
        data = f.read()
    with open(os.path.join(d, upload_id + ".json"), encoding="utf-8") as f:
        return data, json.load(f)


class UploadServerTest(ServerTestCase):
    def test_path_published_with_progress_between_reports(self):
        data = os.urandom(700_000)
        with tempfile.NamedTemporaryFile(suffix=".dump") as tmp:
            tmp.write(data)
            tmp.flush()
            c = self.client()
            before = [c.submit({"i": i}) for i in range(50)]
            seen = []
            res = c.upload("crash-1", tmp.name, progress=lambda d, n: seen.append((d, n)), chunk_size=64 << 10)
            after = [c.submit({"i": i}) for i in range(50)]
            c.flush(timeout=30)
        self.assertEqual(res["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(seen[0], (0, len(data)))
        self.assertEqual(seen[-1], (len(data), len(data)))
        self.assertEqual([d for d, _ in seen], sorted(d for d, _ in seen))
        stored, rec = published(self.client_id, "crash-1")
        self.assertEqual(stored, data)
        self.assertEqual((rec["name"], rec["size"], rec["sha256"]), (os.path.basename(tmp.name), len(data), res["sha256"]))
        self.assertEqual(len([r.wait(0) for r in before + after]), 100)
        self.assertEqual(c.events["connects"], 1, c.errors)

    def test_resumes_by_id_from_the_durable_offset(self):
        data = os.urandom(300_000)
        sha = hashlib.sha256(data).hexdigest()
        # An earlier agent process sent the first 100,000 bytes and died.
        raw = self.raw()
        raw.hello(self.client_id)
        raw.send_json(hk.UPLOAD_OPEN, 0, {"upload_id": "cap-7", "name": "capture.pcap", "size": len(data), "sha256": sha})
        self.assertEqual(json.loads(raw.recv(5).payload)["offset"], 0)
        raw.send(hk.UPLOAD_CHUNK, 0, b"\x05cap-7" + data[:100_000])
        self.assertEqual(json.loads(raw.recv(5).payload)["offset"], 100_000)
        raw.close()

        seen = []
        c = self.client()
        res = c.upload("cap-7", io.BytesIO(data), name="capture.pcap", progress=lambda d, n: seen.append(d))
        self.assertEqual(seen[0], 100_000, "the upload must resume where the server holds it")
        self.assertEqual(seen[-1], len(data))
        self.assertEqual(res["sha256"], sha)
        self.assertEqual(published(self.client_id, "cap-7")[0], data)
        # Uploading it again answers done at once; the file is announced once.
        seen.clear()
        c.upload("cap-7", io.BytesIO(data), name="capture.pcap", progress=lambda d, n: seen.append(d))
        self.assertEqual(seen, [len(data)])
        # Its record in the report stream: client_id "upload:<id>", format "upload".
        announced = [r["payload"]["file"] for r in spool_records("upload:" + self.client_id)]
        self.assertEqual([(a["upload_id"], a["size"], a["sha256"]) for a in announced], [("cap-7", len(data), sha)])

    def test_empty_file(self):
        c = self.client()
        c.upload("empty", io.BytesIO(b""), name="empty.log")
        self.assertEqual(published(self.client_id, "empty")[0], b"")

    def test_a_name_that_is_a_path_is_refused_for_good(self):
        c = self.client()
        with self.assertRaises(hk.UploadError) as cm:
            c.upload("evil", io.BytesIO(b"x"), name="../../etc/passwd", timeout=10)
        self.assertEqual(cm.exception.code, "upload_bad_name")
        self.assertEqual(c.report({"still": "serving"}, timeout=10) > 0, True)

    def test_known_sha256_read_once_and_checked(self):
        data = os.urandom(300_000)
        sha = hashlib.sha256(data).hexdigest()

        class Counting(io.BytesIO):
            n = 0

            def read(self, size=-1):
                b = super().read(size)
                Counting.n += len(b)
                return b

        c = self.client()
        res = c.upload("known-1", Counting(data), name="k", sha256=sha.upper())
        self.assertEqual(res["sha256"], sha)
        self.assertEqual(Counting.n, len(data), "the file was read more than once: the client hashed it")
        self.assertEqual(published(self.client_id, "known-1")[0], data)
        with self.assertRaises(hk.UploadError) as cm:
            c.upload("known-2", io.BytesIO(data), name="k", sha256="0" * 64, timeout=30)
        self.assertEqual(cm.exception.code, "upload_mismatch")
        with self.assertRaises(ValueError):
            c.upload("known-3", io.BytesIO(data), name="k", sha256="xyz")

    def test_bad_upload_id_refused_locally(self):
        c = self.client()
        for bad in ("", ".hidden", "a/b", "x" * 65):
            with self.assertRaises(ValueError):
                c.upload(bad, io.BytesIO(b"x"))


class UploadFakeServerTest(unittest.TestCase):
    def test_upload_offset_refusal_resends_from_the_durable_offset(self):
        data = bytes(range(256)) * 40  # 10240 bytes, chunks of 1024
        got = bytearray()
        refused = []

        def handler(conn, _):
            durable = 0
            while True:
                f = conn.recv(10)
                if f.type == hk.UPLOAD_OPEN:
                    conn.send_json(hk.UPLOAD_STATE, 0, {"upload_id": "u", "offset": 0})
                elif f.type == hk.UPLOAD_CHUNK:
                    body = f.payload[2:]
                    if f.seq == 4096 and not refused:
                        # Lose this chunk once as a disk-full-then-recovered server
                        # would: refuse it; the chunks after it are refused too.
                        refused.append(f.seq)
                        conn.send_json(hk.UPLOAD_STATE, f.seq, {"upload_id": "u", "offset": durable,
                                                                "code": "upload_offset", "message": "x"})
                        continue
                    if f.seq != durable:
                        conn.send_json(hk.UPLOAD_STATE, f.seq, {"upload_id": "u", "offset": durable,
                                                                "code": "upload_offset", "message": "x"})
                        continue
                    got.extend(body)
                    durable += len(body)
                    conn.send_json(hk.UPLOAD_STATE, f.seq, {"upload_id": "u", "offset": durable})
                elif f.type == hk.UPLOAD_COMMIT:
                    conn.send_json(hk.UPLOAD_STATE, 0, {"upload_id": "u", "offset": durable, "done": True})

        s = FakeServer(handler, {"max_upload_in_flight": 4096})
        self.addCleanup(s.close)
        c = hk.Client(s.addr, "agent").connect()
        self.addCleanup(c.close)
        c.upload("u", io.BytesIO(data), name="f", chunk_size=1024, timeout=10)
        self.assertEqual(bytes(got), data)
        self.assertEqual(refused, [4096])

    def test_server_without_uploads(self):
        s = FakeServer(lambda conn, _: conn.recv(10))
        self.addCleanup(s.close)
        c = hk.Client(s.addr, "agent").connect()
        self.addCleanup(c.close)
        with self.assertRaises(hk.UploadsDisabled):
            c.upload("u", io.BytesIO(b"x"))


if __name__ == "__main__":
    unittest.main()
