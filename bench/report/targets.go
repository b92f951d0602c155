package main

import (
	"fmt"
	"math"
	"strings"
)

// check is one of issue 6's performance targets, judged on this run.
type check struct {
	name   string
	status string // met | missed | not measured
	detail string
}

// checkTargets judges the targets of issue 6 ("Targets (in the benchmark,
// not in tests)") from the aggregated rows and the idle results; a target
// whose runs are missing or failed is "not measured", never "met".
func checkTargets(rows []row, idle []idleResult) []check {
	get := func(mode, target string) *row {
		for i := range rows {
			if rows[i].mode == mode && rows[i].target == target {
				return &rows[i]
			}
		}
		return nil
	}
	usable := func(r *row) bool { return r != nil && r.failures() == "0" && r.tps > 0 }
	var out []check
	for _, mode := range []string{"select-simple", "select-extended"} {
		c := check{name: fmt.Sprintf("`%s -c 16`: Sluice TPS ≥ PgBouncer TPS", mode)}
		s, p := get(mode, "sluice"), get(mode, "pgbouncer")
		if !usable(s) || !usable(p) {
			c.status, c.detail = "not measured", "a run is missing or failed"
		} else {
			c.status = verdict(s.tps >= p.tps)
			c.detail = fmt.Sprintf("%.0f vs %.0f (%.2f×)", s.tps, p.tps, s.tps/p.tps)
		}
		out = append(out, c)
	}
	c := check{name: "`select-prepared -c 16`: Sluice 0 failures and TPS ≥ Sluice's own `select-extended`"}
	sp, se := get("select-prepared", "sluice"), get("select-extended", "sluice")
	switch {
	case sp == nil || se == nil:
		c.status, c.detail = "not measured", "a run is missing"
	case sp.failures() != "0":
		c.status, c.detail = "missed", "failures: "+sp.failures()
	default:
		c.status = verdict(sp.tps >= se.tps)
		c.detail = fmt.Sprintf("%.0f vs %.0f", sp.tps, se.tps)
	}
	out = append(out, c)
	c = check{name: "`latency-c1`: Sluice average latency ≤ PgBouncer's"}
	s, p := get("latency-c1", "sluice"), get("latency-c1", "pgbouncer")
	if !usable(s) || !usable(p) || math.IsNaN(s.latencyMS) || math.IsNaN(p.latencyMS) {
		c.status, c.detail = "not measured", "a run is missing or failed"
	} else {
		c.status = verdict(s.latencyMS <= p.latencyMS)
		c.detail = fmt.Sprintf("%.3f ms vs %.3f ms", s.latencyMS, p.latencyMS)
	}
	out = append(out, c)
	c = check{name: "idle clients: ≤ 16 KiB of Sluice RSS per idle client connection", status: "not measured"}
	for _, r := range idle {
		if r.Target != "sluice" {
			continue
		}
		if r.Opened < r.Requested || r.CheckFailed > 0 {
			c.status, c.detail = "missed", fmt.Sprintf("opened %d/%d, %d checks failed", r.Opened, r.Requested, r.CheckFailed)
		} else {
			c.status = verdict(r.PerConnKiB <= 16)
			c.detail = fmt.Sprintf("%.1f KiB over %d clients", r.PerConnKiB, r.Opened)
		}
	}
	out = append(out, c)
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func renderTargets(cs []check) string {
	var b strings.Builder
	b.WriteString("| target (issue 6) | this run | figures |\n|---|---|---|\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.name, c.status, c.detail)
	}
	return b.String()
}
