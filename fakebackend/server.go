package fakebackend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Server is a fake backend running in this process, listening on loopback,
// in the manner of httptest.Server. It implements Backend; its methods never
// fail for reasons of distance, only for bad input or after Close.
//
// Each connection is served by one goroutine that reads a request, answers
// it, and reads the next (keep-alive). Every request is recorded, whatever
// it looks like, and takes the next behaviour (the queue's head, else the
// default), so the i-th queued behaviour meets the i-th request. Then:
//
//   - a request whose body cannot be delimited (conflicting or invalid
//     Content-Length, Transfer-Encoding not ending in chunked, a bad chunk)
//     or that exceeds a limit is answered by the backend itself, 400, 413 or
//     431 with the violations in a text body, and the connection closed
//     (RFC 9112 §6.3): nothing after it on the wire can be trusted;
//   - a request cut short by the peer is recorded (RuleIncompleteHead,
//     RuleIncompleteBody) and not answered: there is nobody to answer;
//   - otherwise the behaviour answers, and the connection stays open unless
//     the request said Connection: close (or was HTTP/1.0 without
//     keep-alive), the request's framing was suspect, the behaviour says
//     Close or Framing "close", or a fault ends it.
//
// When the backend closes a connection it sends FIN and then waits up to a
// second for the peer's, discarding input, so that unread request bytes do
// not turn the close into a reset that destroys the response in flight.
//
// ResetBeforeRequest at the head of the queue is taken by the next
// connection accepted, which is reset before anything is read. Taken instead
// by a request on a connection accepted earlier, it resets that connection
// at once.
type Server struct {
	name string
	cfg  config
	addr *net.TCPAddr // the bound address, kept across mode switches
	url  string

	// modeMu serializes what replaces the listener: SetMode, Reset, Close.
	// It is held while waiting for the accept loop to exit, which takes mu,
	// so it must never be taken under mu.
	modeMu sync.Mutex

	mu        sync.Mutex
	closed    bool
	mode      Mode
	ln        net.Listener
	accepting chan struct{} // closed when the accept loop of ln returns
	hold      *portHold     // the socket holding the port in Refuse and Blackhole
	conns     map[*conn]struct{}
	def       Behaviour
	queue     []Behaviour

	rec recorder
	wg  sync.WaitGroup // connection goroutines
}

var _ Backend = (*Server)(nil)

// ErrClosed is returned by the methods of a closed Server that change it.
var ErrClosed = errors.New("fakebackend: server closed")

// Option configures Start.
type Option func(*config)

type config struct {
	addr    string
	maxHead int
	maxBody int64
}

// WithAddr sets the address to listen on, "127.0.0.1:0" by default. Use a
// fixed port when a proxy's configuration must be written before the backend
// starts; use "[::1]:0" to test IPv6.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithMaxHead caps the size of a request head (request line and fields),
// 1 MiB by default. A larger head is answered 431 and recorded as
// RuleHeadTooLarge.
func WithMaxHead(n int) Option { return func(c *config) { c.maxHead = n } }

// WithMaxBody caps the size of a request body, 64 MiB by default. A larger
// body is answered 413 and recorded as RuleBodyTooLarge.
func WithMaxBody(n int64) Option { return func(c *config) { c.maxBody = n } }

// Start starts a fake backend called name; it serves until Close.
func Start(name string, opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0", maxHead: 1 << 20, maxBody: 64 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxHead <= 0 || cfg.maxBody < 0 {
		return nil, fmt.Errorf("fakebackend: start %q: limits must be positive (head %d, body %d)", name, cfg.maxHead, cfg.maxBody)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("fakebackend: start %q: %w", name, err)
	}
	s := &Server{
		name:  name,
		cfg:   cfg,
		addr:  ln.Addr().(*net.TCPAddr),
		mode:  Serve,
		conns: make(map[*conn]struct{}),
	}
	s.url = "http://" + s.addr.String()
	s.serve(ln)
	return s, nil
}

