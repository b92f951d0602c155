package monitor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// indexPass runs EXPLAIN for the slowest read fingerprints and, with
// hypopg, measures hypothetical single-column indexes on their filtered and
// joined columns. It recommends CREATE INDEX only when the estimated total
// cost drops by index_advice.min_cost_factor.
func (a *analyzer) indexPass(ctx context.Context, now time.Time) []Finding {
	start := time.Now()
	defer func() { metricAnalysisDuration.WithLabelValues("index").Observe(time.Since(start).Seconds()) }()
	s := a.settings()
	if a.col == nil || a.deps.Dial == nil {
		return nil
	}
	ia := s.IndexAdvice
	var cands []cand
	for _, q := range a.col.table.all() {
		if !q.HasExample || q.MeanTimeMs < float64(ia.MinMeanTime)/1e6 || q.Calls == q.CacheHits {
			continue
		}
		cands = append(cands, cand{q: q})
	}
	slices.SortFunc(cands, func(x, y cand) int { return cmp.Compare(y.q.TotalTimeMs, x.q.TotalTimeMs) })
	byDB := map[string][]cand{}
	n := 0
	for _, c := range cands {
		if n >= ia.TopQueries {
			break
		}
		fp, db := c.q.Fingerprint, c.q.Database
		var raw uint64
		fmt.Sscanf(fp, "%x", &raw)
		_, ex, ok := a.col.table.lookup(raw, db)
		if !ok || ex == "" {
			continue
		}
		if _, err := parseRead(ex); err != nil {
			continue
		}
		c.example = ex
		byDB[db] = append(byDB[db], c)
		n++
	}
	var fs []Finding
	dbs := make([]string, 0, len(byDB))
	for db := range byDB {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	for _, db := range dbs {
		got, err := a.adviseDB(ctx, s, db, byDB[db], now)
		if err != nil {
			metricAnalysisErrors.WithLabelValues("index").Inc()
			a.log.Warn().Err(err).Str("database", db).Msg("index advice failed")
			continue
		}
		fs = append(fs, got...)
	}
	a.store.replace("index", now, fs)
	return fs
}

// cand is a read fingerprint chosen for index advice.
type cand struct {
	q       QueryStats
	example string
}

func (a *analyzer) adviseDB(ctx context.Context, s Settings, db string, cands []cand, now time.Time) ([]Finding, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(cands)+2)*4*s.QueryTimeout)
	defer cancel()
	c, err := dialMonitor(ctx, a.deps, db, s.QueryTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	hypo, why := ensureHypopg(ctx, c, s.IndexAdvice.CreateExtension)
	// Read-only transactions from here on: EXPLAIN executes nothing, and
	// even a planner call into a user function cannot write with the
	// monitor's role. Each statement is its own transaction so one failed
	// EXPLAIN does not abort the rest.
	if err := pgExec(ctx, c, "SELECT set_config('default_transaction_read_only', 'on', false), set_config('plan_cache_mode', 'force_generic_plan', false)"); err != nil {
		return nil, err
	}
	var out []Finding
	var limited []string
	seen := map[string]int{}
	for _, cd := range cands {
		shape, err := parseRead(cd.example)
		if err != nil {
			continue
		}
		base, plan, err := explainCost(ctx, c, cd.example, shape.params)
		if err != nil {
			a.log.Debug().Err(err).Str("fingerprint", cd.q.Fingerprint).Msg("explain failed")
			continue
		}
		cols, err := resolveColumns(ctx, c, shape)
		if err != nil || len(cols) == 0 {
			continue
		}
		if !hypo {
			if strings.Contains(plan, `"Seq Scan"`) {
				var names []string
				for _, col := range cols {
					names = append(names, col.table+"."+col.column)
				}
				limited = append(limited, fmt.Sprintf("%s (cost %.0f; candidate columns %s)", cd.q.Fingerprint, base, strings.Join(names, ", ")))
			}
			continue
		}
		var best idxCol
		bestCost := base
		for _, col := range cols {
			stmt := fmt.Sprintf("CREATE INDEX ON %s (%s)", col.table, col.quoted)
			if err := pgExec(ctx, c, "SELECT * FROM hypopg_create_index($1)", stmt); err != nil {
				continue
			}
			cost, _, err := explainCost(ctx, c, cd.example, shape.params)
			_ = pgExec(ctx, c, "SELECT hypopg_reset()")
			if err == nil && cost < bestCost {
				best, bestCost = col, cost
			}
		}
		if best.table == "" || bestCost <= 0 || base/bestCost < s.IndexAdvice.MinCostFactor {
			continue
		}
		id := KindIndexAdvice + ":" + db + "/" + best.table + "(" + best.column + ")"
		if i, ok := seen[id]; ok { // the same index helps another statement too
			f := &out[i]
			f.Evidence.Values["fingerprints"] = append(f.Evidence.Values["fingerprints"].([]string), cd.q.Fingerprint)
			f.Score += cd.q.TotalTimeMs / 1000
			continue
		}
		create := fmt.Sprintf("CREATE INDEX CONCURRENTLY ON %s (%s);", best.table, best.quoted)
		f := newFinding(KindIndexAdvice, db+"/"+best.table+"("+best.column+")", SeverityWarning, fmt.Sprintf("Index on %s(%s) would speed up a slow query", best.table, best.column))
		f.Evidence = Evidence{Window: "since fingerprint first seen", From: cd.q.FirstSeen, To: now,
			Summary: fmt.Sprintf("estimated cost %.1f -> %.1f (×%.1f) with a hypothetical index on %s(%s); %d calls, mean %.2f ms: %s",
				base, bestCost, base/bestCost, best.table, best.column, cd.q.Calls, cd.q.MeanTimeMs, shorten(cd.q.Query, 120)),
			Values: map[string]any{"database": db, "table": best.table, "column": best.column, "cost_before": base, "cost_after": bestCost,
				"factor": base / bestCost, "fingerprint": cd.q.Fingerprint, "fingerprints": []string{cd.q.Fingerprint},
				"calls": cd.q.Calls, "mean_ms": cd.q.MeanTimeMs, "total_ms": cd.q.TotalTimeMs, "query": cd.q.Query,
				"min_cost_factor": s.IndexAdvice.MinCostFactor}}
		f.Recommendation = create + " (hypopg estimate; CONCURRENTLY avoids blocking writes while it builds)"
		f.Score = cd.q.TotalTimeMs / 1000
		seen[id] = len(out)
		out = append(out, f)
	}
	if !hypo {
		f := newFinding(KindIndexLimited, db, SeverityInfo, "Index advice is limited in "+db)
		f.Evidence = Evidence{Window: "now", From: now, To: now, Summary: why, Values: map[string]any{"database": db, "reason": why, "seq_scan_queries": limited}}
		f.Recommendation = "Install hypopg (package postgresql-NN-hypopg) and run CREATE EXTENSION hypopg in " + db + " (or set monitor.index_advice.create_extension: true) so Sluice can verify index candidates with the planner's cost. " +
			"Without it only the EXPLAIN of slow reads is checked for sequential scans."
		if len(limited) > 0 {
			f.Recommendation += " Unverified candidates: " + strings.Join(limited, "; ")
		}
		out = append(out, f)
	}
	return out, nil
}

