package resultcache

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// redisPair returns two instances sharing the test Redis (own key prefix).
func redisCache(t testing.TB, addr, prefix string, mutate func(*Config)) *Cache {
	t.Helper()
	c := newTestCache(t, func(c *Config) {
		c.Redis.Addrs = []string{addr}
		c.Redis.KeyPrefix = prefix
		c.Redis.Timeout = 200 * time.Millisecond // shared CI machines; the breaker test sets its own
		if mutate != nil {
			mutate(c)
		}
	}, Deps{})
	waitFor(t, "subscribed", func() bool { return c.pubsubLive.Load() })
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fillAndWait stores payload through c and waits until the L2 copy landed.
func fillAndWait(t testing.TB, c *Cache, r *Request, payload []byte) {
	t.Helper()
	res := c.Lookup(ctx, r)
	if res.Fill == nil {
		t.Fatalf("want miss, got %+v", res)
	}
	if !res.Fill.Store(payload, time.Minute) {
		t.Fatal("store refused")
	}
	waitFor(t, "L2 fill", func() bool {
		n, _ := c.rdb.Exists(ctx, c.keys.entry(r.Database, r.Key)).Result()
		return n == 1
	})
}

func TestL2HitAcrossInstancesAndCompression(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, func(c *Config) { c.CompressThreshold = 100 })
	b := redisCache(t, addr, prefix, nil)
	small := req("small", "app", 10)
	big := req("big", "app", 10)
	bigPayload := bytes.Repeat([]byte("D\x00\x00\x00\x10 row of data "), 500)
	fillAndWait(t, a, small, []byte("tiny result"))
	fillAndWait(t, a, big, bigPayload)
	raw, _ := a.rdb.Get(ctx, a.keys.entry("app", big.Key)).Bytes()
	if len(raw) >= len(bigPayload) || raw[2]&l2FlagS2 == 0 {
		t.Fatalf("big entry not compressed in Redis (%d bytes for %d)", len(raw), len(bigPayload))
	}
	for _, tc := range []struct {
		r    *Request
		want []byte
	}{{small, []byte("tiny result")}, {big, bigPayload}} {
		res := b.Lookup(ctx, tc.r)
		if res.Level != "l2" || !bytes.Equal(res.Payload, tc.want) {
			t.Fatalf("instance b: want l2 hit, got level %q (%d bytes)", res.Level, len(res.Payload))
		}
		if res := b.Lookup(ctx, tc.r); res.Level != "l1" {
			t.Fatalf("second lookup on b: want l1, got %+v", res.Level)
		}
	}
}

func TestInvalidationAcrossInstances(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, nil)
	b := redisCache(t, addr, prefix, nil)
	r := req("select * from t", "app", 10, 11)
	fillAndWait(t, a, r, []byte("v1"))
	if res := b.Lookup(ctx, r); res.Level != "l2" {
		t.Fatalf("b: want l2, got %+v", res)
	}
	if res := b.Lookup(ctx, r); res.Level != "l1" {
		t.Fatalf("b: want l1, got %+v", res)
	}
	a.InvalidateIDs(ctx, "app", []RelID{11})
	// a's own L1 at once; b's L1 once the PUBLISH arrives.
	if isHit(a, r) {
		t.Fatal("a: hit after its own invalidation")
	}
	waitFor(t, "b's L1 to drop the entry", func() bool { return !isHit(b, r) })
	// And a third instance, with an empty L1, must not get it from L2.
	c := redisCache(t, addr, prefix, nil)
	if res := c.Lookup(ctx, r); res.Hit() {
		t.Fatalf("fresh instance got a stale L2 entry: %+v", res)
	}
	// InvalidateDatabase through b reaches a and L2 as well.
	r2 := req("other", "app", 12)
	fillAndWait(t, a, r2, []byte("x"))
	b.InvalidateDatabase(ctx, "app")
	waitFor(t, "a's L1 to drop after database invalidation", func() bool { return !isHit(a, r2) })
	if isHit(c, r2) {
		t.Fatal("L2 entry survived InvalidateDatabase")
	}
}

