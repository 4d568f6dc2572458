// Package formats names the legacy wire formats with each one's largest frame data
// and listener defaults.
//
// It is the one table of these limits: internal/config checks and defaults
// legacy.listeners with it, and internal/legacy's codecs are bound by it. It
// imports nothing of hawk's, so the config does not depend on the listeners.
package formats

import "time"

// The formats' names, as legacy.listeners[i].format spells them.
const (
	FFFF    = "ffff"    // the metrics agent
	C8C9    = "c8c9"    // long-connection devices
	Headers = "headers" // a minimal framing
	File    = "file"    // the naive file sender: a name, "ok", the bytes until EOF
)

// MaxFFFFData is the largest data an ffff frame can carry: its length field is 16 bits.
const MaxFFFFData = 0xFFFF

// maxLongData bounds the formats whose length field is wider than their data may
// be: hawk's largest frame (limits.max_frame_size's ceiling, protocol.MaxPayloadLimit).
const maxLongData = 64 << 20

// Spec is one format's limits.
type Spec struct {
	Name string
	// MaxData is the largest data a frame can carry at all; a listener's
	// max_frame_size may only lower it.
	MaxData int
	// DefaultMaxFrameSize and DefaultIdleTimeout are a listener's max_frame_size
	// and idle_timeout when the config leaves them out.
	DefaultMaxFrameSize int
	DefaultIdleTimeout  time.Duration
}

var specs = [...]Spec{
	{Name: FFFF, MaxData: MaxFFFFData, DefaultMaxFrameSize: MaxFFFFData, DefaultIdleTimeout: 10 * time.Second}, // agents heartbeat every 2 s
	{Name: C8C9, MaxData: maxLongData, DefaultMaxFrameSize: 1 << 20, DefaultIdleTimeout: 5 * time.Minute},
	{Name: Headers, MaxData: maxLongData, DefaultMaxFrameSize: 1 << 20, DefaultIdleTimeout: 5 * time.Minute},
	// file has no frames (max_frame_size does not apply); the idle timeout cuts a
	// sender silent that long, and a cut file is not published.
	{Name: File, MaxData: maxLongData, DefaultMaxFrameSize: 1 << 20, DefaultIdleTimeout: 5 * time.Minute},
}

// Lookup returns the format called name; ok is false for a name that is none.
func Lookup(name string) (s Spec, ok bool) {
	for _, s := range specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}
