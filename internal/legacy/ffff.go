package legacy

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"

	"github.com/hawk-agents/hawk/internal/legacy/formats"
)

// The ffff format (the metrics agent):
//
//	0xFF 0xFF | length u16 BE (of data) | data | CRC u16 BE | 0xFF 0xFE
//
// CRC is the high 16 bits of CRC-32 (IEEE) over data. data is what Go's
// encoding/json writes for struct{ PacketType byte; PacketContent []byte }:
// {"PacketType":1,"PacketContent":"<base64 of the inner JSON>"}. PacketType 0 is a
// heartbeat, 1 a report. Replies are text lines: "heartBeat\n" for a heartbeat,
// "Report data has recive\n" (sic) for a stored report.
const (
	ffffMagic   = "\xff\xff"
	ffffTrailer = "\xff\xfe"
	ffffHeader  = 4 // magic + length
	ffffTail    = 4 // CRC + trailer
	maxFFFFData = formats.MaxFFFFData

	// FFFFHeartbeatReply and FFFFReportReply are the agent's expected lines, byte for
	// byte (the agents match "recive" as it is spelt).
	FFFFHeartbeatReply = "heartBeat\n"
	FFFFReportReply    = "Report data has recive\n"

	// FFFF packet types.
	FFFFHeartbeat = 0
	FFFFReport    = 1
)

// FFFFCRC is the frame's checksum of data: the high 16 bits of CRC-32 (IEEE).
func FFFFCRC(data []byte) uint16 { return uint16(crc32.ChecksumIEEE(data) >> 16) }

// AppendFFFF appends one ffff frame carrying data (the JSON envelope) to dst, as the
// agents write it. data must be at most 65535 bytes.
func AppendFFFF(dst, data []byte) []byte {
	dst = append(dst, ffffMagic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	dst = append(dst, data...)
	dst = binary.BigEndian.AppendUint16(dst, FFFFCRC(data))
	return append(dst, ffffTrailer...)
}

// FFFFEnvelope is the agents' packet: encoding/json writes PacketContent as
// standard base64 with padding.
type FFFFEnvelope struct {
	PacketType    byte
	PacketContent []byte
}

// AppendFFFFPacket appends the frame of a packet of type typ with the inner JSON
// content, exactly as the agents encode it (json.Marshal of the envelope).
func AppendFFFFPacket(dst []byte, typ byte, content []byte) []byte {
	data, err := json.Marshal(FFFFEnvelope{PacketType: typ, PacketContent: content})
	if err != nil { // a struct of a byte and a []byte always marshals
		panic("legacy: marshal ffff envelope: " + err.Error())
	}
	return AppendFFFF(dst, data)
}

type ffffCodec struct{}

func (ffffCodec) replies() bool { return true }

func (ffffCodec) decode(buf []byte, maxData int, scratch []byte) (decoded, []byte) {
	if !startsLike(buf, ffffMagic) {
		return decoded{N: resync(buf, ffffMagic), Drop: DropSync}, scratch
	}
	if len(buf) < ffffHeader {
		return decoded{}, scratch
	}
	n := int(binary.BigEndian.Uint16(buf[2:]))
	if n > maxData {
		return decoded{N: resync(buf, ffffMagic), Drop: DropTooLarge}, scratch
	}
	total := ffffHeader + n + ffffTail
	if len(buf) < total {
		return decoded{Need: total}, scratch
	}
	data := buf[ffffHeader : ffffHeader+n]
	// A wrong trailer or CRC means the length (or anything) may be corrupt: the
	// next frame can start anywhere after this one's start, so resynchronise from
	// there rather than trusting the length.
	if string(buf[total-2:total]) != ffffTrailer {
		return decoded{N: resync(buf, ffffMagic), Drop: DropTrailer}, scratch
	}
	if binary.BigEndian.Uint16(buf[total-4:]) != FFFFCRC(data) {
		return decoded{N: resync(buf, ffffMagic), Drop: DropCRC}, scratch
	}
	// A frame whose CRC holds was sent as it is: a bad envelope is the agent's
	// doing, not the line's, so the frame is skipped whole.
	typ, content, ok := parseEnvelope(data)
	if !ok {
		return decoded{N: total, Drop: DropEnvelope}, scratch
	}
	switch typ {
	case FFFFHeartbeat:
		return decoded{N: total, Frame: frame{Kind: kindHeartbeat}}, scratch
	case FFFFReport:
		need := base64.StdEncoding.DecodedLen(len(content))
		if cap(scratch) < need {
			scratch = make([]byte, need)
		}
		m, err := base64.StdEncoding.Decode(scratch[:need], content)
		if err != nil {
			return decoded{N: total, Drop: DropEnvelope}, scratch
		}
		return decoded{N: total, Frame: frame{Kind: kindReport, Payload: scratch[:m]}}, scratch
	}
	return decoded{N: total, Drop: DropPacketType}, scratch
}

// parseEnvelope reads {"PacketType":n,"PacketContent":"base64"} as encoding/json
// would accept it into the agents' struct, returning the still-encoded content
// (it is a base64 string: no escapes). The fast path is the exact bytes Go's
// encoder writes; anything else (other key order, spaces, another encoder) goes
// through encoding/json.
func parseEnvelope(data []byte) (typ int, content []byte, ok bool) {
	const pre, mid = `{"PacketType":`, `,"PacketContent":"`
	if len(data) > len(pre)+len(mid)+3 && string(data[:len(pre)]) == pre {
		i := len(pre)
		t := 0
		j := i
		for j < len(data) && j-i < 3 && data[j] >= '0' && data[j] <= '9' {
			t = t*10 + int(data[j]-'0')
			j++
		}
		if j > i && (j-i == 1 || data[i] != '0') && t <= 255 && len(data)-j >= len(mid)+2 && string(data[j:j+len(mid)]) == mid &&
			data[len(data)-1] == '}' && data[len(data)-2] == '"' {
			// Without a backslash the string holds no escape and ends at the last
			// quote, so it is the base64 itself (the base64 decoder checks the rest);
			// an encoder that escapes '/' as "\/" takes the slow path.
			if c := data[j+len(mid) : len(data)-2]; bytes.IndexByte(c, '\\') < 0 && bytes.IndexByte(c, '"') < 0 {
				return t, c, true
			}
		}
	}
	var env struct {
		PacketType    *byte
		PacketContent *string
	}
	if err := json.Unmarshal(data, &env); err != nil || env.PacketType == nil {
		return 0, nil, false
	}
	if env.PacketContent == nil {
		return int(*env.PacketType), nil, true
	}
	return int(*env.PacketType), []byte(*env.PacketContent), true
}
