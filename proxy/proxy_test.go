package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fixed is a Strategy that always starts at the same backend, so a test
// knows which backend a request tries first.
type fixed int

func (f fixed) Next(*http.Request, int) int { return int(f) }

// named is a backend answering with its name.
func named(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func hostOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

func TestRoundRobinAcrossBackends(t *testing.T) {
	p := newProxy(t, []string{named(t, "a"), named(t, "b"), named(t, "c")})
	front := serve(t, p)
	for w := 0; w < 3; w++ {
		seen := map[string]int{}
		for range 3 {
			res, body := get(t, front+"/")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			seen[body]++
		}
		if seen["a"] != 1 || seen["b"] != 1 || seen["c"] != 1 {
			t.Fatalf("window %d reached %v, want each backend once", w, seen)
		}
	}
}

func TestFailoverOnRefusedConnection(t *testing.T) {
	var logs logSink
	dead := deadAddr(t)
	p := newProxy(t, []string{dead, named(t, "ok")}, WithLogger(logs.logger()))
	front := serve(t, p)
	for i := range 4 {
		res, body := get(t, front+"/x")
		if res.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q, want 200 from the live backend", i, res.StatusCode, body)
		}
	}
	var failed int
	for _, rec := range logs.records(t) {
		if rec["msg"] != "upstream attempt failed" {
			continue
		}
		failed++
		if rec["backend"] != hostOf(t, dead) || rec["class"] != "refused" || rec["elapsed"] == nil || rec["level"] != "WARN" {
			t.Errorf("failed attempt logged as %v", rec)
		}
	}
	// Round-robin starts two of the four requests at the dead backend.
	if failed != 2 {
		t.Errorf("%d failed attempts logged, want 2", failed)
	}
}

func TestBadGatewayWhenAllFail(t *testing.T) {
	var logs logSink
	dead1, dead2 := deadAddr(t), deadAddr(t)
	p := newProxy(t, []string{dead1, dead2}, WithLogger(logs.logger()))
	res, body := get(t, serve(t, p)+"/x")
	checkBadGateway(t, res, body)
	for _, leak := range []string{hostOf(t, dead1), hostOf(t, dead2), "refused"} {
		if strings.Contains(body, leak) || strings.Contains(res.Header.Get("Content-Type"), leak) {
			t.Errorf("502 leaks %q", leak)
		}
	}
	var failed int
	for _, rec := range logs.records(t) {
		if rec["msg"] == "upstream attempt failed" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed attempts logged, want one per backend (2)", failed)
	}
}

func TestBadGatewayWithoutBackends(t *testing.T) {
	p := newProxy(t, nil)
	res, body := get(t, serve(t, p)+"/x")
	checkBadGateway(t, res, body)
}

func checkBadGateway(t *testing.T, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if body != "502 Bad Gateway" {
		t.Errorf("body %q", body)
	}
}

// hangUp reads the request and closes the connection without answering:
// the request reached the backend, which may have acted on it.
func hangUp(net.Conn, seen) {}

func TestFailoverAfterSendOnlyForIdempotentRequests(t *testing.T) {
	first := startRaw(t, hangUp)
	second := startRaw(t, nil)
	p := newProxy(t, []string{first.url(), second.url()}, WithStrategy(fixed(0)))
	front := serve(t, p)
	for _, tc := range []struct {
		method   string
		body     string
		failover bool
	}{
		{http.MethodGet, "", true},
		{http.MethodDelete, "", true},
		{http.MethodPost, "", false},
		{http.MethodPost, "order=1", false},
		{http.MethodPatch, "x", false},
		// Idempotent, but the body was streamed to the first backend and
		// cannot be sent again.
		{http.MethodPut, "data", false},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		res, _ := do(t, httptestRequest(t, tc.method, front+"/r", body))
		got := first.next(t, 5*time.Second)
		if got.req.Method != tc.method || string(got.body) != tc.body {
			t.Fatalf("%s: first backend got %s %q", tc.method, got.req.Method, got.body)
		}
		if tc.failover {
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d, want 200 from the second backend", tc.method, res.StatusCode)
			}
			second.next(t, 5*time.Second)
		} else {
			if res.StatusCode != http.StatusBadGateway {
				t.Errorf("%s: status %d, want 502", tc.method, res.StatusCode)
			}
			second.none(t)
		}
	}
}

