package proxy

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/proxy/auth"
)

// Config is the proxy's section of the YAML file; its keys sit at the root.
type Config struct {
	// Listen is the client address; loopback by default so a fresh install
	// exposes nothing.
	Listen string `yaml:"listen"`
	// MaxClientConn caps concurrent client connections (PgBouncer's key).
	MaxClientConn int `yaml:"max_client_conn"`
	// MaxMessageSize caps one client or server message body, in bytes.
	MaxMessageSize int `yaml:"max_message_size"`
	// ClientLoginTimeout bounds the whole startup and authentication phase.
	ClientLoginTimeout time.Duration `yaml:"client_login_timeout"`
	// ShutdownTimeout is how long SIGTERM waits for transactions in flight.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	TLS       TLSConfig        `yaml:"tls"`
	Auth      AuthConfig       `yaml:"auth"`
	Pool      PoolConfig       `yaml:"pool"`
	Databases []DatabaseConfig `yaml:"databases"`
}

// TLSConfig is TLS towards clients.
type TLSConfig struct {
	Mode     string `yaml:"mode"` // disable | allow | require
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// AuthConfig says how clients prove who they are.
type AuthConfig struct {
	Method    string          `yaml:"method"` // scram-sha-256 | md5 | password | trust
	Users     []UserConfig    `yaml:"users"`
	AuthQuery AuthQueryConfig `yaml:"auth_query"`
	// MockSecret seeds the deterministic SCRAM salts shown for unknown
	// users; instances behind one address should share it.
	MockSecret string `yaml:"mock_secret"`
}

// UserConfig is one client login. Password is plaintext or a verifier as
// PostgreSQL stores it (md5... or SCRAM-SHA-256$...).
type UserConfig struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	// ServerPassword logs in to PostgreSQL as this user when Password is a
	// verifier (a verifier cannot be used to log in upstream).
	ServerPassword string `yaml:"server_password"`
}

// AuthQueryConfig looks up users not in Users on the server, like
// PgBouncer's auth_query.
type AuthQueryConfig struct {
	Query    string        `yaml:"query"`
	User     string        `yaml:"user"`
	Password string        `yaml:"password"`
	Database string        `yaml:"database"`
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// PoolConfig holds pool defaults; a database entry may override some.
type PoolConfig struct {
	Mode                 string        `yaml:"mode"` // session | transaction
	DefaultPoolSize      int           `yaml:"default_pool_size"`
	MinPoolSize          int           `yaml:"min_pool_size"`
	ServerIdleTimeout    time.Duration `yaml:"server_idle_timeout"`
	ServerLifetime       time.Duration `yaml:"server_lifetime"`
	ServerConnectTimeout time.Duration `yaml:"server_connect_timeout"`
	QueryWaitTimeout     time.Duration `yaml:"query_wait_timeout"`
	ServerResetQuery     string        `yaml:"server_reset_query"`
	ServerCheckDelay     time.Duration `yaml:"server_check_delay"`
	ServerCheckQuery     string        `yaml:"server_check_query"`
	// MaxPreparedStatements caps statements Sluice keeps prepared per
	// server in transaction mode (least recently used closed first).
	MaxPreparedStatements int `yaml:"max_prepared_statements"`
	// OnSessionState says what transaction mode does with session state
	// it can't carry between servers (LISTEN, temp tables, WITH HOLD
	// cursors, session advisory locks, SQL PREPARE): pin the client to its
	// server, or refuse the statement.
	OnSessionState string `yaml:"on_session_state"`
}

// DatabaseConfig maps a database name clients ask for to a server. Name "*"
// matches any database not listed, keeping the client's name upstream.
type DatabaseConfig struct {
	Name     string `yaml:"name"`
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	DBName   string `yaml:"dbname"`
	User     string `yaml:"user"`     // forced server user (optional)
	Password string `yaml:"password"` // forced server user's password
	SSLMode  string `yaml:"sslmode"`  // disable | allow | prefer | require | verify-ca | verify-full
	PoolMode string `yaml:"pool_mode"`
	PoolSize int    `yaml:"pool_size"`
	MinPool  int    `yaml:"min_pool_size"`
}

// DefaultConfig is safe out of the box: loopback only, SCRAM, transaction
// pooling, PgBouncer's timeouts.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:6432",
		MaxClientConn:      1000,
		MaxMessageSize:     64 << 20,
		ClientLoginTimeout: 60 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		TLS:                TLSConfig{Mode: "disable"},
		Auth: AuthConfig{
			Method:    "scram-sha-256",
			AuthQuery: AuthQueryConfig{Query: "SELECT usename, passwd FROM pg_shadow WHERE usename = $1", CacheTTL: 60 * time.Second},
		},
		Pool: PoolConfig{
			Mode:                  "transaction",
			DefaultPoolSize:       20,
			ServerIdleTimeout:     10 * time.Minute,
			ServerLifetime:        time.Hour,
			ServerConnectTimeout:  5 * time.Second,
			QueryWaitTimeout:      30 * time.Second,
			ServerResetQuery:      "DISCARD ALL",
			ServerCheckDelay:      30 * time.Second,
			ServerCheckQuery:      ";",
			MaxPreparedStatements: 200,
			OnSessionState:        "pin",
		},
	}
}

