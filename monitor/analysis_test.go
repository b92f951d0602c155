package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type snapSource struct {
	mu sync.Mutex
	s  Snapshot
}

func (f *snapSource) Snapshot() Snapshot { f.mu.Lock(); defer f.mu.Unlock(); return f.s }

func analysisConfig() Config {
	cfg := DefaultConfig()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Monitor.AnalysisInterval = time.Second
	cfg.Monitor.Window = 10 * time.Second
	return cfg
}

func newTestMonitor(t *testing.T, cfg Config, deps Deps) *Monitor {
	t.Helper()
	deps.Log = zerolog.Nop()
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func findKind(fs []Finding, kind string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func kinds(fs []Finding) string {
	var ks []string
	for _, f := range fs {
		ks = append(ks, f.ID)
	}
	return strings.Join(ks, ", ")
}

// TestPoolWaitFinding runs a real pool of one slot with eight concurrent
// clients, records each measured checkout wait, and expects the pool.wait
// finding with the right diagnosis for what the servers are doing.
func TestPoolWaitFinding(t *testing.T) {
	tests := []struct {
		name    string
		pool    PoolStats
		wantRec string
	}{
		{"servers busy", PoolStats{Database: "app", User: "u", Size: 1, ServersActive: 1, ClientsWaiting: 7}, "Raise the pool size"},
		{"servers idle in transaction", PoolStats{Database: "app", User: "u", Size: 1, ServersIdleInTx: 1, ClientsWaiting: 7}, "idle inside transactions"},
		{"servers idle", PoolStats{Database: "app", User: "u", Size: 4, ServersIdle: 3, ClientsWaiting: 1}, "minimum size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := analysisConfig()
			cfg.Monitor.Thresholds.PoolWaitP95 = 10 * time.Millisecond
			src := &snapSource{s: Snapshot{Pools: []PoolStats{tt.pool}}}
			m := newTestMonitor(t, cfg, Deps{Source: src})
			rec := m.Recorder()
			slot := make(chan struct{}, 1)
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					slot <- struct{}{}
					rec.PoolWait("app", "u", time.Since(start))
					time.Sleep(15 * time.Millisecond) // the "query"
					<-slot
				}()
			}
			wg.Wait()
			fs := findKind(m.analyzer.fastPass(context.Background(), time.Now()), KindPoolWait)
			if len(fs) != 1 {
				t.Fatalf("pool.wait findings = %d", len(fs))
			}
			f := fs[0]
			if f.ID != "pool.wait:app/u" || f.Evidence.Values["checkouts"] != uint64(8) || f.Evidence.Values["wait_p95_ms"].(float64) < 10 {
				t.Errorf("finding = %+v", f)
			}
			if !strings.Contains(f.Recommendation, tt.wantRec) {
				t.Errorf("recommendation %q lacks %q", f.Recommendation, tt.wantRec)
			}
		})
	}
	// No waits over the threshold: no finding.
	m := newTestMonitor(t, analysisConfig(), Deps{Source: &snapSource{}})
	m.Recorder().PoolWait("app", "u", time.Microsecond)
	if fs := findKind(m.analyzer.fastPass(context.Background(), time.Now()), KindPoolWait); len(fs) != 0 {
		t.Errorf("unexpected pool.wait: %+v", fs)
	}
}