func TestFailoverReplaysBodyWhenRequestCanCopyIt(t *testing.T) {
	first := startRaw(t, hangUp)
	second := startRaw(t, nil)
	p := newProxy(t, []string{first.url(), second.url()}, WithStrategy(fixed(0)))
	req := httptest.NewRequest(http.MethodPut, "/doc", nil)
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("v2")), 2
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("v2")), nil }
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 after failover", rec.Code)
	}
	for _, b := range []*rawBackend{first, second} {
		if s := b.next(t, 5*time.Second); string(s.body) != "v2" {
			t.Errorf("backend got body %q, want v2", s.body)
		}
	}
}

func TestBackendFailureAfterHeadersAbortsClient(t *testing.T) {
	for name, partial := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
		"bad chunk":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n0123456789\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			first := startRaw(t, func(c net.Conn, _ seen) { io.WriteString(c, partial) })
			second := startRaw(t, nil)
			p := newProxy(t, []string{first.url(), second.url()}, WithStrategy(fixed(0)))
			res, err := client().Get(serve(t, p) + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err == nil {
				t.Fatalf("client read a complete body %q; want the connection cut", b)
			}
			if !strings.HasPrefix("0123456789", string(b)) {
				t.Errorf("client got %q", b)
			}
			second.none(t)
		})
	}
}

func TestHopByHopHeadersRemovedBothWays(t *testing.T) {
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Resp-Hop,  keep-alive\r\n"+
			"connection: X-Other\r\n"+
			"X-Resp-Hop: 1\r\nX-Other: 1\r\n"+
			"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\n"+
			"Upgrade: h2c\r\nTrailers: x\r\nTrailer: X-T\r\nX-Resp-Keep: 1\r\n"+
			"Content-Length: 2\r\n\r\nok")
	})
	p := newProxy(t, []string{back.url()})
	front := hostOf(t, serve(t, p))
	out := rawExchange(t, front, "GET /h HTTP/1.1\r\nHost: front\r\n"+
		"Connection: close, X-Req-Hop\r\nCONNECTION:\tX-Mixed , \r\n"+
		"X-Req-Hop: 1\r\nX-Mixed: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\n"+
		"Proxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\nUpgrade: websocket\r\n"+
		"Trailers: x\r\nX-Req-Keep: 1\r\n\r\n", 5*time.Second)

	s := back.next(t, time.Second)
	for _, name := range []string{"X-Req-Hop", "X-Mixed", "Keep-Alive", "Te", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Trailers"} {
		if _, ok := s.req.Header[name]; ok {
			t.Errorf("backend received %s", name)
		}
	}
	if s.req.Header.Get("X-Req-Keep") != "1" {
		t.Errorf("backend did not receive X-Req-Keep")
	}
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("reading %q: %v", out, err)
	}
	for _, name := range []string{"X-Resp-Hop", "X-Other", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Upgrade", "Trailers", "Trailer"} {
		if _, ok := res.Header[name]; ok {
			t.Errorf("client received %s", name)
		}
	}
	if res.Header.Get("X-Resp-Keep") != "1" {
		t.Errorf("client did not receive X-Resp-Keep")
	}
}

