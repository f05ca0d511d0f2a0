package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bodyGapTimeout bounds each wait for the next bytes of a client's request
// body by gap (0: no bound). The proxy streams a body upstream as it
// arrives, so a client trickling one would otherwise hold a backend
// connection for as long as it likes (slowloris). The bound is per gap, not
// for the whole body as http.Server.ReadTimeout would be, so that a large
// upload on a slow but live link is never cut off.
//
// When it fires, the body read fails and the proxy abandons the upstream
// attempt. The client then gets 408 Request Timeout (RFC 9110 §15.5.9), or
// whatever response had already begun, and the connection is closed: the
// rest of the body may still come, and the bytes after a body whose end
// was never read cannot be taken for the next request (RFC 9112 §9.6).
func bodyGapTimeout(h http.Handler, gap time.Duration) http.Handler {
	if gap <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &gapBody{src: r.Body, rc: http.NewResponseController(w), gap: gap}
		rw := &replyWriter{ResponseWriter: w}
		// A shallow copy carries the gapped body: handlers must not modify
		// the server's request, whose body the server inspects afterwards.
		r = r.WithContext(r.Context())
		r.Body = b
		h.ServeHTTP(rw, r)
		if !rw.hijacked {
			b.settle(w, rw.replied)
		}
	})
}

// maxDrain is how much of a body the handler left unread is read and
// thrown away to keep the connection: as much as net/http's server would.
const maxDrain = 256 << 10

// gapBody sets the connection's read deadline before each read of the body.
// Once the body has ended it clears it: the server keeps reading in the
// background to notice a client that leaves, and that read must not time
// out while the backend takes its time to answer. After the handler has
// returned the connection may serve the next request, whose deadlines are
// the server's own, so the body no longer touches them.
type gapBody struct {
	src io.ReadCloser
	rc  *http.ResponseController
	gap time.Duration

	mu      sync.Mutex // the proxy's transport reads from its own goroutine
	ended   bool       // a read returned io.EOF
	err     error      // the first other read error
	settled bool       // the handler returned and settle has run
}

func (b *gapBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.settled && !b.ended {
		b.rc.SetReadDeadline(time.Now().Add(b.gap))
	}
	b.mu.Unlock()
	n, err := b.src.Read(p)
	if err != nil {
		b.mu.Lock()
		if err == io.EOF {
			b.ended = true
			if !b.settled {
				b.rc.SetReadDeadline(time.Time{})
			}
		} else if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// Close leaves the body to the server, which closes it after the handler.
func (b *gapBody) Close() error { return nil }

// settle runs once the handler has returned normally and decides whether
// the connection can carry another request. It can when the body was read
// to its end, if need be by reading what the handler left (each gap still
// bounded). Otherwise net/http would go on with the connection anyway: with
// full duplex it neither drains the body nor minds that its own drain
// failed. So settle answers a request the handler gave up on without a
// response (net/http would send an empty 200 the backend never gave) and
// makes the server close the connection once the response is out.
func (b *gapBody) settle(w http.ResponseWriter, replied bool) {
	// An answer that ends the connection (the proxy closes one whose body
	// it left unread) leaves nothing to keep it for.
	closing := replied && httpguts.HeaderValuesContainsToken(w.Header()["Connection"], "close")
	var err error
	if !closing {
		err = b.drain()
	}
	b.mu.Lock()
	b.settled = true
	b.mu.Unlock()
	if err == nil {
		return
	}
	// The server's own drain of the body would wait another gap in vain.
	b.rc.SetReadDeadline(time.Now())
	closeAfterResponse(w)
	if replied {
		return
	}
	status := http.StatusBadRequest // malformed or truncated (RFC 9112 §6.3)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		status = http.StatusRequestTimeout
	}
	h := w.Header()
	clear(h)
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s", status, http.StatusText(status))
}

// drain reads the body to its end unless a read already failed; it returns
// nil once the body has ended.
func (b *gapBody) drain() error {
	b.mu.Lock()
	ended, err := b.ended, b.err
	b.mu.Unlock()
	switch {
	case ended:
		return nil
	case err != nil:
		return err
	}
	_, err = io.CopyN(io.Discard, b, maxDrain+1)
	switch {
	case err == io.EOF:
		return nil
	case err == nil:
		return fmt.Errorf("body too long to drain: more than %d bytes left", maxDrain)
	}
	return err
}

// closeAfterResponse makes the server close the connection after the
// response, whether or not its head has gone out, and only after a
// half-close and a short linger, so that the client reads the response
// rather than a reset caused by body bytes still arriving. A read past the
// limit of http.MaxBytesReader is the documented way to ask for that.
func closeAfterResponse(w http.ResponseWriter) {
	http.MaxBytesReader(w, io.NopCloser(strings.NewReader("x")), 0).Read(make([]byte, 1))
}

// replyWriter notes whether the handler began a final response or took
// the connection over.
type replyWriter struct {
	http.ResponseWriter
	replied  bool
	hijacked bool
}

func (w *replyWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.replied = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *replyWriter) Write(p []byte) (int, error) {
	w.replied = true
	return w.ResponseWriter.Write(p)
}

// FlushError and Hijack are here, not only behind Unwrap, because both may
// send a response head (or hand the connection over) without WriteHeader.
func (w *replyWriter) FlushError() error {
	w.replied = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *replyWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.replied, w.hijacked = true, true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *replyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
