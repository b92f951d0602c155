package proxy

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// The result cache on the request path. Lookups happen only where the
// answer can't depend on anything the key does not cover: one read-only
// statement, no transaction open, a session whose role, search_path and
// output settings Sluice can track. Writes seen here bump the versions of
// what they write when sent and again when their transaction ends.

// untrackedSettings change results but are not reported by PostgreSQL in
// ParameterStatus: a session that sets one stops using the cache.
var untrackedSettings = map[string]bool{
	"role": true, "session_authorization": true, "search_path": true, "*": true,
	"extra_float_digits": true, "bytea_output": true, "lc_monetary": true, "lc_numeric": true,
	"lc_time": true, "timezone_abbreviations": true, "array_nulls": true,
	"transform_null_equals": true, "xmlbinary": true, "xmloption": true, "row_security": true,
}

// cacheStage serves a simple Query from the cache or arranges for its
// answer to be stored; it also invalidates what a write touches.
func cacheStage(s *session, r *request) (bool, error) {
	c := s.srv.snapshot().cache
	if c != nil && r.kind == 'S' {
		return extendedCacheStage(s, r, c)
	}
	d := r.decision
	if c == nil || d == nil || r.kind != 'Q' {
		return false, nil
	}
	s.trackState(d)
	s.invalidateWrites(c, d)
	if s.cacheOff || len(d.Statements) != 1 || d.Block != nil || d.Cache.Off {
		return false, nil
	}
	st := d.Statements[0]
	if !cacheableKind(st) {
		s.countLocking(c, st)
		return false, nil
	}
	if !s.idleLocal() {
		c.Check(s.ctx(), resultcache.Query{Database: s.db, Kind: st.Kind, Single: true, ReadOnly: st.ReadOnly, InTransaction: true})
		return false, nil
	}
	sql, dir := resultcache.NormalizeComments(d.SQL)
	ruleTTL := time.Duration(0)
	if d.Cache.Set {
		ruleTTL = d.Cache.TTL
	}
	ttl, ok := c.Decide(st.Fingerprint, ruleTTL, dir)
	if !ok {
		return false, nil
	}
	req, ok := s.cacheRequest(c, st, sql, 'Q', false, nil, nil, nil)
	if !ok {
		return false, nil
	}
	res := c.Lookup(s.ctx(), req)
	if res.Hit() && res.Fill == nil {
		out := append(append(s.scratch[:0], res.Payload...), 'Z', 0, 0, 0, 5, 'I')
		s.scratch = out[:0]
		s.pending = s.pending[:s.lastFrame]
		s.setState(clientIdle)
		r.cacheHit, r.rows = true, countRows(res.Payload)
		for _, c := range completionStages { // counted before the client can go on
			c.run(s, r)
		}
		s.writeClient(out)
		s.recycleLocal(r)
		return true, nil
	}
	if res.Fill != nil {
		r.fill, r.ttl, r.maxCapture = res.Fill, ttl, s.srv.maxEntry(c)
	}
	return false, nil
}

// cacheableKind is a single read statement the cache may hold.
func cacheableKind(st *rewrite.Statement) bool {
	if st.ParseError != "" || !st.ReadOnly || st.Locking {
		return false
	}
	switch st.Kind {
	case "select", "values", "table":
		return true
	}
	return false
}

// countLocking counts a locking SELECT, refused by cacheableKind before
// Check, under its reason, like every refusal.
func (s *session) countLocking(c *resultcache.Cache, st *rewrite.Statement) {
	if st.Locking && st.ParseError == "" {
		c.Check(s.ctx(), resultcache.Query{Database: s.db, Kind: st.Kind, Single: true, ReadOnly: st.ReadOnly, Locking: true})
	}
}

// cacheRequest checks eligibility against the catalogs and derives the
// key; ok is false when the statement must go to PostgreSQL uncached.
func (s *session) cacheRequest(c *resultcache.Cache, st *rewrite.Statement, sql string, proto byte, described bool,
	paramFormats []int16, params [][]byte, resultFormats []int16) (*resultcache.Request, bool) {
	role := s.pool.settings.Load().target.user
	q := resultcache.Query{
		Database: s.db, User: role, SearchPath: s.searchPath(),
		Functions: st.Functions, ReadOnly: st.ReadOnly, Single: true, Locking: st.Locking,
		TempObjects: s.temp, Kind: st.Kind,
	}
	if len(st.Reads) > 0 {
		q.Reads = make([]resultcache.Relation, len(st.Reads))
		for i, rel := range st.Reads {
			q.Reads[i] = resultcache.Relation{Schema: rel.Schema, Name: rel.Name}
		}
	}
	ok, reason, rels := c.Check(s.ctx(), q)
	if !ok {
		s.log.Debug().Str("reason", reason).Msg("not cacheable")
		return nil, false
	}
	settings := make([]string, len(resultcache.KeySettings))
	for i, k := range resultcache.KeySettings {
		settings[i] = s.wanted[lower(k)]
	}
	key := resultcache.MakeKey(&resultcache.KeyInput{
		Database: s.db, Role: role, SearchPath: s.searchPath(), Settings: settings,
		SQL: sql, Protocol: proto, Described: described,
		ParamFormats: paramFormats, Params: params, ResultFormats: resultFormats,
	})
	return &resultcache.Request{Key: key, Database: s.db, Rels: rels, Fingerprint: st.Fingerprint}, true
}