// Validate reports every problem, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.MaxClientConn <= 0 {
		bad("max_client_conn", "must be > 0")
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > 1<<30 {
		bad("max_message_size", "must be between 1024 and 1073741824 bytes")
	}
	if c.ClientLoginTimeout <= 0 {
		bad("client_login_timeout", "must be > 0")
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must be >= 0")
	}
	switch c.TLS.Mode {
	case "disable":
	case "allow", "require":
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			bad("tls.cert_file", "tls.mode %s needs tls.cert_file and tls.key_file", c.TLS.Mode)
		}
	default:
		bad("tls.mode", "must be disable, allow or require, not %q", c.TLS.Mode)
	}
	method, err := auth.ParseMethod(c.Auth.Method)
	if err != nil {
		bad("auth.method", "%v", err)
	}
	if method == auth.MethodTrust && !isLoopback(c.Listen) {
		bad("auth.method", "trust is refused unless listen is a loopback address")
	}
	seen := map[string]bool{}
	for i, u := range c.Auth.Users {
		key := fmt.Sprintf("auth.users[%d]", i)
		if u.Name == "" {
			bad(key+".name", "required")
		}
		if seen[u.Name] {
			bad(key+".name", "duplicate user %q", u.Name)
		}
		seen[u.Name] = true
		if _, err := auth.ParseSecret(u.Name, u.Password); err != nil {
			bad(key+".password", "%v", err)
		}
	}
	if c.Auth.AuthQuery.User != "" && c.Auth.AuthQuery.Query == "" {
		bad("auth.auth_query.query", "required when auth.auth_query.user is set")
	}
	p := c.Pool
	if p.Mode != "session" && p.Mode != "transaction" {
		bad("pool.mode", "must be session or transaction, not %q", p.Mode)
	}
	if p.DefaultPoolSize <= 0 {
		bad("pool.default_pool_size", "must be > 0")
	}
	if p.MinPoolSize < 0 || p.MinPoolSize > p.DefaultPoolSize {
		bad("pool.min_pool_size", "must be between 0 and pool.default_pool_size")
	}
	for key, d := range map[string]time.Duration{
		"pool.server_connect_timeout": p.ServerConnectTimeout,
		"pool.query_wait_timeout":     p.QueryWaitTimeout,
	} {
		if d <= 0 {
			bad(key, "must be > 0")
		}
	}
	for key, d := range map[string]time.Duration{
		"pool.server_idle_timeout": p.ServerIdleTimeout,
		"pool.server_lifetime":     p.ServerLifetime,
		"pool.server_check_delay":  p.ServerCheckDelay,
	} {
		if d < 0 {
			bad(key, "must be >= 0 (0 disables)")
		}
	}
	if p.OnSessionState != "pin" && p.OnSessionState != "error" {
		bad("pool.on_session_state", "must be pin or error, not %q", p.OnSessionState)
	}
	if p.MaxPreparedStatements < 0 {
		bad("pool.max_prepared_statements", "must be >= 0 (0 = unlimited)")
	}
	if len(c.Databases) == 0 {
		bad("databases", "at least one database is required")
	}
	names := map[string]bool{}
	for i, d := range c.Databases {
		key := fmt.Sprintf("databases[%d]", i)
		if d.Name == "" {
			bad(key+".name", "required")
		}
		if names[d.Name] {
			bad(key+".name", "duplicate database %q", d.Name)
		}
		names[d.Name] = true
		if d.Host == "" {
			bad(key+".host", "required")
		}
		if d.Port < 0 || d.Port > 65535 {
			bad(key+".port", "must be a TCP port")
		}
		switch d.SSLMode {
		case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
		default:
			bad(key+".sslmode", "unknown sslmode %q", d.SSLMode)
		}
		if d.PoolMode != "" && d.PoolMode != "session" && d.PoolMode != "transaction" {
			bad(key+".pool_mode", "must be session or transaction")
		}
		if d.PoolSize < 0 {
			bad(key+".pool_size", "must be >= 0 (0 = pool.default_pool_size)")
		}
		if d.Password != "" && d.User == "" {
			bad(key+".user", "required when password is set")
		}
	}
	return errors.Join(errs...)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
