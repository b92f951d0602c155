package monitor

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	psnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
)

// systemSampler keeps the raw counters of the previous sample for rates.
type systemSampler struct {
	paths   []string
	self    *process.Process
	prev    *rawSample
	pgPids  map[int32]bool // pid -> is postgres (names cached)
	pgProcs map[int32]*process.Process
}

type rawSample struct {
	t        time.Time
	total    cpu.TimesStat
	perCore  []cpu.TimesStat
	sin      uint64
	sout     uint64
	disks    map[string]disk.IOCountersStat
	net      psnet.IOCountersStat
	selfCPU  float64
	pgCPU    map[int32]float64
	numGC    int64
	pauseTot time.Duration
}

func newSystemSampler(paths []string) *systemSampler {
	s := &systemSampler{paths: paths, pgPids: map[int32]bool{}, pgProcs: map[int32]*process.Process{}}
	s.self, _ = process.NewProcess(int32(os.Getpid()))
	return s
}

func cpuTotal(t cpu.TimesStat) float64 {
	return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
}

func cpuBusy(prev, cur cpu.TimesStat) (busy, iowait, steal, total float64) {
	total = cpuTotal(cur) - cpuTotal(prev)
	if total <= 0 {
		return 0, 0, 0, 0
	}
	idle := (cur.Idle - prev.Idle) + (cur.Iowait - prev.Iowait)
	return clamp01(1 - idle/total), clamp01((cur.Iowait - prev.Iowait) / total),
		clamp01((cur.Steal - prev.Steal) / total), total
}

