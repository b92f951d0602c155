package proxy

import (
	"fmt"
	"strconv"

	"github.com/sluice-proxy/sluice/rewrite"
)

// SQL-level PREPARE, EXECUTE and DEALLOCATE in transaction mode. In
// PostgreSQL they share one namespace per session with protocol-level
// statements, so they live in the same per-client map (s.stmts). On
// servers, each SQL PREPARE gets a fresh name of its own (sluice_<n>, from
// the same sequence as the shared names): the client's text is sent with
// the name replaced, so the replies (CommandComplete PREPARE, syntax and
// planning errors) are PostgreSQL's own. EXECUTE and DEALLOCATE are sent
// with the server-side name; a server that lacks the statement gets it
// prepared in the Query itself, just before the EXECUTE, so that an error
// in preparing it again is the EXECUTE's own, as from PostgreSQL's replan.
// Errors about the client's own names (42P05 duplicate, 26000 missing) are
// raised in the statement's place, so a multi-statement Query fails where
// PostgreSQL's would. What a Query did to the client's names is assumed
// when it is sent and undone at its ReadyForQuery for every statement that
// did not complete (PostgreSQL's prepared statements survive ROLLBACK, so
// only completion matters).
//
// The statements are found in simple Query texts only; a Parse whose text
// is PREPARE or DEALLOCATE still pins the client (pool.on_session_state).

// sqlKind is what a statement does to prepared statements.
type sqlKind uint8

const (
	sqlPrepare       sqlKind = iota + 1 // PREPARE name ...
	sqlExecute                          // EXECUTE name, EXPLAIN ... EXECUTE name
	sqlDeallocate                       // DEALLOCATE [PREPARE] name
	sqlDeallocateAll                    // DEALLOCATE [PREPARE] ALL
	sqlDiscardAll                       // DISCARD ALL
	sqlReprepare                        // Sluice's PREPARE in front of an EXECUTE (its reply hidden)
)

// sqlStmt is one such statement of a Query: its bounds and those of the
// statement name in the Query text.
type sqlStmt struct {
	kind               sqlKind
	name               string // as PostgreSQL folds it
	start, end         int
	nameStart, nameEnd int
}

// sqlQuery is a Query that uses SQL-level prepared statements, as the
// rewrite stage found it; names are resolved when it is compiled for a
// server.
type sqlQuery struct {
	text  string
	stmts []sqlStmt
	acts  []sqlAct // filled by compile, in statement order
	done  int      // acts whose statement completed
}

// sqlAct is the effect of one statement on the client's names, kept until
// the statement's CommandComplete confirms it.
type sqlAct struct {
	kind   sqlKind
	st     *prepared            // PREPARE: the new statement; DEALLOCATE: the removed one
	sc     *serverConn          // where it ran
	global string               // DEALLOCATE: the server-side name it drops
	saved  map[string]*prepared // DEALLOCATE ALL, DISCARD ALL: the names before
}

// planSQL finds the statements of d that use SQL-level prepared
// statements. It returns nil when there are none, or when one can't be
// carried (a rewritten text, a name it cannot find): the caller then pins
// the client as for any other session state.
func planSQL(d *rewrite.Decision) *sqlQuery {
	var q *sqlQuery
	for _, st := range d.Statements {
		kind := sqlKindOf(st)
		if kind == 0 {
			continue
		}
		if d.Rewritten || st.Pos < 0 || st.Pos+len(st.Text) > len(d.SQL) || d.SQL[st.Pos:st.Pos+len(st.Text)] != st.Text {
			return nil
		}
		ss, ok := lexSQLStmt(kind, st)
		if !ok {
			if kind == sqlExecute {
				// EXPLAIN of something else, or an EXECUTE it can't read:
				// sent as written.
				continue
			}
			return nil
		}
		if q == nil {
			q = &sqlQuery{text: d.SQL}
		}
		q.stmts = append(q.stmts, ss)
	}
	return q
}

func sqlKindOf(st *rewrite.Statement) sqlKind {
	switch st.Kind {
	case "prepare":
		return sqlPrepare
	case "execute", "explain":
		return sqlExecute
	case "deallocate":
		return sqlDeallocate
	case "discard":
		for _, ch := range st.SessionState {
			if ch.Kind == rewrite.StateDiscard && ch.Name == "all" {
				return sqlDiscardAll
			}
		}
	}
	return 0
}

