package conformance

import (
	"net/http"

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

			// Two sequential requests: round-robin makes one of them start
			// at a, whatever the proxy's counter was.
			for range 2 {
				x := e.Get("/failover/refused")
				Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
				Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("b"), "the backend that answered")
			}
			Expect(e.ReceivedBy("b")).To(HaveLen(2), "requests backend b received")
		})
	})
}
