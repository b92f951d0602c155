package proxy

import (
	"net/netip"
	"strings"

	"github.com/sluice-proxy/sluice/rewrite"
)

// The rewrite stage: every Query text and every Parse text goes through the
// rule engine (analysis cached by exact text). A rewritten text replaces
// the client's in the frame; a blocked statement never reaches PostgreSQL:
// idle, Sluice answers the error itself; inside a transaction or a batch,
// the server raises it in the statement's place (so the transaction fails
// and the batch skips to Sync exactly as PostgreSQL would).

// markRaise is a private frame type in s.pending that compile turns into
// a server-side raise of the error in its body (code\0message\0).
const markRaise = 0x01

// rewriteSession is what rules may match on, fixed at login.
func (s *session) rewriteSession() rewrite.Session {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(s.addr); err == nil {
		addr = ap.Addr().Unmap()
	}
	return rewrite.Session{Database: s.db, User: s.user, ApplicationName: s.app, ClientAddr: addr}
}

// rewriteQuery runs the engine on the simple Query at the end of pending.
func rewriteStage(s *session, r *request) (bool, error) {
	eng := s.srv.snapshot().rewrite
	if eng == nil || r.kind != 'Q' {
		return false, nil
	}
	start := s.lastFrame
	frame := s.pending[start:]
	q := body(frame)
	if len(q) == 0 || q[len(q)-1] != 0 {
		return false, nil
	}
	d := eng.ProcessRecent(string(q[:len(q)-1]), s.rsess, &s.recent)
	r.decision = d
	if d.Log {
		s.log.Info().EmbedObject(d).Msg("rule matched")
	}
	var pe *pgError
	if d.Block != nil {
		pe = &pgError{Severity: "ERROR", Code: d.Block.Code, Message: d.Block.Message}
		blockedTotal.Inc()
	} else {
		if s.mode == "transaction" {
			r.sqlQ = planSQL(d)
		}
		if hasState(d) {
			pe = s.sessionStateCheck(d, r.sqlQ != nil)
		}
	}
	if pe != nil {
		r.sqlQ = nil
		s.pending = s.pending[:start]
		if prefix := blockedPrefix(eng, d, s.rsess); prefix != "" {
			// PostgreSQL runs the statements before the failing one (and
			// rolls their implicit transaction back): so do they here.
			s.pending = appendQuery(s.pending, prefix+"; "+raiseSQL(pe.Code, pe.Message))
			return false, nil
		}
		if s.idleLocal() && len(s.pending) == 0 {
			s.setState(clientIdle)
			s.writeClient(appendReady(appendErrorResponse(nil, pe), 'I'))
			errorsTotal.WithLabelValues(pe.Code[:2]).Inc()
			s.recycleLocal(r)
			return true, nil
		}
		s.pending = appendQuery(s.pending, raiseSQL(pe.Code, pe.Message))
		return false, nil
	}
	if d.Rewritten {
		s.pending = appendQuery(s.pending[:start], d.SQL)
	}
	return false, nil
}

// rewriteParse runs the engine on a Parse frame just appended to pending
// (at s.lastFrame) and records the decision for the statement's Executes.
func (s *session) rewriteParse() {
	eng := s.srv.snapshot().rewrite
	if eng == nil {
		return
	}
	start := s.lastFrame
	b := body(s.pending[start:])
	name, rest, ok := cstring(b)
	if !ok {
		return
	}
	end := 0
	for end < len(rest) && rest[end] != 0 {
		end++
	}
	if end == len(rest) {
		return
	}
	// A client that parses the same text again under the same name
	// (every unnamed Parse of a pipeline, say) reuses the previous copy.
	prev := s.stmtDec[name]
	orig := reuseString(prev.orig, rest[:end])
	d := eng.Process(orig, s.rsess)
	if d.Log {
		s.log.Info().EmbedObject(d).Msg("rule matched")
	}
	if d.Block != nil {
		blockedTotal.Inc()
		if s.idleLocal() && start == 0 {
			pe := &pgError{Severity: "ERROR", Code: d.Block.Code, Message: d.Block.Message}
			s.pending = s.pending[:0]
			s.writeClient(appendErrorResponse(nil, pe))
			errorsTotal.WithLabelValues(pe.Code[:2]).Inc()
			s.skipToSync = true
			return
		}
		s.pending = appendRaiseMark(s.pending[:start], d.Block.Code, d.Block.Message)
		return
	}
	if d.Rewritten {
		types := append([]byte(nil), rest[end+1:]...)
		defer func() {
			// rest aliased the old frame; keep the facts right.
			if f, ok := s.stmtDec[name]; ok && len(types) > 2 {
				f.types = string(types)
				s.stmtDec[name] = f
			}
		}()
		s.pending = s.pending[:start]
		s.pending = appendParse(s.pending, name, append(append([]byte(d.SQL), 0), types...))
	}
	f := stmtFacts{d: d, orig: orig, eng: eng}
	if t := rest[end+1:]; len(t) > 2 {
		f.types = reuseString(prev.types, t)
	}
	s.stmtDec[name] = f
}