// The fill race across instances: a result computed before another
// instance's write must not land in L2.
func TestL2FillRace(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, nil)
	b := redisCache(t, addr, prefix, nil)
	r := req("q", "app", 20)
	res := a.Lookup(ctx, r) // a sends its query...
	b.InvalidateIDs(ctx, "app", []RelID{20})
	// ...and stores before the PUBLISH reached it: L1 may take it, but the
	// Redis script must refuse it.
	waitFor(t, "a to see b's invalidation", func() bool { return a.vers.get("app", 20) == 1 })
	if res.Fill.Store([]byte("stale"), time.Minute) {
		t.Fatal("a stored into L1 after seeing the invalidation")
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := a.rdb.Exists(ctx, a.keys.entry("app", r.Key)).Result(); n != 0 {
		t.Fatal("stale result stored in L2")
	}
	// Same, but the local stamp can't see it (the write went straight to
	// Redis): only the script protects L2.
	res = a.Lookup(ctx, r)
	if err := a.rdb.HIncrBy(ctx, a.keys.versions("app"), relField(20), 1).Err(); err != nil {
		t.Fatal(err)
	}
	res.Fill.Store([]byte("stale"), time.Minute)
	time.Sleep(100 * time.Millisecond)
	if n, _ := a.rdb.Exists(ctx, a.keys.entry("app", r.Key)).Result(); n != 0 {
		t.Fatal("L2 store ignored a version change in Redis")
	}
}

func TestPurgeFingerprintL2(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, nil)
	b := redisCache(t, addr, prefix, nil)
	r := req("q", "app", 30)
	r.Fingerprint = 777
	fillAndWait(t, a, r, []byte("x"))
	if res := b.Lookup(ctx, r); !res.Hit() {
		t.Fatal("b: no hit")
	}
	if _, err := a.Purge(ctx, PurgeRequest{Fingerprint: 777}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to drop the purged fingerprint", func() bool { return !isHit(b, r) })
	c := redisCache(t, addr, prefix, nil)
	if isHit(c, r) {
		t.Fatal("purged fingerprint still in L2")
	}
	fillAndWait(t, a, req("q2", "app", 31), []byte("y"))
	if _, err := a.Purge(ctx, PurgeRequest{All: true}); err != nil {
		t.Fatal(err)
	}
	if isHit(c, req("q2", "app", 31)) {
		t.Fatal("entry survived purge all")
	}
}

// Close must stop every goroutine the cache started (subscriber, fill
// writer, housekeeping, otter's, replication followers).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	addr := testenv.RedisAddr(t)
	db, _ := testDB(t)
	before := runtime.NumGoroutine()
	c, err := New(func() Config {
		cfg := DefaultConfig()
		cfg.Redis.Addrs = []string{addr}
		cfg.Redis.KeyPrefix = uniquePrefix(t)
		cfg.Invalidation.LogicalReplication = true
		cfg.Invalidation.Publication = "sluice_test_pub"
		return cfg
	}(), pgDeps(t))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replication ready", func() bool { return c.ReplicationReady(db) })
	q := sel([]Relation{{"", "items"}})
	q.Database = db
	c.Check(ctx, q)
	c.Lookup(ctx, req("x", db)).Fill.Store([]byte("x"), time.Minute)
	c.Close()
	waitFor(t, "goroutines to stop", func() bool { return runtime.NumGoroutine() <= before })
}

