package auth

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/jackc/pgx/v5/pgproto3"
)

// passwordExchange is CheckPasswordAuth: ask for the password in clear and
// check it with plain_crypt_verify, against any kind of secret.
func passwordExchange(be Conn, user string, secret Secret, logDetail string) error {
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return disconnected(err)
	}
	pw, err := receivePassword(be, pgproto3.AuthTypeCleartextPassword)
	if err != nil {
		return err
	}
	if secret.kind == secretNone {
		return authFailed(user, logDetail)
	}
	if !verifyPlain(user, secret, pw) {
		return authFailed(user, "password does not match")
	}
	return nil
}

// verifyPlain checks a clear-text password in constant time for its
// length-independent part: plaintext secrets are compared as SHA-256
// digests so that the comparison does not stop at the first differing byte
// or reveal the stored password's length.
func verifyPlain(user string, secret Secret, pw string) bool {
	switch secret.kind {
	case secretPlain:
		a, b := sha256.Sum256([]byte(pw)), sha256.Sum256([]byte(secret.plain))
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	case secretMD5:
		return subtle.ConstantTimeCompare([]byte(MD5Verifier(user, pw)), []byte(secret.md5)) == 1
	case secretSCRAM:
		return verifySCRAMPlain(secret.scram, pw)
	}
	return false
}