func TestPoolMaxClientConnAndIdleInTx(t *testing.T) {
	now := time.Now()
	clients := make([]ClientStats, 95)
	src := &snapSource{s: Snapshot{MaxClientConn: 100, Clients: clients, Servers: []ServerStats{
		{ID: 1, Database: "app", User: "u", State: "idle", TxStatus: 'T', Since: now.Add(-2 * time.Minute)},
		{ID: 2, Database: "app", User: "u", State: "active", TxStatus: 'T', Since: now.Add(-2 * time.Minute)}, // running
		{ID: 3, Database: "app", User: "u", State: "idle", TxStatus: 'I', Since: now.Add(-2 * time.Minute)},   // not in tx
		{ID: 4, Database: "app", User: "u", State: "idle", TxStatus: 'E', Since: now.Add(-time.Second)},       // too recent
	}}}
	m := newTestMonitor(t, analysisConfig(), Deps{Source: src})
	fs := m.analyzer.fastPass(context.Background(), now)
	mc := findKind(fs, KindPoolMaxClients)
	if len(mc) != 1 || mc[0].Evidence.Values["clients"] != 95 {
		t.Errorf("max_client_conn findings: %+v", mc)
	}
	it := findKind(fs, KindPoolIdleInTx)
	if len(it) != 1 || it[0].Evidence.Values["servers"] != 1 || fmt.Sprint(it[0].Evidence.Values["server_ids"]) != "[1]" {
		t.Errorf("idle in tx findings: %+v", it)
	}
	src.s.Clients = clients[:10]
	if fs := findKind(m.analyzer.fastPass(context.Background(), now), KindPoolMaxClients); len(fs) != 0 {
		t.Errorf("max_client_conn with 10/100 clients: %+v", fs)
	}
}

func TestHostFindings(t *testing.T) {
	s := analysisConfig().Monitor
	now := time.Now()
	base := func(mut func(*SystemSample)) []SystemSample {
		var out []SystemSample
		for i := 0; i < 5; i++ {
			x := SystemSample{Time: now.Add(-time.Duration(i) * time.Second), Interval: 1,
				CPU:    CPUSample{Cores: 4, Total: 0.2},
				Memory: MemorySample{Total: 8 << 30, AvailableRatio: 0.5},
				Disks:  []DiskSample{{Path: "/data", Total: 100 << 30, UsedRatio: 0.5, Free: 50 << 30}}}
			mut(&x)
			out = append([]SystemSample{x}, out...)
		}
		return out
	}
	tests := []struct {
		name string
		mut  func(*SystemSample)
		kind string
		rec  string
	}{
		{"idle host", func(*SystemSample) {}, "", ""},
		{"cpu by postgres", func(x *SystemSample) { x.CPU.Total, x.Postgres.CPU, x.CPU.Proxy = 0.97, 0.8, 0.1 }, KindHostCPU, "PostgreSQL uses most"},
		{"cpu by sluice", func(x *SystemSample) { x.CPU.Total, x.CPU.Proxy = 0.95, 0.7 }, KindHostCPU, "Sluice itself"},
		{"cpu by others", func(x *SystemSample) { x.CPU.Total, x.CPU.Other = 0.95, 0.8 }, KindHostCPU, "other than Sluice"},
		{"memory", func(x *SystemSample) { x.Memory.AvailableRatio = 0.03 }, KindHostMemory, "add RAM"},
		{"swap", func(x *SystemSample) { x.Memory.SwapInPerSec = 1 << 20 }, KindHostSwap, "Swapping"},
		{"disk", func(x *SystemSample) { x.Disks[0].UsedRatio = 0.95 }, KindHostDisk, "grow the volume"},
		{"iowait", func(x *SystemSample) { x.CPU.IOWait = 0.4 }, KindHostIOWait, "Storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := hostFindings(s, base(tt.mut), now)
			if tt.kind == "" {
				if len(fs) != 0 {
					t.Fatalf("findings on an idle host: %s", kinds(fs))
				}
				return
			}
			got := findKind(fs, tt.kind)
			if len(got) != 1 || len(fs) != 1 {
				t.Fatalf("findings = %s, want one %s", kinds(fs), tt.kind)
			}
			if !strings.Contains(got[0].Recommendation, tt.rec) || got[0].Evidence.Summary == "" {
				t.Errorf("finding = %+v", got[0])
			}
		})
	}
	// Samples outside the window are ignored.
	old := base(func(x *SystemSample) { x.CPU.Total = 1; x.Time = x.Time.Add(-time.Hour) })
	if fs := hostFindings(s, old, now); len(fs) != 0 {
		t.Errorf("old samples produced %s", kinds(fs))
	}
}

