package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// run is one pgbench invocation: what bench/run.sh recorded about it plus
// what its log says.
type run struct {
	round   int
	mode    string // select-simple, churn, ...
	target  string // direct, pgbouncer, sluice
	clients int
	exit    int // pgbench's exit status; 124 when run.sh's timeout killed it
	args    string
	outcome
}

// outcome is what a pgbench log reports. pgbench prints its summary even
// when clients abort, so hasTPS alone does not mean success.
type outcome struct {
	tps       float64
	hasTPS    bool
	latencyMS float64
	failedTx  int64 // "number of failed transactions" (retry-able errors)
	aborted   int   // distinct clients that aborted on an error
	runAbort  bool  // "Run was aborted; the above results are incomplete."
	// errLines counts server errors pgbench printed, fatal or not: with
	// -M prepared it logs a failed PREPARE ("already exists") and goes on.
	errLines int
	firstErr string
}

var (
	reTPS     = regexp.MustCompile(`^tps = ([0-9.]+)`)
	reLatency = regexp.MustCompile(`^latency average = ([0-9.]+) ms`)
	reFailed  = regexp.MustCompile(`^number of failed transactions: ([0-9]+)`)
	// pgbench 15: "client 3 script 0 aborted in command 1 query 0: ERROR: ..."
	// and "client 3 aborted in command 1 (SQL) of script 0; ...".
	reAborted = regexp.MustCompile(`client ([0-9]+) (?:script [0-9]+ )?aborted`)
)

// maxErrLen bounds the error text quoted in the table.
const maxErrLen = 160

// parseLog reads pgbench's combined stdout and stderr.
func parseLog(r io.Reader) (outcome, error) {
	var o outcome
	abortedClients := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := reTPS.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				o.tps, o.hasTPS = v, true
			}
			continue
		}
		if m := reLatency.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				o.latencyMS = v
			}
			continue
		}
		if m := reFailed.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				o.failedTx = v
			}
			continue
		}
		if m := reAborted.FindStringSubmatch(line); m != nil {
			abortedClients[m[1]] = true
		}
		if strings.Contains(line, "ERROR:") || strings.Contains(line, "FATAL:") {
			o.errLines++
		}
		if strings.Contains(line, "Run was aborted") {
			o.runAbort = true
		}
		if o.firstErr == "" && isErrorLine(line) {
			o.firstErr = shorten(line)
		}
	}
	o.aborted = len(abortedClients)
	return o, sc.Err()
}

func isErrorLine(line string) bool {
	return strings.Contains(line, "ERROR:") || strings.Contains(line, "FATAL:") ||
		strings.HasPrefix(line, "pgbench: error:") || strings.HasPrefix(line, "pgbench: fatal:")
}

// shorten keeps the part of an error line that says what went wrong:
// pgbench prefixes the client and command, the server's text follows.
func shorten(line string) string {
	for _, marker := range []string{"ERROR:", "FATAL:"} {
		if i := strings.Index(line, marker); i >= 0 {
			line = line[i:]
			break
		}
	}
	line = strings.Join(strings.Fields(line), " ")
	if len(line) > maxErrLen {
		line = line[:maxErrLen] + "..."
	}
	return line
}

// failed reports whether the run cannot be taken at face value.
func (r run) failed() bool {
	return r.exit != 0 || !r.hasTPS || r.failedTx > 0 || r.aborted > 0 || r.runAbort || r.errLines > 0
}