// trackState notes session changes that the cache key can't follow.
func (s *session) trackState(d *rewrite.Decision) {
	for _, st := range d.Statements {
		if st.TempObjects {
			s.temp = true
		}
		for _, ch := range st.SessionState {
			switch ch.Kind {
			case rewrite.StateTempObject:
				s.temp = true
			case rewrite.StateSet:
				if untrackedSettings[lower(ch.Name)] {
					s.cacheOff = true
				}
			}
		}
	}
}

// invalidateWrites begins a write for what d writes as it is sent; the
// write ends when its transaction does (commitWrites).
func (s *session) invalidateWrites(c *resultcache.Cache, d *rewrite.Decision) {
	for _, st := range d.Statements {
		if st.ParseError != "" {
			continue
		}
		if st.Kind == "ddl" || st.Kind == "create_table_as" || st.Kind == "refresh_matview" || st.Kind == "truncate" {
			c.CatalogChanged(s.db)
		}
		if len(st.Writes) > 0 {
			rels := make([]resultcache.Relation, len(st.Writes))
			for i, w := range st.Writes {
				rels[i] = resultcache.Relation{Schema: w.Schema, Name: w.Name}
			}
			s.writeInvalidate(c, rels, false)
			continue
		}
		if !st.ReadOnly || st.Kind == "call" || st.Kind == "do" ||
			c.CallsUserFunction(s.ctx(), s.db, s.searchPath(), s.pool.settings.Load().target.user, st.Functions) {
			// A write the analyzer can't attribute (a procedure, a DO
			// block, a user function that may write): the whole database.
			s.writeInvalidate(c, nil, true)
		}
	}
}

func (s *session) writeInvalidate(c *resultcache.Cache, rels []resultcache.Relation, whole bool) {
	ctx, cancel := context.WithTimeout(s.ctx(), 2*time.Second)
	defer cancel()
	var w *resultcache.Write
	if whole {
		w = c.BeginWriteDatabase(ctx, s.db)
	} else {
		w = c.BeginWrite(ctx, s.db, s.searchPath(), s.pool.settings.Load().target.user, rels)
	}
	s.mu.Lock()
	s.txWrites = append(s.txWrites, w)
	s.mu.Unlock()
}

// commitWrites ends, at the ReadyForQuery that ends a transaction which
// wrote (commit or rollback), the writes begun when its statements were
// sent: versions are bumped again and fills of what they touch resume.
// Called by the relay before the client sees that ReadyForQuery, and when
// the client goes away.
func (s *session) commitWrites() {
	s.mu.Lock()
	ws := s.txWrites
	s.txWrites = nil
	s.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, w := range ws {
		w.Done(ctx)
	}
}

// finishFill stores or abandons a request's captured answer at its
// ReadyForQuery.
func finishFill(r *request, status byte) {
	if r.fill == nil {
		return
	}
	if status == 'I' && !r.captureFailed && len(r.capture) > 0 {
		r.fill.Store(r.capture, r.ttl)
	} else {
		r.fill.Abandon()
	}
	r.fill, r.capture = nil, nil
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// maxEntry is the cache's max_entry_size, read once per fill.
func (srv *Server) maxEntry(c *resultcache.Cache) int {
	return int(c.Config().MaxEntrySize)
}

// searchPath is the client's search_path: its own, else the servers'.
func (s *session) searchPath() string {
	if sp, ok := s.wanted["search_path"]; ok {
		return sp
	}
	return s.pool.defaultSearchPath()
}

// countRows counts the DataRows of a cached answer, for stats.
func countRows(payload []byte) int64 {
	var n int64
	for len(payload) >= 5 {
		l := int(binary.BigEndian.Uint32(payload[1:5])) + 1
		if l > len(payload) || l < 5 {
			break
		}
		if payload[0] == 'D' {
			n++
		}
		payload = payload[l:]
	}
	return n
}
