package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// FuzzProxyRequest sends arbitrary bytes from a client to the reference
// proxy served by net/http on loopback, in front of an in-process fake
// backend, and checks what reached the backend. Whatever the client sends:
//   - the proxy never panics (http.ErrAbortHandler, its way of cutting a
//     response short, aside);
//   - what reaches the backend breaks no rule of RFC 9112 (the fake
//     backend's violations), except being cut short where the client's own
//     body was malformed: a proxy streaming a body cannot take back what it
//     already sent;
//   - no hop-by-hop field goes upstream, nor a field named in any of the
//     request's Connection lines (RFC 9110 §7.6.1), beyond the proxy's own
//     framing and Connection: close;
//   - each client request reaches the backend at most once.
//
// The client's bytes are cut after the last complete request (as net/http's
// parser reads them) and followed by a request the test answers itself with
// Connection: close, so that every exchange ends with the server closing the
// connection rather than with a timeout.
func FuzzProxyRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a%2Fb?x=1&y HTTP/1.1\r\nHost: h\r\nConnection: X-A, , x-b\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=1\r\n\r\nhello",
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nTE: trailers\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
		"GET http://evil.example/abs?q HTTP/1.1\r\nHost: other\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: x-forwarded-for, via\r\nX-Forwarded-For: 1.2.3.4\r\nVia: 1.0 old\r\n\r\n",
		"GET /up HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /k HTTP/1.1\r\nHost: h\r\nKeep-Alive: 1\r\nTE: x\r\nUpgrade: z\r\nProxy-Authenticate: w\r\nTrailers: t\r\n\r\n",
		"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
		"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xe9\r\nConnection: Content-Type\r\nContent-Type: a\r\n\r\n",
		"POST /bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\nzz\r\n",
		"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nDELETE /d HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}

	x := &exchanges{}
	srv := httptest.NewUnstartedServer(x.wrap())
	// Panics are caught by the wrapper; the rest is the server rejecting
	// malformed input, which is expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Start()
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A backend and a proxy of their own for each input: a request the
		// previous input left on its way (a body cut short is recorded only
		// once its connection drops, after the client got its answer) can
		// then never be counted against this one.
		be, err := fakebackend.Start("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		p, err := New([]string{be.URL()}, WithLogger(discard()),
			WithConnectTimeout(time.Second), WithReadTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		x.reset(be, p)
		in := completeRequests(raw)
		in = append(in, "GET "+endPath+" HTTP/1.1\r\nHost: end\r\nConnection: close\r\n\r\n"...)
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(8 * time.Second))
		// The server may close as soon as it rejects a request: a failed
		// write is the proxy's answer, not the test's failure.
		c.Write(in)
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the exchange did not end within 8 s (%v) for input %q", err, in)
		}
		c.Close()

		if msg := x.panicked(); msg != "" {
			t.Fatalf("the proxy panicked: %s\ninput %q", msg, in)
		}
		got, err := be.Requests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		x.check(t, got, in)
	})
}

// endPath is the test's own closing request, answered without the proxy.
const endPath = "/__proxyspec_fuzz_end"

// completeRequests returns the prefix of raw holding the requests that
// net/http's parser reads in full, up to and including the first one it
// rejects (the server answers that one 400 and closes). A request cut
// short by the end of raw is dropped: the server would wait for the rest.
func completeRequests(raw []byte) []byte {
	src := bytes.NewReader(raw)
	br := bufio.NewReader(src)
	consumed := func() int { return len(raw) - src.Len() - br.Buffered() }
	end := 0
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return raw[:end]
			}
			return raw // malformed: the server stops reading here anyway
		}
		_, err = io.Copy(io.Discard, req.Body)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return raw[:end]
			}
			return raw
		}
		end = consumed()
		if req.Close {
			return raw[:end]
		}
	}
}

// exchanges tracks, for each request the server hands the proxy, the
// Connection lines it carried and which backend records it caused.
type exchanges struct {
	mu      sync.Mutex
	backend fakebackend.Backend
	proxy   http.Handler
	reqs    []served
	panic   string
}

type served struct {
	connection []string
	from, to   int // backend records [from, to)
}

// reset starts the tracking of one input, served by p in front of be.
func (x *exchanges) reset(be fakebackend.Backend, p http.Handler) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.backend, x.proxy = be, p
	x.reqs, x.panic = nil, ""
}

