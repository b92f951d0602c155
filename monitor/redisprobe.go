package monitor

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisProbe builds a Deps.RedisStats for the cache's Redis: one PING for
// latency and one INFO (memory and stats sections) for used_memory,
// maxmemory and evicted_keys. errs, if not nil, returns the cache's
// cumulative count of failed Redis calls; subscribed, if not nil, whether
// the cache is subscribed to the other instances' invalidations. The probe
// runs on the analysis timer and for /readyz, never per query.
func RedisProbe(c redis.UniversalClient, errs func() int64, subscribed func() bool) func(ctx context.Context) (RedisStats, error) {
	return func(ctx context.Context) (RedisStats, error) {
		var st RedisStats
		if errs != nil {
			st.Errors = errs()
		}
		st.Subscribed = subscribed == nil || subscribed()
		start := time.Now()
		if err := c.Ping(ctx).Err(); err != nil {
			return st, err
		}
		st.Latency = time.Since(start)
		info, err := c.Info(ctx, "memory", "stats").Result()
		if err != nil {
			return st, err
		}
		parseRedisInfo(info, &st)
		st.Connected = true
		return st, nil
	}
}

// parseRedisInfo reads the "key:value" lines of INFO that matter here.
func parseRedisInfo(info string, st *RedisStats) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "used_memory":
			st.UsedMemory = n
		case "maxmemory":
			st.MaxMemory = n
		case "evicted_keys":
			st.Evictions = n
		}
	}
}
