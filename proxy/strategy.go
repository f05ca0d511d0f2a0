package proxy

import (
	"net/http"
	"sync/atomic"
)

// Strategy chooses where a request starts among n backends (n > 0). The
// proxy sends attempt i of the request to backend (start + i) mod n, so a
// Strategy decides the first choice and the failover order follows the
// configured list. Next is called exactly once per proxied request, from
// many goroutines at once.
//
// Results outside 0..n-1 are reduced modulo n.
type Strategy interface {
	Next(r *http.Request, n int) (start int)
}

// RoundRobin starts each request at the backend after the one the previous
// request started at: one atomic increment per request, no lock. Its zero
// value is ready to use; it must not be copied after first use.
type RoundRobin struct {
	n atomic.Uint64
}

// Next returns the request's position in the cycle. The counter wraps after
// 2^64 requests, where the cycle skips once unless n is a power of two.
func (rr *RoundRobin) Next(_ *http.Request, n int) int {
	return int((rr.n.Add(1) - 1) % uint64(n))
}
