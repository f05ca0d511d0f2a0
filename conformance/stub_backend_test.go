package conformance

// A stand-in for fakebackend.Start until it lands: net/http based, so it
// records a parsed view only, answers 200, and supports Serve and Refuse.
// TODO(conformance): delete once fakebackend.Start exists.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() { startInProcess = startStub }

type stubBackend struct {
	name, addr string
	mu         sync.Mutex
	reqs       []fakebackend.Request
	srv        *http.Server
	done       chan struct{}
}

func startStub(name string) (fakebackend.Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &stubBackend{name: name, addr: ln.Addr().String()}
	s.serve(ln)
	return s, nil
}

func (s *stubBackend) serve(ln net.Listener) {
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var fs []fakebackend.Field
		fs = append(fs, fakebackend.Field{Name: "Host", Value: r.Host})
		for k, vs := range r.Header {
			for _, v := range vs {
				fs = append(fs, fakebackend.Field{Name: k, Value: v})
			}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, fakebackend.Request{Backend: s.name, Index: len(s.reqs), At: time.Now(),
			Method: r.Method, Target: r.RequestURI, Proto: r.Proto, Header: fs, Body: body})
		s.mu.Unlock()
		w.Header().Set("X-Proxyspec-Backend", s.name)
		w.Write([]byte("ok"))
	})}
	s.done = make(chan struct{})
	go func() { defer close(s.done); s.srv.Serve(ln) }()
}

func (s *stubBackend) Name() string { return s.name }
func (s *stubBackend) URL() string  { return "http://" + s.addr }
func (s *stubBackend) Addr() string { return s.addr }
func (s *stubBackend) Requests(context.Context) ([]fakebackend.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakebackend.Request(nil), s.reqs...), nil
}
func (s *stubBackend) WaitRequests(ctx context.Context, n int) ([]fakebackend.Request, error) {
	return nil, errors.New("stub")
}
func (s *stubBackend) Conns(context.Context) ([]fakebackend.Conn, error) { return nil, nil }
func (s *stubBackend) Stats(context.Context) (fakebackend.Stats, error) {
	return fakebackend.Stats{}, nil
}
func (s *stubBackend) SetDefault(context.Context, fakebackend.Behaviour) error { return nil }
func (s *stubBackend) Enqueue(context.Context, ...fakebackend.Behaviour) error { return nil }
func (s *stubBackend) Reset(context.Context) error                             { return nil }
func (s *stubBackend) SetMode(_ context.Context, m fakebackend.Mode) error {
	switch m {
	case fakebackend.Refuse:
		return s.Close()
	case fakebackend.Serve:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return err
		}
		s.serve(ln)
		return nil
	}
	return errors.New("stub: mode not supported")
}
func (s *stubBackend) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
