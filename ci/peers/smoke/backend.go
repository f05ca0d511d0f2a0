package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// seen is one request as a backend received it.
type seen struct {
	Backend string
	Method  string
	Path    string
	Proto   string
	Host    string
	Header  http.Header
}

// backends records every request all of one check's backends received, in
// arrival order.
type backends struct {
	mu     sync.Mutex
	seen   []seen
	delay  time.Duration // before the response header, for read timeouts
	closed []func()
}

func (bs *backends) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bs.mu.Lock()
		bs.seen = append(bs.seen, seen{name, r.Method, r.URL.RequestURI(), r.Proto, r.Host, r.Header.Clone()})
		delay := bs.delay
		bs.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		// Written by hand: net/http replaces a handler's Connection header
		// with "close" on a closing connection, and the check needs one that
		// names a hop-by-hop header a proxy must drop (RFC 9110 §7.6.1).
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nX-Backend: %s\r\nCache-Control: no-store\r\n"+
			"Connection: X-Resp-Hop, close\r\nX-Resp-Hop: leak\r\nContent-Length: %d\r\n\r\n%s",
			name, len(name), name)
		_ = buf.Flush()
	})
}

// up starts a backend on 127.0.0.1 and returns its address.
func (bs *backends) up(name string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: bs.handler(name), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	bs.closed = append(bs.closed, func() { srv.Close() })
	return l.Addr().String(), nil
}

// down returns an address on which nothing listens: connects are refused.
func (bs *backends) down() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// blackhole returns an address whose accept queue is full and never drained,
// so further connects neither succeed nor get refused: they time out.
func (bs *backends) blackhole() (string, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return "", err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return "", err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return "", err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	var fill []net.Conn
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	bs.closed = append(bs.closed, func() {
		for _, c := range fill {
			c.Close()
		}
		syscall.Close(fd)
	})
	return addr, nil
}

func (bs *backends) received() []seen {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return append([]seen(nil), bs.seen...)
}

func (bs *backends) reset() {
	bs.mu.Lock()
	bs.seen = nil
	bs.mu.Unlock()
}

func (bs *backends) close() {
	for _, c := range bs.closed {
		c()
	}
}