func TestForwardedRequestOnTheWire(t *testing.T) {
	back := startRaw(t, nil)
	p := newProxy(t, []string{back.url()})
	front := hostOf(t, serve(t, p))
	rawExchange(t, front, "GET /a%2Fb/../c;p?x=%20&y=a+b&&z HTTP/1.1\r\nHost: public.example\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.1.1.1\r\nVia: 1.0 edge\r\n"+
		"Connection: close\r\n\r\n", 5*time.Second)
	s := back.next(t, time.Second)
	lines := strings.Split(strings.TrimSuffix(s.head, "\r\n\r\n"), "\r\n")
	if lines[0] != "GET /a%2Fb/../c;p?x=%20&y=a+b&&z HTTP/1.1" {
		t.Errorf("request line %q", lines[0])
	}
	want := map[string]string{
		"Host":            back.ln.Addr().String(),
		"X-Forwarded-For": "203.0.113.7, 10.1.1.1, 127.0.0.1",
		"Via":             "1.0 edge, 1.1 rws",
		"Connection":      "close",
	}
	count := map[string]int{}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ": ")
		name = textproto.CanonicalMIMEHeaderKey(name)
		count[name]++
		if w, ok := want[name]; ok && value != w {
			t.Errorf("%s: %q, want %q", name, value, w)
		}
	}
	for name := range want {
		if count[name] != 1 {
			t.Errorf("%s sent %d times, want once:\n%s", name, count[name], s.head)
		}
	}
	// Nothing the client did not send and the seed does not ask for.
	for _, name := range []string{"User-Agent", "Accept-Encoding", "Content-Length", "Transfer-Encoding"} {
		if count[name] != 0 {
			t.Errorf("proxy added %s:\n%s", name, s.head)
		}
	}
}

func TestTargetsForwardedVerbatim(t *testing.T) {
	back := startRaw(t, nil)
	p := newProxy(t, []string{back.url()})
	front := hostOf(t, serve(t, p))
	for _, tc := range []struct{ sent, want string }{
		{"/", "/"},
		{"/api?", "/api?"},
		{"//double//slash?q", "//double//slash?q"},
		{"/%7euser/a%20b/%C3%A9", "/%7euser/a%20b/%C3%A9"},
		{"/q?redirect=http://x/y?z", "/q?redirect=http://x/y?z"},
		// Absolute form: the authority never picks the upstream.
		{"http://evil.example:81/steal?x=1", "/steal?x=1"},
		{"http://evil.example", "/"},
	} {
		rawExchange(t, front, "GET "+tc.sent+" HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", 5*time.Second)
		s := back.next(t, time.Second)
		line, _, _ := strings.Cut(s.head, "\r\n")
		if line != "GET "+tc.want+" HTTP/1.1" {
			t.Errorf("sent %q: backend got %q, want target %q", tc.sent, line, tc.want)
		}
		if s.req.Host != back.ln.Addr().String() {
			t.Errorf("sent %q: Host %q", tc.sent, s.req.Host)
		}
	}
}

func TestPathPrefix(t *testing.T) {
	back := startRaw(t, nil)
	p := newProxy(t, []string{back.url()}, WithPathPrefix("/api/"))
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(299)
	})
	wrapped := serve(t, p.Wrap(next))
	alone := serve(t, p)
	for _, tc := range []struct {
		target  string
		proxied bool
	}{
		{"/api", true},
		{"/api/", true},
		{"/api/x/y", true},
		{"/api?q=1", true},
		{"/api%2Fx", true},
		{"/x/../api/y", true},
		{"/apix", false},
		{"/ap", false},
		{"/", false},
		{"/api/../admin", false},
		{"/API", false},
	} {
		res, _ := get(t, wrapped+tc.target)
		alone, _ := get(t, alone+tc.target)
		if tc.proxied {
			if res.StatusCode != http.StatusOK || alone.StatusCode != http.StatusOK {
				t.Errorf("%s: statuses %d (wrapped) %d (alone), want proxied 200", tc.target, res.StatusCode, alone.StatusCode)
			}
			back.next(t, time.Second)
			back.next(t, time.Second)
			continue
		}
		if res.StatusCode != 299 {
			t.Errorf("%s: wrapped status %d, want 299 from next", tc.target, res.StatusCode)
		}
		if alone.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", tc.target, alone.StatusCode)
		}
		back.none(t)
	}
}

