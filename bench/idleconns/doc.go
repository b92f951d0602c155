// Command idleconns measures what an idle client connection costs a
// pooler: it reads the pooler's resident memory (VmRSS in
// /proc/<pid>/status), opens N client connections through it with pgconn
// (full startup and authentication, then nothing), waits for the pooler to
// settle, reads VmRSS again and prints the difference per connection as
// JSON on stdout. It then runs SELECT 1 on a sample of the connections, so
// a pooler that accepted logins but cannot serve them does not pass
// unnoticed, and closes everything it opened.
//
// bench/run.sh runs it against Sluice and PgBouncer in transaction mode,
// where thousands of clients share a small server pool. It only opens
// client connections and reads /proc; it never touches the servers.
package main