// A write in flight on one instance blocks L2 fills from every instance.
func TestWriteInFlightBlocksL2(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, nil)
	b := redisCache(t, addr, prefix, nil)
	r := req("q", "app", 60)
	w := a.BeginWriteIDs(ctx, "app", []RelID{60})
	waitFor(t, "b to see the write", func() bool { return b.vers.get("app", 60) >= 1 })
	res := b.Lookup(ctx, r)
	res.Fill.Store([]byte("read during a's write"), time.Minute) // b's L1 can't know
	time.Sleep(100 * time.Millisecond)
	if n, _ := b.rdb.Exists(ctx, b.keys.entry("app", r.Key)).Result(); n != 0 {
		t.Fatal("L2 stored a fill while a write to its relation was in flight")
	}
	w.Done(ctx)
	waitFor(t, "b to see the end of the write", func() bool { return b.vers.get("app", 60) >= 2 })
	fillAndWait(t, b, r, []byte("after"))
}

// In-flight marks are kept in Redis by write: a (re)subscribing instance
// re-reads them (dropping a mark whose end it missed, adding one whose
// begin it missed), and a replayed edge changes no count.
func TestWriteMarksReconcileAndReplay(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, addr, prefix, nil)
	b := redisCache(t, addr, prefix, nil)
	held := func(id RelID) bool { return b.vers.writing("app", []RelID{id}) }

	w := a.BeginWriteIDs(ctx, "app", []RelID{80})
	waitFor(t, "b to hold fills of the write", func() bool { return held(80) })
	// b missed a begin (gap in its subscription): reconcile adds it.
	b.vers.endRemote(writeID{a.id, w.id})
	if held(80) {
		t.Fatal("mark still there after endRemote")
	}
	// b missed an end: a mark of a write Redis no longer has.
	b.vers.beginRemote(writeID{sender: 1, id: 1}, "app", []RelID{81}, time.Now().Add(time.Hour))
	if err := b.reconcileMarks(ctx); err != nil {
		t.Fatal(err)
	}
	if !held(80) {
		t.Fatal("reconcile did not restore the mark of a write in flight")
	}
	if held(81) {
		t.Fatal("reconcile kept a mark of a write Redis does not have")
	}
	w.Done(ctx)
	waitFor(t, "b to release the write", func() bool { return !held(80) })

	// Replayed edges are idempotent on the counts storeScript reads.
	w2 := a.BeginWriteIDs(ctx, "app", []RelID{82})
	w3 := a.BeginWriteIDs(ctx, "app", []RelID{82})
	if _, err := a.l2WriteEdge(ctx, w2, true, 0); err != nil { // replayed begin
		t.Fatal(err)
	}
	count := func() string { return a.rdb.HGet(ctx, a.keys.versions("app"), "w82").Val() }
	if n := count(); n != "2" {
		t.Fatalf("w82 = %s after two begins and a replayed begin, want 2", n)
	}
	w2.Done(ctx)
	if _, err := a.l2WriteEdge(ctx, w2, false, 0); err != nil { // replayed end
		t.Fatal(err)
	}
	if n := count(); n != "1" {
		t.Fatalf("w82 = %s after a replayed end, want 1 (w3 still in flight)", n)
	}
	if !held(82) {
		t.Fatal("b released relation 82 while w3 is in flight")
	}
	w3.Done(ctx)
	if n := count(); n != "0" {
		t.Fatalf("w82 = %s after every write ended, want 0", n)
	}
	if n, _ := a.rdb.Exists(ctx, a.keys.marks("app")).Result(); n != 0 {
		t.Fatal("marks hash left behind after every write ended")
	}
}

// A write whose Done never comes is not kept for replay past write_lease.
func TestAbandonedWriteForgotten(t *testing.T) {
	a := redisCache(t, testenv.RedisAddr(t), uniquePrefix(t), func(c *Config) { c.WriteLease = 100 * time.Millisecond })
	a.BeginWriteIDs(ctx, "app", []RelID{90})
	a.liveMu.Lock()
	n := len(a.live)
	a.liveMu.Unlock()
	if n != 1 {
		t.Fatalf("%d writes tracked after a begin, want 1", n)
	}
	waitFor(t, "the abandoned write to be forgotten", func() bool {
		a.liveMu.Lock()
		defer a.liveMu.Unlock()
		return len(a.live) == 0
	})
}
