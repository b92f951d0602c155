package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// Sluice is one running sluice process.
type Sluice struct {
	t      testing.TB
	cmd    *exec.Cmd
	Path   string // its config file
	Host   string
	Port   int
	exited chan struct{}
	err    error // from Wait, valid after exited closes

	mu   sync.Mutex
	logs []logLine
}

// logLine is one line of Sluice's stderr: the JSON record when it parses.
type logLine struct {
	raw string
	rec map[string]any
}

// Conf is a Sluice config as a YAML tree; set fills a key path.
type Conf map[string]any

// set sets a dotted key path, creating mappings on the way.
func (c Conf) set(path string, v any) Conf {
	keys := strings.Split(path, ".")
	m := map[string]any(c)
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
	return c
}

// addUser appends an auth.users entry.
func (c Conf) addUser(name, password string, extra ...string) Conf {
	auth, _ := c["auth"].(map[string]any)
	if auth == nil {
		auth = map[string]any{}
		c["auth"] = auth
	}
	u := map[string]any{"name": name, "password": password}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i]] = extra[i+1]
	}
	users, _ := auth["users"].([]any)
	auth["users"] = append(users, u)
	return c
}

// YAML renders the config.
func (c Conf) YAML(t testing.TB) string {
	b, err := yaml.Marshal(map[string]any(c))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Test roles, created once in the test cluster by setup.
const (
	itDB   = "sluice_it"
	itUser = "it_user"
	itPass = "it pass'quoted" // exercise quoting on every path
)

// baseConf is the config most tests start from: listen on a free loopback
// port, JSON log, every database routed to the test PostgreSQL, the
// superuser and it_user as logins, and the given pool mode.
func baseConf(t testing.TB, mode string) Conf {
	pg := testenv.PG(t)
	setup(t)
	port, _ := strconv.Atoi(pg.Port)
	c := Conf{
		"listen":               "127.0.0.1:0",
		"client_login_timeout": "10s",
		"shutdown_timeout":     "3s",
		"log":                  map[string]any{"level": "info", "format": "json"},
		// Many processes run side by side: no fixed admin port.
		"admin": map[string]any{"listen": "127.0.0.1:0"},
		"pool": map[string]any{
			"mode":               mode,
			"default_pool_size":  4,
			"query_wait_timeout": "10s",
		},
		"databases": []any{map[string]any{
			"name": "*", "host": pg.Host, "port": port, "sslmode": "disable",
		}},
	}
	c.addUser(pg.User, pg.Password)
	c.addUser(itUser, itPass)
	return c
}

// startSluice writes yamlConfig to a temporary file, starts the binary on
// it and waits for its "listening" log line, which gives the port (the
// config listens on port 0). The process is stopped at cleanup (SIGTERM,
// then kill); its log is printed when the test failed.
func startSluice(t testing.TB, yamlConfig string) *Sluice {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(yamlConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sluice{t: t, Path: path, exited: make(chan struct{})}
	s.cmd = exec.Command(sluiceBin, "--config", path)
	s.cmd.Env = sluiceEnv()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.cmd.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := logLine{raw: sc.Text()}
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				line.rec = rec
			}
			s.mu.Lock()
			s.logs = append(s.logs, line)
			s.mu.Unlock()
		}
	}()
	go func() {
		<-logDone
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop()
		if log := s.Log(); strings.Contains(log, "WARNING: DATA RACE") || strings.Contains(log, "panic:") {
			t.Errorf("sluice reported a data race or panicked")
		}
		if t.Failed() {
			t.Logf("sluice log (%s):\n%s", path, s.Log())
		}
	})
	rec := s.WaitLog(t, 30*time.Second, func(r map[string]any) bool { return r["message"] == "listening" })
	if rec == nil {
		t.Fatalf("sluice did not start listening; log:\n%s", s.Log())
	}
	host, port, err := net.SplitHostPort(fmt.Sprint(rec["addr"]))
	if err != nil {
		t.Fatalf("listening line without addr: %v", rec)
	}
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	return s
}

// sluiceEnv is the environment without SLUICE_* overrides that would
// change the generated config behind the test's back.
func sluiceEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "SLUICE_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Addr is host:port of the listener.
func (s *Sluice) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN is a pgx/libpq URL through Sluice; extra are more query parameters
// ("application_name=x").
func (s *Sluice) DSN(user, password, db string, extra ...string) string {
	return dsn(s.Host, strconv.Itoa(s.Port), user, password, db, extra...)
}

