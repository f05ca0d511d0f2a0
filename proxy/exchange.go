package proxy

import (
	"bufio"
	"context"
	"errors"
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
	dial           func(ctx context.Context, network, addr string) (*upstreamConn, error)
	expectContinue time.Duration
	// idle keeps connections between requests (WithPooledUpstream); nil in
	// the seed mode, where every request has a connection of its own.
	idle *idleConns
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

// maxWriteWait is how long a finished response waits for its request's
// body writer to report before the connection is given up rather than
// kept: the backend may answer before it has read the whole body, and a
// connection with part of a body still to go carries nothing else. It is
// Transport's figure (maxWriteWaitBeforeConnReuse).
const maxWriteWait = 50 * time.Millisecond

func (e *exchange) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := validHeader(req.Header); err != nil {
		return nil, err
	}
	keep := e.idle != nil
	if keep {
		if req.Close {
			kept := *req // a RoundTripper must not change the request
			kept.Close = false
			req = &kept
		}
		if k := e.idle.get(req.URL.Host); k != nil {
			res, again, err := e.send(req, k, true, true)
			if !again {
				return res, err
			}
			// The backend closed the connection as the request went out:
			// a new one gets it, as Transport would do.
		}
	}
	c, err := e.dial(req.Context(), "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	res, _, err := e.send(req, newKeptConn(c, req.URL.Host), false, keep)
	return res, err
}

// send makes one exchange on k. again reports that it failed on a reused
// connection in a way that makes sending it on a new one safe and right:
// no byte of a response came, and either no byte of the request went out
// or the request is a bodiless GET, HEAD, OPTIONS or TRACE (RFC 9112
// §9.3.1, pool.go).
func (e *exchange) send(req *http.Request, k *keptConn, reused, keep bool) (_ *http.Response, again bool, _ error) {
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	if trace == nil {
		trace = &httptrace.ClientTrace{}
	}
	if trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: k.upstreamConn, Reused: reused})
	}
	// Whatever blocks on the connection ends when the client goes away.
	stop := context.AfterFunc(ctx, func() { k.Close() })
	w := &requestWriter{conn: k.upstreamConn, bw: k.bw, req: req, aborted: make(chan struct{}), done: make(chan struct{})}
	answered := false
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		k.Close()
		w.abort()
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		// A timeout is a backend that is slow, not one that closed the
		// connection: sending again would only wait again.
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		return nil, reused && !answered && !timeout && !hasBody(req) && (!k.sent() || replayable(req)), err
	}

	if hasBody(req) {
		if expectsContinue(req) {
			w.gate = make(chan bool, 1)
		}
		go w.write(e.expectContinue)
	} else if err := w.write(0); err != nil {
		return fail(err)
	}

	for n1xx := 0; ; n1xx++ {
		k.lim.N = maxResponseHead
		if _, err := k.br.Peek(1); err != nil {
			return fail(w.failure(err))
		}
		answered = true
		if n1xx == 0 && trace.GotFirstResponseByte != nil {
			trace.GotFirstResponseByte()
		}
		res, err := http.ReadResponse(k.br, req)
		if err != nil {
			if k.lim.N <= 0 {
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
		k.lim.N = math.MaxInt64 // the body is bounded by its framing, not here
		w.open(false)
		b := &exchangeBody{ReadCloser: res.Body, k: k, stop: stop, ended: res.Body == http.NoBody}
		if keep && !res.Close && res.StatusCode != http.StatusSwitchingProtocols {
			b.pool, b.w = e.idle, w
		}
		res.Body = b
		return res, false, nil
	}
}

// replayable reports whether req may be sent again on a new connection
// after a reused one failed with the request written: a safe method
// (RFC 9110 §9.2.1), as for Transport.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// CloseIdleConnections closes the pooled connections not in use.
func (e *exchange) CloseIdleConnections() {
	if e.idle != nil {
		e.idle.closeAll()
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
	bw   *bufio.Writer // the connection's, its buffer reused
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

	mu   sync.Mutex
	err  error         // the write's error
	done chan struct{} // closed when the write has ended
}

// write writes the request and returns the write's error; with a gate it
// waits up to wait for the decision before the body. Request.Write reports
// to the trace's WroteRequest itself.
func (w *requestWriter) write(wait time.Duration) error {
	defer close(w.done)
	bw := w.bw
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

// finished reports whether the whole request went out, waiting up to
// maxWriteWait for a body writer still at it.
func (w *requestWriter) finished() bool {
	select {
	case <-w.done:
	default:
		t := time.NewTimer(maxWriteWait)
		defer t.Stop()
		select {
		case <-w.done:
		case <-t.C:
			return false
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err == nil && !w.declined.Load()
}

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

// exchangeBody is a response body whose connection goes with it: closing
// the body closes the connection, or in the pooled mode the connection
// goes back for the next request once the exchange has ended cleanly.
type exchangeBody struct {
	io.ReadCloser
	k     *keptConn
	stop  func() bool
	ended bool // the body was read to its end (or there was none)
	// Set when the connection may be kept: the pool to keep it in, and the
	// request's writer, which must have finished.
	pool     *idleConns
	w        *requestWriter
	released bool // the connection is back in the pool: no longer ours
	closed   bool
}

// Read hands the connection back as soon as the body ends, before the
// caller relays its last bytes: a client that then sends its next request
// at once finds the connection ready.
func (b *exchangeBody) Read(p []byte) (int, error) {
	if b.released {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.ended = true
		b.release()
	}
	return n, err
}

// release keeps the connection when the response was read to its end, the
// request went out whole, nothing more arrived and the client has not gone
// (stop reports that the context's close did not run).
func (b *exchangeBody) release() {
	if b.pool == nil || !b.ended {
		return
	}
	pool := b.pool
	b.pool = nil // decided once: Close must not wait for the writer again
	if b.k.br.Buffered() == 0 && b.w.finished() && b.stop() {
		b.released = true
		b.ReadCloser.Close() // at its end: reads nothing more
		pool.put(b.k)
	}
}

// Buffered reports how many bytes after the response head have already
// arrived: a read of the body will not wait for the backend if some have.
func (b *exchangeBody) Buffered() int {
	if b.released {
		return 0
	}
	return b.k.br.Buffered()
}

// Close closes the connection unless it went back to the pool, and before
// the body: net/http's body would otherwise read on to the end of a body
// not yet read in full, for as long as the backend keeps sending.
func (b *exchangeBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.released {
		b.release() // a response without a body is never read
	}
	if b.released {
		return nil
	}
	b.stop()
	b.k.Close()
	b.ReadCloser.Close()
	return nil
}
