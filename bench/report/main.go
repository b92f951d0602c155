package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := report(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	runsPath := fs.String("runs", "", "runs.tsv written by bench/run.sh: round, mode, target, clients, exit, log, args")
	idlePaths := fs.String("idle", "", "comma-separated JSON files written by bench/idleconns")
	section := fs.String("section", "runs", "what to print: runs (pgbench table), idle (idle-connection table) or targets (issue 6 targets)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var runs []run
	if *runsPath != "" {
		var err error
		if runs, err = loadRuns(*runsPath); err != nil {
			return err
		}
	}
	var idle []idleResult
	if *idlePaths != "" {
		for _, p := range strings.Split(*idlePaths, ",") {
			r, err := loadIdle(p)
			if err != nil {
				return err
			}
			idle = append(idle, r)
		}
	}
	var text string
	switch *section {
	case "runs":
		if *runsPath == "" {
			return errors.New("-section runs needs -runs")
		}
		text = renderRuns(aggregate(runs))
	case "idle":
		if len(idle) == 0 {
			return errors.New("-section idle needs -idle")
		}
		text = renderIdle(idle)
	case "targets":
		text = renderTargets(checkTargets(aggregate(runs), idle))
	default:
		return fmt.Errorf("-section: want runs, idle or targets, not %q", *section)
	}
	_, err := io.WriteString(out, text)
	return err
}

// loadRuns reads runs.tsv and parses the pgbench log each line points to.
func loadRuns(path string) ([]run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []run
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r, logPath, err := parseRunLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		lf, err := os.Open(logPath)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		r.outcome, err = parseLog(lf)
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", logPath, err)
		}
		runs = append(runs, r)
	}
	return runs, sc.Err()
}

// parseRunLine splits one runs.tsv line; the log path is returned apart
// because only loadRuns opens files.
func parseRunLine(line string) (run, string, error) {
	f := strings.Split(line, "\t")
	if len(f) != 7 {
		return run{}, "", fmt.Errorf("want 7 tab-separated fields, got %d", len(f))
	}
	round, err := strconv.Atoi(f[0])
	if err != nil {
		return run{}, "", fmt.Errorf("round: %w", err)
	}
	clients, err := strconv.Atoi(f[3])
	if err != nil {
		return run{}, "", fmt.Errorf("clients: %w", err)
	}
	exit, err := strconv.Atoi(f[4])
	if err != nil {
		return run{}, "", fmt.Errorf("exit: %w", err)
	}
	return run{round: round, mode: f[1], target: f[2], clients: clients, exit: exit, args: f[6]}, f[5], nil
}

func loadIdle(path string) (idleResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return idleResult{}, err
	}
	var r idleResult
	if err := json.Unmarshal(data, &r); err != nil {
		return idleResult{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
