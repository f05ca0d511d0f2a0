package mutant

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/proxy"
)

// randomStart is random-start: each request starts at a backend drawn
// uniformly at random. The generator has a fixed seed, fresh for each
// proxy, so that every run draws the same sequence and the specs it fails
// are the same every time: a pin cannot hold a coin toss.
func randomStart(conformance.Topology) parts {
	return parts{opts: []proxy.Option{proxy.WithStrategy(&seeded{r: rand.New(rand.NewPCG(9110, 9112))})}}
}

type seeded struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (s *seeded) Next(_ *http.Request, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.IntN(n)
}

// smooth is nginx's smooth weighted round-robin. With as many weights as
// backends it skews the spread by exactly the weights, deterministically;
// with another number of backends it is plain round-robin, so only the
// topologies it was sized for see the skew.
type smooth struct {
	mu      sync.Mutex
	weights []int
	current []int
	rr      proxy.RoundRobin
}

// skewedByWeights is skewed-5-points: over three backends, weights 46:37:37
// give the first 46/120 of the requests, its fair third plus 5 points: the
// smallest skew balance/statistical claims to catch.
func skewedByWeights(conformance.Topology) parts {
	weights := []int{46, 37, 37}
	s := &smooth{weights: weights, current: make([]int, len(weights))}
	return parts{opts: []proxy.Option{proxy.WithStrategy(s)}}
}

func (s *smooth) Next(r *http.Request, n int) int {
	if n != len(s.weights) {
		return s.rr.Next(r, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best, total := 0, 0
	for i, w := range s.weights {
		s.current[i] += w
		total += w
		if s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= total
	return best
}

// perAttempt is round-robin-per-attempt: one counter advanced by every
// request and by every failed attempt, so that a backend which fails pushes
// the next request's start one further. While every backend answers it is
// exact round-robin; the counter is advanced when a request starts, not
// when its attempt ends, so concurrent requests never share a turn and
// only a failing backend shows the defect.
func perAttempt(conformance.Topology) parts {
	c := new(attemptCounter)
	return parts{
		opts: []proxy.Option{proxy.WithStrategy(c)},
		transport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				res, err := next.RoundTrip(out)
				if err != nil {
					c.n.Add(1)
				}
				return res, err
			})
		},
	}
}

type attemptCounter struct{ n atomic.Uint64 }

func (c *attemptCounter) Next(_ *http.Request, n int) int {
	return int((c.n.Add(1) - 1) % uint64(n))
}
