"""TLS for the hawk Python client: a socket-like TLS connection built on ssl.SSLObject.

The client reads a connection on one thread and writes it on another. An
ssl.SSLSocket would then have OpenSSL read and write one SSL object from two threads
at once, which OpenSSL does not allow (reading can write: a TLS 1.3 KeyUpdate is
answered from inside SSL_read). Here every OpenSSL call runs under one lock on
in-memory BIOs, and the socket I/O runs outside it: a writer blocked on a full
socket never stops the reader from decrypting, and the reader never waits to write.

Example::

    ctx = tls_context(cafile="ca.pem")                       # server authentication
    ctx = tls_context(cafile="ca.pem", certfile="agent.crt", keyfile="agent.key")  # mutual TLS
    Client("hawk.example:7070", "agent-42", tls=ctx)
"""

from __future__ import annotations

import ssl
import threading
import time

__all__ = ["tls_context", "TLSSocket"]


def tls_context(cafile=None, certfile=None, keyfile=None, minimum_version=ssl.TLSVersion.TLSv1_2):
    """An ssl.SSLContext for a hawk client: the server's certificate verified against
    cafile (None: the system's CAs) and its name checked; with certfile (and keyfile,
    unless the key is in certfile) the client presents a certificate (mutual TLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    ctx.minimum_version = minimum_version
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


class TLSSocket:
    """The subset of a socket the client uses (sendall, recv, settimeout,
    getsockname, shutdown, close), carried over TLS. One thread may call recv while
    another calls sendall."""

    def __init__(self, sock, context, server_hostname=None, timeout=None):
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname)
        self._ssl_lock = threading.Lock()    # every call into OpenSSL
        self._send_lock = threading.Lock()   # socket writes, in the order OpenSSL made the bytes
        self._eof = False
        self._handshake(timeout)

    @property
    def ssl_object(self):
        """The ssl.SSLObject: version(), cipher(), getpeercert(), session."""
        return self._obj

    def _handshake(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._ssl_lock:
                try:
                    self._obj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                pending = self._out.read()
            if pending:
                self.sock.sendall(pending)
            if done:
                return
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("TLS handshake not done within %.3fs" % timeout)
                self.sock.settimeout(left)
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionResetError("connection closed during the TLS handshake")
            self._in.write(data)

    def _flush(self, wait):
        """Send what OpenSSL wrote, in the order it wrote it. Called with the ssl lock
        held; returns with it released. The bytes stay in the outgoing BIO (a FIFO)
        until the thread holding the send lock takes them, so order holds across
        threads. The reader passes wait=False: it never waits for the socket, so a
        writer blocked on a full socket (the server not reading until we read)
        cannot stop it; what it leaves goes out with the writer's next bytes (at
        the latest the next heartbeat)."""
        if not self._send_lock.acquire(blocking=wait):
            self._ssl_lock.release()
            return
        try:
            while True:
                pending = self._out.read()
                self._ssl_lock.release()
                if not pending:
                    return
                self.sock.sendall(pending)
                self._ssl_lock.acquire()
        finally:
            self._send_lock.release()

    def sendall(self, data):
        self._ssl_lock.acquire()
        try:
            view = memoryview(data)
            while view:
                n = self._obj.write(view)
                view = view[n:]
        except BaseException:
            self._ssl_lock.release()
            raise
        self._flush(True)

    def recv(self, n):
        """Up to n bytes of application data; b"" at the end of the stream
        (close_notify or the peer's FIN)."""
        while True:
            self._ssl_lock.acquire()
            try:
                data = self._obj.read(n)
            except ssl.SSLWantReadError:
                data = None
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            except BaseException:
                self._ssl_lock.release()
                raise
            # Reading may have produced records to send (a KeyUpdate's answer).
            self._flush(False)
            if data is not None:
                return data
            if self._eof:
                return b""
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self._eof = True
                self._in.write_eof()
            else:
                self._in.write(chunk)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def getsockname(self):
        return self.sock.getsockname()

    def getpeername(self):
        return self.sock.getpeername()

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()


def wrap(sock, context, server_hostname, timeout):
    """sock after a TLS handshake with context, as a TLSSocket."""
    try:
        return TLSSocket(sock, context, server_hostname, timeout)
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise

