"""Tests of hawk_client over TLS and mutual TLS against a real server
(test/e2e/python_client_test.go TestPythonClientTLS starts one and runs these):

* HAWK_TLS_ADDR: the server's TLS listener (TLS 1.3, client certificates optional,
  the client id taken from a certificate's common name);
* HAWK_TLS_CA: the CA of the server's certificate;
* HAWK_TLS_CERT, HAWK_TLS_KEY, HAWK_TLS_CLIENT_ID: a client certificate the server
  trusts and the id (common name) it names;
* HAWK_TLS_OTHER_CA: a CA the server's certificate does not chain to;
* HAWK_SPOOL_DIR: the server's spool.

Without HAWK_TLS_ADDR they are skipped, unless HAWK_REQUIRE_SERVER=1.
"""

import os
import ssl
import unittest
import uuid

import hawk_client as hk
from test_hawk_client import spool_records

ENV = {k: os.environ.get("HAWK_" + k, "") for k in (
    "TLS_ADDR", "TLS_CA", "TLS_CERT", "TLS_KEY", "TLS_CLIENT_ID", "TLS_OTHER_CA", "SPOOL_DIR")}
REQUIRE = os.environ.get("HAWK_REQUIRE_SERVER", "") == "1"


class TLSServerTest(unittest.TestCase):
    def setUp(self):
        missing = [k for k, v in ENV.items() if not v]
        if missing:
            if REQUIRE:
                self.fail("HAWK_%s must be set (a TLS server and its files)" % ", HAWK_".join(missing))
            self.skipTest("no TLS server to test against (HAWK_%s not set)" % missing[0])

    def client(self, client_id, ctx, **kw):
        c = hk.Client(ENV["TLS_ADDR"], client_id, tls=ctx, **kw).connect()
        self.addCleanup(c.close)
        return c

    def test_tls13_report_acked_and_stored(self):
        cid = "py-tls-" + uuid.uuid4().hex[:8]
        c = self.client(cid, hk.tls_context(cafile=ENV["TLS_CA"]))
        tls = c._current.conn.sock.ssl_object
        self.assertEqual(tls.version(), "TLSv1.3")
        seq = c.report({"tls": True}, timeout=10)
        recs = spool_records(cid)
        self.assertEqual([(r["seq"], r["payload"]) for r in recs], [(seq, {"tls": True})])

    def test_mutual_tls_names_the_client(self):
        ctx = hk.tls_context(cafile=ENV["TLS_CA"], certfile=ENV["TLS_CERT"], keyfile=ENV["TLS_KEY"])
        c = self.client(ENV["TLS_CLIENT_ID"], ctx)
        seq = c.report({"mtls": True}, timeout=10)
        self.assertIn(seq, [r["seq"] for r in spool_records(ENV["TLS_CLIENT_ID"])])

    def test_mutual_tls_other_id_is_unauthorized(self):
        ctx = hk.tls_context(cafile=ENV["TLS_CA"], certfile=ENV["TLS_CERT"], keyfile=ENV["TLS_KEY"])
        with self.assertRaises(hk.ServerError) as cm:
            hk.Client(ENV["TLS_ADDR"], "py-not-" + ENV["TLS_CLIENT_ID"], tls=ctx).connect()
        self.assertEqual(cm.exception.code, "unauthorized")
        self.assertIn(ENV["TLS_CLIENT_ID"], str(cm.exception))

    def test_server_certificate_of_another_ca_is_refused(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            hk.Connection.dial(ENV["TLS_ADDR"], timeout=5, tls=hk.tls_context(cafile=ENV["TLS_OTHER_CA"]))

    def test_wrong_server_name_is_refused(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            hk.Connection.dial(ENV["TLS_ADDR"], timeout=5, tls=hk.tls_context(cafile=ENV["TLS_CA"]),
                               server_hostname="not-the-server.example")

    def test_2000_pipelined_reports_read_and_written_at_once(self):
        # The reader and writer threads share one TLS session: every report must
        # come back ACKed on the one connection.
        ctx = hk.tls_context(cafile=ENV["TLS_CA"], certfile=ENV["TLS_CERT"], keyfile=ENV["TLS_KEY"])
        c = self.client(ENV["TLS_CLIENT_ID"], ctx, window=128)
        receipts = [c.submit(os.urandom(512)) for _ in range(2000)]
        c.flush(timeout=60)
        seqs = [r.wait(0) for r in receipts]
        self.assertEqual(c.events["acked"], 2000)
        self.assertEqual((c.events["connects"], c.errors), (1, []))
        stored = [r["seq"] for r in spool_records(ENV["TLS_CLIENT_ID"])]
        self.assertEqual([s for s in seqs if stored.count(s) != 1], [])


if __name__ == "__main__":
    unittest.main()
