package monitor

import (
	"fmt"
	"time"
)

// hostFindings looks at the system samples inside the window.
func hostFindings(s Settings, hist []SystemSample, now time.Time) []Finding {
	t := s.Thresholds
	from := now.Add(-s.Window)
	var win []SystemSample
	for _, h := range hist {
		if !h.Time.Before(from) && h.Interval > 0 {
			win = append(win, h)
		}
	}
	if len(win) == 0 {
		return nil
	}
	n := float64(len(win))
	var cpu, proxy, pg, other, iowait, swapIO float64
	minAvail := 1.0
	for _, h := range win {
		cpu += h.CPU.Total / n
		proxy += h.CPU.Proxy / n
		pg += h.Postgres.CPU / n
		other += h.CPU.Other / n
		iowait += h.CPU.IOWait / n
		swapIO += (h.Memory.SwapInPerSec + h.Memory.SwapOutPerSec) / n
		if h.Memory.Total > 0 && h.Memory.AvailableRatio < minAvail {
			minAvail = h.Memory.AvailableRatio
		}
	}
	last := win[len(win)-1]
	ev := func(summary string, vals map[string]any) Evidence {
		vals["samples"] = len(win)
		return Evidence{Window: windowText(s.Window), From: win[0].Time, To: last.Time, Summary: summary, Values: vals}
	}
	var out []Finding
	if cpu >= t.CPUBusy {
		f := newFinding(KindHostCPU, "", SeverityWarning, "Host CPU is saturated")
		if cpu >= 0.98 {
			f.Severity = SeverityCritical
		}
		f.Evidence = ev(fmt.Sprintf("CPU %.0f%% busy on average over %d cores (Sluice %.0f%%, PostgreSQL %.0f%%, other %.0f%%)",
			cpu*100, last.CPU.Cores, proxy*100, pg*100, other*100),
			map[string]any{"cpu_busy": cpu, "sluice": proxy, "postgres": pg, "other": other, "cores": last.CPU.Cores, "threshold": t.CPUBusy})
		switch {
		case pg >= proxy && pg >= other:
			f.Recommendation = "PostgreSQL uses most of the CPU: work down the top queries by total time and the index advice, and cache more repeated reads; otherwise give the database more cores or move it to its own host."
		case proxy >= other:
			f.Recommendation = "Sluice itself uses most of the CPU: check the rewrite rules and cache settings that run per query (compression, huge results), or give Sluice more cores / run more instances."
		default:
			f.Recommendation = "Processes other than Sluice and PostgreSQL use most of the CPU: move them off this host or give it more cores."
		}
		f.Score = cpu * 100
		out = append(out, f)
	}
	if minAvail < t.MemoryAvailableMin {
		f := newFinding(KindHostMemory, "", SeverityWarning, "Host memory is nearly exhausted")
		f.Evidence = ev(fmt.Sprintf("available memory fell to %.1f%% of %d MiB", minAvail*100, last.Memory.Total>>20),
			map[string]any{"available_ratio_min": minAvail, "total_bytes": last.Memory.Total, "threshold": t.MemoryAvailableMin})
		f.Recommendation = "Reduce memory use (PostgreSQL shared_buffers/work_mem × connections, the L1 result cache size) or add RAM before the kernel starts swapping or the OOM killer picks PostgreSQL."
		f.Score = (1 - minAvail) * 100
		out = append(out, f)
	}
	if swapIO > 4096 { // more than one page a second
		f := newFinding(KindHostSwap, "", SeverityWarning, "Host is swapping")
		f.Evidence = ev(fmt.Sprintf("%.0f KiB/s swapped in+out on average; swap used %d MiB", swapIO/1024, last.Memory.SwapUsed>>20),
			map[string]any{"swap_bytes_per_s": swapIO, "swap_used_bytes": last.Memory.SwapUsed})
		f.Recommendation = "Swapping stalls queries unpredictably: lower memory settings (work_mem, cache sizes, pool sizes) or add RAM."
		f.Score = 80
		out = append(out, f)
	}
	for _, d := range last.Disks {
		if d.Total == 0 || d.UsedRatio < t.DiskUsedMax {
			continue
		}
		f := newFinding(KindHostDisk, d.Path, SeverityWarning, "Disk nearly full: "+d.Path)
		if d.UsedRatio >= 0.97 {
			f.Severity = SeverityCritical
		}
		f.Evidence = Evidence{Window: "at " + last.Time.Format(time.RFC3339), From: last.Time, To: last.Time,
			Summary: fmt.Sprintf("%s (%s) is %.1f%% full, %d MiB free", d.Path, d.Mountpoint, d.UsedRatio*100, d.Free>>20),
			Values:  map[string]any{"used_ratio": d.UsedRatio, "free_bytes": d.Free, "total_bytes": d.Total, "threshold": t.DiskUsedMax}}
		f.Recommendation = "Free space or grow the volume: PostgreSQL stops accepting writes (PANIC on WAL) when the disk fills. Check WAL retention (replication slots) and old logs first."
		f.Score = d.UsedRatio * 100
		out = append(out, f)
	}
	if iowait >= t.IOWait {
		f := newFinding(KindHostIOWait, "", SeverityWarning, "High I/O wait")
		busiest, busy := "", 0.0
		for _, d := range last.Disks {
			if d.BusyRatio > busy {
				busiest, busy = d.Path, d.BusyRatio
			}
		}
		f.Evidence = ev(fmt.Sprintf("CPUs waited on I/O %.0f%% of the time on average", iowait*100),
			map[string]any{"iowait": iowait, "threshold": t.IOWait, "busiest_path": busiest, "busiest_busy_ratio": busy})
		f.Recommendation = "Storage is the bottleneck: look for sequential scans and temp files in the database findings, raise shared_buffers if the working set fits, or move to faster disks."
		f.Score = iowait * 100
		out = append(out, f)
	}
	return out
}
