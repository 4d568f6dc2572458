package legacy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
)

// The c8c9 format (the long-connection device format):
//
//	0xC8 | length i32 BE | type i16 BE | data | 0xC9
//
// length counts the whole frame, head to tail: 8 + len(data). data is JSON (clients
// send, for example, type 0x10 with {"data_type":…,"call_back_key":…,…}).
//
// The reply is a frame of the same layout and the request's type, whose data is a
// JSON result object, always with these keys in this order:
//
//	{"data_type":…,"call_back_key":…,"status":…,"message":…,"data":…}
//
// data_type and call_back_key are the request's values, echoed verbatim when the
// request's data is a JSON object that has them, null otherwise. status is
// C8C9Stored (200) once the report is in the spool, with message "stored" and data
// {"seq":N} (the seq the server gave the report); or C8C9NotStored (503) when it
// could not be stored, with a message saying why and data null: the device should
// send it again.
const (
	c8c9Head   = 0xC8
	c8c9Tail   = 0xC9
	c8c9Header = 7 // head + length + type
	c8c9Over   = 8 // header + tail

	// C8C9Stored and C8C9NotStored are the result statuses.
	C8C9Stored    = 200
	C8C9NotStored = 503
)

// AppendC8C9 appends one c8c9 frame of type typ carrying data.
func AppendC8C9(dst []byte, typ int16, data []byte) []byte {
	dst = append(dst, c8c9Head)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c8c9Over+len(data)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(typ))
	dst = append(dst, data...)
	return append(dst, c8c9Tail)
}

// C8C9Result is the JSON result a reply carries.
type C8C9Result struct {
	DataType    json.RawMessage `json:"data_type"`
	CallBackKey json.RawMessage `json:"call_back_key"`
	Status      int             `json:"status"`
	Message     string          `json:"message"`
	Data        json.RawMessage `json:"data"`
}

type c8c9Codec struct{}

func (c8c9Codec) replies() bool { return true }

func (c8c9Codec) decode(buf []byte, maxData int, scratch []byte) (decoded, []byte) {
	if len(buf) == 0 {
		return decoded{}, scratch
	}
	if buf[0] != c8c9Head {
		return decoded{N: resync(buf, "\xc8"), Drop: DropSync}, scratch
	}
	if len(buf) < c8c9Header {
		return decoded{}, scratch
	}
	total := int64(int32(binary.BigEndian.Uint32(buf[1:])))
	if total < c8c9Over || total-c8c9Over > int64(maxData) {
		return decoded{N: resync(buf, "\xc8"), Drop: DropTooLarge}, scratch
	}
	n := int(total)
	if len(buf) < n {
		return decoded{Need: n}, scratch
	}
	if buf[n-1] != c8c9Tail {
		return decoded{N: resync(buf, "\xc8"), Drop: DropTrailer}, scratch
	}
	typ := int16(binary.BigEndian.Uint16(buf[5:]))
	return decoded{N: n, Frame: frame{Kind: kindReport, Type: typ, Payload: buf[c8c9Header : n-1]}}, scratch
}

// appendC8C9Echo appends `"data_type":X,"call_back_key":Y` from a request's data:
// the values verbatim (compacted) when data is a JSON object holding them, null
// otherwise.
func appendC8C9Echo(dst, data []byte) []byte {
	var req struct {
		DataType    json.RawMessage `json:"data_type"`
		CallBackKey json.RawMessage `json:"call_back_key"`
	}
	if json.Unmarshal(data, &req) != nil { // not a JSON object: nothing to echo
		req.DataType, req.CallBackKey = nil, nil
	}
	dst = append(dst, `"data_type":`...)
	dst = appendRaw(dst, req.DataType)
	dst = append(dst, `,"call_back_key":`...)
	return appendRaw(dst, req.CallBackKey)
}

func appendRaw(dst []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return append(dst, "null"...)
	}
	return append(dst, b.Bytes()...)
}

// appendC8C9Reply appends the reply frame to a request of type typ whose echo
// members (appendC8C9Echo) are echo: stored with seq, or not stored because of err.
func appendC8C9Reply(dst []byte, typ int16, echo []byte, seq uint64, err error) []byte {
	start := len(dst)
	dst = AppendC8C9(dst, typ, nil) // header now, length patched below
	dst = dst[:len(dst)-1]          // drop the tail; data goes here
	dataStart := len(dst)
	dst = append(dst, '{')
	dst = append(dst, echo...)
	if err == nil {
		dst = append(dst, `,"status":200,"message":"stored","data":{"seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
		dst = append(dst, "}}"...)
	} else {
		msg, _ := json.Marshal("not stored: " + err.Error() + "; send it again")
		dst = append(dst, `,"status":503,"message":`...)
		dst = append(dst, msg...)
		dst = append(dst, `,"data":null}`...)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(c8c9Over+len(dst)-dataStart))
	return append(dst, c8c9Tail)
}
