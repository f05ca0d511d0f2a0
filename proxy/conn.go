package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamConn is a connection to a backend that enforces the proxy's
// per-operation timeouts and counts the bytes it wrote.
//
// The count is what makes failover safe: a request of which no byte reached
// the backend may go to another one whatever its method, while one that
// was (even partly) sent may be repeated only if repeating it is harmless.
//
// Reads get a fresh deadline each, so the read timeout bounds every gap in
// the response rather than the whole response. Until the request has been
// written (or the response has begun) reads are not bounded: the transport
// reads in the background while it is still sending, and a slow upload is
// bounded by the write timeout, not the read timeout.
type upstreamConn struct {
	net.Conn
	readTimeout time.Duration
	armed       atomic.Bool
	wmu         sync.Mutex // held during a write, so that sent waits for its count
	written     atomic.Int64
	head        *connectionWatch
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if c.armed.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	n, err := c.Conn.Read(p)
	c.head.observe(p[:n])
	return n, err
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.Conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// sent reports whether any byte of the request reached the connection. A
// write under way is waited for, since its bytes count only once it
// returns; it is asked after an attempt failed, when the connection is
// closed and a write returns at once.
func (c *upstreamConn) sent() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.written.Load() > 0
}

// arm starts the read timeout; a read already waiting gets the deadline too.
func (c *upstreamConn) arm() {
	if !c.armed.Swap(true) {
		c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
}

// dialer dials one new connection per attempt, bounded by the connect
// timeout (name resolution included).
//
// TCP keep-alive probes are off: the read timeout notices a dead backend
// long before a probe would (15 s idle by default), and on a connection
// that carries one request their four setsockopt calls are a measurable
// share of the connection's cost.
func dialer(connect, read time.Duration) func(ctx context.Context, network, addr string) (*upstreamConn, error) {
	d := &net.Dialer{Timeout: connect, KeepAlive: -1}
	return func(ctx context.Context, network, addr string) (*upstreamConn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &upstreamConn{Conn: c, readTimeout: read, head: newConnectionWatch()}, nil
	}
}
