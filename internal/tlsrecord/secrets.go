package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"sync"
)

// Secrets is one connection's tls.Config.KeyLogWriter: it keeps that connection's
// TLS 1.3 application traffic secrets in memory, checks every line names the same
// client random, and writes nothing anywhere.
type Secrets struct {
	mu     sync.Mutex
	random []byte
	client []byte // CLIENT_TRAFFIC_SECRET_0
	server []byte // SERVER_TRAFFIC_SECRET_0
}

var errKeyLog = errors.New("tlsrecord: key log line not from this connection")

// Write takes one NSS key log line (crypto/tls writes each in one call).
func (s *Secrets) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return 0, errKeyLog
	}
	var dst *[]byte
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		dst = &s.client
	case "SERVER_TRAFFIC_SECRET_0":
		dst = &s.server
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	random := make([]byte, hex.DecodedLen(len(f[1])))
	if _, err := hex.Decode(random, f[1]); err != nil {
		return 0, errKeyLog
	}
	if s.random == nil {
		s.random = random
	} else if !bytes.Equal(s.random, random) {
		return 0, errKeyLog
	}
	if dst != nil {
		secret := make([]byte, hex.DecodedLen(len(f[2])))
		if _, err := hex.Decode(secret, f[2]); err != nil {
			return 0, errKeyLog
		}
		clear(*dst)
		*dst = secret
	}
	return len(line), nil
}

// traffic returns the application traffic secrets captured so far (nil until
// crypto/tls derived them).
func (s *Secrets) traffic() (client, server []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client, s.server
}

// Drop clears the secrets.
func (s *Secrets) Drop() {
	s.mu.Lock()
	clear(s.client)
	clear(s.server)
	s.client, s.server = nil, nil
	s.mu.Unlock()
}

// Capture returns a copy of cfg whose KeyLogWriter is s, for one connection
// (what its GetConfigForClient returns).
func Capture(cfg *tls.Config, s *Secrets) *tls.Config {
	c := cfg.Clone()
	c.KeyLogWriter = s
	return c
}
