package config

import (
	"fmt"
	"strings"

	"github.com/hawk-agents/hawk/internal/auth"
)

// CredentialList returns the credentials of auth.credentials and auth.tokens (one unbound
// credential per token, named auth.tokens[i]); the tokens file's come from the
// server, which reads and watches it. Validate has checked every line.
func (a *Auth) CredentialList() ([]auth.Credential, error) {
	out := make([]auth.Credential, 0, len(a.Credentials)+len(a.Tokens))
	for i, line := range a.Credentials {
		c, err := auth.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("auth.credentials[%d]: %w", i, err)
		}
		out = append(out, c)
	}
	for i, t := range a.Tokens {
		c, err := auth.UnboundToken(fmt.Sprintf("auth.tokens[%d]", i), t)
		if err != nil {
			return nil, fmt.Errorf("auth.tokens[%d]: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// validateAuth checks the auth.* keys without reading the tokens file: that is
// the machine's, not the configuration's. Reasons never quote a secret.
func validateAuth(a *Auth, bad func(key, format string, args ...any)) {
	var creds []auth.Credential
	for i, line := range a.Credentials {
		c, err := auth.ParseLine(line)
		if err != nil {
			bad("auth.credentials", "entry %d: %s", i, err)
			continue
		}
		creds = append(creds, c)
	}
	for i, t := range a.Tokens {
		c, err := auth.UnboundToken(fmt.Sprintf("auth.tokens[%d]", i), t)
		if err != nil {
			bad("auth.tokens", "token %d: %s", i, err)
			continue
		}
		creds = append(creds, c)
	}
	if strings.ContainsRune(a.TokensFile, 0) {
		bad("auth.tokens_file", "must not contain NUL")
	}
	if _, err := auth.NewSet(creds); err != nil {
		bad("auth.credentials", "%s", err)
	}
}
