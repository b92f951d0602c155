package auth_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/testenv"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// TestLibpqClient logs in with psql, i.e. libpq's own SCRAM, md5 and
// clear-text code, the other client implementation that matters.
func TestLibpqClient(t *testing.T) {
	pg := testenv.PG(t)
	psql := filepath.Join(pg.Bin, "psql")
	if _, err := os.Stat(psql); err != nil {
		if psql, err = exec.LookPath("psql"); err != nil {
			testenv.Missing(t, "psql not found on PATH or in SLUICE_TEST_PGBIN")
		}
	}
	const pw = "s3cret \u00e4"
	tests := []struct {
		method   auth.Method
		secret   string
		password string
		wantOK   bool
	}{
		{auth.MethodSCRAM, pw, pw, true},
		{auth.MethodSCRAM, auth.SCRAMVerifier(pw, nil, 0), pw, true},
		{auth.MethodSCRAM, pw, "nope", false},
		{auth.MethodMD5, auth.MD5Verifier("alice", pw), pw, true},
		{auth.MethodMD5, pw, "nope", false},
		{auth.MethodPassword, auth.SCRAMVerifier(pw, nil, 0), pw, true},
		{auth.MethodPassword, pw, "nope", false},
	}
	for _, tt := range tests {
		sec := secretOf(t, "alice", tt.secret)
		t.Run(string(tt.method)+"/"+sec.Kind()+"/"+tt.password, func(t *testing.T) {
			addr, results := fakeServer(t, tt.method, func(string) (auth.Secret, bool) { return sec, true })
			host, port, _ := net.SplitHostPort(addr)
			cmd := exec.Command(psql, "-w", "-X", "-h", host, "-p", port, "-U", "alice", "-d", "db", "-c", `\q`)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+tt.password, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
			out, err := cmd.CombinedOutput()
			serverErr := <-results
			if tt.wantOK {
				if err != nil || serverErr != nil {
					t.Fatalf("psql: %v %s; server: %v", err, out, serverErr)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), `password authentication failed for user "alice"`) {
				t.Fatalf("psql: %v %s; want the 28P01 message", err, out)
			}
			if !auth.IsAuthFailure(serverErr) {
				t.Fatalf("server: %v", serverErr)
			}
		})
	}
}
