package config

import (
	"fmt"
	"strconv"
)

// Procs is the GOMAXPROCS that threads asks for, given cpus, the CPUs the
// process may use (the Go runtime's own default, which follows cgroup
// limits):
//   - "auto": half of cpus, at least 1. A pooler shares its machine with
//     the clients or the database far more often than not, and on a
//     loaded machine every extra thread running proxy code costs more in
//     scheduling and cache misses than it relays (docs/bench.md measures
//     it); PgBouncer runs one thread, Odyssey half the cores by default.
//   - "all": cpus.
//   - a number n ≥ 1: n.
func Procs(threads string, cpus int) (int, error) {
	switch threads {
	case "auto":
		return max(cpus/2, 1), nil
	case "all":
		return max(cpus, 1), nil
	}
	n, err := strconv.Atoi(threads)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("threads: must be auto, all or a number of at least 1, not %q", threads)
	}
	return n, nil
}
