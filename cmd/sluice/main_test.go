package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/config"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `
listen: 127.0.0.1:0
databases:
  - name: "*"
    host: 127.0.0.1
`

const badConfig = `
listen: 127.0.0.1:0
max_client_conn: many
pool:
  mode: statement
  sise: 3
databases:
  - name: "*"
    hots: 127.0.0.1
`

func TestCheckConfig(t *testing.T) {
	good := writeFile(t, "good.yaml", goodConfig)
	bad := writeFile(t, "bad.yaml", badConfig)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		emptyOut   bool
		emptyError bool
	}{
		{name: "good file as argument", args: []string{"check-config", good}, code: 0, stdout: []string{good + ": ok"}, emptyError: true},
		{name: "good file with --config", args: []string{"check-config", "--config", good}, code: 0, stdout: []string{good + ": ok"}, emptyError: true},
		{name: "bad file lists every problem", args: []string{"check-config", bad}, code: 1, emptyOut: true, stderr: []string{
			bad + ": invalid:",
			"line 3: max_client_conn: ",
			"line 6: pool.sise: unknown key",
			"line 9: databases[0].hots: unknown key",
			"pool.mode: must be session or transaction",
			"databases[0].host: required",
		}},
		{name: "missing file", args: []string{"check-config", missing}, code: 1, emptyOut: true, stderr: []string{missing, "no such file"}},
		{name: "unknown flag", args: []string{"check-config", "--nope"}, code: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if tc.emptyOut && out.Len() != 0 {
				t.Errorf("unexpected stdout: %s", out.String())
			}
			if tc.emptyError && errb.Len() != 0 {
				t.Errorf("unexpected stderr: %s", errb.String())
			}
		})
	}
}

func TestVersion(t *testing.T) {
	old := version
	version = "v1.2.3-test"
	defer func() { version = old }()
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "sluice v1.2.3-test" {
		t.Fatalf("--version printed %q", got)
	}
}

// TestStartRefusesBadConfig: the server does not start on an invalid file
// and says why, with every problem.
func TestStartRefusesBadConfig(t *testing.T) {
	bad := writeFile(t, "bad.yaml", badConfig)
	var out, errb bytes.Buffer
	if code := run([]string{"--config", bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, w := range []string{"invalid config", "pool.sise: unknown key", "pool.mode: must be"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	var out2, errb2 bytes.Buffer
	if code := run([]string{"--no-such-flag"}, &out2, &errb2); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}

// TestLoggerFormat: JSON when not on a terminal (the integration harness
// parses it), console when asked.
func TestLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(config.LogConfig{Level: "info", Format: "auto"}, &buf)
	log.Info().Str("addr", "127.0.0.1:1").Msg("listening")
	log.Debug().Msg("hidden at info")
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("auto format off a terminal is not one JSON line: %q (%v)", buf.String(), err)
	}
	if rec["message"] != "listening" || rec["addr"] != "127.0.0.1:1" || rec["level"] != "info" {
		t.Fatalf("record %v", rec)
	}
	buf.Reset()
	log = newLogger(config.LogConfig{Level: "debug", Format: "console"}, &buf)
	log.Debug().Msg("shown at debug")
	if s := buf.String(); strings.HasPrefix(s, "{") || !strings.Contains(s, "shown at debug") {
		t.Fatalf("console format: %q", s)
	}
}

// TestSetThreads: the threads setting becomes GOMAXPROCS, and a
// GOMAXPROCS environment variable is left to win.
func TestSetThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	for _, tc := range []struct {
		threads string
		want    int
	}{{"auto", max(cpus/2, 1)}, {"all", cpus}, {"3", 3}, {"1", 1}} {
		if got := setThreads(tc.threads); got != tc.want || runtime.GOMAXPROCS(0) != tc.want {
			t.Errorf("threads %q: setThreads %d, GOMAXPROCS %d; want %d", tc.threads, got, runtime.GOMAXPROCS(0), tc.want)
		}
	}
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "2")
	if got := setThreads("1"); got != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("with GOMAXPROCS=2 in the environment, threads 1 changed it to %d", runtime.GOMAXPROCS(0))
	}
}
