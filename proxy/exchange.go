package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
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
// It honours what the proxy relies on Transport for: the httptrace hooks
// (GotConn, WroteRequest, GotFirstResponseByte, Got1xxResponse), the
// request context (cancelling it closes the connection), Expect:
// 100-continue (the body waits for an invitation, a final response or
// expectContinue, RFC 9110 §10.1.1), and at most max1xx interim responses.
type exchange struct {
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	expectContinue time.Duration
}

// max1xx bounds the interim responses read before the final one, as
// Transport does, so that a backend cannot keep an attempt alive with an
// endless stream of 1xx.
const max1xx = 5

// errBodyNotSent ends the writing of a body the backend declined: it sent a
// final response instead of 100 Continue.
var errBodyNotSent = errors.New("proxy: the backend answered before asking for the request body")

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
	fail := func(err error) (*http.Response, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, err
	}

	w := &requestWriter{conn: conn, req: req, trace: trace}
	if hasBody(req) {
		if expectsContinue(req) {
			w.gate = make(chan bool, 1)
		}
		go w.write(e.expectContinue)
	} else {
		w.write(0)
		if err := w.writeErr(); err != nil {
			return fail(err)
		}
	}

	br := bufio.NewReader(conn)
	for n1xx := 0; ; n1xx++ {
		if _, err := br.Peek(1); err != nil {
			return fail(w.failure(err))
		}
		if n1xx == 0 && trace.GotFirstResponseByte != nil {
			trace.GotFirstResponseByte()
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
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
	conn  net.Conn
	req   *http.Request
	trace *httptrace.ClientTrace
	gate  chan bool // Expect: 100-continue: true sends the body, false drops it
	once  sync.Once // gate is decided once

	mu  sync.Mutex
	err error // the write's error
}

// write writes the request; with a gate it flushes the head and waits up to
// wait for the decision before the body.
func (w *requestWriter) write(wait time.Duration) {
	bw := bufio.NewWriter(directWriter{w.conn})
	req := w.req
	if w.gate != nil {
		req = req.WithContext(req.Context()) // a shallow copy, to swap the body
		req.Body = &gatedBody{src: w.req.Body, gate: w.gate, wait: wait}
	}
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	if err != nil && !errors.Is(err, errBodyNotSent) {
		// The backend has half a request and will wait for the rest; so
		// would the read of its response. Give up on both at once, as
		// Transport does: the write's error is the attempt's.
		w.conn.Close()
	}
	if w.trace.WroteRequest != nil {
		w.trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
}

// writeErr returns the write's error so far.
func (w *requestWriter) writeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// open decides the gate: the backend invited the body (100 Continue) or
// answered without it (a final response).
func (w *requestWriter) open(send bool) {
	if w.gate != nil {
		w.once.Do(func() { w.gate <- send })
	}
}

// failure is the error to report for a response that could not be read:
// the write's own error when the write failed first (the client's body
// could not be read, or the backend reset the connection while the request
// was going out), since that is the cause.
func (w *requestWriter) failure(readErr error) error {
	if err := w.writeErr(); err != nil && !errors.Is(err, errBodyNotSent) {
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
// final response or the timer. The head is out by then: Request.Write
// flushes it before a body that is not in memory, and this one is not.
type gatedBody struct {
	src    io.ReadCloser
	gate   chan bool
	wait   time.Duration
	opened bool
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if !b.opened {
		t := time.NewTimer(b.wait)
		defer t.Stop()
		select {
		case send := <-b.gate:
			if !send {
				return 0, errBodyNotSent
			}
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

func (b *exchangeBody) Close() error {
	b.stop()
	err := b.ReadCloser.Close()
	if cerr := b.conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}
