package conformance_test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
)

// A Go proxy is measured from its own go test: a constructor that builds
// the proxy for each topology a spec asks for, the features it cannot
// express (their specs are reported "not supported", not "failed"), and one
// call. Here the proxy is net/http/httputil's ReverseProxy picking the
// backends in turn; it has no failover and no path prefix, adds no Via, and
// bounds only the wait for a response head, not a stalled body.
//
// The example is compiled, not run: httputil's verdicts are the peer gate's
// to pin, and the reference's own integration runs in internal/selftest.
func ExampleTest() {
	build := func(topo conformance.Topology) (http.Handler, error) {
		targets := make([]*url.URL, len(topo.Backends))
		for i, b := range topo.Backends {
			u, err := url.Parse(b.URL)
			if err != nil {
				return nil, err
			}
			targets[i] = u
		}
		var next atomic.Uint64
		return &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				if len(targets) > 0 { // none: the transport fails, and the client gets 502
					r.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
				}
				r.SetXForwarded()
			},
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: topo.ConnectTimeout}).DialContext,
				ResponseHeaderTimeout: topo.ReadTimeout,
			},
		}, nil
	}
	subject := conformance.Handler("httputil", build,
		conformance.FeatureFailover, conformance.FeaturePathPrefix,
		conformance.FeatureVia, conformance.FeatureReadTimeout)

	// The whole of a TestConformance(t *testing.T) in the proxy's package:
	testConformance := func(t *testing.T) {
		conformance.Test(t, conformance.Config{Subject: subject, Profile: conformance.ProfileRFC9110})
	}
	_ = testConformance
}
