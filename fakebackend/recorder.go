package fakebackend

import (
	"context"
	"slices"
	"sync"
	"time"
)

// recorder holds what a backend saw since the last reset. Requests are kept
// in fixed-size blocks, so recording one never copies those recorded before
// (a single growing slice would, on each growth); snapshots copy the records
// (their own byte slices and fields are shared: they are never modified once
// recorded).
//
// Every reset starts a new epoch. A connection remembers the epoch it was
// opened in, and whatever it reports for an older epoch is dropped, so a
// connection that outlives a reset cannot leak into the next test.
type recorder struct {
	mu      sync.Mutex
	epoch   uint64
	blocks  [][]Request // full blocks of blockSize, then the current one
	n       int         // requests recorded
	conns   []Conn
	stats   Stats
	changed chan struct{} // closed on the next change, if anyone waits
}

const blockSize = 1024

// open records a new connection and returns its id and epoch.
func (r *recorder) open(remote string, at time.Time) (id, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, Conn{ID: uint64(len(r.conns) + 1), Remote: remote, Opened: at})
	r.stats.Connections++
	r.signal()
	return uint64(len(r.conns)), r.epoch
}

// add records a request read on connection id of epoch; complete says
// whether it arrived whole. It fills in req.Index.
func (r *recorder) add(epoch uint64, req *Request, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch != r.epoch {
		return
	}
	req.Index = r.n
	if len(r.blocks) == 0 || len(r.blocks[len(r.blocks)-1]) == blockSize {
		r.blocks = append(r.blocks, make([]Request, 0, blockSize))
	}
	last := &r.blocks[len(r.blocks)-1]
	*last = append(*last, *req)
	r.n++
	r.stats.Requests++
	r.stats.Violations += len(req.Violations)
	if complete {
		r.conns[req.Conn-1].Requests++
	}
	r.signal()
}

// close records the end of connection id of epoch. askedClose says the
// request itself asked for the close (Connection: close, HTTP/1.0), which
// counts like a close by the proxy for OneShotConns.
func (r *recorder) close(epoch, id uint64, by string, askedClose bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch != r.epoch {
		return
	}
	c := &r.conns[id-1]
	c.Closed, c.ClosedBy = true, by
	if c.Requests == 1 && (by == closedByPeer || askedClose) {
		r.stats.OneShotConns++
	}
	r.signal()
}

// reset forgets everything and starts a new epoch.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	r.blocks, r.n, r.conns, r.stats = nil, 0, nil, Stats{}
	r.signal()
}

func (r *recorder) signal() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// snapshot is a consistent copy of what was recorded.
type snapshot struct {
	reqs  []Request
	conns []Conn
	stats Stats
}

func (r *recorder) snapshot() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *recorder) snapshotLocked() snapshot {
	reqs := make([]Request, 0, r.n)
	for _, b := range r.blocks {
		reqs = append(reqs, b...)
	}
	return snapshot{reqs: reqs, conns: slices.Clone(r.conns), stats: r.stats}
}

// wait blocks until cond holds for the records or ctx ends, and returns the
// last snapshot it looked at. cond runs under the lock on the live records;
// it must not keep the slice. It costs a copy of every record each time it
// looks; waitFor does not.
func (r *recorder) wait(ctx context.Context, cond func(reqs []Request, conns []Conn, st Stats) bool) (snapshot, error) {
	return r.waitFor(ctx, func(int, []Conn, Stats) bool {
		return cond(r.snapshotLocked().reqs, r.conns, r.stats)
	})
}

// waitFor blocks until cond holds for the number of requests, the
// connections and the counters, or ctx ends, and returns the last snapshot
// it looked at. cond runs under the lock; it must not keep conns.
func (r *recorder) waitFor(ctx context.Context, cond func(n int, conns []Conn, st Stats) bool) (snapshot, error) {
	for {
		r.mu.Lock()
		if cond(r.n, r.conns, r.stats) {
			s := r.snapshotLocked()
			r.mu.Unlock()
			return s, nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return r.snapshot(), ctx.Err()
		}
	}
}
