package monitor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// dbCounters are one database's cumulative pg_stat counters at a poll.
type dbCounters struct {
	t                                       time.Time
	statsReset                              string
	blksHit, blksRead, tempFiles, tempBytes int64
	deadlocks                               int64
	tables                                  map[string]tableCounters
}

type tableCounters struct {
	seqScan, seqTupRead, idxScan, liveTup int64
}

// dbPass polls every configured database through a monitoring connection.
func (a *analyzer) dbPass(ctx context.Context, now time.Time) []Finding {
	start := time.Now()
	defer func() { metricAnalysisDuration.WithLabelValues("database").Observe(time.Since(start).Seconds()) }()
	if a.deps.Dial == nil || a.deps.Databases == nil {
		return nil
	}
	s := a.settings()
	var fs []Finding
	for _, db := range a.deps.Databases() {
		if db == "*" || db == "" { // a wildcard entry is no database to poll
			continue
		}
		got, err := a.pollDB(ctx, s, db, now)
		if err != nil {
			metricAnalysisErrors.WithLabelValues("database").Inc()
			a.log.Warn().Err(err).Str("database", db).Msg("database statistics poll failed")
			f := newFinding(KindDBUnreachable, db, SeverityWarning, "Cannot read statistics of database "+db)
			f.Evidence = Evidence{Window: "now", From: now, To: now, Summary: err.Error(), Values: map[string]any{"error": err.Error()}}
			f.Recommendation = "Database findings are missing for this database: check the monitoring connection (role, password, pg_hba) and that the role can read pg_stat_* (grant pg_monitor)."
			fs = append(fs, f)
			continue
		}
		fs = append(fs, got...)
	}
	a.store.replace("database", now, fs)
	return fs
}

func (a *analyzer) pollDB(ctx context.Context, s Settings, db string, now time.Time) ([]Finding, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*s.QueryTimeout)
	defer cancel()
	c, err := dialMonitor(ctx, a.deps, db, s.QueryTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	cur, err := readDBCounters(ctx, c, now)
	if err != nil {
		return nil, err
	}
	act, err := pgRows(ctx, c, `SELECT pid, coalesce(usename,''), coalesce(application_name,''), coalesce(client_addr::text,''), state,
		extract(epoch from now()-state_change), coalesce(extract(epoch from now()-query_start),0), left(query, 300)
		FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
		  AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')`)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	prev := a.dbPrev[db]
	a.dbPrev[db] = cur
	a.mu.Unlock()
	fs := dbFindings(s, db, prev, cur)
	return append(fs, activityFindings(s, db, act, now)...), nil
}

func readDBCounters(ctx context.Context, c *pgconn.PgConn, now time.Time) (*dbCounters, error) {
	rows, err := pgRows(ctx, c, `SELECT blks_hit, blks_read, temp_files, temp_bytes, deadlocks, coalesce(stats_reset::text, '')
		FROM pg_stat_database WHERE datname = current_database()`)
	if err != nil {
		return nil, err
	}
	cur := &dbCounters{t: now, tables: map[string]tableCounters{}}
	if len(rows) == 1 {
		r := rows[0]
		cur.blksHit, cur.blksRead, cur.tempFiles, cur.tempBytes, cur.deadlocks = atoi(r[0]), atoi(r[1]), atoi(r[2]), atoi(r[3]), atoi(r[4])
		cur.statsReset = r[5]
	}
	tabs, err := pgRows(ctx, c, `SELECT format('%I.%I', schemaname, relname), seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_live_tup
		FROM pg_stat_user_tables`)
	if err != nil {
		return nil, err
	}
	for _, r := range tabs {
		cur.tables[r[0]] = tableCounters{atoi(r[1]), atoi(r[2]), atoi(r[3]), atoi(r[4])}
	}
	return cur, nil
}

