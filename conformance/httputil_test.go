package conformance_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"

	"github.com/proxyspec/proxyspec/conformance"
)

// The framework tests use net/http/httputil's ReverseProxy as a subject
// with known deviations: what they check is the kit's handling of a
// subject, not httputil.

// roundRobin builds the example proxy for a topology.
func roundRobin(t conformance.Topology) (http.Handler, error) {
	rp, err := newReverseProxy(t)
	if err != nil {
		return nil, err
	}
	return refuseConnect(rp), nil
}

// newReverseProxy is an httputil.ReverseProxy over the topology's backends.
func newReverseProxy(t conformance.Topology) (*httputil.ReverseProxy, error) {
	targets := make([]*url.URL, len(t.Backends))
	for i, b := range t.Backends {
		u, err := url.Parse(b.URL)
		if err != nil {
			return nil, err
		}
		targets[i] = u
	}
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			if len(targets) == 0 {
				return // the transport below fails, and ErrorHandler answers
			}
			r.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
			// Rewrite drops the client's X-Forwarded-For; keep it so that
			// SetXForwarded appends the client's address to the list.
			r.Out.Header["X-Forwarded-For"] = r.In.Header["X-Forwarded-For"]
			r.SetXForwarded()
			// httputil keeps a client's "TE: trailers" (for gRPC) without
			// naming TE in Connection, which hop-by-hop/request/te-trailers
			// catches (RFC 9110 §10.1.4); this proxy does not need it.
			r.Out.Header.Del("Te")
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: t.ConnectTimeout}).DialContext,
			ResponseHeaderTimeout: t.ReadTimeout,
			DisableCompression:    true,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "502 Bad Gateway")
		},
	}, nil
}

// refuseConnect answers CONNECT with 405. A gateway has no tunnel to offer:
// httputil would pass CONNECT on to a backend, whose 200 the client would
// take for an open tunnel (method/connect catches that).
func refuseConnect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH")
			http.Error(w, "CONNECT is not supported", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
