package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: the proxy's,
// wrapped as a kept connection to addr, and the backend's.
func tcpPair(t *testing.T, addr string) (*keptConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return newKeptConn(&upstreamConn{Conn: c, readTimeout: time.Minute, head: newConnectionWatch()}, addr), s
}

// closedByPeer reports whether the backend's end sees the proxy's end
// closed, waiting up to d: EOF, or a reset when the proxy closed with
// bytes unread.
func closedByPeer(t *testing.T, s net.Conn, d time.Duration) bool {
	t.Helper()
	s.SetReadDeadline(time.Now().Add(d))
	_, err := s.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestIdleConnsNewestFirstUpToMax(t *testing.T) {
	p := newIdleConns(2, time.Minute)
	defer p.closeAll()
	k1, _ := tcpPair(t, "a:80")
	k2, _ := tcpPair(t, "a:80")
	k3, s3 := tcpPair(t, "a:80")
	kb, _ := tcpPair(t, "b:80")
	p.put(k1)
	p.put(k2)
	p.put(k3) // over the limit for a:80
	p.put(kb)
	if !closedByPeer(t, s3, 5*time.Second) {
		t.Error("a connection over the per-backend limit was kept open")
	}
	for i, want := range []*keptConn{k2, k1, nil} {
		if got := p.get("a:80"); got != want {
			t.Fatalf("get %d: %p, want %p", i, got, want)
		}
	}
	if got := p.get("b:80"); got != kb {
		t.Errorf("b:80 gave %p, want its own connection %p", got, kb)
	}
}

func TestIdleConnsSkipsConnectionsTheBackendClosed(t *testing.T) {
	p := newIdleConns(4, time.Minute)
	defer p.closeAll()
	kOld, sOld := tcpPair(t, "a:80")
	kSent, sSent := tcpPair(t, "a:80")
	kLive, _ := tcpPair(t, "a:80")
	p.put(kLive)
	p.put(kOld)
	p.put(kSent)
	sOld.Close()                // the backend's idle timeout
	sSent.Write([]byte("HTTP")) // bytes nobody asked for: out of step
	// Loopback delivers the FIN and the bytes before Close and Write return.
	if got := p.get("a:80"); got != kLive {
		t.Fatalf("get: %p, want the one live connection %p", got, kLive)
	}
	if !closedByPeer(t, sSent, 5*time.Second) {
		t.Error("a connection with stray bytes was not closed")
	}
}

func TestIdleConnsExpire(t *testing.T) {
	const timeout = 20 * time.Millisecond
	p := newIdleConns(4, timeout)
	k, s := tcpPair(t, "a:80")
	p.put(k)
	// The wait is for the event; its bound only stops a broken pool from
	// hanging the test.
	if !closedByPeer(t, s, 5*time.Second) {
		t.Fatalf("an idle connection was still open 5 s after a %v idle timeout", timeout)
	}
	if got := p.get("a:80"); got != nil {
		t.Errorf("get after expiry: %p, want none", got)
	}
}

func TestIdleConnsCloseAll(t *testing.T) {
	p := newIdleConns(4, time.Minute)
	k, s := tcpPair(t, "a:80")
	p.put(k)
	p.closeAll()
	if !closedByPeer(t, s, 5*time.Second) {
		t.Error("closeAll left an idle connection open")
	}
	if got := p.get("a:80"); got != nil {
		t.Errorf("get after closeAll: %p, want none", got)
	}
}
