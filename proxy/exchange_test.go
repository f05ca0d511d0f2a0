package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// TestRequestBodyIntactInPieces sends bodies that the client's side hands
// over in pieces of every size, with and without a length, and checks the
// backend got every byte in order. The pieces are what shows a copy that
// reuses or reorders a buffer: a body of zeros or one read in full would
// hide it.
func TestRequestBodyIntactInPieces(t *testing.T) {
	body := make([]byte, 40<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(body)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
			http.Error(w, "body differs", http.StatusBadRequest)
			t.Errorf("backend got %d bytes (err %v), not the %d sent", n, err, len(body))
		}
	}))
	t.Cleanup(back.Close)
	p := newProxy(t, []string{back.URL})

	readers := map[string]func() io.Reader{
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
		"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(body)) },
		"odd pieces": func() io.Reader { return &pieces{src: bytes.NewReader(body), rng: rand.New(rand.NewPCG(3, 4))} },
	}
	for name, r := range readers {
		for _, length := range []int64{int64(len(body)), -1} {
			req := httptest.NewRequest(http.MethodPost, "/up", nil)
			req.Body, req.ContentLength = io.NopCloser(r()), length
			if length < 0 {
				req.TransferEncoding = []string{"chunked"}
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Errorf("%s, length %d: status %d", name, length, rec.Code)
			}
		}
	}
}

// pieces reads its source in pieces of random sizes up to 5000 bytes.
type pieces struct {
	src io.Reader
	rng *rand.Rand
}

func (p *pieces) Read(b []byte) (int, error) {
	n := 1 + p.rng.IntN(5000)
	return p.src.Read(b[:min(n, len(b))])
}

// TestHeadNotHeldForSlowBody: a backend that sends its head and the start
// of its body, then waits, must not keep the client from the status. The
// backend here waits until the client has read the head, so a proxy that
// held the head back for more body would never get it there.
func TestHeadNotHeldForSlowBody(t *testing.T) {
	for name, start := range map[string]string{
		"length":  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
		"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
		"no body": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			gotHead := make(chan struct{})
			back := startRaw(t, func(c net.Conn, _ seen) {
				io.WriteString(c, start)
				select {
				case <-gotHead:
				case <-time.After(10 * time.Second):
				}
			})
			p := newProxy(t, []string{back.url()})
			c, err := net.Dial("tcp", hostOf(t, serve(t, p)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			close(gotHead)
			if err != nil {
				t.Fatalf("no head while the backend held the rest of its body: %v", err)
			}
			res.Body.Close()
		})
	}
}

// A backend may answer a request sent with Expect: 100-continue without
// asking for the body (RFC 9110 §10.1.1). Its response, however long, must
// reach the client whole: the body that was never sent is no failure.
func TestFinalResponseBeforeContinueRelayedWhole(t *testing.T) {
	const size = 200_000
	ln := serveConns(t, func(c net.Conn, _ int) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return // the head only: the body is never asked for
		}
		io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 200000\r\n\r\n")
		c.Write(bytes.Repeat([]byte("x"), size))
	})
	p := newProxy(t, []string{"http://" + ln.Addr().String()})
	c, err := net.Dial("tcp", hostOf(t, serve(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusExpectationFailed || n != size || err != nil {
		t.Errorf("status %d, %d of %d body bytes (%v); want 417 and the whole body", res.StatusCode, n, size, err)
	}
}

// A response head without end must not take the proxy's memory: past the
// bound it is an invalid response, and the client gets 502.
func TestEndlessResponseHeadIsBadGateway(t *testing.T) {
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: ")
		line := bytes.Repeat([]byte("a"), 64<<10)
		for range (maxResponseHead / len(line)) + 2 {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	p := newProxy(t, []string{back.url()})
	res, body := get(t, serve(t, p)+"/big")
	checkBadGateway(t, res, body)
}

// Several 1xx responses before the final one are all relayed, and the
// final one too: 103 Early Hints may come more than once.
func TestManyInterimResponses(t *testing.T) {
	back := startRaw(t, func(c net.Conn, _ seen) {
		for i := range 8 {
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </s%d.css>; rel=preload\r\n\r\n", i)
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := newProxy(t, []string{back.url()})
	got := rawExchange(t, hostOf(t, serve(t, p)), "GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
	if n := strings.Count(got, "HTTP/1.1 103 "); n != 8 || !strings.Contains(got, "HTTP/1.1 200 OK") {
		t.Errorf("%d of 8 103 responses, and the final one: %v\n%s", n, strings.Contains(got, "HTTP/1.1 200 OK"), got)
	}
}

// A WithRoundTripper wrapper sees each hook once per attempt, as with
// net/http's Transport.
func TestTraceHooksOncePerAttempt(t *testing.T) {
	back := startRaw(t, nil)
	var conns, wrote, first atomic.Int32
	p := newProxy(t, []string{back.url()}, WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
				GotConn:              func(httptrace.GotConnInfo) { conns.Add(1) },
				WroteRequest:         func(httptrace.WroteRequestInfo) { wrote.Add(1) },
				GotFirstResponseByte: func() { first.Add(1) },
			})
			return next.RoundTrip(r.WithContext(ctx))
		})
	}))
	res, _ := get(t, serve(t, p)+"/t")
	if res.StatusCode != http.StatusOK || conns.Load() != 1 || wrote.Load() != 1 || first.Load() != 1 {
		t.Errorf("status %d; GotConn %d, WroteRequest %d, GotFirstResponseByte %d times; want 200 and each once",
			res.StatusCode, conns.Load(), wrote.Load(), first.Load())
	}
}

// When the proxy stops relaying a body early with the client's request
// still live (here a ResponseWriter that fails, as a middleware's may),
// closing the backend's response must close its connection at once, not
// read on to the end of a body the backend is in no hurry to send.
func TestEarlyCloseDoesNotDrainBackend(t *testing.T) {
	release := make(chan struct{})
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the backend's own cleanup, which waits for this
	p := newProxy(t, []string{back.url()}, WithReadTimeout(time.Minute))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { recover() }() // the proxy aborts the response
		p.ServeHTTP(failingWriter{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/d", nil))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy was still reading the backend's body 10 s after the client side failed (read timeout 1 min)")
	}
}

// failingWriter fails every body write, as a broken client connection does.
type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
