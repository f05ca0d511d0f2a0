package proxy

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// idleConns keeps the pooled mode's idle upstream connections, per backend
// address, the most recently used first: it is the one least likely to
// have been closed by the backend meanwhile.
type idleConns struct {
	max     int           // per address; above it a connection is closed
	timeout time.Duration // an idle connection is closed after it

	mu     sync.Mutex
	byAddr map[string][]*keptConn
}

func newIdleConns(max int, timeout time.Duration) *idleConns {
	return &idleConns{max: max, timeout: timeout, byAddr: map[string][]*keptConn{}}
}

// keptConn is a pooled connection with the buffers its requests share.
type keptConn struct {
	*upstreamConn
	addr  string
	lim   *io.LimitedReader // bounds each response head read through br
	br    *bufio.Reader
	bw    *bufio.Writer
	timer *time.Timer // closes the connection once idle for too long
}

func newKeptConn(c *upstreamConn, addr string) *keptConn {
	k := &keptConn{upstreamConn: c, addr: addr, lim: &io.LimitedReader{R: c}}
	k.br = bufio.NewReader(k.lim)
	k.bw = bufio.NewWriter(directWriter{c})
	return k
}

// get takes the most recently used idle connection to addr that the
// backend has not closed, or returns nil.
func (p *idleConns) get(addr string) *keptConn {
	for {
		p.mu.Lock()
		list := p.byAddr[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		k := list[len(list)-1]
		list[len(list)-1] = nil
		p.byAddr[addr] = list[:len(list)-1]
		p.mu.Unlock()
		// A timer that already fired is closing the connection. renew
		// comes first: the last body read left a read deadline, which
		// fails the raw read in alive once it has passed.
		if k.timer.Stop() {
			k.renew()
			if alive(k.Conn) {
				return k
			}
		}
		k.Close()
	}
}

// put keeps k for the next request to its address, or closes it when the
// address has as many idle connections as allowed.
func (p *idleConns) put(k *keptConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.byAddr[k.addr]
	if len(list) >= p.max {
		k.Close()
		return
	}
	p.byAddr[k.addr] = append(list, k)
	if k.timer == nil {
		k.timer = time.AfterFunc(p.timeout, func() { p.expire(k) })
	} else {
		k.timer.Reset(p.timeout)
	}
}

// expire closes k, idle for the whole timeout, and forgets it.
func (p *idleConns) expire(k *keptConn) {
	p.mu.Lock()
	list := p.byAddr[k.addr]
	for i, c := range list {
		if c == k {
			p.byAddr[k.addr] = append(list[:i], list[i+1:]...)
			list[len(list)-1] = nil
			break
		}
	}
	p.mu.Unlock()
	k.Close()
}

// closeAll closes every idle connection.
func (p *idleConns) closeAll() {
	p.mu.Lock()
	all := p.byAddr
	p.byAddr = map[string][]*keptConn{}
	p.mu.Unlock()
	for _, list := range all {
		for _, k := range list {
			k.timer.Stop()
			k.Close()
		}
	}
}

// renew readies a reused connection for its next request: the written
// count, the read timeout and the response head watch belong to one
// request, and the previous one left them spent.
func (k *keptConn) renew() {
	k.written.Store(0)
	k.armed.Store(false)
	k.Conn.SetReadDeadline(time.Time{})
	k.head.reset()
}