func TestConnectRefused(t *testing.T) {
	back := startRaw(t, nil)
	p := newProxy(t, []string{back.url()})
	out := rawExchange(t, hostOf(t, serve(t, p)), "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n", 5*time.Second)
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("reading %q: %v", out, err)
	}
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(res.Header.Get("Allow"), "GET") || strings.Contains(res.Header.Get("Allow"), "CONNECT") {
		t.Errorf("CONNECT answered %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	back.none(t)
}

func TestConnectTimeoutFailsOver(t *testing.T) {
	const connect = 300 * time.Millisecond
	var logs logSink
	p := newProxy(t, []string{blackhole(t), named(t, "ok")}, WithStrategy(fixed(0)),
		WithConnectTimeout(connect), WithLogger(logs.logger()))
	start := time.Now()
	res, body := get(t, serve(t, p)+"/")
	elapsed := time.Since(start)
	if res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("%d %q, want 200 from the second backend", res.StatusCode, body)
	}
	if elapsed < connect || elapsed > 10*connect {
		t.Errorf("took %v, want about the connect timeout %v", elapsed, connect)
	}
	var classes []any
	for _, rec := range logs.records(t) {
		if rec["msg"] == "upstream attempt failed" {
			classes = append(classes, rec["class"])
		}
	}
	if len(classes) != 1 || classes[0] != "timeout" {
		t.Errorf("failed attempts logged with classes %v, want [timeout]", classes)
	}
}

// stall writes prefix after reading the request and then says nothing
// until the proxy hangs up (or the test ends).
func stall(prefix string) func(net.Conn, seen) {
	return func(c net.Conn, _ seen) {
		io.WriteString(c, prefix)
		io.Copy(io.Discard, c)
	}
}

func TestReadTimeoutBeforeHeaders(t *testing.T) {
	const read = 300 * time.Millisecond
	slow := startRaw(t, stall(""))
	fast := startRaw(t, nil)
	p := newProxy(t, []string{slow.url(), fast.url()}, WithStrategy(fixed(0)), WithReadTimeout(read))
	front := serve(t, p)

	start := time.Now()
	res, _ := get(t, front+"/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d, want 200 from the second backend", res.StatusCode)
	}
	if e := time.Since(start); e < read || e > 10*read {
		t.Errorf("GET took %v, want about the read timeout %v", e, read)
	}
	slow.next(t, time.Second)
	fast.next(t, time.Second)

	res, _ = do(t, httptestRequest(t, http.MethodPost, front+"/", strings.NewReader("once")))
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST: status %d, want 502 (never sent twice)", res.StatusCode)
	}
	slow.next(t, time.Second)
	fast.none(t)
}

