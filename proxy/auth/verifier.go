package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

const (
	// scramKeyLen is SCRAM_KEY_LEN: the SHA-256 output size.
	scramKeyLen = sha256.Size
	// DefaultSCRAMIterations is SCRAM_SHA_256_DEFAULT_ITERATIONS, the
	// default of PostgreSQL's scram_iterations setting.
	DefaultSCRAMIterations = 4096
	// scramSaltLen is SCRAM_DEFAULT_SALT_LEN.
	scramSaltLen = 16
	// md5VerifierLen is MD5_PASSWD_LEN: "md5" and 32 hex digits.
	md5VerifierLen = 35
)

// scramKeys is what a SCRAM-SHA-256 verifier holds, decoded. It is
// immutable once built and shared between copies of a Secret.
type scramKeys struct {
	salt       []byte
	saltB64    string
	iterations int
	storedKey  [scramKeyLen]byte
	serverKey  [scramKeyLen]byte
}

// deriveSCRAMKeys runs PBKDF2 once (the expensive part of SCRAM) and keeps
// what the server needs: scram_build_secret in src/common/scram-common.c.
func deriveSCRAMKeys(password string, salt []byte, iterations int) *scramKeys {
	salted := saltedPassword(password, salt, iterations)
	k := &scramKeys{
		salt:       append([]byte(nil), salt...),
		saltB64:    base64.StdEncoding.EncodeToString(salt),
		iterations: iterations,
	}
	clientKey := hmacSHA256(salted, "Client Key")
	k.storedKey = sha256.Sum256(clientKey)
	copy(k.serverKey[:], hmacSHA256(salted, "Server Key"))
	return k
}

// saltedPassword is SaltedPassword := Hi(Normalize(password), salt, i).
func saltedPassword(password string, salt []byte, iterations int) []byte {
	key, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, scramKeyLen)
	if err != nil {
		// pbkdf2.Key fails only in FIPS-140 mode for short keys or salts,
		// or for a key length out of range; none applies to SCRAM's.
		panic("BUG: pbkdf2: " + err.Error())
	}
	return key
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

func (k *scramKeys) verifier() string {
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", k.iterations, k.saltB64,
		base64.StdEncoding.EncodeToString(k.storedKey[:]),
		base64.StdEncoding.EncodeToString(k.serverKey[:]))
}

// SCRAMVerifier returns the SCRAM-SHA-256 verifier of password exactly as
// PostgreSQL stores it in pg_authid.rolpassword, so operators can put a
// verifier rather than a password in Sluice's config. A nil salt means a
// fresh random 16-byte one; iterations <= 0 means DefaultSCRAMIterations.
func SCRAMVerifier(password string, salt []byte, iterations int) string {
	if salt == nil {
		salt = make([]byte, scramSaltLen)
		rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	}
	if iterations <= 0 {
		iterations = DefaultSCRAMIterations
	}
	return deriveSCRAMKeys(password, salt, iterations).verifier()
}

// MD5Verifier returns PostgreSQL's md5 password hash, "md5" followed by
// hex(md5(password || user)), as stored by password_encryption = md5.
func MD5Verifier(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return "md5" + hex.EncodeToString(sum[:])
}

// isMD5Verifier follows get_password_type in src/backend/libpq/crypt.c.
func isMD5Verifier(s string) bool {
	if len(s) != md5VerifierLen || !strings.HasPrefix(s, "md5") {
		return false
	}
	for _, c := range s[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseSCRAMVerifier follows parse_scram_secret in auth-scram.c:
// SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>, base64 fields.
func parseSCRAMVerifier(s string) (*scramKeys, error) {
	scheme, rest, ok := strings.Cut(s, "$")
	if !ok || scheme != "SCRAM-SHA-256" {
		return nil, fmt.Errorf("not a SCRAM-SHA-256 verifier")
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, fmt.Errorf("SCRAM verifier: missing keys")
	}
	iterStr, saltStr, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return nil, fmt.Errorf("SCRAM verifier: missing salt")
	}
	storedStr, serverStr, ok := strings.Cut(keys, ":")
	if !ok {
		return nil, fmt.Errorf("SCRAM verifier: missing server key")
	}
	iterations, err := strconv.Atoi(iterStr)
	if err != nil || iterations <= 0 {
		return nil, fmt.Errorf("SCRAM verifier: bad iteration count %q", iterStr)
	}
	salt, err := base64.StdEncoding.DecodeString(saltStr)
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("SCRAM verifier: bad salt")
	}
	k := &scramKeys{salt: salt, saltB64: saltStr, iterations: iterations}
	if err := decodeKey(k.storedKey[:], storedStr); err != nil {
		return nil, fmt.Errorf("SCRAM verifier: bad stored key")
	}
	if err := decodeKey(k.serverKey[:], serverStr); err != nil {
		return nil, fmt.Errorf("SCRAM verifier: bad server key")
	}
	return k, nil
}

func decodeKey(dst []byte, s string) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("key is %d bytes, want %d", len(b), len(dst))
	}
	copy(dst, b)
	return nil
}
