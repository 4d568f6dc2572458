// Package tlsrecord carries an established TLS 1.3 session's records from its traffic secrets, so it can change process.
//
// crypto/tls does the handshake over a Transport, which reads no byte past the
// record crypto/tls asks for and counts, by opening them with the captured keys,
// the records each side sent under its application key. Secrets, the
// connection's tls.Config.KeyLogWriter, keeps that connection's application
// traffic secrets in memory and nowhere else. Switch then checks that crypto/tls
// holds nothing unread and returns the session's State (suite, both secrets, both
// sequence numbers); New carries the session on from a State, in this process or
// in the next one, and Conn.State gives it back for the next move.
//
// The record layer is RFC 8446 section 5 on the standard library's AEADs
// (AES-GCM, ChaCha20-Poly1305 from golang.org/x/crypto, as crypto/tls uses) and
// crypto/hkdf: per-record nonces, the record size limits, inner content types,
// KeyUpdate both ways (answering update_requested), close_notify, and a fatal
// alert then close for anything else. It is the server's side: the only
// handshake message it accepts is KeyUpdate.
package tlsrecord
