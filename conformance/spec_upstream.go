package conformance

import (
	"net/http"

	. "github.com/onsi/gomega"
)

func init() {
	addGroup("upstream", func(s *Suite) {
		s.It(Meta{
			ID:       "upstream/connection-close",
			Title:    "asks the backend to close the connection after each request (Connection: close)",
			Level:    MUST,
			Source:   "seed §Headers added to forwarded requests: Connection: close; RFC 9112 §9.6: the close option",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/upstream/connection-close", "Connection: keep-alive")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			Expect(listTokens(got[0].Values("Connection"))).To(ContainElement("close"),
				"connection options the backend got: %q", got[0].Values("Connection"))
		})

		s.It(Meta{
			ID:       "upstream/one-request-per-connection",
			Title:    "opens a new backend connection for every request and sends one request on each",
			Level:    MUST,
			Source:   "seed §Headers: Connection: close forces HTTP/1.0-style per-request connections",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			// Sequential requests from a keep-alive client: a pooling proxy
			// would send the second and third on the first's connection.
			const n = 3
			for range n {
				x := e.Get("/upstream/one-request-per-connection", "Connection: keep-alive")
				Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			}

			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(n), "requests backend a received")
			seen := map[uint64]bool{}
			for i, r := range got {
				Expect(r.Seq).To(Equal(1), "request %d was number %d on backend connection %d: connections were reused", i+1, r.Seq, r.Conn)
				Expect(seen[r.Conn]).To(BeFalse(), "request %d shares backend connection %d with an earlier one", i+1, r.Conn)
				seen[r.Conn] = true
			}
			conns, err := e.Backend("a").Conns(e.Context())
			Expect(err).NotTo(HaveOccurred(), "reading backend a's connections")
			Expect(conns).To(HaveLen(n), "connections backend a accepted (one per request, no spare ones)")
			for _, c := range conns {
				Expect(c.Requests).To(Equal(1), "requests on backend connection %d", c.ID)
			}
		})
	})
}
