"""Tests of hawk_client: the wire format against the golden vectors (no server), and
the client against a real server whose address is $HAWK_ADDR and spool directory
$HAWK_SPOOL_DIR (test/e2e/python_client_test.go starts one and runs these).

Without HAWK_ADDR the server tests are skipped, unless HAWK_REQUIRE_SERVER=1 (set by
the Go test), which makes them fail instead.

    cd clients/python && python3 -m unittest -v
"""

import glob
import json
import os
import random
import re
import socket
import threading
import time
import unittest
import uuid

import hawk_client as hk

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "internal", "protocol", "testdata", "golden")
ADDR = os.environ.get("HAWK_ADDR", "")
SPOOL = os.environ.get("HAWK_SPOOL_DIR", "")
REQUIRE = os.environ.get("HAWK_REQUIRE_SERVER", "") == "1"
NAMES = {v: k for k, v in hk.TYPE_NAMES.items()}


def read_hex(path):
    """The bytes of a golden .hex file and its '# key: value' comment lines."""
    data, meta = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*(frame|payload|expect|limit):\s?(.*)$", line.rstrip("\n"))
            if m and m.group(1) not in meta:
                meta[m.group(1)] = m.group(2)
            data.append(line.split("#", 1)[0])
    return bytes.fromhex("".join(data)), meta


def golden_files():
    files = sorted(glob.glob(os.path.join(GOLDEN, "*.hex")))
    if not files:
        raise AssertionError("no golden vectors in %s" % GOLDEN)
    return files


class CRCTest(unittest.TestCase):
    def test_check_value(self):
        self.assertEqual(hk.crc32c(b"123456789"), 0xE3069283)

    def test_incremental(self):
        self.assertEqual(hk.crc32c(b"6789", hk.crc32c(b"12345")), 0xE3069283)

    def test_bitwise_reference(self):
        # The bit-by-bit algorithm of PROTOCOL.md 2.1 agrees with the table.
        def bitwise(data):
            crc = 0xFFFFFFFF
            for b in data:
                crc ^= b
                for _ in range(8):
                    crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            return crc ^ 0xFFFFFFFF
        rnd = random.Random(1)
        for n in (0, 1, 7, 64, 1000):
            data = bytes(rnd.randrange(256) for _ in range(n))
            self.assertEqual(hk.crc32c(data), bitwise(data))


