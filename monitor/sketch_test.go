package monitor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestSketchQuantiles(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) float64
	}{
		{"uniform 1ms-100ms", func(r *rand.Rand) float64 { return 0.001 + r.Float64()*0.099 }},
		{"lognormal around 2ms", func(r *rand.Rand) float64 { return 0.002 * math.Exp(r.NormFloat64()) }},
		{"wide 10us-10s", func(r *rand.Rand) float64 { return 1e-5 * math.Pow(10, r.Float64()*6) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var s Sketch
			vals := make([]float64, 20000)
			for i := range vals {
				vals[i] = tt.gen(r)
				s.AddSeconds(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
				want := vals[int(q*float64(len(vals)-1))]
				got := s.Quantile(q)
				if rel := math.Abs(got-want) / want; rel > sketchAccuracy*1.01 {
					t.Errorf("q%.2f = %g, want %g (rel err %.4f)", q, got, want, rel)
				}
			}
			if s.Count() != uint64(len(vals)) {
				t.Errorf("count = %d", s.Count())
			}
		})
	}
}

func TestSketchMergeEqualsCombined(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all Sketch
	for i := 0; i < 5000; i++ {
		v := 0.0005 * math.Exp(r.NormFloat64()*2)
		if i%2 == 0 {
			a.AddSeconds(v)
		} else {
			b.AddSeconds(v * 10) // different ranges to force realignment
			v *= 10
		}
		all.AddSeconds(v)
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%.2f merged %g != combined %g", q, a.Quantile(q), all.Quantile(q))
		}
	}
}

func TestSketchBoundedAndEdgeValues(t *testing.T) {
	var s Sketch
	s.Add(0)
	s.Add(-time.Second)
	s.AddSeconds(math.NaN())
	s.AddSeconds(math.Inf(1)) // must not panic or grow unbounded
	for i := 0; i < 100; i++ {
		s.AddSeconds(1e-6 * math.Pow(10, float64(i%12)))
	}
	if len(s.bins) > sketchMaxBins {
		t.Fatalf("bins = %d > %d", len(s.bins), sketchMaxBins)
	}
	if s.Quantile(0) != 0 {
		t.Errorf("q0 = %g, want 0 for sub-microsecond values", s.Quantile(0))
	}
	var empty Sketch
	if empty.Quantile(0.5) != 0 {
		t.Error("empty sketch quantile != 0")
	}
}

func TestSketchAddDoesNotAllocateInRange(t *testing.T) {
	var s Sketch
	s.AddSeconds(0.0001)
	s.AddSeconds(1)
	allocs := testing.AllocsPerRun(1000, func() { s.AddSeconds(0.01) })
	if allocs != 0 {
		t.Fatalf("allocs = %v", allocs)
	}
}
