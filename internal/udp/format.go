package udp

import "bytes"

// Format names, as udp.listeners[].format spells them.
const (
	FormatLines  = "lines"
	FormatSyslog = "syslog"
	FormatReport = "report" // hawk's REPORT in a datagram (report.go), not parsed here
)

// parser turns one datagram into a record's payload, appended to dst. ok is false
// when the datagram did not parse and its raw bytes were stored instead.
type parser func(dst, d []byte) (payload []byte, ok bool)

func parserFor(format string) parser {
	if format == FormatSyslog {
		return parseSyslog
	}
	return parseLines
}

// parseLines stores a datagram as sent, without one trailing line break (scripts
// send "echo ... | nc -u").
func parseLines(dst, d []byte) ([]byte, bool) {
	d = bytes.TrimSuffix(d, []byte("\n"))
	d = bytes.TrimSuffix(d, []byte("\r"))
	return append(dst, d...), true
}
