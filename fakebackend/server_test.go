package fakebackend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func TestEchoAndRecordMatchTheWire(t *testing.T) {
	s := start(t)
	head := "POST /p/q?x=1 HTTP/1.1\r\nHost: example.test\r\nX-Dup: one\r\nx-dup:  two  \r\nContent-Length: 7\r\n\r\n"
	body := "a\x00\xffb\"\\\n"
	c := dial(t, s)
	resp, got := c.do(head + body)

	if resp.StatusCode != 200 || resp.Header.Get("X-Proxyspec-Backend") != "b1" ||
		resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("response head: %d %v", resp.StatusCode, resp.Header)
	}
	e := echoOf(t, got)
	want := []fakebackend.Field{{"Host", "example.test"}, {"X-Dup", "one"}, {"x-dup", "two"}, {"Content-Length", "7"}}
	if e.Backend != "b1" || e.Conn != 1 || e.Seq != 1 || e.Method != "POST" || e.Target != "/p/q?x=1" ||
		e.Proto != "HTTP/1.1" || !slices.Equal(e.Header, want) || len(e.Violations) != 0 {
		t.Fatalf("echo: %+v", e)
	}
	if b, err := e.BodyBytes(); err != nil || string(b) != body {
		t.Fatalf("echo body %q (%v), want %q", b, err, body)
	}
	if !slices.Equal(e.Values("X-DUP"), []string{"one", "two"}) {
		t.Fatalf("Values(X-DUP) = %q", e.Values("X-DUP"))
	}

	reqs, err := s.WaitRequests(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := reqs[0]
	if string(r.RawHead) != head || string(r.RawBody) != body || string(r.Body) != body {
		t.Fatalf("raw head %q body %q", r.RawHead, r.RawBody)
	}
	if r.Index != 0 || r.Conn != 1 || r.Seq != 1 || r.Backend != "b1" || r.Remote != c.nc.LocalAddr().String() ||
		r.At.IsZero() || !slices.Equal(r.Header, want) || len(r.Violations) != 0 {
		t.Fatalf("record: %+v", r)
	}
}

func TestChunkedRequestIsDecodedAndKeptRaw(t *testing.T) {
	s := start(t)
	head := "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	body := "3;name=val;q=\"a b\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 42\r\n\r\n"
	resp, got := dial(t, s).do(head + body)
	e := echoOf(t, got)
	if resp.StatusCode != 200 || e.Body != "abc0123456789abcdef" ||
		!slices.Equal(e.Trailers, []fakebackend.Field{{"X-Sum", "42"}}) || len(e.Violations) != 0 {
		t.Fatalf("echo: %+v", e)
	}
	reqs, _ := s.WaitRequests(ctx(t), 1)
	if string(reqs[0].RawBody) != body || string(reqs[0].RawHead) != head {
		t.Fatalf("raw body %q", reqs[0].RawBody)
	}
}

func TestKeepAlive(t *testing.T) {
	s := start(t)
	c := dial(t, s)
	for i := 1; i <= 2; i++ {
		_, got := c.do("GET /k HTTP/1.1\r\nHost: h\r\n\r\n")
		if e := echoOf(t, got); e.Conn != 1 || e.Seq != i {
			t.Fatalf("request %d: conn %d seq %d", i, e.Conn, e.Seq)
		}
	}
	reqs, _ := s.WaitRequests(ctx(t), 2)
	if reqs[0].Seq != 1 || reqs[1].Seq != 2 || reqs[1].Index != 1 || reqs[0].Conn != reqs[1].Conn {
		t.Fatalf("records: %+v", reqs)
	}
	conns, _ := s.Conns(ctx(t))
	if len(conns) != 1 || conns[0].Requests != 2 || conns[0].Closed {
		t.Fatalf("conns: %+v", conns)
	}
	c.nc.Close()
	conns, err := s.WaitConns(ctx(t), func(cs []fakebackend.Conn) bool { return cs[0].Closed })
	if err != nil || conns[0].ClosedBy != "peer" {
		t.Fatalf("conns after close: %+v, %v", conns, err)
	}
	if st, _ := s.Stats(ctx(t)); st.OneShotConns != 0 || st.Requests != 2 || st.Connections != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestOneShotConns(t *testing.T) {
	s := start(t)
	// Closed by the client after one request.
	c := dial(t, s)
	c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c.nc.Close()
	// One request asking to close.
	resp, _ := dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !resp.Close {
		t.Fatal("response to Connection: close does not close")
	}
	// HTTP/1.0 without keep-alive.
	resp, _ = dial(t, s).do("GET / HTTP/1.0\r\n\r\n")
	if !resp.Close {
		t.Fatal("response to HTTP/1.0 does not close")
	}
	// HTTP/1.0 with keep-alive stays open: not one-shot while open.
	k := dial(t, s)
	if resp, _ = k.do("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"); resp.Close || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("HTTP/1.0 keep-alive: close=%v %v", resp.Close, resp.Header)
	}
	// Closed by the backend's behaviour: not counted.
	s.Enqueue(ctx(t), fakebackend.Behaviour{Close: true})
	dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")

	conns, err := s.WaitConns(ctx(t), func(cs []fakebackend.Conn) bool {
		n := 0
		for _, c := range cs {
			if c.Closed {
				n++
			}
		}
		return len(cs) == 5 && n == 4
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, conns)
	}
	st, _ := s.Stats(ctx(t))
	if st.OneShotConns != 3 || st.Connections != 5 || st.Requests != 5 {
		t.Fatalf("stats: %+v, conns %+v", st, conns)
	}
	if conns[4].ClosedBy != "backend" || conns[1].ClosedBy != "backend" || conns[0].ClosedBy != "peer" {
		t.Fatalf("closed by: %+v", conns)
	}
}

