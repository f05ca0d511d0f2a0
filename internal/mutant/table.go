package mutant

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/proxy"
)

// table is every mutant. Each entry changes one thing; where a mutant needs
// to know the client's request, its transport reads the exchange that the
// handler wrapper put in the request context.
var table = []Mutant{
	// Request header rules.
	{
		Name:   "forward-connection",
		Defect: "forwards the client's Connection field to the backend",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			restore(out, x, "Connection")
		})}),
	},
	{
		Name:   "keep-connection-listed",
		Defect: "strips only the fixed hop-by-hop list: fields the client names in Connection reach the backend",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			for _, name := range connectionOptions(x.in) {
				if !isFixedHopByHop(name) {
					restore(out, x, name)
				}
			}
		})}),
	},
	{
		Name:   "leak-proxy-authorization",
		Defect: "forwards the client's Proxy-Authorization to the backend",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			restore(out, x, "Proxy-Authorization")
		})}),
	},
	{
		Name:   "host-kept",
		Defect: "sends the client's Host to the backend instead of the backend's",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			out.Host = x.host
		})}),
	},
	{
		Name:   "xff-replaced",
		Defect: "overwrites an incoming X-Forwarded-For with the client's IP instead of appending it",
		build: fixed(parts{transport: editRequest(func(out *http.Request, _ *exchange) {
			if vv := out.Header.Values("X-Forwarded-For"); len(vv) > 0 {
				out.Header.Set("X-Forwarded-For", lastElement(vv))
			}
		})}),
	},
	{
		Name:   "xff-missing",
		Defect: "adds no X-Forwarded-For (an incoming one is relayed as it came)",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			out.Header.Del("X-Forwarded-For")
			restore(out, x, "X-Forwarded-For")
		})}),
	},
	{
		Name:   "via-missing",
		Defect: "adds no Via member of its own (an incoming Via is relayed as it came)",
		build: fixed(parts{transport: editRequest(func(out *http.Request, x *exchange) {
			out.Header.Del("Via")
			restore(out, x, "Via")
		})}),
	},
	{
		Name:   "via-version-fixed",
		Defect: "always names HTTP/1.1 in its Via member, even for an HTTP/1.0 client",
		build: fixed(parts{transport: editRequest(func(out *http.Request, _ *exchange) {
			if vv := out.Header.Values("Via"); len(vv) > 0 {
				last := len(vv) - 1
				if v, ok := strings.CutSuffix(vv[last], "1.0 rws"); ok {
					out.Header["Via"][last] = v + "1.1 rws"
				}
			}
		})}),
	},
	{
		Name:   "hop-by-hop-list-kept",
		Defect: "strips only Connection and the fields it names: Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection... reach the backend when not named",
		build:  fixed(parts{transport: editRequest(keepFixedList)}),
	},
	{
		Name:   "te-trailers-kept",
		Defect: "sends a client's TE: trailers upstream without naming TE in Connection (httputil.ReverseProxy's behaviour)",
		build:  fixed(parts{transport: editRequest(keepTETrailers)}),
	},
	{
		Name:   "via-malformed",
		Defect: "replaces the Via list with a member lacking its received-protocol (\"Via: rws\")",
		build: fixed(parts{transport: editRequest(func(out *http.Request, _ *exchange) {
			out.Header.Set("Via", "rws")
		})}),
	},
	{
		Name:   "end-to-end-reordered",
		Defect: "forwards the lines of a repeated request field in reverse order",
		build:  fixed(parts{transport: editRequest(reverseRepeated)}),
	},
	{
		Name:   "transfer-encoding-relayed",
		Defect: "relays Transfer-Encoding as an end-to-end field, both ways, next to its own framing",
		build:  func(conformance.Topology) parts { return relayTE() },
	},
	{
		Name:   "target-normalized",
		Defect: "decodes, cleans and re-encodes the request path and re-encodes the query",
		build:  fixed(parts{transport: editRequest(normalizeTarget)}),
	},
	{
		Name:   "open-proxy",
		Defect: "proxies a request whose Host or absolute-form target names another (loopback) server there, and tunnels CONNECT",
		build:  fixed(parts{handler: openProxy}),
	},
	{
		Name:   "head-as-get",
		Defect: "sends a HEAD request upstream as a GET",
		build: fixed(parts{transport: editRequest(func(out *http.Request, _ *exchange) {
			if out.Method == http.MethodHead {
				out.Method = http.MethodGet
			}
		})}),
	},
	{
		Name:   "query-dropped",
		Defect: "forwards the request target without its query",
		build: fixed(parts{transport: editRequest(func(out *http.Request, _ *exchange) {
			out.URL.RawQuery, out.URL.ForceQuery = "", false
		})}),
	},
	{
		Name:   "keep-alive-upstream",
		Defect: "keeps upstream connections open and reuses them, without Connection: close",
		build:  func(conformance.Topology) parts { return pooled() },
	},

	// Response rules.
	{
		Name:   "no-response-stripping",
		Defect: "relays the backend's hop-by-hop response fields (all but framing) to the client",
		build: fixed(parts{handler: editResponse(func(code int, h http.Header, x *exchange) int {
			if code < 200 {
				return code
			}
			for k, vv := range x.upstreamHeader() {
				if _, ok := h[k]; ok || framing(k) {
					continue
				}
				if k == "Trailer" {
					k = onWire(k)
				}
				h[k] = vv
			}
			return code
		})}),
	},
	{
		Name:   "informational-dropped",
		Defect: "drops the backend's 1xx responses instead of relaying them",
		build: fixed(parts{handler: editResponse(func(code int, _ http.Header, _ *exchange) int {
			if code < 200 {
				return 0
			}
			return code
		})}),
	},
	{
		Name:   "status-503",
		Defect: "answers 503 instead of 502 when no backend answered",
		build: fixed(parts{handler: editResponse(func(code int, _ http.Header, x *exchange) int {
			if code == http.StatusBadGateway && x.upstreamHeader() == nil {
				return http.StatusServiceUnavailable
			}
			return code
		})}),
	},
	{
		Name:   "error-detail-leaked",
		Defect: "tells the client in its 502 why the last backend failed, address included",
		build: fixed(parts{handler: editResponse(func(code int, h http.Header, x *exchange) int {
			x.mu.Lock()
			defer x.mu.Unlock()
			if code == http.StatusBadGateway && x.upstream == nil && x.err != nil {
				h.Set("X-Upstream-Error", x.err.Error())
			}
			return code
		})}),
	},
	{
		Name:   "status-normalized",
		Defect: "relays every 2xx status as 200",
		build: fixed(parts{handler: editResponse(func(code int, _ http.Header, _ *exchange) int {
			if code > 200 && code < 300 {
				return http.StatusOK
			}
			return code
		})}),
	},
	{
		Name:   "set-cookie-combined",
		Defect: "combines the backend's Set-Cookie lines into one, as if it were a list field",
		build: fixed(parts{handler: editResponse(func(code int, h http.Header, _ *exchange) int {
			if vv := h.Values("Set-Cookie"); len(vv) > 1 {
				h.Set("Set-Cookie", strings.Join(vv, ", "))
			}
			return code
		})}),
	},
	{
		Name:   "error-detail-in-body",
		Defect: "tells the client in the body of its 502 why the last backend failed, address included",
		build:  fixed(parts{handler: leakInBody}),
	},
	{
		Name:   "truncation-hidden",
		Defect: "ends a chunked response cut short by its backend with a last chunk, as if it were complete",
		build:  fixed(parts{handler: hideAbort}),
	},

	// Selection, failover, timeouts, prefix.
	{
		Name:   "no-failover",
		Defect: "answers 502 as soon as one attempt fails, without trying the next backend",
		build: fixed(parts{transport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				failed := exchangeOf(out.Context()).attemptFailed()
				if failed {
					return nil, errNoFailover
				}
				return next.RoundTrip(out)
			})
		}}),
	},
	{
		Name:   "post-not-failed-over",
		Defect: "never fails over a non-idempotent request, even when no byte of it reached the failed backend",
		build: fixed(parts{transport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				failed := exchangeOf(out.Context()).attemptFailed()
				if failed && !idempotent(out.Method) {
					return nil, errNoFailover
				}
				return next.RoundTrip(out)
			})
		}}),
	},
	{
		Name:   "post-replayed",
		Defect: "sends a non-idempotent request again to the next backend after one failed with the request written",
		build:  replayed,
	},
	{
		Name:   "retry-same-backend",
		Defect: "sends a failed attempt once more to the same backend, whatever the method, before failing over",
		build:  fixed(parts{transport: retrySame}),
	},
	{
		Name:   "random-start",
		Defect: "starts each request at a backend drawn at random (fair, but not round-robin)",
		build:  randomStart,
	},
	{
		Name:   "skewed-5-points",
		Defect: "over three backends, sends the first 46/120 of the requests (a fair third plus 5 points), by smooth weighted round-robin",
		build:  skewedByWeights,
	},
	{
		Name:   "round-robin-per-attempt",
		Defect: "advances its round-robin counter on every failed attempt too, so a failing backend shifts the next requests' start",
		build:  perAttempt,
	},
	{
		Name:   "skewed-round-robin",
		Defect: "starts every other request at the first backend, round-robin for the rest",
		build: func(conformance.Topology) parts {
			// A counter per proxy, as the reference's RoundRobin.
			return parts{opts: []proxy.Option{proxy.WithStrategy(new(skewed))}}
		},
	},
	{
		// Four times: the suite allows its margin (3) over any timeout,
		// so smaller errors are not defects it can see.
		Name:   "read-timeout-4x",
		Defect: "waits for a backend's response four times the configured read timeout",
		build: func(t conformance.Topology) parts {
			return parts{opts: []proxy.Option{proxy.WithReadTimeout(4 * t.ReadTimeout)}}
		},
	},
	{
		Name:   "read-timeout-total",
		Defect: "bounds a whole attempt by the read timeout instead of each wait for the backend",
		build:  totalDeadline,
	},
	{
		Name:   "read-timeout-quarter",
		Defect: "gives up on a backend's response after a quarter of the configured read timeout",
		build: func(t conformance.Topology) parts {
			return parts{opts: []proxy.Option{proxy.WithReadTimeout(t.ReadTimeout / 4)}}
		},
	},
	{
		Name:   "connect-timeout-quarter",
		Defect: "gives up on a connection after a quarter of the configured connect timeout",
		build: func(t conformance.Topology) parts {
			return parts{opts: []proxy.Option{proxy.WithConnectTimeout(t.ConnectTimeout / 4)}}
		},
	},
	{
		Name:   "connect-timeout-4x",
		Defect: "waits for a connection four times the configured connect timeout",
		build: func(t conformance.Topology) parts {
			return parts{opts: []proxy.Option{proxy.WithConnectTimeout(4 * t.ConnectTimeout)}}
		},
	},
	{
		Name:   "backend-5xx-failover",
		Defect: "takes a backend's 5xx response for a failed attempt: fails over, and answers 502 when every backend does",
		build: fixed(parts{transport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				res, err := next.RoundTrip(out)
				if err == nil && res.StatusCode >= 500 {
					res.Body.Close()
					return nil, fmt.Errorf("mutant: backend %s answered %s", out.URL.Host, res.Status)
				}
				return res, err
			})
		}}),
	},
	{
		Name:   "prefix-naive",
		Defect: "matches the path prefix as a plain string on the raw path: no segment boundary, dot segments not resolved",
		build:  naivePrefix,
	},
	{
		Name:   "prefix-stripped",
		Defect: "cuts the path prefix off the path before forwarding",
		build:  stripPrefix,
	},
	{
		Name:   "prefix-ignored",
		Defect: "proxies every request, whatever the configured path prefix",
		build:  fixed(parts{opts: []proxy.Option{proxy.WithPathPrefix("")}}),
	},
}

// fixed is a build that does not depend on the topology.
func fixed(p parts) func(conformance.Topology) parts {
	return func(conformance.Topology) parts { return p }
}
