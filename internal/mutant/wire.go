package mutant

import (
	"net/http"
	"strings"
)

// net/http writes neither a request's Trailer and Transfer-Encoding fields
// nor a response's framing from the Header map: it derives its own. It
// writes a key it does not recognise as is, though, and recognises only
// canonical keys, so a mutant that must put such a field on the wire stores
// it under its lower-case name: net/http passes it through untouched, and
// every peer reads field names case-insensitively (RFC 9110 §5.1).
func onWire(name string) string { return strings.ToLower(name) }

// relayTE is transfer-encoding-relayed: Transfer-Encoding is treated as an
// end-to-end field, so the client's line is sent upstream and the backend's
// line back to the client, each next to the framing the proxy generates
// for its own hop (RFC 9110 §7.6.1, RFC 9112 §6.1).
func relayTE() parts {
	return parts{
		transport: editRequest(func(out *http.Request, x *exchange) {
			if len(x.te) > 0 {
				out.Header[onWire("Transfer-Encoding")] = []string{strings.Join(x.te, ", ")}
			}
		}),
		handler: editResponse(func(code int, h http.Header, x *exchange) int {
			x.mu.Lock()
			te := x.upstreamTE
			x.mu.Unlock()
			if code >= 200 && len(te) > 0 {
				h[onWire("Transfer-Encoding")] = []string{strings.Join(te, ", ")}
			}
			return code
		}),
	}
}