func TestHeadGetsHeadersOnly(t *testing.T) {
	s := start(t)
	c := dial(t, s)
	resp, body := c.do("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %d, length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}
	// Had a body been sent, it would be read as the next response.
	_, body = c.do("GET /g HTTP/1.1\r\nHost: h\r\n\r\n")
	if e := echoOf(t, body); e.Method != "GET" || e.Seq != 2 {
		t.Fatalf("after HEAD: %+v", e)
	}
}

func TestQueueThenDefault(t *testing.T) {
	s := start(t)
	if err := s.SetDefault(ctx(t), fakebackend.Behaviour{Status: 201, Body: fakebackend.Text("d")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx(t), fakebackend.Behaviour{Status: 202, Body: fakebackend.Text("q1")},
		fakebackend.Behaviour{Status: 203, Reason: "Odd Reason", Body: fakebackend.Text("q2")}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	for _, want := range []struct {
		status int
		reason string
		body   string
	}{{202, "202 Accepted", "q1"}, {203, "203 Odd Reason", "q2"}, {201, "201 Created", "d"}, {201, "201 Created", "d"}} {
		resp, body := c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != want.status || resp.Status != want.reason || string(body) != want.body ||
			resp.Header.Get("Content-Type") != "" {
			t.Fatalf("got %q %q %v, want %+v", resp.Status, body, resp.Header, want)
		}
	}
}

func TestBehaviourHeaderLinesVerbatim(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Header: []fakebackend.Field{
		{"Connection", "x-hop"}, {"X-Hop", "1"}, {"Keep-Alive", "timeout=5"}, {"set-cookie", "a=1"}, {"Set-Cookie", "b=2"},
	}})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
		lines = append(lines, l)
	}
	tail := strings.Join(lines[len(lines)-5:], "")
	if want := "Connection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n"; tail != want {
		t.Fatalf("header lines:\n%q\nwant last:\n%q", lines, want)
	}
}

func TestChunkedResponseWithTrailers(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Body: fakebackend.Text("hello world"), Framing: "chunked", ChunkSize: 4,
		Trailers: []fakebackend.Field{{"X-Checksum", "abc"}}})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	raw := readUntil(t, c, "\r\n0\r\nX-Checksum: abc\r\n\r\n")
	if !strings.Contains(raw, "Transfer-Encoding: chunked\r\n") ||
		!strings.HasSuffix(raw, "\r\n\r\n4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\nX-Checksum: abc\r\n\r\n") {
		t.Fatalf("chunked response:\n%q", raw)
	}
	// The connection is still usable.
	if resp, _ := c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
}

// readUntil reads from c until the data ends with suffix.
func readUntil(t *testing.T, c *client, suffix string) string {
	t.Helper()
	var b []byte
	for !bytes.HasSuffix(b, []byte(suffix)) {
		x, err := c.br.ReadByte()
		if err != nil {
			t.Fatalf("after %q: %v", b, err)
		}
		b = append(b, x)
	}
	return string(b)
}

func TestCloseFramingEndsBodyWithClose(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Body: fakebackend.Text("until close"), Framing: "close"})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	all, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(all); strings.Contains(s, "Content-Length") || strings.Contains(s, "Transfer-Encoding") ||
		!strings.Contains(s, "Connection: close\r\n") || !strings.HasSuffix(s, "\r\n\r\nuntil close") {
		t.Fatalf("close-delimited response:\n%q", all)
	}
}