func TestCacheAndRedisFindings(t *testing.T) {
	cfg := analysisConfig()
	var mu sync.Mutex
	cs := CacheStats{}
	rs := RedisStats{Connected: true, Latency: time.Millisecond, UsedMemory: 10 << 20, MaxMemory: 100 << 20}
	var rerr error
	m := newTestMonitor(t, cfg, Deps{
		CacheStats: func() CacheStats { mu.Lock(); defer mu.Unlock(); return cs },
		RedisStats: func(context.Context) (RedisStats, error) { mu.Lock(); defer mu.Unlock(); return rs, rerr },
	})
	now := time.Now()
	if fs := m.analyzer.fastPass(context.Background(), now); len(fs) != 0 {
		t.Fatalf("healthy cache/redis: %s", kinds(fs))
	}
	mu.Lock()
	cs = CacheStats{Hits: 20, Misses: 180, Fills: 100, Invalidations: 90, Skips: map[string]int64{"volatile": 7}}
	rs = RedisStats{Connected: true, Latency: 20 * time.Millisecond, Errors: 3, Evictions: 50, UsedMemory: 95 << 20, MaxMemory: 100 << 20}
	mu.Unlock()
	fs := m.analyzer.fastPass(context.Background(), now.Add(time.Second))
	for _, k := range []string{KindCacheHitRatio, KindCacheChurn, KindRedisLatency, KindRedisErrors, KindRedisEvictions, KindRedisMemory} {
		if len(findKind(fs, k)) != 1 {
			t.Errorf("missing %s in %s", k, kinds(fs))
		}
	}
	if f := findKind(fs, KindCacheHitRatio); len(f) == 1 && f[0].Evidence.Values["hit_ratio"] != 0.1 {
		t.Errorf("hit ratio evidence = %v", f[0].Evidence.Values)
	}
	mu.Lock()
	rerr = errors.New("dial tcp 127.0.0.1:6379: connection refused")
	mu.Unlock()
	fs = m.analyzer.fastPass(context.Background(), now.Add(2*time.Second))
	if f := findKind(fs, KindRedisDown); len(f) != 1 || !strings.Contains(f[0].Evidence.Summary, "refused") {
		t.Errorf("redis down: %s", kinds(fs))
	}
}

func TestFindingStoreKeepsFirstSeenAndRanks(t *testing.T) {
	s := newFindingStore()
	t0 := time.Unix(1000, 0)
	a := newFinding(KindPoolWait, "x", SeverityWarning, "a")
	a.Score = 5
	b := newFinding(KindQueryTopTime, "y", SeverityInfo, "b")
	b.Score = 90
	c := newFinding(KindHostDisk, "/", SeverityCritical, "c")
	s.replace("fast", t0, []Finding{a, b})
	s.replace("database", t0, []Finding{c})
	s.replace("fast", t0.Add(time.Minute), []Finding{a})
	got := s.list()
	if len(got) != 2 || got[0].ID != c.ID || got[1].ID != a.ID {
		t.Fatalf("list = %s", kinds(got))
	}
	if !got[1].FirstSeen.Equal(t0) || !got[1].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("first/last seen = %v %v", got[1].FirstSeen, got[1].LastSeen)
	}
	recs := recommendations(got)
	if recs[0].Rank != 1 || recs[0].FindingID != c.ID || recs[1].Rank != 2 {
		t.Errorf("recommendations = %+v", recs)
	}
}

func TestFingerprintEviction(t *testing.T) {
	tb := newFPTable(3*numShards, 100, 1) // three entries per shard
	hot := QueryEvent{Fingerprint: 0, Normalized: "hot"}
	for i := 0; i < 10; i++ {
		tb.record(&hot)
	}
	tb.roll(time.Now(), 1)
	// Fingerprints that are multiples of numShards share shard 0.
	for i := 1; i <= 4; i++ {
		ev := QueryEvent{Fingerprint: uint64(i * numShards), Normalized: fmt.Sprint("cold", i)}
		tb.record(&ev)
	}
	if tb.entries.Load() != 3 || tb.evictions.Load() != 2 {
		t.Fatalf("entries=%d evictions=%d, want 3 and 2", tb.entries.Load(), tb.evictions.Load())
	}
	var names []string
	for _, q := range tb.all() {
		names = append(names, q.Query)
	}
	if !strings.Contains(strings.Join(names, ","), "hot") {
		t.Fatalf("most used entry was evicted: %v", names)
	}
}

