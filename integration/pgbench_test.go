package integration

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

var (
	processedRe = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	failedRe    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestPgbench initialises pgbench's tables through Sluice, then runs the
// select-only script with 4 clients in each query mode: every transaction
// must succeed.
func TestPgbench(t *testing.T) {
	pg := testenv.PG(t)
	forModes(t, func(t *testing.T, mode string) {
		s := startSluice(t, baseConf(t, mode).YAML(t))
		db := itDB
		init := runPG(t, "pgbench", s.Host, s.Port, pg.User, pg.Password, "-i", "-s", "1", "-q", "--foreign-keys", db)
		if init.code != 0 {
			t.Fatalf("pgbench -i through Sluice: exit %d\n%s%s", init.code, init.stdout, init.stderr)
		}
		runs := []struct{ proto, clients string }{
			{"simple", "4"}, {"extended", "4"}, {"prepared", "4"},
			// The benchmark shape: more clients than one pool
			// turnover can hide races in handing servers over.
			{"simple", "16"}, {"extended", "16"},
		}
		for _, run := range runs {
			if run.clients == "16" && mode == "session" {
				continue // 16 sessions don't fit a pool of 4 servers
			}
			proto := run.proto
			t.Run(proto+"/c"+run.clients, func(t *testing.T) {
				r := runPG(t, "pgbench", s.Host, s.Port, pg.User, pg.Password,
					"-S", "-T", "3", "-c", run.clients, "-j", "2", "-M", proto, "-n", db)
				out := r.stdout + r.stderr
				if r.code != 0 {
					t.Fatalf("pgbench -M %s: exit %d\n%s", proto, r.code, out)
				}
				m := processedRe.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no transaction count in pgbench output:\n%s", out)
				}
				if n, _ := strconv.Atoi(m[1]); n < 100 {
					t.Fatalf("only %d transactions in 3s:\n%s", n, out)
				}
				if f := failedRe.FindStringSubmatch(out); f == nil || f[1] != "0" {
					t.Fatalf("failed transactions:\n%s", out)
				}
				t.Logf("pgbench -S -M %s -c %s through Sluice (%s): %s transactions", proto, run.clients, mode, m[1])
			})
		}
	})
}