func TestReadTimeoutMidBodyAbortsClient(t *testing.T) {
	const read = 300 * time.Millisecond
	back := startRaw(t, stall("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	p := newProxy(t, []string{back.url()}, WithReadTimeout(read))
	start := time.Now()
	res, err := client().Get(serve(t, p) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil {
		t.Fatalf("client read a complete body %q", b)
	}
	if e := time.Since(start); e < read || e > 10*read {
		t.Errorf("cut after %v, want about the read timeout %v", e, read)
	}
	if string(b) != "abc" {
		t.Errorf("client got %q before the cut, want abc", b)
	}
}

func TestReadTimeoutBoundsGapsNotTheWholeBody(t *testing.T) {
	// Gaps an eighth of the timeout leave a stalled machine 1 s of slack;
	// twelve of them outlast the timeout.
	const read = 1200 * time.Millisecond
	const gap, chunks = read / 8, 12
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range chunks {
			time.Sleep(gap) // the backend's behaviour under test, not a wait
			io.WriteString(c, "1\r\nx\r\n")
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	p := newProxy(t, []string{back.url()}, WithReadTimeout(read))
	res, body := get(t, serve(t, p)+"/")
	if res.StatusCode != http.StatusOK || body != strings.Repeat("x", chunks) {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
}

func TestFramingRegeneratedPerHop(t *testing.T) {
	t.Run("chunked request with trailer", func(t *testing.T) {
		back := startRaw(t, nil)
		p := newProxy(t, []string{back.url()})
		rawExchange(t, hostOf(t, serve(t, p)), "POST /up HTTP/1.1\r\nHost: f\r\nConnection: close\r\n"+
			"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
			"3\r\nabc\r\n1;ext=1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 42\r\n\r\n", 5*time.Second)
		s := back.next(t, time.Second)
		if s.err != nil || string(s.body) != "abcd0123456789abcdef" {
			t.Fatalf("backend body %q (%v)", s.body, s.err)
		}
		if te := s.req.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
			t.Errorf("backend framing %v, want chunked", te)
		}
		if got := s.req.Trailer.Get("X-Sum"); got != "42" {
			t.Errorf("request trailer X-Sum %q, want 42", got)
		}
	})
	t.Run("content-length request", func(t *testing.T) {
		back := startRaw(t, nil)
		p := newProxy(t, []string{back.url()})
		do(t, httptestRequest(t, http.MethodPost, serve(t, p)+"/", strings.NewReader("12345")))
		s := back.next(t, time.Second)
		if s.req.ContentLength != 5 || string(s.body) != "12345" || len(s.req.TransferEncoding) != 0 {
			t.Errorf("backend got CL %d TE %v body %q", s.req.ContentLength, s.req.TransferEncoding, s.body)
		}
	})
	for name, wire := range map[string]string{
		"chunked response": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\n\r\n" +
			"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Digest: d1\r\nConnection: x\r\n\r\n",
		"close-delimited response": "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world",
		"http/1.0 response":        "HTTP/1.0 200 OK\r\n\r\nhello world",
	} {
		t.Run(name, func(t *testing.T) {
			back := startRaw(t, func(c net.Conn, _ seen) { io.WriteString(c, wire) })
			p := newProxy(t, []string{back.url()})
			res, body := get(t, serve(t, p)+"/")
			if body != "hello world" {
				t.Fatalf("client body %q", body)
			}
			if strings.Contains(name, "chunked") {
				if got := res.Trailer.Get("X-Digest"); got != "d1" {
					t.Errorf("trailer X-Digest %q, want d1 (trailers %v)", got, res.Trailer)
				}
				if _, ok := res.Trailer["Connection"]; ok {
					t.Errorf("hop-by-hop Connection forwarded as a trailer")
				}
			}
		})
	}
}

func TestNoContentTypeSniffed(t *testing.T) {
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n<html></html>\n")
	})
	p := newProxy(t, []string{back.url()})
	res, _ := get(t, serve(t, p)+"/")
	if ct, ok := res.Header["Content-Type"]; ok {
		t.Errorf("proxy added Content-Type %q", ct)
	}
}

func TestExpectContinue(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	t.Cleanup(back.Close)
	p := newProxy(t, []string{back.URL})
	c, err := net.Dial("tcp", hostOf(t, serve(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	// The client holds its body until invited.
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("interim response %v, %v; want 100 Continue", interim, err)
	}
	io.WriteString(c, "hello")
	// More 100s may follow: the server's own and the backend's, relayed.
	// A client must accept any number of 1xx before the final response
	// (RFC 9110 §15.2).
	res, err := http.ReadResponse(br, nil)
	for err == nil && res.StatusCode == http.StatusContinue {
		res, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(b) != "hello" {
		t.Errorf("final %d %q", res.StatusCode, b)
	}
}

func TestHeadKeepsLengthWithoutBody(t *testing.T) {
	back := startRaw(t, func(c net.Conn, s seen) {
		if s.req.Method == http.MethodHead {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
	})
	p := newProxy(t, []string{back.url()})
	front := serve(t, p)
	cl := client() // one client: the second request reuses the connection
	res, err := cl.Head(front + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ContentLength != 1234 {
		t.Errorf("HEAD Content-Length %d, want 1234", res.ContentLength)
	}
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front+"/", nil)
	res, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "next" || !reused {
		t.Errorf("after HEAD: body %q on reused connection %v", b, reused)
	}
}

func TestEarlyHintsForwarded(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "page")
	}))
	t.Cleanup(back.Close)
	p := newProxy(t, []string{back.URL})
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, http.StatusText(code)+" "+h.Get("Link"))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, serve(t, p)+"/", nil)
	res, body := do(t, req)
	if len(hints) != 1 || hints[0] != "Early Hints </app.css>; rel=preload" {
		t.Errorf("1xx seen by the client: %q", hints)
	}
	if body != "page" || res.Header.Get("Link") != "" {
		t.Errorf("final response %q with Link %q", body, res.Header.Get("Link"))
	}
}

