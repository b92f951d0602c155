package monitor

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the `admin:` and `monitor:` sections of the Sluice config file.
// The root config embeds it inline, so the keys appear at top level.
type Config struct {
	Admin   AdminConfig `yaml:"admin"`
	Monitor Settings    `yaml:"monitor"`
}

// AdminConfig configures the admin HTTP listener. The listener is loopback by
// default because it exposes query texts and can purge the cache.
type AdminConfig struct {
	// Listen is host:port; port 0 picks a free port (tests).
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every endpoint except /healthz and the static dashboard shell.
	Token        string        `yaml:"token"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxBodyBytes bounds every request body (413 beyond it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Settings configures statistics collection and the bottleneck analysis.
type Settings struct {
	// Enabled turns the per-query Recorder, the samplers and the analysis
	// on. With false the admin port still serves health, metrics and stats.
	Enabled bool `yaml:"enabled"`
	// SampleInterval is how often host, process and traffic samples are
	// taken for /api/v1/system and the dashboard history.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// History is how much sampled history is kept (History/SampleInterval
	// points).
	History time.Duration `yaml:"history"`
	// MaxFingerprints bounds the per-fingerprint table; the least used
	// entries are evicted (and counted) beyond it.
	MaxFingerprints int `yaml:"max_fingerprints"`
	// MaxExampleBytes bounds the example SQL kept per fingerprint for
	// EXPLAIN; longer texts are not kept.
	MaxExampleBytes int `yaml:"max_example_bytes"`
	// AnalysisInterval is the tick of the cheap analyses (host, pool,
	// queries, cache, Redis); Window is the sliding window they look at.
	AnalysisInterval time.Duration `yaml:"analysis_interval"`
	Window           time.Duration `yaml:"window"`
	// DBStatsInterval is how often pg_stat_* views are read through the
	// monitoring connection, per database.
	DBStatsInterval time.Duration `yaml:"db_stats_interval"`
	// QueryTimeout is the statement_timeout of monitoring queries.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	IndexAdvice  IndexAdvice   `yaml:"index_advice"`
	Thresholds   Thresholds    `yaml:"thresholds"`
}

// IndexAdvice configures EXPLAIN + hypopg index advice for slow reads.
type IndexAdvice struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
	// TopQueries is how many read fingerprints (by total time) are examined.
	TopQueries int `yaml:"top_queries"`
	// MinMeanTime skips fingerprints faster than this on average.
	MinMeanTime time.Duration `yaml:"min_mean_time"`
	// MinCostFactor: an index is recommended only when the planner's
	// estimated total cost drops by at least this factor.
	MinCostFactor float64 `yaml:"min_cost_factor"`
	// CreateExtension lets monitor run CREATE EXTENSION IF NOT EXISTS
	// hypopg (a catalog write) when hypopg is available but not installed.
	CreateExtension bool `yaml:"create_extension"`
}

// Thresholds are the limits past which the analysis reports a finding.
type Thresholds struct {
	CPUBusy            float64       `yaml:"cpu_busy"`             // fraction of all cores
	IOWait             float64       `yaml:"iowait"`               // fraction of CPU time
	MemoryAvailableMin float64       `yaml:"memory_available_min"` // fraction of RAM
	DiskUsedMax        float64       `yaml:"disk_used_max"`        // fraction of the filesystem
	PoolWaitP95        time.Duration `yaml:"pool_wait_p95"`
	MaxClientConnRatio float64       `yaml:"max_client_conn_ratio"`
	IdleInTransaction  time.Duration `yaml:"idle_in_transaction"`
	LongRunning        time.Duration `yaml:"long_running"`
	TopTimeShare       float64       `yaml:"top_time_share"` // share of window time
	RegressionFactor   float64       `yaml:"regression_factor"`
	RegressionMinCalls int           `yaml:"regression_min_calls"`
	RegressionMinDelta time.Duration `yaml:"regression_min_delta"`
	UncachedMinCalls   int           `yaml:"uncached_min_calls"` // per window
	CacheHitRatioMin   float64       `yaml:"cache_hit_ratio_min"`
	CacheChurnMax      float64       `yaml:"cache_churn_max"` // invalidations per fill
	CacheMinLookups    int           `yaml:"cache_min_lookups"`
	HugeRows           int64         `yaml:"huge_rows"`
	SeqScanMinRows     int64         `yaml:"seq_scan_min_rows"`
	SeqScanMinScans    int64         `yaml:"seq_scan_min_scans"`
	BufferHitRatioMin  float64       `yaml:"buffer_hit_ratio_min"`
	RedisLatency       time.Duration `yaml:"redis_latency"`
	RedisMemoryRatio   float64       `yaml:"redis_memory_ratio"`
}

// DefaultListen is loopback so a fresh install never exposes the admin port.
const DefaultListen = "127.0.0.1:9187"

// DefaultConfig returns safe defaults: loopback listener, monitoring on,
// 1 h of history at 10 s, database polling once a minute.
func DefaultConfig() Config {
	return Config{
		Admin: AdminConfig{
			Listen:       DefaultListen,
			ReadTimeout:  10 * time.Second,
			WriteTimeout: 30 * time.Second,
			MaxBodyBytes: 1 << 20,
		},
		Monitor: Settings{
			Enabled:          true,
			SampleInterval:   10 * time.Second,
			History:          time.Hour,
			MaxFingerprints:  5000,
			MaxExampleBytes:  8192,
			AnalysisInterval: 10 * time.Second,
			Window:           time.Minute,
			DBStatsInterval:  time.Minute,
			QueryTimeout:     5 * time.Second,
			IndexAdvice: IndexAdvice{
				Enabled:       true,
				Interval:      5 * time.Minute,
				TopQueries:    5,
				MinMeanTime:   5 * time.Millisecond,
				MinCostFactor: 2,
			},
			Thresholds: Thresholds{
				CPUBusy:            0.9,
				IOWait:             0.2,
				MemoryAvailableMin: 0.1,
				DiskUsedMax:        0.9,
				PoolWaitP95:        50 * time.Millisecond,
				MaxClientConnRatio: 0.9,
				IdleInTransaction:  30 * time.Second,
				LongRunning:        5 * time.Minute,
				TopTimeShare:       0.2,
				RegressionFactor:   3,
				RegressionMinCalls: 20,
				RegressionMinDelta: time.Millisecond,
				UncachedMinCalls:   100,
				CacheHitRatioMin:   0.5,
				CacheChurnMax:      0.5,
				CacheMinLookups:    100,
				HugeRows:           10000,
				SeqScanMinRows:     100000,
				SeqScanMinScans:    10,
				BufferHitRatioMin:  0.99,
				RedisLatency:       5 * time.Millisecond,
				RedisMemoryRatio:   0.9,
			},
		},
	}
}

// Validate reports every problem at once, each prefixed with its YAML key.
// A non-loopback admin.listen without admin.token is an error: Sluice
// refuses to start rather than expose query texts and cache purge.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	a := c.Admin
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		bad("admin.listen", "must be host:port: %v", err)
	} else {
		if _, err := net.LookupPort("tcp", port); err != nil {
			bad("admin.listen", "bad port %q", port)
		}
		if !IsLoopback(host) && a.Token == "" {
			bad("admin.token", "required when admin.listen (%s) is not a loopback address", a.Listen)
		}
	}
	if a.ReadTimeout <= 0 {
		bad("admin.read_timeout", "must be > 0")
	}
	if a.WriteTimeout <= 0 {
		bad("admin.write_timeout", "must be > 0")
	}
	if a.MaxBodyBytes <= 0 {
		bad("admin.max_body_bytes", "must be > 0")
	}
	m := c.Monitor
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be > 0")
		}
	}
	positive("monitor.sample_interval", m.SampleInterval)
	positive("monitor.analysis_interval", m.AnalysisInterval)
	positive("monitor.db_stats_interval", m.DBStatsInterval)
	positive("monitor.query_timeout", m.QueryTimeout)
	if m.History < m.SampleInterval {
		bad("monitor.history", "must be >= monitor.sample_interval")
	} else if m.SampleInterval > 0 && m.History/m.SampleInterval > 100000 {
		bad("monitor.history", "keeps more than 100000 samples; raise monitor.sample_interval")
	}
	if m.Window < m.AnalysisInterval {
		bad("monitor.window", "must be >= monitor.analysis_interval")
	} else if m.AnalysisInterval > 0 && m.Window/m.AnalysisInterval > maxWindowTicks {
		bad("monitor.window", "must be at most %d analysis intervals", maxWindowTicks)
	}
	if m.MaxFingerprints < 1 {
		bad("monitor.max_fingerprints", "must be >= 1")
	}
	if m.MaxExampleBytes < 0 {
		bad("monitor.max_example_bytes", "must be >= 0")
	}
	ia := m.IndexAdvice
	if ia.Enabled {
		positive("monitor.index_advice.interval", ia.Interval)
		if ia.TopQueries < 1 {
			bad("monitor.index_advice.top_queries", "must be >= 1")
		}
		if ia.MinCostFactor <= 1 {
			bad("monitor.index_advice.min_cost_factor", "must be > 1")
		}
	}
	if ia.MinMeanTime < 0 {
		bad("monitor.index_advice.min_mean_time", "must be >= 0")
	}
	t := m.Thresholds
	ratio := func(key string, v float64) {
		if !(v > 0 && v <= 1) {
			bad("monitor.thresholds."+key, "must be in (0, 1]")
		}
	}
	ratio("cpu_busy", t.CPUBusy)
	ratio("iowait", t.IOWait)
	ratio("memory_available_min", t.MemoryAvailableMin)
	ratio("disk_used_max", t.DiskUsedMax)
	ratio("max_client_conn_ratio", t.MaxClientConnRatio)
	ratio("top_time_share", t.TopTimeShare)
	ratio("cache_hit_ratio_min", t.CacheHitRatioMin)
	ratio("buffer_hit_ratio_min", t.BufferHitRatioMin)
	ratio("redis_memory_ratio", t.RedisMemoryRatio)
	positive("monitor.thresholds.pool_wait_p95", t.PoolWaitP95)
	positive("monitor.thresholds.idle_in_transaction", t.IdleInTransaction)
	positive("monitor.thresholds.long_running", t.LongRunning)
	positive("monitor.thresholds.redis_latency", t.RedisLatency)
	if t.RegressionFactor <= 1 {
		bad("monitor.thresholds.regression_factor", "must be > 1")
	}
	if t.RegressionMinDelta < 0 {
		bad("monitor.thresholds.regression_min_delta", "must be >= 0")
	}
	for _, kv := range []struct {
		key string
		v   int64
	}{
		{"regression_min_calls", int64(t.RegressionMinCalls)},
		{"uncached_min_calls", int64(t.UncachedMinCalls)},
		{"cache_min_lookups", int64(t.CacheMinLookups)},
		{"huge_rows", t.HugeRows},
		{"seq_scan_min_rows", t.SeqScanMinRows},
		{"seq_scan_min_scans", t.SeqScanMinScans},
	} {
		if kv.v < 1 {
			bad("monitor.thresholds."+kv.key, "must be >= 1")
		}
	}
	if t.CacheChurnMax <= 0 {
		bad("monitor.thresholds.cache_churn_max", "must be > 0")
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (from host:port) only listens on the
// loopback interface. An empty host means all interfaces.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
