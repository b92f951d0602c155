package resultcache

import (
	"errors"
	"fmt"
	"time"
)

// Mode selects which statements may be cached at all.
type Mode string

const (
	// ModeOff never caches.
	ModeOff Mode = "off"
	// ModeRules caches only statements whose rule (or a /* sluice:cache */
	// comment) gives a TTL. The default: nothing is cached unless asked.
	ModeRules Mode = "rules"
	// ModeAuto also caches any eligible statement whose fingerprint repeats
	// AutoMinCalls times within AutoWindow, with DefaultTTL.
	ModeAuto Mode = "auto"
)

// Config is the `cache:` section of sluice.yaml.
type Config struct {
	Mode       Mode          `yaml:"mode"`
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// AutoMinCalls and AutoWindow define "repeats" for ModeAuto.
	AutoMinCalls int           `yaml:"auto_min_calls"`
	AutoWindow   time.Duration `yaml:"auto_window"`
	// AutoMaxFingerprints bounds the memory of the auto-mode counters.
	AutoMaxFingerprints int `yaml:"auto_max_fingerprints"`
	// L1MaxBytes bounds the in-process cache by payload bytes.
	L1MaxBytes int64 `yaml:"l1_max_bytes"`
	// MaxEntrySize: results larger than this are never stored.
	MaxEntrySize int `yaml:"max_entry_size"`
	// CompressThreshold: L2 values at least this large are s2-compressed.
	CompressThreshold int `yaml:"compress_threshold"`
	// RefreshAhead is the fraction of an entry's TTL, at its end, during which
	// a hit on a hot entry hands one caller a refresh ticket (0 disables).
	RefreshAhead float64 `yaml:"refresh_ahead"`
	// CoalesceWait bounds how long a concurrent miss waits for the leader's
	// fill before going to PostgreSQL itself.
	CoalesceWait time.Duration `yaml:"coalesce_wait"`
	// FillTimeout is how long a fill ticket (miss leader or refresh) is
	// honoured; after it another caller may take the lead.
	FillTimeout time.Duration `yaml:"fill_timeout"`
	// FillQueue bounds the background L2 writes waiting; beyond it fills
	// are dropped (counted), never blocking a client.
	FillQueue int `yaml:"fill_queue"`
	// WriteLease bounds how long a write whose end is never reported (its
	// instance died mid-transaction) blocks fills of what it writes.
	WriteLease time.Duration `yaml:"write_lease"`
	// CatalogRefresh is how often volatility and relation catalogs are
	// reloaded (DDL seen through Sluice reloads them at once).
	CatalogRefresh time.Duration      `yaml:"catalog_refresh"`
	Redis          RedisConfig        `yaml:"redis"`
	Invalidation   InvalidationConfig `yaml:"invalidation"`
}

