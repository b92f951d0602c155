package main

import (
	"os"
	"strings"
	"testing"
)

// The logs in testdata are real pgbench 15 output captured by bench/run.sh.
func TestParseLog(t *testing.T) {
	tests := []struct {
		file      string
		want      outcome
		wantErrIn string
	}{
		{file: "simple.log", want: outcome{tps: 15666.960513, hasTPS: true, latencyMS: 1.021}},
		{file: "churn.log", want: outcome{tps: 185.658327, hasTPS: true, latencyMS: 86.180}},
		{
			file:      "prepared-pgbouncer.log",
			want:      outcome{tps: 10826.993671, hasTPS: true, latencyMS: 1.478, aborted: 12, runAbort: true, errLines: 22},
			wantErrIn: `prepared statement "P_0" already exists`,
		},
		{file: "refused.log", want: outcome{}, wantErrIn: "Connection refused"},
		{
			// Round 2 of the same run: the servers kept P_0 from round 1,
			// so most clients' PREPARE fails but their EXECUTE finds another
			// client's statement and pgbench carries on with exit 0.
			file:      "prepared-pgbouncer-stale.log",
			want:      outcome{tps: 4583.438638, hasTPS: true, latencyMS: 3.491, errLines: 13},
			wantErrIn: `prepared statement "P_0" already exists`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := parseLog(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.firstErr, tt.wantErrIn) || (tt.wantErrIn == "" && got.firstErr != "") {
				t.Errorf("firstErr = %q, want it to contain %q", got.firstErr, tt.wantErrIn)
			}
			got.firstErr = ""
			if got != tt.want {
				t.Errorf("parseLog = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLogFailedTransactions(t *testing.T) {
	// pgbench 15 counts serialization and deadlock failures it gave up on.
	log := "number of transactions actually processed: 90\nnumber of failed transactions: 10 (10.000%)\nlatency average = 2.000 ms\ntps = 45.0 (without initial connection time)\n"
	got, err := parseLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if got.failedTx != 10 || !got.hasTPS || got.tps != 45 {
		t.Errorf("got %+v", got)
	}
}

func TestShorten(t *testing.T) {
	tests := []struct{ in, want string }{
		{`pgbench: error: client 3 script 0 aborted in command 1 query 0: ERROR:  prepared statement "P_0" does not exist`,
			`ERROR: prepared statement "P_0" does not exist`},
		{"pgbench: error: could not create connection for setup", "pgbench: error: could not create connection for setup"},
		{"FATAL:  " + strings.Repeat("x", 300), "FATAL: " + strings.Repeat("x", maxErrLen-len("FATAL: ")) + "..."},
	}
	for _, tt := range tests {
		if got := shorten(tt.in); got != tt.want {
			t.Errorf("shorten(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRunLine(t *testing.T) {
	tests := []struct {
		line    string
		wantErr bool
		want    run
		wantLog string
	}{
		{line: "2\tchurn\tsluice\t16\t0\t/tmp/x.log\t-S -C", want: run{round: 2, mode: "churn", target: "sluice", clients: 16, args: "-S -C"}, wantLog: "/tmp/x.log"},
		{line: "1\tchurn\tsluice\t16\t124\t/tmp/x.log\t-S", want: run{round: 1, mode: "churn", target: "sluice", clients: 16, exit: 124, args: "-S"}, wantLog: "/tmp/x.log"},
		{line: "1\tchurn\tsluice\t16\t0\t/tmp/x.log", wantErr: true},
		{line: "one\tchurn\tsluice\t16\t0\t/tmp/x.log\t-S", wantErr: true},
		{line: "1\tchurn\tsluice\tmany\t0\t/tmp/x.log\t-S", wantErr: true},
		{line: "1\tchurn\tsluice\t16\tok\t/tmp/x.log\t-S", wantErr: true},
	}
	for _, tt := range tests {
		got, logPath, err := parseRunLine(tt.line)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseRunLine(%q) error = %v, wantErr %v", tt.line, err, tt.wantErr)
			continue
		}
		if err == nil && (got != tt.want || logPath != tt.wantLog) {
			t.Errorf("parseRunLine(%q) = %+v, %q; want %+v, %q", tt.line, got, logPath, tt.want, tt.wantLog)
		}
	}
}
