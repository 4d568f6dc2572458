package reload

import (
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
)

// SettingsFrom extracts what connections obey from a configuration. It fails only
// when server_id is empty and the hostname cannot be read: clients must not be
// told an empty server id.
func SettingsFrom(c *config.Config, version string) (*conn.Settings, error) {
	id, err := c.EffectiveServerID()
	if err != nil {
		return nil, err
	}
	tokens := make(map[string]struct{}, len(c.Auth.Tokens))
	for _, t := range c.Auth.Tokens {
		tokens[t] = struct{}{}
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
		Tokens:            tokens,
		DrainTimeout:      c.Drain.Timeout,
		DrainSpread:       c.Drain.Spread,
		HandshakeRate:     c.Limits.HandshakeRate,
		ClientIDFrom:      c.TLS.ClientIDFrom,
		ExpiryGoaway:      c.TLS.ExpiryGoaway,
	}, nil
}