func TestNoContentStatusesHaveNoBody(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Status: 204}, fakebackend.Behaviour{Status: 304})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	raw := readUntil(t, c, "304 Not Modified\r\nX-Proxyspec-Backend: b1\r\nCache-Control: no-store\r\n\r\n")
	if raw != "HTTP/1.1 204 No Content\r\nX-Proxyspec-Backend: b1\r\nCache-Control: no-store\r\n\r\nHTTP/1.1 304 Not Modified\r\nX-Proxyspec-Backend: b1\r\nCache-Control: no-store\r\n\r\n" {
		t.Fatalf("%q", raw)
	}
}

func TestInformationalAndContinue(t *testing.T) {
	s := start(t)
	s.Enqueue(ctx(t), fakebackend.Behaviour{Continue: true, Body: fakebackend.Text("ok"),
		Informational: []fakebackend.Informational{{Status: 103, Header: []fakebackend.Field{{"Link", "</s.css>; rel=preload"}}}}})
	c := dial(t, s)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	// The body is only sent once 100 Continue arrived: a backend that did
	// not send it would leave this read waiting until the deadline.
	if got := readUntil(t, c, "\r\n\r\n"); got != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("before body: %q", got)
	}
	c.send("data")
	want := "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"
	if got := readUntil(t, c, "200 OK\r\n"); got != want {
		t.Fatalf("after body: %q", got)
	}
	reqs, _ := s.WaitRequests(ctx(t), 1)
	if string(reqs[0].Body) != "data" {
		t.Fatalf("body %q", reqs[0].Body)
	}
}

func TestRawResponse(t *testing.T) {
	s := start(t)
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"
	s.Enqueue(ctx(t), fakebackend.Behaviour{Raw: &raw, Close: true})
	c := dial(t, s)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	got, err := io.ReadAll(c.br)
	if err != nil || string(got) != raw {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestResetForgetsAndCloses(t *testing.T) {
	s := start(t)
	s.SetDefault(ctx(t), fakebackend.Behaviour{Status: 500})
	s.Enqueue(ctx(t), fakebackend.Behaviour{Status: 501})
	c := dial(t, s)
	c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if err := s.Reset(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The connection was closed by the reset.
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after reset: %v", err)
	}
	if reqs, _ := s.Requests(ctx(t)); len(reqs) != 0 {
		t.Fatalf("records survived reset: %d", len(reqs))
	}
	if st, _ := s.Stats(ctx(t)); st != (fakebackend.Stats{}) {
		t.Fatalf("stats survived reset: %+v", st)
	}
	resp, body := dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if e := echoOf(t, body); resp.StatusCode != http.StatusOK || e.Conn != 1 || e.Seq != 1 {
		t.Fatalf("after reset: %d %+v", resp.StatusCode, e)
	}
}

func TestInvalidBehavioursAreRefused(t *testing.T) {
	s := start(t)
	for _, b := range []fakebackend.Behaviour{
		{Status: 42}, {Framing: "gzip"}, {Fault: "explode"}, {Trailers: []fakebackend.Field{{"A", "b"}}},
		{SlowBody: &fakebackend.Slow{Bytes: 0}}, {Informational: []fakebackend.Informational{{Status: 200}}},
		{ChunkSize: -1}, {Delay: -1},
	} {
		if err := s.Enqueue(ctx(t), fakebackend.Behaviour{}, b); err == nil {
			t.Errorf("Enqueue(%+v) accepted", b)
		}
		if err := s.SetDefault(ctx(t), b); err == nil {
			t.Errorf("SetDefault(%+v) accepted", b)
		}
	}
	// Nothing was queued by the failed calls: the default echo answers.
	if resp, _ := dial(t, s).do("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
}

func TestClosedServer(t *testing.T) {
	s, err := fakebackend.Start("c")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("open connection after Close: %v", err)
	}
	if err := s.SetMode(ctx(t), fakebackend.Refuse); !errors.Is(err, fakebackend.ErrClosed) {
		t.Fatalf("SetMode after Close: %v", err)
	}
	if reqs, _ := s.Requests(ctx(t)); len(reqs) != 1 {
		t.Fatalf("records after Close: %d", len(reqs))
	}
}

func TestWaitRequestsEndsWithContext(t *testing.T) {
	s := start(t)
	c, cancel := contextWithCancel(t)
	cancel()
	if _, err := s.WaitRequests(c, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRequests on a cancelled context: %v", err)
	}
}
