package proxy

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Named prepared statements in transaction mode. A client's statement
// names are its own; on servers every distinct (query, parameter types)
// gets one Sluice name shared by all clients, prepared on a server the
// first time a client needs it there, in the same round trip as the
// client's Bind or Describe.

// prepared is one client's named statement.
type prepared struct {
	name   string // the client's name
	global string // the name on servers
	parse  []byte // Parse body after the name: query, parameter types
	sql    string // for an SQL PREPARE: its text after the name (sqlprepare.go)
}

// maxSharedNames bounds the server-wide name registry; past it new
// statements get private names (still correct, just not shared).
const maxSharedNames = 100_000

// globalName returns the server-side name for a Parse body.
func (s *Server) globalName(parse []byte) string {
	if v, ok := s.stmtNames.Load(string(parse)); ok {
		return v.(string)
	}
	name := "sluice_" + strconv.FormatUint(s.stmtSeq.Add(1), 36)
	if s.stmtCount.Load() >= maxSharedNames {
		return name
	}
	v, loaded := s.stmtNames.LoadOrStore(string(parse), name)
	if !loaded {
		s.stmtCount.Add(1)
	}
	return v.(string)
}

// serverStatements tracks what is prepared on one server, least recently
// used first out when over max_prepared_statements.
type serverStatements struct {
	lru   list.List
	index map[string]*list.Element
}

func (sc *serverConn) has(global string) bool {
	if sc.stmts.index == nil {
		return false
	}
	el, ok := sc.stmts.index[global]
	if ok {
		sc.stmts.lru.MoveToBack(el)
	}
	return ok
}

func (sc *serverConn) add(global string) {
	if sc.stmts.index == nil {
		sc.stmts.index = map[string]*list.Element{}
	}
	if _, ok := sc.stmts.index[global]; ok {
		return
	}
	sc.stmts.index[global] = sc.stmts.lru.PushBack(global)
}

func (sc *serverConn) forget(global string) {
	if el, ok := sc.stmts.index[global]; ok {
		sc.stmts.lru.Remove(el)
		delete(sc.stmts.index, global)
	}
}

func (sc *serverConn) forgetAll() {
	sc.stmts.lru.Init()
	sc.stmts.index = nil
}

// compileNamed rewrites one Parse, Bind, Describe or Close of a named
// statement for server sc, appending to out and queueing plan entries.
// The caller holds s.mu.
func (s *session) compileNamed(sc *serverConn, typ byte, frame, out []byte) []byte {
	b := body(frame)
	first := !s.retry.busy
	s.retry.busy = true
	switch typ {
	case 'P':
		name, rest, ok := cstring(b)
		if !ok || name == "" {
			break
		}
		if _, exists := s.stmts[name]; exists {
			return s.appendRaise(out, "42P05", fmt.Sprintf("prepared statement %q already exists", name))
		}
		st := &prepared{name: name, parse: append([]byte(nil), rest...)}
		st.global = s.srv.globalName(st.parse)
		s.stmts[name] = st
		if sc.has(st.global) {
			s.push(entry{op: 'P', act: actSynth, synth: '1', stmt: st, sc: sc})
			return out
		}
		out = s.makeRoom(sc, out)
		out = appendParse(out, st.global, st.parse)
		sc.add(st.global)
		s.push(entry{op: 'P', act: actForward, stmt: st, sc: sc, global: st.global, name: st.name})
		return out
	case 'B':
		portal, rest, ok := cstring(b)
		if !ok {
			break
		}
		name, rest, ok := cstring(rest)
		if !ok || name == "" {
			break
		}
		st := s.stmts[name]
		if st == nil {
			return s.appendRaise(out, "26000", fmt.Sprintf("prepared statement %q does not exist", name))
		}
		out = s.ensure(sc, st, out)
		retry := s.markBind(first, st, out)
		out = appendBind(out, portal, st.global, rest)
		s.push(entry{op: 'B', global: st.global, name: st.name, retry: retry})
		return out
	case 'D', 'C':
		if len(b) < 2 || b[0] != 'S' {
			break
		}
		name, _, ok := cstring(b[1:])
		if !ok || name == "" {
			break
		}
		st := s.stmts[name]
		if typ == 'C' {
			// Closing a statement that doesn't exist is not an error.
			delete(s.stmts, name)
			s.push(entry{op: 'C', act: actSynth, synth: '3'})
			return out
		}
		if st == nil {
			return s.appendRaise(out, "26000", fmt.Sprintf("prepared statement %q does not exist", name))
		}
		out = s.ensure(sc, st, out)
		out = appendNamed(out, 'D', 'S', st.global)
		s.push(entry{op: 'D', global: st.global, name: st.name})
		return out
	}
	s.push(entry{op: typ})
	return append(out, frame...)
}

