package proxy

import (
	"net/http"
	"net/http/httptrace"
	"time"
)

// Limits of the pooled upstream mode (WithPooledUpstream).
const (
	// PooledIdlePerBackend bounds the idle connections kept for each
	// backend; a burst above it opens connections that are closed after
	// their request instead of being kept.
	PooledIdlePerBackend = 256
	// PooledIdleTimeout closes a connection idle for that long. It is under
	// the shortest keep-alive timeout in common servers' defaults (Apache
	// httpd's 5 s), so that the proxy rather than the backend usually ends
	// an idle connection: a backend closing one just as a request is sent
	// on it is the race that makes reuse fail (RFC 9112 §9.3.1).
	PooledIdleTimeout = 4 * time.Second
)

// WithPooledUpstream keeps upstream connections open between requests
// instead of opening one per request with Connection: close as the seed
// asks. It is opt-in: the seed's behaviour is the default.
//
// A connection still carries one request at a time, and the failover rules
// do not change: a request of which no byte was written on the reused
// connection may go to the next backend whatever its method; one that was
// written and got no response byte goes there only if its method is
// idempotent (RFC 9110 §9.2.2) and its body can be sent again. The read
// timeout starts when the request has been written, as on a new connection.
//
// When a reused connection closes before any response byte, net/http's
// Transport itself resends a GET, HEAD, OPTIONS or TRACE without a body
// once, on a new connection to the same backend (automatic retry of an
// idempotent request, RFC 9112 §9.3.1). It would do the same for a request
// of any method carrying Idempotency-Key or X-Idempotency-Key: such
// requests with a method that is not idempotent never use a pooled
// connection, so they are never sent twice.
//
// Idle connections are kept up to PooledIdlePerBackend per backend and
// PooledIdleTimeout each, or until the read timeout (which bounds every read
// on the connection) closes them; ReverseProxy.CloseIdleConnections closes
// them at once.
func WithPooledUpstream() Option {
	return func(c *config) error {
		c.pooled = true
		return nil
	}
}

// pooledTransport is the keep-alive counterpart of the per-request
// transport base: the same dialer, timeouts and protocol settings, with
// connections kept idle between requests.
type pooledTransport struct {
	keep  *http.Transport
	fresh http.RoundTripper // base: one connection per request
}

func newPooledTransport(base *http.Transport) *pooledTransport {
	keep := base.Clone()
	keep.DisableKeepAlives = false
	keep.MaxIdleConns = 0 // no overall limit: the per-backend one applies
	keep.MaxIdleConnsPerHost = PooledIdlePerBackend
	keep.IdleConnTimeout = PooledIdleTimeout
	return &pooledTransport{keep: keep, fresh: base}
}

func (t *pooledTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if replayedOnReuse(r) && !idempotent(r.Method) {
		return t.fresh.RoundTrip(r)
	}
	// WithContext copies the request, which a RoundTripper must not change.
	// The proxy's own trace still runs, after this one (httptrace composes).
	out := r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GotConn: renew}))
	out.Close = false
	return t.keep.RoundTrip(out)
}

// CloseIdleConnections closes the pooled connections not in use.
func (t *pooledTransport) CloseIdleConnections() { t.keep.CloseIdleConnections() }

// replayedOnReuse reports whether net/http's Transport would resend r on a
// new connection after it was written on a reused one that failed before
// any response byte: besides GET, HEAD, OPTIONS and TRACE, any request with
// an Idempotency-Key or X-Idempotency-Key field (net/http's isReplayable).
func replayedOnReuse(r *http.Request) bool {
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// renew readies a reused connection for the request it is handed to: the
// written count, the read timeout and the response head watch belong to
// one request, and the connection's previous request left them spent. The
// transport hands out a connection only once its previous request has been
// written in full and its response read to the end.
func renew(info httptrace.GotConnInfo) {
	c, ok := info.Conn.(*upstreamConn)
	if !ok || !info.Reused {
		return
	}
	c.written.Store(0)
	c.armed.Store(false)
	// The transport's idle read may be waiting with a deadline set while
	// the connection was armed; until the request is written, none applies.
	c.Conn.SetReadDeadline(time.Time{})
	c.head.reset()
}

// reset forgets the head read for the previous response on the connection.
func (w *connectionWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done, w.status, w.info = false, true, false
	w.line, w.values = w.line[:0], w.values[:0]
}

// CloseIdleConnections closes the upstream connections kept idle by
// WithPooledUpstream; a proxy without it has none. A WithRoundTripper
// wrapper hides them unless it has a CloseIdleConnections method too, as
// http.Client expects of a RoundTripper.
func (p *ReverseProxy) CloseIdleConnections() {
	if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
