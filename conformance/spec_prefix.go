package conformance

import (
	"net/http"
	"path"
	"strings"

	. "github.com/onsi/gomega"
)

// apiPrefix is the path prefix every spec of this file configures.
const apiPrefix = "/api"

func init() {
	addGroup("prefix", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}

		s.It(Meta{
			ID:       "prefix/matching",
			Title:    "proxies the prefix itself, paths below it and the prefix with a query",
			Level:    MUST,
			Source:   "seed §Selective proxying with path_prefix: requests under the prefix are proxied",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, PathPrefix: apiPrefix})
			targets := []string{"/api", "/api/", "/api/x", "/api/x/y", "/api?q=1"}

			for _, t := range targets {
				x := e.Get(t)
				Expect(x.Status()).To(Equal(http.StatusOK), "status for %s", t)
				Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("a"), "the backend that answered %s", t)
			}

			got := e.ReceivedBy("a")
			var seen []string
			for _, r := range got {
				seen = append(seen, r.Target)
			}
			Expect(seen).To(Equal(targets), "targets backend a received, in order")
		})

		s.It(Meta{
			ID:       "prefix/non-matching",
			Title:    "answers paths outside the prefix itself, never from a backend (seed: 404)",
			Level:    MUST,
			Source:   "seed §Selective proxying with path_prefix: other requests are handled locally (the reference answers 404)",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, PathPrefix: apiPrefix})

			// "/apix" shares the prefix's characters but not its segment.
			for _, t := range []string{"/apix", "/apix/y", "/ap", "/", "/other", "/other/api"} {
				x := e.Get(t)
				Expect(x.Header("X-Proxyspec-Backend")).To(BeEmpty(), "%s was answered by a backend", t)
				if e.Profile() == ProfileSeed {
					Expect(x.Status()).To(Equal(http.StatusNotFound), "status for %s", t)
				}
			}
			Expect(e.Received()).To(BeEmpty(), "requests outside the prefix reached a backend")
		})

		s.It(Meta{
			ID:       "prefix/not-stripped",
			Title:    "forwards the path with its prefix: the prefix selects, it is not removed",
			Level:    MUST,
			Source:   "seed §Selective proxying with path_prefix; RFC 9110 §7.7: a proxy must not modify the absolute-path of the target",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, PathPrefix: apiPrefix})

			x := e.Get("/api/x/y")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Target).To(Equal("/api/x/y"), "the target backend a received")
		})

		s.It(Meta{
			ID:       "prefix/query-kept",
			Title:    "forwards the query of a prefixed request byte for byte",
			Level:    MUST,
			Source:   "RFC 9110 §7.7: a proxy must not modify the query of the target; seed §Selective proxying with path_prefix",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, PathPrefix: apiPrefix})
			const target = "/api/search?q=a%20b+c&x=1&x=2&empty=&flag&path=%2Fapi%2F..%2F"

			x := e.Get(target)

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Target).To(Equal(target), "the target backend a received")
		})

		s.It(Meta{
			ID:       "prefix/dot-segments",
			Title:    "does not let dot segments reach a backend for a path outside the prefix",
			Level:    SHOULD,
			Source:   "RFC 3986 §5.2.4, §6.2.2.3: dot segments are removed before a path is compared; RFC 9110 §4.2.3",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, PathPrefix: apiPrefix})
			// Sent raw: a client library would resolve them itself.
			targets := []string{"/api/../secret", "/api/./../secret", "/api/%2e%2e/secret", "/api/x/../../secret"}

			for _, t := range targets {
				x := e.Get(t)
				Expect(x.Status()).NotTo(BeZero(), "a response for %s", t)
			}
			for _, r := range e.Received() {
				p, _, _ := strings.Cut(r.Target, "?")
				p = path.Clean("/" + strings.ReplaceAll(strings.ReplaceAll(p, "%2e", "."), "%2E", "."))
				Expect(p == apiPrefix || strings.HasPrefix(p, apiPrefix+"/")).To(BeTrue(),
					"backend %s received %s, which resolves to %s, outside %s", r.Backend, r.Target, p, apiPrefix)
			}
		})
	})
}
