package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/config"
)

// db is the smallest databases section that makes a config valid.
const db = `
databases:
  - name: "*"
    host: 127.0.0.1
`

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "defaults are safe", yaml: db, check: func(t *testing.T, c *config.Config) {
			if c.Listen != "127.0.0.1:6432" {
				t.Errorf("listen %q: the default must be loopback", c.Listen)
			}
			if c.Auth.Method != "scram-sha-256" {
				t.Errorf("auth.method %q, want scram-sha-256", c.Auth.Method)
			}
			if c.TLS.Mode != "disable" || c.Pool.Mode != "transaction" || c.Pool.ServerResetQuery != "DISCARD ALL" {
				t.Errorf("tls.mode %q pool.mode %q server_reset_query %q", c.TLS.Mode, c.Pool.Mode, c.Pool.ServerResetQuery)
			}
			if c.Pool.DefaultPoolSize <= 0 || c.MaxClientConn <= 0 || c.MaxMessageSize <= 0 ||
				c.ClientLoginTimeout <= 0 || c.Pool.QueryWaitTimeout <= 0 || c.Pool.ServerConnectTimeout <= 0 {
				t.Errorf("a limit defaults to zero: %+v", c.Config)
			}
			if c.Log.Level != "info" || c.Log.Format != "auto" {
				t.Errorf("log %+v", c.Log)
			}
		}},
		{name: "values", yaml: `
listen: 127.0.0.1:7000
max_client_conn: 5
client_login_timeout: 1500ms
log: {level: debug, format: json}
pool:
  mode: session
  default_pool_size: 3
  query_wait_timeout: 2s
databases:
  - name: app
    host: db.internal
    port: 5433
    pool_size: 9
`, check: func(t *testing.T, c *config.Config) {
			if c.Listen != "127.0.0.1:7000" || c.MaxClientConn != 5 || c.ClientLoginTimeout != 1500*time.Millisecond {
				t.Errorf("root keys: %q %d %s", c.Listen, c.MaxClientConn, c.ClientLoginTimeout)
			}
			if c.Pool.Mode != "session" || c.Pool.DefaultPoolSize != 3 || c.Pool.QueryWaitTimeout != 2*time.Second {
				t.Errorf("pool: %+v", c.Pool)
			}
			if c.Pool.ServerIdleTimeout != 10*time.Minute {
				t.Errorf("an unset pool key lost its default: %s", c.Pool.ServerIdleTimeout)
			}
			if len(c.Databases) != 1 || c.Databases[0].Host != "db.internal" || c.Databases[0].Port != 5433 || c.Databases[0].PoolSize != 9 {
				t.Errorf("databases: %+v", c.Databases)
			}
			if c.Log.Level != "debug" || c.Log.Format != "json" {
				t.Errorf("log: %+v", c.Log)
			}
		}},
		{name: "env overrides", yaml: db + "pool: {default_pool_size: 3}\n", env: map[string]string{
			"SLUICE_POOL_DEFAULT_POOL_SIZE":  "7",
			"SLUICE_LISTEN":                  "127.0.0.2:7001",
			"SLUICE_CLIENT_LOGIN_TIMEOUT":    "3s",
			"SLUICE_POOL_MODE":               "session",
			"SLUICE_LOG_LEVEL":               "warn",
			"SLUICE_TLS_CERT_FILE":           "yes",      // a string that YAML would read as a bool
			"SLUICE_POOL_SERVER_CHECK_QUERY": "SELECT 1", // strings are taken verbatim
			"SLUICE_UNRELATED":               "ignored",
		}, check: func(t *testing.T, c *config.Config) {
			if c.Pool.DefaultPoolSize != 7 {
				t.Errorf("SLUICE_POOL_DEFAULT_POOL_SIZE: pool size %d, want 7 (env wins over the file)", c.Pool.DefaultPoolSize)
			}
			if c.Listen != "127.0.0.2:7001" || c.ClientLoginTimeout != 3*time.Second || c.Pool.Mode != "session" || c.Log.Level != "warn" {
				t.Errorf("env not applied: %q %s %q %q", c.Listen, c.ClientLoginTimeout, c.Pool.Mode, c.Log.Level)
			}
			if c.TLS.CertFile != "yes" || c.Pool.ServerCheckQuery != "SELECT 1" {
				t.Errorf("string overrides: %q %q", c.TLS.CertFile, c.Pool.ServerCheckQuery)
			}
		}},
		{name: "trust on loopback", yaml: db + "listen: 127.0.0.1:6432\nauth: {method: trust}\n"},
		{name: "trust on localhost", yaml: db + "listen: localhost:6432\nauth: {method: trust}\n"},
		{name: "trust on ::1", yaml: db + "listen: '[::1]:6432'\nauth: {method: trust}\n"},
		{name: "null sections keep defaults", yaml: db + "pool:\ntls:\n", check: func(t *testing.T, c *config.Config) {
			if c.Pool.Mode != "transaction" || c.TLS.Mode != "disable" {
				t.Errorf("pool %+v tls %+v", c.Pool, c.TLS)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must appear in the error, in this order of lines
	}{
		{name: "unknown top-level key", yaml: db + "listn: 127.0.0.1:1\n",
			want: []string{"line 5: listn: unknown key"}},
		{name: "unknown nested key", yaml: db + "pool:\n  mode: session\n  default_pool_sise: 3\n",
			want: []string{"line 7: pool.default_pool_sise: unknown key"}},
		{name: "unknown key in a list item", yaml: "databases:\n  - name: x\n    host: h\n    hots: g\n",
			want: []string{"line 4: databases[0].hots: unknown key"}},
		{name: "unknown key deeper", yaml: db + "auth:\n  auth_query:\n    usr: x\n",
			want: []string{"line 7: auth.auth_query.usr: unknown key"}},
		{name: "string into int", yaml: db + "max_client_conn: lots\n",
			want: []string{"line 5: max_client_conn: ", "lots"}},
		{name: "string into nested int", yaml: db + "pool:\n  default_pool_size: big\n",
			want: []string{"line 6: pool.default_pool_size: ", "big"}},
		{name: "bad duration", yaml: db + "client_login_timeout: soon\n",
			want: []string{"line 5: client_login_timeout: "}},
		{name: "number as duration", yaml: db + "pool:\n  query_wait_timeout: [1]\n",
			want: []string{"line 6: pool.query_wait_timeout: "}},
		{name: "mapping expected", yaml: db + "pool: 3\n",
			want: []string{"line 5: pool: expected a mapping"}},
		{name: "list expected", yaml: "databases: {name: x}\n",
			want: []string{"line 1: databases: expected a list"}},
		{name: "yaml syntax", yaml: "listen: [\n", want: []string{"yaml: "}},
		{name: "no database", yaml: "listen: 127.0.0.1:1\n", want: []string{"databases: at least one database is required"}},
		{name: "pool mode", yaml: db + "pool: {mode: statement}\n", want: []string{"pool.mode: must be session or transaction"}},
		{name: "pool size", yaml: db + "pool: {default_pool_size: 0}\n", want: []string{"pool.default_pool_size: must be > 0"}},
		{name: "min pool size", yaml: db + "pool: {default_pool_size: 2, min_pool_size: 3}\n", want: []string{"pool.min_pool_size:"}},
		{name: "negative timeout", yaml: db + "pool: {server_idle_timeout: -1s}\n", want: []string{"pool.server_idle_timeout: must be >= 0"}},
		{name: "zero wait timeout", yaml: db + "pool: {query_wait_timeout: 0s}\n", want: []string{"pool.query_wait_timeout: must be > 0"}},
		{name: "bad listen", yaml: db + "listen: nowhere\n", want: []string{"listen: "}},
		{name: "max_message_size", yaml: db + "max_message_size: 10\n", want: []string{"max_message_size: must be between"}},
		{name: "tls without cert", yaml: db + "tls: {mode: require}\n", want: []string{"tls.cert_file: "}},
		{name: "tls mode", yaml: db + "tls: {mode: prefer}\n", want: []string{"tls.mode: must be disable, allow or require"}},
		{name: "auth method", yaml: db + "auth: {method: ident}\n", want: []string{"auth.method: "}},
		{name: "trust on all interfaces", yaml: db + "listen: 0.0.0.0:6432\nauth: {method: trust}\n",
			want: []string{"auth.method: trust is refused unless listen is a loopback address"}},
		{name: "trust on a LAN address", yaml: db + "listen: 192.0.2.10:6432\nauth: {method: trust}\n",
			want: []string{"auth.method: trust is refused"}},
		{name: "user without name", yaml: db + "auth:\n  users:\n    - password: x\n", want: []string{"auth.users[0].name: required"}},
		{name: "duplicate user", yaml: db + "auth:\n  users:\n    - {name: a, password: x}\n    - {name: a, password: y}\n",
			want: []string{`auth.users[1].name: duplicate user "a"`}},
		{name: "mangled verifier", yaml: db + "auth:\n  users:\n    - {name: a, password: 'SCRAM-SHA-256$4096:zz$broken'}\n",
			want: []string{"auth.users[0].password: "}},
		{name: "database without host", yaml: "databases:\n  - name: x\n", want: []string{"databases[0].host: required"}},
		{name: "database sslmode", yaml: "databases:\n  - {name: x, host: h, sslmode: maybe}\n", want: []string{`databases[0].sslmode: unknown sslmode "maybe"`}},
		{name: "database port", yaml: "databases:\n  - {name: x, host: h, port: 70000}\n", want: []string{"databases[0].port: "}},
		{name: "duplicate database", yaml: "databases:\n  - {name: x, host: h}\n  - {name: x, host: h}\n",
			want: []string{`databases[1].name: duplicate database "x"`}},
		{name: "log level", yaml: db + "log: {level: loud}\n", want: []string{`log.level: must be`}},
		{name: "env bad int", yaml: db, env: map[string]string{"SLUICE_POOL_DEFAULT_POOL_SIZE": "seven"},
			want: []string{"SLUICE_POOL_DEFAULT_POOL_SIZE: bad value \"seven\" for pool.default_pool_size"}},
		{name: "env bad duration", yaml: db, env: map[string]string{"SLUICE_SHUTDOWN_TIMEOUT": "later"},
			want: []string{"SLUICE_SHUTDOWN_TIMEOUT", "shutdown_timeout"}},
		{name: "env value fails validation", yaml: db, env: map[string]string{"SLUICE_POOL_MODE": "statement"},
			want: []string{"pool.mode: must be session or transaction"}},
		{name: "env trust off loopback", yaml: db + "auth: {method: trust}\n", env: map[string]string{"SLUICE_LISTEN": "0.0.0.0:6432"},
			want: []string{"auth.method: trust is refused"}},
		{name: "every problem at once", yaml: `
listn: x
max_client_conn: many
pool:
  mode: statement
  sise: 1
databases:
  - name: a
    host: h
    colour: blue
`, env: map[string]string{"SLUICE_SHUTDOWN_TIMEOUT": "later"}, want: []string{
			"line 2: listn: unknown key",
			"line 3: max_client_conn: ",
			"line 6: pool.sise: unknown key",
			"line 10: databases[0].colour: unknown key",
			"SLUICE_SHUTDOWN_TIMEOUT",
			"pool.mode: must be session or transaction",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml), env(tc.env))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error does not contain %q (in order):\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(db+"max_client_conn: 11\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(good)
	if err != nil || c.MaxClientConn != 11 {
		t.Fatalf("Load: %+v %v", c, err)
	}
	t.Setenv("SLUICE_MAX_CLIENT_CONN", "12")
	if c, err := config.Load(good); err != nil || c.MaxClientConn != 12 {
		t.Fatalf("Load does not read the process environment: %v %v", c, err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// TestSampleConfig keeps the shipped config.yaml valid: it is the default
// `make demo` runs and the documentation of every key.
func TestSampleConfig(t *testing.T) {
	path := filepath.Join("..", "config.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no sample config: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(data, nil); err != nil {
		t.Fatalf("config.yaml is invalid:\n%v", err)
	}
}

// TestEmptyFile: a file with nothing but comments is an empty mapping, as
// yaml.v3 and PostgreSQL's own config files treat it; only the missing
// required keys are reported.
func TestEmptyFile(t *testing.T) {
	for _, in := range []string{"", "# nothing yet\n", "---\n"} {
		_, err := config.Parse([]byte(in), nil)
		if err == nil {
			t.Fatalf("%q: accepted without databases", in)
		}
		if msg := err.Error(); msg != "databases: at least one database is required" {
			t.Errorf("%q: got\n%s\nwant only the missing databases", in, msg)
		}
	}
}

func TestThreads(t *testing.T) {
	for _, tc := range []struct {
		in         string
		cpus, want int
	}{
		{"auto", 1, 1}, {"auto", 2, 1}, {"auto", 3, 1}, {"auto", 8, 4},
		{"all", 2, 2}, {"all", 0, 1}, {"3", 2, 3}, {"1", 64, 1},
	} {
		got, err := config.Procs(tc.in, tc.cpus)
		if err != nil || got != tc.want {
			t.Errorf("config.Procs(%q, %d) = %d, %v; want %d", tc.in, tc.cpus, got, err, tc.want)
		}
	}
	for _, bad := range []string{"0", "-1", "half", ""} {
		if _, err := config.Procs(bad, 4); err == nil {
			t.Errorf("config.Procs(%q) accepted", bad)
		}
	}
	cfg, err := config.Parse([]byte(db+"threads: 2\n"), nil)
	if err != nil || cfg.Threads != "2" {
		t.Fatalf("threads: 2 in YAML: %v, %q", err, cfg.Threads)
	}
	if _, err := config.Parse([]byte(db+"threads: zero\n"), nil); err == nil || !strings.Contains(err.Error(), "threads:") {
		t.Fatalf("threads: zero: %v", err)
	}
	cfg, err = config.Parse([]byte(db), env(map[string]string{"SLUICE_THREADS": "all"}))
	if err != nil || cfg.Threads != "all" {
		t.Fatalf("SLUICE_THREADS=all: %v, %+v", err, cfg)
	}
}
