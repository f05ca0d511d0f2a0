package conformance

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// falsePass bounds the probability that a proxy choosing its backends at
// random (with the same failover) passes an exact round-robin spec by
// chance; the number of requests such a spec sends follows from it.
const falsePass = 1e-6

func init() {
	addGroup("round-robin", func(s *Suite) {
		s.It(Meta{
			ID:       "round-robin/sequential",
			Title:    "sequential requests go to the backends in configured order, each once per cycle",
			Level:    MUST,
			Source:   "seed §Load balancing strategy: the backend index is a counter, incremented per request, modulo the backend count",
			Needs:    []Feature{FeatureRoundRobin},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 3})

			expectCycle(e, "/round-robin/sequential", nil)
		})

		s.It(Meta{
			ID:       "round-robin/one-down",
			Title:    "with one backend refusing, the next one takes its turns: exact counts over whole cycles",
			Level:    MUST,
			Source:   "seed §Load balancing strategy and §Automatic failover: start at counter mod n, then try the next backends in order",
			Needs:    []Feature{FeatureRoundRobin, FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 3})
			e.SetMode("b", fakebackend.Refuse)

			// Starts at a, b, c are answered by a, c, c: c gets twice a's
			// share. A proxy that counts attempts instead of requests, or
			// skips b once it failed, splits a:c evenly instead.
			expectCycle(e, "/round-robin/one-down", []string{"b"})
			Expect(e.ReceivedBy("b")).To(BeEmpty(), "a refusing backend cannot have received anything")
		})

		s.It(Meta{
			ID:       "round-robin/concurrent",
			Title:    "concurrent requests are spread so that per-backend counts differ by at most one",
			Level:    MUST,
			Source:   "seed §Load balancing strategy: a lock-free atomic counter, incremented on every request",
			Needs:    []Feature{FeatureRoundRobin},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			const backends, perBackend, workers = 3, 20, 12
			e.Start(TopologyRequest{Backends: backends})

			// A counter that is not atomic hands out some turns twice and
			// skips others under concurrency, which shows as unequal counts.
			counts := e.spread("/round-robin/concurrent", backends*perBackend, workers)

			lo, hi := math.MaxInt, 0
			for _, b := range e.Backends {
				lo, hi = min(lo, counts[b.Name()]), max(hi, counts[b.Name()])
				Expect(e.ReceivedBy(b.Name())).To(HaveLen(counts[b.Name()]), "requests backend %s received vs. responses naming it", b.Name())
			}
			Expect(hi-lo).To(BeNumerically("<=", 1), "%d concurrent requests (%d at a time) were answered %v: counts differ by more than one", backends*perBackend, workers, counts)
		})
	})
}

// seedCycle is the backend that answers a request starting at each of the n
// backends, under the seed's algorithm (attempt i goes to (start+i) mod n)
// when the backends in down refuse.
func seedCycle(names []string, down []string) []string {
	cycle := make([]string, len(names))
	for start := range names {
		for i := range names {
			if b := names[(start+i)%len(names)]; !slices.Contains(down, b) {
				cycle[start] = b
				break
			}
		}
	}
	return cycle
}

// cycleWindows is how many whole cycles a spec must observe so that a proxy
// picking its start uniformly at random matches some rotation of cycle with
// probability at most falsePass. Such a proxy gives a request to backend x
// with probability (occurrences of x in cycle)/n; one rotation matches a
// window with probability q = Π over the cycle of those, and any of the n
// rotations matches w windows with probability at most n·q^w.
func cycleWindows(cycle []string) int {
	n := float64(len(cycle))
	q := 1.0
	for _, b := range cycle {
		occ := 0
		for _, c := range cycle {
			if c == b {
				occ++
			}
		}
		q *= float64(occ) / n
	}
	return int(math.Ceil(math.Log(falsePass/n) / math.Log(q)))
}

// expectCycle sends whole cycles of sequential requests and checks that the
// backends answering them follow the seed's cycle (with the backends in
// down refusing), from whatever position the proxy's counter was at.
func expectCycle(e *Env, target string, down []string) {
	ginkgo.GinkgoHelper()
	names := backendNames(e)
	cycle := seedCycle(names, down)
	windows := cycleWindows(cycle)
	ginkgo.By(fmt.Sprintf("%d sequential requests: %d cycles of %v", windows*len(cycle), windows, cycle))

	var got []string
	for i := range windows * len(cycle) {
		x := e.Get(fmt.Sprintf("%s?i=%d", target, i))
		got = append(got, answeredBy(e, x))
	}

	best, at := -1, 0
	for r := range cycle {
		i := 0
		for i < len(got) && got[i] == cycle[(r+i)%len(cycle)] {
			i++
		}
		if i > best {
			best, at = i, r
		}
	}
	Expect(best).To(Equal(len(got)), "answers came from %s; the seed's cycle %s repeated from any position does not match: request %d went to %s, the cycle says %s",
		strings.Join(got, " "), strings.Join(cycle, " "), best+1, got[min(best, len(got)-1)], cycle[(at+best)%len(cycle)])

	for _, n := range names {
		want := 0
		for _, g := range got {
			if g == n {
				want++
			}
		}
		Expect(e.ReceivedBy(n)).To(HaveLen(want), "requests backend %s received vs. responses naming it", n)
	}
}

// answeredBy is the backend that answered x, from the X-Proxyspec-Backend
// field every fake backend sends; it fails the spec unless x is a 200 naming
// exactly one backend of the topology.
func answeredBy(e *Env, x *Exchange) string {
	ginkgo.GinkgoHelper()
	Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
	name, err := backendOf(e, x)
	Expect(err).NotTo(HaveOccurred())
	return name
}

// backendOf is answeredBy for goroutines: it returns an error instead of
// failing the spec.
func backendOf(e *Env, x *Exchange) (string, error) {
	vs := x.Header("X-Proxyspec-Backend")
	if len(vs) != 1 {
		return "", fmt.Errorf("the response should name exactly one backend in X-Proxyspec-Backend, got %q", vs)
	}
	for _, b := range e.Backends {
		if b.Name() == vs[0] {
			return vs[0], nil
		}
	}
	return "", fmt.Errorf("the response names backend %q, which is not in the topology", vs[0])
}
