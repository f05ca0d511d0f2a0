package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// seen is one request as a raw backend received it.
type seen struct {
	head string // request line and header fields, as on the wire
	req  *http.Request
	body []byte
	err  error // reading the body
}

// rawBackend is a TCP backend that records each request's head byte for
// byte and lets the test decide what goes back on the wire.
type rawBackend struct {
	ln   net.Listener
	reqs chan seen
}

// startRaw starts a raw backend whose connections are served by answer,
// after the request (head and body) has been read and recorded. A nil
// answer writes a small 200 response.
func startRaw(t *testing.T, answer func(c net.Conn, s seen)) *rawBackend {
	t.Helper()
	if answer == nil {
		answer = func(c net.Conn, _ seen) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
		}
	}
	b := &rawBackend{reqs: make(chan seen, 64)}
	b.ln = serveConns(t, func(c net.Conn, _ int) {
		s, ok := readRequest(c)
		if !ok {
			return
		}
		b.reqs <- s
		answer(c, s)
	})
	return b
}

// serveConns listens on a loopback port and serves each connection with
// handle on its own goroutine, n counting connections from 1 in accept
// order; the connection is closed when handle returns. Cleanup closes the
// listener and every open connection, and waits for the handlers to end.
func serveConns(t *testing.T, handle func(c net.Conn, n int)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c, n)
			}()
		}
	}()
	return ln
}

func (b *rawBackend) url() string { return "http://" + b.ln.Addr().String() }

// next returns the next recorded request or fails after d.
func (b *rawBackend) next(t *testing.T, d time.Duration) seen {
	t.Helper()
	select {
	case s := <-b.reqs:
		return s
	case <-time.After(d):
		t.Fatalf("backend %s got no request within %v", b.ln.Addr(), d)
		return seen{}
	}
}

// none asserts that the backend has received no request so far.
func (b *rawBackend) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-b.reqs:
		t.Fatalf("backend %s got an unexpected request:\n%s", b.ln.Addr(), s.head)
	default:
	}
}

func readRequest(c net.Conn) (seen, bool) {
	br := bufio.NewReader(c)
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return seen{}, false
		}
		if line == "\r\n" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head.Bytes()), br)))
	if err != nil {
		return seen{head: head.String(), err: err}, true
	}
	body, err := io.ReadAll(req.Body)
	return seen{head: head.String(), req: req, body: body, err: err}, true
}

// earlyBackend starts a raw keep-alive backend that writes answer as soon as
// a request's head has arrived, before its body, then reads the body as it
// comes. It returns the backend's URL, and the connection (from 1, in
// accept order) each request arrived on.
func earlyBackend(t *testing.T, answer string) (string, <-chan int) {
	t.Helper()
	conns := make(chan int, 64)
	ln := serveConns(t, func(c net.Conn, n int) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			conns <- n
			io.WriteString(c, answer)
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
	return "http://" + ln.Addr().String(), conns
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	// A socket bound but never listening holds the port for the whole test,
	// so connects are refused (RST) and no other listener on the machine
	// can be handed the port: a closed listener's port could be.
	_, addr := boundSocket(t)
	return "http://" + addr
}

// blackhole returns a loopback address whose connects hang: a fake
// backend in Blackhole mode, which checks that its accept queue is full
// rather than inferring it from a dial timing out.
func blackhole(t *testing.T) string {
	t.Helper()
	be, err := fakebackend.Start("blackhole")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if err := be.SetMode(t.Context(), fakebackend.Blackhole); err != nil {
		t.Fatal(err)
	}
	return be.URL()
}

// boundSocket returns a TCP socket bound to a free loopback port, closed
// when the test ends, and its host:port.
func boundSocket(t *testing.T) (int, string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// logSink collects a proxy's log records.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve starts the proxy on a loopback server and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// newProxy builds a proxy with a silent logger unless opts set one.
func newProxy(t *testing.T, backends []string, opts ...Option) *ReverseProxy {
	t.Helper()
	opts = append([]Option{WithLogger(discard())}, opts...)
	p, err := New(backends, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// client is a plain client that never uses an environment proxy.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	return do(t, httptestRequest(t, http.MethodGet, url, nil))
}

func httptestRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

// rawExchange sends raw bytes to addr and returns everything read until the
// server closes the connection or d passes.
func rawExchange(t *testing.T, addr, request string, d time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
