package proxy_test

// The inline relay (inline.go) must be invisible: replies slower than its
// wait, COPY FROM STDIN, transaction blocks and requests larger than the
// socket buffers all go on where it stops, with the same results as a
// direct connection.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
)

// inlineHandovers reads sluice_proxy_inline_handovers_total{reason}.
func inlineHandovers(t *testing.T, reason string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_proxy_inline_handovers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sluice_proxy_inline_handovers_total{reason=%q}", reason)
	return 0
}

func TestInlineRelayHandovers(t *testing.T) {
	db := freshDB(t)
	h := startSluice(t, "transaction", 1)
	direct := connect(t, directDSN(h.pg, db))
	c := connect(t, h.dsn(db))
	mustExec(t, direct, "CREATE TABLE inl (id int, v text)")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	rowsOf := func(conn *pgx.Conn, sql string) string {
		t.Helper()
		rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var b strings.Builder
		for rows.Next() {
			fmt.Fprintln(&b, rows.RawValues())
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return b.String()
	}
	same := func(sql string) {
		t.Helper()
		want, got := rowsOf(direct, sql), rowsOf(c, sql)
		if got != want {
			t.Fatalf("%s: through Sluice %d bytes of rows, direct %d", sql, len(got), len(want))
		}
	}

	// A reply that pauses mid-stream for longer than the inline wait,
	// with rows larger than the server's read buffer around the pause.
	waits := inlineHandovers(t, "wait")
	same("SELECT i, repeat(md5(i::text), 1200), CASE WHEN i = 40 THEN pg_sleep(0.05)::text END FROM generate_series(1, 80) i")
	if inlineHandovers(t, "wait") == waits {
		t.Fatal("the slow reply was not handed over: the test does not cover the handover")
	}

	// COPY FROM STDIN, the way psql sends it: the client waits for
	// CopyInResponse, and the server waits for the client's data.
	waits = inlineHandovers(t, "wait")
	raw := dialRaw(t, h.dsn(db))
	copyIn := func(rc *rawConn) []string {
		t.Helper()
		rc.send(msgQuery("COPY inl FROM STDIN"))
		got := []string{rc.recv()}
		rc.send(&pgproto3.CopyData{Data: []byte("1\tone\n2\ttwo\n")}, &pgproto3.CopyDone{})
		return append(got, rc.untilReady(1)...)
	}
	sameTranscript(t, "COPY FROM STDIN", copyIn(dialRaw(t, directDSN(h.pg, db))), copyIn(raw))
	if inlineHandovers(t, "wait") == waits {
		t.Fatal("COPY FROM STDIN was not handed over")
	}
	// pgx sends its data without waiting for CopyInResponse.
	src := make([][]any, 5000)
	for i := range src {
		src[i] = []any{int32(i), fmt.Sprintf("row %d", i)}
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"inl"}, []string{"id", "v"}, pgx.CopyFromRows(src))
	if err != nil || n != int64(len(src)) {
		t.Fatalf("CopyFrom: %d rows, %v", n, err)
	}
	same("SELECT count(*), sum(id), max(v) FROM inl")

	// A transaction block keeps the server with the client: the relay
	// goroutine takes over after BEGIN.
	held, waits := inlineHandovers(t, "held"), inlineHandovers(t, "wait")
	for _, q := range []string{"BEGIN", "INSERT INTO inl VALUES (-1, 'tx')", "COMMIT"} {
		raw.query(q) // each waits for its reply, as an application does
	}
	// (A BEGIN slower than the inline wait, on a loaded machine, is
	// handed over for that reason instead.)
	if inlineHandovers(t, "held") == held && inlineHandovers(t, "wait") == waits {
		t.Fatal("BEGIN did not hand the server over")
	}
	// So does a client pinned to its server (LISTEN), and the relay
	// goroutine relays what the server sends unasked.
	held, waits = inlineHandovers(t, "held"), inlineHandovers(t, "wait")
	listener := connect(t, h.dsn(db))
	mustExec(t, listener, "LISTEN inl_channel")
	if inlineHandovers(t, "held") == held && inlineHandovers(t, "wait") == waits {
		t.Fatal("a pinned client did not hand its server over")
	}
	mustExec(t, direct, "NOTIFY inl_channel, 'hello'")
	note, err := listener.WaitForNotification(ctx)
	if err != nil || note.Payload != "hello" {
		t.Fatalf("notification: %+v, %v", note, err)
	}
	listener.Close(ctx)
	same("SELECT id, v FROM inl WHERE id < 0")

	// A request far larger than the socket buffers: the write inside the
	// read's wait meets a full socket and finishes on the ordinary path.
	big := strings.Repeat("x", 8<<20)
	same("SELECT length('" + big + "'), md5('" + big + "')")

	// After all of it the pool's one server still serves.
	same("SELECT 1")
}