// dbFindings works on deltas since the previous poll; on the first poll
// the counters cover everything since the statistics were last reset.
func dbFindings(s Settings, db string, prev, cur *dbCounters) []Finding {
	t := s.Thresholds
	base := &dbCounters{tables: map[string]tableCounters{}}
	win := Evidence{To: cur.t}
	if prev != nil && prev.statsReset == cur.statsReset {
		base = prev
		win.From, win.Window = prev.t, "last "+cur.t.Sub(prev.t).Round(time.Second).String()
	} else {
		win.Window = "since statistics reset"
		if cur.statsReset != "" {
			win.Window += " (" + cur.statsReset + ")"
		}
	}
	var out []Finding
	var names []string
	for n := range cur.tables {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		c := cur.tables[name]
		p := base.tables[name]
		scans, tup, idx := c.seqScan-p.seqScan, c.seqTupRead-p.seqTupRead, c.idxScan-p.idxScan
		if c.liveTup < t.SeqScanMinRows || scans < t.SeqScanMinScans {
			continue
		}
		f := newFinding(KindDBSeqScan, db+"/"+name, SeverityWarning, "Sequential scans on large table "+name)
		f.Evidence = win
		f.Evidence.Summary = fmt.Sprintf("%d sequential scans read %d rows of %s (%d live rows); %d index scans", scans, tup, name, c.liveTup, idx)
		f.Evidence.Values = map[string]any{"database": db, "table": name, "seq_scans": scans, "seq_rows_read": tup,
			"idx_scans": idx, "live_rows": c.liveTup, "threshold_rows": t.SeqScanMinRows, "threshold_scans": t.SeqScanMinScans}
		f.Recommendation = fmt.Sprintf("Find the statements that filter %s without an index (the index advice names the column and the cost it saves) and add the index; if the scans are intended reports, run them on a replica.", name)
		f.Score = float64(tup) / 1e6
		out = append(out, f)
	}
	hit, read := cur.blksHit-base.blksHit, cur.blksRead-base.blksRead
	if hit+read >= 1000 {
		ratio := float64(hit) / float64(hit+read)
		if ratio < t.BufferHitRatioMin {
			f := newFinding(KindDBBufferHit, db, SeverityWarning, "Low buffer cache hit ratio in "+db)
			f.Evidence = win
			f.Evidence.Summary = fmt.Sprintf("%.2f%% of block reads hit shared_buffers (%d hits, %d reads)", ratio*100, hit, read)
			f.Evidence.Values = map[string]any{"database": db, "hit_ratio": ratio, "blks_hit": hit, "blks_read": read, "threshold": t.BufferHitRatioMin}
			f.Recommendation = "The working set does not fit in shared_buffers, or sequential scans stream large tables: fix the scans first (see seq_scan findings), then consider raising shared_buffers (about 25% of RAM)."
			f.Score = (1 - ratio) * 100
			out = append(out, f)
		}
	}
	if n := cur.tempFiles - base.tempFiles; n > 0 {
		f := newFinding(KindDBTempFiles, db, SeverityInfo, "Queries spill to temporary files in "+db)
		f.Evidence = win
		bytes := cur.tempBytes - base.tempBytes
		f.Evidence.Summary = fmt.Sprintf("%d temp files, %d MiB written", n, bytes>>20)
		f.Evidence.Values = map[string]any{"database": db, "temp_files": n, "temp_bytes": bytes}
		f.Recommendation = "Sorts and hashes exceed work_mem and go to disk: raise work_mem for the roles that run them (SET in a rewrite rule or ALTER ROLE), or add indexes that deliver rows in order."
		f.Score = float64(bytes>>20) / 10
		out = append(out, f)
	}
	if n := cur.deadlocks - base.deadlocks; n > 0 {
		f := newFinding(KindDBDeadlocks, db, SeverityWarning, "Deadlocks in "+db)
		f.Evidence = win
		f.Evidence.Summary = fmt.Sprintf("%d deadlocks", n)
		f.Evidence.Values = map[string]any{"database": db, "deadlocks": n}
		f.Recommendation = "Transactions lock the same rows in different orders: make them take locks in a consistent order (e.g. sort ids before UPDATE) and keep them short; the server log names the statements."
		f.Score = float64(n) * 10
		out = append(out, f)
	}
	return out
}

// activityFindings reports backends idle in a transaction or running long.
func activityFindings(s Settings, db string, rows [][]string, now time.Time) []Finding {
	t := s.Thresholds
	type backend struct {
		PID   int64   `json:"pid"`
		User  string  `json:"user"`
		App   string  `json:"application_name"`
		Addr  string  `json:"client_addr"`
		AgeS  float64 `json:"age_s"`
		Query string  `json:"query"`
	}
	var idle, long []backend
	for _, r := range rows {
		b := backend{PID: atoi(r[0]), User: r[1], App: r[2], Addr: r[3], Query: r[7]}
		switch r[4] {
		case "active":
			b.AgeS = atof(r[6])
			if b.AgeS >= t.LongRunning.Seconds() {
				long = append(long, b)
			}
		default:
			b.AgeS = atof(r[5])
			if b.AgeS >= t.IdleInTransaction.Seconds() {
				idle = append(idle, b)
			}
		}
	}
	byAge := func(x, y backend) int { return cmp.Compare(y.AgeS, x.AgeS) }
	slices.SortFunc(idle, byAge)
	slices.SortFunc(long, byAge)
	oldest := func(bs []backend) float64 {
		m := 0.0
		for _, b := range bs {
			m = max(m, b.AgeS)
		}
		return m
	}
	at := Evidence{Window: "now (pg_stat_activity)", From: now, To: now}
	var out []Finding
	if len(idle) > 0 {
		f := newFinding(KindDBIdleInTx, db, SeverityWarning, "Backends idle in transaction in "+db)
		f.Evidence = at
		f.Evidence.Summary = fmt.Sprintf("%d backends idle in transaction longer than %s (oldest %.0fs, pid %d, last statement: %s)",
			len(idle), t.IdleInTransaction, oldest(idle), idle[0].PID, shorten(idle[0].Query, 100))
		f.Evidence.Values = map[string]any{"database": db, "backends": idle, "oldest_s": oldest(idle), "threshold_s": t.IdleInTransaction.Seconds()}
		f.Recommendation = "Open transactions hold locks and stop vacuum from removing dead rows. Fix the client that leaves them open (application_name and client_addr above); set idle_in_transaction_session_timeout as a backstop."
		f.Score = oldest(idle) / 10
		out = append(out, f)
	}
	if len(long) > 0 {
		f := newFinding(KindDBLongRunning, db, SeverityWarning, "Long-running statements in "+db)
		f.Evidence = at
		f.Evidence.Summary = fmt.Sprintf("%d statements running longer than %s (oldest %.0fs: %s)", len(long), t.LongRunning, oldest(long), shorten(long[0].Query, 100))
		f.Evidence.Values = map[string]any{"database": db, "backends": long, "oldest_s": oldest(long), "threshold_s": t.LongRunning.Seconds()}
		f.Recommendation = "Check their plans (EXPLAIN) and whether they wait on locks (pg_locks); set statement_timeout for interactive roles; cancel with pg_cancel_backend(pid) if they are runaways."
		f.Score = oldest(long) / 10
		out = append(out, f)
	}
	return out
}
