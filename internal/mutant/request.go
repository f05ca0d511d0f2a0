package mutant

import (
	"net/http"
	"net/textproto"
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
