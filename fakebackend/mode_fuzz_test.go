package fakebackend

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// patience bounds waits for what should happen at once.
const patience = 5 * time.Second

// FuzzModeSequence switches a backend through any sequence of modes and
// checks after each switch that the mode holds (Serve answers, Refuse
// refuses at once, Blackhole lets connects time out), and at the end that
// a connection the backend has nothing to do with still works: a mode
// switch must release exactly what it holds, never another socket of the
// process (a stale file descriptor closed twice closes whatever reused its
// number: the soak test found Refuse, Serve, Refuse doing that).
func FuzzModeSequence(f *testing.F) {
	f.Add([]byte{1, 0, 1})
	f.Add([]byte{2, 0, 2, 1, 0, 1, 2})
	f.Add([]byte{1, 1, 2, 2, 0, 0})
	f.Fuzz(func(t *testing.T, seq []byte) {
		if runtime.GOOS != "linux" {
			t.Skip("Refuse and Blackhole hold the port on Linux only")
		}
		if len(seq) > 12 {
			seq = seq[:12]
		}
		s, err := Start("modes")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		a, b := bystander(t)
		// Sockets come and go meanwhile, as they do in a busy process: a
		// descriptor closed twice is soon reused by one of them.
		stop, churned := make(chan struct{}), make(chan error, 1)
		go func() { churned <- churn(stop) }()
		// The sequence runs a few times over: whether a stale descriptor
		// meets a reused one is a race, lost in most single runs.
		seq = slices.Repeat(seq, 4)
		for i, x := range seq {
			m := []Mode{Serve, Refuse, Blackhole}[int(x)%3]
			if err := s.SetMode(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			// What holds the port is exactly what the mode needs: a hold
			// kept past its Close is closed again by the next switch.
			s.mu.Lock()
			ln, hold := s.ln, s.hold
			s.mu.Unlock()
			if (ln != nil) != (m == Serve) || (hold != nil) == (m == Serve) {
				t.Fatalf("after %d switches (%v), mode %s: listener %v, port hold %v", i+1, seq[:i+1], m, ln != nil, hold != nil)
			}
			if err := holds(s, m); err != nil {
				t.Fatalf("after %d switches (%v), mode %s: %v", i+1, seq[:i+1], m, err)
			}
		}
		close(stop)
		if err := <-churned; err != nil {
			t.Fatalf("a connection of the process broke during modes %v: %v", seq, err)
		}
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatalf("an unrelated connection broke after modes %v: %v", seq, err)
		}
		buf := make([]byte, 1)
		b.SetReadDeadline(time.Now().Add(patience))
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatalf("an unrelated connection broke after modes %v: %v", seq, err)
		}
	})
}

// churn opens, uses and closes loopback connections until stop.
func churn(stop <-chan struct{}) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(patience))
				io.Copy(c, c)
			}()
		}
	}()
	buf := make([]byte, 4)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c, err := net.DialTimeout("tcp", ln.Addr().String(), patience)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(patience))
		_, err = io.WriteString(c, "ping")
		if err == nil {
			_, err = io.ReadFull(c, buf)
		}
		c.Close()
		if err != nil {
			return err
		}
	}
}

// bystander is a loopback connection pair the backend never touches.
func bystander(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// holds checks that s behaves as mode m says.
func holds(s *Server, m Mode) error {
	switch m {
	case Serve:
		c, err := net.DialTimeout("tcp", s.Addr(), patience)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(patience))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		head := make([]byte, 12)
		if _, err := io.ReadFull(c, head); err != nil || string(head) != "HTTP/1.1 200" {
			return errors.Join(errors.New("no 200 in Serve: "+string(head)), err)
		}
	case Refuse:
		c, err := net.DialTimeout("tcp", s.Addr(), patience)
		if err == nil {
			c.Close()
			return errors.New("connect succeeded")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
	case Blackhole:
		c, err := net.DialTimeout("tcp", s.Addr(), 50*time.Millisecond)
		if err == nil {
			c.Close()
			return errors.New("connect succeeded")
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
	return nil
}
