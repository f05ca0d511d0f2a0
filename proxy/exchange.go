package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// exchange is the seed mode's RoundTripper: one request on one new
// connection, written and read on the caller's goroutine.
//
// net/http's Transport runs a connection through a dialing goroutine, a
// read loop and a write loop with channel hand-offs between them, which is
// the right machinery for pooled connections and most of the CPU a
// one-request connection costs (BENCHMARKS.md). Here a connection carries
// exactly one request, so none of it is needed: the request is written
// with Request.Write and the response read with http.ReadResponse, the
// same framing code Transport uses. A request body is written from a
// goroutine of its own, so that a backend answering before it has read
// the whole body (RFC 9112 §9.3) is heard while the body is still going
// out.
//
// It keeps what the proxy relies on Transport for: the httptrace hooks
// (GotConn, GotFirstResponseByte, Got1xxResponse here; WroteRequest comes
// from Request.Write), the request context (cancelling it closes the
// connection), Expect: 100-continue (the body waits for an invitation, a
// final response or expectContinue, RFC 9110 §10.1.1), Transport's checks
// of the header fields it sends and its bound on a response head.
type exchange struct {
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	expectContinue time.Duration
}

// maxResponseHead bounds each response head read, as Transport's default
// MaxResponseHeaderBytes does: a backend streaming an endless header line
// must not take the proxy's memory.
const maxResponseHead = 10 << 20

// max1xx bounds the interim responses before the final one. Transport has
// no such bound when a Got1xxResponse hook is set, as the proxy's is, but
// then a backend could hold an attempt forever with a stream of 103s; no
// real server sends anywhere near this many.
const max1xx = 100

func (e *exchange) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	if trace == nil {
		trace = &httptrace.ClientTrace{}
	}
	if err := validHeader(req.Header); err != nil {
		return nil, err
	}
	conn, err := e.dial(ctx, "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	if trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: conn})
	}
	// Whatever blocks on the connection ends when the client goes away.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	w := &requestWriter{conn: conn, req: req, aborted: make(chan struct{})}
	fail := func(err error) (*http.Response, error) {
		stop()
		conn.Close()
		w.abort()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, err
	}

	if hasBody(req) {
		if expectsContinue(req) {
			w.gate = make(chan bool, 1)
		}
		go w.write(e.expectContinue)
	} else if err := w.write(0); err != nil {
		return fail(err)
	}

	head := &io.LimitedReader{R: conn}
	br := bufio.NewReader(head)
	for n1xx := 0; ; n1xx++ {
		head.N = maxResponseHead
		if _, err := br.Peek(1); err != nil {
			return fail(w.failure(err))
		}
		if n1xx == 0 && trace.GotFirstResponseByte != nil {
			trace.GotFirstResponseByte()
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			if head.N <= 0 {
				err = fmt.Errorf("proxy: response head over %d bytes: %w", maxResponseHead, err)
			}
			return fail(w.failure(err))
		}
		if res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			if n1xx == max1xx {
				return fail(fmt.Errorf("proxy: more than %d interim responses", max1xx))
			}
			if res.StatusCode == http.StatusContinue {
				w.open(true)
			}
			if trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
					return fail(err)
				}
			}
			continue
		}
		head.N = math.MaxInt64 // the body is bounded by its framing, not here
		w.open(false)
		res.Body = &exchangeBody{ReadCloser: res.Body, conn: conn, stop: stop, br: br}
		return res, nil
	}
}

