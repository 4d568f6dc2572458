"""A hawk agent in Python 3 (standard library only), written from docs/PROTOCOL.md.

Two layers:

* the wire format: :func:`crc32c`, :func:`encode_frame`, :func:`decode_frame` and the
  streaming :class:`Decoder` (PROTOCOL.md sections 2 and 3);
* :class:`Connection`, one synchronous framed TCP connection (for tests and tools),
  and :class:`Client`, the agent: handshake, pipelined reports acknowledged by seq
  (at most WELCOME max_in_flight unanswered per connection), heartbeats, NACK
  retries, the ERROR retry table, reconnects and GOAWAY handoff (sections 4 to 6).

Example::

    with Client("127.0.0.1:7070", "agent-42") as c:
        c.report({"cpu": 0.42})          # returns once the server has ACKed it
        receipts = [c.submit(b"...") for _ in range(1000)]   # pipelined
        c.flush()
"""

from __future__ import annotations

import collections
import json
import os
import queue
import random
import re
import socket
import struct
import threading
import time

import hawk_tls
from hawk_tls import tls_context

__all__ = [
    "HELLO", "WELCOME", "PING", "PONG", "REPORT", "ACK", "NACK", "GOAWAY", "ERROR",
    "TYPE_NAMES", "MAGIC", "VERSION", "MAX_PAYLOAD_LIMIT", "HEADER_SIZE", "TRAILER_SIZE",
    "crc32c", "Frame", "encode_frame", "encode_json", "decode_frame", "Decoder",
    "HawkError", "ProtocolError", "ServerError", "NackError", "ConnectionClosed",
    "ClientClosed", "TooLarge", "Connection", "Receipt", "Client",
    "encode_datagram", "decode_datagram", "NoAck", "UDPClient", "tls_context",
    "ACK_RANGE", "decode_ack_ranges", "UploadError", "UploadsDisabled",
]

# ---------------------------------------------------------------------------
# Wire format (PROTOCOL.md section 2)

MAGIC = b"HK"
VERSION = 1
HELLO, WELCOME, PING, PONG, REPORT, ACK, NACK, GOAWAY, ERROR = range(1, 10)
UPLOAD_OPEN, UPLOAD_CHUNK, UPLOAD_COMMIT, UPLOAD_STATE = range(10, 14)  # section 4.3
ACK_RANGE = 14  # section 4.5, only when HELLO asked "ack": "range"
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", PING: "PING", PONG: "PONG", REPORT: "REPORT",
              ACK: "ACK", NACK: "NACK", GOAWAY: "GOAWAY", ERROR: "ERROR",
              UPLOAD_OPEN: "UPLOAD_OPEN", UPLOAD_CHUNK: "UPLOAD_CHUNK", UPLOAD_COMMIT: "UPLOAD_COMMIT",
              UPLOAD_STATE: "UPLOAD_STATE", ACK_RANGE: "ACK_RANGE"}
HEADER_SIZE = 16
TRAILER_SIZE = 4
MAX_PAYLOAD_LIMIT = 64 << 20          # no peer ever accepts more (section 2, 3.2)
CLIENT_LIMIT = 1 << 20                # our limit for server frames (as the Go client's)
_HEADER = struct.Struct(">2sBBIQ")    # magic, version, type, length, seq
_CRC = struct.Struct(">I")


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of data; pass a previous result as crc to continue it."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


Frame = collections.namedtuple("Frame", "type seq payload")
Frame.__doc__ = "One decoded frame: type (1..9), seq (uint64) and payload (bytes)."


def _type_name(t):
    return TYPE_NAMES.get(t, "type %d" % t)


_ACK_RANGE = struct.Struct(">QQ")


def decode_ack_ranges(payload):
    """The (first, last) ranges of an ACK_RANGE payload (section 4.5), both seqs
    included; ProtocolError("bad_payload") if it is malformed."""
    n = len(payload)
    if n == 0 or n % 16 or n > 4096:
        raise ProtocolError("bad_payload", "ACK_RANGE payload of %d bytes is not 1..256 ranges of 16 bytes" % n)
    ranges = [_ACK_RANGE.unpack_from(payload, off) for off in range(0, n, 16)]
    for i, (first, last) in enumerate(ranges):
        if last < first or last - first >= 1 << 16:
            raise ProtocolError("bad_payload", "ACK_RANGE range %d is %d..%d" % (i, first, last))
    return ranges