// MustStart is Start that panics on error, for tests.
func MustStart(name string, opts ...Option) *Server {
	s, err := Start(name, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Name implements Backend.
func (s *Server) Name() string { return s.name }

// URL implements Backend.
func (s *Server) URL() string { return s.url }

// Addr implements Backend.
func (s *Server) Addr() string { return s.addr.String() }

// Requests implements Backend. The records share their byte slices with the
// backend: do not modify them.
func (s *Server) Requests(context.Context) ([]Request, error) { return s.rec.snapshot().reqs, nil }

// WaitRequests implements Backend. When ctx ends first it returns what was
// recorded so far along with ctx's error.
func (s *Server) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	snap, err := s.rec.waitFor(ctx, func(got int, _ []Conn, _ Stats) bool { return got >= n })
	if err != nil {
		return snap.reqs, fmt.Errorf("fakebackend: %s: waiting for %d requests, got %d: %w", s.name, n, len(snap.reqs), err)
	}
	return snap.reqs, nil
}

// WaitConns blocks until cond holds for the connections recorded (a close,
// say) or ctx ends, and returns them: an event to await, not a state to poll.
// cond runs under the recorder's lock and must not keep the slice.
func (s *Server) WaitConns(ctx context.Context, cond func([]Conn) bool) ([]Conn, error) {
	snap, err := s.rec.waitFor(ctx, func(_ int, conns []Conn, _ Stats) bool { return cond(conns) })
	return snap.conns, err
}

// Conns implements Backend.
func (s *Server) Conns(context.Context) ([]Conn, error) { return s.rec.snapshot().conns, nil }

// Stats implements Backend.
func (s *Server) Stats(context.Context) (Stats, error) { return s.rec.snapshot().stats, nil }

// SetDefault implements Backend.
func (s *Server) SetDefault(_ context.Context, b Behaviour) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("fakebackend: %s: default: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.def = b
	return nil
}

// Enqueue implements Backend. Either all of bs are queued or, when one is
// invalid, none.
func (s *Server) Enqueue(_ context.Context, bs ...Behaviour) error {
	for i, b := range bs {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("fakebackend: %s: behaviour %d: %w", s.name, i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.queue = append(s.queue, bs...)
	return nil
}

// next returns the behaviour for the next request.
func (s *Server) next() Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return s.def
	}
	b := s.queue[0]
	s.queue[0] = Behaviour{}
	s.queue = s.queue[1:]
	return b
}

// resetOnAccept reports whether a newly accepted connection is to be reset
// at once, taking the queued behaviour that says so. Called with mu held.
func (s *Server) resetOnAccept() bool {
	if len(s.queue) == 0 {
		return s.def.Fault == ResetBeforeRequest
	}
	if s.queue[0].Fault != ResetBeforeRequest {
		return false
	}
	s.queue = s.queue[1:]
	return true
}

// SetMode implements Backend.
func (s *Server) SetMode(_ context.Context, m Mode) error {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if err := s.switchMode(m); err != nil {
		return fmt.Errorf("fakebackend: %s: %w", s.name, err)
	}
	return nil
}

// Reset implements Backend. It also closes every open connection (a
// hanging or slow answer ends there), and returns once their goroutines have
// exited, so nothing of the previous test is left running.
func (s *Server) Reset(context.Context) error {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if err := s.switchMode(Serve); err != nil {
		return fmt.Errorf("fakebackend: %s: reset: %w", s.name, err)
	}
	s.mu.Lock()
	conns := s.takeConns()
	s.def, s.queue = Behaviour{}, nil
	s.rec.reset()
	s.mu.Unlock()
	shutdown(conns)
	return nil
}

// Close implements Backend. It closes the listener and every connection and
// waits for all goroutines it started.
func (s *Server) Close() error {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln, done, hold := s.ln, s.accepting, s.hold
	s.ln, s.hold = nil, nil
	conns := s.takeConns()
	s.mu.Unlock()

	var err error
	if ln != nil {
		err = ln.Close()
		<-done
	}
	if hold != nil {
		err = errors.Join(err, hold.Close())
	}
	shutdown(conns)
	s.wg.Wait()
	return err
}

// takeConns empties the set of open connections. Called with mu held.
func (s *Server) takeConns() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	clear(s.conns)
	return conns
}

// shutdown closes conns and waits for their goroutines.
func shutdown(conns []*conn) {
	for _, c := range conns {
		c.shutdown()
	}
	for _, c := range conns {
		<-c.done
	}
}

// serve starts accepting on ln. Called with modeMu held (or before s is
// shared).
func (s *Server) serve(ln net.Listener) {
	done := make(chan struct{})
	s.mu.Lock()
	s.ln, s.accepting = ln, done
	s.mu.Unlock()
	go s.accept(ln, done)
}

func (s *Server) accept(ln net.Listener, done chan struct{}) {
	defer close(done)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or the like: back off as net/http
			// does rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.start(nc)
	}
}

// start registers nc and starts its goroutine.
func (s *Server) start(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	c := newConn(s, nc)
	c.id, c.epoch = s.rec.open(c.remote, time.Now())
	s.conns[c] = struct{}{}
	reset := s.resetOnAccept()
	s.wg.Add(1)
	go c.serve(reset)
}

// forget removes c from the open connections.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
