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
	"github.com/sluice-proxy/sluice/internal/app"
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
	procs := setThreads(cfg.Threads)
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	a.ReloadFunc = func() error { return reload(*cfgPath, a) }
	client, admin, err := a.Start(context.Background())
	if err != nil {
		log.Error().Err(err).Msg("cannot listen")
		return 1
	}
	log.Info().Str("addr", client.String()).Str("version", version).Int("threads", procs).Int("cpus", cpus).Msg("listening")
	log.Info().Str("addr", admin.String()).Msg("admin listening")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	served := make(chan error, 1)
	go func() { served <- a.Serve() }()
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
				if err := reload(*cfgPath, a); err != nil {
					log.Error().Err(err).Msg("reload refused, keeping the old config")
				} else {
					log.Info().Msg("config reloaded")
				}
				continue
			}
			log.Info().Str("signal", sig.String()).Msg("shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), a.Proxy.ShutdownTimeout())
			a.Shutdown(ctx)
			cancel()
			log.Info().Msg("stopped")
			return 0
		}
	}
}

// reload applies a changed config file; an invalid one keeps the old
// config.
func reload(path string, a *app.App) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if err := a.Reload(cfg); err != nil {
		return err
	}
	setThreads(cfg.Threads)
	return nil
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
