package monitor_test

import (
	"net/url"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-proxy/sluice/monitor"
)

// history is /api/v1/system/history and /api/v1/timeline.
type history[T any] struct {
	IntervalS float64 `json:"interval_s"`
	Capacity  int     `json:"capacity"`
	Samples   []T     `json:"samples"`
}

// TestSystemAndTimeline: /api/v1/system describes this host and this
// process (Sluice runs in-process), the history grows on the sampler's
// timer and honours ?since=, and the traffic timeline sees real queries.
func TestSystemAndTimeline(t *testing.T) {
	t.Parallel()
	e := startYAML(t, tableT, func(b string) string {
		return b + "monitor: {sample_interval: 200ms, history: 10s}\n"
	})
	c := e.connect(pgx.QueryExecModeSimpleProtocol)
	e.waitSystem()
	// Traffic for a few sample intervals.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		count(t, c, "SELECT * FROM t WHERE id <= 3")
	}
	time.Sleep(500 * time.Millisecond)

	// The latest sample (the first has no rates: they need a previous one).
	var s monitor.SystemSample
	e.getJSON("/api/v1/system", &s)
	if s.CPU.Cores != runtime.NumCPU() || len(s.CPU.PerCore) != s.CPU.Cores {
		t.Errorf("cpu: %d cores, %d per-core values; runtime.NumCPU %d", s.CPU.Cores, len(s.CPU.PerCore), runtime.NumCPU())
	}
	if s.CPU.Total < 0 || s.CPU.Total > 1 {
		t.Errorf("cpu.total %v not a share", s.CPU.Total)
	}
	if s.Memory.Total == 0 || s.Memory.Available == 0 || s.Memory.Available > s.Memory.Total {
		t.Errorf("memory: %+v", s.Memory)
	}
	if s.Process.PID != int32(os.Getpid()) || s.Process.RSS < 1<<20 || s.Process.Goroutines < 5 || s.Process.HeapAlloc == 0 {
		t.Errorf("process: %+v (pid %d)", s.Process, os.Getpid())
	}
	if len(s.Disks) == 0 || s.Disks[0].Total == 0 || s.Disks[0].Mountpoint == "" {
		t.Errorf("disks (data path): %+v", s.Disks)
	}

	var h history[monitor.SystemSample]
	e.getJSON("/api/v1/system/history", &h)
	if len(h.Samples) < 5 || h.Capacity != 50 {
		t.Errorf("system history: %d samples, capacity %d; want >= 5 samples at 200ms and capacity 10s/200ms = 50", len(h.Samples), h.Capacity)
	}
	for i := 1; i < len(h.Samples); i++ {
		if !h.Samples[i].Time.After(h.Samples[i-1].Time) {
			t.Fatalf("history not oldest first at %d", i)
		}
	}
	if len(h.Samples) >= 3 {
		since := h.Samples[len(h.Samples)-3].Time
		var h2 history[monitor.SystemSample]
		e.getJSON("/api/v1/system/history?since="+url.QueryEscape(since.Format(time.RFC3339Nano)), &h2)
		if len(h2.Samples) == 0 || len(h2.Samples) > 2+2 { // 2 newer, plus what arrived since
			t.Errorf("since=%s: %d samples", since, len(h2.Samples))
		}
		for _, x := range h2.Samples {
			if !x.Time.After(since) {
				t.Errorf("since=%s returned %s", since, x.Time)
			}
		}
	}

	var tl history[monitor.TrafficSample]
	e.getJSON("/api/v1/timeline", &tl)
	maxQPS := 0.0
	for _, x := range tl.Samples {
		maxQPS = max(maxQPS, x.QPS)
	}
	if maxQPS < 10 {
		t.Errorf("timeline: max qps %v after 1.5s of back-to-back queries (%d samples)", maxQPS, len(tl.Samples))
	}
}
