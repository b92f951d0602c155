package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
)

// Deps are what cmd/sluice gives the monitor; every field may be nil, and
// the matching endpoint or analysis then reports itself unavailable.
type Deps struct {
	Source Source
	// Dial opens a monitoring connection to database (low rate: the
	// database pass and index advice). Use a role with pg_monitor for the
	// pg_stat_* views; hypopg needs it to own nothing special.
	Dial func(ctx context.Context, database string) (*pgconn.PgConn, error)
	// Databases lists the configured databases (readiness, db pass).
	Databases func() []string
	// Reload re-reads the config (POST /api/v1/reload, same as SIGHUP).
	Reload func() error
	// Purge drops cached results by relation, fingerprint (hex) or all.
	Purge      func(ctx context.Context, relation, fingerprint string, all bool) (int, error)
	CacheStats func() CacheStats
	// RedisStats is nil when no Redis is configured.
	RedisStats func(ctx context.Context) (RedisStats, error)
	// Ready maps each database to nil when a server is reachable.
	Ready func(ctx context.Context) map[string]error
	// DataPaths are filesystems whose usage and I/O are watched.
	DataPaths []string
	// Log is used as given (the caller adds a component field).
	Log zerolog.Logger
}

// Monitor is the admin port and everything behind it.
type Monitor struct {
	cfg      atomic.Pointer[Config]
	deps     Deps
	col      *collector // nil when monitor.enabled is false
	sys      *ring[SystemSample]
	traffic  *ring[TrafficSample]
	store    *findingStore
	analyzer *analyzer
	sampler  *systemSampler
	log      zerolog.Logger

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool

	prevTotals *Totals // traffic sampler state (sampler goroutine only)
	prevTime   time.Time
	tick       trafficTick
}

// New validates cfg and builds a Monitor; nothing runs until Start.
func New(cfg Config, deps Deps) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Monitor{deps: deps, log: deps.Log, store: newFindingStore()}
	m.cfg.Store(&cfg)
	s := cfg.Monitor
	n := int(s.History / s.SampleInterval)
	m.sys = newRing[SystemSample](n)
	m.traffic = newRing[TrafficSample](n)
	if s.Enabled {
		m.col = newCollector(s)
	}
	m.sampler = newSystemSampler(deps.DataPaths)
	m.analyzer = newAnalyzer(m.settings, deps, m.col, m.sys, m.store)
	m.analyzer.log = m.log
	return m, nil
}

func (m *Monitor) settings() Settings { return m.cfg.Load().Monitor }

// Recorder returns what the proxy calls per query: Nop when disabled.
func (m *Monitor) Recorder() Recorder {
	if m.col == nil {
		return Nop{}
	}
	return m.col
}

// Reconfigure applies a reloaded config: thresholds, intervals used by the
// next ticks and the admin token take effect at once; admin.listen, the
// timeouts, monitor.enabled and the sizes need a restart.
func (m *Monitor) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := m.cfg.Load()
	cfg.Admin.Listen = old.Admin.Listen
	cfg.Monitor.Enabled = old.Monitor.Enabled
	cfg.Monitor.MaxFingerprints = old.Monitor.MaxFingerprints
	cfg.Monitor.SampleInterval = old.Monitor.SampleInterval
	cfg.Monitor.History = old.Monitor.History
	m.cfg.Store(&cfg)
	return nil
}

// Start opens the admin listener and starts the samplers and analysis
// timers; they stop when ctx ends or Close is called.
func (m *Monitor) Start(ctx context.Context) (net.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return nil, errors.New("monitor: already started")
	}
	cfg := m.cfg.Load()
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m.cancel, m.ln, m.started = cancel, ln, true
	m.srv = m.newServer(cfg.Admin)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error().Err(err).Msg("admin server stopped")
		}
	}()
	s := cfg.Monitor
	if s.Enabled {
		// The first samples only set the baselines for rates, so the
		// first plotted point covers a whole interval.
		m.sampleNow(ctx)
		m.every(ctx, s.SampleInterval, false, m.sampleNow)
		m.every(ctx, s.AnalysisInterval, true, func(ctx context.Context) { m.analyzer.fastPass(ctx, time.Now()) })
		m.every(ctx, s.DBStatsInterval, true, func(ctx context.Context) { m.analyzer.dbPass(ctx, time.Now()) })
		if s.IndexAdvice.Enabled {
			m.every(ctx, s.IndexAdvice.Interval, false, func(ctx context.Context) { m.analyzer.indexPass(ctx, time.Now()) })
		}
	}
	m.log.Info().Str("addr", ln.Addr().String()).Bool("auth", cfg.Admin.Token != "").Msg("admin listening")
	return ln.Addr(), nil
}

// every runs f at each interval (and at once if now) until ctx ends.
func (m *Monitor) every(ctx context.Context, d time.Duration, now bool, f func(context.Context)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		if now {
			f(ctx)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f(ctx)
			}
		}
	}()
}

// Close stops the listener and every goroutine Start began.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if !m.started {
		m.mu.Unlock()
		return nil
	}
	m.started = false
	srv, cancel := m.srv, m.cancel
	m.mu.Unlock()
	cancel()
	sctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	err := srv.Shutdown(sctx)
	m.wg.Wait()
	return err
}
