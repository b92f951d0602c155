package resultcache

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var ctx = context.Background()

func TestL1HitMissAndInvalidate(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("select * from t", "app", 100, 200)
	res := c.Lookup(ctx, r)
	if res.Hit() || res.Fill == nil {
		t.Fatalf("first lookup: want miss with fill, got %+v", res)
	}
	if !res.Fill.Store([]byte("rows-v1"), time.Minute) {
		t.Fatal("store refused")
	}
	res = c.Lookup(ctx, r)
	if !res.Hit() || res.Level != "l1" || string(res.Payload) != "rows-v1" {
		t.Fatalf("second lookup: want l1 hit, got %+v", res)
	}
	// A write to an unrelated relation keeps the entry.
	c.InvalidateIDs(ctx, "app", []RelID{300})
	if !c.Lookup(ctx, r).Hit() {
		t.Fatal("unrelated write invalidated the entry")
	}
	// Same relation in another database keeps it too.
	c.InvalidateIDs(ctx, "other", []RelID{100})
	if !c.Lookup(ctx, r).Hit() {
		t.Fatal("write in another database invalidated the entry")
	}
	c.InvalidateIDs(ctx, "app", []RelID{200})
	res = c.Lookup(ctx, r)
	if res.Hit() {
		t.Fatal("hit after a write to a relation read")
	}
	res.Fill.Store([]byte("rows-v2"), time.Minute)
	if got := c.Lookup(ctx, r); string(got.Payload) != "rows-v2" {
		t.Fatalf("got %q", got.Payload)
	}
	c.InvalidateDatabase(ctx, "app")
	if c.Lookup(ctx, r).Hit() {
		t.Fatal("hit after InvalidateDatabase")
	}
}

func TestLookupRelsMustMatch(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("select * from p", "app", 100, 101)
	c.Lookup(ctx, r).Fill.Store([]byte("x"), time.Minute)
	r2 := *r
	r2.Rels = []RelID{100, 101, 102} // a partition was attached since
	if c.Lookup(ctx, &r2).Hit() {
		t.Fatal("entry filled for other relations served")
	}
}

func TestFillRace(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("select * from t", "app", 100)
	res := c.Lookup(ctx, r) // query "sent"
	c.InvalidateIDs(ctx, "app", []RelID{100})
	if res.Fill.Store([]byte("maybe stale"), time.Minute) {
		t.Fatal("stored a result whose relation changed while it was computed")
	}
	if c.Lookup(ctx, r).Hit() {
		t.Fatal("stale result served")
	}
}

func TestMaxEntrySizeAndTTL(t *testing.T) {
	c := newTestCache(t, func(c *Config) { c.MaxEntrySize = 10; c.RefreshAhead = 0 }, Deps{})
	r := req("big", "app", 1)
	if c.Lookup(ctx, r).Fill.Store(bytes.Repeat([]byte("x"), 11), time.Minute) {
		t.Fatal("stored an entry above max_entry_size")
	}
	if c.Lookup(ctx, r).Hit() {
		t.Fatal("oversized entry served")
	}
	r2 := req("short", "app", 1)
	c.Lookup(ctx, r2).Fill.Store([]byte("ok"), 150*time.Millisecond)
	if !c.Lookup(ctx, r2).Hit() {
		t.Fatal("no hit within TTL")
	}
	time.Sleep(200 * time.Millisecond)
	if c.Lookup(ctx, r2).Hit() {
		t.Fatal("hit after TTL")
	}
}

func TestCoalescing(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("slow", "app", 1)
	const n = 20
	var leaders, hits atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := c.Lookup(ctx, r)
			switch {
			case res.Fill != nil:
				leaders.Add(1)
				time.Sleep(100 * time.Millisecond) // the query to PostgreSQL
				res.Fill.Store([]byte("result"), time.Minute)
			case res.Hit() && string(res.Payload) == "result":
				hits.Add(1)
			default:
				t.Errorf("unexpected %+v", res)
			}
		}()
	}
	close(start)
	wg.Wait()
	if leaders.Load() != 1 || hits.Load() != n-1 {
		t.Fatalf("leaders %d hits %d, want 1 and %d", leaders.Load(), hits.Load(), n-1)
	}
}