// ensureHypopg reports whether hypopg can be used on c and, if not, why.
func ensureHypopg(ctx context.Context, c *pgconn.PgConn, create bool) (bool, string) {
	rows, err := pgRows(ctx, c, "SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
	if err == nil && len(rows) == 1 {
		return true, ""
	}
	avail, err := pgRows(ctx, c, "SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
	if err != nil {
		return false, "cannot check for hypopg: " + err.Error()
	}
	if len(avail) == 0 {
		return false, "the hypopg extension is not available on the server, so hypothetical indexes cannot be costed"
	}
	if !create {
		return false, "hypopg is available but not installed in this database and monitor.index_advice.create_extension is false"
	}
	if err := pgExec(ctx, c, "CREATE EXTENSION IF NOT EXISTS hypopg"); err != nil {
		return false, "CREATE EXTENSION hypopg failed: " + err.Error()
	}
	return true, ""
}

// explainCost returns the planner's total cost and the JSON plan. With
// parameters ($n) it prepares the statement and explains the generic plan
// (the caller sets plan_cache_mode=force_generic_plan, so the NULL arguments only satisfy
// the arity and do not shape the plan; PostgreSQL 16's EXPLAIN
// (GENERIC_PLAN) does the same).
func explainCost(ctx context.Context, c *pgconn.PgConn, sql string, params int) (float64, string, error) {
	var rows [][]string
	var err error
	if params == 0 {
		rows, err = pgRows(ctx, c, "EXPLAIN (FORMAT JSON) "+sql)
	} else {
		if err = pgExec(ctx, c, "PREPARE sluice_advice AS "+sql); err != nil {
			return 0, "", err
		}
		args := strings.TrimSuffix(strings.Repeat("NULL,", params), ",")
		rows, err = pgRows(ctx, c, "EXPLAIN (FORMAT JSON) EXECUTE sluice_advice("+args+")")
		_ = pgExec(ctx, c, "DEALLOCATE sluice_advice")
	}
	if err != nil {
		return 0, "", err
	}
	if len(rows) == 0 || len(rows[0]) == 0 {
		return 0, "", fmt.Errorf("empty EXPLAIN")
	}
	var plan []struct {
		Plan struct {
			TotalCost float64 `json:"Total Cost"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(rows[0][0]), &plan); err != nil || len(plan) == 0 {
		return 0, "", fmt.Errorf("cannot read EXPLAIN output: %v", err)
	}
	return plan[0].Plan.TotalCost, rows[0][0], nil
}

// idxCol is a real column of a user table; table is regclass text and
// quoted is quote_ident(column), both as the server spells them.
type idxCol struct{ table, column, quoted string }

// resolveColumns maps the shape's filtered columns to real user-table
// columns (unqualified columns are looked up in every table of the
// statement).
func resolveColumns(ctx context.Context, c *pgconn.PgConn, sh *readShape) ([]idxCol, error) {
	seen := map[string]bool{}
	var out []idxCol
	add := func(t [2]string, col string) error {
		name := pgx.Identifier{t[1]}.Sanitize()
		if t[0] != "" {
			name = pgx.Identifier{t[0], t[1]}.Sanitize()
		}
		rows, err := pgRows(ctx, c, `SELECT c.oid::regclass::text, quote_ident(a.attname) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped AND a.attnum > 0 AND c.relkind IN ('r','p','m')`, name, col)
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			k := rows[0][0] + "|" + col
			if !seen[k] {
				seen[k] = true
				out = append(out, idxCol{table: rows[0][0], column: col, quoted: rows[0][1]})
			}
		}
		return nil
	}
	for _, cr := range sh.columns {
		if cr.qualifier != "" {
			if t, ok := sh.tables[cr.qualifier]; ok {
				if err := add(t, cr.column); err != nil {
					return nil, err
				}
			}
			continue
		}
		for _, t := range sh.tables {
			if err := add(t, cr.column); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b idxCol) int { return cmp.Compare(a.table+"|"+a.column, b.table+"|"+b.column) })
	return out, nil
}
