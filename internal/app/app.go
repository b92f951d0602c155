// Package app wires Sluice's packages into one running instance: the proxy,
// the rule engine, the result cache and the monitor, from one config
// snapshot. cmd/sluice adds flags and signals; tests start instances with
// it in-process. It owns no protocol or SQL logic.
package app

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"

	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/monitor"
	"github.com/sluice-proxy/sluice/proxy"
	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// App is one Sluice instance.
type App struct {
	Proxy   *proxy.Server
	Cache   *resultcache.Cache // nil when cache.mode is off
	Monitor *monitor.Monitor

	log    zerolog.Logger
	mu     sync.Mutex
	engine *rewrite.Engine
	// ReloadFunc is what POST /api/v1/reload calls (cmd/sluice re-reads
	// the file); nil refuses.
	ReloadFunc func() error
}

// New builds an instance from a validated config; nothing listens yet.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	srv, err := proxy.New(cfg.Config, log)
	if err != nil {
		return nil, err
	}
	engine, err := rewrite.NewEngine(cfg.Rewrite)
	if err != nil {
		return nil, err
	}
	srv.SetRewriter(engine)
	a := &App{Proxy: srv, engine: engine, log: log}
	if cfg.Cache.Mode != resultcache.ModeOff {
		a.Cache, err = resultcache.New(cfg.Cache, resultcache.Deps{
			Dial:            srv.DialDatabase,
			DialReplication: srv.DialReplication,
			Logger:          log.With().Str("component", "resultcache").Logger(),
		})
		if err != nil {
			return nil, err
		}
		srv.SetCache(a.Cache)
	}
	deps := monitor.Deps{
		Source:    srv,
		Dial:      srv.DialDatabase,
		Databases: srv.Databases,
		Ready:     srv.Ready,
		Reload: func() error {
			if a.ReloadFunc == nil {
				return errors.New("reload is not available")
			}
			return a.ReloadFunc()
		},
		Log: log.With().Str("component", "monitor").Logger(),
	}
	if a.Cache != nil {
		deps.Purge = a.purge
		deps.CacheStats = cacheStats
		if rdb := a.Cache.Redis(); rdb != nil {
			deps.RedisStats = monitor.RedisProbe(rdb, redisErrors, a.Cache.Subscribed)
		}
	}
	if wd, err := os.Getwd(); err == nil {
		deps.DataPaths = []string{wd}
	}
	a.Monitor, err = monitor.New(cfg.Monitor, deps)
	if err != nil {
		return nil, err
	}
	srv.SetRecorder(a.Monitor.Recorder())
	return a, nil
}

// Start binds the client and admin listeners (port 0 allowed) and starts
// background work; Serve then accepts clients.
func (a *App) Start(ctx context.Context) (client, admin net.Addr, err error) {
	if err := a.Proxy.Listen(); err != nil {
		return nil, nil, err
	}
	admin, err = a.Monitor.Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	return a.Proxy.Addr(), admin, nil
}

// Serve accepts clients until Shutdown.
func (a *App) Serve() error { return a.Proxy.Serve() }

// Reload applies a new config: rules first (an invalid rule keeps
// everything as it was), then pools, then monitor settings.
func (a *App) Reload(cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next, err := a.engine.Reload(cfg.Rewrite)
	if err != nil {
		return err
	}
	if err := a.Proxy.Reload(cfg.Config); err != nil {
		return err
	}
	a.Proxy.SetRewriter(next)
	a.engine = next
	if err := a.Monitor.Reconfigure(cfg.Monitor); err != nil {
		a.log.Warn().Err(err).Msg("monitor settings not reloaded")
	}
	return nil
}

// Shutdown drains clients (see proxy.Server.Shutdown) and stops the rest.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.Proxy.Shutdown(ctx)
	a.Monitor.Close()
	if a.Cache != nil {
		a.Cache.Close()
	}
	return err
}