func clamp01(v float64) float64 {
	if v < 0 || v != v {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// sample reads everything once. Errors of one source are reported in the
// sample and do not stop the others (containers hide some of /proc).
func (s *systemSampler) sample(ctx context.Context, now time.Time) SystemSample {
	out := SystemSample{Time: now}
	raw := &rawSample{t: now, disks: map[string]disk.IOCountersStat{}, pgCPU: map[int32]float64{}}
	fail := func(what string, err error) { out.Errors = append(out.Errors, what+": "+err.Error()) }
	prev := s.prev
	dt := 0.0
	if prev != nil {
		dt = now.Sub(prev.t).Seconds()
	}
	out.Interval = dt
	rate := func(cur, old uint64) float64 {
		if dt <= 0 || cur < old {
			return 0
		}
		return float64(cur-old) / dt
	}

	out.CPU.Cores = runtime.NumCPU()
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		raw.total = ts[0]
	} else if err != nil {
		fail("cpu", err)
	}
	if ts, err := cpu.TimesWithContext(ctx, true); err == nil {
		raw.perCore = ts
		out.CPU.Cores = len(ts)
	}
	hostCPUSeconds := 0.0
	if prev != nil {
		out.CPU.Total, out.CPU.IOWait, out.CPU.Steal, hostCPUSeconds = cpuBusy(prev.total, raw.total)
		if len(prev.perCore) == len(raw.perCore) {
			out.CPU.PerCore = make([]float64, len(raw.perCore))
			for i := range raw.perCore {
				out.CPU.PerCore[i], _, _, _ = cpuBusy(prev.perCore[i], raw.perCore[i])
			}
		}
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		out.Load = LoadSample{l.Load1, l.Load5, l.Load15}
	} else {
		fail("load", err)
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		out.Memory.Total, out.Memory.Available, out.Memory.Used = vm.Total, vm.Available, vm.Used
		if vm.Total > 0 {
			out.Memory.AvailableRatio = float64(vm.Available) / float64(vm.Total)
		}
	} else {
		fail("memory", err)
	}
	if sw, err := mem.SwapMemoryWithContext(ctx); err == nil {
		out.Memory.SwapTotal, out.Memory.SwapUsed = sw.Total, sw.Used
		raw.sin, raw.sout = sw.Sin, sw.Sout
		if prev != nil {
			out.Memory.SwapInPerSec, out.Memory.SwapOutPerSec = rate(sw.Sin, prev.sin), rate(sw.Sout, prev.sout)
		}
	}
	s.sampleDisks(ctx, &out, raw, prev, dt, rate)
	if nc, err := psnet.IOCountersWithContext(ctx, false); err == nil && len(nc) > 0 {
		raw.net = nc[0]
		if prev != nil {
			out.Network = NetworkSample{
				RecvBytesPerS: rate(nc[0].BytesRecv, prev.net.BytesRecv),
				SentBytesPerS: rate(nc[0].BytesSent, prev.net.BytesSent),
				RecvPktsPerS:  rate(nc[0].PacketsRecv, prev.net.PacketsRecv),
				SentPktsPerS:  rate(nc[0].PacketsSent, prev.net.PacketsSent),
				ErrorsPerS:    rate(nc[0].Errin+nc[0].Errout, prev.net.Errin+prev.net.Errout),
			}
		}
	}
	s.sampleProcess(ctx, &out, raw, prev, dt, hostCPUSeconds)
	s.samplePostgres(ctx, &out, raw, prev, hostCPUSeconds)
	out.CPU.Other = clamp01(out.CPU.Total - out.CPU.Proxy - out.Postgres.CPU)
	s.prev = raw
	return out
}

func (s *systemSampler) sampleDisks(ctx context.Context, out *SystemSample, raw, prev *rawSample, dt float64, rate func(uint64, uint64) float64) {
	if len(s.paths) == 0 {
		return
	}
	parts, _ := disk.PartitionsWithContext(ctx, true)
	var names []string
	for _, p := range s.paths {
		d := DiskSample{Path: p}
		if u, err := disk.UsageWithContext(ctx, p); err == nil {
			d.Total, d.Used, d.Free, d.UsedRatio = u.Total, u.Used, u.Free, u.UsedPercent/100
		} else {
			out.Errors = append(out.Errors, "disk "+p+": "+err.Error())
		}
		d.Mountpoint, d.Device = mountOf(p, parts)
		out.Disks = append(out.Disks, d)
		if d.Device != "" {
			names = append(names, d.Device)
		}
	}
	if len(names) == 0 {
		return
	}
	io, err := disk.IOCountersWithContext(ctx, names...)
	if err != nil {
		return
	}
	raw.disks = io
	for i := range out.Disks {
		d := &out.Disks[i]
		cur, ok := io[d.Device]
		if !ok || prev == nil {
			continue
		}
		old, ok := prev.disks[d.Device]
		if !ok {
			continue
		}
		d.IOStatsReported = true
		d.ReadBytesPerS, d.WriteBytesPerS = rate(cur.ReadBytes, old.ReadBytes), rate(cur.WriteBytes, old.WriteBytes)
		d.ReadOpsPerS, d.WriteOpsPerS = rate(cur.ReadCount, old.ReadCount), rate(cur.WriteCount, old.WriteCount)
		if dt > 0 {
			d.BusyRatio = clamp01(rate(cur.IoTime, old.IoTime) / 1000) // io_ticks are ms
		}
	}
}

// mountOf finds the partition holding path (longest mountpoint prefix) and
// its block device name as /proc/diskstats spells it.
func mountOf(path string, parts []disk.PartitionStat) (mount, device string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	for _, p := range parts {
		mp := p.Mountpoint
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(mount) {
			mount = mp
			device = ""
			if strings.HasPrefix(p.Device, "/dev/") {
				device = strings.TrimPrefix(p.Device, "/dev/")
			}
		}
	}
	return mount, device
}

func (s *systemSampler) sampleProcess(ctx context.Context, out *SystemSample, raw, prev *rawSample, dt, hostCPUSeconds float64) {
	out.Process.PID = int32(os.Getpid())
	out.Process.Goroutines = runtime.NumGoroutine()
	if s.self != nil {
		if mi, err := s.self.MemoryInfoWithContext(ctx); err == nil {
			out.Process.RSS = mi.RSS
		}
		if t, err := s.self.TimesWithContext(ctx); err == nil {
			raw.selfCPU = t.User + t.System
			if prev != nil && hostCPUSeconds > 0 {
				out.Process.CPU = clamp01((raw.selfCPU - prev.selfCPU) / hostCPUSeconds)
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.Process.HeapAlloc = ms.HeapAlloc
	gs := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&gs)
	out.Process.NumGC = gs.NumGC
	out.Process.GCPauseP50Ms = float64(gs.PauseQuantiles[2]) / 1e6
	out.Process.GCPauseMaxMs = float64(gs.PauseQuantiles[4]) / 1e6
	raw.numGC, raw.pauseTot = gs.NumGC, gs.PauseTotal
	if prev != nil && dt > 0 {
		out.Process.GCPerSec = float64(gs.NumGC-prev.numGC) / dt
		out.Process.GCPauseShare = clamp01((gs.PauseTotal - prev.pauseTot).Seconds() / dt)
	}
	out.CPU.Proxy = out.Process.CPU
}

// samplePostgres sums CPU of local processes named postgres. Names are
// cached per pid, so a sample reads /proc/<pid>/stat only for postgres.
func (s *systemSampler) samplePostgres(ctx context.Context, out *SystemSample, raw, prev *rawSample, hostCPUSeconds float64) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return
	}
	alive := make(map[int32]bool, len(pids))
	for _, pid := range pids {
		alive[pid] = true
		isPG, known := s.pgPids[pid]
		if !known {
			p, err := process.NewProcessWithContext(ctx, pid)
			if err == nil {
				name, _ := p.NameWithContext(ctx)
				isPG = name == "postgres" || name == "postmaster"
				if isPG {
					s.pgProcs[pid] = p
				}
			}
			s.pgPids[pid] = isPG
		}
	}
	for pid := range s.pgPids {
		if !alive[pid] {
			delete(s.pgPids, pid)
			delete(s.pgProcs, pid)
		}
	}
	used := 0.0
	for pid, p := range s.pgProcs {
		t, err := p.TimesWithContext(ctx)
		if err != nil {
			continue
		}
		out.Postgres.Processes++
		raw.pgCPU[pid] = t.User + t.System
		if prev != nil {
			if old, ok := prev.pgCPU[pid]; ok && raw.pgCPU[pid] >= old {
				used += raw.pgCPU[pid] - old
			}
		}
	}
	if hostCPUSeconds > 0 {
		out.Postgres.CPU = clamp01(used / hostCPUSeconds)
	}
}
