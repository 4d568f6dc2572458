package tlsrecord

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// maxKeyLen is the longest AEAD key of the suites below.
const maxKeyLen = 32

// suite is one TLS 1.3 cipher suite: its AEAD and the hash of its key schedule.
type suite struct {
	id     uint16
	keyLen int
	hash   func() hash.Hash
	aead   func(key []byte) (cipher.AEAD, error)
}

var suites = [...]suite{
	{tls.TLS_AES_128_GCM_SHA256, 16, sha256.New, newGCM},
	{tls.TLS_AES_256_GCM_SHA384, 32, sha512.New384, newGCM},
	{tls.TLS_CHACHA20_POLY1305_SHA256, chacha20poly1305.KeySize, sha256.New, chacha20poly1305.New},
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// suiteByID returns the suite id names, or an error for one this package does
// not carry (every TLS 1.2 suite).
func suiteByID(id uint16) (*suite, error) {
	for i := range suites {
		if suites[i].id == id {
			return &suites[i], nil
		}
	}
	return nil, fmt.Errorf("tlsrecord: cipher suite %#04x is not a TLS 1.3 suite", id)
}

// Supported reports whether the record layer carries cipher suite id.
func Supported(id uint16) bool {
	_, err := suiteByID(id)
	return err == nil
}

// expandLabel is HKDF-Expand-Label (RFC 8446 7.1) with an empty context: the
// HkdfLabel structure is encoded here, the expansion is crypto/hkdf's.
func (s *suite) expandLabel(secret []byte, label string, length int) ([]byte, error) {
	const prefix = "tls13 "
	info := make([]byte, 0, 4+len(prefix)+len(label))
	info = append(info, byte(length>>8), byte(length), byte(len(prefix)+len(label)))
	info = append(info, prefix...)
	info = append(info, label...)
	info = append(info, 0) // context: empty
	return hkdf.Expand(s.hash, secret, string(info), length)
}

// trafficKeys derives the key (into key, of s.keyLen bytes) and IV a traffic
// secret keys (RFC 8446 7.3).
func (s *suite) trafficKeys(secret, key []byte) ([nonceLen]byte, error) {
	var iv [nonceLen]byte
	k, err := s.expandLabel(secret, "key", s.keyLen)
	if err != nil {
		return iv, err
	}
	copy(key, k)
	clear(k)
	ivb, err := s.expandLabel(secret, "iv", nonceLen)
	if err != nil {
		return iv, err
	}
	copy(iv[:], ivb)
	clear(ivb)
	return iv, nil
}

// nextSecret is the next application traffic secret after a KeyUpdate (RFC 8446 7.2).
func (s *suite) nextSecret(secret []byte) ([]byte, error) {
	return s.expandLabel(secret, "traffic upd", s.hash().Size())
}
