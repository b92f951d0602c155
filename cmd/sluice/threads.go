package main

import (
	"os"
	"runtime"

	"github.com/sluice-proxy/sluice/config"
)

// cpus is the runtime's own GOMAXPROCS at start: the CPUs this process
// may use, cgroup limits included.
var cpus = runtime.GOMAXPROCS(0)

// setThreads applies the threads setting (config.Procs) and returns the
// GOMAXPROCS in force. A GOMAXPROCS environment variable wins: whoever set
// it meant it.
func setThreads(threads string) int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n, err := config.Procs(threads, cpus)
	if err != nil { // validated with the config; keep what runs
		return runtime.GOMAXPROCS(0)
	}
	if runtime.GOMAXPROCS(0) != n {
		runtime.GOMAXPROCS(n)
	}
	return n
}
