"""Tests of hawk_client: the wire format against the golden vectors (no server), and
the client against a real server whose address is $HAWK_ADDR and spool directory
$HAWK_SPOOL_DIR (test/e2e/python_client_test.go starts one and runs these).

Run from a copy (against the installed package), HAWK_REPO_ROOT names the repository
(golden vectors, PROTOCOL.md). Without HAWK_ADDR the server tests are skipped, unless HAWK_REQUIRE_SERVER=1 (set by
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
# The repository (golden vectors, PROTOCOL.md): set when these tests run from a copy,
# against the installed package.
REPO = os.environ.get("HAWK_REPO_ROOT") or os.path.join(HERE, "..", "..")
GOLDEN = os.path.join(REPO, "internal", "protocol", "testdata", "golden")
ADDR = os.environ.get("HAWK_ADDR", "")
SPOOL = os.environ.get("HAWK_SPOOL_DIR", "")
REQUIRE = os.environ.get("HAWK_REQUIRE_SERVER", "") == "1"
UDP_REPORT_ADDR = os.environ.get("HAWK_UDP_REPORT_ADDR", "")   # a report listener of that server
NAMES = {v: k for k, v in hk.TYPE_NAMES.items()}


def read_hex(path):
    """The bytes of a golden .hex file and its '# key: value' comment lines."""
    data, meta = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*(frame|payload|ranges|expect|limit):\s?(.*)$", line.rstrip("\n"))
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
                elif "ranges" in meta:
                    want = [tuple(int(x) for x in r.split("..")) for r in meta["ranges"].split(", ")]
                    self.assertEqual(hk.decode_ack_ranges(frame.payload), want)
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


class DatagramTest(unittest.TestCase):
    def test_golden_datagrams(self):
        files = sorted(glob.glob(os.path.join(GOLDEN, "datagram", "*.hex")))
        self.assertTrue(files, "no golden datagrams")
        want = {"report_seq42.hex": ("agent-42", "s3cret", 42, b'{"cpu":0.42}'),
                "report_no_token_seq1.hex": ("a", "", 1, b"x")}
        for path in files:
            with self.subTest(file=os.path.basename(path)):
                data, _ = read_hex(path)
                cid, tok, frame = hk.decode_datagram(data)
                w = want[os.path.basename(path)]
                self.assertEqual((cid.decode(), tok.decode(), frame.seq, frame.payload), w)
                self.assertEqual(hk.encode_datagram(*w), data)

    def test_refusals(self):
        good = hk.encode_datagram("agent-1", "t", 5, b"x")
        bad_crc = bytearray(good)
        bad_crc[-1] ^= 1
        for data, code in [(b"", "malformed"), (b"HK\x01\x01\x00a", "malformed"), (good[:-1], "malformed"),
                           (good + b"\x00", "malformed"), (bytes(bad_crc), "bad_crc")]:
            with self.assertRaises(hk.ProtocolError) as cm:
                hk.decode_datagram(data)
            self.assertEqual(cm.exception.code, code, data)

    def test_retransmits_until_acked_and_gives_up(self):
        srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("127.0.0.1", 0))
        self.addCleanup(srv.close)
        got = {}

        def serve():
            while True:
                try:
                    data, src = srv.recvfrom(2048)
                except OSError:
                    return
                _, _, f = hk.decode_datagram(data)
                got[f.seq] = got.get(f.seq, 0) + 1
                if f.payload == b"ack" and got[f.seq] > 2:     # the first two copies are "lost"
                    srv.sendto(hk.encode_frame(hk.ACK, f.seq), src)
        threading.Thread(target=serve, daemon=True).start()
        c = hk.UDPClient("127.0.0.1:%d" % srv.getsockname()[1], "agent-1", "t", first_seq=10,
                         first_retry=0.01, max_retry=0.04, max_attempts=4)
        self.addCleanup(c.close)
        self.assertEqual(c.report("ack"), 10)
        self.assertEqual(got[10], 3)
        with self.assertRaises(hk.NoAck):
            c.report("never")
        self.assertEqual(got[11], 4)


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


class UDPServerTest(ServerTestCase):
    def test_reports_acked_and_stored_once(self):
        if not UDP_REPORT_ADDR:
            if REQUIRE:
                self.fail("HAWK_UDP_REPORT_ADDR must name the server's report listener")
            self.skipTest("HAWK_UDP_REPORT_ADDR not set")
        c = hk.UDPClient(UDP_REPORT_ADDR, self.client_id, first_seq=1)
        self.addCleanup(c.close)
        seqs = [c.report({"i": i}, timeout=30) for i in range(20)]
        self.assertEqual(seqs, list(range(1, 21)))
        self.assertEqual(c.report({"i": 0}, seq=1, timeout=30), 1)    # a retransmit: ACKed, not stored again
        recs = spool_records(self.client_id)
        self.assertEqual(sorted(r["seq"] for r in recs), seqs)
        self.assertTrue(all(r["format"] == "report" and r["listener"] == "pyreport" for r in recs), recs)


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

    def test_range_acks_cover_every_report(self):
        conn = self.raw()
        w = conn.hello(self.client_id, ack="range")
        self.assertEqual(w["ack"], "range")
        conn.send_raw(b"".join(hk.encode_frame(hk.REPORT, s, b'{"i":1}') for s in range(1, 201)))
        left = set(range(1, 201))
        while left:
            f = conn.recv(10)
            self.assertEqual(f.type, hk.ACK_RANGE, f)
            for first, last in hk.decode_ack_ranges(f.payload):
                covered = set(range(first, last + 1))
                self.assertLessEqual(covered, left)
                left -= covered
        self.assertEqual(sorted(r["seq"] for r in spool_records(self.client_id)), list(range(1, 201)))

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


def wait_until(cond, what, timeout=10.0):
    """Wait for cond() to hold, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.005)


