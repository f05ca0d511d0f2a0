package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/proxyspec/proxyspec/proxy"
)

func init() {
	register(command{
		name:    "proxy",
		summary: "serve the reference reverse proxy (flags or the PROXYSPEC_* environment)",
		run:     runProxy,
	})
}

// The reference proxy's own server limits. Its handler streams, so there is
// no overall read or write timeout: the request head is bounded as a whole,
// the request body gap by gap (see bodyGapTimeout).
const (
	proxyReadHeaderTimeout = 10 * time.Second
	proxyBodyGapTimeout    = 30 * time.Second
	proxyIdleTimeout       = 2 * time.Minute
	proxyMaxHeaderBytes    = 64 << 10
	proxyShutdownGrace     = 10 * time.Second
)

// proxySettings is the proxy's configuration after flags and environment.
type proxySettings struct {
	listen   string
	backends []string
	prefix   string
	connect  time.Duration
	read     time.Duration
	// Client-side limits: the whole request head, each gap in the body.
	readHeader time.Duration
	bodyGap    time.Duration
}

// runProxy serves the reference proxy until ctx ends, then shuts down
// gracefully. Once listening it prints one line:
//
//	listening 127.0.0.1:8080
func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, code := proxyConfig(args, os.LookupEnv, stderr)
	if code >= 0 {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := proxy.New(s.backends,
		proxy.WithPathPrefix(s.prefix),
		proxy.WithConnectTimeout(s.connect),
		proxy.WithReadTimeout(s.read),
		proxy.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec proxy: %v\n", err)
		return 2
	}
	if len(s.backends) == 0 {
		logger.Warn("no backends configured: every proxied request gets 502 Bad Gateway")
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec proxy: listen %q: %v\n", s.listen, err)
		return 2
	}
	var fresh freshConns
	srv := &http.Server{
		Handler:           bodyGapTimeout(p, s.bodyGap),
		ReadHeaderTimeout: s.readHeader,
		IdleTimeout:       proxyIdleTimeout,
		MaxHeaderBytes:    proxyMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnState:         fresh.track,
	}
	srv.RegisterOnShutdown(fresh.close)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	logger.Info("proxy started", "listen", ln.Addr().String(), "backends", strings.Join(s.backends, ","),
		"path_prefix", s.prefix, "connect_timeout", s.connect, "read_timeout", s.read)

	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "proxyspec proxy: serve: %v\n", err)
		return 1
	}
	// Finish the requests in flight, then stop; a stuck one is cut off.
	sctx, cancel := context.WithTimeout(context.Background(), proxyShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		logger.Warn("shutdown cut requests off", "error", err)
	}
	logger.Info("proxy stopped")
	return 0
}

// proxyConfig reads the flags and, for each flag not given, its PROXYSPEC_*
// variable. It returns code -1 to go on, or the exit status.
func proxyConfig(args []string, env func(string) (string, bool), stderr io.Writer) (proxySettings, int) {
	fs := flag.NewFlagSet("proxyspec proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s proxySettings
	var backends listFlag
	fs.StringVar(&s.listen, "listen", "127.0.0.1:8080", "`host:port` to listen on (env PROXYSPEC_LISTEN)")
	fs.Var(&backends, "backend", "backend `URL`, repeated, in order (env PROXYSPEC_BACKENDS, comma-separated)")
	fs.StringVar(&s.prefix, "path-prefix", "", "proxy only this `path` prefix; \"\" proxies everything (env PROXYSPEC_PATH_PREFIX)")
	fs.DurationVar(&s.connect, "connect-timeout", proxy.DefaultConnectTimeout, "TCP connect timeout per attempt (env PROXYSPEC_CONNECT_TIMEOUT_MS)")
	fs.DurationVar(&s.read, "read-timeout", proxy.DefaultReadTimeout, "wait for response headers and each body gap (env PROXYSPEC_READ_TIMEOUT_MS)")
	fs.DurationVar(&s.readHeader, "client-header-timeout", proxyReadHeaderTimeout, "wait for a client's whole request head")
	fs.DurationVar(&s.bodyGap, "client-body-timeout", proxyBodyGapTimeout, "wait for each part of a client's request body; 0 waits forever")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: proxyspec proxy [--listen ADDR] [--backend URL]... [--path-prefix P] [--connect-timeout D] [--read-timeout D]\n       [--client-header-timeout D] [--client-body-timeout D]")
		fmt.Fprintln(stderr, "\nServes the reference reverse proxy until SIGINT or SIGTERM. A flag not given")
		fmt.Fprintln(stderr, "is read from its PROXYSPEC_* variable; an empty or unset variable, or a")
		fmt.Fprintln(stderr, "timeout variable of 0, leaves the default.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s, 0
		}
		return s, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyspec proxy: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return s, 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	s.backends = backends

	fail := func(err error) (proxySettings, int) {
		fmt.Fprintf(stderr, "proxyspec proxy: %v\n", err)
		return s, 2
	}
	if v, ok := env("PROXYSPEC_LISTEN"); ok && v != "" && !given["listen"] {
		s.listen = v
	}
	if v, ok := env("PROXYSPEC_BACKENDS"); ok && v != "" && !given["backend"] {
		s.backends = strings.Split(v, ",")
	}
	if v, ok := env("PROXYSPEC_PATH_PREFIX"); ok && !given["path-prefix"] {
		s.prefix = v
	}
	for _, t := range []struct {
		flag, env string
		d         *time.Duration
	}{
		{"connect-timeout", "PROXYSPEC_CONNECT_TIMEOUT_MS", &s.connect},
		{"read-timeout", "PROXYSPEC_READ_TIMEOUT_MS", &s.read},
	} {
		if given[t.flag] {
			if *t.d <= 0 {
				return fail(fmt.Errorf("--%s %v: must be positive", t.flag, *t.d))
			}
			continue
		}
		v, ok := env(t.env)
		if !ok || v == "" || v == "0" {
			continue
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return fail(fmt.Errorf("%s=%q: want a whole number of milliseconds", t.env, v))
		}
		*t.d = time.Duration(ms) * time.Millisecond
	}
	if s.readHeader <= 0 {
		return fail(fmt.Errorf("--client-header-timeout %v: must be positive", s.readHeader))
	}
	if s.bodyGap < 0 {
		return fail(fmt.Errorf("--client-body-timeout %v: must be 0 or positive", s.bodyGap))
	}
	if _, _, err := net.SplitHostPort(s.listen); err != nil {
		return fail(fmt.Errorf("listen address %q: %w", s.listen, err))
	}
	return s, -1
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
