package main

import (
	"fmt"
	"strings"
)

// idleResult mirrors the JSON bench/idleconns prints.
type idleResult struct {
	Target       string  `json:"target"`
	Requested    int     `json:"requested"`
	Opened       int     `json:"opened"`
	FirstError   string  `json:"first_error,omitempty"`
	OpenSeconds  float64 `json:"open_seconds"`
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	PerConnKiB   float64 `json:"per_conn_kib"`
	Checked      int     `json:"checked"`
	CheckFailed  int     `json:"check_failed"`
	CheckError   string  `json:"check_error,omitempty"`
}

// renderIdle prints one line per pooler measured.
func renderIdle(rs []idleResult) string {
	var b strings.Builder
	b.WriteString("| target | idle clients opened | open time s | RSS before KiB | RSS after KiB | RSS per idle client KiB | SELECT 1 checks (failed) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	var errs []string
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d/%d | %.1f | %d | %d | %.1f | %d (%d) |\n",
			r.Target, r.Opened, r.Requested, r.OpenSeconds, r.RSSBeforeKiB, r.RSSAfterKiB, r.PerConnKiB, r.Checked, r.CheckFailed)
		if r.FirstError != "" {
			errs = append(errs, fmt.Sprintf("- %s, opening: `%s`", r.Target, strings.ReplaceAll(r.FirstError, "`", "'")))
		}
		if r.CheckError != "" {
			errs = append(errs, fmt.Sprintf("- %s, checking: `%s`", r.Target, strings.ReplaceAll(r.CheckError, "`", "'")))
		}
	}
	b.WriteString("\nRSS is the pooler's VmRSS from /proc/<pid>/status on a freshly started process, before opening and after the clients sit idle; per client = (after − before) / opened. Every 100th client then runs SELECT 1 (5 s bound each) to show the connections still work.\n")
	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n")
		b.WriteString(strings.Join(errs, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}
