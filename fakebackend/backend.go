// Package fakebackend provides HTTP/1.1 backends for testing reverse proxies.
//
// A fake backend reads and answers HTTP/1.1 itself, byte by byte, instead of
// relying on net/http's server: the standard server hides Transfer-Encoding,
// folds duplicate framing headers and answers malformed input with its own
// 400, so it cannot report what a proxy really put on the wire. A fake backend
// records every request exactly as it arrived, checks it against RFC 9112,
// and answers as it is told: normally, slowly, malformed, or not at all.
//
// The same backend runs in-process (Start), as a process or container driven
// through its control API (Dial), and behind one interface (Backend), so a
// test does not care where a backend runs.
package fakebackend

import (
	"context"
)

// Backend is a fake backend wherever it runs: in this process, in another
// process, or in a container. Every method is safe for concurrent use.
// Methods that may cross a process boundary return an error.
type Backend interface {
	// Name identifies the backend; it is also sent in the X-Proxyspec-Backend
	// response header.
	Name() string
	// URL is the base URL a proxy under test uses to reach the backend,
	// e.g. "http://127.0.0.1:40123".
	URL() string
	// Addr is URL's host:port.
	Addr() string

	// Requests returns a snapshot of every request received since the last
	// Reset, in arrival order.
	Requests(ctx context.Context) ([]Request, error)
	// WaitRequests blocks until at least n requests have been recorded since
	// the last Reset, or ctx ends, and returns the snapshot.
	WaitRequests(ctx context.Context, n int) ([]Request, error)
	// Conns returns a snapshot of every connection accepted since the last
	// Reset, in accept order.
	Conns(ctx context.Context) ([]Conn, error)
	// Stats returns the counters a fairness or connection-reuse check needs.
	Stats(ctx context.Context) (Stats, error)

	// SetDefault sets the behaviour used when the queue is empty.
	SetDefault(ctx context.Context, b Behaviour) error
	// Enqueue appends behaviours for the next requests, one request each, in
	// order; once they are used up the default applies again.
	Enqueue(ctx context.Context, bs ...Behaviour) error
	// SetMode switches how the listener treats new connections.
	SetMode(ctx context.Context, m Mode) error
	// Reset forgets recorded requests, connections and counters, empties the
	// queue, restores the default behaviour (Echo) and the Serve mode.
	Reset(ctx context.Context) error

	// Close stops the backend and releases everything it opened.
	Close() error
}
