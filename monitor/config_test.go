package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/monitor"
	"gopkg.in/yaml.v3"
)

func decode(t *testing.T, src string) (monitor.Config, error) {
	t.Helper()
	cfg := monitor.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestDefaultConfigIsValidAndLoopback(t *testing.T) {
	cfg := monitor.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Listen != "127.0.0.1:9187" || !cfg.Monitor.Enabled || cfg.Monitor.SampleInterval != 10*time.Second || cfg.Monitor.History != time.Hour {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		errs []string // substrings; empty means valid
	}{
		{"empty uses defaults", "{}", nil},
		{"loopback v6 without token", "admin: {listen: '[::1]:9187'}", nil},
		{"localhost without token", "admin: {listen: 'localhost:0'}", nil},
		{"public with token", "admin: {listen: '0.0.0.0:9187', token: abc}", nil},
		{"durations parse", "monitor: {sample_interval: 5s, history: 30m, analysis_interval: 2s, window: 30s}", nil},
		{"public without token", "admin: {listen: '0.0.0.0:9187'}", []string{"admin.token: required when admin.listen (0.0.0.0:9187)"}},
		{"all interfaces without token", "admin: {listen: ':9187'}", []string{"admin.token: required"}},
		{"bad listen", "admin: {listen: 'nope'}", []string{"admin.listen: must be host:port"}},
		{"zero timeouts and body", "admin: {read_timeout: 0s, write_timeout: 0s, max_body_bytes: 0}",
			[]string{"admin.read_timeout: must be > 0", "admin.write_timeout: must be > 0", "admin.max_body_bytes: must be > 0"}},
		{"history shorter than sample", "monitor: {sample_interval: 10s, history: 5s}", []string{"monitor.history: must be >= monitor.sample_interval"}},
		{"window too long", "monitor: {analysis_interval: 1s, window: 2m}", []string{"monitor.window: must be at most 60 analysis intervals"}},
		{"thresholds out of range", "monitor: {thresholds: {cpu_busy: 1.5, pool_wait_p95: 0s, regression_factor: 1, huge_rows: 0}}",
			[]string{"monitor.thresholds.cpu_busy: must be in (0, 1]", "monitor.thresholds.pool_wait_p95: must be > 0",
				"monitor.thresholds.regression_factor: must be > 1", "monitor.thresholds.huge_rows: must be >= 1"}},
		{"index advice factor", "monitor: {index_advice: {min_cost_factor: 1}}", []string{"monitor.index_advice.min_cost_factor: must be > 1"}},
		{"fingerprints", "monitor: {max_fingerprints: 0}", []string{"monitor.max_fingerprints: must be >= 1"}},
		{"unknown key", "monitor: {nope: 1}", []string{"field nope not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.yaml)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tt.errs)
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	cfg := monitor.DefaultConfig()
	cfg.Admin.Listen = "0.0.0.0:0"
	if _, err := monitor.New(cfg, monitor.Deps{}); err == nil || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("New with public listener and no token: %v", err)
	}
}