// reuseString returns prev when it holds b's bytes (comparing allocates
// nothing), else a new string of b.
func reuseString(prev string, b []byte) string {
	if prev == string(b) {
		return prev
	}
	return string(b)
}

// writes reports whether a decision's statements write anything.
func writes(d *rewrite.Decision) bool {
	for _, st := range d.Statements {
		if st.ParseError == "" && (!st.ReadOnly || len(st.Writes) > 0) {
			return true
		}
	}
	return false
}

// idleLocal reports whether nothing is in flight on a server, so Sluice may
// answer the client itself without reordering replies.
func (s *session) idleLocal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server == nil {
		return true
	}
	return s.outstanding == 0 && !s.unsynced && s.head() == nil && s.server.txStatus.Load() == 'I'
}

func (s *session) recycleLocal(r *request) {
	s.mu.Lock()
	if len(s.free) < 16 {
		s.free = append(s.free, r)
	}
	s.mu.Unlock()
}

// raiseSQL is a statement that makes PostgreSQL raise code/msg.
func raiseSQL(code, msg string) string {
	return "DO $sluice$BEGIN RAISE EXCEPTION USING ERRCODE = " + quoteLiteral(code) +
		", MESSAGE = " + quoteLiteral(msg) + "; END$sluice$"
}

func appendRaiseMark(dst []byte, code, msg string) []byte {
	b := append(append(append(append([]byte(nil), code...), 0), msg...), 0)
	return appendFrame(dst, markRaise, b)
}

// stmtFacts is what Sluice knows of a client's prepared statement.
type stmtFacts struct {
	d     *rewrite.Decision
	types string // the Parse's parameter type section, when any
	orig  string // the client's text, to re-run rules after a reload
	eng   *rewrite.Engine
}

// current re-runs the rules on a statement prepared before a reload, so a
// new cache, limit or log rule reaches it. A rule that would now rewrite
// its text can't (the server has the old text prepared): such a decision
// is kept as it was until the client prepares the statement again.
func (s *session) current(name string, f stmtFacts) stmtFacts {
	eng := s.srv.snapshot().rewrite
	if eng == nil || f.eng == eng || f.eng == nil {
		return f
	}
	f.eng = eng
	if d := eng.Process(f.orig, s.rsess); d.SQL == f.d.SQL {
		f.d = d
	}
	s.stmtDec[name] = f
	return f
}

// callsFunctions: a user function among them may write (see
// resultcache.CallsUserFunction).
func callsFunctions(d *rewrite.Decision) bool {
	for _, st := range d.Statements {
		if len(st.Functions) > 0 {
			return true
		}
	}
	return false
}

// blockedPrefix returns, for a multi-statement Query with a blocked
// statement, the statements before the first blocked one ("" when it is
// the first or the text has one statement).
func blockedPrefix(eng *rewrite.Engine, d *rewrite.Decision, rs rewrite.Session) string {
	if d.Block == nil || len(d.Statements) < 2 {
		return ""
	}
	var b strings.Builder
	for i, st := range d.Statements {
		if eng.Process(st.Text, rs).Block != nil {
			return b.String()
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(st.Text)
	}
	return ""
}
