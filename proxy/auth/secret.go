package auth

import (
	"errors"
	"fmt"
	"strings"
)

type secretKind uint8

const (
	secretNone  secretKind = iota // no password: every login fails
	secretPlain                   // the password itself
	secretMD5                     // "md5" + hex(md5(password || user))
	secretSCRAM                   // SCRAM-SHA-256 verifier
)

// Secret is what a client's password is checked against: a plaintext
// password, or a verifier exactly as PostgreSQL stores it in
// pg_authid.rolpassword. Its zero value is "no password", which fails every
// login like a role with a NULL rolpassword. It is immutable and cheap to
// copy; its String and GoString never print the password.
type Secret struct {
	kind  secretKind
	plain string
	md5   string     // the md5 verifier; derived for a plaintext secret
	scram *scramKeys // the SCRAM keys; derived for a plaintext secret
}

// ParseSecret classifies s the way PostgreSQL's get_password_type does: an
// md5 verifier, a SCRAM-SHA-256 verifier, or otherwise a plaintext password.
// Text that starts like a verifier but does not parse is an error rather
// than a password, so a mangled verifier in a config is caught at load time
// instead of becoming a password equal to its own text.
//
// For a plaintext password the SCRAM keys (4096 iterations) and the md5
// verifier are derived here, once, so a SCRAM login costs HMACs rather than
// a PBKDF2. The salt is the user's deterministic mock salt (see
// SetMockSecret): stable across reloads and instances, and the same salt a
// missing user of that name would be shown.
func ParseSecret(user, s string) (Secret, error) {
	return parseSecret(user, s, true)
}

// parseSecret with derive=false only classifies and checks s: Validate uses
// it so that checking a config does not run a PBKDF2 per user.
func parseSecret(user, s string, derive bool) (Secret, error) {
	switch {
	case s == "":
		return Secret{}, errors.New("empty password (PostgreSQL refuses empty passwords too)")
	case strings.HasPrefix(s, "SCRAM-SHA-256$"):
		k, err := parseSCRAMVerifier(s)
		if err != nil {
			return Secret{}, err
		}
		return Secret{kind: secretSCRAM, scram: k}, nil
	case isMD5Verifier(s):
		return Secret{kind: secretMD5, md5: s}, nil
	case len(s) == md5VerifierLen && strings.HasPrefix(s, "md5"):
		return Secret{}, fmt.Errorf("looks like an md5 verifier but is not 32 lowercase hex digits")
	case !derive:
		return Secret{kind: secretPlain, plain: s}, nil
	}
	return Secret{
		kind:  secretPlain,
		plain: s,
		md5:   MD5Verifier(user, s),
		scram: deriveSCRAMKeys(s, mockSalt(user), DefaultSCRAMIterations),
	}, nil
}

// Plaintext returns the password when the secret is one: the proxy logs in
// to the server with the client's password when no server password is
// configured, which only works if it knows it.
func (s Secret) Plaintext() (string, bool) {
	return s.plain, s.kind == secretPlain
}

// Kind names the secret's form for logs and the admin API: "none",
// "plaintext", "md5" or "scram-sha-256".
func (s Secret) Kind() string {
	switch s.kind {
	case secretPlain:
		return "plaintext"
	case secretMD5:
		return "md5"
	case secretSCRAM:
		return "scram-sha-256"
	}
	return "none"
}

// String keeps secrets out of logs: only the kind is printed.
func (s Secret) String() string { return "auth.Secret(" + s.Kind() + ")" }

// GoString keeps %#v from printing the password.
func (s Secret) GoString() string { return s.String() }