// lexSQLStmt finds the statement name in st's text.
func lexSQLStmt(kind sqlKind, st *rewrite.Statement) (sqlStmt, bool) {
	ss := sqlStmt{kind: kind, start: st.Pos, end: st.Pos + len(st.Text)}
	if kind == sqlDiscardAll {
		return ss, true
	}
	t := st.Text
	w, i := sqlWord(t, 0)
	switch kind {
	case sqlPrepare:
		if w != "prepare" {
			return ss, false
		}
	case sqlExecute:
		if w == "explain" {
			i = skipSpace(t, i)
			if i < len(t) && t[i] == '(' {
				if i = skipParens(t, i); i < 0 {
					return ss, false
				}
			}
			for {
				w, i = sqlWord(t, i)
				if w != "analyze" && w != "analyse" && w != "verbose" {
					break
				}
			}
		}
		if w != "execute" {
			return ss, false
		}
	case sqlDeallocate:
		if w != "deallocate" {
			return ss, false
		}
		j := i
		if w, j = sqlWord(t, i); w == "prepare" {
			i = j
		}
		if w, j = sqlWord(t, i); w == "all" {
			ss.kind = sqlDeallocateAll
			return ss, true
		}
	}
	name, a, b, ok := sqlIdent(t, i)
	if !ok {
		return ss, false
	}
	// The analyzer knows the name PostgreSQL's parser sees: it must agree.
	for _, ch := range st.SessionState {
		if (ch.Kind == rewrite.StatePrepare || ch.Kind == rewrite.StateDeallocate) && ch.Name != name {
			return ss, false
		}
	}
	ss.name, ss.nameStart, ss.nameEnd = name, st.Pos+a, st.Pos+b
	return ss, true
}

