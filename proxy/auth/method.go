package auth

import (
	"fmt"
	"strings"
)

// Method is how clients prove who they are, named as in pg_hba.conf so that
// operators can carry their PostgreSQL setting over unchanged.
type Method string

const (
	// MethodSCRAM is SCRAM-SHA-256 (RFC 7677), PostgreSQL's default since 14:
	// the password never crosses the wire and the client verifies the server.
	MethodSCRAM Method = "scram-sha-256"
	// MethodMD5 is the legacy challenge for old drivers. As in PostgreSQL, a
	// user whose secret is a SCRAM verifier is asked for SCRAM instead.
	MethodMD5 Method = "md5"
	// MethodPassword sends the password in clear text: only sane over TLS,
	// but it works with every secret kind.
	MethodPassword Method = "password"
	// MethodTrust lets anyone in without a password. The proxy refuses it on
	// non-loopback listeners; this package only names it.
	MethodTrust Method = "trust"
)

// DefaultMethod is used when the configuration names none.
const DefaultMethod = MethodSCRAM

// ParseMethod accepts the pg_hba.conf spellings, case-insensitively, and
// the empty string for DefaultMethod.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return DefaultMethod, nil
	case MethodSCRAM, MethodMD5, MethodPassword, MethodTrust:
		return m, nil
	default:
		return "", fmt.Errorf("unknown authentication method %q (want scram-sha-256, md5, password or trust)", s)
	}
}

func (m Method) String() string { return string(m) }
