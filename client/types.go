package client

import "github.com/hawk-agents/hawk/internal/protocol"

// The wire types an agent meets, as aliases: the protocol package is internal, and
// an agent must be able to name them (errors.As(err, new(*client.ServerError))).
type (
	// ServerError is the server's ERROR: why it refused the handshake or closed
	// the connection.
	ServerError = protocol.ErrorPayload
	// Welcome is what the server said when the connection was accepted.
	Welcome = protocol.Welcome
	// Nack is the server's refusal of one report.
	Nack = protocol.Nack
	// Code names an ERROR or NACK condition.
	Code = protocol.Code
)

// Codes an agent may want to act on; docs/PROTOCOL.md lists them all.
const (
	CodeUnauthorized  = protocol.CodeUnauthorized
	CodeTokenRevoked  = protocol.CodeTokenRevoked
	CodeFrameTooLarge = protocol.CodeFrameTooLarge
	CodeBadPayload    = protocol.CodeBadPayload
)