func TestLabelSetsAreBounded(t *testing.T) {
	c := newCollector(analysisConfig().Monitor)
	for i := 0; i < maxLabelSets+50; i++ {
		c.Query(QueryEvent{Database: fmt.Sprint("db", i), Fingerprint: 1, Duration: time.Millisecond})
		c.PoolWait(fmt.Sprint("db", i), "u", time.Millisecond)
	}
	if n := len(*c.dbs.Load()); n != maxLabelSets+1 {
		t.Errorf("database label sets = %d, want %d", n, maxLabelSets+1)
	}
	pools := 0
	for _, u := range *c.pools.Load() {
		pools += len(u)
	}
	if pools != maxLabelSets+1 {
		t.Errorf("pools tracked = %d, want %d", pools, maxLabelSets+1)
	}
	if _, ok := (*c.dbs.Load())[overflowLabel]; !ok {
		t.Error("no overflow entry")
	}
}

// TestPoolWaitDiagnosisUsesTheWindow: clients waited while both servers
// were busy, and the pool is idle by the time the analysis runs; the
// diagnosis must follow what happened during the window.
func TestPoolWaitDiagnosisUsesTheWindow(t *testing.T) {
	cfg := analysisConfig()
	cfg.Monitor.Thresholds.PoolWaitP95 = 10 * time.Millisecond
	src := &snapSource{s: Snapshot{Pools: []PoolStats{{Database: "app", User: "u", Size: 2, ServersActive: 2, ClientsWaiting: 5}}}}
	m := newTestMonitor(t, cfg, Deps{Source: src})
	now := time.Now()
	m.analyzer.fastPass(context.Background(), now) // busy tick, waits still in progress
	for i := 0; i < 20; i++ {
		m.Recorder().PoolWait("app", "u", 80*time.Millisecond)
	}
	src.mu.Lock()
	src.s = Snapshot{Pools: []PoolStats{{Database: "app", User: "u", Size: 2, ServersIdle: 2}}}
	src.mu.Unlock()
	fs := findKind(m.analyzer.fastPass(context.Background(), now.Add(time.Second)), KindPoolWait)
	if len(fs) != 1 || !strings.Contains(fs[0].Recommendation, "Raise the pool size") || fs[0].Evidence.Values["peak_servers_busy"] != 2 {
		t.Fatalf("pool.wait = %+v", fs)
	}
}

func TestDBFindingsBufferHitRatioAndWindows(t *testing.T) {
	s := analysisConfig().Monitor
	t0 := time.Unix(1000, 0)
	prev := &dbCounters{t: t0, statsReset: "2026-01-01", blksHit: 1000, blksRead: 10, tables: map[string]tableCounters{}}
	cur := &dbCounters{t: t0.Add(time.Minute), statsReset: "2026-01-01", blksHit: 1900, blksRead: 1110, tables: map[string]tableCounters{}}
	fs := dbFindings(s, "app", prev, cur)
	f := findKind(fs, KindDBBufferHit)
	if len(f) != 1 || f[0].Evidence.Window != "last 1m0s" || f[0].Evidence.Values["blks_read"] != int64(1100) {
		t.Fatalf("findings = %+v", fs)
	}
	// A statistics reset between polls: judge the new counters from zero.
	cur.statsReset = "2026-02-01"
	cur.blksHit, cur.blksRead = 5000, 1
	fs = dbFindings(s, "app", prev, cur)
	if len(findKind(fs, KindDBBufferHit)) != 0 || len(fs) != 0 {
		t.Errorf("after reset: %s", kinds(fs))
	}
	// Too few block reads to judge.
	cur.blksHit, cur.blksRead = 10, 500
	if fs := dbFindings(s, "app", nil, cur); len(fs) != 0 {
		t.Errorf("few blocks: %s", kinds(fs))
	}
}
