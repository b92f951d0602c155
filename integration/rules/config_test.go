package rules_test

import (
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/internal/sluicetest"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// TestCacheDirectiveLoads: both documented forms of a rule's cache
// directive (docs/rewrite.md) load through the root config.
func TestCacheDirectiveLoads(t *testing.T) {
	pg := testenv.Postgres{Host: "127.0.0.1", Port: "5432", User: "u", Password: "p"}
	cases := []struct {
		name, rule string
		off        bool
		ttl        time.Duration
	}{
		{name: "ttl", rule: "cache: {ttl: 30s}", ttl: 30 * time.Second},
		{name: "off", rule: "cache: off", off: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(sluicetest.Base(pg, "transaction")+"\nrules:\n  - name: c\n    "+tc.rule+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Rewrite.Rules[0].Cache
			if c == nil || c.Off != tc.off || c.TTL != tc.ttl {
				t.Errorf("cache directive %+v, want off=%v ttl=%s", c, tc.off, tc.ttl)
			}
		})
	}
}
