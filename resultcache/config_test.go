package resultcache

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings, all must appear
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults valid", yaml: ``},
		{name: "full", yaml: `
mode: auto
default_ttl: 30s
auto_min_calls: 5
auto_window: 2m
l1_max_bytes: 1048576
max_entry_size: 65536
compress_threshold: 1024
refresh_ahead: 0.2
catalog_refresh: 30s
redis:
  addrs: [a:1, b:2]
  timeout: 3ms
  breaker: {failures: 3, cooldown: 1s}
invalidation:
  logical_replication: true
  slot_name: sl
  publication: pub
`, check: func(t *testing.T, c Config) {
			if c.Mode != ModeAuto || c.DefaultTTL != 30*time.Second || c.Redis.Timeout != 3*time.Millisecond {
				t.Fatalf("decoded %+v", c)
			}
			if c.Redis.RedisMode() != "cluster" {
				t.Fatalf("mode inferred %q, want cluster", c.Redis.RedisMode())
			}
		}},
		{name: "bad mode", yaml: `mode: sometimes`, wantErr: []string{"cache.mode:"}},
		{name: "many problems joined", yaml: `
default_ttl: 0s
redis: {timeout: 0s, mode: weird, breaker: {failures: 0}}
refresh_ahead: 1.5`, wantErr: []string{"cache.default_ttl:", "cache.redis.timeout:", "cache.redis.mode:", "cache.redis.breaker.failures:", "cache.refresh_ahead:"}},
		{name: "sentinel needs master", yaml: `redis: {mode: sentinel, addrs: [x:1]}`, wantErr: []string{"cache.redis.master_name:"}},
		{name: "slot name checked", yaml: `invalidation: {logical_replication: true, slot_name: "Bad-Name"}`, wantErr: []string{"cache.invalidation.slot_name:"}},
		{name: "entry larger than l1", yaml: `{l1_max_bytes: 10, max_entry_size: 20}`, wantErr: []string{"cache.max_entry_size:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
				t.Fatal(err)
			}
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