func TestCoalescingLeaderAbandonsOrVanishes(t *testing.T) {
	c := newTestCache(t, func(c *Config) { c.CoalesceWait = 200 * time.Millisecond; c.FillTimeout = 200 * time.Millisecond }, Deps{})
	r := req("q", "app", 1)
	lead := c.Lookup(ctx, r)
	done := make(chan Result)
	go func() { done <- c.Lookup(ctx, r) }()
	time.Sleep(20 * time.Millisecond)
	lead.Fill.Abandon()
	select {
	case res := <-done:
		if res.Hit() || res.Fill != nil {
			t.Fatalf("follower of an abandoned leader: want bypass, got %+v", res)
		}
	case <-time.After(time.Second):
		t.Fatal("follower stuck after Abandon")
	}
	// A leader that never calls Store or Abandon: followers give up after
	// coalesce_wait, and after fill_timeout a new leader is chosen.
	_ = c.Lookup(ctx, r)
	t0 := time.Now()
	res := c.Lookup(ctx, r)
	if res.Hit() || res.Reason != "coalesce_timeout" || time.Since(t0) > time.Second {
		t.Fatalf("want coalesce_timeout within bounds, got %+v after %v", res, time.Since(t0))
	}
	if res := c.Lookup(ctx, r); res.Fill == nil {
		t.Fatalf("after fill_timeout a new leader must be chosen, got %+v", res)
	}
}

// A follower whose client wrote after the leader sent its query must not
// get the leader's result.
func TestCoalescingStaleFollower(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("q", "app", 1)
	lead := c.Lookup(ctx, r)
	c.InvalidateIDs(ctx, "app", []RelID{1})
	if res := c.Lookup(ctx, r); res.Hit() || res.Reason != "coalesce_stale" {
		t.Fatalf("want coalesce_stale bypass, got %+v", res)
	}
	lead.Fill.Abandon()
}

func TestRefreshAhead(t *testing.T) {
	c := newTestCache(t, func(c *Config) { c.RefreshAhead = 0.5 }, Deps{})
	r := req("hot", "app", 1)
	c.Lookup(ctx, r).Fill.Store([]byte("v1"), 400*time.Millisecond)
	for range 3 { // hot, but not yet in the refresh window
		if res := c.Lookup(ctx, r); !res.Hit() || res.Fill != nil {
			t.Fatalf("early: %+v", res)
		}
	}
	time.Sleep(250 * time.Millisecond)
	var tickets []*Fill
	for range 10 {
		res := c.Lookup(ctx, r)
		if !res.Hit() {
			t.Fatal("entry expired instead of being refreshed")
		}
		if res.Fill != nil {
			if !res.Fill.Refresh() {
				t.Fatal("ticket on a hit is not a refresh")
			}
			tickets = append(tickets, res.Fill)
		}
	}
	if len(tickets) != 1 {
		t.Fatalf("%d refresh tickets, want exactly 1", len(tickets))
	}
	tickets[0].Store([]byte("v2"), 400*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // past the first entry's TTL
	if res := c.Lookup(ctx, r); string(res.Payload) != "v2" {
		t.Fatalf("after refresh got %+v", res)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		mode   Mode
		rule   time.Duration
		dir    Directive
		calls  int
		want   bool
		wantTT time.Duration
	}{
		{"off", ModeOff, time.Second, Directive{Cache: true}, 1, false, 0},
		{"rules no rule", ModeRules, 0, Directive{}, 5, false, 0},
		{"rules rule", ModeRules, 7 * time.Second, Directive{}, 1, true, 7 * time.Second},
		{"nocache beats rule", ModeRules, 7 * time.Second, Directive{NoCache: true}, 1, false, 0},
		{"comment opt in", ModeRules, 0, Directive{Cache: true, TTL: time.Minute}, 1, true, time.Minute},
		{"comment default ttl", ModeRules, 0, Directive{Cache: true}, 1, true, 60 * time.Second},
		{"auto below", ModeAuto, 0, Directive{}, 2, false, 0},
		{"auto reached", ModeAuto, 0, Directive{}, 3, true, 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, func(c *Config) { c.Mode = tt.mode }, Deps{})
			var ttl time.Duration
			var ok bool
			for range tt.calls {
				ttl, ok = c.Decide(42, tt.rule, tt.dir)
			}
			if ok != tt.want || ttl != tt.wantTT {
				t.Fatalf("got %v %v, want %v %v", ttl, ok, tt.wantTT, tt.want)
			}
		})
	}
}