// ensure prepares st on sc if it isn't there yet; the client never sees
// the reply.
func (s *session) ensure(sc *serverConn, st *prepared, out []byte) []byte {
	if sc.has(st.global) {
		return out
	}
	out = s.makeRoom(sc, out)
	if st.sql != "" {
		out = s.appendSQLPrepare(sc, out, st.global, st.sql, st)
	} else {
		out = appendParse(out, st.global, st.parse)
		s.push(entry{op: 'P', act: actSwallow, stmt: st, sc: sc})
	}
	sc.add(st.global)
	return out
}

// makeRoom closes the least recently used statements on sc while it is at
// max_prepared_statements.
func (s *session) makeRoom(sc *serverConn, out []byte) []byte {
	max := s.pool.settings.Load().maxPrepared
	for max > 0 && sc.stmts.lru.Len() >= max {
		oldest := sc.stmts.lru.Front().Value.(string)
		sc.forget(oldest)
		out = appendNamed(out, 'C', 'S', oldest)
		s.push(entry{op: 'C', act: actSwallow, global: oldest, sc: sc})
	}
	return out
}

// appendRaise makes the server raise an error of ours in the client's
// stream, so that what follows up to Sync is skipped and an open
// transaction fails exactly as if PostgreSQL had raised it.
func (s *session) appendRaise(out []byte, code, msg string) []byte {
	sql := raiseSQL(code, msg)
	out = appendParse(out, "", append(append([]byte(sql), 0), 0, 0))
	s.push(entry{op: 'P', act: actSwallow})
	out = appendBind(out, "", "", []byte{0, 0, 0, 0, 0, 0})
	s.push(entry{op: 'B', act: actSwallow})
	out = append(out, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0)
	s.push(entry{op: 'E'})
	return out
}

// appendParse encodes Parse(name, rest) where rest is query\0 + types.
func appendParse(dst []byte, name string, rest []byte) []byte {
	start := len(dst)
	dst = append(dst, 'P', 0, 0, 0, 0)
	dst = append(dst, name...)
	dst = append(dst, 0)
	dst = append(dst, rest...)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendBind encodes Bind(portal, stmt, rest) where rest is everything
// after the statement name.
func appendBind(dst []byte, portal, stmt string, rest []byte) []byte {
	start := len(dst)
	dst = append(dst, 'B', 0, 0, 0, 0)
	dst = append(dst, portal...)
	dst = append(dst, 0)
	dst = append(dst, stmt...)
	dst = append(dst, 0)
	dst = append(dst, rest...)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendNamed encodes Describe or Close of a statement or portal.
func appendNamed(dst []byte, typ, kind byte, name string) []byte {
	start := len(dst)
	dst = append(dst, typ, 0, 0, 0, 0, kind)
	dst = append(dst, name...)
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// isResetAll reports whether a simple Query is DISCARD ALL or DEALLOCATE
// [PREPARE] ALL, which drop every prepared statement of the session.
func isResetAll(q []byte) bool {
	var buf [3][]byte
	w := fields(buf[:0], q, 3)
	switch {
	case len(w) >= 2 && eqFold(w[0], "discard") && eqFold(w[1], "all"):
		return true
	case len(w) >= 2 && eqFold(w[0], "deallocate") && eqFold(w[1], "all"):
		return true
	case len(w) >= 3 && eqFold(w[0], "deallocate") && eqFold(w[1], "prepare") && eqFold(w[2], "all"):
		return true
	}
	return false
}

// isResetAllTag reports whether a CommandComplete body says the server
// just dropped all its prepared statements.
func isResetAllTag(b []byte) bool {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b) == "DISCARD ALL" || string(b) == "DEALLOCATE ALL" // no allocation
}

// fields appends the first n words of q to out (letters only, ';' ends).
func fields(out [][]byte, q []byte, n int) [][]byte {
	i := 0
	for len(out) < n && i < len(q) {
		for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
			i++
		}
		j := i
		for j < len(q) && (q[j]|0x20 >= 'a' && q[j]|0x20 <= 'z') {
			j++
		}
		if j == i {
			break
		}
		out = append(out, q[i:j])
		i = j
	}
	return out
}

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// renameInError rewrites an ErrorResponse that names a server-side
// statement so the client reads its own name, as PostgreSQL would say it.
func renameInError(frame []byte, global, name string) []byte {
	q := []byte(`"` + global + `"`)
	if !bytes.Contains(frame, q) {
		return frame
	}
	b := bytes.ReplaceAll(body(frame), q, []byte(`"`+name+`"`))
	return appendFrame(nil, frame[0], b)
}
