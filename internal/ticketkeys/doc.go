// Package ticketkeys is the TLS session ticket keys in force: generated and rotated, or read from a shared file.
//
// A session ticket lets a client that reconnects resume its TLS session instead of
// running a full handshake: the server signs nothing and verifies no client chain
// (and under TLS 1.2 runs no key exchange either). crypto/tls encrypts
// new tickets with the first key of the list it is given and decrypts with any of
// them, so a list is a ring: a rotation puts a new key first and keeps Previous
// older ones for decryption, so a ticket stays good for at least Previous periods
// after the rotation that retired its key.
//
// The keys come from one of three places, in this order:
//   - a keys file (tls.ticket_keys_file, format in file.go), which several
//     instances behind a balancer share; it is read again when it changes, and a
//     bad file keeps the keys in force. The file is the schedule: hawk does not
//     rotate its keys.
//   - the previous process of an upgrade, which passes its ring through the
//     upgrade (Pass, Inherit: a pipe passed by name, never a file on disk), so
//     tickets issued before the upgrade stay good after it;
//   - a random key, when neither exists.
//
// Keys live in memory only: hawk never logs them nor writes them to disk.
package ticketkeys
