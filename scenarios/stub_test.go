package scenarios

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// stub is a small fakebackend.Backend on net/http, enough for the executor's
// tests: records, default and queued behaviours with status, header, body
// and the faults the built-in scenarios use, and the serve and refuse modes.
type stub struct {
	name string
	addr string
	srv  *http.Server

	mu      sync.Mutex
	ln      net.Listener // nil while refusing
	reqs    []fakebackend.Request
	def     fakebackend.Behaviour
	queue   []fakebackend.Behaviour
	changed chan struct{} // closed and replaced on every record
}

var _ fakebackend.Backend = (*stub)(nil)

func startStub(t *testing.T, name string) *stub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{name: name, addr: ln.Addr().String(), changed: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	s.listen(ln)
	t.Cleanup(func() { s.Close() })
	return s
}

func (s *stub) listen(ln net.Listener) {
	s.ln = ln
	go s.srv.Serve(ln)
}

func (s *stub) Name() string { return s.name }
func (s *stub) URL() string  { return "http://" + s.addr }
func (s *stub) Addr() string { return s.addr }

func (s *stub) Requests(context.Context) ([]fakebackend.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakebackend.Request(nil), s.reqs...), nil
}

func (s *stub) WaitRequests(ctx context.Context, n int) ([]fakebackend.Request, error) {
	for {
		s.mu.Lock()
		reqs, changed := append([]fakebackend.Request(nil), s.reqs...), s.changed
		s.mu.Unlock()
		if len(reqs) >= n {
			return reqs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return reqs, ctx.Err()
		}
	}
}

func (s *stub) Conns(context.Context) ([]fakebackend.Conn, error) { return nil, nil }
func (s *stub) Stats(context.Context) (fakebackend.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakebackend.Stats{Requests: len(s.reqs)}, nil
}

func (s *stub) SetDefault(_ context.Context, b fakebackend.Behaviour) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = b
	return nil
}

func (s *stub) Enqueue(_ context.Context, bs ...fakebackend.Behaviour) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, bs...)
	return nil
}

func (s *stub) SetMode(_ context.Context, m fakebackend.Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m {
	case fakebackend.Serve:
		if s.ln == nil {
			ln, err := net.Listen("tcp", s.addr)
			if err != nil {
				return fmt.Errorf("stub %s: listening again on %s: %w", s.name, s.addr, err)
			}
			s.listen(ln)
		}
	case fakebackend.Refuse:
		if s.ln != nil {
			s.ln.Close()
			s.ln = nil
		}
	default:
		return fmt.Errorf("stub %s: mode %q not supported", s.name, m)
	}
	return nil
}

func (s *stub) Reset(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs, s.queue, s.def = nil, nil, fakebackend.Behaviour{}
	return nil
}

func (s *stub) Close() error { return s.srv.Close() }

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := fakebackend.Request{Backend: s.name, At: time.Now(), Method: r.Method, Target: r.RequestURI, Proto: r.Proto, Body: body}
	q.Header = append(q.Header, fakebackend.Field{Name: "Host", Value: r.Host})
	for name, vs := range r.Header {
		for _, v := range vs {
			q.Header = append(q.Header, fakebackend.Field{Name: name, Value: v})
		}
	}
	s.mu.Lock()
	q.Index = len(s.reqs)
	s.reqs = append(s.reqs, q)
	close(s.changed)
	s.changed = make(chan struct{})
	b := s.def
	if len(s.queue) > 0 {
		b, s.queue = s.queue[0], s.queue[1:]
	}
	s.mu.Unlock()

	text := fmt.Sprintf("%s %s from %s", r.Method, r.RequestURI, s.name)
	if b.Body != nil {
		text = *b.Body
	}
	status := b.Status
	if status == 0 {
		status = http.StatusOK
	}
	switch b.Fault {
	case fakebackend.NoFault:
		// Written raw: net/http's server would replace a Connection
		// header listing fields with its own.
		conn := hijack(w)
		fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
		for _, f := range b.Header {
			fmt.Fprintf(conn, "%s: %s\r\n", f.Name, f.Value)
		}
		fmt.Fprintf(conn, "X-Proxyspec-Backend: %s\r\nContent-Length: %d\r\n\r\n%s", s.name, len(text), text)
		conn.Close()
	case fakebackend.CloseBeforeResponse, fakebackend.ResetBeforeResponse:
		conn := hijack(w)
		if b.Fault == fakebackend.ResetBeforeResponse {
			conn.(*net.TCPConn).SetLinger(0)
		}
		conn.Close()
	case fakebackend.ResetMidBody:
		conn := hijack(w)
		half := text[:len(text)/2]
		if b.Framing == "chunked" {
			fmt.Fprintf(conn, "HTTP/1.1 %d OK\r\nTransfer-Encoding: chunked\r\nX-Proxyspec-Backend: %s\r\n\r\n%x\r\n%s\r\n", status, s.name, len(half), half)
		} else {
			fmt.Fprintf(conn, "HTTP/1.1 %d OK\r\nContent-Length: %d\r\nX-Proxyspec-Backend: %s\r\n\r\n%s", status, len(text), s.name, half)
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	case fakebackend.Hang:
		<-r.Context().Done()
	default:
		panic(fmt.Sprintf("stub: fault %q not supported", b.Fault))
	}
}

func hijack(w http.ResponseWriter) net.Conn {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	brw.Writer.Flush()
	return conn
}