func TestPurgeL1(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	a := req("a", "app", 1)
	a.Fingerprint = 11
	b := req("b", "app", 2)
	b.Fingerprint = 22
	d := req("d", "other", 1)
	for _, r := range []*Request{a, b, d} {
		c.Lookup(ctx, r).Fill.Store([]byte("x"), time.Minute)
	}
	if n, err := c.Purge(ctx, PurgeRequest{Fingerprint: 11}); err != nil || n != 1 {
		t.Fatalf("purge fingerprint: %d %v", n, err)
	}
	if c.Lookup(ctx, a).Hit() || !c.Lookup(ctx, b).Hit() {
		t.Fatal("purge by fingerprint dropped the wrong entries")
	}
	if n, err := c.Purge(ctx, PurgeRequest{Database: "app"}); err != nil || n != 1 {
		t.Fatalf("purge database: %d %v", n, err)
	}
	if c.Lookup(ctx, b).Hit() || !c.Lookup(ctx, d).Hit() {
		t.Fatal("purge by database dropped the wrong entries")
	}
	if _, err := c.Purge(ctx, PurgeRequest{All: true}); err != nil {
		t.Fatal(err)
	}
	if c.Lookup(ctx, d).Hit() {
		t.Fatal("purge all left an entry")
	}
	if _, err := c.Purge(ctx, PurgeRequest{}); err == nil {
		t.Fatal("empty purge accepted")
	}
}

func TestCloseStopsAndBypasses(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("q", "app")
	res := c.Lookup(ctx, r)
	c.Close()
	if res.Fill.Store([]byte("x"), time.Minute) {
		t.Fatal("stored after Close")
	}
	if c.Lookup(ctx, r).Hit() {
		t.Fatal("hit after Close")
	}
}

// While a write is in flight nothing depending on it is stored: a result
// read before its commit would still look valid between the commit and
// Done's bump.
func TestWriteInFlightBlocksFills(t *testing.T) {
	c := newTestCache(t, nil, Deps{})
	r := req("q", "app", 1)
	w := c.BeginWriteIDs(ctx, "app", []RelID{1})
	res := c.Lookup(ctx, r)
	if res.Fill.Store([]byte("read during the write"), time.Minute) {
		t.Fatal("stored while a write to its relation was in flight")
	}
	other := req("other", "app", 2)
	if !c.Lookup(ctx, other).Fill.Store([]byte("x"), time.Minute) {
		t.Fatal("a write to relation 1 blocked a fill on relation 2")
	}
	w.Done(ctx)
	w.Done(ctx) // idempotent
	if !c.Lookup(ctx, r).Fill.Store([]byte("after"), time.Minute) {
		t.Fatal("fill refused after the write ended")
	}
	wd := c.BeginWriteDatabase(ctx, "app")
	if isHit(c, other) {
		t.Fatal("hit after a whole-database write began")
	}
	if c.Lookup(ctx, other).Fill.Store([]byte("x"), time.Minute) {
		t.Fatal("stored during a whole-database write")
	}
	wd.Done(ctx)
	// A write whose end never comes stops blocking after write_lease.
	c2 := newTestCache(t, func(c *Config) { c.WriteLease = 50 * time.Millisecond }, Deps{})
	c2.BeginWriteIDs(ctx, "app", []RelID{1})
	time.Sleep(60 * time.Millisecond)
	if !c2.Lookup(ctx, r).Fill.Store([]byte("x"), time.Minute) {
		t.Fatal("an abandoned write blocks fills past write_lease")
	}
}

// Remote marks are per write: a repeated begin or end changes nothing, a
// sync replaces a database's marks, and a deadline ends a mark.
func TestRemoteMarks(t *testing.T) {
	far := time.Now().Add(time.Hour)
	w1, w2, w3 := writeID{1, 1}, writeID{1, 2}, writeID{2, 1}
	v := newVersions()
	held := func(db string, id RelID) bool { return v.writing(db, []RelID{id}) }
	v.beginRemote(w1, "app", []RelID{1, 2}, far)
	v.beginRemote(w1, "app", []RelID{1, 2}, far) // the same write, again
	v.beginRemote(w2, "app", []RelID{2}, far)
	v.endRemote(w1)
	if held("app", 1) || !held("app", 2) {
		t.Fatal("one end must release w1 entirely and leave w2")
	}
	v.endRemote(w1) // again: no effect on w2
	if !held("app", 2) {
		t.Fatal("a repeated end released another write")
	}
	v.beginRemote(w3, "other", []RelID{dbRel}, far)
	v.syncRemote("app", map[writeID]*remoteWrite{w1: {ids: []RelID{3}, deadline: far}})
	if held("app", 2) || !held("app", 3) || !held("other", 9) {
		t.Fatal("sync must replace app's marks (w2 gone, w1 back) and leave other's")
	}
	v.beginRemote(writeID{3, 1}, "app", []RelID{4}, time.Now().Add(-time.Second))
	if held("app", 4) {
		t.Fatal("a mark past its deadline holds fills")
	}
	v.expireRemote(time.Now())
	if len(v.remote) != 2 || v.nwrites.Load() != 2 {
		t.Fatalf("after expiry: %d remote writes, nwrites %d, want 2 and 2", len(v.remote), v.nwrites.Load())
	}
	v.unsure.Store(true)
	if !held("none", 5) {
		t.Fatal("unsure must hold every fill")
	}
}
