package udp

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// syslogFields is a syslog message as a record's payload. Fields the message
// leaves out (RFC 5424's "-", RFC 3164's missing timestamp) are absent.
type syslogFields struct {
	RFC            int    `json:"rfc"` // 5424 or 3164
	Facility       int    `json:"facility"`
	Severity       int    `json:"severity"`
	Timestamp      string `json:"timestamp,omitempty"`
	Hostname       string `json:"hostname,omitempty"`
	App            string `json:"app,omitempty"`
	ProcID         string `json:"procid,omitempty"`
	MsgID          string `json:"msgid,omitempty"`
	StructuredData string `json:"structured_data,omitempty"`
	Message        string `json:"message"`
}

// parseSyslog parses an RFC 5424 or RFC 3164 message into its fields; one that is
// neither (no <PRI>) is stored raw.
func parseSyslog(dst, d []byte) ([]byte, bool) {
	d = bytes.TrimRight(d, "\x00\r\n") // Python's SysLogHandler ends with NUL; some senders with a newline
	if len(d) == 0 {
		return dst, true // empty: refused by the caller
	}
	pri, rest, ok := parsePRI(d)
	if !ok {
		return append(dst, d...), false
	}
	f := syslogFields{Facility: pri / 8, Severity: pri % 8}
	if len(rest) > 2 && rest[0] == '1' && rest[1] == ' ' {
		if !parse5424(&f, rest[2:]) {
			return append(dst, d...), false
		}
	} else {
		parse3164(&f, rest)
	}
	out, err := json.Marshal(&f)
	if err != nil {
		return append(dst, d...), false
	}
	return append(dst, out...), true
}

// parsePRI reads "<n>" with n in 0..191.
func parsePRI(d []byte) (int, []byte, bool) {
	if len(d) < 3 || d[0] != '<' {
		return 0, nil, false
	}
	end := bytes.IndexByte(d[:min(len(d), 5)], '>')
	if end < 2 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(d[1:end]))
	if err != nil || n < 0 || n > 191 {
		return 0, nil, false
	}
	return n, d[end+1:], true
}

// parse5424 reads what follows "<PRI>1 ": TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
// STRUCTURED-DATA [MSG].
func parse5424(f *syslogFields, d []byte) bool {
	f.RFC = 5424
	var hdr [5]string
	for i := range hdr {
		sp := bytes.IndexByte(d, ' ')
		if sp <= 0 {
			return false
		}
		if v := string(d[:sp]); v != "-" {
			hdr[i] = v
		}
		d = d[sp+1:]
	}
	f.Timestamp, f.Hostname, f.App, f.ProcID, f.MsgID = hdr[0], hdr[1], hdr[2], hdr[3], hdr[4]
	if f.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339Nano, f.Timestamp); err != nil {
			return false
		}
	}
	switch {
	case len(d) > 0 && d[0] == '-':
		d = d[1:]
	case len(d) > 0 && d[0] == '[':
		end := sdEnd(d)
		if end < 0 {
			return false
		}
		f.StructuredData, d = string(d[:end]), d[end:]
	default:
		return false
	}
	d = bytes.TrimPrefix(d, []byte(" "))
	d = bytes.TrimPrefix(d, []byte("\xEF\xBB\xBF")) // the BOM of a UTF-8 MSG
	f.Message = string(d)
	return true
}

// sdEnd is the index after the structured data elements at the start of d
// ("[id k="v"]..."), honouring quoted values with \" and \], or -1.
func sdEnd(d []byte) int {
	i := 0
	for i < len(d) && d[i] == '[' {
		quoted := false
		for i++; i < len(d); i++ {
			c := d[i]
			if quoted && c == '\\' {
				i++
				continue
			}
			if c == '"' {
				quoted = !quoted
			} else if c == ']' && !quoted {
				break
			}
		}
		if i >= len(d) {
			return -1
		}
		i++
	}
	return i
}

// parse3164 reads what follows "<PRI>": [TIMESTAMP HOSTNAME ]TAG[PID]: MSG. The
// timestamp ("Jan _2 15:04:05") and hostname are optional (Python's SysLogHandler
// sends neither); so is the tag, when the content has no "tag:" shape.
func parse3164(f *syslogFields, d []byte) {
	f.RFC = 3164
	const stamp = "Jan _2 15:04:05"
	if len(d) > len(stamp) && d[len(stamp)] == ' ' {
		if _, err := time.Parse(stamp, string(d[:len(stamp)])); err == nil {
			f.Timestamp = string(d[:len(stamp)])
			d = d[len(stamp)+1:]
			if sp := bytes.IndexByte(d, ' '); sp > 0 {
				f.Hostname, d = string(d[:sp]), d[sp+1:]
			}
		}
	}
	// TAG: up to 32 alphanumerics and a few punctuation characters, then "[pid]" and/or ":".
	i := 0
	for i < len(d) && i <= 48 && d[i] != ':' && d[i] != '[' && d[i] != ' ' {
		i++
	}
	if i > 0 && i < len(d) && (d[i] == ':' || d[i] == '[') {
		tag, rest := string(d[:i]), d[i:]
		if rest[0] == '[' {
			end := bytes.IndexByte(rest, ']')
			if end < 0 {
				f.Message = string(d)
				return
			}
			f.ProcID, rest = string(rest[1:end]), rest[end+1:]
		}
		if len(rest) > 0 && rest[0] == ':' {
			f.App = tag
			f.Message = string(bytes.TrimPrefix(rest[1:], []byte(" ")))
			return
		}
		f.ProcID = ""
	}
	f.Message = string(d)
}