func (x *exchanges) panicked() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.panic
}

// requestCount is how many requests be has recorded, incomplete ones too.
func requestCount(be fakebackend.Backend) int {
	st, err := be.Stats(context.Background())
	if err != nil {
		panic(err)
	}
	return st.Requests
}

// wrap serves the requests with the proxy of the current input.
func (x *exchanges) wrap() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == endPath {
			w.Header().Set("Connection", "close")
			return
		}
		x.mu.Lock()
		be, h := x.backend, x.proxy
		x.mu.Unlock()
		s := served{connection: slices.Clone(r.Header["Connection"]), from: requestCount(be)}
		defer func() {
			s.to = requestCount(be)
			v := recover()
			x.mu.Lock()
			x.reqs = append(x.reqs, s)
			if v != nil && v != http.ErrAbortHandler {
				x.panic = fmt.Sprint(v)
			}
			x.mu.Unlock()
			if v != nil {
				panic(http.ErrAbortHandler)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// upstreamForbidden are the hop-by-hop fields that never go upstream, in
// any form. Connection and Transfer-Encoding are checked apart: the proxy
// sends its own.
var upstreamForbidden = []string{"Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "TE", "Trailers", "Upgrade"}

// ownFields are those the proxy writes itself, whatever the client's
// Connection lines named.
var ownFields = []string{"Host", "Via", "X-Forwarded-For", "Content-Length", "Transfer-Encoding", "Connection"}

func (x *exchanges) check(t *testing.T, got []fakebackend.Request, in []byte) {
	t.Helper()
	x.mu.Lock()
	reqs := slices.Clone(x.reqs)
	x.mu.Unlock()
	for i, s := range reqs {
		if s.to-s.from > 1 {
			t.Errorf("client request %d reached the backend %d times", i+1, s.to-s.from)
		}
	}
	for k, r := range got {
		// A record that came after the handler returned (a body cut short
		// is recorded once the proxy drops the connection) belongs to the
		// last request.
		var connection []string
		for _, s := range reqs {
			if k >= s.from && (k < s.to || s.to == s.from) {
				connection = s.connection
			}
		}
		if k >= len(reqs) && len(reqs) > 0 {
			connection = reqs[len(reqs)-1].connection
		}
		for _, v := range r.Violations {
			if v.Rule != fakebackend.RuleIncompleteBody && v.Rule != fakebackend.RuleIncompleteHead {
				t.Errorf("the backend got malformed HTTP: %s: %s (bytes %q)", v.Rule, v.Detail, v.Bytes)
			}
		}
		for _, fld := range r.Header {
			name := fld.Name
			switch {
			case slices.ContainsFunc(upstreamForbidden, equalFolder(name)):
				t.Errorf("hop-by-hop field %s: %q went upstream", name, fld.Value)
			case strings.EqualFold(name, "Connection") && !strings.EqualFold(fld.Value, "close"):
				t.Errorf("Connection: %q went upstream, want only close", fld.Value)
			case strings.EqualFold(name, "Transfer-Encoding") && !strings.EqualFold(fld.Value, "chunked"):
				t.Errorf("Transfer-Encoding: %q went upstream, want only the proxy's own chunked", fld.Value)
			case slices.ContainsFunc(ownFields, equalFolder(name)):
			case slices.ContainsFunc(connectionNames(connection), equalFolder(name)):
				t.Errorf("%s, named in the client's Connection %q, went upstream", name, connection)
			}
		}
		for _, fld := range r.Trailers {
			if hopByHop(fld.Name) || slices.ContainsFunc(upstreamForbidden, equalFolder(fld.Name)) {
				t.Errorf("hop-by-hop trailer field %s: %q went upstream", fld.Name, fld.Value)
			}
		}
		if t.Failed() {
			t.Fatalf("backend request %d:\n%s\nfrom client input %q", k+1, r.RawHead, in)
		}
	}
}

func connectionNames(lines []string) []string {
	var names []string
	for _, line := range lines {
		for tok := range strings.SplitSeq(line, ",") {
			if tok = strings.Trim(tok, " \t"); tok != "" {
				names = append(names, tok)
			}
		}
	}
	return names
}

func equalFolder(a string) func(string) bool {
	return func(b string) bool { return strings.EqualFold(a, b) }
}
