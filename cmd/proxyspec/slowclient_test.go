package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// slowMargin multiplies a configured timeout into the longest a test waits
// for it to fire.
const slowMargin = 5

func slowBackend(t *testing.T) *fakebackend.Server {
	t.Helper()
	be, err := fakebackend.Start("a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// trickle writes the head of a request, then one more byte of it (a header
// line or a body byte) every interval until the connection fails or stop
// is closed.
func trickle(c net.Conn, head, more string, interval time.Duration, stop <-chan struct{}) {
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := io.WriteString(c, more); err != nil {
				return
			}
		}
	}
}

// A client that sends its head a line at a time, never finishing it, is
// disconnected after the header timeout, and no backend ever hears of it.
func TestProxyCutsOffSlowHeaders(t *testing.T) {
	be := slowBackend(t)
	const timeout = 300 * time.Millisecond
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", be.URL(), "--client-header-timeout", timeout.String())

	// The server starts the header clock when it accepts, which can be
	// before Dial returns here, so the test's clock starts before Dial.
	start := time.Now()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		trickle(c, "GET / HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n", timeout/6, stop)
	}()
	c.SetReadDeadline(start.Add(slowMargin * timeout))
	_, err = io.Copy(io.Discard, c)
	elapsed := time.Since(start)
	close(stop)
	<-trickled
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a head trickled for %v was not cut off (header timeout %v)", elapsed, timeout)
	}
	if elapsed < timeout {
		t.Errorf("cut off after %v, before the header timeout %v", elapsed, timeout)
	}
	st, err := be.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Connections != 0 {
		t.Errorf("the backend got %d connections for a request whose head never ended", st.Connections)
	}
}

// A client that stalls in the middle of its body is cut off after the
// body gap timeout, and the backend connection the proxy opened to stream
// the body is closed then, not held for as long as the client likes.
func TestProxyCutsOffStalledBody(t *testing.T) {
	be := slowBackend(t)
	const gap = 300 * time.Millisecond
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", be.URL(), "--client-body-timeout", gap.String())

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	// The backend records the request once the proxy drops the upstream
	// connection with the body incomplete.
	ctx, cancel := context.WithTimeout(context.Background(), slowMargin*gap)
	defer cancel()
	reqs, err := be.WaitRequests(ctx, 1)
	if err != nil {
		t.Fatalf("the backend connection was still held %v after the client stalled (body gap timeout %v): %v", time.Since(start), gap, err)
	}
	if elapsed := time.Since(start); elapsed < gap {
		t.Errorf("the body was cut after %v, before the gap timeout %v", elapsed, gap)
	}
	r := reqs[0]
	if string(r.Body) != "0123456789" || !slices.ContainsFunc(r.Violations, func(v fakebackend.Violation) bool {
		return v.Rule == fakebackend.RuleIncompleteBody
	}) {
		t.Errorf("backend got body %q with violations %+v, want the 10 bytes sent, incomplete", r.Body, r.Violations)
	}
	if err := awaitClosed(be, slowMargin*gap); err != nil {
		t.Error(err)
	}
	// The client learns it too: 408, and the connection ends, for the rest
	// of the body could no longer be told from a next request.
	c.SetReadDeadline(time.Now().Add(slowMargin * gap))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to the stalled client: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !res.Close {
		t.Errorf("stalled client got status %d, Connection %q; want 408 and close", res.StatusCode, res.Header.Get("Connection"))
	}
	awaitEOF(t, br, "the stalled client's connection was left open")
}

// earlyBackend answers as soon as it has the request head, without reading
// the body, as a backend refusing an upload does.
func earlyBackend(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Without close, net/http would read the body before answering.
		w.Header().Set("Connection", "close")
		io.WriteString(w, "early")
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// A backend may answer before the body has all arrived. If the client
// then stalls, the connection must end once the gap timeout fires: left
// open, the rest of the body, sent later, would be read as a new request.
func TestProxyClosesAfterEarlyAnswerToStalledBody(t *testing.T) {
	const gap = 300 * time.Millisecond
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", earlyBackend(t), "--client-body-timeout", gap.String())

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	// One gap for the body read the proxy's transport had under way when
	// the answer came, one for the proxy's own read of what is left.
	c.SetReadDeadline(time.Now().Add(slowMargin * 2 * gap))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || string(body) != "early" {
		t.Fatalf("got %d %q (%v), want the backend's early 200 whole", res.StatusCode, body, err)
	}
	awaitEOF(t, br, "the connection of a client stalled after an early answer was left open")
}

// After an early answer the connection ends, whatever the client sends
// next: the proxy left the rest of the body unread and says close, so the
// rest can never be taken for a next request.
func TestProxyEndsConnectionAfterEarlyAnswer(t *testing.T) {
	const gap = 3 * time.Second
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", earlyBackend(t), "--client-body-timeout", gap.String())

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Well short of the gap: a connection left open would wait it out.
	c.SetDeadline(time.Now().Add(gap / 2))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || string(body) != "early" || !res.Close {
		t.Fatalf("got %d %q close=%v (%v), want the early 200 with Connection: close", res.StatusCode, body, res.Close, err)
	}
	io.WriteString(c, "0123456789GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
	awaitEOF(t, br, "the connection stayed open after an early answer that said close")
}

// awaitEOF fails the test unless the connection behind br ends (within the
// deadline already set on it) with no further byte.
func awaitEOF(t *testing.T, br *bufio.Reader, open string) {
	t.Helper()
	n, err := io.Copy(io.Discard, br)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Error(open)
	case n > 0:
		t.Errorf("%d bytes after the response", n)
	}
}

// The bound is per gap: a body that keeps coming, each part well within
// the gap timeout, goes through whole however long it takes in total.
func TestProxyKeepsSlowButLiveBody(t *testing.T) {
	be := slowBackend(t)
	// A part every gap/5 leaves the writer 2.4 s of slack for a pause.
	const gap = 3 * time.Second
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", be.URL(), "--client-body-timeout", gap.String())

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const parts = 8 // every gap/5: 1.6 times the gap in total
	if _, err := io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(gap / 5)
	defer tick.Stop()
	for range parts {
		<-tick.C
		if _, err := io.WriteString(c, "x"); err != nil {
			t.Fatalf("the proxy dropped a body arriving every %v (gap timeout %v): %v", gap/5, gap, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(slowMargin * gap))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to a slow but live body: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d for a slow but live body", res.StatusCode)
	}
	reqs, err := be.Requests(context.Background())
	if err != nil || len(reqs) != 1 || string(reqs[0].Body) != strings.Repeat("x", parts) {
		t.Fatalf("backend got %+v (%v), want one request with the whole body", reqs, err)
	}
}

// awaitClosed waits until every connection the backend accepted is closed.
func awaitClosed(be *fakebackend.Server, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, err := be.WaitConns(ctx, func(conns []fakebackend.Conn) bool {
		return !slices.ContainsFunc(conns, func(c fakebackend.Conn) bool { return !c.Closed })
	})
	if err != nil {
		return fmt.Errorf("a backend connection was still open %v after the client stalled: %w", within, err)
	}
	return nil
}