class GoldenTest(unittest.TestCase):
    def test_decode_and_reencode_every_golden_frame(self):
        for path in golden_files():
            with self.subTest(file=os.path.basename(path)):
                data, meta = read_hex(path)
                m = re.match(r"(\w+) seq=(\d+) length=(\d+)$", meta["frame"])
                self.assertIsNotNone(m, meta)
                frame, n = hk.decode_frame(data)
                self.assertEqual(n, len(data), "must consume every byte")
                self.assertEqual(frame.type, NAMES[m.group(1)])
                self.assertEqual(frame.seq, int(m.group(2)))
                self.assertEqual(len(frame.payload), int(m.group(3)))
                if "payload" in meta:
                    self.assertEqual(frame.payload, meta["payload"].encode("utf-8"))
                else:
                    self.assertEqual(frame.payload, b"")
                self.assertEqual(hk.encode_frame(frame.type, frame.seq, frame.payload), data)

    def test_worked_example(self):
        want = bytes.fromhex("484b01050000000c000000000000002a7b22637075223a302e34327ddb44b2d2")
        self.assertEqual(hk.encode_frame(hk.REPORT, 42, b'{"cpu":0.42}'), want)
        self.assertEqual(hk.encode_frame(hk.ACK, 42), bytes.fromhex("484b0106" "00000000" "000000000000002a" "cbdf550f"))

    def test_json_encoders_match_golden_bytes(self):
        data, _ = read_hex(os.path.join(GOLDEN, "hello.hex"))
        self.assertEqual(hk.encode_json(hk.HELLO, 0, {"client_id": "agent-42", "token": "s3cret",
                                                       "client_version": "1.0.0"}), data)

    def test_invalid_inputs(self):
        files = sorted(glob.glob(os.path.join(GOLDEN, "invalid", "*.hex")))
        self.assertTrue(files)
        early = {"bad_magic": 2, "unsupported_version": 3, "unknown_type": 16, "frame_too_large": 16}
        for path in files:
            with self.subTest(file=os.path.basename(path)):
                data, meta = read_hex(path)
                code, limit = meta["expect"].strip(), int(meta["limit"])
                with self.assertRaises(hk.ProtocolError) as cm:
                    hk.decode_frame(data, limit)
                self.assertEqual(cm.exception.code, code)
                if code in early:  # rejected as soon as the bytes for the check are in
                    with self.assertRaises(hk.ProtocolError) as cm:
                        hk.decode_frame(data[:early[code]], limit)
                    self.assertEqual(cm.exception.code, code)
                    self.assertEqual(hk.decode_frame(data[:early[code] - 1], limit), (None, 0))
                # The streaming decoder fails the same way, and keeps failing.
                d = hk.Decoder(limit)
                with self.assertRaises(hk.ProtocolError):
                    d.frames(data)
                with self.assertRaises(hk.ProtocolError):
                    d.next()

    def test_stream_in_any_chunks(self):
        frames, stream = [], b""
        for path in golden_files():
            data, _ = read_hex(path)
            frames.append(hk.decode_frame(data)[0])
            stream += data
        stream = stream * 3
        frames = frames * 3
        d = hk.Decoder()
        got = []
        for i in range(len(stream)):
            got += d.frames(stream[i:i + 1])
        self.assertEqual(got, frames)
        self.assertEqual(d.pending(), 0)
        rnd = random.Random(42)
        for _ in range(20):
            d, got, i = hk.Decoder(), [], 0
            while i < len(stream):
                n = rnd.randint(1, 200)
                got += d.frames(stream[i:i + n])
                i += n
            self.assertEqual(got, frames)


def spool_records(client_id):
    """Every spool record of client_id: a list of dicts (complete lines only)."""
    out = []
    for path in sorted(glob.glob(os.path.join(SPOOL, "*.jsonl"))):
        with open(path, "rb") as f:
            data = f.read()
        for line in data.split(b"\n")[:-1]:  # a last line without '\n' is unfinished
            if line:
                rec = json.loads(line)
                if rec["client_id"] == client_id:
                    out.append(rec)
    return out


class ServerTestCase(unittest.TestCase):
    def setUp(self):
        if not ADDR or not SPOOL:
            if REQUIRE:
                self.fail("HAWK_ADDR and HAWK_SPOOL_DIR must name a running server and its spool")
            self.skipTest("HAWK_ADDR / HAWK_SPOOL_DIR not set: no server to test against")
        self.client_id = "py-" + self._testMethodName + "-" + uuid.uuid4().hex[:8]

    def raw(self):
        c = hk.Connection.dial(ADDR, timeout=5)
        self.addCleanup(c.close)
        return c

    def client(self, **kw):
        c = hk.Client(ADDR, self.client_id, **kw).connect()
        self.addCleanup(c.close)
        return c

    def expect_error_then_close(self, conn, code):
        """Read until the ERROR: it carries code and is the last frame."""
        while True:
            f = conn.recv(5)
            if f.type == hk.ERROR:
                break
        err = hk.server_error(f)
        self.assertEqual(err.code, code, err)
        with self.assertRaises(hk.ConnectionClosed):
            conn.recv(5)
        return err


