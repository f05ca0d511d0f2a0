package conformance

import (
	"fmt"
	"net/http"
	"time"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	addGroup("failover", func(s *Suite) {
		s.It(Meta{
			ID:       "failover/refused",
			Title:    "a backend refusing connections is skipped: every request is answered by the next one",
			Level:    MUST,
			Source:   "seed §Automatic failover: on a connection failure the next backend in round-robin order is tried",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetMode("a", fakebackend.Refuse)

			expectFailover(e, "/failover/refused", 0)
			Expect(e.ReceivedBy("a")).To(BeEmpty(), "a refusing backend cannot have received anything")
		})

		s.It(Meta{
			ID:       "failover/connect-timeout",
			Title:    "a backend that never completes the TCP handshake is given up after the connect timeout and the next one answers",
			Level:    MUST,
			Source:   "seed §Timeouts (connect timeout) and §Automatic failover",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2, ShortConnect: true})
			e.SetMode("a", fakebackend.Blackhole)

			expectFailover(e, "/failover/connect-timeout", e.ConnectTimeout())
			Expect(e.ReceivedBy("a")).To(BeEmpty(), "a blackholed backend cannot have received anything")
		})

		s.It(Meta{
			ID:       "failover/reset",
			Title:    "a GET whose backend resets the connection before answering is retried once on the next backend",
			Level:    MUST,
			Source:   "seed §Automatic failover: a network error moves the request to the next backend; RFC 9110 §9.2.2: GET is idempotent, so repeating it is safe",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetDefault("a", fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse})

			expectFailover(e, "/failover/reset", 0)
			Expect(e.ReceivedBy("a")).To(HaveLen(1), "requests backend a received: the request that started there, once")
		})

		s.It(Meta{
			ID:       "failover/read-timeout",
			Title:    "a GET whose backend never answers is given up after the read timeout and answered by the next backend",
			Level:    MUST,
			Source:   "seed §Timeouts (response read timeout) and §Automatic failover; RFC 9110 §9.2.2: GET is idempotent",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2, ShortRead: true})
			e.SetDefault("a", fakebackend.Behaviour{Fault: fakebackend.Hang})

			expectFailover(e, "/failover/read-timeout", e.ReadTimeout())
			Expect(e.ReceivedBy("a")).To(HaveLen(1), "requests backend a received: the request that started there, once")
		})

		s.It(Meta{
			ID:       "failover/all-tried",
			Title:    "when every backend fails, each is tried exactly once per request before the 502",
			Level:    MUST,
			Source:   "seed §Automatic failover: only after all backends have failed is 502 Bad Gateway returned",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 3})
			e.SetMode("a", fakebackend.Refuse)
			e.SetDefault("b", fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse})
			e.SetDefault("c", fakebackend.Behaviour{Fault: fakebackend.CloseBeforeResponse})

			// One request per starting position, so that every backend is
			// first once and the wrap-around of the order is exercised.
			n := len(e.Backends)
			xs := make([]*Exchange, n)
			for i := range n {
				xs[i] = e.Get(fmt.Sprintf("/failover/all-tried?i=%d", i))
			}
			// The attempts are the point; the gateway error's status is
			// judged after them, so that a proxy answering 503 is still
			// seen trying (or not trying) every backend.
			Expect(e.ReceivedBy("a")).To(BeEmpty(), "a refusing backend cannot have received anything")
			Expect(e.ReceivedBy("b")).To(HaveLen(n), "requests backend b (resets) received: one attempt per request")
			Expect(e.ReceivedBy("c")).To(HaveLen(n), "requests backend c (closes) received: one attempt per request")
			for _, x := range xs {
				expectBadGateway(e, x)
			}
		})

		// RFC 9110 allows this failover but does not ask for it: a proxy
		// that never resends a POST is within it, so only the seed, which
		// fails over on every connection failure, judges.
		s.It(Meta{
			ID:       "failover/post-refused",
			Title:    "a POST whose backend refuses the connection is sent to the next backend, which answers it",
			Level:    MUST,
			Source:   "seed §Automatic failover: a connection failure moves the request to the next backend, whatever its method; RFC 9110 §9.2.2 forbids only retrying what may have been acted upon, and a refused connection carried no byte of the request",
			Needs:    []Feature{FeatureFailover},
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetMode("a", fakebackend.Refuse)

			// One POST per starting position: the one a round-robin proxy
			// starts at a must reach b, body and all.
			n := len(e.Backends)
			var bodies []string
			for i := range n {
				body := fmt.Sprintf("order=%d&amount=100", i)
				bodies = append(bodies, body)
				x := e.Do(http.MethodPost, fmt.Sprintf("/failover/post-refused?i=%d", i), []string{"Content-Type: application/x-www-form-urlencoded"}, body)
				Expect(x.Status()).To(Equal(http.StatusOK), "status the client got for POST %d", i+1)
				Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("b"), "the backend that answered POST %d", i+1)
			}
			Expect(e.ReceivedBy("a")).To(BeEmpty(), "a refusing backend cannot have received anything")
			var got []string
			for _, r := range e.ReceivedBy("b") {
				got = append(got, string(r.Body))
			}
			Expect(got).To(Equal(bodies), "bodies of the POSTs backend b received: each once, whole, in order")
		})

		// RFC 9110 does not forbid retrying an idempotent request after a
		// 5xx (§9.2.2), and some proxies do so when configured to (nginx's
		// proxy_next_upstream http_500): only the seed judges.
		s.It(Meta{
			ID:       "failover/5xx-relayed",
			Title:    "a backend's own 5xx response is relayed to the client unchanged, not taken for a failure to fail over from",
			Level:    MUST,
			Source:   "seed §Automatic failover: only a failed backend connection moves a request to the next backend; a 5xx is a response (RFC 9110 §15.6), relayed like any other",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			// Different statuses and bodies, so that a response moved
			// from one backend to the other shows.
			answers := map[string]fakebackend.Behaviour{
				"a": {Status: http.StatusInternalServerError, Body: fakebackend.Text("a: database unavailable")},
				"b": {Status: http.StatusServiceUnavailable, Body: fakebackend.Text("b: down for maintenance"),
					Header: []fakebackend.Field{{Name: "Retry-After", Value: "120"}}},
			}
			for name, b := range answers {
				e.SetDefault(name, b)
			}

			// One request per starting position, so that each backend's
			// 5xx is the first answer of one of them.
			n := len(e.Backends)
			answered := map[string]int{}
			for i := range n {
				x := e.Get(fmt.Sprintf("/failover/5xx-relayed?i=%d", i))
				from := x.Header("X-Proxyspec-Backend")
				Expect(from).To(HaveLen(1), "X-Proxyspec-Backend of response %d (status %d): it must come from a backend", i+1, x.Status())
				want, ok := answers[from[0]]
				Expect(ok).To(BeTrue(), "response %d names backend %q", i+1, from[0])
				answered[from[0]]++
				Expect(x.Status()).To(Equal(want.Status), "status the client got for request %d, answered by %s", i+1, from[0])
				Expect(string(x.Body)).To(Equal(*want.Body), "body the client got for request %d, answered by %s", i+1, from[0])
				if from[0] == "b" {
					Expect(x.Header("Retry-After")).To(Equal([]string{"120"}), "Retry-After of b's 503")
				}
			}
			Expect(e.Received()).To(HaveLen(n), "requests the backends received: one per request, none failed over")
			for name := range answers {
				Expect(e.ReceivedBy(name)).To(HaveLen(answered[name]), "requests backend %s received, against the responses it answered", name)
			}
		})

		s.It(Meta{
			ID:       "failover/post-not-replayed",
			Title:    "a POST that reached a backend which then failed is not sent again, to any backend",
			Level:    MUST,
			Source:   "RFC 9110 §9.2.2: a proxy MUST NOT automatically retry non-idempotent requests; seed §502 Bad Gateway",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 3})
			for _, b := range e.Backends {
				e.SetDefault(b.Name(), fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse})
			}

			// One POST per starting position: whichever backend gets it
			// reads the whole body and resets.
			n := len(e.Backends)
			for i := range n {
				body := fmt.Sprintf("order=%d&amount=100", i)
				x := e.Do(http.MethodPost, "/failover/post-not-replayed", []string{"Content-Type: application/x-www-form-urlencoded"}, body)

				// Replay first: it is the spec's point, and a status other
				// than the seed's 502 must not hide it.
				var got []string
				for _, r := range e.Received() {
					if string(r.Body) == body {
						got = append(got, r.Backend)
					}
				}
				Expect(got).To(HaveLen(1), "backends that received POST %d (body %q): it was delivered %d times", i+1, body, len(got))

				if e.Profile() == ProfileSeed {
					expectBadGateway(e, x)
				} else {
					Expect(x.Status()).To(BeNumerically(">=", 500), "status after the only backend that got the POST failed")
					Expect(x.Status()).To(BeNumerically("<", 600), "status after the only backend that got the POST failed")
				}
			}
		})
	})
}

// expectFailover sends one request per backend, sequentially, with backend
// a failing and the others serving: whichever request a round-robin proxy
// starts at a must be answered by b. When giving up on a costs a timeout
// (spent: a connect or read timeout; 0 for an immediate failure), each
// answer must come within the margin times that timeout: b answers at once,
// so the margin covers reaching it, and a proxy waiting several times its
// configured timeout fails.
func expectFailover(e *Env, target string, spent time.Duration) {
	ginkgo.GinkgoHelper()
	n := len(e.Backends)
	bound := e.Within(spent)
	for i := range n {
		x := e.Get(fmt.Sprintf("%s?i=%d", target, i))
		Expect(x.Status()).To(Equal(http.StatusOK), "status the client got for request %d", i+1)
		Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("b"), "the backend that answered request %d", i+1)
		if spent > 0 {
			Expect(x.Took).To(BeNumerically("<=", bound), "request %d took %v; giving up on a costs %v, so it should be answered within %v", i+1, x.Took, spent, bound)
		}
	}
	Expect(e.ReceivedBy("b")).To(HaveLen(n), "requests backend b received")
}
