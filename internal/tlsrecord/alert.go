package tlsrecord

import "fmt"

// Alert is a TLS alert description (RFC 8446 6).
type Alert uint8

// The alerts the record layer sends or names.
const (
	AlertCloseNotify       Alert = 0
	AlertUnexpectedMessage Alert = 10
	AlertBadRecordMAC      Alert = 20
	AlertRecordOverflow    Alert = 22
	AlertIllegalParameter  Alert = 47
	AlertDecodeError       Alert = 50
	AlertProtocolVersion   Alert = 70
	AlertInternalError     Alert = 80
)

func (a Alert) String() string {
	switch a {
	case AlertCloseNotify:
		return "close_notify"
	case AlertUnexpectedMessage:
		return "unexpected_message"
	case AlertBadRecordMAC:
		return "bad_record_mac"
	case AlertRecordOverflow:
		return "record_overflow"
	case AlertIllegalParameter:
		return "illegal_parameter"
	case AlertDecodeError:
		return "decode_error"
	case AlertProtocolVersion:
		return "protocol_version"
	case AlertInternalError:
		return "internal_error"
	}
	return fmt.Sprintf("alert(%d)", uint8(a))
}

// LocalError is why this end ended the session: it sent Alert, then closed.
type LocalError struct {
	Alert Alert
	Why   string
}

func (e *LocalError) Error() string { return "tls: " + e.Why + " (sent " + e.Alert.String() + ")" }

// RemoteError is a fatal alert the peer sent.
type RemoteError struct{ Alert Alert }

func (e *RemoteError) Error() string { return "tls: peer sent alert " + e.Alert.String() }

func fail(a Alert, format string, args ...any) *LocalError {
	return &LocalError{Alert: a, Why: fmt.Sprintf(format, args...)}
}
