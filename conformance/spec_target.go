package conformance

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// unchangedTargets are request targets whose bytes a proxy is tempted to
// normalize: encoded slashes and spaces, '+', parameters, an empty query,
// repeated slashes, lower-case percent-encodings, encoded unreserved
// characters and sub-delimiters.
var unchangedTargets = []string{
	"/target/a%2Fb",
	"/target/sp%20ace",
	"/target/plus+sign",
	"/target/p;param=1/x",
	"/target/empty-query?",
	"/target//double//slash",
	"/target/q?a=%2F&b=+&c&d=%e2%82%ac",
	"/target/%7Euser",
	"/target/lower%2fhex",
	"/target/sub-delims!$&'()*+,;=:@",
}

func init() {
	addGroup("target", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}

		s.It(Meta{
			ID:       "target/unchanged",
			Title:    "forwards the path and query byte for byte: no decoding, re-encoding or slash merging",
			Level:    MUST,
			Source:   "RFC 9110 §7.7: a proxy must not modify the absolute-path and query parts of the target URI",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			for _, t := range unchangedTargets {
				x := e.Get(t)
				Expect(x.Status()).To(Equal(http.StatusOK), "status for %s", t)
			}

			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(len(unchangedTargets)), "requests backend a received")
			var changed []string
			for i, r := range got {
				if r.Target != unchangedTargets[i] {
					changed = append(changed, fmt.Sprintf("sent %s, backend got %s", unchangedTargets[i], r.Target))
				}
			}
			Expect(changed).To(BeEmpty(), "targets the proxy changed")
		})

		// The proxy's routes are its configured backends. A target or Host
		// naming another server must never make it connect there: that is
		// an open proxy. The decoy is such a server, reachable as the
		// backends are; .invalid never resolves (RFC 6761 §6.4).
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §3.2.2: a server must accept absolute-form; RFC 9112 §3.2.1: it goes upstream in origin-form; the topology names the only upstreams",
			Profiles: both,
		}, func(e *Env, form string) {
			e.Start(TopologyRequest{Backends: 1})
			decoy, decoyAddr := startDecoy(e)
			var raws []string
			switch form {
			case "absolute":
				raws = []string{
					"GET http://" + decoyAddr + "/target/absolute?x=1 HTTP/1.1\r\nHost: " + decoyAddr + "\r\n\r\n",
					"GET http://evil.invalid/target/absolute?x=1 HTTP/1.1\r\nHost: evil.invalid\r\n\r\n",
				}
			case "host":
				raws = []string{"GET /target/absolute?x=1 HTTP/1.1\r\nHost: " + decoyAddr + "\r\n\r\n"}
			}

			for _, raw := range raws {
				x := e.Send(raw)
				Expect(x.Err).NotTo(HaveOccurred(), "no complete response to %q", raw)
				switch {
				case x.Status() >= 400 && x.Status() < 500:
					// Rejected: a server may refuse an authority it does
					// not serve (RFC 9110 §15.5.20 421, or 400/404).
				default:
					Expect(x.Status()).To(Equal(http.StatusOK),
						"status for %q: want a backend's answer or a 4xx refusal; a 5xx suggests the proxy tried to reach the named host", raw)
					Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("a"), "the backend that answered %q", raw)
				}
			}
			for _, r := range e.ReceivedBy("a") {
				Expect(r.Target).To(Equal("/target/absolute?x=1"), "the target backend a received: origin-form, path and query unchanged")
			}
			expectUntouched(e, decoy)
		},
			Entry(Meta{ID: "target/absolute-form", Title: "an absolute-form target never chooses the upstream: it goes to a configured backend, in origin-form, or is refused"}, "absolute"),
			Entry(Meta{ID: "target/host-not-routed", Title: "a Host naming another server never chooses the upstream",
				Source: "RFC 9110 §7.2: Host carries the target URI's authority, not a route; the topology names the only upstreams"}, "host"),
		)

		s.It(Meta{
			ID:       "method/connect",
			Feature:  "method",
			Title:    "refuses CONNECT with an error status and never opens a tunnel to the named host",
			Level:    MUST,
			Source:   "RFC 9110 §9.3.6: CONNECT asks for a tunnel to the named host, which a gateway has no route to; the topology names the only upstreams",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			decoy, decoyAddr := startDecoy(e)

			x := e.Send("CONNECT " + decoyAddr + " HTTP/1.1\r\nHost: " + decoyAddr + "\r\n\r\n")

			Expect(x.Status()).To(BeNumerically(">=", 400), "status for CONNECT %s (error: %v): a 2xx means a tunnel was opened", decoyAddr, x.Err)
			Expect(x.Status()).To(BeNumerically("<", 600), "status for CONNECT %s", decoyAddr)
			expectUntouched(e, decoy)
		})
	})
}

// startDecoy starts a fake backend that the proxy is not configured with,
// reachable the way its backends are, and returns it with the host:port
// that addresses it. It is closed when the spec ends.
func startDecoy(e *Env) (fakebackend.Backend, string) {
	ginkgo.GinkgoHelper()
	b, err := e.pool.start(e.ctx, "decoy")
	if err != nil {
		setupFailed(fmt.Sprintf("decoy backend did not start: %v", err), "")
	}
	ginkgo.DeferCleanup(b.Close)
	return b, strings.TrimPrefix(e.pool.url(b), "http://")
}

// expectUntouched fails the spec if the decoy accepted any connection.
func expectUntouched(e *Env, decoy fakebackend.Backend) {
	ginkgo.GinkgoHelper()
	conns, err := decoy.Conns(e.Context())
	Expect(err).NotTo(HaveOccurred(), "reading the decoy's connections")
	rs, err := decoy.Requests(e.Context())
	Expect(err).NotTo(HaveOccurred(), "reading the decoy's requests")
	var got []string
	for _, r := range rs {
		got = append(got, string(r.RawHead))
	}
	Expect(conns).To(BeEmpty(), "the proxy connected to a server it was not configured with (requests it sent there: %q)", got)
}
