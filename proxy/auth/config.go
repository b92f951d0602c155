package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is the auth section of Sluice's config (YAML key "auth"). Its
// shape matches the proxy's AuthConfig so either can embed the other.
type Config struct {
	// Method is the pg_hba.conf-style method clients must use:
	// scram-sha-256 (default), md5, password or trust.
	Method string `yaml:"method"`
	// Users are the client logins Sluice knows without asking the server.
	Users []UserConfig `yaml:"users"`
	// MockSecret seeds the salts shown to unknown users (and to plaintext
	// users). Give every Sluice instance behind one address the same value;
	// empty means random per process.
	MockSecret string `yaml:"mock_secret"`
	// AuthQuery looks users that are not in Users up in the database.
	AuthQuery AuthQueryConfig `yaml:"auth_query"`
}

// UserConfig is one client login.
type UserConfig struct {
	Name string `yaml:"name"`
	// Password is a plaintext password, an md5 verifier or a SCRAM-SHA-256
	// verifier exactly as in pg_authid.rolpassword. Verifiers are safer to
	// store; a plaintext password also lets Sluice log in to the server as
	// the client.
	Password string `yaml:"password"`
	// ServerPassword is what Sluice logs in to PostgreSQL with when
	// Password is a verifier (a verifier cannot log in upstream).
	ServerPassword string `yaml:"server_password"`
}

// AuthQueryConfig configures the PgBouncer-style database lookup; it is on
// when User is set.
type AuthQueryConfig struct {
	// Query takes the user as $1 and returns (name, password).
	Query string `yaml:"query"`
	// User, Password and Database are what the lookup connection logs in
	// with; the server address is the proxy's backend.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Database string `yaml:"database"`
	// CacheTTL is how long a looked-up secret (or its absence) is reused;
	// 0 disables the cache.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the number of cached users.
	CacheSize int `yaml:"cache_size"`
}

// DefaultConfig is SCRAM, no static users, auth_query off but with
// PgBouncer's query and a 60s cache ready when a user is set.
func DefaultConfig() Config {
	return Config{
		Method: string(DefaultMethod),
		AuthQuery: AuthQueryConfig{
			Query:     DefaultAuthQuery,
			Database:  "postgres",
			CacheTTL:  60 * time.Second,
			CacheSize: defaultAuthQueryCacheSize,
		},
	}
}

// Validate reports every problem at once, each prefixed with its YAML key
// path. Secrets are checked here (without the PBKDF2 of parsing them), so a
// mangled verifier stops the start-up; their text never appears in a
// message.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := ParseMethod(c.Method); err != nil {
		bad("method", "%v", err)
	}
	seen := make(map[string]bool, len(c.Users))
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Name == "":
			bad(key+".name", "required")
		case seen[u.Name]:
			bad(key+".name", "duplicate user %q", u.Name)
		}
		seen[u.Name] = true
		if _, err := parseSecret(u.Name, u.Password, false); err != nil {
			bad(key+".password", "%v", err)
		}
	}
	if aq := c.AuthQuery; aq.User != "" {
		if aq.Query == "" {
			bad("auth_query.query", "required when auth.auth_query.user is set")
		}
		if aq.Database == "" {
			bad("auth_query.database", "required when auth.auth_query.user is set")
		}
	}
	if c.AuthQuery.CacheTTL < 0 {
		bad("auth_query.cache_ttl", "must be >= 0")
	}
	if c.AuthQuery.CacheSize < 0 {
		bad("auth_query.cache_size", "must be >= 0")
	}
	return errors.Join(errs...)
}

// Secrets parses Users into a map by name. It calls SetMockSecret first
// (when MockSecret is set) because plaintext passwords get their SCRAM salt
// from it. Run it once per config load, off the hot path: each plaintext
// password costs a PBKDF2 (about 2ms).
func (c *Config) Secrets() (map[string]Secret, error) {
	SetMockSecret([]byte(c.MockSecret))
	out := make(map[string]Secret, len(c.Users))
	var errs []error
	for i, u := range c.Users {
		s, err := ParseSecret(u.Name, u.Password)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth.users[%d].password: %w", i, err))
			continue
		}
		out[u.Name] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// NewAuthQuery builds the lookup for this section, or nil when auth_query
// is off. dial opens a connection to the backend as AuthQuery.User.
func (c *Config) NewAuthQuery(dial func(ctx context.Context) (*pgconn.PgConn, error)) *AuthQuery {
	if c.AuthQuery.User == "" {
		return nil
	}
	return &AuthQuery{Query: c.AuthQuery.Query, Dial: dial, TTL: c.AuthQuery.CacheTTL, MaxEntries: c.AuthQuery.CacheSize}
}
