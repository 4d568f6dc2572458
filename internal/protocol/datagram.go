package protocol

import "errors"

// A report datagram (PROTOCOL.md 4.4) is a compact header naming the client, then
// one whole REPORT frame:
//
//	magic "HD" | version 1 | id length 1 | token length 1 | id | token | REPORT frame
//
// It is answered, once the report is durable, by one ACK frame (20 bytes) carrying
// the report's seq: never larger than the datagram it answers.
const (
	DatagramMagic0 = 'H'
	DatagramMagic1 = 'D'
	// DatagramHeaderSize is the fixed part before the id and the token.
	DatagramHeaderSize = 5
	// MaxDatagramID and MaxDatagramToken bound the id and the token (one length byte each).
	MaxDatagramID    = 255
	MaxDatagramToken = 255
)

// Why a report datagram does not decode; each is a refusal reason of its own.
var (
	ErrDatagramMalformed = errors.New("protocol: malformed report datagram")
	ErrDatagramBadCRC    = errors.New("protocol: report datagram with a bad CRC")
)

// Datagram is one decoded report datagram. ClientID, Token and Report.Payload
// alias the datagram.
type Datagram struct {
	ClientID []byte
	Token    []byte
	Report   Frame
}

// AppendDatagram appends a report datagram to dst. It panics on an id that is
// empty or longer than MaxDatagramID, or a token longer than MaxDatagramToken:
// the caller checks them once, when it is configured.
func AppendDatagram(dst []byte, clientID, token string, seq uint64, payload []byte) []byte {
	if len(clientID) == 0 || len(clientID) > MaxDatagramID || len(token) > MaxDatagramToken {
		panic("protocol: report datagram id or token length out of range")
	}
	dst = append(dst, DatagramMagic0, DatagramMagic1, Version, byte(len(clientID)), byte(len(token)))
	dst = append(dst, clientID...)
	dst = append(dst, token...)
	return AppendFrame(dst, TypeReport, seq, payload)
}

// DecodeDatagram decodes one report datagram: the whole datagram must be the
// header and exactly one REPORT frame whose CRC checks. It does not allocate.
func DecodeDatagram(d []byte) (Datagram, error) {
	var g Datagram
	if len(d) < DatagramHeaderSize || d[0] != DatagramMagic0 || d[1] != DatagramMagic1 || d[2] != Version {
		return g, ErrDatagramMalformed
	}
	idLen, tokLen := int(d[3]), int(d[4])
	rest := d[DatagramHeaderSize:]
	if idLen == 0 || len(rest) < idLen+tokLen {
		return g, ErrDatagramMalformed
	}
	g.ClientID, g.Token, rest = rest[:idLen], rest[idLen:idLen+tokLen], rest[idLen+tokLen:]
	f, n, err := Decode(rest, MaxPayloadLimit)
	switch {
	case err != nil:
		var de *DecodeError
		if errors.As(err, &de) && de.Code == CodeBadCRC {
			return g, ErrDatagramBadCRC
		}
		return g, ErrDatagramMalformed
	case n == 0 || n != len(rest) || f.Type != TypeReport:
		return g, ErrDatagramMalformed
	}
	g.Report = f
	return g, nil
}
