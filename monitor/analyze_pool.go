package monitor

import (
	"fmt"
	"time"
)

// poolFindings covers checkout waits (with whether a bigger pool would
// help), max_client_conn headroom and servers idle in a transaction.
func poolFindings(s Settings, snap Snapshot, waits []poolWindow, hist map[[2]string][]PoolStats, now time.Time) []Finding {
	t := s.Thresholds
	var out []Finding
	pools := map[[2]string]PoolStats{}
	for _, p := range snap.Pools {
		pools[[2]string{p.Database, p.User}] = p
	}
	for _, w := range waits {
		if w.waits.Count() == 0 {
			continue
		}
		p95 := time.Duration(w.waits.Quantile(0.95) * 1e9)
		if p95 < t.PoolWaitP95 {
			continue
		}
		subject := w.database + "/" + w.user
		p := pools[[2]string{w.database, w.user}]
		// Peaks over the window's ticks (the current snapshot included).
		peakBusy, peakIdleTx, peakWaiting := p.ServersActive+p.ServersIdleInTx, p.ServersIdleInTx, p.ClientsWaiting
		for _, h := range hist[[2]string{w.database, w.user}] {
			peakBusy = max(peakBusy, h.ServersActive+h.ServersIdleInTx)
			peakIdleTx = max(peakIdleTx, h.ServersIdleInTx)
			peakWaiting = max(peakWaiting, h.ClientsWaiting)
		}
		f := newFinding(KindPoolWait, subject, SeverityWarning, "Clients wait for a server in pool "+subject)
		if p95 >= 10*t.PoolWaitP95 {
			f.Severity = SeverityCritical
		}
		f.Evidence = Evidence{Window: windowText(s.Window), From: now.Add(-s.Window), To: now,
			Summary: fmt.Sprintf("p95 checkout wait %s over %d checkouts (max %s); pool size %d; at peak in the window %d servers busy (%d idle in transaction) and %d clients waiting",
				p95.Round(time.Microsecond), w.waits.Count(), time.Duration(w.waits.Max()*1e9).Round(time.Microsecond),
				p.Size, peakBusy, peakIdleTx, peakWaiting),
			Values: map[string]any{"wait_p95_ms": float64(p95) / 1e6, "wait_max_ms": w.waits.Max() * 1e3,
				"checkouts": w.waits.Count(), "pool_size": p.Size, "servers_active": p.ServersActive,
				"servers_idle_in_tx": p.ServersIdleInTx, "servers_idle": p.ServersIdle,
				"clients_waiting": p.ClientsWaiting, "peak_servers_busy": peakBusy, "peak_servers_idle_in_tx": peakIdleTx,
				"peak_clients_waiting": peakWaiting, "threshold_ms": float64(t.PoolWaitP95) / 1e6}}
		switch {
		case p.Size > 0 && peakIdleTx*2 >= p.Size:
			f.Recommendation = fmt.Sprintf("Up to %d of %d servers sat idle inside transactions: the application holds transactions open between statements. Fix that (commit promptly, or set idle_in_transaction_session_timeout); a bigger pool would only hide it.", peakIdleTx, p.Size)
		case p.Size > 0 && peakBusy >= p.Size:
			f.Recommendation = fmt.Sprintf("All %d servers are busy running queries. Raise the pool size (e.g. to %d) if PostgreSQL has spare CPU and connections; if it is CPU-bound, make the top queries cheaper or cache them instead.", p.Size, p.Size+p.Size/2+1)
		default:
			f.Recommendation = "Clients waited although servers were not all busy: server connections are being opened on demand. Raise the pool's minimum size so warm connections are ready, and check connect latency to PostgreSQL."
		}
		f.Score = float64(p95) / float64(t.PoolWaitP95) * 10
		out = append(out, f)
	}
	if snap.MaxClientConn > 0 {
		n := len(snap.Clients)
		ratio := float64(n) / float64(snap.MaxClientConn)
		if ratio >= t.MaxClientConnRatio {
			f := newFinding(KindPoolMaxClients, "", SeverityWarning, "Client connections near max_client_conn")
			if n >= snap.MaxClientConn {
				f.Severity = SeverityCritical
			}
			f.Evidence = Evidence{Window: "now", From: now, To: now,
				Summary: fmt.Sprintf("%d of %d client connections in use (%.0f%%)", n, snap.MaxClientConn, ratio*100),
				Values:  map[string]any{"clients": n, "max_client_conn": snap.MaxClientConn, "ratio": ratio, "threshold": t.MaxClientConnRatio}}
			f.Recommendation = "New clients will be refused at the limit: raise max_client_conn (clients are cheap in Sluice; servers are what the pool bounds), or find which application opens connections without closing them (see /api/v1/stats clients by application_name)."
			f.Score = ratio * 100
			out = append(out, f)
		}
	}
	type idle struct {
		n      int
		oldest time.Duration
		ids    []uint64
	}
	idleByPool := map[string]*idle{}
	for _, sv := range snap.Servers {
		if !sv.idleInTx() || sv.Since.IsZero() {
			continue
		}
		age := now.Sub(sv.Since)
		if age < t.IdleInTransaction {
			continue
		}
		k := sv.Database + "/" + sv.User
		e := idleByPool[k]
		if e == nil {
			e = &idle{}
			idleByPool[k] = e
		}
		e.n++
		e.oldest = max(e.oldest, age)
		if len(e.ids) < 10 {
			e.ids = append(e.ids, sv.ID)
		}
	}
	for k, e := range idleByPool {
		f := newFinding(KindPoolIdleInTx, k, SeverityWarning, "Servers idle in transaction in pool "+k)
		f.Evidence = Evidence{Window: "now", From: now, To: now,
			Summary: fmt.Sprintf("%d servers idle in transaction for more than %s (oldest %s)", e.n, t.IdleInTransaction, e.oldest.Round(time.Second)),
			Values:  map[string]any{"servers": e.n, "oldest_s": e.oldest.Seconds(), "server_ids": e.ids, "threshold_s": t.IdleInTransaction.Seconds()}}
		f.Recommendation = "A server idle in a transaction is unusable by other clients and holds locks and old snapshots (blocking vacuum). Make the application commit or roll back promptly; set idle_in_transaction_session_timeout as a backstop."
		f.Score = e.oldest.Seconds()
		out = append(out, f)
	}
	return out
}
