package mutant

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// editRequest changes each upstream request before the reference's
// transport sends it, with the client's request at hand. The proxy has
// already applied its header rules, so edit undoes or bends them.
func editRequest(edit func(out *http.Request, x *exchange)) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(out *http.Request) (*http.Response, error) {
			// A RoundTripper must not modify the request it is given.
			out = out.Clone(out.Context())
			edit(out, exchangeOf(out.Context()))
			return next.RoundTrip(out)
		})
	}
}

// restore copies the client's field name into out, as if the proxy had
// never removed it.
func restore(out *http.Request, x *exchange, name string) {
	if vv := x.in.Values(name); len(vv) > 0 {
		out.Header[textproto.CanonicalMIMEHeaderKey(name)] = append([]string(nil), vv...)
	}
}

// connectionOptions lists the names in every Connection line of h.
func connectionOptions(h http.Header) []string {
	var names []string
	for _, line := range h.Values("Connection") {
		for name := range strings.SplitSeq(line, ",") {
			if name = textproto.TrimString(name); name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// fixedHopByHop are the fields the reference strips by name, whatever
// Connection says (the seed's list and the ones it adds).
var fixedHopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade",
}

func isFixedHopByHop(name string) bool {
	name = textproto.CanonicalMIMEHeaderKey(name)
	for _, h := range fixedHopByHop {
		if h == name {
			return true
		}
	}
	return false
}

// lastElement is the last member of a comma-separated list field.
func lastElement(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	all := strings.Split(vv[len(vv)-1], ",")
	return strings.TrimSpace(all[len(all)-1])
}

// keepFixedList is hop-by-hop-list-kept: only Connection and the fields it
// names are stripped, so the well-known hop-by-hop fields (Keep-Alive, TE,
// Trailer, Upgrade, Proxy-Connection...) travel on unless the client named
// them. Transfer-Encoding is left to transfer-encoding-relayed.
func keepFixedList(out *http.Request, x *exchange) {
	named := map[string]bool{}
	for _, n := range connectionOptions(x.in) {
		named[textproto.CanonicalMIMEHeaderKey(n)] = true
	}
	for _, name := range fixedHopByHop {
		vv := x.in.Values(name)
		if name == "Connection" || name == "Transfer-Encoding" || named[name] || len(vv) == 0 {
			continue
		}
		key := name
		if name == "Trailer" {
			key = onWire(name)
		}
		out.Header[key] = append([]string(nil), vv...)
	}
}

// keepTETrailers is te-trailers-kept, httputil.ReverseProxy's way: a
// client's TE that accepts trailers goes upstream as "TE: trailers", named
// in no Connection, so the backend takes it for the proxy's own.
func keepTETrailers(out *http.Request, x *exchange) {
	for _, v := range x.in.Values("Te") {
		for el := range strings.SplitSeq(v, ",") {
			if name, _, _ := strings.Cut(el, ";"); strings.EqualFold(textproto.TrimString(name), "trailers") {
				out.Header.Set("Te", "trailers")
				return
			}
		}
	}
}

// reverseRepeated is end-to-end-reordered: the lines of every repeated
// field go upstream in reverse order, as a proxy that rebuilds the header
// by prepending does.
func reverseRepeated(out *http.Request, _ *exchange) {
	for k, vv := range out.Header {
		if len(vv) > 1 {
			rev := slices.Clone(vv)
			slices.Reverse(rev)
			out.Header[k] = rev
		}
	}
}
