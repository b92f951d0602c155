package proxy

import (
	"time"

	"github.com/sluice-proxy/sluice/monitor"
)

// A request (everything up to a Query, FunctionCall or Sync) passes through
// requestStages in order; a stage that answers the request itself (a cache
// hit, a blocked statement) returns done and the rest are skipped. When the
// server's ReadyForQuery for the request arrives, the relay runs
// completionStages (cache fill, stats). Rewrite and cache plug in here
// without touching the relay loop.
type stage struct {
	name string
	run  func(s *session, r *request) (done bool, err error)
}

var requestStages = []stage{
	{"rewrite", rewriteStage},
	{"cache_lookup", cacheStage},
	{"relay", relayStage},
}

type completion struct {
	name string
	run  func(s *session, r *request)
}

var completionStages = []completion{
	{"stats", statsStage},
}

// The cache fill runs in the relay (finishFill) before completionStages,
// with the ReadyForQuery status that says whether the answer may be kept.

// relayStage takes a server (pool checkout happens in send, only when none
// is linked) and streams the request to it.
func relayStage(s *session, r *request) (bool, error) {
	return true, s.send(r)
}

// statsStage counts a finished request.
func statsStage(s *session, r *request) {
	var d time.Duration
	if r.end.IsZero() {
		d = time.Since(r.start)
	} else {
		d = r.end.Sub(r.start)
	}
	queryDuration.Observe(d.Seconds())
	s.pool.totalQueries.Add(1)
	if r.sqlstate != "" && len(r.sqlstate) >= 2 {
		errorsTotal.WithLabelValues(r.sqlstate[:2]).Inc()
	}
	if e := s.log.Debug(); e.Enabled() {
		e.Dur("duration", d).Int64("rows", r.rows).Str("sqlstate", r.sqlstate).Bool("cache_hit", r.cacheHit).
			Bool("cache_fill", r.fill != nil).Msg("request")
	}
	if rec := s.srv.recorder; rec != nil && (r.decision != nil || r.kind != 'S') {
		// (A Sync batch that executed nothing, e.g. a driver's prepare
		// round trip, is no statement.)
		ev := monitor.QueryEvent{Database: s.db, User: s.user, Duration: d, Rows: r.rows, SQLState: r.sqlstate, CacheHit: r.cacheHit}
		if dec := r.decision; dec != nil && len(dec.Statements) > 0 {
			st := dec.Statements[0]
			ev.Fingerprint, ev.Normalized, ev.Example, ev.Rules = st.Fingerprint, st.Normalized, dec.SQL, dec.Rules
			ev.Cacheable = len(dec.Statements) == 1 && cacheableKind(st)
		}
		rec.Query(ev)
	}
}
