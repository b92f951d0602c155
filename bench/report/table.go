package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// row is one (mode, target) line of the table, summarising its rounds.
type row struct {
	mode, target, args string
	clients            int
	rounds             []run // in round order
	tps, latencyMS     float64
	vsDirect           float64 // NaN when there is nothing fair to compare
	vsPgBouncer        float64
}

// targetOrder is the column order of the comparison: the baseline first.
var targetOrder = map[string]int{"direct": 0, "pgbouncer": 1, "sluice": 2}

// aggregate groups runs by (mode, target), keeps modes in the order they
// were first run and takes medians over rounds. A run without a tps line
// counts as 0 TPS, so a target that fails cannot look fast.
func aggregate(runs []run) []row {
	type key struct{ mode, target string }
	byKey := map[key]*row{}
	modeOrder := map[string]int{}
	var rows []*row
	for _, r := range runs {
		if _, ok := modeOrder[r.mode]; !ok {
			modeOrder[r.mode] = len(modeOrder)
		}
		k := key{r.mode, r.target}
		rw := byKey[k]
		if rw == nil {
			rw = &row{mode: r.mode, target: r.target, args: r.args, clients: r.clients}
			byKey[k] = rw
			rows = append(rows, rw)
		}
		rw.rounds = append(rw.rounds, r)
	}
	for _, rw := range rows {
		sort.SliceStable(rw.rounds, func(i, j int) bool { return rw.rounds[i].round < rw.rounds[j].round })
		var tps, lat []float64
		for _, r := range rw.rounds {
			t := 0.0
			if r.hasTPS {
				t = r.tps
			}
			tps = append(tps, t)
			if r.hasTPS && r.latencyMS > 0 {
				lat = append(lat, r.latencyMS)
			}
		}
		rw.tps = median(tps)
		rw.latencyMS = median(lat)
	}
	for _, rw := range rows {
		rw.vsDirect = ratio(rw, byKey[key{rw.mode, "direct"}])
		rw.vsPgBouncer = ratio(rw, byKey[key{rw.mode, "pgbouncer"}])
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.mode != b.mode {
			return modeOrder[a.mode] < modeOrder[b.mode]
		}
		return targetOrder[a.target] < targetOrder[b.target]
	})
	out := make([]row, len(rows))
	for i, rw := range rows {
		out[i] = *rw
	}
	return out
}

// ratio is the TPS of rw over that of ref; NaN when ref is missing, is rw
// itself, or either failed in any round (the TPS of a broken run means
// nothing).
func ratio(rw, ref *row) float64 {
	if ref == nil || ref == rw || rw.failures() != "0" || ref.failures() != "0" || ref.tps <= 0 {
		return math.NaN()
	}
	return rw.tps / ref.tps
}

// median of the values; NaN for none. Even counts average the middle two.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// failures summarises what went wrong over the rounds, worst round first:
// "0" when every round ran clean.
func (rw *row) failures() string {
	var worstTx int64
	worstAborted, worstErrs, badExit, timedOut, noTPS := 0, 0, 0, 0, 0
	for _, r := range rw.rounds {
		worstTx = max(worstTx, r.failedTx)
		worstAborted = max(worstAborted, r.aborted)
		worstErrs = max(worstErrs, r.errLines)
		switch {
		case r.exit == 124 || r.exit == 137:
			timedOut++
		case r.exit != 0:
			badExit++
		}
		if !r.hasTPS {
			noTPS++
		}
	}
	var parts []string
	if worstTx > 0 {
		parts = append(parts, fmt.Sprintf("%d failed tx", worstTx))
	}
	if worstAborted > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d clients aborted", worstAborted, rw.clients))
	}
	if worstErrs > 0 {
		parts = append(parts, fmt.Sprintf("%d server errors", worstErrs))
	}
	n := len(rw.rounds)
	if timedOut > 0 {
		parts = append(parts, fmt.Sprintf("hung, killed in %d/%d rounds", timedOut, n))
	}
	if badExit > 0 {
		parts = append(parts, fmt.Sprintf("exit≠0 in %d/%d rounds", badExit, n))
	}
	if noTPS > 0 && timedOut == 0 {
		parts = append(parts, fmt.Sprintf("no result in %d/%d rounds", noTPS, n))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "; ")
}

func (rw *row) firstErr() string {
	for _, r := range rw.rounds {
		if r.firstErr != "" {
			return r.firstErr
		}
	}
	return ""
}

// renderRuns prints the markdown table, the mode legend and the first
// error of every failing line.
func renderRuns(rows []row) string {
	var b strings.Builder
	b.WriteString("| target | mode | clients | TPS (median) | avg latency ms | failures | vs direct | vs PgBouncer | TPS per round |\n")
	b.WriteString("|---|---|---:|---:|---:|---|---:|---:|---|\n")
	var legend []string
	seenMode := map[string]bool{}
	var errs []string
	for _, rw := range rows {
		if !seenMode[rw.mode] {
			seenMode[rw.mode] = true
			legend = append(legend, fmt.Sprintf("- `%s`: `pgbench -n -T <s> %s`", rw.mode, rw.args))
		}
		per := make([]string, len(rw.rounds))
		for i, r := range rw.rounds {
			if r.hasTPS {
				per[i] = fmt.Sprintf("%.0f", r.tps)
			} else {
				per[i] = "—"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n",
			rw.target, rw.mode, rw.clients, num(rw.tps, 0), num(rw.latencyMS, 3), rw.failures(),
			times(rw.vsDirect), times(rw.vsPgBouncer), strings.Join(per, ", "))
		if e := rw.firstErr(); e != "" && rw.failures() != "0" {
			errs = append(errs, fmt.Sprintf("- %s / %s: `%s`", rw.target, rw.mode, strings.ReplaceAll(e, "`", "'")))
		}
	}
	b.WriteString("\nRatios compare median TPS with the same mode's direct and PgBouncer lines (above 1 = faster than the reference); — means the line itself or its reference is missing or failed in some round.\n\n")
	b.WriteString("Modes:\n\n")
	b.WriteString(strings.Join(legend, "\n"))
	b.WriteString("\n")
	if len(errs) > 0 {
		b.WriteString("\nFirst error of each failing line:\n\n")
		b.WriteString(strings.Join(errs, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func times(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}