type ctxKey struct{}

func TestRoundTripperWrapper(t *testing.T) {
	var calls atomic.Int32
	var sawVia, sawCtx atomic.Bool
	wrap := func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			sawVia.Store(r.Header.Get("Via") == "1.1 rws")
			sawCtx.Store(r.Context().Value(ctxKey{}) == "client")
			res, err := next.RoundTrip(r)
			if err == nil {
				// Response rules run after the wrapper.
				res.Header.Set("Connection", "X-Injected")
				res.Header.Set("X-Injected", "1")
				res.Header.Set("Keep-Alive", "1")
			}
			return res, err
		})
	}
	p := newProxy(t, []string{deadAddr(t), named(t, "ok")}, WithStrategy(fixed(0)), WithRoundTripper(wrap))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "client")))
	})
	res, body := get(t, serve(t, h)+"/")
	if body != "ok" {
		t.Fatalf("body %q", body)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("wrapper called %d times for two attempts", n)
	}
	if !sawVia.Load() || !sawCtx.Load() {
		t.Errorf("wrapper saw Via applied %v, client context %v", sawVia.Load(), sawCtx.Load())
	}
	for _, name := range []string{"X-Injected", "Keep-Alive"} {
		if res.Header.Get(name) != "" {
			t.Errorf("client got %s added by the wrapper", name)
		}
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRequestLog(t *testing.T) {
	var logs logSink
	p := newProxy(t, []string{deadAddr(t), named(t, "ok")}, WithStrategy(fixed(0)), WithLogger(logs.logger()))
	// ServeHTTP is called directly: the request line is logged when the
	// handler returns, which a client may observe only after its response.
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/logged?x=1", nil))
	var got map[string]any
	for _, rec := range logs.records(t) {
		if rec["msg"] == "request" {
			got = rec
		}
	}
	if got == nil || got["method"] != "GET" || got["target"] != "/logged?x=1" || got["status"] != float64(200) ||
		got["attempts"] != float64(2) || got["backend"] == "" || got["duration"] == nil {
		t.Errorf("request logged as %v", got)
	}
}

func TestChainOrder(t *testing.T) {
	var order bytes.Buffer
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order.WriteString(name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := Chain(mw("a"), mw("b"), mw("c"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		order.WriteString("!")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if order.String() != "abc!" {
		t.Errorf("ran in order %q, want abc!", order.String())
	}
}

// A client whose chunked body is malformed gets 400, not 502: no backend is
// at fault, and no other backend is tried with what is left of the body.
func TestMalformedClientBodyIs400(t *testing.T) {
	var tries atomic.Int32
	count := func() string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tries.Add(1)
			io.Copy(io.Discard, r.Body)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	p := newProxy(t, []string{count(), count()}, WithLogger(discard()))
	addr := strings.TrimPrefix(serve(t, p), "http://")
	got := rawExchange(t, addr, "PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("answered %q, want 400", firstLine(got))
	}
	if n := tries.Load(); n > 1 {
		t.Errorf("%d backends tried, want at most the first", n)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// A backend that answers before it has read the request body leaves the
// rest of the body unread, and an attempt's writer perhaps still reading
// it. The answer says close and the connection ends after it: left to the
// server, the rest would be read by two readers at once, and net/http
// panics. The client sends the rest of its body after the answer, then a
// next request, as a client that ignores the close would.
func TestEarlyAnswerClosesTheConnection(t *testing.T) {
	back, _ := earlyBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
	var logs strings.Builder
	var mu sync.Mutex
	front := httptest.NewUnstartedServer(newProxy(t, []string{back}))
	front.Config.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), "", 0)
	front.Start()
	t.Cleanup(front.Close)

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != "early" || !res.Close {
		t.Errorf("early answer: %d %q close=%v, want the 200 with Connection: close", res.StatusCode, body, res.Close)
	}
	io.WriteString(c, "56789GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
	// The server logs a panic before it closes the connection.
	if n, err := io.Copy(io.Discard, br); n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the answer: %d more bytes, %v; want the connection closed", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() > 0 {
		t.Errorf("the server logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
