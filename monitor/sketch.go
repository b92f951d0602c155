package monitor

import (
	"math"
	"time"
)

// Sketch is a mergeable latency histogram with bounded relative error, in
// the manner of DDSketch (Masson et al., VLDB 2019): a value v lands in
// bucket ceil(log_gamma(v)), so every quantile it returns is within
// sketchAccuracy of a true sample value. Buckets are a dense slice covering
// only the keys seen, so a fingerprint whose latencies span two decades
// costs about 230 buckets; past sketchMaxBins the lowest buckets collapse
// into one, which keeps the high quantiles (the ones that matter) exact.
//
// A Sketch is not safe for concurrent use; callers hold their shard lock.
// Adding a value inside the covered range never allocates.
type Sketch struct {
	bins   []uint32
	offset int    // key of bins[0]
	zero   uint64 // values below sketchMin (sub-microsecond)
	count  uint64
	max    float64
}

const (
	sketchAccuracy = 0.01
	sketchMaxBins  = 1024
	// sketchMin is 1 µs in seconds: finer resolution is noise for queries.
	sketchMin = 1e-6
	// sketchMaxValue clamps absurd values (and +Inf) to about 11.6 days.
	sketchMaxValue = 1e6
)

var (
	sketchGamma    = (1 + sketchAccuracy) / (1 - sketchAccuracy)
	sketchLogGamma = math.Log(sketchGamma)
)

func sketchKey(seconds float64) int {
	return int(math.Ceil(math.Log(seconds) / sketchLogGamma))
}

// Add records one duration.
func (s *Sketch) Add(d time.Duration) { s.AddSeconds(d.Seconds()) }

// AddSeconds records one value in seconds.
func (s *Sketch) AddSeconds(v float64) { s.addValue(v, keyOf(v)) }

// zeroKey marks values below sketchMin.
const zeroKey = math.MinInt32

// keyOf computes a value's bucket once, so callers feeding several
// sketches pay for one logarithm.
func keyOf(v float64) int {
	if !(v >= sketchMin) { // also catches NaN
		return zeroKey
	}
	if v > sketchMaxValue {
		v = sketchMaxValue
	}
	return sketchKey(v)
}

func (s *Sketch) addValue(v float64, k int) {
	s.count++
	if v > s.max {
		s.max = v
	}
	if k == zeroKey {
		s.zero++
		return
	}
	s.addKey(k, 1)
}

func (s *Sketch) addKey(k int, n uint32) {
	if len(s.bins) == 0 {
		s.bins = make([]uint32, 8)
		s.offset = k - 4
	}
	i := k - s.offset
	if i < 0 || i >= len(s.bins) {
		i = s.grow(k)
	}
	s.bins[i] += n
}

// grow extends bins to cover key k, collapsing the lowest buckets when the
// range would exceed sketchMaxBins, and returns k's index.
func (s *Sketch) grow(k int) int {
	lo, hi := s.offset, s.offset+len(s.bins)-1
	if k < lo {
		lo = k
	}
	if k > hi {
		hi = k
	}
	if hi-lo+1 > sketchMaxBins {
		lo = hi - sketchMaxBins + 1
	}
	n := hi - lo + 1
	// Leave headroom so a slowly widening range does not reallocate per Add.
	extra := n / 4
	if n+extra > sketchMaxBins {
		extra = sketchMaxBins - n
	}
	newLo := lo
	if k == lo && extra > 0 { // growing downward
		newLo = lo - extra
	}
	bins := make([]uint32, n+extra)
	for i, c := range s.bins {
		key := s.offset + i
		j := key - newLo
		if j < 0 {
			j = 0 // collapsed into the lowest bucket
		}
		if j >= len(bins) {
			continue
		}
		bins[j] += c
	}
	s.bins, s.offset = bins, newLo
	i := k - newLo
	if i < 0 {
		i = 0
	}
	return i
}

// Count is the number of values recorded.
func (s *Sketch) Count() uint64 { return s.count }

// Max is the largest value recorded, in seconds.
func (s *Sketch) Max() float64 { return s.max }

// Quantile returns the q-quantile (0..1) in seconds, 0 when empty.
func (s *Sketch) Quantile(q float64) float64 {
	if s.count == 0 {
		return 0
	}
	if q <= 0 {
		q = 0
	}
	if q >= 1 {
		return s.max
	}
	rank := uint64(q * float64(s.count-1))
	if rank < s.zero {
		return 0
	}
	seen := s.zero
	for i, c := range s.bins {
		seen += uint64(c)
		if seen > rank {
			v := 2 * math.Pow(sketchGamma, float64(s.offset+i)) / (1 + sketchGamma)
			return math.Min(v, s.max)
		}
	}
	return s.max
}

// Merge adds o's values to s; merging is exact (same buckets).
func (s *Sketch) Merge(o *Sketch) {
	if o.count == 0 {
		return
	}
	s.count += o.count
	s.zero += o.zero
	if o.max > s.max {
		s.max = o.max
	}
	for i, c := range o.bins {
		if c != 0 {
			s.addKey(o.offset+i, c)
		}
	}
}

// Reset empties s but keeps its buckets allocated.
func (s *Sketch) Reset() {
	clear(s.bins)
	s.zero, s.count, s.max = 0, 0, 0
}

// Clone returns an independent copy.
func (s *Sketch) Clone() Sketch {
	c := *s
	c.bins = append([]uint32(nil), s.bins...)
	return c
}
