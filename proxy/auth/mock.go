package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync/atomic"
)

// mockSecret plays the role of PostgreSQL's mock_auth_nonce (pg_control):
// the server secret that, hashed with a user name, gives the salt shown to a
// user who does not exist. It starts random per process.
var mockSecret atomic.Pointer[[]byte]

func init() {
	b := make([]byte, 32)
	rand.Read(b) // never fails (Go 1.24+)
	mockSecret.Store(&b)
}

// SetMockSecret replaces the secret behind the deterministic salts. Sluice
// instances behind one address should share it (config auth.mock_secret),
// or a client could spot unknown users by comparing salts between
// instances. Call it before parsing plaintext secrets: their salts derive
// from it too (see ParseSecret). An empty secret keeps the current one.
func SetMockSecret(secret []byte) {
	if len(secret) == 0 {
		return
	}
	b := append([]byte(nil), secret...)
	mockSecret.Store(&b)
}

// mockSalt is scram_mock_salt in auth-scram.c: SHA-256 of the user name
// and the mock secret, cut to SCRAM_DEFAULT_SALT_LEN. The same user always
// gets the same salt, so repeated probes cannot tell a real user (whose
// salt is stored) from a missing one.
func mockSalt(user string) []byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write(*mockSecret.Load())
	return h.Sum(nil)[:scramSaltLen]
}

// mockKeys is mock_scram_secret: a plausible salt and iteration count and
// zero keys that no proof can match. The exchange still computes the proof
// so a missing user costs the same time as a wrong password.
func mockKeys(user string) *scramKeys {
	salt := mockSalt(user)
	return &scramKeys{
		salt:       salt,
		saltB64:    base64.StdEncoding.EncodeToString(salt),
		iterations: DefaultSCRAMIterations,
	}
}