class ServerTest(ServerTestCase):
    def test_handshake_and_one_report(self):
        c = self.client()
        w = c.welcome
        self.assertGreater(w["max_frame_size"], 0)
        self.assertGreater(w["heartbeat_interval_ms"], 0)
        seq = c.report({"cpu": 0.42}, timeout=10)
        recs = spool_records(self.client_id)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["seq"], seq)
        self.assertEqual(recs[0]["conn_id"], w["conn_id"])
        self.assertEqual(recs[0]["payload"], {"cpu": 0.42})

    def test_binary_payload_is_base64(self):
        c = self.client()
        seq = c.report(b"\x00\x01\x02\xff", timeout=10)
        recs = spool_records(self.client_id)
        self.assertEqual([(r["seq"], r.get("payload_b64")) for r in recs], [(seq, "AAEC/w==")])

    def test_1000_pipelined_reports(self):
        c = self.client(window=64)
        receipts = [c.submit({"i": i}) for i in range(1000)]
        c.flush(timeout=60)
        seqs = [r.wait(0) for r in receipts]
        self.assertEqual(len(set(seqs)), 1000)
        self.assertEqual(c.events["acked"], 1000)
        self.assertEqual(c.events["connects"], 1, c.errors)
        counts = {}
        for rec in spool_records(self.client_id):
            counts[rec["seq"]] = counts.get(rec["seq"], 0) + 1
        self.assertEqual(set(counts), set(seqs))
        self.assertEqual([s for s, n in counts.items() if n != 1], [])

    def test_bad_crc_gets_error_then_close(self):
        conn = self.raw()
        conn.hello(self.client_id)
        frame = bytearray(hk.encode_frame(hk.REPORT, 42, b'{"cpu":0.42}'))
        frame[-1] ^= 0x01
        conn.send_raw(bytes(frame))
        err = self.expect_error_then_close(conn, "bad_crc")
        self.assertIn("crc32c mismatch", err.message)
        self.assertEqual(spool_records(self.client_id), [])

    def test_bad_magic_gets_error_then_close(self):
        conn = self.raw()
        conn.send_raw(b"GET / HTTP/1.1\r\n\r\n")
        err = self.expect_error_then_close(conn, "bad_magic")
        self.assertIn("bad magic", err.message)

    def test_report_before_hello_is_protocol_violation(self):
        conn = self.raw()
        conn.send(hk.REPORT, 1, b"{}")
        self.expect_error_then_close(conn, "protocol_violation")

    def test_ping_pong(self):
        conn = self.raw()
        conn.hello(self.client_id)
        conn.send(hk.PING, 7)
        f = conn.recv(5)
        self.assertEqual((f.type, f.seq, f.payload), (hk.PONG, 7, b""))

    def test_client_heartbeats_keep_an_idle_connection(self):
        # The harness's heartbeat interval is 1 s (timeout 3 s): the client must PING.
        c = self.client()
        conn_id = c.conn_id
        interval = c.welcome["heartbeat_interval_ms"] / 1000
        deadline = time.monotonic() + 4 * interval + 5
        while c.events["pongs"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(c.events["pongs"], 4, c.events)
        c.report({"after": "idle"}, timeout=10)
        self.assertEqual(c.conn_id, conn_id, c.errors)
        self.assertEqual(c.events["connects"], 1, c.errors)

    def test_error_in_answer_to_hello_raises(self):
        with self.assertRaises(hk.ServerError) as cm:
            hk.Client(ADDR, "").connect()
        self.assertEqual(cm.exception.code, "bad_payload")
        self.assertFalse(cm.exception.retryable)

    def test_too_large_refused_locally(self):
        c = self.client()
        with self.assertRaises(hk.TooLarge):
            c.submit(b"x" * (c.max_frame_size + 1))

    def test_replaced_connection_resends(self):
        # A second connection with the same client_id replaces the client's; the client
        # reconnects (which replaces the intruder) and its reports still all get ACKed.
        c = self.client()
        c.report({"n": 0}, timeout=10)
        intruder = self.raw()
        intruder.hello(self.client_id)
        deadline = time.monotonic() + 10
        while c.events["reconnects"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(any(getattr(e, "code", "") == "replaced" for e in c.errors), c.errors)
        seqs = [c.submit({"n": i}) for i in range(1, 50)]
        c.flush(timeout=30)
        for r in seqs:
            r.wait(0)
        got = {r["seq"] for r in spool_records(self.client_id)}
        self.assertTrue({r.seq for r in seqs} <= got)


class FakeServer:
    """A scripted server on 127.0.0.1:0 for what a real one will not do on demand
    (NACKs, GOAWAY). handler(conn, index) runs per accepted connection."""

    def __init__(self, handler):
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.handler = handler
        self.conns = []
        self.errors = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        i = 0
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            conn = hk.Connection(s, limit=1 << 20)
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn, i), daemon=True).start()
            i += 1

    def _run(self, conn, i):
        try:
            f = conn.recv(5)
            assert f.type == hk.HELLO, f
            conn.send_json(hk.WELCOME, 0, {"server_id": "fake", "server_version": "0", "conn_id": i + 1,
                                           "heartbeat_interval_ms": 10000, "max_frame_size": 1 << 20})
            self.handler(conn, i)
        except (hk.HawkError, OSError, AssertionError) as e:
            self.errors.append(e)

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.close()


