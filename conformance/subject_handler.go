package conformance

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

// Handler is a subject served in this process: for each topology, build
// returns the proxy as an http.Handler, which is served on a fresh
// 127.0.0.1 listener. lacks lists the features the handler cannot express.
func Handler(name string, build func(Topology) (http.Handler, error), lacks ...Feature) Subject {
	return &handlerSubject{name: name, build: build, lacks: lacks}
}

type handlerSubject struct {
	name  string
	build func(Topology) (http.Handler, error)
	lacks []Feature
}

func (s *handlerSubject) Name() string     { return s.name }
func (s *handlerSubject) Lacks() []Feature { return s.lacks }

func (s *handlerSubject) Start(ctx context.Context, t Topology) (Instance, error) {
	h, err := s.build(t)
	if err != nil {
		return nil, &StartError{Subject: s.name, Err: fmt.Errorf("building the handler: %w", err)}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, &StartError{Subject: s.name, Err: fmt.Errorf("listening: %w", err)}
	}
	out := newTail(outputLimit)
	srv := &http.Server{
		Handler: h,
		// Bounds against a client that never finishes its head; no write
		// timeout, since specs stream slow bodies on purpose.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          log.New(out, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "serve: %v\n", err)
		}
	}()
	return &handlerInstance{srv: srv, addr: ln.Addr().String(), out: out, done: done}, nil
}

type handlerInstance struct {
	srv  *http.Server
	addr string
	out  *tail
	done chan struct{}
}

func (i *handlerInstance) Addr() string   { return i.addr }
func (i *handlerInstance) Output() string { return i.out.String() }

// Stop shuts the server down gracefully for up to stopGrace (or ctx), then
// closes whatever is left: a handler stuck on a hanging backend must not
// hold the run.
func (i *handlerInstance) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	err := i.srv.Shutdown(ctx)
	if err != nil {
		err = i.srv.Close()
	}
	<-i.done
	return err
}
