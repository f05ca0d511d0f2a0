package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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

// spread sends n GETs of target to the proxy, at most workers at a time,
// and counts the backend that answered each. Each worker keeps its client
// connection open across requests (HTTP/1.1 persistence, RFC 9112 §9.3):
// thousands of requests on fresh connections would leave thousands of
// sockets in TIME_WAIT on a machine that runs other suites too. Every
// response must be a 200 naming one backend of the topology; the first
// that is not fails the spec, and only it (and the first exchange) is kept
// as evidence, so that thousands of requests do not bloat a report.
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
			s := &session{addr: e.Proxy, dialTimeout: e.Within(e.topo.ConnectTimeout), timeout: e.ResponseTimeout()}
			defer s.close()
			for next.Add(1) <= int64(n) {
				x := s.do(raw)
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

// session is one client connection to the proxy, kept open across
// requests, one request at a time; it redials when the proxy closes it.
type session struct {
	addr        string
	dialTimeout time.Duration
	timeout     time.Duration // per exchange

	conn net.Conn
	br   *bufio.Reader
	raw  bytes.Buffer // bytes read for the current exchange
}

// do sends req and reads its response. A request sent on a connection that
// had carried earlier ones, and that got no byte of answer, is sent once
// more on a new connection: the proxy may close an idle persistent
// connection just as a request goes out, and a client may then retry an
// idempotent request (RFC 9112 §9.3.1, RFC 9110 §9.2.2).
func (s *session) do(req []byte) *Exchange {
	reused := s.conn != nil
	x := s.exchange(req)
	if x.Err != nil && reused && len(x.Raw) == 0 {
		x = s.exchange(req)
	}
	return x
}

func (s *session) exchange(req []byte) *Exchange {
	x := &Exchange{Request: req}
	start := time.Now()
	defer func() { x.Took = time.Since(start) }()
	fail := func(err error) *Exchange {
		x.Err = err
		x.Raw = bytes.Clone(s.raw.Bytes())
		s.close()
		return x
	}
	if s.conn == nil {
		c, err := net.DialTimeout("tcp", s.addr, s.dialTimeout)
		if err != nil {
			x.Err = fmt.Errorf("dial %s: %w", s.addr, err)
			return x
		}
		s.conn = c
		s.br = bufio.NewReader(io.TeeReader(c, &s.raw))
	}
	s.raw.Reset()
	if err := s.conn.SetDeadline(start.Add(s.timeout)); err != nil {
		return fail(fmt.Errorf("set deadline: %w", err))
	}
	if _, err := s.conn.Write(req); err != nil {
		return fail(fmt.Errorf("writing the request: %w", err))
	}
	resp, err := http.ReadResponse(s.br, &http.Request{Method: requestMethod(req)})
	if err != nil {
		return fail(fmt.Errorf("reading response: %w", err))
	}
	x.Response = resp
	if x.Body, err = io.ReadAll(resp.Body); err != nil {
		return fail(fmt.Errorf("reading response body (%d bytes read): %w", len(x.Body), err))
	}
	x.Raw = bytes.Clone(s.raw.Bytes())
	if resp.Close {
		s.close()
	}
	return x
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.br = nil, nil
	}
}

// backendNames are the topology's backend names, in order.
func backendNames(e *Env) []string {
	var ns []string
	for _, b := range e.Backends {
		ns = append(ns, b.Name())
	}
	return ns
}
