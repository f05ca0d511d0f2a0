package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
)

// hopHeaders are meaningful for a single connection only (RFC 9110 §7.6.1)
// and are never forwarded, in either direction. The list extends the seed's
// with Proxy-Connection (a non-standard header some clients still send),
// Trailer (RFC 9110 §6.6.2: it announces framing of this hop's message) and
// Trailers (as the seed spells TE's token), in canonical form.
var hopHeaders = []string{
	"Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Proxy-Connection",
	"Te",
	"Trailer",
	"Trailers",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop deletes the hop-by-hop fields and every field named in any
// Connection field line (RFC 9110 §7.6.1), whatever the case and the
// whitespace around the list elements.
func removeHopByHop(h http.Header) {
	for _, line := range h["Connection"] {
		for name := range strings.SplitSeq(line, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// appendList joins all field lines of a list-based field and appends v, so
// the upstream sees one line carrying the whole list (RFC 9110 §5.3 makes
// the two forms equivalent).
func appendList(h http.Header, name, v string) {
	if prior := h[name]; len(prior) > 0 {
		v = strings.Join(prior, ", ") + ", " + v
	}
	h[name] = []string{v}
}

// clientIP returns the client's address from RemoteAddr, without port or
// brackets, and false if there is none (an in-process caller may leave
// RemoteAddr empty).
func clientIP(remoteAddr string) (string, bool) {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().String(), true
	}
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String(), true
	}
	return "", false
}

// outboundHeader is the header sent upstream: the client's fields without
// hop-by-hop ones, plus X-Forwarded-For and Via. Host, framing and
// Connection: close are set on the request itself.
func outboundHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopByHop(h)
	if ip, ok := clientIP(r.RemoteAddr); ok {
		appendList(h, "X-Forwarded-For", ip)
	}
	// Via names the protocol version the proxy received (RFC 9110 §7.6.3):
	// "1.1 rws" as the seed says for HTTP/1.1 clients, "1.0 rws" for 1.0.
	appendList(h, "Via", viaVersion(r)+" rws")
	// Request.Write adds "User-Agent: Go-http-client/1.1" unless the key is
	// present; a present key with no values writes nothing, so a missing
	// User-Agent stays missing.
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil
	}
	return h
}

func viaVersion(r *http.Request) string {
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// requestTarget splits the client's request target into the raw path and
// the raw query as they came on the wire (RFC 9112 §3.2), so the upstream
// receives them byte for byte. An absolute-form target is reduced to its
// path and query: its authority never chooses the upstream, and a gateway
// sends origin-form (RFC 9112 §3.2.1).
func requestTarget(r *http.Request) (rawPath, rawQuery string, hasQuery bool) {
	t := r.RequestURI
	if t == "" {
		// A request built in-process rather than read from a connection.
		t = r.URL.RequestURI()
	}
	if t != "*" && !strings.HasPrefix(t, "/") {
		if _, rest, ok := strings.Cut(t, "://"); ok {
			t = rest
			if i := strings.IndexAny(t, "/?"); i >= 0 {
				t = t[i:]
			} else {
				t = ""
			}
		}
	}
	rawPath, rawQuery, hasQuery = strings.Cut(t, "?")
	if rawPath == "" {
		rawPath = "/"
	}
	return rawPath, rawQuery, hasQuery
}
