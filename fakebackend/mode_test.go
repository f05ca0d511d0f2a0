package fakebackend_test

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func setMode(t *testing.T, s *fakebackend.Server, m fakebackend.Mode) {
	t.Helper()
	if err := s.SetMode(ctx(t), m); err != nil {
		t.Fatal(err)
	}
}

func assertServes(t *testing.T, s *fakebackend.Server) {
	t.Helper()
	if resp, _ := dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
}

func TestRefuse(t *testing.T) {
	s := start(t)
	addr := s.Addr()
	open := dial(t, s) // accepted before the switch: still served
	setMode(t, s, fakebackend.Refuse)

	_, err := net.DialTimeout("tcp", addr, patience)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial in Refuse: %v, want ECONNREFUSED", err)
	}
	if resp, _ := open.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}

	setMode(t, s, fakebackend.Serve)
	if s.Addr() != addr {
		t.Fatalf("address moved from %s to %s", addr, s.Addr())
	}
	assertServes(t, s)
}

func TestRefuseKeepsThePort(t *testing.T) {
	linuxOnly(t)
	// On a port that never carried a connection, Refuse holds it without
	// SO_REUSEADDR, so even net.Listen (which sets it) cannot take it.
	s := start(t)
	setMode(t, s, fakebackend.Refuse)
	if ln, err := net.Listen("tcp", s.Addr()); err == nil {
		ln.Close()
		t.Fatal("port free to take in Refuse")
	}
	setMode(t, s, fakebackend.Serve)
	assertServes(t, s)
}

func TestBlackhole(t *testing.T) {
	linuxOnly(t)
	const connectTimeout = 200 * time.Millisecond
	s := start(t)
	open := dial(t, s)
	setMode(t, s, fakebackend.Blackhole)

	began := time.Now()
	_, err := net.DialTimeout("tcp", s.Addr(), connectTimeout)
	took := time.Since(began)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial in Blackhole: %v, want a timeout", err)
	}
	if took < connectTimeout {
		t.Fatalf("dial gave up after %v, before its %v timeout", took, connectTimeout)
	}
	if resp, _ := open.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}

	setMode(t, s, fakebackend.Serve)
	assertServes(t, s)
}

func TestModeSwitchesInAnyOrder(t *testing.T) {
	linuxOnly(t)
	s := start(t)
	for _, m := range []fakebackend.Mode{fakebackend.Refuse, fakebackend.Blackhole, fakebackend.Refuse, fakebackend.Blackhole, fakebackend.Blackhole} {
		setMode(t, s, m)
	}
	if err := s.Reset(ctx(t)); err != nil {
		t.Fatal(err)
	}
	assertServes(t, s)
	if err := s.SetMode(ctx(t), "sideways"); err == nil {
		t.Fatal("unknown mode accepted")
	}
	assertServes(t, s)
}

func TestCloseInEveryMode(t *testing.T) {
	linuxOnly(t)
	for _, m := range []fakebackend.Mode{fakebackend.Refuse, fakebackend.Blackhole} {
		s, err := fakebackend.Start("m")
		if err != nil {
			t.Fatal(err)
		}
		addr := s.Addr()
		setMode(t, s, m)
		if err := s.Close(); err != nil {
			t.Fatalf("Close in %s: %v", m, err)
		}
		// The port is released.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port still held after Close in %s: %v", m, err)
		}
		ln.Close()
	}
}

func TestIPv6(t *testing.T) {
	linuxOnly(t)
	s, err := fakebackend.Start("v6", fakebackend.WithAddr("[::1]:0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer s.Close()
	assertServes(t, s)
	setMode(t, s, fakebackend.Refuse)
	if _, err := net.DialTimeout("tcp", s.Addr(), patience); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial in Refuse: %v", err)
	}
	setMode(t, s, fakebackend.Blackhole)
	if _, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
		t.Fatal("dial in Blackhole succeeded")
	}
	setMode(t, s, fakebackend.Serve)
	assertServes(t, s)
}

// linuxOnly skips tests of what only Linux provides: a held port in Refuse,
// and Blackhole.
func linuxOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux")
	}
}