// RedisConfig configures L2. No addrs means L1 only (the embedded default).
type RedisConfig struct {
	// Mode is standalone, sentinel or cluster; empty infers it (master_name
	// set: sentinel; several addrs: cluster; else standalone).
	Mode       string   `yaml:"mode"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	// Timeout bounds every Redis operation on the client path; a slow
	// Redis becomes a miss, not a slow query.
	Timeout time.Duration `yaml:"timeout"`
	// AckTimeout bounds how long a write edge waits for the other
	// instances to confirm they applied it (read-your-writes across
	// instances).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	PoolSize   int           `yaml:"pool_size"`
	// KeyPrefix namespaces keys and the invalidation channel, so that
	// several deployments (or tests) can share one Redis.
	KeyPrefix string        `yaml:"key_prefix"`
	Breaker   BreakerConfig `yaml:"breaker"`
}

// BreakerConfig: after Failures consecutive Redis failures the cache is
// bypassed for Cooldown, then one probe decides whether to resume.
type BreakerConfig struct {
	Failures int           `yaml:"failures"`
	Cooldown time.Duration `yaml:"cooldown"`
}

// InvalidationConfig configures catching writes made directly to PostgreSQL.
type InvalidationConfig struct {
	LogicalReplication bool `yaml:"logical_replication"`
	// SlotName is the prefix of the temporary slot name; each instance and
	// database gets its own slot (prefix_<random>).
	SlotName    string `yaml:"slot_name"`
	Publication string `yaml:"publication"`
	// StatusInterval is how often standby status updates are sent.
	StatusInterval time.Duration `yaml:"status_interval"`
}

// DefaultConfig is safe: rules mode (nothing cached without a rule), L1
// only, 64 MiB.
func DefaultConfig() Config {
	return Config{
		Mode:                ModeRules,
		DefaultTTL:          60 * time.Second,
		AutoMinCalls:        3,
		AutoWindow:          time.Minute,
		AutoMaxFingerprints: 100_000,
		L1MaxBytes:          64 << 20,
		MaxEntrySize:        1 << 20,
		CompressThreshold:   4 << 10,
		RefreshAhead:        0.1,
		CoalesceWait:        2 * time.Second,
		FillTimeout:         30 * time.Second,
		FillQueue:           1024,
		CatalogRefresh:      time.Minute,
		WriteLease:          5 * time.Minute,
		Redis: RedisConfig{
			Timeout:    5 * time.Millisecond,
			AckTimeout: 50 * time.Millisecond,
			PoolSize:   0,
			KeyPrefix:  "sluice",
			Breaker:    BreakerConfig{Failures: 5, Cooldown: 5 * time.Second},
		},
		Invalidation: InvalidationConfig{
			SlotName:       "sluice",
			Publication:    "sluice_pub",
			StatusInterval: 10 * time.Second,
		},
	}
}

// RedisMode resolves an empty mode from the other fields.
func (r RedisConfig) RedisMode() string {
	if r.Mode != "" {
		return r.Mode
	}
	switch {
	case r.MasterName != "":
		return "sentinel"
	case len(r.Addrs) > 1:
		return "cluster"
	default:
		return "standalone"
	}
}

// Enabled says whether L2 is configured.
func (r RedisConfig) Enabled() bool { return len(r.Addrs) > 0 }

// Validate reports every problem, each prefixed with its YAML key path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("cache.%s: "+msg, append([]any{key}, args...)...))
	}
	switch c.Mode {
	case ModeOff, ModeRules, ModeAuto:
	default:
		bad("mode", "must be off, rules or auto, not %q", c.Mode)
	}
	if c.DefaultTTL <= 0 {
		bad("default_ttl", "must be > 0")
	}
	if c.AutoMinCalls < 1 {
		bad("auto_min_calls", "must be >= 1")
	}
	if c.AutoWindow <= 0 {
		bad("auto_window", "must be > 0")
	}
	if c.AutoMaxFingerprints < 1 {
		bad("auto_max_fingerprints", "must be >= 1")
	}
	if c.L1MaxBytes <= 0 {
		bad("l1_max_bytes", "must be > 0")
	}
	if c.MaxEntrySize <= 0 {
		bad("max_entry_size", "must be > 0")
	} else if c.L1MaxBytes > 0 && int64(c.MaxEntrySize) > c.L1MaxBytes {
		bad("max_entry_size", "must be <= l1_max_bytes")
	}
	if c.CompressThreshold < 0 {
		bad("compress_threshold", "must be >= 0")
	}
	if c.RefreshAhead < 0 || c.RefreshAhead >= 1 {
		bad("refresh_ahead", "must be a fraction of the TTL in [0, 1)")
	}
	if c.CoalesceWait <= 0 {
		bad("coalesce_wait", "must be > 0")
	}
	if c.FillTimeout < c.CoalesceWait {
		bad("fill_timeout", "must be >= coalesce_wait")
	}
	if c.FillQueue < 1 {
		bad("fill_queue", "must be >= 1")
	}
	if c.WriteLease <= 0 {
		bad("write_lease", "must be > 0")
	}
	if c.CatalogRefresh <= 0 {
		bad("catalog_refresh", "must be > 0")
	}
	r := c.Redis
	switch r.RedisMode() {
	case "standalone", "cluster":
	case "sentinel":
		if r.MasterName == "" {
			bad("redis.master_name", "required in sentinel mode")
		}
	default:
		bad("redis.mode", "must be standalone, sentinel or cluster, not %q", r.Mode)
	}
	if r.Timeout <= 0 {
		bad("redis.timeout", "must be > 0")
	}
	if r.AckTimeout <= 0 {
		bad("redis.ack_timeout", "must be > 0")
	}
	if r.PoolSize < 0 {
		bad("redis.pool_size", "must be >= 0 (0: go-redis default)")
	}
	if r.DB < 0 {
		bad("redis.db", "must be >= 0")
	}
	if r.KeyPrefix == "" {
		bad("redis.key_prefix", "must not be empty")
	}
	if r.Breaker.Failures < 1 {
		bad("redis.breaker.failures", "must be >= 1")
	}
	if r.Breaker.Cooldown <= 0 {
		bad("redis.breaker.cooldown", "must be > 0")
	}
	inv := c.Invalidation
	if inv.LogicalReplication {
		if !validIdent(inv.SlotName) {
			bad("invalidation.slot_name", "must be lowercase letters, digits and _ (%q)", inv.SlotName)
		}
		if !validIdent(inv.Publication) {
			bad("invalidation.publication", "must be lowercase letters, digits and _ (%q)", inv.Publication)
		}
		if inv.StatusInterval <= 0 {
			bad("invalidation.status_interval", "must be > 0")
		}
	}
	return errors.Join(errs...)
}

// validIdent accepts what a replication slot name accepts (lowercase
// letters, digits, underscore; see ReplicationSlotValidateName), with room
// left for the random suffix under NAMEDATALEN.
func validIdent(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
