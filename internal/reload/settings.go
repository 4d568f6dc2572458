package reload

import (
	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
)

// SettingsFrom extracts what connections obey from a configuration and the tokens
// file (nil: none). It fails when server_id is empty and the hostname cannot be
// read (clients must not be told an empty server id), or when the tokens file's
// credentials clash with the configuration's (a name or a secret twice).
func SettingsFrom(c *config.Config, version string, tokens *auth.File) (*conn.Settings, error) {
	id, err := c.EffectiveServerID()
	if err != nil {
		return nil, err
	}
	set, err := AuthSet(c, tokens)
	if err != nil {
		return nil, err
	}
	return &conn.Settings{
		ServerID:          id,
		Version:           version,
		HandshakeTimeout:  c.Handshake.Timeout,
		HeartbeatInterval: c.Heartbeat.Interval,
		HeartbeatTimeout:  c.HeartbeatTimeout(),
		WriteTimeout:      c.Limits.WriteTimeout,
		MaxConns:          c.Limits.MaxConns,
		MaxFrameSize:      c.Limits.MaxFrameSize,
		MaxInFlight:       c.Limits.MaxInFlight,
		FrameTimeout:      c.Limits.FrameTimeout,
		Auth:              set,
		AuthOpen:          c.Auth.Open,
		DrainTimeout:      c.Drain.Timeout,
		DrainSpread:       c.Drain.Spread,
		HandshakeRate:     c.Limits.HandshakeRate,
		ClientIDFrom:      c.TLS.ClientIDFrom,
		ExpiryGoaway:      c.TLS.ExpiryGoaway,
	}, nil
}
