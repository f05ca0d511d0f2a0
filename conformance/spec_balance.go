package conformance

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The fairness check's error rates. A fair proxy fails it once in a
// million runs, so a CI gate never goes red by chance; a proxy giving one
// backend 5 points more than its share fails it at least 99% of the time.
const (
	balanceAlpha = 1e-6
	balancePower = 0.99
	balanceSkew  = 0.05
	// balanceWorkers bounds the requests in flight: enough to keep a proxy
	// busy, few enough not to exhaust ports or file descriptors.
	balanceWorkers = 8
)

// entryFairness names the report entry carrying a FairnessResult.
const entryFairness = "proxyspec-fairness"

func init() {
	addGroup("balance", func(s *Suite) {
		s.It(Meta{
			ID:       "balance/statistical",
			Title:    "spreads requests evenly over its backends (chi-square test, alpha 1e-6, power 0.99 against a 5-point skew)",
			Level:    SHOULD,
			Source:   "seed §Load balancing strategy: a uniform distribution; RFC 9110 leaves backend selection to the proxy, hence SHOULD",
			Needs:    []Feature{FeatureMultiBackend},
			Profiles: []Profile{ProfileRFC9110},
		}, func(e *Env) {
			const backends = 3
			plan, err := PlanFairness(backends, balanceAlpha, balancePower, balanceSkew)
			Expect(err).NotTo(HaveOccurred())
			e.Start(TopologyRequest{Backends: backends})

			ginkgo.By(fmt.Sprintf("%d requests, %d at a time", plan.N, balanceWorkers))
			counts := e.spread("/balance/statistical", plan.N, balanceWorkers)

			cs := make([]int, backends)
			for i, b := range e.Backends {
				cs[i] = counts[b.Name()]
			}
			res, err := plan.Check(cs)
			Expect(err).NotTo(HaveOccurred())
			ginkgo.AddReportEntry(entryFairness, res)
			Expect(res.Fair).To(BeTrue(), "requests are not spread evenly over backends %v: %s", backendNames(e), res)
		})
	})
}

// spread sends n GETs of target to the proxy, each on a fresh connection,
// at most workers at a time, and counts the backend that answered each.
// Every response must be a 200 naming one backend of the topology; the
// first that is not fails the spec, and only it (and the first exchange)
// is kept as evidence, so that thousands of requests do not bloat a report.
func (e *Env) spread(target string, n, workers int) map[string]int {
	ginkgo.GinkgoHelper()
	e.mustBeStarted()
	raw := []byte(RawRequest(http.MethodGet, target, e.Proxy, nil, ""))
	var (
		next   atomic.Int64
		mu     sync.Mutex
		counts = map[string]int{}
		first  *Exchange
		bad    *Exchange
		why    error
		wg     sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				x := exchange(e.Proxy, raw, e.Within(e.topo.ConnectTimeout), e.ResponseTimeout())
				name, err := backendOf(e, x)
				switch {
				case x.Err != nil:
					err = fmt.Errorf("no complete response: %w", x.Err)
				case x.Status() != http.StatusOK:
					err = fmt.Errorf("status %d, want 200", x.Status())
				}
				mu.Lock()
				if first == nil {
					first = x
				}
				if err != nil && bad == nil {
					bad, why = x, err
				}
				stop := bad != nil
				if err == nil {
					counts[name]++
				}
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()

	e.mu.Lock()
	if first != nil {
		e.exchanges = append(e.exchanges, first)
	}
	if bad != nil && bad != first {
		e.exchanges = append(e.exchanges, bad)
	}
	e.mu.Unlock()
	if bad != nil {
		total := 0
		for _, c := range counts {
			total += c
		}
		ginkgo.Fail(fmt.Sprintf("GET %s through the proxy, request %d of %d (%d at a time): %v", target, total+1, n, workers, why))
	}
	return counts
}

// backendNames are the topology's backend names, in order.
func backendNames(e *Env) []string {
	var ns []string
	for _, b := range e.Backends {
		ns = append(ns, b.Name())
	}
	return ns
}
