package tlsrecord

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
)

// Record layout and limits (RFC 8446 5.1, 5.2).
const (
	headerLen     = 5
	maxPlaintext  = 1 << 14
	maxCiphertext = maxPlaintext + 256
	nonceLen      = 12 // every TLS 1.3 AEAD's
	maxRecord     = headerLen + maxCiphertext

	typeAlert     = 21
	typeHandshake = 22
	typeAppData   = 23
)

var errSeqOverflow = errors.New("tlsrecord: record sequence number would wrap")

// half is one direction's keys: the traffic secret, the key and IV it derives,
// the AEAD built from that key while records flow, and the sequence number of
// the next record.
//
// The AEAD is most of a session's memory (AES-GCM's key schedule and GHASH
// table: about 770 bytes a direction), and an idle agent's session sends a
// record every heartbeat interval: a resting half (rest) forgets it, and the
// next record builds it again from the key (cipher).
type half struct {
	s      *suite
	secret []byte
	key    [maxKeyLen]byte // the first s.keyLen bytes
	aead   cipher.AEAD     // nil while the half rests
	iv     [nonceLen]byte
	seq    uint64
	nonce  [nonceLen]byte
}

// set keys h from secret, which h keeps, at sequence number seq.
func (h *half) set(s *suite, secret []byte, seq uint64) error {
	var key [maxKeyLen]byte
	iv, err := s.trafficKeys(secret, key[:s.keyLen])
	if err != nil {
		clear(key[:])
		return err
	}
	clear(h.secret)
	h.s, h.secret, h.key, h.aead, h.iv, h.seq = s, secret, key, nil, iv, seq
	clear(key[:])
	return nil
}

// cipher returns h's AEAD, building it from h's key if h rests.
func (h *half) cipher() (cipher.AEAD, error) {
	if h.aead == nil {
		a, err := h.s.aead(h.key[:h.s.keyLen])
		if err != nil {
			return nil, err
		}
		h.aead = a
	}
	return h.aead, nil
}

// rest forgets h's AEAD until the next record; h keeps its key.
func (h *half) rest() { h.aead = nil }

// update moves h to the next traffic secret at sequence number 0 (KeyUpdate).
func (h *half) update() error {
	next, err := h.s.nextSecret(h.secret)
	if err != nil {
		return err
	}
	return h.set(h.s, next, 0)
}

// nextNonce returns the nonce of record seq (the IV xor the sequence number) and
// counts the record.
func (h *half) nextNonce() ([]byte, error) {
	if h.seq == ^uint64(0) {
		return nil, errSeqOverflow
	}
	h.nonce = h.iv
	binary.BigEndian.PutUint64(h.nonce[4:], binary.BigEndian.Uint64(h.iv[4:])^h.seq)
	h.seq++
	return h.nonce[:], nil
}

// seal appends to rec (whose first headerLen bytes are reserved for the header)
// the record carrying content of inner type typ, sealed in place.
func (h *half) seal(rec []byte, typ byte, content []byte) ([]byte, error) {
	a, err := h.cipher()
	if err != nil {
		return nil, err
	}
	nonce, err := h.nextNonce()
	if err != nil {
		return nil, err
	}
	n := len(content) + 1 + a.Overhead()
	start := len(rec)
	rec = append(rec, typeAppData, 3, 3, byte(n>>8), byte(n))
	rec = append(rec, content...)
	rec = append(rec, typ)
	hdr := rec[start : start+headerLen]
	return a.Seal(rec[:start+headerLen], nonce, rec[start+headerLen:], hdr), nil
}

// drop forgets h's secret and key.
func (h *half) drop() {
	clear(h.secret)
	clear(h.key[:])
	h.secret, h.aead = nil, nil
}
