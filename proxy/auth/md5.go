package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"

	"github.com/jackc/pgx/v5/pgproto3"
)

// maxPasswordLen is PG_MAX_AUTH_TOKEN_LENGTH, the cap on a password packet.
const maxPasswordLen = 65535

// md5Exchange is CheckMD5Auth: a random 4-byte salt, then the client sends
// "md5" + hex(md5(hex(md5(password || user)) || salt)). verifier is the
// user's md5 verifier, or "" when the exchange is doomed (unknown user),
// which still reads the answer before failing, so nothing shows the user is
// missing.
func md5Exchange(be Conn, user, verifier, logDetail string) error {
	var salt [4]byte
	rand.Read(salt[:]) // never fails (Go 1.24+)
	be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if err := be.Flush(); err != nil {
		return disconnected(err)
	}
	got, err := receivePassword(be, pgproto3.AuthTypeMD5Password)
	if err != nil {
		return err
	}
	if verifier == "" {
		return authFailed(user, logDetail)
	}
	want := md5Response(verifier, salt)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return authFailed(user, "md5 response does not match")
	}
	return nil
}

// md5Response is what a client holding the password answers to salt,
// computed from the stored verifier (md5_crypt_verify in crypt.c).
func md5Response(verifier string, salt [4]byte) string {
	sum := md5.Sum(append([]byte(verifier[3:]), salt[:]...))
	return "md5" + hex.EncodeToString(sum[:])
}

// receivePassword is recv_password_packet: one PasswordMessage, not empty.
func receivePassword(be Conn, authType uint32) (string, error) {
	msg, err := receive(be, authType, "password")
	if err != nil {
		return "", err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return "", protocolViolation("expected password response, got message type 112", "")
	}
	if len(pm.Password) > maxPasswordLen {
		return "", protocolViolation("invalid message length", "")
	}
	if pm.Password == "" {
		// An empty password is refused before any lookup (libpq never sends
		// one; other clients might, and no stored secret can match it).
		return "", &Error{Severity: "FATAL", Code: CodeInvalidPassword,
			Message: "empty password returned by client"}
	}
	return pm.Password, nil
}
