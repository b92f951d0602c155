package proxy

import (
	"encoding/binary"
	"time"

	"github.com/sluice-proxy/sluice/resultcache"
)

// Extended-protocol caching. A Sync batch made of units
// [Parse] Bind [Describe portal] Execute(no row limit) — one or several —
// is looked up unit by unit. When every unit hits and nothing is in
// flight, Sluice answers the whole batch itself (ParseComplete,
// BindComplete, the cached RowDescription/DataRows/CommandComplete,
// ReadyForQuery). Otherwise the batch goes to PostgreSQL and the replies of
// each missed unit are captured and stored at the ReadyForQuery, if the
// implicit transaction committed.

// unit is one Bind..Execute of a batch.
type unit struct {
	parse     bool // the batch parses the statement
	stmt      string
	described bool
	descOff   int // offset of the Describe frame in pending, -1 if none
	execOff   int
	facts     stmtFacts
	res       resultcache.Result
	ttl       time.Duration
	fill      *fillState
}

// fillState collects one unit's answer while the relay sees it.
type fillState struct {
	fill     *resultcache.Fill
	ttl      time.Duration
	max      int
	buf      []byte
	complete bool
	failed   bool
}

// capture records a reply for the unit; e is the entry it answers.
func (f *fillState) capture(op, typ byte, frame []byte) {
	if f.failed {
		return
	}
	ok := false
	switch op {
	case 'D':
		ok = typ == 'T'
	case 'E':
		ok = typ == 'D' || typ == 'C'
		if typ == 'C' {
			f.complete = true
		}
	}
	if !ok || len(f.buf)+len(frame) > f.max {
		f.failed = true
		return
	}
	f.buf = append(f.buf, frame...)
}

// finish stores or abandons at the batch's ReadyForQuery.
func (f *fillState) finish(status byte) {
	if status == 'I' && f.complete && !f.failed {
		f.fill.Store(f.buf, f.ttl)
	} else {
		f.fill.Abandon()
	}
	f.buf = nil
}

// extendedCacheStage is the cache stage for a Sync batch.
func extendedCacheStage(s *session, r *request, c *resultcache.Cache) (bool, error) {
	if s.cacheOff {
		return false, nil
	}
	units, ok := s.scanBatch()
	defer s.releaseUnits(units)
	if !ok || len(units) == 0 {
		return false, nil
	}
	if !s.idleLocal() {
		return false, nil
	}
	hits := 0
	for i := range units {
		u := &units[i]
		d := u.facts.d
		if d == nil || len(d.Statements) != 1 || d.Block != nil || d.Cache.Off || !cacheableKind(d.Statements[0]) {
			if d != nil && len(d.Statements) == 1 && d.Block == nil && !d.Cache.Off {
				s.countLocking(c, d.Statements[0])
			}
			abandonUnits(units[:i])
			return false, nil
		}
		st := d.Statements[0]
		sql, dir := resultcache.NormalizeComments(d.SQL)
		ruleTTL := time.Duration(0)
		if d.Cache.Set {
			ruleTTL = d.Cache.TTL
		}
		ttl, ok := c.Decide(st.Fingerprint, ruleTTL, dir)
		if !ok {
			abandonUnits(units[:i])
			return false, nil
		}
		bind := s.bindAt(u.execOff)
		if bind == nil {
			abandonUnits(units[:i])
			return false, nil
		}
		req, ok := s.cacheRequest(c, st, sql+"\x00"+u.facts.types, 'E', u.described,
			bind.paramFormats, bind.params, bind.resultFormats)
		if !ok {
			abandonUnits(units[:i])
			return false, nil
		}
		u.res = c.Lookup(s.ctx(), req)
		u.ttl = ttl
		if u.res.Hit() && u.res.Fill == nil {
			hits++
		}
	}
	if hits == len(units) {
		s.answerBatch(units, r)
		return true, nil
	}
	max := s.srv.maxEntry(c)
	for i := range units {
		u := &units[i]
		if u.res.Fill != nil {
			u.fill = &fillState{fill: u.res.Fill, ttl: u.ttl, max: max}
			s.execFills = append(s.execFills, execFill{descOff: u.descOff, execOff: u.execOff, f: u.fill})
			r.fills = append(r.fills, u.fill)
		}
	}
	return false, nil
}

func abandonUnits(units []unit) {
	for _, u := range units {
		if u.res.Fill != nil {
			u.res.Fill.Abandon()
		}
	}
}

// execFill ties the Describe and Execute frames of a unit in pending to its
// fill, for compile to attach to their plan entries.
type execFill struct {
	descOff, execOff int
	f                *fillState
}

// answerBatch writes the whole batch's answer from the cache.
func (s *session) answerBatch(units []unit, r *request) {
	out := s.scratch[:0]
	for _, u := range units {
		if u.parse {
			out = append(out, '1', 0, 0, 0, 4)
			s.registerLocalParse(u.stmt)
		}
		out = append(out, '2', 0, 0, 0, 4)
		// The key includes whether the unit was described, so the cached
		// answer has a RowDescription exactly when the client asked.
		out = append(out, u.res.Payload...)
		r.rows += countRows(u.res.Payload)
	}
	out = append(out, 'Z', 0, 0, 0, 5, 'I')
	s.scratch = out[:0]
	s.pending = s.pending[:0]
	s.execLimits = s.execLimits[:0]
	s.setState(clientIdle)
	r.cacheHit = true
	for _, c := range completionStages { // counted before the client can go on
		c.run(s, r)
	}
	s.writeClient(out)
	s.recycleLocal(r)
}

