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

// half is one direction's keys: the traffic secret, the AEAD and IV it keys, and
// the sequence number of the next record.
type half struct {
	s      *suite
	secret []byte
	aead   cipher.AEAD
	iv     [nonceLen]byte
	seq    uint64
	nonce  [nonceLen]byte
}

// set keys h from secret, which h keeps, at sequence number seq.
func (h *half) set(s *suite, secret []byte, seq uint64) error {
	a, iv, err := s.trafficKeys(secret)
	if err != nil {
		return err
	}
	clear(h.secret)
	h.s, h.secret, h.aead, h.iv, h.seq = s, secret, a, iv, seq
	return nil
}

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
	nonce, err := h.nextNonce()
	if err != nil {
		return nil, err
	}
	n := len(content) + 1 + h.aead.Overhead()
	start := len(rec)
	rec = append(rec, typeAppData, 3, 3, byte(n>>8), byte(n))
	rec = append(rec, content...)
	rec = append(rec, typ)
	hdr := rec[start : start+headerLen]
	return h.aead.Seal(rec[:start+headerLen], nonce, rec[start+headerLen:], hdr), nil
}

// drop forgets h's secret.
func (h *half) drop() {
	clear(h.secret)
	h.secret, h.aead = nil, nil
}