func dsn(host, port, user, password, db string, extra ...string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: net.JoinHostPort(host, port), Path: "/" + db}
	q := "sslmode=disable"
	for _, e := range extra {
		if strings.HasPrefix(e, "sslmode=") {
			q = e
			continue
		}
		k, v, _ := strings.Cut(e, "=")
		q += "&" + url.PathEscape(k) + "=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
	}
	if !strings.HasPrefix(q, "sslmode=") {
		q = "sslmode=disable&" + q
	}
	u.RawQuery = q
	return u.String()
}

// directDSN is the same URL straight to PostgreSQL.
func directDSN(t testing.TB, user, password, db string, extra ...string) string {
	pg := testenv.PG(t)
	return dsn(pg.Host, pg.Port, user, password, db, extra...)
}

// superDSN is the superuser's direct URL to db.
func superDSN(t testing.TB, db string) string {
	pg := testenv.PG(t)
	return directDSN(t, pg.User, pg.Password, db)
}

// Log is the whole log so far.
func (s *Sluice) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.logs {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// WaitLog waits for a JSON log record matching pred (also among lines
// already logged) and returns it, or nil after timeout or process exit.
func (s *Sluice) WaitLog(t testing.TB, timeout time.Duration, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		s.mu.Lock()
		lines := s.logs[seen:]
		seen = len(s.logs)
		s.mu.Unlock()
		for _, l := range lines {
			if l.rec != nil && pred(l.rec) {
				return l.rec
			}
		}
		select {
		case <-s.exited:
			s.mu.Lock()
			more := len(s.logs) > seen
			s.mu.Unlock()
			if !more {
				return nil
			}
			continue
		default:
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logCount counts log records matching pred.
func (s *Sluice) logCount(pred func(map[string]any) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.logs {
		if l.rec != nil && pred(l.rec) {
			n++
		}
	}
	return n
}

// Signal sends sig to the process.
func (s *Sluice) Signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Rewrite replaces the config file (for SIGHUP tests).
func (s *Sluice) Rewrite(yamlConfig string) {
	s.t.Helper()
	tmp := s.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yamlConfig), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		s.t.Fatal(err)
	}
}

// Exited reports whether the process has ended, waiting up to d.
func (s *Sluice) Exited(d time.Duration) bool {
	select {
	case <-s.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after 10s.
func (s *Sluice) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if !s.Exited(10 * time.Second) {
		s.t.Errorf("sluice ignored SIGTERM for 10s; killing it")
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// forModes runs f as a subtest per pool mode.
func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

var (
	setupOnce sync.Once
	setupErr  error
)

// setup creates the test database and roles once per test binary:
// sluice_it, and it_user (SCRAM password, may create in public).
func setup(t testing.TB) {
	t.Helper()
	pg := testenv.PG(t)
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := connectOrErr(ctx, superDSN(t, "postgres"))
		if c.err != nil {
			setupErr = c.err
			return
		}
		defer c.conn.Close(ctx)
		var n int
		if err := c.conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", itDB).Scan(&n); err != nil {
			setupErr = err
			return
		}
		stmts := []string{
			fmt.Sprintf(`DO $$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %[1]s) THEN CREATE ROLE %[2]s LOGIN; END IF;
END$$`, quoteLit(itUser), quoteIdent(itUser)),
			"SET password_encryption = 'scram-sha-256'",
			fmt.Sprintf("ALTER ROLE %s LOGIN PASSWORD %s", quoteIdent(itUser), quoteLit(itPass)),
		}
		if n == 0 {
			stmts = append(stmts, "CREATE DATABASE "+itDB)
		}
		for _, s := range stmts {
			if _, err := c.conn.Exec(ctx, s); err != nil {
				setupErr = fmt.Errorf("%s: %w", s, err)
				return
			}
		}
		d := connectOrErr(ctx, superDSN(t, itDB))
		if d.err != nil {
			setupErr = d.err
			return
		}
		defer d.conn.Close(ctx)
		if _, err := d.conn.Exec(ctx, "GRANT ALL ON SCHEMA public TO "+quoteIdent(itUser)); err != nil {
			setupErr = err
		}
	})
	if setupErr != nil {
		t.Fatalf("setting up %s on %s: %v", itDB, pg.Addr(), setupErr)
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// uniq is a fresh lower-case name with the given prefix.
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano()%1e9)
}

// readAll drains r until EOF or error, for raw-connection tests.
func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
