package legacy

import "encoding/binary"

// The headers format (the minimal framing):
//
//	"Headers" (7 ASCII bytes) | length i32 BE | message
//
// There is no reply: the agent cannot learn whether a message was stored, so
// delivery is at most once by nature (a message in flight when the connection or
// the server dies is lost, and nothing tells the agent to send it again). hawk
// still stores each message before it counts it as stored.
const (
	headersMagic  = "Headers"
	headersHeader = len(headersMagic) + 4
)

// AppendHeaders appends one headers frame carrying msg.
func AppendHeaders(dst, msg []byte) []byte {
	dst = append(dst, headersMagic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...)
}

type headersCodec struct{}

func (headersCodec) replies() bool { return false }

func (headersCodec) decode(buf []byte, maxData int, scratch []byte) (decoded, []byte) {
	if !startsLike(buf, headersMagic) {
		return decoded{N: resync(buf, headersMagic), Drop: DropSync}, scratch
	}
	if len(buf) < headersHeader {
		return decoded{}, scratch
	}
	n := int64(int32(binary.BigEndian.Uint32(buf[len(headersMagic):])))
	if n < 0 || n > int64(maxData) {
		return decoded{N: resync(buf, headersMagic), Drop: DropTooLarge}, scratch
	}
	total := headersHeader + int(n)
	if len(buf) < total {
		return decoded{Need: total}, scratch
	}
	return decoded{N: total, Frame: frame{Kind: kindReport, Payload: buf[headersHeader:total]}}, scratch
}
