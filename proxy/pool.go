package proxy

import "time"

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
// A backend may close an idle connection just as a request goes out on it
// (RFC 9112 §9.3.1). An idle connection is checked before it is reused,
// which finds most such closes; one that slips through and ends before any
// response byte makes the proxy send the request once more, on a new
// connection to the same backend, when that cannot do harm: no byte of it
// went out, or it is a bodiless GET, HEAD, OPTIONS or TRACE. net/http's
// Transport does the same, and also resends any request carrying an
// Idempotency-Key field; the proxy does not, since that key is the
// client's to retry with.
//
// A connection is kept only when its response was read to the end, the
// whole request went out (a body still being sent when the response has
// ended gets maxWriteWait to finish), the backend did not ask to close,
// and nothing arrived after the response.
//
// Idle connections are kept up to PooledIdlePerBackend per backend and
// PooledIdleTimeout each; ReverseProxy.CloseIdleConnections closes them at
// once.
func WithPooledUpstream() Option {
	return func(c *config) error {
		c.pooled = true
		return nil
	}
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
