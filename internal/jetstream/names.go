package jetstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// ClientIDPlaceholder is replaced in the subject template by the escaped client id.
const ClientIDPlaceholder = "<client_id>"

// EscapeToken makes a client id one NATS subject token: bytes outside A-Z a-z 0-9
// '-' '_' become %XX (upper-case hex), so '.', '*', '>', spaces and '%' itself can
// never split the token or act as a wildcard, and the mapping is reversible
// (UnescapeToken). Plain ids ("agent-0042") are unchanged.
func EscapeToken(id string) string {
	plain := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	n := 0
	for i := 0; i < len(id); i++ {
		if !plain(id[i]) {
			n++
		}
	}
	if n == 0 && id != "" {
		return id
	}
	if id == "" {
		return "%" // an empty token is not a valid subject; HELLO refuses empty ids anyway
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(id)+2*n)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// UnescapeToken reverses EscapeToken.
func UnescapeToken(tok string) (string, error) {
	if !strings.Contains(tok, "%") {
		return tok, nil
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '%' {
			b.WriteByte(tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", errors.New("jetstream: truncated escape in subject token " + strconv.Quote(tok))
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil {
			return "", errors.New("jetstream: bad escape in subject token " + strconv.Quote(tok))
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// MsgID is a report's Nats-Msg-Id: "<client_id>:<seq>". A client id may itself
// contain ':' (legacy ids do: "ffff:10.1.2.3:54321"), but seq is decimal digits
// after the LAST ':', so the pair is recovered unambiguously (ParseMsgID) and two
// different pairs never share an id.
func MsgID(clientID string, seq uint64) string {
	return clientID + ":" + strconv.FormatUint(seq, 10)
}

// ParseMsgID splits a MsgID at its last ':'.
func ParseMsgID(id string) (clientID string, seq uint64, err error) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", 0, errors.New("jetstream: message id without ':': " + strconv.Quote(id))
	}
	seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, errors.New("jetstream: message id with a bad seq: " + strconv.Quote(id))
	}
	return id[:i], seq, nil
}

// Subject renders a subject template for one client id.
func Subject(template, clientID string) string {
	return strings.ReplaceAll(template, ClientIDPlaceholder, EscapeToken(clientID))
}

// lineClientID reads the client_id of a record line, which begins
// {"client_id":"…", (the ingest record format fixes the key order). It returns the
// raw quoted JSON string too, so that a caller can compare it cheaply with the
// previous line's.
func lineClientID(line []byte) (id string, raw []byte, err error) {
	const prefix = `{"client_id":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return "", nil, errors.New("jetstream: record line does not start with client_id")
	}
	// The string ends at the first '"' not escaped by a backslash.
	i := len(prefix)
	for ; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == '"' {
			break
		}
	}
	if i >= len(line) {
		return "", nil, errors.New("jetstream: record line with an unterminated client_id")
	}
	raw = line[len(prefix)-1 : i+1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), raw, nil
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", nil, errors.New("jetstream: record line with a bad client_id: " + err.Error())
	}
	return id, raw, nil
}
