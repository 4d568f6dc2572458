"""Uploads for the hawk Python client (PROTOCOL.md 4.3): open, chunks, commit, resumed
from the server's durable offset. Client.upload (hawk_client) is the API; this module
is its engine, run on the client's current connection.
"""

from __future__ import annotations

import collections
import hashlib
import os
import queue
import time

from hawk_client import (CLIENT_LIMIT, RETRYABLE_ERRORS, UPLOAD_CHUNK, UPLOAD_COMMIT, UPLOAD_OPEN,
                         UPLOAD_RETRY_MAX, ClientClosed, HawkError, UploadError, UploadsDisabled,
                         _field, encode_frame, encode_json)


def hash_file(f, size):
    h = hashlib.sha256()
    f.seek(0)
    left = size
    while left > 0:
        b = f.read(min(left, 1 << 20))
        if not b:
            raise HawkError("the file ended at %d of %d bytes" % (size - left, size))
        h.update(b)
        left -= len(b)
    return h.hexdigest()


class Upload:
    """One Client.upload: attempts (open, chunks, commit) on the client's current
    connection until the server publishes the file; every interruption resumes from
    the durable offset the server answers to the next open."""

    def __init__(self, client, upload_id, f, name, size, progress, chunk_size, deadline, sha256=None):
        self.client = client
        self.id = upload_id
        self.idb = upload_id.encode("ascii")
        self.f = f
        self.name = name
        self.size = size
        self.progress = progress
        self.chunk_size = chunk_size
        self.deadline = deadline
        self.sha256 = sha256 or hash_file(f, size)
        self.answers = queue.SimpleQueue()
        self.retries = []   # the retryable refusals met, "code: message"

    def run(self):
        delay = 0.05
        attempts = 0
        while True:
            attempts += 1
            if self._attempt():
                return {"upload_id": self.id, "name": self.name, "size": self.size, "sha256": self.sha256,
                        "attempts": attempts, "retries": self.retries}
            if self.client._closed.wait(min(delay, self._left())):
                raise ClientClosed("client closed")
            delay = min(delay * 2, UPLOAD_RETRY_MAX)

    def _left(self):
        if self.deadline is None:
            return 3600.0
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("upload %s not published in time" % self.id)
        return left

    def _conn(self):
        """The client's current connection, waiting for one."""
        while True:
            cl = self.client
            with cl._lock:
                if cl._fatal is not None:
                    raise cl._fatal
                if cl._closed.is_set():
                    raise ClientClosed("client closed")
                c = cl._current
                if c is not None and not c.dead and c.deadline is None:
                    return c
            cl._closed.wait(min(0.02, self._left()))

    def _answer(self, c):
        """The next UPLOAD_STATE from c, or None once c is dead or told GOAWAY."""
        while True:
            try:
                ac, st = self.answers.get(timeout=min(0.05, self._left()))
            except queue.Empty:
                if c.dead or c.deadline is not None:
                    return None
                continue
            if ac is c:
                return st

    def _judge(self, st):
        """True: go on; False: try again (a retryable code); raises when final."""
        code = _field(st, "code", str, "")
        if not code:
            return True
        if code in RETRYABLE_ERRORS:
            self.retries.append("%s: %s" % (code, _field(st, "message", str, "")))
            return False
        raise UploadError(st)

    def _report_progress(self, durable):
        if self.progress is not None:
            self.progress(durable, self.size)

    def _attempt(self):
        c = self._conn()
        window = c.welcome["max_upload_in_flight"]
        if window <= 0:
            raise UploadsDisabled("the server takes no uploads (no max_upload_in_flight in WELCOME)")
        while True:  # answers of an earlier attempt
            try:
                self.answers.get_nowait()
            except queue.Empty:
                break
        c.send(encode_json(UPLOAD_OPEN, 0, {"upload_id": self.id, "name": self.name, "size": self.size,
                                            "sha256": self.sha256}))
        st = self._answer(c)
        if st is None or not self._judge(st):
            return False
        if _field(st, "done", bool, False):
            self._report_progress(self.size)
            return True
        frame_room = (c.welcome["max_frame_size"] or CLIENT_LIMIT) - 1 - len(self.idb)
        chunk = max(1, min(self.chunk_size, frame_room, window))
        durable = nxt = _field(st, "offset", int, 0)
        self._report_progress(durable)
        inflight = collections.deque()  # (offset, length) of each unanswered chunk, in order
        while durable < self.size:
            while nxt < self.size and (not inflight or nxt - durable + chunk <= window):
                n = min(chunk, self.size - nxt)
                self.f.seek(nxt)
                data = self.f.read(n)
                if len(data) != n:
                    raise HawkError("the file ended at %d of %d bytes" % (nxt + len(data), self.size))
                c.send(encode_frame(UPLOAD_CHUNK, nxt, bytes((len(self.idb),)) + self.idb + data))
                inflight.append((nxt, n))
                nxt += n
            st = self._answer(c)
            if st is None:
                return False
            inflight.popleft()
            if _field(st, "code", str, "") == "upload_offset":
                # The chunks after the refused one are refused too: take their
                # answers, then go on from the durable offset the server holds.
                durable = _field(st, "offset", int, 0)
                while inflight:
                    st = self._answer(c)
                    if st is None:
                        return False
                    inflight.popleft()
                    durable = max(durable, _field(st, "offset", int, 0))
                nxt = durable
                continue
            if not self._judge(st):
                return False
            durable = _field(st, "offset", int, 0)
            self._report_progress(durable)
        c.send(encode_json(UPLOAD_COMMIT, 0, {"upload_id": self.id, "size": self.size, "sha256": self.sha256}))
        while True:
            st = self._answer(c)
            if st is None:
                return False
            if _field(st, "done", bool, False) or _field(st, "code", str, ""):
                break
        return self._judge(st) and _field(st, "done", bool, False)


def open_source(source):
    """(binary file, name, whether we opened it) for a path or a seekable binary file."""
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fsdecode(source)
        return open(path, "rb"), os.path.basename(path), True
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError("upload source must be a path or a seekable binary file, not %s" % type(source).__name__)
    name = getattr(source, "name", None)
    return source, os.path.basename(name) if isinstance(name, str) else "", False
