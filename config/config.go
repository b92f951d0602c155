package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/sluice-proxy/sluice/monitor"
	"github.com/sluice-proxy/sluice/proxy"
	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// Config is the whole file. Each section belongs to the package that uses
// it and validates itself; this type only composes them.
type Config struct {
	Log LogConfig `yaml:"log"`
	// Threads is how many threads run Sluice's Go code at once
	// (GOMAXPROCS): "auto", "all" or a number; see Procs.
	Threads      string `yaml:"threads"`
	proxy.Config `yaml:",inline"`
	// Rewrite holds rules:, max_rows: and rewrite: (root keys).
	Rewrite rewrite.Config `yaml:",inline"`
	// Cache is the result cache, under cache:.
	Cache resultcache.Config `yaml:"cache"`
	// Monitor holds admin: and monitor: (root keys).
	Monitor monitor.Config `yaml:",inline"`
}

// LogConfig selects zerolog's output.
type LogConfig struct {
	Level  string `yaml:"level"`  // trace | debug | info | warn | error
	Format string `yaml:"format"` // auto (console on a terminal, else JSON) | json | console
}

// Default is every section's defaults.
func Default() Config {
	return Config{
		Log:     LogConfig{Level: "info", Format: "auto"},
		Threads: "auto",
		Config:  proxy.DefaultConfig(),
		Rewrite: rewrite.DefaultConfig(),
		Cache:   resultcache.DefaultConfig(),
		Monitor: monitor.DefaultConfig(),
	}
}

// Parse decodes YAML over the defaults, applies environment overrides from
// lookup and validates; the error lists every problem found.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg := Default()
	var errs []error
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	decodeStrict(&doc, reflect.ValueOf(&cfg).Elem(), "", &errs)
	if lookup != nil {
		applyEnv(reflect.ValueOf(&cfg).Elem(), nil, lookup, &errs)
	}
	if len(errs) == 0 {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return &cfg, nil
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Load reads path and parses it with the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, os.LookupEnv)
}

// Validate runs every section's checks.
func (c *Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: must be trace, debug, info, warn or error, not %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: must be auto, json or console, not %q", c.Log.Format))
	}
	if _, err := Procs(c.Threads, 1); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Config.Validate(), c.Rewrite.Validate(), c.Cache.Validate(), c.Monitor.Validate())
	return errors.Join(errs...)
}
