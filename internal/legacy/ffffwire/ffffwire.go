// Package ffffwire encodes the ffff wire format of the metrics agents: frames, packets, checksums and reply lines.
//
// It imports nothing of hawk's and nothing Linux-only, so the agent side (hawkc's
// legacy-load) builds on every OS without pulling in the server's listeners.
//
// The format:
//
//	0xFF 0xFF | length u16 BE (of data) | data | CRC u16 BE | 0xFF 0xFE
//
// CRC is the high 16 bits of CRC-32 (IEEE) over data. data is what Go's
// encoding/json writes for struct{ PacketType byte; PacketContent []byte }:
// {"PacketType":1,"PacketContent":"<base64 of the inner JSON>"}. PacketType 0 is a
// heartbeat, 1 a report. Replies are text lines: "heartBeat\n" for a heartbeat,
// "Report data has recive\n" (sic) for a stored report.
package ffffwire

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
)

const (
	Magic   = "\xff\xff"
	Trailer = "\xff\xfe"
	Header  = 4 // magic + length
	Tail    = 4 // CRC + trailer

	// HeartbeatReply and ReportReply are the agent's expected lines, byte for byte
	// (the agents match "recive" as it is spelt).
	HeartbeatReply = "heartBeat\n"
	ReportReply    = "Report data has recive\n"

	// Packet types.
	Heartbeat = 0
	Report    = 1
)

// CRC is the frame's checksum of data: the high 16 bits of CRC-32 (IEEE).
func CRC(data []byte) uint16 { return uint16(crc32.ChecksumIEEE(data) >> 16) }

// Append appends one ffff frame carrying data (the JSON envelope) to dst, as the
// agents write it. data must be at most 65535 bytes.
func Append(dst, data []byte) []byte {
	dst = append(dst, Magic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	dst = append(dst, data...)
	dst = binary.BigEndian.AppendUint16(dst, CRC(data))
	return append(dst, Trailer...)
}

// Envelope is the agents' packet: encoding/json writes PacketContent as standard
// base64 with padding.
type Envelope struct {
	PacketType    byte
	PacketContent []byte
}

// AppendPacket appends the frame of a packet of type typ with the inner JSON
// content, exactly as the agents encode it (json.Marshal of the envelope).
func AppendPacket(dst []byte, typ byte, content []byte) []byte {
	data, err := json.Marshal(Envelope{PacketType: typ, PacketContent: content})
	if err != nil { // a struct of a byte and a []byte always marshals
		panic("ffffwire: marshal envelope: " + err.Error())
	}
	return Append(dst, data)
}
