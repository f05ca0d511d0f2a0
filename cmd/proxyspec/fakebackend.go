package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	register(command{
		name:    "fakebackend",
		summary: "serve a fake backend and its control API, as a process or in a container",
		run:     runFakebackend,
	})
}

// shutdownGrace bounds how long control calls in flight get to finish on
// SIGTERM; long waits (GET /requests?wait=N) are cut short at once.
const shutdownGrace = 5 * time.Second

// runFakebackend serves one fake backend until ctx ends. Once both listeners
// are bound it prints one line a supervisor can parse:
//
//	listening data=127.0.0.1:9001 control=127.0.0.1:9101 name=b1
func runFakebackend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxyspec fakebackend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "data-plane `address` the proxy under test connects to")
	control := fs.String("control", "127.0.0.1:0", "control API `address` (see fakebackend.ControlHandler)")
	name := fs.String("name", "backend", "backend `name`, sent in the X-Proxyspec-Backend response header")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: proxyspec fakebackend [--listen ADDR] [--control ADDR] [--name NAME]")
		fmt.Fprintln(stderr, "\nServes a fake backend, driven through its control API, until SIGINT or SIGTERM.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyspec fakebackend: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	b, err := fakebackend.Start(*name, fakebackend.WithAddr(*listen))
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec fakebackend: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		b.Close()
		fmt.Fprintf(stderr, "proxyspec fakebackend: control listener: %v\n", err)
		return 2
	}

	// Handlers run under base, so that cancelling it ends long waits, which
	// Shutdown alone would wait for.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fresh freshConns
	srv := &http.Server{
		Handler:           fakebackend.ControlHandler(b),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnState:         fresh.track,
	}
	srv.RegisterOnShutdown(fresh.close)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening data=%s control=%s name=%s\n", b.Addr(), ln.Addr(), b.Name())

	code := 0
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "proxyspec fakebackend: control API: %v\n", err)
		code = 1
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := b.Close(); err != nil {
		fmt.Fprintf(stderr, "proxyspec fakebackend: close: %v\n", err)
		code = 1
	}
	return code
}
