package rewrite

import (
	"github.com/maypok86/otter/v2"
)

// analysisCache maps exact statement text to its analysis. otter gives a
// bounded, concurrent cache whose hit path takes no global lock; analysis
// runs outside it, so two sessions missing on the same new text at once may
// both parse it (a rare double parse beats contention, STYLE.md).
type analysisCache struct {
	c *otter.Cache[string, *analysis]
}

func newAnalysisCache(maxBytes int64) *analysisCache {
	if maxBytes <= 0 {
		return nil
	}
	c, err := otter.New(&otter.Options[string, *analysis]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, a *analysis) uint32 { return a.weight() },
	})
	if err != nil {
		return nil
	}
	return &analysisCache{c: c}
}

func (c *analysisCache) get(text string) (*analysis, bool) {
	if c == nil {
		return nil, false
	}
	return c.c.GetIfPresent(text)
}

// put stores an and returns the cached analysis for text, which is an's or
// that of a concurrent miss that stored first: callers then share one
// analysis (and its rule memo).
func (c *analysisCache) put(text string, an *analysis) *analysis {
	if c == nil {
		return an
	}
	got, _ := c.c.SetIfAbsent(text, an)
	if got == nil {
		return an
	}
	return got
}

// size is the cache's estimated weight in bytes.
func (c *analysisCache) size() uint64 {
	if c == nil {
		return 0
	}
	return c.c.WeightedSize()
}
