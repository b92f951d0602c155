package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// clientBin finds a PostgreSQL client program: on PATH, else beside the
// test cluster's server binaries.
func clientBin(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if bin := testenv.PG(t).Bin; bin != "" {
		p := filepath.Join(bin, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found on PATH or in SLUICE_TEST_PGBIN", name)
	return ""
}

type cmdResult struct {
	stdout, stderr string
	code           int
}

// runPG runs a libpq program against host:port as user with PGPASSWORD.
// A run longer than 2 minutes is killed and fails the test (a hang in the
// proxy must not hang the suite).
func runPG(t testing.TB, prog, host string, port int, user, password string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientBin(t, prog), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PGHOST="+host, "PGPORT="+strconv.Itoa(port), "PGUSER="+user,
		"PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 2 minutes, killed\n%s%s", prog, args, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return cmdResult{out.String(), errb.String(), code}
}

func TestPsql(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		pg := testenv.PG(t)
		pgPort, _ := strconv.Atoi(pg.Port)
		cases := []struct {
			name string
			args []string
		}{
			{"query", []string{"-X", "-d", itDB, "-c", "SELECT n, md5(n::text), n % 3 = 0 AS fizz, NULL AS nothing FROM generate_series(1, 50) n"}},
			{"multi-statement", []string{"-X", "-d", itDB, "-c", "CREATE TEMP TABLE t(a int); INSERT INTO t SELECT generate_series(1,3); SELECT sum(a) FROM t"}},
			{"settings", []string{"-X", "-A", "-t", "-d", itDB, "-c", "SELECT current_user, current_database(), current_setting('client_encoding'), current_setting('DateStyle')"}},
			{"notice", []string{"-X", "-d", itDB, "-c", "DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$"}},
			{"error", []string{"-X", "-v", "ON_ERROR_STOP=1", "-d", itDB, "-c", "SELECT 1/0"}},
			{"copy out", []string{"-X", "-d", itDB, "-c", "COPY (SELECT n, 'x' || n FROM generate_series(1, 20) n) TO STDOUT WITH (FORMAT csv)"}},
			// Temp tables live on one server: in transaction mode only inside one
			// transaction, hence -1.
			{"copy in", []string{"-X", "-1", "-d", itDB, "-c", "CREATE TEMP TABLE c(a int, b text)", "-c", "\\copy c FROM PROGRAM 'seq 1 5 | sed s/$/,v/' WITH (FORMAT csv)", "-c", "SELECT * FROM c"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := runPG(t, "psql", s.Host, s.Port, pg.User, pg.Password, tc.args...)
				want := runPG(t, "psql", pg.Host, pgPort, pg.User, pg.Password, tc.args...)
				if got != want {
					t.Fatalf("through Sluice:\n%+v\ndirect:\n%+v", got, want)
				}
				if tc.name != "error" && (got.code != 0 || got.stdout == "") {
					t.Fatalf("psql failed: %+v", got)
				}
			})
		}
	})
}
