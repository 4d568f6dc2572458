package jetstream

import (
	"strconv"
	"strings"
)

// ClientIDPlaceholder is replaced in the subject template by the escaped client id.
const ClientIDPlaceholder = "<client_id>"

// EscapeToken makes a client id one NATS subject token: bytes outside A-Z a-z 0-9
// '-' '_' become %XX (upper-case hex), so '.', '*', '>', spaces and '%' itself can
// never split the token or act as a wildcard, and the mapping is reversible (two
// ids never share a subject). Plain ids ("agent-0042") are unchanged.
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

// MsgID is a report's Nats-Msg-Id: "<client_id>:<seq>". A client id may itself
// contain ':' (legacy ids do: "ffff:10.1.2.3:54321"), but seq is decimal digits
// after the LAST ':', so the pair is recovered unambiguously and two different pairs
// never share an id.
func MsgID(clientID string, seq uint64) string {
	return clientID + ":" + strconv.FormatUint(seq, 10)
}

// Subject renders a subject template for one client id.
func Subject(template, clientID string) string {
	return strings.ReplaceAll(template, ClientIDPlaceholder, EscapeToken(clientID))
}
