package fakebackend

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Who ended a connection (Conn.ClosedBy).
const (
	closedByPeer     = "peer"
	closedByBackend  = "backend"
	closedByShutdown = "shutdown"
)

// lingerLimit bounds how long a connection the backend closes waits for the
// peer's FIN after its own (see conn.closeGracefully).
const lingerLimit = time.Second

// conn serves one accepted connection: one goroutine reading requests in a
// loop and answering each before reading the next.
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	p      parser
	remote string
	id     uint64
	epoch  uint64
	seq    int
	buf    []byte // the echo, reused

	stop     chan struct{} // closed by shutdown
	stopOnce sync.Once
	shut     atomic.Bool
	done     chan struct{} // closed when serve returns
}

var readerPool, writerPool sync.Pool

func newConn(s *Server, nc net.Conn) *conn {
	br, _ := readerPool.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nc, 4<<10)
	} else {
		br.Reset(nc)
	}
	bw, _ := writerPool.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(nc, 4<<10)
	} else {
		bw.Reset(nc)
	}
	return &conn{
		srv:    s,
		nc:     nc,
		br:     br,
		bw:     bw,
		p:      parser{br: br, maxHead: s.cfg.maxHead, maxBody: s.cfg.maxBody},
		remote: nc.RemoteAddr().String(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// shutdown ends the connection from outside: Close or Reset of the backend.
func (c *conn) shutdown() {
	c.stopOnce.Do(func() {
		c.shut.Store(true)
		close(c.stop)
		c.nc.Close()
	})
}

func (c *conn) serve(resetFirst bool) {
	defer c.srv.wg.Done()
	defer close(c.done)
	defer c.srv.forget(c)
	defer c.release()

	if resetFirst {
		c.reset()
		c.closed(closedByBackend, false)
		return
	}
	for {
		// Wait for the first byte of a request before reading the clock:
		// At is when the request began to arrive, not when we began to wait.
		if _, err := c.br.Peek(1); err != nil {
			c.gone()
			return
		}
		at := time.Now()
		var m message
		if err := c.p.readHead(&m); err != nil {
			c.gone()
			return
		}
		b := c.srv.next()
		if m.status == 0 && !m.incomplete {
			if b.Continue && m.expectContinue && b.Fault == NoFault {
				// RFC 9110 §10.1.1: the client waits for this before
				// sending the body.
				c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
				c.bw.Flush()
			}
			c.p.readBody(&m)
		}
		c.seq++
		req := c.record(&m, at)
		if m.incomplete {
			c.gone()
			return
		}
		if m.status != 0 {
			c.refuse(&m)
			c.closeGracefully(m.close)
			return
		}
		switch c.respond(&b, &m, req) {
		case keepOpen:
			continue
		case closeConn:
			c.closeGracefully(m.close)
		case resetConn:
			c.reset()
			c.closed(closedByBackend, false)
		case hangConn:
			c.hang()
			c.gone()
		case failed:
			c.gone()
		}
		return
	}
}

// record files the request and returns the record.
func (c *conn) record(m *message, at time.Time) *Request {
	r := &Request{
		Backend:    c.srv.name,
		Conn:       c.id,
		Seq:        c.seq,
		At:         at,
		Remote:     c.remote,
		RawHead:    m.rawHead,
		RawBody:    m.rawBody,
		Method:     m.method,
		Target:     m.target,
		Proto:      m.proto,
		Header:     m.header,
		Body:       m.body,
		Trailers:   m.trailers,
		Violations: m.violations,
	}
	c.srv.rec.add(c.epoch, r, !m.incomplete)
	return r
}

// gone closes a connection the peer ended (or the backend shut down).
func (c *conn) gone() {
	c.nc.Close()
	c.closed(closedByPeer, false)
}

// closed records the end of the connection; a shutdown overrides by.
func (c *conn) closed(by string, askedClose bool) {
	if c.shut.Load() {
		by = closedByShutdown
	}
	c.srv.rec.close(c.epoch, c.id, by, askedClose)
}

// reset aborts the connection with an RST (SO_LINGER 0, then close).
func (c *conn) reset() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.nc.Close()
}

// closeGracefully sends FIN and waits, for a bounded time, for the peer to
// close too. Closing at once while request bytes are still unread would
// make the kernel send RST, and the peer could lose the response (RFC 9112
// §9.6: close in stages).
// The connection is recorded as closed once the FIN is sent: that is when
// the peer learns of it.
func (c *conn) closeGracefully(askedClose bool) {
	c.bw.Flush()
	tc, ok := c.nc.(*net.TCPConn)
	if ok {
		tc.CloseWrite()
	}
	c.closed(closedByBackend, askedClose)
	if ok {
		tc.SetReadDeadline(time.Now().Add(lingerLimit))
		io.Copy(io.Discard, c.br)
	}
	c.nc.Close()
}

// hang waits, reading and discarding, until the peer goes away or the
// backend shuts the connection.
func (c *conn) hang() {
	c.bw.Flush()
	io.Copy(io.Discard, c.br)
}

// pause waits d, or less if the connection is shut down; it reports whether
// the whole wait elapsed.
func (c *conn) pause(d time.Duration) bool {
	if d <= 0 {
		return !c.shut.Load()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// release returns the buffers to their pools.
func (c *conn) release() {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
}
