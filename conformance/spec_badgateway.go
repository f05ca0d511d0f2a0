package conformance

import (
	"mime"
	"net/http"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	addGroup("502", func(s *Suite) {
		s.It(Meta{
			ID:       "502/no-backends",
			Title:    "with no backend configured, answers 502 with a text/plain body",
			Level:    MUST,
			Source:   "seed §502 Bad Gateway: no backends configured",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 0})

			x := e.Get("/502/no-backends")

			expectBadGateway(e, x)
		})

		s.It(Meta{
			ID:       "502/all-refused",
			Title:    "when every backend refuses connections, answers with a gateway error",
			Level:    MUST,
			Source:   "seed §502 Bad Gateway: all backends fail to connect; RFC 9110 §15.6.3",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetMode("a", fakebackend.Refuse)
			e.SetMode("b", fakebackend.Refuse)

			x := e.Get("/502/all-refused")

			expectBadGateway(e, x)
			Expect(e.Received()).To(BeEmpty(), "no backend can have received anything")
		})
	})
}

// expectBadGateway checks a gateway error as the profile defines it: the
// seed promises exactly 502 with a text/plain body; RFC 9110 leaves the
// choice among 502, 503 and 504 to the proxy (§15.6.3-5).
func expectBadGateway(e *Env, x *Exchange) {
	ginkgo.GinkgoHelper()
	if e.Profile() != ProfileSeed {
		Expect(x.Status()).To(BeElementOf(http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout), "status the client got")
		return
	}
	Expect(x.Status()).To(Equal(http.StatusBadGateway), "status the client got")
	mt, _, err := mime.ParseMediaType(x.Response.Header.Get("Content-Type"))
	Expect(err).NotTo(HaveOccurred(), "Content-Type of the 502")
	Expect(mt).To(Equal("text/plain"), "media type of the 502")
}
