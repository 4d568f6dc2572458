package legacy

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"

	"github.com/hawk-agents/hawk/internal/legacy/ffffwire"
	"github.com/hawk-agents/hawk/internal/legacy/formats"
)

// The ffff format (the metrics agent) is ffffwire's; the names below are the
// listener's callers' spelling of it.
const (
	ffffMagic   = ffffwire.Magic
	ffffTrailer = ffffwire.Trailer
	ffffHeader  = ffffwire.Header
	ffffTail    = ffffwire.Tail
	maxFFFFData = formats.MaxFFFFData

	FFFFHeartbeatReply = ffffwire.HeartbeatReply
	FFFFReportReply    = ffffwire.ReportReply
	FFFFHeartbeat      = ffffwire.Heartbeat
	FFFFReport         = ffffwire.Report
)

// FFFFEnvelope is ffffwire.Envelope.
type FFFFEnvelope = ffffwire.Envelope

// FFFFCRC is ffffwire.CRC.
func FFFFCRC(data []byte) uint16 { return ffffwire.CRC(data) }

// AppendFFFF is ffffwire.Append.
func AppendFFFF(dst, data []byte) []byte { return ffffwire.Append(dst, data) }

// AppendFFFFPacket is ffffwire.AppendPacket.
func AppendFFFFPacket(dst []byte, typ byte, content []byte) []byte {
	return ffffwire.AppendPacket(dst, typ, content)
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
