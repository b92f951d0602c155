package main

import (
	"math"
	"strings"
	"testing"
)

func ok(round int, mode, target string, tps, lat float64) run {
	return run{round: round, mode: mode, target: target, clients: 16, args: "-S",
		outcome: outcome{tps: tps, hasTPS: true, latencyMS: lat}}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
		{[]float64{0, 100, 90}, 90},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) should be NaN")
	}
}

func TestAggregate(t *testing.T) {
	aborted := ok(1, "prep", "pgbouncer", 900, 1)
	aborted.aborted, aborted.runAbort, aborted.exit = 12, true, 2
	hung := run{round: 2, mode: "prep", target: "sluice", clients: 16, exit: 124}
	runs := []run{
		ok(2, "simple", "direct", 110, 1.1), ok(2, "simple", "pgbouncer", 90, 1.3), ok(2, "simple", "sluice", 95, 1.2),
		ok(1, "simple", "sluice", 80, 1.4), ok(1, "simple", "direct", 100, 1.0), ok(1, "simple", "pgbouncer", 100, 1.2),
		ok(3, "simple", "direct", 120, 0.9), ok(3, "simple", "pgbouncer", 80, 1.4), ok(3, "simple", "sluice", 100, 1.1),
		ok(1, "prep", "direct", 1000, 1), aborted, ok(1, "prep", "sluice", 950, 1), hung,
	}
	rows := aggregate(runs)
	type want struct {
		mode, target          string
		tps, lat              float64
		vsDirect, vsPgBouncer float64 // NaN: not shown
		failures              string
	}
	nan := math.NaN()
	wants := []want{
		{"simple", "direct", 110, 1.0, nan, 110.0 / 90, "0"},
		{"simple", "pgbouncer", 90, 1.3, 90.0 / 110, nan, "0"},
		{"simple", "sluice", 95, 1.2, 95.0 / 110, 95.0 / 90, "0"},
		{"prep", "direct", 1000, 1, nan, nan, "0"},
		{"prep", "pgbouncer", 900, 1, nan, nan, "12/16 clients aborted; exit≠0 in 1/1 rounds"},
		// The hung round counts as 0 TPS: median of 950 and 0.
		{"prep", "sluice", 475, 1, nan, nan, "hung, killed in 1/2 rounds"},
	}
	if len(rows) != len(wants) {
		t.Fatalf("got %d rows, want %d", len(rows), len(wants))
	}
	same := func(a, b float64) bool { return (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-9 }
	for i, w := range wants {
		r := rows[i]
		if r.mode != w.mode || r.target != w.target {
			t.Fatalf("row %d is %s/%s, want %s/%s", i, r.mode, r.target, w.mode, w.target)
		}
		if !same(r.tps, w.tps) || !same(r.latencyMS, w.lat) || !same(r.vsDirect, w.vsDirect) || !same(r.vsPgBouncer, w.vsPgBouncer) {
			t.Errorf("%s/%s: tps %v lat %v vsDirect %v vsPgBouncer %v; want %v %v %v %v",
				w.mode, w.target, r.tps, r.latencyMS, r.vsDirect, r.vsPgBouncer, w.tps, w.lat, w.vsDirect, w.vsPgBouncer)
		}
		if got := r.failures(); got != w.failures {
			t.Errorf("%s/%s failures = %q, want %q", w.mode, w.target, got, w.failures)
		}
	}
}

func TestRenderRuns(t *testing.T) {
	bad := ok(1, "prep", "pgbouncer", 5, 1)
	bad.aborted, bad.firstErr = 16, `ERROR: prepared statement "P_0" does not exist`
	out := renderRuns(aggregate([]run{ok(1, "prep", "direct", 1000, 1.5), bad, ok(1, "prep", "sluice", 1200, 1.25)}))
	for _, want := range []string{
		"| direct | prep | 16 | 1000 | 1.500 | 0 | — | — | 1000 |",
		"| pgbouncer | prep | 16 | 5 | 1.000 | 16/16 clients aborted | — | — | 5 |",
		"| sluice | prep | 16 | 1200 | 1.250 | 0 | 1.20× | — | 1200 |",
		"- pgbouncer / prep: `ERROR: prepared statement \"P_0\" does not exist`",
		"- `prep`: `pgbench -n -T <s> -S`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderIdle(t *testing.T) {
	out := renderIdle([]idleResult{{Target: "sluice", Requested: 5000, Opened: 4999, OpenSeconds: 12.34,
		RSSBeforeKiB: 10000, RSSAfterKiB: 60000, PerConnKiB: 10.002, Checked: 50, FirstError: "too many `clients`"}})
	for _, want := range []string{
		"| sluice | 4999/5000 | 12.3 | 10000 | 60000 | 10.0 | 50 (0) |",
		"- sluice, opening: `too many 'clients'`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckTargets(t *testing.T) {
	prepFailed := ok(1, "select-prepared", "sluice", 900, 1)
	prepFailed.aborted = 3
	tests := []struct {
		name string
		runs []run
		idle []idleResult
		want []string // status per check, in order
	}{
		{
			name: "all met",
			runs: []run{
				ok(1, "select-simple", "pgbouncer", 100, 1), ok(1, "select-simple", "sluice", 100, 1),
				ok(1, "select-extended", "pgbouncer", 100, 1), ok(1, "select-extended", "sluice", 120, 1),
				ok(1, "select-prepared", "sluice", 130, 1),
				ok(1, "latency-c1", "pgbouncer", 10, 0.5), ok(1, "latency-c1", "sluice", 11, 0.45),
			},
			idle: []idleResult{{Target: "sluice", Requested: 10, Opened: 10, PerConnKiB: 12}},
			want: []string{"met", "met", "met", "met", "met"},
		},
		{
			name: "all missed",
			runs: []run{
				ok(1, "select-simple", "pgbouncer", 100, 1), ok(1, "select-simple", "sluice", 99, 1),
				ok(1, "select-extended", "pgbouncer", 100, 1), ok(1, "select-extended", "sluice", 120, 1),
				ok(1, "select-prepared", "sluice", 110, 1),
				ok(1, "latency-c1", "pgbouncer", 10, 0.5), ok(1, "latency-c1", "sluice", 9, 0.55),
			},
			idle: []idleResult{{Target: "sluice", Requested: 10, Opened: 10, PerConnKiB: 16.5}},
			want: []string{"missed", "met", "missed", "missed", "missed"},
		},
		{
			name: "failures and gaps are never met",
			runs: []run{ok(1, "select-simple", "sluice", 100, 1), ok(1, "select-extended", "sluice", 100, 1), prepFailed},
			idle: []idleResult{{Target: "sluice", Requested: 10, Opened: 9, PerConnKiB: 1}, {Target: "pgbouncer", Requested: 10, Opened: 10, PerConnKiB: 1}},
			want: []string{"not measured", "not measured", "missed", "not measured", "missed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkTargets(aggregate(tt.runs), tt.idle)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d checks, want %d", len(got), len(tt.want))
			}
			for i, c := range got {
				if c.status != tt.want[i] {
					t.Errorf("%s: %s (%s), want %s", c.name, c.status, c.detail, tt.want[i])
				}
			}
		})
	}
}
