package monitor_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/sluice-proxy/sluice/monitor"
)

// chromiumPath finds Debian's chromium or skips (fails under
// SLUICE_TEST_REQUIRED=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("SLUICE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("SLUICE_TEST_REQUIRED") == "1" {
		t.Fatal("chromium not found but SLUICE_TEST_REQUIRED=1: apt-get install -y chromium (or set SLUICE_CHROMIUM)")
	}
	t.Skip("chromium not found: apt-get install -y chromium (or set SLUICE_CHROMIUM) to run the dashboard browser test")
	return ""
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("SLUICE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// TestDashboardInChromium loads the embedded dashboard in headless
// Chromium with a token set: the page must take the token from the URL
// fragment, fetch every API with it, draw every chart with data, list the
// current finding and top queries, and log no console error.
func TestDashboardInChromium(t *testing.T) {
	chrome := chromiumPath(t)
	cfg := testConfig()
	cfg.Admin.Token = "dash-token"
	h := startHarness(t, cfg, nil)
	clients := make([]monitor.ClientStats, 10)
	for i := range clients {
		clients[i] = monitor.ClientStats{ID: uint64(i), Database: "app", User: "alice", State: "active", ApplicationName: "web"}
	}
	h.src.set(monitor.Snapshot{
		Pools:         []monitor.PoolStats{{Database: "app", User: "alice", Mode: "transaction", Size: 8, ClientsActive: 10, ServersActive: 5, ServersIdle: 2, ServersIdleInTx: 1}},
		Clients:       clients,
		MaxClientConn: 10, // at the limit: a finding to show
	})
	// Feed traffic while the page is open.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec := h.m.Recorder()
		for i := 0; ctx.Err() == nil; i++ {
			rec.Query(monitor.QueryEvent{Database: "app", User: "alice", Fingerprint: uint64(i%3 + 1),
				Normalized: []string{"SELECT * FROM orders WHERE id = $1", "SELECT count(*) FROM items", "UPDATE carts SET n = n + $1 WHERE id = $2"}[i%3],
				Duration:   time.Duration(500+i%7*300) * time.Microsecond, Rows: 1, Cacheable: i%3 != 2, CacheHit: i%2 == 0})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1300),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Subscribe to the console (calls, exceptions, browser log) before the
	// page loads so no message is lost.
	var mu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(bctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for msg, err := range messages {
			if err != nil {
				return
			}
			switch msg.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				mu.Lock()
				consoleErrors = append(consoleErrors, msg.String()+" @ "+msg.URL)
				mu.Unlock()
			}
		}
	}()
	defer func() { cancelBrowser(); <-consoleDone }()
	if err := chromedp.Do(bctx, chromedp.Navigate(h.base+"/#token=dash-token")); err != nil {
		t.Fatalf("navigate: %v", err)
	}

	type pageState struct {
		Points   []int    `json:"points"`
		Findings []string `json:"findings"`
		Queries  int      `json:"queries"`
		Pools    int      `json:"pools"`
		Errors   int      `json:"errors"`
		Status   string   `json:"status"`
		Hash     string   `json:"hash"`
		Token    string   `json:"token"`
		QPS      string   `json:"qps"`
	}
	const probe = `({
		points: Array.from(document.querySelectorAll('canvas.chart')).map(c => +(c.dataset.points || 0)),
		findings: Array.from(document.querySelectorAll('#findings li')).map(li => li.dataset.id || ''),
		queries: document.querySelectorAll('#queries tbody tr td.q').length,
		pools: document.querySelectorAll('#pools tbody tr').length,
		errors: window.sluiceDashboard ? window.sluiceDashboard.errors : -1,
		status: document.getElementById('status').textContent,
		hash: location.hash,
		token: sessionStorage.getItem('sluice-admin-token') || '',
		qps: document.getElementById('c-qps').textContent,
	})`
	var st pageState
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if st, err = chromedp.Run(bctx, chromedp.Evaluate[pageState](probe)); err != nil {
			t.Fatalf("evaluate: %v", err)
		}
		ready := len(st.Points) == 6 && st.Queries >= 3 && st.Pools == 1 && len(st.Findings) > 0
		for _, p := range st.Points {
			ready = ready && p >= 3
		}
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Live: later refreshes append the new samples (fetched with ?since=).
	first := st.Points
	time.Sleep(2500 * time.Millisecond)
	var later pageState
	var err error
	if later, err = chromedp.Run(bctx, chromedp.Evaluate[pageState](probe)); err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	if len(first) == 6 && len(later.Points) == 6 && later.Points[0] <= first[0] {
		t.Errorf("throughput chart did not grow: %d points, then %d", first[0], later.Points[0])
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, len(png))

	if len(st.Points) != 6 {
		t.Fatalf("found %d charts, want 6: %+v", len(st.Points), st)
	}
	for i, p := range st.Points {
		if p < 3 {
			t.Errorf("chart %d has %d points", i, p)
		}
	}
	if st.Queries < 3 || st.Pools != 1 || st.Errors != 0 || !strings.HasPrefix(st.Status, "updated") {
		t.Errorf("page state = %+v", st)
	}
	if !containsStr(st.Findings, "pool.max_client_conn") {
		t.Errorf("findings shown = %v, want pool.max_client_conn", st.Findings)
	}
	if st.Hash != "" || st.Token != "dash-token" {
		t.Errorf("token handling: hash=%q sessionStorage=%q", st.Hash, st.Token)
	}
	if st.QPS == "–" || st.QPS == "0.00" {
		t.Errorf("QPS card = %q", st.QPS)
	}
	time.Sleep(300 * time.Millisecond) // let late console events arrive
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
