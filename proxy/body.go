package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// requestBody lends the client's request body to one attempt after another
// and tells whether a failed attempt left it whole, that is, whether the
// request can still be sent again in full.
type requestBody struct {
	r    *http.Request
	read atomic.Int64 // bytes of the client's body consumed by any attempt
	last *attemptBody
	// bad is set when reading the client's body failed (malformed chunked
	// framing, a client gone or too slow): the attempt then failed through
	// the client's fault, not the backend's.
	bad atomic.Bool
	// ended is set when a read reached the body's end.
	ended atomic.Bool
	// closing is set when the answer closes the connection.
	closing bool
}

// clientFault reports whether an attempt failed because the client's body
// could not be read.
func (b *requestBody) clientFault() bool { return b.bad.Load() }

func newRequestBody(r *http.Request) *requestBody { return &requestBody{r: r} }

// empty reports whether the request has no body to send.
func (b *requestBody) empty() bool {
	return b.r.Body == nil || b.r.Body == http.NoBody || b.r.ContentLength == 0
}

// next returns the body for the next attempt: nil for an empty body, a
// fresh copy when the request can make one (GetBody), otherwise the client's
// stream itself, shielded from the transport's Close (which would end the
// client's request for good).
func (b *requestBody) next(first bool) (io.ReadCloser, error) {
	switch {
	case b.empty():
		return nil, nil
	case b.r.GetBody != nil && !first:
		return b.r.GetBody()
	}
	b.last = &attemptBody{src: b.r.Body, read: &b.read, bad: &b.bad, ended: &b.ended}
	return b.last, nil
}

// intact reports whether the body can be sent again after the last attempt:
// there is none, a copy can be made, or no attempt took a byte of the stream
// and the last one can be cut off from it. The cut matters because the
// transport may go on reading in the background after RoundTrip returned;
// a read still waiting on the client would steal bytes from the next
// attempt, so its presence makes the body not intact.
func (b *requestBody) intact() bool {
	if b.empty() || b.r.GetBody != nil {
		return true
	}
	return b.read.Load() == 0 && (b.last == nil || b.last.revoke())
}

// closeIfUnread makes the server close the client's connection after the
// answer about to go out when the client's body has not been read to its
// end: a backend answered early, or the attempts failed. The rest of the
// body is not needed, and leaving the connection to the server would have
// it read that rest while an attempt's writer may still be reading too
// (with full duplex the server also starts watching the connection for the
// next request when the body ends, which a late end then races: net/http
// panics with "invalid concurrent Body.Read call"). RFC 9112 §9.6 lets a
// server close after answering an incomplete request.
func (b *requestBody) closeIfUnread(w http.ResponseWriter) {
	if b.unread() {
		w.Header().Set("Connection", "close")
		b.closing = true
	}
}

func (b *requestBody) unread() bool {
	return !b.empty() && b.r.GetBody == nil && !b.ended.Load()
}

// settle runs as the handler returns. When the answer closes the
// connection over a body still unread, a read of it may be under way in an
// attempt's writer, which must end first: the server reads the connection
// once the handler has returned, and net/http panics at two readers. A
// read deadline in the past ends that read at once (the rest of the body is
// not wanted), where waiting for the client's next bytes could hold the end
// of the answer back from a client that waits for it.
func (b *requestBody) settle(w http.ResponseWriter) {
	if !b.closing || b.last == nil || !b.unread() {
		return
	}
	if err := http.NewResponseController(w).SetReadDeadline(time.Now()); err != nil {
		b.last.revoke() // no connection to cut short: stop what reads it can
		return
	}
	b.last.stop()
}

// errRevoked is what a failed attempt's transport reads once the body has
// been handed to the next attempt.
var errRevoked = errors.New("proxy: request body handed to another attempt")

// attemptBody is the client's body as one attempt sees it.
type attemptBody struct {
	src     io.Reader
	read    *atomic.Int64
	bad     *atomic.Bool
	ended   *atomic.Bool
	mu      sync.Mutex
	idle    *sync.Cond // signalled when a read ends, once stop waits
	reading bool
	revoked bool
}

func (a *attemptBody) Read(p []byte) (int, error) {
	a.mu.Lock()
	if a.revoked {
		a.mu.Unlock()
		return 0, errRevoked
	}
	a.reading = true
	a.mu.Unlock()

	n, err := a.src.Read(p)
	a.read.Add(int64(n))
	if err == io.EOF {
		a.ended.Store(true)
	} else if err != nil {
		a.bad.Store(true)
	}

	a.mu.Lock()
	a.reading = false
	if a.idle != nil {
		a.idle.Broadcast()
	}
	a.mu.Unlock()
	return n, err
}

// revoke stops all further reads, unless one is under way.
func (a *attemptBody) revoke() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reading {
		return false
	}
	a.revoked = true
	return true
}

// stop revokes further reads and waits for one under way.
func (a *attemptBody) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked = true
	for a.reading {
		if a.idle == nil {
			a.idle = sync.NewCond(&a.mu)
		}
		a.idle.Wait()
	}
}

// Close leaves the client's body open: it belongs to the server, and a later
// attempt may still need it.
func (a *attemptBody) Close() error { return nil }
