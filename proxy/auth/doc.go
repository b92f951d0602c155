// Package auth authenticates Sluice's clients the way PostgreSQL does, so a
// driver cannot tell the proxy from the server: SCRAM-SHA-256 (the
// default), md5 and clear-text password exchanges, spoken with pgx's
// pgproto3.Backend, against secrets that are either plaintext passwords or
// verifiers exactly as pg_authid.rolpassword stores them.
//
// It owns: the challenge/response exchanges (Authenticate), the secret
// formats (ParseSecret, SCRAMVerifier, MD5Verifier), PostgreSQL's rules on
// which method works with which secret, the mock exchange that keeps
// unknown users indistinguishable from wrong passwords, the PgBouncer-style
// auth_query lookup with its cache (AuthQuery), and its config section.
// Error wording and SQLSTATEs follow src/backend/libpq/auth.c,
// auth-sasl.c and auth-scram.c.
//
// It must not touch: the startup message, TLS, AuthenticationOk and what
// follows it, or the decision to allow trust on a listener; those belong to
// proxy/, which calls Authenticate after reading the StartupMessage and
// owns the connection throughout. It never logs; errors are values
// (*Error, with a LogDetail for the operator) and the caller logs once.
package auth
