package auth

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Config is the auth section of Sluice's config (YAML key "auth").
type Config struct {
	// Method is the pg_hba.conf-style method clients must use:
	// scram-sha-256 (default), md5, password or trust.
	Method string `yaml:"method"`
	// Users maps user name to a plaintext password, an md5 verifier or a
	// SCRAM-SHA-256 verifier (as in pg_authid.rolpassword). Verifiers are
	// safer to store; a plaintext password also lets Sluice log in to the
	// server as the client when no server password is configured.
	Users map[string]string `yaml:"users"`
	// MockSecret seeds the salts shown to unknown users (and to plaintext
	// users). Give every Sluice instance behind one address the same value;
	// empty means random per process.
	MockSecret string `yaml:"mock_secret"`
	// AuthQuery looks users that are not in Users up in the database.
	AuthQuery AuthQueryConfig `yaml:"auth_query"`
}

// AuthQueryConfig configures the PgBouncer-style database lookup.
type AuthQueryConfig struct {
	Enabled bool `yaml:"enabled"`
	// Query takes the user as $1 and returns (name, password).
	Query string `yaml:"query"`
	// User, Password and Database are what the lookup connection logs in
	// with; the server address is the proxy's backend.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Database string `yaml:"database"`
	// CacheTTL is how long a looked-up secret (or its absence) is reused.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the number of cached users.
	CacheSize int `yaml:"cache_size"`
}

// DefaultConfig is SCRAM, no static users, auth_query off but with
// PgBouncer's query and a 60s cache ready when turned on.
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
// path. Secrets are parsed here, so a mangled verifier stops the start-up,
// but their text never appears in a message.
func (c *Config) Validate() error {
	var errs []error
	if _, err := ParseMethod(c.Method); err != nil {
		errs = append(errs, fmt.Errorf("auth.method: %w", err))
	}
	for _, user := range sortedKeys(c.Users) {
		if user == "" {
			errs = append(errs, errors.New("auth.users: empty user name"))
			continue
		}
		if _, err := parseSecret(user, c.Users[user], false); err != nil {
			errs = append(errs, fmt.Errorf("auth.users.%s: %w", user, err))
		}
	}
	if aq := c.AuthQuery; aq.Enabled {
		if aq.Query == "" {
			errs = append(errs, errors.New("auth.auth_query.query: must not be empty when auth_query is enabled"))
		}
		if aq.User == "" {
			errs = append(errs, errors.New("auth.auth_query.user: must not be empty when auth_query is enabled"))
		}
		if aq.Database == "" {
			errs = append(errs, errors.New("auth.auth_query.database: must not be empty when auth_query is enabled"))
		}
	}
	if c.AuthQuery.CacheTTL < 0 {
		errs = append(errs, errors.New("auth.auth_query.cache_ttl: must be >= 0"))
	}
	if c.AuthQuery.CacheSize < 0 {
		errs = append(errs, errors.New("auth.auth_query.cache_size: must be >= 0"))
	}
	return errors.Join(errs...)
}

// Secrets parses Users. It calls SetMockSecret first (when MockSecret is
// set) because plaintext passwords get their SCRAM salt from it. Run it
// once per config load, off the hot path: each plaintext password costs a
// PBKDF2 (a few milliseconds).
func (c *Config) Secrets() (map[string]Secret, error) {
	SetMockSecret([]byte(c.MockSecret))
	out := make(map[string]Secret, len(c.Users))
	var errs []error
	for _, user := range sortedKeys(c.Users) {
		s, err := ParseSecret(user, c.Users[user])
		if err != nil {
			errs = append(errs, fmt.Errorf("auth.users.%s: %w", user, err))
			continue
		}
		out[user] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
