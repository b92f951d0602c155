package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// result is printed as JSON; bench/report renders it.
type result struct {
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

func main() {
	if err := measure(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func measure(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idleconns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "connection string of the pooler (postgres://user:pass@host:port/db)")
	pid := fs.Int("pid", 0, "pid of the pooler process whose VmRSS is measured")
	n := fs.Int("n", 5000, "idle client connections to open")
	concurrency := fs.Int("concurrency", 16, "logins in flight at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after opening before reading RSS")
	checkEvery := fs.Int("check-every", 100, "run SELECT 1 on every Nth connection after measuring")
	checkTimeout := fs.Duration("check-timeout", 5*time.Second, "bound on each SELECT 1 check")
	target := fs.String("target", "pooler", "label for the report")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on the whole measurement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" || *pid <= 0 || *n <= 0 || *concurrency <= 0 || *checkEvery <= 0 {
		return errors.New("-dsn and -pid are required; -n, -concurrency and -check-every must be > 0")
	}
	cfg, err := pgconn.ParseConfig(*dsn)
	if err != nil {
		return fmt.Errorf("-dsn: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := result{Target: *target, Requested: *n}
	if res.RSSBeforeKiB, err = readRSS(*pid); err != nil {
		return fmt.Errorf("pid %d: %w", *pid, err)
	}
	start := time.Now()
	conns, openErr := openAll(ctx, cfg, *n, *concurrency)
	res.OpenSeconds = time.Since(start).Seconds()
	res.Opened = len(conns)
	if openErr != nil {
		res.FirstError = openErr.Error()
	}
	fmt.Fprintf(stderr, "idleconns: %s: opened %d/%d in %.1fs\n", *target, res.Opened, *n, res.OpenSeconds)
	defer closeAll(context.Background(), conns, *concurrency)

	time.Sleep(*settle)
	if res.RSSAfterKiB, err = readRSS(*pid); err != nil {
		return fmt.Errorf("pid %d after opening: %w", *pid, err)
	}
	if res.Opened > 0 {
		res.PerConnKiB = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(res.Opened)
	}
	var checkErr error
	res.Checked, res.CheckFailed, checkErr = checkSample(ctx, conns, *checkEvery, *checkTimeout)
	if checkErr != nil {
		res.CheckError = checkErr.Error()
	}
	fmt.Fprintf(stderr, "idleconns: %s: RSS %d -> %d KiB, %.1f KiB per idle client; %d/%d checks failed\n",
		*target, res.RSSBeforeKiB, res.RSSAfterKiB, res.PerConnKiB, res.CheckFailed, res.Checked)

	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	if res.Opened < *n {
		return fmt.Errorf("opened only %d of %d connections: %v", res.Opened, *n, openErr)
	}
	return nil
}
