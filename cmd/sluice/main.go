// Command sluice is the Sluice PostgreSQL proxy: it loads the config,
// wires the packages together and handles signals. Everything else lives in
// the packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/config"
	"github.com/sluice-proxy/sluice/proxy"
	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check-config" {
		return checkConfig(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "config.yaml", "path to the YAML config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "sluice", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %s: invalid config:\n%v\n", *cfgPath, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	srv, err := proxy.New(cfg.Config, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	engine, err := rewrite.NewEngine(cfg.Rewrite)
	if err != nil {
		log.Error().Err(err).Msg("cannot start: rules")
		return 1
	}
	srv.SetRewriter(engine)
	cache, err := newCache(cfg, srv, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start: cache")
		return 1
	}
	if cache != nil {
		defer cache.Close()
		srv.SetCache(cache)
	}
	if err := srv.Listen(); err != nil {
		log.Error().Err(err).Msg("cannot listen")
		return 1
	}
	log.Info().Str("addr", srv.Addr().String()).Str("version", version).Msg("listening")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error().Err(err).Msg("listener failed")
				return 1
			}
			return 0
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				engine = reload(*cfgPath, srv, engine, log)
				continue
			}
			log.Info().Str("signal", sig.String()).Msg("shutting down")
			timeout := srv.ShutdownTimeout()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			srv.Shutdown(ctx)
			cancel()
			log.Info().Msg("stopped")
			return 0
		}
	}
}

// reload applies a changed config file; an invalid one keeps the old
// config and says why.
func reload(path string, srv *proxy.Server, engine *rewrite.Engine, log zerolog.Logger) *rewrite.Engine {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error().Err(err).Msg("reload refused: invalid config, keeping the old one")
		return engine
	}
	next, err := engine.Reload(cfg.Rewrite)
	if err != nil {
		log.Error().Err(err).Msg("reload refused: rules, keeping the old config")
		return engine
	}
	if err := srv.Reload(cfg.Config); err != nil {
		log.Error().Err(err).Msg("reload refused, keeping the old config")
		return engine
	}
	srv.SetRewriter(next)
	return next
}

// checkConfig validates a file and prints every problem with its key.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path to the YAML config file (or give it as the argument)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := *cfgPath
	if path == "" && fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	if path == "" {
		path = "config.yaml"
	}
	if _, err := config.Load(path); err != nil {
		fmt.Fprintf(stderr, "%s: invalid:\n%v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func newLogger(c config.LogConfig, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	out := w
	console := c.Format == "console"
	if c.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

// newCache builds the result cache unless cache.mode is off.
func newCache(cfg *config.Config, srv *proxy.Server, log zerolog.Logger) (*resultcache.Cache, error) {
	if cfg.Cache.Mode == resultcache.ModeOff {
		return nil, nil
	}
	return resultcache.New(cfg.Cache, resultcache.Deps{
		Dial:            srv.DialDatabase,
		DialReplication: srv.DialReplication,
		Logger:          log.With().Str("component", "resultcache").Logger(),
	})
}
