package proxy

import "bytes"

// Transparent retry of a stale prepared statement. After DDL changes what a
// prepared "SELECT *" returns, PostgreSQL refuses to run the old plan
// (plancache.c, RevalidateCachedQuery: "cached plan must not change result
// type", 0A000) until the statement is prepared again. Sluice owns the
// server-side copies of client statements in transaction mode, so when a
// Bind of one fails that way it closes and re-parses the copy and sends
// the rest of the batch again; the client sees the new rows, never the
// error. It does so only when nothing can run twice or be seen twice:
//   - the batch began outside a transaction block (status 'I'), so the
//     error rolled back the implicit transaction and nothing else;
//   - the failing Bind is the client's first message since its last Sync
//     (no Execute before it, no reply the client already has);
//   - the batch ends with that Sync and is the last thing sent to the
//     server, so the retry goes out right behind it;
//   - it is retried once.
// Anywhere else (inside BEGIN ... COMMIT, after other statements of a
// pipeline) the error reaches the client unchanged, as from PostgreSQL.

// maxRetryBatch bounds the batch bytes kept per client for a retry.
const maxRetryBatch = 16 << 10

// staleMessage is PostgreSQL's text for the error (plancache.c).
var staleMessage = []byte("cached plan must not change result type")

// retryState tracks, while compiling, the batch that could be retried.
type retryState struct {
	busy    bool   // a client message since the last Sync
	off     int    // in the compiled output: where the eligible Bind starts
	pending uint32 // its id, until its Sync is compiled (0: none)
	seq     uint32
	id      uint32 // the batch held in buf (0: none)
	buf     []byte // the batch from the eligible Bind to its Sync
}

// markBind notes a Bind of statement st about to be appended at out[len]:
// it returns the retry id for its plan entry, 0 when it can't be retried.
// The caller holds s.mu.
func (s *session) markBind(first bool, st *prepared, out []byte) uint32 {
	if !first || st.sql != "" {
		return 0
	}
	s.retry.seq++
	if s.retry.seq == 0 {
		s.retry.seq++
	}
	s.retry.off, s.retry.pending = len(out), s.retry.seq
	return s.retry.seq
}

// keepRetry runs at each Sync, Query or FunctionCall being compiled: the
// eligible batch in out (ending with the Sync frame) is kept. The caller
// holds s.mu.
func (s *session) keepRetry(typ byte, out, frame []byte) {
	r := &s.retry
	r.busy = false
	if r.pending == 0 {
		return
	}
	r.id = 0
	if typ == 'S' && r.off <= len(out) && len(out)-r.off+len(frame) <= maxRetryBatch {
		r.buf = append(append(r.buf[:0], out[r.off:]...), frame...)
		r.id = r.pending
	}
	r.pending = 0
}

// retryStale retries the batch whose Bind (head entry e) failed with the
// stale-plan error when it is safe to; it reports whether it did, in which
// case the error is not for the client. The caller holds s.mu.
func (s *session) retryStale(sc *serverConn, e *entry, frame []byte) bool {
	if e.op != 'B' || e.retry != s.retry.id || sc.txStatus.Load() != 'I' {
		return false
	}
	if errorCode(body(frame)) != "0A000" || !bytes.Contains(frame, staleMessage) {
		return false
	}
	st := s.stmts[e.name]
	if st == nil || st.global != e.global || st.parse == nil {
		return false
	}
	// The batch's Sync must be the last reply owed: nothing was sent after
	// it that the retry would overtake.
	n := len(s.plan)
	for i := s.planHead; i < n; i++ {
		if op := s.plan[i].op; (op == 'S' || op == 'Q' || op == 'F') && i != n-1 {
			return false
		}
	}
	if s.plan[n-1].op != 'S' {
		return false
	}
	e.retry, s.retry.id = 0, 0
	out := appendNamed(nil, 'C', 'S', st.global)
	out = appendParse(out, st.global, st.parse)
	out = append(out, s.retry.buf...)
	ir := s.newRequestLocked('S')
	ir.internal = true
	// The server skips to the batch's Sync and answers it; then come the
	// Close, the Parse and the batch again, answered to the entries still
	// in the plan.
	s.pushFront(entry{op: 'S', req: ir}, entry{op: 'C', act: actSwallow}, entry{op: 'P', act: actSwallow, stmt: st, sc: sc})
	stalePlanRetries.Inc()
	// The server reads until that Sync, so this small write can't block
	// on it; a failed write shows as a failed read in the relay.
	sc.conn.Write(out)
	return true
}