class FakeServerTest(unittest.TestCase):
    def fake(self, handler):
        s = FakeServer(handler)
        self.addCleanup(s.close)
        return s

    def test_retryable_nack_is_resent(self):
        seen = []

        def handler(conn, _):
            while True:
                f = conn.recv()
                if f.type != hk.REPORT:
                    continue
                seen.append((f.seq, f.payload))
                if seen.count((f.seq, f.payload)) == 1:
                    conn.send_json(hk.NACK, f.seq, {"code": "spool_write_failed", "message": "disk full",
                                                    "retryable": True})
                else:
                    conn.send(hk.ACK, f.seq)

        s = self.fake(handler)
        with hk.Client(s.addr, "nack") as c:
            seq = c.report(b"r1", timeout=10)
        self.assertEqual(seen, [(seq, b"r1"), (seq, b"r1")])

    def test_final_nack_raises(self):
        def handler(conn, _):
            while True:
                f = conn.recv()
                if f.type == hk.REPORT:
                    conn.send_json(hk.NACK, f.seq, {"code": "rejected", "message": "no", "retryable": False})

        s = self.fake(handler)
        with hk.Client(s.addr, "nack") as c:
            with self.assertRaises(hk.NackError) as cm:
                c.report(b"r1", timeout=10)
            self.assertEqual(cm.exception.code, "rejected")

    def test_goaway_moves_and_resends_unacked(self):
        # Connection 0 ACKs nothing, sends GOAWAY after 3 reports, and cuts at the
        # deadline; connection 1 ACKs everything. All reports end up ACKed, the
        # unacked ones resent on connection 1 with the same seq.
        got = {0: [], 1: []}
        cut = threading.Event()

        def handler(conn, i):
            if i == 0:
                while len(got[0]) < 3:
                    f = conn.recv()
                    if f.type == hk.REPORT:
                        got[0].append(f.seq)
                conn.send(hk.ACK, got[0][0])
                conn.send_json(hk.GOAWAY, 0, {"reason": "upgrade", "deadline_ms": 300})
                try:
                    while True:
                        conn.recv()
                except hk.ConnectionClosed:
                    cut.set()  # the client closed it at the deadline
                return
            while True:
                f = conn.recv()
                if f.type == hk.REPORT:
                    got[1].append(f.seq)
                    conn.send(hk.ACK, f.seq)

        s = self.fake(handler)
        with hk.Client(s.addr, "mover", heartbeat_interval=0.2) as c:
            first = [c.submit(b"a%d" % i) for i in range(3)]
            deadline = time.monotonic() + 5
            while c.events["goaways"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            later = [c.submit(b"b%d" % i) for i in range(3)]
            for r in first + later:
                r.wait(10)
            self.assertTrue(cut.wait(5))
            self.assertEqual(c.events["goaways"], 1)
        self.assertEqual(got[0], [r.seq for r in first])
        self.assertEqual(sorted(got[1]), sorted([r.seq for r in first[1:]] + [r.seq for r in later]))


if __name__ == "__main__":
    unittest.main()
