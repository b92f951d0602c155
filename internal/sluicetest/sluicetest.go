// Package sluicetest starts real Sluice instances in-process for tests:
// the same wiring as the binary (internal/app), on free loopback ports,
// against the test PostgreSQL and Redis of internal/testenv.
package sluicetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/internal/app"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

// Instance is one running Sluice.
type Instance struct {
	App   *app.App
	Addr  string // client host:port
	Admin string // admin host:port
	PG    testenv.Postgres
}

// Base is a config with the test PostgreSQL behind database "*", the
// superuser as a client login with its password, and the given pool mode.
// Append more YAML (rules:, cache:, ...) to it.
func Base(pg testenv.Postgres, mode string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
log: {level: warn, format: json}
auth:
  users:
    - {name: %q, password: %q}
pool:
  mode: %s
  default_pool_size: 10
  server_check_delay: 0s
databases:
  - {name: "*", host: %q, port: %s, sslmode: disable}
`, pg.User, pg.Password, mode, pg.Host, pg.Port)
}

// Start runs an instance from YAML and stops it when the test ends.
func Start(t testing.TB, yaml string) *Instance {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("sluicetest: config: %v\n%s", err, yaml)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(levelOf(cfg.Log.Level))
	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatalf("sluicetest: %v", err)
	}
	client, admin, err := a.Start(context.Background())
	if err != nil {
		t.Fatalf("sluicetest: start: %v", err)
	}
	done := make(chan struct{})
	go func() { a.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		<-done
	})
	return &Instance{App: a, Addr: client.String(), Admin: admin.String()}
}

// DSN is a pgx/libpq URL through the instance.
func (i *Instance) DSN(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, i.Addr, db)
}

func levelOf(s string) zerolog.Level {
	l, err := zerolog.ParseLevel(s)
	if err != nil {
		return zerolog.WarnLevel
	}
	return l
}