def encode_frame(ftype, seq=0, payload=b""):
    """The bytes of one frame: header, payload and CRC-32C trailer."""
    payload = bytes(payload)
    if not 1 <= ftype <= ACK_RANGE:
        raise ValueError("frame type %d is not 1..%d" % (ftype, ACK_RANGE))
    if not 0 <= seq < 1 << 64:
        raise ValueError("seq %d is not a uint64" % seq)
    if len(payload) > MAX_PAYLOAD_LIMIT:
        raise ValueError("payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD_LIMIT))
    head = _HEADER.pack(MAGIC, VERSION, ftype, len(payload), seq)
    crc = crc32c(payload, crc32c(head[2:]))
    return head + payload + _CRC.pack(crc)


def _json_bytes(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_json(ftype, seq, obj):
    """A frame whose payload is obj as compact JSON (fields in dict order)."""
    return encode_frame(ftype, seq, _json_bytes(obj))


class HawkError(Exception):
    """Base class of the errors of this module."""


class ProtocolError(HawkError):
    """A malformed frame (or a valid frame at the wrong time); code is a section 5 code."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


def decode_frame(buf, limit=CLIENT_LIMIT):
    """Decode one frame from the start of buf.

    Returns (Frame, size) or (None, 0) when buf holds only part of a frame ("need more
    bytes"). Raises ProtocolError with the code of the first failed check (section
    3.2), each made as soon as the bytes it needs are there.
    """
    n = len(buf)
    if n >= 2 and bytes(buf[0:2]) != MAGIC:
        raise ProtocolError("bad_magic", "bad magic 0x%04x, want 0x484b (\"HK\")" % (buf[0] << 8 | buf[1]))
    if n >= 3 and buf[2] != VERSION:
        raise ProtocolError("unsupported_version",
                            "unsupported protocol version %d, this peer speaks %d" % (buf[2], VERSION))
    if n < HEADER_SIZE:
        return None, 0
    _, _, ftype, length, seq = _HEADER.unpack_from(buf, 0)
    if not 1 <= ftype <= ACK_RANGE:
        raise ProtocolError("unknown_type", "unknown frame type %d" % ftype)
    if length > min(limit, MAX_PAYLOAD_LIMIT):
        raise ProtocolError("frame_too_large", "%s payload length %d exceeds limit %d"
                            % (_type_name(ftype), length, min(limit, MAX_PAYLOAD_LIMIT)))
    size = HEADER_SIZE + length + TRAILER_SIZE
    if n < size:
        return None, 0
    mv = memoryview(buf)
    want, = _CRC.unpack_from(buf, HEADER_SIZE + length)
    got = crc32c(mv[2:HEADER_SIZE + length])
    if want != got:
        raise ProtocolError("bad_crc", "%s seq %d: crc32c mismatch: frame says 0x%08x, computed 0x%08x"
                            % (_type_name(ftype), seq, want, got))
    return Frame(ftype, seq, bytes(mv[HEADER_SIZE:HEADER_SIZE + length])), size


class Decoder:
    """Streaming decoder (section 3.1): feed() what the socket returned, next() frames."""

    def __init__(self, limit=CLIENT_LIMIT):
        self.limit = limit
        self._buf = bytearray()
        self._off = 0
        self._err = None

    def feed(self, data):
        if self._off and self._off * 2 >= len(self._buf):
            del self._buf[:self._off]
            self._off = 0
        self._buf += data

    def next(self):
        """The next whole frame, or None when only part of one is buffered."""
        if self._err is not None:
            raise self._err
        try:
            frame, n = decode_frame(memoryview(self._buf)[self._off:], self.limit)
        except ProtocolError as e:
            self._err = e  # never resynchronise
            raise
        if frame is None:
            return None
        self._off += n
        return frame

    def frames(self, data=b""):
        """Feed data and return every whole frame now buffered."""
        self.feed(data)
        out = []
        while True:
            f = self.next()
            if f is None:
                return out
            out.append(f)

    def pending(self):
        """How many undecoded bytes are buffered."""
        return len(self._buf) - self._off


# ---------------------------------------------------------------------------
# Errors and codes (section 5)

# The retry column of section 5: the ERROR codes for which reconnecting (with
# backoff, at least retry_after_ms) and resending can help, whenever the ERROR
# arrives (in answer to HELLO or later). Every other code, and a code this client
# does not know, is final: the client stops reconnecting and fails its reports.
RETRYABLE_ERRORS = frozenset({
    "bad_crc", "handshake_timeout", "heartbeat_timeout", "too_many_connections", "replaced",
    "drain_timeout", "shutdown", "slow_consumer", "frame_timeout", "busy",
    "spool_write_failed", "unavailable", "destination_unavailable", "handoff_failed",
    "upload_offset", "upload_unknown", "upload_quota", "upload_write_failed",
})
FINAL_ERRORS = frozenset({
    "bad_magic", "unsupported_version", "unknown_type", "frame_too_large", "bad_payload",
    "protocol_violation", "unauthorized", "token_revoked", "too_many_in_flight",
    "upload_bad_name", "upload_bad_id", "upload_conflict", "upload_too_large", "upload_mismatch",
    "upload_disabled",
})

UPLOAD_CHUNK_SIZE = 256 << 10   # default chunk data (bounded by max_frame_size and the window)
UPLOAD_RETRY_MAX = 2.0          # seconds between upload attempts at most (doubling from 0.05)
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\Z")  # section 4.3
_SHA256 = re.compile(r"[0-9A-Fa-f]{64}\Z")
GOAWAY_GRACE = 1.0      # seconds a connection is still read past its GOAWAY deadline
MIN_BACKOFF = 0.01      # reconnect backoff: full jitter in [0, min(MAX, MIN * 2**n))
MAX_BACKOFF = 1.0


def backoff(attempt):
    """Full-jitter backoff before attempt n (0-based), in seconds."""
    return random.uniform(0, min(MAX_BACKOFF, MIN_BACKOFF * (1 << min(attempt, 40))))


class ServerError(HawkError):
    """An ERROR frame from the server: code (section 5), message and retry_after_ms
    (the least wait before the next connection attempt, 0 if not given)."""

    def __init__(self, code, message="", retry_after_ms=0):
        super().__init__("server error %s: %s" % (code, message))
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms

    @property
    def retryable(self):
        """Section 5's retry column; an unknown code is final."""
        return self.code in RETRYABLE_ERRORS


class NackError(HawkError):
    """A report refused for good (NACK with retryable false)."""

    def __init__(self, seq, code, message):
        super().__init__("report seq %d refused: %s: %s" % (seq, code, message))
        self.seq = seq
        self.code = code
        self.message = message


class ConnectionClosed(HawkError):
    """The peer closed the connection (end of stream)."""


class ClientClosed(HawkError):
    """The client was closed before the report was acknowledged."""


class UploadError(HawkError):
    """An upload refused for good (section 4.3): code is its upload_* code, state the
    whole UPLOAD_STATE."""

    def __init__(self, state):
        super().__init__("upload %s: %s: %s" % (state.get("upload_id"), state.get("code"), state.get("message")))
        self.code = state.get("code", "")
        self.state = state


class UploadsDisabled(HawkError):
    """The server announces no max_upload_in_flight in WELCOME: it takes no uploads."""


class TooLarge(HawkError):
    """A report larger than the server's max_frame_size (refused locally)."""


def _parse_json_object(frame):
    try:
        obj = json.loads(frame.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("bad_payload", "%s payload is not valid JSON: %s" % (_type_name(frame.type), e))
    if not isinstance(obj, dict):
        raise ProtocolError("bad_payload", "%s payload is not a JSON object" % _type_name(frame.type))
    return obj


def _field(obj, name, kind, default):
    v = obj.get(name, default)
    if v is None:
        return default
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ProtocolError("bad_payload", "field %s is not an integer: %r" % (name, v))
    if kind is not int and not isinstance(v, kind):
        raise ProtocolError("bad_payload", "field %s is not a %s: %r" % (name, kind.__name__, v))
    return v


def server_error(frame):
    """The ServerError an ERROR frame carries."""
    obj = _parse_json_object(frame)
    return ServerError(_field(obj, "code", str, ""), _field(obj, "message", str, ""),
                       max(_field(obj, "retry_after_ms", int, 0), 0))


def _parse_addr(addr):
    if isinstance(addr, tuple):
        return addr
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _as_bytes(payload):
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return _json_bytes(payload)


# ---------------------------------------------------------------------------
# Connection: one synchronous framed connection


class Connection:
    """One framed TCP (or TLS) connection, used synchronously (one thread reads)."""

    def __init__(self, sock, limit=CLIENT_LIMIT):
        self.sock = sock
        self.decoder = Decoder(limit)
        self._frames = collections.deque()
        self._send_lock = threading.Lock()
        self.eof = False

    @classmethod
    def dial(cls, addr, timeout=5.0, limit=CLIENT_LIMIT, tls=None, server_hostname=None):
        """Connect to addr ("host:port"); with tls (an ssl.SSLContext, see
        tls_context) the frames travel inside TLS (section 6.7), the server's
        certificate checked for server_hostname (default: addr's host)."""
        host, port = _parse_addr(addr)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = hawk_tls.wrap(sock, tls, server_hostname or host, timeout)
        return cls(sock, limit)

    @property
    def local_addr(self):
        """The connection's local (host, port)."""
        return self.sock.getsockname()

    def send_raw(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def send(self, ftype, seq=0, payload=b""):
        self.send_raw(encode_frame(ftype, seq, payload))

    def send_json(self, ftype, seq, obj):
        self.send_raw(encode_json(ftype, seq, obj))

    def recv(self, timeout=None):
        """The next frame. Raises ConnectionClosed at end of stream, ProtocolError on a
        malformed frame, TimeoutError when timeout (seconds) passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            f = self.decoder.next()
            if f is not None:
                return f
            if self.eof:
                raise ConnectionClosed("connection closed by the peer"
                                       + (" mid-frame" if self.decoder.pending() else ""))
            if deadline is None:
                self.sock.settimeout(None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no frame within %.3fs" % timeout)
                self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                raise TimeoutError("no frame within %.3fs" % timeout) from None
            if not data:
                self.eof = True
            else:
                self.decoder.feed(data)

    def hello(self, client_id, token="", client_version="", timeout=5.0, ack=""):
        """Send HELLO and return the WELCOME as a dict; raise ServerError on ERROR.
        ack="range" asks for ACK_RANGE frames (section 4.5); WELCOME's "ack" says
        whether the server granted it."""
        hello = {"client_id": client_id}
        if token:
            hello["token"] = token
        if client_version:
            hello["client_version"] = client_version
        if ack:
            hello["ack"] = ack
        self.send_json(HELLO, 0, hello)
        f = self.recv(timeout)
        if f.type == ERROR:
            raise server_error(f)
        if f.type != WELCOME:
            raise ProtocolError("protocol_violation", "expected WELCOME, got %s" % _type_name(f.type))
        obj = _parse_json_object(f)
        return {
            "server_id": _field(obj, "server_id", str, ""),
            "server_version": _field(obj, "server_version", str, ""),
            "conn_id": _field(obj, "conn_id", int, 0),
            "heartbeat_interval_ms": _field(obj, "heartbeat_interval_ms", int, 0),
            "max_frame_size": _field(obj, "max_frame_size", int, 0),
            "max_in_flight": _field(obj, "max_in_flight", int, 0),
            "ack": _field(obj, "ack", str, ""),
            "max_upload_in_flight": _field(obj, "max_upload_in_flight", int, 0),
        }

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------
# Client: the agent


class Receipt:
    """One submitted report. wait() returns its seq once ACKed, or raises."""

    __slots__ = ("seq", "payload", "conn", "error", "_event")

    def __init__(self, seq, payload):
        self.seq = seq
        self.payload = payload
        self.conn = None      # the _Conn it is in flight on, if any
        self.error = None
        self._event = threading.Event()

    def done(self):
        return self._event.is_set()

    def wait(self, timeout=None):
        if not self._event.wait(timeout):
            raise TimeoutError("report seq %d not acknowledged within %ss" % (self.seq, timeout))
        if self.error is not None:
            raise self.error
        return self.seq


class _Conn:
    """A connection of a Client, with its reader and writer threads."""

    def __init__(self, client, conn, welcome):
        self.client = client
        self.conn = conn
        self.welcome = welcome
        self.conn_id = welcome["conn_id"]
        self.inflight = set()      # seqs sent here and not yet answered
        # At most this many unanswered REPORTs here: WELCOME max_in_flight (0: not said).
        self.limit = welcome["max_in_flight"] or None
        self.draining = False      # told GOAWAY (or replaced): no longer the target of new reports
        self.shutdown = False      # the GOAWAY said shutdown: there is no successor
        self.deadline = None       # monotonic time of the GOAWAY deadline
        self.move_at = None        # monotonic time to dial the successor (reconnect_after_ms)
        self.dead = False
        now = time.monotonic()
        self.last_sent = now
        self.last_recv = now
        self._out = queue.SimpleQueue()
        self.conn.sock.settimeout(None)

    def start(self):
        threading.Thread(target=self._write_loop, name="hawk-writer-%d" % self.conn_id, daemon=True).start()
        threading.Thread(target=self._read_loop, name="hawk-reader-%d" % self.conn_id, daemon=True).start()

    def send(self, data):
        """Queue bytes for the writer (never blocks)."""
        self.last_sent = time.monotonic()
        self._out.put(data)

    def stop(self):
        self._out.put(None)
        self.conn.close()

    def _write_loop(self):
        while True:
            data = self._out.get()
            if data is None:
                return
            try:
                self.conn.send_raw(data)
            except OSError as e:
                self.client._conn_lost(self, e)
                return

    def _read_loop(self):
        try:
            while True:
                f = self.conn.recv()
                self.last_recv = time.monotonic()
                if not self.client._on_frame(self, f):
                    return
        except (OSError, HawkError, ValueError) as e:
            self.client._conn_lost(self, e)


class Client:
    """A hawk agent: one connection at a time (two during a GOAWAY handoff).

    submit() sends a report pipelined (blocking while `window` reports are
    unacknowledged) and returns a Receipt; report() waits for the ACK. Reports not
    acknowledged when a connection ends are resent, with the same seq, on the next
    one. The `events` counters and `errors` list say what happened.
    """

    def __init__(self, addr, client_id, token="", client_version="hawk-python/0.1", window=64,
                 heartbeat_interval=None, connect_timeout=5.0, nack_backoff=0.05, seq_start=None,
                 tls=None, server_hostname=None):
        self.addr = addr
        self.tls = tls                          # an ssl.SSLContext (tls_context) or None: plaintext
        self.server_hostname = server_hostname
        self.client_id = client_id
        self.token = token
        self.client_version = client_version
        self.connect_timeout = connect_timeout
        self.nack_backoff = nack_backoff
        self._hb_override = heartbeat_interval
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._window = threading.Semaphore(window)
        self._pending = {}                      # seq -> Receipt, until ACK or final failure
        self._queue = collections.deque()       # Receipts waiting for a connection
        self._current = None                    # the _Conn new reports go to
        self._conns = set()                     # every open _Conn (current and draining)
        self._next_seq = time.time_ns() if seq_start is None else seq_start
        self._ping_seq = 0
        self._reconnecting = False
        self._not_before = 0.0                  # no dial before this (ERROR retry_after_ms)
        self._closed = threading.Event()
        self._fatal = None
        self._hb_thread = None
        self.welcome = None
        self.max_frame_size = 0
        self.events = collections.Counter()     # acked, nacked, goaways, pings, pongs, connects, ...
        self.errors = []                        # every ServerError and connection failure seen
        self.welcomes = []                      # every WELCOME, in order
        self.local_addrs = []                   # each connection's local (host, port), in order
        self._uploads = {}                      # upload id -> queue of (_Conn, UPLOAD_STATE dict)

    # -- public API --------------------------------------------------------

    def connect(self):
        """Open the first connection; raises ServerError / OSError / ProtocolError."""
        c = self._dial()
        with self._lock:
            self._install(c)
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="hawk-heartbeat", daemon=True)
        self._hb_thread.start()
        return self

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def submit(self, payload, timeout=None):
        """Send a report (bytes, str, or a JSON-encodable object) without waiting for its ACK."""
        data = _as_bytes(payload)
        if self.max_frame_size and len(data) > self.max_frame_size:
            raise TooLarge("report of %d bytes exceeds the server's max_frame_size %d"
                           % (len(data), self.max_frame_size))
        if not self._window.acquire(timeout=timeout):
            raise TimeoutError("window full for %ss" % timeout)
        with self._lock:
            if self._fatal is not None or self._closed.is_set():
                self._window.release()
                raise self._fatal or ClientClosed("client is closed")
            r = Receipt(self._next_seq, data)
            self._next_seq += 1
            self._pending[r.seq] = r
            self._dispatch(r)
        return r

    def report(self, payload, timeout=30.0):
        """Send one report and return its seq once it is ACKed (persisted)."""
        return self.submit(payload, timeout).wait(timeout)

    def flush(self, timeout=30.0):
        """Wait until every submitted report is answered (ACKed or failed)."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._pending, timeout):
                raise TimeoutError("%d reports still unacknowledged after %ss" % (len(self._pending), timeout))

    def upload(self, upload_id, source, name=None, progress=None, chunk_size=UPLOAD_CHUNK_SIZE, timeout=None,
               sha256=None):
        """Send a file on this client's connections, interleaved with its reports,
        and return once the server has published it (size and sha256 checked).

        source is a path or a seekable binary file (read from its start to its end).
        upload_id (1..64 of A-Z a-z 0-9 . _ -, not starting with ".") names the
        upload for this client_id: the same id resumes it, in this process or in
        another, from the offset the server holds. A lost connection, a GOAWAY or a
        server restart resumes it the same way; at most WELCOME's
        max_upload_in_flight bytes are sent twice per interruption. progress, when
        given, is called as progress(durable_offset, size) whenever the durable
        offset moves. Returns {"upload_id", "name", "size", "sha256", "attempts",
        "retries"} (attempts: the opens it took, 1 when nothing interrupted it;
        retries: the retryable refusals met, "code: message"); raises
        UploadError (a final refusal: its code), UploadsDisabled, TimeoutError.
        sha256, when the caller knows the file's (64 hex digits), is sent in the
        open and the commit instead of hashing the file first; the server checks
        the bytes it received against it (upload_mismatch).
        """
        if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
            raise ValueError("upload id %r: want 1..64 of A-Z a-z 0-9 . _ - not starting with '.'" % (upload_id,))
        if sha256 is not None:
            if not isinstance(sha256, str) or not _SHA256.match(sha256):
                raise ValueError("sha256 %r: want 64 hex digits" % (sha256,))
            sha256 = sha256.lower()
        import hawk_upload  # here: it imports this module
        f, default_name, opened = hawk_upload.open_source(source)
        try:
            size = f.seek(0, os.SEEK_END)
            deadline = None if timeout is None else time.monotonic() + timeout
            up = hawk_upload.Upload(self, upload_id, f, name or default_name, size, progress, chunk_size, deadline,
                                    sha256)
            with self._lock:
                if upload_id in self._uploads:
                    raise HawkError("upload %s is already in progress on this client" % upload_id)
                self._uploads[upload_id] = up.answers
            try:
                return up.run()
            finally:
                with self._lock:
                    self._uploads.pop(upload_id, None)
        finally:
            if opened:
                f.close()

    def close(self):
        """Close every connection; reports still pending fail with ClientClosed."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            for c in list(self._conns):
                c.dead = True
                c.stop()
            self._conns.clear()
            self._current = None
            self._fail_all(ClientClosed("client closed"))

    @property
    def conn_id(self):
        c = self._current
        return c.conn_id if c else None

    # -- internals (the lock is held where a name says _locked or documents it) ----

    def _dial(self):
        c = Connection.dial(self.addr, self.connect_timeout, tls=self.tls, server_hostname=self.server_hostname)
        try:
            welcome = c.hello(self.client_id, self.token, self.client_version, self.connect_timeout)
        except BaseException:
            c.close()
            raise
        return _Conn(self, c, welcome)

    def _install(self, c):
        """Make c the current connection and send the queued reports there (lock held).
        A previous current connection (told GOAWAY upgrade) now only drains."""
        old = self._current
        self._current = c
        self._conns.add(c)
        self.welcome = c.welcome
        self.welcomes.append(c.welcome)
        self.local_addrs.append(c.conn.local_addr)
        self.max_frame_size = c.welcome["max_frame_size"]
        self.events["connects"] += 1
        self._not_before = 0.0
        c.start()
        if old is not None and old is not c:
            old.draining = True
            self._retire_if_idle(old)
        self._flush_queue()

    def _dispatch(self, r):
        """Send r on the current connection if it has room (WELCOME max_in_flight),
        else queue it (lock held)."""
        c = self._current
        if (c is not None and not c.dead and not c.shutdown
                and (c.limit is None or len(c.inflight) < c.limit)):
            r.conn = c
            c.inflight.add(r.seq)
            c.send(encode_frame(REPORT, r.seq, r.payload))
        else:
            self._queue.append(r)

    def _flush_queue(self):
        """Send queued reports, oldest first, as far as the current connection has room."""
        if self._current is None or not self._queue:
            return
        q = sorted(self._queue, key=lambda r: r.seq)
        self._queue.clear()
        for r in q:
            if self._pending.get(r.seq) is r and r.conn is None:
                self._dispatch(r)

    def _finish(self, r, error=None):
        """Complete a pending report (lock held)."""
        if self._pending.pop(r.seq, None) is None:
            return
        if r.conn is not None:
            r.conn.inflight.discard(r.seq)
            r.conn = None
        r.error = error
        r._event.set()
        self._window.release()
        self._cond.notify_all()

    def _fail_all(self, err):
        for r in list(self._pending.values()):
            self._finish(r, err)
        self._queue.clear()

    def _on_frame(self, c, f):
        """Handle one frame read on c; returns False when the reader must stop."""
        if f.type in (ACK, ACK_RANGE):
            # A range covers only seqs read on c and durable (section 4.5).
            ranges = decode_ack_ranges(f.payload) if f.type == ACK_RANGE else [(f.seq, f.seq)]
            with self._lock:
                for first, last in ranges:
                    for seq in range(first, last + 1):
                        c.inflight.discard(seq)
                        r = self._pending.get(seq)
                        if r is not None:
                            self.events["acked"] += 1
                            self._finish(r)
                self._retire_if_idle(c)
                self._flush_queue()
            return True
        if f.type == NACK:
            obj = _parse_json_object(f)
            code, msg = _field(obj, "code", str, ""), _field(obj, "message", str, "")
            retryable = _field(obj, "retryable", bool, False)
            # The server's hint (destination_unavailable): resend no sooner.
            hint = max(_field(obj, "retry_after_ms", int, 0), 0) / 1000.0
            with self._lock:
                c.inflight.discard(f.seq)
                r = self._pending.get(f.seq)
                if r is not None and r.conn is c:
                    self.events["nacked"] += 1
                    r.conn = None
                    if retryable:
                        t = threading.Timer(max(self.nack_backoff, hint), self._resend, (r,))
                        t.daemon = True
                        t.start()
                    else:
                        self._finish(r, NackError(r.seq, code, msg))
                self._retire_if_idle(c)
                self._flush_queue()
            return True
        if f.type == PING:
            c.send(encode_frame(PONG, f.seq))
            return True
        if f.type == PONG:
            with self._lock:
                self.events["pongs"] += 1
            return True
        if f.type == GOAWAY:
            obj = _parse_json_object(f)
            reason = _field(obj, "reason", str, "")
            deadline_ms = max(_field(obj, "deadline_ms", int, 0), 0)
            after_ms = min(max(_field(obj, "reconnect_after_ms", int, 0), 0), deadline_ms)
            now = time.monotonic()
            with self._lock:
                self.events["goaways"] += 1
                if c.deadline is not None or c.dead:
                    return True  # a repeat: tolerated
                # deadline_ms counts from the sending; we count from receipt. 0 means
                # the deadline has passed: move now (section 6.5).
                c.deadline = now + deadline_ms / 1000.0
                c.move_at = now + after_ms / 1000.0
                if reason == "shutdown":
                    # No successor: no new reports here; read until answered or the
                    # deadline; reconnect with the normal backoff.
                    c.shutdown = True
                    c.draining = True
                    if c is self._current:
                        self._current = None
                        self._start_reconnect()
                    self._retire_if_idle(c)
                elif c is self._current:
                    # upgrade: new reports keep going here until the successor has
                    # WELCOME; it is dialled reconnect_after_ms from now, no backoff.
                    self._start_reconnect()
                else:
                    c.draining = True
                    self._retire_if_idle(c)
            return True
        if f.type == UPLOAD_STATE:
            st = _parse_json_object(f)
            with self._lock:
                q = self._uploads.get(_field(st, "upload_id", str, ""))
            if q is not None:
                q.put((c, st))
            return True
        if f.type == ERROR:
            raise server_error(f)
        raise ProtocolError("protocol_violation", "server sent %s on an established connection"
                            % _type_name(f.type))

    def _resend(self, r):
        with self._lock:
            if self._pending.get(r.seq) is r and r.conn is None and r not in self._queue:
                self._dispatch(r)

    def _retire_if_idle(self, c):
        """Close a draining connection once nothing is in flight on it (lock held)."""
        if c.draining and c is not self._current and not c.inflight and not c.dead:
            self._drop(c, None)

    def _conn_lost(self, c, err):
        with self._lock:
            self._drop(c, err)

    def _drop(self, c, err):
        """End c and move its unacknowledged reports to the next connection (lock held).
        A final ERROR (section 5) ends the client instead."""
        if c.dead:
            return
        c.dead = True
        c.stop()
        self._conns.discard(c)
        if err is not None and not self._closed.is_set():
            self.errors.append(err)
            self.events["connection_errors"] += 1
        if isinstance(err, ServerError):
            if not err.retryable:
                self._fatal = err
                self._current = None if c is self._current else self._current
                self._fail_all(err)
                return
            if err.retry_after_ms:
                self._not_before = max(self._not_before, time.monotonic() + err.retry_after_ms / 1000.0)
        for seq in sorted(c.inflight):
            r = self._pending.get(seq)
            if r is not None and r.conn is c:
                r.conn = None
                self._queue.append(r)
                self.events["resent"] += 1
        c.inflight.clear()
        if self._closed.is_set():
            return
        if c is self._current:
            self._current = None
            self._start_reconnect()
        else:
            self._flush_queue()

    def _start_reconnect(self):
        if self._reconnecting or self._closed.is_set() or self._fatal is not None:
            return
        self._reconnecting = True
        threading.Thread(target=self._reconnect_loop, name="hawk-reconnect", daemon=True).start()

    def _dial_delay(self, attempt, fails):
        """Seconds to wait before the next dial (lock held), or None: no dial needed.

        A migration (GOAWAY upgrade on the current connection) dials at
        reconnect_after_ms without backoff, and retries a failed dial with a backoff
        capped at half the time left, so that it completes before the deadline.
        Otherwise (no connection): the normal backoff, never before retry_after_ms.
        """
        now = time.monotonic()
        wait = max(self._not_before - now, 0.0)  # the server's retry_after_ms, always honoured
        c = self._current
        if c is not None:
            if c.dead or c.deadline is None or c.shutdown:
                return None  # a working connection (or nothing to migrate from)
            left = c.deadline - now
            if fails == 0:
                d = max(c.move_at - now, 0.0)
            elif left > 0:
                d = min(backoff(fails - 1), left / 2)
            else:
                d = backoff(fails - 1)
            return max(d, wait + backoff(0)) if wait else d
        return backoff(attempt) + wait

    def _reconnect_loop(self):
        attempt = fails = 0
        while not self._closed.is_set():
            with self._lock:
                delay = self._dial_delay(attempt, fails)
                if delay is None or self._fatal is not None:
                    self._reconnecting = False
                    return
            if delay > 0 and self._closed.wait(delay):
                break
            try:
                c = self._dial()
            except ServerError as e:
                with self._lock:
                    self.errors.append(e)
                    if not e.retryable:
                        # Final: the server refuses this agent (section 5).
                        self._fatal = e
                        self._reconnecting = False
                        self._fail_all(e)
                        return
                    if e.retry_after_ms:
                        self._not_before = max(self._not_before, time.monotonic() + e.retry_after_ms / 1000.0)
            except (OSError, HawkError, ValueError) as e:
                with self._lock:
                    self.errors.append(e)
            else:
                with self._lock:
                    self._reconnecting = False
                    if self._closed.is_set() or self._fatal is not None:
                        c.conn.close()
                        return
                    self.events["reconnects"] += 1
                    self._install(c)
                return
            with self._lock:
                if self._current is not None:
                    fails += 1
                else:
                    attempt += 1
        with self._lock:
            self._reconnecting = False

    def _heartbeat_interval(self):
        if self._hb_override:
            return self._hb_override
        w = self.welcome
        if w and w["heartbeat_interval_ms"] > 0:
            return w["heartbeat_interval_ms"] / 1000.0
        return 10.0

    def _heartbeat_loop(self):
        """Section 6.4: PING when nothing was sent or nothing was received for an
        interval (checked 4 times per interval); give a connection up after 3
        intervals with nothing received, or when the server kept it open past its
        GOAWAY deadline (section 6.5)."""
        while not self._closed.wait(self._heartbeat_interval() / 4):
            interval = self._heartbeat_interval()
            now = time.monotonic()
            with self._lock:
                for c in list(self._conns):
                    if c.deadline is not None and now >= c.deadline + GOAWAY_GRACE:
                        self._drop(c, HawkError("GOAWAY deadline passed on conn %d" % c.conn_id))
                    elif now - c.last_recv >= 3 * interval:
                        self._drop(c, HawkError("nothing received on conn %d for %.1fs"
                                                % (c.conn_id, now - c.last_recv)))
                    elif now - c.last_sent >= interval or now - c.last_recv >= interval:
                        self._ping_seq += 1
                        self.events["pings"] += 1
                        c.send(encode_frame(PING, self._ping_seq))


# ---------------------------------------------------------------------------
# Reports in datagrams (PROTOCOL.md section 4.4)

DATAGRAM_MAGIC = b"HD"
UDP_FIRST_RETRY = 0.2   # a report is sent again after this, doubling each time
UDP_MAX_RETRY = 5.0     # up to this
UDP_MAX_ATTEMPTS = 10   # sends before report() gives up (NoAck)


def encode_datagram(client_id, token, seq, payload=b""):
    """A report datagram: magic "HD", version, id length, token length, the id, the
    token, then one REPORT frame."""
    cid, tok = client_id.encode("utf-8"), token.encode("utf-8")
    if not 1 <= len(cid) <= 255 or len(tok) > 255:
        raise ValueError("client id must be 1..255 bytes and token at most 255")
    return (DATAGRAM_MAGIC + bytes([VERSION, len(cid), len(tok)]) + cid + tok
            + encode_frame(REPORT, seq, _as_bytes(payload)))


def decode_datagram(data):
    """(client_id bytes, token bytes, Frame) of a report datagram; ProtocolError
    ("malformed" or "bad_crc") when it is not one."""
    if len(data) < 5 or data[:2] != DATAGRAM_MAGIC or data[2] != VERSION:
        raise ProtocolError("malformed", "not a report datagram")
    idlen, toklen = data[3], data[4]
    if idlen == 0 or len(data) < 5 + idlen + toklen:
        raise ProtocolError("malformed", "id or token past the end")
    rest = data[5 + idlen + toklen:]
    try:
        frame, n = decode_frame(rest, MAX_PAYLOAD_LIMIT)
    except ProtocolError as e:
        raise ProtocolError("bad_crc" if e.code == "bad_crc" else "malformed", str(e))
    if frame is None or n != len(rest) or frame.type != REPORT:
        raise ProtocolError("malformed", "not exactly one REPORT frame")
    return bytes(data[5:5 + idlen]), bytes(data[5 + idlen:5 + idlen + toklen]), frame


class NoAck(HawkError):
    """No ACK came for a report datagram after max_attempts sends. It may or may
    not be stored; sending it again under the same seq stores it at most once."""


class UDPClient:
    """Sends reports as datagrams to a hawk UDP listener with format report; each
    report() returns once the server ACKed it, retransmitting with backoff until
    then. Thread-safe: ACKs are matched by seq."""

    def __init__(self, addr, client_id, token="", first_seq=None, first_retry=UDP_FIRST_RETRY,
                 max_retry=UDP_MAX_RETRY, max_attempts=UDP_MAX_ATTEMPTS):
        self.client_id, self.token = client_id, token
        self.first_retry, self.max_retry, self.max_attempts = first_retry, max(max_retry, first_retry), max_attempts
        self._seq = (first_seq if first_seq else time.time_ns()) - 1
        self._lock = threading.Lock()
        self._waiting = {}
        host, port = _parse_addr(addr)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.connect((host, port))
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def report(self, payload, seq=None, timeout=None):
        """Send payload (bytes, str or a JSON-able object) under seq (default: the
        next one) and return the seq once ACKed; NoAck after max_attempts sends,
        TimeoutError past timeout seconds, ClientClosed after close()."""
        if not isinstance(payload, (bytes, bytearray, memoryview, str)):
            payload = _json_bytes(payload)
        with self._lock:
            if seq is None:
                self._seq += 1
                seq = self._seq
            acked = threading.Event()
            self._waiting[seq] = acked
        data = encode_datagram(self.client_id, self.token, seq, payload)
        end = None if timeout is None else time.monotonic() + timeout
        wait = self.first_retry
        try:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    self._sock.send(data)
                except OSError:
                    pass    # ECONNREFUSED from an earlier datagram: the next attempt sends again
                step = wait if end is None else min(wait, max(0.0, end - time.monotonic()))
                if acked.wait(step):
                    with self._lock:
                        if seq not in self._waiting:    # the reader took it off: ACKed
                            return seq
                    raise ClientClosed("client closed")
                if self._closed.is_set():
                    raise ClientClosed("client closed")
                if end is not None and time.monotonic() >= end:
                    raise TimeoutError("report seq %d not acknowledged within %.1fs" % (seq, timeout))
                wait = min(2 * wait, self.max_retry)
            raise NoAck("report seq %d not acknowledged after %d sends" % (seq, self.max_attempts))
        finally:
            with self._lock:
                self._waiting.pop(seq, None)

    def _read(self):
        while not self._closed.is_set():
            try:
                data = self._sock.recv(64)
            except OSError:
                if self._closed.is_set():
                    return
                continue    # ECONNREFUSED while nobody listens: retransmits go on
            try:
                frame, n = decode_frame(data)
            except ProtocolError:
                continue
            if frame is None or n != len(data) or frame.type != ACK:
                continue
            with self._lock:
                ev = self._waiting.pop(frame.seq, None)
            if ev is not None:
                ev.set()

    def close(self):
        self._closed.set()
        with self._lock:
            for ev in self._waiting.values():
                ev.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(5)
