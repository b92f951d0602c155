package monitor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Severity orders findings; the JSON form is the lowercase name.
type Severity int

const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityCritical
)

func (s Severity) String() string {
	switch s {
	case SeverityCritical:
		return "critical"
	case SeverityWarning:
		return "warning"
	}
	return "info"
}

// MarshalJSON writes the name, so API users need no table of numbers.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON accepts the name (for clients reading the API in Go).
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	switch name {
	case "critical":
		*s = SeverityCritical
	case "warning":
		*s = SeverityWarning
	case "info":
		*s = SeverityInfo
	default:
		return fmt.Errorf("unknown severity %q", name)
	}
	return nil
}

// Finding kinds. The ID of a finding is its kind plus its subject, stable
// across analysis passes so FirstSeen means something.
const (
	KindHostCPU         = "host.cpu_saturated"
	KindHostMemory      = "host.memory_pressure"
	KindHostSwap        = "host.swapping"
	KindHostDisk        = "host.disk_full"
	KindHostIOWait      = "host.iowait"
	KindPoolWait        = "pool.wait"
	KindPoolMaxClients  = "pool.max_client_conn"
	KindPoolIdleInTx    = "pool.idle_in_transaction"
	KindQueryTopTime    = "queries.top_total_time"
	KindQueryRegression = "queries.latency_regression"
	KindQueryUncached   = "queries.uncached_read"
	KindQueryHugeRows   = "queries.huge_rows"
	KindCacheHitRatio   = "cache.low_hit_ratio"
	KindCacheChurn      = "cache.invalidation_churn"
	KindDBSeqScan       = "database.seq_scan"
	KindDBBufferHit     = "database.buffer_hit_ratio"
	KindDBTempFiles     = "database.temp_files"
	KindDBDeadlocks     = "database.deadlocks"
	KindDBLongRunning   = "database.long_running"
	KindDBIdleInTx      = "database.idle_in_transaction"
	KindDBUnreachable   = "database.monitoring_failed"
	KindIndexAdvice     = "index.create_index"
	KindIndexLimited    = "index.advice_limited"
	KindRedisDown       = "redis.unreachable"
	KindRedisLatency    = "redis.latency"
	KindRedisErrors     = "redis.errors"
	KindRedisEvictions  = "redis.evictions"
	KindRedisMemory     = "redis.memory"
)

// Finding is one diagnosed problem with its evidence and what to do.
type Finding struct {
	ID             string   `json:"id"`
	Kind           string   `json:"kind"`
	Category       string   `json:"category"`
	Subject        string   `json:"subject,omitempty"`
	Severity       Severity `json:"severity"`
	Title          string   `json:"title"`
	Evidence       Evidence `json:"evidence"`
	Recommendation string   `json:"recommendation"`
	// Score ranks the to-do list: severity first, then impact.
	Score     float64   `json:"score"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Evidence is the numbers behind a finding and the window they cover.
type Evidence struct {
	Window  string         `json:"window"`
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	Summary string         `json:"summary"`
	Values  map[string]any `json:"values"`
}

func newFinding(kind, subject string, sev Severity, title string) Finding {
	cat, _, _ := strings.Cut(kind, ".")
	id := kind
	if subject != "" {
		id += ":" + subject
	}
	return Finding{ID: id, Kind: kind, Category: cat, Subject: subject, Severity: sev, Title: title}
}

// Recommendation is one item of the ranked to-do list.
type Recommendation struct {
	Rank      int      `json:"rank"`
	Severity  Severity `json:"severity"`
	Action    string   `json:"action"`
	Why       string   `json:"why"`
	FindingID string   `json:"finding_id"`
	Title     string   `json:"title"`
}

// findingStore keeps the latest findings of each analysis pass; a pass
// replaces only its own findings, keeping FirstSeen for ones that persist.
type findingStore struct {
	mu     sync.Mutex
	byPass map[string]map[string]Finding
}

func newFindingStore() *findingStore {
	return &findingStore{byPass: map[string]map[string]Finding{}}
}

func (s *findingStore) replace(pass string, now time.Time, fs []Finding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byPass[pass]
	next := make(map[string]Finding, len(fs))
	for _, f := range fs {
		f.LastSeen = now
		f.FirstSeen = now
		if o, ok := old[f.ID]; ok {
			f.FirstSeen = o.FirstSeen
		}
		f.Score = float64(f.Severity)*1000 + f.Score
		next[f.ID] = f
	}
	s.byPass[pass] = next
	counts := map[[2]string]int{}
	for _, p := range s.byPass {
		for _, f := range p {
			counts[[2]string{f.Category, f.Severity.String()}]++
		}
	}
	metricFindings.Reset()
	for k, n := range counts {
		metricFindings.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
}

// list returns all current findings, most important first.
func (s *findingStore) list() []Finding {
	s.mu.Lock()
	out := []Finding{}
	for _, p := range s.byPass {
		for _, f := range p {
			out = append(out, f)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Finding) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func recommendations(fs []Finding) []Recommendation {
	out := make([]Recommendation, 0, len(fs))
	for i, f := range fs {
		out = append(out, Recommendation{Rank: i + 1, Severity: f.Severity, Action: f.Recommendation,
			Why: f.Evidence.Summary, FindingID: f.ID, Title: f.Title})
	}
	return out
}

func windowText(d time.Duration) string { return "last " + d.String() }
