package conformance

import (
	"net/http"
	"strings"

	. "github.com/onsi/gomega"
)

func init() {
	addGroup("hop-by-hop", func(s *Suite) {
		// The client's Connection header and every field it names are
		// meant for the proxy alone. A proxy may send its own Connection
		// (the seed's "close"), so what is checked is that none of the
		// client's connection options travel on.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §7.6.1: a proxy must remove Connection and the fields it lists before forwarding",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env, connection string) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/hop-by-hop", "Connection: "+connection, "X-Hop-Option: secret", "X-End-To-End: kept")

			Expect(x.Status()).To(Equal(http.StatusOK))
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1))
			Expect(got[0].Has("X-Hop-Option")).To(BeFalse(), "a field named in Connection was forwarded")
			for _, v := range got[0].Values("Connection") {
				Expect(strings.ToLower(v)).NotTo(ContainSubstring("x-hop-option"), "the client's Connection options were forwarded")
			}
			Expect(got[0].Values("X-End-To-End")).To(ConsistOf("kept"), "an end-to-end field is forwarded")
		},
			Entry(Meta{ID: "hop-by-hop/request/connection", Title: "does not forward Connection or a field it names"}, "X-Hop-Option"),
			Entry(Meta{ID: "hop-by-hop/request/connection-list", Title: "does not forward fields named in a Connection list, whatever their case"}, "keep-alive,  x-HOP-option"),
		)
	})
}
