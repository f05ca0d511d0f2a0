package fakebackend_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// readAll reads until an error and returns what arrived and the error,
// io.EOF included.
func readAll(c *client) (string, error) {
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := c.br.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), err
		}
	}
}

const tenBytes = "0123456789"

func TestFaultsAreWhatTheyClaim(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nX-Proxyspec-Backend: b1\r\nCache-Control: no-store\r\nContent-Length: 10\r\n\r\n"
	const hangFor = 200 * time.Millisecond
	eof := func(err error) bool { return errors.Is(err, io.EOF) }
	reset := func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
	timeout := func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
	for _, tc := range []struct {
		fault   fakebackend.Fault
		want    string // bytes received before the error
		wantErr func(error) bool
		by      string // Conn.ClosedBy afterwards ("" when still open)
	}{
		{fakebackend.CloseBeforeResponse, "", eof, "backend"},
		{fakebackend.ResetBeforeResponse, "", reset, "backend"},
		{fakebackend.CloseAfterHeaders, head, eof, "backend"},
		{fakebackend.ResetAfterHeaders, head, reset, "backend"},
		{fakebackend.CloseMidBody, head + "01234", eof, "backend"},
		{fakebackend.ResetMidBody, head + "01234", reset, "backend"},
		{fakebackend.Hang, "", timeout, ""},
		{fakebackend.HangMidBody, head + "01234", timeout, ""},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			s := start(t)
			s.Enqueue(ctx(t), fakebackend.Behaviour{Body: fakebackend.Text(tenBytes), Fault: tc.fault})
			c := dial(t, s)
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(c.br, got); err != nil || string(got) != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
			if tc.by == "" {
				// Only a hang keeps the connection open: give up waiting
				// after hangFor. A backend that went on would have done so
				// in microseconds.
				c.nc.SetReadDeadline(time.Now().Add(hangFor))
			}
			if rest, err := readAll(c); rest != "" || !tc.wantErr(err) {
				t.Fatalf("after %q: got %q then %v, want the fault's error", tc.want, rest, err)
			}
			if tc.by == "" {
				c.nc.Close() // the peer goes away: the hang ends
				tc.by = "peer"
			}
			conns, err := s.WaitConns(ctx(t), func(cs []fakebackend.Conn) bool { return cs[0].Closed })
			if err != nil || conns[0].ClosedBy != tc.by || conns[0].Requests != 1 {
				t.Fatalf("conn: %+v, %v; want closed by %s", conns, err, tc.by)
			}
		})
	}
}

func TestResetBeforeRequest(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Fault: fakebackend.ResetBeforeRequest})
	// The RST may beat the dialler's own check of the connect (then Dial
	// reports it) or come after (then the read does); it is ECONNRESET
	// either way, never EOF or a timeout.
	nc, err := net.DialTimeout("tcp", s.Addr(), patience)
	if err == nil {
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(patience))
		nc.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
		var n int
		n, err = nc.Read(make([]byte, 1))
		if n != 0 {
			t.Fatalf("read %d bytes before the reset", n)
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want ECONNRESET", err)
	}
	// The behaviour was used up by that connection; the next one is served.
	if resp, _ := dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	reqs, _ := s.WaitRequests(ctx(t), 1)
	// The reset goes out before the backend records the close: wait for it.
	conns, _ := s.WaitConns(ctx(t), func(cs []fakebackend.Conn) bool { return len(cs) == 2 && cs[0].Closed })
	if len(reqs) != 1 || reqs[0].Conn != 2 || len(conns) != 2 || conns[0].ClosedBy != "backend" || conns[0].Requests != 0 {
		t.Fatalf("requests %+v, conns %+v", reqs, conns)
	}
}

func TestResetEndsAHang(t *testing.T) {
	s := start(t)
	s.SetDefault(ctx(t), fakebackend.Behaviour{Fault: fakebackend.Hang})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := s.WaitRequests(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(c); got != "" || !errors.Is(err, io.EOF) {
		t.Fatalf("got %q then %v, want EOF", got, err)
	}
}

func TestDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Delay: fakebackend.D(delay)})
	c := dial(t, s)
	sent := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := c.br.Peek(1); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(sent); waited < delay {
		t.Fatalf("first byte after %v, want at least %v", waited, delay)
	}
}

func TestSlowBody(t *testing.T) {
	const interval = 40 * time.Millisecond
	for _, framing := range []string{"length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			s := start(t)
			s.Enqueue(ctx(t), fakebackend.Behaviour{Body: fakebackend.Text(tenBytes), Framing: framing,
				SlowBody: &fakebackend.Slow{Bytes: 3, Interval: fakebackend.D(interval)}})
			c := dial(t, s)
			sent := time.Now()
			resp, body := c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			// Four pieces (3+3+3+1) with three pauses between them: the last
			// byte cannot arrive sooner.
			if took := time.Since(sent); string(body) != tenBytes || took < 3*interval {
				t.Fatalf("body %q after %v, want %q after at least %v", body, took, tenBytes, 3*interval)
			}
			if framing == "chunked" && resp.ContentLength != -1 {
				t.Fatalf("chunked framing gave Content-Length %d", resp.ContentLength)
			}
		})
	}
}

func TestSlowChunksArriveOneAtATime(t *testing.T) {
	// The pieces are events: after reading the first chunk, the second is
	// not there yet until the interval passed. We observe this with a read
	// deadline much shorter than the interval: it must expire. (Only a
	// reader stalled for most of the interval could see both at once; the
	// margin makes that a machine in distress, not a flake.)
	const interval = 600 * time.Millisecond
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Body: fakebackend.Text("aaabbb"), Framing: "chunked",
		SlowBody: &fakebackend.Slow{Bytes: 3, Interval: fakebackend.D(interval)}})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	readUntil(t, c, "\r\n\r\n3\r\naaa\r\n")
	c.nc.SetReadDeadline(time.Now().Add(interval / 12))
	if b, err := c.br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second chunk arrived with the first (%q, %v)", b, err)
	}
	c.nc.SetReadDeadline(time.Now().Add(patience))
	readUntil(t, c, "3\r\nbbb\r\n0\r\n\r\n")
}
