package rewrite

import (
	"strings"
	"time"
)

// parseCacheComment reads "/* sluice:cache ttl=60s */" and
// "/* sluice:nocache */" from one C-style comment. An application can mark
// a statement this way without a rule; an unreadable ttl is ignored rather
// than failing the statement.
func parseCacheComment(c string, d *CacheDirective) {
	body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(c, "/*"), "*/"))
	for _, f := range strings.Fields(body) {
		switch {
		case f == "sluice:nocache":
			d.Set, d.Off = true, true
		case f == "sluice:cache":
			d.Set = true
		case strings.HasPrefix(f, "ttl=") && strings.Contains(body, "sluice:cache"):
			if ttl, err := time.ParseDuration(f[4:]); err == nil && ttl > 0 {
				d.TTL = ttl
			}
		}
	}
}
