package monitor_test

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/monitor"
)

func benchEvents(n int) []monitor.QueryEvent {
	evs := make([]monitor.QueryEvent, n)
	rules := []string{"cache-reads"}
	for i := range evs {
		evs[i] = monitor.QueryEvent{Database: "bench", User: "u", Fingerprint: uint64(i)*0x9E3779B97F4A7C15 + 1,
			Normalized: "SELECT * FROM t WHERE id = $1", Example: "SELECT * FROM t WHERE id = 1",
			Duration: time.Duration(200+i%5000) * time.Microsecond, Rows: 1, Cacheable: i%2 == 0, CacheHit: i%4 == 0, Rules: rules}
	}
	return evs
}

// cpuTime is this process's user+system CPU time; benchmarks report it
// per op next to wall time, which a loaded machine inflates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func benchRecorder(tb testing.TB) monitor.Recorder {
	cfg := monitor.DefaultConfig()
	m, err := monitor.New(cfg, monitor.Deps{})
	if err != nil {
		tb.Fatal(err)
	}
	return m.Recorder()
}

// BenchmarkRecorderQuery is the per-statement cost the proxy pays with
// monitoring on (steady state: fingerprints already known).
func BenchmarkRecorderQuery(b *testing.B) {
	rec := benchRecorder(b)
	evs := benchEvents(1000)
	for i := range evs {
		for j := 0; j < 50; j++ { // widen each sketch's range first
			ev := evs[i]
			ev.Duration = time.Duration(j*j) * 37 * time.Microsecond
			rec.Query(ev)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		rec.Query(evs[i%len(evs)])
	}
	reportCPU(b, c0)
}

// BenchmarkRecorderQueryParallel measures contention across cores.
// (cpu-ns/op sums all cores, so it is comparable to the serial figure.)
func BenchmarkRecorderQueryParallel(b *testing.B) {
	rec := benchRecorder(b)
	evs := benchEvents(1000)
	for i := range evs {
		for j := 0; j < 50; j++ {
			ev := evs[i]
			ev.Duration = time.Duration(j*j) * 37 * time.Microsecond
			rec.Query(ev)
		}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			rec.Query(evs[i%len(evs)])
			i++
		}
	})
	reportCPU(b, c0)
}

func BenchmarkRecorderPoolWait(b *testing.B) {
	rec := benchRecorder(b)
	rec.PoolWait("bench", "u", time.Millisecond)
	b.ReportAllocs()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.PoolWait("bench", "u", 150*time.Microsecond)
		}
	})
	reportCPU(b, c0)
}

func TestRecorderQueryDoesNotAllocate(t *testing.T) {
	rec := benchRecorder(t)
	evs := benchEvents(10)
	for _, ev := range evs {
		rec.Query(ev)
	}
	allocs := testing.AllocsPerRun(1000, func() { rec.Query(evs[3]) })
	if allocs != 0 {
		t.Fatalf("Recorder.Query allocates %v times per call in steady state", allocs)
	}
}

// BenchmarkRecorderQueryHotFingerprint is pgbench -S: every client runs
// the same statement, so all events meet on one shard.
func BenchmarkRecorderQueryHotFingerprint(b *testing.B) {
	rec := benchRecorder(b)
	ev := benchEvents(1)[0]
	rec.Query(ev)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Query(ev)
		}
	})
	reportCPU(b, c0)
}