// registerLocalParse makes a statement parsed by a batch Sluice answered
// itself exist for the client without a server: a named one (transaction
// mode) is prepared on a server when first needed; the unnamed one is sent
// again ahead of the next message that uses it (see compileUnnamed).
func (s *session) registerLocalParse(name string) {
	p := s.parseFrames[name]
	if p == nil {
		return
	}
	if name == "" {
		s.lastUnnamed = append(s.lastUnnamed[:0], p...)
		s.unnamedSeq++
		return
	}
	if _, exists := s.stmts[name]; !exists {
		_, rest, _ := cstring(body(p))
		st := &prepared{name: name, parse: append([]byte(nil), rest...)}
		st.global = s.srv.globalName(st.parse)
		s.stmts[name] = st
	}
}

// scanBatch splits pending (ending in Sync) into cacheable units; ok is
// false when the batch has anything else (Close, Flush, Describe of a
// statement, a row-limited Execute, a raise).
func (s *session) scanBatch() ([]unit, bool) {
	units := s.units[:0]
	cur := unit{descOff: -1, execOff: -1}
	haveBind := false
	clear(s.parseFrames)
	p := s.pending
	off := 0
	for len(p) >= 5 {
		typ := p[0]
		n := int(binary.BigEndian.Uint32(p[1:5])) + 1
		if n > len(p) {
			return units, false
		}
		frame := p[:n]
		b := body(frame)
		at := off
		p, off = p[n:], off+n
		switch typ {
		case 'P':
			if haveBind {
				return units, false
			}
			name, _, ok := cstring(b)
			if !ok {
				return units, false
			}
			if s.mode != "transaction" && name != "" {
				return units, false
			}
			if _, exists := s.stmts[name]; exists && name != "" {
				return units, false // PostgreSQL would say it already exists
			}
			cur.parse, cur.stmt = true, name
			s.parseFrames[name] = frame
		case 'B':
			if haveBind {
				return units, false
			}
			_, rest, ok := cstring(b)
			if !ok {
				return units, false
			}
			name, _, ok := cstring(rest)
			if !ok || (cur.parse && name != cur.stmt) {
				return units, false
			}
			f, known := s.stmtDec[name]
			if !known {
				return units, false
			}
			if !cur.parse && name == "" && len(s.lastUnnamed) == 0 {
				return units, false
			}
			cur.stmt, cur.facts = name, f
			haveBind = true
		case 'D':
			if !haveBind || len(b) < 1 || b[0] != 'P' || cur.described {
				return units, false
			}
			cur.described, cur.descOff = true, at
		case 'E':
			if !haveBind || len(b) < 5 {
				return units, false
			}
			_, rest, ok := cstring(b)
			if !ok || len(rest) < 4 || binary.BigEndian.Uint32(rest) != 0 {
				return units, false
			}
			cur.execOff = at
			units = append(units, cur)
			cur = unit{descOff: -1, execOff: -1}
			haveBind = false
		case 'S':
			if len(p) != 0 || haveBind || cur.parse {
				return units, false
			}
		default:
			return units, false
		}
	}
	return units, true
}

// boundParams is a Bind's parameters and formats, aliasing pending.
type boundParams struct {
	paramFormats  []int16
	params        [][]byte
	resultFormats []int16
}

// bindAt decodes the Bind that precedes the Execute at execOff.
func (s *session) bindAt(execOff int) *boundParams {
	p := s.pending
	off := 0
	var last []byte
	for off < execOff && off+5 <= len(p) {
		n := int(binary.BigEndian.Uint32(p[off+1:off+5])) + 1
		if p[off] == 'B' {
			last = p[off : off+n]
		}
		off += n
	}
	if last == nil {
		return nil
	}
	return decodeBind(body(last))
}

func decodeBind(b []byte) *boundParams {
	_, rest, ok := cstring(b)
	if !ok {
		return nil
	}
	_, rest, ok = cstring(rest)
	if !ok {
		return nil
	}
	bp := &boundParams{}
	i16 := func() (int, bool) {
		if len(rest) < 2 {
			return 0, false
		}
		v := int(int16(binary.BigEndian.Uint16(rest)))
		rest = rest[2:]
		return v, true
	}
	n, ok := i16()
	if !ok || n < 0 {
		return nil
	}
	for i := 0; i < n; i++ {
		f, ok := i16()
		if !ok {
			return nil
		}
		bp.paramFormats = append(bp.paramFormats, int16(f))
	}
	n, ok = i16()
	if !ok || n < 0 {
		return nil
	}
	bp.params = make([][]byte, n)
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return nil
		}
		l := int(int32(binary.BigEndian.Uint32(rest)))
		rest = rest[4:]
		if l < 0 {
			continue // NULL
		}
		if l > len(rest) {
			return nil
		}
		bp.params[i] = rest[:l:l]
		if l == 0 {
			bp.params[i] = []byte{}
		}
		rest = rest[l:]
	}
	n, ok = i16()
	if !ok || n < 0 {
		return nil
	}
	for i := 0; i < n; i++ {
		f, ok := i16()
		if !ok {
			return nil
		}
		bp.resultFormats = append(bp.resultFormats, int16(f))
	}
	return bp
}

// releaseUnits keeps the batch's unit array for the next batch, cleared so
// it holds on to no result or fill.
func (s *session) releaseUnits(units []unit) {
	clear(units)
	s.units = units[:0]
}
