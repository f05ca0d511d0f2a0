package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"

	"github.com/proxyspec/proxyspec/conformance"
)

// pseudonym names the peers in Via as the seed's proxy names itself, so that
// they are judged on forwarding rather than on naming.
const pseudonym = "rws"

// errNoBackends ends a request when the topology has no backend.
var errNoBackends = errors.New("no backend configured")

// HTTPUtil is net/http/httputil.ReverseProxy set up for t as its
// documentation suggests: a Director that picks the backends in turn (a
// counter modulo their number, as the seed does), the Transport's dial
// timeout and ResponseHeaderTimeout for the two timeouts, keep-alives off so
// that every request says Connection: close, and an ErrorHandler answering
// the seed's 502. It has no failover: a failed backend fails the request.
func HTTPUtil(t conformance.Topology) (http.Handler, error) {
	backends, err := parseBackends(t.Backends)
	if err != nil {
		return nil, err
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			direct(r)
			if len(backends) > 0 {
				b := backends[(next.Add(1)-1)%uint64(len(backends))]
				r.URL.Host = b.Host
			}
		},
		Transport:    transport(t),
		ErrorHandler: badGateway,
	}
	return mount(t.PathPrefix, len(backends), rp), nil
}

// direct does what both peers' Directors share: the scheme, Host from the
// chosen backend (an empty r.Host makes the Transport send URL.Host), and
// Via, which names the protocol the request was received with (RFC 9110
// §7.6.3), not the one it is sent with. ReverseProxy itself appends the
// client to X-Forwarded-For and drops the hop-by-hop fields after the
// Director ran.
func direct(r *http.Request) {
	r.URL.Scheme = "http"
	r.Host = ""
	r.Header.Add("Via", fmt.Sprintf("%d.%d %s", r.ProtoMajor, r.ProtoMinor, pseudonym))
}

// transport is a copy of http.DefaultTransport with the topology's timeouts.
// ResponseHeaderTimeout bounds only the wait for the head: the Transport has
// no knob for a stalled body, which is what a user of httputil gets.
func transport(t conformance.Topology) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the topology is the only route, whatever the environment says
	tr.DialContext = (&net.Dialer{Timeout: t.ConnectTimeout}).DialContext
	tr.ResponseHeaderTimeout = t.ReadTimeout
	tr.DisableKeepAlives = true
	return tr
}

// parseBackends parses the topology's backend URLs.
func parseBackends(eps []conformance.Endpoint) ([]*url.URL, error) {
	us := make([]*url.URL, len(eps))
	for i, ep := range eps {
		u, err := url.Parse(ep.URL)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", ep.Name, err)
		}
		if u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("backend %s: want http://host:port, got %q", ep.Name, ep.URL)
		}
		us[i] = u
	}
	return us, nil
}

// mount serves rp under prefix the way a Go server usually routes: a
// ServeMux with the prefix and its subtree, so /api and /api/... are
// proxied, /apix is not, and the mux's own 404 answers the rest (it also
// redirects paths with dot segments to their clean form, so those never
// reach a backend). With no backend every request gets the 502.
func mount(prefix string, backends int, rp http.Handler) http.Handler {
	h := rp
	if backends == 0 {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { badGateway(w, r, errNoBackends) })
	}
	if prefix == "" {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle(prefix, h)
	mux.Handle(prefix+"/", h)
	return mux
}

// badGateway answers the seed's 502: text/plain, "502 Bad Gateway". The
// cause stays out of the body: it names backend addresses (RFC 9110 §17.12).
func badGateway(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	io.WriteString(w, "502 Bad Gateway")
}
