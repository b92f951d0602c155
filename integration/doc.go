// Package integration tests Sluice end to end: it builds the real binary,
// starts it as a process with a generated config in front of the test
// PostgreSQL (internal/testenv, started by scripts/testenv.sh), and drives
// it with the clients people use (psql, pgbench, pgx) and with raw protocol
// bytes, comparing with a direct connection where the answer must be the
// same. It owns no production code and imports none of Sluice's packages
// except internal/testenv: everything goes through the wire, as for a user.
package integration
