// Package auth decides whether a HELLO's token may speak for the client id it names.
//
// A credential is a name (for logs and metrics), a secret and the client ids it
// covers. The secret is a token or its SHA-256; either way only the hash is kept, a
// HELLO's token is found by its hash and compared in constant time. A token from a
// credential that does not cover the HELLO's client id is refused exactly like an
// unknown one: nothing of that connection may touch the named client.
//
// One line is one credential, in the configuration (auth.credentials) and in a
// tokens file (auth.tokens_file) alike:
//
//	NAME SECRET ID-PATTERN [ID-PATTERN ...]
//
// SECRET is the token itself or sha256:<64 hex digits> of it. An ID-PATTERN is an
// exact client id, or a pattern in which * stands for any run of characters and ?
// for any one character (web-* is a prefix; * alone covers every id, which is what
// the unbound auth.tokens do).
package auth
