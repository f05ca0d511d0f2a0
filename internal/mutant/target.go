package mutant

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/proxyspec/proxyspec/conformance"
)

// rawPath is the upstream request's path as it goes on the wire: the
// reference carries it in Opaque, or in RawPath when it starts with "//".
func rawPath(u *url.URL) string {
	if u.Opaque != "" {
		return u.Opaque
	}
	return u.EscapedPath()
}

// setPath makes p, decoded, the upstream request's path; net/http encodes
// it again on the way out.
func setPath(u *url.URL, p string) {
	u.Opaque, u.Path, u.RawPath = "", p, ""
}

// normalizeTarget is target-normalized: the path is decoded, cleaned of
// repeated slashes and dot segments and encoded again, and the query is
// parsed and encoded again, as a proxy that rebuilds URLs does.
func normalizeTarget(out *http.Request, _ *exchange) {
	p, err := url.PathUnescape(rawPath(out.URL))
	if err != nil {
		return
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	setPath(out.URL, clean)
	out.URL.RawQuery, out.URL.ForceQuery = out.URL.Query().Encode(), false
}

// stripPrefix is prefix-stripped: the path prefix is cut off the path
// before it goes upstream, as a proxy mounting the backend under the
// prefix does.
func stripPrefix(t conformance.Topology) parts {
	prefix := strings.TrimRight(t.PathPrefix, "/")
	return parts{transport: editRequest(func(out *http.Request, _ *exchange) {
		raw := rawPath(out.URL)
		rest, ok := strings.CutPrefix(raw, prefix)
		if prefix == "" || !ok {
			return
		}
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		if strings.HasPrefix(rest, "//") {
			// Opaque "//x" would go out as an authority; a decoded path
			// keeps it a path.
			p, err := url.PathUnescape(rest)
			if err != nil {
				return
			}
			setPath(out.URL, p)
			return
		}
		out.URL.Opaque = rest
	})}
}

// openProxy is open-proxy: a request whose Host or absolute-form authority
// names a server other than the proxy itself is proxied there, and CONNECT
// opens a tunnel, as a forward proxy does. Only loopback addresses are ever
// dialled (the specs' decoys live there); any other named host is left to
// the reference.
func openProxy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		ap, err := netip.ParseAddrPort(r.Host)
		if err != nil || !ap.Addr().IsLoopback() || self != nil && r.Host == self.String() {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodConnect {
			c, err := net.Dial("tcp", ap.String())
			if err != nil {
				http.Error(w, "tunnel failed", http.StatusBadGateway)
				return
			}
			c.Close()
			w.WriteHeader(http.StatusOK)
			return
		}
		u := &url.URL{Scheme: "http", Host: ap.String()}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}).ServeHTTP(w, r)
	})
}
