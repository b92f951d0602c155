package monitor

import (
	"time"
)

// SystemSample is one reading of host and process metrics; rates are per
// second over the interval since the previous sample, fractions are 0..1.
type SystemSample struct {
	Time     time.Time      `json:"time"`
	Interval float64        `json:"interval_s"`
	CPU      CPUSample      `json:"cpu"`
	Load     LoadSample     `json:"load"`
	Memory   MemorySample   `json:"memory"`
	Disks    []DiskSample   `json:"disks"`
	Network  NetworkSample  `json:"network"`
	Process  ProcessSample  `json:"process"`
	Postgres PostgresSample `json:"postgres"`
	Errors   []string       `json:"errors,omitempty"`
}

// CPUSample splits busy time so the analysis can say who is burning it:
// Proxy and Postgres are shares of the whole host (all cores).
type CPUSample struct {
	Cores   int       `json:"cores"`
	Total   float64   `json:"total"` // busy share of all cores
	PerCore []float64 `json:"per_core"`
	IOWait  float64   `json:"iowait"`
	Steal   float64   `json:"steal"`
	Proxy   float64   `json:"proxy"`
	Other   float64   `json:"other"`
}

// LoadSample is the 1, 5 and 15 minute load averages.
type LoadSample struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// MemorySample is RAM and swap; swap rates reveal swapping in progress.
type MemorySample struct {
	Total          uint64  `json:"total"`
	Available      uint64  `json:"available"`
	Used           uint64  `json:"used"`
	AvailableRatio float64 `json:"available_ratio"`
	SwapTotal      uint64  `json:"swap_total"`
	SwapUsed       uint64  `json:"swap_used"`
	SwapInPerSec   float64 `json:"swap_in_bytes_per_s"`
	SwapOutPerSec  float64 `json:"swap_out_bytes_per_s"`
}

// DiskSample covers one configured data path.
type DiskSample struct {
	Path            string  `json:"path"`
	Mountpoint      string  `json:"mountpoint"`
	Device          string  `json:"device"`
	Total           uint64  `json:"total"`
	Used            uint64  `json:"used"`
	Free            uint64  `json:"free"`
	UsedRatio       float64 `json:"used_ratio"`
	ReadBytesPerS   float64 `json:"read_bytes_per_s"`
	WriteBytesPerS  float64 `json:"write_bytes_per_s"`
	ReadOpsPerS     float64 `json:"read_ops_per_s"`
	WriteOpsPerS    float64 `json:"write_ops_per_s"`
	BusyRatio       float64 `json:"busy_ratio"` // io_ticks share of the interval
	IOStatsReported bool    `json:"io_stats"`
}

// NetworkSample sums all interfaces.
type NetworkSample struct {
	RecvBytesPerS float64 `json:"recv_bytes_per_s"`
	SentBytesPerS float64 `json:"sent_bytes_per_s"`
	RecvPktsPerS  float64 `json:"recv_packets_per_s"`
	SentPktsPerS  float64 `json:"sent_packets_per_s"`
	ErrorsPerS    float64 `json:"errors_per_s"`
}

// ProcessSample is Sluice itself.
type ProcessSample struct {
	PID          int32   `json:"pid"`
	RSS          uint64  `json:"rss"`
	CPU          float64 `json:"cpu"` // share of all cores
	Goroutines   int     `json:"goroutines"`
	HeapAlloc    uint64  `json:"heap_alloc"`
	NumGC        int64   `json:"num_gc"`
	GCPerSec     float64 `json:"gc_per_s"`
	GCPauseP50Ms float64 `json:"gc_pause_p50_ms"`
	GCPauseMaxMs float64 `json:"gc_pause_max_ms"`
	GCPauseShare float64 `json:"gc_pause_share"` // of wall time in the interval
}

// PostgresSample is local postgres processes, if any run on this host.
type PostgresSample struct {
	Processes int     `json:"processes"`
	CPU       float64 `json:"cpu"` // share of all cores
}
