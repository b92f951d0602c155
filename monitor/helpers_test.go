package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sluice-proxy/sluice/monitor"
)

// fakeSource is a proxy stand-in whose snapshot tests set directly.
type fakeSource struct {
	mu   sync.Mutex
	snap monitor.Snapshot
}

func (f *fakeSource) Snapshot() monitor.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSource) set(s monitor.Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

// harness is a started Monitor on a loopback port 0 plus what its Deps saw.
type harness struct {
	m       *monitor.Monitor
	base    string
	token   string
	src     *fakeSource
	mu      sync.Mutex
	reloads int
	purges  []monitor.PurgeRequest
}

func testConfig() monitor.Config {
	cfg := monitor.DefaultConfig()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Monitor.SampleInterval = 100 * time.Millisecond
	cfg.Monitor.History = 10 * time.Second
	cfg.Monitor.AnalysisInterval = 100 * time.Millisecond
	cfg.Monitor.Window = time.Second
	cfg.Monitor.DBStatsInterval = time.Hour
	cfg.Monitor.IndexAdvice.Enabled = false
	return cfg
}

func startHarness(t *testing.T, cfg monitor.Config, mod func(*monitor.Deps)) *harness {
	t.Helper()
	h := &harness{token: cfg.Admin.Token, src: &fakeSource{}}
	h.src.set(monitor.Snapshot{
		Pools:         []monitor.PoolStats{{Database: "app", User: "alice", Mode: "transaction", Size: 4, ServersActive: 1, ServersIdle: 3}},
		Clients:       []monitor.ClientStats{{ID: 1, Addr: "127.0.0.1:5000", Database: "app", User: "alice", State: "active", Since: time.Now()}},
		Servers:       []monitor.ServerStats{{ID: 7, Database: "app", User: "alice", State: "idle", TxStatus: 'I', Since: time.Now()}},
		Totals:        monitor.Totals{Queries: 10, Xacts: 5},
		MaxClientConn: 100,
	})
	deps := monitor.Deps{
		Source:    h.src,
		Databases: func() []string { return []string{"app"} },
		Reload: func() error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.reloads++
			return nil
		},
		Purge: func(_ context.Context, rel, fp string, all bool) (int, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.purges = append(h.purges, monitor.PurgeRequest{Relation: rel, Fingerprint: fp, All: all})
			return 3, nil
		},
		CacheStats: func() monitor.CacheStats { return monitor.CacheStats{Hits: 5, Misses: 5} },
		Ready:      func(context.Context) map[string]error { return map[string]error{"app": nil} },
		DataPaths:  []string{t.TempDir()},
		Log:        zerolog.Nop(),
	}
	if mod != nil {
		mod(&deps)
	}
	m, err := monitor.New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr, err := m.Start(context.Background())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	h.m = m
	h.base = "http://" + addr.String()
	return h
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("bad JSON (%v): %s", err, r.body)
	}
}

// do sends a request; auth is "" (none), "good" or any other literal token.
func (h *harness) do(t *testing.T, method, path, auth string, body []byte) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch auth {
	case "":
	case "good":
		req.Header.Set("Authorization", "Bearer "+h.token)
	default:
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}
}

// eventually retries f until it returns "" or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
