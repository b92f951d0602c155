package monitor

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

func TestParseRedisInfo(t *testing.T) {
	var st RedisStats
	parseRedisInfo("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:2097152\r\n# Stats\r\nevicted_keys:17\r\nbogus\r\n", &st)
	if st.UsedMemory != 1<<20 || st.MaxMemory != 2<<20 || st.Evictions != 17 {
		t.Fatalf("parsed %+v", st)
	}
}

// TestRedisFindingsFromRealRedis starts a private redis-server with a tiny
// maxmemory, fills it until it evicts, and expects the eviction and memory
// findings; then stops it and expects redis.unreachable.
func TestRedisFindingsFromRealRedis(t *testing.T) {
	bin := testenv.RedisBin(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
		"--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	defer stop()
	client := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for client.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var cacheErrors int64
	cfg := analysisConfig()
	m := newTestMonitor(t, cfg, Deps{RedisStats: RedisProbe(client, func() int64 { return cacheErrors }, nil)})
	now := time.Now()
	if fs := m.analyzer.fastPass(ctx, now); len(fs) != 0 {
		t.Fatalf("findings on an empty Redis: %s", kinds(fs))
	}
	val := strings.Repeat("v", 16<<10)
	for i := 0; i < 600; i++ { // ~10 MB into 4 MB
		if err := client.Set(ctx, fmt.Sprint("k", i), val, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cacheErrors = 2
	fs := m.analyzer.fastPass(ctx, now.Add(time.Second))
	for _, k := range []string{KindRedisEvictions, KindRedisMemory, KindRedisErrors} {
		if len(findKind(fs, k)) != 1 {
			t.Errorf("missing %s in %s", k, kinds(fs))
		}
	}
	if f := findKind(fs, KindRedisMemory); len(f) == 1 && f[0].Evidence.Values["maxmemory"] != int64(4<<20) {
		t.Errorf("memory evidence = %v", f[0].Evidence.Values)
	}
	stop()
	fs = m.analyzer.fastPass(ctx, now.Add(2*time.Second))
	if len(findKind(fs, KindRedisDown)) != 1 {
		t.Errorf("after stopping Redis: %s", kinds(fs))
	}
}
