package resultcache

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// ownRedis is a redis-server this test starts, kills and restarts, with an
// append-only file so its data survives the restart (the hard case: stale
// entries that come back with it).
type ownRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T) *ownRedis {
	r := &ownRedis{t: t, bin: testenv.RedisBin(t), dir: t.TempDir(), port: freePort(t)}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	waitFor(r.t, "redis-server to listen", func() bool {
		c, err := net.Dial("tcp", r.addr())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (r *ownRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// outagePair is a Redis of the test's own and two instances sharing it,
// with short timeouts and a quick breaker so an outage is seen at once;
// another makes one more such instance.
func outagePair(t *testing.T) (rd *ownRedis, a, b *Cache, another func() *Cache) {
	rd = startOwnRedis(t)
	mut := func(c *Config) {
		c.Redis.Timeout = 50 * time.Millisecond
		c.Redis.Breaker = BreakerConfig{Failures: 2, Cooldown: 200 * time.Millisecond}
	}
	prefix := uniquePrefix(t)
	another = func() *Cache { return redisCache(t, rd.addr(), prefix, mut) }
	return rd, another(), another(), another
}

// Redis killed and restarted: lookups never fail (they bypass), an
// invalidation made while it was down is replayed before any instance uses
// the cache again, and no stale entry survives in L1 or L2 when it returns
// with its old data.
func TestRedisKilledAndRestarted(t *testing.T) {
	rd, a, b, another := outagePair(t)
	r := req("select * from t", "app", 40)
	fillAndWait(t, a, r, []byte("v1"))
	if res := b.Lookup(ctx, r); res.Level != "l2" {
		t.Fatalf("b: want l2 hit, got %+v", res)
	}

	rd.kill()
	waitFor(t, "b to notice the subscription is gone", func() bool { return !b.pubsubLive.Load() })
	// The write happens on a while Redis is down: a can't publish it.
	a.InvalidateIDs(ctx, "app", []RelID{40})
	for i := 0; i < 20; i++ {
		for _, c := range []*Cache{a, b} {
			if res := c.Lookup(ctx, r); res.Hit() {
				t.Fatalf("hit (%s) while Redis is down after a write", res.Level)
			}
		}
	}
	if a.brk.closed() {
		t.Fatal("a's breaker still closed after a lost invalidation")
	}

	rd.start() // same port, old data (the stale entry and old versions) back
	waitFor(t, "a's breaker to close", func() bool { return a.brk.closed() })
	waitFor(t, "b to resubscribe", func() bool { return b.pubsubLive.Load() && b.brk.closed() })
	for _, c := range []*Cache{a, b} {
		if res := c.Lookup(ctx, r); res.Hit() {
			t.Fatalf("stale %s hit after Redis returned", res.Level)
		} else if res.Fill != nil {
			res.Fill.Abandon()
		}
	}
	fresh := another()
	if res := fresh.Lookup(ctx, r); res.Hit() {
		t.Fatal("stale L2 entry served by a fresh instance after Redis returned")
	}
	// And the cache works again.
	r2 := req("after", "app", 41)
	fillAndWait(t, a, r2, []byte("new"))
	if res := b.Lookup(ctx, r2); res.Level != "l2" {
		t.Fatalf("cache not resumed: %+v", res)
	}
}

// A Redis that hangs (SIGSTOP) makes lookups bounded by the timeout, opens
// the breaker, and the cache resumes after SIGCONT.
func TestRedisHangs(t *testing.T) {
	rd := startOwnRedis(t)
	prefix := uniquePrefix(t)
	a := redisCache(t, rd.addr(), prefix, func(c *Config) {
		c.Redis.Timeout = 20 * time.Millisecond
		c.Redis.Breaker = BreakerConfig{Failures: 3, Cooldown: 200 * time.Millisecond}
	})
	r := req("q", "app", 50)
	fillAndWait(t, a, r, []byte("v"))
	a.l1.InvalidateAll() // force the L2 path
	_ = rd.cmd.Process.Signal(syscall.SIGSTOP)
	defer rd.cmd.Process.Signal(syscall.SIGCONT)
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		res := a.Lookup(ctx, r)
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Fatalf("lookup took %v with a hung Redis", d)
		}
		if res.Hit() {
			t.Fatal("hit from a hung Redis")
		}
	}
	if a.brk.closed() {
		t.Fatal("breaker closed after repeated timeouts")
	}
	_ = rd.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(t, "breaker to close after SIGCONT", func() bool { return a.brk.closed() })
	waitFor(t, "L2 hit again", func() bool {
		res := a.Lookup(ctx, r)
		if res.Fill != nil {
			res.Fill.Abandon()
		}
		return res.Hit()
	})
}

// A write through a began before Redis died and ended while it was down:
// its end edge never reached Redis nor b. Once Redis is back, b must not
// serve what the write made stale, and must fill again (L1 and L2) without
// waiting for write_lease: a's probe replays the end, and b re-reads the
// in-flight marks when it resubscribes.
func TestLostWriteEndReleasedAfterOutage(t *testing.T) {
	rd, a, b, _ := outagePair(t)
	r := req("select * from t", "app", 70)
	fillAndWait(t, b, r, []byte("before"))

	w := a.BeginWriteIDs(ctx, "app", []RelID{70})
	waitFor(t, "b to hold fills of the write", func() bool { return b.vers.writing("app", []RelID{70}) })
	rd.kill()
	waitFor(t, "b to notice the subscription is gone", func() bool { return !b.pubsubLive.Load() })
	w.Done(ctx) // lost: Redis is down
	if a.brk.closed() {
		t.Fatal("a's breaker still closed after a lost write end")
	}

	rd.start()
	waitFor(t, "a's breaker to close", func() bool { return a.brk.closed() })
	waitFor(t, "b to resubscribe", func() bool { return b.pubsubLive.Load() && b.brk.closed() })
	if res := b.Lookup(ctx, r); res.Hit() {
		t.Fatalf("stale %s hit on b after Redis returned", res.Level)
	} else if res.Fill != nil {
		res.Fill.Abandon()
	}
	waitFor(t, "b to fill again", func() bool {
		res := b.Lookup(ctx, r)
		if res.Hit() {
			return string(res.Payload) == "after"
		}
		return res.Fill != nil && res.Fill.Store([]byte("after"), time.Minute)
	})
	// The old entry came back with Redis: only b's new fill may answer a.
	waitFor(t, "b's fill to reach L2 (a gets it from there)", func() bool {
		res := a.Lookup(ctx, r)
		if res.Fill != nil {
			res.Fill.Abandon()
		}
		if res.Hit() && string(res.Payload) != "after" {
			t.Fatalf("a served %q (%s) after the write", res.Payload, res.Level)
		}
		return res.Level == "l2"
	})
}
