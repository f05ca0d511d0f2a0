package conformance

import (
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

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

		s.It(Meta{
			ID:       "502/all-fail",
			Title:    "when every backend fails after receiving the request (reset, close), answers with a gateway error",
			Level:    MUST,
			Source:   "seed §502 Bad Gateway: all backends return a network error; RFC 9110 §15.6.3",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetDefault("a", fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse})
			e.SetDefault("b", fakebackend.Behaviour{Fault: fakebackend.CloseBeforeResponse})

			for _, target := range []string{"/502/all-fail?i=0", "/502/all-fail?i=1"} {
				expectBadGateway(e, e.Get(target))
			}
			Expect(e.Received()).NotTo(BeEmpty(), "the backends should have received the requests they failed")
		})

		s.It(Meta{
			ID:       "502/invalid-response",
			Title:    "a backend answering with something that is not HTTP gets the client a gateway error, not the garbage",
			Level:    MUST,
			Source:   "RFC 9110 §15.6.3: 502 means an invalid response was received from an inbound server; RFC 9112 §4: a status line is required",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			garbage := "SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n"
			e.SetDefault("a", fakebackend.Behaviour{Raw: &garbage, Close: true})

			x := e.Get("/502/invalid-response")

			expectBadGateway(e, x)
			Expect(string(x.Raw)).NotTo(ContainSubstring("OpenSSH"), "the backend's garbage reached the client")
		})

		s.It(Meta{
			ID:       "502/no-leak",
			Title:    "a gateway error does not reveal backend addresses or ports, in its fields or its body",
			Level:    SHOULD,
			Source:   "RFC 9110 §7.6.3: an intermediary SHOULD NOT forward the names and ports of hosts within the firewall region; §17.12 (disclosure of internal information)",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2})
			e.SetMode("a", fakebackend.Refuse)
			e.SetDefault("b", fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse})

			// Two requests: one starts at each backend, so that whichever
			// failure the proxy reports last is seen.
			for _, target := range []string{"/502/no-leak?i=0", "/502/no-leak?i=1"} {
				x := e.Get(target)
				// The leak first: it is the spec's point, whatever the
				// status; then the status the profile asks for.
				head, body, _ := strings.Cut(string(x.Raw), "\r\n\r\n")
				for _, b := range e.Topology().Backends {
					Expect(leaks(head, b, e.Proxy)).To(BeEmpty(), "the gateway error's header section names backend %s (%s)", b.Name, b.URL)
					Expect(leaks(body, b, e.Proxy)).To(BeEmpty(), "the gateway error's body names backend %s (%s)", b.Name, b.URL)
				}
				expectBadGateway(e, x)
			}
		})
	})
}

// leaks returns what in s gives b away: its host:port, or its port as a
// number of its own (digits on neither side) unless the proxy listens on
// the same port.
func leaks(s string, b Endpoint, proxy string) []string {
	port := strconv.Itoa(b.Port)
	found := []string{}
	if hp := b.Host + ":" + port; strings.Contains(s, hp) {
		found = append(found, hp)
	}
	if !strings.HasSuffix(proxy, ":"+port) {
		found = append(found, regexp.MustCompile(`(^|\D)`+port+`(\D|$)`).FindAllString(s, -1)...)
	}
	return found
}

// expectBadGateway checks a gateway error as the profile defines it: the
// seed promises exactly 502 with a text/plain body (the reference says
// "502 Bad Gateway", in UTF-8); RFC 9110 leaves the choice among 502, 503
// and 504 to the proxy (§15.6.3-5).
func expectBadGateway(e *Env, x *Exchange) {
	ginkgo.GinkgoHelper()
	if e.Profile() != ProfileSeed {
		Expect(x.Status()).To(BeElementOf(http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout), "status the client got")
		return
	}
	Expect(x.Status()).To(Equal(http.StatusBadGateway), "status the client got")
	ct := x.Response.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	Expect(err).NotTo(HaveOccurred(), "Content-Type of the 502: %q", ct)
	Expect(mt).To(Equal("text/plain"), "media type of the 502")
	if cs, ok := params["charset"]; ok {
		Expect(strings.ToLower(cs)).To(Equal("utf-8"), "charset of the 502")
	}
	Expect(string(x.Body)).To(Equal("502 Bad Gateway"), "body of the 502")
}
