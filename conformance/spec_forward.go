package conformance

import (
	"net/http"

	. "github.com/onsi/gomega"
)

func init() {
	addGroup("forward", func(s *Suite) {
		s.It(Meta{
			ID:       "forward/get-basic",
			Title:    "forwards a GET to the backend, target unchanged, and relays its response",
			Level:    MUST,
			Source:   "RFC 9110 §7.6: an intermediary forwards the request it received; seed §Basic usage",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/forward/get-basic?q=1&r=%2F", "X-Proxyspec-Probe: get-basic")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("a"), "the backend's own response header reaches the client")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Method).To(Equal("GET"))
			Expect(got[0].Target).To(Equal("/forward/get-basic?q=1&r=%2F"), "the request target, byte for byte")
			Expect(got[0].Values("X-Proxyspec-Probe")).To(ConsistOf("get-basic"), "an end-to-end field is forwarded")
		})
	})
}