def read_reports(conn, into, until=None):
    """Read frames, answering PINGs, appending REPORT seqs to into, until until()
    holds after a REPORT (or the connection ends)."""
    while True:
        f = conn.recv()
        if f.type == hk.PING:
            conn.send(hk.PONG, f.seq)
        elif f.type == hk.REPORT:
            into.append(f.seq)
            if until is not None and until():
                return


def ack_all(conn):
    """Answer every REPORT with an ACK and every PING with a PONG, until the end."""
    try:
        while True:
            f = conn.recv()
            if f.type == hk.REPORT:
                conn.send(hk.ACK, f.seq)
            elif f.type == hk.PING:
                conn.send(hk.PONG, f.seq)
    except hk.ConnectionClosed:
        pass


class FakeServer:
    """A scripted server on 127.0.0.1:0 for what a real one will not do on demand
    (NACKs, GOAWAY). handler(conn, index) runs per accepted connection."""

    def __init__(self, handler, welcome=None):
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.handler = handler
        self.welcome = welcome or {}
        self.conns = []
        self.accepted = []  # monotonic time of each accept
        self.refuse_hello = None  # i -> an ERROR payload to refuse connection i with, or None
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
            self.accepted.append(time.monotonic())
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn, i), daemon=True).start()
            i += 1

    def _run(self, conn, i):
        try:
            f = conn.recv(5)
            assert f.type == hk.HELLO, f
            if self.refuse_hello is not None and self.refuse_hello(i) is not None:
                conn.send_json(hk.ERROR, 0, self.refuse_hello(i))
                conn.close()
                return
            welcome = {"server_id": "fake", "server_version": "0", "conn_id": i + 1,
                       "heartbeat_interval_ms": 10000, "max_frame_size": 1 << 20}
            welcome.update(self.welcome)
            conn.send_json(hk.WELCOME, 0, welcome)
            self.handler(conn, i)
        except (hk.HawkError, OSError, AssertionError) as e:
            self.errors.append(e)

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.close()


