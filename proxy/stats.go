package proxy

import (
	"context"
	"sort"
	"time"

	"github.com/sluice-proxy/sluice/monitor"
)

// Snapshot reports pools, clients and servers from their own states (the
// states sessions and servers change in one place), for monitor/.
func (s *Server) Snapshot() monitor.Snapshot {
	cfg := s.snapshot()
	snap := monitor.Snapshot{MaxClientConn: cfg.proxy.MaxClientConn}
	type agg struct{ active, waiting int }
	perPool := map[poolKey]*agg{}
	s.sessions.Range(func(_, v any) bool {
		sess := v.(*session)
		st := clientState(sess.state.Load())
		cs := monitor.ClientStats{ID: sess.id, Addr: sess.addr, State: st.String(), Since: time.Unix(0, sess.since.Load())}
		if st == clientLogin {
			// Its names are being written by the login; the state's
			// atomic store publishes them once it moves on.
			snap.Clients = append(snap.Clients, cs)
			return true
		}
		cs.Database, cs.User, cs.ApplicationName = sess.db, sess.user, sess.app
		snap.Clients = append(snap.Clients, cs)
		k := poolKey{sess.db, sess.user}
		a := perPool[k]
		if a == nil {
			a = &agg{}
			perPool[k] = a
		}
		sess.mu.Lock()
		sc := sess.server
		sess.mu.Unlock()
		// As PgBouncer's cl_active: a client linked to a server (a request
		// in flight, or inside a transaction) is active.
		switch {
		case st == clientWaiting:
			a.waiting++
		case st == clientActive || sc != nil:
			a.active++
		}
		if sc != nil {
			sv := serverStats(sc, k)
			sess.mu.Lock()
			if sess.outstanding == 0 && !sess.unsynced {
				// Linked to its client but running nothing (idle in a
				// transaction, or a session-mode client between queries).
				sv.State = "linked"
			}
			sess.mu.Unlock()
			snap.Servers = append(snap.Servers, sv)
		}
		return true
	})
	s.poolsMu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	s.poolsMu.Unlock()
	for _, p := range pools {
		ps := p.settings.Load()
		p.mu.Lock()
		st := monitor.PoolStats{
			Database: p.key.db, User: p.key.user, Mode: ps.mode, Size: ps.size, MinSize: ps.minSize,
			ServersIdle: len(p.idle), ServersActive: p.active, ClientsWaiting: len(p.waiters),
		}
		for _, sc := range p.idle {
			snap.Servers = append(snap.Servers, serverStats(sc, p.key))
		}
		var maxWait time.Duration
		for _, w := range p.waiters {
			if d := time.Since(w.since); d > maxWait {
				maxWait = d
			}
		}
		total := p.total
		p.mu.Unlock()
		st.ServersConnecting = total - st.ServersIdle - st.ServersActive
		if st.ServersConnecting < 0 {
			st.ServersConnecting = 0
		}
		st.MaxWait = maxWait
		st.TotalQueries = p.totalQueries.Load()
		st.TotalXacts = p.totalXacts.Load()
		if a := perPool[p.key]; a != nil {
			st.ClientsActive = a.active
			if a.waiting > st.ClientsWaiting {
				st.ClientsWaiting = a.waiting
			}
		}
		for _, sv := range snap.Servers {
			if sv.Database == p.key.db && sv.User == p.key.user && (sv.TxStatus == 'T' || sv.TxStatus == 'E') {
				st.ServersIdleInTx++
			}
		}
		snap.Totals.Queries += st.TotalQueries
		snap.Totals.Xacts += st.TotalXacts
		snap.Pools = append(snap.Pools, st)
	}
	sort.Slice(snap.Pools, func(i, j int) bool {
		if snap.Pools[i].Database != snap.Pools[j].Database {
			return snap.Pools[i].Database < snap.Pools[j].Database
		}
		return snap.Pools[i].User < snap.Pools[j].User
	})
	snap.Totals.ClientsTotal = int64(len(snap.Clients))
	snap.Totals.ServersTotal = int64(len(snap.Servers))
	snap.Totals.BytesIn = int64(counterValue(bytesIn))
	snap.Totals.BytesOut = int64(counterValue(bytesOut))
	return snap
}

func serverStats(sc *serverConn, k poolKey) monitor.ServerStats {
	return monitor.ServerStats{
		ID: sc.id, Addr: sc.addr, Database: k.db, User: k.user,
		State: serverState(sc.state.Load()).String(), Since: time.Unix(0, sc.since.Load()),
		TxStatus: byte(sc.txStatus.Load()),
	}
}

// Databases lists the databases Sluice serves: the configured names and,
// for a "*" entry, those clients have opened pools for.
func (s *Server) Databases() []string {
	seen := map[string]bool{}
	var out []string
	add := func(db string) {
		if db != "*" && db != "" && !seen[db] {
			seen[db] = true
			out = append(out, db)
		}
	}
	for name := range s.snapshot().dbs {
		add(name)
	}
	s.poolsMu.Lock()
	for k := range s.pools {
		add(k.db)
	}
	s.poolsMu.Unlock()
	sort.Strings(out)
	return out
}

// Ready checks that a server of each database in Databases can be reached.
func (s *Server) Ready(ctx context.Context) map[string]error {
	out := map[string]error{}
	for _, db := range s.Databases() {
		c, err := s.DialDatabase(ctx, db)
		if err == nil {
			c.Close(ctx)
		}
		out[db] = err
	}
	return out
}
