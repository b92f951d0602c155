package resultcache

import (
	"bytes"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

var benchPayload = bytes.Repeat([]byte("D\x00\x00\x00\x20 a row of about thirty bytes "), 10)

func BenchmarkLookupL1Hit(b *testing.B) {
	c := newTestCache(b, func(c *Config) { c.RefreshAhead = 0 }, Deps{})
	r := req("select * from t where id = $1", "app", 16384, 16390)
	c.Lookup(ctx, r).Fill.Store(benchPayload, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if !c.Lookup(ctx, r).Hit() {
			b.Fatal("miss")
		}
	}
}

// BenchmarkLookupL2Hit measures a lookup that misses L1 and is answered by
// Redis (one pipelined round trip to the test Redis on loopback).
func BenchmarkLookupL2Hit(b *testing.B) {
	addr := testenv.RedisAddr(b)
	c := redisCache(b, addr, uniquePrefix(b), func(c *Config) { c.RefreshAhead = 0 })
	r := req("select * from t where id = $1", "app", 16384, 16390)
	fillAndWait(b, c, r, benchPayload)
	b.ReportAllocs()
	for b.Loop() {
		c.l1.Invalidate(r.Key)
		if res := c.Lookup(ctx, r); res.Level != "l2" {
			b.Fatalf("want l2 hit, got %+v", res)
		}
	}
}

// BenchmarkCheck measures eligibility against the in-memory catalog
// snapshot: a view over a table, an immutable function.
func BenchmarkCheck(b *testing.B) {
	db, _ := testDB(b)
	c := newTestCache(b, nil, pgDeps(b))
	q := Query{Database: db, User: "postgres", SearchPath: `"$user", public`,
		Reads: []Relation{{"", "v_items"}}, Functions: []string{"lower"},
		ReadOnly: true, Single: true, Kind: "select"}
	if ok, reason, _ := c.Check(ctx, q); !ok {
		b.Fatal(reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Check(ctx, q)
	}
}