// skipSpace skips white space and comments from i.
func skipSpace(t string, i int) int {
	for i < len(t) {
		switch {
		case t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r' || t[i] == '\f' || t[i] == '\v':
			i++
		case t[i] == '-' && i+1 < len(t) && t[i+1] == '-':
			for i < len(t) && t[i] != '\n' {
				i++
			}
		case t[i] == '/' && i+1 < len(t) && t[i+1] == '*':
			// Comments nest in PostgreSQL (scan.l xc).
			depth := 0
			for i < len(t) {
				if t[i] == '/' && i+1 < len(t) && t[i+1] == '*' {
					depth++
					i += 2
				} else if t[i] == '*' && i+1 < len(t) && t[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

// sqlWord reads an unquoted keyword at i, lower case ("" if there is none).
func sqlWord(t string, i int) (string, int) {
	i = skipSpace(t, i)
	j := i
	for j < len(t) && (t[j]|0x20 >= 'a' && t[j]|0x20 <= 'z' || t[j] == '_') {
		j++
	}
	if j < len(t) && (t[j] >= '0' && t[j] <= '9' || t[j] == '$' || t[j] >= 0x80) {
		return "", i
	}
	b := []byte(t[i:j])
	for k, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[k] = c + 'a' - 'A'
		}
	}
	return string(b), j
}

// skipParens skips a parenthesized option list (EXPLAIN's) from t[i] ==
// '('; -1 when it is not one it can read (quotes inside).
func skipParens(t string, i int) int {
	depth := 0
	for ; i < len(t); i++ {
		switch t[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		case '\'', '"', '$', '-', '/':
			return -1
		}
	}
	return -1
}

// namedatalen is NAMEDATALEN (pg_config_manual.h): identifiers are cut to
// NAMEDATALEN-1 bytes.
const namedatalen = 64

// sqlIdent reads an identifier at i as PostgreSQL's scanner folds it
// (downcase_identifier: ASCII only), with its bounds.
func sqlIdent(t string, i int) (name string, a, b int, ok bool) {
	i = skipSpace(t, i)
	if i >= len(t) {
		return "", 0, 0, false
	}
	a = i
	var out []byte
	if t[i] == '"' {
		i++
		for {
			if i >= len(t) {
				return "", 0, 0, false
			}
			if t[i] == '"' {
				if i+1 < len(t) && t[i+1] == '"' {
					out = append(out, '"')
					i += 2
					continue
				}
				i++
				break
			}
			out = append(out, t[i])
			i++
		}
		if len(out) == 0 {
			return "", 0, 0, false
		}
	} else {
		c := t[i]
		if !(c|0x20 >= 'a' && c|0x20 <= 'z' || c == '_' || c >= 0x80) {
			return "", 0, 0, false
		}
		for i < len(t) && (t[i]|0x20 >= 'a' && t[i]|0x20 <= 'z' || t[i] == '_' || t[i] >= 0x80 || t[i] >= '0' && t[i] <= '9' || t[i] == '$') {
			c := t[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	if len(out) >= namedatalen {
		return "", 0, 0, false // truncated with a NOTICE: leave it to the pin
	}
	return string(out), a, i, true
}

// privateName is a server-side name used by one statement only.
func (s *Server) privateName() string {
	return "sluice_" + strconv.FormatUint(s.stmtSeq.Add(1), 36)
}

// compileQuery queues a simple Query for sc: in transaction mode its SQL
// prepared statements are renamed, and those sc lacks are prepared first.
// The caller holds s.mu.
func (s *session) compileQuery(sc *serverConn, r *request, frame, out []byte) ([]byte, []byte) {
	var q *sqlQuery
	if r != nil {
		q = r.sqlQ
	}
	b := body(frame)
	if q == nil || len(b) != len(q.text)+1 || string(b[:len(q.text)]) != q.text {
		if q != nil {
			r.sqlQ = nil
		}
		s.noteSessionReset(b)
		s.push(entry{op: 'Q', req: r})
		return frame, out
	}
	q.acts, q.done = q.acts[:0], 0
	text := make([]byte, 0, len(q.text)+16)
	last := 0
	pre := len(s.plan) - s.planHead
	mark := len(out)
	var firstGlobal, firstName string
	// In a failed transaction the client's statements fail with 25P02
	// anyway; what Sluice would put in front would fail first.
	aborted := sc.txStatus.Load() == 'E' && s.outstanding == 0
	rename := func(ss sqlStmt, global string) {
		text = append(append(text, q.text[last:ss.nameStart]...), global...)
		last = ss.nameEnd
		if firstGlobal == "" {
			firstGlobal, firstName = global, ss.name
		}
	}
	raise := func(ss sqlStmt, code, format string) {
		text = append(append(text, q.text[last:ss.start]...), raiseSQL(code, fmt.Sprintf(format, ss.name))...)
		last = ss.end
	}
	for _, ss := range q.stmts {
		switch ss.kind {
		case sqlPrepare:
			if s.stmts[ss.name] != nil {
				raise(ss, "42P05", "prepared statement %q already exists")
				continue
			}
			st := &prepared{name: ss.name, global: s.srv.privateName(), sql: q.text[ss.nameEnd:ss.end]}
			s.stmts[ss.name] = st
			out = s.makeRoom(sc, out)
			sc.add(st.global)
			rename(ss, st.global)
			q.acts = append(q.acts, sqlAct{kind: sqlPrepare, st: st, sc: sc})
		case sqlExecute:
			st := s.stmts[ss.name]
			if st == nil {
				if !s.pinned {
					raise(ss, "26000", "prepared statement %q does not exist")
				}
				continue // a pinned server may have it under the client's name
			}
			switch {
			case aborted || sc.has(st.global):
			case st.sql != "":
				// Prepared again in the Query, in the EXECUTE's place:
				// when that fails (the table is gone), its error is the
				// one PostgreSQL raises replanning at EXECUTE, and the
				// rest of the Query and an open transaction fail as they
				// would. The newline ends a line comment, should the
				// text end in one.
				out = s.makeRoom(sc, out)
				sc.add(st.global)
				text = append(append(text, q.text[last:ss.start]...), "PREPARE "...)
				text = append(append(append(text, st.global...), st.sql...), "\n;"...)
				last = ss.start
				q.acts = append(q.acts, sqlAct{kind: sqlReprepare, st: st, sc: sc})
			default:
				// A protocol statement: prepared with Parse before the
				// Query. If that fails the client sees its error, then
				// 26000 from the EXECUTE.
				out = s.ensure(sc, st, out)
			}
			rename(ss, st.global)
		case sqlDeallocate:
			st := s.stmts[ss.name]
			if st == nil {
				if !s.pinned {
					raise(ss, "26000", "prepared statement %q does not exist")
				} else {
					q.acts = append(q.acts, sqlAct{kind: sqlDeallocate})
				}
				continue
			}
			// PostgreSQL's own reply needs a statement to drop: the
			// client's when it is private and here, else a stand-in, so a
			// shared copy stays for the other clients.
			global := st.global
			if (st.sql == "" || !sc.has(global)) && !aborted {
				global = s.srv.privateName()
				out = s.makeRoom(sc, out)
				out = s.appendSQLPrepare(sc, out, global, " AS SELECT", nil)
				sc.add(global)
			}
			delete(s.stmts, ss.name)
			rename(ss, global)
			q.acts = append(q.acts, sqlAct{kind: sqlDeallocate, st: st, sc: sc, global: global})
		case sqlDeallocateAll, sqlDiscardAll:
			// Only this client's names go; the server drops all it has
			// and the relay forgets them (isResetAllTag).
			q.acts = append(q.acts, sqlAct{kind: ss.kind, saved: s.stmts})
			s.stmts = map[string]*prepared{}
		}
	}
	if len(out) > mark || len(s.plan)-s.planHead > pre {
		// What was put in front runs to its own Sync, so an error in it
		// cannot make the server skip the client's Query.
		out = append(out, 'S', 0, 0, 0, 4)
		ir := s.newRequestLocked('S')
		ir.internal = true
		s.push(entry{op: 'S', req: ir})
	}
	if len(q.acts) == 0 {
		r.sqlQ = nil
	}
	s.push(entry{op: 'Q', req: r, global: firstGlobal, name: firstName})
	if last == 0 {
		return frame, out
	}
	text = append(text, q.text[last:]...)
	return appendQuery(nil, string(text)), out
}

// appendSQLPrepare prepares global on sc with an SQL PREPARE (the text
// after the name is rest), its replies hidden from the client. It uses the
// unnamed statement and portal, so a later Bind of the client's unnamed
// statement sends it again. The caller holds s.mu.
func (s *session) appendSQLPrepare(sc *serverConn, out []byte, global, rest string, st *prepared) []byte {
	q := make([]byte, 0, len("PREPARE ")+len(global)+len(rest)+3)
	q = append(append(append(append(q, "PREPARE "...), global...), rest...), 0, 0, 0)
	out = appendParse(out, "", q)
	s.push(entry{op: 'P', act: actSwallow})
	out = appendBind(out, "", "", []byte{0, 0, 0, 0, 0, 0})
	s.push(entry{op: 'B', act: actSwallow})
	out = append(out, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0)
	s.push(entry{op: 'E', act: actSwallow, stmt: st, sc: sc})
	sc.unnamedBy = 0
	return out
}

// sqlComplete notes the CommandComplete of one statement of a Query with
// SQL prepared statements; it reports whether the statement was Sluice's,
// its reply not for the client. The caller holds s.mu.
func (s *session) sqlComplete(q *sqlQuery, b []byte) (hide bool) {
	if q.done >= len(q.acts) {
		return false
	}
	tag, _, _ := cstring(b)
	a := &q.acts[q.done]
	switch tag {
	case "PREPARE":
		if a.kind != sqlPrepare && a.kind != sqlReprepare {
			return false
		}
		hide = a.kind == sqlReprepare
	case "DEALLOCATE":
		if a.kind != sqlDeallocate {
			return false
		}
		if a.sc != nil {
			a.sc.forget(a.global)
		}
	case "DEALLOCATE ALL", "DISCARD ALL":
		if a.kind != sqlDeallocateAll && a.kind != sqlDiscardAll {
			return false
		}
	default:
		return false
	}
	q.done++
	return hide
}

// sqlFinish undoes, at the Query's ReadyForQuery, what its statements that
// did not complete would have done, last first. The caller holds s.mu.
func (s *session) sqlFinish(q *sqlQuery) {
	for i := len(q.acts) - 1; i >= q.done; i-- {
		a := q.acts[i]
		switch a.kind {
		case sqlPrepare:
			if s.stmts[a.st.name] == a.st {
				delete(s.stmts, a.st.name)
			}
			a.sc.forget(a.st.global)
		case sqlReprepare:
			// Failed or skipped: the server still lacks it.
			a.sc.forget(a.st.global)
		case sqlDeallocate:
			if a.st != nil && s.stmts[a.st.name] == nil {
				s.stmts[a.st.name] = a.st
			}
		case sqlDeallocateAll, sqlDiscardAll:
			s.stmts = a.saved
		}
	}
	q.acts, q.done = q.acts[:0], 0
}