// validHeader refuses what Transport refuses to send: a field name that is
// not a token, a value with a control character (RFC 9110 §5.1, §5.5).
func validHeader(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("proxy: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("proxy: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// hasBody reports whether req has a body to write after its head.
func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
}

func expectsContinue(req *http.Request) bool {
	return httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue")
}

// requestWriter writes one request, its body possibly from a goroutine of
// its own and held back until the backend asks for it.
type requestWriter struct {
	conn net.Conn
	req  *http.Request
	gate chan bool // Expect: 100-continue: true sends the body, false drops it
	once sync.Once // gate is decided once
	// declined is set when the gate dropped the body because the backend
	// answered without inviting it: the write then ends early, and the
	// response it did send is the attempt's answer.
	declined atomic.Bool
	// aborted is closed when the attempt has failed: a body held at the
	// gate is not sent then.
	aborted   chan struct{}
	abortOnce sync.Once

	mu  sync.Mutex
	err error // the write's error
}

// write writes the request and returns the write's error; with a gate it
// waits up to wait for the decision before the body. Request.Write reports
// to the trace's WroteRequest itself.
func (w *requestWriter) write(wait time.Duration) error {
	bw := bufio.NewWriter(directWriter{w.conn})
	req := w.req
	if w.gate != nil {
		req = req.WithContext(req.Context()) // a shallow copy, to swap the body
		req.Body = &gatedBody{src: w.req.Body, w: w, wait: wait}
	}
	err := req.Write(bw)
	if err == nil {
		// Request.Write flushes only a buffer of its own making.
		err = bw.Flush()
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	if err != nil && !w.declined.Load() {
		// The backend has half a request and will wait for the rest; so
		// would the read of its response. Give up on both at once, as
		// Transport does: the write's error is the attempt's.
		w.conn.Close()
	}
	return err
}

// open decides the gate: the backend invited the body (100 Continue) or
// answered without it (a final response).
func (w *requestWriter) open(send bool) {
	if w.gate != nil {
		w.once.Do(func() { w.gate <- send })
	}
}

func (w *requestWriter) abort() { w.abortOnce.Do(func() { close(w.aborted) }) }

// failure is the error to report for a response that could not be read:
// the write's own error when the write failed first (the client's body
// could not be read, or the backend reset the connection while the request
// was going out), since that is the cause.
func (w *requestWriter) failure(readErr error) error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil && !w.declined.Load() {
		return err
	}
	return readErr
}

// directWriter is what the request's buffer writes to. Request.Write
// flushes the head before a body that is not in memory, and bufio.Writer
// then hands the copy of a Content-Length body to ReadFrom: each read of
// the client's body goes out at once, as with Transport, rather than
// waiting in the buffer until it fills (a client that stalls would leave
// the bytes it did send unsent). A chunked body is flushed chunk by chunk
// by Request.Write itself.
type directWriter struct{ conn net.Conn }

func (d directWriter) Write(p []byte) (int, error) { return d.conn.Write(p) }

func (d directWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{d.conn}, r)
}

// gatedBody holds a body back until the backend asks for it (Expect:
// 100-continue): its first read waits for the backend's invitation, its
// final response, the end of the attempt or the timer. The head is out by
// then: Request.Write flushes it before a body that is not in memory, and
// this one is not.
type gatedBody struct {
	src    io.ReadCloser
	w      *requestWriter
	wait   time.Duration
	opened bool
}

// errBodyNotSent ends the writing of a body the backend declined or that
// the failed attempt no longer needs.
var errBodyNotSent = fmt.Errorf("proxy: request body not sent")

func (b *gatedBody) Read(p []byte) (int, error) {
	if !b.opened {
		t := time.NewTimer(b.wait)
		defer t.Stop()
		select {
		case send := <-b.w.gate:
			if !send {
				b.w.declined.Store(true)
				return 0, errBodyNotSent
			}
		case <-b.w.aborted:
			return 0, errBodyNotSent
		case <-t.C:
		}
		b.opened = true
	}
	return b.src.Read(p)
}

func (b *gatedBody) Close() error { return b.src.Close() }

// exchangeBody is a response body whose connection goes with it: the
// connection carried one request, so closing the body closes it.
type exchangeBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
	br   *bufio.Reader
}

// Buffered reports how many bytes after the response head have already
// arrived: a read of the body will not wait for the backend if some have.
func (b *exchangeBody) Buffered() int { return b.br.Buffered() }

// Close closes the connection before the body: net/http's body would
// otherwise read on to the end of a body not yet read in full, for as long
// as the backend keeps sending.
func (b *exchangeBody) Close() error {
	b.stop()
	b.conn.Close()
	b.ReadCloser.Close()
	return nil
}