class FakeServerTest(unittest.TestCase):
    def fake(self, handler, welcome=None):
        s = FakeServer(handler, welcome)
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
            # New reports go to the new connection once it has WELCOME.
            wait_until(lambda: c.events["goaways"] >= 1 and c.events["connects"] >= 2, "the new connection")
            later = [c.submit(b"b%d" % i) for i in range(3)]
            for r in first + later:
                r.wait(10)
            self.assertTrue(cut.wait(5))
            self.assertEqual(c.events["goaways"], 1)
        self.assertEqual(got[0], [r.seq for r in first])
        self.assertEqual(sorted(got[1]), sorted([r.seq for r in first[1:]] + [r.seq for r in later]))


    def patch(self, name, value):
        old = getattr(hk, name)
        setattr(hk, name, value)
        self.addCleanup(setattr, hk, name, old)

    def test_deadline_zero_means_now(self):
        # deadline_ms 0: the deadline has passed. The client dials at once and gives
        # the old connection up (after its grace) even though this server neither
        # answers nor closes it: its reports are resent on the new connection.
        self.patch("GOAWAY_GRACE", 0.05)
        got = {0: [], 1: []}

        def handler(conn, i):
            if i == 0:
                read_reports(conn, got[0], lambda: len(got[0]) == 2)
                conn.send_json(hk.GOAWAY, 0, {"reason": "upgrade", "deadline_ms": 0})
                try:
                    read_reports(conn, got[0])
                except hk.ConnectionClosed:
                    pass
                return
            ack_all(conn)

        s = self.fake(handler)
        with hk.Client(s.addr, "zero") as c:
            rs = [c.submit(b"r%d" % i) for i in range(2)]
            for r in rs:
                r.wait(10)
            self.assertGreaterEqual(c.events["connects"], 2)
        self.assertEqual(got[0], [r.seq for r in rs])

    def test_goaway_right_after_welcome_waits_reconnect_after_only(self):
        # GOAWAY before any ACK or PONG: the successor is dialled reconnect_after_ms
        # later, with no backoff (an hour here), and reports then go there.
        self.patch("MIN_BACKOFF", 3600.0)
        self.patch("MAX_BACKOFF", 3600.0)
        sent = []

        def handler(conn, i):
            if i == 0:
                sent.append(time.monotonic())
                conn.send_json(hk.GOAWAY, 0, {"reason": "upgrade", "deadline_ms": 10000,
                                              "reconnect_after_ms": 200})
            ack_all(conn)

        s = self.fake(handler)
        with hk.Client(s.addr, "early") as c:
            wait_until(lambda: c.events["connects"] >= 2, "the new connection")
            self.assertGreaterEqual(s.accepted[1] - sent[0], 0.2)
            c.report(b"x", timeout=10)

    def test_shutdown_sends_no_new_reports_on_old(self):
        got = {0: [], 1: []}

        def handler(conn, i):
            if i == 0:
                read_reports(conn, got[0], lambda: len(got[0]) == 2)
                conn.send_json(hk.GOAWAY, 0, {"reason": "shutdown", "deadline_ms": 10000})
                for seq in got[0]:
                    conn.send(hk.ACK, seq)  # after the GOAWAY: still read and processed
                try:
                    read_reports(conn, got[0])
                except hk.ConnectionClosed:
                    pass
                return
            while True:
                f = conn.recv()
                if f.type == hk.REPORT:
                    got[1].append(f.seq)
                    conn.send(hk.ACK, f.seq)

        s = self.fake(handler)
        with hk.Client(s.addr, "shut") as c:
            first = [c.submit(b"a%d" % i) for i in range(2)]
            for r in first:
                r.wait(10)
            later = [c.submit(b"b%d" % i) for i in range(3)]
            for r in later:
                r.wait(10)
            self.assertEqual(c.events["resent"], 0)
        self.assertEqual(got[0], [r.seq for r in first])
        self.assertEqual(got[1], [r.seq for r in later])

    def test_pings_while_streaming_and_acks_stall(self):
        # The client streams but the server answers nothing except PONGs: the client
        # has sent recently yet received nothing, so it PINGs, and the PONGs keep
        # the connection (3 silent intervals would have ended it).
        got = []
        stall = threading.Event()
        stall.set()

        def handler(conn, _):
            while True:
                f = conn.recv()
                if f.type == hk.PING:
                    conn.send(hk.PONG, f.seq)
                elif f.type == hk.REPORT:
                    got.append(f.seq)
                    if not stall.is_set():
                        for seq in got:
                            conn.send(hk.ACK, seq)
                        got.clear()

        s = self.fake(handler)
        with hk.Client(s.addr, "stream", heartbeat_interval=0.2, window=10000) as c:
            rs = []
            deadline = time.monotonic() + 10
            while c.events["pings"] < 4:
                self.assertLess(time.monotonic(), deadline, "no PINGs while streaming")
                rs.append(c.submit(b"s"))
                time.sleep(0.01)
            stall.clear()
            rs.append(c.submit(b"last"))
            for r in rs:
                r.wait(10)
            self.assertEqual(c.events["connects"], 1)
            self.assertEqual(c.events["connection_errors"], 0)

    def test_error_retry_follows_the_table(self):
        codes = sorted(hk.RETRYABLE_ERRORS | hk.FINAL_ERRORS | {"no_such_code"})
        for code in codes:
            with self.subTest(code=code):
                def handler(conn, i, code=code):
                    if i == 0:
                        while conn.recv().type != hk.REPORT:
                            pass
                        conn.send_json(hk.ERROR, 0, {"code": code, "message": "test"})
                        conn.close()
                        return
                    ack_all(conn)

                s = self.fake(handler)
                with hk.Client(s.addr, "codes") as c:
                    r = c.submit(b"x")
                    if code in hk.RETRYABLE_ERRORS:
                        r.wait(10)
                        self.assertEqual(len(s.accepted), 2)
                    else:
                        with self.assertRaises(hk.ServerError) as cm:
                            r.wait(10)
                        self.assertEqual(cm.exception.code, code)
                        with self.assertRaises(hk.ServerError):
                            c.submit(b"y")
                        self.assertEqual(len(s.accepted), 1)

    def test_retry_table_matches_protocol_md(self):
        with open(os.path.join(REPO, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("\n## 5. Codes"):]
        section = section[:section.index("\n## 6.")]
        table = {}
        for m in re.finditer(r"^\| `([a-z_]+)` \|[^|]*\|[^|]*\|([^|]*)\|\s*$", section, re.M):
            table[m.group(1)] = m.group(2).strip().startswith("yes")
        self.assertEqual({c for c, y in table.items() if y}, set(hk.RETRYABLE_ERRORS))
        self.assertEqual({c for c, y in table.items() if not y}, set(hk.FINAL_ERRORS))

    def test_busy_retry_after_delays_the_next_dial(self):
        closed = []

        def handler(conn, i):
            if i == 0:
                while conn.recv().type != hk.REPORT:
                    pass
                closed.append(time.monotonic())
                conn.send_json(hk.ERROR, 0, {"code": "busy", "message": "busy", "retry_after_ms": 300})
                conn.close()
                return
            ack_all(conn)

        s = self.fake(handler)
        with hk.Client(s.addr, "busy") as c:
            c.report(b"x", timeout=10)
        self.assertGreaterEqual(s.accepted[1] - closed[0], 0.3)

    def test_busy_at_hello_delays_the_next_dial(self):
        refused = []

        def refuse(i):
            if i == 1:
                if not refused:
                    refused.append(time.monotonic())
                return {"code": "busy", "message": "busy", "retry_after_ms": 300}
            return None

        def handler(conn, i):
            if i == 0:
                while conn.recv().type != hk.REPORT:
                    pass
                conn.send_json(hk.ERROR, 0, {"code": "replaced", "message": "test"})
                conn.close()
                return
            ack_all(conn)

        s = self.fake(handler)
        s.refuse_hello = refuse
        with hk.Client(s.addr, "busy") as c:
            c.report(b"x", timeout=10)
        self.assertGreaterEqual(s.accepted[2] - refused[0], 0.3)

    def test_max_in_flight_from_welcome(self):
        most = [0]

        def handler(conn, _):
            unacked = []
            while True:
                f = conn.recv()
                if f.type == hk.PING:
                    conn.send(hk.PONG, f.seq)
                elif f.type == hk.REPORT:
                    unacked.append(f.seq)
                    most[0] = max(most[0], len(unacked))
                    if len(unacked) < 2:
                        continue
                    # At the bound: a client ignoring it sends more meanwhile.
                    try:
                        while True:
                            g = conn.recv(0.05)
                            if g.type == hk.REPORT:
                                unacked.append(g.seq)
                                most[0] = max(most[0], len(unacked))
                            elif g.type == hk.PING:
                                conn.send(hk.PONG, g.seq)
                    except TimeoutError:
                        pass
                    for seq in unacked:
                        conn.send(hk.ACK, seq)
                    unacked.clear()

        s = self.fake(handler, welcome={"max_in_flight": 2})
        with hk.Client(s.addr, "bounded", window=16) as c:
            rs = [c.submit(b"r%d" % i) for i in range(20)]
            for r in rs:
                r.wait(10)
        self.assertEqual(most[0], 2)

if __name__ == "__main__":
    unittest.main()
